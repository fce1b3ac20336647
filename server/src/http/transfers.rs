//! The bytes of imports and exports, which do not travel through GraphQL (its transport is
//! JSON only): an import's CSV file is uploaded with `PUT` (or `POST`)
//! `/api/v1/imports/{id}/file?token=…` and an export is downloaded with `GET`
//! `/api/v1/exports/{id}/download?token=…`. Both URLs are signed, expiring links that GraphQL
//! hands out (`createImport`, `ExportJob.downloadUrl`), so neither needs other credentials; a
//! forged, altered or another object's token answers 403, an expired one 403 saying so.
//!
//! The upload is streamed to `DATA_DIR/imports/` and counted as it arrives: past
//! `IMPORT_MAX_BYTES` it stops with 413 `PAYLOAD_TOO_LARGE` (its route is outside the 5 MB limit
//! of every other route, and outside the request deadline, which a large upload on a slow link
//! would pass). The download streams the file from `DATA_DIR/exports/` in 64 KB pieces.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::Utc;
use domain::transfers::{LinkError, exports, imports};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use crate::state::AppState;

use crate::transfer_links::{DOWNLOAD_PATH, UPLOAD_PATH};

/// The upload route, with no body limit of its own (the handler counts against
/// `IMPORT_MAX_BYTES`); merged outside the router's 5 MB limit and deadline.
pub fn upload_routes() -> Router<AppState> {
    Router::new()
        .route(UPLOAD_PATH, put(upload).post(upload))
        .layer(DefaultBodyLimit::disable())
}

pub fn download_routes() -> Router<AppState> {
    Router::new().route(DOWNLOAD_PATH, get(download))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn refused(e: LinkError) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, domain::Code::Forbidden, e.message())
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        domain::Code::PayloadTooLarge,
        format!("the file is larger than the {max} bytes an import accepts (IMPORT_MAX_BYTES)"),
    )
}

fn io_error(e: std::io::Error) -> ApiError {
    domain::Error::Internal(format!("storing an upload failed: {e}")).into()
}

async fn upload(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("no such import"))?;
    let org =
        imports::check_upload(st.webhooks.cipher(), id, &q.token, Utc::now()).map_err(refused)?;
    imports::may_upload(&st.db, org, id).await?;
    let max = st.config.import_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let data_dir = st.config.data_dir.clone();
    let path = imports::upload_path(&data_dir, id);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
    }
    let mut file = tokio::fs::File::create(&path).await.map_err(io_error)?;
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    let written = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("the upload was cut short: {e}")))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large(max));
            }
            file.write_all(&chunk).await.map_err(io_error)?;
        }
        file.flush().await.map_err(io_error)?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e);
    }
    let m = imports::accept_upload(&st.db, &data_dir, org, id, size).await?;
    Ok(axum::Json(json!({
        "import": {
            "id": m.id, "entity": m.entity, "status": m.status, "source": m.source,
            "sizeBytes": m.size_bytes, "delimiter": m.delimiter, "total": m.total,
            "headers": m.headers, "mapping": m.mapping,
        }
    }))
    .into_response())
}

async fn download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("no such export"))?;
    let d = match exports::open_download(
        &st.db,
        st.webhooks.cipher(),
        &st.config.data_dir,
        id,
        &q.token,
        Utc::now(),
    )
    .await
    {
        Ok(d) => d,
        Err(exports::Refused::Link(e)) => return Err(refused(e)),
        Err(exports::Refused::Gone) => {
            return Err(ApiError::not_found(
                "no such export, or its file is no longer kept",
            ));
        }
        Err(exports::Refused::Failed(e)) => return Err(e.into()),
    };
    let mut file = tokio::fs::File::open(&d.path).await.map_err(io_error)?;
    let len = file.metadata().await.map_err(io_error)?.len();
    let stream = async_stream::stream! {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => yield Ok::<Bytes, std::io::Error>(Bytes::copy_from_slice(&buf[..n])),
                Err(e) => {
                    yield Err(e);
                    break;
                }
            }
        }
    };
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(d.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", d.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}
