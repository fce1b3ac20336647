//! Fakes of two support desks' APIs.
//!
//! Intercom: `POST /conversations/search` with Intercom's query body (`updated_at > value`,
//! sort by `updated_at` ascending, `pagination.per_page` / `starting_after`), answering a
//! `conversation.list` with `pages.next.starting_after`; a bearer access token (401
//! `error.list` "Access Token Invalid"); `X-RateLimit-Limit/Remaining/Reset` on every answer
//! and 429 `rate_limit_exceeded` when the budget is spent.
//!
//! Zendesk: `GET /api/v2/incremental/tickets/cursor.json?start_time=|cursor=&include=users`,
//! tickets in the order they changed, `per_page` at a time, with `after_url`, `after_cursor` and
//! `end_of_stream`, requesters side-loaded as `users`; HTTP Basic `<email>/token:<apiToken>`
//! (401 "Couldn't authenticate you"); `X-Rate-Limit-Remaining`, and 429 with `Retry-After` when
//! the budget is spent.
//!
//! Both answer 5xx on chosen requests and record every request.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
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

/// A support desk's item: an Intercom conversation or a Zendesk ticket, with its requester.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    /// open, closed (Intercom); new, open, pending, solved, closed (Zendesk).
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub requester_id: i64,
    pub requester_email: String,
    pub rating: Option<i64>,
}

pub struct Data {
    pub items: Vec<Item>,
    /// Intercom: the access token; Zendesk: `<email>/token:<apiToken>`.
    pub secret: String,
    pub per_page: usize,
    pub remaining: u64,
    pub limit: u64,
    pub reset: DateTime<Utc>,
    pub fail: Vec<(String, u16)>,
    pub hits: Vec<Hit>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Desk {
    Intercom,
    Zendesk,
}

#[derive(Clone)]
pub struct FakeDesk {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakeDesk {
    /// A fake Intercom accepting `token`.
    pub async fn intercom(token: &str) -> FakeDesk {
        Self::start(Desk::Intercom, token.into()).await
    }

    /// A fake Zendesk accepting `email` with `api_token`.
    pub async fn zendesk(email: &str, api_token: &str) -> FakeDesk {
        Self::start(Desk::Zendesk, format!("{email}/token:{api_token}")).await
    }

    async fn start(desk: Desk, secret: String) -> FakeDesk {
        let data = Arc::new(Mutex::new(Data {
            items: Vec::new(),
            secret,
            per_page: 100,
            remaining: 10_000,
            limit: 10_000,
            reset: Utc::now() + chrono::Duration::hours(1),
            fail: Vec::new(),
            hits: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = (desk, data.clone(), url.clone());
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDesk { url, data }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }

    /// `n` items, changed one a minute up to `n` minutes ago, every third one closed and rated,
    /// requested by `n / 2` people at `domain`.
    pub fn generated(n: usize, domain: &str) -> Vec<Item> {
        let now = Utc::now();
        (0..n)
            .map(|i| {
                let person = (i % (n / 2).max(1)) as i64;
                let closed = i % 3 == 2;
                Item {
                    id: 1000 + i as i64,
                    state: if closed { "closed" } else { "open" }.into(),
                    created_at: now - chrono::Duration::minutes((n - i) as i64 + 60),
                    updated_at: now - chrono::Duration::minutes((n - i) as i64),
                    requester_id: 500 + person,
                    requester_email: format!("user{person}@{domain}"),
                    rating: closed.then_some(5),
                }
            })
            .collect()
    }
}

impl Item {
    pub fn intercom(&self) -> Value {
        json!({
            "type": "conversation",
            "id": self.id.to_string(),
            "created_at": self.created_at.timestamp(),
            "updated_at": self.updated_at.timestamp(),
            "state": self.state,
            "open": self.state == "open",
            "source": {"type": "conversation", "id": format!("src{}", self.id), "subject": format!("Question {}", self.id),
                       "author": {"type": "user", "id": format!("u{}", self.requester_id), "name": "A User", "email": self.requester_email}},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": format!("c{}", self.requester_id)}]},
            "conversation_rating": self.rating.map(|r| json!({"rating": r, "created_at": self.updated_at.timestamp()})),
            "statistics": {"last_close_at": (self.state == "closed").then(|| self.updated_at.timestamp())},
        })
    }

    pub fn zendesk(&self) -> Value {
        let status = if self.state == "closed" {
            "solved"
        } else {
            "open"
        };
        json!({
            "id": self.id,
            "url": format!("https://acme.zendesk.com/api/v2/tickets/{}.json", self.id),
            "status": status,
            "subject": format!("Ticket {}", self.id),
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "updated_at": self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "requester_id": self.requester_id,
            "via": {"channel": "email"},
            "satisfaction_rating": self.rating.map(|_| json!({"score": "good"})).unwrap_or(json!({"score": "unoffered"})),
        })
    }
}

fn intercom_error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"type": "error.list", "request_id": "req-1", "errors": [{"code": code, "message": message}]}),
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn sorted(items: &[Item]) -> Vec<Item> {
    let mut v = items.to_vec();
    v.sort_by_key(|i| (i.updated_at, i.id));
    v
}

fn intercom_route(d: &Data, path: &str, body: &Value) -> (StatusCode, Value) {
    if path != "/conversations/search" {
        return intercom_error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found");
    }
    let q = &body["query"];
    if q["field"] != "updated_at" || q["operator"] != ">" {
        return intercom_error(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            "this fake answers updated_at > value",
        );
    }
    let since = q["value"].as_i64().unwrap_or(0);
    let per_page = body["pagination"]["per_page"]
        .as_u64()
        .map(|n| n as usize)
        .unwrap_or(20)
        .min(d.per_page);
    let offset: usize = body["pagination"]["starting_after"]
        .as_str()
        .and_then(unb64)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let matching: Vec<Item> = sorted(&d.items)
        .into_iter()
        .filter(|i| i.updated_at.timestamp() > since)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(per_page)
        .map(Item::intercom)
        .collect();
    let total_pages = matching.len().div_ceil(per_page.max(1));
    let next = (offset + per_page < matching.len()).then(|| {
        json!({"page": offset / per_page + 2, "starting_after": b64(&(offset + per_page).to_string())})
    });
    (
        StatusCode::OK,
        json!({
            "type": "conversation.list",
            "pages": {"type": "pages", "page": offset / per_page.max(1) + 1, "per_page": per_page, "total_pages": total_pages, "next": next},
            "total_count": matching.len(),
            "conversations": page,
        }),
    )
}

fn zendesk_route(d: &Data, base: &str, path: &str, query: &str) -> (StatusCode, Value) {
    if path != "/api/v2/incremental/tickets/cursor.json" {
        return (
            StatusCode::NOT_FOUND,
            json!({"error": "InvalidEndpoint", "description": "Not found"}),
        );
    }
    let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    // A cursor is "<updated_at secs>:<id>" of the last ticket returned.
    let after: (i64, i64) = match (get("cursor"), get("start_time")) {
        (Some(c), _) => match unb64(&c).and_then(|s| {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        }) {
            Some(p) => p,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "InvalidValue", "description": "Invalid cursor"}),
                );
            }
        },
        (None, Some(t)) => match t.parse::<i64>() {
            Ok(t) => (t - 1, i64::MAX),
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "InvalidValue", "description": "start_time is invalid"}),
                );
            }
        },
        (None, None) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": "InvalidValue", "description": "start_time or cursor is required"}),
            );
        }
    };
    let matching: Vec<Item> = sorted(&d.items)
        .into_iter()
        .filter(|i| (i.updated_at.timestamp(), i.id) > after)
        .collect();
    let page: Vec<&Item> = matching.iter().take(d.per_page).collect();
    let end = matching.len() <= d.per_page;
    let cursor = page
        .last()
        .map(|i| b64(&format!("{}:{}", i.updated_at.timestamp(), i.id)))
        .unwrap_or_else(|| b64(&format!("{}:{}", after.0, after.1.min(0))));
    let with_users = get("include").is_some_and(|v| v.split(',').any(|x| x == "users"));
    let mut body = json!({
        "tickets": page.iter().map(|i| i.zendesk()).collect::<Vec<_>>(),
        "after_cursor": cursor,
        "before_cursor": null,
        "after_url": format!("{base}{path}?cursor={cursor}&include=users"),
        "before_url": null,
        "end_of_stream": end,
    });
    if with_users {
        let mut users: Vec<Value> = Vec::new();
        for i in &page {
            if !users.iter().any(|u| u["id"] == i.requester_id) {
                users.push(json!({"id": i.requester_id, "email": i.requester_email, "name": format!("User {}", i.requester_id), "role": "end-user"}));
            }
        }
        body["users"] = json!(users);
    }
    (StatusCode::OK, body)
}

type FakeState = (Desk, Arc<Mutex<Data>>, String);

async fn handle(
    State((desk, data, base)): State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut d = data.lock().unwrap();
    let now = Utc::now();
    if now >= d.reset {
        d.remaining = d.limit;
        d.reset = now + chrono::Duration::hours(1);
    }
    let target = format!("{path}?{query}");
    let mut out = HeaderMap::new();
    out.insert("content-type", HeaderValue::from_static("application/json"));
    let authorized = match desk {
        Desk::Intercom => authorization.as_deref() == Some(&format!("Bearer {}", d.secret)),
        Desk::Zendesk => authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|b| b == d.secret.as_bytes()),
    };
    let (status, answer) = if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t)) {
        let (_, code) = d.fail.remove(i);
        (
            StatusCode::from_u16(code).unwrap(),
            json!({"error": "ServerError", "description": "Something went wrong"}),
        )
    } else if !authorized {
        match desk {
            Desk::Intercom => intercom_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Access Token Invalid",
            ),
            Desk::Zendesk => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "Couldn't authenticate you"}),
            ),
        }
    } else if d.remaining == 0 {
        let secs = ((d.reset - now).num_milliseconds().max(0) as f64 / 1000.0).ceil() as i64;
        match desk {
            Desk::Intercom => {
                out.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
                out.insert(
                    "x-ratelimit-reset",
                    HeaderValue::from_str(&d.reset.timestamp().to_string()).unwrap(),
                );
                intercom_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_exceeded",
                    "Rate Limit Exceeded",
                )
            }
            Desk::Zendesk => {
                out.insert(
                    "retry-after",
                    HeaderValue::from_str(&secs.to_string()).unwrap(),
                );
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"error": "APIRateLimitExceeded", "description": "Rate limit exceeded"}),
                )
            }
        }
    } else {
        d.remaining -= 1;
        let limit = d.limit.to_string();
        let remaining = d.remaining.to_string();
        match desk {
            Desk::Intercom => {
                out.insert("x-ratelimit-limit", HeaderValue::from_str(&limit).unwrap());
                out.insert(
                    "x-ratelimit-remaining",
                    HeaderValue::from_str(&remaining).unwrap(),
                );
                out.insert(
                    "x-ratelimit-reset",
                    HeaderValue::from_str(&d.reset.timestamp().to_string()).unwrap(),
                );
                if method != Method::POST {
                    intercom_error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found")
                } else {
                    intercom_route(&d, &path, &json_body)
                }
            }
            Desk::Zendesk => {
                out.insert("x-rate-limit", HeaderValue::from_str(&limit).unwrap());
                out.insert(
                    "x-rate-limit-remaining",
                    HeaderValue::from_str(&remaining).unwrap(),
                );
                zendesk_route(&d, &base, &path, &query)
            }
        }
    };
    d.hits.push(Hit {
        method: method.to_string(),
        path,
        query,
        body: json_body,
        status: status.as_u16(),
        authorization,
    });
    drop(d);
    (status, out, serde_json::to_vec(&answer).unwrap()).into_response()
}
