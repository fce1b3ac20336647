//! Refresh tokens for browsers, kept out of JavaScript.
//!
//! A client that sends `X-Session-Cookie: 1` to the `/api/v1/auth/*` endpoints gets the refresh
//! token as an httpOnly, `Secure`, `SameSite=Strict` cookie scoped to `/api/v1/auth` instead of in
//! the JSON body (the body's `refreshToken` is empty). On `refresh` and `logout` without a
//! `refreshToken` in the body, the cookie's token is used; `logout` clears the cookie. The access
//! token stays in the JSON body (the app keeps it in memory). A refused refresh clears the
//! cookie too. Next to it, a readable `devsignal_session=1` cookie (no secret) tells the app that
//! a session may exist. Clients without the header see the endpoints exactly as before.
//!
//! This works on the bodies, so the handlers and the same `domain` flows serve both kinds of
//! client; auth bodies are small.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::state::AppState;

/// The request header that asks for cookie mode.
pub const MODE_HEADER: &str = "x-session-cookie";
/// The cookie's name.
pub const COOKIE: &str = "devsignal_refresh";
/// A companion cookie that JavaScript may read: it holds no secret, only tells the app that a
/// session cookie exists, so a signed-out page does not ask `/refresh` for nothing.
pub const HINT_COOKIE: &str = "devsignal_session";
/// The only path the browser sends the cookie to.
pub const COOKIE_PATH: &str = "/api/v1/auth";
/// Auth bodies are small; anything larger is not a sign-in answer.
const MAX_AUTH_BODY: usize = 64 * 1024;

/// Whether the request asks for the refresh token in a cookie.
pub fn wants_cookie(headers: &HeaderMap) -> bool {
    headers
        .get(MODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true"))
}

/// The refresh token from the request's `Cookie` header.
pub fn read_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn set_cookie(token: &str, max_age_secs: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path={COOKIE_PATH}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict"
    ))
    .ok()
}

fn set_hint(on: bool, max_age_secs: u64) -> Option<HeaderValue> {
    let (value, age) = if on { ("1", max_age_secs) } else { ("", 0) };
    HeaderValue::from_str(&format!(
        "{HINT_COOKIE}={value}; Path=/; Max-Age={age}; Secure; SameSite=Strict"
    ))
    .ok()
}

/// Middleware on the auth routes: moves refresh tokens between the JSON bodies and the cookie.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let max_age_secs = state.config.jwt_refresh_expires_in.as_secs();
    if !wants_cookie(req.headers()) || req.method() != Method::POST {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    let reads_token = path.ends_with("/refresh") || path.ends_with("/logout");
    let ends_session = path.ends_with("/logout");
    let req = if reads_token {
        match with_cookie_token(req).await {
            Ok(req) => req,
            Err(resp) => return resp,
        }
    } else {
        req
    };
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    // A session that ended, or a refresh that failed, leaves no cookie behind.
    let refused = reads_token && parts.status == axum::http::StatusCode::UNAUTHORIZED;
    if ends_session || refused {
        for clear in [set_cookie("", 0), set_hint(false, 0)]
            .into_iter()
            .flatten()
        {
            parts.headers.append(header::SET_COOKIE, clear);
        }
        return Response::from_parts(parts, body);
    }
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_AUTH_BODY).await else {
        return ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            domain::Code::Internal,
            "internal error",
        )
        .into_response();
    };
    let mut json: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let token = json
        .get("refreshToken")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(cookie) = set_cookie(&token, max_age_secs) {
        parts.headers.append(header::SET_COOKIE, cookie);
        if let Some(hint) = set_hint(true, max_age_secs) {
            parts.headers.append(header::SET_COOKIE, hint);
        }
        json["refreshToken"] = serde_json::Value::String(String::new());
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, Body::from(json.to_string()))
}

/// Puts the cookie's refresh token into a body that has none.
async fn with_cookie_token(req: Request) -> Result<Request, Response> {
    let Some(cookie) = read_cookie(req.headers()) else {
        return Ok(req);
    };
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_AUTH_BODY)
        .await
        .map_err(|_| ApiError::bad_request("the request body is too large").into_response())?;
    let mut json: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::bad_request("the request body is not valid JSON").into_response()
        })?
    };
    let has_token = json
        .get("refreshToken")
        .and_then(|t| t.as_str())
        .is_some_and(|t| !t.trim().is_empty());
    if !has_token && let Some(obj) = json.as_object_mut() {
        obj.insert("refreshToken".into(), serde_json::Value::String(cookie));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Request::from_parts(parts, Body::from(json.to_string())))
}
