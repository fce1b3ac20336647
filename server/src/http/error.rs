//! REST errors: one JSON shape, `{"error": {"code", "message", "fields"?}}`, with an HTTP status
//! derived from the code. Domain errors are translated here, once; internal details are logged
//! with the request id and never returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Code, FieldError};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub fields: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    /// A plan limit that refused the request: its name, value, the use, and the plan.
    pub quota: Option<Box<Quota>>,
}

#[derive(Debug, Serialize)]
pub struct Quota {
    pub limit: &'static str,
    pub allowed: u64,
    pub current: u64,
    pub plan: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldError],
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    quota: Option<&'a Quota>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after_secs: None,
            quota: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::BadRequest, message)
    }

    /// The code for a bare HTTP status produced outside our handlers (axum rejections, layers).
    pub fn code_for_status(status: StatusCode) -> Code {
        match status {
            StatusCode::BAD_REQUEST => Code::BadRequest,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::Forbidden,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            StatusCode::CONFLICT => Code::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Code::BadUserInput,
            StatusCode::TOO_MANY_REQUESTS => Code::RateLimited,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Code::Timeout,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            StatusCode::BAD_GATEWAY => Code::UpstreamError,
            s if s.is_client_error() => Code::BadRequest,
            _ => Code::Internal,
        }
    }
}

impl From<domain::Error> for ApiError {
    fn from(err: domain::Error) -> Self {
        use domain::Error as E;
        let status = StatusCode::from_u16(err.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if err.is_internal() {
            tracing::error!(error = %err, "internal error");
        }
        let fields = match &err {
            E::Validation(fields) => fields.clone(),
            E::Conflict { field, message } => vec![FieldError::new(field.clone(), message.clone())],
            _ => Vec::new(),
        };
        let retry_after_secs = err.retry_after_secs();
        let quota = match &err {
            E::Quota {
                limit,
                allowed,
                used,
                plan,
            } => Some(Box::new(Quota {
                limit,
                allowed: *allowed,
                current: *used,
                plan: plan.clone(),
            })),
            _ => None,
        };
        Self {
            status,
            code: err.kind(),
            message: err.public_message(),
            fields,
            retry_after_secs,
            quota,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
                fields: &self.fields,
                quota: self.quota.as_deref(),
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(v) = self
            .retry_after_secs
            .and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
