//! Reading the hot models (an account, its score, its contacts, deals and activities, a signal,
//! and the API key with its creator's membership that authenticates most requests) by column
//! position.
//!
//! sea-orm's derived `FromQueryResult` finds each column by name and, for every NULL in an
//! `Option` field, builds an error first (a `format!` of the column's name, escaped) that it
//! then turns into `None`; a joined row (`select_also`) formats `"A_" + name` for every column
//! too. On the accounts page (50 accounts with their scores, 150 contacts) that was a fifth of
//! the server's CPU. Here each cell is decoded straight from its raw value (a NULL seen before
//! anything is decoded, no check of the column's declared type), and a column is found by its
//! position: a sea-orm `Select` lists the entity's columns in the order of its `Column` enum,
//! which is the order of the model's fields, and a `select_also` lists the second entity's after
//! the first's.
//!
//! [`positional!`](crate::positional) writes a model's reader from its fields, in order; the
//! test `rows::positional_reads_equal_derived_reads` reads every such model both ways, on both
//! backends, with every column set to a distinct value and with every nullable column NULL.

use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, QueryResult, QueryTrait, Select, SelectTwo, TryGetable,
};

/// A value read from one column of a row.
pub trait Cell: Sized {
    fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr>;
}

/// The error of column `i`.
fn column_error(i: usize, e: &dyn std::fmt::Display) -> DbErr {
    DbErr::Type(format!("column {i}: {e}"))
}

/// Column `i` of `row` as its raw value; `None` for NULL.
fn present<R>(
    row: &R,
    i: usize,
) -> Result<Option<<R::Database as sea_orm::sqlx::Database>::ValueRef<'_>>, DbErr>
where
    R: sea_orm::sqlx::Row,
    usize: sea_orm::sqlx::ColumnIndex<R>,
{
    use sea_orm::sqlx::ValueRef;
    let value = row.try_get_raw(i).map_err(|e| column_error(i, &e))?;
    Ok((!value.is_null()).then_some(value))
}

/// Whether column `i` of `row` is NULL, from the raw value; `None` for a row of neither sqlx
/// backend.
fn is_null(row: &QueryResult, i: usize) -> Option<Result<bool, DbErr>> {
    if let Some(r) = row.try_as_pg_row() {
        return Some(present(r, i).map(|v| v.is_none()));
    }
    row.try_as_sqlite_row()
        .map(|r| present(r, i).map(|v| v.is_none()))
}

/// Column `i` of `row` decoded as `T` straight from its raw value (`None` for NULL), without
/// sqlx's check of the column's declared type against `T` (with sea-orm's wrapping around it,
/// most of the cost of reading a row): a positional model's fields are its columns, which the
/// test named in the module's comment checks on both backends.
fn raw<'r, R, T>(row: &'r R, i: usize) -> Result<Option<T>, DbErr>
where
    R: sea_orm::sqlx::Row,
    usize: sea_orm::sqlx::ColumnIndex<R>,
    T: sea_orm::sqlx::Decode<'r, R::Database>,
{
    present(row, i)?
        .map(T::decode)
        .transpose()
        .map_err(|e| column_error(i, &e))
}

/// The value of column `i`, which must not be NULL.
fn required<T>(value: Option<T>, i: usize) -> Result<T, DbErr> {
    value.ok_or_else(|| column_error(i, &"unexpected NULL"))
}

/// [`raw`] on a row of either sqlx backend; `None` for another kind of row.
fn decoded<T>(row: &QueryResult, i: usize) -> Option<Result<Option<T>, DbErr>>
where
    T: for<'r> sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Postgres>
        + for<'r> sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Sqlite>,
{
    if let Some(r) = row.try_as_pg_row() {
        return Some(raw(r, i));
    }
    row.try_as_sqlite_row().map(|r| raw(r, i))
}

macro_rules! cells {
    ($($t:ty),* $(,)?) => {$(
        impl Cell for $t {
            fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                match decoded::<$t>(row, i) {
                    Some(v) => required(v?, i),
                    None => Ok(<$t as TryGetable>::try_get_by_index(row, i)?),
                }
            }
        }
        impl Cell for Option<$t> {
            fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                match decoded::<$t>(row, i) {
                    Some(v) => v,
                    None => Ok(<Option<$t> as TryGetable>::try_get_by_index(row, i)?),
                }
            }
        }
    )*};
}

cells!(
    uuid::Uuid,
    String,
    i32,
    i64,
    f64,
    bool,
    serde_json::Value,
    chrono::NaiveDate,
);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Column `i` of a PostgreSQL row as a time, from its binary form (microseconds since
/// 2000-01-01, the same for `timestamp` and `timestamptz`): one addition where sqlx's decoder
/// builds the time from a date and a duration, at ~500 instructions a cell the dearest column
/// of a row. Another form (text) goes through sqlx's decoder.
fn pg_time(
    row: &sea_orm::sqlx::postgres::PgRow,
    i: usize,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, DbErr> {
    use sea_orm::sqlx::postgres::PgValueFormat;
    let err = |e: &dyn std::fmt::Display| column_error(i, e);
    let Some(value) = present(row, i)? else {
        return Ok(None);
    };
    if value.format() != PgValueFormat::Binary {
        return raw(row, i);
    }
    let bytes: [u8; 8] = value
        .as_bytes()
        .map_err(|e| err(&e))?
        .try_into()
        .map_err(|_| err(&"a time of other than 8 bytes"))?;
    i64::from_be_bytes(bytes)
        .checked_add(PG_EPOCH_MICROS)
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(Some)
        .ok_or_else(|| err(&"a time out of range"))
}

impl Cell for Option<chrono::DateTime<chrono::Utc>> {
    fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        if let Some(r) = row.try_as_pg_row() {
            return pg_time(r, i);
        }
        match row.try_as_sqlite_row() {
            Some(r) => raw(r, i),
            None => Ok(<Self as TryGetable>::try_get_by_index(row, i)?),
        }
    }
}

impl Cell for chrono::DateTime<chrono::Utc> {
    fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        required(Option::<Self>::cell(row, i)?, i)
    }
}

/// A model read from consecutive columns of a row, in the order of its fields.
pub trait Positional: Sized {
    /// How many columns the model spans.
    const COLUMNS: usize;
    /// The model whose first column is column `first` of `row`.
    fn at(row: &QueryResult, first: usize) -> Result<Self, DbErr>;
    /// The model whose kept fields are read, in order, from the columns of `row` from `first` on;
    /// every other field is its type's default, a placeholder that only a reader of the kept
    /// fields may see.
    fn pruned(row: &QueryResult, first: usize, keep: Fields) -> Result<Self, DbErr>;
}

/// Some of a model's fields, by position (its `Column` enum's order, which is its fields'): a
/// set of at most 64.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Fields(u64);

impl Fields {
    /// Every field.
    pub const ALL: Self = Self(u64::MAX);
    /// No field.
    pub const NONE: Self = Self(0);

    /// The fields of `columns`, columns of entity `E`.
    pub fn of<E: EntityTrait>(columns: &[E::Column]) -> Self {
        use sea_orm::{IdenStatic, Iterable};
        let bits = E::Column::iter()
            .enumerate()
            .filter(|(_, c)| columns.iter().any(|k| k.as_str() == c.as_str()))
            .fold(0, |bits, (n, _)| {
                bits | 1u64.checked_shl(n as u32).unwrap_or(0)
            });
        Self(bits)
    }

    /// The fields of both.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether field `n` (from 0) is in the set.
    pub fn has(self, n: usize) -> bool {
        n < 64 && self.0 & 1 << n != 0
    }
}

/// Implements [`Positional`] for a model from its fields, listed in their declared order.
#[macro_export]
macro_rules! positional {
    ($model:path { $($field:ident),+ $(,)? }) => {
        // `Fields` holds at most 64.
        const _: () = assert!([$(stringify!($field)),+].len() <= 64);
        impl $crate::db::rows::Positional for $model {
            const COLUMNS: usize = [$(stringify!($field)),+].len();
            fn at(
                row: &sea_orm::QueryResult,
                first: usize,
            ) -> Result<Self, sea_orm::DbErr> {
                let mut i = first;
                let mut next = || {
                    i += 1;
                    i - 1
                };
                Ok(Self {
                    $($field: $crate::db::rows::Cell::cell(row, next())?,)+
                })
            }
            fn pruned(
                row: &sea_orm::QueryResult,
                first: usize,
                keep: $crate::db::rows::Fields,
            ) -> Result<Self, sea_orm::DbErr> {
                let (mut i, mut n) = (first, 0);
                let mut next = || {
                    n += 1;
                    keep.has(n - 1).then(|| {
                        i += 1;
                        i - 1
                    })
                };
                Ok(Self {
                    $($field: match next() {
                        Some(i) => $crate::db::rows::Cell::cell(row, i)?,
                        None => Default::default(),
                    },)+
                })
            }
        }
    };
}

/// The rows of `select`, each read by position.
pub async fn all<E>(db: &impl ConnectionTrait, select: Select<E>) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Positional,
{
    all_raw(db, select.build(db.get_database_backend())).await
}

/// The rows of `statement`, each read by position as an `M` from its first column: the
/// statement lists `M`'s columns first, in the order of its fields.
pub async fn all_raw<M: Positional>(
    db: &impl ConnectionTrait,
    statement: sea_orm::Statement,
) -> Result<Vec<M>, DbErr> {
    let rows = db.query_all_raw(statement).await?;
    rows.iter().map(|r| M::at(r, 0)).collect()
}

/// The rows of `statement`, each read by position as an `M` of which only the fields `keep` are
/// read ([`Positional::pruned`]): the statement lists those fields' columns, in order.
pub async fn all_pruned<M: Positional>(
    db: &impl ConnectionTrait,
    statement: sea_orm::Statement,
    keep: Fields,
) -> Result<Vec<M>, DbErr> {
    let rows = db.query_all_raw(statement).await?;
    rows.iter().map(|r| M::pruned(r, 0, keep)).collect()
}

/// The rows of `select`, each read by position: the first entity's model, and the second's
/// unless the row has none (its first column, a primary key, is NULL: a left join that found
/// nothing).
pub async fn all_also<E, F>(
    db: &impl ConnectionTrait,
    select: SelectTwo<E, F>,
) -> Result<Vec<(E::Model, Option<F::Model>)>, DbErr>
where
    E: EntityTrait,
    F: EntityTrait,
    E::Model: Positional,
    F::Model: Positional,
{
    let rows = db
        .query_all_raw(select.build(db.get_database_backend()))
        .await?;
    let second = E::Model::COLUMNS;
    rows.iter()
        .map(|r| {
            let joined = match is_null(r, second) {
                Some(null) => !null?,
                None => r.try_get_by_index::<Option<uuid::Uuid>>(second)?.is_some(),
            };
            let f = if joined {
                Some(F::Model::at(r, second)?)
            } else {
                None
            };
            Ok((E::Model::at(r, 0)?, f))
        })
        .collect()
}

use entity::{
    account_scores, activities, api_keys, companies, contacts, deals, memberships, signals,
};

crate::positional!(companies::Model {
    id,
    organization_id,
    name,
    domain,
    domain_normalized,
    industry,
    size,
    website,
    github_org,
    city,
    country,
    description,
    custom_fields,
    tags,
    score,
    created_at,
    updated_at,
});

crate::positional!(account_scores::Model {
    account_id,
    organization_id,
    score,
    tier,
    trend,
    factors,
    signal_count,
    user_count,
    last_signal_at,
    config_version,
    computed_at,
});

crate::positional!(contacts::Model {
    id,
    organization_id,
    account_id,
    first_name,
    last_name,
    email,
    email_normalized,
    title,
    phone,
    github,
    twitter,
    linked_in,
    city,
    country,
    notes,
    custom_fields,
    tags,
    created_at,
    updated_at,
});

crate::positional!(deals::Model {
    id,
    organization_id,
    title,
    amount,
    currency,
    stage,
    probability,
    account_id,
    contact_id,
    owner_id,
    expected_close_date,
    closed_at,
    description,
    custom_fields,
    tags,
    created_at,
    updated_at,
});

crate::positional!(activities::Model {
    id,
    organization_id,
    kind,
    title,
    description,
    status,
    priority,
    due_date,
    completed_at,
    author_id,
    account_id,
    contact_id,
    deal_id,
    custom_fields,
    created_at,
    updated_at,
});

crate::positional!(signals::Model {
    id,
    organization_id,
    source_id,
    signal_type,
    contact_id,
    account_id,
    anonymous_id,
    metadata,
    idempotency_key,
    dedupe_key,
    timestamp,
    created_at,
});

crate::positional!(api_keys::Model {
    id,
    organization_id,
    created_by,
    name,
    prefix,
    key_hash,
    scopes,
    created_at,
    last_used_at,
    expires_at,
    revoked_at,
});

crate::positional!(memberships::Model {
    id,
    organization_id,
    user_id,
    role,
    created_at,
});
