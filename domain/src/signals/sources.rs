//! Signal sources: where signals come from. Each has a kind, a name, a
//! status (a PAUSED source refuses new signals) and a configuration whose public part is stored
//! as JSON and whose secrets are sealed with the organization-wide [`Cipher`] and never read
//! back through the API (only their names are shown). The built-in `api` and `segment` sources
//! are created on first use by [`crate::signals::system_source`].

use std::collections::BTreeMap;

use chrono::Utc;
use entity::signal_sources;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta};
use crate::secrets::Cipher;
use crate::{Actor, Error, FieldError, Result, Role};

/// Every source kind.
pub const KINDS: &[&str] = &[
    "GITHUB",
    "NPM",
    "PYPI",
    "WEBSITE",
    "DOCS",
    "PRODUCT_API",
    "SEGMENT",
    "DISCORD",
    "TWITTER",
    "STACKOVERFLOW",
    "REDDIT",
    "POSTHOG",
    "LINKEDIN",
    "INTERCOM",
    "ZENDESK",
    "CUSTOM_WEBHOOK",
];
pub const STATUSES: &[&str] = &["ACTIVE", "PAUSED", "ERROR"];

#[derive(Debug, Clone, Default)]
pub struct Input {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    /// Public settings (replaces the current object).
    pub config: Option<Value>,
    /// Secret settings: each key set to a string is stored (sealed), each key set to null is
    /// removed; keys not named are kept.
    pub secrets: Option<Value>,
}

/// The names of a source's stored secrets (never their values).
pub fn secret_names(cipher: &Cipher, m: &signal_sources::Model) -> Vec<String> {
    secrets_of(cipher, m)
        .map(|s| s.into_keys().collect())
        .unwrap_or_default()
}

fn secrets_of(cipher: &Cipher, m: &signal_sources::Model) -> Result<BTreeMap<String, String>> {
    match &m.secret_ciphertext {
        None => Ok(BTreeMap::new()),
        Some(c) => {
            let plain = cipher.open(c)?;
            serde_json::from_str(&plain)
                .map_err(|e| Error::Internal(format!("source secrets: {e}")))
        }
    }
}

/// A source's secrets, for the connector that uses them (never for the API).
pub fn secrets(cipher: &Cipher, m: &signal_sources::Model) -> Result<BTreeMap<String, String>> {
    secrets_of(cipher, m)
}

fn manage(actor: &Actor) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")
}

/// The organization's sources, oldest first (any member).
pub async fn list(db: &impl ConnectionTrait, actor: &Actor) -> Result<Vec<signal_sources::Model>> {
    actor.require_scope("signals:read")?;
    Ok(signal_sources::Entity::find()
        .filter(signal_sources::Column::OrganizationId.eq(actor.organization_id))
        .order_by_asc(signal_sources::Column::Id)
        .all(db)
        .await?)
}

/// Sources by id, in the actor's organization (for loaders).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<signal_sources::Model>> {
    Ok(signal_sources::Entity::find()
        .filter(signal_sources::Column::OrganizationId.eq(actor.organization_id))
        .filter(signal_sources::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

fn apply(
    errors: &mut Vec<FieldError>,
    cipher: &Cipher,
    m: &mut signal_sources::Model,
    input: Input,
) -> Result<()> {
    if let Some(k) = input.kind {
        let k = k.trim().to_uppercase();
        if !KINDS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                "kind",
                format!("must be one of {}", KINDS.join(", ")),
            ));
        }
        m.kind = k;
    }
    if let Some(n) = input.name {
        let n = n.trim().to_owned();
        if n.is_empty() || n.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        m.name = n;
    }
    if let Some(s) = input.status {
        let s = s.trim().to_uppercase();
        if !STATUSES.contains(&s.as_str()) {
            errors.push(FieldError::new(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
        if s != "ERROR" {
            m.error_message = None;
        }
        m.status = s;
    }
    if let Some(c) = input.config {
        match c {
            Value::Object(o) if Value::Object(o.clone()).to_string().len() <= 16_384 => {
                m.config = Value::Object(o);
            }
            Value::Object(_) => errors.push(FieldError::new("config", "must be at most 16 KB")),
            Value::Null => m.config = json!({}),
            _ => errors.push(FieldError::new("config", "must be a JSON object")),
        }
    }
    if let Some(s) = input.secrets {
        let Value::Object(changes) = s else {
            errors.push(FieldError::new(
                "secrets",
                "must be a JSON object of strings",
            ));
            return Ok(());
        };
        let mut current = secrets_of(cipher, m)?;
        for (k, v) in changes {
            match v {
                Value::Null => {
                    current.remove(&k);
                }
                Value::String(v) if v.len() <= 4096 && !k.is_empty() && k.len() <= 100 => {
                    current.insert(k, v);
                }
                _ => errors.push(FieldError::new(
                    format!("secrets.{k}"),
                    "must be a string of at most 4096 characters, or null to remove it",
                )),
            }
        }
        m.secret_ciphertext = if current.is_empty() {
            None
        } else {
            let map: Map<String, Value> = current
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Some(cipher.seal(&Value::Object(map).to_string())?)
        };
    }
    Ok(())
}

/// Creates a source (ADMIN).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    input: Input,
) -> Result<signal_sources::Model> {
    manage(actor)?;
    let mut errors = Vec::new();
    if input.kind.is_none() {
        errors.push(FieldError::new("kind", "is required"));
    }
    if input.name.is_none() {
        errors.push(FieldError::new("name", "is required"));
    }
    let now = Utc::now();
    let mut m = signal_sources::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        kind: String::new(),
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
    apply(&mut errors, cipher, &mut m, input)?;
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let txn = crate::db::begin(db).await?;
    let m = signal_sources::ActiveModel::from(m).insert(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "signal_source.created").target("signal_source", m.id),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}

/// Changes a source (ADMIN). The built-in sources keep their kind.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    id: Uuid,
    input: Input,
) -> Result<signal_sources::Model> {
    manage(actor)?;
    let txn = crate::db::begin(db).await?;
    let mut m = signal_sources::Entity::find_by_id(id)
        .filter(signal_sources::Column::OrganizationId.eq(actor.organization_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound {
            entity: "SignalSource",
        })?;
    let mut errors = Vec::new();
    if m.system_key.is_some()
        && input
            .kind
            .as_deref()
            .is_some_and(|k| !k.eq_ignore_ascii_case(&m.kind))
    {
        errors.push(FieldError::new("kind", "a built-in source keeps its kind"));
    }
    apply(&mut errors, cipher, &mut m, input)?;
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    m.updated_at = Utc::now();
    let mut am: signal_sources::ActiveModel = m.into();
    for c in [
        signal_sources::Column::Kind,
        signal_sources::Column::Name,
        signal_sources::Column::Status,
        signal_sources::Column::Config,
        signal_sources::Column::SecretCiphertext,
        signal_sources::Column::ErrorMessage,
        signal_sources::Column::UpdatedAt,
    ] {
        let v = sea_orm::ActiveModelTrait::get(&am, c);
        if let sea_orm::ActiveValue::Unchanged(v) = v {
            am.set(c, v);
        }
    }
    let m = am.update(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "signal_source.updated").target("signal_source", m.id),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}
