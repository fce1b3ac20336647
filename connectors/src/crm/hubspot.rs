//! HubSpot's CRM API v3 (`HUBSPOT_API_URL`, `https://api.hubapi.com`): companies, contacts and
//! deals through the search endpoints (`after` paging, modified-since filters), batch create and
//! update of 100, properties in a `devsignal` group; deal → company associations through the v4
//! associations batch read. Tokens refresh at `/oauth/v1/token`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::session::Refresh;
use super::{
    Crm, Object, Outbound, Pulled, Refusal, RemoteAccount, RemoteContact, RemoteDeal, Session,
    parse_time, text,
};
use crate::http::Request;
use crate::run::Stop;

pub struct HubSpotCrm;

/// The property group DevSignal's properties live in.
const GROUP: &str = "devsignal";

/// DevSignal's properties: generic name, HubSpot name, label, type, field type; for companies
/// (all) and contacts (those marked).
const PROPERTIES: &[(&str, &str, &str, &str, &str, bool)] = &[
    (
        "score",
        "devsignal_score",
        "DevSignal score",
        "number",
        "number",
        true,
    ),
    (
        "tier",
        "devsignal_tier",
        "DevSignal tier",
        "string",
        "text",
        true,
    ),
    (
        "trend",
        "devsignal_trend",
        "DevSignal trend",
        "string",
        "text",
        false,
    ),
    (
        "signalCount",
        "devsignal_signal_count",
        "DevSignal signal count",
        "number",
        "number",
        true,
    ),
    (
        "topSignalType",
        "devsignal_top_signal_type",
        "DevSignal top signal type",
        "string",
        "text",
        false,
    ),
    (
        "lastSignalAt",
        "devsignal_last_signal_at",
        "DevSignal last signal",
        "datetime",
        "date",
        true,
    ),
];

fn path(object: Object) -> &'static str {
    match object {
        Object::Account => "companies",
        Object::Contact => "contacts",
        Object::Deal => "deals",
    }
}

/// The property holding each object's natural key.
fn key_property(object: Object) -> &'static str {
    match object {
        Object::Contact => "email",
        _ => "domain",
    }
}

/// The modification-time property (contacts name it differently).
fn modified_property(object: Object) -> &'static str {
    match object {
        Object::Contact => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

fn base(s: &Session<'_>) -> String {
    s.cx.rt
        .settings()
        .hubspot_api_url
        .trim_end_matches('/')
        .to_owned()
}

#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    results: Vec<Record>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<Next>,
}

#[derive(Deserialize)]
struct Next {
    after: String,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(rename = "updatedAt")]
    updated_at: Option<String>,
}

impl Record {
    fn get(&self, name: &str) -> Option<String> {
        text(self.properties.get(name))
    }
    fn modified(&self, object: Object) -> Option<DateTime<Utc>> {
        self.get(modified_property(object))
            .as_deref()
            .and_then(parse_time)
            .or_else(|| self.updated_at.as_deref().and_then(parse_time))
    }
}

/// A search: modified at or after `since`, oldest first, 100 a page.
async fn search(
    s: &Session<'_>,
    object: Object,
    properties: &[&str],
    since: Option<DateTime<Utc>>,
    page: Option<&str>,
) -> Result<(Vec<Record>, Option<String>), Stop> {
    let modified = modified_property(object);
    let mut body = json!({
        "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
        "properties": properties,
        "limit": 100,
    });
    if let Some(since) = since {
        body["filterGroups"] = json!([{"filters": [{
            "propertyName": modified,
            "operator": "GTE",
            "value": since.timestamp_millis().to_string(),
        }]}]);
    }
    if let Some(after) = page {
        body["after"] = json!(after);
    }
    let url = format!("{}/crm/v3/objects/{}/search", base(s), path(object));
    let page: SearchPage = s
        .json(
            Request::post_json(url, body),
            &format!("the {} search", path(object)),
        )
        .await?;
    Ok((
        page.results,
        page.paging.and_then(|p| p.next).map(|n| n.after),
    ))
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct NamedList {
    #[serde(default)]
    results: Vec<Named>,
}

/// The outcome of a batch call: results, and errors naming the records they concern.
#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    results: Vec<Record>,
    #[serde(default)]
    errors: Vec<BatchError>,
}

#[derive(Deserialize)]
struct BatchError {
    #[serde(default)]
    category: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    context: Map<String, Value>,
}

impl BatchError {
    /// The record ids (or keys) the error names in its context.
    fn names(&self) -> Vec<String> {
        self.context
            .values()
            .filter_map(|v| v.as_array())
            .flatten()
            .filter_map(|v| v.as_str())
            .map(str::to_lowercase)
            .collect()
    }
}

fn properties_of(object: Object, row: &Outbound, creating: bool) -> Value {
    let mut props = Map::new();
    for (generic, value) in &row.values {
        if let Some((_, name, ..)) = PROPERTIES
            .iter()
            .find(|p| p.0 == *generic && (object == Object::Account || p.5))
        {
            // HubSpot clears a property given an empty string.
            let v = match value {
                Value::Null => json!(""),
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            };
            props.insert((*name).to_owned(), v);
        }
    }
    if creating {
        if let Some(k) = &row.key {
            props.insert(key_property(object).to_owned(), json!(k));
        }
        match object {
            Object::Account => {
                if let Some(n) = &row.name {
                    props.insert("name".into(), json!(n));
                }
            }
            _ => {
                if let Some(n) = &row.name {
                    props.insert("firstname".into(), json!(n));
                }
                if let Some(n) = &row.last_name {
                    props.insert("lastname".into(), json!(n));
                }
            }
        }
    }
    Value::Object(props)
}

#[async_trait::async_trait]
impl Crm for HubSpotCrm {
    fn system(&self) -> &'static str {
        "HUBSPOT"
    }

    fn label(&self) -> &'static str {
        "HubSpot"
    }

    fn default_stage_map(&self) -> &'static [(&'static str, &'static str)] {
        // The stages of HubSpot's default sales pipeline (shared with CSV imports of HubSpot
        // exports).
        domain::crm::deals::HUBSPOT_STAGES
    }

    fn batch_size(&self) -> usize {
        100
    }

    fn token_refresh(&self, settings: &crate::Settings) -> Option<Refresh> {
        Some(Refresh {
            token_url: format!(
                "{}/oauth/v1/token",
                settings.hubspot_api_url.trim_end_matches('/')
            ),
            app: settings.hubspot_app.clone()?,
        })
    }

    async fn ensure_fields(&self, s: &Session<'_>) -> Result<(), Stop> {
        for object in [Object::Account, Object::Contact] {
            let root = format!("{}/crm/v3/properties/{}", base(s), path(object));
            let groups: NamedList = s
                .json(
                    Request::get(format!("{root}/groups")),
                    "the property groups",
                )
                .await?;
            if !groups.results.iter().any(|g| g.name == GROUP) {
                s.json::<Value>(
                    Request::post_json(
                        format!("{root}/groups"),
                        json!({"name": GROUP, "label": "DevSignal", "displayOrder": -1}),
                    ),
                    "creating the devsignal property group",
                )
                .await?;
            }
            let existing: NamedList = s.json(Request::get(root.clone()), "the properties").await?;
            let missing: Vec<Value> = PROPERTIES
                .iter()
                .filter(|p| object == Object::Account || p.5)
                .filter(|p| !existing.results.iter().any(|e| e.name == p.1))
                .map(|(_, name, label, kind, field, _)| {
                    json!({
                        "name": name, "label": label, "type": kind, "fieldType": field,
                        "groupName": GROUP,
                        "description": "Set by DevSignal; edits here are overwritten.",
                    })
                })
                .collect();
            if !missing.is_empty() {
                s.json::<Value>(
                    Request::post_json(format!("{root}/batch/create"), json!({"inputs": missing})),
                    "creating DevSignal's properties",
                )
                .await?;
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
        let (records, next) = search(
            s,
            Object::Account,
            &[
                "name",
                "domain",
                "industry",
                "city",
                "country",
                "description",
                "hubspot_owner_id",
                "hs_lastmodifieddate",
            ],
            since,
            page,
        )
        .await?;
        let items = records
            .into_iter()
            .map(|r| RemoteAccount {
                modified: r.modified(Object::Account),
                name: r.get("name"),
                domain: r.get("domain"),
                industry: r.get("industry"),
                city: r.get("city"),
                country: r.get("country"),
                description: r.get("description"),
                owner: r.get("hubspot_owner_id"),
                id: r.id,
            })
            .collect();
        Ok(Pulled { items, next })
    }

    async fn pull_contacts(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteContact>, Stop> {
        let (records, next) = search(
            s,
            Object::Contact,
            &[
                "email",
                "firstname",
                "lastname",
                "jobtitle",
                "phone",
                "city",
                "country",
                "associatedcompanyid",
                "lastmodifieddate",
            ],
            since,
            page,
        )
        .await?;
        let items = records
            .into_iter()
            .map(|r| RemoteContact {
                modified: r.modified(Object::Contact),
                email: r.get("email"),
                first_name: r.get("firstname"),
                last_name: r.get("lastname"),
                title: r.get("jobtitle"),
                phone: r.get("phone"),
                city: r.get("city"),
                country: r.get("country"),
                account: r.get("associatedcompanyid").filter(|c| c != "0"),
                id: r.id,
            })
            .collect();
        Ok(Pulled { items, next })
    }

    async fn pull_deals(
        &self,
        s: &Session<'_>,
        since: Option<DateTime<Utc>>,
        page: Option<&str>,
    ) -> Result<Pulled<RemoteDeal>, Stop> {
        let (records, next) = search(
            s,
            Object::Deal,
            &[
                "dealname",
                "amount",
                "dealstage",
                "closedate",
                "hubspot_owner_id",
                "hs_lastmodifieddate",
            ],
            since,
            page,
        )
        .await?;
        // The search answers no associations: the deals' companies come in one batch read.
        let mut companies = std::collections::HashMap::new();
        if !records.is_empty() {
            #[derive(Deserialize)]
            struct Assoc {
                from: From,
                #[serde(default)]
                to: Vec<To>,
            }
            #[derive(Deserialize)]
            struct From {
                id: String,
            }
            #[derive(Deserialize)]
            struct To {
                #[serde(rename = "toObjectId")]
                to_object_id: Value,
            }
            #[derive(Deserialize)]
            struct Assocs {
                #[serde(default)]
                results: Vec<Assoc>,
            }
            let inputs: Vec<Value> = records.iter().map(|r| json!({"id": r.id})).collect();
            let url = format!("{}/crm/v4/associations/deals/companies/batch/read", base(s));
            let a: Assocs = s
                .json(
                    Request::post_json(url, json!({"inputs": inputs})),
                    "the deals' companies",
                )
                .await?;
            for r in a.results {
                if let Some(to) = r.to.first().and_then(|t| text(Some(&t.to_object_id))) {
                    companies.insert(r.from.id, to);
                }
            }
        }
        let items = records
            .into_iter()
            .map(|r| RemoteDeal {
                modified: r.modified(Object::Deal),
                name: r.get("dealname"),
                amount: r.get("amount").and_then(|a| a.parse().ok()),
                stage: r.get("dealstage"),
                close_date: r.get("closedate").and_then(|d| {
                    parse_time(&d)
                        .map(|t| t.date_naive())
                        .or_else(|| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
                }),
                owner: r.get("hubspot_owner_id"),
                account: companies.get(&r.id).cloned(),
                id: r.id,
            })
            .collect();
        Ok(Pulled { items, next })
    }

    async fn find(
        &self,
        s: &Session<'_>,
        object: Object,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Stop> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let key = key_property(object);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut body = json!({
                "filterGroups": [{"filters": [{
                    "propertyName": key, "operator": "IN", "values": keys,
                }]}],
                "properties": [key],
                "limit": 100,
            });
            if let Some(a) = &after {
                body["after"] = json!(a);
            }
            let url = format!("{}/crm/v3/objects/{}/search", base(s), path(object));
            let page: SearchPage = s
                .json(
                    Request::post_json(url, body),
                    &format!("the {} search", path(object)),
                )
                .await?;
            for r in &page.results {
                if let Some(k) = r.get(key) {
                    out.push((k.to_lowercase(), r.id.clone()));
                }
            }
            match page.paging.and_then(|p| p.next) {
                Some(n) => after = Some(n.after),
                None => return Ok(out),
            }
        }
    }

    async fn create(
        &self,
        s: &Session<'_>,
        object: Object,
        rows: &[Outbound],
    ) -> Result<Vec<Result<String, Refusal>>, Stop> {
        let inputs: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "properties": properties_of(object, r, true),
                    "objectWriteTraceId": r.local_id.to_string(),
                })
            })
            .collect();
        let url = format!("{}/crm/v3/objects/{}/batch/create", base(s), path(object));
        let answer: BatchAnswer = s
            .json(
                Request::post_json(url, json!({"inputs": inputs})),
                "a batch create",
            )
            .await?;
        // Results come in no promised order: matched back by key, else by position among the
        // rows no error names.
        let key = key_property(object);
        let mut results = answer.results;
        Ok(rows
            .iter()
            .map(|row| {
                let trace = row.local_id.to_string();
                if let Some(e) = answer.errors.iter().find(|e| {
                    let names = e.names();
                    names.contains(&trace)
                        || row
                            .key
                            .as_ref()
                            .is_some_and(|k| names.contains(&k.to_lowercase()))
                }) {
                    return Err(Refusal::Refused(format!("{}: {}", e.category, e.message)));
                }
                let at = match &row.key {
                    Some(k) => results
                        .iter()
                        .position(|r| r.get(key).is_some_and(|v| v.eq_ignore_ascii_case(k))),
                    None => results.iter().position(|r| {
                        r.get(key).is_none() && r.get("name").as_deref() == row.name.as_deref()
                    }),
                };
                match at {
                    Some(i) => Ok(results.remove(i).id),
                    None => Err(Refusal::Refused(
                        answer
                            .errors
                            .first()
                            .map(|e| format!("{}: {}", e.category, e.message))
                            .unwrap_or_else(|| "HubSpot did not create the record".into()),
                    )),
                }
            })
            .collect())
    }

    async fn update(
        &self,
        s: &Session<'_>,
        object: Object,
        rows: &[(String, Outbound)],
    ) -> Result<Vec<Result<(), Refusal>>, Stop> {
        let inputs: Vec<Value> = rows
            .iter()
            .map(|(id, r)| json!({"id": id, "properties": properties_of(object, r, false)}))
            .collect();
        let url = format!("{}/crm/v3/objects/{}/batch/update", base(s), path(object));
        let answer: BatchAnswer = s
            .json(
                Request::post_json(url, json!({"inputs": inputs})),
                "a batch update",
            )
            .await?;
        Ok(rows
            .iter()
            .map(|(id, _)| {
                if answer.results.iter().any(|r| &r.id == id) {
                    return Ok(());
                }
                match answer
                    .errors
                    .iter()
                    .find(|e| e.names().contains(&id.to_lowercase()))
                {
                    Some(e) if e.category == "OBJECT_NOT_FOUND" => Err(Refusal::Gone),
                    Some(e) => Err(Refusal::Refused(format!("{}: {}", e.category, e.message))),
                    None => Err(Refusal::Refused(
                        "HubSpot did not confirm the update".into(),
                    )),
                }
            })
            .collect())
    }
}
