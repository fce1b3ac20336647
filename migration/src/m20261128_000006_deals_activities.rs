//! CRM core, part two: deals (the PLG pipeline) and activities (tasks, calls,
//! meetings, emails, notes). Every row belongs to one organization (cascade on its deletion);
//! optional links to accounts, contacts, deals and users are set null when the target goes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn link(
    name: &str,
    from: Deals,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(Deals::Table, from)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::SetNull)
        .to_owned()
}

fn activity_link(
    name: &str,
    from: Activities,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(Activities::Table, from)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::SetNull)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<Alias>,
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table).if_not_exists();
    for c in cols {
        idx.col(c);
    }
    manager.create_index(idx.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deals::Table)
                    .if_not_exists()
                    .col(uuid(Deals::Id).primary_key())
                    .col(uuid(Deals::OrganizationId))
                    .col(string_len(Deals::Title, 200))
                    .col(double_null(Deals::Amount))
                    .col(string_len(Deals::Currency, 3))
                    .col(string_len(Deals::Stage, 30))
                    .col(integer_null(Deals::Probability))
                    .col(uuid_null(Deals::AccountId))
                    .col(uuid_null(Deals::ContactId))
                    .col(uuid_null(Deals::OwnerId))
                    .col(date_null(Deals::ExpectedCloseDate))
                    .col(timestamp_with_time_zone_null(Deals::ClosedAt))
                    .col(text_null(Deals::Description))
                    .col(json_binary(Deals::CustomFields))
                    .col(json_binary(Deals::Tags))
                    .col(timestamp_with_time_zone(Deals::CreatedAt))
                    .col(timestamp_with_time_zone(Deals::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deals_organization")
                            .from(Deals::Table, Deals::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut link(
                        "fk_deals_account",
                        Deals::AccountId,
                        Companies::Table,
                        Companies::Id,
                    ))
                    .foreign_key(&mut link(
                        "fk_deals_contact",
                        Deals::ContactId,
                        Contacts::Table,
                        Contacts::Id,
                    ))
                    .foreign_key(&mut link(
                        "fk_deals_owner",
                        Deals::OwnerId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        let a = |s: &str| Alias::new(s);
        index(
            manager,
            "idx_deals_org_id",
            Deals::Table,
            vec![a("organization_id"), a("id")],
        )
        .await?;
        index(
            manager,
            "idx_deals_account",
            Deals::Table,
            vec![a("account_id")],
        )
        .await?;
        index(
            manager,
            "idx_deals_contact",
            Deals::Table,
            vec![a("contact_id")],
        )
        .await?;
        index(
            manager,
            "idx_deals_owner",
            Deals::Table,
            vec![a("owner_id")],
        )
        .await?;
        index(
            manager,
            "idx_deals_org_stage",
            Deals::Table,
            vec![a("organization_id"), a("stage")],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .if_not_exists()
                    .col(uuid(Activities::Id).primary_key())
                    .col(uuid(Activities::OrganizationId))
                    .col(string_len(Activities::Type, 20))
                    .col(string_len(Activities::Title, 200))
                    .col(text_null(Activities::Description))
                    .col(string_len(Activities::Status, 20))
                    .col(string_len(Activities::Priority, 20))
                    .col(timestamp_with_time_zone_null(Activities::DueDate))
                    .col(timestamp_with_time_zone_null(Activities::CompletedAt))
                    .col(uuid_null(Activities::AuthorId))
                    .col(uuid_null(Activities::AccountId))
                    .col(uuid_null(Activities::ContactId))
                    .col(uuid_null(Activities::DealId))
                    .col(json_binary(Activities::CustomFields))
                    .col(timestamp_with_time_zone(Activities::CreatedAt))
                    .col(timestamp_with_time_zone(Activities::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activities_organization")
                            .from(Activities::Table, Activities::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut activity_link(
                        "fk_activities_author",
                        Activities::AuthorId,
                        Users::Table,
                        Users::Id,
                    ))
                    .foreign_key(&mut activity_link(
                        "fk_activities_account",
                        Activities::AccountId,
                        Companies::Table,
                        Companies::Id,
                    ))
                    .foreign_key(&mut activity_link(
                        "fk_activities_contact",
                        Activities::ContactId,
                        Contacts::Table,
                        Contacts::Id,
                    ))
                    .foreign_key(&mut activity_link(
                        "fk_activities_deal",
                        Activities::DealId,
                        Deals::Table,
                        Deals::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_activities_org_id",
            Activities::Table,
            vec![a("organization_id"), a("id")],
        )
        .await?;
        index(
            manager,
            "idx_activities_account",
            Activities::Table,
            vec![a("account_id")],
        )
        .await?;
        index(
            manager,
            "idx_activities_contact",
            Activities::Table,
            vec![a("contact_id")],
        )
        .await?;
        index(
            manager,
            "idx_activities_deal",
            Activities::Table,
            vec![a("deal_id")],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Activities::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Deals::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Deals {
    Table,
    Id,
    OrganizationId,
    Title,
    Amount,
    Currency,
    Stage,
    Probability,
    AccountId,
    ContactId,
    OwnerId,
    ExpectedCloseDate,
    ClosedAt,
    Description,
    CustomFields,
    Tags,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Activities {
    Table,
    Id,
    OrganizationId,
    Type,
    Title,
    Description,
    Status,
    Priority,
    DueDate,
    CompletedAt,
    AuthorId,
    AccountId,
    ContactId,
    DealId,
    CustomFields,
    CreatedAt,
    UpdatedAt,
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
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
