//! What every GraphQL operation passes through around the schema, on every transport (HTTP
//! single and batch, WebSocket queries, mutations and subscriptions):
//!
//! 1. the document limits and the extra rate-limit counts ([`limits::admit`], which parses the
//!    document once: async-graphql reuses the parse), parse errors `GRAPHQL_PARSE_FAILED`; a
//!    document whose text was parsed and admitted before starts from a copy of that parse
//!    ([`super::documents`]);
//! 2. the variables against their declared types ([`variables`]);
//! 3. NUL in any input ([`nul`]);
//! 4. the schema itself (its recursion, depth and complexity limits, validation, execution);
//! 5. a mutation's commit announced to the job wakers ([`after_commit`]);
//! 6. a code on every error left without one ([`errors::fill_codes`]).
//!
//! These steps are not async-graphql extensions, and the schema must have none: with any
//! extension installed, async-graphql resolves every field through the extension chain (a
//! boxed future per extension per field, and a registry lookup of the field's type), which
//! cost a third of a list page's throughput (#22: the accounts page by score at 8 clients,
//! 598–652 requests/s with the six extensions these steps were, 959 with none). Clippy refuses
//! `SchemaBuilder::extension` (`clippy.toml`), so the schema stays without.

use std::sync::Arc;

use async_graphql::registry::Registry;
use async_graphql::{Data, Executor, OutputType, Request, Response, ServerError, SubscriptionType};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::documents::Documents;
use super::{
    MutationRoot, QueryRoot, SubscriptionRoot, after_commit, errors, limits, nul, variables,
};
use crate::state::AppState;

/// The schema as async-graphql builds it, without the steps around it.
pub type RawSchema = async_graphql::Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The served schema: every operation passes through the steps above.
#[derive(Clone)]
pub struct AppSchema {
    schema: RawSchema,
    /// The schema's types, for checking variables (async-graphql keeps its own registry to
    /// itself).
    types: Arc<Registry>,
    /// Documents parsed before, by their text.
    documents: Arc<Documents>,
}

impl AppSchema {
    pub fn new(schema: RawSchema) -> Self {
        let mut types = Registry::default();
        <QueryRoot as OutputType>::create_type_info(&mut types);
        <MutationRoot as OutputType>::create_type_info(&mut types);
        <SubscriptionRoot as SubscriptionType>::create_type_info(&mut types);
        Self {
            schema,
            types: Arc::new(types),
            documents: Arc::default(),
        }
    }

    /// The schema's SDL.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    fn state(&self) -> Option<&AppState> {
        self.schema.data::<AppState>()
    }

    /// Steps 1–3; `Ok(true)` when the document holds a mutation.
    async fn admit(
        &self,
        request: &mut Request,
        session: Option<&Data>,
    ) -> Result<bool, ServerError> {
        let reused = match self.documents.get(&request.query) {
            Some(doc) => {
                request.set_parsed_query(doc);
                true
            }
            None => false,
        };
        if let Some(state) = self.state() {
            let m = &state.metrics;
            let counter = if reused {
                &m.graphql_documents_reused
            } else {
                &m.graphql_documents_parsed
            };
            counter.inc();
        }
        limits::admit(self.state(), request, session).await?;
        if !reused {
            // `limits::admit` parsed it; the text steps aside while the parse is borrowed.
            let text = std::mem::take(&mut request.query);
            if let Ok(doc) = request.parsed_query() {
                self.documents.keep(&text, doc);
            }
            request.query = text;
        }
        variables::coerce_request(&self.types, request)?;
        let variables = std::mem::take(&mut request.variables);
        let checked = request.parsed_query().and_then(|doc| {
            nul::refuse(doc, &variables).map(|()| after_commit::holds_mutation(doc))
        });
        request.variables = variables;
        checked
    }
}

/// The data of type `T` in `request`'s data or, failing that, in `session` (a WebSocket
/// connection's).
pub(super) fn find<'a, T: std::any::Any>(
    request: &'a Request,
    session: Option<&'a Data>,
) -> Option<&'a T> {
    let id = std::any::TypeId::of::<T>();
    request
        .data
        .get(&id)
        .or_else(|| session?.get(&id))
        .and_then(|d| d.downcast_ref::<T>())
}

fn coded(mut resp: Response) -> Response {
    errors::fill_codes(&mut resp);
    resp
}

impl Executor for AppSchema {
    async fn execute(&self, mut request: Request) -> Response {
        let mutation = match self.admit(&mut request, None).await {
            Ok(mutation) => mutation,
            Err(e) => return Response::from_errors(vec![e]),
        };
        let execution = self.schema.execute(request);
        coded(if mutation {
            after_commit::announcing(self.state(), execution).await
        } else {
            execution.await
        })
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let this = self.clone();
        futures::stream::once(async move {
            let mutation = match this.admit(&mut request, session.as_deref()).await {
                Ok(mutation) => mutation,
                Err(e) => {
                    return futures::stream::once(async move { Response::from_errors(vec![e]) })
                        .boxed();
                }
            };
            let mut stream = Executor::execute_stream(&this.schema, request, session);
            if !mutation {
                return stream;
            }
            // A mutation's stream answers once; it runs while that answer is awaited.
            futures::stream::once(async move {
                after_commit::announcing(this.state(), stream.next())
                    .await
                    .unwrap_or_default()
            })
            .boxed()
        })
        .flatten()
        .map(coded)
        .boxed()
    }
}
