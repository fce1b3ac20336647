//! A `Json` extractor whose rejections are our JSON errors (400 for malformed JSON, 415 for a
//! wrong content type, 413 for an oversize body) instead of axum's plain-text ones.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};

use super::error::ApiError;

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => {
                let status = rejection.status();
                Err(ApiError::new(
                    status,
                    ApiError::code_for_status(status),
                    rejection.body_text(),
                ))
            }
        }
    }
}
