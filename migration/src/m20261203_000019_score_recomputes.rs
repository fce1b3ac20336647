//! Whole-organization recomputes of the PQA scores that can be watched and resumed
//! (`score_recomputes`): one row per `recomputeScores`, holding its progress (`total`,
//! `processed`) and the keyset cursor (the last account id whose score is committed), both
//! written in the transaction of each chunk's scores, so a restart resumes after the last
//! committed chunk. `running_organization_id` is the organization's id while the recompute
//! runs and NULL once it finished: its unique index lets the database refuse a second running
//! recompute of an organization. `job_id` is the queue job carrying it now (a long recompute
//! hands over to a fresh job every few chunks).
//!
//! On SQLite the search index's update trigger on companies, contacts and deals now fires only
//! when a searched column changes: it deletes the row's old entry by `row_id`, which FTS5 cannot
//! index, so every update of any column (a rescore writing `companies.score`) scanned the whole
//! search table.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000008_search::SOURCES;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns a search source's expressions read (`{p}name` → `name`), plus the two every entry
/// carries.
fn searched_columns(title: &str, body: &str) -> Vec<String> {
    let mut cols = vec!["id".to_owned(), "organization_id".to_owned()];
    for expr in [title, body] {
        for part in expr.split("{p}").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !cols.contains(&name) {
                cols.push(name);
            }
        }
    }
    cols
}

/// The update trigger of a search source, firing on every update (`None`) or on its columns.
fn update_trigger(
    kind: &str,
    table: &str,
    title: &str,
    body: &str,
    of: Option<&[String]>,
) -> String {
    let p = "new.";
    let of = of.map_or(String::new(), |c| format!(" OF {}", c.join(", ")));
    format!(
        "CREATE TRIGGER IF NOT EXISTS {table}_search_au AFTER UPDATE{of} ON {table} BEGIN \
         DELETE FROM crm_search WHERE kind = '{kind}' AND row_id = old.id; \
         INSERT INTO crm_search (kind, row_id, organization_id, title, body) VALUES ('{kind}', {p}id, {p}organization_id, {}, {}); END",
        title.replace("{p}", p),
        body.replace("{p}", p)
    )
}

async fn replace_update_triggers(manager: &SchemaManager<'_>, narrow: bool) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    for (kind, table, title, body) in SOURCES {
        let cols = searched_columns(title, body);
        db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_search_au"))
            .await?;
        db.execute_unprepared(&update_trigger(
            kind,
            table,
            title,
            body,
            narrow.then_some(cols.as_slice()),
        ))
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScoreRecomputes::Table)
                    .if_not_exists()
                    .col(uuid(ScoreRecomputes::Id).primary_key())
                    .col(uuid(ScoreRecomputes::OrganizationId))
                    .col(uuid_null(ScoreRecomputes::RunningOrganizationId))
                    .col(string_len(ScoreRecomputes::Status, 16))
                    .col(big_integer(ScoreRecomputes::Total))
                    .col(big_integer(ScoreRecomputes::Processed))
                    .col(uuid_null(ScoreRecomputes::Cursor))
                    .col(uuid_null(ScoreRecomputes::RequestedBy))
                    .col(uuid_null(ScoreRecomputes::JobId))
                    .col(text_null(ScoreRecomputes::LastError))
                    .col(timestamp_with_time_zone(ScoreRecomputes::StartedAt))
                    .col(timestamp_with_time_zone(ScoreRecomputes::UpdatedAt))
                    .col(timestamp_with_time_zone_null(ScoreRecomputes::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_score_recomputes_organization")
                            .from(ScoreRecomputes::Table, ScoreRecomputes::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_score_recomputes_running")
                    .table(ScoreRecomputes::Table)
                    .col(ScoreRecomputes::RunningOrganizationId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_score_recomputes_org_started")
                    .table(ScoreRecomputes::Table)
                    .col(ScoreRecomputes::OrganizationId)
                    .col(ScoreRecomputes::StartedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        replace_update_triggers(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_update_triggers(manager, false).await?;
        manager
            .drop_table(Table::drop().table(ScoreRecomputes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ScoreRecomputes {
    Table,
    Id,
    OrganizationId,
    RunningOrganizationId,
    Status,
    Total,
    Processed,
    Cursor,
    RequestedBy,
    JobId,
    LastError,
    StartedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigger_watches_the_searched_columns() {
        let (_, _, title, body) = SOURCES[0];
        assert_eq!(
            searched_columns(title, body),
            [
                "id",
                "organization_id",
                "name",
                "domain",
                "industry",
                "description"
            ]
        );
    }
}
