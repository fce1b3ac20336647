//! Helpers shared by the CRM modules (accounts, contacts): field checks, the
//! changed-field diff recorded in the audit log.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::FieldError;

pub use crate::paging::{
    KeyKind, MAX_PAGE, Order, Page, PageRequest, Sort, check_page, fetch_page,
};

/// The most rows one batch mutation may carry.
pub const MAX_BATCH: usize = 100;

/// The filters every CRM list shares: a tag and creation / change time ranges.
#[derive(Debug, Clone, Default)]
pub struct CommonFilter {
    /// Rows carrying this tag (lists with tags only).
    pub tag: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
}

/// The columns [`CommonFilter`] reads.
#[derive(Debug, Clone, Copy)]
pub struct CommonColumns<C> {
    pub created_at: C,
    pub updated_at: C,
    /// A JSON array of lower-case strings; `None` when the list has no tags.
    pub tags: Option<C>,
}

impl CommonFilter {
    /// Adds the filter to `cond`. The tag matches the JSON text `"tag"` inside the array, which
    /// works the same on SQLite (text) and PostgreSQL (jsonb cast to text).
    pub fn apply<C: ColumnTrait>(&self, mut cond: Condition, cols: CommonColumns<C>) -> Condition {
        if let (Some(tag), Some(col)) = (&self.tag, cols.tags) {
            let quoted = serde_json::to_string(&tag.trim().to_lowercase()).unwrap_or_default();
            let mut p = String::from("%");
            for c in quoted.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(c);
            }
            p.push('%');
            cond = cond.add(
                Expr::col(col)
                    .cast_as("text")
                    .like(LikeExpr::new(p).escape('\\')),
            );
        }
        if let Some(t) = self.created_after {
            cond = cond.add(cols.created_at.gt(t));
        }
        if let Some(t) = self.created_before {
            cond = cond.add(cols.created_at.lt(t));
        }
        if let Some(t) = self.updated_after {
            cond = cond.add(cols.updated_at.gt(t));
        }
        if let Some(t) = self.updated_before {
            cond = cond.add(cols.updated_at.lt(t));
        }
        cond
    }
}

/// Trims an optional text; empty becomes absent. Pushes an error when longer than `max`.
pub fn text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let v = value.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if let Some(s) = &v
        && s.chars().count() > max
    {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    v
}

/// Tags: trimmed, lower-cased, de-duplicated, each 1 to 50 characters, at most 50.
pub fn tags(errors: &mut Vec<FieldError>, field: &str, tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if t.is_empty() || t.chars().count() > 50 {
            errors.push(FieldError::new(
                field,
                "each tag must be 1 to 50 characters",
            ));
        } else if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 50 {
        errors.push(FieldError::new(field, "at most 50 tags"));
    }
    out
}

/// The current tags (a JSON array) plus `add`, minus `remove`; checked like [`tags`] under the
/// field names `addTags` / `removeTags`.
pub fn change_tags(
    errors: &mut Vec<FieldError>,
    current: &Value,
    add: Vec<String>,
    remove: Vec<String>,
) -> Vec<String> {
    let mut out: Vec<String> = serde_json::from_value(current.clone()).unwrap_or_default();
    let remove = tags(errors, "removeTags", remove);
    out.retain(|t| !remove.contains(t));
    for t in tags(errors, "addTags", add) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 50 {
        errors.push(FieldError::new("addTags", "at most 50 tags"));
    }
    out
}

/// Custom fields must be a JSON object.
pub fn custom_fields(errors: &mut Vec<FieldError>, field: &str, value: Option<Value>) -> Value {
    match value {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            errors.push(FieldError::new(field, "must be a JSON object"));
            Value::Object(Map::new())
        }
    }
}

/// The fields that differ between two snapshots: `{field: {"old": …, "new": …}}`.
pub fn diff(old: &Value, new: &Value) -> Value {
    let mut out = Map::new();
    if let (Value::Object(o), Value::Object(n)) = (old, new) {
        for (k, nv) in n {
            if k == "updatedAt" {
                continue;
            }
            let ov = o.get(k).unwrap_or(&Value::Null);
            if ov != nv {
                out.insert(k.clone(), serde_json::json!({"old": ov, "new": nv}));
            }
        }
    }
    Value::Object(out)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern and wraps it in `%…%`, lower-cased.
pub fn like_pattern(q: &str) -> String {
    let mut s = String::from("%");
    for c in q.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// The rows a deal or an activity wants to link to, each named by its input field. Every link
/// must point into the actor's organization (a user must be a member of it); otherwise the field
/// is invalid, so a foreign id never reveals whether it exists elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Links {
    pub account: Option<Uuid>,
    pub contact: Option<Uuid>,
    pub deal: Option<Uuid>,
    /// (field name, user id), e.g. `("ownerId", id)`.
    pub member: Option<(&'static str, Uuid)>,
}

/// Checks [`Links`], pushing one error per link that is not the organization's.
pub async fn check_links(
    db: &impl ConnectionTrait,
    actor: &crate::Actor,
    errors: &mut Vec<FieldError>,
    links: Links,
) -> crate::Result<()> {
    use entity::{companies, contacts, deals, memberships};
    let org = actor.organization_id;
    if let Some(id) = links.account {
        let n = companies::Entity::find_by_id(id)
            .filter(companies::Column::OrganizationId.eq(org))
            .count(db)
            .await?;
        if n == 0 {
            errors.push(FieldError::new("accountId", "no such account"));
        }
    }
    if let Some(id) = links.contact {
        let n = contacts::Entity::find_by_id(id)
            .filter(contacts::Column::OrganizationId.eq(org))
            .count(db)
            .await?;
        if n == 0 {
            errors.push(FieldError::new("contactId", "no such contact"));
        }
    }
    if let Some(id) = links.deal {
        let n = deals::Entity::find_by_id(id)
            .filter(deals::Column::OrganizationId.eq(org))
            .count(db)
            .await?;
        if n == 0 {
            errors.push(FieldError::new("dealId", "no such deal"));
        }
    }
    if let Some((field, id)) = links.member {
        let n = memberships::Entity::find()
            .filter(memberships::Column::OrganizationId.eq(org))
            .filter(memberships::Column::UserId.eq(id))
            .count(db)
            .await?;
        if n == 0 {
            errors.push(FieldError::new(
                field,
                "is not a member of the organization",
            ));
        }
    }
    Ok(())
}

/// Checks that `value` is one of `allowed`, naming `field` otherwise.
pub fn one_of(errors: &mut Vec<FieldError>, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errors.push(FieldError::new(
            field,
            format!("must be one of {}", allowed.join(", ")),
        ));
    }
}

/// The users with these ids who are members of the actor's organization (for loaders: a deal's
/// owner, an activity's author). One statement.
pub async fn members_by_ids(
    db: &impl ConnectionTrait,
    actor: &crate::Actor,
    ids: Vec<Uuid>,
) -> crate::Result<Vec<entity::users::Model>> {
    use entity::{memberships, users};
    use sea_orm::sea_query::Query;
    // Members' names and emails are organization data, whatever object names them.
    actor.require_scope("organization:read")?;
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(ids))
        .filter(
            users::Column::Id.in_subquery(
                Query::select()
                    .column(memberships::Column::UserId)
                    .from(memberships::Entity)
                    .and_where(memberships::Column::OrganizationId.eq(actor.organization_id))
                    .to_owned(),
            ),
        )
        .all(db)
        .await?)
}

/// The newest `per_parent` rows of `E` (by id) of each of `parents`, in the actor's
/// organization, in no particular order, in one statement (for the loaders of nested lists such as
/// `Account.contacts`). `columns.read_scope` is the scope that reads `E` (`contacts:read` for
/// contacts, …). Only the fields `keep` (and the organization, the parent link and the id) are
/// read; every other field of the models returned is a placeholder (its type's default), for a
/// caller that knows which fields it will use (a GraphQL selection).
///
/// A page's nested list costs O(page × `per_parent`) whatever a parent holds: on PostgreSQL
/// each parent is one probe of the `(parent, id)` index that stops after `per_parent` rows
/// (`LATERAL … LIMIT`); SQLite numbers each parent's rows through the same index and keeps the
/// first `per_parent`.
pub async fn children<E>(
    db: &impl ConnectionTrait,
    actor: &crate::Actor,
    columns: ChildColumns<E::Column>,
    parents: Vec<Uuid>,
    per_parent: u64,
    keep: crate::db::rows::Fields,
) -> crate::Result<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: crate::db::rows::Positional + Send + Sync,
{
    use sea_orm::{IdenStatic, Iterable};
    actor.require_scope(columns.read_scope)?;
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let table = E::default().table_name();
    let (org, parent, id) = (
        columns.organization.as_str(),
        columns.parent.as_str(),
        columns.id.as_str(),
    );
    // The kept columns (with the organization, the parent link and the id, which every row
    // carries) in the order of the entity's fields, so each row is read by position.
    let keep = keep.with(crate::db::rows::Fields::of::<E>(&[
        columns.organization,
        columns.parent,
        columns.id,
    ]));
    let listed: Vec<String> = E::Column::iter()
        .enumerate()
        .filter(|(n, _)| keep.has(*n))
        .map(|(_, c)| format!("c.\"{}\"", c.as_str()))
        .collect();
    let listed = listed.join(", ");
    let limit = sea_orm::Value::from(i64::try_from(per_parent).unwrap_or(i64::MAX));
    let org_id = sea_orm::Value::from(actor.organization_id);
    let (sql, values): (String, Vec<sea_orm::Value>) = if backend == sea_orm::DbBackend::Postgres {
        // The parents as one `uuid[]` literal: one statement text (and one prepared statement)
        // whatever the page's size. A UUID's text needs no escaping.
        let ids: Vec<String> = parents.iter().map(Uuid::to_string).collect();
        (
            format!(
                "SELECT {listed} FROM unnest($3::uuid[]) AS p(parent) CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {org} = $1 AND {parent} = p.parent ORDER BY {id} DESC LIMIT $2) c"
            ),
            vec![org_id, limit, format!("{{{}}}", ids.join(",")).into()],
        )
    } else {
        (
            format!(
                "SELECT {listed} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {parent} ORDER BY {id} DESC) AS nested_rank FROM {table} WHERE {org} = ? AND {parent} IN ({})) c WHERE nested_rank <= ?",
                vec!["?"; parents.len()].join(", ")
            ),
            std::iter::once(org_id)
                .chain(parents.into_iter().map(sea_orm::Value::from))
                .chain(std::iter::once(limit))
                .collect(),
        )
    };
    Ok(crate::db::rows::all_pruned(
        db,
        sea_orm::Statement::from_sql_and_values(backend, sql, values),
        keep,
    )
    .await?)
}

/// The columns [`children`] reads: the organization, the parent link and the id; and the scope
/// an API key needs to read these rows.
#[derive(Debug, Clone, Copy)]
pub struct ChildColumns<C> {
    pub organization: C,
    pub parent: C,
    pub id: C,
    pub read_scope: &'static str,
}

/// Records a change of a CRM row in the audit log and appends its event, inside `txn` (the
/// change's own transaction).
pub async fn record(
    txn: &sea_orm::DatabaseTransaction,
    actor: &crate::Actor,
    meta: &crate::Meta,
    entry: crate::audit::Entry,
    event_type: &str,
    payload: Value,
) -> crate::Result<()> {
    crate::audit::record(txn, meta, entry).await?;
    crate::events::append(txn, actor.organization_id, Some(actor), event_type, payload).await?;
    Ok(())
}
