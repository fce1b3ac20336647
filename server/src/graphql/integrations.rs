//! Integrations over GraphQL: connect, update, disconnect and sync outside sources (ADMIN, or an
//! API key with `integrations:manage`), their runs, and package downloads (any member). The
//! work happens in `connectors`; these resolvers call one function each and wrap the rows.

use async_graphql::{
    Context, Enum, ID, InputObject, InputValueError, InputValueResult, Json, Object, Scalar,
    ScalarType, Value as GqlValue,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{integration_runs, integrations, package_downloads};

use super::common::db;
use super::common::{ListConnection, connection, page_request, parse_id, state};
use crate::graphql::{GqlResultExt, actor};

/// A calendar day, `YYYY-MM-DD` (UTC).
#[derive(Clone, Copy, Debug)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: GqlValue) -> InputValueResult<Self> {
        match &value {
            GqlValue::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("a Date is YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> GqlValue {
        GqlValue::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Every source an organization may connect. Kinds not built yet answer `BAD_USER_INPUT`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum IntegrationKind {
    Github,
    Npm,
    Pypi,
    Stackoverflow,
    Reddit,
    Discord,
    Twitter,
    Linkedin,
    Posthog,
    Intercom,
    Zendesk,
    Hubspot,
    Salesforce,
    Clearbit,
}

impl IntegrationKind {
    fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Github => "GITHUB",
            IntegrationKind::Npm => "NPM",
            IntegrationKind::Pypi => "PYPI",
            IntegrationKind::Stackoverflow => "STACKOVERFLOW",
            IntegrationKind::Reddit => "REDDIT",
            IntegrationKind::Discord => "DISCORD",
            IntegrationKind::Twitter => "TWITTER",
            IntegrationKind::Linkedin => "LINKEDIN",
            IntegrationKind::Posthog => "POSTHOG",
            IntegrationKind::Intercom => "INTERCOM",
            IntegrationKind::Zendesk => "ZENDESK",
            IntegrationKind::Hubspot => "HUBSPOT",
            IntegrationKind::Salesforce => "SALESFORCE",
            IntegrationKind::Clearbit => "CLEARBIT",
        }
    }

    fn label(self) -> &'static str {
        match self {
            IntegrationKind::Github => "GitHub",
            IntegrationKind::Npm => "npm",
            IntegrationKind::Pypi => "PyPI",
            IntegrationKind::Stackoverflow => "Stack Overflow",
            IntegrationKind::Reddit => "Reddit",
            IntegrationKind::Discord => "Discord",
            IntegrationKind::Twitter => "Twitter/X",
            IntegrationKind::Linkedin => "LinkedIn",
            IntegrationKind::Posthog => "PostHog",
            IntegrationKind::Intercom => "Intercom",
            IntegrationKind::Zendesk => "Zendesk",
            IntegrationKind::Hubspot => "HubSpot",
            IntegrationKind::Salesforce => "Salesforce",
            IntegrationKind::Clearbit => "Clearbit",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "NPM" => IntegrationKind::Npm,
            "PYPI" => IntegrationKind::Pypi,
            "STACKOVERFLOW" => IntegrationKind::Stackoverflow,
            "REDDIT" => IntegrationKind::Reddit,
            "DISCORD" => IntegrationKind::Discord,
            "TWITTER" => IntegrationKind::Twitter,
            "LINKEDIN" => IntegrationKind::Linkedin,
            "POSTHOG" => IntegrationKind::Posthog,
            "INTERCOM" => IntegrationKind::Intercom,
            "ZENDESK" => IntegrationKind::Zendesk,
            "HUBSPOT" => IntegrationKind::Hubspot,
            "SALESFORCE" => IntegrationKind::Salesforce,
            "CLEARBIT" => IntegrationKind::Clearbit,
            _ => IntegrationKind::Github,
        }
    }
}

/// A kind of source and what the server can do with it.
#[derive(async_graphql::SimpleObject)]
pub struct IntegrationKindInfo {
    pub kind: IntegrationKind,
    /// The source's name, as shown to people.
    pub label: String,
    /// Whether it can be connected (kinds not built answer `BAD_USER_INPUT`).
    pub built: bool,
    /// Whether it is read by scheduled runs ("Sync now"); false for LinkedIn, which only takes
    /// webhooks and imports.
    pub syncs: bool,
    /// Whether it takes inbound webhooks (see `Integration.webhookUrl`).
    pub webhooks: bool,
}

/// Whether `kind` takes inbound webhooks (GitHub's come through its own route).
fn takes_webhooks(kind: &str) -> bool {
    kind == "GITHUB" || connectors::connector(kind).is_some_and(|c| c.webhooks())
}

/// Where an integration stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum IntegrationStatus {
    /// Idle and healthy; runs on its schedule.
    Connected,
    /// A run is in progress.
    Syncing,
    /// Waiting for `nextSyncAt` (a spent rate limit, or transient failures); continues then.
    Backoff,
    /// Stopped until the credentials or configuration change (see `lastError`).
    Error,
    Disconnected,
}

impl IntegrationStatus {
    fn parse(s: &str) -> Self {
        match s {
            connectors::status::SYNCING => IntegrationStatus::Syncing,
            connectors::status::BACKOFF => IntegrationStatus::Backoff,
            connectors::status::ERROR => IntegrationStatus::Error,
            connectors::status::DISCONNECTED => IntegrationStatus::Disconnected,
            _ => IntegrationStatus::Connected,
        }
    }
}

/// How a run ended (or that it is running).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum IntegrationRunStatus {
    Running,
    Succeeded,
    /// Stopped early (a spent rate limit; it continues in a later run) or some items were refused.
    Partial,
    Failed,
}

impl IntegrationRunStatus {
    fn parse(s: &str) -> Self {
        match s {
            connectors::run_status::SUCCEEDED => IntegrationRunStatus::Succeeded,
            connectors::run_status::PARTIAL => IntegrationRunStatus::Partial,
            connectors::run_status::FAILED => IntegrationRunStatus::Failed,
            _ => IntegrationRunStatus::Running,
        }
    }
}

/// A package registry.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PackageRegistry {
    Npm,
    Pypi,
}

impl PackageRegistry {
    fn as_str(self) -> &'static str {
        match self {
            PackageRegistry::Npm => "NPM",
            PackageRegistry::Pypi => "PYPI",
        }
    }
}

/// A connected outside source.
pub struct Integration(integrations::Model);

#[Object]
impl Integration {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> IntegrationKind {
        IntegrationKind::parse(&self.0.kind)
    }
    async fn status(&self) -> IntegrationStatus {
        IntegrationStatus::parse(&self.0.status)
    }
    /// The public configuration (credentials are write-only and never shown).
    async fn config(&self) -> Json<serde_json::Value> {
        Json(self.0.config.clone())
    }
    async fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_sync_at
    }
    async fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_success_at
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it runs next on its own (a continuation after `BACKOFF`, or the first sync).
    async fn next_sync_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_sync_at
    }
    /// Where the source sends signed webhooks (GitHub, PostHog, LinkedIn, …), with the secret
    /// shown at connection; null for kinds that take none.
    async fn webhook_url(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        if !takes_webhooks(&self.0.kind) {
            return Ok(None);
        }
        Ok(Some(format!(
            "{}/api/v1/webhooks/{}/{}",
            state(ctx)?.config.api_url.trim_end_matches('/'),
            self.0.kind.to_lowercase(),
            self.0.id
        )))
    }
    /// Its runs, newest first.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn runs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<IntegrationRun>> {
        let actor = actor(ctx)?;
        let req = page_request(ctx, first, after, None, None)?;
        let page = connectors::store::runs(&*db(ctx).await?, actor, self.0.id, &req)
            .await
            .gql()?;
        Ok(connection(page, IntegrationRun))
    }
}

/// One sync run.
pub struct IntegrationRun(integration_runs::Model);

#[Object]
impl IntegrationRun {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn integration_id(&self) -> ID {
        ID(self.0.integration_id.to_string())
    }
    async fn status(&self) -> IntegrationRunStatus {
        IntegrationRunStatus::parse(&self.0.status)
    }
    /// Whether it re-reads everything.
    async fn full(&self) -> bool {
        self.0.full
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    async fn signals_created(&self) -> i32 {
        self.0.signals_created
    }
    /// HTTP requests sent to the source (retries included).
    async fn requests(&self) -> i32 {
        self.0.requests
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Records a CRM sync sent to the CRM (created or updated there).
    async fn pushed(&self) -> i32 {
        self.0.pushed
    }
    /// Records a CRM sync read from the CRM and applied here.
    async fn pulled(&self) -> i32 {
        self.0.pulled
    }
    /// Records the source refused (a CRM's per-record errors), the first 200; the run went on.
    async fn errors(&self) -> Vec<IntegrationRunError> {
        self.0
            .errors
            .as_ref()
            .and_then(|e| e.as_array())
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let get = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                        IntegrationRunError {
                            object: get("object").unwrap_or_default(),
                            id: get("id").map(ID),
                            external_id: get("externalId"),
                            message: get("message").unwrap_or_default(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One record a run could not sync.
#[derive(async_graphql::SimpleObject)]
pub struct IntegrationRunError {
    /// `account`, `contact` or `deal`.
    pub object: String,
    /// Our record, when there is one.
    pub id: Option<ID>,
    /// The source's record, when there is one.
    pub external_id: Option<String>,
    pub message: String,
}

/// Downloads of a package on one day.
pub struct DailyDownloads(package_downloads::Model);

#[Object]
impl DailyDownloads {
    async fn day(&self) -> async_graphql::Result<Date> {
        NaiveDate::parse_from_str(&self.0.day, "%Y-%m-%d")
            .map(Date)
            .map_err(|_| async_graphql::Error::new("a stored day is malformed"))
    }
    async fn downloads(&self) -> i64 {
        self.0.downloads
    }
    async fn package(&self) -> &str {
        &self.0.package
    }
}

#[derive(InputObject)]
pub struct ConnectIntegrationInput {
    pub kind: IntegrationKind,
    /// Public settings, e.g. `{"repos": ["owner/name"]}` (GitHub, optional `apiUrl` for
    /// GitHub Enterprise) or `{"packages": ["name"]}` (npm, PyPI).
    pub config: Json<serde_json::Value>,
    /// Secret settings, e.g. `{"token": "…"}` (GitHub). Write-only.
    pub credentials: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct UpdateIntegrationInput {
    pub config: Option<Json<serde_json::Value>>,
    pub credentials: Option<Json<serde_json::Value>>,
}

/// A new integration, with its webhook secret (shown this once).
pub struct ConnectIntegrationPayload {
    integration: integrations::Model,
    secret: String,
}

#[Object]
impl ConnectIntegrationPayload {
    async fn integration(&self) -> Integration {
        Integration(self.integration.clone())
    }
    /// Signs inbound webhooks (`X-Hub-Signature-256`); never shown again.
    async fn webhook_secret(&self) -> &str {
        &self.secret
    }
}

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// Every kind of source, in the server's order, with whether it can be connected, synced
    /// and sent webhooks (any signed-in member).
    async fn integration_kinds(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<IntegrationKindInfo>> {
        actor(ctx)?;
        Ok(connectors::KINDS
            .iter()
            .map(|(name, built)| {
                let kind = IntegrationKind::parse(name);
                let connector = connectors::connector(name).filter(|_| *built);
                IntegrationKindInfo {
                    kind,
                    label: kind.label().to_owned(),
                    built: connector.is_some(),
                    syncs: connector.is_some_and(|c| c.syncs()),
                    webhooks: connector.is_some() && takes_webhooks(name),
                }
            })
            .collect())
    }

    /// The organization's integrations (ADMIN, or `integrations:manage`).
    async fn integrations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Integration>> {
        let actor = actor(ctx)?;
        let rows = connectors::store::list(&*db(ctx).await?, actor)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Integration).collect())
    }

    async fn integration(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Integration> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Integration").gql()?;
        let m = connectors::store::get(&*db(ctx).await?, actor, id)
            .await
            .gql()?;
        Ok(Integration(m))
    }

    /// Daily downloads of one package (oldest first), optionally between two days (inclusive).
    async fn package_downloads(
        &self,
        ctx: &Context<'_>,
        registry: PackageRegistry,
        package: String,
        from: Option<Date>,
        to: Option<Date>,
    ) -> async_graphql::Result<Vec<DailyDownloads>> {
        let actor = actor(ctx)?;
        let name = connectors::packages::normalize(registry.as_str(), &package);
        let day = |d: Option<Date>| d.map(|d| d.0.format("%Y-%m-%d").to_string());
        let rows = connectors::store::package_downloads(
            &*db(ctx).await?,
            actor,
            registry.as_str(),
            &name,
            day(from),
            day(to),
        )
        .await
        .gql()?;
        Ok(rows.into_iter().map(DailyDownloads).collect())
    }
}

/// The format of an uploaded file.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ImportFormat {
    Csv,
    Json,
}

/// What a LinkedIn import did.
#[derive(async_graphql::SimpleObject)]
pub struct LinkedInImport {
    /// Rows read.
    pub rows: i32,
    /// Distinct contacts the rows made or found.
    pub contacts: i32,
    /// Distinct companies they were linked to.
    pub accounts: i32,
}

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Connects a source. The configuration is checked (bad fields answer `BAD_USER_INPUT`
    /// naming them), the credentials are sealed, and a webhook secret is made (returned once).
    async fn connect_integration(
        &self,
        ctx: &Context<'_>,
        input: ConnectIntegrationInput,
    ) -> async_graphql::Result<ConnectIntegrationPayload> {
        let actor = actor(ctx)?;
        let st = state(ctx)?;
        let c = connectors::store::connect(
            &st.db,
            &st.connectors,
            actor,
            connectors::store::ConnectInput {
                kind: input.kind.as_str().to_owned(),
                config: input.config.0,
                credentials: input.credentials.map(|c| c.0),
            },
        )
        .await
        .gql()?;
        Ok(ConnectIntegrationPayload {
            integration: c.integration,
            secret: c.webhook_secret,
        })
    }

    /// Changes the configuration or credentials; new ones lift an `ERROR` they caused.
    async fn update_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateIntegrationInput,
    ) -> async_graphql::Result<Integration> {
        let actor = actor(ctx)?;
        let st = state(ctx)?;
        let id = parse_id(&id, "Integration").gql()?;
        let m = connectors::store::update(
            &st.db,
            &st.connectors,
            actor,
            id,
            connectors::store::UpdateInput {
                config: input.config.map(|c| c.0),
                credentials: input.credentials.map(|c| c.0),
            },
        )
        .await
        .gql()?;
        Ok(Integration(m))
    }

    /// Stops runs and webhooks and forgets the credentials; what was stored stays.
    async fn disconnect_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Integration> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Integration").gql()?;
        let m = connectors::store::disconnect(&*db(ctx).await?, actor, id)
            .await
            .gql()?;
        Ok(Integration(m))
    }

    /// Imports people into a LinkedIn integration: CSV with a header row (a LinkedIn profile
    /// column such as `linkedinUrl`, and optionally email, name or first/last name, title,
    /// company, company domain) or a JSON array of objects with those keys. Each row makes or
    /// finds its contact by the LinkedIn profile (and email), sets the title, and links the
    /// company of the domain. Every row is checked first: one bad row refuses the import with
    /// `BAD_USER_INPUT` naming `rows.<n>.<field>`, and nothing is written. No signal is stored
    /// (an import is not something the people did).
    async fn import_linked_in_contacts(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        format: ImportFormat,
        data: String,
    ) -> async_graphql::Result<LinkedInImport> {
        let actor = actor(ctx)?;
        let st = state(ctx)?;
        let id = parse_id(&integration_id, "Integration").gql()?;
        let r = connectors::linkedin::import(
            &st.db,
            &st.connectors,
            actor,
            id,
            match format {
                ImportFormat::Csv => connectors::linkedin::ImportFormat::Csv,
                ImportFormat::Json => connectors::linkedin::ImportFormat::Json,
            },
            &data,
        )
        .await
        .gql()?;
        Ok(LinkedInImport {
            rows: r.rows as i32,
            contacts: r.contacts as i32,
            accounts: r.accounts as i32,
        })
    }

    /// Starts a run now (or returns the one in progress). `full` re-reads everything.
    async fn sync_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default_with = "Some(false)")] full: Option<bool>,
    ) -> async_graphql::Result<IntegrationRun> {
        let full = full.unwrap_or(false);
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Integration").gql()?;
        let state = state(ctx)?;
        let run = connectors::run::start(&state.connectors, &state.db, actor, id, full)
            .await
            .gql()?;
        Ok(IntegrationRun(run))
    }
}
