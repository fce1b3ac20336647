//! Accounts, sessions and tokens: register, login, refresh (rotation and reuse detection),
//! logout, JWT rules, password reset — over REST and GraphQL.

use base64::Engine;
use devsignal_tests::{TEST_PASSWORD, error_code, spawn_app, spawn_app_with};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const VIEWER: &str = "{ viewer { user { id email name } organization { id name } role } }";

#[tokio::test]
async fn register_creates_an_owner_an_organization_and_a_session() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "  Ada@Example.COM ", "password": "long enough", "name": "Ada", "organizationName": "Analytical"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["name"], "Ada");
    assert_eq!(body["organization"]["name"], "Analytical");
    assert_eq!(body["role"], "OWNER");
    let token = body["accessToken"].as_str().unwrap();
    assert!(body["refreshToken"].is_string());
    let viewer = app.graphql_as(Some(token), VIEWER, json!({})).await;
    assert!(viewer.get("errors").is_none(), "{viewer}");
    assert_eq!(viewer["data"]["viewer"]["user"]["email"], "ada@example.com");
    assert_eq!(
        viewer["data"]["viewer"]["organization"]["name"],
        "Analytical"
    );
    assert_eq!(viewer["data"]["viewer"]["role"], "OWNER");
    let org = app
        .graphql_as(Some(token), "{ organization { id name } }", json!({}))
        .await;
    assert_eq!(
        org["data"]["organization"]["id"],
        body["organization"]["id"]
    );

    // The stored hash is argon2id, never the password.
    let row = sea_orm::ConnectionTrait::query_one_raw(
        &app.db,
        sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT password_hash FROM users",
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let hash: String = row.try_get_by_index(0).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[tokio::test]
async fn register_refuses_taken_emails_weak_passwords_and_bad_emails() {
    let app = spawn_app().await;
    app.register("taken@example.com", "One").await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "TAKEN@example.com ", "password": "long enough", "name": "X", "organizationName": "Two"}),
        )
        .await;
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CONFLICT");
    assert_eq!(body["error"]["fields"][0]["field"], "email");

    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "new@example.com", "password": "short", "name": "X", "organizationName": "Two"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["error"]["fields"][0]["field"], "password");

    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "not-an-email", "password": "long enough", "name": "X", "organizationName": "Two"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["fields"][0]["field"], "email");

    // GraphQL says the same.
    let resp = app
        .graphql(
            "mutation { register(input: {email: \"taken@example.com\", password: \"long enough\", name: \"X\", organizationName: \"Y\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("CONFLICT"));
    let resp = app
        .graphql(
            "mutation { register(input: {email: \"x@example.com\", password: \"short\", name: \"X\", organizationName: \"Y\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("BAD_USER_INPUT"));
    assert_eq!(
        resp["errors"][0]["extensions"]["fields"][0]["field"],
        "password"
    );
}

#[tokio::test]
async fn login_is_neutral_about_which_part_was_wrong() {
    let app = spawn_app().await;
    app.register("ada@example.com", "One").await;
    let wrong_password = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "ada@example.com", "password": "wrong password"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown.status(), 401);
    let a: Value = wrong_password.json().await.unwrap();
    let b: Value = unknown.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["error"]["code"], "UNAUTHENTICATED");

    let ok = app.login(" ADA@example.com", TEST_PASSWORD).await;
    assert!(!ok.access_token.is_empty());

    let gql = app
        .graphql(
            "mutation { login(email: \"ada@example.com\", password: \"nope nope\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&gql), Some("UNAUTHENTICATED"));
    let gql = app
        .graphql(
            &format!("mutation {{ login(email: \"ada@example.com\", password: \"{TEST_PASSWORD}\") {{ accessToken user {{ email }} role }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(gql["data"]["login"]["user"]["email"], "ada@example.com");
    assert_eq!(gql["data"]["login"]["role"], "OWNER");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": s.refresh_token}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let second: Value = resp.json().await.unwrap();
    let second_refresh = second["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, s.refresh_token);
    let second_access = second["accessToken"].as_str().unwrap().to_owned();
    let v = app
        .graphql_as(Some(&second_access), VIEWER, json!({}))
        .await;
    assert!(v.get("errors").is_none(), "{v}");

    // The old refresh token stops working, and presenting it revokes the family...
    let reuse = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": s.refresh_token}),
        )
        .await;
    assert_eq!(reuse.status(), 401);
    // ...so the newest refresh token and access token of that session are dead too.
    let after = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": second_refresh}),
        )
        .await;
    assert_eq!(after.status(), 401);
    let v = app
        .graphql_as(Some(&second_access), VIEWER, json!({}))
        .await;
    assert_eq!(error_code(&v), Some("UNAUTHENTICATED"));

    // Another device's session is untouched.
    let other = app.login("ada@example.com", TEST_PASSWORD).await;
    let gql = app
        .graphql(
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }",
            json!({"t": other.refresh_token}),
        )
        .await;
    assert!(gql.get("errors").is_none(), "{gql}");
    let replay = app
        .graphql(
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({"t": other.refresh_token}),
        )
        .await;
    assert_eq!(error_code(&replay), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn logout_ends_only_that_session() {
    let app = spawn_app().await;
    let phone = app.register("ada@example.com", "One").await;
    let laptop = app.login("ada@example.com", TEST_PASSWORD).await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&phone.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let v = app.graphql_as(phone.token(), VIEWER, json!({})).await;
    assert_eq!(error_code(&v), Some("UNAUTHENTICATED"));
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": phone.refresh_token}),
        )
        .await;
    assert_eq!(r.status(), 401);
    let v = app.graphql_as(laptop.token(), VIEWER, json!({})).await;
    assert!(v.get("errors").is_none(), "{v}");

    // GraphQL logout, and logout by refresh token.
    let out = app
        .graphql_as(laptop.token(), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true);
    let v = app.graphql_as(laptop.token(), VIEWER, json!({})).await;
    assert_eq!(error_code(&v), Some("UNAUTHENTICATED"));
    let tablet = app.login("ada@example.com", TEST_PASSWORD).await;
    let resp = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refreshToken": tablet.refresh_token}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let v = app.graphql_as(tablet.token(), VIEWER, json!({})).await;
    assert_eq!(error_code(&v), Some("UNAUTHENTICATED"));
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn tokens_are_hs256_with_separate_secrets_and_the_documented_claims() {
    let app = spawn_app_with(&[("JWT_EXPIRES_IN", "10m"), ("JWT_REFRESH_EXPIRES_IN", "2d")]).await;
    let s = app.register("ada@example.com", "One").await;
    let config = &app.state.config;
    let access_secret = config
        .jwt_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let refresh_secret = config
        .jwt_refresh_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();

    let mut v = Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    let access = jsonwebtoken::decode::<Value>(
        &s.access_token,
        &DecodingKey::from_secret(access_secret.as_bytes()).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(access.header.alg, Algorithm::HS256);
    let c = access.claims;
    assert_eq!(c["sub"], s.user_id.as_str());
    assert_eq!(c["org"], s.organization_id.as_str());
    assert_eq!(c["role"], "OWNER");
    assert!(c["sid"].is_string());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    // The access secret does not verify the refresh token, and vice versa.
    assert!(
        jsonwebtoken::decode::<Value>(
            &s.refresh_token,
            &DecodingKey::from_secret(access_secret.as_bytes()).unwrap(),
            &v
        )
        .is_err()
    );
    let refresh = jsonwebtoken::decode::<Value>(
        &s.refresh_token,
        &DecodingKey::from_secret(refresh_secret.as_bytes()).unwrap(),
        &v,
    )
    .unwrap();
    let rc = refresh.claims;
    assert_eq!(
        rc["exp"].as_i64().unwrap() - rc["iat"].as_i64().unwrap(),
        2 * 86400
    );
    // A refresh token is not an access token.
    let resp = app
        .graphql_as(Some(&s.refresh_token), VIEWER, json!({}))
        .await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn other_algorithms_forgeries_and_expired_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let secret = app
        .state
        .config
        .jwt_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let claims = claims_of(&s.access_token);

    // Same secret, same claims, but HS512: refused.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap();
    // alg "none".
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // Signed with another secret.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"not the server's secret at all").unwrap(),
    )
    .unwrap();
    // Expired an hour ago.
    let mut old = claims.clone();
    let now = chrono::Utc::now().timestamp();
    old["iat"] = json!(now - 7200);
    old["exp"] = json!(now - 3600);
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &old,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap();
    for (what, token) in [
        ("HS512", hs512),
        ("none", none),
        ("forged", forged),
        ("expired", expired),
        ("garbage", "abc.def.ghi".to_owned()),
    ] {
        let resp = app.graphql_as(Some(&token), VIEWER, json!({})).await;
        assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{what}: {resp}");
    }
    // No credentials at all: the viewer needs them.
    let resp = app.graphql(VIEWER, json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn an_expired_token_says_it_expired() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let secret = app
        .state
        .config
        .jwt_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let sign = |claims: &Value, secret: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    };
    let mut old = claims_of(&s.access_token);
    let now = chrono::Utc::now().timestamp();
    old["iat"] = json!(now - 7200);
    old["exp"] = json!(now - 3600);
    let expired = sign(&old, secret.as_bytes());
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .bearer_auth(&expired)
        .json(&json!({"query": VIEWER}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
    assert!(message.contains("/api/v1/auth/refresh"), "{message}");
    // Over WebSocket too: the connection is refused with the same reason (the legacy protocol
    // says it in a `connection_error` message, graphql-transport-ws in its close frame).
    let mut ws = app.ws("graphql-ws").await;
    let refused = ws
        .init(json!({"Authorization": format!("Bearer {expired}")}))
        .await;
    assert_eq!(refused["type"], "connection_error", "{refused}");
    assert!(refused.to_string().contains("expired"), "{refused}");
    // Only our own tokens can be told expired: an expired forgery is merely invalid.
    let forged = sign(&old, b"not the server's secret at all");
    let resp = app.graphql_as(Some(&forged), VIEWER, json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{resp}");
    let message = resp["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("expired"), "{message}");
}

#[tokio::test]
async fn tokens_signed_with_the_previous_secret_still_work() {
    let old_secret = server::config::random_hex(64);
    // Sign a token the way the old deployment did, for a session the new one knows.
    let new_secret = server::config::random_hex(64);
    let app = spawn_app_with(&[
        ("JWT_SECRET", &new_secret),
        ("JWT_SECRET_PREVIOUS", &old_secret),
    ])
    .await;
    let s = app.register("ada@example.com", "One").await;
    let claims = claims_of(&s.access_token);
    let signed_by_old = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(old_secret.as_bytes()).unwrap(),
    )
    .unwrap();
    let resp = app
        .graphql_as(Some(&signed_by_old), VIEWER, json!({}))
        .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    // Without JWT_SECRET_PREVIOUS the same token is refused.
    let strict = spawn_app_with(&[("JWT_SECRET", &new_secret)]).await;
    let s2 = strict.register("bob@example.com", "Two").await;
    let mut c2 = claims_of(&s2.access_token);
    c2["typ"] = json!("access");
    let t2 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &c2,
        &EncodingKey::from_secret(old_secret.as_bytes()).unwrap(),
    )
    .unwrap();
    let resp = strict.graphql_as(Some(&t2), VIEWER, json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn password_reset_emails_a_single_use_token_and_ends_all_sessions() {
    let app = spawn_app().await;
    let s = app.register("ada@example.com", "One").await;
    let known = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "ADA@example.com"}),
        )
        .await;
    assert_eq!(known.status(), 202);
    let known: Value = known.json().await.unwrap();
    let unknown = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(unknown.status(), 202);
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(known, unknown);

    let token = app.mailed_token("ada@example.com").await;
    assert_eq!(app.sent_mail().len(), 1, "no mail for an unknown address");
    let weak = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(weak.status(), 400);
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Single use.
    let again = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "yet another password"}),
        )
        .await;
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["fields"][0]["field"], "token");
    // Every session ended; the new password works, the old does not.
    let v = app.graphql_as(s.token(), VIEWER, json!({})).await;
    assert_eq!(error_code(&v), Some("UNAUTHENTICATED"));
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": s.refresh_token}),
        )
        .await;
    assert_eq!(r.status(), 401);
    let old = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "ada@example.com", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(old.status(), 401);
    app.login("ada@example.com", "a brand new password").await;

    // The GraphQL twins.
    let r = app
        .graphql(
            "mutation { requestPasswordReset(email: \"ada@example.com\") }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["requestPasswordReset"], true);
    let token2 = devsignal_tests::eventually(
        std::time::Duration::from_secs(10),
        "a second reset email",
        || async {
            let t = app.mailed_token("ada@example.com").await;
            (t != token).then_some(t)
        },
    )
    .await;
    let r = app
        .graphql(
            "mutation($t: String!) { resetPassword(token: $t, password: \"third password!\") }",
            json!({"t": token2}),
        )
        .await;
    assert_eq!(r["data"]["resetPassword"], true, "{r}");
    app.login("ada@example.com", "third password!").await;
}

#[tokio::test]
async fn an_expired_reset_token_is_refused() {
    let app = spawn_app().await;
    app.register("ada@example.com", "One").await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "ada@example.com"}),
    )
    .await;
    let token = app.mailed_token("ada@example.com").await;
    // Age the token past its hour.
    sea_orm::ConnectionTrait::execute_raw(
        &app.db,
        sea_orm::Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE auth_tokens SET expires_at = $1",
            [sea_orm::Value::from(
                chrono::Utc::now() - chrono::Duration::minutes(1),
            )],
        ),
    )
    .await
    .unwrap();
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
}

/// A reset with a bad token answers without hashing the new password: with every hashing slot
/// of the process held, it still answers at once (hashing first, it would wait for a slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_with_a_bad_token_answers_without_hashing() {
    let app = spawn_app().await;
    app.register("ada@example.com", "One").await;
    let slots = domain::secrets::hashing_slots();
    let all = u32::try_from(domain::secrets::password_hash_concurrency()).unwrap();
    let held = slots.acquire_many(all).await.unwrap();
    let started = std::time::Instant::now();
    let rest = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        app.post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": "not-a-token", "password": "a brand new password"}),
        ),
    )
    .await
    .expect("a reset with a bad token waited for a password-hashing slot");
    assert_eq!(rest.status(), 400);
    let gql = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        app.graphql(
            "mutation { resetPassword(token: \"not-a-token\", password: \"a brand new password\") }",
            json!({}),
        ),
    )
    .await
    .expect("a GraphQL reset with a bad token waited for a password-hashing slot");
    assert_eq!(error_code(&gql), Some("BAD_USER_INPUT"), "{gql}");
    println!(
        "two resets with a bad token, every hashing slot held: answered in {:?}",
        started.elapsed()
    );
    drop(held);
}

/// Logins hash on blocking threads, a bounded number at once (the unit test in
/// `domain::secrets` shows the hash runs off the async thread): with every hashing slot of the
/// process held, ten logins wait for one while `/health` keeps answering; released, every login
/// goes through. No timing is compared: a login that finished without a slot, or a `/health`
/// that waited behind the logins, fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_leave_health_answering() {
    let app = spawn_app().await;
    app.register("ada@example.com", "One").await;
    let slots = domain::secrets::hashing_slots();
    let all = u32::try_from(domain::secrets::password_hash_concurrency()).unwrap();
    let held = slots.acquire_many(all).await.unwrap();
    let logins: Vec<_> = (0..10)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/api/v1/auth/login"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"email": "ada@example.com", "password": devsignal_tests::TEST_PASSWORD}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for _ in 0..5 {
        let health = tokio::time::timeout(std::time::Duration::from_secs(20), app.get("/health"))
            .await
            .expect("/health waited behind the logins");
        assert_eq!(health.status(), 200);
    }
    assert!(
        logins.iter().all(|l| !l.is_finished()),
        "a login finished without a hashing slot"
    );
    drop(held);
    for l in logins {
        assert_eq!(l.await.unwrap(), 200);
    }
}
