//! Reading the hot models (an account, its score, its contacts, deals and activities, a signal,
//! and the API key with its creator's membership that authenticates most requests) by column
//! position.
//!
//! sea-orm's derived `FromQueryResult` finds each column by name and, for every NULL in an
//! `Option` field, builds an error first (a `format!` of the column's name, escaped) that it
//! then turns into `None`; a joined row (`select_also`) formats `"A_" + name` for every column
//! too. On the accounts page (50 accounts with their scores, 150 contacts) that was a fifth of
//! the server's CPU. Here a NULL is seen from the raw value before anything is decoded, and a
//! column is found by its position: a sea-orm `Select` lists the entity's columns in the order
//! of its `Column` enum, which is the order of the model's fields, and a `select_also` lists the
//! second entity's after the first's.
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

/// Whether column `i` of `row` is NULL, from the raw value; `None` for a row of neither sqlx
/// backend.
fn is_null(row: &QueryResult, i: usize) -> Option<Result<bool, DbErr>> {
    use sea_orm::sqlx::{Row, ValueRef};
    let raw = |e: sea_orm::sqlx::Error| DbErr::Type(format!("column {i}: {e}"));
    if let Some(r) = row.try_as_pg_row() {
        return Some(r.try_get_raw(i).map(|v| v.is_null()).map_err(raw));
    }
    if let Some(r) = row.try_as_sqlite_row() {
        return Some(r.try_get_raw(i).map(|v| v.is_null()).map_err(raw));
    }
    None
}

macro_rules! cells {
    ($($t:ty),* $(,)?) => {$(
        impl Cell for $t {
            fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                Ok(<$t as TryGetable>::try_get_by_index(row, i)?)
            }
        }
        impl Cell for Option<$t> {
            fn cell(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                match is_null(row, i) {
                    Some(Ok(true)) => Ok(None),
                    Some(Ok(false)) => Ok(Some(<$t as TryGetable>::try_get_by_index(row, i)?)),
                    Some(Err(e)) => Err(e),
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
    chrono::DateTime<chrono::Utc>,
    chrono::NaiveDate,
);

/// A model read from consecutive columns of a row, in the order of its fields.
pub trait Positional: Sized {
    /// How many columns the model spans.
    const COLUMNS: usize;
    /// The model whose first column is column `first` of `row`.
    fn at(row: &QueryResult, first: usize) -> Result<Self, DbErr>;
}

/// Implements [`Positional`] for a model from its fields, listed in their declared order.
#[macro_export]
macro_rules! positional {
    ($model:path { $($field:ident),+ $(,)? }) => {
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
