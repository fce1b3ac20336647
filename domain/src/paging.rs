//! Paging for every list: one request shape ([`PageRequest`]: `first`/`after`, `last`/`before`,
//! an optional ordering), one page shape ([`Page`]: rows, each row's cursor, whether there is
//! more, the total), and one opaque cursor codec ([`encode`] / [`decode`]: URL-safe base64 of a
//! small JSON value). Keyset lists over one table use [`fetch_page`]; lists that merge several
//! tables (an account's timeline) encode their own keys with the same codec.
//!
//! A cursor names the row the client saw, never an offset, so paging is stable while rows are
//! inserted: the next page starts strictly beyond that row's (sort key, id).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, NullOrdering, ValueType};
use sea_orm::{
    ColumnTrait, ColumnType, Condition, ConnectionTrait, DbBackend, EntityTrait, ModelTrait,
    Order as Order_, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use serde::de::DeserializeOwned;

/// The largest page a list returns (documented on the GraphQL fields).
pub const MAX_PAGE: u64 = 100;

/// The opaque text of a cursor holding `value`: URL-safe base64 (no padding) of its JSON.
pub fn encode<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// The value a cursor made by [`encode`] holds; a clear error on `field` otherwise.
pub fn decode<T: DeserializeOwned>(field: &str, cursor: &str) -> crate::Result<T> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| crate::Error::invalid(field, "is not a cursor of this list and order"))
}

/// Checks a plain page size (lists that take only `first`): 1 to [`MAX_PAGE`].
pub fn check_first(first: u64) -> crate::Result<()> {
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(crate::Error::invalid(
            "first",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(())
}

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
    /// Whether to count every matching row for [`Page::total`] (one `COUNT` over the filter, so
    /// only when the caller shows it: GraphQL asks when `totalCount` is selected).
    pub count: bool,
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
    /// How many rows match the filter over all pages; `None` unless the request asked
    /// ([`PageRequest::count`]).
    pub total: Option<u64>,
}

/// What a list may be sorted by: a column and the kind of its values. Text sorts
/// case-insensitively (by `lower(column)`); NULLs sort before every value (first ascending, last
/// descending), ties by id in the same direction. Each ordering is served by an index on
/// `(organization_id, key, id)` whose key is exactly [`Sort::expr`] (declared `NULLS FIRST` on
/// PostgreSQL for a nullable column, SQLite's own placement), so a page is an index range scan
/// (`tests/tests/api/plans.rs` checks the plans).
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

    /// Whether the column may hold NULL (then its rows are read in two runs, see [`Runs`]).
    fn nullable(&self) -> bool {
        self.column.def().is_null()
    }

    /// A cursor's key as a value of the column's own type: an integer column compared with a
    /// float would be cast, and PostgreSQL would no longer seek in its index.
    fn value(&self, k: &SortKey) -> Expr {
        match k {
            SortKey::Number(n)
                if matches!(
                    self.column.def().get_column_type(),
                    ColumnType::Integer | ColumnType::BigInteger | ColumnType::SmallInteger
                ) =>
            {
                Expr::val(*n as i64)
            }
            _ => k.value(),
        }
    }

    /// The expression rows are ordered by, as the indexes spell it.
    fn expr(&self) -> Expr {
        // Qualified by its table, so the page may join another table with a column of the same
        // name ([`PageRows`]).
        let col = Expr::col(self.column.as_column_ref());
        match self.kind {
            KeyKind::Text => Func::lower(col).into(),
            _ => col,
        }
    }

    /// The sort key of a row, as [`Sort::expr`] computes it; `None` when the column is NULL.
    fn key<M: ModelTrait<Entity = E>, E: EntityTrait<Column = C>>(&self, m: &M) -> Option<SortKey> {
        let v = m.get(self.column);
        match self.kind {
            KeyKind::Text => <Option<String> as ValueType>::try_from(v)
                .ok()
                .flatten()
                .map(|s| SortKey::Text(s.to_lowercase())),
            KeyKind::Number => match v {
                sea_orm::Value::Double(Some(x)) => Some(x),
                sea_orm::Value::Float(Some(x)) => Some(f64::from(x)),
                sea_orm::Value::Int(Some(x)) => Some(f64::from(x)),
                sea_orm::Value::SmallInt(Some(x)) => Some(f64::from(x)),
                sea_orm::Value::BigInt(Some(x)) => Some(x as f64),
                _ => None,
            }
            .map(SortKey::Number),
            KeyKind::Time => <Option<DateTime<Utc>> as ValueType>::try_from(v)
                .ok()
                .flatten()
                .map(SortKey::Time),
            KeyKind::Date => <Option<NaiveDate> as ValueType>::try_from(v)
                .ok()
                .flatten()
                .map(SortKey::Date),
        }
    }
}

/// The smallest time both backends store: 0001-01-01T00:00:00Z.
fn min_time() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or_default()
}

/// The smallest date both backends store.
fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default()
}

/// A row's sort key, as carried in a cursor (absent for a NULL key).
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

    /// Whether this is the stand-in for NULL that cursors carried before NULL keys were left
    /// out (the kind's smallest value; no stored value equals it), so those cursors still work.
    fn is_old_null(&self) -> bool {
        match self {
            SortKey::Number(n) => *n == f64::MIN,
            SortKey::Time(t) => *t == min_time(),
            SortKey::Date(d) => *d == min_date(),
            SortKey::Text(_) => false,
        }
    }
}

/// What a cursor holds: the ordering it belongs to, the row's sort key (absent when it is NULL
/// or the list has no ordering) and id.
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
        encode(self)
    }

    fn decode(field: &str, s: &str, order: Option<&Order>) -> crate::Result<Self> {
        let c: Cursor = decode(field, s)?;
        if c.o != order.map(order_name) {
            return Err(crate::Error::invalid(
                field,
                "is not a cursor of this list and order",
            ));
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

/// The rows a page may come from, as the two runs an ordering's index holds them in: rows whose
/// key is NULL (first ascending, by id) and rows with a value (by key, then id); `None` leaves a
/// run out. A cursor bounds each run by a condition the index can seek to (`key >= v AND (key >
/// v OR id > c)`), which a single condition over both runs (`… OR key IS NULL`) could not be.
/// Lists without an ordering or over a NOT NULL key have only the second run.
struct Runs {
    nulls: Option<Condition>,
    values: Option<Condition>,
}

impl Runs {
    fn new(nullable: bool) -> Self {
        Runs {
            nulls: nullable.then(Condition::all),
            values: Some(Condition::all()),
        }
    }

    /// Keeps the rows strictly beyond the cursor's row (`greater`: towards larger keys).
    fn beyond<C: ColumnTrait>(
        &mut self,
        sort: Option<&Sort<C>>,
        id: C,
        c: &Cursor,
        greater: bool,
        field: &str,
    ) -> crate::Result<()> {
        let by_id = if greater {
            Expr::col(id.as_column_ref()).gt(c.id)
        } else {
            Expr::col(id.as_column_ref()).lt(c.id)
        };
        let wrong = || crate::Error::invalid(field, "is not a cursor of this order");
        let (sort, key) = match (sort, &c.k) {
            (None, None) => {
                self.values = self.values.take().map(|v| v.add(by_id));
                return Ok(());
            }
            (Some(s), None) if s.nullable() => (s, None),
            (Some(s), Some(k)) if k.kind() == s.kind => {
                (s, Some(k).filter(|k| !(s.nullable() && k.is_old_null())))
            }
            _ => return Err(wrong()),
        };
        match key {
            // The cursor's row is in the NULL run.
            None => {
                self.nulls = self.nulls.take().map(|n| n.add(by_id));
                if !greater {
                    self.values = None;
                }
            }
            Some(k) => {
                let (e, v) = (sort.expr(), sort.value(k));
                let (bound, past) = if greater {
                    (e.clone().gte(v.clone()), e.gt(v))
                } else {
                    (e.clone().lte(v.clone()), e.lt(v))
                };
                self.values = self
                    .values
                    .take()
                    .map(|r| r.add(bound).add(Condition::any().add(past).add(by_id)));
                if greater {
                    self.nulls = None;
                }
            }
        }
        Ok(())
    }
}

/// Reads one keyset page of `E` rows matching `cond` (with the total count when the request
/// asks). `sorts` names the orderings the list offers (`None` for an unknown field, refused as
/// `orderBy.field`). One statement per run the page reaches: one, or two when it crosses from
/// the rows with a key to those without; the count is one more.
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
    fetch_page_of::<E, Alone>(db, cond, id, sorts, req, &Alone).await
}

/// What [`fetch_page_of`] reads for each row of a page: the entity's model alone ([`Alone`]),
/// or with a row of another table joined to it in the same statement (an account with its
/// score), which the page's conditions and orderings leave alone: [`Sort::expr`] names its
/// table.
pub trait PageRows<E: EntityTrait>: Sync {
    type Item: Send + Sync;
    /// The entity's model of an item (its cursor is built from it).
    fn model(item: &Self::Item) -> &E::Model;
    /// Runs the page's query, already filtered, ordered and limited.
    fn read<'a, C: ConnectionTrait>(
        &'a self,
        db: &'a C,
        query: sea_orm::Select<E>,
    ) -> impl std::future::Future<Output = Result<Vec<Self::Item>, sea_orm::DbErr>> + Send + 'a;
}

/// Each row's model alone.
pub struct Alone;

impl<E: EntityTrait> PageRows<E> for Alone
where
    E::Model: Send + Sync,
{
    type Item = E::Model;
    fn model(item: &E::Model) -> &E::Model {
        item
    }
    fn read<'a, C: ConnectionTrait>(
        &'a self,
        db: &'a C,
        query: sea_orm::Select<E>,
    ) -> impl std::future::Future<Output = Result<Vec<E::Model>, sea_orm::DbErr>> + Send + 'a {
        query.all(db)
    }
}

/// Each row's model alone, read by column position ([`crate::db::rows`]): for the lists whose
/// pages are hot.
pub struct ByPosition;

impl<E: EntityTrait> PageRows<E> for ByPosition
where
    E::Model: crate::db::rows::Positional + Send + Sync,
{
    type Item = E::Model;
    fn model(item: &E::Model) -> &E::Model {
        item
    }
    fn read<'a, C: ConnectionTrait>(
        &'a self,
        db: &'a C,
        query: sea_orm::Select<E>,
    ) -> impl std::future::Future<Output = Result<Vec<E::Model>, sea_orm::DbErr>> + Send + 'a {
        crate::db::rows::all(db, query)
    }
}

/// [`fetch_page`] reading each row as `rows` says.
pub async fn fetch_page_of<E, R>(
    db: &impl ConnectionTrait,
    cond: Condition,
    id: E::Column,
    sorts: impl Fn(&str) -> Option<Sort<E::Column>>,
    req: &PageRequest,
    rows: &R,
) -> crate::Result<Page<R::Item>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    R: PageRows<E>,
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
    let nullable = sort.as_ref().is_some_and(Sort::nullable);
    let mut runs = Runs::new(nullable);
    if let Some(after) = &req.after {
        let c = Cursor::decode("after", after, req.order.as_ref())?;
        runs.beyond(sort.as_ref(), id, &c, !desc, "after")?;
    }
    if let Some(before) = &req.before {
        let c = Cursor::decode("before", before, req.order.as_ref())?;
        runs.beyond(sort.as_ref(), id, &c, desc, "before")?;
    }
    let total = if req.count {
        Some(E::find().filter(cond.clone()).count(db).await?)
    } else {
        None
    };
    // The direction rows are read in, and the runs in that direction.
    let ascending = desc == backward;
    let (dir, nulls) = if ascending {
        (Order_::Asc, NullOrdering::First)
    } else {
        (Order_::Desc, NullOrdering::Last)
    };
    let in_order = if ascending {
        [(true, runs.nulls), (false, runs.values)]
    } else {
        [(false, runs.values), (true, runs.nulls)]
    };
    let mut items = Vec::new();
    for (null_run, keyset) in in_order {
        let want = (n + 1).saturating_sub(items.len() as u64);
        let Some(keyset) = keyset.filter(|_| want > 0) else {
            continue;
        };
        let mut q = E::find().filter(cond.clone()).filter(keyset).limit(want);
        match &sort {
            Some(s) if nullable => {
                // On the indexed expression (`lower(x) IS NULL`), so the index seeks to the run.
                let key = s.expr();
                q = q.filter(if null_run {
                    key.is_null()
                } else {
                    key.is_not_null()
                });
                // Within the NULL run only the id orders. PostgreSQL needs the key in the ORDER
                // BY to see that the index yields it (IS NULL is no equality to it); SQLite
                // sorts when the key of an IS NULL run is an expression, and needs only the id.
                if !(null_run && db.get_database_backend() == DbBackend::Sqlite) {
                    q = q.order_by_with_nulls(s.expr(), dir.clone(), nulls);
                }
            }
            Some(s) => q = q.order_by(s.expr(), dir.clone()),
            None => {}
        }
        items.extend(rows.read(db, q.order_by(id, dir.clone())).await?);
    }
    let more = items.len() as u64 > n;
    items.truncate(n as usize);
    if backward {
        items.reverse();
    }
    let o = req.order.as_ref().map(order_name);
    let cursors = items
        .iter()
        .map(|item| {
            let m = R::model(item);
            Cursor {
                o: o.clone(),
                k: sort.as_ref().and_then(|s| s.key(m)),
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
