//! Full-text search over accounts, contacts and deals, one machinery per backend:
//! SQLite gets an FTS5 table `crm_search` kept in sync by triggers (and filled from the rows that
//! exist); PostgreSQL gets GIN indexes on weighted `to_tsvector('simple', …)` expressions, which
//! `domain::search` repeats verbatim so the planner uses them. Titles weigh more than bodies.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (kind, table, title expression, body expression) over `new.` / `old.` / bare columns.
pub const SOURCES: &[(&str, &str, &str, &str)] = &[
    (
        "account",
        "companies",
        "{p}name",
        "coalesce({p}domain, '') || ' ' || coalesce({p}industry, '') || ' ' || coalesce({p}description, '')",
    ),
    (
        "contact",
        "contacts",
        "coalesce({p}first_name, '') || ' ' || coalesce({p}last_name, '')",
        "coalesce({p}email, '') || ' ' || coalesce({p}title, '') || ' ' || coalesce({p}github, '') || ' ' || coalesce({p}notes, '')",
    ),
    ("deal", "deals", "{p}title", "coalesce({p}description, '')"),
];

/// The PostgreSQL search vector of a table (also used by `domain::search`).
pub fn pg_vector(title: &str, body: &str) -> String {
    format!(
        "(setweight(to_tsvector('simple', {title}), 'A') || setweight(to_tsvector('simple', {body}), 'D'))"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS crm_search USING fts5(kind UNINDEXED, row_id UNINDEXED, organization_id UNINDEXED, title, body, tokenize = 'unicode61 remove_diacritics 2')",
                )
                .await?;
                for (kind, table, title, body) in SOURCES {
                    let ins = |p: &str| {
                        format!(
                            "INSERT INTO crm_search (kind, row_id, organization_id, title, body) VALUES ('{kind}', {p}id, {p}organization_id, {}, {});",
                            title.replace("{p}", p),
                            body.replace("{p}", p)
                        )
                    };
                    let del = format!(
                        "DELETE FROM crm_search WHERE kind = '{kind}' AND row_id = old.id;"
                    );
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER IF NOT EXISTS {table}_search_ai AFTER INSERT ON {table} BEGIN {} END",
                        ins("new.")
                    ))
                    .await?;
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER IF NOT EXISTS {table}_search_au AFTER UPDATE ON {table} BEGIN {del} {} END",
                        ins("new.")
                    ))
                    .await?;
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER IF NOT EXISTS {table}_search_ad AFTER DELETE ON {table} BEGIN {del} END"
                    ))
                    .await?;
                    db.execute_unprepared(&format!(
                        "INSERT INTO crm_search (kind, row_id, organization_id, title, body) SELECT '{kind}', id, organization_id, {}, {} FROM {table}",
                        title.replace("{p}", ""),
                        body.replace("{p}", "")
                    ))
                    .await?;
                }
            }
            _ => {
                for (_, table, title, body) in SOURCES {
                    let v = pg_vector(&title.replace("{p}", ""), &body.replace("{p}", ""));
                    db.execute_unprepared(&format!(
                        "CREATE INDEX IF NOT EXISTS idx_{table}_search ON {table} USING GIN ({v})"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                for (_, table, _, _) in SOURCES {
                    for t in ["ai", "au", "ad"] {
                        db.execute_unprepared(&format!(
                            "DROP TRIGGER IF EXISTS {table}_search_{t}"
                        ))
                        .await?;
                    }
                }
                db.execute_unprepared("DROP TABLE IF EXISTS crm_search")
                    .await?;
            }
            _ => {
                for (_, table, _, _) in SOURCES {
                    db.execute_unprepared(&format!("DROP INDEX IF EXISTS idx_{table}_search"))
                        .await?;
                }
            }
        }
        Ok(())
    }
}
