//! An opportunity in an organization's PLG pipeline, optionally linked to an account, a contact
//! and an owning user.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub title: String,
    pub amount: Option<f64>,
    pub currency: String,
    pub stage: String,
    pub probability: Option<i32>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub expected_close_date: Option<Date>,
    pub closed_at: Option<DateTimeUtc>,
    pub description: Option<String>,
    pub custom_fields: Json,
    pub tags: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
