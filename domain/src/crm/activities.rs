//! Activities: tasks, calls, meetings, emails and notes, optionally linked to an account, a
//! contact and a deal of the organization. Same shape as [`crate::crm::deals`]: validate (errors name
//! the field), write, audit, `activity.*` event last, one transaction. The author is the user who
//! created it (none for an API key); `completedAt` follows the status (set on COMPLETED).

use chrono::{DateTime, Utc};
use entity::activities;
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
use crate::{Actor, Error, FieldError, Result};

/// Activity kinds (the original's `ActivityType`).
pub const TYPES: &[&str] = &["TASK", "CALL", "MEETING", "EMAIL", "NOTE"];
/// Activity statuses; PENDING is the default.
pub const STATUSES: &[&str] = &["PENDING", "IN_PROGRESS", "COMPLETED", "CANCELLED"];
/// Priorities; MEDIUM is the default.
pub const PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "URGENT"];

pub mod action {
    pub const CREATED: &str = "activity.created";
    pub const UPDATED: &str = "activity.updated";
    pub const DELETED: &str = "activity.deleted";
}

/// The fields of an activity. On create `kind` and `title` are required; on update `None` leaves
/// a field alone and `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub kind: Option<String>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub due_date: Option<Option<DateTime<Utc>>>,
    pub account_id: Option<Option<Uuid>>,
    pub contact_id: Option<Option<Uuid>>,
    pub deal_id: Option<Option<Uuid>>,
    pub custom_fields: Option<Value>,
}

/// Which activities to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case-insensitive substring of the title.
    pub query: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    /// Tag and time ranges.
    pub common: crm::CommonFilter,
}

/// The snapshot used for events and audit diffs (camelCase, like the API).
pub fn snapshot(m: &activities::Model) -> Value {
    json!({
        "id": m.id, "type": m.kind, "title": m.title, "description": m.description,
        "status": m.status, "priority": m.priority, "dueDate": m.due_date,
        "completedAt": m.completed_at, "authorId": m.author_id, "accountId": m.account_id,
        "contactId": m.contact_id, "dealId": m.deal_id, "customFields": m.custom_fields,
        "createdAt": m.created_at, "updatedAt": m.updated_at,
    })
}

fn active(m: activities::Model) -> activities::ActiveModel {
    activities::ActiveModel {
        id: Set(m.id),
        organization_id: Set(m.organization_id),
        kind: Set(m.kind),
        title: Set(m.title),
        description: Set(m.description),
        status: Set(m.status),
        priority: Set(m.priority),
        due_date: Set(m.due_date),
        completed_at: Set(m.completed_at),
        author_id: Set(m.author_id),
        account_id: Set(m.account_id),
        contact_id: Set(m.contact_id),
        deal_id: Set(m.deal_id),
        custom_fields: Set(m.custom_fields),
        created_at: Set(m.created_at),
        updated_at: Set(m.updated_at),
    }
}

fn apply(errors: &mut Vec<FieldError>, m: &mut activities::Model, input: Input) -> Links {
    let mut links = Links::default();
    if let Some(k) = input.kind {
        crm::one_of(errors, "type", &k, TYPES);
        m.kind = k;
    }
    if let Some(title) = input.title {
        let title = title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            errors.push(FieldError::new("title", "must be 1 to 200 characters"));
        }
        m.title = title;
    }
    if let Some(d) = input.description {
        m.description = crm::text(errors, "description", d, 10_000);
    }
    if let Some(s) = input.status {
        crm::one_of(errors, "status", &s, STATUSES);
        m.status = s;
    }
    if let Some(p) = input.priority {
        crm::one_of(errors, "priority", &p, PRIORITIES);
        m.priority = p;
    }
    if let Some(d) = input.due_date {
        m.due_date = d;
    }
    if let Some(v) = input.custom_fields {
        m.custom_fields = crm::custom_fields(errors, "customFields", Some(v));
    }
    if let Some(a) = input.account_id {
        m.account_id = a;
        links.account = a;
    }
    if let Some(c) = input.contact_id {
        m.contact_id = c;
        links.contact = c;
    }
    if let Some(d) = input.deal_id {
        m.deal_id = d;
        links.deal = d;
    }
    links
}

/// `completedAt` follows the status.
fn complete(old_status: Option<&str>, m: &mut activities::Model) {
    if m.status == "COMPLETED" {
        if old_status != Some("COMPLETED") {
            m.completed_at = Some(Utc::now());
        }
    } else {
        m.completed_at = None;
    }
}

fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("activities:write")
}

/// Creates an activity (MEMBER+, key scope `activities:write`), authored by the caller.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    mut input: Input,
) -> Result<activities::Model> {
    write_rights(actor)?;
    let now = Utc::now();
    let mut m = activities::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        kind: String::new(),
        title: String::new(),
        description: None,
        status: "PENDING".into(),
        priority: "MEDIUM".into(),
        due_date: None,
        completed_at: None,
        author_id: actor.user_id(),
        account_id: None,
        contact_id: None,
        deal_id: None,
        custom_fields: json!({}),
        created_at: now,
        updated_at: now,
    };
    input.kind.get_or_insert_with(String::new);
    input.title.get_or_insert_with(String::new);
    let mut errors = Vec::new();
    let links = apply(&mut errors, &mut m, input);
    complete(None, &mut m);
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
            .target("activity", m.id)
            .metadata(json!({"type": m.kind})),
        "activity.created",
        snapshot(&m),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}

async fn find(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<activities::Model> {
    activities::Entity::find_by_id(id)
        .filter(activities::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Activity" })
}

/// One activity of the actor's organization; `NOT_FOUND` for any other id.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<activities::Model> {
    actor.require_scope("activities:read")?;
    find(db, actor, id).await
}

/// A page of the organization's activities, newest first.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<activities::Model>> {
    actor.require_scope("activities:read")?;
    paging::check_page(page)?;
    if filter.common.tag.is_some() {
        return Err(Error::invalid("filter.tag", "activities have no tags"));
    }
    let mut cond =
        Condition::all().add(activities::Column::OrganizationId.eq(actor.organization_id));
    if let Some(q) = filter.query.as_deref().filter(|q| !q.trim().is_empty()) {
        cond = cond.add(
            Expr::expr(Func::lower(Expr::col(activities::Column::Title)))
                .like(LikeExpr::new(crm::like_pattern(q)).escape('\\')),
        );
    }
    if let Some(k) = &filter.kind {
        cond = cond.add(activities::Column::Kind.eq(k.clone()));
    }
    if let Some(s) = &filter.status {
        cond = cond.add(activities::Column::Status.eq(s.clone()));
    }
    if let Some(id) = filter.account_id {
        cond = cond.add(activities::Column::AccountId.eq(id));
    }
    if let Some(id) = filter.contact_id {
        cond = cond.add(activities::Column::ContactId.eq(id));
    }
    if let Some(id) = filter.deal_id {
        cond = cond.add(activities::Column::DealId.eq(id));
    }
    let cond = filter.common.apply(
        cond,
        crm::CommonColumns {
            created_at: activities::Column::CreatedAt,
            updated_at: activities::Column::UpdatedAt,
            tags: None,
        },
    );
    paging::fetch_page::<activities::Entity>(db, cond, activities::Column::Id, sort, page).await
}

/// The orderings the list offers.
fn sort(field: &str) -> Option<paging::Sort<activities::Column>> {
    Some(match field {
        "TITLE" => paging::Sort::text(activities::Column::Title),
        "DUE_DATE" => paging::Sort::time(activities::Column::DueDate),
        "CREATED_AT" => paging::Sort::time(activities::Column::CreatedAt),
        "UPDATED_AT" => paging::Sort::time(activities::Column::UpdatedAt),
        _ => return None,
    })
}

/// Changes an activity (MEMBER+); the audit entry lists each changed field's old and new value.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    input: Input,
) -> Result<activities::Model> {
    write_rights(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    let mut m = old.clone();
    let mut errors = Vec::new();
    let links = apply(&mut errors, &mut m, input);
    complete(Some(&old.status), &mut m);
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
            .target("activity", m.id)
            .metadata(json!({"changes": changes})),
        "activity.updated",
        json!({"activity": snapshot(&m), "changes": changes}),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}

/// Deletes an activity (MEMBER+). Returns the id.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, meta: &Meta, id: Uuid) -> Result<Uuid> {
    write_rights(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find(&txn, actor, id).await?;
    activities::Entity::delete_by_id(id).exec(&txn).await?;
    crm::record(
        &txn,
        actor,
        meta,
        Entry::by(actor, action::DELETED)
            .target("activity", id)
            .metadata(json!({"type": old.kind})),
        "activity.deleted",
        json!({"id": id, "title": old.title}),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}
