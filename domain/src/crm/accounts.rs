//! Accounts (the original's Company): create, read, list, update, delete, batch create. Every
//! mutation validates first (errors name the field), writes, records the audit entry and appends
//! the `company.*` event last, all in one transaction. The normalised domain is unique per
//! organization, decided by the database's unique index (`CONFLICT` on `domain`).

use chrono::Utc;
use entity::{account_scores, companies};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta};
use crate::crm;
use crate::error::on_unique;
use crate::paging::{self, Page, PageRequest};
use crate::{Actor, Error, FieldError, Result, events};

/// Company sizes.
pub const SIZES: &[&str] = &["STARTUP", "SMALL", "MEDIUM", "LARGE", "ENTERPRISE"];

pub mod action {
    pub const CREATED: &str = "account.created";
    pub const UPDATED: &str = "account.updated";
    pub const DELETED: &str = "account.deleted";
}

/// The fields of a new account.
#[derive(Debug, Clone, Default)]
pub struct CreateInput {
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size: Option<String>,
    pub website: Option<String>,
    pub github_org: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub description: Option<String>,
    pub custom_fields: Option<Value>,
    pub tags: Vec<String>,
}

/// A change: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    pub name: Option<String>,
    pub domain: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub size: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub github_org: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub custom_fields: Option<Value>,
    pub tags: Option<Vec<String>>,
    /// Tags to add to the current ones (after `tags`, if both are given).
    pub add_tags: Vec<String>,
    /// Tags to remove from the current ones.
    pub remove_tags: Vec<String>,
}

/// Which accounts to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case-insensitive substring of name or domain.
    pub query: Option<String>,
    pub size: Option<String>,
    /// Only accounts whose current score is in this tier (`HOT`, `WARM`, `COLD`, `INACTIVE`);
    /// accounts never scored match none.
    pub tier: Option<String>,
    /// Only accounts with at least one signal from this source of the organization (a source of
    /// another organization matches none).
    pub source_id: Option<Uuid>,
    /// Tag and time ranges.
    pub common: crm::CommonFilter,
}

/// The snapshot used for events and audit diffs (camelCase, like the API).
pub fn snapshot(m: &companies::Model) -> Value {
    json!({
        "id": m.id, "name": m.name, "domain": m.domain, "industry": m.industry, "size": m.size,
        "website": m.website, "githubOrg": m.github_org, "city": m.city, "country": m.country,
        "description": m.description, "customFields": m.custom_fields, "tags": m.tags,
        "createdAt": m.created_at, "updatedAt": m.updated_at,
    })
}

pub(crate) fn normalize_domain(d: &str) -> String {
    let d = d.trim().to_lowercase();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(&d);
    let d = d.strip_prefix("www.").unwrap_or(d);
    d.trim_end_matches('/').to_owned()
}

fn check_domain(errors: &mut Vec<FieldError>, field: &str, d: &Option<String>) {
    if let Some(d) = d {
        let n = normalize_domain(d);
        let ok = n.contains('.')
            && !n.starts_with('.')
            && !n.ends_with('.')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !ok {
            errors.push(FieldError::new(
                field,
                "must be a domain such as example.com",
            ));
        }
    }
}

fn check_size(errors: &mut Vec<FieldError>, field: &str, s: &Option<String>) {
    if let Some(s) = s
        && !SIZES.contains(&s.as_str())
    {
        errors.push(FieldError::new(
            field,
            format!("must be one of {}", SIZES.join(", ")),
        ));
    }
}

fn validate_create(
    errors: &mut Vec<FieldError>,
    prefix: &str,
    input: CreateInput,
) -> companies::Model {
    let f = |name: &str| format!("{prefix}{name}");
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new(f("name"), "must be 1 to 200 characters"));
    }
    let domain = crm::text(errors, &f("domain"), input.domain, 253);
    check_domain(errors, &f("domain"), &domain);
    let size = crm::text(errors, &f("size"), input.size, 20);
    check_size(errors, &f("size"), &size);
    let now = Utc::now();
    companies::Model {
        id: Uuid::now_v7(),
        organization_id: Uuid::nil(),
        name,
        domain_normalized: domain.as_deref().map(normalize_domain),
        domain,
        industry: crm::text(errors, &f("industry"), input.industry, 100),
        size,
        website: crm::text(errors, &f("website"), input.website, 500),
        github_org: crm::text(errors, &f("githubOrg"), input.github_org, 100),
        city: crm::text(errors, &f("city"), input.city, 100),
        country: crm::text(errors, &f("country"), input.country, 100),
        description: crm::text(errors, &f("description"), input.description, 10_000),
        custom_fields: crm::custom_fields(errors, &f("customFields"), input.custom_fields),
        tags: json!(crm::tags(errors, &f("tags"), input.tags)),
        score: None,
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn active(m: companies::Model) -> companies::ActiveModel {
    companies::ActiveModel {
        id: Set(m.id),
        organization_id: Set(m.organization_id),
        name: Set(m.name),
        domain: Set(m.domain),
        domain_normalized: Set(m.domain_normalized),
        industry: Set(m.industry),
        size: Set(m.size),
        website: Set(m.website),
        github_org: Set(m.github_org),
        city: Set(m.city),
        country: Set(m.country),
        description: Set(m.description),
        custom_fields: Set(m.custom_fields),
        tags: Set(m.tags),
        score: Set(m.score),
        created_at: Set(m.created_at),
        updated_at: Set(m.updated_at),
    }
}

/// A new account of `organization_id` made from `input`, checked exactly as [`create`] checks
/// it (errors name the unprefixed field); nothing is written.
pub(crate) fn validate_new(
    organization_id: Uuid,
    input: CreateInput,
) -> std::result::Result<companies::Model, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut m = validate_create(&mut errors, "", input);
    m.organization_id = organization_id;
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

/// `old` with `input` applied, checked exactly as [`update`] checks it; nothing is written.
pub(crate) fn validate_change(
    old: &companies::Model,
    input: UpdateInput,
) -> std::result::Result<companies::Model, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut m = old.clone();
    apply_update(&mut errors, &mut m, input);
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

/// What writing accounts needs: MEMBER or more, and `accounts:write` for an API key.
pub fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("accounts:write")
}

fn conflict(e: sea_orm::DbErr, field: &str) -> Error {
    on_unique(e, field, "an account with this domain already exists")
}

/// Creates one account (MEMBER+, key scope `accounts:write`).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    input: CreateInput,
) -> Result<companies::Model> {
    let mut all = create_many(db, actor, meta, vec![input], "").await?;
    all.pop()
        .ok_or_else(|| Error::Internal("no account created".into()))
}

/// Creates up to [`crm::MAX_BATCH`] accounts: every row is validated first (fields named
/// `input.<index>.<field>` when `prefix` is `input`), then all land in one transaction or none.
pub async fn create_many(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    inputs: Vec<CreateInput>,
    prefix: &str,
) -> Result<Vec<companies::Model>> {
    actor.require_write()?;
    actor.require_scope("accounts:write")?;
    if inputs.is_empty() || inputs.len() > crm::MAX_BATCH {
        return Err(Error::invalid(
            if prefix.is_empty() { "input" } else { prefix },
            format!("must hold 1 to {} rows", crm::MAX_BATCH),
        ));
    }
    let mut errors = Vec::new();
    let batch = !prefix.is_empty();
    let models: Vec<companies::Model> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let p = if batch {
                format!("{prefix}.{i}.")
            } else {
                String::new()
            };
            let mut m = validate_create(&mut errors, &p, input);
            m.organization_id = actor.organization_id;
            m
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let txn = crate::db::begin(db).await?;
    let mut out = Vec::with_capacity(models.len());
    for (i, m) in models.into_iter().enumerate() {
        let field = if batch {
            format!("{prefix}.{i}.domain")
        } else {
            "domain".into()
        };
        let m = active(m)
            .insert(&txn)
            .await
            .map_err(|e| conflict(e, &field))?;
        audit::record(
            &txn,
            meta,
            Entry::by(actor, action::CREATED)
                .target("account", m.id)
                .metadata(json!({"name": m.name})),
        )
        .await?;
        out.push(m);
    }
    for m in &out {
        events::append(
            &txn,
            actor.organization_id,
            Some(actor),
            "company.created",
            snapshot(m),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(out)
}

async fn find(
    db: &impl sea_orm::ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<companies::Model> {
    companies::Entity::find_by_id(id)
        .filter(companies::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Account" })
}

/// One account of the actor's organization; `NOT_FOUND` for any other id.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<companies::Model> {
    actor.require_scope("accounts:read")?;
    find(db, actor, id).await
}

/// A page of the organization's accounts, newest first (or in `page.order`, each served by its
/// index: migration 000013).
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<companies::Model>> {
    list_of(db, actor, filter, page, &paging::ByPosition).await
}

/// An account with its current score, read together (`None` for an account never scored).
pub type Scored = (companies::Model, Option<account_scores::Model>);

/// [`list`], each account with its current score read in the same statement (a page that shows
/// scores costs no second read of them).
pub async fn list_scored(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<Scored>> {
    list_of(db, actor, filter, page, &WithScore).await
}

/// The page's accounts, each joined to its score row: `account_scores` of the same organization
/// and account, by its primary key.
struct WithScore;

impl paging::PageRows<companies::Entity> for WithScore {
    type Item = Scored;
    fn model(item: &Scored) -> &companies::Model {
        &item.0
    }
    fn read<'a, C: sea_orm::ConnectionTrait>(
        &'a self,
        db: &'a C,
        query: sea_orm::Select<companies::Entity>,
    ) -> impl std::future::Future<Output = std::result::Result<Vec<Scored>, sea_orm::DbErr>> + Send + 'a
    {
        crate::db::rows::all_also(
            db,
            query
                .join(
                    sea_orm::JoinType::LeftJoin,
                    crate::scoring::score_of_account(),
                )
                .select_also(account_scores::Entity),
        )
    }
}

async fn list_of<R: paging::PageRows<companies::Entity>>(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
    rows: &R,
) -> Result<Page<R::Item>> {
    actor.require_scope("accounts:read")?;
    paging::check_page(page)?;
    let mut cond =
        Condition::all().add(companies::Column::OrganizationId.eq(actor.organization_id));
    if let Some(q) = filter.query.as_deref().filter(|q| !q.trim().is_empty()) {
        let p = crm::like_pattern(q);
        cond = cond.add(
            Condition::any()
                .add(
                    Expr::expr(Func::lower(Expr::col(companies::Column::Name)))
                        .like(LikeExpr::new(p.clone()).escape('\\')),
                )
                .add(
                    Expr::col(companies::Column::DomainNormalized)
                        .like(LikeExpr::new(p).escape('\\')),
                ),
        );
    }
    if let Some(size) = &filter.size {
        cond = cond.add(companies::Column::Size.eq(size.clone()));
    }
    if let Some(tier) = &filter.tier {
        cond = cond.add(
            companies::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(entity::account_scores::Column::AccountId)
                    .from(entity::account_scores::Entity)
                    .and_where(
                        entity::account_scores::Column::OrganizationId.eq(actor.organization_id),
                    )
                    .and_where(entity::account_scores::Column::Tier.eq(tier.clone()))
                    .to_owned(),
            ),
        );
    }
    if let Some(source) = filter.source_id {
        cond = cond.add(
            companies::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(entity::signals::Column::AccountId)
                    .from(entity::signals::Entity)
                    .and_where(entity::signals::Column::OrganizationId.eq(actor.organization_id))
                    .and_where(entity::signals::Column::SourceId.eq(source))
                    .and_where(entity::signals::Column::AccountId.is_not_null())
                    .to_owned(),
            ),
        );
    }
    let cond = filter.common.apply(
        cond,
        crm::CommonColumns {
            created_at: companies::Column::CreatedAt,
            updated_at: companies::Column::UpdatedAt,
            tags: Some(companies::Column::Tags),
        },
    );
    paging::fetch_page_of::<companies::Entity, R>(db, cond, companies::Column::Id, sort, page, rows)
        .await
}

/// The orderings the list offers.
fn sort(field: &str) -> Option<paging::Sort<companies::Column>> {
    Some(match field {
        "NAME" => paging::Sort::text(companies::Column::Name),
        "DOMAIN" => paging::Sort::text(companies::Column::DomainNormalized),
        "CREATED_AT" => paging::Sort::time(companies::Column::CreatedAt),
        "UPDATED_AT" => paging::Sort::time(companies::Column::UpdatedAt),
        "SCORE" => paging::Sort::number(companies::Column::Score),
        _ => return None,
    })
}

/// Applies an update's fields onto `m`, collecting errors.
fn apply_update(errors: &mut Vec<FieldError>, m: &mut companies::Model, input: UpdateInput) {
    if let Some(name) = input.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        m.name = name;
    }
    if let Some(d) = input.domain {
        let d = crm::text(errors, "domain", d, 253);
        check_domain(errors, "domain", &d);
        m.domain_normalized = d.as_deref().map(normalize_domain);
        m.domain = d;
    }
    if let Some(s) = input.size {
        let s = crm::text(errors, "size", s, 20);
        check_size(errors, "size", &s);
        m.size = s;
    }
    if let Some(v) = input.industry {
        m.industry = crm::text(errors, "industry", v, 100);
    }
    if let Some(v) = input.website {
        m.website = crm::text(errors, "website", v, 500);
    }
    if let Some(v) = input.github_org {
        m.github_org = crm::text(errors, "githubOrg", v, 100);
    }
    if let Some(v) = input.city {
        m.city = crm::text(errors, "city", v, 100);
    }
    if let Some(v) = input.country {
        m.country = crm::text(errors, "country", v, 100);
    }
    if let Some(v) = input.description {
        m.description = crm::text(errors, "description", v, 10_000);
    }
    if let Some(v) = input.custom_fields {
        m.custom_fields = crm::custom_fields(errors, "customFields", Some(v));
    }
    if let Some(t) = input.tags {
        m.tags = json!(crm::tags(errors, "tags", t));
    }
    if !input.add_tags.is_empty() || !input.remove_tags.is_empty() {
        m.tags = json!(crm::change_tags(
            errors,
            &m.tags,
            input.add_tags,
            input.remove_tags
        ));
    }
}

/// Changes an account (MEMBER+); the audit entry lists each changed field's old and new value.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    input: UpdateInput,
) -> Result<companies::Model> {
    actor.require_write()?;
    actor.require_scope("accounts:write")?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    let m = update_in(&txn, actor, meta, old, input).await?;
    txn.commit().await?;
    Ok(m)
}

/// The account, locked for an update in `txn` (for domain code that decides the change from
/// the row it locked: enrichment fills only what is still empty); no rights check.
pub(crate) async fn locked(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    id: Uuid,
) -> Result<companies::Model> {
    companies::Entity::find_by_id(id)
        .filter(companies::Column::OrganizationId.eq(actor.organization_id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(Error::NotFound { entity: "Account" })
}

/// Applies `input` to `old` in `txn`: validation, the row, a rescore when the size changed, the
/// audit entry and `company.updated`; no rights check.
pub(crate) async fn update_in(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    meta: &Meta,
    old: companies::Model,
    input: UpdateInput,
) -> Result<companies::Model> {
    let id = old.id;
    let mut m = old.clone();
    let mut errors = Vec::new();
    apply_update(&mut errors, &mut m, input);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let changes = crm::diff(&snapshot(&old), &snapshot(&m));
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        return Ok(old);
    }
    m.updated_at = Utc::now();
    let mut am = active(m);
    am.id = sea_orm::ActiveValue::Unchanged(id);
    am.organization_id = sea_orm::ActiveValue::Unchanged(old.organization_id);
    am.created_at = sea_orm::ActiveValue::Unchanged(old.created_at);
    // The score copy belongs to the rescore that writes `account_scores` (never written back
    // from a row read before it committed).
    am.score = sea_orm::ActiveValue::NotSet;
    let m = am.update(txn).await.map_err(|e| conflict(e, "domain"))?;
    // Size is a scoring input (firmographic fit): a score that exists is brought up to date
    // (an account never scored gets its first score from its first signal).
    if old.size != m.size && old.score.is_some() {
        crate::scoring::request_rescore(txn, old.organization_id, &[m.id]).await?;
    }
    audit::record(
        txn,
        meta,
        Entry::by(actor, action::UPDATED)
            .target("account", m.id)
            .metadata(json!({"changes": changes})),
    )
    .await?;
    events::append(
        txn,
        actor.organization_id,
        Some(actor),
        "company.updated",
        json!({"account": snapshot(&m), "changes": changes}),
    )
    .await?;
    Ok(m)
}

/// Deletes an account (MEMBER+); its contacts stay, unlinked. Returns the id.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, meta: &Meta, id: Uuid) -> Result<Uuid> {
    actor.require_write()?;
    actor.require_scope("accounts:write")?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    crate::db::detach(
        &txn,
        actor.organization_id,
        crate::db::Referenced::Account,
        &[id],
    )
    .await?;
    companies::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::DELETED)
            .target("account", id)
            .metadata(json!({"name": old.name})),
    )
    .await?;
    events::append(
        &txn,
        actor.organization_id,
        Some(actor),
        "company.deleted",
        json!({"id": id, "name": old.name}),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// The accounts with these ids in the actor's organization (for loaders).
pub async fn by_ids(
    db: &DatabaseConnection,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<companies::Model>> {
    actor.require_scope("accounts:read")?;
    Ok(companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(actor.organization_id))
        .filter(companies::Column::Id.is_in(ids))
        .all(db)
        .await?)
}
