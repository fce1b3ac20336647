//! The HTTP surface: routes, and the middleware every request passes through (request id,
//! one log line and metrics per request, panic catching, security headers, CORS, body limit, and
//! JSON error bodies for everything that fails).

pub mod auth;
pub mod billing;
pub mod crm_connect;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod health;
pub mod inbound;
mod intake;
pub mod json;
pub mod limits;
pub mod oauth;
mod segment;
pub mod session_cookie;
pub mod signals;
pub mod transfers;
pub mod unsubscribe;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use crate::metrics::RequestLabels;
use crate::state::AppState;
use error::ApiError;

pub use crate::MAX_BODY_BYTES;

/// Every route of the server, with its middleware. `api` holds the routes of the other
/// transports (GraphQL over HTTP and WebSocket, GraphiQL), which get the same middleware.
pub fn router(state: AppState, api: Router<AppState>) -> Router {
    let cors = cors_layer(&state);
    let production = state.config.is_production();
    let mut headers = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if production {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    let mut router = Router::new()
        .merge(api)
        .merge(auth::routes().layer(middleware::from_fn_with_state(
            state.clone(),
            session_cookie::layer,
        )))
        .merge(signals::routes())
        .merge(demo::routes())
        .merge(unsubscribe::routes())
        .merge(billing::routes())
        .merge(transfers::download_routes())
        .merge(inbound::routes())
        .route(
            "/api/v1/integrations/{kind}/connect",
            get(crm_connect::connect),
        )
        .route(
            "/api/v1/integrations/{kind}/callback",
            get(crm_connect::callback),
        )
        .route(crate::GRAPHIQL_PATH, get(dashboard::graphiql))
        .route("/health", get(health::health))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics))
        .fallback(dashboard::fallback)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // An import's upload has a limit of its own (IMPORT_MAX_BYTES, counted as it streams)
        // and no deadline: it joins after those two layers, before the rest.
        .merge(transfers::upload_routes())
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), after_commit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::rate_limit,
        ));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(cors)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Credentials (the browser session's refresh cookie) are allowed only for the origins named in
/// `CORS_ORIGIN`. Without a list (development) or with `*`, any origin may call the API with a
/// bearer token or API key, never with cookies; production without a list allows none.
fn cors_layer(state: &AppState) -> CorsLayer {
    let origins = &state.config.cors_origins;
    let (allow_origin, credentials) = if origins.is_empty() || origins.iter().any(|o| o == "*") {
        if state.config.is_production() && origins.is_empty() {
            (AllowOrigin::list([]), false)
        } else {
            (AllowOrigin::mirror_request(), false)
        }
    } else {
        let list = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect::<Vec<_>>();
        (AllowOrigin::list(list), true)
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(credentials)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600))
}

pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    use secrecy::ExposeSecret;
    match &state.config.metrics_token {
        None if state.config.is_production() => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                domain::Code::NotFound,
                "/metrics is off in production until METRICS_TOKEN is set",
            )
            .into_response();
        }
        None => {}
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            let expected = token.expose_secret();
            let same = given.len() == expected.len()
                && given
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            if !same {
                let mut resp = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    domain::Code::Unauthenticated,
                    "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`",
                )
                .into_response();
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return resp;
            }
        }
    }
    refresh_metrics(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Brings the gauges read at scrape time up to date: queue depths, pools, the process, Redis,
/// integrations, live subscriptions. A source that fails is logged and leaves its gauges as they
/// were; the scrape still answers.
async fn refresh_metrics(state: &AppState) {
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QuerySelect as _};
    let m = &state.metrics;
    match domain::queue::counts(&state.db, jobs::registry::QUEUES, None).await {
        Ok(counts) => m.set_queue_depths(&counts),
        Err(e) => tracing::warn!(error = %e, "reading queue depths for /metrics failed"),
    }
    match domain::signals::intake::backlog(&state.db).await {
        Ok((pending, oldest)) => {
            m.intake_pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            m.intake_oldest.set(oldest.map_or(0.0, |t| {
                (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
            }));
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the signal intake backlog for /metrics failed")
        }
    }
    m.live_subscriptions
        .set(i64::try_from(state.live.subscribers()).unwrap_or(i64::MAX));
    let scheduler = async {
        let ticks = domain::queue::last_tick_times(&state.db).await?;
        let live = domain::queue::liveness(&state.db, state.config.scheduler_stale_after).await?;
        Ok::<_, domain::Error>((ticks, live.alive))
    };
    match scheduler.await {
        Ok((ticks, alive)) => m.scheduler.set(&ticks, alive),
        Err(e) => tracing::warn!(error = %e, "reading the scheduler's state for /metrics failed"),
    }
    m.set_pools();
    m.set_process();
    m.set_ingest_claims();
    if let Some(redis) = state.redis.as_ref().filter(|_| m.watches_redis()) {
        let started = std::time::Instant::now();
        let up = crate::redis::ping(redis, Duration::from_secs(1)).await;
        m.set_redis(up.then(|| started.elapsed()));
    }
    use entity::integrations::{Column, Entity};
    let counts = Entity::find()
        .select_only()
        .column(Column::Kind)
        .column(Column::Status)
        .column_as(Column::Id.count(), "n")
        .group_by(Column::Kind)
        .group_by(Column::Status)
        .into_tuple()
        .all(&state.db)
        .await;
    match counts {
        Ok(counts) => m.set_integrations(counts),
        Err(e) => tracing::warn!(error = %e, "reading integrations for /metrics failed"),
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        domain::Code::Internal,
        "internal error",
    )
    .into_response()
}

/// One span per request carrying `requestId` (and, once known, `organizationId`/`userId`), one
/// log line when it ends (`POST /api/v1/graphql 200 12ms`), and the request metrics.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!(
        "request",
        requestId = %request_id,
        organizationId = tracing::field::Empty,
        userId = tracing::field::Empty,
    );
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    let ms = elapsed.as_millis();
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(method = %method, route = %route, status, durationMs = ms as u64, "{method} {path} {status} {ms}ms");
        } else {
            tracing::info!(method = %method, route = %route, status, durationMs = ms as u64, "{method} {path} {status} {ms}ms");
        }
    });
    state.metrics.observe_request(
        RequestLabels {
            method: method.to_string(),
            route,
            status,
        },
        elapsed.as_secs_f64(),
    );
    resp
}

/// A REST request that may change state (any method but GET, HEAD and OPTIONS) has committed
/// what it wrote by the time its response is ready: announce it, so live subscribers and
/// workers look now. GraphQL announces its own mutations (HTTP and WebSocket alike).
async fn after_commit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.uri().path() != crate::GRAPHQL_PATH;
    if !writes {
        return next.run(req).await;
    }
    let (resp, jobs_due) = domain::queue::noting_due_jobs(next.run(req)).await;
    state.commits.committed(jobs_due);
    resp
}

/// Every request but GraphQL's (which has its own deadline, `GRAPHQL_TIMEOUT_MS`, and its
/// WebSocket) answers within `REQUEST_TIMEOUT_MS`: past it the handler is dropped (an open
/// transaction rolls back) and the client gets `503` `TIMEOUT` with `Retry-After`, as when the
/// database is away and a request would otherwise queue for connections until its client gave up.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with(crate::GRAPHQL_PATH) {
        return next.run(req).await;
    }
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                timeoutMs = limit.as_millis() as u64,
                "request stopped at its deadline"
            );
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                domain::Code::Timeout,
                format!(
                    "the request did not finish within {} ms (REQUEST_TIMEOUT_MS) and was \
                     stopped; try again (an idempotencyKey makes a retried ingest safe)",
                    limit.as_millis()
                ),
            );
            e.retry_after_secs = Some(domain::error::UNAVAILABLE_RETRY_SECS);
            e.into_response()
        }
    }
}

/// Errors produced outside our handlers (axum's rejections, 405s, the body limit) come as plain
/// text or empty bodies; this rewrites them into the JSON error shape, keeping their headers.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if status.is_server_error() || text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    let mut fixed =
        ApiError::new(status, ApiError::code_for_status(status), message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}
