//! Endpoints: their filters, creation, changes, deletion and secret rotation.

use chrono::Utc;
use entity::webhook_endpoints;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    ALL_EVENTS, MAX_ENDPOINTS, Settings, TEST_EVENT, TIERS, action, check_url, generate_secret,
    status,
};
use crate::audit::{self, Entry, Meta};
use crate::crm::{self};
use crate::secrets::Cipher;
use crate::{Actor, Error, FieldError, Principal, Result, Role, events};
/// Which events of its types an endpoint wants; every non-empty list must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Only events about accounts in these tiers (`tier` / `newTier` of the payload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// Only signals of these types (`type` of the payload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signal_types: Vec<String>,
    /// Only events about these accounts (`accountId`, or `id` of `company.*` events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_ids: Vec<Uuid>,
}

impl Filter {
    pub(super) fn is_empty(&self) -> bool {
        self.tiers.is_empty() && self.signal_types.is_empty() && self.account_ids.is_empty()
    }

    /// True when `payload` of an event of `event_type` passes. A criterion whose field the
    /// payload lacks does not match.
    pub fn matches(&self, event_type: &str, payload: &Value) -> bool {
        let field = |names: &[&str]| -> Option<String> {
            for n in names {
                for v in [payload.get(*n), payload.get("data").and_then(|d| d.get(*n))] {
                    if let Some(Value::String(s)) = v {
                        return Some(s.clone());
                    }
                }
            }
            None
        };
        if !self.tiers.is_empty() {
            match field(&["tier", "newTier"]) {
                Some(t) if self.tiers.iter().any(|x| x.eq_ignore_ascii_case(&t)) => {}
                _ => return false,
            }
        }
        if !self.signal_types.is_empty() {
            match field(&["type", "signalType"]) {
                // Compared through the vocabulary: a filter naming `docs_view` gets `docs_read`.
                Some(t)
                    if {
                        let t = crate::signals::types::canonical(&t);
                        self.signal_types
                            .iter()
                            .any(|x| crate::signals::types::canonical(x) == t)
                    } => {}
                _ => return false,
            }
        }
        if !self.account_ids.is_empty() {
            let names: &[&str] = if event_type.starts_with("company.") {
                &["id", "accountId"]
            } else {
                &["accountId", "companyId"]
            };
            match field(names).and_then(|s| Uuid::parse_str(&s).ok()) {
                Some(id) if self.account_ids.contains(&id) => {}
                _ => return false,
            }
        }
        true
    }
}

/// A new endpoint.
#[derive(Debug, Clone, Default)]
pub struct CreateInput {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub filter: Option<Filter>,
    /// Deliveries carry the changed object's current fields (see [`object_for`](super::object_for)).
    pub include_object: bool,
}

/// A change: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub filter: Option<Option<Filter>>,
    pub include_object: Option<bool>,
}

/// The scopes an endpoint's objects are read with, taken from the actor that turns
/// `include_object` on: an API key's (or an integration's) scopes; null for a person.
fn object_scopes(actor: &Actor) -> Option<serde_json::Value> {
    match &actor.principal {
        Principal::User { .. } => None,
        Principal::ApiKey { scopes, .. } => Some(json!(scopes)),
        Principal::Integration { .. } => Some(json!(crate::INTEGRATION_SCOPES)),
    }
}

/// Endpoints are managed by ADMINs, or by API keys with `webhooks:manage`.
pub(super) fn require_manage(actor: &Actor) -> Result<()> {
    match actor.principal {
        Principal::User { .. } => actor.require_role(Role::Admin),
        Principal::ApiKey { .. } | Principal::Integration { .. } => {
            actor.require_scope("webhooks:manage")
        }
    }
}

/// An endpoint delivers what its events carry, so its creator must be able to read each type
/// (API keys: the type's [`events::read_scope`]; `*` needs `admin`).
fn may_deliver(actor: &Actor, types: &[String]) -> Result<()> {
    for t in types {
        let scope = if t == ALL_EVENTS {
            "admin"
        } else {
            events::read_scope(t)
        };
        if !actor.may(scope) {
            return Err(Error::Forbidden(format!(
                "this API key lacks the {scope} scope that event type {t:?} needs"
            )));
        }
    }
    Ok(())
}

pub(super) fn check_event_types(
    errors: &mut Vec<FieldError>,
    field: &str,
    types: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if types.is_empty() {
        errors.push(FieldError::new(field, "must name at least one event type"));
    }
    for t in types {
        let t = t.trim();
        if t != ALL_EVENTS && !events::TYPES.contains(&t) {
            errors.push(FieldError::new(
                field,
                format!(
                    "unknown event type {t:?}; known types: *, {}",
                    events::TYPES.join(", ")
                ),
            ));
        } else if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// Each account a filter names must be one of the organization's (a foreign or unknown id is
/// refused, naming it, as anywhere else an id is given).
async fn check_filter_accounts(
    db: &DatabaseConnection,
    org: Uuid,
    errors: &mut Vec<FieldError>,
    field: &str,
    filter: Option<&Filter>,
) -> Result<()> {
    let Some(f) = filter.filter(|f| !f.account_ids.is_empty()) else {
        return Ok(());
    };
    let known: Vec<Uuid> = entity::companies::Entity::find()
        .select_only()
        .column(entity::companies::Column::Id)
        .filter(entity::companies::Column::OrganizationId.eq(org))
        .filter(entity::companies::Column::Id.is_in(f.account_ids.clone()))
        .into_tuple()
        .all(db)
        .await?;
    for (i, id) in f.account_ids.iter().enumerate() {
        if !known.contains(id) {
            errors.push(FieldError::new(
                format!("{field}.accountIds.{i}"),
                "no such account",
            ));
        }
    }
    Ok(())
}

pub(super) fn check_filter(
    errors: &mut Vec<FieldError>,
    field: &str,
    filter: Option<Filter>,
) -> Option<Value> {
    let mut f = filter?;
    f.tiers = f.tiers.iter().map(|t| t.trim().to_uppercase()).collect();
    if let Some(bad) = f.tiers.iter().find(|t| !TIERS.contains(&t.as_str())) {
        errors.push(FieldError::new(
            format!("{field}.tiers"),
            format!("unknown tier {bad:?}; one of {}", TIERS.join(", ")),
        ));
    }
    f.signal_types = f.signal_types.iter().map(|t| t.trim().to_owned()).collect();
    if f.signal_types.iter().any(|t| t.is_empty() || t.len() > 64) {
        errors.push(FieldError::new(
            format!("{field}.signalTypes"),
            "each type must be 1 to 64 characters",
        ));
    }
    if f.tiers.len() + f.signal_types.len() + f.account_ids.len() > 200 {
        errors.push(FieldError::new(field, "at most 200 values in all"));
    }
    if f.is_empty() {
        return None;
    }
    serde_json::to_value(f).ok()
}

/// The endpoint's filter, if it has one.
pub fn filter_of(m: &webhook_endpoints::Model) -> Option<Filter> {
    m.filter
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The endpoint's event types.
pub fn event_types_of(m: &webhook_endpoints::Model) -> Vec<String> {
    serde_json::from_value(m.event_types.clone()).unwrap_or_default()
}

/// True when `m` wants an event of this type and payload.
pub fn wants(m: &webhook_endpoints::Model, event_type: &str, payload: &Value) -> bool {
    let types = event_types_of(m);
    (types.iter().any(|t| t == ALL_EVENTS || t == event_type) || event_type == TEST_EVENT)
        && filter_of(m).is_none_or(|f| f.matches(event_type, payload))
}

pub(super) fn snapshot(m: &webhook_endpoints::Model) -> Value {
    json!({
        "id": m.id, "url": m.url, "description": m.description, "eventTypes": m.event_types,
        "filter": m.filter, "enabled": m.enabled, "status": m.status,
        "includeObject": m.include_object,
    })
}

pub(super) async fn find_endpoint(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_endpoints::Model> {
    webhook_endpoints::Entity::find_by_id(id)
        .filter(webhook_endpoints::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "WebhookEndpoint",
        })
}

/// Creates an endpoint; returns it with its secret, which is shown only now and on rotation.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    settings: &Settings,
    input: CreateInput,
) -> Result<(webhook_endpoints::Model, String)> {
    require_manage(actor)?;
    let mut errors = Vec::new();
    let url = match check_url(settings, "url", &input.url).await {
        Ok(u) => Some(u),
        Err(Error::Validation(mut f)) => {
            errors.append(&mut f);
            None
        }
        Err(e) => return Err(e),
    };
    let types = check_event_types(&mut errors, "eventTypes", &input.event_types);
    let description = crm::text(&mut errors, "description", input.description, 500);
    check_filter_accounts(
        db,
        actor.organization_id,
        &mut errors,
        "filter",
        input.filter.as_ref(),
    )
    .await?;
    let filter = check_filter(&mut errors, "filter", input.filter);
    let url = match url {
        Some(u) if errors.is_empty() => u,
        _ => return Err(Error::Validation(errors)),
    };
    may_deliver(actor, &types)?;
    let count = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.eq(actor.organization_id))
        .count(db)
        .await?;
    if count >= MAX_ENDPOINTS as u64 {
        return Err(Error::PlanLimit(format!(
            "an organization may have at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let secret = generate_secret();
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    let model = webhook_endpoints::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        url: Set(url.to_string()),
        description: Set(description),
        event_types: Set(json!(types)),
        filter: Set(filter),
        enabled: Set(true),
        status: Set(status::HEALTHY.into()),
        disabled_reason: Set(None),
        secret_ciphertext: Set(cipher.seal(&secret)?),
        previous_secret_ciphertext: Set(None),
        previous_secret_expires_at: Set(None),
        failing_since: Set(None),
        leased_by: Set(None),
        lease_until: Set(None),
        include_object: Set(input.include_object),
        object_scopes: Set(input.include_object.then(|| object_scopes(actor)).flatten()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::CREATED)
            .target("WebhookEndpoint", model.id)
            .metadata(snapshot(&model)),
    )
    .await?;
    txn.commit().await?;
    Ok((model, secret))
}

/// The organization's endpoints, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> Result<Vec<webhook_endpoints::Model>> {
    require_manage(actor)?;
    Ok(webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.eq(actor.organization_id))
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(db)
        .await?)
}

/// One endpoint of the organization.
pub async fn get(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_endpoints::Model> {
    require_manage(actor)?;
    find_endpoint(db, actor, id).await
}

/// Changes an endpoint. Enabling a disabled endpoint makes it HEALTHY again.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    settings: &Settings,
    id: Uuid,
    input: UpdateInput,
) -> Result<webhook_endpoints::Model> {
    require_manage(actor)?;
    let mut errors = Vec::new();
    let url = match &input.url {
        None => None,
        Some(raw) => match check_url(settings, "url", raw).await {
            Ok(u) => Some(u.to_string()),
            Err(Error::Validation(mut f)) => {
                errors.append(&mut f);
                None
            }
            Err(e) => return Err(e),
        },
    };
    let types = input
        .event_types
        .as_ref()
        .map(|t| check_event_types(&mut errors, "eventTypes", t));
    let description = input
        .description
        .map(|d| crm::text(&mut errors, "description", d, 500));
    check_filter_accounts(
        db,
        actor.organization_id,
        &mut errors,
        "filter",
        input.filter.as_ref().and_then(|f| f.as_ref()),
    )
    .await?;
    let filter = input.filter.map(|f| check_filter(&mut errors, "filter", f));
    if let Some(types) = &types {
        may_deliver(actor, types)?;
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let txn = crate::db::begin(db).await?;
    let old = find_endpoint(&txn, actor, id).await?;
    let mut m = old.clone().into_active_model();
    if let Some(u) = url {
        m.url = Set(u);
    }
    if let Some(t) = types {
        m.event_types = Set(json!(t));
    }
    if let Some(d) = description {
        m.description = Set(d);
    }
    if let Some(f) = filter {
        m.filter = Set(f);
    }
    match input.include_object {
        Some(true) => {
            m.include_object = Set(true);
            m.object_scopes = Set(object_scopes(actor));
        }
        Some(false) => {
            m.include_object = Set(false);
            m.object_scopes = Set(None);
        }
        None => {}
    }
    match input.enabled {
        Some(true) if !old.enabled => {
            m.enabled = Set(true);
            m.status = Set(status::HEALTHY.into());
            m.disabled_reason = Set(None);
            m.failing_since = Set(None);
        }
        Some(false) if old.enabled => {
            m.enabled = Set(false);
            m.status = Set(status::DISABLED.into());
            m.disabled_reason = Set(Some("disabled by a user".into()));
        }
        _ => {}
    }
    m.updated_at = Set(Utc::now());
    let new = m.update(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::UPDATED)
            .target("WebhookEndpoint", id)
            .metadata(json!({"changes": crm::diff(&snapshot(&old), &snapshot(&new))})),
    )
    .await?;
    txn.commit().await?;
    Ok(new)
}

/// Deletes an endpoint with its deliveries; returns its id.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, meta: &Meta, id: Uuid) -> Result<Uuid> {
    require_manage(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find_endpoint(&txn, actor, id).await?;
    webhook_endpoints::Entity::delete_by_id(id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::DELETED)
            .target("WebhookEndpoint", id)
            .metadata(snapshot(&old)),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// Gives the endpoint a new secret; the old one keeps signing (as a second signature) for
/// `settings.rotation_overlap`. Returns the endpoint and the new secret.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    settings: &Settings,
    id: Uuid,
) -> Result<(webhook_endpoints::Model, String)> {
    require_manage(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find_endpoint(&txn, actor, id).await?;
    let secret = generate_secret();
    let now = Utc::now();
    let overlap = chrono::Duration::from_std(settings.rotation_overlap)
        .map_err(|_| Error::Internal("rotation overlap out of range".into()))?;
    let mut m = old.clone().into_active_model();
    m.previous_secret_ciphertext = Set(Some(old.secret_ciphertext.clone()));
    m.previous_secret_expires_at = Set(Some(now + overlap));
    m.secret_ciphertext = Set(cipher.seal(&secret)?);
    m.updated_at = Set(now);
    let new = m.update(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::SECRET_ROTATED).target("WebhookEndpoint", id),
    )
    .await?;
    txn.commit().await?;
    Ok((new, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_on_payload_fields() {
        let f = Filter {
            tiers: vec!["HOT".into()],
            ..Default::default()
        };
        assert!(f.matches("tier.changed", &json!({"newTier": "HOT"})));
        assert!(!f.matches("tier.changed", &json!({"newTier": "WARM"})));
        assert!(!f.matches("signal.created", &json!({})));
        let id = Uuid::now_v7();
        let f = Filter {
            account_ids: vec![id],
            ..Default::default()
        };
        assert!(f.matches("company.updated", &json!({"id": id})));
        assert!(f.matches("signal.created", &json!({"accountId": id})));
        assert!(!f.matches("signal.created", &json!({"accountId": Uuid::now_v7()})));
        let f = Filter {
            signal_types: vec!["docs_view".into()],
            ..Default::default()
        };
        assert!(f.matches("signal.created", &json!({"type": "docs_read"})));
        assert!(f.matches("signal.created", &json!({"type": "Docs Viewed"})));
        assert!(!f.matches("signal.created", &json!({"type": "page_view"})));
    }
}
