//! Announces each executed mutation once it has finished (its transactions are committed), over
//! every transport: HTTP, and operations sent on a WebSocket connection, which no HTTP middleware
//! sees. Queries and subscriptions change nothing and announce nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Response, ServerResult, Variables};

use crate::state::AppState;

/// The extension factory (one extension per operation).
pub struct AfterCommit;

impl ExtensionFactory for AfterCommit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AfterCommitExtension::default())
    }
}

#[derive(Default)]
struct AfterCommitExtension {
    mutation: AtomicBool,
}

#[async_trait::async_trait]
impl Extension for AfterCommitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let mutation = doc
            .operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation);
        self.mutation.store(mutation, Ordering::Relaxed);
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if !self.mutation.load(Ordering::Relaxed) {
            return next.run(ctx, operation_name).await;
        }
        let (resp, jobs_due) = domain::queue::noting_due_jobs(next.run(ctx, operation_name)).await;
        if let Some(state) = ctx.data_opt::<AppState>() {
            state.commits.committed(jobs_due);
        }
        resp
    }
}
