//! CRM core: accounts (the `companies` table) and contacts. Every row belongs to one
//! organization (cascade on its deletion); a contact's optional link to an account is set null
//! when the account goes. Email and domain are unique per organization in their normalised
//! (trimmed, lower-cased) form, decided by these unique indexes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Companies::Table)
                    .if_not_exists()
                    .col(uuid(Companies::Id).primary_key())
                    .col(uuid(Companies::OrganizationId))
                    .col(string_len(Companies::Name, 200))
                    .col(string_len_null(Companies::Domain, 253))
                    .col(string_len_null(Companies::DomainNormalized, 253))
                    .col(string_len_null(Companies::Industry, 100))
                    .col(string_len_null(Companies::Size, 20))
                    .col(string_len_null(Companies::Website, 500))
                    .col(string_len_null(Companies::GithubOrg, 100))
                    .col(string_len_null(Companies::City, 100))
                    .col(string_len_null(Companies::Country, 100))
                    .col(text_null(Companies::Description))
                    .col(json_binary(Companies::CustomFields))
                    .col(json_binary(Companies::Tags))
                    .col(timestamp_with_time_zone(Companies::CreatedAt))
                    .col(timestamp_with_time_zone(Companies::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_companies_organization")
                            .from(Companies::Table, Companies::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in unique indexes on both backends, so accounts without a domain
        // never collide.
        manager
            .create_index(
                Index::create()
                    .name("ux_companies_org_domain")
                    .table(Companies::Table)
                    .col(Companies::OrganizationId)
                    .col(Companies::DomainNormalized)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_companies_org_id")
                    .table(Companies::Table)
                    .col(Companies::OrganizationId)
                    .col(Companies::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .if_not_exists()
                    .col(uuid(Contacts::Id).primary_key())
                    .col(uuid(Contacts::OrganizationId))
                    .col(uuid_null(Contacts::AccountId))
                    .col(string_len_null(Contacts::FirstName, 100))
                    .col(string_len_null(Contacts::LastName, 100))
                    .col(string_len_null(Contacts::Email, 254))
                    .col(string_len_null(Contacts::EmailNormalized, 254))
                    .col(string_len_null(Contacts::Title, 200))
                    .col(string_len_null(Contacts::Phone, 50))
                    .col(string_len_null(Contacts::Github, 100))
                    .col(string_len_null(Contacts::Twitter, 100))
                    .col(string_len_null(Contacts::LinkedIn, 500))
                    .col(string_len_null(Contacts::City, 100))
                    .col(string_len_null(Contacts::Country, 100))
                    .col(text_null(Contacts::Notes))
                    .col(json_binary(Contacts::CustomFields))
                    .col(json_binary(Contacts::Tags))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .col(timestamp_with_time_zone(Contacts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contacts_organization")
                            .from(Contacts::Table, Contacts::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contacts_account")
                            .from(Contacts::Table, Contacts::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_contacts_org_email")
                    .table(Contacts::Table)
                    .col(Contacts::OrganizationId)
                    .col(Contacts::EmailNormalized)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contacts_org_id")
                    .table(Contacts::Table)
                    .col(Contacts::OrganizationId)
                    .col(Contacts::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contacts_account")
                    .table(Contacts::Table)
                    .col(Contacts::AccountId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Contacts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Companies::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Companies {
    Table,
    Id,
    OrganizationId,
    Name,
    Domain,
    DomainNormalized,
    Industry,
    Size,
    Website,
    GithubOrg,
    City,
    Country,
    Description,
    CustomFields,
    Tags,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    OrganizationId,
    AccountId,
    FirstName,
    LastName,
    Email,
    EmailNormalized,
    Title,
    Phone,
    Github,
    Twitter,
    LinkedIn,
    City,
    Country,
    Notes,
    CustomFields,
    Tags,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
