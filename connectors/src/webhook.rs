//! Signed inbound webhooks. GitHub's scheme, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
//! the raw body>` under the integration's webhook secret, is also the scheme of sources that do
//! not sign their own way (PostHog, LinkedIn); sources that sign their own way verify in their
//! module. Every comparison is constant-time.
//!
//! A connector that takes webhooks implements [`crate::Connector::webhook`]: it verifies the
//! delivery ([`Inbound`]) and says what it stands for ([`Delivery`]); the server route
//! `POST /api/v1/webhooks/{kind}/{integrationId}` does the rest (lookup, ingest, answer).

use std::collections::BTreeMap;

use domain::signals::Input;
use entity::integrations;
use hmac::{KeyInit, Mac};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// One delivery, as received.
pub struct Inbound<'a> {
    pub integration: &'a integrations::Model,
    /// The integration's credentials (opened).
    pub credentials: &'a BTreeMap<String, String>,
    /// The secret DevSignal made for the integration (shown once on connect).
    pub webhook_secret: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Inbound<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, or a refusal naming what is wrong.
    pub fn json(&self) -> Result<Value, Refusal> {
        serde_json::from_slice(self.body)
            .map_err(|e| Refusal::BadRequest(format!("the body is not JSON ({e})")))
    }

    /// Verifies GitHub's scheme under the integration's webhook secret.
    pub fn verify_hub_sha256(&self) -> Result<(), Refusal> {
        if verify(
            self.webhook_secret,
            self.body,
            self.header("x-hub-signature-256"),
        ) {
            Ok(())
        } else {
            Err(Refusal::Signature(
                "missing or invalid X-Hub-Signature-256".into(),
            ))
        }
    }
}

/// What a verified delivery stands for.
#[derive(Debug)]
pub enum Delivery {
    /// Answer 200 with this body, store nothing (pings, handshakes).
    Reply(Value),
    /// Nothing tracked (answered 202 with the reason).
    Ignore(String),
    /// Signals to ingest, each keyed by the object or the sender's delivery id, so a
    /// redelivery (or the same object read by a sync) is one signal.
    Ingest(Vec<Input>),
}

/// Why a delivery is refused.
#[derive(Debug)]
pub enum Refusal {
    /// 401: the signature is missing or wrong; nothing is read or stored.
    Signature(String),
    /// 400: signed, but not something the source sends.
    BadRequest(String),
}

/// Hex-encoded HMAC-SHA256 of `parts` (concatenated) under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality of two byte strings.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `header` is the signature of `body` under `secret`.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The header value for `body` under `secret` (for senders and tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let s = sign("secret", b"{\"a\":1}");
        assert!(verify("secret", b"{\"a\":1}", Some(&s)));
        assert!(!verify("other", b"{\"a\":1}", Some(&s)));
        assert!(!verify("secret", b"{\"a\":2}", Some(&s)));
        assert!(!verify("secret", b"{\"a\":1}", None));
        assert!(!verify("secret", b"{\"a\":1}", Some("sha1=00")));
    }
}
