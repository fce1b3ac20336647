//! A fake of Reddit's OAuth API for an application-only client: the token endpoint
//! (`POST /api/v1/access_token`, form `grant_type=client_credentials`, HTTP Basic
//! `clientId:clientSecret`, answering `{"access_token", "token_type": "bearer", "expires_in",
//! "scope"}` or 401 `{"message": "Unauthorized", "error": 401}`), and, with
//! `Authorization: bearer <token>` (401 when unknown, revoked or expired), the listings
//! `/search` (`q` of terms joined by `OR`, phrases quoted, matched case-insensitively on title and
//! selftext; `sort=new`), `/r/<sub>/new` and `/r/<sub>/comments`, newest first, as
//! `{"kind": "Listing", "data": {"after", "before", "dist", "children": [{"kind": "t3"|"t1",
//! "data"}]}}`, paged by `limit` (at most 100) and `after` (a fullname). A budget is reported
//! as Reddit does (`X-Ratelimit-Used`, `X-Ratelimit-Remaining` as a float,
//! `X-Ratelimit-Reset` in seconds from now); when spent, requests get 429 until the reset,
//! when it refills. It can be told to fail (any status) or hang on chosen requests. Every
//! request is recorded, the token endpoint's too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use super::github::Hit;

#[derive(Debug, Clone)]
pub struct Post {
    /// Base-36 id (the fullname is `t3_<id>`).
    pub id: String,
    pub subreddit: String,
    pub author: String,
    pub title: String,
    pub selftext: String,
    pub created_utc: f64,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: String,
    pub subreddit: String,
    pub author: String,
    pub body: String,
    /// The post's fullname.
    pub link_id: String,
    pub created_utc: f64,
}

#[derive(Default)]
pub struct Data {
    pub posts: Vec<Post>,
    pub comments: Vec<Comment>,
    /// The application's client id and secret.
    pub client: (String, String),
    /// Lifetime of tokens issued from now on.
    pub expires_in: i64,
    /// Tokens issued, with their expiry.
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub issued: u64,
    /// Requests left in the window, the window's size, and when it refills.
    pub remaining: u64,
    pub limit: u64,
    pub reset: DateTime<Utc>,
    pub fail: Vec<(String, u16)>,
    pub hang: Option<String>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeReddit {
    /// The API root (`REDDIT_API_URL`).
    pub url: String,
    /// The token endpoint (`REDDIT_AUTH_URL`).
    pub auth_url: String,
    pub data: Arc<Mutex<Data>>,
}

pub const TOKEN_PATH: &str = "/api/v1/access_token";

impl FakeReddit {
    /// A fake whose application is `client_id` / `client_secret`.
    pub async fn start(client_id: &str, client_secret: &str) -> FakeReddit {
        let data = Arc::new(Mutex::new(Data {
            client: (client_id.to_owned(), client_secret.to_owned()),
            expires_in: 86_400,
            remaining: 600,
            limit: 600,
            reset: Utc::now() + chrono::Duration::seconds(600),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeReddit {
            auth_url: format!("{url}{TOKEN_PATH}"),
            url,
            data,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }

    pub fn clear_hits(&self) {
        self.data.lock().unwrap().hits.clear();
    }

    /// Requests to the token endpoint.
    pub fn token_hits(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path == TOKEN_PATH)
            .collect()
    }

    /// Requests to the API (not the token endpoint).
    pub fn api_hits(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path != TOKEN_PATH)
            .collect()
    }

    /// Every token issued so far stops working (as when Reddit revokes them).
    pub fn revoke_tokens(&self) {
        self.with(|d| d.tokens.clear());
    }

    /// The settings that point the app at this fake.
    pub fn vars(&self) -> [(&'static str, String); 2] {
        [
            ("REDDIT_API_URL", self.url.clone()),
            ("REDDIT_AUTH_URL", self.auth_url.clone()),
        ]
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"message": message, "error": status.as_u16()}),
    )
}

fn post_json(p: &Post) -> Value {
    json!({"kind": "t3", "data": {
        "id": p.id, "name": format!("t3_{}", p.id), "subreddit": p.subreddit,
        "subreddit_name_prefixed": format!("r/{}", p.subreddit), "author": p.author,
        "title": p.title, "selftext": p.selftext, "created_utc": p.created_utc,
        "score": 3, "num_comments": 1, "is_self": true,
        "permalink": format!("/r/{}/comments/{}/post/", p.subreddit, p.id),
        "url": format!("https://www.reddit.com/r/{}/comments/{}/post/", p.subreddit, p.id),
    }})
}

fn comment_json(c: &Comment, posts: &[Post]) -> Value {
    let title = posts
        .iter()
        .find(|p| format!("t3_{}", p.id) == c.link_id)
        .map(|p| p.title.clone());
    json!({"kind": "t1", "data": {
        "id": c.id, "name": format!("t1_{}", c.id), "subreddit": c.subreddit,
        "author": c.author, "body": c.body, "created_utc": c.created_utc,
        "link_id": c.link_id, "link_title": title, "score": 1,
        "permalink": format!("/r/{}/comments/{}/post/{}/", c.subreddit,
            c.link_id.trim_start_matches("t3_"), c.id),
    }})
}

/// The search terms of `q` (`a OR "b c"`).
fn terms(q: &str) -> Vec<String> {
    q.split(" OR ")
        .map(|t| t.trim().trim_matches('"').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Pages a newest-first list by `after` and `limit`.
fn listing(items: Vec<(String, Value)>, query: &str) -> Value {
    let limit: usize = param(query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let start = match param(query, "after") {
        Some(a) => items
            .iter()
            .position(|(name, _)| *name == a)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<(String, Value)> = items.iter().skip(start).take(limit).cloned().collect();
    let after = (start + page.len() < items.len())
        .then(|| page.last().map(|(n, _)| n.clone()))
        .flatten();
    json!({"kind": "Listing", "data": {
        "after": after, "before": null, "dist": page.len(), "modhash": "",
        "children": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    }})
}

fn route(d: &Data, path: &str, query: &str) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut posts: Vec<&Post> = d.posts.iter().collect();
    posts.sort_by(|a, b| b.created_utc.total_cmp(&a.created_utc));
    let mut comments: Vec<&Comment> = d.comments.iter().collect();
    comments.sort_by(|a, b| b.created_utc.total_cmp(&a.created_utc));
    let known = |sub: &str| {
        d.posts
            .iter()
            .any(|p| p.subreddit.eq_ignore_ascii_case(sub))
            || d.comments
                .iter()
                .any(|c| c.subreddit.eq_ignore_ascii_case(sub))
    };
    match parts.as_slice() {
        ["search"] => {
            let terms = terms(&param(query, "q").unwrap_or_default());
            let items = posts
                .into_iter()
                .filter(|p| {
                    let text = format!("{} {}", p.title, p.selftext).to_lowercase();
                    terms.iter().any(|t| text.contains(t.as_str()))
                })
                .map(|p| (format!("t3_{}", p.id), post_json(p)))
                .collect();
            (StatusCode::OK, listing(items, query))
        }
        ["r", sub, "new"] if known(sub) => {
            let items = posts
                .into_iter()
                .filter(|p| p.subreddit.eq_ignore_ascii_case(sub))
                .map(|p| (format!("t3_{}", p.id), post_json(p)))
                .collect();
            (StatusCode::OK, listing(items, query))
        }
        ["r", sub, "comments"] if known(sub) => {
            let items = comments
                .into_iter()
                .filter(|c| c.subreddit.eq_ignore_ascii_case(sub))
                .map(|c| (format!("t1_{}", c.id), comment_json(c, &d.posts)))
                .collect();
            (StatusCode::OK, listing(items, query))
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn token(d: &mut Data, auth: Option<&str>, body: &str) -> (StatusCode, Value) {
    let basic = auth
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let want = format!("{}:{}", d.client.0, d.client.1);
    if basic.as_deref() != Some(want.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    if param(body, "grant_type").as_deref() != Some("client_credentials") {
        return (StatusCode::OK, json!({"error": "unsupported_grant_type"}));
    }
    d.issued += 1;
    let t = format!("fake-token-{}", d.issued);
    d.tokens.insert(
        t.clone(),
        Utc::now() + chrono::Duration::seconds(d.expires_in),
    );
    (
        StatusCode::OK,
        json!({"access_token": t, "token_type": "bearer", "expires_in": d.expires_in, "scope": "*"}),
    )
}

async fn handle(State(data): State<Arc<Mutex<Data>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let get = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (auth, ua) = (get("authorization"), get("user-agent"));
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let target = format!("{path}?{query}");
    let hang = {
        let mut d = data.lock().unwrap();
        match &d.hang {
            Some(h) if target.contains(h.as_str()) => {
                d.hang = None;
                true
            }
            _ => false,
        }
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut d = data.lock().unwrap();
    let now = Utc::now();
    if now >= d.reset {
        d.remaining = d.limit;
        d.reset = now + chrono::Duration::seconds(600);
    }
    let mut headers = HeaderMap::new();
    let api = path != TOKEN_PATH;
    let (status, json_body) = 'answer: {
        if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t.as_str())) {
            let (_, code) = d.fail.remove(i);
            break 'answer error(StatusCode::from_u16(code).unwrap(), "Server Error");
        }
        if !api {
            if parts.method != Method::POST {
                break 'answer error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            break 'answer token(&mut d, auth.as_deref(), &body);
        }
        let bearer = auth.as_deref().and_then(|a| {
            a.strip_prefix("bearer ")
                .or_else(|| a.strip_prefix("Bearer "))
        });
        let valid = bearer
            .and_then(|t| d.tokens.get(t))
            .is_some_and(|exp| *exp > now);
        if !valid {
            break 'answer error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        if d.remaining == 0 {
            break 'answer error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }
        d.remaining -= 1;
        route(&d, &path, &query)
    };
    if api {
        // Whole seconds, rounded up: the budget is back when the count reaches zero.
        let reset_in = ((d.reset - now).num_milliseconds().max(0) + 999) / 1000;
        for (k, v) in [
            ("x-ratelimit-used", (d.limit - d.remaining).to_string()),
            (
                "x-ratelimit-remaining",
                format!("{:.1}", d.remaining as f64),
            ),
            ("x-ratelimit-reset", reset_in.to_string()),
        ] {
            headers.insert(k, HeaderValue::from_str(&v).unwrap());
        }
    }
    d.hits.push(Hit {
        path,
        query: if api { query } else { body },
        conditional: false,
        status: status.as_u16(),
        authorization: auth,
        user_agent: ua,
    });
    drop(d);
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    (status, headers, serde_json::to_vec(&json_body).unwrap()).into_response()
}
