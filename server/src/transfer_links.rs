//! The REST addresses of an import's upload and an export's download, shared by the transport
//! that serves them (`http::transfers`) and the one that hands them out (`graphql::transfers`).

use uuid::Uuid;

/// `PUT`/`POST` an import's CSV file here (`?token=…`).
pub const UPLOAD_PATH: &str = "/api/v1/imports/{id}/file";
/// `GET` an export's file here (`?token=…`).
pub const DOWNLOAD_PATH: &str = "/api/v1/exports/{id}/download";

fn url(api_url: &str, path: &str, id: Uuid, token: &str) -> String {
    format!(
        "{}{}?token={token}",
        api_url.trim_end_matches('/'),
        path.replace("{id}", &id.to_string())
    )
}

/// The absolute upload URL of import `id`.
pub fn upload_url(api_url: &str, id: Uuid, token: &str) -> String {
    url(api_url, UPLOAD_PATH, id, token)
}

/// The absolute download URL of export `id`.
pub fn download_url(api_url: &str, id: Uuid, token: &str) -> String {
    url(api_url, DOWNLOAD_PATH, id, token)
}
