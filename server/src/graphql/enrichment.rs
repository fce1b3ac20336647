//! Enrichment over GraphQL: `enrichAccount` / `enrichContact` (on demand, from Clearbit through
//! `connectors::clearbit`) and the `enrichment` record of an account or contact.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::enrichments;

use super::common::{meta, parse_id, state};
use super::crm::loaders::{CrmLoaders, EnrichmentId};
use super::crm::types::{Account, Contact};
use crate::graphql::{GqlResultExt, actor};

/// What one enrichment attempt came to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum EnrichmentOutcome {
    /// Empty fields were filled (see `fieldsFilled`).
    Enriched,
    /// The source knew the company or person, but every field it had was already filled.
    Unchanged,
    /// The source has no data (or there is no domain / email to look up); remembered for 30 days.
    NoData,
    /// The source is still researching it (Clearbit's 202); try again later.
    Pending,
}

impl EnrichmentOutcome {
    fn parse(s: &str) -> Self {
        match s {
            domain::enrichment::outcome::ENRICHED => EnrichmentOutcome::Enriched,
            domain::enrichment::outcome::UNCHANGED => EnrichmentOutcome::Unchanged,
            domain::enrichment::outcome::PENDING => EnrichmentOutcome::Pending,
            _ => EnrichmentOutcome::NoData,
        }
    }
}

/// What enrichment did to an account or contact.
pub struct Enrichment(pub enrichments::Model);

#[Object]
impl Enrichment {
    /// The source of the data filled (`clearbit`); null while nothing was filled.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    /// When enrichment last filled something.
    async fn enriched_at(&self) -> Option<DateTime<Utc>> {
        self.0.enriched_at
    }
    /// Every field enrichment has filled (`industry`, `title`, `customFields.logo`, …).
    async fn fields(&self) -> Vec<String> {
        serde_json::from_value(self.0.fields.clone()).unwrap_or_default()
    }
    /// The last attempt's outcome.
    async fn last_outcome(&self) -> EnrichmentOutcome {
        EnrichmentOutcome::parse(&self.0.outcome)
    }
    async fn last_attempt_at(&self) -> DateTime<Utc> {
        self.0.attempted_at
    }
    /// When the nightly pass may try it again.
    async fn next_attempt_at(&self) -> DateTime<Utc> {
        self.0.next_attempt_at
    }
}

/// The enrichment record of an account or contact, through the request's loader.
pub(crate) async fn enrichment_of(
    ctx: &Context<'_>,
    id: uuid::Uuid,
) -> async_graphql::Result<Option<Enrichment>> {
    Ok(ctx
        .data::<CrmLoaders>()?
        .load_one(EnrichmentId(id))
        .await?
        .map(Enrichment))
}

/// What `enrichAccount` did.
#[derive(SimpleObject)]
pub struct AccountEnrichment {
    /// The account as it is now.
    pub account: Account,
    pub outcome: EnrichmentOutcome,
    /// The fields this call filled (empty unless `ENRICHED`).
    pub fields_filled: Vec<String>,
    /// Whether the source was asked (false: a cached answer from the last 30 days was used).
    pub fetched: bool,
}

/// What `enrichContact` did.
#[derive(SimpleObject)]
pub struct ContactEnrichment {
    /// The contact as it is now.
    pub contact: Contact,
    pub outcome: EnrichmentOutcome,
    /// The fields this call filled (empty unless `ENRICHED`).
    pub fields_filled: Vec<String>,
    /// Whether the source was asked (false: a cached answer from the last 30 days was used).
    pub fetched: bool,
}

#[derive(Default)]
pub struct EnrichmentMutation;

#[Object]
impl EnrichmentMutation {
    /// Fills the account's empty fields (industry, size, description, city, country; logo,
    /// foundedYear, tech, twitterHandle, linkedinHandle in customFields) from Clearbit by its
    /// domain, never overwriting a value (MEMBER+, key scope `accounts:write`). The key is the
    /// organization's CLEARBIT integration's or the server's `CLEARBIT_API_KEY`. Answers are
    /// cached 30 days; Clearbit's rate limit answers `RATE_LIMITED`, a refused key
    /// `UPSTREAM_ERROR` (and the integration goes `ERROR`).
    async fn enrich_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AccountEnrichment> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Account").gql()?;
        let st = state(ctx)?;
        let o = connectors::clearbit::enrich_account(
            &st.connectors,
            &st.db,
            actor,
            &meta(ctx),
            id,
            None,
        )
        .await
        .map_err(domain::Error::from)
        .gql()?;
        Ok(AccountEnrichment {
            account: Account::new(o.object),
            outcome: EnrichmentOutcome::parse(o.outcome),
            fields_filled: o.fields,
            fetched: o.fetched,
        })
    }

    /// Fills the contact's empty fields (first and last name, title, city, country, twitter,
    /// linkedIn; seniority, role and avatar in customFields) from Clearbit by its email (MEMBER+,
    /// key scope `contacts:write`). A title or seniority filled rescores the contact's account.
    async fn enrich_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ContactEnrichment> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        let st = state(ctx)?;
        let o = connectors::clearbit::enrich_contact(
            &st.connectors,
            &st.db,
            actor,
            &meta(ctx),
            id,
            None,
        )
        .await
        .map_err(domain::Error::from)
        .gql()?;
        Ok(ContactEnrichment {
            contact: Contact(o.object),
            outcome: EnrichmentOutcome::parse(o.outcome),
            fields_filled: o.fields,
            fetched: o.fetched,
        })
    }
}
