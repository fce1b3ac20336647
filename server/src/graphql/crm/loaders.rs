//! Per-request DataLoaders for the CRM relations. One [`CrmLoader`] is built
//! for each request with the request's actor, so every batch is scoped by the caller's
//! organization; the relations of a whole page resolve in one statement per relation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use domain::Actor;
use entity::{activities, companies, contacts, deals, enrichments, users};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::graphql::gql_error;

/// Loads CRM rows by id for the request's actor.
pub struct CrmLoader {
    pub(crate) db: DatabaseConnection,
    pub(crate) actor: Option<Actor>,
}

/// The request's loader, as resolvers find it in the context (shared by a batch's requests).
pub type CrmLoaders = Arc<DataLoader<CrmLoader>>;

/// How long a loader gathers keys before it queries. The default (1 ms) split the keys of one
/// level of a page into several batches on a loaded machine.
const BATCH_DELAY: Duration = Duration::from_millis(5);

/// A new loader for one request.
pub fn loaders(db: DatabaseConnection, actor: Option<Actor>) -> CrmLoaders {
    Arc::new(DataLoader::new(CrmLoader { db, actor }, tokio::spawn).delay(BATCH_DELAY))
}

impl CrmLoader {
    pub(crate) fn actor(&self) -> Result<&Actor, async_graphql::Error> {
        self.actor.as_ref().ok_or_else(|| {
            gql_error(domain::Error::Unauthenticated(
                "sign in or pass an API key".into(),
            ))
        })
    }
}

macro_rules! by_id {
    ($key:ident, $model:ty, $load:path) => {
        /// A row id, as a DataLoader key.
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for CrmLoader {
            type Value = $model;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $model>, Self::Error> {
                let ids = keys.iter().map(|k| k.0).collect();
                let rows = $load(&self.db, self.actor()?, ids)
                    .await
                    .map_err(gql_error)?;
                Ok(rows.into_iter().map(|m| ($key(m.id), m)).collect())
            }
        }
    };
}

by_id!(AccountId, companies::Model, domain::crm::accounts::by_ids);
by_id!(ContactId, contacts::Model, domain::crm::contacts::by_ids);
by_id!(DealId, deals::Model, domain::crm::deals::by_ids);
by_id!(UserId, users::Model, domain::crm::members_by_ids);
by_id!(EnrichmentId, enrichments::Model, domain::enrichment::by_ids);

/// The most rows a nested list (`Account.contacts`, …) returns per parent.
pub const MAX_NESTED: usize = 100;

macro_rules! children {
    ($key:ident, $entity:ident, $parent:ident, $col:ident, $scope:literal) => {
        /// A parent id, as the DataLoader key of one of its nested lists.
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for CrmLoader {
            type Value = Vec<$entity::Model>;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[$key],
            ) -> Result<HashMap<$key, Vec<$entity::Model>>, Self::Error> {
                let parents = keys.iter().map(|k| k.0).collect();
                let columns = domain::crm::ChildColumns {
                    organization: $entity::Column::OrganizationId,
                    parent: $entity::Column::$col,
                    id: $entity::Column::Id,
                    read_scope: $scope,
                };
                let rows = domain::crm::children::<$entity::Entity>(
                    &self.db,
                    self.actor()?,
                    columns,
                    parents,
                )
                .await
                .map_err(gql_error)?;
                let mut out: HashMap<$key, Vec<$entity::Model>> =
                    keys.iter().map(|k| (*k, Vec::new())).collect();
                for m in rows {
                    if let Some(list) = m.$parent.and_then(|p| out.get_mut(&$key(p)))
                        && list.len() < MAX_NESTED
                    {
                        list.push(m);
                    }
                }
                Ok(out)
            }
        }
    };
}

children!(
    ContactsOfAccount,
    contacts,
    account_id,
    AccountId,
    "contacts:read"
);
children!(DealsOfAccount, deals, account_id, AccountId, "deals:read");
children!(
    ActivitiesOfAccount,
    activities,
    account_id,
    AccountId,
    "activities:read"
);
children!(DealsOfContact, deals, contact_id, ContactId, "deals:read");
