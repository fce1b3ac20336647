//! GraphQL over HTTP (`POST /api/v1/graphql`), over WebSocket (`/api/v1/graphql/ws`, both the
//! `graphql-transport-ws` and the legacy `graphql-ws` subprotocols), and the GraphiQL page.

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::Actor;

use super::AppSchema;
use crate::auth::{self, ClientIp};
use crate::state::AppState;

pub use crate::{GRAPHQL_PATH, GRAPHQL_WS_PATH};

/// Executes a single request or a batch. A body that is not a GraphQL request answers 400 with a
/// GraphQL-shaped error, so clients can read it the same way as any other.
///
/// Credentials (`Authorization: Bearer <access token | dsk_ key>` or `X-API-Key`) become the
/// request's `Option<Actor>`; invalid credentials answer 401 with code `UNAUTHENTICATED`.
pub async fn execute(
    State(state): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: async_graphql::BatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let body = serde_json::json!({
                "errors": [{
                    "message": format!("the body is not a GraphQL request: {e}"),
                    "extensions": {"code": domain::Code::BadRequest.as_str()}
                }]
            });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let actor = match state.identity.authenticate(&headers).await {
        Ok(actor) => actor,
        Err(e) => return graphql_error(StatusCode::UNAUTHORIZED, &e),
    };
    let loaders = super::crm::loaders::loaders(state.db.clone(), actor.clone());
    let request = request
        .data(actor)
        .data(loaders)
        .data(auth::meta(&ip, &headers))
        .data(ip);
    GraphQLResponse::from(schema.execute_batch(request).await).into_response()
}

fn graphql_error(status: StatusCode, e: &domain::Error) -> Response {
    let body = serde_json::json!({
        "errors": [{"message": e.public_message(), "extensions": {"code": e.code()}}]
    });
    (status, axum::Json(body)).into_response()
}

/// GraphQL over WebSocket. The `connection_init` payload may carry
/// `{"Authorization": "Bearer <access token | dsk_ key>"}` (or `X-API-Key`); invalid credentials
/// refuse the connection.
pub async fn websocket(
    State(state): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let meta = auth::meta(&ip, &headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let actor = ws_actor(&state, &payload)
                        .await
                        .map_err(|e| async_graphql::Error::new(e.public_message()))?;
                    let mut data = Data::default();
                    data.insert(super::crm::loaders::loaders(
                        state.db.clone(),
                        actor.clone(),
                    ));
                    data.insert(actor);
                    data.insert(meta);
                    data.insert(ip);
                    Ok(data)
                })
                .serve()
        })
}

/// The credentials of a `connection_init` payload, in the shapes clients use: `Authorization`
/// (`Bearer …`), `X-API-Key` / `apiKey`, a bare `token` / `authToken` / `accessToken`, each at
/// the top level or inside a `headers` object (Apollo-style clients), names in any case.
async fn ws_actor(
    state: &AppState,
    payload: &serde_json::Value,
) -> Result<Option<Actor>, domain::Error> {
    let field = |names: &[&str]| {
        let top = payload.as_object();
        let headers = top
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("headers")))
            .and_then(|(_, v)| v.as_object());
        names.iter().find_map(|n| {
            [top, headers].into_iter().flatten().find_map(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .and_then(|(_, v)| v.as_str().map(str::to_owned))
            })
        })
    };
    let token = if let Some(key) = field(&["x-api-key", "apiKey"]) {
        key
    } else if let Some(value) = field(&["authorization"]) {
        auth::bearer(&value)?
    } else if let Some(value) = field(&["token", "authToken", "accessToken"]) {
        let value = value.trim();
        value
            .strip_prefix("Bearer ")
            .unwrap_or(value)
            .trim()
            .to_owned()
    } else {
        return Ok(None);
    };
    state.identity.authenticate_token(&token).await.map(Some)
}

/// `GET /api/v1/graphql` from a browser: the playground lives at `/graphiql`.
pub async fn to_graphiql() -> Response {
    axum::response::Redirect::to(crate::GRAPHIQL_PATH).into_response()
}
