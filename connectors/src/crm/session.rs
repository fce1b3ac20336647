//! A CRM run's connection: the bearer token (refreshed before it expires and once on a 401), the
//! API's base URL (Salesforce's instance URL comes with the token), and every request counted
//! and rate-limited by the run.
//!
//! Credentials (sealed on the integration): `accessToken`, and for OAuth grants `refreshToken`,
//! `expiresAt` (RFC 3339) and, for Salesforce, `instanceUrl`. A refreshed token is sealed back
//! at once, so a crash after a refresh does not lose it. A refresh refused with
//! `invalid_grant` (the user revoked the app) stops the run as rejected credentials: the
//! integration goes `ERROR` saying to connect again.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::OAuthApp;
use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::store;

/// A token this close to its expiry is refreshed before use.
const REFRESH_MARGIN: Duration = Duration::seconds(60);

/// Where and how a token is refreshed.
pub struct Refresh {
    pub token_url: String,
    pub app: OAuthApp,
}

pub struct Session<'a> {
    pub cx: &'a SyncContext,
    label: &'static str,
    credentials: Mutex<BTreeMap<String, String>>,
    refresh: Option<Refresh>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    instance_url: Option<String>,
}

impl<'a> Session<'a> {
    /// A session with the run's credentials; `refresh` when the app's OAuth client is
    /// configured (without it a refresh token cannot be used and an expired token is final).
    pub fn new(cx: &'a SyncContext, label: &'static str, refresh: Option<Refresh>) -> Self {
        Session {
            cx,
            label,
            credentials: Mutex::new(cx.credentials.clone()),
            refresh,
        }
    }

    fn credential(&self, name: &str) -> Option<String> {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
    }

    /// The API's base URL from the credentials (Salesforce's `instanceUrl`).
    pub fn instance_url(&self) -> Option<String> {
        self.credential("instanceUrl")
            .map(|u| u.trim_end_matches('/').to_owned())
    }

    fn expiring(&self) -> bool {
        self.credential("expiresAt")
            .and_then(|e| DateTime::parse_from_rfc3339(&e).ok())
            .is_some_and(|e| e.with_timezone(&Utc) - REFRESH_MARGIN <= Utc::now())
    }

    fn can_refresh(&self) -> bool {
        self.refresh.is_some() && self.credential("refreshToken").is_some()
    }

    /// Trades the refresh token for a new access token and seals it on the integration.
    async fn refresh(&self) -> Result<(), Stop> {
        let (Some(r), Some(token)) = (&self.refresh, self.credential("refreshToken")) else {
            return Err(Stop::Credentials(format!(
                "the {} access token expired and cannot be refreshed; connect {} again",
                self.label, self.label
            )));
        };
        let req = Request::post_form(
            r.token_url.clone(),
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("refresh_token".into(), token),
                ("client_id".into(), r.app.client_id.clone()),
                ("client_secret".into(), r.app.client_secret.clone()),
            ],
        );
        let revoked = |why: &str| {
            Stop::Credentials(format!(
                "{} refused to refresh the access token ({why}): the grant was revoked or has \
                 expired; connect {} again",
                self.label, self.label
            ))
        };
        let page = match self.cx.get(req).await {
            Ok(Fetched::Ok(page)) => page,
            Ok(_) => return Err(revoked("no token endpoint")),
            // A 400 `invalid_grant` (revoked) or 401 (the app's client is wrong).
            Err(Stop::Invalid(e)) | Err(Stop::Credentials(e)) => return Err(revoked(&e)),
            Err(e) => return Err(e),
        };
        let answer: TokenAnswer = page.json("the token endpoint")?;
        let updated = {
            let mut c = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
            c.insert("accessToken".into(), answer.access_token);
            if let Some(t) = answer.refresh_token {
                c.insert("refreshToken".into(), t);
            }
            match answer.expires_in {
                Some(secs) => {
                    c.insert(
                        "expiresAt".into(),
                        (Utc::now() + Duration::seconds(secs)).to_rfc3339(),
                    );
                }
                None => {
                    c.remove("expiresAt");
                }
            }
            if let Some(u) = answer.instance_url {
                c.insert("instanceUrl".into(), u);
            }
            c.clone()
        };
        store::replace_credentials(&self.cx.db, &self.cx.rt, self.cx.integration.id, &updated)
            .await?;
        tracing::info!(
            integrationId = %self.cx.integration.id,
            "{} access token refreshed",
            self.label
        );
        Ok(())
    }

    /// Sends `req` with the bearer token: refreshed first when it is about to expire, and once
    /// more after a 401.
    pub async fn send(&self, req: Request) -> Result<Fetched, Stop> {
        if self.expiring() && self.can_refresh() {
            self.refresh().await?;
        }
        let with_token = |req: Request| {
            let token = self.credential("accessToken").unwrap_or_default();
            req.header("Authorization", format!("Bearer {token}"))
        };
        match self.cx.get(with_token(req.clone())).await {
            Err(Stop::Credentials(_)) if self.can_refresh() => {
                self.refresh().await?;
                self.cx.get(with_token(req)).await
            }
            other => other,
        }
    }

    /// Sends `req` and reads its JSON answer; a 404 is the configuration's fault.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: Request,
        what: &str,
    ) -> Result<T, Stop> {
        match self.send(req).await? {
            Fetched::Ok(page) => page.json(what),
            Fetched::Missing => Err(Stop::Invalid(format!(
                "{}: {what} is not where the API URL says (404)",
                self.label
            ))),
            Fetched::NotModified => Err(Stop::Invalid(format!(
                "{}: {what} answered 304 to an unconditional request",
                self.label
            ))),
        }
    }
}
