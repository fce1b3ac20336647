//! The server itself: `serverInfo` (version and database engine) and the `serverTime`
//! subscription, which exercises the WebSocket transport end to end.

use std::time::Duration;

use async_graphql::{Context, Enum, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::IntervalStream;

use super::GqlResultExt;
use crate::state::AppState;

/// Which database engine the server runs on.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// The running server.
#[derive(SimpleObject)]
pub struct ServerInfo {
    /// The DevSignal version, e.g. `0.1.0`.
    version: String,
    /// The database engine in use.
    database: DatabaseKind,
}

#[derive(Default)]
pub struct SystemQuery;

#[Object]
impl SystemQuery {
    /// The server's version and database engine. Needs no authentication.
    async fn server_info(&self, ctx: &Context<'_>) -> async_graphql::Result<ServerInfo> {
        let state = ctx.data::<AppState>()?;
        let database = match domain::db::Backend::of(&state.db) {
            domain::db::Backend::Sqlite => DatabaseKind::Sqlite,
            domain::db::Backend::Postgres => DatabaseKind::Postgres,
        };
        Ok(ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            database,
        })
    }
}

/// Bounds of `serverTime(intervalMs:)`.
const MIN_INTERVAL_MS: i32 = 100;
const MAX_INTERVAL_MS: i32 = 60_000;

#[derive(Default)]
pub struct SystemSubscription;

#[Subscription]
impl SystemSubscription {
    /// The server's clock (UTC): immediately, then every `intervalMs` milliseconds
    /// (100 to 60000). Ends when the server shuts down.
    async fn server_time(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1000)] interval_ms: i32,
    ) -> async_graphql::Result<impl Stream<Item = DateTime<Utc>> + use<>> {
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
            return Err(domain::Error::invalid(
                "intervalMs",
                format!("must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}"),
            ))
            .gql();
        }
        let shutdown = ctx.data::<AppState>()?.shutdown.clone();
        let period = Duration::from_millis(interval_ms.unsigned_abs().into());
        Ok(IntervalStream::new(tokio::time::interval(period))
            .map(|_| Utc::now())
            .take_until(shutdown.cancelled_owned()))
    }
}
