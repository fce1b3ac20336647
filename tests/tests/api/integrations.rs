//! Integrations as data: who may manage them, bad input (bad kinds, bad configuration)
//! answered with BAD_USER_INPUT naming the field, credentials never shown, tenant isolation of
//! integrations and their runs, and cron entries: built fan-outs complete, unbuilt work is skipped.

use std::time::Duration;

use devsignal_tests::connectors::{CONNECT, INTEGRATION, SYNC, UPDATE, connect, ok, sync};
use devsignal_tests::fakes::github::FakeGitHub;
use devsignal_tests::{assert_code, eventually, spawn_app, spawn_app_with};
use serde_json::{Value, json};

fn fields(resp: &Value) -> Vec<String> {
    resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_kinds_and_configurations_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let cases = [
        (
            json!({"kind": "HUBSPOT", "config": {}}),
            "credentials.accessToken",
        ),
        (
            json!({"kind": "HUBSPOT", "config": {"stageMap": {"won": "DONE"}}, "credentials": {"accessToken": "t"}}),
            "config.stageMap.won",
        ),
        (
            json!({"kind": "SALESFORCE", "config": {}, "credentials": {"accessToken": "t"}}),
            "credentials.instanceUrl",
        ),
        (
            json!({"kind": "SALESFORCE", "config": {}, "credentials": {"accessToken": "t", "instanceUrl": "ftp://x"}}),
            "credentials.instanceUrl",
        ),
        (
            json!({"kind": "GITHUB", "config": {"repos": []}}),
            "config.repos",
        ),
        (json!({"kind": "GITHUB", "config": {}}), "config.repos"),
        (
            json!({"kind": "GITHUB", "config": {"repos": ["not a repo"]}}),
            "config.repos.0",
        ),
        (
            json!({"kind": "GITHUB", "config": {"repos": ["a/b"], "apiUrl": "ftp://x"}}),
            "config.apiUrl",
        ),
        (
            json!({"kind": "GITHUB", "config": {"repos": ["a/b"]}, "credentials": {"token": ""}}),
            "credentials.token",
        ),
        (json!({"kind": "GITHUB", "config": ["a/b"]}), "config"),
        (
            json!({"kind": "NPM", "config": {"packages": []}}),
            "config.packages",
        ),
        (
            json!({"kind": "NPM", "config": {"packages": ["@scope"]}}),
            "config.packages.0",
        ),
        (
            json!({"kind": "PYPI", "config": {"packages": ["ok", "bad name!"]}}),
            "config.packages.1",
        ),
    ];
    for (input, field) in cases {
        let resp = app
            .graphql_as(s.token(), CONNECT, json!({"input": input}))
            .await;
        assert_code(&resp, "BAD_USER_INPUT");
        assert!(fields(&resp).contains(&field.to_owned()), "{field}: {resp}");
    }
    // Nothing was stored.
    let resp = app
        .graphql_as(s.token(), "{ integrations { id } }", json!({}))
        .await;
    assert_eq!(ok(&resp)["integrations"], json!([]));
    // An unknown kind is not even a valid enum value.
    let resp = app
        .graphql_as(
            s.token(),
            CONNECT,
            json!({"input": {"kind": "MYSPACE", "config": {}}}),
        )
        .await;
    assert!(resp["errors"].is_array());
    // Updates are checked the same way.
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["a/b"]}), None).await;
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"config": {"repos": ["x"]}}}),
        )
        .await;
    assert_code(&resp, "BAD_USER_INPUT");
    assert_eq!(fields(&resp), ["config.repos.0"]);
}

#[tokio::test]
async fn integration_kinds_say_what_is_built_synced_and_sent_webhooks_to_any_member() {
    let app = spawn_app().await;
    let admin = app.register("admin@vendor.io", "Vendor").await;
    let member = app.add_member(&admin, "member@vendor.io", "MEMBER").await;
    let query = "{ integrationKinds { kind label built syncs webhooks } }";
    let resp = app.graphql_as(member.token(), query, json!({})).await;
    let kinds = ok(&resp)["integrationKinds"].as_array().unwrap().clone();
    let of = |kind: &str| {
        kinds
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} missing: {resp}"))
            .clone()
    };
    assert_eq!(kinds.len(), 14, "every kind is listed: {resp}");
    assert_eq!(
        of("GITHUB"),
        json!({"kind": "GITHUB", "label": "GitHub", "built": true, "syncs": true, "webhooks": true})
    );
    assert_eq!(
        of("NPM"),
        json!({"kind": "NPM", "label": "npm", "built": true, "syncs": true, "webhooks": false})
    );
    assert_eq!(
        of("POSTHOG"),
        json!({"kind": "POSTHOG", "label": "PostHog", "built": true, "syncs": true, "webhooks": true})
    );
    assert_eq!(
        of("LINKEDIN"),
        json!({"kind": "LINKEDIN", "label": "LinkedIn", "built": true, "syncs": false, "webhooks": true})
    );
    for kind in ["INTERCOM", "ZENDESK"] {
        assert_eq!(of(kind)["webhooks"], true, "{kind}");
    }
    for kind in [
        "STACKOVERFLOW",
        "REDDIT",
        "DISCORD",
        "TWITTER",
        "PYPI",
        "HUBSPOT",
        "SALESFORCE",
    ] {
        assert_eq!(of(kind)["built"], true, "{kind}");
        assert_eq!(of(kind)["syncs"], true, "{kind}");
        assert_eq!(of(kind)["webhooks"], false, "{kind}");
    }
    // Clearbit enriches accounts and contacts (on demand and nightly); it is never synced.
    assert_eq!(
        of("CLEARBIT"),
        json!({"kind": "CLEARBIT", "label": "Clearbit", "built": true, "syncs": false, "webhooks": false})
    );
    // Signed out: refused.
    let resp = app.graphql(query, json!({})).await;
    assert_code(&resp, "UNAUTHENTICATED");
}

#[tokio::test]
async fn only_admins_and_keys_with_the_scope_manage_integrations_and_credentials_stay_hidden() {
    let app = spawn_app().await;
    let admin = app.register("admin@vendor.io", "Vendor").await;
    let member = app.add_member(&admin, "member@vendor.io", "MEMBER").await;
    let input = json!({"input": {"kind": "GITHUB", "config": {"repos": ["a/b"]}, "credentials": {"token": "ghp_secret"}}});
    let resp = app.graphql_as(member.token(), CONNECT, input.clone()).await;
    assert_code(&resp, "FORBIDDEN");
    let weak = app.api_key(&admin, &["signals:write"]).await;
    assert_code(
        &app.graphql_with_key(&weak, CONNECT, input.clone()).await,
        "FORBIDDEN",
    );
    let key = app.api_key(&admin, &["integrations:manage"]).await;
    let resp = app.graphql_with_key(&key, CONNECT, input).await;
    let id = ok(&resp)["connectIntegration"]["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !resp.to_string().contains("ghp_secret"),
        "credentials are write-only"
    );
    let resp = app
        .graphql_with_key(&key, INTEGRATION, json!({"id": id}))
        .await;
    assert!(!resp.to_string().contains("ghp_secret"));
    assert_eq!(
        ok(&resp)["integration"]["config"],
        json!({"repos": ["a/b"]})
    );
    // Disconnecting stops it; a disconnected integration cannot sync.
    let resp = app
        .graphql_with_key(
            &key,
            "mutation($id: ID!) { disconnectIntegration(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&resp)["disconnectIntegration"]["status"], "DISCONNECTED");
    assert_code(
        &app.graphql_with_key(&key, SYNC, json!({"id": id})).await,
        "CONFLICT",
    );
}

#[tokio::test]
async fn integrations_and_their_runs_are_invisible_to_other_tenants() {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(2, 0, 0));
    let app = spawn_app_with(&[("GITHUB_API_URL", &gh.url)]).await;
    let (a, b) = app.two_tenants().await;
    let (id, _) = connect(&app, &a, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    let run = sync(&app, &a, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED");
    let resp = app
        .graphql_as(b.token(), "{ integrations { id } }", json!({}))
        .await;
    assert_eq!(ok(&resp)["integrations"], json!([]));
    assert_code(
        &app.graphql_as(b.token(), INTEGRATION, json!({"id": id}))
            .await,
        "NOT_FOUND",
    );
    assert_code(
        &app.graphql_as(b.token(), SYNC, json!({"id": id})).await,
        "NOT_FOUND",
    );
    assert_code(
        &app.graphql_as(
            b.token(),
            UPDATE,
            json!({"id": id, "input": {"config": {"repos": ["x/y"]}}}),
        )
        .await,
        "NOT_FOUND",
    );
    assert_code(
        &app.graphql_as(
            b.token(),
            "mutation($id: ID!) { disconnectIntegration(id: $id) { id } }",
            json!({"id": id}),
        )
        .await,
        "NOT_FOUND",
    );
    // B's own integration lists only its own runs.
    let (bid, _) = connect(&app, &b, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    let resp = app
        .graphql_as(b.token(), INTEGRATION, json!({"id": bid}))
        .await;
    assert_eq!(ok(&resp)["integration"]["runs"]["edges"], json!([]));
    // B's signals are B's: the same stars make B's own signals, A's are untouched.
    let run = sync(&app, &b, &bid, false).await;
    assert_eq!(run["signalsCreated"], 2);
    let resp = app
        .graphql_as(a.token(), INTEGRATION, json!({"id": id}))
        .await;
    assert_eq!(
        ok(&resp)["integration"]["runs"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Still the same for A after B's run; and A's state is untouched by B's attempts.
    assert_eq!(
        ok(&resp)["integration"]["config"],
        json!({"repos": ["acme/widget"]})
    );
}

#[tokio::test]
async fn cron_fan_outs_complete_and_none_is_skipped() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in [
        "hubspot-sync-scheduler",
        "salesforce-sync-scheduler",
        "weekly-digest-scheduler",
        "sync-all-npm",
    ] {
        let def = jobs::registry::find(name).unwrap();
        let id = domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
            .await
            .unwrap()
            .unwrap();
        ids.push((name, id));
    }
    for (name, id) in ids {
        let job = eventually(Duration::from_secs(20), "the job to finish", || async {
            domain::queue::get(&app.db, id)
                .await
                .unwrap()
                .filter(|j| j.finished_at.is_some())
        })
        .await;
        assert_eq!(
            job.state, "completed",
            "{name} is built: nothing due is a completed fan-out"
        );
    }
    let skipped: Vec<String> = domain::queue::list(
        &app.db,
        &domain::queue::JobFilter {
            state: Some("skipped".into()),
            ..Default::default()
        },
        &Default::default(),
    )
    .await
    .unwrap()
    .items
    .into_iter()
    .map(|j| j.name)
    .collect();
    assert_eq!(skipped, Vec::<String>::new());
}
