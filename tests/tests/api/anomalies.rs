//! Signal anomalies (#18): an account's signals today against its 30-day daily baseline — the
//! worked example computed exactly (mean 5, σ 2, 10 today: a MODERATE SPIKE expected 1 to 9), a
//! complete stop detected as a DROP, too little history judged not at all, a drop judged on the
//! hours of the day elapsed, a 24-hour cooldown per (account, kind) however many detections run,
//! the hourly job doing the same, ANOMALY alert rules firing once on exactly their case, the
//! checks on `days` and on who may scan; another organization sees and fires none of it.
//! Signals are ingested through the API with chosen timestamps (midnight UTC of each day, so
//! the test means the same whatever the time of day it runs).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const INGEST: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded } } }";
const FIELDS: &str = "id account { domain name } kind severity day todayCount mean stddev zScore expectedMin expectedMax detectedAt";

fn scan_query() -> String {
    format!("mutation {{ scanAnomalies {{ {FIELDS} }} }}")
}

fn list_query() -> String {
    format!("query($days: Int) {{ anomalies(days: $days) {{ {FIELDS} }} }}")
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap())
        .and_utc()
}

/// Ingests, for each `(day, hour, n)`, `n` signals of `domain` at that hour of that UTC day.
async fn signals(app: &TestApp, s: &Session, domain: &str, plan: &[(NaiveDate, u32, usize)]) {
    let mut inputs = Vec::new();
    for (day, hour, n) in plan {
        for i in 0..*n {
            inputs.push(json!({
                "type": "api_call",
                "actor": {"email": format!("dev{}@{domain}", i % 3)},
                "timestamp": at(*day, *hour).to_rfc3339(),
                "metadata": {"n": Uuid::new_v4().to_string()},
            }));
        }
    }
    for chunk in inputs.chunks(1000) {
        let r = app
            .graphql_as(s.token(), INGEST, json!({"inputs": chunk}))
            .await;
        assert_eq!(
            ok(&r)["ingestSignals"]["summary"]["succeeded"],
            chunk.len(),
            "{r}"
        );
    }
}

/// The 30 days before `day`, each with `low` or `high` signals in turn (mean and σ chosen by
/// the pair), at `hour`.
fn baseline(day: NaiveDate, hour: u32, low: usize, high: usize) -> Vec<(NaiveDate, u32, usize)> {
    (1..=30)
        .map(|k| {
            let n = if k % 2 == 0 { low } else { high };
            (day - chrono::Duration::days(k), hour, n)
        })
        .collect()
}

fn by_domain<'a>(list: &'a Value, domain: &str) -> Vec<&'a Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["account"]["domain"] == domain)
        .collect()
}

/// Waits until the alert consumer has evaluated every event so far.
async fn evaluated(app: &TestApp) {
    eventually(
        Duration::from_secs(20),
        "alerts to catch up with the log",
        || async {
            let end = domain::events::latest_seq_all(&app.db).await.unwrap();
            let cursor = entity::webhook_cursor::Entity::find_by_id("alerts".to_owned())
                .one(&app.db)
                .await
                .unwrap()
                .map(|c| c.last_seq);
            cursor.is_some_and(|c| c >= end).then_some(())
        },
    )
    .await;
}

async fn notification_titles(app: &TestApp, s: &Session) -> Vec<String> {
    let r = app
        .graphql_as(
            s.token(),
            "{ notifications(first: 100) { nodes { title data } } }",
            json!({}),
        )
        .await;
    ok(&r)["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn spikes_and_stops_are_detected_exactly_once_and_alert_once() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let t = today();
    // Rules first: they watch what happens from their creation on.
    for input in [
        json!({"name": "Spikes", "trigger": "ANOMALY", "anomalyKinds": ["SPIKE"]}),
        json!({"name": "Serious", "trigger": "ANOMALY", "minSeverity": "HIGH"}),
    ] {
        let r = app
            .graphql_as(
                a.token(),
                "mutation($input: AlertRuleInput!) { createAlertRule(input: $input) { trigger anomalyKinds minSeverity } }",
                json!({"input": input}),
            )
            .await;
        ok(&r);
    }
    // spike.io: 3 and 7 in turn (mean 5, σ 2), 10 today.
    let mut plan = baseline(t, 0, 3, 7);
    plan.push((t, 0, 10));
    signals(&app, &a, "spike.io", &plan).await;
    // stop.io: 4 and 6 in turn (mean 5, σ 1), nothing today: a complete stop.
    signals(&app, &a, "stop.io", &baseline(t, 0, 4, 6)).await;
    // steady.io: as spike.io's baseline, 5 today: nothing.
    let mut plan = baseline(t, 0, 3, 7);
    plan.push((t, 0, 5));
    signals(&app, &a, "steady.io", &plan).await;
    // thin.io: 6 days with signals only, then 50 today: too little history to judge.
    let mut plan: Vec<_> = (1..=6)
        .map(|k| (t - chrono::Duration::days(k), 0, 2 + k as usize))
        .collect();
    plan.push((t, 0, 50));
    signals(&app, &a, "thin.io", &plan).await;
    // B has the same spike pattern under another domain; it is B's alone.
    let mut plan = baseline(t, 0, 3, 7);
    plan.push((t, 0, 10));
    signals(&app, &b, "bspike.io", &plan).await;

    let r = app.graphql_as(a.token(), &scan_query(), json!({})).await;
    let found = ok(&r)["scanAnomalies"].clone();
    assert_eq!(found.as_array().unwrap().len(), 2, "{found}");
    let spike = by_domain(&found, "spike.io")[0];
    let day = t.to_string();
    assert_eq!(
        (
            &spike["kind"],
            &spike["severity"],
            &spike["day"],
            &spike["todayCount"],
            &spike["mean"],
            &spike["stddev"],
            &spike["zScore"],
            &spike["expectedMin"],
            &spike["expectedMax"],
        ),
        (
            &json!("SPIKE"),
            &json!("MODERATE"),
            &json!(day),
            &json!(10),
            &json!(5.0),
            &json!(2.0),
            &json!(2.5),
            &json!(1),
            &json!(9),
        )
    );
    assert_eq!(spike["account"]["name"], "Spike");
    let stop = by_domain(&found, "stop.io")[0];
    assert_eq!(
        (
            &stop["kind"],
            &stop["severity"],
            &stop["todayCount"],
            &stop["mean"],
            &stop["stddev"],
            &stop["zScore"],
            &stop["expectedMin"],
            &stop["expectedMax"],
        ),
        (
            &json!("DROP"),
            &json!("HIGH"),
            &json!(0),
            &json!(5.0),
            &json!(1.0),
            &json!(-5.0),
            &json!(3),
            &json!(7)
        )
    );

    // The list and the account read the same records back.
    let r = app
        .graphql_as(a.token(), &list_query(), json!({"days": 7}))
        .await;
    let listed = ok(&r)["anomalies"].clone();
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(ids, want);
    let r = app
        .graphql_as(
            a.token(),
            "{ accounts(first: 50) { edges { node { domain anomalies { kind zScore } } } } }",
            json!({}),
        )
        .await;
    for edge in ok(&r)["accounts"]["edges"].as_array().unwrap() {
        let expected = match edge["node"]["domain"].as_str().unwrap() {
            "spike.io" => json!([{"kind": "SPIKE", "zScore": 2.5}]),
            "stop.io" => json!([{"kind": "DROP", "zScore": -5.0}]),
            _ => json!([]),
        };
        assert_eq!(edge["node"]["anomalies"], expected, "{edge}");
    }

    // Scanned again (and by two detections at once) within 24 hours: nothing new.
    let r = app.graphql_as(a.token(), &scan_query(), json!({})).await;
    assert_eq!(ok(&r)["scanAnomalies"], json!([]));
    let org = Uuid::parse_str(&a.organization_id).unwrap();
    let (x, y) = tokio::join!(
        domain::anomalies::detect(&app.db, org, Utc::now()),
        domain::anomalies::detect(&app.db, org, Utc::now())
    );
    assert_eq!(x.unwrap().len() + y.unwrap().len(), 0);
    // Each rule fired once, on its case: "Spikes" on the spike, "Serious" on the HIGH drop
    // (not on the MODERATE spike).
    evaluated(&app).await;
    let mut titles = notification_titles(&app, &a).await;
    titles.sort();
    assert_eq!(
        titles,
        vec![
            "Signal drop detected for Stop".to_owned(),
            "Signal spike detected for Spike".to_owned(),
        ]
    );

    // The other organization: none of A's anomalies or notifications; its own scan finds its
    // own spike only.
    let r = app
        .graphql_as(b.token(), &list_query(), json!({"days": 30}))
        .await;
    assert_eq!(ok(&r)["anomalies"], json!([]));
    assert!(notification_titles(&app, &b).await.is_empty());
    let r = app.graphql_as(b.token(), &scan_query(), json!({})).await;
    let theirs = ok(&r)["scanAnomalies"].clone();
    assert_eq!(theirs.as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(theirs[0]["account"]["domain"], "bspike.io");
    let r = app
        .graphql_as(a.token(), &list_query(), json!({"days": 30}))
        .await;
    assert_eq!(ok(&r)["anomalies"].as_array().unwrap().len(), 2);
    evaluated(&app).await;
    assert_eq!(notification_titles(&app, &a).await.len(), 2);
    assert!(notification_titles(&app, &b).await.is_empty());

    // Every detection is an anomaly.detected event of its own organization.
    let r = app
        .graphql_as(
            a.token(),
            "{ events(first: 100, types: [\"anomaly.detected\"]) { payload } }",
            json!({}),
        )
        .await;
    let events = ok(&r)["events"].to_string();
    assert_eq!(events.matches("\"kind\":").count(), 2, "{events}");
    assert!(!events.contains("bspike.io") && !events.contains("Bspike"));
}

#[tokio::test]
async fn checks_days_roles_and_rule_parameters() {
    let app = spawn_app().await;
    let s = app.register("owner@anomalies.test", "Anomalies").await;
    let member = app.add_member(&s, "member@anomalies.test", "MEMBER").await;
    for days in [0, 31] {
        let r = app
            .graphql_as(s.token(), &list_query(), json!({"days": days}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(
            r["errors"][0]["extensions"]["fields"][0]["field"], "days",
            "{r}"
        );
    }
    signals(&app, &s, "acme.io", &[(today(), 0, 1)]).await;
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 5) { edges { node { anomalies(days: 31) { id } } } } }",
            json!({}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    // Members read, only admins scan.
    let r = app
        .graphql_as(member.token(), &list_query(), json!({"days": 7}))
        .await;
    assert_eq!(ok(&r)["anomalies"], json!([]));
    let r = app
        .graphql_as(member.token(), &scan_query(), json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    // The rule's parameters: only ANOMALY takes them.
    let create = "mutation($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }";
    let r = app
        .graphql_as(
            s.token(),
            create,
            json!({"input": {"name": "x", "trigger": "NEW_SIGNAL", "minSeverity": "HIGH"}}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(
        r["errors"][0]["extensions"]["fields"][0]["field"], "input.minSeverity",
        "{r}"
    );
    let r = app
        .graphql_as(
            s.token(),
            create,
            json!({"input": {"name": "x", "trigger": "ANOMALY", "anomalyKinds": ["SURGE"]}}),
        )
        .await;
    assert!(r.get("errors").is_some(), "{r}");
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: AlertRuleInput!) { createAlertRule(input: $input) { trigger anomalyKinds minSeverity } }",
            json!({"input": {"name": "Drops", "trigger": "ANOMALY", "anomalyKinds": ["DROP"], "minSeverity": "MODERATE"}}),
        )
        .await;
    assert_eq!(
        ok(&r)["createAlertRule"],
        json!({"trigger": "ANOMALY", "anomalyKinds": ["DROP"], "minSeverity": "MODERATE"})
    );
}

#[tokio::test]
async fn a_drop_is_judged_on_the_hours_of_the_day_elapsed() {
    let app = spawn_app().await;
    let s = app.register("hours@anomalies.test", "Hours").await;
    let org = Uuid::parse_str(&s.organization_id).unwrap();
    // Judged as of yesterday, so every hour of that day is in the past.
    let d = today() - chrono::Duration::days(1);
    // early.io's signals come at 06:00, late.io's at 20:00: 4 and 6 in turn, none on day d.
    signals(&app, &s, "early.io", &baseline(d, 6, 4, 6)).await;
    signals(&app, &s, "late.io", &baseline(d, 20, 4, 6)).await;
    // At noon, early.io missed its morning: a drop; late.io's day has not come yet: none.
    let noon = domain::anomalies::detect(&app.db, org, at(d, 12))
        .await
        .unwrap();
    assert_eq!(noon.len(), 1, "{noon:?}");
    let a = &noon[0];
    assert_eq!(
        (
            a.kind.as_str(),
            a.severity.as_str(),
            a.today_count,
            a.mean,
            a.z_score
        ),
        ("DROP", "HIGH", 0, 5.0, -5.0)
    );
    assert_eq!(a.day, d);
    // At 21:00 late.io's usual hour has passed too; early.io is in its cooldown.
    let evening = domain::anomalies::detect(&app.db, org, at(d, 21))
        .await
        .unwrap();
    assert_eq!(evening.len(), 1, "{evening:?}");
    assert_ne!(evening[0].account_id, a.account_id);
    assert_eq!(evening[0].kind, "DROP");
    // The next day at noon early.io's cooldown (from yesterday noon) is over: its stop is
    // recorded again (day d is now part of its baseline, with nothing in it).
    let next = domain::anomalies::detect(&app.db, org, at(today(), 12))
        .await
        .unwrap();
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(
        (next[0].account_id, next[0].kind.as_str(), next[0].day),
        (a.account_id, "DROP", today())
    );
    // At 01:00 the same hours hold nothing for either: no drop is judged on them.
    let app2 = spawn_app().await;
    let s2 = app2.register("night@anomalies.test", "Night").await;
    signals(&app2, &s2, "early.io", &baseline(d, 6, 4, 6)).await;
    let night = domain::anomalies::detect(
        &app2.db,
        Uuid::parse_str(&s2.organization_id).unwrap(),
        at(d, 1),
    )
    .await
    .unwrap();
    assert!(night.is_empty(), "{night:?}");
}

#[tokio::test]
async fn the_hourly_job_detects_for_every_organization() {
    let app = spawn_app().await;
    let s = app.register("job@anomalies.test", "Job").await;
    let t = today();
    let mut plan = baseline(t, 0, 3, 7);
    plan.push((t, 0, 10));
    signals(&app, &s, "spike.io", &plan).await;
    let schedule = jobs::registry::schedule("anomaly-detection-scheduler").unwrap();
    let id = jobs::scheduler::fire(&app.db, schedule, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let done = |id: Uuid| {
        let app = &app;
        async move {
            eventually(Duration::from_secs(30), "the job to finish", || async {
                let j = entity::jobs::Entity::find_by_id(id)
                    .one(&app.db)
                    .await
                    .unwrap()
                    .unwrap();
                matches!(j.state.as_str(), "completed" | "failed" | "skipped").then_some(j)
            })
            .await
        }
    };
    let fan_out = done(id).await;
    assert_eq!(fan_out.state, "completed", "{:?}", fan_out.last_error);
    let r = eventually(
        Duration::from_secs(30),
        "the organization's detection",
        || async {
            let r = app
                .graphql_as(s.token(), &list_query(), json!({"days": 7}))
                .await;
            (ok(&r)["anomalies"].as_array().unwrap().len() == 1).then_some(r)
        },
    )
    .await;
    let a = &ok(&r)["anomalies"][0];
    assert_eq!(
        (
            &a["kind"],
            &a["severity"],
            &a["zScore"],
            &a["expectedMin"],
            &a["expectedMax"]
        ),
        (
            &json!("SPIKE"),
            &json!("MODERATE"),
            &json!(2.5),
            &json!(1),
            &json!(9)
        )
    );
    let detect = entity::jobs::Entity::find()
        .filter(entity::jobs::Column::Name.eq("detect-anomalies"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let detect = done(detect.id).await;
    assert_eq!(detect.state, "completed", "{:?}", detect.last_error);
}
