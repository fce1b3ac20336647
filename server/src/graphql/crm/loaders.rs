//! Per-request DataLoaders for the CRM relations. One [`CrmLoader`] is built
//! for each request with the request's actor, so every batch is scoped by the caller's
//! organization; the relations of a whole page resolve in one statement per relation.
//!
//! The loader also holds the request's database slots ([`CrmLoader::db`]): every loader batch
//! and every resolver that queries (through `common::db`) takes one for its statement, so one
//! request (a batch's requests together, since they share the loader) holds at most
//! `DATABASE_REQUEST_CONNECTIONS` pooled connections at once, however many aliases it runs.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use domain::Actor;
use domain::db::rows::Fields;
use entity::{activities, companies, contacts, deals, enrichments, users};
use sea_orm::DatabaseConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::graphql::gql_error;

/// Loads CRM rows by id for the request's actor.
pub struct CrmLoader {
    db: DatabaseConnection,
    /// The read replica list and search queries use (`DATABASE_READ_URL`), when configured.
    replica: Option<DatabaseConnection>,
    pub(crate) actor: Option<Actor>,
    /// The request's database slots (`DATABASE_REQUEST_CONNECTIONS`).
    slots: Arc<Semaphore>,
}

/// The pool, while holding one of the request's database slots (released on drop).
pub struct SlottedDb<'a> {
    db: &'a DatabaseConnection,
    _slot: OwnedSemaphorePermit,
}

impl Deref for SlottedDb<'_> {
    type Target = DatabaseConnection;
    fn deref(&self) -> &DatabaseConnection {
        self.db
    }
}

/// The request's loader, as resolvers find it in the context (shared by a batch's requests).
pub type CrmLoaders = Arc<DataLoader<CrmLoader>>;

/// How long a loader waits, once its fetch starts, for more keys: none, since the [`Gate`]
/// starts it only when the request has asked for every key it can (async-graphql's default,
/// 1 ms, and the 5 ms here before were paid by every request with a nested relation, and
/// still split a page's keys over several statements on a busy machine).
const BATCH_DELAY: Duration = Duration::ZERO;

/// A new loader for one request: `db` is the primary, `replica` the read replica if any, and
/// the request holds at most `slots` pooled connections at once (at least one). Its fetches
/// wait for `gate`: run the request's execution through [`Gate::run`].
pub fn loaders(
    db: DatabaseConnection,
    replica: Option<DatabaseConnection>,
    actor: Option<Actor>,
    slots: usize,
    gate: &Gate,
) -> CrmLoaders {
    let loader = CrmLoader {
        db,
        replica,
        actor,
        slots: Arc::new(Semaphore::new(slots.max(1))),
    };
    let gate = gate.clone();
    Arc::new(DataLoader::new(loader, move |fetch| gate.spawn(fetch)).delay(BATCH_DELAY))
}

/// Holds a request's loader fetches until the request has asked for every key it can: until a
/// poll of the request returns without having woken it ([`Gated::poll`]). A fetch started at
/// once takes only the keys asked for so far; one started after a fixed delay waits for
/// nothing on a quiet machine and too little on a busy one.
#[derive(Clone, Default)]
pub struct Gate(Arc<std::sync::Mutex<Held>>);

#[derive(Default)]
struct Held {
    /// Whether a [`Gate::run`] future is inside a poll of the request.
    polling: bool,
    fetches: Vec<futures::future::BoxFuture<'static, ()>>,
}

impl Gate {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The loader's spawner: held while the request is polling, started at once otherwise.
    fn spawn(&self, fetch: futures::future::BoxFuture<'static, ()>) {
        let mut held = self.held();
        if held.polling {
            held.fetches.push(fetch);
        } else {
            drop(held);
            tokio::spawn(fetch);
        }
    }

    /// Runs `request` (the execution the loaders serve), starting the fetches each poll asked
    /// for once that poll returns.
    pub fn run<F: std::future::Future>(&self, request: F) -> Gated<F> {
        Gated {
            request: Box::pin(request),
            gate: self.clone(),
        }
    }
}

/// A request's execution behind its [`Gate`].
pub struct Gated<F> {
    request: std::pin::Pin<Box<F>>,
    gate: Gate,
}

impl<F: std::future::Future> std::future::Future for Gated<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // async-graphql resolves a container's fields in a `FuturesUnordered`, which wakes its
        // task and yields once it has polled every field: a page of 50 nodes takes some 25
        // polls to reach every node's resolvers. A poll that woke the request is such a yield,
        // and more keys follow in the next one; a poll that did not is the request waiting,
        // for its loaders among others: that is when their fetches start.
        let waker = Arc::new(Flagged {
            woken: std::sync::atomic::AtomicBool::new(false),
            inner: cx.waker().clone(),
        });
        self.gate.held().polling = true;
        let out = self
            .request
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker.clone().into()));
        let yielded = out.is_pending() && waker.woken.load(std::sync::atomic::Ordering::Acquire);
        let fetches = {
            let mut held = self.gate.held();
            if yielded {
                Vec::new()
            } else {
                held.polling = false;
                std::mem::take(&mut held.fetches)
            }
        };
        if yielded {
            // Held until the poll after; `polling` stays set meanwhile, so fetches asked for
            // from elsewhere wait for that poll too.
            return out;
        }
        for fetch in fetches {
            tokio::spawn(fetch);
        }
        out
    }
}

/// The request's waker, noting whether anything woke the request while it was being polled.
struct Flagged {
    woken: std::sync::atomic::AtomicBool,
    inner: std::task::Waker,
}

impl std::task::Wake for Flagged {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        self.inner.wake_by_ref();
    }
}

impl CrmLoader {
    /// The pool, once one of the request's database slots is free. Hold it for one domain call,
    /// never across a loader's `load` (that would wait for a slot of the same request).
    pub async fn db(&self) -> Result<SlottedDb<'_>, async_graphql::Error> {
        let slot = self.slots.clone().acquire_owned().await.map_err(|_| {
            gql_error(domain::Error::Internal(
                "the request's database slots closed".into(),
            ))
        })?;
        Ok(SlottedDb {
            db: &self.db,
            _slot: slot,
        })
    }

    /// The read replica (the primary when none is configured), once one of the request's
    /// database slots is free. Only for reads that may lag the primary by the replication delay:
    /// list pages and search, never a read that must see this request's or the caller's writes.
    pub async fn replica(&self) -> Result<SlottedDb<'_>, async_graphql::Error> {
        let mut slotted = self.db().await?;
        if let Some(replica) = &self.replica {
            slotted.db = replica;
        }
        Ok(slotted)
    }

    /// How many of the request's database slots are free now (tests and metrics).
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

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
                let rows = $load(&*self.db().await?, self.actor()?, ids)
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
        /// A parent id, how many of its newest rows a nested list shows (1 to
        /// [`MAX_NESTED`]) and which of their fields it reads (the others are placeholders), as
        /// a DataLoader key.
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub struct $key(pub Uuid, pub usize, pub Fields);

        impl Loader<$key> for CrmLoader {
            type Value = Vec<$entity::Model>;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[$key],
            ) -> Result<HashMap<$key, Vec<$entity::Model>>, Self::Error> {
                let mut parents: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                parents.sort_unstable();
                parents.dedup();
                let per_parent = keys.iter().map(|k| k.1).max().unwrap_or(0).min(MAX_NESTED);
                // One statement for every key: the fields any of them reads.
                let keep = keys.iter().fold(Fields::NONE, |keep, k| keep.with(k.2));
                let columns = domain::crm::ChildColumns {
                    organization: $entity::Column::OrganizationId,
                    parent: $entity::Column::$col,
                    id: $entity::Column::Id,
                    read_scope: $scope,
                };
                let rows = domain::crm::children::<$entity::Entity>(
                    &*self.db().await?,
                    self.actor()?,
                    columns,
                    parents,
                    per_parent as u64,
                    keep,
                )
                .await
                .map_err(gql_error)?;
                let mut of: HashMap<Uuid, Vec<$entity::Model>> = HashMap::new();
                for m in rows {
                    if let Some(p) = m.$parent {
                        of.entry(p).or_default().push(m);
                    }
                }
                // Newest first (ids are UUIDv7).
                for rows in of.values_mut() {
                    rows.sort_unstable_by(|a, b| b.id.cmp(&a.id));
                }
                // A parent's rows move to its last key (usually its only one); keys before it
                // (the same parent asked for with other sizes) get copies.
                let mut keys_of: HashMap<Uuid, usize> = HashMap::with_capacity(of.len());
                for k in keys {
                    *keys_of.entry(k.0).or_default() += 1;
                }
                Ok(keys
                    .iter()
                    .map(|k| {
                        let left = keys_of.get_mut(&k.0).map(|n| {
                            *n -= 1;
                            *n
                        });
                        let rows = match (left, of.get_mut(&k.0)) {
                            (Some(0), Some(rows)) => {
                                let mut rows = std::mem::take(rows);
                                rows.truncate(k.1);
                                rows
                            }
                            (_, Some(rows)) => rows[..rows.len().min(k.1)].to_vec(),
                            (_, None) => Vec::new(),
                        };
                        (*k, rows)
                    })
                    .collect())
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
