//! Signed, expiring links for an import's upload and an export's download: the token names the
//! object, its organization and the link's expiry, signed with the server's key
//! ([`Cipher::sign`], HMAC under `ENCRYPTION_KEY`, one purpose per kind of link), so a link
//! cannot be forged, moved to another object or organization, or used after it expires.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secrets::Cipher;

/// The purpose of an import's upload link.
pub const UPLOAD: &str = "import-upload";
/// The purpose of an export's download link.
pub const DOWNLOAD: &str = "export-download";

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The import or export.
    i: Uuid,
    /// Its organization.
    o: Uuid,
    /// Expiry, seconds since the epoch.
    e: i64,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token of ours for this object (forged, altered, another object's).
    Invalid,
    /// Ours, but past its expiry.
    Expired,
}

impl LinkError {
    pub fn message(self) -> &'static str {
        match self {
            LinkError::Invalid => "this link is not valid",
            LinkError::Expired => "this link has expired",
        }
    }
}

/// The token of a `purpose` link to object `id` of `organization_id`, valid until `expires`.
pub fn sign(
    cipher: &Cipher,
    purpose: &str,
    id: Uuid,
    organization_id: Uuid,
    expires: DateTime<Utc>,
) -> String {
    let claims = serde_json::to_vec(&Claims {
        i: id,
        o: organization_id,
        e: expires.timestamp(),
    })
    .unwrap_or_default();
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&claims);
    let sig = cipher.sign(purpose, body.as_bytes());
    format!("{body}.{sig}")
}

/// The organization a `purpose` token for object `id` names, if it is ours and not expired at
/// `now`.
pub fn verify(
    cipher: &Cipher,
    purpose: &str,
    id: Uuid,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, LinkError> {
    let (body, sig) = token.split_once('.').ok_or(LinkError::Invalid)?;
    if !cipher.verify(purpose, body.as_bytes(), sig) {
        return Err(LinkError::Invalid);
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| LinkError::Invalid)?;
    let c: Claims = serde_json::from_slice(&raw).map_err(|_| LinkError::Invalid)?;
    if c.i != id {
        return Err(LinkError::Invalid);
    }
    if c.e <= now.timestamp() {
        return Err(LinkError::Expired);
    }
    Ok(c.o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_bound_to_purpose_object_and_time() {
        let cipher = Cipher::new([7u8; 32]);
        let (id, org) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        let t = sign(&cipher, UPLOAD, id, org, now + chrono::Duration::hours(1));
        assert_eq!(verify(&cipher, UPLOAD, id, &t, now), Ok(org));
        assert_eq!(
            verify(&cipher, DOWNLOAD, id, &t, now),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(&cipher, UPLOAD, Uuid::now_v7(), &t, now),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(&cipher, UPLOAD, id, &t, now + chrono::Duration::hours(2)),
            Err(LinkError::Expired)
        );
        let forged = format!("{}x", t);
        assert_eq!(
            verify(&cipher, UPLOAD, id, &forged, now),
            Err(LinkError::Invalid)
        );
    }
}
