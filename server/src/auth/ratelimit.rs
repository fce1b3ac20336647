//! Fixed-window rate limits per client IP. Each limiter counts on its own: in Redis
//! under `<prefix>rl:<limiter>:<ip>` when Redis is configured, in process otherwise. When Redis
//! fails, counting falls back to the process (and Redis is left alone for a few seconds) instead
//! of failing requests.
//!
//! The operator's [`Policy`] (runbook 5.6, no code change): addresses on
//! `RATE_LIMIT_ALLOWLIST` are never limited, and `RATE_LIMIT_OVERRIDES` gives an address range or
//! an API key other limits. A key with an override is counted as itself (`key:<prefix>`) across
//! every address it calls from.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::auth::ClientIp;
use crate::config::RateLimits;
pub use crate::config::rate_limits::{Limiter, Override, Policy, Subject};
use crate::redis::RedisPool;

/// The length of a window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long one Redis round trip may take before we count in process instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(300);
/// In-process counters kept before finished windows are swept.
const LOCAL_SWEEP_AT: usize = 10_000;
/// How long Redis is skipped after a failure.
const REDIS_BACKOFF: Duration = Duration::from_secs(5);

impl Limiter {
    /// The limiters a request path counts against.
    pub fn for_path(path: &str) -> Vec<Limiter> {
        if path.starts_with("/api/v1/webhooks/")
            || path == "/api/v1/webhooks"
            || path == "/api/v1/billing/webhook"
        {
            vec![Limiter::Webhook]
        } else if path.starts_with("/api/v1/demo") {
            vec![Limiter::Demo]
        } else if path.starts_with("/api/v1/signals/receipts/") {
            // Polling for what became of accepted signals is a read: it must not spend the
            // sender's ingest budget.
            vec![Limiter::Api]
        } else if path.starts_with("/api/v1/signals") || path.starts_with("/v1/") {
            vec![Limiter::Signal]
        } else if matches!(
            path,
            "/api/v1/auth/login" | "/api/v1/auth/register" | "/api/v1/auth/forgot-password"
        ) {
            vec![Limiter::Auth, Limiter::Api]
        } else if path.starts_with("/api/v1/") {
            vec![Limiter::Api]
        } else {
            Vec::new()
        }
    }
}

impl Policy {
    fn allowlisted(&self, ip: Option<std::net::IpAddr>) -> bool {
        ip.is_some_and(|ip| self.allowlist.iter().any(|net| net.contains(&ip)))
    }

    /// The counter and limit for `client` on `limiter`: the key's override, else the first
    /// range's override holding its address, else `default` per address.
    fn resolve(&self, limiter: Limiter, client: &ClientIp, default: u32) -> (String, u32) {
        if let Some(prefix) = &client.1
            && let Some(limit) = self
                .overrides
                .iter()
                .filter(|o| matches!(&o.subject, Subject::Key(k) if k == prefix))
                .find_map(|o| o.limit(limiter))
        {
            return (format!("key:{prefix}"), limit);
        }
        let ip = client.0.parse::<std::net::IpAddr>().ok();
        let limit = ip
            .and_then(|ip| {
                self.overrides
                    .iter()
                    .filter(|o| matches!(&o.subject, Subject::Net(n) if n.contains(&ip)))
                    .find_map(|o| o.limit(limiter))
            })
            .unwrap_or(default);
        (client.0.clone(), limit)
    }
}

/// The outcome of one counted request.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub limiter: Limiter,
    pub allowed: bool,
    /// The client is on the allowlist: nothing was counted and no limit applies.
    pub exempt: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

pub struct RateLimiter {
    limits: RateLimits,
    policy: Policy,
    redis: Option<RedisPool>,
    prefix: String,
    local: DashMap<(Limiter, String), (Instant, u32)>,
    redis_down_until: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(
        limits: RateLimits,
        policy: Policy,
        redis: Option<RedisPool>,
        prefix: String,
    ) -> Self {
        Self {
            limits,
            policy,
            redis,
            prefix,
            local: DashMap::new(),
            redis_down_until: Mutex::new(None),
        }
    }

    fn limit(&self, limiter: Limiter) -> u32 {
        match limiter {
            Limiter::Auth => self.limits.auth,
            Limiter::Api => self.limits.api,
            Limiter::Webhook => self.limits.webhook,
            Limiter::Demo => self.limits.demo,
            Limiter::Signal => self.limits.signal,
        }
    }

    /// The Redis key of a counter.
    pub fn key(&self, limiter: Limiter, ip: &str) -> String {
        format!("{}rl:{}:{ip}", self.prefix, limiter.name())
    }

    /// Counts one request of `client` against `limiter`.
    pub async fn hit(&self, limiter: Limiter, client: &ClientIp) -> Decision {
        self.hit_n(limiter, client, 1).await
    }

    /// Counts `n` requests of `client` against `limiter` at once (the operations of one GraphQL
    /// batch, the root fields of one mutation), under the operator's [`Policy`].
    pub async fn hit_n(&self, limiter: Limiter, client: &ClientIp, n: u32) -> Decision {
        if self
            .policy
            .allowlisted(client.0.parse::<std::net::IpAddr>().ok())
        {
            return Decision {
                limiter,
                allowed: true,
                exempt: true,
                limit: u32::MAX,
                remaining: u32::MAX,
                reset_secs: WINDOW.as_secs(),
            };
        }
        let (subject, limit) = self.policy.resolve(limiter, client, self.limit(limiter));
        let ip = subject.as_str();
        // Every hit is also counted here, so a fallback to this process (Redis slow or away)
        // goes on from what was counted, never from a fresh budget.
        let local = self.local_hit(limiter, ip, n);
        let (count, reset_secs) = match self.redis_hit(limiter, ip, n).await {
            Some((count, reset)) => {
                self.local_catch_up(limiter, ip, count);
                (count, reset)
            }
            None => local,
        };
        Decision {
            limiter,
            allowed: count <= u64::from(limit),
            exempt: false,
            limit,
            remaining: u32::try_from(u64::from(limit).saturating_sub(count)).unwrap_or(0),
            reset_secs: reset_secs.max(1),
        }
    }

    fn redis_usable(&self) -> bool {
        let guard = self
            .redis_down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        guard.is_none_or(|until| Instant::now() >= until)
    }

    fn mark_redis_down(&self) {
        let mut guard = self
            .redis_down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *guard = Some(Instant::now() + REDIS_BACKOFF);
    }

    async fn redis_hit(&self, limiter: Limiter, ip: &str, n: u32) -> Option<(u64, u64)> {
        let pool = self.redis.as_ref()?;
        if !self.redis_usable() {
            return None;
        }
        let key = self.key(limiter, ip);
        let attempt = async {
            let mut conn = pool.get().await.ok()?;
            let (count, ttl): (u64, i64) = redis::pipe()
                .atomic()
                .incr(&key, n)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(WINDOW.as_secs())
                .arg("NX")
                .ignore()
                .ttl(&key)
                .query_async(&mut *conn)
                .await
                .map_err(|e| tracing::warn!(error = %e, "rate limiter: Redis failed"))
                .ok()?;
            Some((count, u64::try_from(ttl).unwrap_or(WINDOW.as_secs())))
        };
        match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(Some(v)) => Some(v),
            _ => {
                tracing::warn!("rate limiter: Redis unavailable, counting in process");
                self.mark_redis_down();
                None
            }
        }
    }

    /// Redis counted `count` in this window (all processes): the local counter is at least that.
    fn local_catch_up(&self, limiter: Limiter, ip: &str, count: u64) {
        if let Some(mut entry) = self.local.get_mut(&(limiter, ip.to_owned())) {
            entry.1 = entry.1.max(u32::try_from(count).unwrap_or(u32::MAX));
        }
    }

    fn local_hit(&self, limiter: Limiter, ip: &str, n: u32) -> (u64, u64) {
        let now = Instant::now();
        if self.local.len() >= LOCAL_SWEEP_AT {
            // Forget finished windows so the map stays bounded by the clients of one minute.
            self.local
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let mut entry = self
            .local
            .entry((limiter, ip.to_owned()))
            .or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(n);
        let reset = WINDOW.saturating_sub(now.duration_since(entry.0)).as_secs();
        (u64::from(entry.1), reset)
    }
}
