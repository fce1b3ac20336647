//! Stack Overflow (the Stack Exchange API 2.3, `site=stackoverflow`): the questions of each
//! configured tag with activity since the tag's cursor, then the answers to them, each becoming a
//! signal (`stackoverflow_question`, `stackoverflow_answer`) keyed by the object
//! (`stackoverflow:q:<id>`, `stackoverflow:a:<id>`), so re-reading a question never makes a
//! second signal.
//!
//! Paging: `/questions?order=desc&sort=activity&tagged=<tag>&min=<since>` (`min` bounds the
//! sort's field, `last_activity_date`; `fromdate` would bound the creation date and miss old
//! questions with new answers) is read page by page while the wrapper says `has_more`; after
//! each page the answers created since (`/questions/{ids}/answers?sort=creation&fromdate=<since>`,
//! up to 100 ids per call, every page) and the page's people are read, and
//! the tag's cursor (`tag:<tag>`: the `since` of this walk, the next page, the newest
//! `last_activity_date` seen) is stored, so a stopped run resumes at the page it stopped on. A
//! walk that reaches the end moves `since` to the newest activity seen. The list is newest
//! first, so activity during a walk only pushes items down (re-read, never skipped); what moves
//! to the top has activity after `since` and is read by the next walk. The first walk (and a
//! full run) starts 7 days back.
//!
//! Budget: the wrapper's `backoff` (seconds before the next call) is waited out when it is
//! short (≤ `max_inline_wait`), else the run stops as rate-limited until it lifts (cursors are
//! already stored). `quota_remaining` 0 stops the run until the quota refills at the next UTC
//! midnight. A `throttle_violation` (HTTP 400, `error_id` 502) is a rate limit too, lifting after
//! the seconds its message names. An invalid `key` (`bad_parameter` "key") or a 401 is rejected
//! credentials.
//!
//! People and companies: the person is the post's `owner` by Stack Exchange user id (the
//! `STACKOVERFLOW` identity, named by `display_name`); the account is the domain of the
//! profile's `website_url` (never a hosting or free-mail domain), read with `/users/{ids}` (up
//! to 100 ids per call) and cached per user in a cursor (`user:<id>`) for 7 days.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use domain::FieldError;
use domain::signals::identifiers::kind;
use domain::signals::{AccountHints, ActorHints, Input};
use entity::integration_cursors;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::github::blog_domain;
use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::store;

pub struct StackOverflow;

/// Items per page asked for (the API's maximum), and ids per vectorised call.
pub const PAGE_SIZE: usize = 100;
/// How far back the first walk of a tag reads.
const FIRST_DAYS: i64 = 7;
/// How long a cached profile is used.
const PROFILE_FRESH: chrono::Duration = chrono::Duration::days(7);
/// Tags per integration.
const MAX_TAGS: usize = 50;

/// The idempotency keys.
pub mod key {
    pub fn question(id: i64) -> String {
        format!("stackoverflow:q:{id}")
    }
    pub fn answer(id: i64) -> String {
        format!("stackoverflow:a:{id}")
    }
}

/// A tag as Stack Overflow spells them: lower case, letters, digits and `+ # . -`.
fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 35
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+#.-".contains(c))
}

/// Text the API returns HTML-escaped (titles, display names).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A person as Stack Exchange shows them, cached per user id.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub user_id: i64,
    pub name: Option<String>,
    pub website: Option<String>,
}

impl Person {
    fn hints(&self) -> (ActorHints, Option<AccountHints>) {
        let actor = ActorHints {
            name: self.name.clone(),
            source_ids: vec![(kind::STACKOVERFLOW, self.user_id.to_string())],
            ..Default::default()
        };
        let account = self
            .website
            .as_deref()
            .and_then(blog_domain)
            .map(|d| AccountHints {
                domain: Some(d),
                ..Default::default()
            });
        (actor, account)
    }
}

/// The wrapper every answer of the API comes in.
#[derive(Debug, Default, serde::Deserialize)]
struct Wrapper {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    has_more: bool,
    quota_remaining: Option<i64>,
    backoff: Option<i64>,
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(|x| x.as_i64())
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(|x| x.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(unescape)
}

fn rfc3339(epoch: Option<i64>) -> Option<String> {
    epoch
        .and_then(|e| Utc.timestamp_opt(e, 0).single())
        .map(|t| t.to_rfc3339())
}

/// The next UTC midnight (when the daily quota refills).
fn next_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive() + chrono::Duration::days(1);
    Utc.from_utc_datetime(&tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// "… more requests available in 3 seconds" → 3.
fn seconds_named(message: &str) -> Option<i64> {
    let i = message.find("available in ")?;
    message[i + "available in ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// What a refused request means: a throttle is a rate limit, a bad key is rejected
/// credentials; anything else stays as it was.
fn classify(stop: Stop) -> Stop {
    let Stop::Invalid(msg) = stop else {
        return stop;
    };
    if msg.contains("throttle_violation") {
        let secs = seconds_named(&msg).unwrap_or(60).max(1);
        return Stop::RateLimited {
            until: Utc::now() + chrono::Duration::seconds(secs),
        };
    }
    let bad_key = msg.contains("bad_parameter: key");
    if bad_key
        || [
            "key_required",
            "invalid_access_token",
            "access_token_required",
            "access_denied",
        ]
        .iter()
        .any(|n| msg.contains(n))
    {
        return Stop::Credentials(format!(
            "Stack Exchange rejected the key ({msg}); update the credentials to resume"
        ));
    }
    Stop::Invalid(msg)
}

struct Run<'a> {
    cx: &'a SyncContext,
    api: String,
    key: Option<String>,
    /// No call before this instant (the API's `backoff`, a spent daily quota).
    hold: std::sync::Mutex<Option<DateTime<Utc>>>,
    people: Mutex<HashMap<i64, Person>>,
}

impl Run<'_> {
    /// One call of the API (`path` with its query), honouring the hold the last answers set.
    async fn call(&self, path: &str) -> Result<Wrapper, Stop> {
        let max_wait = self.cx.rt.settings().max_inline_wait;
        let mut throttles = 0;
        loop {
            let hold = *self.hold.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(until) = hold.filter(|u| *u > Utc::now()) {
                match (until - Utc::now()).to_std() {
                    Ok(wait) if wait <= max_wait => tokio::time::sleep(wait).await,
                    _ => return Err(Stop::RateLimited { until }),
                }
            }
            let mut url = format!("{}{path}&site=stackoverflow", self.api);
            if let Some(k) = &self.key {
                url.push_str("&key=");
                url.push_str(
                    &url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>(),
                );
            }
            let page = match self.cx.get(Request::get(url)).await {
                Ok(Fetched::Ok(page)) => page,
                Ok(Fetched::NotModified) => return Ok(Wrapper::default()),
                Ok(Fetched::Missing) => {
                    return Err(Stop::Invalid(format!(
                        "Stack Exchange has no method {}",
                        path.split('?').next().unwrap_or(path)
                    )));
                }
                Err(e) => match classify(e) {
                    Stop::RateLimited { until }
                        if throttles < 3
                            && (until - Utc::now()).to_std().is_ok_and(|w| w <= max_wait) =>
                    {
                        throttles += 1;
                        *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
                        continue;
                    }
                    e => return Err(e),
                },
            };
            let w: Wrapper = page.json("a Stack Exchange answer")?;
            let now = Utc::now();
            let mut hold = None;
            if let Some(b) = w.backoff.filter(|b| *b > 0) {
                hold = Some(now + chrono::Duration::seconds(b));
            }
            if w.quota_remaining == Some(0) {
                hold = hold.max(Some(next_midnight(now)));
            }
            *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = hold;
            return Ok(w);
        }
    }

    async fn walk(&self, tag: &str) -> Result<(), Stop> {
        let resource = format!("tag:{tag}");
        let start = (Utc::now() - chrono::Duration::days(FIRST_DAYS)).timestamp();
        let state = match self.cx.cursor(&resource).await? {
            Some(c) if !self.cx.full => c.state,
            _ => Value::Null,
        };
        let since = int(&state, "since").unwrap_or(start);
        let mut page = int(&state, "page").unwrap_or(1).max(1);
        let mut newest = int(&state, "newest").unwrap_or(since).max(since);
        let tagged: String = url::form_urlencoded::byte_serialize(tag.as_bytes()).collect();
        loop {
            let w = self
                .call(&format!(
                    "/questions?order=desc&sort=activity&tagged={tagged}&min={since}&pagesize={PAGE_SIZE}&page={page}"
                ))
                .await?;
            if let Some(n) = w
                .items
                .iter()
                .filter_map(|q| int(q, "last_activity_date"))
                .max()
            {
                newest = newest.max(n);
            }
            self.process(tag, since, &w.items).await?;
            if w.has_more && !w.items.is_empty() {
                page += 1;
                self.cx
                    .save_cursor(
                        &resource,
                        json!({"since": since, "page": page, "newest": newest}),
                        None,
                        None,
                    )
                    .await?;
            } else {
                self.cx
                    .save_cursor(
                        &resource,
                        json!({"since": newest, "page": 1, "newest": newest}),
                        None,
                        None,
                    )
                    .await?;
                return Ok(());
            }
        }
    }

    /// A page of questions: their answers, their people, their signals.
    async fn process(&self, tag: &str, since: i64, questions: &[Value]) -> Result<(), Stop> {
        let ids: Vec<i64> = questions
            .iter()
            .filter_map(|q| int(q, "question_id"))
            .collect();
        let mut answers = Vec::new();
        for chunk in ids.chunks(PAGE_SIZE) {
            let list = chunk
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(";");
            let mut page = 1;
            loop {
                let w = self
                    .call(&format!(
                        "/questions/{list}/answers?order=desc&sort=creation&fromdate={since}&pagesize={PAGE_SIZE}&page={page}"
                    ))
                    .await?;
                let more = w.has_more && !w.items.is_empty();
                answers.extend(w.items);
                if !more {
                    break;
                }
                page += 1;
            }
        }
        // People erased from the organization (GDPR art. 17) are skipped before their profile
        // is read or cached.
        let owner_id = |i: &Value| i.get("owner").and_then(|o| int(o, "user_id"));
        let ids: Vec<String> = questions
            .iter()
            .chain(answers.iter())
            .filter_map(|i| owner_id(i).map(|id| id.to_string()))
            .collect();
        let erased = domain::privacy::tombstones::erased_values(
            &self.cx.db,
            self.cx.integration.organization_id,
            kind::STACKOVERFLOW,
            ids.iter().map(String::as_str),
        )
        .await?;
        let kept = |i: &Value| owner_id(i).is_none_or(|id| !erased.contains(&id.to_string()));
        let kept_questions: Vec<Value> = questions.iter().filter(|q| kept(q)).cloned().collect();
        let questions: &[Value] = &kept_questions;
        answers.retain(kept);
        let owners: Vec<&Value> = questions
            .iter()
            .chain(answers.iter())
            .filter_map(|i| i.get("owner"))
            .collect();
        self.resolve(&owners).await?;
        let people = self.people.lock().await;
        let person = |item: &Value| {
            let owner = item.get("owner")?;
            let id = int(owner, "user_id")?;
            Some(people.get(&id).cloned().unwrap_or_else(|| Person {
                user_id: id,
                name: text(owner, "display_name"),
                website: None,
            }))
        };
        let mut inputs = Vec::new();
        for q in questions {
            let Some(id) = int(q, "question_id") else {
                continue;
            };
            let meta = json!({
                "questionId": id,
                "tag": tag,
                "title": text(q, "title"),
                "tags": q.get("tags").cloned().unwrap_or(Value::Null),
                "url": text(q, "link"),
                "score": int(q, "score"),
                "answerCount": int(q, "answer_count"),
                "isAnswered": q.get("is_answered").and_then(|v| v.as_bool()),
            });
            inputs.push(signal(
                "stackoverflow_question",
                key::question(id),
                rfc3339(int(q, "creation_date")),
                person(q),
                meta,
            ));
        }
        let titles: HashMap<i64, Option<String>> = questions
            .iter()
            .filter_map(|q| Some((int(q, "question_id")?, text(q, "title"))))
            .collect();
        for a in &answers {
            let Some(id) = int(a, "answer_id") else {
                continue;
            };
            let qid = int(a, "question_id");
            let meta = json!({
                "answerId": id,
                "questionId": qid,
                "tag": tag,
                "title": qid.and_then(|q| titles.get(&q).cloned().flatten()),
                "url": format!("https://stackoverflow.com/a/{id}"),
                "score": int(a, "score"),
                "isAccepted": a.get("is_accepted").and_then(|v| v.as_bool()),
            });
            inputs.push(signal(
                "stackoverflow_answer",
                key::answer(id),
                rfc3339(int(a, "creation_date")),
                person(a),
                meta,
            ));
        }
        drop(people);
        if !inputs.is_empty() {
            self.cx.ingest(inputs).await?;
        }
        Ok(())
    }

    /// Knows every owner's profile: from this run's memory, the cached profiles (one query), or
    /// `/users/{ids}` for the rest (cached for the next runs).
    async fn resolve(&self, owners: &[&Value]) -> Result<(), Stop> {
        let mut names: HashMap<i64, Option<String>> = HashMap::new();
        {
            let people = self.people.lock().await;
            for o in owners {
                if let Some(id) = int(o, "user_id")
                    && !people.contains_key(&id)
                {
                    names.insert(id, text(o, "display_name"));
                }
            }
        }
        if names.is_empty() {
            return Ok(());
        }
        let resources: Vec<String> = names.keys().map(|id| format!("user:{id}")).collect();
        let cached = integration_cursors::Entity::find()
            .filter(integration_cursors::Column::IntegrationId.eq(self.cx.integration.id))
            .filter(integration_cursors::Column::Resource.is_in(resources))
            .all(&self.cx.db)
            .await?;
        let fresh_after = Utc::now() - PROFILE_FRESH;
        let mut found = HashSet::new();
        {
            let mut people = self.people.lock().await;
            for c in cached {
                if c.updated_at > fresh_after
                    && let Ok(p) = serde_json::from_value::<Person>(c.state)
                {
                    found.insert(p.user_id);
                    people.insert(p.user_id, p);
                }
            }
        }
        let mut missing: Vec<i64> = names
            .keys()
            .filter(|id| !found.contains(id))
            .copied()
            .collect();
        missing.sort_unstable();
        for chunk in missing.chunks(PAGE_SIZE) {
            let list = chunk
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(";");
            let mut got: HashMap<i64, Person> = HashMap::new();
            let mut page = 1;
            loop {
                let w = self
                    .call(&format!("/users/{list}?pagesize={PAGE_SIZE}&page={page}"))
                    .await?;
                for u in &w.items {
                    if let Some(id) = int(u, "user_id") {
                        got.insert(
                            id,
                            Person {
                                user_id: id,
                                name: text(u, "display_name"),
                                website: text(u, "website_url"),
                            },
                        );
                    }
                }
                if !w.has_more || w.items.is_empty() {
                    break;
                }
                page += 1;
            }
            let mut people = self.people.lock().await;
            for id in chunk {
                // A user the API no longer has (deleted) keeps the name on the post.
                let p = got.remove(id).unwrap_or_else(|| Person {
                    user_id: *id,
                    name: names.get(id).cloned().flatten(),
                    website: None,
                });
                store::put_cursor(
                    &self.cx.db,
                    &self.cx.integration,
                    &format!("user:{id}"),
                    serde_json::to_value(&p).unwrap_or(Value::Null),
                    None,
                    None,
                )
                .await?;
                people.insert(*id, p);
            }
        }
        Ok(())
    }
}

fn signal(
    signal_type: &str,
    key: String,
    at: Option<String>,
    person: Option<Person>,
    metadata: Value,
) -> Input {
    let (actor, account) = match person {
        Some(p) => {
            let (a, c) = p.hints();
            (Some(a), c)
        }
        None => (None, None),
    };
    Input {
        signal_type: signal_type.into(),
        idempotency_key: Some(key),
        timestamp: at,
        metadata: Some(metadata),
        actor,
        account,
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl crate::Connector for StackOverflow {
    fn kind(&self) -> &'static str {
        "STACKOVERFLOW"
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Value::Object(cfg) = config else {
            return Err(vec![FieldError::new("config", "must be an object")]);
        };
        let mut tags: Vec<String> = Vec::new();
        match cfg.get("tags") {
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, t) in list.iter().enumerate() {
                    match t.as_str().map(|s| s.trim().to_lowercase()) {
                        Some(t) if valid_tag(&t) => {
                            if !tags.contains(&t) {
                                tags.push(t);
                            }
                        }
                        _ => errors.push(FieldError::new(
                            format!("config.tags.{i}"),
                            "must be a Stack Overflow tag (letters, digits, + # . -)",
                        )),
                    }
                }
                if list.len() > MAX_TAGS {
                    errors.push(FieldError::new(
                        "config.tags",
                        format!("at most {MAX_TAGS} tags"),
                    ));
                }
            }
            _ => errors.push(FieldError::new("config.tags", "must list at least one tag")),
        }
        for k in cfg.keys() {
            if k != "tags" {
                errors.push(FieldError::new(
                    format!("config.{k}"),
                    "is not a Stack Overflow setting (tags)",
                ));
            }
        }
        if let Some(c) = credentials.filter(|c| !c.is_null()) {
            match c.get("key") {
                Some(Value::String(k)) if !k.trim().is_empty() => {}
                _ => errors.push(FieldError::new(
                    "credentials.key",
                    "must be a Stack Apps key",
                )),
            }
            if let Value::Object(m) = c {
                for k in m.keys().filter(|k| *k != "key") {
                    errors.push(FieldError::new(
                        format!("credentials.{k}"),
                        "is not a Stack Overflow credential (key)",
                    ));
                }
            }
        }
        if errors.is_empty() {
            let mut out = Map::new();
            out.insert("tags".into(), json!(tags));
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let run = Run {
            cx,
            api: cx
                .rt
                .settings()
                .stackexchange_api_url
                .trim_end_matches('/')
                .to_owned(),
            key: cx
                .credentials
                .get("key")
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty()),
            hold: std::sync::Mutex::new(None),
            people: Mutex::new(HashMap::new()),
        };
        let tags: Vec<String> = cx
            .integration
            .config
            .get("tags")
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for tag in &tags {
            run.walk(tag).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Connector;

    #[test]
    fn escaped_text_is_unescaped() {
        assert_eq!(unescape("O&#39;Brien &amp; Co &lt;3"), "O'Brien & Co <3");
        assert_eq!(unescape("caf&#xe9; & more"), "café & more");
        assert_eq!(unescape("a &bogus; b"), "a &bogus; b");
    }

    #[test]
    fn throttles_are_rate_limits_and_bad_keys_are_credentials() {
        let t = classify(Stop::Invalid(
            "api.stackexchange.com/2.3/questions answered 400 throttle_violation: too many requests from this IP, more requests available in 42 seconds".into(),
        ));
        match t {
            Stop::RateLimited { until } => {
                let secs = (until - Utc::now()).num_seconds();
                assert!((40..=42).contains(&secs), "{secs}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(Stop::Invalid("x answered 400 bad_parameter: key".into())),
            Stop::Credentials(_)
        ));
        assert!(matches!(
            classify(Stop::Invalid("x answered 400 bad_parameter: tagged".into())),
            Stop::Invalid(_)
        ));
        let m = next_midnight(Utc.with_ymd_and_hms(2026, 3, 4, 17, 5, 0).unwrap());
        assert_eq!(m, Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap());
    }

    #[test]
    fn tags_are_lower_cased_and_checked() {
        let c = StackOverflow;
        assert_eq!(
            c.validate(&json!({"tags": [" Rust ", "c#", "rust"]}), None)
                .unwrap(),
            json!({"tags": ["rust", "c#"]})
        );
        let e = c
            .validate(&json!({"tags": ["ok", "not a tag"]}), None)
            .unwrap_err();
        assert_eq!(e[0].field, "config.tags.1");
        let e = c.validate(&json!({"tags": []}), None).unwrap_err();
        assert_eq!(e[0].field, "config.tags");
        let e = c
            .validate(&json!({"tags": ["rust"]}), Some(&json!({"key": ""})))
            .unwrap_err();
        assert_eq!(e[0].field, "credentials.key");
        let website = Person {
            user_id: 7,
            name: Some("Ann".into()),
            website: Some("https://www.initech.com/team".into()),
        };
        let (a, c) = website.hints();
        assert_eq!(a.source_ids, vec![(kind::STACKOVERFLOW, "7".to_owned())]);
        assert_eq!(c.unwrap().domain.as_deref(), Some("initech.com"));
        let hosted = Person {
            website: Some("https://ann.github.io".into()),
            ..website
        };
        assert!(hosted.hints().1.is_none());
    }
}
