//! A fake of the Twitter/X API v2 recent search: `GET /2/tweets/search/recent` with `query`
//! (keywords OR-ed, phrases quoted, `-is:retweet`; matched case-insensitively against the text),
//! `max_results` (10–100), `since_id`, `next_token` (opaque; a bad one is a 400), the
//! `author_id` expansion (`includes.users`) and `meta` (`newest_id`, `oldest_id`,
//! `result_count`, `next_token`), newest first. It checks the bearer token (401 in Twitter's
//! problem shape), keeps an app budget with `x-rate-limit-limit/remaining/reset` (epoch
//! seconds; a request on a spent budget is a 429 "Too Many Requests", refilled at the reset),
//! can be told to fail (5xx) or hang on chosen requests, and records every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use super::github::Hit;

/// A tweet.
#[derive(Debug, Clone)]
pub struct Tweet {
    pub id: u64,
    pub author_id: u64,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub retweet: bool,
}

#[derive(Default)]
pub struct Data {
    pub tweets: Vec<Tweet>,
    /// User objects by id (`id`, `username`, `name`, `description`, `url`, `entities`).
    pub users: HashMap<u64, Value>,
    /// When set, requests must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    pub limit: u64,
    pub remaining: u64,
    /// When the budget refills (whole seconds, as Twitter sends them).
    pub reset: DateTime<Utc>,
    /// Answer the next requests whose path and query contain the text with this status.
    pub fail: Vec<(String, u16)>,
    /// Never answer the next request whose path and query contain this text.
    pub hang: Option<String>,
    /// The oldest `since_id` the search takes (the real one refuses ids older than its seven
    /// days with a 400 naming `since_id`).
    pub min_since_id: Option<u64>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeTwitter {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

/// A time in whole seconds `secs` from now.
pub fn whole_seconds_from_now(secs: i64) -> DateTime<Utc> {
    chrono::TimeZone::timestamp_opt(&Utc, Utc::now().timestamp() + secs, 0).unwrap()
}

impl FakeTwitter {
    pub async fn start() -> FakeTwitter {
        let data = Arc::new(Mutex::new(Data {
            limit: 450,
            remaining: 450,
            reset: whole_seconds_from_now(900),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/2", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTwitter { url, data }
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

    /// Adds a user.
    pub fn user(&self, id: u64, username: &str, extra: Value) {
        let mut u = json!({"id": id.to_string(), "username": username, "name": username});
        if let (Value::Object(u), Value::Object(extra)) = (&mut u, extra) {
            u.extend(extra);
        }
        self.with(|d| d.users.insert(id, u));
    }

    /// Adds `n` tweets saying `text <i>`, by `n` distinct users (`tw<i>`), one a minute ending
    /// an hour ago, with ids from `first_id` on.
    pub fn generated(&self, n: usize, first_id: u64, text: &str) {
        let t0 = Utc::now() - chrono::Duration::hours(1) - chrono::Duration::minutes(n as i64);
        for i in 0..n {
            let author = 5_000_000 + first_id + i as u64;
            self.user(author, &format!("tw{}", first_id + i as u64), json!({}));
            self.with(|d| {
                d.tweets.push(Tweet {
                    id: first_id + i as u64,
                    author_id: author,
                    text: format!("{text} {i}"),
                    created_at: t0 + chrono::Duration::minutes(i as i64),
                    retweet: false,
                })
            });
        }
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn problem(status: StatusCode, title: &str, detail: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"title": title, "detail": detail, "type": "about:blank", "status": status.as_u16()}),
    )
}

/// The keywords of a query `(a OR "b c") -is:retweet`, and whether retweets are left out.
fn parse_query(q: &str) -> Option<(Vec<String>, bool)> {
    let q = q.trim();
    let (q, no_retweets) = match q.strip_suffix("-is:retweet") {
        Some(rest) => (rest.trim(), true),
        None => (q, false),
    };
    let inner = q.strip_prefix('(')?.strip_suffix(')')?;
    let terms: Vec<String> = inner
        .split(" OR ")
        .map(|t| t.trim().trim_matches('"').to_lowercase())
        .collect();
    (!terms.iter().any(String::is_empty)).then_some((terms, no_retweets))
}

fn search(d: &Data, query: &str) -> (StatusCode, Value) {
    let Some((terms, no_retweets)) = param(query, "query").as_deref().and_then(parse_query) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
        );
    };
    let max: usize = param(query, "max_results")
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    if !(10..=100).contains(&max) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            "The `max_results` query parameter value is not between 10 and 100",
        );
    }
    let since = param(query, "since_id").and_then(|s| s.parse::<u64>().ok());
    if let (Some(s), Some(min)) = (since, d.min_since_id)
        && s < min
    {
        return (
            StatusCode::BAD_REQUEST,
            json!({
                "errors": [{"parameters": {"since_id": [s.to_string()]},
                            "message": format!("Invalid 'since_id':'{s}'. 'since_id' must be a tweet id created after {}.", (Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%dT%H:%MZ"))}],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            }),
        );
    }
    // next_token: `b` and the hex id below which the next page starts.
    let below = match param(query, "next_token") {
        None => None,
        Some(t) => match t
            .strip_prefix('b')
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        {
            Some(b) => Some(b),
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "Invalid Request",
                    "The `next_token` query parameter value is not valid",
                );
            }
        },
    };
    let window = Utc::now() - chrono::Duration::days(7);
    let mut matching: Vec<&Tweet> = d
        .tweets
        .iter()
        .filter(|t| t.created_at >= window)
        .filter(|t| !(no_retweets && t.retweet))
        .filter(|t| {
            let text = t.text.to_lowercase();
            terms.iter().any(|k| text.contains(k.as_str()))
        })
        .filter(|t| since.is_none_or(|s| t.id > s))
        .filter(|t| below.is_none_or(|b| t.id < b))
        .collect();
    matching.sort_by_key(|t| std::cmp::Reverse(t.id));
    let more = matching.len() > max;
    matching.truncate(max);
    if matching.is_empty() {
        return (StatusCode::OK, json!({"meta": {"result_count": 0}}));
    }
    let mut users: Vec<Value> = Vec::new();
    for t in &matching {
        if let Some(u) = d.users.get(&t.author_id)
            && !users.contains(u)
        {
            users.push(u.clone());
        }
    }
    let oldest = matching.last().unwrap().id;
    let mut meta = json!({
        "newest_id": matching[0].id.to_string(),
        "oldest_id": oldest.to_string(),
        "result_count": matching.len(),
    });
    if more {
        meta["next_token"] = json!(format!("b{oldest:x}"));
    }
    (
        StatusCode::OK,
        json!({
            "data": matching.iter().map(|t| json!({
                "id": t.id.to_string(),
                "text": t.text,
                "author_id": t.author_id.to_string(),
                "created_at": t.created_at.format("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
                "lang": "en",
                "edit_history_tweet_ids": [t.id.to_string()],
                "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 1, "quote_count": 0},
            })).collect::<Vec<_>>(),
            "includes": {"users": users},
            "meta": meta,
        }),
    )
}

async fn handle(State(data): State<Arc<Mutex<Data>>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (auth, ua) = (get("authorization"), get("user-agent"));
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
        d.reset = whole_seconds_from_now(900);
    }
    let (status, body) = 'answer: {
        if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t.as_str())) {
            let (_, code) = d.fail.remove(i);
            let code = StatusCode::from_u16(code).unwrap();
            break 'answer problem(code, "Service Unavailable", "Service Unavailable");
        }
        if let Some(token) = &d.token
            && auth.as_deref() != Some(format!("Bearer {token}").as_str())
        {
            break 'answer problem(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        }
        if path != "/2/tweets/search/recent" {
            break 'answer problem(
                StatusCode::NOT_FOUND,
                "Not Found Error",
                "Sorry, that page does not exist.",
            );
        }
        if d.remaining == 0 {
            break 'answer problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too Many Requests",
            );
        }
        d.remaining -= 1;
        search(&d, &query)
    };
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("x-rate-limit-limit", d.limit.to_string()),
        ("x-rate-limit-remaining", d.remaining.to_string()),
        ("x-rate-limit-reset", d.reset.timestamp().to_string()),
    ] {
        headers.insert(k, HeaderValue::from_str(&v).unwrap());
    }
    d.hits.push(Hit {
        path,
        query,
        conditional: false,
        status: status.as_u16(),
        authorization: auth,
        user_agent: ua,
    });
    drop(d);
    let ct = if status.is_success() {
        "application/json; charset=utf-8"
    } else {
        "application/problem+json"
    };
    headers.insert("content-type", HeaderValue::from_static(ct));
    (status, headers, serde_json::to_vec(&body).unwrap()).into_response()
}
