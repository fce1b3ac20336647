//! GraphQL over HTTP (`POST /api/v1/graphql`), over WebSocket (`/api/v1/graphql/ws`, both the
//! `graphql-transport-ws` and the legacy `graphql-ws` subprotocols), and the GraphiQL page.

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLResponse;
use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::graphql::AppSchema;

pub const GRAPHQL_PATH: &str = "/api/v1/graphql";
pub const GRAPHQL_WS_PATH: &str = "/api/v1/graphql/ws";

/// Executes a single request or a batch. A body that is not a GraphQL request answers 400 with a
/// GraphQL-shaped error, so clients can read it the same way as any other.
pub async fn execute(Extension(schema): Extension<AppSchema>, body: Bytes) -> Response {
    let request: async_graphql::BatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let body = serde_json::json!({
                "errors": [{
                    "message": format!("the body is not a GraphQL request: {e}"),
                    "extensions": {"code": "BAD_REQUEST"}
                }]
            });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    GraphQLResponse::from(schema.execute_batch(request).await).into_response()
}

pub async fn graphiql() -> Response {
    let page = GraphiQLSource::build()
        .endpoint(GRAPHQL_PATH)
        .subscription_endpoint(GRAPHQL_WS_PATH)
        .title("DevSignal GraphiQL")
        .finish();
    let mut resp = Html(page).into_response();
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
