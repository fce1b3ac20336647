//! API keys: created once, stored hashed, listed, revoked, scoped, expiring; accepted as
//! `Authorization: Bearer dsk_…` and `X-API-Key`; `lastUsedAt`; the CLI revocation.

use std::time::Duration;

use devsignal_tests::{devsignal_bin, error_code, eventually, spawn_app};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id name prefix scopes createdAt lastUsedAt expiresAt revokedAt } } }";
const LIST: &str = "{ apiKeys { id name prefix scopes createdAt lastUsedAt expiresAt revokedAt } }";

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_listed_by_prefix() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let resp = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"name": "CI", "scopes": ["signals:write", "accounts:read"]}}),
        )
        .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    let created = &resp["data"]["createApiKey"];
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("dsk_"));
    assert!(key.len() >= 4 + 32, "{key}");
    assert!(key[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    let api_key = &created["apiKey"];
    assert_eq!(api_key["name"], "CI");
    assert!(key.starts_with(api_key["prefix"].as_str().unwrap()));
    assert!(api_key["prefix"].as_str().unwrap().len() < key.len());
    assert_eq!(api_key["scopes"], json!(["signals:write", "accounts:read"]));
    assert!(api_key["lastUsedAt"].is_null());
    assert!(api_key["revokedAt"].is_null());

    // The key itself is nowhere in the database.
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &app.db,
        sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT key_hash, prefix FROM api_keys",
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let hash: String = rows[0].try_get_by_index(0).unwrap();
    assert_ne!(hash, key);
    assert!(!hash.contains(&key[4..]));

    let list = app.graphql_as(s.token(), LIST, json!({})).await;
    assert_eq!(list["data"]["apiKeys"][0]["id"], api_key["id"]);
    assert!(
        list.to_string().find(key).is_none(),
        "the full key is never listed"
    );
}

#[tokio::test]
async fn keys_authenticate_by_bearer_and_x_api_key_for_their_organization_only() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let key = app.api_key(&s, &["admin"]).await;
    let q = "{ viewer { user { id } organization { id } role scopes } }";
    let by_bearer = app.graphql_as(Some(&key), q, json!({})).await;
    assert!(by_bearer.get("errors").is_none(), "{by_bearer}");
    assert_eq!(
        by_bearer["data"]["viewer"]["organization"]["id"],
        s.organization_id.as_str()
    );
    assert!(by_bearer["data"]["viewer"]["user"].is_null());
    assert_eq!(by_bearer["data"]["viewer"]["scopes"], json!(["admin"]));
    let by_header = app.graphql_with_key(&key, q, json!({})).await;
    assert_eq!(by_header["data"], by_bearer["data"]);
    // An unknown key is 401.
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("x-api-key", "dsk_notarealkeynotarealkeynotarealkey0000")
        .json(&json!({"query": q}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn scopes_limit_what_a_key_may_do() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let narrow = app.api_key(&s, &["signals:write"]).await;
    for q in [LIST, "{ auditLog { totalCount } }"] {
        let resp = app.graphql_as(Some(&narrow), q, json!({})).await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{q}: {resp}");
    }
    let resp = app
        .graphql_as(
            Some(&narrow),
            CREATE,
            json!({"input": {"name": "escalate", "scopes": ["admin"]}}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    // Keys cannot act as a person.
    let resp = app
        .graphql_as(Some(&narrow), "{ organizations { role } }", json!({}))
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    // The admin scope may manage keys.
    let admin = app.api_key(&s, &["admin"]).await;
    let resp = app.graphql_as(Some(&admin), LIST, json!({})).await;
    assert!(resp.get("errors").is_none(), "{resp}");
    // Unknown scopes are refused at creation.
    let resp = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"name": "x", "scopes": ["everything"]}}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("BAD_USER_INPUT"));
    assert_eq!(
        resp["errors"][0]["extensions"]["fields"][0]["field"],
        "scopes"
    );
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let resp = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"name": "k", "scopes": ["admin"]}}),
        )
        .await;
    let key = resp["data"]["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = resp["data"]["createApiKey"]["apiKey"]["id"].clone();
    let q = "{ organization { id } }";
    assert!(
        app.graphql_with_key(&key, q, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    let revoked = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }",
            json!({"id": id}),
        )
        .await;
    assert!(
        revoked["data"]["revokeApiKey"]["revokedAt"].is_string(),
        "{revoked}"
    );
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("x-api-key", &key)
        .json(&json!({"query": q}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Expiry in the past is refused at creation; a key that has expired stops working.
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let resp = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"name": "old", "scopes": ["admin"], "expiresAt": past}}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("BAD_USER_INPUT"));
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let resp = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"name": "soon", "scopes": ["admin"], "expiresAt": soon}}),
        )
        .await;
    let key = resp["data"]["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(resp["data"]["createApiKey"]["apiKey"]["expiresAt"].is_string());
    assert!(
        app.graphql_with_key(&key, q, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    sea_orm::ConnectionTrait::execute_raw(
        &app.db,
        sea_orm::Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE api_keys SET expires_at = $1 WHERE name = 'soon'",
            [sea_orm::Value::from(
                chrono::Utc::now() - chrono::Duration::seconds(1),
            )],
        ),
    )
    .await
    .unwrap();
    let resp = app.graphql_with_key(&key, q, json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn last_used_at_is_current_without_a_write_per_request() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let key = app.api_key(&s, &["admin"]).await;
    let before = chrono::Utc::now();
    for _ in 0..5 {
        let r = app
            .graphql_with_key(&key, "{ organization { id } }", json!({}))
            .await;
        assert!(r.get("errors").is_none());
    }
    let list = app.graphql_as(s.token(), LIST, json!({})).await;
    let shown = list["data"]["apiKeys"][0]["lastUsedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = chrono::DateTime::parse_from_rfc3339(&shown).unwrap();
    assert!(shown >= before - chrono::Duration::seconds(1));
    // The first use is written through (once); later uses within the minute are not.
    let stored = eventually(
        Duration::from_secs(10),
        "lastUsedAt written once",
        || async {
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &app.db,
                sea_orm::Statement::from_string(
                    app.db.get_database_backend(),
                    "SELECT last_used_at FROM api_keys",
                ),
            )
            .await
            .unwrap()
            .unwrap();
            row.try_get_by_index::<Option<chrono::DateTime<chrono::Utc>>>(0)
                .unwrap()
        },
    )
    .await;
    // Five uses, one write: the stored time is the first use, older than the one shown.
    assert!(
        stored < shown.with_timezone(&chrono::Utc),
        "{stored} vs {shown}"
    );
}

#[tokio::test]
async fn the_cli_revokes_a_key_by_prefix() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let key = app.api_key(&s, &["admin"]).await;
    let list = app.graphql_as(s.token(), LIST, json!({})).await;
    let prefix = list["data"]["apiKeys"][0]["prefix"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cli(&app, &["api-keys", "revoke", &prefix]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&prefix));
    let resp = app
        .graphql_with_key(&key, "{ organization { id } }", json!({}))
        .await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
    // Unknown prefixes fail loudly.
    let out = cli(&app, &["api-keys", "revoke", "dsk_nothere0"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no live API key"));
}

/// `devsignal` as an operator runs it on the app's database.
async fn cli(app: &devsignal_tests::TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(devsignal_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.test_db.url)
        .env("DATA_DIR", app.test_db.dir.path())
        .env("NODE_ENV", "test")
        .output()
        .await
        .unwrap()
}

/// `devsignal api-keys create --org … --name … --scopes …`.
async fn create_key(
    app: &devsignal_tests::TestApp,
    org: &str,
    name: &str,
    scopes: &str,
) -> std::process::Output {
    let args = [
        "api-keys", "create", "--org", org, "--name", name, "--scopes", scopes,
    ];
    cli(app, &args).await
}

#[tokio::test]
async fn the_cli_creates_a_key_for_an_organization() {
    let app = spawn_app().await;
    let s = app.register("cli-keys@example.com", "Acme Labs").await;
    let out = create_key(&app, "Acme Labs", "ci", "signals:write,accounts:read").await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let key = stdout.trim().to_owned();
    assert!(
        key.starts_with("dsk_") && !key.contains(char::is_whitespace),
        "{stdout}"
    );
    assert!(stderr.contains(&s.organization_id) && stderr.contains("shown only this once"));
    assert!(!stderr.contains(&key), "the key is printed once");

    // It works within its scopes and is listed (by prefix, never whole) to the organization.
    let r = app
        .client
        .post(app.url("/api/v1/signals"))
        .bearer_auth(&key)
        .json(&json!({"type": "cli_key", "actor": {"email": "jo@acme.io"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .graphql_with_key(&key, "{ accounts { totalCount } }", json!({}))
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = app
        .graphql_with_key(&key, "{ members { user { email } } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
    let list = app.graphql_as(s.token(), LIST, json!({})).await;
    assert_eq!(list["data"]["apiKeys"][0]["name"], "ci");
    assert_eq!(
        list["data"]["apiKeys"][0]["scopes"],
        json!(["signals:write", "accounts:read"])
    );

    // By id too; mistakes are named.
    let out = create_key(&app, &s.organization_id, "by id", "admin").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = create_key(&app, "Acme Labs", "x", "contacts:*").await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--scopes: unknown scope \"contacts:*\""),
        "{err}"
    );
    let out = create_key(&app, "Nobody", "x", "admin").await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no organization has the id or name \"Nobody\""),
        "{err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "{err}");
}
