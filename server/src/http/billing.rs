//! `POST /api/v1/billing/webhook`: Stripe's events.
//!
//! The `Stripe-Signature` header is checked over the raw body before anything is read
//! (`domain::billing::signature`: 5-minute tolerance, any of several `v1` signatures, constant
//! time); a missing, stale or wrong signature answers 400 `BAD_REQUEST` and changes nothing.
//! A `checkout.session.completed` has its subscription retrieved from Stripe first (a failure
//! answers 502, so Stripe retries). Then the event is applied and its id recorded in one
//! transaction (`domain::billing::stripe::process`): a replay answers 200 with
//! `duplicate: true` and changes nothing. Answers `{received: true, outcome}`. Without Stripe
//! keys: 501 `NOT_CONFIGURED`. The runbook's `webhook` limiter applies.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use domain::billing::{signature, stripe};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::state::AppState;

pub const PATH: &str = "/api/v1/billing/webhook";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, post(webhook))
}

async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (Some(client), Some(secret)) =
        (state.stripe(), state.config.stripe_webhook_secret.as_ref())
    else {
        return Err(domain::Error::NotConfigured(
            "billing is not configured on this server (STRIPE_SECRET_KEY and \
             STRIPE_WEBHOOK_SECRET are unset)"
                .into(),
        )
        .into());
    };
    use secrecy::ExposeSecret;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(why) = signature::verify(secret.expose_secret(), header, &body, Utc::now()) {
        tracing::warn!(reason = %why, "a Stripe webhook was refused");
        return Err(ApiError::bad_request(why.to_string()));
    }
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a Stripe event: {e}")))?;
    let fetched = match stripe::subscription_to_fetch(&event) {
        Some(id) => Some(client.subscription(&id).await?),
        None => None,
    };
    let outcome = stripe::process(
        &state.db,
        &event,
        fetched.as_ref(),
        &state.config.stripe_prices,
    )
    .await?;
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    let id = event.get("id").and_then(Value::as_str).unwrap_or("");
    let body = match &outcome {
        stripe::Outcome::Applied(org) => {
            tracing::info!(event = id, kind, organizationId = %org, "Stripe event applied");
            json!({"received": true, "outcome": "applied"})
        }
        stripe::Outcome::Duplicate => {
            tracing::info!(event = id, kind, "Stripe event already processed");
            json!({"received": true, "outcome": "duplicate", "duplicate": true})
        }
        stripe::Outcome::Ignored(why) => {
            tracing::info!(
                event = id,
                kind,
                reason = why.as_str(),
                "Stripe event ignored"
            );
            json!({"received": true, "outcome": "ignored", "reason": why})
        }
    };
    Ok(axum::Json(body).into_response())
}
