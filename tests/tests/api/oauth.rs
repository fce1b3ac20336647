//! OAuth login with GitHub and Google against a local fake provider: authorization code with
//! PKCE and a single-use state, a one-time exchange code, no tokens in URLs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use devsignal_tests::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use sha2::Digest;

#[derive(Clone, Default)]
struct Fake {
    /// code_challenge of the login in progress, as seen in the authorize URL.
    challenge: Arc<Mutex<Option<String>>>,
}

async fn token(
    State(fake): State<Fake>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let expected = fake.challenge.lock().unwrap().clone();
    if form.get("code").map(String::as_str) != Some("good-code") || Some(computed) != expected {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        );
    }
    (
        StatusCode::OK,
        Json(
            json!({"access_token": "provider-token", "token_type": "bearer", "scope": "user:email"}),
        ),
    )
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer provider-token")
}

async fn gh_user(headers: HeaderMap) -> impl IntoResponse {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    (
        StatusCode::OK,
        Json(json!({"id": 4242, "login": "octo", "name": "Octo Cat"})),
    )
}

async fn gh_emails(headers: HeaderMap) -> impl IntoResponse {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!([])));
    }
    (
        StatusCode::OK,
        Json(json!([
            {"email": "unverified@example.com", "primary": false, "verified": false},
            {"email": "Octo@Example.com", "primary": true, "verified": true}
        ])),
    )
}

async fn google_user(headers: HeaderMap) -> impl IntoResponse {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    (
        StatusCode::OK,
        Json(
            json!({"sub": "g-77", "email": "gina@example.com", "email_verified": true, "name": "Gina"}),
        ),
    )
}

/// Starts the fake provider; returns its base URL and its state.
async fn fake_provider() -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/login/oauth/access_token", post(token))
        .route("/token", post(token))
        .route("/user", get(gh_user))
        .route("/user/emails", get(gh_emails))
        .route("/v1/userinfo", get(google_user))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), fake)
}

async fn app_with_providers(base: &str) -> TestApp {
    spawn_app_with(&[
        ("FRONTEND_URL", "http://frontend.test"),
        ("GITHUB_CLIENT_ID", "gh-client"),
        ("GITHUB_CLIENT_SECRET", "gh-secret"),
        ("GOOGLE_CLIENT_ID", "g-client"),
        ("GOOGLE_CLIENT_SECRET", "g-secret"),
        ("GITHUB_OAUTH_BASE_URL", base),
        ("GITHUB_API_BASE_URL", base),
        ("GOOGLE_OAUTH_BASE_URL", base),
        ("GOOGLE_OAUTH_TOKEN_BASE_URL", base),
        ("GOOGLE_API_BASE_URL", base),
    ])
    .await
}

/// Starts a login; returns the authorize URL's query and records its PKCE challenge.
async fn start(app: &TestApp, fake: &Fake, provider: &str) -> (url::Url, HashMap<String, String>) {
    let resp = app.get(&format!("/api/v1/auth/oauth/{provider}")).await;
    assert_eq!(resp.status(), 302);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    *fake.challenge.lock().unwrap() = q.get("code_challenge").cloned();
    (location, q)
}

async fn callback(app: &TestApp, provider: &str, code: &str, state: &str) -> reqwest::Response {
    let mut url =
        url::Url::parse(&app.url(&format!("/api/v1/auth/oauth/{provider}/callback"))).unwrap();
    url.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    app.client.get(url.as_str()).send().await.unwrap()
}

#[tokio::test]
async fn github_login_runs_with_pkce_and_a_one_time_exchange_code() {
    let (base, fake) = fake_provider().await;
    let app = app_with_providers(&base).await;
    let (location, q) = start(&app, &fake, "github").await;
    assert!(
        location
            .as_str()
            .starts_with(&format!("{base}/login/oauth/authorize"))
    );
    assert_eq!(q["client_id"], "gh-client");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["redirect_uri"].ends_with("/api/v1/auth/oauth/github/callback"));
    assert!(q["scope"].contains("user:email"));
    let state = q["state"].clone();

    let resp = callback(&app, "github", "good-code", &state).await;
    assert_eq!(resp.status(), 302);
    let to = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        to.as_str()
            .starts_with("http://frontend.test/oauth/callback?"),
        "{to}"
    );
    let params: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(
        params.len(),
        1,
        "only a one-time code travels in the URL: {to}"
    );
    let code = params["code"].clone();
    assert_eq!(code.split('.').count(), 1, "not a JWT");

    let resp = app
        .post_json("/api/v1/auth/oauth/exchange", &json!({"code": code}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], "octo@example.com");
    assert_eq!(body["user"]["name"], "Octo Cat");
    assert_eq!(body["role"], "OWNER");
    let token = body["accessToken"].as_str().unwrap();
    let v = app
        .graphql_as(Some(token), "{ viewer { user { email } } }", json!({}))
        .await;
    assert_eq!(v["data"]["viewer"]["user"]["email"], "octo@example.com");

    // The exchange code works once; the state works once.
    let again = app
        .post_json("/api/v1/auth/oauth/exchange", &json!({"code": code}))
        .await;
    assert_eq!(again.status(), 400);
    let replay = callback(&app, "github", "good-code", &state).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"]["fields"][0]["field"], "state");

    // A second login finds the same user.
    let (_, q) = start(&app, &fake, "github").await;
    let resp = callback(&app, "github", "good-code", &q["state"]).await;
    let to = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code: String = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body: Value = app
        .post_json("/api/v1/auth/oauth/exchange", &json!({"code": code}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["user"]["email"], "octo@example.com");
    let orgs = app
        .graphql_as(
            body["accessToken"].as_str(),
            "{ organizations { organization { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(orgs["data"]["organizations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_states_and_codes_are_refused() {
    let (base, fake) = fake_provider().await;
    let app = app_with_providers(&base).await;
    let resp = callback(&app, "github", "good-code", "made-up-state").await;
    assert_eq!(resp.status(), 400);
    // A state issued for GitHub does not complete a Google login.
    let (_, q) = start(&app, &fake, "github").await;
    let resp = callback(&app, "google", "good-code", &q["state"]).await;
    assert_eq!(resp.status(), 400);
    // A code the provider rejects.
    let (_, q) = start(&app, &fake, "github").await;
    let resp = callback(&app, "github", "bad-code", &q["state"]).await;
    assert_eq!(resp.status(), 502);
    let resp = app
        .post_json("/api/v1/auth/oauth/exchange", &json!({"code": "nope"}))
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn google_login_links_an_existing_account_by_verified_email() {
    let (base, fake) = fake_provider().await;
    let app = app_with_providers(&base).await;
    let gina = app.register("gina@example.com", "Gina's").await;
    let (location, q) = start(&app, &fake, "google").await;
    assert!(
        location
            .as_str()
            .starts_with(&format!("{base}/o/oauth2/v2/auth"))
    );
    let resp = callback(&app, "google", "good-code", &q["state"]).await;
    assert_eq!(resp.status(), 302);
    let to = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code: String = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body: Value = app
        .post_json("/api/v1/auth/oauth/exchange", &json!({"code": code}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["user"]["id"], gina.user_id.as_str());
    assert_eq!(body["organization"]["id"], gina.organization_id.as_str());
}

#[tokio::test]
async fn unconfigured_or_unknown_providers_are_404() {
    let app = spawn_app().await;
    for p in ["github", "google", "myspace"] {
        let resp = app.get(&format!("/api/v1/auth/oauth/{p}")).await;
        assert_eq!(resp.status(), 404, "{p}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
}
