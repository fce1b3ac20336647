//! Enrichment (Clearbit-shaped company and person lookups): a per-organization cache of answers
//! (found, or "no data"), so one domain or email is asked about at most once per 30 days, and
//! per account / contact what enrichment filled and when, and when it may be tried again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EnrichmentCache::Table)
                    .if_not_exists()
                    .col(uuid(EnrichmentCache::OrganizationId))
                    .col(string_len(EnrichmentCache::Kind, 16))
                    .col(string_len(EnrichmentCache::Lookup, 320))
                    .col(string_len(EnrichmentCache::Source, 32))
                    .col(boolean(EnrichmentCache::Found))
                    .col(json_binary_null(EnrichmentCache::Data))
                    .col(timestamp_with_time_zone(EnrichmentCache::FetchedAt))
                    .col(timestamp_with_time_zone(EnrichmentCache::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(EnrichmentCache::OrganizationId)
                            .col(EnrichmentCache::Kind)
                            .col(EnrichmentCache::Lookup),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_enrichment_cache_organization")
                            .from(EnrichmentCache::Table, EnrichmentCache::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Enrichments::Table)
                    .if_not_exists()
                    .col(uuid(Enrichments::Id).primary_key())
                    .col(uuid(Enrichments::OrganizationId))
                    .col(string_len(Enrichments::ObjectType, 16))
                    .col(string_len_null(Enrichments::Source, 32))
                    .col(timestamp_with_time_zone_null(Enrichments::EnrichedAt))
                    .col(json_binary(Enrichments::Fields))
                    .col(string_len(Enrichments::Outcome, 16))
                    .col(timestamp_with_time_zone(Enrichments::AttemptedAt))
                    .col(timestamp_with_time_zone(Enrichments::NextAttemptAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_enrichments_organization")
                            .from(Enrichments::Table, Enrichments::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_enrichments_due")
                    .table(Enrichments::Table)
                    .col(Enrichments::OrganizationId)
                    .col(Enrichments::ObjectType)
                    .col(Enrichments::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Enrichments::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EnrichmentCache::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EnrichmentCache {
    Table,
    OrganizationId,
    Kind,
    Lookup,
    Source,
    Found,
    Data,
    FetchedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Enrichments {
    Table,
    Id,
    OrganizationId,
    ObjectType,
    Source,
    EnrichedAt,
    Fields,
    Outcome,
    AttemptedAt,
    NextAttemptAt,
}
