//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=<hex>,…`, each
//! `v1` an HMAC-SHA-256 under the endpoint's signing secret of `<t>.<raw body>`. Valid when the
//! timestamp is within the tolerance of now and any `v1` matches (compared in constant time;
//! several appear while a secret is being rolled). Other schemes (`v0`) are ignored.

use chrono::{DateTime, Utc};

/// How far the signed timestamp may be from now (Stripe's libraries use 5 minutes).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused (said in the 400 answer; never which part of a secret matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Malformed,
    Stale,
    NoMatch,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Missing => "the Stripe-Signature header is missing",
            Refused::Malformed => "the Stripe-Signature header is malformed (want t=…,v1=…)",
            Refused::Stale => "the Stripe-Signature timestamp is more than 5 minutes from now",
            Refused::NoMatch => "no v1 signature in Stripe-Signature matches the payload",
        })
    }
}

/// The `v1` signature of `payload` signed at `timestamp` (what Stripe sends; tests sign with it).
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(payload);
    hex::encode(ctx.sign().as_ref())
}

/// Checks `header` over the raw `payload` at `now`.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(Refused::Malformed);
        };
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| Refused::Malformed)?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| Refused::Malformed)?),
            _ => {}
        }
    }
    let t = timestamp.ok_or(Refused::Malformed)?;
    if signatures.is_empty() {
        return Err(Refused::Malformed);
    }
    if (now.timestamp() - t).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = Vec::with_capacity(payload.len() + 12);
    signed.extend_from_slice(t.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(payload);
    if signatures
        .iter()
        .any(|s| ring::hmac::verify(&key, &signed, s).is_ok())
    {
        Ok(())
    } else {
        Err(Refused::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_matching_v1_within_the_tolerance() {
        let now = Utc::now();
        let t = now.timestamp();
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_a", t, body);
        let other = sign("whsec_b", t, body);
        let h = format!("t={t},v1={other},v1={good},v0=abc");
        assert_eq!(verify("whsec_a", Some(&h), body, now), Ok(()));
        assert_eq!(
            verify("whsec_a", Some(&format!("t={t},v1={other}")), body, now),
            Err(Refused::NoMatch)
        );
        assert_eq!(
            verify("whsec_a", Some(&h), br#"{"id":"evt_2"}"#, now),
            Err(Refused::NoMatch)
        );
        let old = t - 301;
        let h = format!("t={old},v1={}", sign("whsec_a", old, body));
        assert_eq!(verify("whsec_a", Some(&h), body, now), Err(Refused::Stale));
        assert_eq!(verify("whsec_a", None, body, now), Err(Refused::Missing));
        assert_eq!(
            verify("whsec_a", Some("v1=zz"), body, now),
            Err(Refused::Malformed)
        );
    }
}
