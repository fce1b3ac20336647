//! Signal ingest over REST: `POST /api/v1/signals` and `/api/v1/signals/batch` in the original's
//! JSON shape (plus `actor` / `account` identity hints), and the Segment-compatible HTTP API
//! (`POST /v1/track|identify|group|page|screen|batch`, HTTP Basic with the API key as write
//! key), so Segment's and RudderStack's client libraries send to DevSignal unchanged. Every path
//! ends in `domain::signals::ingest_many`, so all produce the same events and scoring.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::Actor;
use domain::signals::{AccountHints, ActorHints, Ingested, Input};

use crate::ingest::{ingest, ingest_one_signal};
use entity::{companies, contacts, signal_sources};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::ApiError;
use crate::state::AppState;

/// The ingest routes. Request bodies may be gzip-compressed (`Content-Encoding: gzip`, as
/// RudderStack's SDKs send them); the 5 MB limit holds for the compressed and the inflated body.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/signals", post(ingest_one))
        .route("/api/v1/signals/batch", post(ingest_batch))
        .merge(super::intake::routes())
        .merge(super::segment::routes())
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
}

pub(super) async fn actor_of(state: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    match state.identity.authenticate(headers).await? {
        Some(a) => Ok(a),
        None => Err(domain::Error::Unauthenticated(
            "pass a user token or an API key with the signals:write scope".into(),
        )
        .into()),
    }
}

pub(super) fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// The keys a REST signal may have, and those of its `actor` and `account` (`metadata` is
/// free-form). Any other key is refused, named: a typo such as `actor.mail` must not store a
/// signal without its person.
const SIGNAL_KEYS: &[&str] = &[
    "sourceId",
    "type",
    "actorId",
    "accountId",
    "anonymousId",
    "metadata",
    "idempotencyKey",
    "timestamp",
    "actor",
    "account",
];
const ACTOR_KEYS: &[&str] = &["email", "github", "npm", "twitter", "linkedin", "name"];
const ACCOUNT_KEYS: &[&str] = &["domain", "name", "githubOrg"];

/// One error per key of the object `v` that is not in `known`, named under `prefix`.
fn unknown_keys(v: &Value, prefix: &str, known: &[&str], what: &str) -> Vec<domain::FieldError> {
    let Some(m) = v.as_object() else {
        return Vec::new();
    };
    m.keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            domain::FieldError::new(
                domain::text::join(prefix, k),
                format!("is not a field of {what} (known: {})", known.join(", ")),
            )
        })
        .collect()
}

/// One signal in the original's REST shape; [`rest_input`] refuses unknown keys first.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RestSignal {
    source_id: Option<String>,
    #[serde(rename = "type")]
    signal_type: Option<String>,
    actor_id: Option<String>,
    account_id: Option<String>,
    anonymous_id: Option<String>,
    metadata: Option<Value>,
    idempotency_key: Option<String>,
    timestamp: Option<String>,
    actor: Option<RestActor>,
    account: Option<RestAccount>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RestActor {
    email: Option<String>,
    github: Option<String>,
    npm: Option<String>,
    twitter: Option<String>,
    linkedin: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RestAccount {
    domain: Option<String>,
    name: Option<String>,
    github_org: Option<String>,
}

/// A JSON item as an ingest input, or the field error that makes it unusable.
fn rest_input(v: Value, prefix: &str) -> Result<Input, domain::Error> {
    if !v.is_object() {
        return Err(domain::Error::invalid(
            prefix.trim_end_matches('.'),
            "must be a JSON object",
        ));
    }
    let item = prefix.trim_end_matches('.');
    let mut unknown = unknown_keys(&v, item, SIGNAL_KEYS, "a signal");
    if let Some(a) = v.get("actor") {
        unknown.extend(unknown_keys(
            a,
            &domain::text::join(item, "actor"),
            ACTOR_KEYS,
            "actor",
        ));
    }
    if let Some(a) = v.get("account") {
        unknown.extend(unknown_keys(
            a,
            &domain::text::join(item, "account"),
            ACCOUNT_KEYS,
            "account",
        ));
    }
    if !unknown.is_empty() {
        return Err(domain::Error::Validation(unknown));
    }
    let r: RestSignal = serde_json::from_value(v).map_err(|e| {
        domain::Error::invalid(
            if prefix.is_empty() {
                "body"
            } else {
                prefix.trim_end_matches('.')
            },
            format!("has a field of the wrong type: {e}"),
        )
    })?;
    Ok(Input {
        source_id: r.source_id,
        signal_type: r.signal_type.unwrap_or_default(),
        actor_id: r.actor_id,
        account_id: r.account_id,
        anonymous_id: r.anonymous_id,
        metadata: r.metadata,
        idempotency_key: r.idempotency_key,
        timestamp: r.timestamp,
        actor: r.actor.map(|a| ActorHints {
            email: a.email,
            github: a.github,
            npm: a.npm,
            twitter: a.twitter,
            linkedin: a.linkedin,
            name: a.name,
            user_id: None,
            source_ids: Vec::new(),
        }),
        account: r.account.map(|a| AccountHints {
            domain: a.domain,
            name: a.name,
            github_org: a.github_org,
        }),
        contact_traits: None,
        account_traits: None,
        profile_only: false,
    })
}

/// The related rows shown with each signal: source, actor and account summaries by id.
#[derive(Default)]
struct Related {
    sources: HashMap<Uuid, Value>,
    contacts: HashMap<Uuid, Value>,
    accounts: HashMap<Uuid, Value>,
}

fn source_summary(id: Uuid, name: &str, kind: &str) -> Value {
    json!({"id": id, "name": name, "type": kind})
}

fn actor_summary(
    id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
) -> Value {
    json!({"id": id, "firstName": first_name, "lastName": last_name, "email": email})
}

fn account_summary(id: Uuid, name: &str, domain: Option<String>) -> Value {
    json!({"id": id, "name": name, "domain": domain})
}

async fn related(state: &AppState, org: Uuid, items: &[&Ingested]) -> Result<Related, ApiError> {
    let ids = |f: fn(&Ingested) -> Option<Uuid>| -> Vec<Uuid> {
        let mut v: Vec<Uuid> = items.iter().filter_map(|i| f(i)).collect();
        v.sort();
        v.dedup();
        v
    };
    let db = &state.db;
    let sources = signal_sources::Entity::find()
        .filter(signal_sources::Column::OrganizationId.eq(org))
        .filter(signal_sources::Column::Id.is_in(ids(|i| i.signal.as_ref().map(|s| s.source_id))))
        .all(db)
        .await
        .map_err(domain::Error::from)?;
    let contacts = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::Id.is_in(ids(|i| i.contact_id)))
        .all(db)
        .await
        .map_err(domain::Error::from)?;
    let accounts = companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(org))
        .filter(companies::Column::Id.is_in(ids(|i| i.account_id)))
        .all(db)
        .await
        .map_err(domain::Error::from)?;
    Ok(Related {
        sources: sources
            .into_iter()
            .map(|m| (m.id, source_summary(m.id, &m.name, &m.kind)))
            .collect(),
        contacts: contacts
            .into_iter()
            .map(|m| {
                (
                    m.id,
                    actor_summary(m.id, m.first_name, m.last_name, m.email),
                )
            })
            .collect(),
        accounts: accounts
            .into_iter()
            .map(|m| (m.id, account_summary(m.id, &m.name, m.domain)))
            .collect(),
    })
}

/// The source and, when the signal has them, actor and account of one signal (each of the
/// organization), as one row.
type OneRow = (
    Uuid,
    String,
    String,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
);

/// [`related`] for one signal in one statement: the source joined with the actor and the
/// account it names. Nothing for a profile update, whose answer shows no signal.
async fn related_one(state: &AppState, org: Uuid, item: &Ingested) -> Result<Related, ApiError> {
    use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition};
    use sea_orm::{JoinType, QuerySelect, RelationDef};
    let mut r = Related::default();
    let Some(signal) = &item.signal else {
        return Ok(r);
    };
    let (contact, account) = (item.contact_id, item.account_id);
    // Each join finds at most the one row of the organization that the signal names.
    let to_contact: RelationDef = signal_sources::Entity::belongs_to(contacts::Entity)
        .from(signal_sources::Column::OrganizationId)
        .to(contacts::Column::OrganizationId)
        .on_condition(move |_, c| {
            Expr::col((c, contacts::Column::Id))
                .eq(contact.unwrap_or_default())
                .into_condition()
        })
        .into();
    let to_account: RelationDef = signal_sources::Entity::belongs_to(companies::Entity)
        .from(signal_sources::Column::OrganizationId)
        .to(companies::Column::OrganizationId)
        .on_condition(move |_, a| {
            Expr::col((a, companies::Column::Id))
                .eq(account.unwrap_or_default())
                .into_condition()
        })
        .into();
    let row: Option<OneRow> = signal_sources::Entity::find()
        .select_only()
        .column(signal_sources::Column::Id)
        .column(signal_sources::Column::Name)
        .column(signal_sources::Column::Kind)
        .column(contacts::Column::Id)
        .column(contacts::Column::FirstName)
        .column(contacts::Column::LastName)
        .column(contacts::Column::Email)
        .column(companies::Column::Id)
        .column(companies::Column::Name)
        .column(companies::Column::Domain)
        .join(JoinType::LeftJoin, to_contact)
        .join(JoinType::LeftJoin, to_account)
        .filter(signal_sources::Column::OrganizationId.eq(org))
        .filter(signal_sources::Column::Id.eq(signal.source_id))
        .into_tuple()
        .one(&state.db)
        .await
        .map_err(domain::Error::from)?;
    if let Some((sid, sname, kind, cid, first, last, email, aid, aname, domain)) = row {
        r.sources.insert(sid, source_summary(sid, &sname, &kind));
        if let Some(c) = cid {
            r.contacts.insert(c, actor_summary(c, first, last, email));
        }
        if let (Some(a), Some(name)) = (aid, aname) {
            r.accounts.insert(a, account_summary(a, &name, domain));
        }
    }
    Ok(r)
}

fn actor_body(i: &Ingested, r: &Related) -> Option<Value> {
    i.contact_id.and_then(|c| r.contacts.get(&c)).cloned()
}

fn account_body(i: &Ingested, r: &Related) -> Option<Value> {
    i.account_id.and_then(|a| r.accounts.get(&a)).cloned()
}

/// A stored signal in the original's REST shape, with its source, actor and account; `null` for
/// a profile update, which stores none.
fn signal_body(i: &Ingested, r: &Related) -> Value {
    let Some(s) = &i.signal else {
        return Value::Null;
    };
    json!({
        "id": s.id,
        "organizationId": s.organization_id,
        "sourceId": s.source_id,
        "type": s.signal_type,
        "actorId": s.contact_id,
        "accountId": s.account_id,
        "anonymousId": s.anonymous_id,
        "metadata": s.metadata,
        "idempotencyKey": s.idempotency_key,
        "timestamp": s.timestamp,
        "createdAt": s.created_at,
        "source": r.sources.get(&s.source_id),
        "actor": actor_body(i, r),
        "account": account_body(i, r),
        "deduplicated": i.deduplicated,
    })
}

/// `POST /api/v1/signals`: `201` with the new signal, or `200` with `"deduplicated": true` and
/// the original.
async fn ingest_one(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let actor = actor_of(&state, &headers).await?;
        let v = parse_json(&body)?;
        domain::text::refuse_nul(&v, "")?;
        let input = rest_input(v, "")?;
        if super::intake::wants_async(&headers) {
            return super::intake::accept(
                &state,
                &actor,
                vec![input],
                "",
                domain::signals::system_source::API,
            )
            .await;
        }
        let out =
            ingest_one_signal(&state, &actor, input, domain::signals::system_source::API).await?;
        let rel = related_one(&state, actor.organization_id, &out).await?;
        let status = if out.deduplicated {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok::<_, ApiError>((status, axum::Json(signal_body(&out, &rel))).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/signals/batch` with `{"signals": [...]}` (1 to 1,000): a result per item and
/// a summary; a bad item fails alone. The status says what happened to the whole
/// ([`BatchOutcome::status`]):
/// `201` every item accepted and something stored, `200` every item accepted but all were
/// repeats, `207` some items failed (the others are stored), `400` every item failed.
async fn ingest_batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let actor = actor_of(&state, &headers).await?;
        let v = parse_json(&body)?;
        let unknown = unknown_keys(&v, "", &["signals"], "a batch");
        if !unknown.is_empty() {
            return Err(domain::Error::Validation(unknown).into());
        }
        let items = match v.get("signals") {
            Some(Value::Array(a)) => a.clone(),
            _ => {
                return Err(domain::Error::invalid(
                    "signals",
                    "must be an array of 1 to 1000 signals",
                )
                .into());
            }
        };
        if super::intake::wants_async(&headers) {
            let inputs = convert_all(items, "signals", rest_input)?;
            return super::intake::accept(
                &state,
                &actor,
                inputs,
                "signals",
                domain::signals::system_source::API,
            )
            .await;
        }
        run_batch(
            &state,
            &actor,
            items,
            "signals",
            domain::signals::system_source::API,
            rest_input,
        )
        .await
        .map(|(summary, body)| (summary.status(), axum::Json(body)).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Every item converted, or every item's field errors (named by request position): a request
/// accepted for later ingest is accepted whole or not at all.
pub(super) fn convert_all(
    items: Vec<Value>,
    prefix: &str,
    convert: impl Fn(Value, &str) -> Result<Input, domain::Error>,
) -> Result<Vec<Input>, domain::Error> {
    if items.is_empty() || items.len() > domain::signals::MAX_BATCH {
        return Err(domain::Error::invalid(
            prefix,
            format!("must hold 1 to {} signals", domain::signals::MAX_BATCH),
        ));
    }
    let mut inputs = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let converted = domain::text::refuse_nul(&v, &format!("{prefix}.{i}"))
            .and_then(|()| convert(v, &format!("{prefix}.{i}.")));
        match converted {
            Ok(input) => {
                inputs.push(input);
                positions.push(i);
            }
            Err(domain::Error::Validation(f)) => errors.extend(f),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        return Ok(inputs);
    }
    // The items that did convert are refused too: name their own errors as well, so one answer
    // lists everything to fix.
    for (input, i) in inputs.iter().zip(positions) {
        errors.extend(
            domain::signals::check_inputs(std::slice::from_ref(input), "")
                .into_iter()
                .map(|f| domain::FieldError::new(format!("{prefix}.{i}.{}", f.field), f.message)),
        );
    }
    errors.sort_by_key(|f| {
        f.field.strip_prefix(prefix).and_then(|r| {
            r.trim_start_matches('.')
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
    });
    Err(domain::Error::Validation(errors))
}

/// What happened to a batch as a whole.
pub(super) struct BatchOutcome {
    pub(super) succeeded: usize,
    pub(super) failed: usize,
    /// Items that stored something new (not deduplicated).
    pub(super) stored: usize,
}

impl BatchOutcome {
    /// `400` when every item failed, `207` when some did, `201` when every item was accepted
    /// and something new was stored, `200` when every item was accepted as a repeat (or a
    /// profile update, which stores no signal).
    pub(super) fn status(&self) -> StatusCode {
        if self.succeeded == 0 {
            StatusCode::BAD_REQUEST
        } else if self.failed > 0 {
            StatusCode::MULTI_STATUS
        } else if self.stored > 0 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }
}

/// Converts each item, ingests the good ones in one call, and answers a result per item in
/// input order with a summary. When every item failed, the body also carries the usual
/// `error` (`BAD_USER_INPUT` with every item's fields), so clients that only read errors see why.
pub(super) async fn run_batch(
    state: &AppState,
    actor: &Actor,
    items: Vec<Value>,
    prefix: &str,
    default_source: &str,
    convert: impl Fn(Value, &str) -> Result<Input, domain::Error>,
) -> Result<(BatchOutcome, Value), ApiError> {
    if items.is_empty() || items.len() > domain::signals::MAX_BATCH {
        return Err(domain::Error::invalid(
            prefix,
            format!("must hold 1 to {} signals", domain::signals::MAX_BATCH),
        )
        .into());
    }
    let mut slots: Vec<Result<usize, domain::Error>> = Vec::with_capacity(items.len());
    let mut inputs = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        // NUL anywhere in the item fails the item alone, named as sent.
        if let Err(e) = domain::text::refuse_nul(&v, &format!("{prefix}.{i}")) {
            slots.push(Err(e));
            continue;
        }
        match convert(v, &format!("{prefix}.{i}.")) {
            Ok(input) => {
                slots.push(Ok(inputs.len()));
                inputs.push(input);
            }
            Err(e) => slots.push(Err(e)),
        }
    }
    let mut ingested: Vec<Option<Result<Ingested, domain::Error>>> = if inputs.is_empty() {
        Vec::new()
    } else {
        ingest(state, actor, inputs, prefix, default_source)
            .await?
            .into_iter()
            .map(Some)
            .collect()
    };
    // Field names inside `ingest_many` count only the converted items; name them by position
    // in the request instead.
    let ok: Vec<&Ingested> = ingested
        .iter()
        .flatten()
        .filter_map(|r| r.as_ref().ok())
        .collect();
    let rel = related(state, actor.organization_id, &ok).await?;
    let mut results = Vec::new();
    let (mut succeeded, mut failed, mut dedup, mut stored) = (0, 0, 0, 0);
    let mut all_fields = Vec::new();
    for (i, slot) in slots.into_iter().enumerate() {
        let r = match slot {
            Err(e) => Err(e),
            Ok(k) => ingested[k]
                .take()
                .unwrap_or_else(|| Err(domain::Error::Internal("missing result".into()))),
        };
        match r {
            Ok(out) => {
                succeeded += 1;
                dedup += usize::from(out.deduplicated);
                stored += usize::from(!out.deduplicated && out.signal.is_some());
                results.push(json!({
                    "index": i, "success": true, "deduplicated": out.deduplicated,
                    "dropped": out.dropped,
                    "signal": signal_body(&out, &rel),
                    "contactId": out.contact_id, "accountId": out.account_id,
                }));
            }
            Err(e) => {
                failed += 1;
                let e = renumber(e, prefix, i);
                if let domain::Error::Validation(f) = &e {
                    all_fields.extend(f.iter().cloned());
                }
                results.push(json!({"index": i, "success": false, "error": e.body()}));
            }
        }
    }
    let total = results.len();
    let mut body = json!({
        "results": results,
        "summary": {"total": total, "succeeded": succeeded, "failed": failed, "deduplicated": dedup},
    });
    let outcome = BatchOutcome {
        succeeded,
        failed,
        stored,
    };
    if succeeded == 0 {
        body["error"] = json!({
            "code": domain::Code::BadUserInput.as_str(),
            "message": "no item of the batch was accepted; see results",
            "fields": all_fields,
        });
    }
    Ok((outcome, body))
}

/// Rewrites `<prefix>.<k>.<field>` to `<prefix>.<i>.<field>` (the item's request position).
fn renumber(e: domain::Error, prefix: &str, i: usize) -> domain::Error {
    match e {
        domain::Error::Validation(fields) => domain::Error::Validation(
            fields
                .into_iter()
                .map(|mut f| {
                    let head = format!("{prefix}.");
                    if let Some(rest) = f.field.strip_prefix(&head)
                        && let Some((_, field)) = rest.split_once('.')
                    {
                        f.field = format!("{prefix}.{i}.{field}");
                    }
                    f
                })
                .collect(),
        ),
        other => other,
    }
}
