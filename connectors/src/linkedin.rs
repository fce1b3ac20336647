//! LinkedIn: LinkedIn offers no API for a company page's visitors or followers, so nothing here
//! pretends to sync it. Signals arrive two ways:
//!
//! - a signed webhook, `POST /api/v1/webhooks/linkedin/{integrationId}` with GitHub's scheme
//!   (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` under the integration's
//!   webhook secret), from whatever tool the customer uses (an automation, a browser
//!   extension's export): one event, `{"events": [...]}` or an array. An event is
//!   `{"type", "id"?, "timestamp"?, "person": {"linkedinUrl", "email", "name", "title",
//!   "company", "companyDomain"}, "details"?}` with a type of `linkedin_page_view`,
//!   `linkedin_company_follow`, `linkedin_post_engagement` or `linkedin_employee_activity`
//!   (the `linkedin_` prefix may be left out). Its key is the sender's `id` (or the
//!   `X-Delivery-Id` header and the event's place in the delivery), else the type, the person
//!   and the timestamp — a redelivery is one signal.
//! - an import of people (CSV with a header row, or a JSON array), through GraphQL
//!   (`importLinkedInContacts`): each row makes or finds the contact by its LinkedIn profile
//!   (and email), sets the title, and links the company named by its domain. An import is a
//!   profile update, not something the people did: it stores no signal and does not move
//!   scores. Every row is checked before anything is written; a bad row refuses the import
//!   naming the row and field.
//!
//! The `linkedin-sync-scheduler` cron entry reports its job skipped, saying so.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use domain::signals::{AccountHints, ActorHints, ContactTraits, Input, identifiers};
use domain::{Actor, Error, FieldError, Result};
use sea_orm::DatabaseConnection;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::run::{Stop, SyncContext};
use crate::webhook::{Delivery, Inbound, Refusal};
use crate::{Runtime, status, store};

pub struct LinkedIn;

/// The event types a webhook may send.
pub const TYPES: &[&str] = &[
    "linkedin_page_view",
    "linkedin_company_follow",
    "linkedin_post_engagement",
    "linkedin_employee_activity",
];

/// Rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 5000;
/// Field errors reported for a refused import (the first ones).
const MAX_REPORTED: usize = 50;

/// Why the scheduled entry does nothing.
pub const NO_API: &str =
    "LinkedIn has no API to read: its signals arrive by webhook and its people by import";

fn is_company_page(u: &str) -> bool {
    url::Url::parse(u).ok().is_some_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str()
                .is_some_and(|h| h == "linkedin.com" || h.ends_with(".linkedin.com"))
            && (u.path().starts_with("/company/") || u.path().starts_with("/showcase/"))
            && u.path().trim_end_matches('/').matches('/').count() >= 2
    })
}

/// A LinkedIn profile URL (`linkedin.com/in/<id>`, any scheme or subdomain) as its identity.
fn profile(raw: &str) -> Option<String> {
    let l = raw.trim().to_lowercase();
    let rest = l
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (host, path) = rest.split_once('/')?;
    let host_ok = host == "linkedin.com" || host.ends_with(".linkedin.com");
    let id = path.strip_prefix("in/")?.trim_end_matches('/');
    (host_ok && !id.is_empty() && !id.contains('/'))
        .then(|| identifiers::linkedin(raw))
        .flatten()
}

/// The normalised key of a column or property name: lower case, letters and digits only.
fn norm_key(k: &str) -> String {
    k.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a column or property means.
fn field_of(k: &str) -> Option<&'static str> {
    Some(match norm_key(k).as_str() {
        "linkedinurl" | "linkedin" | "profileurl" | "linkedinprofile" | "linkedinprofileurl"
        | "profile" | "url" => "linkedinUrl",
        "email" | "emailaddress" | "workemail" => "email",
        "name" | "fullname" => "name",
        "firstname" => "firstName",
        "lastname" => "lastName",
        "title" | "position" | "jobtitle" | "headline" => "title",
        "company" | "companyname" | "organization" | "organisation" => "company",
        "companydomain" | "domain" | "website" | "companywebsite" | "companyurl" => "companyDomain",
        _ => return None,
    })
}

/// A person as a webhook or an import row names them.
#[derive(Debug, Default, Clone)]
struct Person {
    linkedin: Option<String>,
    email: Option<String>,
    name: Option<String>,
    title: Option<String>,
    company: Option<String>,
    domain: Option<String>,
}

/// Reads a person from `fields` (normalised names → text), pushing errors named under
/// `prefix`. `needs_profile`: the LinkedIn profile is required (imports).
fn person_of(
    fields: &BTreeMap<&'static str, String>,
    prefix: &str,
    needs_profile: bool,
    errors: &mut Vec<FieldError>,
) -> Person {
    let get = |k: &str| {
        fields
            .get(k)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut p = Person::default();
    match get("linkedinUrl") {
        Some(u) => match profile(&u) {
            Some(n) => p.linkedin = Some(n),
            None => errors.push(FieldError::new(
                format!("{prefix}.linkedinUrl"),
                "must be a LinkedIn profile URL (linkedin.com/in/…)",
            )),
        },
        None if needs_profile => errors.push(FieldError::new(
            format!("{prefix}.linkedinUrl"),
            "is required: the person's LinkedIn profile URL",
        )),
        None => {}
    }
    if let Some(e) = get("email") {
        match identifiers::email(&e) {
            Some(n) => p.email = Some(n),
            None => errors.push(FieldError::new(
                format!("{prefix}.email"),
                "must be an email address",
            )),
        }
    }
    if let Some(d) = get("companyDomain") {
        match identifiers::domain(&d) {
            Some(n) => p.domain = Some(n),
            None => errors.push(FieldError::new(
                format!("{prefix}.companyDomain"),
                "must be a domain such as acme.io",
            )),
        }
    }
    p.name = get("name").or_else(|| {
        let full = [get("firstName"), get("lastName")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!full.is_empty()).then_some(full)
    });
    p.title = get("title");
    p.company = get("company");
    for (field, v) in [
        ("name", &p.name),
        ("title", &p.title),
        ("company", &p.company),
    ] {
        if v.as_ref().is_some_and(|v| v.chars().count() > 200) {
            errors.push(FieldError::new(
                format!("{prefix}.{field}"),
                "must be at most 200 characters",
            ));
        }
    }
    if !needs_profile && p.linkedin.is_none() && p.email.is_none() {
        errors.push(FieldError::new(
            format!("{prefix}.person"),
            "must name the person by linkedinUrl or email",
        ));
    }
    p
}

impl Person {
    fn hints(&self) -> (ActorHints, Option<AccountHints>, ContactTraits) {
        let actor = ActorHints {
            linkedin: self.linkedin.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            ..Default::default()
        };
        let account = self.domain.clone().map(|d| AccountHints {
            domain: Some(d),
            name: self.company.clone(),
            github_org: None,
        });
        let traits = ContactTraits {
            title: self.title.clone(),
            ..Default::default()
        };
        (actor, account, traits)
    }

    fn who(&self) -> String {
        self.linkedin
            .clone()
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| "anonymous".into())
    }
}

fn text_fields(obj: &Map<String, Value>) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if let (Some(f), Some(s)) = (field_of(k), v.as_str()) {
            out.entry(f).or_insert_with(|| s.to_owned());
        }
    }
    out
}

/// The signals a webhook body stands for.
pub fn webhook_inputs(
    body: &Value,
    delivery: Option<&str>,
) -> std::result::Result<Vec<Input>, Refusal> {
    let items: Vec<&Value> = match body {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => match o.get("events") {
            Some(Value::Array(a)) => a.iter().collect(),
            _ => vec![body],
        },
        _ => {
            return Err(Refusal::BadRequest(
                "the body is not an event or a list of events".into(),
            ));
        }
    };
    if items.is_empty() || items.len() > 1000 {
        return Err(Refusal::BadRequest(
            "a delivery holds 1 to 1000 events".into(),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("events.{i}");
        let Some(obj) = item.as_object() else {
            errors.push(FieldError::new(prefix, "must be an object"));
            continue;
        };
        let t = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_lowercase();
        let t = if t.starts_with("linkedin_") {
            t
        } else {
            format!("linkedin_{t}")
        };
        if !TYPES.contains(&t.as_str()) {
            errors.push(FieldError::new(
                format!("{prefix}.type"),
                format!("must be one of {}", TYPES.join(", ")),
            ));
            continue;
        }
        let person_obj = obj
            .get("person")
            .or_else(|| obj.get("actor"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let person = person_of(
            &text_fields(&person_obj),
            &format!("{prefix}.person"),
            false,
            &mut errors,
        );
        let timestamp = match obj.get("timestamp").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => match v
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            {
                Some(d) => Some(d.with_timezone(&Utc)),
                None => {
                    errors.push(FieldError::new(
                        format!("{prefix}.timestamp"),
                        "must be an ISO-8601 time",
                    ));
                    continue;
                }
            },
        };
        let id = obj
            .get("id")
            .and_then(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .or_else(|| delivery.map(|d| format!("{d}:{i}")));
        let key = match (&id, &timestamp) {
            (Some(id), _) => format!("linkedin:{id}"),
            (None, Some(ts)) => format!("linkedin:{t}:{}:{}", person.who(), ts.to_rfc3339()),
            (None, None) => {
                errors.push(FieldError::new(
                    format!("{prefix}.id"),
                    "an event needs an id or a timestamp, so that a redelivery is not counted twice",
                ));
                continue;
            }
        };
        let mut meta = Map::new();
        if let Some(d) = obj
            .get("details")
            .or_else(|| obj.get("metadata"))
            .filter(|d| d.is_object())
        {
            meta.insert("details".into(), d.clone());
        }
        if let Some(c) = &person.company {
            meta.insert("company".into(), json!(c));
        }
        let (actor, account, traits) = person.hints();
        out.push(Input {
            signal_type: t,
            idempotency_key: Some(key.chars().take(200).collect()),
            timestamp: timestamp.map(|t| t.to_rfc3339()),
            metadata: Some(Value::Object(meta)),
            actor: Some(actor),
            account,
            contact_traits: traits.title.is_some().then_some(traits),
            ..Default::default()
        });
    }
    if let Some(e) = errors.first() {
        return Err(Refusal::BadRequest(format!("{}: {}", e.field, e.message)));
    }
    Ok(out)
}

/// The rows of an import, as field maps.
fn rows_of(format: ImportFormat, data: &str) -> Result<Vec<BTreeMap<&'static str, String>>> {
    let rows = match format {
        ImportFormat::Json => {
            let v: Value = serde_json::from_str(data)
                .map_err(|e| Error::invalid("data", format!("is not JSON ({e})")))?;
            let Value::Array(items) = v else {
                return Err(Error::invalid("data", "must be a JSON array of people"));
            };
            let mut rows = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_object() {
                    Some(o) => rows.push(text_fields(o)),
                    None => return Err(Error::invalid(format!("rows.{i}"), "must be an object")),
                }
            }
            rows
        }
        ImportFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(data.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| Error::invalid("data", format!("is not CSV ({e})")))?
                .clone();
            let columns: Vec<Option<&'static str>> = headers.iter().map(field_of).collect();
            if !columns.contains(&Some("linkedinUrl")) {
                return Err(Error::invalid(
                    "data",
                    "the header row names no LinkedIn profile column (linkedinUrl, profileUrl or LinkedIn)",
                ));
            }
            let mut rows = Vec::new();
            for (i, rec) in reader.records().enumerate() {
                let rec = rec.map_err(|e| {
                    Error::invalid(format!("rows.{i}"), format!("is not CSV ({e})"))
                })?;
                let mut row = BTreeMap::new();
                for (col, v) in columns.iter().zip(rec.iter()) {
                    if let Some(f) = col {
                        row.entry(*f).or_insert_with(|| v.to_owned());
                    }
                }
                rows.push(row);
            }
            rows
        }
    };
    if rows.is_empty() || rows.len() > MAX_IMPORT_ROWS {
        return Err(Error::invalid(
            "data",
            format!("must hold 1 to {MAX_IMPORT_ROWS} people"),
        ));
    }
    Ok(rows)
}

/// The format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Json,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub rows: usize,
    /// Distinct contacts the rows resolved to (made or found).
    pub contacts: usize,
    /// Distinct companies they were linked to.
    pub accounts: usize,
}

/// Imports people into a LinkedIn integration (ADMIN or `integrations:manage`): every row is
/// checked first, then the people are made or found in batches.
pub async fn import(
    db: &DatabaseConnection,
    _rt: &Runtime,
    actor: &Actor,
    integration_id: Uuid,
    format: ImportFormat,
    data: &str,
) -> Result<Imported> {
    store::manage(actor)?;
    let m = store::get(db, actor, integration_id).await?;
    if m.kind != "LINKEDIN" {
        return Err(Error::invalid(
            "integrationId",
            "is not a LinkedIn integration",
        ));
    }
    if m.status == status::DISCONNECTED {
        return Err(Error::Conflict {
            field: "integrationId".into(),
            message: "the integration is disconnected".into(),
        });
    }
    let rows = rows_of(format, data)?;
    let mut errors = Vec::new();
    let people: Vec<Person> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| person_of(r, &format!("rows.{i}"), true, &mut errors))
        .collect();
    if !errors.is_empty() {
        errors.truncate(MAX_REPORTED);
        return Err(Error::Validation(errors));
    }
    let source = m.source_id.to_string();
    let inputs: Vec<Input> = people
        .iter()
        .map(|p| {
            let (actor, account, traits) = p.hints();
            Input {
                source_id: Some(source.clone()),
                signal_type: "linkedin_import".into(),
                actor: Some(actor),
                account,
                contact_traits: Some(traits),
                profile_only: true,
                ..Default::default()
            }
        })
        .collect();
    let as_integration = crate::run::system_actor(&m);
    let mut contacts = HashSet::new();
    let mut accounts = HashSet::new();
    for chunk in inputs.chunks(domain::signals::MAX_BATCH) {
        let results =
            domain::signals::ingest_many(db, &as_integration, chunk.to_vec(), "rows", "api")
                .await?;
        for r in results {
            let ing = r?;
            contacts.extend(ing.contact_id);
            accounts.extend(ing.account_id);
        }
    }
    Ok(Imported {
        rows: rows.len(),
        contacts: contacts.len(),
        accounts: accounts.len(),
    })
}

#[async_trait::async_trait]
impl crate::Connector for LinkedIn {
    fn kind(&self) -> &'static str {
        "LINKEDIN"
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> std::result::Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Value::Object(cfg) = config else {
            return Err(vec![FieldError::new("config", "must be an object")]);
        };
        let page = cfg
            .get("companyPageUrl")
            .and_then(Value::as_str)
            .map(|s| s.trim().trim_end_matches('/').to_owned());
        match &page {
            Some(p) if is_company_page(p) => {}
            _ => errors.push(FieldError::new(
                "config.companyPageUrl",
                "must be the company's LinkedIn page (https://www.linkedin.com/company/…)",
            )),
        }
        for k in cfg.keys() {
            if k != "companyPageUrl" {
                errors.push(FieldError::new(
                    format!("config.{k}"),
                    "is not a LinkedIn setting (companyPageUrl)",
                ));
            }
        }
        if credentials.is_some_and(|c| !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty()))
        {
            errors.push(FieldError::new(
                "credentials",
                "LinkedIn needs no credentials: its webhook is signed with the integration's webhook secret",
            ));
        }
        if errors.is_empty() {
            Ok(json!({ "companyPageUrl": page }))
        } else {
            Err(errors)
        }
    }

    fn syncs(&self) -> bool {
        false
    }

    async fn sync(&self, _cx: &SyncContext) -> std::result::Result<(), Stop> {
        Err(Stop::Invalid(NO_API.into()))
    }

    fn webhooks(&self) -> bool {
        true
    }

    fn webhook(&self, d: &Inbound<'_>) -> Option<std::result::Result<Delivery, Refusal>> {
        Some(d.verify_hub_sha256().and_then(|()| {
            let body = d.json()?;
            let delivery = d.header("x-delivery-id");
            Ok(Delivery::Ingest(webhook_inputs(&body, delivery)?))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_pages_are_recognised() {
        assert!(is_company_page("https://www.linkedin.com/company/acme"));
        assert!(is_company_page("https://linkedin.com/showcase/acme-cloud/"));
        assert!(!is_company_page("https://www.linkedin.com/in/ana"));
        assert!(!is_company_page("https://evil.com/company/acme"));
        assert!(!is_company_page("https://www.linkedin.com/company/"));
    }

    #[test]
    fn events_are_keyed_by_id_or_by_type_person_and_time() {
        let body = json!({"events": [
            {"type": "page_view", "id": "e1", "person": {"linkedinUrl": "https://www.linkedin.com/in/ana-lee", "companyDomain": "acme.io"}},
            {"type": "linkedin_company_follow", "timestamp": "2026-11-30T10:00:00Z", "person": {"email": "bo@acme.io"}}
        ]});
        let inputs = webhook_inputs(&body, None).unwrap();
        assert_eq!(inputs[0].signal_type, "linkedin_page_view");
        assert_eq!(inputs[0].idempotency_key.as_deref(), Some("linkedin:e1"));
        assert_eq!(
            inputs[1].idempotency_key.as_deref(),
            Some("linkedin:linkedin_company_follow:bo@acme.io:2026-11-30T10:00:00+00:00")
        );
        let bad = json!({"type": "like", "id": "x", "person": {"email": "bo@acme.io"}});
        assert!(
            matches!(webhook_inputs(&bad, None), Err(Refusal::BadRequest(m)) if m.contains("events.0.type"))
        );
        let anon = json!({"type": "page_view", "id": "x", "person": {}});
        assert!(webhook_inputs(&anon, None).is_err());
    }

    #[test]
    fn csv_headers_are_matched_loosely() {
        let rows = rows_of(
            ImportFormat::Csv,
            "First Name,Last Name,LinkedIn URL,Email Address,Position,Company,Website\nAna,Lee,https://www.linkedin.com/in/ana-lee,ana@acme.io,CTO,Acme,acme.io\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        let mut errors = Vec::new();
        let p = person_of(&rows[0], "rows.0", true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.name.as_deref(), Some("Ana Lee"));
        assert_eq!(p.title.as_deref(), Some("CTO"));
        assert_eq!(p.domain.as_deref(), Some("acme.io"));
        assert!(rows_of(ImportFormat::Csv, "name,email\nA,a@b.io\n").is_err());
    }
}
