//! Demo data in one's own organization over GraphQL: `demoData`, `seedDemoData`,
//! `removeDemoData` (ADMIN). The public demo organization is REST: `POST /api/v1/demo/seed`.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::graphql::common::{db, meta, state};
use crate::graphql::notify::outbound;
use crate::graphql::{GqlResultExt, actor};

/// Whether demo data is in the organization and what it holds.
#[derive(SimpleObject)]
pub struct DemoData {
    /// Demo data seeded by `seedDemoData` (or the public demo) is present.
    pub present: bool,
    pub seeded_at: Option<DateTime<Utc>>,
    /// The organization itself is a demo (deleted 24 hours after it was made).
    pub demo_organization: bool,
    pub accounts: i32,
    pub contacts: i32,
    pub signals: i32,
    pub deals: i32,
    pub activities: i32,
    pub alert_rules: i32,
}

fn n(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl From<domain::demo::Status> for DemoData {
    fn from(s: domain::demo::Status) -> Self {
        DemoData {
            present: s.present,
            seeded_at: s.seeded_at,
            demo_organization: s.is_demo_organization,
            accounts: n(s.counts.accounts),
            contacts: n(s.counts.contacts),
            signals: n(s.counts.signals),
            deals: n(s.counts.deals),
            activities: n(s.counts.activities),
            alert_rules: n(s.counts.alert_rules),
        }
    }
}

#[derive(Default)]
pub struct DemoQuery;

#[Object]
impl DemoQuery {
    /// The organization's demo data (ADMIN).
    async fn demo_data(&self, ctx: &Context<'_>) -> async_graphql::Result<DemoData> {
        let s = domain::demo::status(&*db(ctx).await?, actor(ctx)?)
            .await
            .gql()?;
        Ok(s.into())
    }
}

#[derive(Default)]
pub struct DemoMutation;

#[Object]
impl DemoMutation {
    /// Seeds demo data into the organization (ADMIN): 8 accounts tagged `demo`, their people,
    /// about 600 signals over 45 days scored by the organization's model with 45 days of score
    /// history, deals, activities and an in-app alert rule. `seed` makes it reproducible.
    /// `CONFLICT` while demo data is present.
    async fn seed_demo_data(
        &self,
        ctx: &Context<'_>,
        seed: Option<i32>,
    ) -> async_graphql::Result<DemoData> {
        let st = state(ctx)?;
        let seed = seed.map_or_else(rand::random::<u64>, |s| u64::from(s.unsigned_abs()));
        let s = domain::demo::seed_into(
            &*db(ctx).await?,
            actor(ctx)?,
            &meta(ctx),
            &outbound(st),
            seed,
        )
        .await
        .gql()?;
        Ok(s.into())
    }

    /// Removes exactly the demo data `seedDemoData` created (ADMIN); the organization's own
    /// data stays. Returns what is left (`present: false`). `NOT_FOUND` when there is none.
    async fn remove_demo_data(&self, ctx: &Context<'_>) -> async_graphql::Result<DemoData> {
        let db = db(ctx).await?;
        let actor = actor(ctx)?;
        domain::demo::remove(&db, actor, &meta(ctx)).await.gql()?;
        let s = domain::demo::status(&db, actor).await.gql()?;
        Ok(s.into())
    }
}
