//! The signal pipeline: signal sources (public config in JSON, secrets sealed in
//! `secret_ciphertext`), signals (idempotency key unique per organization, content dedupe key),
//! contact identities (unique per organization, kind and normalised value), account scores (one
//! row per account), versioned scoring configurations, and the record of every contact merge,
//! which holds what is needed to undo it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn org_fk<T: IntoIden + Copy + 'static>(
    name: &str,
    table: T,
    col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<Alias>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table).if_not_exists();
    for c in cols {
        idx.col(c);
    }
    if unique {
        idx.unique();
    }
    manager.create_index(idx.to_owned()).await
}

fn cols(names: &[&str]) -> Vec<Alias> {
    names.iter().map(|n| Alias::new(*n)).collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignalSources::Table)
                    .if_not_exists()
                    .col(uuid(SignalSources::Id).primary_key())
                    .col(uuid(SignalSources::OrganizationId))
                    .col(string_len(SignalSources::Kind, 32))
                    .col(string_len(SignalSources::Name, 200))
                    .col(string_len(SignalSources::Status, 16))
                    .col(json_binary(SignalSources::Config))
                    .col(text_null(SignalSources::SecretCiphertext))
                    .col(string_len_null(SignalSources::SystemKey, 32))
                    .col(timestamp_with_time_zone_null(SignalSources::LastSyncAt))
                    .col(string_len_null(SignalSources::ErrorMessage, 1000))
                    .col(timestamp_with_time_zone(SignalSources::CreatedAt))
                    .col(timestamp_with_time_zone(SignalSources::UpdatedAt))
                    .foreign_key(&mut org_fk(
                        "fk_signal_sources_organization",
                        SignalSources::Table,
                        SignalSources::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        // The built-in sources (`api`, `segment`) exist once per organization; NULL keys of
        // ordinary sources never collide.
        index(
            manager,
            "ux_signal_sources_org_system_key",
            SignalSources::Table,
            cols(&["organization_id", "system_key"]),
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Signals::Table)
                    .if_not_exists()
                    .col(uuid(Signals::Id).primary_key())
                    .col(uuid(Signals::OrganizationId))
                    .col(uuid(Signals::SourceId))
                    .col(string_len(Signals::Type, 100))
                    .col(uuid_null(Signals::ContactId))
                    .col(uuid_null(Signals::AccountId))
                    .col(string_len_null(Signals::AnonymousId, 200))
                    .col(json_binary(Signals::Metadata))
                    .col(string_len_null(Signals::IdempotencyKey, 200))
                    .col(string_len(Signals::DedupeKey, 400))
                    .col(timestamp_with_time_zone(Signals::Timestamp))
                    .col(timestamp_with_time_zone(Signals::CreatedAt))
                    .foreign_key(&mut org_fk(
                        "fk_signals_organization",
                        Signals::Table,
                        Signals::OrganizationId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_signals_source")
                            .from(Signals::Table, Signals::SourceId)
                            .to(SignalSources::Table, SignalSources::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_signals_contact")
                            .from(Signals::Table, Signals::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_signals_account")
                            .from(Signals::Table, Signals::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_signals_org_idempotency",
            Signals::Table,
            cols(&["organization_id", "idempotency_key"]),
            true,
        )
        .await?;
        for (name, c) in [
            (
                "idx_signals_org_ts",
                &["organization_id", "timestamp", "id"][..],
            ),
            (
                "idx_signals_org_dedupe",
                &["organization_id", "dedupe_key", "timestamp"],
            ),
            (
                "idx_signals_org_created",
                &["organization_id", "created_at"],
            ),
            ("idx_signals_account_ts", &["account_id", "timestamp"]),
            ("idx_signals_contact_ts", &["contact_id", "timestamp"]),
            ("idx_signals_source", &["source_id"]),
        ] {
            index(manager, name, Signals::Table, cols(c), false).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ContactIdentities::Table)
                    .if_not_exists()
                    .col(uuid(ContactIdentities::Id).primary_key())
                    .col(uuid(ContactIdentities::OrganizationId))
                    .col(uuid(ContactIdentities::ContactId))
                    .col(string_len(ContactIdentities::Kind, 20))
                    .col(string_len(ContactIdentities::Value, 300))
                    .col(double(ContactIdentities::Confidence))
                    .col(boolean(ContactIdentities::Verified))
                    .col(string_len(ContactIdentities::Provenance, 50))
                    .col(timestamp_with_time_zone(ContactIdentities::CreatedAt))
                    .foreign_key(&mut org_fk(
                        "fk_contact_identities_organization",
                        ContactIdentities::Table,
                        ContactIdentities::OrganizationId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_identities_contact")
                            .from(ContactIdentities::Table, ContactIdentities::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_contact_identities_org_kind_value",
            ContactIdentities::Table,
            cols(&["organization_id", "kind", "value"]),
            true,
        )
        .await?;
        index(
            manager,
            "idx_contact_identities_contact",
            ContactIdentities::Table,
            cols(&["contact_id"]),
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AccountScores::Table)
                    .if_not_exists()
                    .col(uuid(AccountScores::AccountId).primary_key())
                    .col(uuid(AccountScores::OrganizationId))
                    .col(integer(AccountScores::Score))
                    .col(string_len(AccountScores::Tier, 16))
                    .col(string_len(AccountScores::Trend, 16))
                    .col(json_binary(AccountScores::Factors))
                    .col(integer(AccountScores::SignalCount))
                    .col(integer(AccountScores::UserCount))
                    .col(timestamp_with_time_zone_null(AccountScores::LastSignalAt))
                    .col(integer(AccountScores::ConfigVersion))
                    .col(timestamp_with_time_zone(AccountScores::ComputedAt))
                    .foreign_key(&mut org_fk(
                        "fk_account_scores_organization",
                        AccountScores::Table,
                        AccountScores::OrganizationId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_scores_account")
                            .from(AccountScores::Table, AccountScores::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_account_scores_org_score",
            AccountScores::Table,
            cols(&["organization_id", "score", "account_id"]),
            false,
        )
        .await?;
        index(
            manager,
            "idx_account_scores_org_tier",
            AccountScores::Table,
            cols(&["organization_id", "tier"]),
            false,
        )
        .await?;

        // Requests to rescore an account: ingest (and merges, profile updates) append one row
        // per touched account and enqueue one debounced job per organization, which rescores
        // the requested accounts in bulk and deletes exactly the rows it read. Rows are only
        // ever inserted by writers and deleted by the job, so the two never wait on each other.
        manager
            .create_table(
                Table::create()
                    .table(RescoreRequests::Table)
                    .if_not_exists()
                    .col(uuid(RescoreRequests::Id).primary_key())
                    .col(uuid(RescoreRequests::OrganizationId))
                    .col(uuid(RescoreRequests::AccountId))
                    .col(timestamp_with_time_zone(RescoreRequests::RequestedAt))
                    .foreign_key(&mut org_fk(
                        "fk_rescore_requests_organization",
                        RescoreRequests::Table,
                        RescoreRequests::OrganizationId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rescore_requests_account")
                            .from(RescoreRequests::Table, RescoreRequests::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_rescore_requests_org_id",
            RescoreRequests::Table,
            cols(&["organization_id", "id"]),
            false,
        )
        .await?;
        index(
            manager,
            "idx_rescore_requests_account",
            RescoreRequests::Table,
            cols(&["account_id"]),
            false,
        )
        .await?;

        // Identity resolution finds accounts by GitHub organization case-insensitively.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_companies_org_github_org \
                 ON companies (organization_id, lower(github_org))",
            )
            .await?;

        // A copy of the current score on the account row, so `accounts(orderBy: SCORE)` pages
        // with the same keyset cursors as every other order.
        manager
            .alter_table(
                Table::alter()
                    .table(Companies::Table)
                    .add_column(integer_null(Companies::Score))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_companies_org_score",
            Companies::Table,
            cols(&["organization_id", "score", "id"]),
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScoringConfigs::Table)
                    .if_not_exists()
                    .col(uuid(ScoringConfigs::Id).primary_key())
                    .col(uuid(ScoringConfigs::OrganizationId))
                    .col(integer(ScoringConfigs::Version))
                    .col(json_binary(ScoringConfigs::Config))
                    .col(uuid_null(ScoringConfigs::CreatedBy))
                    .col(timestamp_with_time_zone(ScoringConfigs::CreatedAt))
                    .foreign_key(&mut org_fk(
                        "fk_scoring_configs_organization",
                        ScoringConfigs::Table,
                        ScoringConfigs::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_scoring_configs_org_version",
            ScoringConfigs::Table,
            cols(&["organization_id", "version"]),
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactMerges::Table)
                    .if_not_exists()
                    .col(uuid(ContactMerges::Id).primary_key())
                    .col(uuid(ContactMerges::OrganizationId))
                    .col(uuid(ContactMerges::PrimaryId))
                    .col(uuid(ContactMerges::MergedId))
                    .col(string_len(ContactMerges::Reason, 16))
                    .col(double_null(ContactMerges::Confidence))
                    .col(json_binary(ContactMerges::Evidence))
                    .col(json_binary(ContactMerges::Undo))
                    .col(uuid_null(ContactMerges::MergedBy))
                    .col(timestamp_with_time_zone(ContactMerges::CreatedAt))
                    .col(timestamp_with_time_zone_null(ContactMerges::UndoneAt))
                    .foreign_key(&mut org_fk(
                        "fk_contact_merges_organization",
                        ContactMerges::Table,
                        ContactMerges::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_contact_merges_org_merged",
            ContactMerges::Table,
            cols(&["organization_id", "merged_id"]),
            false,
        )
        .await?;
        index(
            manager,
            "idx_contact_merges_org_primary",
            ContactMerges::Table,
            cols(&["organization_id", "primary_id"]),
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_companies_org_github_org")
            .await?;
        // SQLite refuses to drop a column an index still names.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_companies_org_score")
                    .table(Companies::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Companies::Table)
                    .drop_column(Companies::Score)
                    .to_owned(),
            )
            .await?;
        for t in [
            ContactMerges::Table.into_iden(),
            ScoringConfigs::Table.into_iden(),
            RescoreRequests::Table.into_iden(),
            AccountScores::Table.into_iden(),
            ContactIdentities::Table.into_iden(),
            Signals::Table.into_iden(),
            SignalSources::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Companies {
    Table,
    Id,
    Score,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum SignalSources {
    Table,
    Id,
    OrganizationId,
    Kind,
    Name,
    Status,
    Config,
    SecretCiphertext,
    SystemKey,
    LastSyncAt,
    ErrorMessage,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Signals {
    Table,
    Id,
    OrganizationId,
    SourceId,
    Type,
    ContactId,
    AccountId,
    AnonymousId,
    Metadata,
    IdempotencyKey,
    DedupeKey,
    Timestamp,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactIdentities {
    Table,
    Id,
    OrganizationId,
    ContactId,
    Kind,
    Value,
    Confidence,
    Verified,
    Provenance,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AccountScores {
    Table,
    AccountId,
    OrganizationId,
    Score,
    Tier,
    Trend,
    Factors,
    SignalCount,
    UserCount,
    LastSignalAt,
    ConfigVersion,
    ComputedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ScoringConfigs {
    Table,
    Id,
    OrganizationId,
    Version,
    Config,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactMerges {
    Table,
    Id,
    OrganizationId,
    PrimaryId,
    MergedId,
    Reason,
    Confidence,
    Evidence,
    Undo,
    MergedBy,
    CreatedAt,
    UndoneAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RescoreRequests {
    Table,
    Id,
    OrganizationId,
    AccountId,
    RequestedAt,
}
