//! Signal ingest (DESIGN 5, issue 6): every path — GraphQL, REST, Segment, connectors — calls
//! [`ingest_many`], which for a whole batch, in **one transaction**:
//!
//! 1. validates each item (field errors named `<prefix>.<index>.<field>`; a bad item fails alone);
//! 2. returns the original signal for a repeated `idempotencyKey` (per organization) and for a
//!    content duplicate within 24 hours (reference 1.3: same source kind, actor, type and metadata
//!    hash, and the earlier signal's event time within the last 24 h);
//! 3. resolves identity: finds the contact by email, GitHub, npm, Twitter/X or LinkedIn identity,
//!    creates it when unknown, finds or creates the account from an explicit domain, the email's
//!    company domain (never free mail) or the GitHub organization, and records identities;
//! 4. writes the signals, their `signal.created` events and one debounced "rescore this account"
//!    job per touched account;
//! 5. auto-merges (DESIGN 5): when a signal's hints name its contact and exactly one other
//!    contact (by email, GitHub, npm, Twitter/X or LinkedIn identity, or contact email) with
//!    confidence ≥ 0.8, the two are merged in the same transaction, after the batch's rows are
//!    written so they move too ([`crate::signals::merges`]). Detection reads only what the batch already
//!    loaded; pairs whose merge a person undid are never merged again.
//!
//! Statements are per batch, not per signal (bulk lookups, multi-row inserts, one event
//! append taken last), which keeps a batch of 1,000 to a few dozen statements. On PostgreSQL,
//! find-or-create is made race-free by transaction-scoped advisory locks on the identities,
//! domains and GitHub organizations the batch did not find (what it may create), taken in sorted
//! order so batches never deadlock each other, after which the batch reads again; known people
//! take no lock, so concurrent batches about them never wait for each other. SQLite's `BEGIN
//! IMMEDIATE` serialises writers anyway. The unique indexes remain the last word: a batch that
//! loses a race with another writer (e.g. a CRM `createContact` with the same email) is retried.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{account_scores, companies, contact_identities, contacts, signal_sources, signals};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::crm::{self, Page, PageRequest};
use crate::signals::identifiers::{self, confidence, kind};
use crate::signals::merges::{self, Candidate, Evidence, Sighting};
use crate::{Actor, Error, FieldError, Result, events, scoring};

/// The most signals one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// How long identical content counts as a duplicate.
pub const DEDUPE_WINDOW_HOURS: i64 = 24;
/// The largest metadata object accepted, serialised.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Built-in sources, created on first use.
pub mod system_source {
    pub const API: &str = "api";
    pub const SEGMENT: &str = "segment";
}

/// Who did it, as the sender knows them.
#[derive(Debug, Clone, Default)]
pub struct ActorHints {
    pub email: Option<String>,
    pub github: Option<String>,
    pub npm: Option<String>,
    pub twitter: Option<String>,
    pub linkedin: Option<String>,
    pub name: Option<String>,
    /// The sender's own user id (Segment `userId`), remembered as a `SEGMENT` identity.
    pub user_id: Option<String>,
}

/// Which company it was, as the sender knows it.
#[derive(Debug, Clone, Default)]
pub struct AccountHints {
    pub domain: Option<String>,
    pub name: Option<String>,
    pub github_org: Option<String>,
}

/// Contact fields to set from the sender's traits (Segment `identify`).
#[derive(Debug, Clone, Default)]
pub struct ContactTraits {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Account fields to set from the sender's traits (Segment `group`).
#[derive(Debug, Clone, Default)]
pub struct AccountTraits {
    pub name: Option<String>,
    pub industry: Option<String>,
    pub size: Option<String>,
    pub website: Option<String>,
}

/// One signal as sent. Ids and the timestamp are text so every path reports malformed values
/// the same way (as field errors).
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub source_id: Option<String>,
    pub signal_type: String,
    pub actor_id: Option<String>,
    pub account_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub metadata: Option<Value>,
    pub idempotency_key: Option<String>,
    /// ISO-8601; the event time (default: now).
    pub timestamp: Option<String>,
    pub actor: Option<ActorHints>,
    pub account: Option<AccountHints>,
    pub contact_traits: Option<ContactTraits>,
    pub account_traits: Option<AccountTraits>,
    /// A profile update (Segment `identify`, `group`, `alias`): the contact and account are
    /// found or created and their traits applied, but no signal is stored (it is not something
    /// the person did, and would count as activity in the score).
    pub profile_only: bool,
}

/// The outcome of one ingested item.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The stored signal (the earlier one when deduplicated); `None` for a profile update.
    pub signal: Option<signals::Model>,
    /// `true` when an earlier signal was returned instead of storing a new one.
    pub deduplicated: bool,
    /// The contact and account it resolved to.
    pub contact_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
}

impl Ingested {
    fn stored(signal: signals::Model, deduplicated: bool) -> Self {
        Ingested {
            contact_id: signal.contact_id,
            account_id: signal.account_id,
            signal: Some(signal),
            deduplicated,
        }
    }
}

/// Normalised identity hints of one item.
#[derive(Debug, Clone, Default)]
struct Hints {
    email: Option<String>,
    github: Option<String>,
    npm: Option<String>,
    twitter: Option<String>,
    linkedin: Option<String>,
    user_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    domain: Option<String>,
    company_name: Option<String>,
    github_org: Option<String>,
}

impl Hints {
    /// The contact identities these hints name, strongest first.
    fn identities(&self) -> Vec<(&'static str, String, f64)> {
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
        if let Some(v) = &self.user_id {
            out.push((kind::SEGMENT, v.clone(), confidence::GITHUB));
        }
        out
    }

    /// The strongest identifier, standing for the actor in the content dedupe key.
    fn primary(&self) -> Option<String> {
        self.identities()
            .into_iter()
            .next()
            .map(|(k, v, _)| format!("{}:{v}", k.to_lowercase()))
    }
}

#[derive(Debug, Clone)]
struct Prepared {
    source: signal_sources::Model,
    signal_type: String,
    actor_id: Option<Uuid>,
    account_id: Option<Uuid>,
    anonymous_id: Option<String>,
    metadata: Value,
    idempotency_key: Option<String>,
    timestamp: DateTime<Utc>,
    hints: Hints,
    contact_traits: Option<ContactTraits>,
    account_traits: Option<AccountTraits>,
    profile_only: bool,
    dedupe_key: String,
}

/// The canonical form of metadata hashed for content dedup (reference 1.3): object keys sorted
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

fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("signals:write")
}

/// Ingests one signal (MEMBER+, key scope `signals:write`) from the default API source unless
/// `sourceId` names another.
pub async fn ingest(db: &DatabaseConnection, actor: &Actor, input: Input) -> Result<Ingested> {
    ingest_many(db, actor, vec![input], "", system_source::API)
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("no signal ingested".into()))?
}

/// Ingests up to [`MAX_BATCH`] signals. Each item gets its own result: a bad item fails with
/// its field errors (named `<prefix>.<index>.<field>`) and the others still land, all in one
/// transaction. Items without `sourceId` come from the built-in source `default_source`
/// ([`system_source`]).
pub async fn ingest_many(
    db: &DatabaseConnection,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    default_source: &str,
) -> Result<Vec<Result<Ingested>>> {
    write_rights(actor)?;
    if inputs.is_empty() || inputs.len() > MAX_BATCH {
        return Err(Error::invalid(
            if prefix.is_empty() { "input" } else { prefix },
            format!("must hold 1 to {MAX_BATCH} signals"),
        ));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ingest_once(db, actor, inputs.clone(), prefix, default_source).await {
            Err(Error::Database(e)) if attempt < 3 && retryable(&e) => {
                tracing::debug!(error = %e, attempt, "ingest lost a race; retrying");
                continue;
            }
            other => return other,
        }
    }
}

fn retryable(e: &sea_orm::DbErr) -> bool {
    if matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        return true;
    }
    // A contact a concurrent merge deleted while this batch attributed a signal to it: the retry
    // reads the identities as the merge left them.
    if matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
    ) {
        return true;
    }
    let s = e.to_string();
    s.contains("deadlock") || s.contains("could not serialize") || s.contains("database is locked")
}

async fn ingest_once(
    db: &DatabaseConnection,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    default_source: &str,
) -> Result<Vec<Result<Ingested>>> {
    let org = actor.organization_id;
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    let default = system_source(&txn, org, default_source).await?;
    let prepared = prepare(&txn, org, inputs, prefix, default, now).await?;
    let mut w = Writer::load(&txn, org, &prepared, now).await?;
    if lock_unknown(&txn, org, &prepared, &w).await? {
        // Another batch may have created some of them before we held the locks.
        w = Writer::load(&txn, org, &prepared, now).await?;
    }
    let mut results = Vec::with_capacity(prepared.len());
    for item in prepared {
        results.push(match item {
            Err(e) => Err(e),
            Ok(p) => Ok(w.ingest(&txn, p).await?),
        });
    }
    let merged_into = w.flush(&txn, actor).await?;
    txn.commit().await?;
    // Signals of a contact merged away now belong to its primary.
    for r in results.iter_mut().flatten() {
        if let Some(p) = r.contact_id.and_then(|c| merged_into.get(&c)) {
            r.contact_id = Some(*p);
            if let Some(s) = r.signal.as_mut() {
                s.contact_id = Some(*p);
            }
        }
    }
    Ok(results)
}

/// The built-in source `key` of the organization, created on first use.
pub async fn system_source(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    key: &str,
) -> Result<signal_sources::Model> {
    let find = || {
        signal_sources::Entity::find()
            .filter(signal_sources::Column::OrganizationId.eq(organization_id))
            .filter(signal_sources::Column::SystemKey.eq(key))
    };
    if let Some(s) = find().one(db).await? {
        return Ok(s);
    }
    let (kind, name) = match key {
        system_source::SEGMENT => ("SEGMENT", "Segment"),
        _ => ("PRODUCT_API", "API"),
    };
    let now = Utc::now();
    signal_sources::Entity::insert(signal_sources::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        kind: Set(kind.into()),
        name: Set(name.into()),
        status: Set("ACTIVE".into()),
        config: Set(json!({})),
        secret_ciphertext: Set(None),
        system_key: Set(Some(key.into())),
        last_sync_at: Set(None),
        error_message: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            signal_sources::Column::OrganizationId,
            signal_sources::Column::SystemKey,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    find()
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("source {key} missing after insert")))
}

fn opt_text(
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

fn parse_id(errors: &mut Vec<FieldError>, field: String, v: Option<String>) -> Option<Uuid> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    match Uuid::parse_str(&v) {
        Ok(id) => Some(id),
        Err(_) => {
            errors.push(FieldError::new(field, "is not a valid id"));
            None
        }
    }
}

fn hint(
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
async fn prepare(
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

    let mut out = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let p = if batch {
            format!("{prefix}.{i}.")
        } else {
            String::new()
        };
        let f = |name: &str| format!("{p}{name}");
        let mut errors = Vec::new();
        let signal_type = input.signal_type.trim().to_owned();
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
            Some(id) => match sources.get(&id) {
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
            && !known_contacts.contains(&id)
        {
            errors.push(FieldError::new(f("actorId"), "no such contact"));
        }
        let account_id = parse_id(&mut errors, f("accountId"), input.account_id);
        if let Some(id) = account_id
            && !known_accounts.contains(&id)
        {
            errors.push(FieldError::new(f("accountId"), "no such account"));
        }
        let anonymous_id = opt_text(&mut errors, f("anonymousId"), input.anonymous_id, 200);
        let idempotency_key =
            opt_text(&mut errors, f("idempotencyKey"), input.idempotency_key, 200);
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
        let timestamp = match input.timestamp.as_deref().map(str::trim) {
            None | Some("") => now,
            Some(t) => match DateTime::parse_from_rfc3339(t) {
                Ok(t) if t.with_timezone(&Utc) > now + Duration::hours(24) => {
                    errors.push(FieldError::new(
                        f("timestamp"),
                        "must not be more than 24 hours in the future",
                    ));
                    now
                }
                Ok(t) => t.with_timezone(&Utc),
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
            out.push(Err(Error::Validation(errors)));
            continue;
        };
        let who = actor_id
            .map(|id| id.to_string())
            .or_else(|| anonymous_id.clone())
            .or_else(|| hints.primary())
            .unwrap_or_else(|| "anonymous".into());
        let dedupe_key = dedupe_key(&source.kind, &who, &signal_type, &metadata);
        out.push(Ok(Prepared {
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
        }));
    }
    Ok(out)
}

/// Identity hints from the explicit `actor`/`account` objects, then the `anonymousId`
/// conventions (`github:<login>`, `npm:<user>`, an email), then metadata (`sender_login`,
/// `maintainer_email`, `email`, `npm_username`). GitHub noreply emails become the login.
fn hints(
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

/// On PostgreSQL, locks the identities, domains and GitHub organizations of the batch that
/// `w` did not find, i.e. what the batch may create (sorted, so concurrent batches queue rather
/// than deadlock), until the transaction ends. What exists already needs no lock: people seen
/// before, the common case, never make batches wait for each other. Returns whether it locked
/// anything (then the caller reads again what another batch may have created meanwhile).
async fn lock_unknown(
    txn: &DatabaseTransaction,
    org: Uuid,
    items: &[Result<Prepared>],
    w: &Writer,
) -> Result<bool> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let mut keys = BTreeSet::new();
    for p in items.iter().flatten() {
        for (k, v, _) in p.hints.identities() {
            let known = w.identities.contains_key(&(k.to_owned(), v.clone()))
                || (k == kind::EMAIL && w.contacts_by_email.contains_key(&v));
            if !known {
                keys.insert(crate::db::lock_key(org, &format!("{k}:{v}")));
            }
        }
        let email_domain = p
            .hints
            .email
            .as_deref()
            .and_then(identifiers::company_domain_of_email);
        for d in p.hints.domain.iter().chain(email_domain.iter()) {
            if !w.companies_by_domain.contains_key(d) {
                keys.insert(crate::db::lock_key(org, &format!("domain:{d}")));
            }
        }
        if let Some(g) = &p.hints.github_org
            && !w.companies_by_ghorg.contains_key(g)
        {
            keys.insert(crate::db::lock_key(org, &format!("ghorg:{g}")));
        }
    }
    if keys.is_empty() {
        return Ok(false);
    }
    let keys: Vec<i64> = keys.into_iter().collect();
    crate::db::advisory_xact_lock(txn, &keys).await?;
    Ok(true)
}

/// What a batch knows and what it will write, kept in memory so lookups and inserts happen once
/// per batch.
struct Writer {
    org: Uuid,
    now: DateTime<Utc>,
    by_idempotency: HashMap<String, signals::Model>,
    by_content: HashMap<String, signals::Model>,
    identities: HashMap<(String, String), Uuid>,
    contacts_by_email: HashMap<String, Uuid>,
    contact_account: HashMap<Uuid, Option<Uuid>>,
    companies_by_domain: HashMap<String, Uuid>,
    companies_by_ghorg: HashMap<String, Uuid>,
    new_signals: Vec<signals::Model>,
    new_identities: Vec<contact_identities::ActiveModel>,
    /// Accounts and contacts created by the batch, inserted at flush (their `*.created` events
    /// carry them as they are then, traits applied).
    new_companies: Vec<companies::Model>,
    new_contacts: Vec<contacts::Model>,
    /// Existing contacts the batch linked to an account.
    links: BTreeMap<Uuid, Vec<Uuid>>,
    /// Events other than the `*.created` and `signal.created` ones, in the order they happened.
    events: Vec<(&'static str, Value)>,
    touched_accounts: BTreeSet<Uuid>,
    /// Pairs to auto-merge at flush time.
    merge_candidates: Vec<Candidate>,
}

impl Writer {
    async fn load(
        txn: &DatabaseTransaction,
        org: Uuid,
        items: &[Result<Prepared>],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let ok: Vec<&Prepared> = items.iter().flatten().collect();
        let keys: Vec<String> = ok
            .iter()
            .filter_map(|p| p.idempotency_key.clone())
            .collect();
        let mut by_idempotency = HashMap::new();
        for chunk in keys.chunks(crate::db::IN_LIST) {
            for s in signals::Entity::find()
                .filter(signals::Column::OrganizationId.eq(org))
                .filter(signals::Column::IdempotencyKey.is_in(chunk.to_vec()))
                .all(txn)
                .await?
            {
                if let Some(k) = s.idempotency_key.clone() {
                    by_idempotency.insert(k, s);
                }
            }
        }
        let dedupe: Vec<String> = ok
            .iter()
            .map(|p| p.dedupe_key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let since = now - Duration::hours(DEDUPE_WINDOW_HOURS);
        let mut by_content: HashMap<String, signals::Model> = HashMap::new();
        for chunk in dedupe.chunks(crate::db::IN_LIST) {
            for s in signals::Entity::find()
                .filter(signals::Column::OrganizationId.eq(org))
                .filter(signals::Column::DedupeKey.is_in(chunk.to_vec()))
                .filter(signals::Column::Timestamp.gte(since))
                .all(txn)
                .await?
            {
                by_content.entry(s.dedupe_key.clone()).or_insert(s);
            }
        }
        let mut pairs: HashSet<(String, String)> = HashSet::new();
        let mut emails = HashSet::new();
        let mut domains = HashSet::new();
        let mut orgs = HashSet::new();
        let mut contact_ids: HashSet<Uuid> = HashSet::new();
        for p in &ok {
            for (k, v, _) in p.hints.identities() {
                pairs.insert((k.to_owned(), v));
            }
            if let Some(e) = &p.hints.email {
                emails.insert(e.clone());
                domains.extend(identifiers::company_domain_of_email(e));
            }
            domains.extend(p.hints.domain.clone());
            orgs.extend(p.hints.github_org.clone());
            contact_ids.extend(p.actor_id);
        }
        let mut identities = HashMap::new();
        let values: Vec<String> = pairs
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let kinds: Vec<String> = pairs
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in values.chunks(crate::db::IN_LIST) {
            // (organization, kind, value) is the unique index: naming the kinds lets the lookup
            // use all of it instead of reading every identity of the organization.
            for i in contact_identities::Entity::find()
                .filter(contact_identities::Column::OrganizationId.eq(org))
                .filter(contact_identities::Column::Kind.is_in(kinds.clone()))
                .filter(contact_identities::Column::Value.is_in(chunk.to_vec()))
                .all(txn)
                .await?
            {
                if pairs.contains(&(i.kind.clone(), i.value.clone())) {
                    identities.insert((i.kind, i.value), i.contact_id);
                }
            }
        }
        let mut contacts_by_email = HashMap::new();
        let emails: Vec<String> = emails.into_iter().collect();
        for chunk in emails.chunks(crate::db::IN_LIST) {
            for (id, e) in contacts::Entity::find()
                .select_only()
                .column(contacts::Column::Id)
                .column(contacts::Column::EmailNormalized)
                .filter(contacts::Column::OrganizationId.eq(org))
                .filter(contacts::Column::EmailNormalized.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Option<String>)>()
                .all(txn)
                .await?
            {
                if let Some(e) = e {
                    contacts_by_email.insert(e, id);
                }
            }
        }
        contact_ids.extend(identities.values().copied());
        contact_ids.extend(contacts_by_email.values().copied());
        let mut contact_account = HashMap::new();
        let ids: Vec<Uuid> = contact_ids.into_iter().collect();
        for chunk in ids.chunks(crate::db::IN_LIST) {
            for (id, account) in contacts::Entity::find()
                .select_only()
                .column(contacts::Column::Id)
                .column(contacts::Column::AccountId)
                .filter(contacts::Column::OrganizationId.eq(org))
                .filter(contacts::Column::Id.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Option<Uuid>)>()
                .all(txn)
                .await?
            {
                contact_account.insert(id, account);
            }
        }
        let mut companies_by_domain = HashMap::new();
        let domains: Vec<String> = domains.into_iter().collect();
        for chunk in domains.chunks(crate::db::IN_LIST) {
            for (id, d) in companies::Entity::find()
                .select_only()
                .column(companies::Column::Id)
                .column(companies::Column::DomainNormalized)
                .filter(companies::Column::OrganizationId.eq(org))
                .filter(companies::Column::DomainNormalized.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Option<String>)>()
                .all(txn)
                .await?
            {
                if let Some(d) = d {
                    companies_by_domain.insert(d, id);
                }
            }
        }
        let mut companies_by_ghorg = HashMap::new();
        if !orgs.is_empty() {
            // GitHub organizations compare case-insensitively; accounts carry them as typed.
            let wanted: HashSet<String> = orgs;
            let variants: Vec<String> = wanted.iter().cloned().collect();
            for (id, g) in companies::Entity::find()
                .select_only()
                .column(companies::Column::Id)
                .column(companies::Column::GithubOrg)
                .filter(companies::Column::OrganizationId.eq(org))
                .filter(
                    Expr::expr(Func::lower(Expr::col(companies::Column::GithubOrg)))
                        .is_in(variants),
                )
                .into_tuple::<(Uuid, Option<String>)>()
                .all(txn)
                .await?
            {
                if let Some(g) = g {
                    companies_by_ghorg.entry(g.to_lowercase()).or_insert(id);
                }
            }
        }
        Ok(Writer {
            org,
            now,
            by_idempotency,
            by_content,
            identities,
            contacts_by_email,
            contact_account,
            companies_by_domain,
            companies_by_ghorg,
            new_signals: Vec::new(),
            new_identities: Vec::new(),
            new_companies: Vec::new(),
            new_contacts: Vec::new(),
            links: BTreeMap::new(),
            events: Vec::new(),
            touched_accounts: BTreeSet::new(),
            merge_candidates: Vec::new(),
        })
    }

    async fn ingest(&mut self, txn: &DatabaseTransaction, p: Prepared) -> Result<Ingested> {
        if p.profile_only {
            // Applying the same traits again changes nothing, so a repeated message needs no
            // deduplication.
            let (contact_id, account_id) = self.resolve(txn, &p).await?;
            return Ok(Ingested {
                signal: None,
                deduplicated: false,
                contact_id,
                account_id,
            });
        }
        if let Some(k) = &p.idempotency_key
            && let Some(s) = self.by_idempotency.get(k)
        {
            return Ok(Ingested::stored(s.clone(), true));
        }
        if let Some(s) = self.by_content.get(&p.dedupe_key) {
            return Ok(Ingested::stored(s.clone(), true));
        }
        let (contact_id, account_id) = self.resolve(txn, &p).await?;
        let signal = signals::Model {
            id: Uuid::now_v7(),
            organization_id: self.org,
            source_id: p.source.id,
            signal_type: p.signal_type,
            contact_id,
            account_id,
            anonymous_id: p.anonymous_id,
            metadata: p.metadata,
            idempotency_key: p.idempotency_key,
            dedupe_key: p.dedupe_key,
            timestamp: p.timestamp,
            created_at: self.now,
        };
        if let Some(k) = &signal.idempotency_key {
            self.by_idempotency.insert(k.clone(), signal.clone());
        }
        if signal.timestamp >= self.now - Duration::hours(DEDUPE_WINDOW_HOURS) {
            self.by_content
                .insert(signal.dedupe_key.clone(), signal.clone());
        }
        self.touched_accounts.extend(account_id);
        self.new_signals.push(signal.clone());
        Ok(Ingested::stored(signal, false))
    }

    /// Finds or creates the contact and the account of one signal.
    async fn resolve(
        &mut self,
        txn: &DatabaseTransaction,
        p: &Prepared,
    ) -> Result<(Option<Uuid>, Option<Uuid>)> {
        let h = &p.hints;
        let ids = h.identities();
        let mut contact = p.actor_id;
        if contact.is_none() {
            if let Some(e) = &h.email {
                contact = self.contacts_by_email.get(e).copied();
            }
            for (k, v, _) in &ids {
                if contact.is_some() {
                    break;
                }
                contact = self.identities.get(&(k.to_string(), v.clone())).copied();
            }
        }
        // The account: explicit, else the contact's, else from domain, email or GitHub org.
        let mut account = p.account_id;
        if account.is_none()
            && let Some(c) = contact
        {
            account = self.contact_account.get(&c).copied().flatten();
        }
        if account.is_none() {
            let domain = h.domain.clone().or_else(|| {
                h.email
                    .as_deref()
                    .and_then(identifiers::company_domain_of_email)
            });
            if let Some(d) = domain {
                account = Some(self.company_for_domain(&d, h));
            } else if let Some(g) = &h.github_org {
                account = Some(self.company_for_github_org(g, h));
            }
        }
        // A contact is created only from something that names a person (an email or a
        // handle), not from a bare user id of the sender's product.
        let nameable = ids.iter().any(|(k, _, _)| *k != kind::SEGMENT);
        if contact.is_none() && nameable {
            contact = Some(self.create_contact(h, account));
        }
        if let Some(c) = contact {
            self.note_other_owners(c, &ids);
            if let Some(a) = account
                && self.contact_account.get(&c).copied().flatten().is_none()
            {
                self.link_contact(c, a);
            }
            for (k, v, conf) in ids {
                let key = (k.to_owned(), v.clone());
                if self.identities.contains_key(&key) {
                    continue;
                }
                self.identities.insert(key, c);
                self.new_identities.push(contact_identities::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    organization_id: Set(self.org),
                    contact_id: Set(c),
                    kind: Set(k.to_owned()),
                    value: Set(v),
                    confidence: Set(conf),
                    verified: Set(conf >= confidence::VERIFIED),
                    provenance: Set(format!("signal:{}", p.source.kind.to_lowercase())),
                    created_at: Set(self.now),
                });
            }
            if let Some(t) = &p.contact_traits {
                self.apply_contact_traits(txn, c, t).await?;
            }
        }
        if let (Some(a), Some(t)) = (account, &p.account_traits) {
            self.apply_account_traits(txn, a, t).await?;
        }
        Ok((contact, account))
    }

    /// Auto-merge detection, from the batch's maps only: if the hints of a signal attributed
    /// to `c` name exactly one other contact, with a hint of confidence ≥ 0.8, that pair is merged
    /// at flush time. Several other contacts: nothing (left to `mergeSuggestions`).
    fn note_other_owners(&mut self, c: Uuid, ids: &[(&'static str, String, f64)]) {
        let mut evidence: Vec<(Uuid, Evidence)> = Vec::new();
        for (k, v, conf) in ids {
            if *k == kind::SEGMENT {
                continue;
            }
            let mut owners: Vec<(Uuid, &str)> = Vec::new();
            if *k == kind::EMAIL
                && let Some(o) = self.contacts_by_email.get(v)
            {
                owners.push((*o, merges::source::FIELD));
            }
            if let Some(o) = self.identities.get(&(k.to_string(), v.clone())) {
                owners.push((*o, merges::source::IDENTITY));
            }
            for (o, source) in owners.into_iter().filter(|(o, _)| *o != c) {
                let seen = Sighting {
                    contact_id: o,
                    source: source.to_owned(),
                };
                match evidence
                    .iter_mut()
                    .find(|(x, e)| *x == o && e.kind == *k && e.value == *v)
                {
                    Some((_, e)) => e.seen_on.insert(0, seen),
                    None => evidence.push((
                        o,
                        Evidence {
                            kind: (*k).to_owned(),
                            value: v.clone(),
                            confidence: *conf,
                            seen_on: vec![
                                seen,
                                Sighting {
                                    contact_id: c,
                                    source: merges::source::SIGNAL.to_owned(),
                                },
                            ],
                        },
                    )),
                }
            }
        }
        let Some(other) = evidence.first().map(|(o, _)| *o) else {
            return;
        };
        if evidence.iter().any(|(o, _)| *o != other) {
            return;
        }
        let best = evidence
            .iter()
            .map(|(_, e)| e.confidence)
            .fold(0.0, f64::max);
        let known = self
            .merge_candidates
            .iter()
            .any(|m| (m.contact, m.other) == (c, other) || (m.contact, m.other) == (other, c));
        if best < confidence::AUTO_MERGE || known {
            return;
        }
        self.merge_candidates.push(Candidate {
            contact: c,
            other,
            confidence: best,
            evidence: evidence.into_iter().map(|(_, e)| e).collect(),
        });
    }

    /// Brings the batch's maps up to date after auto-merges.
    fn apply_merges(&mut self, done: &merges::AutoMerged) {
        let to = |id: &mut Uuid| {
            if let Some(p) = done.merged_into.get(id) {
                *id = *p;
            }
        };
        self.identities.values_mut().for_each(to);
        self.contacts_by_email.values_mut().for_each(to);
        for dup in done.merged_into.keys() {
            self.contact_account.remove(dup);
        }
        for (p, a) in &done.primary_accounts {
            self.contact_account.insert(*p, *a);
        }
        self.touched_accounts.extend(done.accounts.iter().copied());
    }

    fn company_for_domain(&mut self, domain: &str, h: &Hints) -> Uuid {
        if let Some(id) = self.companies_by_domain.get(domain) {
            return *id;
        }
        let name = h
            .company_name
            .clone()
            .unwrap_or_else(|| identifiers::name_from_domain(domain));
        let mut m = self.blank_company(name);
        m.domain = Some(domain.to_owned());
        m.domain_normalized = Some(domain.to_owned());
        m.website = Some(format!("https://{domain}"));
        m.github_org = h.github_org.clone();
        let id = m.id;
        self.new_companies.push(m);
        self.companies_by_domain.insert(domain.to_owned(), id);
        if let Some(g) = &h.github_org {
            self.companies_by_ghorg.entry(g.clone()).or_insert(id);
        }
        id
    }

    fn company_for_github_org(&mut self, github_org: &str, h: &Hints) -> Uuid {
        if let Some(id) = self.companies_by_ghorg.get(github_org) {
            return *id;
        }
        let mut m = self.blank_company(
            h.company_name
                .clone()
                .unwrap_or_else(|| github_org.to_owned()),
        );
        m.github_org = Some(github_org.to_owned());
        let id = m.id;
        self.new_companies.push(m);
        self.companies_by_ghorg.insert(github_org.to_owned(), id);
        id
    }

    fn blank_company(&self, name: String) -> companies::Model {
        companies::Model {
            id: Uuid::now_v7(),
            organization_id: self.org,
            name: name.chars().take(200).collect(),
            domain: None,
            domain_normalized: None,
            industry: None,
            size: None,
            website: None,
            github_org: None,
            city: None,
            country: None,
            description: None,
            custom_fields: json!({
                "enrichmentSource": "identity_resolution",
                "enrichedAt": self.now,
            }),
            tags: json!([]),
            score: None,
            created_at: self.now,
            updated_at: self.now,
        }
    }

    fn create_contact(&mut self, h: &Hints, account: Option<Uuid>) -> Uuid {
        let first = h
            .first_name
            .clone()
            .or_else(|| h.github.clone())
            .or_else(|| h.npm.clone())
            .or_else(|| h.twitter.clone())
            .or_else(|| h.linkedin.clone());
        let m = contacts::Model {
            id: Uuid::now_v7(),
            organization_id: self.org,
            account_id: account,
            first_name: first.map(|s| s.chars().take(100).collect()),
            last_name: h.last_name.clone().map(|s| s.chars().take(100).collect()),
            email: h.email.clone(),
            email_normalized: h.email.clone(),
            title: None,
            phone: None,
            github: h.github.clone(),
            twitter: h.twitter.clone(),
            linked_in: h.linkedin.clone(),
            city: None,
            country: None,
            notes: None,
            custom_fields: json!({"source": "identity_resolution"}),
            tags: json!([]),
            created_at: self.now,
            updated_at: self.now,
        };
        let id = m.id;
        self.new_contacts.push(m);
        if let Some(e) = &h.email {
            self.contacts_by_email.insert(e.clone(), id);
        }
        self.contact_account.insert(id, account);
        id
    }

    /// Links a contact without an account to `account`: a contact the batch creates gets it
    /// in its row, an existing one in one update per account at flush.
    fn link_contact(&mut self, contact: Uuid, account: Uuid) {
        self.contact_account.insert(contact, Some(account));
        if let Some(m) = self.new_contacts.iter_mut().find(|m| m.id == contact) {
            m.account_id = Some(account);
            return;
        }
        self.links.entry(account).or_default().push(contact);
        self.events.push((
            "contact.updated",
            json!({"id": contact, "changes": {"accountId": {"from": null, "to": account}}}),
        ));
    }

    async fn apply_contact_traits(
        &mut self,
        txn: &DatabaseTransaction,
        contact: Uuid,
        t: &ContactTraits,
    ) -> Result<()> {
        let cut = |s: &String, n: usize| -> String { s.trim().chars().take(n).collect() };
        let given: Vec<(contacts::Column, &str, String)> = [
            (contacts::Column::FirstName, "firstName", &t.first_name, 100),
            (contacts::Column::LastName, "lastName", &t.last_name, 100),
            (contacts::Column::Title, "title", &t.title, 200),
            (contacts::Column::Phone, "phone", &t.phone, 50),
            (contacts::Column::City, "city", &t.city, 100),
            (contacts::Column::Country, "country", &t.country, 100),
        ]
        .into_iter()
        .filter_map(|(col, name, v, n)| {
            v.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (col, name, cut(v, n)))
        })
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        if let Some(m) = self.new_contacts.iter_mut().find(|m| m.id == contact) {
            // Created by this batch: its `contact.created` will carry the traits.
            for (col, _, v) in given {
                let slot = match col {
                    contacts::Column::FirstName => &mut m.first_name,
                    contacts::Column::LastName => &mut m.last_name,
                    contacts::Column::Title => &mut m.title,
                    contacts::Column::Phone => &mut m.phone,
                    contacts::Column::City => &mut m.city,
                    _ => &mut m.country,
                };
                *slot = Some(v);
            }
        } else {
            let mut q = contacts::Entity::update_many();
            let mut changes = serde_json::Map::new();
            for (col, name, v) in given {
                changes.insert(name.into(), json!(v));
                q = q.col_expr(col, v.into());
            }
            q.col_expr(contacts::Column::UpdatedAt, self.now.into())
                .filter(contacts::Column::Id.eq(contact))
                .filter(contacts::Column::OrganizationId.eq(self.org))
                .exec(txn)
                .await?;
            self.events
                .push(("contact.updated", json!({"id": contact, "traits": changes})));
        }
        // A new title can change the account's seniority factor.
        self.touched_accounts
            .extend(self.contact_account.get(&contact).copied().flatten());
        Ok(())
    }

    async fn apply_account_traits(
        &mut self,
        txn: &DatabaseTransaction,
        account: Uuid,
        t: &AccountTraits,
    ) -> Result<()> {
        let cut = |s: &String, n: usize| -> String { s.trim().chars().take(n).collect() };
        let given: Vec<(companies::Column, &str, String)> = [
            (companies::Column::Name, "name", &t.name, 200),
            (companies::Column::Industry, "industry", &t.industry, 100),
            (companies::Column::Size, "size", &t.size, 20),
            (companies::Column::Website, "website", &t.website, 500),
        ]
        .into_iter()
        .filter_map(|(col, name, v, n)| {
            v.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (col, name, cut(v, n)))
        })
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        if let Some(m) = self.new_companies.iter_mut().find(|m| m.id == account) {
            for (col, _, v) in given {
                match col {
                    companies::Column::Name => m.name = v,
                    companies::Column::Industry => m.industry = Some(v),
                    companies::Column::Size => m.size = Some(v),
                    _ => m.website = Some(v),
                }
            }
        } else {
            let mut q = companies::Entity::update_many();
            let mut changes = serde_json::Map::new();
            for (col, name, v) in given {
                changes.insert(name.into(), json!(v));
                q = q.col_expr(col, v.into());
            }
            q.col_expr(companies::Column::UpdatedAt, self.now.into())
                .filter(companies::Column::Id.eq(account))
                .filter(companies::Column::OrganizationId.eq(self.org))
                .exec(txn)
                .await?;
            self.events
                .push(("company.updated", json!({"id": account, "traits": changes})));
        }
        self.touched_accounts.insert(account);
        Ok(())
    }

    /// Writes what the batch collected, a few statements per kind of row: accounts and contacts
    /// it created, links, identities, signals, auto-merges, the rescore requests, and last (so
    /// the events' ordering lock is held only to the commit) every event in one append.
    /// Returns merged contact → its primary.
    async fn flush(
        &mut self,
        txn: &DatabaseTransaction,
        actor: &Actor,
    ) -> Result<HashMap<Uuid, Uuid>> {
        let mut events: Vec<(&str, Value)> = Vec::new();
        let companies = std::mem::take(&mut self.new_companies);
        for chunk in companies.chunks(crate::db::rows_per_insert::<companies::Entity>()) {
            companies::Entity::insert_many(chunk.iter().cloned().map(companies::ActiveModel::from))
                .exec_without_returning(txn)
                .await?;
        }
        events.extend(
            companies
                .iter()
                .map(|m| ("company.created", crate::crm::accounts::snapshot(m))),
        );
        let contacts = std::mem::take(&mut self.new_contacts);
        for chunk in contacts.chunks(crate::db::rows_per_insert::<contacts::Entity>()) {
            contacts::Entity::insert_many(chunk.iter().cloned().map(contacts::ActiveModel::from))
                .exec_without_returning(txn)
                .await?;
        }
        events.extend(
            contacts
                .iter()
                .map(|m| ("contact.created", crate::crm::contacts::snapshot(m))),
        );
        for (account, ids) in std::mem::take(&mut self.links) {
            contacts::Entity::update_many()
                .col_expr(contacts::Column::AccountId, account.into())
                .col_expr(contacts::Column::UpdatedAt, self.now.into())
                .filter(contacts::Column::OrganizationId.eq(self.org))
                .filter(contacts::Column::Id.is_in(ids))
                .exec(txn)
                .await?;
        }
        events.append(&mut self.events);
        let identities = std::mem::take(&mut self.new_identities);
        for chunk in identities.chunks(crate::db::rows_per_insert::<contact_identities::Entity>()) {
            contact_identities::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        contact_identities::Column::OrganizationId,
                        contact_identities::Column::Kind,
                        contact_identities::Column::Value,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
        let mut signals = std::mem::take(&mut self.new_signals);
        for chunk in signals.chunks(crate::db::rows_per_insert::<signals::Entity>()) {
            signals::Entity::insert_many(chunk.iter().cloned().map(signals::ActiveModel::from))
                .exec_without_returning(txn)
                .await?;
        }
        let done =
            merges::auto_merge(txn, actor, std::mem::take(&mut self.merge_candidates)).await?;
        self.apply_merges(&done);
        for s in &mut signals {
            if let Some(p) = s.contact_id.and_then(|c| done.merged_into.get(&c)) {
                s.contact_id = Some(*p);
            }
        }
        let accounts: Vec<Uuid> = self.touched_accounts.iter().copied().collect();
        let tiers: HashMap<Uuid, String> = if accounts.is_empty() || signals.is_empty() {
            HashMap::new()
        } else {
            account_scores::Entity::find()
                .select_only()
                .column(account_scores::Column::AccountId)
                .column(account_scores::Column::Tier)
                .filter(account_scores::Column::OrganizationId.eq(self.org))
                .filter(account_scores::Column::AccountId.is_in(accounts.clone()))
                .into_tuple::<(Uuid, String)>()
                .all(txn)
                .await?
                .into_iter()
                .collect()
        };
        events.extend(signals.iter().map(|s| {
            let tier = s.account_id.and_then(|a| tiers.get(&a).cloned());
            ("signal.created", event_payload(s, tier.as_deref()))
        }));
        scoring::request_rescore(txn, self.org, &accounts).await?;
        events::append_many(txn, self.org, Some(actor), events).await?;
        Ok(done.merged_into)
    }
}

/// The `signal.created` payload: the signal, plus the account's tier when it was ingested.
pub fn event_payload(s: &signals::Model, account_tier: Option<&str>) -> Value {
    json!({
        "id": s.id,
        "type": s.signal_type,
        "sourceId": s.source_id,
        "contactId": s.contact_id,
        "accountId": s.account_id,
        "anonymousId": s.anonymous_id,
        "metadata": s.metadata,
        "idempotencyKey": s.idempotency_key,
        "timestamp": s.timestamp,
        "createdAt": s.created_at,
        "accountTier": account_tier,
    })
}

/// The signal a `signal.created` event describes (what live subscriptions hand out without
/// reading the row again). `None` when the payload is not one.
pub fn from_event(event: &events::Event) -> Option<signals::Model> {
    let p = &event.payload;
    let uuid = |k: &str| p.get(k)?.as_str().and_then(|s| Uuid::parse_str(s).ok());
    let text = |k: &str| p.get(k)?.as_str().map(str::to_owned);
    let time = |k: &str| {
        DateTime::parse_from_rfc3339(p.get(k)?.as_str()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    Some(signals::Model {
        id: uuid("id")?,
        organization_id: event.organization_id,
        source_id: uuid("sourceId")?,
        signal_type: text("type")?,
        contact_id: uuid("contactId"),
        account_id: uuid("accountId"),
        anonymous_id: text("anonymousId"),
        metadata: p.get("metadata").cloned().unwrap_or_else(|| json!({})),
        idempotency_key: text("idempotencyKey"),
        dedupe_key: String::new(),
        timestamp: time("timestamp")?,
        created_at: time("createdAt")?,
    })
}

/// Which signals to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<String>,
    pub source_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn read_rights(actor: &Actor) -> Result<()> {
    actor.require_scope("signals:read")
}

/// A page of the organization's signals, newest event first.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<signals::Model>> {
    read_rights(actor)?;
    let mut cond = Condition::all().add(signals::Column::OrganizationId.eq(actor.organization_id));
    if !filter.types.is_empty() {
        cond = cond.add(signals::Column::SignalType.is_in(filter.types.clone()));
    }
    if let Some(id) = filter.source_id {
        cond = cond.add(signals::Column::SourceId.eq(id));
    }
    if let Some(id) = filter.account_id {
        cond = cond.add(signals::Column::AccountId.eq(id));
    }
    if let Some(id) = filter.contact_id {
        cond = cond.add(signals::Column::ContactId.eq(id));
    }
    if let Some(t) = filter.from {
        cond = cond.add(signals::Column::Timestamp.gte(t));
    }
    if let Some(t) = filter.to {
        cond = cond.add(signals::Column::Timestamp.lt(t));
    }
    let mut req = page.clone();
    req.order = Some(crm::Order {
        field: "TIMESTAMP".into(),
        desc: true,
    });
    crm::fetch_page::<signals::Entity>(
        db,
        cond,
        signals::Column::Id,
        |f| (f == "TIMESTAMP").then(|| crm::Sort::time(signals::Column::Timestamp)),
        &req,
    )
    .await
}

/// One signal of the actor's organization.
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<signals::Model> {
    read_rights(actor)?;
    signals::Entity::find_by_id(id)
        .filter(signals::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Signal" })
}

/// Signals by id, in the actor's organization (for loaders).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<signals::Model>> {
    read_rights(actor)?;
    Ok(signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(actor.organization_id))
        .filter(signals::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// The organization's usage this calendar month (UTC): signals ingested and contacts held.
#[derive(Debug, Clone)]
pub struct Usage {
    pub period_start: DateTime<Utc>,
    pub signals: u64,
    pub contacts: u64,
}

/// Plan usage (issue 6 behaviour 11): signals ingested since the first day of this UTC month,
/// and contacts. Counting only; enforcement comes with billing.
pub async fn usage(db: &impl ConnectionTrait, actor: &Actor) -> Result<Usage> {
    use chrono::Datelike;
    use sea_orm::PaginatorTrait;
    let now = Utc::now();
    let period_start = chrono::NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(now);
    let signals = signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(actor.organization_id))
        .filter(signals::Column::CreatedAt.gte(period_start))
        .count(db)
        .await?;
    let contacts = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .count(db)
        .await?;
    Ok(Usage {
        period_start,
        signals,
        contacts,
    })
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

/// One entry of an account's timeline.
#[derive(Debug, Clone)]
pub enum TimelineEntry {
    Activity(entity::activities::Model),
    Signal(signals::Model),
}

impl TimelineEntry {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        match self {
            TimelineEntry::Activity(a) => (a.created_at, a.id),
            TimelineEntry::Signal(s) => (s.timestamp, s.id),
        }
    }
}

fn timeline_cursor(t: DateTime<Utc>, id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{id}",
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    ))
}

fn parse_timeline_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid)> {
    use base64::Engine;
    let bad = || Error::invalid("after", "is not a cursor of this list");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = s.split_once('|').ok_or_else(bad)?;
    Ok((
        DateTime::parse_from_rfc3339(t)
            .map_err(|_| bad())?
            .with_timezone(&Utc),
        Uuid::parse_str(id).map_err(|_| bad())?,
    ))
}

/// An account's activities (by creation time) and signals (by event time), newest first, with
/// stable cursors: a page starts strictly after the (time, id) of the cursor's entry.
pub async fn timeline(
    db: &impl ConnectionTrait,
    actor: &Actor,
    account_id: Uuid,
    first: u64,
    after: Option<&str>,
) -> Result<Page<TimelineEntry>> {
    use entity::activities;
    use sea_orm::{PaginatorTrait, QueryOrder};
    actor.require_scope("accounts:read")?;
    if !(1..=crm::MAX_PAGE).contains(&first) {
        return Err(Error::invalid(
            "first",
            format!("must be between 1 and {}", crm::MAX_PAGE),
        ));
    }
    let org = actor.organization_id;
    let cursor = after.map(parse_timeline_cursor).transpose()?;
    let mut acts = activities::Entity::find()
        .filter(activities::Column::OrganizationId.eq(org))
        .filter(activities::Column::AccountId.eq(account_id));
    let mut sigs = signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(org))
        .filter(signals::Column::AccountId.eq(account_id));
    let total = acts.clone().count(db).await? + sigs.clone().count(db).await?;
    if let Some((t, id)) = cursor {
        acts = acts.filter(
            Condition::any()
                .add(activities::Column::CreatedAt.lt(t))
                .add(
                    Condition::all()
                        .add(activities::Column::CreatedAt.eq(t))
                        .add(activities::Column::Id.lt(id)),
                ),
        );
        sigs = sigs.filter(
            Condition::any().add(signals::Column::Timestamp.lt(t)).add(
                Condition::all()
                    .add(signals::Column::Timestamp.eq(t))
                    .add(signals::Column::Id.lt(id)),
            ),
        );
    }
    let a = acts
        .order_by_desc(activities::Column::CreatedAt)
        .order_by_desc(activities::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let s = sigs
        .order_by_desc(signals::Column::Timestamp)
        .order_by_desc(signals::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let mut all: Vec<TimelineEntry> = a
        .into_iter()
        .map(TimelineEntry::Activity)
        .chain(s.into_iter().map(TimelineEntry::Signal))
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.key()));
    let has_next = all.len() as u64 > first;
    all.truncate(first as usize);
    let cursors = all
        .iter()
        .map(|e| {
            let (t, id) = e.key();
            timeline_cursor(t, id)
        })
        .collect();
    Ok(Page {
        items: all,
        cursors,
        has_next,
        has_previous: after.is_some(),
        total,
    })
}
