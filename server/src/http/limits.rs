//! The rate-limit middleware: finds the client IP (peer address, or `X-Forwarded-For` with
//! `TRUST_PROXY`), stores it in the request extensions as [`ClientIp`], counts the request against
//! every limiter of its path, and answers `429` with `Retry-After`, `RateLimit-*` headers and a
//! JSON error (GraphQL-shaped on the GraphQL endpoint) when one is exceeded.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::auth::ClientIp;
use crate::auth::ratelimit::{Decision, Limiter};
use crate::state::AppState;

fn set_headers(resp: &mut Response, d: &Decision) {
    let h = resp.headers_mut();
    let num =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    h.insert("ratelimit-limit", num(d.limit.into()));
    h.insert("ratelimit-remaining", num(d.remaining.into()));
    h.insert("ratelimit-reset", num(d.reset_secs));
    h.insert(
        "ratelimit-policy",
        HeaderValue::from_str(&format!("{};w=60", d.limit))
            .unwrap_or(HeaderValue::from_static("0")),
    );
    if !d.allowed {
        h.insert(header::RETRY_AFTER, num(d.reset_secs));
    }
}

/// The 429 answer for a decision.
pub fn too_many(d: &Decision, graphql: bool) -> Response {
    let message = format!(
        "too many requests ({} limiter: {} per minute); retry in {} s",
        d.limiter.name(),
        d.limit,
        d.reset_secs
    );
    let mut resp = if graphql {
        let body = serde_json::json!({
            "errors": [{
                "message": message,
                "extensions": {"code": domain::Code::RateLimited.as_str(), "retryAfter": d.reset_secs}
            }]
        });
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
    } else {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            domain::Code::RateLimited,
            message,
        );
        e.retry_after_secs = Some(d.reset_secs);
        e.into_response()
    };
    set_headers(&mut resp, d);
    resp
}

pub async fn rate_limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = crate::auth::client_ip(&state.config, req.headers(), peer);
    let client = ClientIp(ip, crate::auth::presented_key_prefix(req.headers()));
    req.extensions_mut().insert(client.clone());
    let path = req.uri().path().to_owned();
    let limiters = if req.method() == axum::http::Method::OPTIONS {
        Vec::new()
    } else {
        Limiter::for_path(&path)
    };
    let mut shown: Option<Decision> = None;
    for limiter in limiters {
        let d = state.identity.limiter.hit(limiter, &client).await;
        if d.exempt {
            // On RATE_LIMIT_ALLOWLIST: no limiter applies, and no limit is shown.
            break;
        }
        if !d.allowed {
            tracing::warn!(
                limiter = limiter.name(),
                ip = %client.0,
                route = %path,
                apiKey = client.1.as_deref().unwrap_or(""),
                limit = d.limit,
                "rate limit exceeded"
            );
            return too_many(&d, path == crate::GRAPHQL_PATH);
        }
        // Show the tightest limiter's numbers.
        if shown.is_none_or(|s| d.remaining < s.remaining) {
            shown = Some(d);
        }
    }
    let mut resp = next.run(req).await;
    if let Some(d) = shown {
        set_headers(&mut resp, &d);
    }
    resp
}
