//! Accepted-for-later ingest over REST (`domain::signals::intake`): `POST /api/v1/signals` and
//! `/api/v1/signals/batch` with `Prefer: respond-async` (RFC 7240) answer `202 Accepted` once the
//! checked items are stored, with a receipt to follow at
//! `GET /api/v1/signals/receipts/{id}`; the worker ingests them in batches within moments.
//! For senders that do not need the resolved contact and account in the answer (product
//! analytics, bulk backfills): a request is one statement instead of a whole ingest.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::Actor;
use domain::signals::Input;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::signals::actor_of;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/signals/receipts/{id}", get(receipt))
}

/// Does the request ask to be answered before its signals are ingested (`Prefer:
/// respond-async`, alone or among other preferences)?
pub(super) fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            p.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("respond-async"))
        })
}

/// Stores the checked `inputs` for later ingest and answers `202` with the receipt.
pub(super) async fn accept(
    state: &AppState,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    source: &str,
) -> Result<Response, ApiError> {
    let accepted =
        domain::signals::intake::accept(&state.db, actor, inputs, prefix, source).await?;
    state.intake.notify_one();
    state.metrics.count_accepted(accepted.items);
    let location = format!("/api/v1/signals/receipts/{}", accepted.id);
    let mut resp = (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "status": "accepted",
            "receiptId": accepted.id,
            "accepted": accepted.items,
            "receivedAt": accepted.received_at,
            "receipt": location,
        })),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        "preference-applied",
        HeaderValue::from_static("respond-async"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /api/v1/signals/receipts/{id}`: the request's state (`pending`, `processed`) and, once
/// processed, each item's outcome in the batch route's shape.
async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let actor = actor_of(&state, &headers).await?;
        let id = Uuid::parse_str(id.trim())
            .map_err(|_| domain::Error::invalid("id", "must be a receipt id (a UUID)"))?;
        let r = domain::signals::intake::receipt(&state.db, &actor, id).await?;
        Ok::<_, ApiError>(
            axum::Json(json!({
                "receiptId": r.id,
                "status": r.state,
                "items": r.items,
                "receivedAt": r.received_at,
                "processedAt": r.processed_at,
                "results": r.results,
            }))
            .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
