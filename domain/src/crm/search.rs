//! Search across accounts, contacts and deals, ranked, scoped by the actor's organization. One
//! function with a per-backend branch: SQLite reads the FTS5 table `crm_search` (BM25,
//! titles weigh ten times the body, every word must match, as a prefix); PostgreSQL matches
//! `websearch_to_tsquery('simple', …)` against the weighted vectors that migration 000008 indexes
//! with GIN (ts_rank). Either way the hits are then loaded as rows of the organization.

use entity::{companies, contacts, deals};
use migration::m20261128_000008_search::{SOURCES, pg_vector};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::crm::accounts;
use crate::{Actor, Error, Result};

/// The most hits one search returns.
pub const MAX_HITS: u64 = 100;

/// One thing found.
#[derive(Debug, Clone)]
pub enum Found {
    Account(companies::Model),
    Contact(contacts::Model),
    Deal(Box<deals::Model>),
}

/// A hit and its relevance (higher is better).
#[derive(Debug, Clone)]
pub struct Hit {
    pub found: Found,
    pub rank: f64,
}

/// The FTS5 query of free text: every word quoted (so operators are plain text), as a prefix,
/// all required.
fn fts5_query(q: &str) -> String {
    q.split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each kind of hit and the scope that reads it.
const KIND_SCOPES: [(&str, &str); 3] = [
    ("account", "accounts:read"),
    ("contact", "contacts:read"),
    ("deal", "deals:read"),
];

/// Searches the organization's accounts, contacts and deals for `query`, best first. An API
/// key finds only the kinds its scopes read (`FORBIDDEN` when it reads none of them).
pub async fn search(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    query: &str,
    first: u64,
) -> Result<Vec<Hit>> {
    let kinds: Vec<&str> = KIND_SCOPES
        .iter()
        .filter(|(_, scope)| actor.may(scope))
        .map(|(kind, _)| *kind)
        .collect();
    if kinds.is_empty() {
        return Err(Error::Forbidden(
            "search needs accounts:read, contacts:read or deals:read".into(),
        ));
    }
    // The kinds are constants of this module, never input.
    let kind_list = kinds
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = query.trim();
    if query.is_empty() || query.chars().count() > 200 {
        return Err(Error::invalid("query", "must be 1 to 200 characters"));
    }
    if !(1..=MAX_HITS).contains(&first) {
        return Err(Error::invalid(
            "first",
            format!("must be between 1 and {MAX_HITS}"),
        ));
    }
    let backend = db.get_database_backend();
    let org: Value = actor.organization_id.into();
    let limit = Value::BigInt(Some(i64::try_from(first).unwrap_or(20)));
    let stmt = match backend {
        DbBackend::Sqlite => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT kind, row_id, -bm25(crm_search, 0.0, 0.0, 0.0, 10.0, 1.0) AS rank FROM crm_search WHERE crm_search MATCH ? AND organization_id = ? AND kind IN ({kind_list}) ORDER BY rank DESC LIMIT ?"
            ),
            [fts5_query(query).into(), org, limit],
        ),
        _ => {
            let parts: Vec<String> = SOURCES
                .iter()
                .filter(|(kind, ..)| kinds.contains(kind))
                .map(|(kind, table, title, body)| {
                    let v = pg_vector(&title.replace("{p}", ""), &body.replace("{p}", ""));
                    format!(
                        "SELECT '{kind}' AS kind, id AS row_id, ts_rank({v}, q)::float8 AS rank FROM {table}, term WHERE organization_id = $2 AND {v} @@ q"
                    )
                })
                .collect();
            // The query is parsed once, in a materialized CTE. A CTE scan is parallel
            // restricted, so the plan stays in the backend: with the arms side by side, the
            // cached generic plan otherwise became a Parallel Append that started two workers
            // for every search (5 ms instead of 0.1 ms, and a core of worker start-ups under
            // load; see the `plans` test).
            Statement::from_sql_and_values(
                backend,
                format!(
                    "WITH term AS MATERIALIZED (SELECT websearch_to_tsquery('simple', $1) AS q) {} ORDER BY rank DESC LIMIT $3",
                    parts.join(" UNION ALL ")
                ),
                [query.into(), org, limit],
            )
        }
    };
    let mut ranked: Vec<(String, Uuid, f64)> = Vec::new();
    for row in db.query_all_raw(stmt).await? {
        ranked.push((
            row.try_get("", "kind")?,
            row.try_get("", "row_id")?,
            row.try_get("", "rank")?,
        ));
    }
    let ids = |k: &str| -> Vec<Uuid> {
        ranked
            .iter()
            .filter(|(kind, _, _)| kind == k)
            .map(|(_, id, _)| *id)
            .collect()
    };
    // Only the kinds found are loaded: a key without `contacts:read` finds no contact.
    let (account_ids, contact_ids, deal_ids) = (ids("account"), ids("contact"), ids("deal"));
    let mut accounts = Vec::new();
    if !account_ids.is_empty() {
        accounts = accounts::by_ids(db, actor, account_ids).await?;
    }
    let mut contacts = Vec::new();
    if !contact_ids.is_empty() {
        contacts = crate::crm::contacts::by_ids(db, actor, contact_ids).await?;
    }
    let mut deals = Vec::new();
    if !deal_ids.is_empty() {
        deals = crate::crm::deals::by_ids(db, actor, deal_ids).await?;
    }
    Ok(ranked
        .into_iter()
        .filter_map(|(kind, id, rank)| {
            let found = match kind.as_str() {
                "account" => Found::Account(accounts.iter().find(|m| m.id == id)?.clone()),
                "contact" => Found::Contact(contacts.iter().find(|m| m.id == id)?.clone()),
                _ => Found::Deal(Box::new(deals.iter().find(|m| m.id == id)?.clone())),
            };
            Some(Hit { found, rank })
        })
        .collect())
}
