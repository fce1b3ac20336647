//! What every GraphQL resolver shares: the request's actor and role checks, the server state,
//! audit metadata and client address, the one id parser, and Relay connections over domain
//! pages. Resolvers of every area use these and nothing of each other's.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, MaybeUndefined, Object};
use domain::Meta;
use domain::crm::{Page, PageRequest};
use uuid::Uuid;

use super::GqlResultExt;
use super::crm::loaders::{CrmLoader, CrmLoaders, SlottedDb};
use super::errors::gql_error;
use crate::auth::ClientIp;
use crate::state::AppState;

/// The authenticated actor of this request, or `UNAUTHENTICATED`. The HTTP and WebSocket
/// transports put an `Option<domain::Actor>` into the request data after checking credentials.
pub fn actor<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a domain::Actor> {
    ctx.data_opt::<Option<domain::Actor>>()
        .and_then(Option::as_ref)
        .ok_or_else(|| {
            gql_error(domain::Error::Unauthenticated(
                "authentication required".into(),
            ))
        })
}

/// The actor, if it holds at least `role`; otherwise `UNAUTHENTICATED` or `FORBIDDEN`.
pub fn require_role<'a>(
    ctx: &Context<'a>,
    role: domain::Role,
) -> async_graphql::Result<&'a domain::Actor> {
    let actor = actor(ctx)?;
    actor.require_role(role).gql()?;
    Ok(actor)
}

/// The server state the schema was built with.
pub fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}

/// The database pool for one domain call, holding one of the request's database slots until the
/// returned guard drops: pass `&*db(ctx).await?` in the call's statement, so the slot is freed
/// before the result's fields resolve. Every resolver that queries goes through here (or a
/// loader), so one request holds at most `DATABASE_REQUEST_CONNECTIONS` connections at once.
pub async fn db<'a>(ctx: &Context<'a>) -> async_graphql::Result<SlottedDb<'a>> {
    loader(ctx)?.db().await
}

/// The database a list page or a search of a query operation reads: the read replica when
/// `DATABASE_READ_URL` is set, else the primary. Mutations and subscriptions read the primary
/// (what they return must show what they wrote), and so does any lookup by id, where a caller
/// fetches what it has just created.
pub async fn read_db<'a>(ctx: &Context<'a>) -> async_graphql::Result<SlottedDb<'a>> {
    let loader = loader(ctx)?;
    if ctx.query_env.operation.node.ty == async_graphql::parser::types::OperationType::Query {
        loader.replica().await
    } else {
        loader.db().await
    }
}

/// The request's loader.
fn loader<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a CrmLoader> {
    Ok(ctx.data::<CrmLoaders>()?.loader())
}

/// The audit metadata (client address, user agent) of this request.
pub fn meta(ctx: &Context<'_>) -> Meta {
    ctx.data_opt::<Meta>().cloned().unwrap_or_default()
}

/// The client address of this request, for rate limits.
pub fn client_ip(ctx: &Context<'_>) -> ClientIp {
    ctx.data_opt::<ClientIp>()
        .cloned()
        .unwrap_or_else(|| ClientIp::address("unknown"))
}

fn uuid(id: &ID) -> Option<Uuid> {
    Uuid::parse_str(id.as_str()).ok()
}

/// The id of the object an operation targets: a malformed id names no object, so it is
/// `NOT_FOUND` like another organization's id.
pub fn parse_id(id: &ID, entity: &'static str) -> Result<Uuid, domain::Error> {
    uuid(id).ok_or(domain::Error::NotFound { entity })
}

/// An id given in an input or filter field: malformed is `BAD_USER_INPUT` naming the field.
pub fn input_id(id: &ID, field: &str) -> async_graphql::Result<Uuid> {
    uuid(id)
        .ok_or_else(|| domain::Error::invalid(field, "is not an id"))
        .gql()
}

/// An optional id field of an input or filter.
pub fn opt_input_id(id: Option<ID>, field: &str) -> async_graphql::Result<Option<Uuid>> {
    id.map(|id| input_id(&id, field)).transpose()
}

/// A link field of an input: absent (`None`), `null` (unlink: `Some(None)`) or an id.
pub fn maybe_input_id(
    v: MaybeUndefined<ID>,
    field: &str,
) -> async_graphql::Result<Option<Option<Uuid>>> {
    match v {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(id) => input_id(&id, field).map(|u| Some(Some(u))),
    }
}

/// Extra fields of every list connection.
pub struct ConnectionExtra {
    /// Counted only when the query selects `totalCount` ([`page_request`] looks ahead).
    total: Option<u64>,
}

#[Object]
impl ConnectionExtra {
    /// How many rows match the filter, over all pages.
    async fn total_count(&self) -> async_graphql::Result<u64> {
        self.total.ok_or_else(|| {
            gql_error(domain::Error::Internal(
                "totalCount selected but not counted".into(),
            ))
        })
    }
}

/// A Relay connection of a list, with `totalCount`.
pub type ListConnection<T> = Connection<String, T, ConnectionExtra, EmptyFields>;

/// A domain page as a Relay connection, each item wrapped by `wrap`.
pub fn connection<M, T>(page: Page<M>, wrap: impl Fn(M) -> T) -> ListConnection<T>
where
    T: async_graphql::OutputType,
{
    let mut conn = Connection::with_additional_fields(
        page.has_previous,
        page.has_next,
        ConnectionExtra { total: page.total },
    );
    conn.edges.extend(
        page.items
            .into_iter()
            .zip(page.cursors)
            .map(|(m, c)| Edge::new(c, wrap(m))),
    );
    conn
}

/// Relay paging arguments as a domain page request (no order: the caller adds it). `ctx` is
/// the connection field's: the rows are counted only when it selects `totalCount`.
pub fn page_request(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> async_graphql::Result<PageRequest> {
    let count = |n: Option<i32>, field: &str| -> async_graphql::Result<Option<u64>> {
        n.map(|n| {
            u64::try_from(n)
                .map_err(|_| domain::Error::invalid(field, "must be between 1 and 100"))
                .gql()
        })
        .transpose()
    };
    Ok(PageRequest {
        first: count(first, "first")?,
        after,
        last: count(last, "last")?,
        before,
        order: None,
        count: ctx.look_ahead().field("totalCount").exists(),
    })
}

/// The complexity of a list or connection field: its own 1 plus its selection counted once per
/// row it may return (`first`, or `last`, or `default` rows when neither is given). Used as
/// `#[graphql(complexity = "list_complexity(first, None, DEFAULT_PAGE_SIZE, child_complexity)")]`.
pub fn list_complexity(
    first: Option<i32>,
    last: Option<i32>,
    default: usize,
    child_complexity: usize,
) -> usize {
    let rows = first
        .or(last)
        .map_or(default, |n| usize::try_from(n).unwrap_or(0))
        .max(1);
    rows.saturating_mul(child_complexity).saturating_add(1)
}
