//! Per-request DataLoaders for the CRM relations (CONVENTIONS 10). One [`CrmLoader`] is built
//! for each request with the request's actor, so every batch is scoped by the caller's
//! organization; the relations of a whole page resolve in one statement per relation.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use domain::Actor;
use entity::{companies, contacts, deals, users};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::graphql::gql_error;

/// Loads CRM rows by id for the request's actor.
pub struct CrmLoader {
    db: DatabaseConnection,
    actor: Option<Actor>,
}

/// The request's loader, as resolvers find it in the context (shared by a batch's requests).
pub type CrmLoaders = Arc<DataLoader<CrmLoader>>;

/// A new loader for one request.
pub fn loaders(db: DatabaseConnection, actor: Option<Actor>) -> CrmLoaders {
    Arc::new(DataLoader::new(CrmLoader { db, actor }, tokio::spawn))
}

impl CrmLoader {
    fn actor(&self) -> Result<&Actor, async_graphql::Error> {
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

by_id!(AccountId, companies::Model, domain::accounts::by_ids);
by_id!(ContactId, contacts::Model, domain::contacts::by_ids);
by_id!(DealId, deals::Model, domain::deals::by_ids);
by_id!(UserId, users::Model, domain::crm::members_by_ids);
