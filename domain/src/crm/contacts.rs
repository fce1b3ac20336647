//! Contacts: create, read, list, update, delete, upsert by email, batch create. Same shape as
//! [`crate::crm::accounts`]: validate (errors name the field), write, audit, `contact.*` event last,
//! one transaction. The normalised email is unique per organization, decided by the database's
//! unique index (`CONFLICT` on `email`).

use chrono::Utc;
use entity::{companies, contacts};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta};
use crate::crm;
use crate::error::on_unique;
use crate::paging::{self, Page, PageRequest};
use crate::{Actor, Error, FieldError, Result, events};

pub mod action {
    pub const CREATED: &str = "contact.created";
    pub const UPDATED: &str = "contact.updated";
    pub const DELETED: &str = "contact.deleted";
}

/// The fields of a contact, for create, upsert and (with `None` = unchanged) update.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub github: Option<Option<String>>,
    pub twitter: Option<Option<String>>,
    pub linked_in: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub custom_fields: Option<Value>,
    pub tags: Option<Vec<String>>,
    pub account_id: Option<Option<Uuid>>,
    /// Tags to add to the current ones (after `tags`, if both are given).
    pub add_tags: Vec<String>,
    /// Tags to remove from the current ones.
    pub remove_tags: Vec<String>,
}

/// Which contacts to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case-insensitive substring of first name, last name or email.
    pub query: Option<String>,
    pub account_id: Option<Uuid>,
    /// Tag and time ranges.
    pub common: crm::CommonFilter,
}

/// The snapshot used for events and audit diffs (camelCase, like the API).
pub fn snapshot(m: &contacts::Model) -> Value {
    json!({
        "id": m.id, "accountId": m.account_id, "firstName": m.first_name,
        "lastName": m.last_name, "email": m.email, "title": m.title, "phone": m.phone,
        "github": m.github, "twitter": m.twitter, "linkedIn": m.linked_in, "city": m.city,
        "country": m.country, "notes": m.notes, "customFields": m.custom_fields, "tags": m.tags,
        "createdAt": m.created_at, "updatedAt": m.updated_at,
    })
}

pub(crate) fn normalize_email(e: &str) -> String {
    e.trim().to_lowercase()
}

fn blank(organization_id: Uuid) -> contacts::Model {
    let now = Utc::now();
    contacts::Model {
        id: Uuid::now_v7(),
        organization_id,
        account_id: None,
        first_name: None,
        last_name: None,
        email: None,
        email_normalized: None,
        title: None,
        phone: None,
        github: None,
        twitter: None,
        linked_in: None,
        city: None,
        country: None,
        notes: None,
        custom_fields: json!({}),
        tags: json!([]),
        created_at: now,
        updated_at: now,
    }
}

/// Applies `input` onto `m`, collecting errors (field names prefixed with `p`).
fn apply(errors: &mut Vec<FieldError>, p: &str, m: &mut contacts::Model, input: Input) {
    let f = |name: &str| format!("{p}{name}");
    macro_rules! field {
        ($name:ident, $gql:literal, $max:expr) => {
            if let Some(v) = input.$name {
                m.$name = crm::text(errors, &f($gql), v, $max);
            }
        };
    }
    field!(first_name, "firstName", 100);
    field!(last_name, "lastName", 100);
    field!(title, "title", 200);
    field!(phone, "phone", 50);
    field!(github, "github", 100);
    field!(twitter, "twitter", 100);
    field!(linked_in, "linkedIn", 500);
    field!(city, "city", 100);
    field!(country, "country", 100);
    field!(notes, "notes", 10_000);
    if let Some(v) = input.email {
        let e = crm::text(errors, &f("email"), v, 254);
        if let Some(e) = &e {
            let ok = e
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
                && !e.contains(char::is_whitespace);
            if !ok {
                errors.push(FieldError::new(f("email"), "must be an email address"));
            }
        }
        m.email_normalized = e.as_deref().map(normalize_email);
        m.email = e;
    }
    if let Some(v) = input.custom_fields {
        m.custom_fields = crm::custom_fields(errors, &f("customFields"), Some(v));
    }
    if let Some(t) = input.tags {
        m.tags = json!(crm::tags(errors, &f("tags"), t));
    }
    if !input.add_tags.is_empty() || !input.remove_tags.is_empty() {
        m.tags = json!(crm::change_tags(
            errors,
            &m.tags,
            input.add_tags,
            input.remove_tags
        ));
    }
    if let Some(a) = input.account_id {
        m.account_id = a;
    }
    if m.first_name.is_none() && m.last_name.is_none() && m.email.is_none() {
        errors.push(FieldError::new(
            f("email"),
            "a contact needs an email, a first name or a last name",
        ));
    }
}

pub(crate) fn active(m: contacts::Model) -> contacts::ActiveModel {
    contacts::ActiveModel {
        id: Set(m.id),
        organization_id: Set(m.organization_id),
        account_id: Set(m.account_id),
        first_name: Set(m.first_name),
        last_name: Set(m.last_name),
        email: Set(m.email),
        email_normalized: Set(m.email_normalized),
        title: Set(m.title),
        phone: Set(m.phone),
        github: Set(m.github),
        twitter: Set(m.twitter),
        linked_in: Set(m.linked_in),
        city: Set(m.city),
        country: Set(m.country),
        notes: Set(m.notes),
        custom_fields: Set(m.custom_fields),
        tags: Set(m.tags),
        created_at: Set(m.created_at),
        updated_at: Set(m.updated_at),
    }
}

/// A new contact of `organization_id` made from `input`, checked exactly as [`create`] checks
/// it (errors name the unprefixed field); nothing is written, links are not checked.
pub(crate) fn validate_new(
    organization_id: Uuid,
    input: Input,
) -> std::result::Result<contacts::Model, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut m = blank(organization_id);
    apply(&mut errors, "", &mut m, input);
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

/// `old` with `input` applied, checked exactly as [`update`] checks it; nothing is written.
pub(crate) fn validate_change(
    old: &contacts::Model,
    input: Input,
) -> std::result::Result<contacts::Model, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut m = old.clone();
    apply(&mut errors, "", &mut m, input);
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

fn conflict(e: sea_orm::DbErr, field: &str) -> Error {
    on_unique(e, field, "a contact with this email already exists")
}

/// The linked account must be one of the organization's (`accountId` is invalid otherwise).
async fn check_accounts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    errors: &mut Vec<FieldError>,
    links: &[(String, Uuid)],
) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = links.iter().map(|(_, id)| *id).collect();
    let found: Vec<Uuid> = companies::Entity::find()
        .select_only()
        .column(companies::Column::Id)
        .filter(companies::Column::OrganizationId.eq(actor.organization_id))
        .filter(companies::Column::Id.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    for (field, id) in links {
        if !found.contains(id) {
            errors.push(FieldError::new(field.clone(), "no such account"));
        }
    }
    Ok(())
}

/// What writing contacts needs: MEMBER or more, and `contacts:write` for an API key.
pub fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("contacts:write")
}

/// Creates one contact (MEMBER+, key scope `contacts:write`).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    input: Input,
) -> Result<contacts::Model> {
    let mut all = create_many(db, actor, meta, vec![input], "").await?;
    all.pop()
        .ok_or_else(|| Error::Internal("no contact created".into()))
}

/// Creates up to [`crm::MAX_BATCH`] contacts: all validated first (fields named
/// `<prefix>.<index>.<field>`), then all land in one transaction or none.
pub async fn create_many(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    inputs: Vec<Input>,
    prefix: &str,
) -> Result<Vec<contacts::Model>> {
    write_rights(actor)?;
    if inputs.is_empty() || inputs.len() > crm::MAX_BATCH {
        return Err(Error::invalid(
            if prefix.is_empty() { "input" } else { prefix },
            format!("must hold 1 to {} rows", crm::MAX_BATCH),
        ));
    }
    let batch = !prefix.is_empty();
    let mut errors = Vec::new();
    let mut links = Vec::new();
    let models: Vec<contacts::Model> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let p = if batch {
                format!("{prefix}.{i}.")
            } else {
                String::new()
            };
            let mut m = blank(actor.organization_id);
            apply(&mut errors, &p, &mut m, input);
            if let Some(a) = m.account_id {
                links.push((format!("{p}accountId"), a));
            }
            m
        })
        .collect();
    let txn = crate::db::begin(db).await?;
    check_accounts(&txn, actor, &mut errors, &links).await?;
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    // A person who asked to be erased is not created again.
    let emails: Vec<(String, String)> = models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let field = if batch {
                format!("{prefix}.{i}.email")
            } else {
                "email".into()
            };
            m.email_normalized.clone().map(|e| (field, e))
        })
        .collect();
    crate::privacy::tombstones::refuse_erased_emails(&txn, actor.organization_id, &emails).await?;
    if let Some(standing) =
        crate::billing::limits(&txn, actor.organization_id, chrono::Utc::now()).await?
    {
        crate::billing::usage::admit(
            &txn,
            actor.organization_id,
            &standing,
            crate::billing::Metric::Contacts,
            models.len() as u64,
        )
        .await?;
    }
    let mut out = Vec::with_capacity(models.len());
    for (i, m) in models.into_iter().enumerate() {
        let field = if batch {
            format!("{prefix}.{i}.email")
        } else {
            "email".into()
        };
        let m = active(m)
            .insert(&txn)
            .await
            .map_err(|e| conflict(e, &field))?;
        audit::record(
            &txn,
            meta,
            Entry::by(actor, action::CREATED).target("contact", m.id),
        )
        .await?;
        out.push(m);
    }
    for m in &out {
        events::append(
            &txn,
            actor.organization_id,
            Some(actor),
            "contact.created",
            snapshot(m),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(out)
}

async fn find(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<contacts::Model> {
    contacts::Entity::find_by_id(id)
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Contact" })
}

/// One contact of the actor's organization; `NOT_FOUND` for any other id.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<contacts::Model> {
    actor.require_scope("contacts:read")?;
    find(db, actor, id).await
}

/// A page of the organization's contacts, newest first.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<contacts::Model>> {
    actor.require_scope("contacts:read")?;
    paging::check_page(page)?;
    let mut cond = Condition::all().add(contacts::Column::OrganizationId.eq(actor.organization_id));
    if let Some(q) = filter.query.as_deref().filter(|q| !q.trim().is_empty()) {
        let p = crm::like_pattern(q);
        let like = |c: contacts::Column| {
            Expr::expr(Func::lower(Expr::col(c))).like(LikeExpr::new(p.clone()).escape('\\'))
        };
        cond = cond.add(
            Condition::any()
                .add(like(contacts::Column::FirstName))
                .add(like(contacts::Column::LastName))
                .add(like(contacts::Column::EmailNormalized)),
        );
    }
    if let Some(a) = filter.account_id {
        cond = cond.add(contacts::Column::AccountId.eq(a));
    }
    let cond = filter.common.apply(
        cond,
        crm::CommonColumns {
            created_at: contacts::Column::CreatedAt,
            updated_at: contacts::Column::UpdatedAt,
            tags: Some(contacts::Column::Tags),
        },
    );
    paging::fetch_page::<contacts::Entity>(db, cond, contacts::Column::Id, sort, page).await
}

/// The orderings the list offers.
fn sort(field: &str) -> Option<paging::Sort<contacts::Column>> {
    Some(match field {
        "NAME" => paging::Sort::text(contacts::Column::LastName),
        "EMAIL" => paging::Sort::text(contacts::Column::EmailNormalized),
        "CREATED_AT" => paging::Sort::time(contacts::Column::CreatedAt),
        "UPDATED_AT" => paging::Sort::time(contacts::Column::UpdatedAt),
        _ => return None,
    })
}

/// Applies `input` to `old` in `txn` (validation, the row, a rescore when the title, seniority or
/// account changed, audit, `contact.updated`); no rights check.
pub(crate) async fn update_in(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    meta: &Meta,
    old: contacts::Model,
    input: Input,
) -> Result<contacts::Model> {
    let mut m = old.clone();
    let mut errors = Vec::new();
    apply(&mut errors, "", &mut m, input);
    if let Some(a) = m.account_id
        && old.account_id != Some(a)
    {
        check_accounts(txn, actor, &mut errors, &[("accountId".into(), a)]).await?;
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let changes = crm::diff(&snapshot(&old), &snapshot(&m));
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        return Ok(old);
    }
    // Nor is a contact given the email of someone erased.
    if let Some(e) = &m.email_normalized
        && old.email_normalized.as_ref() != Some(e)
    {
        crate::privacy::tombstones::refuse_erased_emails(
            txn,
            actor.organization_id,
            &[("email".to_owned(), e.clone())],
        )
        .await?;
    }
    m.updated_at = Utc::now();
    let mut am = active(m);
    am.id = ActiveValue::Unchanged(old.id);
    am.organization_id = ActiveValue::Unchanged(old.organization_id);
    am.created_at = ActiveValue::Unchanged(old.created_at);
    let m = am.update(txn).await.map_err(|e| conflict(e, "email"))?;
    // Titles and seniority are scoring inputs of the contact's account (senior contacts), old
    // and new when the contact moved.
    let seniority = |c: &contacts::Model| c.custom_fields.get("seniority").cloned();
    if old.title != m.title || seniority(&old) != seniority(&m) || old.account_id != m.account_id {
        // A score that exists is brought up to date (an account never scored gets its first
        // score from its first signal).
        let linked: Vec<Uuid> = [old.account_id, m.account_id]
            .into_iter()
            .flatten()
            .collect();
        if !linked.is_empty() {
            let scored: Vec<Uuid> = companies::Entity::find()
                .select_only()
                .column(companies::Column::Id)
                .filter(companies::Column::OrganizationId.eq(old.organization_id))
                .filter(companies::Column::Id.is_in(linked))
                .filter(companies::Column::Score.is_not_null())
                .into_tuple()
                .all(txn)
                .await?;
            crate::scoring::request_rescore(txn, old.organization_id, &scored).await?;
        }
    }
    audit::record(
        txn,
        meta,
        Entry::by(actor, action::UPDATED)
            .target("contact", m.id)
            .metadata(json!({"changes": changes})),
    )
    .await?;
    events::append(
        txn,
        actor.organization_id,
        Some(actor),
        "contact.updated",
        json!({"contact": snapshot(&m), "changes": changes}),
    )
    .await?;
    Ok(m)
}

/// Changes a contact (MEMBER+); the audit entry lists each changed field's old and new value.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    input: Input,
) -> Result<contacts::Model> {
    write_rights(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    let m = update_in(&txn, actor, meta, old, input).await?;
    txn.commit().await?;
    Ok(m)
}

/// The contact, locked for an update in `txn` (for domain code that decides the change from
/// the row it locked: enrichment fills only what is still empty); no rights check.
pub(crate) async fn locked(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    id: Uuid,
) -> Result<contacts::Model> {
    contacts::Entity::find_by_id(id)
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(Error::NotFound { entity: "Contact" })
}

/// Creates the contact with `input.email`, or updates the one that has it (normalised).
pub async fn upsert(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    input: Input,
) -> Result<contacts::Model> {
    write_rights(actor)?;
    let email = match &input.email {
        Some(Some(e)) if !e.trim().is_empty() => normalize_email(e),
        _ => return Err(Error::invalid("email", "is required to upsert")),
    };
    let existing = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .filter(contacts::Column::EmailNormalized.eq(email))
        .one(db)
        .await?;
    match existing {
        None => create(db, actor, meta, input).await,
        Some(old) => {
            let txn = crate::db::begin(db).await?;
            let m = update_in(&txn, actor, meta, old, input).await?;
            txn.commit().await?;
            Ok(m)
        }
    }
}

/// Deletes a contact (MEMBER+). Returns the id.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, meta: &Meta, id: Uuid) -> Result<Uuid> {
    write_rights(actor)?;
    let txn = crate::db::begin(db).await?;
    find(&txn, actor, id).await?;
    crate::db::detach(
        &txn,
        actor.organization_id,
        crate::db::Referenced::Contact,
        &[id],
    )
    .await?;
    contacts::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::DELETED).target("contact", id),
    )
    .await?;
    events::append(
        &txn,
        actor.organization_id,
        Some(actor),
        "contact.deleted",
        json!({"id": id}),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// The contacts with these ids in the actor's organization (for loaders).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<contacts::Model>> {
    actor.require_scope("contacts:read")?;
    Ok(contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .filter(contacts::Column::Id.is_in(ids))
        .all(db)
        .await?)
}
