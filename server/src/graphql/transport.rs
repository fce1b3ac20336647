//! GraphQL over HTTP (`POST /api/v1/graphql`), over WebSocket (`/api/v1/graphql/ws`, both the
//! `graphql-transport-ws` and the legacy `graphql-ws` subprotocols), and the GraphiQL page.

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Actor;

use super::AppSchema;
use super::limits::OverWebSocket;
use super::socket::{ConnectionExecutor, Connections};
use crate::auth::ratelimit::{Decision, Limiter};
use crate::auth::{self, ClientIp};
use crate::state::AppState;

pub use crate::{GRAPHQL_PATH, GRAPHQL_WS_PATH};

/// Executes a single request or a batch. A body that is not a GraphQL request answers 400 with a
/// GraphQL-shaped error, so clients can read it the same way as any other.
///
/// Credentials (`Authorization: Bearer <access token | dsk_ key>` or `X-API-Key`) become the
/// request's `Option<Actor>`; invalid credentials answer 401 with code `UNAUTHENTICATED`.
///
/// A batch holds at most `GRAPHQL_MAX_BATCH` operations and each counts against the `api` rate
/// limit. The request runs under a deadline (`GRAPHQL_TIMEOUT_MS`, then `TIMEOUT`) and its
/// response is at most `GRAPHQL_MAX_RESPONSE_BYTES` (else `LIMIT_EXCEEDED`). Execution runs
/// inside this handler's future, never in a spawned task, so when the client disconnects the
/// server drops the future and the work stops at its next await.
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
            return refusal(
                None,
                StatusCode::BAD_REQUEST,
                domain::Code::BadRequest,
                format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    let limits = state.config.graphql_limits;
    let batch = match &request {
        async_graphql::BatchRequest::Single(_) => None,
        async_graphql::BatchRequest::Batch(requests) => Some(requests.len()),
    };
    let operations = batch.unwrap_or(1);
    if operations > limits.max_batch {
        return refusal(
            None,
            StatusCode::BAD_REQUEST,
            domain::Code::BadRequest,
            format!(
                "the batch holds {operations} operations; at most {} are allowed (GRAPHQL_MAX_BATCH)",
                limits.max_batch
            ),
        );
    }
    if operations > 1 {
        // The rate-limit middleware counted the request once; each further operation counts too.
        let extra = u32::try_from(operations - 1).unwrap_or(u32::MAX);
        let d = state
            .identity
            .limiter
            .hit_n(Limiter::Api, &ip.0, extra)
            .await;
        if !d.allowed {
            tracing::warn!(limiter = d.limiter.name(), "rate limit exceeded by a batch");
            return rate_limited(&d);
        }
    }
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
    let response = match tokio::time::timeout(limits.timeout, schema.execute_batch(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeoutMs = limits.timeout.as_millis() as u64,
                "GraphQL request stopped at its deadline"
            );
            return refusal(
                batch,
                StatusCode::OK,
                domain::Code::Timeout,
                format!(
                    "the request ran longer than {} ms and was stopped (GRAPHQL_TIMEOUT_MS);                          ask for less, or page through it",
                    limits.timeout.as_millis()
                ),
            );
        }
    };
    let unavailable = only_unavailable(&response);
    let (mut parts, body) = GraphQLResponse::from(response).into_response().into_parts();
    if unavailable {
        // Nothing ran because the database is away: say so in HTTP too, so clients and load
        // balancers retry.
        parts.status = StatusCode::SERVICE_UNAVAILABLE;
        parts.headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(domain::error::UNAVAILABLE_RETRY_SECS),
        );
    }
    match axum::body::to_bytes(body, limits.max_response_bytes).await {
        Ok(bytes) => Response::from_parts(parts, axum::body::Body::from(bytes)),
        Err(_) => {
            tracing::warn!(
                max = limits.max_response_bytes,
                "GraphQL response over the size limit refused"
            );
            refusal(
                batch,
                StatusCode::OK,
                domain::Code::LimitExceeded,
                format!(
                    "the response would be larger than {} bytes (GRAPHQL_MAX_RESPONSE_BYTES): \
                     ask for fewer rows or fields",
                    limits.max_response_bytes
                ),
            )
        }
    }
}

/// A GraphQL-shaped error for a request refused or stopped as a whole: one error object, or one
/// per operation of a batch of `batch` operations.
fn refusal(
    batch: Option<usize>,
    status: StatusCode,
    code: domain::Code,
    message: String,
) -> Response {
    let one = serde_json::json!({
        "errors": [{"message": message, "extensions": {"code": code.as_str()}}]
    });
    let body = match batch {
        None => one,
        Some(n) => serde_json::Value::Array(vec![one; n]),
    };
    (status, axum::Json(body)).into_response()
}

/// `429` for a batch over the rate limit, shaped like the middleware's.
fn rate_limited(d: &Decision) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": format!(
                "too many requests ({} limiter: {} per minute); retry in {} s",
                d.limiter.name(), d.limit, d.reset_secs
            ),
            "extensions": {"code": domain::Code::RateLimited.as_str(), "retryAfter": d.reset_secs}
        }]
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&d.reset_secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// True when a (single) response has no data and every error is `UNAVAILABLE`.
fn only_unavailable(response: &async_graphql::BatchResponse) -> bool {
    let async_graphql::BatchResponse::Single(r) = response else {
        return false;
    };
    let unavailable = domain::Code::Unavailable.as_str();
    r.data == async_graphql::Value::Null
        && !r.errors.is_empty()
        && r.errors.iter().all(|e| {
            e.extensions.as_ref().and_then(|x| x.get("code"))
                == Some(&async_graphql::Value::from(unavailable))
        })
}

/// The request failed before execution (e.g. authenticating it): `status`, unless the database
/// is unavailable (then `503` with `Retry-After`).
fn graphql_error(status: StatusCode, e: &domain::Error) -> Response {
    let mut extensions = serde_json::json!({"code": e.code()});
    let retry = e.retry_after_secs();
    if let Some(secs) = retry {
        extensions["retryAfter"] = secs.into();
    }
    let body = serde_json::json!({
        "errors": [{"message": e.public_message(), "extensions": extensions}]
    });
    let status = if e.kind() == domain::Code::Unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        status
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// GraphQL over WebSocket. The `connection_init` payload may carry
/// `{"Authorization": "Bearer <access token | dsk_ key>"}` (or `X-API-Key`); invalid credentials
/// refuse the connection. A client address holds at most `WS_MAX_CONNECTIONS` connections at
/// once (more answer `429 RATE_LIMITED` before the upgrade); a connection runs at most
/// `WS_MAX_SUBSCRIPTIONS` operations at once, and each of its operations counts against the `api`
/// rate limit. A connection without credentials reaches only what needs none (`serverTime`,
/// `serverInfo`): every other field asks for an actor.
#[allow(clippy::too_many_arguments)]
pub async fn websocket(
    State(state): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    Extension(connections): Extension<Connections>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limits = state.config.graphql_limits;
    let Some(slot) = connections.open(&ip.0, limits.ws_max_connections) else {
        tracing::warn!(
            max = limits.ws_max_connections,
            "WebSocket connection over the per-client limit refused"
        );
        let body = serde_json::json!({
            "errors": [{
                "message": format!(
                    "this client already has {} WebSocket connections open; at most {} are \
                     allowed at once (WS_MAX_CONNECTIONS): close one first",
                    limits.ws_max_connections, limits.ws_max_connections
                ),
                "extensions": {"code": domain::Code::RateLimited.as_str(), "retryAfter": 1}
            }]
        });
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let meta = auth::meta(&ip, &headers);
    let max_connections = limits.ws_max_connections;
    let executor = ConnectionExecutor::new(
        schema,
        limits.ws_max_subscriptions,
        limits.max_response_bytes,
    );
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| async move {
            GraphQLWebSocket::new(stream, executor, protocol)
                .on_connection_init(move |payload| async move {
                    let actor = ws_actor(&state, &payload)
                        .await
                        .map_err(|e| async_graphql::Error::new(e.public_message()))?;
                    let mut data = Data::default();
                    // A credential, too, holds at most WS_MAX_CONNECTIONS connections, from
                    // however many addresses; the place is freed when the connection ends.
                    if let Some(actor) = &actor {
                        let Some(slot) = connections.open(&credential_key(actor), max_connections)
                        else {
                            tracing::warn!(
                                max = max_connections,
                                "WebSocket connection over the per-credential limit refused"
                            );
                            return Err(async_graphql::Error::new(format!(
                                "these credentials already have {max_connections} WebSocket \
                                 connections open; at most {max_connections} are allowed at once \
                                 (WS_MAX_CONNECTIONS): close one first"
                            )));
                        };
                        data.insert(slot);
                    }
                    data.insert(super::crm::loaders::loaders(
                        state.db.clone(),
                        actor.clone(),
                    ));
                    data.insert(actor);
                    data.insert(meta);
                    data.insert(ip);
                    data.insert(OverWebSocket);
                    Ok(data)
                })
                .serve()
                .await;
            drop(slot);
        })
}

/// What a credential's WebSocket connections are counted under (beside client addresses).
fn credential_key(actor: &Actor) -> String {
    match &actor.principal {
        domain::Principal::User { user_id, .. } => format!("user:{user_id}"),
        domain::Principal::ApiKey { key_id, .. } => format!("key:{key_id}"),
        domain::Principal::Integration { integration_id } => {
            format!("integration:{integration_id}")
        }
    }
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
