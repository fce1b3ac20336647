//! Live subscriptions over `/api/v1/graphql/ws`: new signals, score and
//! tier changes, and the event log itself with replay from a cursor. Every stream reads the
//! event log through `crate::live`, scoped to the subscriber's organization, so what arrives
//! live is exactly what the log holds, and a client that reconnects with the last `seq` it saw
//! misses nothing.

use async_graphql::{Context, ID, InputObject, Object, Subscription};
use chrono::{DateTime, Utc};
use domain::events::{EventType, Payload, ScoreChanged, SignalCreated};
use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::common::{opt_input_id, state};
use super::crm::loaders::AccountId;
use super::crm::types::{Account, Event, load};
use super::signals::{Signal, Tier, Trend};
use crate::graphql::{GqlResultExt, actor};

/// Which new signals to receive; every part given must match.
#[derive(InputObject, Default)]
pub struct SignalSubscriptionFilter {
    /// Only signals of these types.
    pub r#type: Option<Vec<String>>,
    /// Only signals of this account.
    pub account: Option<ID>,
    /// Only signals of accounts in these tiers (the account's tier when the signal arrived;
    /// accounts never scored match none).
    pub tier: Option<Vec<Tier>>,
}

/// One account's score moved (`score.changed`), or its tier did (`tier.changed`).
pub struct ScoreChange {
    seq: i64,
    payload: ScoreChanged,
}

impl ScoreChange {
    fn from_event(e: domain::events::Event) -> Option<Self> {
        Some(ScoreChange {
            seq: e.seq,
            payload: ScoreChanged::decode(&e)?,
        })
    }

    fn account_uuid(&self) -> Uuid {
        self.payload.account_id
    }

    fn tier_now(&self) -> Option<Tier> {
        Tier::parse(&self.payload.new_tier)
    }
}

#[Object]
impl ScoreChange {
    /// The event's sequence number in the log (resume `events(after:)` from it).
    async fn seq(&self) -> i64 {
        self.seq
    }
    async fn account_id(&self) -> ID {
        ID(self.account_uuid().to_string())
    }
    /// The account now (null if it was deleted since).
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, Some(AccountId(self.account_uuid())))
            .await?
            .map(Account::new))
    }
    /// Null the first time the account is scored.
    async fn old_score(&self) -> Option<i32> {
        self.payload.old_score
    }
    async fn new_score(&self) -> i32 {
        self.payload.new_score
    }
    /// Null the first time the account is scored.
    async fn old_tier(&self) -> Option<Tier> {
        self.payload.old_tier.as_deref().and_then(Tier::parse)
    }
    async fn new_tier(&self) -> Tier {
        self.tier_now().unwrap_or(Tier::Inactive)
    }
    /// `newScore − oldScore` (the new score the first time).
    async fn delta(&self) -> i32 {
        self.payload.delta
    }
    async fn trend(&self) -> Trend {
        match self.payload.trend.as_str() {
            "RISING" => Trend::Rising,
            "FALLING" => Trend::Falling,
            _ => Trend::Stable,
        }
    }
    async fn computed_at(&self) -> Option<DateTime<Utc>> {
        Some(self.payload.computed_at)
    }
}

/// The subscriber's organization's events of `types` from the log, live. The stream ends when
/// the subscriber loses the right to it: every `SUBSCRIPTION_RECHECK_SECONDS` its session (or
/// API key) and role are read again.
pub(crate) async fn follow(
    ctx: &Context<'_>,
    types: Vec<String>,
    after: Option<i64>,
) -> async_graphql::Result<impl Stream<Item = domain::events::Event> + Send + 'static + use<>> {
    let actor = actor(ctx)?.clone();
    let checked = if types.is_empty() {
        vec!["*".to_owned()]
    } else {
        types.clone()
    };
    let allowed = move |a: &domain::Actor| {
        checked
            .iter()
            .try_for_each(|t| domain::events::may_follow(a, t))
    };
    allowed(&actor).gql()?;
    let st = state(ctx)?;
    let sub = st.live.subscribe().await.gql()?;
    let events = st.live.events(sub, actor.organization_id, types, after);
    let (db, every) = (st.db.clone(), st.config.subscription_recheck);
    let revoked = async move {
        loop {
            tokio::time::sleep(every).await;
            match domain::identity::sessions::recheck(&db, &actor).await {
                Ok(now) if allowed(&now).is_ok() => {}
                Ok(_) => return tracing::info!("a subscriber lost the right to its subscription"),
                Err(e) if e.is_internal() => {
                    tracing::warn!(error = %e, "re-checking a subscriber failed; keeping it");
                }
                Err(_) => return tracing::info!("a subscriber's credentials ended"),
            }
        }
    };
    Ok(events.take_until(revoked))
}

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// Each new signal of the organization as it is stored, from whichever path it came
    /// (GraphQL, REST, Segment, connectors), optionally filtered.
    async fn signal_created(
        &self,
        ctx: &Context<'_>,
        filter: Option<SignalSubscriptionFilter>,
    ) -> async_graphql::Result<impl Stream<Item = Signal> + use<>> {
        let f = filter.unwrap_or_default();
        let account = opt_input_id(f.account, "filter.account")?;
        let types = f.r#type.unwrap_or_default();
        let tiers: Vec<&'static str> = f
            .tier
            .unwrap_or_default()
            .into_iter()
            .map(Tier::as_str)
            .collect();
        let events = follow(ctx, vec![EventType::SignalCreated.to_string()], None).await?;
        Ok(events.filter_map(move |e| {
            let tier = SignalCreated::decode(&e).and_then(|p| p.account_tier);
            let signal = domain::signals::from_event(&e).filter(|s| {
                (types.is_empty() || types.contains(&s.signal_type))
                    && account.is_none_or(|a| s.account_id == Some(a))
                    && (tiers.is_empty() || tier.as_deref().is_some_and(|t| tiers.contains(&t)))
            });
            std::future::ready(signal.map(Signal))
        }))
    }

    /// Each change of an account's score (only when the score changes; the first score of an
    /// account counts), for one account or, without `accountId`, for every account.
    async fn account_score_changed(
        &self,
        ctx: &Context<'_>,
        account_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = ScoreChange> + use<>> {
        let account = opt_input_id(account_id, "accountId")?;
        let events = follow(ctx, vec![EventType::ScoreChanged.to_string()], None).await?;
        Ok(events.filter_map(move |e| {
            let change = ScoreChange::from_event(e)
                .filter(|c| account.is_none_or(|a| c.account_uuid() == a));
            std::future::ready(change)
        }))
    }

    /// Each tier change (e.g. WARM → HOT), including an account's first tier (`oldTier` null:
    /// an account first scored HOT is heard), optionally only those into `tier`.
    async fn tier_changed(
        &self,
        ctx: &Context<'_>,
        tier: Option<Tier>,
    ) -> async_graphql::Result<impl Stream<Item = ScoreChange> + use<>> {
        let events = follow(ctx, vec![EventType::TierChanged.to_string()], None).await?;
        Ok(events.filter_map(move |e| {
            let change =
                ScoreChange::from_event(e).filter(|c| tier.is_none_or(|t| c.tier_now() == Some(t)));
            std::future::ready(change)
        }))
    }

    /// The organization's event log (ADMIN or OWNER): with `after` (the `seq` of the last event
    /// seen), first every later event from the log, then new ones as they are committed, in
    /// order, so a client that reconnects with its last `seq` misses nothing; without `after`,
    /// only new events. `types` filters by event type (see `webhookEventTypes`).
    async fn events(
        &self,
        ctx: &Context<'_>,
        types: Option<Vec<String>>,
        after: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = Event> + use<>> {
        let types = types.unwrap_or_default();
        domain::events::validate_types("types", &types).gql()?;
        if let Some(a) = after
            && a < 0
        {
            return Err(domain::Error::invalid("after", "must not be negative")).gql();
        }
        domain::events::may_follow(actor(ctx)?, "*").gql()?;
        Ok(follow(ctx, types, after).await?.map(Event))
    }
}
