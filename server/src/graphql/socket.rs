//! Bounds on GraphQL over WebSocket: connections open at once per client address
//! (`WS_MAX_CONNECTIONS`, refused at the upgrade with `429 RATE_LIMITED`), operations running at
//! once on one connection (`WS_MAX_SUBSCRIPTIONS`, each one beyond answered with a
//! `LIMIT_EXCEEDED` error), the size of each message (`GRAPHQL_MAX_RESPONSE_BYTES`), and how long
//! a query or mutation may run (`GRAPHQL_TIMEOUT_MS`, as over HTTP; subscriptions run on).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use dashmap::DashMap;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::AppSchema;

/// Open WebSocket connections per client address, shared by every upgrade of a router.
#[derive(Clone, Default)]
pub struct Connections(Arc<DashMap<String, usize>>);

/// One counted connection; dropping it (the socket closed) frees its place.
pub struct ConnectionSlot {
    map: Arc<DashMap<String, usize>>,
    ip: String,
}

impl Connections {
    /// Counts a new connection from `ip`, or `None` when it already has `max` open.
    pub fn open(&self, ip: &str, max: usize) -> Option<ConnectionSlot> {
        let mut open = self.0.entry(ip.to_owned()).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(ConnectionSlot {
            map: self.0.clone(),
            ip: ip.to_owned(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(mut open) = self.map.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
        }
        self.map.remove_if(&self.ip, |_, open| *open == 0);
    }
}

/// The schema as one connection's executor: at most `max_operations` running at once, each
/// message at most `max_response_bytes`, each query or mutation done within `timeout`.
#[derive(Clone)]
pub struct ConnectionExecutor {
    schema: AppSchema,
    running: Arc<AtomicUsize>,
    max_operations: usize,
    max_response_bytes: usize,
    timeout: Duration,
}

impl ConnectionExecutor {
    pub fn new(
        schema: AppSchema,
        max_operations: usize,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            schema,
            running: Arc::new(AtomicUsize::new(0)),
            max_operations,
            max_response_bytes,
            timeout,
        }
    }
}

/// True when the operation `request` runs is a subscription (a document that does not parse is
/// not: the schema answers it at once).
fn is_subscription(request: &Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let ty = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) => ops
            .values()
            .next()
            .filter(|_| ops.len() == 1)
            .map(|op| op.node.ty),
    };
    ty == Some(OperationType::Subscription)
}

/// The `TIMEOUT` answer of an operation stopped at its deadline.
fn timeout_error(timeout: Duration) -> Response {
    tracing::warn!(
        timeoutMs = timeout.as_millis() as u64,
        "GraphQL operation over WebSocket stopped at its deadline"
    );
    let mut e = ServerError::new(super::transport::timeout_message(timeout), None);
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", domain::Code::Timeout.as_str());
    Response::from_errors(vec![e])
}

/// `stream` (one query's or mutation's answers), stopped with a `TIMEOUT` answer if it has not
/// ended within `timeout`.
fn under_deadline(
    stream: BoxStream<'static, Response>,
    timeout: Duration,
) -> BoxStream<'static, Response> {
    let deadline = Box::pin(tokio::time::sleep(timeout));
    futures::stream::unfold(Some((stream, deadline)), move |state| async move {
        let (mut stream, mut deadline) = state?;
        tokio::select! {
            item = stream.next() => item.map(|resp| (resp, Some((stream, deadline)))),
            () = &mut deadline => Some((timeout_error(timeout), None)),
        }
    })
    .boxed()
}

/// An operation's place on its connection, freed when its stream ends or is stopped.
struct OperationSlot(Arc<AtomicUsize>);

impl Drop for OperationSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn limit_error(message: String) -> Response {
    let mut e = ServerError::new(message, None);
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", domain::Code::LimitExceeded.as_str());
    Response::from_errors(vec![e])
}

/// `resp`, or a `LIMIT_EXCEEDED` error in its place when its JSON is larger than `max` bytes.
pub fn capped(resp: Response, max: usize) -> Response {
    let size = serde_json::to_vec(&resp).map_or(0, |b| b.len());
    if size > max {
        tracing::warn!(size, max, "GraphQL response over the size limit refused");
        return limit_error(too_large_message(size, max));
    }
    resp
}

/// The message of a response refused for its size.
pub fn too_large_message(size: usize, max: usize) -> String {
    format!(
        "the response would be {size} bytes; at most {max} are sent (GRAPHQL_MAX_RESPONSE_BYTES): \
         ask for fewer rows or fields"
    )
}

impl Executor for ConnectionExecutor {
    fn execute(&self, request: Request) -> impl Future<Output = Response> + Send {
        let schema = self.schema.clone();
        let max = self.max_response_bytes;
        let timeout = self.timeout;
        async move {
            match tokio::time::timeout(timeout, schema.execute(request)).await {
                Ok(resp) => capped(resp, max),
                Err(_) => timeout_error(timeout),
            }
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let before = self.running.fetch_add(1, Ordering::SeqCst);
        let slot = OperationSlot(self.running.clone());
        if before >= self.max_operations {
            drop(slot);
            tracing::warn!(
                max = self.max_operations,
                "WebSocket operation over the per-connection limit refused"
            );
            return futures::stream::once(futures::future::ready(limit_error(format!(
                "this connection already runs {} operations; at most {} may run at once on one \
                 connection (WS_MAX_SUBSCRIPTIONS): stop one first",
                before, self.max_operations
            ))))
            .boxed();
        }
        let max = self.max_response_bytes;
        // Queries and mutations run under the HTTP deadline; a subscription lives as long as
        // its client wants.
        let subscription = is_subscription(&request);
        let mut stream = Executor::execute_stream(&self.schema, request, session_data);
        if !subscription {
            stream = under_deadline(stream, self.timeout);
        }
        stream
            .map(move |resp| {
                let _running = &slot;
                capped(resp, max)
            })
            .boxed()
    }
}
