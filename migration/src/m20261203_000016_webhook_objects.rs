//! Webhook endpoints may ask for the changed object in each delivery (`include_object`), read when
//! the delivery is sent and limited to what the endpoint's creator may read (`object_scopes`: the
//! read scopes of the API key that turned the option on; null when a person did).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            boolean(WebhookEndpoints::IncludeObject)
                .default(false)
                .to_owned(),
            json_binary_null(WebhookEndpoints::ObjectScopes).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookEndpoints::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            WebhookEndpoints::ObjectScopes,
            WebhookEndpoints::IncludeObject,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookEndpoints::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    IncludeObject,
    ObjectScopes,
}
