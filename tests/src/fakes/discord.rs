//! A fake of the Discord REST API (v10) for one or more guilds: `GET /guilds/{id}/channels`,
//! `GET /guilds/{id}/threads/active` and `GET /channels/{id}/messages` (`limit` 1–100,
//! `after` / `before` snowflakes; newest first, as Discord answers). It checks the bot token
//! (`Authorization: Bot <token>`, else 401 `{"message": "401: Unauthorized", "code": 0}`),
//! answers unknown guilds and channels with Discord's 404 bodies and unreadable channels with
//! 403 "Missing Access", keeps a per-route bucket for the messages route with Discord's headers
//! (`X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`; a request to an empty bucket gets
//! 429 `{"message", "retry_after", "global"}` with `Retry-After`), can be told to answer 429s
//! (global or not), 5xx or hang on chosen requests, and records every request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

pub use super::github::Hit;

const EPOCH_MS: i64 = 1_420_070_400_000;

/// The snowflake of a time, plus a sequence number (ids made in one millisecond differ).
pub fn snowflake(t: DateTime<Utc>, seq: u64) -> u64 {
    (((t.timestamp_millis() - EPOCH_MS) as u64) << 22) | (seq & 0x3f_ffff)
}

pub fn time_of(id: u64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt((id >> 22) as i64 + EPOCH_MS)
        .unwrap()
}

/// A channel (or a thread, with `parent_id` and `owner_id`).
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: u64,
    pub name: String,
    /// 0 text, 2 voice, 4 category, 5 announcement, 11 public thread, 15 forum.
    pub kind: u64,
    pub parent_id: Option<u64>,
    pub owner_id: Option<u64>,
}

/// A message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub author_id: u64,
    pub username: String,
    pub global_name: Option<String>,
    pub bot: bool,
    /// 0 default, 7 member join, 18 thread created, 19 reply.
    pub kind: u64,
    pub content: String,
    /// For type 18: the thread it announces.
    pub thread_id: Option<u64>,
}

/// A bucket: `limit` requests per `window`, refilled `window` after its first use.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub limit: u64,
    pub remaining: u64,
    pub window: Duration,
    pub reset_at: Option<DateTime<Utc>>,
}

impl Bucket {
    pub fn new(limit: u64, window: Duration) -> Self {
        Bucket {
            limit,
            remaining: limit,
            window,
            reset_at: None,
        }
    }
}

#[derive(Default)]
pub struct Data {
    /// Guild id → its channels (threads included, type 11).
    pub guilds: HashMap<u64, Vec<Channel>>,
    /// Channel or thread id → messages, any order.
    pub messages: HashMap<u64, Vec<Message>>,
    /// Channels the bot may not read (403 Missing Access).
    pub forbidden: HashSet<u64>,
    /// When set, requests must carry `Authorization: Bot <token>`.
    pub token: Option<String>,
    /// The messages route's bucket (per channel, as Discord's major parameter); none: unlimited.
    pub bucket: Option<Bucket>,
    pub buckets: HashMap<u64, Bucket>,
    /// Answer the next requests whose path and query contain the text with this status.
    pub fail: Vec<(String, u16)>,
    /// Answer the next requests whose path and query contain the text with a 429 of
    /// `retry_after` seconds (`global` or not).
    pub limited: Vec<(String, f64, bool)>,
    /// Never answer the next request whose path and query contain this text.
    pub hang: Option<String>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let data = Arc::new(Mutex::new(Data::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v10", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDiscord { url, data }
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

    /// Adds a channel (or thread) to a guild.
    pub fn channel(&self, guild: u64, ch: Channel) {
        self.with(|d| d.guilds.entry(guild).or_default().push(ch));
    }

    /// Adds messages to a channel.
    pub fn post(&self, channel: u64, msgs: Vec<Message>) {
        self.with(|d| d.messages.entry(channel).or_default().extend(msgs));
    }

    /// `n` messages by `n` distinct people (`user<i>`), one a minute, ending an hour ago,
    /// with ids from `seq` on.
    pub fn generated(n: usize, seq: u64) -> Vec<Message> {
        Self::generated_until(n, seq, Utc::now() - chrono::Duration::hours(1))
    }

    /// [`FakeDiscord::generated`] ending at `end` (new messages: `Utc::now()`).
    pub fn generated_until(n: usize, seq: u64, end: DateTime<Utc>) -> Vec<Message> {
        let t0 = end - chrono::Duration::minutes(n as i64);
        (0..n)
            .map(|i| Message {
                id: snowflake(t0 + chrono::Duration::minutes(i as i64), seq + i as u64),
                author_id: 900_000_000_000_000_000 + seq + i as u64,
                username: format!("user{}", seq + i as u64),
                global_name: Some(format!("User {}", seq + i as u64)),
                bot: false,
                kind: 0,
                content: format!("message {i}"),
                thread_id: None,
            })
            .collect()
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn error(status: StatusCode, message: &str, code: u64) -> (StatusCode, Value) {
    (status, json!({"message": message, "code": code}))
}

fn message_json(channel: u64, m: &Message) -> Value {
    let mut v = json!({
        "id": m.id.to_string(),
        "type": m.kind,
        "channel_id": channel.to_string(),
        "content": m.content,
        "timestamp": ts(time_of(m.id)),
        "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "attachments": [], "embeds": [],
        "pinned": false,
        "author": {
            "id": m.author_id.to_string(),
            "username": m.username,
            "global_name": m.global_name,
            "discriminator": "0",
            "avatar": null,
        },
    });
    if m.bot {
        v["author"]["bot"] = json!(true);
    }
    if let Some(t) = m.thread_id {
        v["message_reference"] = json!({"channel_id": t.to_string()});
    }
    v
}

fn channel_json(guild: u64, c: &Channel) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": c.kind,
        "guild_id": guild.to_string(),
        "name": c.name,
        "position": 0,
        "parent_id": c.parent_id.map(|p| p.to_string()),
        "permission_overwrites": [],
    });
    if c.kind == 11 || c.kind == 12 {
        v["owner_id"] = json!(c.owner_id.map(|o| o.to_string()));
        v["thread_metadata"] = json!({
            "archived": false, "auto_archive_duration": 1440, "locked": false,
            "archive_timestamp": ts(time_of(c.id)),
            "create_timestamp": ts(time_of(c.id)),
        });
        v["message_count"] = json!(0);
    }
    v
}

fn route(d: &Data, path: &str, query: &str) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let parts = match parts.as_slice() {
        ["api", "v10", rest @ ..] => rest.to_vec(),
        _ => return error(StatusCode::NOT_FOUND, "404: Not Found", 0),
    };
    let id = |s: &str| s.parse::<u64>().ok();
    match parts.as_slice() {
        ["guilds", g, "channels"] => match id(g).and_then(|g| d.guilds.get(&g).map(|c| (g, c))) {
            Some((g, chans)) => (
                StatusCode::OK,
                Value::Array(
                    chans
                        .iter()
                        .filter(|c| c.kind != 11 && c.kind != 12)
                        .map(|c| channel_json(g, c))
                        .collect(),
                ),
            ),
            None => error(StatusCode::NOT_FOUND, "Unknown Guild", 10004),
        },
        ["guilds", g, "threads", "active"] => {
            match id(g).and_then(|g| d.guilds.get(&g).map(|c| (g, c))) {
                Some((g, chans)) => (
                    StatusCode::OK,
                    json!({
                        "threads": chans.iter().filter(|c| c.kind == 11 || c.kind == 12)
                            .map(|c| channel_json(g, c)).collect::<Vec<_>>(),
                        "members": [],
                    }),
                ),
                None => error(StatusCode::NOT_FOUND, "Unknown Guild", 10004),
            }
        }
        ["channels", c, "messages"] => {
            let Some(c) = id(c) else {
                return error(StatusCode::NOT_FOUND, "Unknown Channel", 10003);
            };
            let known = d.guilds.values().flatten().any(|ch| ch.id == c);
            if !known {
                return error(StatusCode::NOT_FOUND, "Unknown Channel", 10003);
            }
            if d.forbidden.contains(&c) {
                return error(StatusCode::FORBIDDEN, "Missing Access", 50001);
            }
            let limit: usize = param(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50);
            if !(1..=100).contains(&limit) {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Invalid Form Body", "code": 50035}),
                );
            }
            let mut msgs: Vec<&Message> = d
                .messages
                .get(&c)
                .map(|m| m.iter().collect())
                .unwrap_or_default();
            msgs.sort_by_key(|m| m.id);
            let after = param(query, "after").and_then(|a| a.parse::<u64>().ok());
            let before = param(query, "before").and_then(|a| a.parse::<u64>().ok());
            let page: Vec<&Message> = if let Some(a) = after {
                // The messages right after `after`, answered newest first.
                let mut p: Vec<&Message> =
                    msgs.into_iter().filter(|m| m.id > a).take(limit).collect();
                p.reverse();
                p
            } else {
                let mut p: Vec<&Message> = msgs
                    .into_iter()
                    .filter(|m| before.is_none_or(|b| m.id < b))
                    .collect();
                p.reverse();
                p.truncate(limit);
                p
            };
            (
                StatusCode::OK,
                Value::Array(page.into_iter().map(|m| message_json(c, m)).collect()),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "404: Not Found", 0),
    }
}

/// The channel id of a messages route (the bucket's major parameter).
fn messages_channel(path: &str) -> Option<u64> {
    let rest = path.strip_prefix("/api/v10/channels/")?;
    let (id, tail) = rest.split_once('/')?;
    (tail == "messages").then(|| id.parse().ok()).flatten()
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
    let mut headers = HeaderMap::new();
    let now = Utc::now();
    let (status, body) = 'answer: {
        if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t.as_str())) {
            let (_, code) = d.fail.remove(i);
            break 'answer (
                StatusCode::from_u16(code).unwrap(),
                json!({"message": "upstream connect error", "code": 0}),
            );
        }
        if let Some(i) = d
            .limited
            .iter()
            .position(|(t, _, _)| target.contains(t.as_str()))
        {
            let (_, after, global) = d.limited.remove(i);
            headers.insert(
                "retry-after",
                HeaderValue::from_str(&(after.ceil() as u64).to_string()).unwrap(),
            );
            if global {
                headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
            }
            headers.insert(
                "x-ratelimit-scope",
                HeaderValue::from_static(if global { "global" } else { "user" }),
            );
            break 'answer (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"message": "You are being rate limited.", "retry_after": after, "global": global}),
            );
        }
        if let Some(token) = &d.token
            && auth.as_deref() != Some(format!("Bot {token}").as_str())
        {
            break 'answer error(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0);
        }
        if let Some(channel) = messages_channel(&path)
            && let Some(template) = d.bucket.clone()
        {
            let b = d.buckets.entry(channel).or_insert(template);
            if b.reset_at.is_some_and(|r| now >= r) {
                b.remaining = b.limit;
                b.reset_at = None;
            }
            let reset_at = *b
                .reset_at
                .get_or_insert(now + chrono::Duration::from_std(b.window).unwrap());
            let after = (reset_at - now).num_milliseconds().max(0) as f64 / 1000.0;
            let limited = b.remaining == 0;
            if !limited {
                b.remaining -= 1;
            }
            for (k, v) in [
                ("x-ratelimit-limit", b.limit.to_string()),
                ("x-ratelimit-remaining", b.remaining.to_string()),
                (
                    "x-ratelimit-reset",
                    format!("{:.3}", reset_at.timestamp_millis() as f64 / 1000.0),
                ),
                ("x-ratelimit-reset-after", format!("{after:.3}")),
                ("x-ratelimit-bucket", format!("messages-{channel}")),
            ] {
                headers.insert(k, HeaderValue::from_str(&v).unwrap());
            }
            if limited {
                headers.insert(
                    "retry-after",
                    HeaderValue::from_str(&(after.ceil() as u64).to_string()).unwrap(),
                );
                headers.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
                break 'answer (
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"message": "You are being rate limited.", "retry_after": after, "global": false}),
                );
            }
        }
        route(&d, &path, &query)
    };
    d.hits.push(Hit {
        path,
        query,
        conditional: false,
        status: status.as_u16(),
        authorization: auth,
        user_agent: ua,
    });
    drop(d);
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (status, headers, serde_json::to_vec(&body).unwrap()).into_response()
}
