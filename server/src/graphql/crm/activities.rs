//! Activities over GraphQL: the `activities` connection, `activity(id)`, create / update /
//! delete. Resolvers read the actor, call one `domain::crm::activities` function and wrap the result.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object};
use chrono::{DateTime, Utc};

use super::types::{Activity, ActivityStatus, ActivityType, Priority};
use super::{ActivityOrder, CommonFilter, opt};
use crate::graphql::common::meta;
use crate::graphql::common::parse_id;
use crate::graphql::common::{
    ListConnection, connection, maybe_input_id, opt_input_id, page_request,
};
use crate::graphql::common::{db, read_db};
use crate::graphql::{GqlResultExt, actor};

/// Which activities to list.
#[derive(InputObject, Default)]
pub struct ActivityFilter {
    /// Case-insensitive substring of the title.
    pub query: Option<String>,
    pub r#type: Option<ActivityType>,
    pub status: Option<ActivityStatus>,
    pub account_id: Option<ID>,
    pub contact_id: Option<ID>,
    pub deal_id: Option<ID>,
    #[graphql(flatten)]
    pub common: CommonFilter,
}

/// An activity's fields. On create `type` and `title` are required; on update fields left out
/// stay as they are and `null` clears a field.
#[derive(InputObject)]
pub struct ActivityInput {
    pub r#type: Option<ActivityType>,
    pub title: Option<String>,
    pub description: MaybeUndefined<String>,
    /// Default PENDING; COMPLETED sets `completedAt`.
    pub status: Option<ActivityStatus>,
    /// Default MEDIUM.
    pub priority: Option<Priority>,
    pub due_date: MaybeUndefined<DateTime<Utc>>,
    pub account_id: MaybeUndefined<ID>,
    pub contact_id: MaybeUndefined<ID>,
    pub deal_id: MaybeUndefined<ID>,
    /// A JSON object of your own fields.
    pub custom_fields: Option<Json<serde_json::Value>>,
}

impl ActivityInput {
    fn into_domain(self) -> async_graphql::Result<domain::crm::activities::Input> {
        Ok(domain::crm::activities::Input {
            kind: self.r#type.map(|t| t.as_str().to_owned()),
            title: self.title,
            description: opt(self.description),
            status: self.status.map(|s| s.as_str().to_owned()),
            priority: self.priority.map(|p| p.as_str().to_owned()),
            due_date: opt(self.due_date),
            account_id: maybe_input_id(self.account_id, "accountId")?,
            contact_id: maybe_input_id(self.contact_id, "contactId")?,
            deal_id: maybe_input_id(self.deal_id, "dealId")?,
            custom_fields: self.custom_fields.map(|j| j.0),
        })
    }
}

#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    /// The organization's activities, newest first. `first`/`last` are at most 100 (default
    /// 20); cursors stay valid while rows are added, so a walk never repeats or skips a row.
    // The arguments are the connection's API: paging, filter and order.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, last, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100.")] last: Option<i32>,
        before: Option<String>,
        filter: Option<ActivityFilter>,
        order_by: Option<ActivityOrder>,
    ) -> async_graphql::Result<ListConnection<Activity>> {
        let actor = actor(ctx)?;
        let mut req = page_request(ctx, first, after, last, before)?;
        req.order = order_by.map(Into::into);
        let f = filter.unwrap_or_default();
        let filter = domain::crm::activities::Filter {
            query: f.query,
            kind: f.r#type.map(|t| t.as_str().to_owned()),
            status: f.status.map(|s| s.as_str().to_owned()),
            account_id: opt_input_id(f.account_id, "filter.accountId")?,
            contact_id: opt_input_id(f.contact_id, "filter.contactId")?,
            deal_id: opt_input_id(f.deal_id, "filter.dealId")?,
            common: f.common.into(),
        };
        let page = domain::crm::activities::list(&*read_db(ctx).await?, actor, &filter, &req)
            .await
            .gql()?;
        Ok(connection(page, Activity))
    }

    /// One activity; `NOT_FOUND` unless it belongs to the caller's organization.
    async fn activity(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Activity> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Activity").gql()?;
        Ok(Activity(
            domain::crm::activities::get(&*db(ctx).await?, actor, id)
                .await
                .gql()?,
        ))
    }
}

#[derive(Default)]
pub struct ActivityMutation;

#[Object]
impl ActivityMutation {
    /// Creates an activity (`type` and `title` required), authored by the caller. Linked
    /// account, contact and deal must be the organization's.
    async fn create_activity(
        &self,
        ctx: &Context<'_>,
        input: ActivityInput,
    ) -> async_graphql::Result<Activity> {
        let actor = actor(ctx)?;
        let m = domain::crm::activities::create(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            input.into_domain()?,
        )
        .await
        .gql()?;
        Ok(Activity(m))
    }

    /// Changes an activity; fields left out stay as they are, `null` clears one.
    async fn update_activity(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ActivityInput,
    ) -> async_graphql::Result<Activity> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Activity").gql()?;
        let m = domain::crm::activities::update(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            id,
            input.into_domain()?,
        )
        .await
        .gql()?;
        Ok(Activity(m))
    }

    /// Deletes an activity; returns its id.
    async fn delete_activity(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Activity").gql()?;
        let id = domain::crm::activities::delete(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ID(id.to_string()))
    }
}
