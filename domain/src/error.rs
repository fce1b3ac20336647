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
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
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

    /// The stable, documented code of this error (DESIGN 7).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Conflict { .. } => "CONFLICT",
            Error::Validation(_) => "BAD_USER_INPUT",
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::PlanLimit(_) => "PLAN_LIMIT",
            Error::Database(_) | Error::Internal(_) => "INTERNAL",
        }
    }

    /// True when the message must not reach a client (it may describe internals).
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Database(_) | Error::Internal(_))
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            "internal error".to_owned()
        } else {
            self.to_string()
        }
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
        assert_eq!(
            Error::NotFound { entity: "Account" }.to_string(),
            "Account not found"
        );
    }
}
