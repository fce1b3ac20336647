//! Enrichment: facts about a company (by domain) or a person (by email) from an outside source
//! (Clearbit, read by `connectors::clearbit`) fill the fields of an account or contact that
//! nobody has filled, through the CRM's own update (validation, audit, `*.updated` event,
//! rescoring), and never overwrite a value a user set.
//!
//! Answers are cached per organization for [`CACHE_DAYS`] (found, or "no data"), and per account
//! or contact an `enrichments` row records what was filled, when and from which source, the
//! last attempt's outcome and when the object may be tried again (the nightly pass skips it
//! until then).

use chrono::{DateTime, Utc};
use entity::{companies, contacts, enrichment_cache, enrichments};
use sea_orm::sea_query::{OnConflict, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::crm::{accounts, contacts as crm_contacts};
use crate::{Actor, Error, Meta, Principal, Result};

/// How long an answer (found or not) is kept, and how long an enriched or data-less object
/// waits before the nightly pass tries it again.
pub const CACHE_DAYS: i64 = 30;
/// How long an object the source is still researching (Clearbit's 202) waits.
pub const PENDING_RETRY: chrono::Duration = chrono::Duration::hours(12);

/// Object types of `enrichments` rows.
pub mod object {
    pub const ACCOUNT: &str = "ACCOUNT";
    pub const CONTACT: &str = "CONTACT";
}

/// Cache kinds.
pub mod kind {
    pub const COMPANY: &str = "company";
    pub const PERSON: &str = "person";
}

/// What one attempt came to.
pub mod outcome {
    /// Something was filled.
    pub const ENRICHED: &str = "ENRICHED";
    /// The source knew the company or person, but every field it had was already filled.
    pub const UNCHANGED: &str = "UNCHANGED";
    /// The source does not know the company or person (404/422), or the object has no domain
    /// or email to look up.
    pub const NO_DATA: &str = "NO_DATA";
    /// The source is still researching it (Clearbit's 202); tried again later.
    pub const PENDING: &str = "PENDING";
}

/// Company facts, as the source gave them (empty when it gave nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompanyFacts {
    pub name: Option<String>,
    pub industry: Option<String>,
    pub sector: Option<String>,
    pub sub_industry: Option<String>,
    pub employees: Option<i64>,
    /// `1-10`, `11-50`, `51-250`, `251-1K`, `1K-5K`, `5K-10K`, `10K-50K`, `50K-100K`, `100K+`.
    pub employees_range: Option<String>,
    pub description: Option<String>,
    pub logo: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub founded_year: Option<i64>,
    pub tech: Vec<String>,
    pub twitter_handle: Option<String>,
    pub linkedin_handle: Option<String>,
    pub facebook_handle: Option<String>,
}

/// Person facts, as the source gave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersonFacts {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub title: Option<String>,
    pub seniority: Option<String>,
    pub role: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub twitter_handle: Option<String>,
    pub linkedin_handle: Option<String>,
    pub avatar: Option<String>,
}

/// The account size of an employee count (the buckets of [`accounts::SIZES`]).
pub fn size_of_employees(n: i64) -> &'static str {
    match n {
        ..=10 => "STARTUP",
        11..=50 => "SMALL",
        51..=200 => "MEDIUM",
        201..=1000 => "LARGE",
        _ => "ENTERPRISE",
    }
}

/// The lower bound of an employee range such as `51-250`, `1K-5K` or `100K+`.
pub fn employees_of_range(range: &str) -> Option<i64> {
    let low = range.trim().split(['-', '+']).next()?.trim();
    let (digits, factor) = match low.strip_suffix(['K', 'k']) {
        Some(d) => (d, 1000),
        None => (low, 1),
    };
    digits.parse::<i64>().ok().map(|n| n * factor)
}

impl CompanyFacts {
    /// The size bucket, from the exact count when given, else from the range's lower bound.
    pub fn size(&self) -> Option<&'static str> {
        self.employees
            .filter(|n| *n > 0)
            .or_else(|| self.employees_range.as_deref().and_then(employees_of_range))
            .map(size_of_employees)
    }
}

/// Who may enrich: a user or API key that may write the object (MEMBER+, `accounts:write` or
/// `contacts:write`), or the organization's enrichment integration (the nightly pass).
fn rights(actor: &Actor, scope: &str) -> Result<()> {
    if matches!(actor.principal, Principal::Integration { .. }) {
        return Ok(());
    }
    actor.require_write()?;
    actor.require_scope(scope)
}

/// Checks the rights to enrich an account and returns it (`NOT_FOUND` for an id of another
/// organization).
pub async fn account_for_enrichment(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<companies::Model> {
    rights(actor, "accounts:write")?;
    companies::Entity::find_by_id(id)
        .filter(companies::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Account" })
}

/// Checks the rights to enrich a contact and returns it.
pub async fn contact_for_enrichment(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<contacts::Model> {
    rights(actor, "contacts:write")?;
    contacts::Entity::find_by_id(id)
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Contact" })
}

/// A cached answer that has not expired: `Some(None)` is a remembered "no data".
pub async fn cached(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    kind: &str,
    lookup: &str,
) -> Result<Option<Option<Value>>> {
    let row =
        enrichment_cache::Entity::find_by_id((organization_id, kind.to_owned(), lookup.to_owned()))
            .filter(enrichment_cache::Column::ExpiresAt.gt(Utc::now()))
            .one(db)
            .await?;
    Ok(row.map(|r| if r.found { r.data } else { None }))
}

/// Remembers an answer for [`CACHE_DAYS`]: the facts found, or `None` for "no data".
pub async fn remember(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    kind: &str,
    lookup: &str,
    source: &str,
    data: Option<Value>,
) -> Result<()> {
    let now = Utc::now();
    enrichment_cache::Entity::insert(enrichment_cache::ActiveModel {
        organization_id: Set(organization_id),
        kind: Set(kind.to_owned()),
        lookup: Set(lookup.to_owned()),
        source: Set(source.to_owned()),
        found: Set(data.is_some()),
        data: Set(data),
        fetched_at: Set(now),
        expires_at: Set(now + chrono::Duration::days(CACHE_DAYS)),
    })
    .on_conflict(
        OnConflict::columns([
            enrichment_cache::Column::OrganizationId,
            enrichment_cache::Column::Kind,
            enrichment_cache::Column::Lookup,
        ])
        .update_columns([
            enrichment_cache::Column::Source,
            enrichment_cache::Column::Found,
            enrichment_cache::Column::Data,
            enrichment_cache::Column::FetchedAt,
            enrichment_cache::Column::ExpiresAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Records an attempt on one object: its outcome, the fields filled (added to those filled
/// before, with the source and time when any) and when it may be tried again.
pub async fn record(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    object_type: &str,
    id: Uuid,
    source: &str,
    outcome: &str,
    filled: &[String],
) -> Result<enrichments::Model> {
    let now = Utc::now();
    let next = if outcome == outcome::PENDING {
        now + PENDING_RETRY
    } else {
        now + chrono::Duration::days(CACHE_DAYS)
    };
    let old = enrichments::Entity::find_by_id(id)
        .filter(enrichments::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?;
    let mut fields: Vec<String> = old
        .as_ref()
        .and_then(|o| serde_json::from_value(o.fields.clone()).ok())
        .unwrap_or_default();
    for f in filled {
        if !fields.contains(f) {
            fields.push(f.clone());
        }
    }
    let (source, enriched_at) = if filled.is_empty() {
        (
            old.as_ref().and_then(|o| o.source.clone()),
            old.as_ref().and_then(|o| o.enriched_at),
        )
    } else {
        (Some(source.to_owned()), Some(now))
    };
    let row = enrichments::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        object_type: Set(object_type.to_owned()),
        source: Set(source),
        enriched_at: Set(enriched_at),
        fields: Set(json!(fields)),
        outcome: Set(outcome.to_owned()),
        attempted_at: Set(now),
        next_attempt_at: Set(next),
    };
    enrichments::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([enrichments::Column::Id, enrichments::Column::OrganizationId])
                .update_columns([
                    enrichments::Column::Source,
                    enrichments::Column::EnrichedAt,
                    enrichments::Column::Fields,
                    enrichments::Column::Outcome,
                    enrichments::Column::AttemptedAt,
                    enrichments::Column::NextAttemptAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    enrichments::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("the enrichment record was not stored".into()))
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn given(v: &Option<String>, max: usize) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(max).collect())
}

/// Adds `value` under `key` to `custom` when the key is absent (or null / empty text).
fn fill_custom(
    custom: &mut Map<String, Value>,
    filled: &mut Vec<String>,
    key: &str,
    value: Option<Value>,
) {
    let Some(value) = value else { return };
    let empty = match custom.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if empty {
        custom.insert(key.to_owned(), value);
        filled.push(format!("customFields.{key}"));
    }
}

/// What the company facts would fill on `m`: the update and the fields it fills.
pub fn company_fill(
    m: &companies::Model,
    f: &CompanyFacts,
) -> (accounts::UpdateInput, Vec<String>) {
    let mut input = accounts::UpdateInput::default();
    let mut filled = Vec::new();
    macro_rules! column {
        ($field:ident, $name:literal, $value:expr) => {
            if blank(&m.$field)
                && let Some(v) = $value
            {
                input.$field = Some(Some(v));
                filled.push($name.to_owned());
            }
        };
    }
    column!(industry, "industry", given(&f.industry, 100));
    column!(size, "size", f.size().map(str::to_owned));
    column!(description, "description", given(&f.description, 10_000));
    column!(city, "city", given(&f.city, 100));
    column!(country, "country", given(&f.country, 100));
    let mut custom = m.custom_fields.as_object().cloned().unwrap_or_default();
    let text = |v: &Option<String>| given(v, 500).map(Value::String);
    fill_custom(&mut custom, &mut filled, "logo", text(&f.logo));
    fill_custom(
        &mut custom,
        &mut filled,
        "foundedYear",
        f.founded_year.map(|y| json!(y)),
    );
    let tech: Vec<&str> = f
        .tech
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .take(100)
        .collect();
    fill_custom(
        &mut custom,
        &mut filled,
        "tech",
        (!tech.is_empty()).then(|| json!(tech)),
    );
    fill_custom(
        &mut custom,
        &mut filled,
        "twitterHandle",
        text(&f.twitter_handle),
    );
    fill_custom(
        &mut custom,
        &mut filled,
        "linkedinHandle",
        text(&f.linkedin_handle),
    );
    if filled.iter().any(|f| f.starts_with("customFields.")) {
        input.custom_fields = Some(Value::Object(custom));
    }
    (input, filled)
}

/// What the person facts would fill on `m`.
pub fn person_fill(m: &contacts::Model, f: &PersonFacts) -> (crm_contacts::Input, Vec<String>) {
    let mut input = crm_contacts::Input::default();
    let mut filled = Vec::new();
    macro_rules! column {
        ($field:ident, $name:literal, $value:expr) => {
            if blank(&m.$field)
                && let Some(v) = $value
            {
                input.$field = Some(Some(v));
                filled.push($name.to_owned());
            }
        };
    }
    column!(first_name, "firstName", given(&f.given_name, 100));
    column!(last_name, "lastName", given(&f.family_name, 100));
    column!(title, "title", given(&f.title, 200));
    column!(city, "city", given(&f.city, 100));
    column!(country, "country", given(&f.country, 100));
    column!(twitter, "twitter", given(&f.twitter_handle, 100));
    column!(
        linked_in,
        "linkedIn",
        given(&f.linkedin_handle, 400).map(|h| {
            if h.starts_with("http") {
                h
            } else {
                format!("https://www.linkedin.com/{}", h.trim_start_matches('/'))
            }
        })
    );
    let mut custom = m.custom_fields.as_object().cloned().unwrap_or_default();
    let text = |v: &Option<String>| given(v, 500).map(Value::String);
    fill_custom(&mut custom, &mut filled, "seniority", text(&f.seniority));
    fill_custom(&mut custom, &mut filled, "role", text(&f.role));
    fill_custom(&mut custom, &mut filled, "avatar", text(&f.avatar));
    if filled.iter().any(|f| f.starts_with("customFields.")) {
        input.custom_fields = Some(Value::Object(custom));
    }
    (input, filled)
}

/// Fills the account's empty fields from `facts` (through the CRM update: audit,
/// `company.updated`, rescoring when the size changes) and records the attempt. Returns the
/// account and the fields filled.
pub async fn apply_company(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    source: &str,
    facts: &CompanyFacts,
) -> Result<(companies::Model, Vec<String>)> {
    rights(actor, "accounts:write")?;
    // Decided on the locked row, in one transaction with the record: a value a user sets
    // meanwhile is never overwritten, and a fill is never recorded without its change.
    let txn = crate::db::begin(db).await?;
    let m = accounts::locked(&txn, actor, id).await?;
    let (input, filled) = company_fill(&m, facts);
    let m = if filled.is_empty() {
        m
    } else {
        accounts::update_in(&txn, actor, meta, m, input).await?
    };
    let outcome = if filled.is_empty() {
        outcome::UNCHANGED
    } else {
        outcome::ENRICHED
    };
    record(
        &txn,
        actor.organization_id,
        object::ACCOUNT,
        id,
        source,
        outcome,
        &filled,
    )
    .await?;
    txn.commit().await?;
    Ok((m, filled))
}

/// Fills the contact's empty fields from `facts` (a title or seniority filled rescores its
/// account) and records the attempt.
pub async fn apply_person(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    source: &str,
    facts: &PersonFacts,
) -> Result<(contacts::Model, Vec<String>)> {
    rights(actor, "contacts:write")?;
    let txn = crate::db::begin(db).await?;
    let m = crm_contacts::locked(&txn, actor, id).await?;
    let (input, filled) = person_fill(&m, facts);
    let m = if filled.is_empty() {
        m
    } else {
        crm_contacts::update_in(&txn, actor, meta, m, input).await?
    };
    let outcome = if filled.is_empty() {
        outcome::UNCHANGED
    } else {
        outcome::ENRICHED
    };
    record(
        &txn,
        actor.organization_id,
        object::CONTACT,
        id,
        source,
        outcome,
        &filled,
    )
    .await?;
    txn.commit().await?;
    Ok((m, filled))
}

/// Objects not to try yet: their last attempt asked to wait until after now.
fn waiting(organization_id: Uuid, object_type: &str, now: DateTime<Utc>) -> SelectStatement {
    Query::select()
        .column(enrichments::Column::Id)
        .from(enrichments::Entity)
        .and_where(enrichments::Column::OrganizationId.eq(organization_id))
        .and_where(enrichments::Column::ObjectType.eq(object_type))
        .and_where(enrichments::Column::NextAttemptAt.gt(now))
        .to_owned()
}

/// Accounts of the organization worth enriching now: with a domain, missing one of industry,
/// size, description, city or country, and not tried recently. Oldest first, at most `limit`.
pub async fn due_accounts(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    limit: u64,
) -> Result<Vec<companies::Model>> {
    let now = Utc::now();
    Ok(companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(organization_id))
        .filter(companies::Column::DomainNormalized.is_not_null())
        .filter(
            Condition::any()
                .add(companies::Column::Industry.is_null())
                .add(companies::Column::Size.is_null())
                .add(companies::Column::Description.is_null())
                .add(companies::Column::City.is_null())
                .add(companies::Column::Country.is_null()),
        )
        .filter(companies::Column::Id.not_in_subquery(waiting(
            organization_id,
            object::ACCOUNT,
            now,
        )))
        .order_by_asc(companies::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Contacts of the organization worth enriching now: with an email, missing one of first
/// name, last name, title, city or country, and not tried recently.
pub async fn due_contacts(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    limit: u64,
) -> Result<Vec<contacts::Model>> {
    let now = Utc::now();
    Ok(contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(organization_id))
        .filter(contacts::Column::EmailNormalized.is_not_null())
        .filter(
            Condition::any()
                .add(contacts::Column::FirstName.is_null())
                .add(contacts::Column::LastName.is_null())
                .add(contacts::Column::Title.is_null())
                .add(contacts::Column::City.is_null())
                .add(contacts::Column::Country.is_null()),
        )
        .filter(contacts::Column::Id.not_in_subquery(waiting(
            organization_id,
            object::CONTACT,
            now,
        )))
        .order_by_asc(contacts::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The enrichment records of these accounts or contacts in the actor's organization (for
/// loaders; the caller has read the objects themselves).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<enrichments::Model>> {
    Ok(enrichments::Entity::find()
        .filter(enrichments::Column::OrganizationId.eq(actor.organization_id))
        .filter(enrichments::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_account_buckets() {
        assert_eq!(size_of_employees(8), "STARTUP");
        assert_eq!(size_of_employees(50), "SMALL");
        assert_eq!(size_of_employees(51), "MEDIUM");
        assert_eq!(size_of_employees(1000), "LARGE");
        assert_eq!(size_of_employees(1001), "ENTERPRISE");
        assert_eq!(employees_of_range("51-250"), Some(51));
        assert_eq!(employees_of_range("1K-5K"), Some(1000));
        assert_eq!(employees_of_range("100K+"), Some(100_000));
        assert_eq!(employees_of_range("many"), None);
    }
}
