//! A fake of PostHog's events API: `GET /api/projects/{id}/events/?event=&after=&before=&limit=`,
//! newest first, paged with a `next` URL that carries `before=<the page's oldest timestamp>`
//! (as PostHog's does), a personal API key checked as a bearer token (401 with PostHog's error
//! body), a project that must exist (404), a request budget that answers 429 "throttled" with
//! `Retry-After` when spent and refills at its reset, and 502s on chosen requests. Every
//! request is recorded.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    pub uuid: String,
    pub event: String,
    pub distinct_id: String,
    pub timestamp: DateTime<Utc>,
    pub properties: Value,
}

impl Event {
    pub fn json(&self) -> Value {
        json!({
            "id": self.uuid,
            "distinct_id": self.distinct_id,
            "properties": self.properties,
            "event": self.event,
            "timestamp": self.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            "person": null,
            "elements": [],
            "elements_chain": "",
        })
    }
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub query: String,
    pub status: u16,
    pub authorization: Option<String>,
}

impl Hit {
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

pub struct Data {
    pub project: String,
    pub key: String,
    pub events: Vec<Event>,
    /// Requests left before 429, and when the budget refills (to `limit`).
    pub remaining: u64,
    pub limit: u64,
    pub reset: DateTime<Utc>,
    /// Answer the next requests whose path and query contain the text with this status.
    pub fail: Vec<(String, u16)>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakePostHog {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakePostHog {
    pub async fn start(project: &str, key: &str) -> FakePostHog {
        let data = Arc::new(Mutex::new(Data {
            project: project.into(),
            key: key.into(),
            events: Vec::new(),
            remaining: 10_000,
            limit: 10_000,
            reset: Utc::now() + chrono::Duration::hours(1),
            fail: Vec::new(),
            hits: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePostHog { url, data }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }

    /// `n` events named `event`, one a minute up to a minute ago, by `n / 3` people
    /// (`user-<k>`, every third one identified by email at `<domain>`).
    pub fn generated(event: &str, n: usize, domain: &str) -> Vec<Event> {
        let now = Utc::now();
        (0..n)
            .map(|i| {
                let person = i % (n / 3).max(1);
                let mut props = json!({"$current_url": format!("https://app.example/p/{i}"), "$browser": "Firefox", "step": i});
                if person.is_multiple_of(3) {
                    props["$set"] = json!({"email": format!("user{person}@{domain}")});
                }
                Event {
                    uuid: format!("0190{i:08x}-0000-7000-8000-{person:012x}"),
                    event: event.into(),
                    distinct_id: format!("user-{person}"),
                    timestamp: now - chrono::Duration::minutes((n - i) as i64),
                    properties: props,
                }
            })
            .collect()
    }
}

fn error(status: StatusCode, kind: &str, code: &str, detail: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"type": kind, "code": code, "detail": detail, "attr": null}),
    )
}

fn time_param(q: &[(String, String)], name: &str) -> Option<DateTime<Utc>> {
    q.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| DateTime::parse_from_rfc3339(v).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn route(d: &Data, base: &str, path: &str, query: &str) -> (StatusCode, Value) {
    let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let Some(rest) = path.strip_prefix("/api/projects/") else {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "not_found",
            "Not found.",
        );
    };
    let Some(project) = rest
        .strip_suffix("/events/")
        .or_else(|| rest.strip_suffix("/events"))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "not_found",
            "Not found.",
        );
    };
    if project != d.project {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "not_found",
            "Project not found.",
        );
    }
    let event = q.iter().find(|(k, _)| k == "event").map(|(_, v)| v.clone());
    let after = time_param(&q, "after");
    let before = time_param(&q, "before");
    let limit: usize = q
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(100)
        .min(1000);
    let mut matching: Vec<&Event> = d
        .events
        .iter()
        .filter(|e| event.as_deref().is_none_or(|n| e.event == n))
        .filter(|e| after.is_none_or(|a| e.timestamp > a))
        .filter(|e| before.is_none_or(|b| e.timestamp < b))
        .collect();
    matching.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    let page: Vec<Value> = matching.iter().take(limit).map(|e| e.json()).collect();
    let next = (matching.len() > limit).then(|| {
        let oldest = matching[limit - 1].timestamp;
        let mut u = url::Url::parse(&format!("{base}{path}")).unwrap();
        {
            let mut qp = u.query_pairs_mut();
            for (k, v) in q.iter().filter(|(k, _)| k != "before") {
                qp.append_pair(k, v);
            }
            qp.append_pair(
                "before",
                &oldest.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            );
        }
        u.to_string()
    });
    (StatusCode::OK, json!({"next": next, "results": page}))
}

async fn handle(State(data): State<Arc<Mutex<Data>>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut d = data.lock().unwrap();
    let now = Utc::now();
    if now >= d.reset {
        d.remaining = d.limit;
        d.reset = now + chrono::Duration::hours(1);
    }
    let target = format!("{path}?{query}");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let (status, body) = if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t)) {
        let (_, code) = d.fail.remove(i);
        (
            StatusCode::from_u16(code).unwrap(),
            json!({"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": null}),
        )
    } else if authorization.as_deref() != Some(&format!("Bearer {}", d.key)) {
        error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "authentication_failed",
            "Incorrect authentication credentials.",
        )
    } else if d.remaining == 0 {
        let secs = (d.reset - now).num_milliseconds().max(0) as f64 / 1000.0;
        let secs = secs.ceil() as i64;
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&secs.to_string()).unwrap(),
        );
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled_error",
            "throttled",
            &format!("Request was throttled. Expected available in {secs} seconds."),
        )
    } else {
        d.remaining -= 1;
        route(&d, &format!("http://{host}"), &path, &query)
    };
    d.hits.push(Hit {
        path,
        query,
        status: status.as_u16(),
        authorization,
    });
    drop(d);
    (status, headers, serde_json::to_vec(&body).unwrap()).into_response()
}
