//! Helpers shared by the CRM modules (accounts, contacts): keyset pages, field checks, the
//! changed-field diff recorded in the audit log.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::FieldError;

/// The largest page a CRM list returns (documented on the GraphQL fields).
pub const MAX_PAGE: u64 = 100;
/// The most rows one batch mutation may carry.
pub const MAX_BATCH: usize = 100;

/// Which slice of a list to read. Rows are ordered by id (UUIDv7, so creation order), newest
/// first; `after`/`before` are ids of rows the client saw, which makes paging stable while rows
/// are inserted: a key never moves, so no existing row is repeated or skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    pub first: Option<u64>,
    pub after: Option<Uuid>,
    pub last: Option<u64>,
    pub before: Option<Uuid>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
    pub has_previous: bool,
    pub total: u64,
}

/// Checks a page request and tells whether it pages backwards, and how many rows it wants.
pub fn check_page(req: &PageRequest) -> crate::Result<(bool, u64)> {
    let bad = |f: &str| crate::Error::invalid(f, format!("must be between 1 and {MAX_PAGE}"));
    if req.first.is_some() && req.last.is_some() {
        return Err(crate::Error::invalid(
            "last",
            "cannot be combined with first",
        ));
    }
    if let Some(n) = req.first
        && !(1..=MAX_PAGE).contains(&n)
    {
        return Err(bad("first"));
    }
    if let Some(n) = req.last
        && !(1..=MAX_PAGE).contains(&n)
    {
        return Err(bad("last"));
    }
    Ok(match req.last {
        Some(n) => (true, n),
        None => (false, req.first.unwrap_or(20)),
    })
}

/// The keyset condition of a page request on the id column (newest first).
pub fn keyset<C: ColumnTrait>(id: C, req: &PageRequest) -> Condition {
    let mut cond = Condition::all();
    if let Some(after) = req.after {
        cond = cond.add(id.lt(after));
    }
    if let Some(before) = req.before {
        cond = cond.add(id.gt(before));
    }
    cond
}

/// Reads one keyset page of `E` rows matching `cond`, newest first, with the total count.
pub async fn fetch_page<E>(
    db: &impl ConnectionTrait,
    cond: Condition,
    id: E::Column,
    req: &PageRequest,
) -> crate::Result<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let (backward, n) = check_page(req)?;
    let total = E::find().filter(cond.clone()).count(db).await?;
    let q = E::find().filter(cond).filter(keyset(id, req)).limit(n + 1);
    let q = if backward {
        q.order_by_asc(id)
    } else {
        q.order_by_desc(id)
    };
    let mut items = q.all(db).await?;
    let more = items.len() as u64 > n;
    items.truncate(n as usize);
    if backward {
        items.reverse();
    }
    Ok(Page {
        items,
        has_next: if backward { req.before.is_some() } else { more },
        has_previous: if backward { more } else { req.after.is_some() },
        total,
    })
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
    actor.require_scope("accounts:read")?;
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

/// The rows of `E` whose `parent` column is one of `parents`, in the actor's organization, newest
/// first, in one statement (for the loaders of nested lists such as `Account.contacts`).
pub async fn children<E>(
    db: &impl ConnectionTrait,
    actor: &crate::Actor,
    columns: ChildColumns<E::Column>,
    parents: Vec<Uuid>,
) -> crate::Result<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    actor.require_scope("accounts:read")?;
    Ok(E::find()
        .filter(columns.organization.eq(actor.organization_id))
        .filter(columns.parent.is_in(parents))
        .order_by_desc(columns.id)
        .all(db)
        .await?)
}

/// The columns [`children`] reads: the organization, the parent link and the id.
#[derive(Debug, Clone, Copy)]
pub struct ChildColumns<C> {
    pub organization: C,
    pub parent: C,
    pub id: C,
}
