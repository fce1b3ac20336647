//! Announces each executed mutation once it has finished (its transactions are committed), over
//! every transport: HTTP, and operations sent on a WebSocket connection, which no HTTP middleware
//! sees. Queries and subscriptions change nothing and announce nothing.

use async_graphql::parser::types::{ExecutableDocument, OperationType};

use crate::state::AppState;

/// True when `doc` holds a mutation (whichever operation the request names: announcing a
/// query's commit too is harmless, missing a mutation's is not).
pub(super) fn holds_mutation(doc: &ExecutableDocument) -> bool {
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Mutation)
}

/// Runs `execution` (a mutation's), then tells the process's job wakers when the jobs its
/// transactions enqueued are due.
pub(super) async fn announcing<F: Future>(state: Option<&AppState>, execution: F) -> F::Output {
    let (out, jobs_due) = domain::queue::noting_due_jobs(execution).await;
    if let Some(state) = state {
        state.commits.committed(jobs_due);
    }
    out
}
