//! Validation: each item checked field by field, its source resolved, its identity hints
//! normalised and its content dedupe key computed, before anything is read or written.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SubsecRound as _, Utc};
use entity::{companies, contacts, signal_sources};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{AccountHints, AccountTraits, ActorHints, ContactTraits, Input, MAX_METADATA_BYTES};
use crate::signals::identifiers::{self, confidence, kind};
use crate::{Error, FieldError, Result};
/// Normalised identity hints of one item.
#[derive(Debug, Clone, Default)]
pub(super) struct Hints {
    pub(super) email: Option<String>,
    pub(super) github: Option<String>,
    pub(super) npm: Option<String>,
    pub(super) twitter: Option<String>,
    pub(super) linkedin: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) source_ids: Vec<(&'static str, String)>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) company_name: Option<String>,
    pub(super) github_org: Option<String>,
}

impl Hints {
    /// The contact identities these hints name, strongest first.
    pub(super) fn identities(&self) -> Vec<(&'static str, String, f64)> {
        let mut out = Vec::new();
        if let Some(v) = &self.email {
            out.push((kind::EMAIL, v.clone(), confidence::EXACT_EMAIL));
        }
        if let Some(v) = &self.github {
            out.push((kind::GITHUB, v.clone(), confidence::GITHUB));
        }
        if let Some(v) = &self.npm {
            out.push((kind::NPM, v.clone(), confidence::NPM));
        }
        if let Some(v) = &self.twitter {
            out.push((kind::TWITTER, v.clone(), confidence::SOCIAL));
        }
        if let Some(v) = &self.linkedin {
            out.push((kind::LINKEDIN, v.clone(), confidence::SOCIAL));
        }
        for (k, v) in &self.source_ids {
            out.push((*k, v.clone(), confidence::SOCIAL));
        }
        if let Some(v) = &self.user_id {
            out.push((kind::SEGMENT, v.clone(), confidence::GITHUB));
        }
        out
    }

    /// The strongest identifier, standing for the actor in the content dedupe key.
    pub(super) fn primary(&self) -> Option<String> {
        self.identities()
            .into_iter()
            .next()
            .map(|(k, v, _)| format!("{}:{v}", k.to_lowercase()))
    }
}

#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) source: signal_sources::Model,
    pub(super) signal_type: String,
    pub(super) actor_id: Option<Uuid>,
    pub(super) account_id: Option<Uuid>,
    pub(super) anonymous_id: Option<String>,
    pub(super) metadata: Value,
    pub(super) idempotency_key: Option<String>,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) hints: Hints,
    pub(super) contact_traits: Option<ContactTraits>,
    pub(super) account_traits: Option<AccountTraits>,
    pub(super) profile_only: bool,
    pub(super) dedupe_key: String,
    /// Whether content dedup applies: only to a signal without a sender's id
    /// (`idempotencyKey`) and with a sender's timestamp, against earlier such signals with the
    /// same content at the same instant (a retried delivery), never to a real repeat.
    pub(super) content_dedup: bool,
}

/// The canonical form of metadata hashed for content dedup: object keys sorted
/// recursively, arrays in order, scalars JSON-encoded, `null` as the empty string.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// `<source kind>:<actor>:<type>:<first 8 hex of SHA-256 of the canonical metadata>`. The actor
/// is the sender's `actorId`, else `anonymousId`, else the strongest identity hint, else
/// `anonymous` (the original used only `actorId`, so two people sending the same event through
/// identity hints collapsed into one).
pub fn dedupe_key(source_kind: &str, actor: &str, signal_type: &str, metadata: &Value) -> String {
    let digest = Sha256::digest(canonical(metadata).as_bytes());
    let h8: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{source_kind}:{actor}:{signal_type}:{h8}")
}

pub(super) fn opt_text(
    errors: &mut Vec<FieldError>,
    field: String,
    v: Option<String>,
    max: usize,
) -> Option<String> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
        return None;
    }
    Some(v)
}

pub(super) fn parse_id(
    errors: &mut Vec<FieldError>,
    field: String,
    v: Option<String>,
) -> Option<Uuid> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    match Uuid::parse_str(&v) {
        Ok(id) => Some(id),
        Err(_) => {
            errors.push(FieldError::new(field, "is not a valid id"));
            None
        }
    }
}

pub(super) fn hint(
    errors: &mut Vec<FieldError>,
    field: String,
    v: Option<String>,
    norm: fn(&str) -> Option<String>,
    what: &str,
) -> Option<String> {
    let v = v.filter(|s| !s.trim().is_empty())?;
    let n = norm(&v);
    if n.is_none() {
        errors.push(FieldError::new(field, format!("must be {what}")));
    }
    n
}

/// Validates every item and resolves its source; returns per-item field errors.
pub(super) async fn prepare(
    txn: &DatabaseTransaction,
    org: Uuid,
    inputs: Vec<Input>,
    prefix: &str,
    default: signal_sources::Model,
    now: DateTime<Utc>,
) -> Result<Vec<Result<Prepared>>> {
    let batch = !prefix.is_empty();
    // Sources, contacts and accounts named by id, looked up once for the batch.
    let mut source_ids = HashSet::new();
    let mut contact_ids = HashSet::new();
    let mut account_ids = HashSet::new();
    for i in &inputs {
        let id = |s: &Option<String>| s.as_deref().and_then(|s| Uuid::parse_str(s.trim()).ok());
        source_ids.extend(id(&i.source_id));
        contact_ids.extend(id(&i.actor_id));
        account_ids.extend(id(&i.account_id));
    }
    let sources: HashMap<Uuid, signal_sources::Model> = if source_ids.is_empty() {
        HashMap::new()
    } else {
        signal_sources::Entity::find()
            .filter(signal_sources::Column::OrganizationId.eq(org))
            .filter(signal_sources::Column::Id.is_in(source_ids))
            .all(txn)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect()
    };
    let known_contacts: HashSet<Uuid> = if contact_ids.is_empty() {
        HashSet::new()
    } else {
        contacts::Entity::find()
            .select_only()
            .column(contacts::Column::Id)
            .filter(contacts::Column::OrganizationId.eq(org))
            .filter(contacts::Column::Id.is_in(contact_ids))
            .into_tuple::<Uuid>()
            .all(txn)
            .await?
            .into_iter()
            .collect()
    };
    let known_accounts: HashSet<Uuid> = if account_ids.is_empty() {
        HashSet::new()
    } else {
        companies::Entity::find()
            .select_only()
            .column(companies::Column::Id)
            .filter(companies::Column::OrganizationId.eq(org))
            .filter(companies::Column::Id.is_in(account_ids))
            .into_tuple::<Uuid>()
            .all(txn)
            .await?
            .into_iter()
            .collect()
    };

    let known = Known {
        sources,
        contacts: known_contacts,
        accounts: known_accounts,
    };
    Ok(inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let p = if batch {
                format!("{prefix}.{i}.")
            } else {
                String::new()
            };
            prepare_one(input, &p, Some(&known), &default, now)
        })
        .collect())
}

/// What a batch names by id, read once for it.
struct Known {
    sources: HashMap<Uuid, signal_sources::Model>,
    contacts: HashSet<Uuid>,
    accounts: HashSet<Uuid>,
}

/// Checks items as [`prepare`] does without reading anything: the ids they name are only
/// checked to be well-formed (the ingest that follows checks they exist). Every field error of
/// every item (named `<prefix>.<index>.<field>` in a batch), or none.
pub fn check_inputs(inputs: &[Input], prefix: &str) -> Vec<FieldError> {
    let now = Utc::now();
    // Stands in for the source the ingest will resolve; only its kind is read (the dedupe
    // key), and nothing of this item is kept.
    let source = signal_sources::Model {
        id: Uuid::nil(),
        organization_id: Uuid::nil(),
        kind: "PRODUCT_API".into(),
        name: String::new(),
        status: "ACTIVE".into(),
        config: json!({}),
        secret_ciphertext: None,
        system_key: None,
        last_sync_at: None,
        error_message: None,
        created_at: now,
        updated_at: now,
    };
    let batch = !prefix.is_empty();
    let mut errors = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let p = if batch {
            format!("{prefix}.{i}.")
        } else {
            String::new()
        };
        match prepare_one(input.clone(), &p, None, &source, now) {
            Err(Error::Validation(f)) => errors.extend(f),
            Err(e) => errors.push(FieldError::new(p.trim_end_matches('.'), e.to_string())),
            Ok(_) => {}
        }
    }
    errors
}

/// One item checked and normalised; the ids it names are looked up in `known` (with `None`,
/// any well-formed id passes and the source is `default`).
fn prepare_one(
    input: Input,
    p: &str,
    known: Option<&Known>,
    default: &signal_sources::Model,
    now: DateTime<Utc>,
) -> Result<Prepared> {
    let f = |name: &str| format!("{p}{name}");
    let nul = nul_errors(&input, &f);
    if !nul.is_empty() {
        return Err(Error::Validation(nul));
    }
    let mut errors = Vec::new();
    // One spelling per kind of event (`docs_view` → `docs_read`).
    let signal_type = crate::signals::types::canonical(&input.signal_type);
    if signal_type.is_empty() {
        errors.push(FieldError::new(f("type"), "is required"));
    } else if signal_type.chars().count() > 100 || signal_type.chars().any(char::is_control) {
        errors.push(FieldError::new(
            f("type"),
            "must be at most 100 printable characters",
        ));
    }
    let source = match parse_id(&mut errors, f("sourceId"), input.source_id) {
        None => Some(default.clone()),
        Some(_) if known.is_none() => Some(default.clone()),
        Some(id) => match known.and_then(|k| k.sources.get(&id)) {
            None => {
                errors.push(FieldError::new(f("sourceId"), "no such signal source"));
                None
            }
            Some(s) if s.status == "PAUSED" => {
                errors.push(FieldError::new(f("sourceId"), "this source is paused"));
                None
            }
            Some(s) => Some(s.clone()),
        },
    };
    let actor_id = parse_id(&mut errors, f("actorId"), input.actor_id);
    if let Some(id) = actor_id
        && known.is_some_and(|k| !k.contacts.contains(&id))
    {
        errors.push(FieldError::new(f("actorId"), "no such contact"));
    }
    let account_id = parse_id(&mut errors, f("accountId"), input.account_id);
    if let Some(id) = account_id
        && known.is_some_and(|k| !k.accounts.contains(&id))
    {
        errors.push(FieldError::new(f("accountId"), "no such account"));
    }
    let anonymous_id = opt_text(&mut errors, f("anonymousId"), input.anonymous_id, 200);
    let idempotency_key = opt_text(&mut errors, f("idempotencyKey"), input.idempotency_key, 200);
    let metadata = match input.metadata {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) => Value::Object(m),
        Some(_) => {
            errors.push(FieldError::new(f("metadata"), "must be a JSON object"));
            json!({})
        }
    };
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        errors.push(FieldError::new(
            f("metadata"),
            format!("must be at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    let sent_at = input
        .timestamp
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    let timestamp = match input.timestamp.as_deref().map(str::trim) {
        None | Some("") => now,
        Some(t) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) if t.with_timezone(&Utc) > now + crate::signals::max_ahead() => {
                errors.push(FieldError::new(
                    f("timestamp"),
                    "must not be more than 24 hours in the future",
                ));
                now
            }
            // Stored to the microsecond on both backends: compare at that precision.
            Ok(t) => t.with_timezone(&Utc).trunc_subsecs(6),
            Err(_) => {
                errors.push(FieldError::new(
                    f("timestamp"),
                    "must be an ISO-8601 date-time with a time zone",
                ));
                now
            }
        },
    };
    let hints = hints(
        &mut errors,
        &f,
        &input.actor,
        &input.account,
        &anonymous_id,
        &metadata,
    );
    let contact_traits = input.contact_traits;
    let account_traits = input.account_traits;
    let profile_only = input.profile_only;
    let Some(source) = source.filter(|_| errors.is_empty()) else {
        return Err(Error::Validation(errors));
    };
    let who = actor_id
        .map(|id| id.to_string())
        .or_else(|| anonymous_id.clone())
        .or_else(|| hints.primary())
        .unwrap_or_else(|| "anonymous".into());
    let dedupe_key = dedupe_key(&source.kind, &who, &signal_type, &metadata);
    let content_dedup = idempotency_key.is_none() && sent_at;
    Ok(Prepared {
        source,
        signal_type,
        actor_id,
        account_id,
        anonymous_id,
        metadata,
        idempotency_key,
        timestamp,
        hints,
        contact_traits,
        account_traits,
        profile_only,
        dedupe_key,
        content_dedup,
    })
}

/// Every text of the item holding NUL ([`crate::text`]), named as the item's fields.
fn nul_errors(input: &Input, f: &dyn Fn(&str) -> String) -> Vec<FieldError> {
    use crate::text::{check_text, nul_fields};
    let mut errors = Vec::new();
    let mut text =
        |name: &str, v: &Option<String>| check_text(&mut errors, || f(name), v.as_deref());
    text("type", &Some(input.signal_type.clone()));
    text("sourceId", &input.source_id);
    text("actorId", &input.actor_id);
    text("accountId", &input.account_id);
    text("anonymousId", &input.anonymous_id);
    text("idempotencyKey", &input.idempotency_key);
    text("timestamp", &input.timestamp);
    if let Some(a) = &input.actor {
        text("actor.email", &a.email);
        text("actor.github", &a.github);
        text("actor.npm", &a.npm);
        text("actor.twitter", &a.twitter);
        text("actor.linkedin", &a.linkedin);
        text("actor.name", &a.name);
        text("actor.userId", &a.user_id);
        for (k, v) in &a.source_ids {
            text(&format!("actor.{}", k.to_lowercase()), &Some(v.clone()));
        }
    }
    if let Some(a) = &input.account {
        text("account.domain", &a.domain);
        text("account.name", &a.name);
        text("account.githubOrg", &a.github_org);
    }
    if let Some(t) = &input.contact_traits {
        text("traits.firstName", &t.first_name);
        text("traits.lastName", &t.last_name);
        text("traits.title", &t.title);
        text("traits.phone", &t.phone);
        text("traits.city", &t.city);
        text("traits.country", &t.country);
    }
    if let Some(t) = &input.account_traits {
        text("traits.name", &t.name);
        text("traits.industry", &t.industry);
        text("traits.size", &t.size);
        text("traits.website", &t.website);
    }
    if let Some(m) = &input.metadata {
        errors.extend(nul_fields(m, &f("metadata")));
    }
    errors
}

/// Identity hints from the explicit `actor`/`account` objects, then the `anonymousId`
/// conventions (`github:<login>`, `npm:<user>`, an email), then metadata (`sender_login`,
/// `maintainer_email`, `email`, `npm_username`). GitHub noreply emails become the login.
pub(super) fn hints(
    errors: &mut Vec<FieldError>,
    f: &dyn Fn(&str) -> String,
    actor: &Option<ActorHints>,
    account: &Option<AccountHints>,
    anonymous_id: &Option<String>,
    metadata: &Value,
) -> Hints {
    let mut h = Hints::default();
    if let Some(a) = actor {
        h.email = hint(
            errors,
            f("actor.email"),
            a.email.clone(),
            identifiers::email,
            "an email address",
        );
        h.github = hint(
            errors,
            f("actor.github"),
            a.github.clone(),
            identifiers::handle,
            "a GitHub login",
        );
        h.npm = hint(
            errors,
            f("actor.npm"),
            a.npm.clone(),
            identifiers::handle,
            "an npm user name",
        );
        h.twitter = hint(
            errors,
            f("actor.twitter"),
            a.twitter.clone(),
            identifiers::handle,
            "a Twitter/X handle",
        );
        h.linkedin = hint(
            errors,
            f("actor.linkedin"),
            a.linkedin.clone(),
            identifiers::linkedin,
            "a LinkedIn profile",
        );
        h.user_id = opt_text(errors, f("actor.userId"), a.user_id.clone(), 200);
        for (k, v) in &a.source_ids {
            let field = f(&format!("actor.{}", k.to_lowercase()));
            if !kind::SOURCE_IDS.contains(k) {
                errors.push(FieldError::new(field, "is not an identity a source gives"));
            } else if let Some(v) = opt_text(errors, field, Some(v.clone()), 200) {
                let v = if *k == kind::REDDIT {
                    v.to_lowercase()
                } else {
                    v
                };
                if !h.source_ids.iter().any(|(x, _)| x == k) {
                    h.source_ids.push((*k, v));
                }
            }
        }
        if let Some(name) = opt_text(errors, f("actor.name"), a.name.clone(), 200) {
            let mut parts = name.splitn(2, char::is_whitespace);
            h.first_name = parts.next().map(str::to_owned);
            h.last_name = parts
                .next()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
        }
    }
    if let Some(a) = account {
        h.domain = hint(
            errors,
            f("account.domain"),
            a.domain.clone(),
            identifiers::domain,
            "a domain such as acme.io",
        );
        h.company_name = opt_text(errors, f("account.name"), a.name.clone(), 200);
        h.github_org = hint(
            errors,
            f("account.githubOrg"),
            a.github_org.clone(),
            identifiers::handle,
            "a GitHub organization",
        );
    }
    if let Some(anon) = anonymous_id {
        if let Some(login) = anon.strip_prefix("github:") {
            h.github = h.github.take().or_else(|| identifiers::handle(login));
        } else if let Some(user) = anon.strip_prefix("npm:") {
            h.npm = h.npm.take().or_else(|| identifiers::handle(user));
        } else if anon.contains('@') {
            h.email = h.email.take().or_else(|| identifiers::email(anon));
        }
    }
    let meta = |k: &str| metadata.get(k).and_then(Value::as_str);
    if h.github.is_none() {
        h.github = meta("sender_login").and_then(identifiers::handle);
    }
    if h.email.is_none() {
        h.email = meta("maintainer_email")
            .or_else(|| meta("email"))
            .and_then(identifiers::email);
    }
    if h.npm.is_none() {
        h.npm = meta("npm_username").and_then(identifiers::handle);
    }
    if let Some(login) = h
        .email
        .as_deref()
        .and_then(identifiers::github_noreply_login)
    {
        h.github = h.github.take().or(Some(login));
        h.email = None;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_metadata_sorts_keys_and_blanks_nulls() {
        let v = json!({"b": [1, {"z": null, "a": "x"}], "a": true});
        assert_eq!(canonical(&v), r#"{"a":true,"b":[1,{"a":"x","z":}]}"#);
        let a = dedupe_key("GITHUB", "u1", "repo_star", &json!({"x": 1, "y": 2}));
        let b = dedupe_key("GITHUB", "u1", "repo_star", &json!({"y": 2, "x": 1}));
        assert_eq!(a, b);
        assert!(a.starts_with("GITHUB:u1:repo_star:"));
        assert_eq!(a.rsplit(':').next().unwrap().len(), 8);
        assert_ne!(a, dedupe_key("GITHUB", "u1", "repo_star", &json!({"x": 2})));
    }
}
