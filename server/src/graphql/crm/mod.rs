//! The CRM core over GraphQL: accounts and contacts (Relay connections, create /
//! update / delete, batch create, upsert by email) and the event log for ADMINs. Resolvers read
//! the actor, call one `domain::` function and wrap the result.

pub mod activities;
pub mod deals;
pub mod loaders;
pub mod search;
pub mod types;

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object};
use chrono::{DateTime, Utc};

use self::types::{Account, AccountSize, Contact, Event};
use super::common::meta;
use super::common::parse_id;
use super::common::{db, read_db};
use crate::graphql::common::{ListConnection, connection, maybe_input_id, page_request};
use crate::graphql::{GqlResultExt, actor};

/// Sort direction of a list.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

macro_rules! order_input {
    ($(#[$doc:meta])* $input:ident, $field:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        #[doc = concat!("What `", stringify!($input), "` sorts by.")]
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $field {
            $($variant),+
        }

        $(#[$doc])*
        #[derive(InputObject)]
        pub struct $input {
            pub field: $field,
            #[graphql(default)]
            pub direction: OrderDirection,
        }

        impl From<$input> for domain::crm::Order {
            fn from(o: $input) -> Self {
                domain::crm::Order {
                    field: match o.field {
                        $($field::$variant => $s),+
                    }
                    .to_owned(),
                    desc: o.direction == OrderDirection::Desc,
                }
            }
        }
    };
}

order_input!(
    /// The order of `accounts` (default: newest first). Ties are broken by id; paging is stable
    /// under every order.
    AccountOrder, AccountOrderField {
        Name => "NAME", Domain => "DOMAIN", CreatedAt => "CREATED_AT", UpdatedAt => "UPDATED_AT",
        Score => "SCORE",
    }
);
order_input!(
    /// The order of `contacts` (default: newest first); NAME is the last name.
    ContactOrder, ContactOrderField {
        Name => "NAME", Email => "EMAIL", CreatedAt => "CREATED_AT", UpdatedAt => "UPDATED_AT",
    }
);
order_input!(
    /// The order of `deals` (default: newest first); empty amounts and dates sort lowest.
    DealOrder, DealOrderField {
        Title => "TITLE", Amount => "AMOUNT", ExpectedCloseDate => "EXPECTED_CLOSE_DATE",
        CreatedAt => "CREATED_AT", UpdatedAt => "UPDATED_AT",
    }
);
order_input!(
    /// The order of `activities` (default: newest first); empty due dates sort lowest.
    ActivityOrder, ActivityOrderField {
        Title => "TITLE", DueDate => "DUE_DATE", CreatedAt => "CREATED_AT", UpdatedAt => "UPDATED_AT",
    }
);

/// Filters every CRM list offers (`tag` only where rows have tags).
#[derive(InputObject, Default)]
pub struct CommonFilter {
    /// Rows carrying this tag.
    pub tag: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
}

impl From<CommonFilter> for domain::crm::CommonFilter {
    fn from(f: CommonFilter) -> Self {
        domain::crm::CommonFilter {
            tag: f.tag,
            created_after: f.created_after,
            created_before: f.created_before,
            updated_after: f.updated_after,
            updated_before: f.updated_before,
        }
    }
}

fn opt<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Which accounts to list.
#[derive(InputObject, Default)]
pub struct AccountFilter {
    /// Case-insensitive substring of the name or domain.
    pub query: Option<String>,
    pub size: Option<AccountSize>,
    /// Only accounts whose current score is in this tier (never-scored accounts match none).
    pub tier: Option<crate::graphql::signals::Tier>,
    /// Only accounts with at least one signal from this source (an id from `signalSources`).
    pub source: Option<ID>,
    #[graphql(flatten)]
    pub common: CommonFilter,
}

/// Which contacts to list.
#[derive(InputObject, Default)]
pub struct ContactFilter {
    /// Case-insensitive substring of the first name, last name or email.
    pub query: Option<String>,
    /// Only contacts of this account.
    pub account_id: Option<ID>,
    #[graphql(flatten)]
    pub common: CommonFilter,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size: Option<AccountSize>,
    pub website: Option<String>,
    pub github_org: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub description: Option<String>,
    /// A JSON object of your own fields.
    pub custom_fields: Option<Json<serde_json::Value>>,
    #[graphql(default)]
    pub tags: Vec<String>,
}

impl From<CreateAccountInput> for domain::crm::accounts::CreateInput {
    fn from(i: CreateAccountInput) -> Self {
        domain::crm::accounts::CreateInput {
            name: i.name,
            domain: i.domain,
            industry: i.industry,
            size: i.size.map(|s| s.as_str().to_owned()),
            website: i.website,
            github_org: i.github_org,
            city: i.city,
            country: i.country,
            description: i.description,
            custom_fields: i.custom_fields.map(|j| j.0),
            tags: i.tags,
        }
    }
}

/// Fields left out stay as they are; `null` clears a field.
#[derive(InputObject)]
pub struct UpdateAccountInput {
    pub name: Option<String>,
    pub domain: MaybeUndefined<String>,
    pub industry: MaybeUndefined<String>,
    pub size: MaybeUndefined<AccountSize>,
    pub website: MaybeUndefined<String>,
    pub github_org: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
    pub country: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub custom_fields: Option<Json<serde_json::Value>>,
    pub tags: Option<Vec<String>>,
}

/// A contact's fields. On update, fields left out stay as they are and `null` clears a field.
#[derive(InputObject)]
#[graphql(name = "ContactFields")]
pub struct ContactInput {
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    pub email: MaybeUndefined<String>,
    pub title: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub github: MaybeUndefined<String>,
    pub twitter: MaybeUndefined<String>,
    pub linked_in: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
    pub country: MaybeUndefined<String>,
    pub notes: MaybeUndefined<String>,
    /// A JSON object of your own fields.
    pub custom_fields: Option<Json<serde_json::Value>>,
    pub tags: Option<Vec<String>>,
    /// The account the contact works for.
    pub account_id: MaybeUndefined<ID>,
}

impl ContactInput {
    fn into_domain(self) -> async_graphql::Result<domain::crm::contacts::Input> {
        let account_id = maybe_input_id(self.account_id, "accountId")?;
        Ok(domain::crm::contacts::Input {
            first_name: opt(self.first_name),
            last_name: opt(self.last_name),
            email: opt(self.email),
            title: opt(self.title),
            phone: opt(self.phone),
            github: opt(self.github),
            twitter: opt(self.twitter),
            linked_in: opt(self.linked_in),
            city: opt(self.city),
            country: opt(self.country),
            notes: opt(self.notes),
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
            account_id,
            add_tags: Vec::new(),
            remove_tags: Vec::new(),
        })
    }
}

/// Tags to add and remove (trimmed, lower-cased); the rest stay.
#[derive(InputObject)]
pub struct TagsInput {
    #[graphql(default)]
    pub add: Vec<String>,
    #[graphql(default)]
    pub remove: Vec<String>,
}

#[derive(Default)]
pub struct CrmQuery;

#[Object]
impl CrmQuery {
    /// The organization's accounts, newest first. `first`/`last` are at most 100 (default 20);
    /// cursors stay valid while rows are added, so a walk never repeats or skips a row.
    // The arguments are the connection's API: paging, filter and order.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, last, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100.")] last: Option<i32>,
        before: Option<String>,
        filter: Option<AccountFilter>,
        order_by: Option<AccountOrder>,
    ) -> async_graphql::Result<ListConnection<Account>> {
        let actor = actor(ctx)?;
        let mut req = page_request(ctx, first, after, last, before)?;
        req.order = order_by.map(Into::into);
        let f = filter.unwrap_or_default();
        let source_id = crate::graphql::common::opt_input_id(f.source, "filter.source")?;
        let filter = domain::crm::accounts::Filter {
            query: f.query,
            size: f.size.map(|s| s.as_str().to_owned()),
            tier: f.tier.map(|t| t.as_str().to_owned()),
            source_id,
            common: f.common.into(),
        };
        // A page that shows scores reads them with the accounts, in the same statement.
        let ahead = ctx.look_ahead();
        if ahead.field("edges").field("node").field("score").exists()
            || ahead.field("nodes").field("score").exists()
        {
            let page =
                domain::crm::accounts::list_scored(&*read_db(ctx).await?, actor, &filter, &req)
                    .await
                    .gql()?;
            return Ok(connection(page, Account::scored));
        }
        let page = domain::crm::accounts::list(&*read_db(ctx).await?, actor, &filter, &req)
            .await
            .gql()?;
        Ok(connection(page, Account::new))
    }

    /// One account; `NOT_FOUND` unless it belongs to the caller's organization.
    async fn account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Account> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Account").gql()?;
        Ok(Account::new(
            domain::crm::accounts::get(&*db(ctx).await?, actor, id)
                .await
                .gql()?,
        ))
    }

    /// The organization's contacts, newest first. `first`/`last` are at most 100 (default 20);
    /// cursors stay valid while rows are added, so a walk never repeats or skips a row.
    // The arguments are the connection's API: paging, filter and order.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, last, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100.")] last: Option<i32>,
        before: Option<String>,
        filter: Option<ContactFilter>,
        order_by: Option<ContactOrder>,
    ) -> async_graphql::Result<ListConnection<Contact>> {
        let actor = actor(ctx)?;
        let mut req = page_request(ctx, first, after, last, before)?;
        req.order = order_by.map(Into::into);
        let f = filter.unwrap_or_default();
        let account_id = crate::graphql::common::opt_input_id(f.account_id, "filter.accountId")?;
        let filter = domain::crm::contacts::Filter {
            query: f.query,
            account_id,
            common: f.common.into(),
        };
        let page = domain::crm::contacts::list(&*read_db(ctx).await?, actor, &filter, &req)
            .await
            .gql()?;
        Ok(connection(page, Contact))
    }

    /// One contact; `NOT_FOUND` unless it belongs to the caller's organization.
    async fn contact(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        Ok(Contact(
            domain::crm::contacts::get(&*db(ctx).await?, actor, id)
                .await
                .gql()?,
        ))
    }

    /// The organization's event log in sequence order (ADMIN or OWNER). `after` is the `seq` of
    /// the last event seen; `types` filters by event type (all when absent).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, 100, child_complexity)"
    )]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1 to 1000 (default 100).")] first: Option<i32>,
        after: Option<i64>,
        types: Option<Vec<String>>,
    ) -> async_graphql::Result<Vec<Event>> {
        let actor = actor(ctx)?;
        let first = first.unwrap_or(100);
        if !(1..=1000).contains(&first) {
            return Err(domain::Error::invalid(
                "first",
                "must be between 1 and 1000",
            ))
            .gql();
        }
        let events = domain::events::list(
            &*db(ctx).await?,
            actor,
            &domain::events::EventQuery {
                after,
                types: types.unwrap_or_default(),
                limit: u64::try_from(first).unwrap_or(100),
            },
        )
        .await
        .gql()?;
        Ok(events.into_iter().map(Event).collect())
    }
}

#[derive(Default)]
pub struct CrmMutation;

#[Object]
impl CrmMutation {
    /// Creates an account. The domain is unique per organization (case-insensitive):
    /// a duplicate answers `CONFLICT` with field `domain`.
    async fn create_account(
        &self,
        ctx: &Context<'_>,
        input: CreateAccountInput,
    ) -> async_graphql::Result<Account> {
        let actor = actor(ctx)?;
        let m = domain::crm::accounts::create(&*db(ctx).await?, actor, &meta(ctx), input.into())
            .await
            .gql()?;
        Ok(Account::new(m))
    }

    /// Creates up to 100 accounts: all are validated first (fields named `input.<i>.<field>`),
    /// then either all land or none.
    async fn create_accounts(
        &self,
        ctx: &Context<'_>,
        input: Vec<CreateAccountInput>,
    ) -> async_graphql::Result<Vec<Account>> {
        let actor = actor(ctx)?;
        let inputs = input.into_iter().map(Into::into).collect();
        let ms = domain::crm::accounts::create_many(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            inputs,
            "input",
        )
        .await
        .gql()?;
        Ok(ms.into_iter().map(Account::new).collect())
    }

    /// Changes an account; fields left out stay as they are.
    async fn update_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAccountInput,
    ) -> async_graphql::Result<Account> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Account").gql()?;
        let input = domain::crm::accounts::UpdateInput {
            name: input.name,
            domain: opt(input.domain),
            industry: opt(input.industry),
            size: opt(input.size).map(|s| s.map(|s| s.as_str().to_owned())),
            website: opt(input.website),
            github_org: opt(input.github_org),
            city: opt(input.city),
            country: opt(input.country),
            description: opt(input.description),
            custom_fields: input.custom_fields.map(|j| j.0),
            tags: input.tags,
            add_tags: Vec::new(),
            remove_tags: Vec::new(),
        };
        let m = domain::crm::accounts::update(&*db(ctx).await?, actor, &meta(ctx), id, input)
            .await
            .gql()?;
        Ok(Account::new(m))
    }

    /// Deletes an account (its contacts stay, unlinked); returns its id.
    async fn delete_account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Account").gql()?;
        let id = domain::crm::accounts::delete(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ID(id.to_string()))
    }

    /// Creates a contact. The email is unique per organization (case-insensitive): a
    /// duplicate answers `CONFLICT` with field `email`.
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let m = domain::crm::contacts::create(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            input.into_domain()?,
        )
        .await
        .gql()?;
        Ok(Contact(m))
    }

    /// Creates up to 100 contacts: all are validated first (fields named `input.<i>.<field>`),
    /// then either all land or none.
    async fn create_contacts(
        &self,
        ctx: &Context<'_>,
        input: Vec<ContactInput>,
    ) -> async_graphql::Result<Vec<Contact>> {
        let actor = actor(ctx)?;
        let inputs = input
            .into_iter()
            .map(ContactInput::into_domain)
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let ms = domain::crm::contacts::create_many(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            inputs,
            "input",
        )
        .await
        .gql()?;
        Ok(ms.into_iter().map(Contact).collect())
    }

    /// Creates the contact with `input.email` (required), or updates the one that has it.
    async fn upsert_contact(
        &self,
        ctx: &Context<'_>,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let m = domain::crm::contacts::upsert(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            input.into_domain()?,
        )
        .await
        .gql()?;
        Ok(Contact(m))
    }

    /// Changes a contact; fields left out stay as they are, `null` clears one.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        let m = domain::crm::contacts::update(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            id,
            input.into_domain()?,
        )
        .await
        .gql()?;
        Ok(Contact(m))
    }

    /// Adds and removes tags of an account.
    async fn tag_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: TagsInput,
    ) -> async_graphql::Result<Account> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Account").gql()?;
        let input = domain::crm::accounts::UpdateInput {
            add_tags: input.add,
            remove_tags: input.remove,
            ..Default::default()
        };
        let m = domain::crm::accounts::update(&*db(ctx).await?, actor, &meta(ctx), id, input)
            .await
            .gql()?;
        Ok(Account::new(m))
    }

    /// Adds and removes tags of a contact.
    async fn tag_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: TagsInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        let input = domain::crm::contacts::Input {
            add_tags: input.add,
            remove_tags: input.remove,
            ..Default::default()
        };
        let m = domain::crm::contacts::update(&*db(ctx).await?, actor, &meta(ctx), id, input)
            .await
            .gql()?;
        Ok(Contact(m))
    }

    /// Deletes a contact; returns its id.
    async fn delete_contact(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        let id = domain::crm::contacts::delete(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ID(id.to_string()))
    }
}
