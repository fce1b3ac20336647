//! npm and PyPI against local fakes: daily downloads stored per package per day (re-reading a day
//! overwrites it), `packageDownloads` with a range, a download spike and a new version as events,
//! conditional registry reads, and tenant isolation.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use devsignal_tests::connectors::{connect, events, ok, sync};
use devsignal_tests::fakes::packages::{FakePackages, Package};
use devsignal_tests::{TestApp, spawn_app_with};
use serde_json::{Value, json};

const DOWNLOADS: &str = "query($r: PackageRegistry!, $p: String!, $from: Date, $to: Date) { packageDownloads(registry: $r, package: $p, from: $from, to: $to) { day downloads package } }";

async fn app_for(f: &FakePackages) -> TestApp {
    let u = |p: &str| format!("{}/{p}", f.url);
    spawn_app_with(&[
        ("NPM_DOWNLOADS_API_URL", &u("npm-downloads")),
        ("NPM_REGISTRY_URL", &u("npm-registry")),
        ("PYPISTATS_API_URL", &u("pypistats")),
        ("PYPI_URL", &u("pypi")),
    ])
    .await
}

/// 40 days up to yesterday, around 100 a day; the last day `last`.
fn history(last: i64) -> BTreeMap<NaiveDate, i64> {
    let today = Utc::now().date_naive();
    (1..=40)
        .rev()
        .map(|k| {
            let d = today - chrono::Duration::days(k);
            (d, if k == 1 { last } else { 100 + (k % 5) * 3 })
        })
        .collect()
}

#[tokio::test]
async fn npm_downloads_are_stored_per_day_with_spikes_and_releases_as_events() {
    let f = FakePackages::start().await;
    f.with(|d| {
        d.npm.insert(
            "left-pad".into(),
            Package {
                downloads: history(5000),
                version: "1.0.0".into(),
                maintainers: vec!["azer".into()],
            },
        );
        d.npm.insert(
            "@acme/sdk".into(),
            Package {
                downloads: history(104),
                version: "2.0.0".into(),
                maintainers: vec!["acme".into()],
            },
        );
    });
    let app = app_for(&f).await;
    let (a, b) = app.two_tenants().await;
    let (id, _) = connect(
        &app,
        &a,
        "NPM",
        json!({"packages": ["left-pad", "@acme/sdk"]}),
        None,
    )
    .await;
    let run = sync(&app, &a, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let resp = app
        .graphql_as(a.token(), DOWNLOADS, json!({"r": "NPM", "p": "left-pad"}))
        .await;
    let days = ok(&resp)["packageDownloads"].as_array().unwrap().clone();
    assert_eq!(days.len(), 40);
    let yesterday = (Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    assert_eq!(days.last().unwrap()["day"], json!(yesterday));
    assert_eq!(days.last().unwrap()["downloads"], 5000);
    let resp = app
        .graphql_as(
            a.token(),
            DOWNLOADS,
            json!({"r": "NPM", "p": "@acme/sdk", "from": yesterday, "to": yesterday}),
        )
        .await;
    assert_eq!(
        ok(&resp)["packageDownloads"],
        json!([{"day": yesterday, "downloads": 104, "package": "@acme/sdk"}])
    );
    // A spike of left-pad, none of @acme/sdk; no release on the first read.
    let spikes = events(&app, "package.downloads_spike").await;
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0]["package"], "left-pad");
    assert_eq!(spikes[0]["day"], json!(yesterday));
    assert!(spikes[0]["zScore"].as_f64().unwrap() > 3.0);
    assert!(events(&app, "package.released").await.is_empty());
    // Another tenant sees nothing.
    let resp = app
        .graphql_as(b.token(), DOWNLOADS, json!({"r": "NPM", "p": "left-pad"}))
        .await;
    assert_eq!(ok(&resp)["packageDownloads"], json!([]));

    // A corrected day and a new version: the day is overwritten, the release is an event,
    // the spike is not reported twice; the unchanged registry document is a 304.
    f.with(|d| {
        let p = d.npm.get_mut("left-pad").unwrap();
        *p.downloads.values_mut().last().unwrap() = 4800;
        p.version = "1.1.0".into();
    });
    let run = sync(&app, &a, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let resp = app
        .graphql_as(a.token(), DOWNLOADS, json!({"r": "NPM", "p": "left-pad"}))
        .await;
    let days = ok(&resp)["packageDownloads"].as_array().unwrap().clone();
    assert_eq!(days.len(), 40);
    assert_eq!(days.last().unwrap()["downloads"], 4800);
    let released = events(&app, "package.released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["version"], "1.1.0");
    assert_eq!(released[0]["previousVersion"], "1.0.0");
    assert_eq!(events(&app, "package.downloads_spike").await.len(), 1);
    let sdk_registry: Vec<(String, bool, u16)> = f
        .hits()
        .into_iter()
        .filter(|(p, _, _)| p.starts_with("/npm-registry/@acme"))
        .collect();
    assert_eq!(sdk_registry.len(), 2);
    assert_eq!((sdk_registry[1].1, sdk_registry[1].2), (true, 304));
}

#[tokio::test]
async fn pypi_downloads_without_mirrors_under_the_normalised_name() {
    let f = FakePackages::start().await;
    f.with(|d| {
        d.pypi.insert(
            "django-rest".into(),
            Package {
                downloads: history(108),
                version: "3.1".into(),
                maintainers: vec!["tom".into()],
            },
        );
    });
    let app = app_for(&f).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "PYPI", json!({"packages": ["Django_Rest"]}), None).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let resp = app
        .graphql_as(
            s.token(),
            DOWNLOADS,
            json!({"r": "PYPI", "p": "Django.Rest"}),
        )
        .await;
    let days: Vec<Value> = ok(&resp)["packageDownloads"].as_array().unwrap().clone();
    assert_eq!(days.len(), 40);
    assert_eq!(days.last().unwrap()["downloads"], 108, "without mirrors");
    assert!(events(&app, "package.downloads_spike").await.is_empty());
    // Unchanged: both documents answer 304 and nothing changes.
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED");
    let last_two: Vec<(bool, u16)> = f
        .hits()
        .iter()
        .rev()
        .take(2)
        .map(|(_, c, s)| (*c, *s))
        .collect();
    assert_eq!(last_two, [(true, 304), (true, 304)]);
    // An unknown package stops the integration with a clear error.
    let (bad, _) = connect(
        &app,
        &s,
        "PYPI",
        json!({"packages": ["no-such-package"]}),
        None,
    )
    .await;
    let run = sync(&app, &s, &bad, false).await;
    assert_eq!(run["status"], "FAILED");
    assert!(
        run["error"].as_str().unwrap().contains("no-such-package"),
        "{run}"
    );
}
