//! Browser sessions: with `X-Session-Cookie: 1` the auth endpoints keep the refresh token in an
//! httpOnly, Secure, SameSite=Strict cookie scoped to `/api/v1/auth` (never in the body), read it
//! on refresh and logout, and clear it on logout. And an invitee without an account signs up
//! straight into the inviting organization.

use serde_json::{Value, json};

use devsignal_tests::{TEST_PASSWORD, TestApp, assert_code, spawn_app};

const MODE: &str = "x-session-cookie";

/// The value of the `devsignal_refresh` cookie a response sets, with the whole header.
fn set_cookie(resp: &reqwest::Response) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("devsignal_refresh="))
        .map(|v| {
            let value = v
                .trim_start_matches("devsignal_refresh=")
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            (value, v.to_owned())
        })
}

async fn post(app: &TestApp, path: &str, cookie: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).header(MODE, "1").json(&body);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("other=1; devsignal_refresh={c}"));
    }
    req.send().await.unwrap()
}

async fn viewer_email(app: &TestApp, token: &str) -> Value {
    let resp = app
        .graphql_as(
            Some(token),
            "{ viewer { user { email } organization { name } role } }",
            json!({}),
        )
        .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    resp["data"]["viewer"].clone()
}

#[tokio::test]
async fn cookie_mode_keeps_the_refresh_token_out_of_the_body_and_rotates_it() {
    let app = spawn_app().await;
    let resp = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"email": "ada@acme.io", "password": TEST_PASSWORD, "name": "Ada", "organizationName": "Acme"}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let (first, header) = set_cookie(&resp).expect("register sets the refresh cookie");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=604800",
    ] {
        assert!(header.contains(attr), "{attr} missing from {header}");
    }
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let hint = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("devsignal_session="))
        .expect("the readable session hint")
        .to_owned();
    assert!(
        hint.starts_with("devsignal_session=1;") && !hint.contains("HttpOnly"),
        "{hint}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["refreshToken"], "",
        "the body must not carry the refresh token"
    );
    let access = body["accessToken"].as_str().unwrap();
    assert_eq!(
        viewer_email(&app, access).await["user"]["email"],
        "ada@acme.io"
    );

    // Refresh with the cookie alone (an empty body, as the app sends it).
    let resp = post(&app, "/api/v1/auth/refresh", Some(&first), json!({})).await;
    assert_eq!(resp.status(), 200);
    let (second, _) = set_cookie(&resp).expect("refresh sets the rotated cookie");
    assert_ne!(second, first);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["refreshToken"], "");
    let access = body["accessToken"].as_str().unwrap();
    assert_eq!(
        viewer_email(&app, access).await["organization"]["name"],
        "Acme"
    );

    // The rotated-away token is refused (and revokes that session family).
    let reused = post(&app, "/api/v1/auth/refresh", Some(&first), json!({})).await;
    assert_eq!(reused.status(), 401);
    assert_eq!(
        set_cookie(&reused).map(|c| c.0).as_deref(),
        Some(""),
        "a refused token's cookie is cleared"
    );

    // Login in cookie mode; logout with the cookie clears it and ends that session.
    let resp = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@acme.io", "password": TEST_PASSWORD}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (session, _) = set_cookie(&resp).expect("login sets the cookie");
    let out = post(&app, "/api/v1/auth/logout", Some(&session), json!({})).await;
    assert_eq!(out.status(), 204);
    let (cleared, header) = set_cookie(&out).expect("logout clears the cookie");
    assert_eq!(cleared, "");
    assert!(header.contains("Max-Age=0"), "{header}");
    let after = post(&app, "/api/v1/auth/refresh", Some(&session), json!({})).await;
    assert_eq!(after.status(), 401);

    // No cookie and no token: a clear field error, not a 500.
    let none = post(&app, "/api/v1/auth/refresh", None, json!({})).await;
    assert_eq!(none.status(), 400);
    let body: Value = none.json().await.unwrap();
    assert_eq!(
        body["error"]["fields"][0]["field"], "refreshToken",
        "{body}"
    );
}

#[tokio::test]
async fn clients_without_the_header_see_the_endpoints_unchanged() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "bob@acme.io", "password": TEST_PASSWORD, "name": "Bob", "organizationName": "Acme"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert!(set_cookie(&resp).is_none());
    let body: Value = resp.json().await.unwrap();
    let refresh = body["refreshToken"].as_str().unwrap();
    assert!(!refresh.is_empty());
    // A cookie is not read unless the client asks for cookie mode.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("devsignal_refresh={refresh}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .post_json("/api/v1/auth/refresh", &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(!body["refreshToken"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn an_invitee_without_an_account_signs_up_into_the_inviting_organization() {
    let app = spawn_app().await;
    let (owner, other) = app.two_tenants().await;
    let invite = |email: &str, role: &str| {
        format!("mutation {{ inviteMember(email: \"{email}\", role: {role}) {{ id }} }}")
    };
    let resp = app
        .graphql_as(owner.token(), &invite("new@acme.io", "VIEWER"), json!({}))
        .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    let token = app.mailed_token("new@acme.io").await;
    let mail = app
        .sent_mail()
        .into_iter()
        .rev()
        .find(|m| m.contains("new@acme.io"))
        .unwrap()
        // Quoted-printable: soft line breaks and `=` escaped.
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        mail.contains(&format!("/invitations/accept?token={token}")),
        "the email links to the dashboard's invitation page: {mail}"
    );

    // Another address cannot use the invitation; the token is not spent by the attempt.
    let resp = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"email": "someone@else.io", "password": TEST_PASSWORD, "name": "X", "invitationToken": token}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["fields"][0]["field"], "email", "{body}");

    let resp = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"email": "New@Acme.io", "password": TEST_PASSWORD, "name": "Newton", "invitationToken": token}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    assert!(set_cookie(&resp).is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["organization"]["id"], owner.organization_id.as_str());
    assert_eq!(body["role"], "VIEWER");
    let access = body["accessToken"].as_str().unwrap();

    // No organization of their own, and nothing of the other tenant.
    let orgs = app
        .graphql_as(
            Some(access),
            "{ organizations { organization { id } role } }",
            json!({}),
        )
        .await;
    let list = orgs["data"]["organizations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{orgs}");
    assert_eq!(
        list[0]["organization"]["id"],
        owner.organization_id.as_str()
    );
    assert_ne!(
        list[0]["organization"]["id"],
        other.organization_id.as_str()
    );
    // The VIEWER role holds: writes are refused.
    let write = app
        .graphql_as(
            Some(access),
            "mutation { createAccount(input: {name: \"Nope\"}) { id } }",
            json!({}),
        )
        .await;
    assert_code(&write, "FORBIDDEN");

    // The invitation is spent.
    let again = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"email": "new2@acme.io", "password": TEST_PASSWORD, "name": "N", "invitationToken": token}),
    )
    .await;
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(
        body["error"]["fields"][0]["field"], "invitationToken",
        "{body}"
    );

    // The same through GraphQL, for integrators: an existing account is a CONFLICT on email.
    let resp = app
        .graphql_as(owner.token(), &invite(&other.email, "MEMBER"), json!({}))
        .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    let token = app.mailed_token(&other.email).await;
    let resp = app
        .graphql(
            "mutation($input: RegisterInput!) { register(input: $input) { organization { id } } }",
            json!({"input": {"email": other.email, "password": TEST_PASSWORD, "name": "B", "invitationToken": token}}),
        )
        .await;
    assert_code(&resp, "CONFLICT");
}
