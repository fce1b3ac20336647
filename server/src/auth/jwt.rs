//! Access and refresh JWTs: HS256 only (a token whose header names any other `alg` is refused),
//! separate secrets, and rolling rotation (access tokens signed with `JWT_SECRET_PREVIOUS` are
//! still accepted, so secrets rotate without signing everyone out).

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use domain::{Error, Result, Role};

pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The current organization.
    pub org: Uuid,
    /// The role in that organization when the token was issued.
    pub role: Role,
    /// The session id.
    pub sid: Uuid,
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

/// Claims of a refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub sub: Uuid,
    pub org: Uuid,
    pub sid: Uuid,
    /// The refresh id: single use, rotated on every refresh.
    pub jti: String,
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct Jwt {
    access_key: EncodingKey,
    access_verify: Vec<DecodingKey>,
    refresh_key: EncodingKey,
    refresh_verify: DecodingKey,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

fn key_pair(secret: &SecretString) -> Result<(EncodingKey, DecodingKey)> {
    let bytes = secret.expose_secret().as_bytes();
    let enc = EncodingKey::from_secret(bytes)
        .map_err(|e| Error::Internal(format!("JWT secret unusable: {e}")))?;
    let dec = DecodingKey::from_secret(bytes)
        .map_err(|e| Error::Internal(format!("JWT secret unusable: {e}")))?;
    Ok((enc, dec))
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.algorithms = vec![Algorithm::HS256];
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "sub"]);
    v
}

fn unauthenticated() -> Error {
    Error::Unauthenticated("invalid access token: sign in again".into())
}

/// A well-signed access token past its `exp`: the client should refresh, not start over.
fn expired() -> Error {
    Error::Unauthenticated(
        "the access token has expired: get a new one from POST /api/v1/auth/refresh, or sign in \
         again"
            .into(),
    )
}

impl Jwt {
    pub fn new(
        secret: &SecretString,
        refresh_secret: &SecretString,
        previous: Option<&SecretString>,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<Self> {
        let (access_key, access_dec) = key_pair(secret)?;
        let mut access_verify = vec![access_dec];
        if let Some(prev) = previous {
            access_verify.push(key_pair(prev)?.1);
        }
        let (refresh_key, refresh_verify) = key_pair(refresh_secret)?;
        Ok(Self {
            access_key,
            access_verify,
            refresh_key,
            refresh_verify,
            access_ttl,
            refresh_ttl,
        })
    }

    pub fn access_token(&self, user: Uuid, org: Uuid, role: Role, session: Uuid) -> Result<String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user,
            org,
            role,
            sid: session,
            typ: ACCESS.into(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.access_key)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    pub fn refresh_token(&self, user: Uuid, org: Uuid, session: Uuid, jti: &str) -> Result<String> {
        let now = Utc::now().timestamp();
        let claims = RefreshClaims {
            sub: user,
            org,
            sid: session,
            jti: jti.to_owned(),
            typ: REFRESH.into(),
            iat: now,
            exp: now + self.refresh_ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.refresh_key)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    /// The claims of a valid access token. A token signed with one of our keys but past its
    /// expiry says so (jsonwebtoken checks the signature before the claims, so only our own
    /// tokens can be told expired); anything else is just invalid.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims> {
        let validation = validation();
        let mut expired_here = false;
        for key in &self.access_verify {
            match jsonwebtoken::decode::<AccessClaims>(token, key, &validation) {
                Ok(data) if data.claims.typ == ACCESS => return Ok(data.claims),
                Ok(_) => {}
                Err(e) => {
                    expired_here |=
                        matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature);
                }
            }
        }
        Err(if expired_here {
            expired()
        } else {
            unauthenticated()
        })
    }

    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims> {
        jsonwebtoken::decode::<RefreshClaims>(token, &self.refresh_verify, &validation())
            .ok()
            .map(|d| d.claims)
            .filter(|c| c.typ == REFRESH)
            .ok_or_else(|| Error::Unauthenticated("invalid or expired refresh token".into()))
    }
}
