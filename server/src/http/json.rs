//! A `Json` extractor whose rejections are our JSON errors (400 for malformed JSON, 415 for a
//! wrong content type, 413 for an oversize body) instead of axum's plain-text ones. It is also
//! where every REST JSON body is checked for NUL characters ([`domain::text`]): a body holding
//! one answers 400 `BAD_USER_INPUT` naming the field, before the handler runs.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<Value>: FromRequest<S, Rejection = JsonRejection>,
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rejection) => {
                let status = rejection.status();
                return Err(ApiError::new(
                    status,
                    ApiError::code_for_status(status),
                    rejection.body_text(),
                ));
            }
        };
        domain::text::refuse_nul(&value, "")?;
        serde_json::from_value(value).map(Json).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                domain::Code::BadUserInput,
                format!("Failed to deserialize the JSON body into the target type: {e}"),
            )
        })
    }
}
