//! One index per nested list (`Account.contacts`, `Account.deals`, `Account.activities`,
//! `Contact.deals`), on `(parent, id)`: each parent's newest rows are one index probe that stops
//! after the rows the list shows (`domain::crm::children`), however many rows the parent has.
//! The indexes on the parent alone that three of them supersede are dropped.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, parent column, the index on the parent alone it supersedes).
const INDEXES: [(&str, &str, &str, Option<&str>); 4] = [
    (
        "idx_contacts_account_newest",
        "contacts",
        "account_id",
        Some("idx_contacts_account"),
    ),
    (
        "idx_deals_account_newest",
        "deals",
        "account_id",
        Some("idx_deals_account"),
    ),
    (
        "idx_deals_contact_newest",
        "deals",
        "contact_id",
        Some("idx_deals_contact"),
    ),
    (
        "idx_activities_account_newest",
        "activities",
        "account_id",
        None,
    ),
];

/// Runs each statement in order.
async fn run(manager: &SchemaManager<'_>, statements: Vec<String>) -> Result<(), DbErr> {
    for sql in statements {
        manager.get_connection().execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut statements = Vec::new();
        for (name, table, parent, old) in INDEXES {
            statements.push(format!(
                "CREATE INDEX IF NOT EXISTS {name} ON {table} ({parent}, id)"
            ));
            if let Some(old) = old {
                statements.push(format!("DROP INDEX IF EXISTS {old}"));
            }
        }
        run(manager, statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut statements = Vec::new();
        for (name, table, parent, old) in INDEXES {
            if let Some(old) = old {
                statements.push(format!(
                    "CREATE INDEX IF NOT EXISTS {old} ON {table} ({parent})"
                ));
            }
            statements.push(format!("DROP INDEX IF EXISTS {name}"));
        }
        run(manager, statements).await
    }
}
