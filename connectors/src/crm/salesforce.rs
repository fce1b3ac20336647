//! Salesforce: Accounts, Contacts and Opportunities through the REST API of the org's instance.
//!
//! Credentials (sealed): `accessToken`, `refreshToken`, `instanceUrl` (the token answer names
//! it; without it there is nowhere to send requests and the run stops as misconfigured). Tokens
//! are refreshed at `{SALESFORCE_LOGIN_URL}/services/oauth2/token` with the app's client
//! (`SALESFORCE_CLIENT_ID`/`_SECRET`); Salesforce names no expiry, so a token is refreshed when a
//! request answers 401 `INVALID_SESSION_ID`.
//!
//! Every call is under `{instanceUrl}/services/data/v60.0/`:
//! - **Pull**: SOQL through `GET query?q=…`, `WHERE LastModifiedDate >= <since>` (seconds,
//!   rounded down, so nothing modified in the cursor's second is missed) `ORDER BY
//!   LastModifiedDate ASC, Id ASC`; every page, following `nextRecordsUrl` until `done`.
//! - **Find**: Contacts by `Email IN (…)` (SOQL compares strings case-insensitively). Accounts
//!   have no domain field: they are found by `Website LIKE '%<domain>%'` per key, and a match is
//!   kept only when the Website's host (scheme, `www.`, port and path removed) *is* the domain,
//!   so `acme.com` never matches `notacme.com` or `acme.com.evil.io`.
//! - **Create / update**: sObject Collections (`POST`/`PATCH composite/sobjects`, up to 200
//!   records, `allOrNone: false`), answered per record in order: a refused record is recorded,
//!   the rest land. An update of a record deleted there (`ENTITY_IS_DELETED`, an id that no
//!   longer resolves) answers [`Refusal::Gone`], so the engine matches or creates it again.
//!   Creates set the naming fields (an Account's Name and Website, a Contact's FirstName,
//!   LastName and Email); updates send only the score fields, which DevSignal owns.
//! - **Fields**: the score fields are custom fields on Account and Contact
//!   (`DevSignal_Score__c`, `DevSignal_Tier__c`, `DevSignal_Trend__c`,
//!   `DevSignal_Signal_Count__c`, `DevSignal_Top_Signal_Type__c`, `DevSignal_Last_Signal_At__c`),
//!   created through the Tooling API (`tooling/sobjects/CustomField`) when `tooling/query` does
//!   not list them. A field created meanwhile (the API answers a duplicate) counts as present.
//!   Salesforce gives a field created this way no field-level security: an admin grants the
//!   integration user edit access (a permission set) before pushed values are visible to others.
//!
//! Rate limits: a `403 REQUEST_LIMIT_EXCEEDED` (the org's rolling 24-hour allowance) stops the
//! run as rate-limited; the engine resumes from its cursors, and unsent records stay pending.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::session::Refresh;
use super::{
    Crm, Object, Outbound, Pulled, Refusal, RemoteAccount, RemoteContact, RemoteDeal, Session,
    domain_of, parse_time, text,
};
use crate::Settings;
use crate::http::Request;
use crate::run::Stop;

pub struct SalesforceCrm;

/// The REST API version every path names.
pub const VERSION: &str = "v60.0";
/// Records per sObject Collections call (Salesforce's maximum).
pub const BATCH: usize = 200;

/// A score field: the engine's generic name, the custom field's API name, its label and its
/// metadata type.
struct Field {
    generic: &'static str,
    api: &'static str,
    label: &'static str,
    kind: Kind,
}

enum Kind {
    Number { precision: u32 },
    Text { length: u32 },
    DateTime,
}

const FIELDS: &[Field] = &[
    Field {
        generic: "score",
        api: "DevSignal_Score__c",
        label: "DevSignal Score",
        kind: Kind::Number { precision: 3 },
    },
    Field {
        generic: "tier",
        api: "DevSignal_Tier__c",
        label: "DevSignal Tier",
        kind: Kind::Text { length: 20 },
    },
    Field {
        generic: "trend",
        api: "DevSignal_Trend__c",
        label: "DevSignal Trend",
        kind: Kind::Text { length: 20 },
    },
    Field {
        generic: "signalCount",
        api: "DevSignal_Signal_Count__c",
        label: "DevSignal Signal Count",
        kind: Kind::Number { precision: 18 },
    },
    Field {
        generic: "topSignalType",
        api: "DevSignal_Top_Signal_Type__c",
        label: "DevSignal Top Signal Type",
        kind: Kind::Text { length: 80 },
    },
    Field {
        generic: "lastSignalAt",
        api: "DevSignal_Last_Signal_At__c",
        label: "DevSignal Last Signal At",
        kind: Kind::DateTime,
    },
];

/// The objects that carry the score fields.
const SCORED: &[&str] = &["Account", "Contact"];

const ACCOUNT_FIELDS: &str = "Id, Name, Website, Industry, BillingCity, BillingCountry, Description, OwnerId, LastModifiedDate";
const CONTACT_FIELDS: &str = "Id, Email, FirstName, LastName, Title, Phone, MailingCity, MailingCountry, AccountId, LastModifiedDate";
const DEAL_FIELDS: &str =
    "Id, Name, Amount, StageName, CloseDate, OwnerId, AccountId, LastModifiedDate";

/// Error codes of an update whose record no longer exists there.
const GONE_CODES: &[&str] = &[
    "ENTITY_IS_DELETED",
    "INVALID_CROSS_REFERENCE_KEY",
    "INVALID_ID_FIELD",
    "NOT_FOUND",
];

/// A SOQL string literal: quoted, with backslash, quotes and control characters escaped.
pub fn soql_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A SOQL `LIKE` pattern matching `v` anywhere: its own `%` and `_` are escaped too.
pub fn soql_contains(v: &str) -> String {
    let escaped = v
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    // `soql_string` would double the backslashes just added; quote the rest by hand.
    let mut out = String::from("'%");
    for c in escaped.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push_str("%'");
    out
}

/// A SOQL dateTime literal (UTC, whole seconds rounded down).
pub fn soql_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The instance's API root, `{instanceUrl}/services/data/v60.0`.
fn api(s: &Session<'_>) -> Result<String, Stop> {
    let base = s.instance_url().ok_or_else(|| {
        Stop::Invalid(
            "Salesforce: the credentials name no instanceUrl (it comes with the OAuth token \
             answer); connect Salesforce again"
                .into(),
        )
    })?;
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Stop::Invalid(format!(
            "Salesforce: the instanceUrl {base:?} is not an http(s) URL; connect Salesforce again"
        )));
    }
    Ok(format!("{base}/services/data/{VERSION}"))
}

fn with_query(url: &str, soql: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", soql)
        .finish();
    format!("{url}?{q}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryAnswer {
    #[serde(default)]
    done: bool,
    next_records_url: Option<String>,
    #[serde(default)]
    records: Vec<Map<String, Value>>,
}

/// One page of a SOQL query (`page` continues a previous one: its `nextRecordsUrl`).
async fn query_page(
    s: &Session<'_>,
    tooling: bool,
    soql: &str,
    page: Option<&str>,
) -> Result<(Vec<Map<String, Value>>, Option<String>), Stop> {
    let api = api(s)?;
    let url = match page {
        Some(p) => {
            // The next page is a path on the same instance; anything else would send the
            // token elsewhere.
            if !p.starts_with("/services/data/") || p.contains("://") {
                return Err(Stop::Invalid(format!(
                    "Salesforce: the query continuation {p:?} is not a path of the data API"
                )));
            }
            let base = api.split("/services/data/").next().unwrap_or_default();
            format!("{base}{p}")
        }
        None if tooling => with_query(&format!("{api}/tooling/query"), soql),
        None => with_query(&format!("{api}/query"), soql),
    };
    let answer: QueryAnswer = s.json(Request::get(url), "a SOQL query").await?;
    let next = if answer.done {
        None
    } else {
        match answer.next_records_url {
            Some(n) => Some(n),
            None => {
                return Err(Stop::Invalid(
                    "Salesforce: a query answered more records to come but no nextRecordsUrl"
                        .into(),
                ));
            }
        }
    };
    Ok((answer.records, next))
}

/// Every record of a query (every page).
async fn query_all(
    s: &Session<'_>,
    tooling: bool,
    soql: &str,
) -> Result<Vec<Map<String, Value>>, Stop> {
    let (mut all, mut next) = query_page(s, tooling, soql, None).await?;
    while let Some(p) = next {
        let (more, n) = query_page(s, tooling, soql, Some(&p)).await?;
        all.extend(more);
        next = n;
    }
    Ok(all)
}

fn pull_soql(fields: &str, object: &str, since: Option<DateTime<Utc>>) -> String {
    let filter = since
        .map(|t| format!(" WHERE LastModifiedDate >= {}", soql_datetime(t)))
        .unwrap_or_default();
    format!("SELECT {fields} FROM {object}{filter} ORDER BY LastModifiedDate ASC, Id ASC")
}

fn field(r: &Map<String, Value>, name: &str) -> Option<String> {
    text(r.get(name))
}

fn id_of(r: &Map<String, Value>) -> Result<String, Stop> {
    field(r, "Id").ok_or_else(|| Stop::Invalid("Salesforce: a queried record has no Id".into()))
}

fn modified(r: &Map<String, Value>) -> Option<DateTime<Utc>> {
    field(r, "LastModifiedDate").and_then(|t| parse_time(&t))
}

fn account(r: &Map<String, Value>) -> Result<RemoteAccount, Stop> {
    Ok(RemoteAccount {
        id: id_of(r)?,
        modified: modified(r),
        name: field(r, "Name"),
        domain: field(r, "Website").and_then(|w| domain_of(&w)),
        industry: field(r, "Industry"),
        city: field(r, "BillingCity"),
        country: field(r, "BillingCountry"),
        description: field(r, "Description"),
        owner: field(r, "OwnerId"),
    })
}

fn contact(r: &Map<String, Value>) -> Result<RemoteContact, Stop> {
    Ok(RemoteContact {
        id: id_of(r)?,
        modified: modified(r),
        email: field(r, "Email"),
        first_name: field(r, "FirstName"),
        last_name: field(r, "LastName"),
        title: field(r, "Title"),
        phone: field(r, "Phone"),
        city: field(r, "MailingCity"),
        country: field(r, "MailingCountry"),
        account: field(r, "AccountId"),
    })
}

fn deal(r: &Map<String, Value>) -> Result<RemoteDeal, Stop> {
    Ok(RemoteDeal {
        id: id_of(r)?,
        modified: modified(r),
        name: field(r, "Name"),
        amount: r.get("Amount").and_then(|a| match a {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
        stage: field(r, "StageName"),
        close_date: field(r, "CloseDate")
            .and_then(|d| NaiveDate::parse_from_str(d.get(..10).unwrap_or(&d), "%Y-%m-%d").ok()),
        owner: field(r, "OwnerId"),
        account: field(r, "AccountId"),
    })
}

fn sobject(object: Object) -> Result<&'static str, Stop> {
    match object {
        Object::Account => Ok("Account"),
        Object::Contact => Ok("Contact"),
        Object::Deal => Err(Stop::Internal(
            "Salesforce: Opportunities are pulled, never pushed".into(),
        )),
    }
}

/// The score fields of `row` under their Salesforce names (unknown names are left out).
fn score_fields(row: &Outbound, record: &mut Map<String, Value>) {
    for (name, value) in &row.values {
        if let Some(f) = FIELDS.iter().find(|f| f.generic == *name) {
            record.insert(f.api.into(), value.clone());
        }
    }
}

/// The record that creates `row`, or why it cannot be created.
fn new_record(object: Object, row: &Outbound) -> Result<Value, String> {
    let mut r = Map::new();
    r.insert(
        "attributes".into(),
        json!({"type": sobject(object).map_err(|_| "not pushed")?}),
    );
    let key = row.key.as_deref().map(str::trim).filter(|k| !k.is_empty());
    match object {
        Object::Account => {
            let name = row
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .or(key)
                .ok_or("an account with neither a name nor a domain cannot be created")?;
            r.insert("Name".into(), json!(name));
            if let Some(domain) = key {
                r.insert("Website".into(), json!(format!("https://{domain}")));
            }
        }
        Object::Contact => {
            let email = key.ok_or("a contact without an email cannot be created")?;
            let local = email.split('@').next().filter(|l| !l.is_empty());
            let last = row
                .last_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .or(local)
                .unwrap_or("Unknown");
            r.insert("LastName".into(), json!(last));
            if let Some(first) = row.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                r.insert("FirstName".into(), json!(first));
            }
            r.insert("Email".into(), json!(email));
        }
        Object::Deal => return Err("Opportunities are not pushed".into()),
    }
    score_fields(row, &mut r);
    Ok(Value::Object(r))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveError {
    #[serde(default)]
    status_code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Deserialize)]
struct SaveResult {
    id: Option<String>,
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<SaveError>,
}

impl SaveResult {
    fn refusal(&self) -> Refusal {
        if self
            .errors
            .iter()
            .any(|e| GONE_CODES.contains(&e.status_code.as_str()))
        {
            return Refusal::Gone;
        }
        let said: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                let mut m = format!("{}: {}", e.status_code, e.message);
                if !e.fields.is_empty() {
                    m.push_str(&format!(" (fields: {})", e.fields.join(", ")));
                }
                m
            })
            .collect();
        Refusal::Refused(if said.is_empty() {
            "Salesforce refused the record without saying why".into()
        } else {
            said.join("; ")
        })
    }
}

/// Sends `records` (at most [`BATCH`]) to sObject Collections; one result per record, in order.
async fn collection(
    s: &Session<'_>,
    patch: bool,
    records: Vec<Value>,
) -> Result<Vec<SaveResult>, Stop> {
    let n = records.len();
    let url = format!("{}/composite/sobjects", api(s)?);
    let body = json!({"allOrNone": false, "records": records});
    let req = if patch {
        Request::patch_json(url, body)
    } else {
        Request::post_json(url, body)
    };
    let results: Vec<SaveResult> = s.json(req, "an sObject Collections call").await?;
    if results.len() != n {
        return Err(Stop::Invalid(format!(
            "Salesforce answered {} results for {n} records",
            results.len()
        )));
    }
    Ok(results)
}

fn metadata(f: &Field) -> Value {
    let mut m = json!({
        "label": f.label,
        "description": "Set by DevSignal on every sync; edits here are overwritten.",
    });
    match f.kind {
        Kind::Number { precision } => {
            m["type"] = json!("Number");
            m["precision"] = json!(precision);
            m["scale"] = json!(0);
        }
        Kind::Text { length } => {
            m["type"] = json!("Text");
            m["length"] = json!(length);
        }
        Kind::DateTime => m["type"] = json!("DateTime"),
    }
    m
}

#[async_trait::async_trait]
impl Crm for SalesforceCrm {
    fn system(&self) -> &'static str {
        "SALESFORCE"
    }

    fn label(&self) -> &'static str {
        "Salesforce"
    }

    fn default_stage_map(&self) -> &'static [(&'static str, &'static str)] {
        // Salesforce's standard opportunity stages (shared with CSV imports of Salesforce
        // exports).
        domain::crm::deals::SALESFORCE_STAGES
    }

    fn batch_size(&self) -> usize {
        BATCH
    }

    /// `{SALESFORCE_LOGIN_URL}/services/oauth2/token` with the app's client; `None` without it.
    fn token_refresh(&self, settings: &Settings) -> Option<Refresh> {
        settings.salesforce_app.clone().map(|app| Refresh {
            token_url: format!(
                "{}/services/oauth2/token",
                settings.salesforce_login_url.trim_end_matches('/')
            ),
            app,
        })
    }

    async fn ensure_fields(&self, s: &Session<'_>) -> Result<(), Stop> {
        let api = api(s)?;
        for object in SCORED {
            let soql = format!(
                "SELECT DeveloperName FROM CustomField WHERE TableEnumOrId = {}",
                soql_string(object)
            );
            let present: Vec<String> = query_all(s, true, &soql)
                .await?
                .iter()
                .filter_map(|r| field(r, "DeveloperName"))
                .map(|d| d.to_lowercase())
                .collect();
            for f in FIELDS {
                let developer_name = f.api.trim_end_matches("__c").to_lowercase();
                if present.contains(&developer_name) {
                    continue;
                }
                let body = json!({
                    "FullName": format!("{object}.{}", f.api),
                    "Metadata": metadata(f),
                });
                let req = Request::post_json(format!("{api}/tooling/sobjects/CustomField"), body);
                match s.json::<Value>(req, "creating a custom field").await {
                    Ok(_) => {
                        tracing::info!(object, field = f.api, "Salesforce custom field created");
                    }
                    // Created meanwhile (another run, an admin): present.
                    Err(Stop::Invalid(m)) if m.to_lowercase().contains("duplicate") => {}
                    Err(Stop::Invalid(m)) => {
                        return Err(Stop::Invalid(format!(
                            "Salesforce refused to create the custom field {object}.{} ({m}); \
                             the connected user needs the Customize Application permission",
                            f.api
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn pull_accounts(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteAccount>, Stop> {
        let soql = pull_soql(ACCOUNT_FIELDS, "Account", since);
        let (records, next) = query_page(s, false, &soql, page).await?;
        let items = records.iter().map(account).collect::<Result<_, _>>()?;
        Ok(Pulled { items, next })
    }

    async fn pull_contacts(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteContact>, Stop> {
        let soql = pull_soql(CONTACT_FIELDS, "Contact", since);
        let (records, next) = query_page(s, false, &soql, page).await?;
        let items = records.iter().map(contact).collect::<Result<_, _>>()?;
        Ok(Pulled { items, next })
    }

    async fn pull_deals(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteDeal>, Stop> {
        let soql = pull_soql(DEAL_FIELDS, "Opportunity", since);
        let (records, next) = query_page(s, false, &soql, page).await?;
        let items = records.iter().map(deal).collect::<Result<_, _>>()?;
        Ok(Pulled { items, next })
    }

    async fn find(
        &self,
        s: &Session<'_>,
        object: Object,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Stop> {
        let mut keys: Vec<String> = keys
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        keys.dedup();
        let mut found: Vec<(String, String)> = Vec::new();
        // A query travels in the URL (at most 16,384 bytes): 50 keys stay well below it.
        for chunk in keys.chunks(50) {
            let (soql, key_field) = match object {
                Object::Account => {
                    let likes: Vec<String> = chunk
                        .iter()
                        .map(|k| format!("Website LIKE {}", soql_contains(k)))
                        .collect();
                    (
                        format!(
                            "SELECT Id, Website FROM Account WHERE {} ORDER BY CreatedDate ASC, Id ASC",
                            likes.join(" OR ")
                        ),
                        "Website",
                    )
                }
                Object::Contact => {
                    let emails: Vec<String> = chunk.iter().map(|k| soql_string(k)).collect();
                    (
                        format!(
                            "SELECT Id, Email FROM Contact WHERE Email IN ({}) ORDER BY CreatedDate ASC, Id ASC",
                            emails.join(", ")
                        ),
                        "Email",
                    )
                }
                Object::Deal => {
                    return Err(Stop::Internal(
                        "Salesforce: Opportunities are pulled, never pushed".into(),
                    ));
                }
            };
            for r in query_all(s, false, &soql).await? {
                let Some(value) = field(&r, key_field) else {
                    continue;
                };
                let key = match object {
                    Object::Account => domain_of(&value),
                    _ => Some(value.to_lowercase()),
                };
                // The oldest record of a key wins; a LIKE's near misses are dropped.
                if let Some(key) = key.filter(|k| chunk.contains(k))
                    && !found.iter().any(|(k, _)| *k == key)
                {
                    found.push((key, id_of(&r)?));
                }
            }
        }
        Ok(found)
    }

    async fn create(
        &self,
        s: &Session<'_>,
        object: Object,
        rows: &[Outbound],
    ) -> Result<Vec<Result<String, Refusal>>, Stop> {
        sobject(object)?;
        let mut out: Vec<Option<Result<String, Refusal>>> = Vec::with_capacity(rows.len());
        let mut sendable: Vec<(usize, Value)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            match new_record(object, row) {
                Ok(r) => {
                    sendable.push((i, r));
                    out.push(None);
                }
                Err(why) => out.push(Some(Err(Refusal::Refused(why)))),
            }
        }
        for chunk in sendable.chunks(BATCH) {
            let records = chunk.iter().map(|(_, r)| r.clone()).collect();
            let results = collection(s, false, records).await?;
            for ((i, _), r) in chunk.iter().zip(results) {
                out[*i] = Some(match (&r.id, r.success) {
                    (Some(id), true) => Ok(id.clone()),
                    (None, true) => Err(Refusal::Refused(
                        "Salesforce created the record but answered no id".into(),
                    )),
                    // A create cannot find its record deleted: every refusal is a refusal.
                    _ => Err(match r.refusal() {
                        Refusal::Gone => Refusal::Refused(
                            r.errors
                                .iter()
                                .map(|e| format!("{}: {}", e.status_code, e.message))
                                .collect::<Vec<_>>()
                                .join("; "),
                        ),
                        other => other,
                    }),
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Refusal::Refused("not sent".into()))))
            .collect())
    }

    async fn update(
        &self,
        s: &Session<'_>,
        object: Object,
        rows: &[(String, Outbound)],
    ) -> Result<Vec<Result<(), Refusal>>, Stop> {
        let kind = sobject(object)?;
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(BATCH) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(id, row)| {
                    let mut r = Map::new();
                    r.insert("attributes".into(), json!({"type": kind}));
                    r.insert("id".into(), json!(id));
                    score_fields(row, &mut r);
                    Value::Object(r)
                })
                .collect();
            for r in collection(s, true, records).await? {
                out.push(if r.success { Ok(()) } else { Err(r.refusal()) });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_escape_backslash_and_quotes() {
        assert_eq!(soql_string("acme.com"), "'acme.com'");
        assert_eq!(soql_string("o'brien@x.io"), r"'o\'brien@x.io'");
        assert_eq!(soql_string(r"a\b"), r"'a\\b'");
        // A backslash before a quote cannot end the literal early.
        assert_eq!(soql_string(r"x\' OR Name != '"), r"'x\\\' OR Name != \''");
        assert_eq!(soql_string("a\nb\"c"), r#"'a\nb\"c'"#);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(soql_contains("acme.com"), "'%acme.com%'");
        assert_eq!(soql_contains("my_co%.io"), r"'%my\_co\%.io%'");
        assert_eq!(soql_contains(r"o'b\x"), r"'%o\'b\\x%'");
    }

    #[test]
    fn datetimes_are_soql_literals_rounded_down() {
        let t = parse_time("2026-12-01T10:00:05.900Z").unwrap();
        assert_eq!(soql_datetime(t), "2026-12-01T10:00:05Z");
        assert_eq!(
            pull_soql("Id", "Account", Some(t)),
            "SELECT Id FROM Account WHERE LastModifiedDate >= 2026-12-01T10:00:05Z \
             ORDER BY LastModifiedDate ASC, Id ASC"
        );
        assert_eq!(
            pull_soql("Id", "Contact", None),
            "SELECT Id FROM Contact ORDER BY LastModifiedDate ASC, Id ASC"
        );
    }

    #[test]
    fn websites_give_their_domain() {
        assert_eq!(
            domain_of("https://www.Acme.com/about").as_deref(),
            Some("acme.com")
        );
        assert_eq!(domain_of("acme.com").as_deref(), Some("acme.com"));
        assert_eq!(
            domain_of("http://acme.io:8080?x=1").as_deref(),
            Some("acme.io")
        );
        assert_eq!(
            domain_of("www.sub.acme.co.uk.").as_deref(),
            Some("sub.acme.co.uk")
        );
        assert_eq!(domain_of(""), None);
        assert_eq!(domain_of("not a site"), None);
        assert_eq!(domain_of("localhost"), None);
    }

    #[test]
    fn salesforce_times_parse() {
        let t = parse_time("2026-12-01T10:00:00.000+0000").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T10:00:00+00:00");
    }

    #[test]
    fn records_map_to_remote_rows() {
        let r: Map<String, Value> = serde_json::from_value(json!({
            "attributes": {"type": "Opportunity"},
            "Id": "006000000000001AAA", "Name": "Acme expansion", "Amount": 12000.5,
            "StageName": "Negotiation/Review", "CloseDate": "2027-01-31", "OwnerId": "005x",
            "AccountId": "001x", "LastModifiedDate": "2026-12-01T10:00:00.000+0000"
        }))
        .unwrap();
        let d = deal(&r).unwrap();
        assert_eq!(d.amount, Some(12000.5));
        assert_eq!(d.close_date, NaiveDate::from_ymd_opt(2027, 1, 31));
        assert_eq!(d.account.as_deref(), Some("001x"));
        assert!(d.modified.is_some());
        let a: Map<String, Value> = serde_json::from_value(json!({
            "Id": "001x", "Name": "Acme", "Website": "https://www.acme.com/", "BillingCity": null
        }))
        .unwrap();
        let a = account(&a).unwrap();
        assert_eq!(a.domain.as_deref(), Some("acme.com"));
        assert_eq!(a.city, None);
        let no_id: Map<String, Value> = serde_json::from_value(json!({"Name": "x"})).unwrap();
        assert!(account(&no_id).is_err());
    }

    fn row(key: Option<&str>, name: Option<&str>, last: Option<&str>) -> Outbound {
        Outbound {
            local_id: uuid::Uuid::nil(),
            key: key.map(str::to_owned),
            name: name.map(str::to_owned),
            last_name: last.map(str::to_owned),
            values: vec![
                ("score", json!(87)),
                ("tier", json!("HOT")),
                ("lastSignalAt", json!("2026-12-01T10:00:00Z")),
                ("unknownThing", json!(1)),
            ],
        }
    }

    #[test]
    fn created_records_carry_names_and_score_fields() {
        let a = new_record(Object::Account, &row(Some("acme.com"), Some("Acme"), None)).unwrap();
        assert_eq!(a["attributes"]["type"], "Account");
        assert_eq!(a["Name"], "Acme");
        assert_eq!(a["Website"], "https://acme.com");
        assert_eq!(a["DevSignal_Score__c"], 87);
        assert_eq!(a["DevSignal_Tier__c"], "HOT");
        assert_eq!(a["DevSignal_Last_Signal_At__c"], "2026-12-01T10:00:00Z");
        assert!(a.get("unknownThing").is_none());
        assert_eq!(a.as_object().unwrap().len(), 6);

        let c = new_record(Object::Contact, &row(Some("jo@acme.com"), None, None)).unwrap();
        assert_eq!(c["LastName"], "jo");
        assert!(c.get("FirstName").is_none());
        assert_eq!(c["Email"], "jo@acme.com");
        let c = new_record(
            Object::Contact,
            &row(Some("jo@acme.com"), Some("Jo"), Some("Ng")),
        )
        .unwrap();
        assert_eq!(
            (c["FirstName"].as_str(), c["LastName"].as_str()),
            (Some("Jo"), Some("Ng"))
        );
        assert!(new_record(Object::Contact, &row(None, Some("Jo"), None)).is_err());
        assert!(new_record(Object::Account, &row(None, None, None)).is_err());
        assert!(new_record(Object::Deal, &row(Some("x"), None, None)).is_err());
    }

    #[test]
    fn refusals_tell_gone_from_refused() {
        let r: SaveResult = serde_json::from_value(json!({
            "success": false,
            "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
        }))
        .unwrap();
        assert!(matches!(r.refusal(), Refusal::Gone));
        let r: SaveResult = serde_json::from_value(json!({
            "success": false,
            "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Nope", "fields": ["Name"]}]
        }))
        .unwrap();
        match r.refusal() {
            Refusal::Refused(m) => {
                assert_eq!(m, "FIELD_CUSTOM_VALIDATION_EXCEPTION: Nope (fields: Name)")
            }
            Refusal::Gone => panic!("a validation error is not gone"),
        }
    }

    #[test]
    fn custom_field_metadata_is_typed() {
        let score = metadata(&FIELDS[0]);
        assert_eq!(score["type"], "Number");
        assert_eq!(score["precision"], 3);
        assert_eq!(score["scale"], 0);
        assert_eq!(metadata(&FIELDS[1])["length"], 20);
        assert_eq!(metadata(&FIELDS[5])["type"], "DateTime");
    }

    #[test]
    fn stage_map_names_only_our_stages() {
        for (_, ours) in SalesforceCrm.default_stage_map() {
            assert!(domain::crm::deals::STAGES.contains(ours), "{ours}");
        }
    }

    #[test]
    fn refresh_uses_the_login_host() {
        let mut settings = Settings {
            salesforce_login_url: "https://test.salesforce.com/".into(),
            ..Default::default()
        };
        assert!(SalesforceCrm.token_refresh(&settings).is_none());
        settings.salesforce_app = Some(crate::OAuthApp {
            client_id: "id".into(),
            client_secret: "secret".into(),
        });
        let r = SalesforceCrm.token_refresh(&settings).unwrap();
        assert_eq!(
            r.token_url,
            "https://test.salesforce.com/services/oauth2/token"
        );
    }
}
