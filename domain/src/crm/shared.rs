//! Helpers shared by the CRM modules (accounts, contacts): keyset pages, field checks, the
//! changed-field diff recorded in the audit log.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, ValueType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, ModelTrait, Order as Order_,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::FieldError;

/// The largest page a CRM list returns (documented on the GraphQL fields).
pub const MAX_PAGE: u64 = 100;
/// The most rows one batch mutation may carry.
pub const MAX_BATCH: usize = 100;

/// Which slice of a list to read, in which order. Without `order` rows come newest first (by
/// id: UUIDv7, so creation order). `after`/`before` are opaque cursors of rows the client saw:
/// each encodes the row's sort key and id, and the next page starts strictly beyond that pair,
/// which makes paging stable while rows are inserted under every ordering (a key never moves,
/// so no existing row is repeated or skipped; ties on the sort key are broken by id).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub first: Option<u64>,
    pub after: Option<String>,
    pub last: Option<u64>,
    pub before: Option<String>,
    pub order: Option<Order>,
}

/// A requested ordering: a field name of the list (e.g. `NAME`, `CREATED_AT`) and a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub field: String,
    pub desc: bool,
}

/// One page of a list, with each row's cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursors: Vec<String>,
    pub has_next: bool,
    pub has_previous: bool,
    pub total: u64,
}

/// What a list may be sorted by: a column and the kind of its values. Text sorts
/// case-insensitively; NULLs sort as the smallest value of their kind.
#[derive(Debug, Clone, Copy)]
pub struct Sort<C> {
    pub column: C,
    pub kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Number,
    Time,
    Date,
}

impl<C: ColumnTrait> Sort<C> {
    pub fn text(column: C) -> Self {
        Sort {
            column,
            kind: KeyKind::Text,
        }
    }
    pub fn number(column: C) -> Self {
        Sort {
            column,
            kind: KeyKind::Number,
        }
    }
    pub fn time(column: C) -> Self {
        Sort {
            column,
            kind: KeyKind::Time,
        }
    }
    pub fn date(column: C) -> Self {
        Sort {
            column,
            kind: KeyKind::Date,
        }
    }

    /// The expression rows are ordered by: NULLs replaced by the kind's smallest value.
    fn expr(&self) -> Expr {
        let col = Expr::col(self.column);
        match self.kind {
            KeyKind::Text => Func::lower(Func::coalesce([col, Expr::val("")])).into(),
            KeyKind::Number => Func::coalesce([col, Expr::val(f64::MIN)]).into(),
            KeyKind::Time => Func::coalesce([col, Expr::val(min_time())]).into(),
            KeyKind::Date => Func::coalesce([col, Expr::val(min_date())]).into(),
        }
    }

    /// The sort key of a row, as [`Sort::expr`] computes it.
    fn key<M: ModelTrait<Entity = E>, E: EntityTrait<Column = C>>(&self, m: &M) -> SortKey {
        let v = m.get(self.column);
        match self.kind {
            KeyKind::Text => SortKey::Text(
                <Option<String> as ValueType>::try_from(v)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_lowercase(),
            ),
            KeyKind::Number => SortKey::Number(match v {
                sea_orm::Value::Double(Some(x)) => x,
                sea_orm::Value::Float(Some(x)) => f64::from(x),
                sea_orm::Value::Int(Some(x)) => f64::from(x),
                sea_orm::Value::SmallInt(Some(x)) => f64::from(x),
                sea_orm::Value::BigInt(Some(x)) => x as f64,
                _ => f64::MIN,
            }),
            KeyKind::Time => SortKey::Time(
                <Option<DateTime<Utc>> as ValueType>::try_from(v)
                    .ok()
                    .flatten()
                    .unwrap_or(min_time()),
            ),
            KeyKind::Date => SortKey::Date(
                <Option<NaiveDate> as ValueType>::try_from(v)
                    .ok()
                    .flatten()
                    .unwrap_or(min_date()),
            ),
        }
    }
}

/// The smallest time both backends store (NULL times sort as it): 0001-01-01T00:00:00Z.
fn min_time() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or_default()
}

/// The smallest date both backends store (NULL dates sort as it).
fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default()
}

/// A row's sort key, as carried in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum SortKey {
    Text(String),
    Number(f64),
    Time(DateTime<Utc>),
    Date(NaiveDate),
}

impl SortKey {
    fn kind(&self) -> KeyKind {
        match self {
            SortKey::Text(_) => KeyKind::Text,
            SortKey::Number(_) => KeyKind::Number,
            SortKey::Time(_) => KeyKind::Time,
            SortKey::Date(_) => KeyKind::Date,
        }
    }

    fn value(&self) -> Expr {
        match self {
            SortKey::Text(s) => Expr::val(s.clone()),
            SortKey::Number(n) => Expr::val(*n),
            SortKey::Time(t) => Expr::val(*t),
            SortKey::Date(d) => Expr::val(*d),
        }
    }
}

/// What a cursor holds: the ordering it belongs to, the row's sort key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<SortKey>,
    id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(field: &str, s: &str, order: Option<&Order>) -> crate::Result<Self> {
        let bad = || crate::Error::invalid(field, "is not a cursor of this list and order");
        let c: Cursor = URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        if c.o != order.map(order_name) {
            return Err(bad());
        }
        Ok(c)
    }
}

fn order_name(o: &Order) -> String {
    format!("{}:{}", o.field, if o.desc { "DESC" } else { "ASC" })
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

/// Rows strictly beyond `c` in the order (`greater`: towards larger keys).
fn beyond<C: ColumnTrait>(
    sort: Option<&Sort<C>>,
    id: C,
    c: &Cursor,
    greater: bool,
) -> crate::Result<Condition> {
    let by_id = if greater {
        Expr::col(id).gt(c.id)
    } else {
        Expr::col(id).lt(c.id)
    };
    Ok(match (sort, &c.k) {
        (None, None) => Condition::all().add(by_id),
        (Some(s), Some(k)) if k.kind() == s.kind => {
            let (e, v) = (s.expr(), k.value());
            let past = if greater {
                e.clone().gt(v.clone())
            } else {
                e.clone().lt(v.clone())
            };
            Condition::any()
                .add(past)
                .add(Condition::all().add(e.eq(v)).add(by_id))
        }
        _ => {
            return Err(crate::Error::invalid(
                "after",
                "is not a cursor of this order",
            ));
        }
    })
}

/// Reads one keyset page of `E` rows matching `cond`, with the total count. `sorts` names the
/// orderings the list offers (`None` for an unknown field, refused as `orderBy.field`).
pub async fn fetch_page<E>(
    db: &impl ConnectionTrait,
    cond: Condition,
    id: E::Column,
    sorts: impl Fn(&str) -> Option<Sort<E::Column>>,
    req: &PageRequest,
) -> crate::Result<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let (backward, n) = check_page(req)?;
    let sort = match &req.order {
        None => None,
        Some(o) => Some(sorts(&o.field).ok_or_else(|| {
            crate::Error::invalid("orderBy.field", "cannot sort this list by it")
        })?),
    };
    // Newest first by default.
    let desc = req.order.as_ref().is_none_or(|o| o.desc);
    let mut keyset = Condition::all();
    if let Some(after) = &req.after {
        let c = Cursor::decode("after", after, req.order.as_ref())?;
        keyset = keyset.add(beyond(sort.as_ref(), id, &c, !desc)?);
    }
    if let Some(before) = &req.before {
        let c = Cursor::decode("before", before, req.order.as_ref())?;
        keyset = keyset.add(beyond(sort.as_ref(), id, &c, desc)?);
    }
    let total = E::find().filter(cond.clone()).count(db).await?;
    let dir = if desc != backward {
        Order_::Desc
    } else {
        Order_::Asc
    };
    let mut q = E::find().filter(cond).filter(keyset).limit(n + 1);
    if let Some(s) = &sort {
        q = q.order_by(s.expr(), dir.clone());
    }
    let mut items = q.order_by(id, dir).all(db).await?;
    let more = items.len() as u64 > n;
    items.truncate(n as usize);
    if backward {
        items.reverse();
    }
    let o = req.order.as_ref().map(order_name);
    let cursors = items
        .iter()
        .map(|m| {
            Cursor {
                o: o.clone(),
                k: sort.as_ref().map(|s| s.key(m)),
                id: <Option<Uuid> as ValueType>::try_from(m.get(id))
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            }
            .encode()
        })
        .collect();
    Ok(Page {
        items,
        cursors,
        has_next: if backward { req.before.is_some() } else { more },
        has_previous: if backward { more } else { req.after.is_some() },
        total,
    })
}

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
