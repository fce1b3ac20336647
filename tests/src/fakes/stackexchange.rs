//! A fake of the Stack Exchange API 2.3 (`site=stackoverflow`): `/questions` by `tagged`,
//! `sort=activity|creation`, `order`, `fromdate`/`todate` (the creation date) and `min`/`max`
//! (the sort's field), `/questions/{ids}/answers`, `/users/{ids}`
//! (up to 100 ids, `;`-separated). Answers come in the API's wrapper (`items`, `has_more`,
//! `quota_max`, `quota_remaining`, and `backoff` when told to send one), paged by `page` and
//! `pagesize` (at most 100). Like the real API it enforces what it asks for: a call to a method
//! before its `backoff` has passed, or after the daily quota is spent, is refused with HTTP 400
//! `throttle_violation` (`error_id` 502, "more requests available in N seconds"); a wrong `key`
//! is HTTP 400 `bad_parameter` "key"; an unknown method is 404 `no_method`. Errors carry
//! `error_id`, `error_message`, `error_name`. It can be told to fail (any status) or hang on
//! chosen requests. Every request is recorded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use super::github::Hit;

#[derive(Debug, Clone)]
pub struct Question {
    pub id: i64,
    pub tags: Vec<String>,
    /// The owner's user id (`None`: a deleted user, `user_type: does_not_exist`).
    pub owner: Option<i64>,
    pub title: String,
    pub creation_date: i64,
    pub last_activity_date: i64,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub id: i64,
    pub question_id: i64,
    pub owner: Option<i64>,
    pub creation_date: i64,
    pub last_activity_date: i64,
}

#[derive(Debug, Clone, Default)]
pub struct User {
    pub display_name: String,
    pub website_url: Option<String>,
}

#[derive(Default)]
pub struct Data {
    pub questions: Vec<Question>,
    pub answers: Vec<Answer>,
    pub users: HashMap<i64, User>,
    /// When set, a request naming a key must name this one (the key itself is optional).
    pub key: Option<String>,
    pub quota_max: i64,
    pub quota_remaining: i64,
    /// Send `backoff: N` on the next answer whose path and query contain the text.
    pub backoff: Vec<(String, i64)>,
    /// Methods (first path segment) refused until the instant (the backoff that was sent).
    pub backoff_until: HashMap<String, DateTime<Utc>>,
    /// Answer the next requests whose path and query contain the text with this status.
    pub fail: Vec<(String, u16)>,
    /// Never answer the next request whose path and query contain this text.
    pub hang: Option<String>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeStackExchange {
    /// The API root (`STACKEXCHANGE_API_URL`), ending in `/2.3`.
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakeStackExchange {
    pub async fn start() -> FakeStackExchange {
        let data = Arc::new(Mutex::new(Data {
            quota_max: 10_000,
            quota_remaining: 10_000,
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/2.3", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStackExchange { url, data }
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

    /// `n` questions tagged `tag` (ids from `first_id`), owned by users `1..=users` in turn,
    /// with activity in the last days (the first question the most recent), and an answer to
    /// every second one by the next user. Users are added with display names `User <id>`.
    pub fn generate(&self, tag: &str, first_id: i64, n: usize, users: i64) {
        let now = Utc::now().timestamp();
        self.with(|d| {
            for i in 0..n as i64 {
                let id = first_id + i;
                let owner = 1 + i % users;
                let at = now - 3600 - i * 60;
                d.questions.push(Question {
                    id,
                    tags: vec![tag.to_owned()],
                    owner: Some(owner),
                    title: format!("How do I use {tag} &amp; friends? #{id}"),
                    creation_date: at - 30,
                    last_activity_date: at,
                });
                if i % 2 == 0 {
                    d.answers.push(Answer {
                        id: 900_000 + id,
                        question_id: id,
                        owner: Some(1 + (i + 1) % users),
                        creation_date: at - 10,
                        last_activity_date: at - 10,
                    });
                }
            }
            for u in 1..=users {
                d.users.entry(u).or_insert_with(|| User {
                    display_name: format!("User {u}"),
                    website_url: None,
                });
            }
        });
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn error(status: u16, id: i64, name: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(status).unwrap(),
        json!({"error_id": id, "error_message": message, "error_name": name}),
    )
}

fn owner_json(d: &Data, id: Option<i64>) -> Value {
    match id {
        Some(id) => {
            let name = d
                .users
                .get(&id)
                .map(|u| u.display_name.clone())
                .unwrap_or_else(|| format!("user{id}"));
            json!({"account_id": id + 5000, "reputation": 101, "user_id": id,
                   "user_type": "registered", "display_name": name,
                   "link": format!("https://stackoverflow.com/users/{id}/u{id}")})
        }
        None => json!({"user_type": "does_not_exist", "display_name": "user deleted"}),
    }
}

fn ids_of(segment: &str) -> Result<Vec<i64>, (StatusCode, Value)> {
    let ids: Result<Vec<i64>, _> = segment.split(';').map(str::parse::<i64>).collect();
    match ids {
        Ok(ids) if !ids.is_empty() && ids.len() <= 100 => Ok(ids),
        _ => Err(error(400, 400, "bad_parameter", "ids")),
    }
}

/// The items of one call, before paging (already sorted).
fn route(d: &Data, path: &str, query: &str) -> Result<Vec<Value>, (StatusCode, Value)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let num = |k: &str| param(query, k).and_then(|f| f.parse::<i64>().ok());
    // `fromdate`/`todate` bound the creation date, `min`/`max` the sort's own field.
    let (from, to, min, max) = (num("fromdate"), num("todate"), num("min"), num("max"));
    let in_range = |created: i64, sorted: i64| {
        from.is_none_or(|f| created >= f)
            && to.is_none_or(|x| created <= x)
            && min.is_none_or(|m| sorted >= m)
            && max.is_none_or(|m| sorted <= m)
    };
    let by_creation = param(query, "sort").as_deref() == Some("creation");
    let asc = param(query, "order").as_deref() == Some("asc");
    let order = |mut v: Vec<(i64, i64, Value)>| {
        v.sort_by_key(|(t, id, _)| (*t, *id));
        if !asc {
            v.reverse();
        }
        v.into_iter().map(|(_, _, j)| j).collect::<Vec<Value>>()
    };
    match parts.as_slice() {
        ["2.3", "questions"] => {
            let tagged: Vec<String> = param(query, "tagged")
                .map(|t| t.split(';').map(str::to_owned).collect())
                .unwrap_or_default();
            Ok(order(
                d.questions
                    .iter()
                    .filter(|q| tagged.iter().all(|t| q.tags.contains(t)))
                    .filter(|q| {
                        in_range(
                            q.creation_date,
                            if by_creation {
                                q.creation_date
                            } else {
                                q.last_activity_date
                            },
                        )
                    })
                    .map(|q| {
                        let key = if by_creation {
                            q.creation_date
                        } else {
                            q.last_activity_date
                        };
                        let answers = d.answers.iter().filter(|a| a.question_id == q.id).count();
                        (
                            key,
                            q.id,
                            json!({
                                "tags": q.tags, "owner": owner_json(d, q.owner),
                                "is_answered": answers > 0, "view_count": 10,
                                "answer_count": answers, "score": 1,
                                "last_activity_date": q.last_activity_date,
                                "creation_date": q.creation_date, "question_id": q.id,
                                "content_license": "CC BY-SA 4.0",
                                "link": format!("https://stackoverflow.com/questions/{}/q", q.id),
                                "title": q.title,
                            }),
                        )
                    })
                    .collect(),
            ))
        }
        ["2.3", "questions", ids, "answers"] => {
            let ids = ids_of(ids)?;
            Ok(order(
                d.answers
                    .iter()
                    .filter(|a| ids.contains(&a.question_id))
                    .filter(|a| {
                        in_range(
                            a.creation_date,
                            if by_creation {
                                a.creation_date
                            } else {
                                a.last_activity_date
                            },
                        )
                    })
                    .map(|a| {
                        let key = if by_creation {
                            a.creation_date
                        } else {
                            a.last_activity_date
                        };
                        (
                            key,
                            a.id,
                            json!({
                                "owner": owner_json(d, a.owner), "is_accepted": false,
                                "score": 2, "last_activity_date": a.last_activity_date,
                                "creation_date": a.creation_date, "answer_id": a.id,
                                "question_id": a.question_id, "content_license": "CC BY-SA 4.0",
                            }),
                        )
                    })
                    .collect(),
            ))
        }
        ["2.3", "users", ids] => {
            let ids = ids_of(ids)?;
            let set: HashSet<i64> = ids.into_iter().collect();
            let mut users: Vec<(&i64, &User)> =
                d.users.iter().filter(|(id, _)| set.contains(id)).collect();
            users.sort_by_key(|(id, _)| **id);
            Ok(users
                .into_iter()
                .map(|(id, u)| {
                    let mut v = json!({
                        "user_id": id, "account_id": id + 5000, "user_type": "registered",
                        "display_name": u.display_name, "reputation": 101,
                        "link": format!("https://stackoverflow.com/users/{id}/u{id}"),
                    });
                    if let Some(w) = &u.website_url {
                        v["website_url"] = json!(w);
                    }
                    v
                })
                .collect())
        }
        _ => Err(error(
            404,
            404,
            "no_method",
            "no method found with this name",
        )),
    }
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
    let method = path
        .trim_matches('/')
        .split('/')
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let (status, body) = 'answer: {
        if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t.as_str())) {
            let (_, code) = d.fail.remove(i);
            break 'answer error(code, 500, "internal_error", "the server had a problem");
        }
        if param(&query, "site").as_deref() != Some("stackoverflow") {
            break 'answer error(400, 400, "bad_parameter", "site is required");
        }
        if let (Some(want), Some(given)) = (&d.key, param(&query, "key"))
            && *want != given
        {
            break 'answer error(400, 400, "bad_parameter", "key");
        }
        if let Some(until) = d.backoff_until.get(&method).filter(|u| **u > now) {
            let secs = (*until - now).num_milliseconds().div_euclid(1000) + 1;
            break 'answer error(
                400,
                502,
                "throttle_violation",
                &format!(
                    "too many requests from this IP, more requests available in {secs} seconds"
                ),
            );
        }
        if d.quota_remaining <= 0 {
            let midnight = (now.date_naive() + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc();
            break 'answer error(
                400,
                502,
                "throttle_violation",
                &format!(
                    "too many requests from this IP, more requests available in {} seconds",
                    (midnight - now).num_seconds()
                ),
            );
        }
        let pagesize: usize = param(&query, "pagesize")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30);
        if !(1..=100).contains(&pagesize) {
            break 'answer error(400, 400, "bad_parameter", "pagesize");
        }
        let page: usize = param(&query, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let items = match route(&d, &path, &query) {
            Ok(items) => items,
            Err(e) => break 'answer e,
        };
        d.quota_remaining -= 1;
        let has_more = items.len() > page * pagesize;
        let items: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * pagesize)
            .take(pagesize)
            .collect();
        let mut body = json!({
            "items": items, "has_more": has_more,
            "quota_max": d.quota_max, "quota_remaining": d.quota_remaining,
        });
        if let Some(i) = d
            .backoff
            .iter()
            .position(|(t, _)| target.contains(t.as_str()))
        {
            let (_, secs) = d.backoff.remove(i);
            body["backoff"] = json!(secs);
            d.backoff_until
                .insert(method.clone(), now + chrono::Duration::seconds(secs));
        }
        (StatusCode::OK, body)
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
    let mut resp = (status, serde_json::to_vec(&body).unwrap()).into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
