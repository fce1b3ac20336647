//! The dashboard (the React app in `frontend/`) and the offline GraphiQL, served from the binary.
//!
//! `build.rs` builds `frontend/dist` when Node.js is present and embeds it here; without Node it
//! embeds an empty folder and `/` answers a short page saying how to get the dashboard. Every
//! `GET` that no other route matched lands here: a file of the build is answered as is (hashed
//! files under `assets/` cached for a year, everything else revalidated), any other page path gets
//! `index.html` so the app's router can draw it (history fallback). Paths under the API prefixes
//! and other methods keep the JSON 404 of the API.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "$DEVSIGNAL_DASHBOARD_DIR"]
struct Dist;

/// Only our own origin: scripts and styles come from the binary, the API from the same host.
/// Inline style attributes are allowed (the component library sets CSS variables with them);
/// inline scripts are not.
pub const APP_CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
     connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'none'";

/// Cache policy of a fingerprinted asset (its name changes when its content does).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Prefixes that belong to the API and never fall back to the app.
const API_PREFIXES: [&str; 5] = ["/api/", "/v1/", "/health/", "/metrics/", "/graphql"];

/// Whether this binary was built with the dashboard.
pub fn is_built() -> bool {
    Dist::get("index.html").is_some()
}

/// The router's fallback: the dashboard for page and asset `GET`s, the API's JSON 404 otherwise.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let is_read = method == Method::GET || method == Method::HEAD;
    if !is_read || path == "/api" || API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return ApiError::not_found(format!("no route for {method} {path}")).into_response();
    }
    let file = path.trim_start_matches('/');
    if !file.is_empty() && file != "index.html" {
        if let Some(found) = Dist::get(file) {
            let cache = if file.starts_with("assets/") {
                IMMUTABLE
            } else {
                "no-cache"
            };
            return asset(found, cache, &headers);
        }
        // A missing fingerprinted file is an error, not a page: an old tab asking for a
        // bundle from a previous build must see a 404, not HTML with a 200.
        if file.starts_with("assets/") {
            return ApiError::not_found(format!("no asset {path}")).into_response();
        }
    }
    page("index.html", &headers)
}

/// `GET /graphiql`: GraphiQL bundled with the dashboard (no CDN). A binary built without Node.js
/// falls back to async-graphql's page, which loads GraphiQL from a CDN. Off with `GRAPHIQL=false`
/// (the default in production).
pub async fn graphiql(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    headers: HeaderMap,
) -> Response {
    if !state.config.graphiql {
        return ApiError::not_found("GraphiQL is off on this server (GRAPHIQL)").into_response();
    }
    if Dist::get("graphiql.html").is_some() {
        page("graphiql.html", &headers)
    } else {
        cdn_graphiql()
    }
}

/// An HTML entry point: never cached (it names the current build's assets).
fn page(name: &str, headers: &HeaderMap) -> Response {
    match Dist::get(name) {
        Some(found) => asset(found, "no-cache", headers),
        None => not_built(),
    }
}

fn asset(file: rust_embed::EmbeddedFile, cache: &'static str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut resp = Response::new(Body::from(file.data.into_owned()));
        if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
            resp.headers_mut().insert(header::CONTENT_TYPE, mime);
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(APP_CSP),
    );
    resp
}

/// What `/` says when the binary was built without the dashboard.
fn not_built() -> Response {
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>DevSignal</title></head><body style=\"font-family:sans-serif;max-width:40rem;margin:3rem auto\">\
        <h1>DevSignal is running</h1>\
        <p>This binary was built without the dashboard: Node.js 20 or newer was not found (or \
        <code>DEVSIGNAL_SKIP_FRONTEND=1</code> was set) when it was compiled.</p>\
        <p>To get the dashboard, install Node.js 20+ and build again with \
        <code>cargo build --release</code>; the build runs <code>npm ci</code> and \
        <code>npm run build</code> in <code>frontend/</code> and embeds the result.</p>\
        <p>The API works without it: GraphQL at <code>/api/v1/graphql</code>, \
        GraphiQL at <a href=\"/graphiql\">/graphiql</a>, health at <a href=\"/health\">/health</a>.</p>\
        </body></html>";
    let mut resp = (StatusCode::OK, axum::response::Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    resp
}

/// async-graphql's GraphiQL page, for a binary built without the dashboard: it loads GraphiQL
/// from a CDN.
fn cdn_graphiql() -> Response {
    let page = async_graphql::http::GraphiQLSource::build()
        .endpoint(crate::GRAPHQL_PATH)
        .subscription_endpoint(crate::GRAPHQL_WS_PATH)
        .title("DevSignal GraphiQL")
        .finish();
    let mut resp = axum::response::Html(page).into_response();
    // The page loads GraphiQL from a CDN and runs inline scripts; the API's strict policy would
    // block both.
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self' https://unpkg.com; script-src 'self' 'unsafe-inline' https://unpkg.com; style-src 'self' 'unsafe-inline' https://unpkg.com; connect-src 'self' ws: wss:; img-src 'self' data: https:; frame-ancestors 'none'",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn without_the_app_the_root_says_how_to_get_it() {
        let resp = not_built();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("Node.js 20"), "{body}");
        assert!(body.contains("cargo build"), "{body}");
        assert!(body.contains("/graphiql"), "{body}");
    }

    #[tokio::test]
    async fn api_prefixes_never_fall_back_to_the_app() {
        for path in ["/api/v1/x", "/api", "/v1/track-nope", "/graphql"] {
            let resp = fallback(Method::GET, path.parse().unwrap(), HeaderMap::new()).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let resp = fallback(
            Method::DELETE,
            "/accounts".parse().unwrap(),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = fallback(
            Method::GET,
            "/accounts/1".parse().unwrap(),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}
