//! Inbound webhooks from connected sources.
//!
//! `POST /api/v1/webhooks/{kind}/{integrationId}` (PostHog, LinkedIn, Intercom, Zendesk, …):
//! the connector of the integration's kind verifies the delivery over the raw body
//! ([`connectors::Connector::webhook`]) before anything is read; a refused signature answers 401
//! and stores nothing. The signals it stands for go through the one ingest function, each keyed
//! by its object or the sender's delivery id (a redelivery, or the same object read by a sync,
//! is one signal). Answers: 200 `{received, created, deduplicated, signals, refused}`, 202 for
//! an event that is not tracked, 400 when every item is refused, 404 for an unknown
//! integration or a kind that takes no webhooks. The runbook's `webhook` limiter applies.
//!
//! `POST /api/v1/webhooks/github/{integrationId}`
//! verifies `X-Hub-Signature-256` (HMAC-SHA256 of the raw body under the integration's webhook
//! secret, constant-time) before reading anything; a missing or wrong signature answers 401 and
//! stores nothing. `ping` answers 200; tracked events become signals through the one ingest
//! function, keyed by the object (the same star from a webhook and from a sync is one signal;
//! a redelivery of the same `X-GitHub-Delivery` is one signal too); other events answer 202.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks/github/{integration_id}", post(github))
        .route("/api/v1/webhooks/{kind}/{integration_id}", post(inbound))
}

async fn inbound(
    State(state): State<AppState>,
    Path((kind, integration_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = kind.to_uppercase();
    let missing = || ApiError::not_found(format!("no such {kind} integration"));
    let connector = connectors::connector(&kind).ok_or_else(missing)?;
    let id = Uuid::parse_str(&integration_id).map_err(|_| missing())?;
    let Some(m) = connectors::store::by_id(&state.db, id).await? else {
        return Err(missing());
    };
    if m.kind != kind || m.status == connectors::status::DISCONNECTED {
        return Err(missing());
    }
    let secret = connectors::store::webhook_secret(&state.connectors, &m)?;
    let credentials = connectors::store::credentials(&state.connectors, &m)?;
    let delivery = connectors::webhook::Inbound {
        integration: &m,
        credentials: &credentials,
        webhook_secret: &secret,
        headers: &headers,
        body: &body,
    };
    let verdict = connector
        .webhook(&delivery)
        .ok_or_else(|| ApiError::not_found(format!("{kind} integrations take no webhooks")))?;
    let inputs = match verdict {
        Err(connectors::webhook::Refusal::Signature(why)) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                domain::Code::Unauthenticated,
                why,
            ));
        }
        Err(connectors::webhook::Refusal::BadRequest(why)) => {
            return Err(ApiError::bad_request(why));
        }
        Ok(connectors::webhook::Delivery::Reply(v)) => {
            return Ok((StatusCode::OK, axum::Json(v)).into_response());
        }
        Ok(connectors::webhook::Delivery::Ignore(why)) => {
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({"ignored": true, "reason": why})),
            )
                .into_response());
        }
        Ok(connectors::webhook::Delivery::Ingest(inputs)) => inputs,
    };
    let received = inputs.len();
    let inputs = inputs
        .into_iter()
        .map(|mut i| {
            i.source_id = Some(m.source_id.to_string());
            i
        })
        .collect();
    let actor = connectors::run::system_actor(&m);
    let results = crate::ingest::ingest(&state, &actor, inputs, "items", "api").await?;
    let mut signals = Vec::new();
    let mut refused = Vec::new();
    let (mut created, mut deduplicated) = (0, 0);
    let mut first_error = None;
    for (index, r) in results.into_iter().enumerate() {
        match r {
            Ok(ing) => {
                if ing.deduplicated {
                    deduplicated += 1;
                } else if ing.signal.is_some() {
                    created += 1;
                }
                let s = ing.signal.as_ref();
                signals.push(json!({
                    "signalId": s.map(|s| s.id),
                    "signalType": s.map(|s| s.signal_type.clone()),
                    "deduplicated": ing.deduplicated,
                }));
            }
            Err(e) => {
                refused.push(json!({"index": index, "message": e.public_message()}));
                first_error.get_or_insert(e);
            }
        }
    }
    if received > 0
        && signals.is_empty()
        && let Some(e) = first_error
    {
        return Err(e.into());
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "received": received,
            "created": created,
            "deduplicated": deduplicated,
            "signals": signals,
            "refused": refused,
        })),
    )
        .into_response())
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        domain::Code::NotFound,
        "no such GitHub integration",
    )
}

async fn github(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&integration_id).map_err(|_| not_found())?;
    let Some(m) = connectors::store::by_id(&state.db, id).await? else {
        return Err(not_found());
    };
    if m.kind != "GITHUB" || m.status == connectors::status::DISCONNECTED {
        return Err(not_found());
    }
    let secret = connectors::store::webhook_secret(&state.connectors, &m)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !connectors::webhook::verify(&secret, &body, header("x-hub-signature-256")) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            domain::Code::Unauthenticated,
            "missing or invalid X-Hub-Signature-256",
        ));
    }
    let Some(event) = header("x-github-event") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            domain::Code::BadRequest,
            "missing X-GitHub-Event",
        ));
    };
    let payload: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            domain::Code::BadRequest,
            "the body is not JSON",
        )
    })?;
    let delivery = header("x-github-delivery");
    match connectors::github::webhook_action(event, &payload, delivery) {
        connectors::github::WebhookAction::Pong => {
            Ok((StatusCode::OK, axum::Json(json!({"message": "pong"}))).into_response())
        }
        connectors::github::WebhookAction::Ignore(why) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"ignored": true, "reason": why})),
        )
            .into_response()),
        connectors::github::WebhookAction::Ingest(input) => {
            let mut input = *input;
            input.source_id = Some(m.source_id.to_string());
            let actor = connectors::run::system_actor(&m);
            let ingested = crate::ingest::ingest_one_signal(&state, &actor, input, "api").await?;
            let signal = ingested.signal.as_ref();
            Ok((
                StatusCode::OK,
                axum::Json(json!({
                    "signalId": signal.map(|s| s.id),
                    "signalType": signal.map(|s| s.signal_type.clone()),
                    "deduplicated": ingested.deduplicated,
                })),
            )
                .into_response())
        }
    }
}
