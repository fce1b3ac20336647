//! The one error type of the domain. Few variants, each with a stable code that the server
//! turns into a GraphQL `extensions.code` or an HTTP status. Internal details stay in logs.

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One offending input field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{message}")]
    Conflict { field: String, message: String },
    #[error("{}", validation_message(.0))]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("rate limit exceeded, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    PlanLimit(String),
    /// A counted plan limit is used up: `limit` names it (`aiBriefsPerMonth`), `allowed` is the
    /// plan's value and `used` what was used. Sent as `PLAN_LIMIT` with these as extensions.
    #[error("the {plan} plan allows {allowed} ({limit}); {used} used")]
    Quota {
        limit: &'static str,
        allowed: u64,
        used: u64,
        plan: String,
    },
    /// An outside service the request depends on failed or refused (the message says which
    /// and what to do).
    #[error("{0}")]
    Upstream(String),
    /// A capability this server is not configured for (billing without Stripe keys); the
    /// message names what to set.
    #[error("{0}")]
    NotConfigured(String),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every error code the server sends, in REST bodies (`error.code`) and GraphQL errors
/// (`extensions.code`). This is the one list: ARCHITECTURE.md's table is checked against it by a
/// test, and every place that sends a code names it through this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// An input is invalid; `fields` names each offending field and says what is wrong.
    BadUserInput,
    /// The request itself is malformed (not JSON, not a GraphQL request, a bad header).
    BadRequest,
    /// The GraphQL document does not parse.
    GraphqlParseFailed,
    /// The GraphQL document does not validate against the schema, or exceeds a limit on documents (size, fields once fragments are expanded, aliases, fragments, directives, mutation fields, nesting, depth, complexity).
    GraphqlValidationFailed,
    /// Credentials are missing, malformed, expired or revoked.
    Unauthenticated,
    /// The actor is known but its role or API-key scopes do not allow this.
    Forbidden,
    /// No such object in the actor's organization (another organization's ids answer this too), or no such route.
    NotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// The request took longer than the server allows.
    Timeout,
    /// A uniqueness rule refuses the change; `fields` names the field.
    Conflict,
    /// The body is larger than the server accepts (5 MB).
    PayloadTooLarge,
    /// The body's content type is not one the route accepts.
    UnsupportedMediaType,
    /// Too many requests; `Retry-After` (and `retryAfter` in GraphQL) says when to try again.
    RateLimited,
    /// The organization's plan does not allow more of this.
    PlanLimit,
    /// The request asks for more than a server limit allows (a GraphQL response larger than `GRAPHQL_MAX_RESPONSE_BYTES`, more than `WS_MAX_SUBSCRIPTIONS` operations on one WebSocket connection); the message names the limit.
    LimitExceeded,
    /// Something failed inside the server; the details are logged with the request id, never returned.
    Internal,
    /// An outside service the request depends on (e.g. an OAuth provider) failed.
    UpstreamError,
    /// The server cannot serve now (e.g. the database is unreachable); try again later.
    Unavailable,
    /// This server is not configured for what was asked (billing without Stripe keys); the message names what the operator must set.
    NotConfigured,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: &[Code] = &[
        Code::BadUserInput,
        Code::BadRequest,
        Code::GraphqlParseFailed,
        Code::GraphqlValidationFailed,
        Code::Unauthenticated,
        Code::Forbidden,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::Timeout,
        Code::Conflict,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::RateLimited,
        Code::PlanLimit,
        Code::LimitExceeded,
        Code::Internal,
        Code::UpstreamError,
        Code::Unavailable,
        Code::NotConfigured,
    ];

    /// The code as sent.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::BadRequest => "BAD_REQUEST",
            Code::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::Timeout => "TIMEOUT",
            Code::Conflict => "CONFLICT",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Code::RateLimited => "RATE_LIMITED",
            Code::PlanLimit => "PLAN_LIMIT",
            Code::LimitExceeded => "LIMIT_EXCEEDED",
            Code::Internal => "INTERNAL",
            Code::UpstreamError => "UPSTREAM_ERROR",
            Code::Unavailable => "UNAVAILABLE",
            Code::NotConfigured => "NOT_CONFIGURED",
        }
    }

    /// The HTTP status a REST response with this code carries.
    pub const fn http_status(self) -> u16 {
        match self {
            Code::BadUserInput => 400,
            Code::BadRequest => 400,
            Code::GraphqlParseFailed => 400,
            Code::GraphqlValidationFailed => 400,
            Code::Unauthenticated => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::Timeout => 408,
            Code::Conflict => 409,
            Code::PayloadTooLarge => 413,
            Code::UnsupportedMediaType => 415,
            Code::RateLimited => 429,
            Code::PlanLimit => 402,
            Code::LimitExceeded => 400,
            Code::Internal => 500,
            Code::UpstreamError => 502,
            Code::Unavailable => 503,
            Code::NotConfigured => 501,
        }
    }

    /// What the code means, for the documentation.
    pub const fn meaning(self) -> &'static str {
        match self {
            Code::BadUserInput => {
                "An input is invalid; `fields` names each offending field and says what is wrong."
            }
            Code::BadRequest => {
                "The request itself is malformed (not JSON, not a GraphQL request, a bad header)."
            }
            Code::GraphqlParseFailed => "The GraphQL document does not parse.",
            Code::GraphqlValidationFailed => {
                "The GraphQL document does not validate against the schema, or exceeds a limit on documents (size, fields once fragments are expanded, aliases, fragments, directives, mutation fields, nesting, depth, complexity)."
            }
            Code::Unauthenticated => "Credentials are missing, malformed, expired or revoked.",
            Code::Forbidden => {
                "The actor is known but its role or API-key scopes do not allow this."
            }
            Code::NotFound => {
                "No such object in the actor's organization (another organization's ids answer this too), or no such route."
            }
            Code::MethodNotAllowed => "The route exists but not for this HTTP method.",
            Code::Timeout => "The request took longer than the server allows.",
            Code::Conflict => "A uniqueness rule refuses the change; `fields` names the field.",
            Code::PayloadTooLarge => "The body is larger than the server accepts (5 MB).",
            Code::UnsupportedMediaType => "The body's content type is not one the route accepts.",
            Code::RateLimited => {
                "Too many requests; `Retry-After` (and `retryAfter` in GraphQL) says when to try again."
            }
            Code::PlanLimit => {
                "The organization's plan does not allow more of this; `limit`, `allowed`, `current` and `plan` name the limit, its value, the use and the plan (GraphQL extensions, REST error fields)."
            }
            Code::LimitExceeded => {
                "The request asks for more than a server limit allows (a GraphQL response larger than `GRAPHQL_MAX_RESPONSE_BYTES`, more than `WS_MAX_SUBSCRIPTIONS` operations on one WebSocket connection); the message names the limit."
            }
            Code::Internal => {
                "Something failed inside the server; the details are logged with the request id, never returned."
            }
            Code::UpstreamError => {
                "An outside service the request depends on (e.g. an OAuth provider) failed."
            }
            Code::Unavailable => {
                "The server cannot serve now (e.g. the database is unreachable); try again later."
            }
            Code::NotConfigured => {
                "This server is not configured for what was asked (billing without Stripe keys); the message names what the operator must set."
            }
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn validation_message(fields: &[FieldError]) -> String {
    match fields {
        [one] => format!("invalid {}: {}", one.field, one.message),
        _ => {
            let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            format!("invalid input: {}", names.join(", "))
        }
    }
}

impl Error {
    /// A single-field validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The stable, documented code of this error.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The [`Code`] of this error.
    pub fn kind(&self) -> Code {
        match self {
            Error::NotFound { .. } => Code::NotFound,
            Error::Conflict { .. } => Code::Conflict,
            Error::Validation(_) => Code::BadUserInput,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Forbidden(_) => Code::Forbidden,
            Error::RateLimited { .. } => Code::RateLimited,
            Error::PlanLimit(_) | Error::Quota { .. } => Code::PlanLimit,
            Error::Upstream(_) => Code::UpstreamError,
            Error::NotConfigured(_) => Code::NotConfigured,
            Error::Database(e) if db_unavailable(e) => Code::Unavailable,
            Error::Database(_) | Error::Internal(_) => Code::Internal,
        }
    }

    /// When a client may try again, in seconds: rate limits, and a database that is unreachable
    /// or busy right now.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ if self.kind() == Code::Unavailable => Some(UNAVAILABLE_RETRY_SECS),
            _ => None,
        }
    }

    /// True when the message must not reach a client (it may describe internals).
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Database(_) | Error::Internal(_))
    }

    /// The error as a REST body or a batch item's outcome shows it:
    /// `{"code", "message", "fields": [{"field", "message"}]}` (fields only for validation).
    pub fn body(&self) -> serde_json::Value {
        let fields: Vec<serde_json::Value> = match self {
            Error::Validation(f) => f
                .iter()
                .map(|f| serde_json::json!({"field": f.field, "message": f.message}))
                .collect(),
            _ => Vec::new(),
        };
        serde_json::json!({"code": self.code(), "message": self.public_message(), "fields": fields})
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        if self.kind() == Code::Unavailable {
            "the service cannot reach its database right now; try again shortly".to_owned()
        } else if self.is_internal() {
            "internal error".to_owned()
        } else {
            self.to_string()
        }
    }
}

/// What `Retry-After` says when the database is unavailable.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// True when `err` says the database cannot serve right now rather than that the statement is
/// wrong: no connection could be had (pool timeout, refused, reset, closed, TLS), the server is
/// shutting down or starting (PostgreSQL classes 08 and 57P, too many connections), or SQLite's
/// write lock stayed busy past the busy timeout. Such a request may succeed if retried.
pub fn db_unavailable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(e) = runtime else {
        return false;
    };
    match e.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            if code.len() == 5 {
                // A PostgreSQL SQLSTATE.
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            } else {
                // An SQLite result code: SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended or not.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            }
        }),
        _ => false,
    }
}

/// Maps a unique-constraint violation to `Conflict { field }`, anything else to `Database`
/// (CONVENTIONS 5: the database decides uniqueness).
pub fn on_unique(err: sea_orm::DbErr, field: &str, message: &str) -> Error {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Error::Conflict {
            field: field.to_owned(),
            message: message.to_owned(),
        },
        _ => Error::Database(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_internals_hidden() {
        assert_eq!(
            Error::invalid("email", "is malformed").code(),
            "BAD_USER_INPUT"
        );
        assert_eq!(
            Error::invalid("email", "is malformed").to_string(),
            "invalid email: is malformed"
        );
        let db = Error::Database(sea_orm::DbErr::Custom("secret table x".into()));
        assert_eq!(db.code(), "INTERNAL");
        assert_eq!(db.public_message(), "internal error");
        assert!(
            db.to_string().contains("secret table x"),
            "logs keep the cause: {db}"
        );
        assert_eq!(
            Error::NotFound { entity: "Account" }.to_string(),
            "Account not found"
        );
    }

    #[test]
    fn an_unreachable_database_is_unavailable_with_a_retry_not_internal() {
        let err = Error::Database(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        ));
        assert_eq!(err.kind(), Code::Unavailable);
        assert_eq!(err.retry_after_secs(), Some(UNAVAILABLE_RETRY_SECS));
        assert!(!err.public_message().contains("pool"), "no internals");
        let io = sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(
            sea_orm::sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        )));
        assert_eq!(Error::Database(io).kind(), Code::Unavailable);
        let wrong = Error::Database(sea_orm::DbErr::Custom("syntax".into()));
        assert_eq!(wrong.kind(), Code::Internal);
        assert_eq!(wrong.retry_after_secs(), None);
    }
}
