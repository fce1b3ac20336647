//! Deals over GraphQL: the `deals` connection, `deal(id)`, create / update / delete and
//! `moveDeal`. Resolvers read the actor, call one `domain::crm::deals` function and wrap the result.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object};
use chrono::NaiveDate;

use super::types::{Deal, DealStage};
use super::{CommonFilter, DealOrder, opt};
use crate::graphql::common::meta;
use crate::graphql::common::parse_id;
use crate::graphql::common::{
    ListConnection, connection, maybe_input_id, opt_input_id, page_request,
};
use crate::graphql::common::{db, read_db};
use crate::graphql::{GqlResultExt, actor};

/// Which deals to list.
#[derive(InputObject, Default)]
pub struct DealFilter {
    /// Case-insensitive substring of the title.
    pub query: Option<String>,
    pub stage: Option<DealStage>,
    pub owner_id: Option<ID>,
    pub account_id: Option<ID>,
    pub contact_id: Option<ID>,
    #[graphql(flatten)]
    pub common: CommonFilter,
}

/// A deal's fields. On create `title` is required; on update fields left out stay as they
/// are and `null` clears a field.
#[derive(InputObject)]
pub struct DealInput {
    pub title: Option<String>,
    /// Zero or more.
    pub amount: MaybeUndefined<f64>,
    /// ISO 4217 code (default USD).
    pub currency: Option<String>,
    /// Default ANONYMOUS_USAGE.
    pub stage: Option<DealStage>,
    /// 0 to 100.
    pub probability: MaybeUndefined<i32>,
    pub expected_close_date: MaybeUndefined<NaiveDate>,
    pub description: MaybeUndefined<String>,
    /// A JSON object of your own fields.
    pub custom_fields: Option<Json<serde_json::Value>>,
    pub tags: Option<Vec<String>>,
    pub account_id: MaybeUndefined<ID>,
    pub contact_id: MaybeUndefined<ID>,
    /// A member of the organization (default: the creating user).
    pub owner_id: MaybeUndefined<ID>,
}

impl DealInput {
    fn into_domain(self) -> async_graphql::Result<domain::crm::deals::Input> {
        Ok(domain::crm::deals::Input {
            title: self.title,
            amount: opt(self.amount),
            currency: self.currency,
            stage: self.stage.map(|s| s.as_str().to_owned()),
            probability: opt(self.probability),
            expected_close_date: opt(self.expected_close_date),
            description: opt(self.description),
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
            account_id: maybe_input_id(self.account_id, "accountId")?,
            contact_id: maybe_input_id(self.contact_id, "contactId")?,
            owner_id: maybe_input_id(self.owner_id, "ownerId")?,
        })
    }
}

#[derive(Default)]
pub struct DealQuery;

#[Object]
impl DealQuery {
    /// The organization's deals, newest first. `first`/`last` are at most 100 (default 20);
    /// cursors stay valid while rows are added, so a walk never repeats or skips a row.
    // The arguments are the connection's API: paging, filter and order.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, last, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100.")] last: Option<i32>,
        before: Option<String>,
        filter: Option<DealFilter>,
        order_by: Option<DealOrder>,
    ) -> async_graphql::Result<ListConnection<Deal>> {
        let actor = actor(ctx)?;
        let mut req = page_request(ctx, first, after, last, before)?;
        req.order = order_by.map(Into::into);
        let f = filter.unwrap_or_default();
        let filter = domain::crm::deals::Filter {
            query: f.query,
            stage: f.stage.map(|s| s.as_str().to_owned()),
            owner_id: opt_input_id(f.owner_id, "filter.ownerId")?,
            account_id: opt_input_id(f.account_id, "filter.accountId")?,
            contact_id: opt_input_id(f.contact_id, "filter.contactId")?,
            common: f.common.into(),
        };
        let page = domain::crm::deals::list(&*read_db(ctx).await?, actor, &filter, &req)
            .await
            .gql()?;
        Ok(connection(page, Deal))
    }

    /// One deal; `NOT_FOUND` unless it belongs to the caller's organization.
    async fn deal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Deal> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Deal").gql()?;
        Ok(Deal(
            domain::crm::deals::get(&*db(ctx).await?, actor, id)
                .await
                .gql()?,
        ))
    }
}

#[derive(Default)]
pub struct DealMutation;

#[Object]
impl DealMutation {
    /// Creates a deal (`title` required). Account and contact must be the organization's; the
    /// owner must be a member (default: the caller).
    async fn create_deal(
        &self,
        ctx: &Context<'_>,
        input: DealInput,
    ) -> async_graphql::Result<Deal> {
        let actor = actor(ctx)?;
        let m =
            domain::crm::deals::create(&*db(ctx).await?, actor, &meta(ctx), input.into_domain()?)
                .await
                .gql()?;
        Ok(Deal(m))
    }

    /// Changes a deal; fields left out stay as they are, `null` clears one. A stage change
    /// appends `deal.stage_changed`.
    async fn update_deal(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: DealInput,
    ) -> async_graphql::Result<Deal> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Deal").gql()?;
        let m = domain::crm::deals::update(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            id,
            input.into_domain()?,
        )
        .await
        .gql()?;
        Ok(Deal(m))
    }

    /// Moves a deal to a stage: appends `deal.stage_changed` {from, to}; CLOSED_WON and
    /// CLOSED_LOST set `closedAt`, any other stage clears it.
    async fn move_deal(
        &self,
        ctx: &Context<'_>,
        id: ID,
        stage: DealStage,
    ) -> async_graphql::Result<Deal> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Deal").gql()?;
        let m = domain::crm::deals::move_stage(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            id,
            stage.as_str().to_owned(),
        )
        .await
        .gql()?;
        Ok(Deal(m))
    }

    /// Deletes a deal (its activities stay, unlinked); returns its id.
    async fn delete_deal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Deal").gql()?;
        let id = domain::crm::deals::delete(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ID(id.to_string()))
    }
}
