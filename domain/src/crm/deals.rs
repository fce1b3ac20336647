//! Deals: opportunities in the PLG pipeline. Same shape as [`crate::crm::accounts`]: validate (errors
//! name the field), write, audit, `deal.*` event last, one transaction. A stage change appends
//! `deal.stage_changed` {from, to}; reaching CLOSED_WON or CLOSED_LOST sets `closedAt`, reopening
//! clears it. The owner must be a member of the organization; linked account and contact must be
//! the organization's.

use chrono::{NaiveDate, Utc};
use entity::deals;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Entry, Meta};
use crate::crm::{self, Links};
use crate::paging::{self, Page, PageRequest};
use crate::{Actor, Error, FieldError, Result, events};

/// The PLG pipeline, in order (the original's `DealStage`).
pub const STAGES: &[&str] = &[
    "ANONYMOUS_USAGE",
    "IDENTIFIED",
    "ACTIVATED",
    "TEAM_ADOPTION",
    "EXPANSION_SIGNAL",
    "SALES_QUALIFIED",
    "NEGOTIATION",
    "CLOSED_WON",
    "CLOSED_LOST",
];

/// The stages of HubSpot's default sales pipeline (its internal names) → ours: the HubSpot
/// connector's default stage map, and how imports of HubSpot CSV exports read "Deal Stage"
/// (whose labels, "Closed Won", normalise to the same names: [`stage_of`]).
pub const HUBSPOT_STAGES: &[(&str, &str)] = &[
    ("appointmentscheduled", "IDENTIFIED"),
    ("qualifiedtobuy", "ACTIVATED"),
    ("presentationscheduled", "TEAM_ADOPTION"),
    ("decisionmakerboughtin", "SALES_QUALIFIED"),
    ("contractsent", "NEGOTIATION"),
    ("closedwon", "CLOSED_WON"),
    ("closedlost", "CLOSED_LOST"),
];

/// Salesforce's standard opportunity stages → ours: the Salesforce connector's default stage
/// map, and how imports of Salesforce CSV exports read "Stage".
pub const SALESFORCE_STAGES: &[(&str, &str)] = &[
    ("Prospecting", "IDENTIFIED"),
    ("Qualification", "ACTIVATED"),
    ("Needs Analysis", "ACTIVATED"),
    ("Value Proposition", "TEAM_ADOPTION"),
    ("Id. Decision Makers", "SALES_QUALIFIED"),
    ("Perception Analysis", "SALES_QUALIFIED"),
    ("Proposal/Price Quote", "SALES_QUALIFIED"),
    ("Negotiation/Review", "NEGOTIATION"),
    ("Closed Won", "CLOSED_WON"),
    ("Closed Lost", "CLOSED_LOST"),
];

/// Letters and digits of `s`, lower-cased: how stage names from files are compared
/// ("Closed Won", "closedwon" and "CLOSED_WON" are one stage).
fn stage_key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Our stage for a stage name read from a file: one of ours, else one of `preferred`'s (the
/// file's CRM), else HubSpot's or Salesforce's default stages; compared by [`stage_key`].
pub fn stage_of(name: &str, preferred: &[(&str, &str)]) -> Option<&'static str> {
    let key = stage_key(name);
    if key.is_empty() {
        return None;
    }
    if let Some(s) = STAGES.iter().find(|s| stage_key(s) == key) {
        return Some(s);
    }
    [preferred, HUBSPOT_STAGES, SALESFORCE_STAGES]
        .iter()
        .flat_map(|m| m.iter())
        .find(|(theirs, _)| stage_key(theirs) == key)
        .and_then(|(_, ours)| STAGES.iter().copied().find(|s| s == ours))
}

/// Stages that close a deal.
pub const CLOSED: &[&str] = &["CLOSED_WON", "CLOSED_LOST"];

pub mod action {
    pub const CREATED: &str = "deal.created";
    pub const UPDATED: &str = "deal.updated";
    pub const DELETED: &str = "deal.deleted";
}

/// The fields of a deal. On create `title` is required; on update `None` leaves a field alone
/// and `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub title: Option<String>,
    pub amount: Option<Option<f64>>,
    pub currency: Option<String>,
    pub stage: Option<String>,
    pub probability: Option<Option<i32>>,
    pub expected_close_date: Option<Option<NaiveDate>>,
    pub description: Option<Option<String>>,
    pub custom_fields: Option<Value>,
    pub tags: Option<Vec<String>>,
    pub account_id: Option<Option<Uuid>>,
    pub contact_id: Option<Option<Uuid>>,
    /// Defaults to the creating user on create.
    pub owner_id: Option<Option<Uuid>>,
}

/// Which deals to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case-insensitive substring of the title.
    pub query: Option<String>,
    pub stage: Option<String>,
    pub owner_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// Tag and time ranges.
    pub common: crm::CommonFilter,
}

/// The snapshot used for events and audit diffs (camelCase, like the API).
pub fn snapshot(m: &deals::Model) -> Value {
    json!({
        "id": m.id, "title": m.title, "amount": m.amount, "currency": m.currency,
        "stage": m.stage, "probability": m.probability, "accountId": m.account_id,
        "contactId": m.contact_id, "ownerId": m.owner_id,
        "expectedCloseDate": m.expected_close_date, "closedAt": m.closed_at,
        "description": m.description, "customFields": m.custom_fields, "tags": m.tags,
        "createdAt": m.created_at, "updatedAt": m.updated_at,
    })
}

pub(crate) fn active(m: deals::Model) -> deals::ActiveModel {
    deals::ActiveModel {
        id: Set(m.id),
        organization_id: Set(m.organization_id),
        title: Set(m.title),
        amount: Set(m.amount),
        currency: Set(m.currency),
        stage: Set(m.stage),
        probability: Set(m.probability),
        account_id: Set(m.account_id),
        contact_id: Set(m.contact_id),
        owner_id: Set(m.owner_id),
        expected_close_date: Set(m.expected_close_date),
        closed_at: Set(m.closed_at),
        description: Set(m.description),
        custom_fields: Set(m.custom_fields),
        tags: Set(m.tags),
        created_at: Set(m.created_at),
        updated_at: Set(m.updated_at),
    }
}

/// Applies `input` onto `m`, collecting errors; returns the links that changed (to check).
fn apply(errors: &mut Vec<FieldError>, m: &mut deals::Model, input: Input) -> Links {
    let mut links = Links::default();
    if let Some(title) = input.title {
        let title = title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            errors.push(FieldError::new("title", "must be 1 to 200 characters"));
        }
        m.title = title;
    }
    if let Some(a) = input.amount {
        if a.is_some_and(|a| !a.is_finite() || a < 0.0) {
            errors.push(FieldError::new("amount", "must be zero or more"));
        }
        m.amount = a;
    }
    if let Some(c) = input.currency {
        let c = c.trim().to_uppercase();
        if c.len() != 3 || !c.chars().all(|c| c.is_ascii_uppercase()) {
            errors.push(FieldError::new(
                "currency",
                "must be a three-letter ISO 4217 code",
            ));
        }
        m.currency = c;
    }
    if let Some(s) = input.stage {
        crm::one_of(errors, "stage", &s, STAGES);
        m.stage = s;
    }
    if let Some(p) = input.probability {
        if p.is_some_and(|p| !(0..=100).contains(&p)) {
            errors.push(FieldError::new("probability", "must be between 0 and 100"));
        }
        m.probability = p;
    }
    if let Some(d) = input.expected_close_date {
        m.expected_close_date = d;
    }
    if let Some(d) = input.description {
        m.description = crm::text(errors, "description", d, 10_000);
    }
    if let Some(v) = input.custom_fields {
        m.custom_fields = crm::custom_fields(errors, "customFields", Some(v));
    }
    if let Some(t) = input.tags {
        m.tags = json!(crm::tags(errors, "tags", t));
    }
    if let Some(a) = input.account_id {
        m.account_id = a;
        links.account = a;
    }
    if let Some(c) = input.contact_id {
        m.contact_id = c;
        links.contact = c;
    }
    if let Some(o) = input.owner_id {
        m.owner_id = o;
        links.member = o.map(|o| ("ownerId", o));
    }
    links
}

/// `closedAt` follows the stage: set when a deal closes, cleared when it reopens.
fn close_or_reopen(old_stage: Option<&str>, m: &mut deals::Model) {
    let was_closed = old_stage.is_some_and(|s| CLOSED.contains(&s));
    let is_closed = CLOSED.contains(&m.stage.as_str());
    if is_closed && (!was_closed || old_stage != Some(m.stage.as_str())) {
        m.closed_at = Some(Utc::now());
    } else if !is_closed {
        m.closed_at = None;
    }
}

/// What writing deals needs: MEMBER or more, and `deals:write` for an API key.
pub fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("deals:write")
}

/// A new deal of `organization_id` made from `input` (owner `owner` unless the input names
/// one), checked exactly as [`create`] checks it; nothing is written, links are not checked.
pub(crate) fn validate_new(
    organization_id: Uuid,
    owner: Option<Uuid>,
    mut input: Input,
) -> std::result::Result<deals::Model, Vec<FieldError>> {
    if input.owner_id.is_none() {
        input.owner_id = Some(owner);
    }
    let (m, _, errors) = new_model(organization_id, input);
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

/// `old` with `input` applied (and `closedAt` following the stage), checked exactly as
/// [`update`] checks it; nothing is written, links are not checked.
pub(crate) fn validate_change(
    old: &deals::Model,
    input: Input,
) -> std::result::Result<deals::Model, Vec<FieldError>> {
    let mut m = old.clone();
    let mut errors = Vec::new();
    apply(&mut errors, &mut m, input);
    if m.stage != old.stage {
        close_or_reopen(Some(&old.stage), &mut m);
    }
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

/// A new deal's row from `input`, the links it names and the errors found.
fn new_model(organization_id: Uuid, mut input: Input) -> (deals::Model, Links, Vec<FieldError>) {
    let now = Utc::now();
    let mut m = deals::Model {
        id: Uuid::now_v7(),
        organization_id,
        title: String::new(),
        amount: None,
        currency: "USD".into(),
        stage: STAGES[0].into(),
        probability: None,
        account_id: None,
        contact_id: None,
        owner_id: None,
        expected_close_date: None,
        closed_at: None,
        description: None,
        custom_fields: json!({}),
        tags: json!([]),
        created_at: now,
        updated_at: now,
    };
    if input.title.is_none() {
        input.title = Some(String::new());
    }
    let mut errors = Vec::new();
    let links = apply(&mut errors, &mut m, input);
    close_or_reopen(None, &mut m);
    (m, links, errors)
}

/// Creates a deal (MEMBER+, key scope `deals:write`); the owner defaults to the caller.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    mut input: Input,
) -> Result<deals::Model> {
    write_rights(actor)?;
    if input.owner_id.is_none() {
        input.owner_id = Some(actor.user_id());
    }
    let (m, links, mut errors) = new_model(actor.organization_id, input);
    let txn = crate::db::begin(db).await?;
    crm::check_links(&txn, actor, &mut errors, links).await?;
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let m = active(m).insert(&txn).await?;
    crm::record(
        &txn,
        actor,
        meta,
        Entry::by(actor, action::CREATED)
            .target("deal", m.id)
            .metadata(json!({"title": m.title})),
        "deal.created",
        snapshot(&m),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}

async fn find(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<deals::Model> {
    deals::Entity::find_by_id(id)
        .filter(deals::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Deal" })
}

/// One deal of the actor's organization; `NOT_FOUND` for any other id.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<deals::Model> {
    actor.require_scope("deals:read")?;
    find(db, actor, id).await
}

/// A page of the organization's deals, newest first.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<deals::Model>> {
    actor.require_scope("deals:read")?;
    paging::check_page(page)?;
    let mut cond = Condition::all().add(deals::Column::OrganizationId.eq(actor.organization_id));
    if let Some(q) = filter.query.as_deref().filter(|q| !q.trim().is_empty()) {
        cond = cond.add(
            Expr::expr(Func::lower(Expr::col(deals::Column::Title)))
                .like(LikeExpr::new(crm::like_pattern(q)).escape('\\')),
        );
    }
    if let Some(s) = &filter.stage {
        cond = cond.add(deals::Column::Stage.eq(s.clone()));
    }
    if let Some(id) = filter.owner_id {
        cond = cond.add(deals::Column::OwnerId.eq(id));
    }
    if let Some(id) = filter.account_id {
        cond = cond.add(deals::Column::AccountId.eq(id));
    }
    if let Some(id) = filter.contact_id {
        cond = cond.add(deals::Column::ContactId.eq(id));
    }
    let cond = filter.common.apply(
        cond,
        crm::CommonColumns {
            created_at: deals::Column::CreatedAt,
            updated_at: deals::Column::UpdatedAt,
            tags: Some(deals::Column::Tags),
        },
    );
    paging::fetch_page::<deals::Entity>(db, cond, deals::Column::Id, sort, page).await
}

/// The orderings the list offers.
fn sort(field: &str) -> Option<paging::Sort<deals::Column>> {
    Some(match field {
        "TITLE" => paging::Sort::text(deals::Column::Title),
        "AMOUNT" => paging::Sort::number(deals::Column::Amount),
        "EXPECTED_CLOSE_DATE" => paging::Sort::date(deals::Column::ExpectedCloseDate),
        "CREATED_AT" => paging::Sort::time(deals::Column::CreatedAt),
        "UPDATED_AT" => paging::Sort::time(deals::Column::UpdatedAt),
        _ => return None,
    })
}

/// Changes a deal (MEMBER+). The audit entry lists each changed field's old and new value; a
/// stage change also appends `deal.stage_changed` {from, to}.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    input: Input,
) -> Result<deals::Model> {
    write_rights(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    let mut m = old.clone();
    let mut errors = Vec::new();
    let links = apply(&mut errors, &mut m, input);
    if m.stage != old.stage {
        close_or_reopen(Some(&old.stage), &mut m);
    }
    crm::check_links(&txn, actor, &mut errors, links).await?;
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let changes = crm::diff(&snapshot(&old), &snapshot(&m));
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        return Ok(old);
    }
    m.updated_at = Utc::now();
    let mut am = active(m);
    am.id = ActiveValue::Unchanged(id);
    am.organization_id = ActiveValue::Unchanged(old.organization_id);
    am.created_at = ActiveValue::Unchanged(old.created_at);
    let m = am.update(&txn).await?;
    crm::record(
        &txn,
        actor,
        meta,
        Entry::by(actor, action::UPDATED)
            .target("deal", m.id)
            .metadata(json!({"changes": changes})),
        "deal.updated",
        json!({"deal": snapshot(&m), "changes": changes}),
    )
    .await?;
    if m.stage != old.stage {
        events::append(
            &txn,
            actor.organization_id,
            Some(actor),
            "deal.stage_changed",
            json!({"deal": snapshot(&m), "from": old.stage, "to": m.stage}),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(m)
}

/// Moves a deal to another stage (see [`update`]).
pub async fn move_stage(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    stage: String,
) -> Result<deals::Model> {
    let input = Input {
        stage: Some(stage),
        ..Default::default()
    };
    update(db, actor, meta, id, input).await
}

/// Deletes a deal (MEMBER+); its activities stay, unlinked. Returns the id.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, meta: &Meta, id: Uuid) -> Result<Uuid> {
    write_rights(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    crate::db::detach(
        &txn,
        actor.organization_id,
        crate::db::Referenced::Deal,
        &[id],
    )
    .await?;
    deals::Entity::delete_by_id(id).exec(&txn).await?;
    crm::record(
        &txn,
        actor,
        meta,
        Entry::by(actor, action::DELETED)
            .target("deal", id)
            .metadata(json!({"title": old.title})),
        "deal.deleted",
        json!({"id": id, "title": old.title}),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// The deals with these ids in the actor's organization (for loaders).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<deals::Model>> {
    actor.require_scope("deals:read")?;
    Ok(deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(actor.organization_id))
        .filter(deals::Column::Id.is_in(ids))
        .all(db)
        .await?)
}
