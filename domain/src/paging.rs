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
use sea_orm::sea_query::{Expr, ExprTrait, Func, ValueType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, ModelTrait, Order as Order_,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
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
