//! A large insert on PostgreSQL as one statement with one parameter: the rows as a JSON array,
//! turned back into rows by `json_to_recordset`.
//!
//! A multi-row `INSERT … VALUES` of a batch (1,000 signals, their 1,000 events) carries one
//! bind parameter per cell, 7,000–12,000 of them. Measured in the ingest bench (batches of
//! 1,000, PostgreSQL's statement log), PostgreSQL spent more time parsing and planning such a
//! statement and converting its parameters than inserting its rows (the events: 12 ms parse,
//! 27 ms bind, 65 ms execute), and its text changes with the row count, so the connection's
//! prepared statement rarely serves it twice. Here the statement's text depends only on the
//! table and its columns, its plan is trivial, and the client writes one JSON text instead of
//! building thousands of parameters.
//!
//! `WITH ORDINALITY … ORDER BY` keeps the rows in the given order (a sequence default such as
//! `events.seq` numbers them in that order, as the `VALUES` form does); PostgreSQL knows the
//! function's rows come in ordinality order, so the order costs no sort.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sea_orm::sea_query::{ColumnType, Value};
use sea_orm::{ColumnTrait, DbBackend, IdenStatic, ModelTrait, Statement};

/// The statement inserting `models` into `columns` of `E` (the other columns take their
/// defaults), `ON CONFLICT (do_nothing_on) DO NOTHING` when that is not empty. `None` when a
/// column's type or a value has no faithful JSON form here (the caller then inserts the usual
/// way): a type other than text, integers, floats, booleans, UUIDs, `timestamptz` and JSON; a
/// float that is not finite; a JSON value that is `null` (`json_to_recordset` reads it as SQL
/// `NULL`).
pub fn insert<E: sea_orm::EntityTrait>(
    columns: &[E::Column],
    models: &[E::Model],
    do_nothing_on: &[E::Column],
) -> Option<Statement> {
    let types: Vec<&'static str> = columns
        .iter()
        .map(|c| sql_type(c.def().get_column_type()))
        .collect::<Option<_>>()?;
    let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
    let mut json: Vec<u8> = Vec::with_capacity(models.len() * 64 * columns.len());
    json.push(b'[');
    for (i, m) in models.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.push(b'{');
        for (j, (c, name)) in columns.iter().zip(&names).enumerate() {
            if j > 0 {
                json.push(b',');
            }
            write!(json, "\"{name}\":").ok()?;
            write_value(&mut json, m.get(*c))?;
        }
        json.push(b'}');
    }
    json.push(b']');
    let json = String::from_utf8(json).ok()?;
    let quoted = |n: &&str| format!("\"{n}\"");
    let list = names.iter().map(quoted).collect::<Vec<_>>().join(", ");
    let typed = names
        .iter()
        .zip(&types)
        .map(|(n, t)| format!("\"{n}\" {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "INSERT INTO \"{table}\" ({list}) SELECT {list} FROM ROWS FROM \
         (json_to_recordset($1::json) AS ({typed})) WITH ORDINALITY AS r({list}, \"ordinality\") \
         ORDER BY \"ordinality\"",
        table = E::default().table_name(),
    );
    if !do_nothing_on.is_empty() {
        let keys = do_nothing_on
            .iter()
            .map(|c| format!("\"{}\"", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        sql.push_str(&format!(" ON CONFLICT ({keys}) DO NOTHING"));
    }
    Some(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [Value::String(Some(json))],
    ))
}

/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix seconds.
const POSTGRES_EPOCH: i64 = 946_684_800;

/// The type a column is read as from the JSON; PostgreSQL converts it to the column's own type
/// on insert as it would a parameter (text to `varchar(n)` with its length check, `jsonb` to
/// `json`).
fn sql_type(t: &ColumnType) -> Option<&'static str> {
    Some(match t {
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => "text",
        ColumnType::SmallInteger => "int2",
        ColumnType::Integer => "int4",
        ColumnType::BigInteger => "int8",
        ColumnType::Float => "float4",
        ColumnType::Double => "float8",
        ColumnType::Boolean => "bool",
        ColumnType::Uuid => "uuid",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        ColumnType::Json | ColumnType::JsonBinary => "jsonb",
        _ => return None,
    })
}

/// Appends `v` as JSON; `None` when it has no faithful form (see [`insert`]).
fn write_value(out: &mut Vec<u8>, v: Value) -> Option<()> {
    fn json(out: &mut Vec<u8>, v: &impl serde::Serialize) -> Option<()> {
        serde_json::to_writer(out, v).ok()
    }
    fn finite(f: f64) -> Option<f64> {
        f.is_finite().then_some(f)
    }
    match v {
        Value::Bool(Some(b)) => json(out, &b),
        Value::TinyInt(Some(n)) => json(out, &n),
        Value::SmallInt(Some(n)) => json(out, &n),
        Value::Int(Some(n)) => json(out, &n),
        Value::BigInt(Some(n)) => json(out, &n),
        Value::TinyUnsigned(Some(n)) => json(out, &n),
        Value::SmallUnsigned(Some(n)) => json(out, &n),
        Value::Unsigned(Some(n)) => json(out, &n),
        Value::BigUnsigned(Some(n)) => json(out, &n),
        Value::Float(Some(f)) => json(out, &finite(f64::from(f))?),
        Value::Double(Some(f)) => json(out, &finite(f)?),
        Value::String(Some(s)) => json(out, &s),
        Value::Char(Some(c)) => json(out, &c),
        Value::Uuid(Some(u)) => json(out, &u.hyphenated()),
        // Microseconds from PostgreSQL's epoch, as PostgreSQL keeps them, counted as the
        // driver's binary encoding counts them (cut toward the epoch, not rounded).
        Value::ChronoDateTimeUtc(Some(t)) => {
            let epoch = DateTime::<Utc>::from_timestamp(POSTGRES_EPOCH, 0)?;
            let micros = (t - epoch).num_microseconds()?;
            let t = epoch.checked_add_signed(TimeDelta::microseconds(micros))?;
            json(out, &t.to_rfc3339_opts(SecondsFormat::Micros, true))
        }
        Value::Json(Some(j)) if j.is_null() => None,
        Value::Json(Some(j)) => json(out, &*j),
        Value::Bool(None)
        | Value::TinyInt(None)
        | Value::SmallInt(None)
        | Value::Int(None)
        | Value::BigInt(None)
        | Value::TinyUnsigned(None)
        | Value::SmallUnsigned(None)
        | Value::Unsigned(None)
        | Value::BigUnsigned(None)
        | Value::Float(None)
        | Value::Double(None)
        | Value::String(None)
        | Value::Char(None)
        | Value::Uuid(None)
        | Value::ChronoDateTimeUtc(None)
        | Value::Json(None) => {
            out.extend_from_slice(b"null");
            Some(())
        }
        _ => None,
    }
}
