//! The Segment-compatible HTTP API (`POST /v1/track|identify|group|page|screen|alias|batch|import`,
//! HTTP Basic with the API key as write key, or `writeKey` in the body), so Segment's and
//! RudderStack's client libraries send to DevSignal unchanged. Messages become ingest inputs and
//! go through the same call as every other ingest path. With `Prefer: respond-async` they are
//! accepted for later ingest instead (`super::intake`): `202` with a receipt.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::Actor;
use domain::signals::{AccountHints, AccountTraits, ActorHints, ContactTraits, Input};
use serde_json::{Value, json};

use super::error::ApiError;
use super::signals::{actor_of, convert_all, parse_json, run_batch};
use crate::ingest::ingest_one_signal;
use crate::state::AppState;

/// The Segment routes (mounted by the signal routes, behind the same gzip decompression).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/track", post(segment_single))
        .route("/v1/identify", post(segment_single))
        .route("/v1/group", post(segment_single))
        .route("/v1/page", post(segment_single))
        .route("/v1/screen", post(segment_single))
        .route("/v1/alias", post(segment_single))
        .route("/v1/batch", post(segment_batch))
        .route("/v1/import", post(segment_batch))
}

/// The write key of a Segment call: HTTP Basic user name (password empty), or `writeKey` in
/// the body. Bearer tokens and `X-API-Key` work too.
async fn segment_actor(
    state: &AppState,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Actor, ApiError> {
    use base64::Engine;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    let key = match basic {
        Some(b) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|r| String::from_utf8(r).ok())
                .ok_or_else(|| {
                    ApiError::from(domain::Error::Unauthenticated(
                        "malformed Basic credentials".into(),
                    ))
                })?;
            Some(
                raw.split_once(':')
                    .map_or(raw.clone(), |(u, _)| u.to_owned()),
            )
        }
        None => body
            .get("writeKey")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    match key {
        Some(k) if !k.is_empty() => Ok(state.identity.authenticate_token(&k).await?),
        _ => actor_of(state, headers).await,
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn string_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Employees → size bucket.
fn size_of(employees: u64) -> &'static str {
    match employees {
        0..=10 => "STARTUP",
        11..=50 => "SMALL",
        51..=200 => "MEDIUM",
        201..=1000 => "LARGE",
        _ => "ENTERPRISE",
    }
}

/// One Segment message as an ingest input. `kind` is the call (`track`, …) from the path, or
/// the message's `type` inside a batch.
fn segment_input(msg: Value, kind: Option<&str>, prefix: &str) -> Result<Input, domain::Error> {
    let f = |n: &str| format!("{prefix}{n}");
    if !msg.is_object() {
        return Err(domain::Error::invalid(
            if prefix.is_empty() {
                "body"
            } else {
                prefix.trim_end_matches('.')
            },
            "must be a JSON object",
        ));
    }
    let kind = kind
        .map(str::to_owned)
        .or_else(|| str_at(&msg, &["type"]).map(str::to_lowercase))
        .ok_or_else(|| domain::Error::invalid(f("type"), "is required in a batch"))?;
    let traits = msg
        .get("traits")
        .filter(|t| t.is_object())
        .or_else(|| msg.get("context").and_then(|c| c.get("traits")))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let properties = msg.get("properties").cloned().unwrap_or_else(|| json!({}));
    let signal_type = match kind.as_str() {
        "track" => str_at(&msg, &["event"])
            .map(str::to_owned)
            .ok_or_else(|| domain::Error::invalid(f("event"), "is required for track"))?,
        "page" => "page_view".into(),
        "screen" => "screen_view".into(),
        "identify" => "identify".into(),
        "group" => "group".into(),
        "alias" => "alias".into(),
        other => {
            return Err(domain::Error::invalid(
                f("type"),
                format!(
                    "{other:?} is not a Segment call (track, identify, group, page, screen, alias)"
                ),
            ));
        }
    };
    let user_id = string_at(&msg, &["userId"]);
    let anonymous_id = string_at(&msg, &["anonymousId"]);
    if user_id.is_none() && anonymous_id.is_none() {
        // Segment's spec: every call names its user (or an anonymous one).
        return Err(domain::Error::invalid(
            f("userId"),
            "a userId or an anonymousId is required",
        ));
    }
    let t = |k: &str| str_at(&traits, &[k]).map(str::to_owned);
    let name = t("name").or_else(|| {
        let full = [
            t("firstName").or_else(|| t("first_name")),
            t("lastName").or_else(|| t("last_name")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        (!full.is_empty()).then_some(full)
    });
    let email = t("email").or_else(|| str_at(&properties, &["email"]).map(str::to_owned));
    let mut metadata = match kind.as_str() {
        "identify" | "group" => traits.clone(),
        _ => properties.clone(),
    };
    if !metadata.is_object() {
        metadata = json!({});
    }
    if let Some(m) = metadata.as_object_mut() {
        if (kind == "page" || kind == "screen")
            && let Some(n) = str_at(&msg, &["name"])
        {
            m.entry("name").or_insert(json!(n));
        }
        if kind == "group"
            && let Some(g) = string_at(&msg, &["groupId"])
        {
            m.insert("groupId".into(), json!(g));
        }
    }
    let (actor, contact_traits, account, account_traits) = match kind.as_str() {
        "group" => (
            ActorHints {
                user_id: user_id.clone(),
                ..Default::default()
            },
            None,
            Some(AccountHints {
                domain: t("domain").or_else(|| t("website")),
                name: t("name"),
                github_org: None,
            }),
            Some(AccountTraits {
                name: t("name"),
                industry: t("industry"),
                size: traits
                    .get("employees")
                    .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
                    .map(|n| size_of(n).to_owned()),
                website: t("website"),
            }),
        ),
        _ => (
            ActorHints {
                email,
                github: t("github"),
                twitter: t("twitter"),
                linkedin: t("linkedin"),
                name,
                user_id: user_id.clone(),
                ..Default::default()
            },
            (kind == "identify").then(|| ContactTraits {
                first_name: t("firstName").or_else(|| t("first_name")),
                last_name: t("lastName").or_else(|| t("last_name")),
                title: t("title"),
                phone: t("phone"),
                city: str_at(&traits, &["address", "city"]).map(str::to_owned),
                country: str_at(&traits, &["address", "country"]).map(str::to_owned),
            }),
            str_at(&traits, &["company", "domain"]).map(|d| AccountHints {
                domain: Some(d.to_owned()),
                name: str_at(&traits, &["company", "name"]).map(str::to_owned),
                github_org: None,
            }),
            None,
        ),
    };
    Ok(Input {
        source_id: None,
        signal_type,
        actor_id: None,
        account_id: None,
        anonymous_id: user_id.or(anonymous_id),
        metadata: Some(metadata),
        idempotency_key: string_at(&msg, &["messageId"]),
        timestamp: str_at(&msg, &["timestamp"]).map(str::to_owned),
        actor: Some(actor),
        account,
        contact_traits,
        account_traits,
        profile_only: matches!(kind.as_str(), "identify" | "group" | "alias"),
    })
}

fn segment_ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `POST /v1/track|identify|group|page|screen|alias`: `200 {"success": true}` as Segment
/// answers; a bad message answers `400` with the field.
async fn segment_single(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = uri.path().trim_start_matches("/v1/").to_owned();
    let result = async {
        let msg = parse_json(&body)?;
        let actor = segment_actor(&state, &headers, &msg).await?;
        domain::text::refuse_nul(&msg, "")?;
        let input = segment_input(msg, Some(&kind), "")?;
        if super::intake::wants_async(&headers) {
            return super::intake::accept(
                &state,
                &actor,
                vec![input],
                "",
                domain::signals::system_source::SEGMENT,
            )
            .await;
        }
        let out = ingest_one_signal(
            &state,
            &actor,
            input,
            domain::signals::system_source::SEGMENT,
        )
        .await?;
        Ok::<_, ApiError>(segment_ok(json!({
            "success": true,
            "signalId": out.signal.as_ref().map(|s| s.id),
            "deduplicated": out.deduplicated,
        })))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/batch` (and `/v1/import`): `{"batch": [...]}` of messages each with its `type`;
/// batch-level `context` is merged into each message. `200 {"success": true}` when every
/// message was accepted, `200` with `success: false` and the per-message results when some
/// failed (the good ones still land), `400` with the same body when every message failed (so
/// an SDK drops the batch instead of retrying it). Unknown message fields are allowed, as
/// Segment's spec says.
async fn segment_batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let v = parse_json(&body)?;
        let actor = segment_actor(&state, &headers, &v).await?;
        let Some(Value::Array(items)) = v.get("batch").cloned() else {
            return Err(domain::Error::invalid("batch", "must be an array of messages").into());
        };
        let shared = v.get("context").cloned();
        let items: Vec<Value> = items
            .into_iter()
            .map(|mut m| {
                if let (Some(ctx), Some(obj)) = (&shared, m.as_object_mut()) {
                    obj.entry("context").or_insert_with(|| ctx.clone());
                }
                m
            })
            .collect();
        if super::intake::wants_async(&headers) {
            let inputs = convert_all(items, "batch", |m, p| segment_input(m, None, p))?;
            return super::intake::accept(
                &state,
                &actor,
                inputs,
                "batch",
                domain::signals::system_source::SEGMENT,
            )
            .await;
        }
        let (outcome, body) = run_batch(
            &state,
            &actor,
            items,
            "batch",
            domain::signals::system_source::SEGMENT,
            |m, p| segment_input(m, None, p),
        )
        .await?;
        let failed = body["summary"]["failed"].as_u64().unwrap_or(0);
        let mut out = body;
        out["success"] = json!(failed == 0);
        if outcome.succeeded == 0 {
            return Ok((StatusCode::BAD_REQUEST, axum::Json(out)).into_response());
        }
        Ok::<_, ApiError>(segment_ok(out))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
