//! Fakes of the npm downloads API (`/downloads/range/{start}:{end}/{package}`), the npm registry
//! (`/{package}`, scoped names as `@scope%2fname`), pypistats (`/packages/{name}/overall`, with
//! and without mirrors) and PyPI's JSON API (`/pypi/{name}/json`). Registry documents carry an
//! ETag and answer `If-None-Match` with 304. Every request is recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::etag_of;

#[derive(Debug, Clone, Default)]
pub struct Package {
    pub downloads: BTreeMap<NaiveDate, i64>,
    pub version: String,
    pub maintainers: Vec<String>,
}

#[derive(Default)]
pub struct Data {
    /// npm packages by name.
    pub npm: HashMap<String, Package>,
    /// PyPI packages by normalised name.
    pub pypi: HashMap<String, Package>,
    /// (path, conditional, status)
    pub hits: Vec<(String, bool, u16)>,
}

#[derive(Clone)]
pub struct FakePackages {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakePackages {
    pub async fn start() -> FakePackages {
        let data = Arc::new(Mutex::new(Data::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePackages { url, data }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<(String, bool, u16)> {
        self.data.lock().unwrap().hits.clone()
    }
}

fn not_found(msg: &str) -> (StatusCode, Value) {
    (StatusCode::NOT_FOUND, json!({"error": msg}))
}

fn route(d: &Data, path: &str) -> (StatusCode, Value) {
    let decoded = url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if let Some(rest) = decoded.strip_prefix("/npm-downloads/downloads/range/") {
        let Some((period, name)) = rest.split_once('/') else {
            return not_found("bad request");
        };
        let Some((start, end)) = period.split_once(':') else {
            return not_found("bad period");
        };
        let (Ok(start), Ok(end)) = (
            NaiveDate::parse_from_str(start, "%Y-%m-%d"),
            NaiveDate::parse_from_str(end, "%Y-%m-%d"),
        ) else {
            return (StatusCode::BAD_REQUEST, json!({"error": "invalid date"}));
        };
        let Some(p) = d.npm.get(name) else {
            return not_found(&format!("package {name} not found"));
        };
        let days: Vec<Value> = p
            .downloads
            .range(start..=end)
            .map(|(day, n)| json!({"downloads": n, "day": day.format("%Y-%m-%d").to_string()}))
            .collect();
        return (
            StatusCode::OK,
            json!({"start": start.to_string(), "end": end.to_string(), "package": name, "downloads": days}),
        );
    }
    if let Some(name) = decoded.strip_prefix("/npm-registry/") {
        let Some(p) = d.npm.get(name) else {
            return not_found("Not found");
        };
        return (
            StatusCode::OK,
            json!({
                "_id": name, "name": name,
                "dist-tags": {"latest": p.version},
                "maintainers": p.maintainers.iter().map(|m| json!({"name": m, "email": format!("{m}@example.com")})).collect::<Vec<_>>(),
                "versions": {p.version.clone(): {"name": name, "version": p.version}},
            }),
        );
    }
    if let Some(rest) = decoded.strip_prefix("/pypistats/packages/") {
        let Some(name) = rest.strip_suffix("/overall") else {
            return not_found("Not found");
        };
        let Some(p) = d.pypi.get(name) else {
            return not_found("Not found");
        };
        let mut data = Vec::new();
        for (day, n) in &p.downloads {
            let date = day.format("%Y-%m-%d").to_string();
            data.push(json!({"category": "with_mirrors", "date": date, "downloads": n * 2}));
            data.push(json!({"category": "without_mirrors", "date": date, "downloads": n}));
        }
        return (
            StatusCode::OK,
            json!({"data": data, "package": name, "type": "overall_downloads"}),
        );
    }
    if let Some(rest) = decoded.strip_prefix("/pypi/pypi/") {
        let Some(name) = rest.strip_suffix("/json") else {
            return not_found("Not found");
        };
        let Some(p) = d.pypi.get(name) else {
            return (StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
        };
        return (
            StatusCode::OK,
            json!({"info": {"name": name, "version": p.version,
                            "author": p.maintainers.first(), "maintainer": p.maintainers.get(1)},
                   "releases": {p.version.clone(): []}}),
        );
    }
    not_found("Not found")
}

async fn handle(State(data): State<Arc<Mutex<Data>>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut d = data.lock().unwrap();
    let (status, body) = route(&d, &path);
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut status = status;
    if status == StatusCode::OK {
        let etag = etag_of(&bytes);
        headers.insert("etag", HeaderValue::from_str(&etag).unwrap());
        if inm.as_deref() == Some(etag.as_str()) {
            status = StatusCode::NOT_MODIFIED;
        }
    }
    d.hits.push((path, inm.is_some(), status.as_u16()));
    drop(d);
    if status == StatusCode::NOT_MODIFIED {
        return (status, headers).into_response();
    }
    (status, headers, bytes).into_response()
}
