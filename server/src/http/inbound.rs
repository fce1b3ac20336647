//! Inbound webhooks from connected sources. `POST /api/v1/webhooks/github/{integrationId}`
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
    Router::new().route("/api/v1/webhooks/github/{integration_id}", post(github))
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
