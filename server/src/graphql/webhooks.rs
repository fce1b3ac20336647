//! Outbound webhooks over GraphQL: endpoints (ADMIN, or an API key with
//! `webhooks:manage`), the delivery log, redelivery, replay and test messages. Sending happens in
//! the background delivery loop (`jobs::webhook_delivery`); these resolvers only record what to
//! send.

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook_attempts, webhook_deliveries, webhook_endpoints};
use uuid::Uuid;

use super::common::db;
use super::common::parse_id;
use super::common::{ListConnection, connection, page_request};
use super::common::{meta, state};
use crate::graphql::{GqlResultExt, actor};

/// An endpoint's health.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookEndpointStatus {
    /// The last attempt succeeded (or none was made yet).
    Healthy,
    /// Attempts have been failing since `failingSince`.
    Failing,
    /// Nothing is sent; see `disabledReason`.
    Disabled,
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookDeliveryStatus {
    /// Not sent yet, or waiting for a retry.
    Pending,
    Succeeded,
    /// Every attempt failed (or the endpoint was disabled).
    Failed,
}

impl WebhookDeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => domain::webhooks::delivery_status::PENDING,
            WebhookDeliveryStatus::Succeeded => domain::webhooks::delivery_status::SUCCEEDED,
            WebhookDeliveryStatus::Failed => domain::webhooks::delivery_status::FAILED,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            domain::webhooks::delivery_status::SUCCEEDED => WebhookDeliveryStatus::Succeeded,
            domain::webhooks::delivery_status::FAILED => WebhookDeliveryStatus::Failed,
            _ => WebhookDeliveryStatus::Pending,
        }
    }
}

/// Which events an endpoint wants beyond its types; every non-empty list must match.
#[derive(SimpleObject, InputObject, Default)]
#[graphql(input_name = "WebhookFilterInput")]
pub struct WebhookFilter {
    /// Only events about accounts in these tiers (HOT, WARM, COLD, INACTIVE).
    #[graphql(default)]
    pub tiers: Vec<String>,
    /// Only signals of these types.
    #[graphql(default)]
    pub signal_types: Vec<String>,
    /// Only events about these accounts.
    #[graphql(default)]
    pub account_ids: Vec<ID>,
}

impl WebhookFilter {
    fn into_domain(self) -> async_graphql::Result<domain::webhooks::Filter> {
        let account_ids = self
            .account_ids
            .iter()
            .map(|id| super::common::input_id(id, "filter.accountIds"))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        Ok(domain::webhooks::Filter {
            tiers: self.tiers,
            signal_types: self.signal_types,
            account_ids,
        })
    }

    fn from_domain(f: domain::webhooks::Filter) -> Self {
        WebhookFilter {
            tiers: f.tiers,
            signal_types: f.signal_types,
            account_ids: f
                .account_ids
                .into_iter()
                .map(|id| ID(id.to_string()))
                .collect(),
        }
    }
}

/// A URL that receives the organization's events, signed the Standard Webhooks way.
pub struct WebhookEndpoint {
    model: webhook_endpoints::Model,
    secret: Option<String>,
}

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    async fn url(&self) -> &str {
        &self.model.url
    }
    async fn description(&self) -> Option<&str> {
        self.model.description.as_deref()
    }
    /// Event types sent here (`*` for all).
    async fn event_types(&self) -> Vec<String> {
        domain::webhooks::event_types_of(&self.model)
    }
    async fn filter(&self) -> Option<WebhookFilter> {
        domain::webhooks::filter_of(&self.model).map(WebhookFilter::from_domain)
    }
    async fn enabled(&self) -> bool {
        self.model.enabled
    }
    /// Deliveries carry `object`: the current fields of the account, contact, deal or signal the
    /// event is about (null when it is gone, or when whoever turned this on may not read that
    /// kind: an API key's scopes are kept), read when each delivery is sent. False: `data` only.
    async fn include_object(&self) -> bool {
        self.model.include_object
    }
    async fn status(&self) -> WebhookEndpointStatus {
        match self.model.status.as_str() {
            domain::webhooks::status::FAILING => WebhookEndpointStatus::Failing,
            domain::webhooks::status::DISABLED => WebhookEndpointStatus::Disabled,
            _ => WebhookEndpointStatus::Healthy,
        }
    }
    /// Why the endpoint was disabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.model.disabled_reason.as_deref()
    }
    /// Since when every attempt has failed.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.model.failing_since
    }
    /// The signing secret (`whsec_…`): only in the answer of `createWebhookEndpoint` and
    /// `rotateWebhookSecret`, null everywhere else.
    async fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }
    /// Until when the previous secret still signs (a second signature) after a rotation.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.model
            .previous_secret_expires_at
            .filter(|t| *t > Utc::now())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

fn endpoint(model: webhook_endpoints::Model) -> WebhookEndpoint {
    WebhookEndpoint {
        model,
        secret: None,
    }
}

/// One HTTP attempt of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    pub at: DateTime<Utc>,
    /// The HTTP status, when one arrived.
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    /// The first kilobyte of the response body.
    pub response_body: Option<String>,
    /// What went wrong without a status (timeout, connection refused, refused target, …).
    pub error: Option<String>,
}

impl From<webhook_attempts::Model> for WebhookAttempt {
    fn from(m: webhook_attempts::Model) -> Self {
        WebhookAttempt {
            at: m.at,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            response_body: m.response_body,
            error: m.error,
        }
    }
}

/// One event sent (or to be sent) to one endpoint. Its id is the `webhook-id` header.
pub struct WebhookDelivery {
    model: webhook_deliveries::Model,
    attempts: Vec<webhook_attempts::Model>,
}

#[Object]
impl WebhookDelivery {
    /// Also the `webhook-id` header, the same on every attempt.
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    async fn endpoint_id(&self) -> ID {
        ID(self.model.endpoint_id.to_string())
    }
    async fn event_type(&self) -> &str {
        &self.model.event_type
    }
    /// The event log's sequence number (null for test messages).
    async fn event_seq(&self) -> Option<i64> {
        self.model.event_seq
    }
    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::parse(&self.model.status)
    }
    /// When the next attempt is due, while PENDING.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.model.status == domain::webhooks::delivery_status::PENDING)
            .then_some(self.model.next_attempt_at)
    }
    /// The JSON body sent: `{"type", "timestamp", "data"}`.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.model.body.clone())
    }
    /// Every attempt, oldest first.
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.attempts.iter().cloned().map(Into::into).collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
}

async fn with_attempts(
    db: &sea_orm::DatabaseConnection,
    models: Vec<webhook_deliveries::Model>,
) -> async_graphql::Result<Vec<WebhookDelivery>> {
    let ids: Vec<Uuid> = models.iter().map(|m| m.id).collect();
    let mut attempts: HashMap<Uuid, Vec<webhook_attempts::Model>> =
        domain::webhooks::attempts_of(db, &ids).await.gql()?;
    Ok(models
        .into_iter()
        .map(|model| WebhookDelivery {
            attempts: attempts.remove(&model.id).unwrap_or_default(),
            model,
        })
        .collect())
}

async fn one_delivery(
    db: &sea_orm::DatabaseConnection,
    model: webhook_deliveries::Model,
) -> async_graphql::Result<WebhookDelivery> {
    with_attempts(db, vec![model])
        .await?
        .pop()
        .ok_or_else(|| async_graphql::Error::new("delivery vanished"))
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to POST events: `https` in production; no loopback, private, link-local or
    /// metadata addresses unless the server allows them.
    pub url: String,
    /// Event log types (see `webhookEventTypes`), or `*` for all.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub filter: Option<WebhookFilter>,
    /// Each delivery also carries the changed object's current fields under `object` (read when
    /// sent, limited to what the creator may read; see `WebhookEndpoint.includeObject`).
    #[graphql(default)]
    pub include_object: bool,
}

/// Fields left out stay as they are; `null` clears `description` or `filter`.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: MaybeUndefined<String>,
    /// `true` re-enables a disabled endpoint (and makes it HEALTHY); `false` disables it.
    pub enabled: Option<bool>,
    pub filter: MaybeUndefined<WebhookFilter>,
    /// Turn the changed object in each delivery on or off (see `WebhookEndpoint.includeObject`).
    pub include_object: Option<bool>,
}

/// What a replay queued.
#[derive(SimpleObject)]
pub struct WebhookReplay {
    pub endpoint_id: ID,
    /// Deliveries created, one per matching event of the range.
    pub count: i32,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The organization's webhook endpoints, oldest first.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let actor = actor(ctx)?;
        Ok(domain::webhooks::list(&*db(ctx).await?, actor)
            .await
            .gql()?
            .into_iter()
            .map(endpoint)
            .collect())
    }

    /// One endpoint; `NOT_FOUND` unless it belongs to the caller's organization.
    async fn webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "WebhookEndpoint").gql()?;
        Ok(endpoint(
            domain::webhooks::get(&*db(ctx).await?, actor, id)
                .await
                .gql()?,
        ))
    }

    /// Event types an endpoint may subscribe to (plus `*`).
    async fn webhook_event_types(&self) -> Vec<&'static str> {
        domain::events::TYPES.to_vec()
    }

    /// The delivery log, newest first, optionally for one endpoint and in one status. `first` /
    /// `last` are at most 100 (default 20).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, last, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: Option<ID>,
        status: Option<WebhookDeliveryStatus>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100.")] last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<ListConnection<WebhookDelivery>> {
        let actor = actor(ctx)?;
        let slot = db(ctx).await?;
        let db = &*slot;
        let req = page_request(ctx, first, after, last, before)?;
        let filter = domain::webhooks::DeliveryFilter {
            endpoint_id: endpoint_id
                .map(|id| parse_id(&id, "WebhookEndpoint"))
                .transpose()
                .gql()?,
            status: status.map(|s| s.as_str().to_owned()),
        };
        let page = domain::webhooks::list_deliveries(db, actor, &filter, &req)
            .await
            .gql()?;
        let items = with_attempts(db, page.items).await?;
        let page = domain::crm::Page {
            items,
            cursors: page.cursors,
            has_next: page.has_next,
            has_previous: page.has_previous,
            total: page.total,
        };
        Ok(connection(page, |d| d))
    }

    /// One delivery with its attempts.
    async fn webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let actor = actor(ctx)?;
        let slot = db(ctx).await?;
        let db = &*slot;
        let id = parse_id(&id, "WebhookDelivery").gql()?;
        let model = domain::webhooks::get_delivery(db, actor, id).await.gql()?;
        one_delivery(db, model).await
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint. The answer carries its `secret`, shown this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let st = state(ctx)?;
        let filter = input.filter.map(WebhookFilter::into_domain).transpose()?;
        let (model, secret) = domain::webhooks::create(
            &st.db,
            actor,
            &meta(ctx),
            st.webhooks.cipher(),
            st.webhooks.settings(),
            domain::webhooks::CreateInput {
                url: input.url,
                event_types: input.event_types,
                description: input.description,
                filter,
                include_object: input.include_object,
            },
        )
        .await
        .gql()?;
        Ok(WebhookEndpoint {
            model,
            secret: Some(secret),
        })
    }

    /// Changes an endpoint's URL, event types, description, filter, or enabled state.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let st = state(ctx)?;
        let id = parse_id(&id, "WebhookEndpoint").gql()?;
        let filter = match input.filter {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(f) => Some(Some(f.into_domain()?)),
        };
        let description = match input.description {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(d) => Some(Some(d)),
        };
        let model = domain::webhooks::update(
            &st.db,
            actor,
            &meta(ctx),
            st.webhooks.settings(),
            id,
            domain::webhooks::UpdateInput {
                url: input.url,
                event_types: input.event_types,
                description,
                enabled: input.enabled,
                filter,
                include_object: input.include_object,
            },
        )
        .await
        .gql()?;
        Ok(endpoint(model))
    }

    /// Deletes an endpoint and its delivery log; returns its id.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "WebhookEndpoint").gql()?;
        let id = domain::webhooks::delete(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ID(id.to_string()))
    }

    /// Gives the endpoint a new secret (in the answer, shown this once). For 24 hours every
    /// request carries signatures with both the old and the new secret.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let st = state(ctx)?;
        let id = parse_id(&id, "WebhookEndpoint").gql()?;
        let (model, secret) = domain::webhooks::rotate_secret(
            &st.db,
            actor,
            &meta(ctx),
            st.webhooks.cipher(),
            st.webhooks.settings(),
            id,
        )
        .await
        .gql()?;
        Ok(WebhookEndpoint {
            model,
            secret: Some(secret),
        })
    }

    /// Sends a delivery again, with the same `webhook-id` and a fresh set of attempts.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let actor = actor(ctx)?;
        let slot = db(ctx).await?;
        let db = &*slot;
        let id = parse_id(&delivery_id, "WebhookDelivery").gql()?;
        let model = domain::webhooks::redeliver(db, actor, id).await.gql()?;
        one_delivery(db, model).await
    }

    /// Re-sends the endpoint's events of a time range (inclusive) from the event log, as new
    /// deliveries in event order.
    async fn replay_webhooks(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<WebhookReplay> {
        let actor = actor(ctx)?;
        let id = parse_id(&endpoint_id, "WebhookEndpoint").gql()?;
        let rows = domain::webhooks::replay(&*db(ctx).await?, actor, &meta(ctx), id, from, to)
            .await
            .gql()?;
        Ok(WebhookReplay {
            endpoint_id,
            count: i32::try_from(rows.len()).unwrap_or(i32::MAX),
        })
    }

    /// Sends a `webhook.test` message to the endpoint.
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let actor = actor(ctx)?;
        let slot = db(ctx).await?;
        let db = &*slot;
        let id = parse_id(&endpoint_id, "WebhookEndpoint").gql()?;
        let model = domain::webhooks::send_test(db, actor, id).await.gql()?;
        one_delivery(db, model).await
    }
}
