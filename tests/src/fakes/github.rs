//! A fake of the GitHub REST API: stargazers (with `application/vnd.github.star+json`), forks,
//! issues (`state`, `sort=updated`, `direction`, `since`), users and their organizations. It
//! pages with `per_page`/`page` and a `Link` header, answers `If-None-Match` with 304 (which,
//! as on GitHub, costs no budget), keeps a rate-limit budget with `X-RateLimit-*` headers (403
//! "API rate limit exceeded" when spent, refilled at the reset), checks the token (401 "Bad
//! credentials"), and can be told to fail (502) or hang on chosen requests. Every request is
//! recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::etag_of;

/// One repository's data.
#[derive(Debug, Clone, Default)]
pub struct Repo {
    /// (login, starred_at) oldest first.
    pub stargazers: Vec<(String, DateTime<Utc>)>,
    /// (id, owner login, created_at) oldest first.
    pub forks: Vec<(i64, String, DateTime<Utc>)>,
    pub issues: Vec<Issue>,
}

/// An issue or pull request.
#[derive(Debug, Clone)]
pub struct Issue {
    pub number: i64,
    pub author: String,
    pub pull_request: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub query: String,
    pub conditional: bool,
    pub status: u16,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
}

impl Hit {
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
pub struct Data {
    pub repos: HashMap<String, Repo>,
    /// Profiles by login (lower case): the `/users/{login}` body.
    pub users: HashMap<String, Value>,
    pub orgs: HashMap<String, Vec<String>>,
    /// When set, requests must carry `Authorization: Bearer <token>` (or `token <token>`).
    pub token: Option<String>,
    /// Requests left in the budget, and when it refills (to `limit`).
    pub remaining: u64,
    pub limit: u64,
    pub reset: DateTime<Utc>,
    /// Answer the next requests whose path and query contain the text with this status.
    pub fail: Vec<(String, u16)>,
    /// Never answer the next request whose path and query contain this text.
    pub hang: Option<String>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let data = Arc::new(Mutex::new(Data {
            remaining: 5000,
            limit: 5000,
            reset: Utc::now() + chrono::Duration::hours(1),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(handle)
            .with_state((data.clone(), url.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub { url, data }
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

    /// Adds a user profile.
    pub fn user(&self, login: &str, profile: Value) {
        let mut p = json!({
            "login": login, "id": 1000, "type": "User", "name": null, "company": null,
            "blog": "", "location": null, "email": null, "twitter_username": null,
        });
        if let (Value::Object(p), Value::Object(extra)) = (&mut p, profile) {
            p.extend(extra);
        }
        self.with(|d| d.users.insert(login.to_lowercase(), p));
    }

    pub fn repo(&self, name: &str, repo: Repo) {
        self.with(|d| d.repos.insert(name.to_lowercase(), repo));
    }

    /// A repository with `stars` stargazers `user0..`, `forks` forks and `issues` issues
    /// (every third one a pull request; every fourth closed; half the closed pull requests
    /// merged), all in the past, in order.
    pub fn generated(stars: usize, forks: usize, issues: usize) -> Repo {
        let t0 = Utc::now() - chrono::Duration::days(200);
        let at = |i: usize| t0 + chrono::Duration::minutes(i as i64);
        Repo {
            stargazers: (0..stars).map(|i| (format!("user{i}"), at(i))).collect(),
            forks: (0..forks)
                .map(|i| (100_000 + i as i64, format!("forker{i}"), at(i)))
                .collect(),
            issues: (0..issues)
                .map(|i| {
                    let closed = i % 4 == 3;
                    let pr = i % 3 == 0;
                    Issue {
                        number: i as i64 + 1,
                        author: format!("author{}", i % 50),
                        pull_request: pr,
                        created_at: at(i),
                        updated_at: at(i) + chrono::Duration::minutes(1),
                        closed_at: closed.then(|| at(i) + chrono::Duration::minutes(1)),
                        merged_at: (closed && pr && (i / 4) % 2 == 0)
                            .then(|| at(i) + chrono::Duration::minutes(1)),
                    }
                })
                .collect(),
        }
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn user_json(login: &str) -> Value {
    json!({"login": login, "id": login.len(), "type": "User", "site_admin": false,
           "url": format!("https://api.github.com/users/{login}")})
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()}),
    )
}

/// Pages `items` and adds the `Link` header.
fn paged(base: &str, path: &str, query: &str, items: Vec<Value>, headers: &mut HeaderMap) -> Value {
    let per_page: usize = param(query, "per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = param(query, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let link = |p: usize| {
        let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .chain([("page".to_owned(), p.to_string())])
            .collect();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        format!("<{base}{path}?{q}>")
    };
    let mut rels = Vec::new();
    if page < last {
        rels.push(format!("{}; rel=\"next\"", link(page + 1)));
        rels.push(format!("{}; rel=\"last\"", link(last)));
    }
    if page > 1 {
        rels.push(format!("{}; rel=\"first\"", link(1)));
        rels.push(format!("{}; rel=\"prev\"", link(page - 1)));
    }
    if !rels.is_empty() {
        headers.insert("link", HeaderValue::from_str(&rels.join(", ")).unwrap());
    }
    Value::Array(
        items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect(),
    )
}

fn route(
    d: &Data,
    base: &str,
    path: &str,
    query: &str,
    accept: &str,
    headers: &mut HeaderMap,
) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["users", login] => match d.users.get(&login.to_lowercase()) {
            Some(p) => (StatusCode::OK, p.clone()),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        ["users", login, "orgs"] => {
            let orgs = d
                .orgs
                .get(&login.to_lowercase())
                .cloned()
                .unwrap_or_default();
            (
                StatusCode::OK,
                Value::Array(
                    orgs.iter()
                        .map(|o| json!({"login": o, "id": o.len()}))
                        .collect(),
                ),
            )
        }
        ["repos", owner, name, what] => {
            let full = format!("{owner}/{name}").to_lowercase();
            let Some(repo) = d.repos.get(&full) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let items: Vec<Value> = match *what {
                "stargazers" => repo
                    .stargazers
                    .iter()
                    .map(|(login, at)| {
                        if accept.contains("star+json") {
                            json!({"starred_at": ts(at), "user": user_json(login)})
                        } else {
                            user_json(login)
                        }
                    })
                    .collect(),
                "forks" => {
                    let mut forks: Vec<&(i64, String, DateTime<Utc>)> = repo.forks.iter().collect();
                    if param(query, "sort").as_deref() != Some("oldest") {
                        forks.reverse();
                    }
                    forks
                        .into_iter()
                        .map(|(id, owner, at)| {
                            json!({"id": id, "full_name": format!("{owner}/{name}"), "fork": true,
                                   "owner": user_json(owner), "created_at": ts(at)})
                        })
                        .collect()
                }
                "issues" => {
                    let since = param(query, "since")
                        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                        .map(|s| s.with_timezone(&Utc));
                    let state = param(query, "state").unwrap_or_else(|| "open".into());
                    let mut list: Vec<&Issue> = repo
                        .issues
                        .iter()
                        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
                        .filter(|i| match state.as_str() {
                            "all" => true,
                            "closed" => i.closed_at.is_some(),
                            _ => i.closed_at.is_none(),
                        })
                        .collect();
                    let by_updated = param(query, "sort").as_deref() == Some("updated");
                    list.sort_by_key(|i| {
                        if by_updated {
                            (i.updated_at, i.number)
                        } else {
                            (i.created_at, i.number)
                        }
                    });
                    if param(query, "direction").as_deref() != Some("asc") {
                        list.reverse();
                    }
                    list.into_iter()
                        .map(|i| {
                            let mut v = json!({
                                "number": i.number,
                                "title": format!("Issue {}", i.number),
                                "user": user_json(&i.author),
                                "state": if i.closed_at.is_some() { "closed" } else { "open" },
                                "created_at": ts(&i.created_at),
                                "updated_at": ts(&i.updated_at),
                                "closed_at": i.closed_at.as_ref().map(ts),
                                "html_url": format!("https://github.com/{full}/issues/{}", i.number),
                            });
                            if i.pull_request {
                                v["pull_request"] = json!({
                                    "url": format!("https://api.github.com/repos/{full}/pulls/{}", i.number),
                                    "merged_at": i.merged_at.as_ref().map(ts),
                                });
                            }
                            v
                        })
                        .collect()
                }
                _ => return error(StatusCode::NOT_FOUND, "Not Found"),
            };
            (StatusCode::OK, paged(base, path, query, items, headers))
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn handle(State((data, base)): State<(Arc<Mutex<Data>>, String)>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (if_none_match, accept, auth, ua) = (
        get("if-none-match"),
        get("accept").unwrap_or_default(),
        get("authorization"),
        get("user-agent"),
    );
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
    if now >= d.reset {
        d.remaining = d.limit;
        d.reset = now + chrono::Duration::hours(1);
    }
    let (status, body) = 'answer: {
        if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t.as_str())) {
            let (_, code) = d.fail.remove(i);
            let code = StatusCode::from_u16(code).unwrap();
            break 'answer error(code, "Server Error");
        }
        if let Some(token) = &d.token {
            let ok = auth
                .as_deref()
                .is_some_and(|a| a == format!("Bearer {token}") || a == format!("token {token}"));
            if !ok {
                break 'answer error(StatusCode::UNAUTHORIZED, "Bad credentials");
            }
        }
        if d.remaining == 0 {
            break 'answer error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
            );
        }
        let (status, body) = route(&d, &base, &path, &query, &accept, &mut headers);
        if status == StatusCode::OK {
            let bytes = serde_json::to_vec(&body).unwrap();
            let etag = etag_of(&bytes);
            headers.insert("etag", HeaderValue::from_str(&etag).unwrap());
            if if_none_match.as_deref() == Some(etag.as_str()) {
                // As on GitHub: a 304 does not count against the budget.
                break 'answer (StatusCode::NOT_MODIFIED, Value::Null);
            }
        }
        d.remaining -= 1;
        (status, body)
    };
    for (k, v) in [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", d.reset.timestamp().to_string()),
        ("x-ratelimit-used", (d.limit - d.remaining).to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
        ("x-github-api-version-selected", "2022-11-28".to_owned()),
    ] {
        headers.insert(k, HeaderValue::from_str(&v).unwrap());
    }
    d.hits.push(Hit {
        path,
        query,
        conditional: if_none_match.is_some(),
        status: status.as_u16(),
        authorization: auth,
        user_agent: ua,
    });
    drop(d);
    if status == StatusCode::NOT_MODIFIED {
        return (status, headers).into_response();
    }
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    (status, headers, serde_json::to_vec(&body).unwrap()).into_response()
}
