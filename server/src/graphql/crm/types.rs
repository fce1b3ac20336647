//! GraphQL types of the CRM: each wraps a domain model (entities never derive GraphQL).

use async_graphql::{Context, Enum, ID, Json, Object};
use chrono::{DateTime, Utc};
use entity::{companies, contacts};

use super::super::identity::state;
use crate::graphql::actor;

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

/// A company the organization sells to (the original's Company).
pub struct Account(pub companies::Model);

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
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A person in the CRM.
pub struct Contact(pub contacts::Model);

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
    async fn tags(&self) -> Vec<String> {
        tags(&self.0.tags)
    }
    /// The account the contact works for.
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        let Some(id) = self.0.account_id else {
            return Ok(None);
        };
        let actor = actor(ctx)?;
        let found = domain::accounts::by_ids(&state(ctx)?.db, actor, vec![id])
            .await
            .map_err(crate::graphql::gql_error)?;
        Ok(found.into_iter().next().map(Account))
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
