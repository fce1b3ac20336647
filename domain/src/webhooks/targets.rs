//! Which URLs an endpoint may target: no internal addresses, https in production.

use std::net::IpAddr;

use super::Settings;
use crate::{Error, Result};
/// True for addresses a webhook may not reach unless private targets are allowed: loopback,
/// private, link-local (cloud metadata lives there), carrier-grade NAT, unspecified, broadcast,
/// multicast, documentation, benchmarking (198.18.0.0/15), IPv6 unique-local and link-local, and
/// every IPv6 form that carries an IPv4 address a router may unwrap: IPv4-mapped (`::ffff:a.b.c.d`)
/// and -compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`, judged by the
/// address it embeds) and Teredo (`2001:0::/32`, refused whole: its embedded client address is
/// obfuscated and its relay is chosen by the network).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_ip(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            if seg[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                // IPv4-compatible (deprecated): never a real public target.
                return true;
            }
            if seg[0] == 0x2002 {
                // 6to4: the relay forwards to the embedded IPv4 address.
                let [a, b] = seg[1].to_be_bytes();
                let [c, d] = seg[2].to_be_bytes();
                return is_forbidden_ip(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x0064 && seg[1] == 0xff9b)
                || (seg[0] == 0x2001 && seg[1] == 0x0000)
        }
    }
}

/// Host names that always point inside (cloud metadata services, localhost), and single-label
/// names (`metadata`, `instance-data`, `intranet`), which only a local resolver search list
/// can answer.
pub(super) fn is_forbidden_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "metadata.google.internal"
        || h.ends_with(".internal")
        || !h.contains('.')
}

/// Checks a target URL's shape (scheme, host, no credentials) and, unless private targets are
/// allowed, that its host is not an internal name or address and does not resolve to one.
pub async fn check_url(settings: &Settings, field: &str, raw: &str) -> Result<url::Url> {
    let raw = raw.trim();
    let bad = |m: &str| Error::invalid(field, m);
    if raw.len() > 2048 {
        return Err(bad("must be at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("is not a valid URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if !settings.require_https => {}
        "http" => return Err(bad("must use https in production")),
        _ => return Err(bad("must be an http or https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    let host = match url.host() {
        Some(h) => h,
        None => return Err(bad("must have a host")),
    };
    if settings.allow_private {
        return Ok(url);
    }
    let refused = || {
        bad(
            "must not point at a loopback, private, link-local or metadata address (set WEBHOOK_ALLOW_PRIVATE=true to allow)",
        )
    };
    match host {
        url::Host::Ipv4(ip) if is_forbidden_ip(IpAddr::V4(ip)) => return Err(refused()),
        url::Host::Ipv6(ip) if is_forbidden_ip(IpAddr::V6(ip)) => return Err(refused()),
        url::Host::Domain(d) => {
            if is_forbidden_host(d) {
                return Err(refused());
            }
            let port = url.port_or_known_default().unwrap_or(443);
            // An unresolvable host is accepted: DNS may not be set up yet, and every delivery
            // checks the addresses again before it connects.
            if let Ok(addrs) = tokio::net::lookup_host((d, port)).await {
                for a in addrs {
                    if is_forbidden_ip(a.ip()) {
                        return Err(refused());
                    }
                }
            }
        }
        _ => {}
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b::7f00:1",
        ] {
            assert!(is_forbidden_ip(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "198.20.0.1",
            "2606:4700::1111",
            "2002:5db8:d822::1",
        ] {
            assert!(!is_forbidden_ip(good.parse().unwrap()), "{good}");
        }
        assert!(is_forbidden_host("localhost"));
        assert!(is_forbidden_host("metadata.google.internal"));
        assert!(is_forbidden_host("metadata"));
        assert!(is_forbidden_host("METADATA."));
        assert!(!is_forbidden_host("example.com"));
    }

    #[tokio::test]
    async fn production_targets_must_use_https() {
        // allow_private skips the DNS lookup, so no test reaches the network.
        let prod = Settings {
            require_https: true,
            allow_private: true,
            ..Default::default()
        };
        let err = check_url(&prod, "url", "http://hooks.example.com/x")
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid url: must use https in production");
        assert!(
            check_url(&prod, "url", "https://hooks.example.com/x")
                .await
                .is_ok()
        );
        let dev = Settings {
            allow_private: true,
            ..Default::default()
        };
        assert!(
            check_url(&dev, "url", "http://hooks.example.com/x")
                .await
                .is_ok()
        );
    }
}
