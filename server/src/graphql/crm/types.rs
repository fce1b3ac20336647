//! GraphQL types of the CRM: each wraps a domain model (entities never derive GraphQL).

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, Json, Object};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{activities, companies, contacts, deals, users};

use super::loaders::{
    AccountId, ActivitiesOfAccount, ContactId, ContactsOfAccount, CrmLoader, CrmLoaders, DealId,
    DealsOfAccount, DealsOfContact, MAX_NESTED, UserId,
};
use crate::graphql::common::db;
use crate::graphql::identity::types::User;
use crate::graphql::{GqlResultExt, actor};
use domain::db::rows::Fields;

/// How big a company is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AccountSize {
    Startup,
    Small,
    Medium,
    Large,
    Enterprise,
}

impl AccountSize {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountSize::Startup => "STARTUP",
            AccountSize::Small => "SMALL",
            AccountSize::Medium => "MEDIUM",
            AccountSize::Large => "LARGE",
            AccountSize::Enterprise => "ENTERPRISE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "STARTUP" => AccountSize::Startup,
            "SMALL" => AccountSize::Small,
            "MEDIUM" => AccountSize::Medium,
            "LARGE" => AccountSize::Large,
            "ENTERPRISE" => AccountSize::Enterprise,
            _ => return None,
        })
    }
}

fn tags(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// A company the organization sells to (the original's Company), with its score when that was
/// read with it (`Some`: a page that selects `score`, `topAccounts`); otherwise `score` loads it.
pub struct Account(
    pub companies::Model,
    pub Option<Option<entity::account_scores::Model>>,
);

impl Account {
    /// An account whose score is loaded when asked for.
    pub fn new(m: companies::Model) -> Self {
        Account(m, None)
    }

    /// An account read with its current score (`None`: never scored).
    pub fn scored((m, score): (companies::Model, Option<entity::account_scores::Model>)) -> Self {
        Account(m, Some(score))
    }
}

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    async fn size(&self) -> Option<AccountSize> {
        self.0.size.as_deref().and_then(AccountSize::parse)
    }
    async fn website(&self) -> Option<&str> {
        self.0.website.as_deref()
    }
    async fn github_org(&self) -> Option<&str> {
        self.0.github_org.as_deref()
    }
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The organization's own fields, a JSON object.
    async fn custom_fields(&self) -> Json<serde_json::Value> {
        Json(self.0.custom_fields.clone())
    }
    async fn tags(&self) -> Vec<String> {
        tags(&self.0.tags)
    }
    /// The account's contacts, newest first (at most `first`, 1 to 100, default 20).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1 to 100 (default 20).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<Contact>> {
        let rows = nested(
            ctx,
            |n| ContactsOfAccount(self.0.id, n, Contact::selected(ctx)),
            first,
        )
        .await?;
        Ok(rows.into_iter().map(Contact).collect())
    }
    /// The account's deals, newest first (at most `first`, 1 to 100, default 20).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1 to 100 (default 20).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<Deal>> {
        let rows = nested(
            ctx,
            |n| DealsOfAccount(self.0.id, n, Deal::selected(ctx)),
            first,
        )
        .await?;
        Ok(rows.into_iter().map(Deal).collect())
    }
    /// The account's activities, newest first (at most `first`, 1 to 100, default 20).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1 to 100 (default 20).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<Activity>> {
        let rows = nested(
            ctx,
            |n| ActivitiesOfAccount(self.0.id, n, Activity::selected(ctx)),
            first,
        )
        .await?;
        Ok(rows.into_iter().map(Activity).collect())
    }
    /// What happened with the account, newest first: its activities (by creation time) and
    /// signals (by event time). `first` is at most 100 (default 20); paging is stable while
    /// items are added.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::common::ListConnection<TimelineItem>> {
        let actor = actor(ctx)?;
        let req = crate::graphql::common::page_request(ctx, first, after, None, None)?;
        let page = domain::signals::timeline(
            &*db(ctx).await?,
            actor,
            self.0.id,
            req.first.unwrap_or(20),
            req.after.as_deref(),
            req.count,
        )
        .await
        .gql()?;
        Ok(crate::graphql::common::connection(page, |e| match e {
            domain::signals::TimelineEntry::Activity(m) => TimelineItem::Activity(Activity(m)),
            domain::signals::TimelineEntry::Signal(m) => {
                TimelineItem::Signal(crate::graphql::signals::Signal(m))
            }
        }))
    }
    /// What enrichment filled and when (null until the account was enriched or tried).
    async fn enrichment(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::enrichment::Enrichment>> {
        crate::graphql::enrichment::enrichment_of(ctx, self.0.id).await
    }
    /// The account's latest AI brief with next-best actions (null until `generateAccountBrief`);
    /// never asks a model. Needs `accounts:read`, `contacts:read` and `signals:read`.
    async fn brief(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::briefs::AccountBrief>> {
        crate::graphql::briefs::brief_of(ctx, self.0.id).await
    }
    /// The account's PQA score, once computed.
    async fn score(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::signals::AccountScore>> {
        match &self.1 {
            Some(read) => Ok(read.clone().map(crate::graphql::signals::AccountScore)),
            None => crate::graphql::signals::account_score(ctx, self.0.id).await,
        }
    }
    /// The account's score on each captured day of the last `days` days (1 to 3660, default
    /// 90), oldest first.
    async fn score_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 90)] days: i32,
    ) -> async_graphql::Result<Vec<crate::graphql::insight::ScorePoint>> {
        crate::graphql::insight::score_history(ctx, self.0.id, days).await
    }
    /// The account's signal anomalies detected in the last `days` days (1 to 30, default 7),
    /// newest first.
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 7)] days: i32,
    ) -> async_graphql::Result<Vec<crate::graphql::anomalies::Anomaly>> {
        crate::graphql::anomalies::anomalies_of(ctx, self.0.id, days).await
    }
    /// The account's signals, newest event first.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn signals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<
        crate::graphql::common::ListConnection<crate::graphql::signals::Signal>,
    > {
        let filter = domain::signals::Filter {
            account_id: Some(self.0.id),
            ..Default::default()
        };
        crate::graphql::signals::signal_page(ctx, filter, first, after).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One entry of an account's timeline.
#[derive(async_graphql::Union)]
pub enum TimelineItem {
    Activity(Activity),
    Signal(crate::graphql::signals::Signal),
}

/// A person in the CRM.
pub struct Contact(pub contacts::Model);

impl Contact {
    /// The columns each field reads besides the id and the organization (`None`: every column).
    fn columns(field: &str) -> Option<&'static [contacts::Column]> {
        use contacts::Column as C;
        Some(match field {
            "__typename" | "id" | "enrichment" | "deals" | "signals" => &[],
            "firstName" => &[C::FirstName],
            "lastName" => &[C::LastName],
            "email" => &[C::Email],
            "title" => &[C::Title],
            "phone" => &[C::Phone],
            "github" => &[C::Github],
            "twitter" => &[C::Twitter],
            "linkedIn" => &[C::LinkedIn],
            "city" => &[C::City],
            "country" => &[C::Country],
            "notes" => &[C::Notes],
            "customFields" => &[C::CustomFields],
            "tags" => &[C::Tags],
            "account" => &[C::AccountId],
            "createdAt" => &[C::CreatedAt],
            "updatedAt" => &[C::UpdatedAt],
            _ => return None,
        })
    }

    /// The fields of contacts that the current (nested list) field's selection reads.
    fn selected(ctx: &Context<'_>) -> Fields {
        selected::<contacts::Entity>(ctx, Self::columns)
    }
}

/// The fields of `E`'s rows that the current field's selection reads, by the `columns` each
/// selected field reads: every field when one of them is not known to `columns` (a field added
/// without its columns reads every column).
fn selected<E: sea_orm::EntityTrait>(
    ctx: &Context<'_>,
    columns: fn(&str) -> Option<&'static [E::Column]>,
) -> Fields {
    ctx.field()
        .selection_set()
        .try_fold(Fields::NONE, |keep, f| {
            columns(f.name()).map(|c| keep.with(Fields::of::<E>(c)))
        })
        .unwrap_or(Fields::ALL)
}

#[Object]
impl Contact {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn github(&self) -> Option<&str> {
        self.0.github.as_deref()
    }
    async fn twitter(&self) -> Option<&str> {
        self.0.twitter.as_deref()
    }
    async fn linked_in(&self) -> Option<&str> {
        self.0.linked_in.as_deref()
    }
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    /// The organization's own fields, a JSON object.
    async fn custom_fields(&self) -> Json<serde_json::Value> {
        Json(self.0.custom_fields.clone())
    }
    /// What enrichment filled and when (null until the contact was enriched or tried).
    async fn enrichment(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::enrichment::Enrichment>> {
        crate::graphql::enrichment::enrichment_of(ctx, self.0.id).await
    }
    async fn tags(&self) -> Vec<String> {
        tags(&self.0.tags)
    }
    /// The account the contact works for.
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, self.0.account_id.map(AccountId))
            .await?
            .map(Account::new))
    }
    /// The contact's deals, newest first (at most `first`, 1 to 100, default 20).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1 to 100 (default 20).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<Deal>> {
        let rows = nested(
            ctx,
            |n| DealsOfContact(self.0.id, n, Deal::selected(ctx)),
            first,
        )
        .await?;
        Ok(rows.into_iter().map(Deal).collect())
    }
    /// The contact's signals, newest event first.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn signals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<
        crate::graphql::common::ListConnection<crate::graphql::signals::Signal>,
    > {
        let filter = domain::signals::Filter {
            contact_id: Some(self.0.id),
            ..Default::default()
        };
        crate::graphql::signals::signal_page(ctx, filter, first, after).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One entry of the event log.
pub struct Event(pub domain::events::Event);

#[Object]
impl Event {
    /// The per-database increasing sequence number; resume reading after it.
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// e.g. `company.created`, `contact.updated`.
    async fn r#type(&self) -> &str {
        &self.0.event_type
    }
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    async fn actor_user_id(&self) -> Option<ID> {
        self.0.actor_user_id.map(|u| ID(u.to_string()))
    }
    async fn actor_api_key_id(&self) -> Option<ID> {
        self.0.actor_api_key_id.map(|u| ID(u.to_string()))
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
}

/// A GraphQL enum backed by the domain's stored strings.
macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

str_enum!(
    /// The PLG pipeline, in order.
    DealStage {
        AnonymousUsage => "ANONYMOUS_USAGE",
        Identified => "IDENTIFIED",
        Activated => "ACTIVATED",
        TeamAdoption => "TEAM_ADOPTION",
        ExpansionSignal => "EXPANSION_SIGNAL",
        SalesQualified => "SALES_QUALIFIED",
        Negotiation => "NEGOTIATION",
        ClosedWon => "CLOSED_WON",
        ClosedLost => "CLOSED_LOST",
    }
);

str_enum!(
    /// What kind of activity.
    ActivityType {
        Task => "TASK",
        Call => "CALL",
        Meeting => "MEETING",
        Email => "EMAIL",
        Note => "NOTE",
    }
);

str_enum!(
    /// Where an activity stands; COMPLETED sets `completedAt`.
    ActivityStatus {
        Pending => "PENDING",
        InProgress => "IN_PROGRESS",
        Completed => "COMPLETED",
        Cancelled => "CANCELLED",
    }
);

str_enum!(
    /// How urgent an activity is.
    Priority {
        Low => "LOW",
        Medium => "MEDIUM",
        High => "HIGH",
        Urgent => "URGENT",
    }
);

pub(crate) async fn load<K>(
    ctx: &Context<'_>,
    key: Option<K>,
) -> async_graphql::Result<Option<K::Model>>
where
    K: LoadKey,
    CrmLoader: Loader<K, Value = K::Model, Error = async_graphql::Error>,
{
    match key {
        None => Ok(None),
        Some(k) => ctx.data::<CrmLoaders>()?.load_one(k).await,
    }
}

/// A nested list through its loader: the newest `first` rows (1 to [`MAX_NESTED`], default
/// 20); `key` makes the loader key of that many.
pub(crate) async fn nested<K, M>(
    ctx: &Context<'_>,
    key: impl FnOnce(usize) -> K,
    first: Option<i32>,
) -> async_graphql::Result<Vec<M>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    CrmLoader: Loader<K, Value = Vec<M>, Error = async_graphql::Error>,
{
    let first = match first {
        None => 20,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_NESTED).contains(n))
            .ok_or_else(|| {
                crate::graphql::gql_error(domain::Error::invalid(
                    "first",
                    format!("must be between 1 and {MAX_NESTED}"),
                ))
            })?,
    };
    Ok(ctx
        .data::<CrmLoaders>()?
        .load_one(key(first))
        .await?
        .unwrap_or_default())
}

/// A DataLoader key and the row it loads.
pub trait LoadKey: Send + Sync + std::hash::Hash + Eq + Clone + 'static {
    type Model: Send + Sync + Clone + 'static;
}

impl LoadKey for AccountId {
    type Model = companies::Model;
}
impl LoadKey for ContactId {
    type Model = contacts::Model;
}
impl LoadKey for DealId {
    type Model = deals::Model;
}
impl LoadKey for UserId {
    type Model = users::Model;
}

/// An opportunity in the PLG pipeline.
pub struct Deal(pub deals::Model);

impl Deal {
    /// The columns each field reads besides the id and the organization (`None`: every column).
    fn columns(field: &str) -> Option<&'static [deals::Column]> {
        use deals::Column as C;
        Some(match field {
            "__typename" | "id" => &[],
            "title" => &[C::Title],
            "amount" => &[C::Amount],
            "currency" => &[C::Currency],
            "stage" => &[C::Stage],
            "probability" => &[C::Probability],
            "expectedCloseDate" => &[C::ExpectedCloseDate],
            "closedAt" => &[C::ClosedAt],
            "description" => &[C::Description],
            "customFields" => &[C::CustomFields],
            "tags" => &[C::Tags],
            "account" => &[C::AccountId],
            "contact" => &[C::ContactId],
            "owner" => &[C::OwnerId],
            "createdAt" => &[C::CreatedAt],
            "updatedAt" => &[C::UpdatedAt],
            _ => return None,
        })
    }

    /// The fields of deals that the current (nested list) field's selection reads.
    fn selected(ctx: &Context<'_>) -> Fields {
        selected::<deals::Entity>(ctx, Self::columns)
    }
}

#[Object]
impl Deal {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn amount(&self) -> Option<f64> {
        self.0.amount
    }
    /// ISO 4217 code, USD unless set.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn stage(&self) -> Option<DealStage> {
        DealStage::parse(&self.0.stage)
    }
    /// 0 to 100.
    async fn probability(&self) -> Option<i32> {
        self.0.probability
    }
    async fn expected_close_date(&self) -> Option<NaiveDate> {
        self.0.expected_close_date
    }
    /// When the deal reached CLOSED_WON or CLOSED_LOST; null while it is open.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The organization's own fields, a JSON object.
    async fn custom_fields(&self) -> Json<serde_json::Value> {
        Json(self.0.custom_fields.clone())
    }
    async fn tags(&self) -> Vec<String> {
        tags(&self.0.tags)
    }
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, self.0.account_id.map(AccountId))
            .await?
            .map(Account::new))
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(load(ctx, self.0.contact_id.map(ContactId))
            .await?
            .map(Contact))
    }
    /// The member who owns the deal.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load(ctx, self.0.owner_id.map(UserId))
            .await?
            .map(User::from))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A task, call, meeting, email or note.
pub struct Activity(pub activities::Model);

impl Activity {
    /// The columns each field reads besides the id and the organization (`None`: every column).
    fn columns(field: &str) -> Option<&'static [activities::Column]> {
        use activities::Column as C;
        Some(match field {
            "__typename" | "id" => &[],
            "type" => &[C::Kind],
            "title" => &[C::Title],
            "description" => &[C::Description],
            "status" => &[C::Status],
            "priority" => &[C::Priority],
            "dueDate" => &[C::DueDate],
            "completedAt" => &[C::CompletedAt],
            "customFields" => &[C::CustomFields],
            "account" => &[C::AccountId],
            "contact" => &[C::ContactId],
            "deal" => &[C::DealId],
            "author" => &[C::AuthorId],
            "createdAt" => &[C::CreatedAt],
            "updatedAt" => &[C::UpdatedAt],
            _ => return None,
        })
    }

    /// The fields of activities that the current (nested list) field's selection reads.
    fn selected(ctx: &Context<'_>) -> Fields {
        selected::<activities::Entity>(ctx, Self::columns)
    }
}

#[Object]
impl Activity {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn r#type(&self) -> Option<ActivityType> {
        ActivityType::parse(&self.0.kind)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn status(&self) -> Option<ActivityStatus> {
        ActivityStatus::parse(&self.0.status)
    }
    async fn priority(&self) -> Option<Priority> {
        Priority::parse(&self.0.priority)
    }
    async fn due_date(&self) -> Option<DateTime<Utc>> {
        self.0.due_date
    }
    /// Set when the status became COMPLETED.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// The organization's own fields, a JSON object.
    async fn custom_fields(&self) -> Json<serde_json::Value> {
        Json(self.0.custom_fields.clone())
    }
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, self.0.account_id.map(AccountId))
            .await?
            .map(Account::new))
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(load(ctx, self.0.contact_id.map(ContactId))
            .await?
            .map(Contact))
    }
    async fn deal(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Deal>> {
        Ok(load(ctx, self.0.deal_id.map(DealId)).await?.map(Deal))
    }
    /// The member who wrote it (null when an API key did, or the user has left).
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load(ctx, self.0.author_id.map(UserId))
            .await?
            .map(User::from))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
