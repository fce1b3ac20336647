//! GraphQL over HTTP (`POST` and `GET /api/v1/graphql`, following the GraphQL over HTTP spec:
//! `application/graphql-response+json` or `application/json` by `Accept`), and over WebSocket
//! (`/api/v1/graphql/ws`, both the `graphql-transport-ws` and the legacy `graphql-ws`
//! subprotocols).

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use domain::Actor;

use super::AppSchema;
use super::limits::OverWebSocket;
use super::socket::{ConnectionExecutor, Connections};
use crate::auth::ratelimit::{Decision, Limiter};
use crate::auth::{self, ClientIp};
use crate::state::AppState;

pub use crate::{GRAPHQL_PATH, GRAPHQL_WS_PATH};

/// The media types a GraphQL response is sent as (GraphQL over HTTP, "Body").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`: the legacy type. Every GraphQL response is `200` (a few whole-request
    /// refusals aside: 400 not a GraphQL request, 401, 415, 429, 503).
    Json,
    /// `application/graphql-response+json`: a request that could not be executed (parse,
    /// validation or variable errors) answers `400` without a `data` entry.
    GraphqlResponseJson,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::GraphqlResponseJson => "application/graphql-response+json",
        }
    }

    /// `application/graphql-response+json` when `Accept` names it with a weight at least
    /// `application/json`'s; otherwise `application/json` (no `Accept`, `*/*`, legacy clients).
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let (mut graphql, mut json) = (0.0_f32, 0.0_f32);
        let ranges = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        for range in ranges {
            let mut parts = range.split(';');
            let kind = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if kind.eq_ignore_ascii_case(MediaType::GraphqlResponseJson.as_str()) {
                graphql = graphql.max(q);
            } else if kind.eq_ignore_ascii_case(MediaType::Json.as_str()) {
                json = json.max(q);
            }
        }
        if graphql > 0.0 && graphql >= json {
            MediaType::GraphqlResponseJson
        } else {
            MediaType::Json
        }
    }
}

/// `POST /api/v1/graphql`: executes a single request or a batch, a JSON body
/// (`Content-Type: application/json`; anything else answers `415 UNSUPPORTED_MEDIA_TYPE`). A body
/// that is not a GraphQL request answers 400 with a GraphQL-shaped error, so clients can read it
/// the same way as any other.
///
/// Credentials (`Authorization: Bearer <access token | dsk_ key>` or `X-API-Key`) become the
/// request's `Option<Actor>`; invalid credentials answer 401 with code `UNAUTHENTICATED`.
///
/// A batch holds at most `GRAPHQL_MAX_BATCH` operations and each counts against the `api` rate
/// limit. The request runs under a deadline (`GRAPHQL_TIMEOUT_MS`, then `TIMEOUT`) and its
/// response is at most `GRAPHQL_MAX_RESPONSE_BYTES` (else `LIMIT_EXCEEDED`). Execution runs
/// inside this handler's future, never in a spawned task, so when the client disconnects the
/// server drops the future and the work stops at its next await.
///
/// The response's media type follows `Accept` ([`MediaType::negotiate`]).
pub async fn execute(
    State(state): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = MediaType::negotiate(&headers);
    if !is_json(&headers) {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            domain::Code::UnsupportedMediaType,
            "a GraphQL POST carries a JSON body: send `Content-Type: application/json`".to_owned(),
        );
    }
    let request: async_graphql::BatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                domain::Code::BadRequest,
                format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    if request.iter().any(|r| r.query.trim().is_empty()) {
        // A request without a document (`query` missing or blank) is malformed, not a document
        // that fails to parse.
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            domain::Code::BadRequest,
            "the body is not a GraphQL request: it has no `query`".to_owned(),
        );
    }
    typed(
        media,
        run(&state, &schema, ip, &headers, request, media).await,
    )
}

/// `GET /api/v1/graphql?query=…&variables=…&operationName=…&extensions=…` runs a query (never a
/// mutation or subscription: those answer `405` with `Allow: POST`), answered as a POST would be.
/// A browser asking for HTML without a `query` is sent to GraphiQL at `/graphiql`.
pub async fn execute_get(
    State(state): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let request = match get_request(uri.query().unwrap_or_default()) {
        Ok(Some(r)) => r,
        Ok(None) if wants_html(&headers) => {
            return axum::response::Redirect::to(crate::GRAPHIQL_PATH).into_response();
        }
        Ok(None) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                domain::Code::BadRequest,
                "a GraphQL GET names its document in the `query` parameter".to_owned(),
            );
        }
        Err(e) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                domain::Code::BadRequest,
                format!("the query string is not a GraphQL request: {e}"),
            );
        }
    };
    if let Some(kind) = writing_operation(&request) {
        let mut resp = refuse(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            domain::Code::MethodNotAllowed,
            format!("a GET runs queries only: send the {kind} in a POST"),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let request = async_graphql::BatchRequest::Single(request);
    typed(
        media,
        run(&state, &schema, ip, &headers, request, media).await,
    )
}

/// The GraphQL request of a GET's query string (`query`, `operationName`, and `variables` and
/// `extensions` as JSON), or `None` when it has no `query`.
fn get_request(query_string: &str) -> Result<Option<async_graphql::Request>, String> {
    let mut request: Option<async_graphql::Request> = None;
    let (mut operation_name, mut variables, mut extensions) = (None, None, None);
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        match &*key {
            "query" => request = Some(async_graphql::Request::new(value.into_owned())),
            "operationName" => operation_name = Some(value.into_owned()),
            "variables" => variables = Some(value.into_owned()),
            "extensions" => extensions = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(mut request) = request else {
        return Ok(None);
    };
    request.operation_name = operation_name.filter(|n| !n.is_empty());
    if let Some(v) = variables.filter(|v| !v.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(&v).map_err(|e| format!("`variables` is not JSON: {e}"))?;
        if !v.is_null() {
            if !v.is_object() {
                return Err("`variables` is not a JSON object".to_owned());
            }
            request.variables = async_graphql::Variables::from_json(v);
        }
    }
    if let Some(x) = extensions.filter(|x| !x.is_empty()) {
        request.extensions = serde_json::from_str(&x)
            .map_err(|e| format!("`extensions` is not a JSON object: {e}"))?;
    }
    Ok(Some(request))
}

/// True when `Content-Type` is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// True when `Accept` names `text/html` (a browser navigating).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|r| {
            r.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html"))
        })
}

/// `Some("mutation")` / `Some("subscription")` when the operation the request would run is not
/// a query. A document that does not parse, or names no operation it holds, is left to the
/// schema, which says what is wrong with it.
fn writing_operation(request: &async_graphql::Request) -> Option<&'static str> {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    let ty = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), None) => op.node.ty,
        (DocumentOperations::Single(_), Some(_)) => return None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?.node.ty,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?.node.ty,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    match ty {
        OperationType::Query => None,
        OperationType::Mutation => Some("mutation"),
        OperationType::Subscription => Some("subscription"),
    }
}

/// `resp` labelled with the negotiated media type when it is a GraphQL-shaped JSON answer.
/// A request refused as a whole before it ran, in the negotiated media type.
fn refuse(media: MediaType, status: StatusCode, code: domain::Code, message: String) -> Response {
    typed(media, refusal(None, status, code, message))
}

fn typed(media: MediaType, mut resp: Response) -> Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media.as_str()),
        );
    }
    resp
}

/// Runs a parsed request (POST or GET) under the transport's limits.
async fn run(
    state: &AppState,
    schema: &AppSchema,
    ip: ClientIp,
    headers: &HeaderMap,
    request: async_graphql::BatchRequest,
    media: MediaType,
) -> Response {
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
        let d = state.identity.limiter.hit_n(Limiter::Api, &ip, extra).await;
        if !d.allowed {
            tracing::warn!(
                limiter = d.limiter.name(),
                ip = %ip.0,
                route = crate::GRAPHQL_PATH,
                "rate limit exceeded by a batch"
            );
            return rate_limited(&d);
        }
    }
    let actor = match state.identity.authenticate(headers).await {
        Ok(actor) => actor,
        Err(e) => return graphql_error(StatusCode::UNAUTHORIZED, &e),
    };
    let gate = super::crm::loaders::Gate::default();
    let loaders = super::crm::loaders::loaders(
        state.db.clone(),
        state.read_db.clone(),
        actor.clone(),
        state.config.database_request_connections(),
        &gate,
    );
    let request = request
        .data(actor)
        .data(loaders)
        .data(auth::meta(&ip, headers))
        .data(ip);
    // Under graphql-response+json a request stopped while it ran still has a `data` entry
    // (null): it was executed, so it is a 200 like any execution error.
    let executed = media == MediaType::GraphqlResponseJson;
    let execution = gate.run(schema.execute_batch(request));
    let response = match tokio::time::timeout(limits.timeout, execution).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeoutMs = limits.timeout.as_millis() as u64,
                "GraphQL request stopped at its deadline"
            );
            return stopped(
                batch,
                executed,
                domain::Code::Timeout,
                timeout_message(limits.timeout),
            );
        }
    };
    let unavailable = only_unavailable(&response);
    let mut status = StatusCode::OK;
    let mut extra_headers = HeaderMap::new();
    if response.is_ok()
        && let Some(value) = response.cache_control().value()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        extra_headers.insert(header::CACHE_CONTROL, value);
    }
    extra_headers.extend(response.http_headers());
    let body = match (&response, media) {
        (async_graphql::BatchResponse::Single(r), MediaType::GraphqlResponseJson)
            if !was_executed(r) =>
        {
            // GraphQL over HTTP: a request error has no `data` entry and a 4xx status: its
            // code's (400 for parse, validation and variable errors; 429 for the rate limit).
            status = domain::Code::ALL
                .iter()
                .find(|c| first_code(r) == Some(c.as_str()))
                .and_then(|c| StatusCode::from_u16(c.http_status()).ok())
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::BAD_REQUEST);
            let retry = r
                .errors
                .first()
                .and_then(|e| e.extensions.as_ref()?.get("retryAfter"));
            if let Some(async_graphql::Value::Number(secs)) = retry
                && let Ok(value) = HeaderValue::from_str(&secs.to_string())
            {
                extra_headers.insert(header::RETRY_AFTER, value);
            }
            let mut body = serde_json::json!({ "errors": r.errors });
            if !r.extensions.is_empty() {
                body["extensions"] = serde_json::json!(r.extensions);
            }
            serde_json::to_vec(&body)
        }
        _ => serde_json::to_vec(&response),
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "a GraphQL response could not be serialized");
            return refusal(
                batch,
                StatusCode::INTERNAL_SERVER_ERROR,
                domain::Code::Internal,
                "internal error".to_owned(),
            );
        }
    };
    if body.len() > limits.max_response_bytes {
        tracing::warn!(
            max = limits.max_response_bytes,
            "GraphQL response over the size limit refused"
        );
        return stopped(
            batch,
            executed,
            domain::Code::LimitExceeded,
            format!(
                "the response would be larger than {} bytes (GRAPHQL_MAX_RESPONSE_BYTES): \
                 ask for fewer rows or fields",
                limits.max_response_bytes
            ),
        );
    }
    if unavailable {
        // Nothing ran because the database is away: say so in HTTP too, so clients and load
        // balancers retry.
        status = StatusCode::SERVICE_UNAVAILABLE;
        extra_headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(domain::error::UNAVAILABLE_RETRY_SECS),
        );
    }
    let mut resp = (status, axum::body::Body::from(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(MediaType::Json.as_str()),
    );
    resp.headers_mut().extend(extra_headers);
    resp
}

/// The message of a request stopped at its deadline.
pub fn timeout_message(timeout: std::time::Duration) -> String {
    format!(
        "the request ran longer than {} ms and was stopped (GRAPHQL_TIMEOUT_MS): ask for less, or \
         page through it",
        timeout.as_millis()
    )
}

/// False when the request never ran: it failed to parse, validate or coerce its variables, or
/// was refused before execution (every error is about the document, none has a path).
fn was_executed(r: &async_graphql::Response) -> bool {
    r.data != async_graphql::Value::Null
        || r.errors.is_empty()
        || r.errors.iter().any(|e| !e.path.is_empty())
}

fn first_code(r: &async_graphql::Response) -> Option<&str> {
    match r.errors.first()?.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// A request stopped while it ran (deadline, response size): `200`, with `"data": null` when
/// `executed` says the media type wants it.
fn stopped(batch: Option<usize>, executed: bool, code: domain::Code, message: String) -> Response {
    let mut one = serde_json::json!({
        "errors": [{"message": message, "extensions": {"code": code.as_str()}}]
    });
    if executed {
        one["data"] = serde_json::Value::Null;
    }
    let body = match batch {
        None => one,
        Some(n) => serde_json::Value::Array(vec![one; n]),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
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
        limits.timeout,
    );
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // tungstenite reserves its read buffer up front (128 KiB by default): 1,000 subscribers
        // held 125 MB of it. Client messages are small; the buffer grows for a larger one.
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        // A message may be as large as an HTTP request body, no larger (the default is 64 MiB).
        .max_message_size(crate::MAX_BODY_BYTES)
        .on_upgrade(move |stream| async move {
            // The connection's operations run inside this future: its loader fetches wait for
            // the poll that asked for them, as a request's do.
            let gate = super::crm::loaders::Gate::default();
            let loader_gate = gate.clone();
            let socket = GraphQLWebSocket::new(stream, executor, protocol)
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
                        state.read_db.clone(),
                        actor.clone(),
                        state.config.database_request_connections(),
                        &loader_gate,
                    ));
                    data.insert(actor);
                    data.insert(meta);
                    data.insert(ip);
                    data.insert(OverWebSocket);
                    Ok(data)
                })
                .serve();
            gate.run(socket).await;
            drop(slot);
        })
}

/// The read buffer each WebSocket connection starts with.
const WS_READ_BUFFER_BYTES: usize = 8 * 1024;

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
