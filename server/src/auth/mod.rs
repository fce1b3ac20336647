//! Identity and access at the edge: turning credentials (`Authorization: Bearer <jwt | dsk_…>`,
//! `X-API-Key`, or a WebSocket `connection_init` payload) into a [`domain::Actor`], issuing token
//! pairs for sessions, rate limits, outgoing mail, and API-key usage tracking. Business rules live
//! in `domain`; this module only speaks HTTP, JWT and Redis.

pub mod jwt;
pub mod ratelimit;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use domain::identity::users::SignedIn;
use domain::{Actor, Error, Meta, Result};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use uuid::Uuid;

use crate::config::Config;
use crate::redis::RedisPool;
use jobs::notify::Mailer;
use jwt::Jwt;
use ratelimit::RateLimiter;

/// How often at most a key's `lastUsedAt` is written to the database.
pub const KEY_USAGE_FLUSH: Duration = Duration::from_secs(60);

/// What the identity layer keeps for the process: the database it checks credentials against,
/// JWT keys, the rate limiter, the mailer and API-key usage. Both transports (HTTP and GraphQL)
/// call its methods; it knows neither.
pub struct Identity {
    pub db: DatabaseConnection,
    /// Where the dashboard lives, for links in mail.
    pub frontend_url: String,
    pub jwt: Jwt,
    pub limiter: RateLimiter,
    pub mailer: Mailer,
    pub key_usage: KeyUsage,
    /// For calls to OAuth providers; never follows redirects.
    pub http: reqwest::Client,
}

impl Identity {
    pub fn new(
        config: &Config,
        db: DatabaseConnection,
        redis: Option<RedisPool>,
    ) -> anyhow::Result<Self> {
        // Outside `serve`, secrets may be unset (e.g. a test building its own state): use
        // ephemeral ones so the process still works.
        let ephemeral = || SecretString::from(crate::config::random_hex(64));
        let secret = config.jwt_secret.clone().unwrap_or_else(ephemeral);
        let refresh = config.jwt_refresh_secret.clone().unwrap_or_else(ephemeral);
        let jwt = Jwt::new(
            &secret,
            &refresh,
            config.jwt_secret_previous.as_ref(),
            config.jwt_expires_in,
            config.jwt_refresh_expires_in,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self {
            db,
            frontend_url: config.frontend_url.clone(),
            jwt,
            limiter: RateLimiter::new(
                config.rate_limits,
                config.rate_limit_policy.clone(),
                redis,
                config.redis_key_prefix.clone(),
            ),
            mailer: crate::config::mailer(config)?,
            key_usage: KeyUsage::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()?,
        })
    }
}

/// `lastUsedAt` of API keys, kept in memory and written at most once per [`KEY_USAGE_FLUSH`]
/// per key, so authenticating with a key does not write to the database on every request.
#[derive(Default)]
pub struct KeyUsage {
    seen: DashMap<Uuid, (DateTime<Utc>, Option<Instant>)>,
}

impl KeyUsage {
    /// Records a use; returns true when the caller should write it to the database now.
    pub fn record(&self, key: Uuid, at: DateTime<Utc>) -> bool {
        let now = Instant::now();
        let mut entry = self.seen.entry(key).or_insert((at, None));
        entry.0 = at;
        let due = entry
            .1
            .is_none_or(|t| now.duration_since(t) >= KEY_USAGE_FLUSH);
        if due {
            entry.1 = Some(now);
        }
        due
    }

    /// The most recent use seen by this process.
    pub fn last_used(&self, key: Uuid) -> Option<DateTime<Utc>> {
        self.seen.get(&key).map(|e| e.0)
    }
}

/// A token pair for a session.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

fn chrono_ttl(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(7))
}

impl Identity {
    /// Starts a session for a signed-in user and signs its tokens.
    pub async fn start_session(&self, meta: &Meta, signed: &SignedIn) -> Result<Tokens> {
        let jwt = &self.jwt;
        let issued = domain::identity::sessions::create(
            &self.db,
            meta,
            signed.user.id,
            signed.organization.id,
            chrono_ttl(jwt.refresh_ttl),
        )
        .await?;
        self.tokens_for(signed.user.id, signed.organization.id, signed.role, &issued)
    }

    fn tokens_for(
        &self,
        user: Uuid,
        org: Uuid,
        role: domain::Role,
        issued: &domain::identity::sessions::Issued,
    ) -> Result<Tokens> {
        let jwt = &self.jwt;
        Ok(Tokens {
            access_token: jwt.access_token(user, org, role, issued.session.id)?,
            refresh_token: jwt.refresh_token(user, org, issued.session.id, &issued.refresh_id)?,
            expires_in: jwt.access_ttl.as_secs(),
        })
    }

    /// Rotates a refresh token; returns the signed-in user and the new pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<(SignedIn, Tokens)> {
        let jwt = &self.jwt;
        let claims = jwt.verify_refresh(refresh_token)?;
        let issued = domain::identity::sessions::rotate(
            &self.db,
            claims.sid,
            &claims.jti,
            chrono_ttl(jwt.refresh_ttl),
        )
        .await?;
        let user = domain::identity::users::get(&self.db, issued.session.user_id).await?;
        let (organization, role) = domain::identity::users::membership_in(
            &self.db,
            user.id,
            issued.session.organization_id,
        )
        .await?
        .ok_or_else(|| Error::Unauthenticated("the session has ended".into()))?;
        let tokens = self.tokens_for(user.id, organization.id, role, &issued)?;
        Ok((
            SignedIn {
                user,
                organization,
                role,
            },
            tokens,
        ))
    }

    /// Ends the session of a refresh token (logout without an access token).
    pub async fn logout_refresh(&self, refresh_token: &str) -> Result<()> {
        let claims = self.jwt.verify_refresh(refresh_token)?;
        domain::identity::sessions::revoke(&self.db, claims.sid, "logout").await
    }

    /// The actor for one credential string: an API key (`dsk_…`) or an access JWT.
    pub async fn authenticate_token(&self, token: &str) -> Result<Actor> {
        let actor = self.actor_of_token(token).await?;
        record_actor(&actor);
        Ok(actor)
    }

    async fn actor_of_token(&self, token: &str) -> Result<Actor> {
        let token = token.trim();
        if domain::identity::api_keys::looks_like_key(token) {
            let (actor, key) = domain::identity::api_keys::authenticate(&self.db, token).await?;
            let now = Utc::now();
            if self.key_usage.record(key.id, now) {
                let db = self.db.clone();
                tokio::spawn(async move {
                    if let Err(e) = domain::identity::api_keys::touch(&db, key.id, now).await {
                        tracing::warn!(error = %e, "could not record API key use");
                    }
                });
            }
            return Ok(actor);
        }
        let claims = self.jwt.verify_access(token)?;
        domain::identity::sessions::actor(&self.db, claims.sid, claims.sub, claims.org).await
    }

    /// The actor of a request, if it carries credentials; invalid credentials are an error.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Actor>> {
        match credential(headers)? {
            None => Ok(None),
            Some(token) => self.authenticate_token(&token).await.map(Some),
        }
    }

    /// Mails a password-reset link (and the bare token) when `email` belongs to a user; says
    /// nothing either way, so the answer never tells whether an account exists.
    pub async fn send_password_reset(&self, email: &str) -> Result<()> {
        if let Some((user, token)) =
            domain::identity::users::request_password_reset(&self.db, email).await?
        {
            let link = format!("{}/reset-password?token={token}", self.frontend_url);
            let body = format!(
                "Hello {},\n\nSomeone asked to reset the password of your DevSignal account.\n\
                 Open this link within one hour to choose a new password:\n\n{link}\n\n\
                 Or use this code:\n\nToken: {token}\n\n\
                 If this was not you, ignore this message.\n",
                user.name
            );
            let _ = self
                .mailer
                .send(&user.email, "Reset your DevSignal password", body)
                .await;
        }
        Ok(())
    }

    /// Counts one operation of the client at `ip` against `limiter`: GraphQL's `register`,
    /// `login` and `requestPasswordReset` share the `auth` limiter with their REST twins, and
    /// ingest mutations count against `signal`, on top of the `api` limiter every request
    /// counts against.
    pub async fn count_against(&self, limiter: ratelimit::Limiter, ip: &ClientIp) -> Result<()> {
        let d = self.limiter.hit(limiter, ip).await;
        if d.allowed {
            Ok(())
        } else {
            Err(Error::RateLimited {
                retry_after_secs: d.reset_secs,
            })
        }
    }
}

/// Records who acts on the current span (the request's, or the WebSocket connection's), so
/// every log line after authentication carries `organizationId` and, for a person, `userId`.
pub fn record_actor(actor: &Actor) {
    let span = tracing::Span::current();
    span.record(
        "organizationId",
        tracing::field::display(actor.organization_id),
    );
    if let Some(user) = actor.user_id() {
        span.record("userId", tracing::field::display(user));
    }
}

/// The credential of a request: `X-API-Key`, or `Authorization: Bearer …`. `Ok(None)` when the
/// request carries none; a malformed header is `UNAUTHENTICATED`.
pub fn credential(headers: &HeaderMap) -> Result<Option<String>> {
    if let Some(v) = headers.get("x-api-key") {
        let v = v
            .to_str()
            .map_err(|_| Error::Unauthenticated("malformed X-API-Key header".into()))?;
        return Ok(Some(v.trim().to_owned()));
    }
    match headers.get(axum::http::header::AUTHORIZATION) {
        None => Ok(None),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| Error::Unauthenticated("malformed Authorization header".into()))?;
            bearer(v).map(Some)
        }
    }
}

/// The token of an `Authorization` value (`Bearer <token>`).
pub fn bearer(value: &str) -> Result<String> {
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::Unauthenticated(
            "the Authorization header must be `Bearer <token>`".into(),
        ));
    }
    Ok(token.trim().to_owned())
}

/// The client address. Behind `TRUST_PROXY` = N proxies, each proxy appends the address it was
/// called from to `X-Forwarded-For`, so the client is the N-th entry from the right: everything
/// left of it was written by the client and may be forged. With fewer entries than proxies (a
/// request that skipped some), the left-most one; with none or a malformed one, the peer.
pub fn client_ip(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let peer = || peer.map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    if config.trusted_proxies == 0 {
        return peer();
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let Some(entry) = forwarded
        .len()
        .checked_sub(config.trusted_proxies)
        .map_or(forwarded.first(), |i| forwarded.get(i))
    else {
        return peer();
    };
    entry
        .parse::<IpAddr>()
        .map_or_else(|_| peer(), |ip| ip.to_string())
}

/// The client of a request, put in the request extensions by the rate-limit middleware: its IP,
/// and the prefix of the API key it presents, if any (for the operator's per-key limits; the
/// key is not checked here).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String, pub Option<String>);

impl ClientIp {
    /// A client known by its address alone.
    pub fn address(ip: impl Into<String>) -> Self {
        ClientIp(ip.into(), None)
    }
}

/// The display prefix of the API key a request presents (`X-API-Key` or `Bearer dsk_…`).
pub fn presented_key_prefix(headers: &HeaderMap) -> Option<String> {
    let key = credential(headers).ok().flatten()?;
    let prefix = key.get(..domain::identity::api_keys::DISPLAY_PREFIX_LEN)?;
    prefix.starts_with("dsk_").then(|| prefix.to_owned())
}

/// The audit/session metadata of a request.
pub fn meta(ip: &ClientIp, headers: &HeaderMap) -> Meta {
    Meta {
        ip: Some(ip.0.clone()),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(255).collect()),
    }
}
