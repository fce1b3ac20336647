//! One GET to an outside API, as a good citizen: conditional (If-None-Match / If-Modified-Since
//! from the cursor), retried with exponential backoff on 5xx, timeouts and connection errors,
//! reading the source's rate-limit headers (`X-RateLimit-Remaining` / `X-RateLimit-Reset`,
//! `Retry-After`) so that a spent budget stops the run until the reset instead of failing it, and
//! treating rejected credentials (401, or a 403 that is not a rate limit) as a permanent stop.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::{
    ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LINK, RETRY_AFTER,
};

use crate::run::Stop;

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub url: String,
    /// A form body (`application/x-www-form-urlencoded`): the request is a POST.
    pub form: Option<Vec<(String, String)>>,
    /// A JSON body: the request is a POST (search endpoints), or a PATCH when `patch`.
    pub json: Option<serde_json::Value>,
    /// Send the JSON body as a PATCH (Salesforce's collection updates).
    pub patch: bool,
    /// HTTP Basic credentials (user, password).
    pub basic: Option<(String, String)>,
    pub headers: Vec<(&'static str, String)>,
    /// Validators of the last response for this resource.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            url: url.into(),
            ..Default::default()
        }
    }
    /// A POST of a form (OAuth token requests).
    pub fn post_form(url: impl Into<String>, form: Vec<(String, String)>) -> Self {
        Request {
            url: url.into(),
            form: Some(form),
            ..Default::default()
        }
    }
    /// A POST of a JSON body (search APIs that take their query as JSON).
    pub fn post_json(url: impl Into<String>, body: serde_json::Value) -> Self {
        Request {
            url: url.into(),
            json: Some(body),
            ..Default::default()
        }
    }
    /// A PATCH of a JSON body.
    pub fn patch_json(url: impl Into<String>, body: serde_json::Value) -> Self {
        Request {
            url: url.into(),
            json: Some(body),
            patch: true,
            ..Default::default()
        }
    }
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic = Some((user.into(), password.into()));
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn validators(mut self, etag: Option<String>, last_modified: Option<String>) -> Self {
        self.etag = etag;
        self.last_modified = last_modified;
        self
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// 304: the resource is as it was.
    NotModified,
    /// 404 or 410.
    Missing,
    Ok(Page),
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Page {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The `Link: <…>; rel="next"` target.
    pub next: Option<String>,
}

impl Page {
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, Stop> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Stop::Invalid(format!(
                "{what}: the response is not what was expected ({e})"
            ))
        })
    }
}

/// The budget the source reported on its last response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub remaining: Option<u64>,
    pub reset: Option<DateTime<Utc>>,
}

/// What one exchange (with its retries) produced: the outcome, the number of requests sent and
/// the budget read from the last response.
pub struct Exchange {
    pub result: Result<Fetched, Stop>,
    pub requests: u32,
    pub budget: Budget,
}

/// The target of `rel="next"` in a `Link` header.
pub fn link_next(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let url = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        (is_next && url.starts_with('<') && url.ends_with('>'))
            .then(|| url[1..url.len() - 1].to_owned())
    })
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A number of seconds as sources write them (`60`, `598.0`, `0.342`).
fn seconds(v: &str) -> Option<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

fn after_seconds(secs: f64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds((secs * 1000.0).ceil() as i64)
}

/// The budget from the headers every source names its own way: `X-RateLimit-*` (GitHub,
/// Discord, Reddit), `x-rate-limit-*` (Twitter/X), `X-HubSpot-RateLimit-*` (a rolling window of
/// `Interval-Milliseconds`, and a daily allowance that resets at midnight). The reset is epoch
/// seconds, or seconds from now when small (Reddit); Discord's `X-RateLimit-Reset-After` is
/// seconds from now.
pub fn budget_of(headers: &HeaderMap) -> Budget {
    let get = |names: &[&str]| names.iter().find_map(|n| header(headers, n));
    if let Some(daily) = get(&["x-hubspot-ratelimit-daily-remaining"]).and_then(|v| seconds(&v))
        && daily < 1.0
    {
        return Budget {
            remaining: Some(0),
            reset: Some(next_midnight()),
        };
    }
    if let Some(left) = get(&["x-hubspot-ratelimit-remaining"]).and_then(|v| seconds(&v)) {
        let window = get(&["x-hubspot-ratelimit-interval-milliseconds"])
            .and_then(|v| seconds(&v))
            .unwrap_or(10_000.0);
        return Budget {
            remaining: Some(left.max(0.0).floor() as u64),
            reset: Some(after_seconds(window / 1000.0)),
        };
    }
    // Salesforce: `Sforce-Limit-Info: api-usage=14990/15000`, the org's rolling 24 hours; spent,
    // the run waits an hour (as for `REQUEST_LIMIT_EXCEEDED`).
    if let Some((used, max)) = get(&["sforce-limit-info"]).and_then(|v| {
        let usage = v
            .split(',')
            .find_map(|p| p.trim().strip_prefix("api-usage="))?;
        let (used, max) = usage.split_once('/')?;
        Some((
            used.trim().parse::<u64>().ok()?,
            max.trim().parse::<u64>().ok()?,
        ))
    }) {
        let remaining = max.saturating_sub(used);
        return Budget {
            remaining: Some(remaining),
            reset: (remaining == 0).then(|| Utc::now() + chrono::Duration::hours(1)),
        };
    }
    let remaining = get(&["x-ratelimit-remaining", "x-rate-limit-remaining"])
        .and_then(|v| seconds(&v))
        .map(|v| v.floor() as u64);
    let reset = match get(&["x-ratelimit-reset-after"]).and_then(|v| seconds(&v)) {
        Some(after) => Some(after_seconds(after)),
        None => get(&["x-ratelimit-reset", "x-rate-limit-reset"])
            .and_then(|v| seconds(&v))
            .and_then(|v| {
                if v < 1_000_000_000.0 {
                    Some(after_seconds(v))
                } else {
                    Utc.timestamp_millis_opt((v * 1000.0) as i64).single()
                }
            }),
    };
    Budget { remaining, reset }
}

/// The next midnight UTC (when HubSpot's daily allowance returns).
fn next_midnight() -> DateTime<Utc> {
    let tomorrow = Utc::now().date_naive() + chrono::Days::new(1);
    tomorrow
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(24))
}

/// A rate limit named in the error body rather than the status: Salesforce's
/// `REQUEST_LIMIT_EXCEEDED` (a 403; the allowance is a rolling 24 hours, so the run waits an
/// hour), HubSpot's `DAILY` policy (until midnight).
fn limit_in_body(body: &[u8]) -> Option<DateTime<Utc>> {
    let v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let first = v.get(0).unwrap_or(&v);
    if first.get("errorCode").and_then(|c| c.as_str()) == Some("REQUEST_LIMIT_EXCEEDED") {
        return Some(Utc::now() + chrono::Duration::hours(1));
    }
    if v.get("policyName").and_then(|c| c.as_str()) == Some("DAILY") {
        return Some(next_midnight());
    }
    None
}

/// `Retry-After` (seconds, possibly fractional, or an HTTP date), else a JSON body's
/// `retry_after` seconds (Discord's 429).
fn retry_after(headers: &HeaderMap, body: &[u8]) -> Option<DateTime<Utc>> {
    if let Some(v) = header(headers, RETRY_AFTER.as_str()) {
        if let Some(secs) = seconds(&v) {
            return Some(after_seconds(secs.max(0.001)));
        }
        if let Ok(d) = DateTime::parse_from_rfc2822(v.trim()) {
            return Some(d.with_timezone(&Utc));
        }
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("retry_after")?
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(after_seconds)
}

/// The message of a JSON error body in the shapes sources use (`message`: GitHub, Discord;
/// `errors[0].message`: Intercom, Twitter/X (whose `detail` is generic); `detail`: PostHog;
/// `error_name: error_message`: Stack Exchange; `error` as text or `{title, message}`:
/// Zendesk), else the start of the body.
fn message_of(body: &[u8]) -> String {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) {
        // Salesforce answers a list of `{message, errorCode}`.
        if let Some(first) = v.get(0).cloned() {
            v = first;
        }
        // Stack Exchange names the error and its parameter: `bad_parameter: key`.
        if let (Some(name), Some(m)) = (
            v.get("error_name").and_then(|m| m.as_str()),
            v.get("error_message").and_then(|m| m.as_str()),
        ) {
            return format!("{name}: {m}").chars().take(200).collect();
        }
        let first_error = v
            .get("errors")
            .and_then(|e| e.get(0))
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str());
        let found = v
            .get("message")
            .and_then(|m| m.as_str())
            .or(first_error)
            .or_else(|| {
                ["detail", "error_message", "description"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|m| m.as_str()))
            })
            .or_else(|| {
                let e = v.get("error")?;
                e.as_str()
                    .or_else(|| e.get("message").and_then(|m| m.as_str()))
                    .or_else(|| e.get("title").and_then(|m| m.as_str()))
            });
        if let Some(m) = found {
            return m.chars().take(200).collect();
        }
    }
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// The source's name for messages: the URL's host and path, no query.
fn describe(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}{}", u.host_str().unwrap_or(""), u.path()),
        Err(_) => url.to_owned(),
    }
}

/// The largest response body read from a source; a larger one stops the run (`Invalid`) instead
/// of growing a buffer without bound.
pub const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// The body of `resp`, read chunk by chunk; `None` once it passes `cap` bytes.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// How many short rate-limit waits one exchange sits out before it stops the run.
const MAX_INLINE_WAITS: u32 = 5;

/// Sends `req` with up to `max_attempts` attempts, waiting `retry_base · 2^(n-1)` (plus jitter)
/// between attempts that failed transiently. A rate limit lifting within `max_inline_wait` is
/// waited out (up to [`MAX_INLINE_WAITS`] times) without using an attempt.
pub async fn exchange(
    client: &reqwest::Client,
    req: &Request,
    retry_base: Duration,
    max_attempts: u32,
    max_inline_wait: Duration,
) -> Exchange {
    let mut requests = 0;
    let mut budget = Budget::default();
    let mut last_problem = String::new();
    let mut attempt = 0;
    let mut waits = 0;
    while attempt < max_attempts.max(1) {
        attempt += 1;
        if attempt > 1 {
            let wait = domain::queue::backoff(retry_base, (attempt - 1) as i32);
            tokio::time::sleep(wait).await;
        }
        let mut builder = match (&req.form, &req.json) {
            (_, Some(body)) => if req.patch {
                client.patch(&req.url)
            } else {
                client.post(&req.url)
            }
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string()),
            (Some(form), None) => client
                .post(&req.url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(form)
                        .finish(),
                ),
            (None, None) => client.get(&req.url),
        };
        if let Some((user, password)) = &req.basic {
            builder = builder.basic_auth(user, Some(password));
        }
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        if let Some(etag) = &req.etag {
            builder = builder.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &req.last_modified {
            builder = builder.header(IF_MODIFIED_SINCE, lm);
        }
        requests += 1;
        let resp = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                last_problem = if e.is_timeout() {
                    format!("{} timed out", describe(&req.url))
                } else {
                    format!("{} could not be reached ({e})", describe(&req.url))
                };
                continue;
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        budget = budget_of(&headers);
        if status == StatusCode::NOT_MODIFIED {
            return Exchange {
                result: Ok(Fetched::NotModified),
                requests,
                budget,
            };
        }
        let stop = |s: Stop| Exchange {
            result: Err(s),
            requests,
            budget,
        };
        let body = match read_capped(resp, MAX_RESPONSE_BYTES).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return stop(Stop::Invalid(format!(
                    "{} answered more than {} MiB",
                    describe(&req.url),
                    MAX_RESPONSE_BYTES >> 20
                )));
            }
            Err(e) => {
                last_problem = format!("{}: reading the response failed ({e})", describe(&req.url));
                continue;
            }
        };
        if status.is_success() {
            return Exchange {
                result: Ok(Fetched::Ok(Page {
                    etag: header(&headers, ETAG.as_str()),
                    last_modified: header(&headers, LAST_MODIFIED.as_str()),
                    next: link_next(&headers),
                    body,
                })),
                requests,
                budget,
            };
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Exchange {
                result: Ok(Fetched::Missing),
                requests,
                budget,
            };
        }
        if status == StatusCode::UNAUTHORIZED {
            return stop(Stop::Credentials(format!(
                "{} rejected the credentials (401 {}); update them to resume",
                describe(&req.url),
                message_of(&body)
            )));
        }
        if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
            let limited = if let Some(until) = limit_in_body(&body) {
                Some(until)
            } else if budget.remaining == Some(0) {
                Some(
                    retry_after(&headers, &body)
                        .or(budget.reset)
                        .unwrap_or_else(|| Utc::now() + chrono::Duration::minutes(1)),
                )
            } else if let Some(until) = retry_after(&headers, &body) {
                Some(until)
            } else if status == StatusCode::TOO_MANY_REQUESTS {
                Some(Utc::now() + chrono::Duration::minutes(1))
            } else {
                None
            };
            if let Some(until) = limited {
                let wait = (until - Utc::now()).to_std().unwrap_or_default();
                if wait <= max_inline_wait && waits < MAX_INLINE_WAITS {
                    waits += 1;
                    attempt -= 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return stop(Stop::RateLimited { until });
            }
            return stop(Stop::Forbidden(format!(
                "{} refused access (403 {}); check the credentials' permissions",
                describe(&req.url),
                message_of(&body)
            )));
        }
        if status.is_server_error() {
            last_problem = format!(
                "{} answered {} {}",
                describe(&req.url),
                status.as_u16(),
                message_of(&body)
            );
            continue;
        }
        return stop(Stop::Invalid(format!(
            "{} answered {} {}",
            describe(&req.url),
            status.as_u16(),
            message_of(&body)
        )));
    }
    Exchange {
        result: Err(Stop::Transient(format!(
            "{last_problem} (after {requests} attempts)"
        ))),
        requests,
        budget,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn salesforce_limit_info_is_a_budget() {
        let mut h = HeaderMap::new();
        h.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=14990/15000"),
        );
        let b = budget_of(&h);
        assert_eq!(b.remaining, Some(10));
        assert!(b.reset.is_none());
        h.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=15000/15000"),
        );
        let b = budget_of(&h);
        assert_eq!(b.remaining, Some(0));
        assert!(b.reset.is_some_and(|r| r > Utc::now()));
    }

    #[test]
    fn link_next_is_found_among_relations() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                "<https://x/r?page=1>; rel=\"prev\", <https://x/r?page=3>; rel=\"next\", <https://x/r?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(link_next(&h).as_deref(), Some("https://x/r?page=3"));
        h.insert(
            LINK,
            HeaderValue::from_static("<https://x/r?page=1>; rel=\"first\""),
        );
        assert_eq!(link_next(&h), None);
    }
}
