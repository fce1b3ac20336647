//! Error translation for GraphQL: every error carries `extensions.code`.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensions, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use futures::StreamExt;
use futures::stream::BoxStream;

/// Turns a domain error into a GraphQL error with `extensions.code` (and `fields` for input
/// errors). Internal errors are logged here and leave with a generic message.
pub fn gql_error(err: domain::Error) -> async_graphql::Error {
    if err.is_internal() {
        tracing::error!(error = ?err, "internal error");
    }
    let code = err.code();
    let fields: Vec<Value> = match &err {
        domain::Error::Validation(fields) => fields
            .iter()
            .map(|f| {
                Value::from_json(serde_json::json!({"field": f.field, "message": f.message}))
                    .unwrap_or(Value::Null)
            })
            .collect(),
        domain::Error::Conflict { field, message } => vec![
            Value::from_json(serde_json::json!({"field": field, "message": message}))
                .unwrap_or(Value::Null),
        ],
        _ => Vec::new(),
    };
    let retry = err.retry_after_secs();
    let quota = match &err {
        domain::Error::Quota {
            limit,
            allowed,
            used,
            plan,
        } => Some((*limit, *allowed, *used, plan.clone())),
        _ => None,
    };
    async_graphql::Error::new(err.public_message()).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some((limit, allowed, used, plan)) = &quota {
            ext.set("limit", *limit);
            ext.set("allowed", *allowed);
            ext.set("current", *used);
            ext.set("plan", plan.as_str());
        }
        if !fields.is_empty() {
            ext.set("fields", Value::List(fields.clone()));
        }
        if let Some(secs) = retry {
            ext.set("retryAfter", secs);
        }
    })
}

/// `result.gql()?` in resolvers.
pub trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, domain::Error> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(gql_error)
    }
}

/// Gives a code to every error that left without one.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

fn set_code(err: &mut ServerError, code: domain::Code) {
    if !has_code(err) {
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
}

fn fill_codes(resp: &mut Response) {
    for err in &mut resp.errors {
        if has_code(err) {
            continue;
        }
        // Errors from async-graphql itself while coercing a resolver's arguments.
        let code = if !err.path.is_empty()
            && (err.message.starts_with("Failed to parse")
                || err.message.starts_with("Invalid value")
                || err.message.starts_with("Expected input type"))
        {
            domain::Code::BadUserInput
        } else {
            domain::Code::Internal
        };
        set_code(err, code);
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut resp = next.run(ctx).await;
        fill_codes(&mut resp);
        resp
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut resp| {
                fill_codes(&mut resp);
                resp
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut e| {
            set_code(&mut e, domain::Code::GraphqlParseFailed);
            e
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for e in &mut errors {
                set_code(e, domain::Code::GraphqlValidationFailed);
            }
            errors
        })
    }
}
