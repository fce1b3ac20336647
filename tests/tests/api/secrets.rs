//! Rotating `ENCRYPTION_KEY` as an operator would, with the server running: restart on the new
//! key with the old one as `ENCRYPTION_KEY_PREVIOUS`, run `devsignal secrets rotate` while the
//! server keeps writing secrets, check, then drop the old key — every secret still works.

use devsignal_tests::connectors::{connect, ok, sync};
use devsignal_tests::fakes::github::FakeGitHub;
use std::time::Duration;

use devsignal_tests::{Recorder, Session, TestApp, TestDatabase, eventually, spawn_on, test_vars};
use domain::secrets::{Cipher, SealedUnder};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;

use crate::cli::run;

const CREATE: &str = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id secret } }";
const SEND_TEST: &str = "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { id } }";
const ROTATE_WEBHOOK: &str = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }";

async fn endpoint(app: &TestApp, s: &Session, to: &str, n: usize) -> (String, String) {
    let r = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"url": format!("{to}/hook{n}"), "eventTypes": ["deal.deleted"]}}),
        )
        .await;
    let e = &ok(&r)["createWebhookEndpoint"];
    (
        e["id"].as_str().unwrap().to_owned(),
        e["secret"].as_str().unwrap().to_owned(),
    )
}

/// The endpoint's signing secret as stored, opened with `cipher`.
async fn secret_of(app: &TestApp, cipher: &Cipher, id: &str) -> String {
    let e = entity::webhook_endpoints::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    cipher.open(&e.secret_ciphertext).unwrap()
}

/// A test delivery reaches the receiver: the server opened the endpoint's secret to sign it.
async fn delivered(app: &TestApp, s: &Session, rx: &Recorder, id: &str, n: usize) {
    let r = app
        .graphql_as(s.token(), SEND_TEST, json!({"id": id}))
        .await;
    ok(&r);
    eventually(
        Duration::from_secs(20),
        "the test delivery to arrive",
        || async {
            rx.received()
                .iter()
                .any(|(_, path, body)| {
                    path == &format!("/hook{n}")
                        && String::from_utf8_lossy(body).contains("webhook.test")
                })
                .then_some(())
        },
    )
    .await;
}

/// Every sealed value in the database, as stored.
async fn sealed_values(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for e in entity::webhook_endpoints::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
    {
        out.push(e.secret_ciphertext);
        out.extend(e.previous_secret_ciphertext);
    }
    for i in entity::integrations::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
    {
        out.push(i.webhook_secret_ciphertext);
        out.extend(i.credentials_ciphertext);
    }
    for c in entity::integration_cursors::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
    {
        if let Some(token) = c.state["token"].as_str() {
            out.push(token.to_owned());
        }
    }
    out
}

#[tokio::test]
async fn encryption_key_rotates_online_and_every_secret_keeps_working() {
    let (old, new) = (
        server::config::random_hex(32),
        server::config::random_hex(32),
    );
    let rx = Recorder::start().await;
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(3, 0, 0));
    gh.with(|d| d.token = Some("ghp_good".into()));
    let test_db = TestDatabase::new().await;
    let base = test_vars(&test_db, &[("GITHUB_API_URL", &gh.url)]);
    let with = |pairs: &[(&str, &str)]| {
        let mut vars = base.clone();
        vars.remove("ENCRYPTION_KEY_PREVIOUS");
        for (k, v) in pairs {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        vars
    };
    let cli_env = |key: &str, previous: Option<&str>| {
        let mut env = vec![
            ("DATABASE_URL".to_owned(), base["DATABASE_URL"].clone()),
            ("DATA_DIR".to_owned(), base["DATA_DIR"].clone()),
            ("ENCRYPTION_KEY".to_owned(), key.to_owned()),
        ];
        if let Some(p) = previous {
            env.push(("ENCRYPTION_KEY_PREVIOUS".to_owned(), p.to_owned()));
        }
        env
    };
    async fn cli(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(args, &env).await
    }

    // Secrets sealed under the old key: webhook endpoints (one with a previous secret after
    // its own rotation), an integration's credentials and webhook secret, a cached token.
    let mut app = spawn_on(test_db, with(&[("ENCRYPTION_KEY", &old)])).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let mut endpoints = Vec::new();
    for n in 0..3 {
        endpoints.push(endpoint(&app, &s, &rx.address, n).await);
    }
    let r = app
        .graphql_as(s.token(), ROTATE_WEBHOOK, json!({"id": endpoints[0].0}))
        .await;
    endpoints[0].1 = ok(&r)["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (integration, _) = connect(
        &app,
        &s,
        "GITHUB",
        json!({"repos": ["acme/widget"]}),
        Some(json!({"token": "ghp_good"})),
    )
    .await;
    let old_cipher = Cipher::from_hex(&old).unwrap();
    entity::integration_cursors::ActiveModel {
        integration_id: Set(integration.parse().unwrap()),
        organization_id: Set(s.organization_id.parse().unwrap()),
        resource: Set("token".into()),
        state: Set(json!({"token": old_cipher.seal("cached-access-token").unwrap(), "until": "2030-01-01T00:00:00Z"})),
        etag: Set(None),
        last_modified: Set(None),
        updated_at: Set(chrono::Utc::now()),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let before = sealed_values(&app).await;
    assert!(before.len() >= 7, "{before:?}");

    // Check under the new key alone names what it cannot open, and fails.
    let (code, out, err) = cli(&["secrets", "check"], &cli_env(&new, None)).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("open under neither"), "{err}");
    assert!(err.contains("webhook_endpoints.secret"), "{err}");

    // Restart on the new key with the old one as previous: every secret still opens.
    let db = std::mem::replace(&mut app.test_db, TestDatabase::sqlite());
    app.shutdown().await.unwrap();
    let rotating = with(&[("ENCRYPTION_KEY", &new), ("ENCRYPTION_KEY_PREVIOUS", &old)]);
    let app = spawn_on(db, rotating).await;
    delivered(&app, &s, &rx, &endpoints[1].0, 1).await;
    let (code, out, err) = cli(&["secrets", "check"], &cli_env(&new, Some(&old))).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("still sealed under ENCRYPTION_KEY_PREVIOUS"),
        "{out}"
    );

    // Rotate while the server keeps creating endpoints (sealed under the new key).
    let writer = {
        let (address, token, to) = (
            app.address.clone(),
            s.access_token.clone(),
            rx.address.clone(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut made = 0;
            for n in 100..130 {
                let r: serde_json::Value = client
                    .post(format!("{address}/api/v1/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({"query": CREATE, "variables": {"input": {"url": format!("{to}/hook{n}"), "eventTypes": ["deal.deleted"]}}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(r.get("errors").is_none(), "{r}");
                made += 1;
            }
            made
        })
    };
    let env = cli_env(&new, Some(&old));
    let (code, out, err) = cli(&["secrets", "rotate"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("re-sealed"), "{out}");
    assert!(
        out.contains("every stored secret is sealed under ENCRYPTION_KEY"),
        "{out}"
    );
    assert_eq!(writer.await.unwrap(), 30);

    // Every stored value now opens under the new key alone, and none was lost.
    let rotated = Cipher::from_hex(&new)
        .unwrap()
        .with_previous_hex(&old)
        .unwrap();
    let after = sealed_values(&app).await;
    assert_eq!(after.len(), before.len() + 30);
    for sealed in &after {
        assert_eq!(rotated.open_under(sealed).unwrap().1, SealedUnder::Current);
    }
    for b in &before {
        assert!(!after.contains(b), "a value under the old key was left");
    }

    // A second run is harmless (resumable): nothing left to re-seal.
    let (code, out, err) = cli(&["secrets", "rotate"], &cli_env(&new, Some(&old))).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.lines()
            .all(|l| !l.contains("re-sealed") || l.contains("re-sealed      0")),
        "{out}"
    );

    // Drop the old key: the server still reads every secret, and the integration still signs
    // in to GitHub with its credentials.
    let mut app = app;
    let db = std::mem::replace(&mut app.test_db, TestDatabase::sqlite());
    app.shutdown().await.unwrap();
    let app = spawn_on(db, with(&[("ENCRYPTION_KEY", &new)])).await;
    let new_only = Cipher::from_hex(&new).unwrap();
    for (id, secret) in &endpoints {
        assert_eq!(&secret_of(&app, &new_only, id).await, secret);
    }
    delivered(&app, &s, &rx, &endpoints[0].0, 0).await;
    delivered(&app, &s, &rx, &endpoints[2].0, 2).await;
    let run = sync(&app, &s, &integration, true).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let (code, out, err) = cli(&["secrets", "check"], &cli_env(&new, None)).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("every stored secret is sealed under ENCRYPTION_KEY"),
        "{out}"
    );
}

#[tokio::test]
async fn the_previous_key_must_be_a_key_other_than_the_current_one() {
    let key = server::config::random_hex(32);
    let (code, _, err) = run(
        &["secrets", "check"],
        &[
            ("ENCRYPTION_KEY", &key),
            ("ENCRYPTION_KEY_PREVIOUS", &key.to_uppercase()),
        ],
    )
    .await;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("ENCRYPTION_KEY_PREVIOUS") && err.contains("must differ"),
        "{err}"
    );
    let (code, _, err) = run(
        &["secrets", "check"],
        &[("ENCRYPTION_KEY", &key), ("ENCRYPTION_KEY_PREVIOUS", "abc")],
    )
    .await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("64 hex characters"), "{err}");
}
