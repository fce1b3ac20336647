//! CRM sync both ways (HubSpot, Salesforce): one engine, one module per system.
//!
//! A run of a CRM integration first makes sure the CRM has DevSignal's fields, then **pulls**
//! (companies/Accounts, contacts, deals/Opportunities modified since the cursor, every page) and
//! applies them through the domain functions (events, audit, rescoring), then **pushes** the
//! score fields of accounts and contacts whose values changed since they were last pushed.
//!
//! Records are matched by the `external_ids` mapping, then by domain (accounts) or email
//! (contacts); a pushed or pulled record is remembered there, so a second push updates and never
//! duplicates.
//!
//! **Conflict policy** (docs/crm-sync.md): CRM-owned fields (name, owner, deal title, stage,
//! amount, close date) take the CRM's value whenever it changed there; DevSignal-owned fields
//! (the score fields) are only pushed, never read back; shared fields (industry, location,
//! description, a contact's names, title, phone and company) take the CRM's value when only the
//! CRM changed them, keep ours when only we did, and take the newer side when both did since the
//! last sync. "Changed" is measured against `external_ids.synced`, the values both sides agreed
//! on at the last sync.
//!
//! **Loop guard**: a push changes only score fields, which a pull never reads, and a pulled
//! record equal to what was last synced writes nothing; so our own push coming back as a
//! modified record changes nothing here, and a push sends only values whose hash changed.

pub mod engine;
pub mod hubspot;
pub mod salesforce;
pub mod session;

use chrono::{DateTime, NaiveDate, Utc};
use domain::FieldError;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Connector;

pub use session::Session;

use crate::run::Stop;

/// The objects mapped between DevSignal and a CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Account,
    Contact,
    Deal,
}

impl Object {
    pub fn as_str(self) -> &'static str {
        match self {
            Object::Account => "account",
            Object::Contact => "contact",
            Object::Deal => "deal",
        }
    }
}

/// A company/Account as read from a CRM.
#[derive(Debug, Clone, Default)]
pub struct RemoteAccount {
    pub id: String,
    pub modified: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
}

/// A contact as read from a CRM.
#[derive(Debug, Clone, Default)]
pub struct RemoteContact {
    pub id: String,
    pub modified: Option<DateTime<Utc>>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// The CRM id of the contact's company/Account.
    pub account: Option<String>,
}

/// A deal/Opportunity as read from a CRM.
#[derive(Debug, Clone, Default)]
pub struct RemoteDeal {
    pub id: String,
    pub modified: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub amount: Option<f64>,
    /// The CRM's stage (mapped to ours by the integration's stage map).
    pub stage: Option<String>,
    pub close_date: Option<NaiveDate>,
    pub owner: Option<String>,
    /// The CRM id of the deal's company/Account.
    pub account: Option<String>,
}

/// One page of a pull: the records and where the next page is.
#[derive(Debug, Clone)]
pub struct Pulled<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// One record to push: our id, its natural key (an account's domain, a contact's email), what
/// names it when created, and the score fields (`score`, `tier`, `trend`, `signalCount`,
/// `topSignalType`, `lastSignalAt`; generic names each system maps to its own).
#[derive(Debug, Clone)]
pub struct Outbound {
    pub local_id: Uuid,
    pub key: Option<String>,
    /// An account's name; a contact's first name.
    pub name: Option<String>,
    /// A contact's last name.
    pub last_name: Option<String>,
    pub values: Vec<(&'static str, Value)>,
}

/// A CRM's refusal of one record in a batch.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The record no longer exists there (deleted in the CRM): the mapping is dropped and the
    /// next push matches or creates it again.
    Gone,
    Refused(String),
}

/// One CRM system, as the engine drives it. Every call goes through the [`Session`] (its token,
/// refreshed when needed; the run's request count and rate-limit budget).
#[async_trait::async_trait]
pub trait Crm: Send + Sync {
    /// `HUBSPOT` or `SALESFORCE` (the integration kind and `external_ids.system`).
    fn system(&self) -> &'static str;
    /// The name users know it by.
    fn label(&self) -> &'static str;
    /// The CRM's default deal stages mapped to ours (overridden by `config.stageMap`).
    fn default_stage_map(&self) -> &'static [(&'static str, &'static str)];
    /// Records per create/update call.
    fn batch_size(&self) -> usize;
    /// Where and with which OAuth app tokens are refreshed (`None`: no app configured).
    fn token_refresh(&self, settings: &crate::Settings) -> Option<session::Refresh>;
    /// Creates DevSignal's fields in the CRM when missing.
    async fn ensure_fields(&self, s: &Session<'_>) -> Result<(), Stop>;
    /// A page of companies/Accounts modified at or after `since` (all when `None`), oldest
    /// first; `page` is the `next` of the previous page.
    async fn pull_accounts(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteAccount>, Stop>;
    async fn pull_contacts(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteContact>, Stop>;
    async fn pull_deals(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteDeal>, Stop>;
    /// The CRM ids of records whose key (domain, email; lower case) is one of `keys`:
    /// `(key, id)` pairs.
    async fn find(
        &self,
        s: &Session<'_>,
        object: Object,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Stop>;
    /// Creates `rows`; one answer per row, in order: the new record's id or the refusal.
    async fn create(
        &self,
        s: &Session<'_>,
        object: Object,
        rows: &[Outbound],
    ) -> Result<Vec<Result<String, Refusal>>, Stop>;
    /// Updates the records `(id, row)`; one answer per row, in order.
    async fn update(
        &self,
        s: &Session<'_>,
        object: Object,
        rows: &[(String, Outbound)],
    ) -> Result<Vec<Result<(), Refusal>>, Stop>;
}

/// The CRM system of `kind`.
pub fn system(kind: &str) -> Option<&'static dyn Crm> {
    match kind {
        "HUBSPOT" => Some(&hubspot::HubSpotCrm),
        "SALESFORCE" => Some(&salesforce::SalesforceCrm),
        _ => None,
    }
}

/// A CRM integration as a [`Connector`]: its runs are [`engine::sync`].
pub struct CrmConnector(pub &'static str);

#[async_trait::async_trait]
impl Connector for CrmConnector {
    fn kind(&self) -> &'static str {
        self.0
    }

    /// `config`: `stageMap` (the CRM's deal stages → ours, added to the defaults).
    /// `credentials`: `accessToken` (a HubSpot private-app token, or an OAuth grant's token with
    /// `refreshToken`, `expiresAt`), and Salesforce's `instanceUrl`. OAuth connections fill these
    /// in themselves.
    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut stage_map = serde_json::Map::new();
        match config {
            Value::Null => {}
            Value::Object(o) => {
                for k in o.keys() {
                    if k != "stageMap" {
                        errors.push(FieldError::new(
                            format!("config.{k}"),
                            "is not a setting of this integration (stageMap is)",
                        ));
                    }
                }
                match o.get("stageMap") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(m)) => {
                        for (crm_stage, ours) in m {
                            match ours.as_str() {
                                Some(st) if domain::crm::deals::STAGES.contains(&st) => {
                                    stage_map.insert(crm_stage.clone(), json!(st));
                                }
                                _ => errors.push(FieldError::new(
                                    format!("config.stageMap.{crm_stage}"),
                                    format!(
                                        "must be one of {}",
                                        domain::crm::deals::STAGES.join(", ")
                                    ),
                                )),
                            }
                        }
                    }
                    Some(_) => errors.push(FieldError::new(
                        "config.stageMap",
                        "must be an object of CRM stage → DevSignal stage",
                    )),
                }
            }
            _ => errors.push(FieldError::new("config", "must be an object")),
        }
        let cred = |k: &str| {
            credentials
                .and_then(|c| c.get(k))
                .and_then(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        if cred("accessToken").is_none() {
            errors.push(FieldError::new(
                "credentials.accessToken",
                "is required (or connect with OAuth at /api/v1/integrations/<kind>/connect)",
            ));
        }
        if let Some(e) = cred("expiresAt")
            && chrono::DateTime::parse_from_rfc3339(e).is_err()
        {
            errors.push(FieldError::new(
                "credentials.expiresAt",
                "must be an RFC 3339 time",
            ));
        }
        if self.0 == "SALESFORCE" {
            match cred("instanceUrl").map(url::Url::parse) {
                Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => {}
                _ => errors.push(FieldError::new(
                    "credentials.instanceUrl",
                    "is required: the https URL of the Salesforce instance",
                )),
            }
        }
        if errors.is_empty() {
            Ok(if stage_map.is_empty() {
                json!({})
            } else {
                json!({"stageMap": stage_map})
            })
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &crate::run::SyncContext) -> Result<(), Stop> {
        let crm = system(self.0)
            .ok_or_else(|| Stop::Invalid(format!("the {} sync is not built yet", self.0)))?;
        engine::sync(crm, cx).await
    }
}

pub static HUBSPOT: CrmConnector = CrmConnector("HUBSPOT");
pub static SALESFORCE: CrmConnector = CrmConnector("SALESFORCE");

/// The domain of a website or domain field as users type it (`https://www.Acme.com/about`,
/// `acme.com:443`): lower case, no scheme, `www.`, port or path; `None` when it is not one.
pub fn domain_of(website: &str) -> Option<String> {
    let mut w = website.trim().to_lowercase();
    if let Some(i) = w.find("://") {
        w = w[i + 3..].to_owned();
    }
    let host = w
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host = host.split(':').next().unwrap_or("").trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty() && host.contains('.') && !host.contains(char::is_whitespace))
        .then(|| host.to_owned())
}

/// A timestamp in the forms CRMs use: RFC 3339, or epoch milliseconds.
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(ms) = v.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms);
    }
    DateTime::parse_from_rfc3339(v)
        .ok()
        .or_else(|| DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map(|d| d.with_timezone(&Utc))
}

/// A non-blank string.
pub fn text(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_forms() {
        let a = parse_time("2026-12-01T10:00:00.000Z").unwrap();
        let b = parse_time("1796119200000").unwrap();
        assert_eq!(a, b);
        // Salesforce's offset without a colon.
        assert_eq!(parse_time("2026-12-01T10:00:00.000+0000").unwrap(), a);
    }
}
