//! Standard Webhooks signing: secrets, signatures, the signature header.

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::webhook_endpoints;
use hmac::{KeyInit, Mac};

use crate::secrets::Cipher;
use crate::{Error, Result};
/// A fresh signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks).
pub fn generate_secret() -> String {
    use rand::Rng;
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The HMAC key of a `whsec_` secret.
pub(super) fn secret_key(secret: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Error::Internal("a webhook secret is not base64".into()))
}

/// One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Result<String> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret_key(secret)?)
        .map_err(|_| Error::Internal("bad HMAC key".into()))?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per live secret, space-separated.
pub fn signature_header(
    secrets: &[String],
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String> {
    let sigs: Result<Vec<String>> = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect();
    Ok(sigs?.join(" "))
}

/// The secrets that sign now: the current one, and the previous one during a rotation.
pub fn signing_secrets(
    cipher: &Cipher,
    m: &webhook_endpoints::Model,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut out = vec![cipher.open(&m.secret_ciphertext)?];
    if let (Some(prev), Some(until)) = (&m.previous_secret_ciphertext, m.previous_secret_expires_at)
        && until > now
    {
        out.push(cipher.open(prev)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let both = signature_header(&[secret.into(), secret.into()], "msg_x", 1, "{}").unwrap();
        assert_eq!(both.split(' ').count(), 2);
        assert!(generate_secret().starts_with("whsec_"));
        assert!(secret_key(&generate_secret()).unwrap().len() >= 24);
    }
}
