//! `POST /api/v1/demo/seed`: a demo organization for anyone, no credentials needed (rate
//! limited per IP by the `demo` limiter). Creates the organization (`is_demo`, deleted by the
//! `demo-cleanup` job after 24 hours), its OWNER and its data (`domain::demo`), and signs the
//! owner in: the answer is sign-up's (tokens, user, organization, role) plus `demo` (the
//! organization id and what was seeded).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::{Value, json};

use super::auth::AuthBody;
use super::error::ApiResult;
use crate::auth::{self, ClientIp};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/demo/seed", post(seed))
}

/// The optional body: `{"seed": <non-negative integer>}` for reproducible data.
fn seed_of(body: &Bytes) -> Result<u64, domain::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(rand::random());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| domain::Error::invalid("body", "must be a JSON object"))?;
    let Some(o) = v.as_object() else {
        return Err(domain::Error::invalid("body", "must be a JSON object"));
    };
    if let Some(k) = o.keys().find(|k| k.as_str() != "seed") {
        return Err(domain::Error::invalid(k.clone(), "is not a known field"));
    }
    match o.get("seed") {
        None | Some(Value::Null) => Ok(rand::random()),
        Some(s) => s
            .as_u64()
            .ok_or_else(|| domain::Error::invalid("seed", "must be a non-negative integer")),
    }
}

async fn seed(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let seed = seed_of(&body)?;
    let meta = auth::meta(&ip, &headers);
    let out = domain::alerts::Outbound {
        targets: state.webhooks.settings(),
        cipher: state.webhooks.cipher(),
    };
    let (signed, counts) = domain::demo::create_demo(&state.db, &meta, &out, seed).await?;
    let organization_id = signed.organization.id;
    let tokens = state.identity.start_session(&meta, &signed).await?;
    let mut body = serde_json::to_value(AuthBody::new(signed, tokens))
        .map_err(|e| domain::Error::Internal(format!("demo answer: {e}")))?;
    body["demo"] = json!({
        "organizationId": organization_id,
        "seed": seed,
        "counts": counts,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
