//! AI account briefs over GraphQL: `Account.brief` (the stored brief, never a model call),
//! `generateAccountBrief` (cached when the account's inputs have not changed, else written by
//! the model through `connectors::anthropic`, or by the deterministic rules without a key),
//! `aiUsage` (this month's briefs and tokens against the budget), and the organization's own
//! Anthropic key (`aiSettings`, `setAiApiKey`, `clearAiApiKey`).
//!
//! Rights: reading a brief needs `accounts:read`, `contacts:read` and `signals:read` (it
//! summarises all three); generating one a MEMBER, or a key that also has `accounts:write`;
//! `aiUsage` and `aiSettings` `organization:read`; setting or clearing the key OWNER or ADMIN
//! (`admin` for a key).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::account_briefs;
use uuid::Uuid;

use crate::graphql::common::{db, meta, parse_id, state};
use crate::graphql::crm::loaders::{CrmLoader, CrmLoaders};
use crate::graphql::{GqlResultExt, actor, gql_error};

/// Who wrote a brief.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BriefSource {
    /// The model (every statement's citations checked).
    Model,
    /// The deterministic rules, from the same facts (see `fallbackReason`).
    Fallback,
}

/// Why a brief is the deterministic one.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BriefFallbackReason {
    /// No Anthropic key: neither the organization's nor the server's.
    NoKey,
    /// The model's answer was not the JSON asked for.
    Unreadable,
    /// None of the model's statements had citations that checked out.
    NothingChecked,
}

/// The part of a brief a statement belongs to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BriefSection {
    /// What is happening: recent signal patterns.
    Summary,
    /// Firmographics.
    Company,
    /// Product usage seen in signals, the score.
    Usage,
    /// Key people, their roles and activity.
    People,
    /// How to approach the account.
    Approach,
}

impl BriefSection {
    fn parse(s: &str) -> Self {
        match s {
            "company" => BriefSection::Company,
            "usage" => BriefSection::Usage,
            "people" => BriefSection::People,
            "approach" => BriefSection::Approach,
            _ => BriefSection::Summary,
        }
    }
}

/// How urgent a next-best action is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ActionPriority {
    High,
    Medium,
    Low,
}

/// One statement of a brief, with what it rests on.
#[derive(SimpleObject)]
pub struct BriefStatement {
    pub section: BriefSection,
    pub text: String,
    /// The ids it cites, every one checked against the account's data: signal ids (a `Signal`'s
    /// `id`) and fact ids (`fact:score`, `fact:trend`, `fact:factor:<name>`,
    /// `fact:contact:<contact id>`, `fact:deal:<deal id>`, `fact:name`, `fact:domain`, …).
    pub cites: Vec<String>,
}

/// A suggested next step.
#[derive(SimpleObject)]
pub struct NextBestAction {
    /// A short imperative.
    pub action: String,
    pub reasoning: String,
    pub priority: ActionPriority,
    /// The person of the account it is about, if any.
    pub contact_id: Option<ID>,
    /// As `BriefStatement.cites`.
    pub cites: Vec<String>,
}

/// An account's brief.
pub struct AccountBrief(pub account_briefs::Model);

#[Object]
impl AccountBrief {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.to_string())
    }
    async fn source(&self) -> BriefSource {
        if self.0.source == domain::briefs::source::MODEL {
            BriefSource::Model
        } else {
            BriefSource::Fallback
        }
    }
    /// Set when `source` is FALLBACK.
    async fn fallback_reason(&self) -> Option<BriefFallbackReason> {
        use domain::briefs::fallback_reason as r;
        self.0.fallback_reason.as_deref().map(|s| match s {
            r::UNREADABLE => BriefFallbackReason::Unreadable,
            r::NOTHING_CHECKED => BriefFallbackReason::NothingChecked,
            _ => BriefFallbackReason::NoKey,
        })
    }
    /// The model asked (null when no model was).
    async fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }
    /// The statements, each with checked citations, in the order written.
    async fn statements(&self) -> Vec<BriefStatement> {
        let rows: Vec<domain::briefs::Statement> =
            serde_json::from_value(self.0.statements.clone()).unwrap_or_default();
        rows.into_iter()
            .map(|s| BriefStatement {
                section: BriefSection::parse(&s.section),
                text: s.text,
                cites: s.cites,
            })
            .collect()
    }
    /// Suggested next steps (3 to 5 from a model; fewer from the rules), citations checked.
    async fn next_best_actions(&self) -> Vec<NextBestAction> {
        let rows: Vec<domain::briefs::Action> =
            serde_json::from_value(self.0.actions.clone()).unwrap_or_default();
        rows.into_iter()
            .map(|a| NextBestAction {
                action: a.action,
                reasoning: a.reasoning,
                priority: match a.priority.as_str() {
                    "high" => ActionPriority::High,
                    "low" => ActionPriority::Low,
                    _ => ActionPriority::Medium,
                },
                contact_id: a.contact_id.map(|c| ID(c.to_string())),
                cites: a.cites,
            })
            .collect()
    }
    /// Statements and actions of the model's answer dropped because a citation (or their shape)
    /// did not check out.
    async fn dropped(&self) -> i32 {
        self.0.dropped
    }
    async fn input_tokens(&self) -> i64 {
        self.0.input_tokens
    }
    async fn output_tokens(&self) -> i64 {
        self.0.output_tokens
    }
    async fn generated_at(&self) -> DateTime<Utc> {
        self.0.generated_at
    }
    /// Whether the account's data changed since (a new `generateAccountBrief` would write a new
    /// brief). Reads the account's inputs: ask for it on one account at a time.
    #[graphql(complexity = 50)]
    async fn stale(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let st = state(ctx)?;
        let actor = actor(ctx)?;
        let brief = &self.0;
        let c = domain::briefs::load_context(&*db(ctx).await?, actor, brief.account_id, Utc::now())
            .await
            .gql()?;
        let key = connectors::anthropic::key_for(&st.connectors, &st.db, actor.organization_id)
            .await
            .gql()?;
        let writer = match key {
            Some(_) => format!("model:{}", st.connectors.settings().anthropic_model),
            None => "fallback".to_owned(),
        };
        Ok(c.hash(&writer) != brief.input_hash)
    }
}

/// An account's stored brief, as a DataLoader key: a page's briefs load in one statement.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct BriefOf(pub Uuid);

impl Loader<BriefOf> for CrmLoader {
    type Value = account_briefs::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[BriefOf]) -> Result<HashMap<BriefOf, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = domain::briefs::latest(&*self.db().await?, self.actor()?, &ids)
            .await
            .map_err(gql_error)?;
        Ok(rows.into_iter().map(|(k, v)| (BriefOf(k), v)).collect())
    }
}

/// The `Account.brief` field.
pub(crate) async fn brief_of(
    ctx: &Context<'_>,
    account: Uuid,
) -> async_graphql::Result<Option<AccountBrief>> {
    domain::briefs::require_read(actor(ctx)?).gql()?;
    Ok(ctx
        .data::<CrmLoaders>()?
        .load_one(BriefOf(account))
        .await?
        .map(AccountBrief))
}

/// What `generateAccountBrief` did.
#[derive(SimpleObject)]
pub struct GeneratedBrief {
    pub brief: AccountBrief,
    /// True when the stored brief still matched the account's data: nothing was asked and
    /// nothing counted against the budget.
    pub cached: bool,
}

/// The organization's AI use this month.
#[derive(SimpleObject)]
pub struct AiUsage {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Briefs a model wrote (cached and deterministic ones are not counted).
    pub briefs: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Briefs allowed per month (`aiBriefsPerMonth`).
    pub limit: i64,
    /// The plan the limit comes from.
    pub plan: String,
}

/// Where briefs get their key.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AiKeySource {
    /// The organization's own key.
    Organization,
    /// The server's `ANTHROPIC_API_KEY`.
    Server,
    /// None: briefs are the deterministic ones.
    None,
}

/// The organization's AI configuration (never the key itself).
#[derive(SimpleObject)]
pub struct AiSettings {
    /// Whether the organization has its own key.
    pub configured: bool,
    /// Its first characters, to recognise it.
    pub key_prefix: Option<String>,
    pub key_updated_at: Option<DateTime<Utc>>,
    /// The key briefs use now.
    pub key_source: AiKeySource,
    pub model: String,
}

fn settings_of(
    ctx: &Context<'_>,
    info: domain::briefs::KeyInfo,
) -> async_graphql::Result<AiSettings> {
    let st = state(ctx)?;
    let s = st.connectors.settings();
    Ok(AiSettings {
        configured: info.prefix.is_some(),
        key_source: if info.prefix.is_some() {
            AiKeySource::Organization
        } else if s.anthropic_api_key.is_some() {
            AiKeySource::Server
        } else {
            AiKeySource::None
        },
        key_prefix: info.prefix,
        key_updated_at: info.updated_at,
        model: s.anthropic_model.clone(),
    })
}

#[derive(Default)]
pub struct BriefQuery;

#[Object]
impl BriefQuery {
    /// This month's AI use of the organization against its budget (`organization:read`).
    async fn ai_usage(&self, ctx: &Context<'_>) -> async_graphql::Result<AiUsage> {
        let st = state(ctx)?;
        let month = domain::briefs::month_of(Utc::now());
        let u = domain::briefs::usage(&*db(ctx).await?, actor(ctx)?, &month)
            .await
            .gql()?;
        Ok(AiUsage {
            month: u.month,
            briefs: u.briefs,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            limit: i64::try_from(st.connectors.settings().ai_briefs_per_month).unwrap_or(i64::MAX),
            plan: domain::briefs::DEFAULT_PLAN.to_owned(),
        })
    }

    /// The organization's AI configuration (`organization:read`).
    async fn ai_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<AiSettings> {
        let info = domain::briefs::key_info(&*db(ctx).await?, actor(ctx)?)
            .await
            .gql()?;
        settings_of(ctx, info)
    }
}

#[derive(Default)]
pub struct BriefMutation;

#[Object]
impl BriefMutation {
    /// The account's brief with next-best actions. When the stored brief was built from the
    /// account's current data it is returned as is (`cached`, no request, not counted);
    /// otherwise (or with `force`) a new one is written: by the model when a key is configured
    /// — every statement cites the facts and signals it rests on, and one whose citations do not
    /// check out is dropped; one brief of the month's budget (`PLAN_LIMIT` when used up) — or,
    /// without a key, by deterministic rules (`source: FALLBACK`). Anthropic's refusals answer
    /// `UPSTREAM_ERROR` (or `RATE_LIMITED`) and store nothing. MEMBER+; a key needs
    /// `accounts:write`, `accounts:read`, `contacts:read` and `signals:read`.
    async fn generate_account_brief(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        #[graphql(default = false)] force: bool,
    ) -> async_graphql::Result<GeneratedBrief> {
        let actor = actor(ctx)?;
        let id = parse_id(&account_id, "Account").gql()?;
        let st = state(ctx)?;
        let g = connectors::anthropic::generate_brief(&st.connectors, &st.db, actor, id, force)
            .await
            .gql()?;
        Ok(GeneratedBrief {
            brief: AccountBrief(g.brief),
            cached: g.cached,
        })
    }

    /// Sets the organization's own Anthropic API key (`sk-ant-…`), used for its briefs instead
    /// of the server's. Stored encrypted, never returned. OWNER or ADMIN.
    async fn set_ai_api_key(
        &self,
        ctx: &Context<'_>,
        api_key: String,
    ) -> async_graphql::Result<AiSettings> {
        let st = state(ctx)?;
        let info = domain::briefs::set_key(
            &st.db,
            actor(ctx)?,
            &meta(ctx),
            st.connectors.cipher(),
            &api_key,
        )
        .await
        .gql()?;
        settings_of(ctx, info)
    }

    /// Removes the organization's own key. OWNER or ADMIN.
    async fn clear_ai_api_key(&self, ctx: &Context<'_>) -> async_graphql::Result<AiSettings> {
        let st = state(ctx)?;
        let info = domain::briefs::clear_key(&st.db, actor(ctx)?, &meta(ctx))
            .await
            .gql()?;
        settings_of(ctx, info)
    }
}
