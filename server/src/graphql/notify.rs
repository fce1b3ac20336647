//! Notifications over GraphQL: a member's in-app notifications (list, mark read, and
//! `notificationCreated` live), their preferences, an alert rule's channels (email, Slack) and
//! the record of every email and Slack post sent (`alertDeliveries`).

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use domain::events::EventType;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::graphql::common::{db, input_id, opt_input_id, state};
use crate::graphql::crm::loaders::AccountId;
use crate::graphql::crm::types::{Account, load};
use crate::graphql::{GqlResultExt, actor};
use crate::state::AppState;

/// Where alerts go besides each recipient's in-app notification.
#[derive(InputObject, Default)]
pub struct AlertChannelsInput {
    /// A notification in the app for each recipient (default true).
    pub in_app: Option<bool>,
    /// An email to each recipient who has not turned alert emails off (default false).
    pub email: Option<bool>,
    /// A Slack incoming-webhook URL to post each alert to (checked like a webhook endpoint's
    /// URL; stored encrypted and never shown again). Absent: unchanged; empty: removed.
    pub slack_webhook_url: Option<String>,
}

pub struct ChannelsInput {
    pub channels: domain::alerts::Channels,
    pub slack: domain::alerts::SlackChange,
}

impl AlertChannelsInput {
    pub fn into_domain(self) -> ChannelsInput {
        use domain::alerts::SlackChange;
        ChannelsInput {
            channels: domain::alerts::Channels {
                in_app: self.in_app.unwrap_or(true),
                email: self.email.unwrap_or(false),
            },
            slack: match self.slack_webhook_url {
                None => SlackChange::Keep,
                Some(s) if s.trim().is_empty() => SlackChange::Remove,
                Some(s) => SlackChange::Set(s),
            },
        }
    }
}

/// A rule's channels as stored.
#[derive(SimpleObject)]
pub struct AlertChannels {
    pub in_app: bool,
    pub email: bool,
    /// Whether a Slack incoming webhook is set (its URL is never shown).
    pub slack: bool,
}

impl AlertChannels {
    pub fn of(rule: &domain::alerts::Rule) -> Self {
        AlertChannels {
            in_app: rule.channels.in_app,
            email: rule.channels.email,
            slack: rule.has_slack(),
        }
    }
}

/// The target rules and cipher rule changes check and seal Slack URLs with.
pub fn outbound(st: &AppState) -> domain::alerts::Outbound<'_> {
    domain::alerts::Outbound {
        targets: st.webhooks.settings(),
        cipher: st.webhooks.cipher(),
    }
}

/// Something a member was told in the app.
pub struct Notification(entity::notifications::Model);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// ALERT: an alert rule fired; USAGE_WARNING: 80 % or 100 % of a plan limit was reached.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The rule, account, event and trigger details behind it.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.data.clone())
    }
    /// The account it is about (null once deleted).
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, self.0.account_id.map(AccountId))
            .await?
            .map(Account::new))
    }
    async fn rule_id(&self) -> Option<ID> {
        self.0.rule_id.map(|r| ID(r.to_string()))
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A page of the member's notifications, newest first.
#[derive(SimpleObject)]
pub struct NotificationPage {
    pub nodes: Vec<Notification>,
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<ID>,
    /// All the member's unread notifications.
    pub unread_count: u64,
}

/// How often a member gets the weekly digest.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DigestFrequency {
    Weekly,
    Never,
}

impl From<DigestFrequency> for domain::alerts::DigestFrequency {
    fn from(d: DigestFrequency) -> Self {
        match d {
            DigestFrequency::Weekly => domain::alerts::DigestFrequency::Weekly,
            DigestFrequency::Never => domain::alerts::DigestFrequency::Never,
        }
    }
}

impl From<domain::alerts::DigestFrequency> for DigestFrequency {
    fn from(d: domain::alerts::DigestFrequency) -> Self {
        match d {
            domain::alerts::DigestFrequency::Weekly => DigestFrequency::Weekly,
            domain::alerts::DigestFrequency::Never => DigestFrequency::Never,
        }
    }
}

/// A member's notification choices in this organization.
#[derive(SimpleObject)]
pub struct NotificationPreferences {
    /// Alerts appear in the app.
    pub in_app: bool,
    /// Alerts of rules that email come by email.
    pub alert_emails: bool,
    pub digest: DigestFrequency,
}

impl From<domain::alerts::Preferences> for NotificationPreferences {
    fn from(p: domain::alerts::Preferences) -> Self {
        NotificationPreferences {
            in_app: p.in_app,
            alert_emails: p.alert_emails,
            digest: p.digest.into(),
        }
    }
}

/// Changes to one's preferences; what is absent stays.
#[derive(InputObject)]
pub struct NotificationPreferencesInput {
    pub in_app: Option<bool>,
    pub alert_emails: Option<bool>,
    pub digest: Option<DigestFrequency>,
}

/// One email or Slack post of an alert or a digest, with its outcome.
pub struct AlertDelivery(entity::alert_deliveries::Model);

#[Object]
impl AlertDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// ALERT or DIGEST.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// EMAIL or SLACK.
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    async fn rule_id(&self) -> Option<ID> {
        self.0.rule_id.map(|r| ID(r.to_string()))
    }
    async fn account_id(&self) -> Option<ID> {
        self.0.account_id.map(|r| ID(r.to_string()))
    }
    /// The member an email went to.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|r| ID(r.to_string()))
    }
    /// The address, or "Slack incoming webhook".
    async fn target(&self) -> &str {
        &self.0.target
    }
    /// PENDING (not sent yet, or retrying), SENT or FAILED (attempts used up).
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
}

#[derive(Default)]
pub struct NotifyQuery;

#[Object]
impl NotifyQuery {
    /// The signed-in member's notifications, newest first (only unread ones with `unread`).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<ID>,
        #[graphql(desc = "Only unread ones (default false).")] unread: Option<bool>,
    ) -> async_graphql::Result<NotificationPage> {
        let (first, unread) = (first.unwrap_or(20), unread.unwrap_or(false));
        let actor = actor(ctx)?;
        let after = after.as_ref().map(|a| input_id(a, "after")).transpose()?;
        let db = db(ctx).await?;
        let (rows, more) = domain::alerts::list(
            &*db,
            actor,
            u64::try_from(first).unwrap_or(0),
            after,
            unread,
        )
        .await
        .gql()?;
        let unread_count = domain::alerts::unread_count(&*db, actor).await.gql()?;
        Ok(NotificationPage {
            end_cursor: rows.last().map(|r| ID(r.id.to_string())),
            has_next_page: more,
            nodes: rows.into_iter().map(Notification).collect(),
            unread_count,
        })
    }

    /// The signed-in member's notification preferences in this organization.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<NotificationPreferences> {
        let p = domain::alerts::preferences(&*db(ctx).await?, actor(ctx)?)
            .await
            .gql()?;
        Ok(p.into())
    }

    /// The latest alert and digest emails and Slack posts with their outcome, newest first,
    /// optionally of one rule (ADMIN).
    async fn alert_deliveries(
        &self,
        ctx: &Context<'_>,
        rule_id: Option<ID>,
        #[graphql(desc = "1 to 100 (default 50).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<AlertDelivery>> {
        let rule = opt_input_id(rule_id, "ruleId")?;
        let first = u64::try_from(first.unwrap_or(50)).unwrap_or(0);
        let rows = domain::alerts::list_deliveries(&*db(ctx).await?, actor(ctx)?, rule, first)
            .await
            .gql()?;
        Ok(rows.into_iter().map(AlertDelivery).collect())
    }
}

#[derive(Default)]
pub struct NotifyMutation;

#[Object]
impl NotifyMutation {
    /// Marks the signed-in member's notifications read: those of `ids`, or all of them.
    /// Returns how many changed.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<u64> {
        let ids = ids
            .map(|ids| {
                ids.iter()
                    .map(|id| input_id(id, "ids"))
                    .collect::<async_graphql::Result<Vec<Uuid>>>()
            })
            .transpose()?;
        domain::alerts::mark_read(&*db(ctx).await?, actor(ctx)?, ids)
            .await
            .gql()
    }

    /// Changes the signed-in member's notification preferences.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: NotificationPreferencesInput,
    ) -> async_graphql::Result<NotificationPreferences> {
        let p = domain::alerts::update_preferences(
            &*db(ctx).await?,
            actor(ctx)?,
            input.in_app,
            input.alert_emails,
            input.digest.map(Into::into),
        )
        .await
        .gql()?;
        Ok(p.into())
    }
}

#[derive(Default)]
pub struct NotifySubscription;

#[Subscription]
impl NotifySubscription {
    /// Each new in-app notification of the signed-in member, as it is created (members only).
    async fn notification_created(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification> + use<>> {
        let actor = actor(ctx)?;
        let user = actor.require_user().gql()?;
        let org = actor.organization_id;
        let db = state(ctx)?.db.clone();
        // Notifications are written with the `alert.triggered` (or
        // `organization.usage_warning`) events of the same transaction: each such event says there may be new ones, read after the last sent.
        let since = domain::alerts::latest_notification(&db, org, user)
            .await
            .gql()?;
        let events = crate::graphql::live::follow(
            ctx,
            vec![
                EventType::AlertTriggered.to_string(),
                EventType::UsageWarning.to_string(),
            ],
            None,
        )
        .await?;
        let cursor = std::sync::Arc::new(tokio::sync::Mutex::new(since));
        Ok(events
            .then(move |_| {
                let (db, cursor) = (db.clone(), cursor.clone());
                async move {
                    let mut last = cursor.lock().await;
                    match domain::alerts::notifications_after(&db, org, user, *last).await {
                        Ok(rows) => {
                            if let Some(r) = rows.last() {
                                *last = Some(r.id);
                            }
                            rows
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "reading new notifications failed");
                            Vec::new()
                        }
                    }
                }
            })
            .flat_map(|rows| futures::stream::iter(rows.into_iter().map(Notification))))
    }
}

/// The weekly digest of the last seven days, as the Monday email would carry it.
#[derive(SimpleObject)]
pub struct DigestPreview {
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    /// Nothing new happened: no email would be sent.
    pub empty: bool,
    pub subject: String,
    /// The email's text.
    pub text: String,
    /// Its content: tier moves, score movers, new HOT accounts, new contacts, signals by source
    /// against the week before, anomalies.
    pub content: Json<serde_json::Value>,
}

#[derive(Default)]
pub struct DigestQuery;

#[Object]
impl DigestQuery {
    /// What this organization's weekly digest says now (the last seven days).
    async fn preview_digest(&self, ctx: &Context<'_>) -> async_graphql::Result<DigestPreview> {
        let d = domain::digest::preview(&*db(ctx).await?, actor(ctx)?)
            .await
            .gql()?;
        let frontend = &state(ctx)?.config.frontend_url;
        Ok(DigestPreview {
            week_start: d.week_start,
            week_end: d.week_end,
            empty: d.is_empty(),
            subject: d.subject(),
            text: jobs::notify::digest::digest_text(&d, frontend),
            content: Json(serde_json::to_value(&d).unwrap_or_default()),
        })
    }
}
