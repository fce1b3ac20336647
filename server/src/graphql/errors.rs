//! Error translation for GraphQL: every error carries `extensions.code`.

use async_graphql::{ErrorExtensions, Response, ServerError, Value};

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

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

pub(super) fn set_code(err: &mut ServerError, code: domain::Code) {
    if !has_code(err) {
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
}

/// Gives a code to every error of `resp` that has none. The document has parsed and passed the
/// checks made before the schema sees it ([`super::pipeline`]), whose errors carry codes, so an
/// error without one in a response with no data where no error has a path was raised before
/// execution: the parse-time recursion limit (`GRAPHQL_PARSE_FAILED`) or validation, depth and
/// complexity included (`GRAPHQL_VALIDATION_FAILED`). Errors async-graphql itself raises while coercing a
/// resolver's arguments are `BAD_USER_INPUT`; anything else left without a code is `INTERNAL`.
pub(super) fn fill_codes(resp: &mut Response) {
    let before_execution =
        resp.data == Value::Null && resp.errors.iter().all(|e| e.path.is_empty());
    for err in &mut resp.errors {
        if has_code(err) {
            continue;
        }
        let code = if before_execution {
            if err.message.starts_with("The recursion depth of the query") {
                domain::Code::GraphqlParseFailed
            } else {
                domain::Code::GraphqlValidationFailed
            }
        } else if !err.path.is_empty()
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
