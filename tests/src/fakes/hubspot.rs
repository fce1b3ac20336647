//! A fake HubSpot: OAuth (consent page that consents at once, `/oauth/v1/token` for the code and
//! refresh grants, `BAD_REFRESH_TOKEN` once revoked), the CRM v3 search endpoints (filters GTE /
//! IN / EQ, sorts, `after` paging, `limit`), batch create and update (207 multi-status with
//! per-record errors; a property that does not exist refuses the whole batch like HubSpot's
//! `VALIDATION_ERROR`), property groups and properties, the v4 deal → company associations batch
//! read, bearer tokens (401 `EXPIRED_AUTHENTICATION` for any other), and rate limits: a number
//! of 429 `TEN_SECONDLY_ROLLING` answers with `X-HubSpot-RateLimit-*` headers, or the daily
//! allowance spent (429 `DAILY`). Every request is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use super::support::Hit;

/// One CRM record.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub props: Map<String, Value>,
    pub modified: DateTime<Utc>,
}

pub struct Data {
    /// Records by object path (`companies`, `contacts`, `deals`).
    pub objects: HashMap<String, Vec<Record>>,
    /// Deal id → company id.
    pub deal_companies: HashMap<String, String>,
    /// Property names and group names by object path.
    pub properties: HashMap<String, Vec<String>>,
    pub groups: HashMap<String, Vec<String>>,
    pub access_token: String,
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token was revoked (the app uninstalled).
    pub revoked: bool,
    /// Codes the consent page issued, with their PKCE challenge.
    pub codes: Vec<(String, String)>,
    pub per_page: usize,
    /// The next this many CRM requests answer 429 (rolling ten-second window of this length).
    pub throttle_next: u32,
    pub throttle_window_ms: u64,
    /// The daily allowance is spent.
    pub daily_spent: bool,
    /// Records whose name or email is here are refused by batch create/update.
    pub refuse: Vec<String>,
    pub next_id: u64,
    pub issued: u32,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeHubSpot {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

const STANDARD: &[(&str, &[&str])] = &[
    (
        "companies",
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
    ),
    (
        "contacts",
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
    ),
    (
        "deals",
        &[
            "dealname",
            "amount",
            "dealstage",
            "closedate",
            "hubspot_owner_id",
            "hs_lastmodifieddate",
        ],
    ),
];

fn modified_prop(object: &str) -> &'static str {
    if object == "contacts" {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    }
}

impl FakeHubSpot {
    pub async fn start() -> FakeHubSpot {
        let data = Arc::new(Mutex::new(Data {
            objects: HashMap::new(),
            deal_companies: HashMap::new(),
            properties: STANDARD
                .iter()
                .map(|(o, p)| ((*o).to_owned(), p.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            groups: STANDARD
                .iter()
                .map(|(o, _)| ((*o).to_owned(), vec!["companyinformation".to_owned()]))
                .collect(),
            access_token: "hs-token-1".into(),
            refresh_token: "hs-refresh-1".into(),
            client_id: "hs-client".into(),
            client_secret: "hs-secret".into(),
            revoked: false,
            codes: Vec::new(),
            per_page: 100,
            throttle_next: 0,
            throttle_window_ms: 200,
            daily_spent: false,
            refuse: Vec::new(),
            next_id: 1000,
            issued: 1,
            hits: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeHubSpot { url, data }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }

    /// Requests to paths ending with `suffix` (and `POST`s only when `post`).
    pub fn calls(&self, suffix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path.ends_with(suffix))
            .collect()
    }

    /// Adds a record as a HubSpot user would; returns its id.
    pub fn add(&self, object: &str, props: Value) -> String {
        self.with(|d| {
            d.next_id += 1;
            let id = d.next_id.to_string();
            let rec = Record {
                id: id.clone(),
                props: props.as_object().cloned().unwrap_or_default(),
                modified: Utc::now(),
            };
            d.objects.entry(object.to_owned()).or_default().push(rec);
            id
        })
    }

    /// Changes a record's property as a HubSpot user would (its modification time moves).
    pub fn edit(&self, object: &str, id: &str, prop: &str, value: Value) {
        self.edit_at(object, id, prop, value, Utc::now());
    }

    pub fn edit_at(&self, object: &str, id: &str, prop: &str, value: Value, at: DateTime<Utc>) {
        self.with(|d| {
            let r = d
                .objects
                .get_mut(object)
                .and_then(|v| v.iter_mut().find(|r| r.id == id))
                .expect("no such record");
            r.props.insert(prop.to_owned(), value);
            r.modified = at;
        })
    }

    pub fn records(&self, object: &str) -> Vec<Record> {
        self.with(|d| d.objects.get(object).cloned().unwrap_or_default())
    }

    pub fn find(&self, object: &str, prop: &str, value: &str) -> Option<Record> {
        self.records(object).into_iter().find(|r| {
            r.props
                .get(prop)
                .and_then(|v| v.as_str())
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
    }

    pub fn associate(&self, deal: &str, company: &str) {
        self.with(|d| d.deal_companies.insert(deal.to_owned(), company.to_owned()));
    }
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "status": "error", "message": message, "category": category,
            "correlationId": "4d8d7b4e-0000-0000-0000-000000000000",
        })),
    )
        .into_response()
}

fn view(object: &str, r: &Record, wanted: Option<&Vec<Value>>) -> Value {
    let mut props = Map::new();
    props.insert("hs_object_id".into(), json!(r.id));
    props.insert(
        modified_prop(object).into(),
        json!(
            r.modified
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
    );
    for (k, v) in &r.props {
        let keep = match wanted {
            Some(w) => w.iter().any(|p| p.as_str() == Some(k)),
            None => true,
        };
        if keep {
            props.insert(k.clone(), v.clone());
        }
    }
    json!({
        "id": r.id,
        "properties": props,
        "createdAt": r.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "updatedAt": r.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "archived": false,
    })
}

fn matches(object: &str, r: &Record, f: &Value) -> bool {
    let prop = f["propertyName"].as_str().unwrap_or_default();
    let value_of = |r: &Record| -> Option<String> {
        if prop == modified_prop(object) {
            return Some(r.modified.timestamp_millis().to_string());
        }
        r.props.get(prop).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let v = value_of(r);
    match f["operator"].as_str().unwrap_or_default() {
        "GTE" | "GT" => {
            let (Some(v), Some(bound)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                f["value"].as_str().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if f["operator"] == "GT" {
                v > bound
            } else {
                v >= bound
            }
        }
        "EQ" => v.as_deref() == f["value"].as_str(),
        // HubSpot's IN compares string values in lower case.
        "IN" => v.is_some_and(|v| {
            f["values"]
                .as_array()
                .is_some_and(|vals| vals.iter().any(|x| x.as_str() == Some(&v.to_lowercase())))
        }),
        _ => false,
    }
}

async fn handle(
    State(data): State<Arc<Mutex<Data>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut d = data.lock().unwrap();
    let resp = route(
        &mut d,
        &method,
        &path,
        &query,
        &json_body,
        &form,
        authorization.as_deref(),
    );
    d.hits.push(Hit {
        method: method.to_string(),
        path,
        query,
        body: if json_body.is_null() {
            json!(form)
        } else {
            json_body
        },
        status: resp.status().as_u16(),
        authorization,
    });
    resp
}

fn route(
    d: &mut Data,
    method: &Method,
    path: &str,
    query: &str,
    body: &Value,
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Response {
    // The consent page: the user consents at once; back to the app with a code.
    if path == "/oauth/authorize" {
        let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if q.get("client_id") != Some(&d.client_id) {
            return (StatusCode::BAD_REQUEST, "unknown client").into_response();
        }
        let code = format!("code-{}", d.codes.len() + 1);
        d.codes.push((
            code.clone(),
            q.get("code_challenge").cloned().unwrap_or_default(),
        ));
        let to = format!(
            "{}?code={code}&state={}",
            q.get("redirect_uri").cloned().unwrap_or_default(),
            url::form_urlencoded::byte_serialize(
                q.get("state").cloned().unwrap_or_default().as_bytes()
            )
            .collect::<String>()
        );
        return (StatusCode::FOUND, [("location", to)]).into_response();
    }
    if path == "/oauth/v1/token" && method == Method::POST {
        if form.get("client_id") != Some(&d.client_id)
            || form.get("client_secret") != Some(&d.client_secret)
        {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({"status": "BAD_CLIENT_ID", "message": "missing or invalid client_id"}),
                ),
            )
                .into_response();
        }
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = form.get("code").cloned().unwrap_or_default();
                let Some(i) = d.codes.iter().position(|(c, _)| *c == code) else {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"status": "BAD_AUTH_CODE", "message": "missing or unknown auth code"})),
                    )
                        .into_response();
                };
                let (_, challenge) = d.codes.remove(i);
                use base64::Engine as _;
                use sha2::Digest as _;
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"status": "BAD_AUTH_CODE", "message": "code_verifier does not match"})),
                    )
                        .into_response();
                }
            }
            Some("refresh_token") => {
                if d.revoked || form.get("refresh_token") != Some(&d.refresh_token) {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"})),
                    )
                        .into_response();
                }
            }
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(
                        json!({"status": "BAD_GRANT_TYPE", "message": "unknown grant_type"}),
                    ),
                )
                    .into_response();
            }
        }
        d.issued += 1;
        d.access_token = format!("hs-token-{}", d.issued);
        return axum::Json(json!({
            "token_type": "bearer",
            "access_token": d.access_token,
            "refresh_token": d.refresh_token,
            "expires_in": 1800,
        }))
        .into_response();
    }
    if authorization != Some(format!("Bearer {}", d.access_token).as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "EXPIRED_AUTHENTICATION",
            "The OAuth token used to make this call expired 2 minute(s) ago.",
        );
    }
    if d.daily_spent {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-hubspot-ratelimit-daily-remaining", "0".to_owned())],
            axum::Json(json!({"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT", "policyName": "DAILY"})),
        )
            .into_response();
    }
    if d.throttle_next > 0 {
        d.throttle_next -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("x-hubspot-ratelimit-remaining", "0".to_owned()),
                ("x-hubspot-ratelimit-max", "100".to_owned()),
                (
                    "x-hubspot-ratelimit-interval-milliseconds",
                    d.throttle_window_ms.to_string(),
                ),
            ],
            axum::Json(json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"})),
        )
            .into_response();
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["crm", "v3", "properties", object, "groups"]) => axum::Json(json!({
            "results": d.groups.get(*object).cloned().unwrap_or_default().iter()
                .map(|g| json!({"name": g, "label": g, "displayOrder": 0, "archived": false})).collect::<Vec<_>>()
        }))
        .into_response(),
        ("POST", ["crm", "v3", "properties", object, "groups"]) => {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let groups = d.groups.entry((*object).to_owned()).or_default();
            if groups.contains(&name) {
                return error(StatusCode::CONFLICT, "OBJECT_ALREADY_EXISTS", "group exists");
            }
            groups.push(name.clone());
            (StatusCode::CREATED, axum::Json(json!({"name": name, "label": body["label"]}))).into_response()
        }
        ("GET", ["crm", "v3", "properties", object]) => axum::Json(json!({
            "results": d.properties.get(*object).cloned().unwrap_or_default().iter()
                .map(|p| json!({"name": p, "label": p, "type": "string"})).collect::<Vec<_>>()
        }))
        .into_response(),
        ("POST", ["crm", "v3", "properties", object, "batch", "create"]) => {
            let groups = d.groups.get(*object).cloned().unwrap_or_default();
            let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
            for p in &inputs {
                if !groups.iter().any(|g| Some(g.as_str()) == p["groupName"].as_str()) {
                    return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "property group does not exist");
                }
            }
            let props = d.properties.entry((*object).to_owned()).or_default();
            for p in &inputs {
                if let Some(n) = p["name"].as_str() && !props.iter().any(|x| x == n) {
                    props.push(n.to_owned());
                }
            }
            (StatusCode::CREATED, axum::Json(json!({"status": "COMPLETE", "results": inputs}))).into_response()
        }
        ("POST", ["crm", "v3", "objects", object, "search"]) => {
            let object = (*object).to_owned();
            let mut found: Vec<&Record> = d
                .objects
                .get(&object)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if let Some(groups) = body["filterGroups"].as_array().filter(|g| !g.is_empty()) {
                found.retain(|r| {
                    groups.iter().any(|g| {
                        g["filters"]
                            .as_array()
                            .is_some_and(|fs| fs.iter().all(|f| matches(&object, r, f)))
                    })
                });
            }
            if body["sorts"][0]["propertyName"].as_str() == Some(modified_prop(&object)) {
                found.sort_by_key(|r| (r.modified, r.id.parse::<u64>().unwrap_or(0)));
            } else {
                found.sort_by_key(|r| r.id.parse::<u64>().unwrap_or(0));
            }
            let limit = body["limit"].as_u64().unwrap_or(10).min(d.per_page as u64) as usize;
            let after: usize = body["after"].as_str().and_then(|a| a.parse().ok()).unwrap_or(0);
            let total = found.len();
            let page: Vec<Value> = found
                .iter()
                .skip(after)
                .take(limit)
                .map(|r| view(&object, r, body["properties"].as_array()))
                .collect();
            let mut answer = json!({"total": total, "results": page});
            if after + limit < total {
                answer["paging"] = json!({"next": {"after": (after + limit).to_string(), "link": ""}});
            }
            axum::Json(answer).into_response()
        }
        ("POST", ["crm", "v3", "objects", object, "batch", action @ ("create" | "update")]) => {
            let object = (*object).to_owned();
            let known = d.properties.get(&object).cloned().unwrap_or_default();
            let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
            if inputs.len() > 100 {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "at most 100 inputs");
            }
            // An unknown property refuses the whole batch.
            for i in &inputs {
                if let Some(props) = i["properties"].as_object() {
                    for k in props.keys() {
                        if !known.contains(k) {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "VALIDATION_ERROR",
                                &format!("Property values were not valid: Property \"{k}\" does not exist"),
                            );
                        }
                    }
                }
            }
            let mut results = Vec::new();
            let mut errors = Vec::new();
            for i in &inputs {
                let props = i["properties"].as_object().cloned().unwrap_or_default();
                let names: Vec<String> = ["name", "email", "domain"]
                    .iter()
                    .filter_map(|k| props.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
                    .collect();
                if *action == "create" {
                    if names.iter().any(|n| d.refuse.contains(n)) {
                        errors.push(json!({
                            "status": "error", "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid: refused by a validation rule",
                            "context": {"objectWriteTraceId": [i["objectWriteTraceId"]]},
                        }));
                        continue;
                    }
                    d.next_id += 1;
                    let rec = Record {
                        id: d.next_id.to_string(),
                        props,
                        modified: Utc::now(),
                    };
                    results.push(view(&object, &rec, None));
                    d.objects.entry(object.clone()).or_default().push(rec);
                } else {
                    let id = i["id"].as_str().unwrap_or_default().to_owned();
                    let refuse = d.refuse.clone();
                    let Some(rec) = d
                        .objects
                        .get_mut(&object)
                        .and_then(|v| v.iter_mut().find(|r| r.id == id))
                    else {
                        errors.push(json!({
                            "status": "error", "category": "OBJECT_NOT_FOUND",
                            "message": "Could not get some objects, they may be deleted or not exist.",
                            "context": {"ids": [id]},
                        }));
                        continue;
                    };
                    let current: Vec<String> = ["name", "email", "domain"]
                        .iter()
                        .filter_map(|k| rec.props.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
                        .collect();
                    if current.iter().any(|n| refuse.contains(n)) {
                        errors.push(json!({
                            "status": "error", "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid: refused by a validation rule",
                            "context": {"ids": [id]},
                        }));
                        continue;
                    }
                    for (k, v) in props {
                        rec.props.insert(k, v);
                    }
                    rec.modified = Utc::now();
                    let rec = rec.clone();
                    results.push(view(&object, &rec, None));
                }
            }
            // HubSpot promises no order: the fake answers in reverse.
            results.reverse();
            let status = if errors.is_empty() {
                if *action == "create" { StatusCode::CREATED } else { StatusCode::OK }
            } else {
                StatusCode::MULTI_STATUS
            };
            let mut answer = json!({"status": "COMPLETE", "results": results});
            if !errors.is_empty() {
                answer["numErrors"] = json!(errors.len());
                answer["errors"] = json!(errors);
            }
            (status, axum::Json(answer)).into_response()
        }
        ("POST", ["crm", "v4", "associations", "deals", "companies", "batch", "read"]) => {
            let results: Vec<Value> = body["inputs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|i| {
                    let id = i["id"].as_str()?;
                    let company = d.deal_companies.get(id)?;
                    Some(json!({
                        "from": {"id": id},
                        "to": [{"toObjectId": company.parse::<u64>().unwrap_or(0),
                                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": null}]}],
                    }))
                })
                .collect();
            axum::Json(json!({"status": "COMPLETE", "results": results})).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found"),
    }
}
