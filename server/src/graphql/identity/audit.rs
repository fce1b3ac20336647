//! `auditLog(first, after)`: the organization's audit log, newest first (ADMIN or OWNER).

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, SimpleObject};

use super::types::AuditEntry;
use crate::graphql::common::db;
use crate::graphql::{GqlResultExt, actor};

#[derive(SimpleObject)]
pub struct AuditLogExtra {
    pub total_count: u64,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Sign-ins, failed sign-ins, role changes, removals, key creation and revocation, … newest
    /// first. `after` is a cursor from a previous page.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AuditEntry, AuditLogExtra, EmptyFields>> {
        let actor = actor(ctx)?;
        let page = domain::audit::list(
            &*db(ctx).await?,
            actor,
            u64::try_from(first.unwrap_or(20)).unwrap_or(0),
            after.as_deref(),
        )
        .await
        .gql()?;
        let mut conn = Connection::with_additional_fields(
            page.has_previous,
            page.has_next,
            AuditLogExtra {
                total_count: page.total,
            },
        );
        conn.edges.extend(
            page.entries
                .into_iter()
                .zip(page.cursors)
                .map(|(e, c)| Edge::new(c, AuditEntry::from(e))),
        );
        Ok(conn)
    }
}
