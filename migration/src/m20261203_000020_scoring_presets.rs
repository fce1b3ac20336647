//! Scoring presets: CALIBRATED became the model of new organizations (an organization without a
//! saved scoring configuration). So that the upgrade changes no existing organization's scores,
//! every organization that exists now and has no saved configuration is pinned to CLASSIC by a
//! first configuration version holding only `{"model": "classic"}` (the rest reads as CLASSIC's
//! defaults). Organizations with saved versions need nothing: a version without a `model`
//! predates the presets and reads as CLASSIC.

use sea_orm::prelude::{Json, Uuid};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let unpinned = Query::select()
            .column(Organizations::Id)
            .from(Organizations::Table)
            .and_where(
                Expr::col(Organizations::Id).not_in_subquery(
                    Query::select()
                        .column(ScoringConfigs::OrganizationId)
                        .from(ScoringConfigs::Table)
                        .to_owned(),
                ),
            )
            .to_owned();
        let now = chrono::Utc::now();
        for row in db.query_all(&unpinned).await? {
            let organization: Uuid = row.try_get("", "id")?;
            let config: Json = serde_json::json!({ "model": "classic" });
            let insert = Query::insert()
                .into_table(ScoringConfigs::Table)
                .columns([
                    ScoringConfigs::Id,
                    ScoringConfigs::OrganizationId,
                    ScoringConfigs::Version,
                    ScoringConfigs::Config,
                    ScoringConfigs::CreatedAt,
                ])
                .values([
                    Uuid::now_v7().into(),
                    organization.into(),
                    1.into(),
                    config.into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Migration(format!("pinning scoring configs: {e}")))?
                .to_owned();
            db.execute(&insert).await?;
        }
        Ok(())
    }

    /// The pins stay: removing them would move those organizations to CALIBRATED unasked (and
    /// an administrator may have saved later versions on top of them).
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ScoringConfigs {
    Table,
    Id,
    OrganizationId,
    Version,
    Config,
    CreatedAt,
}
