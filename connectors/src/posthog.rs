//! PostHog: product events, read from the project's events API and received by webhook.
//!
//! Config `{"host", "projectId", "events"}` (host defaults to `https://us.posthog.com`; events
//! default to `$pageview`, `signup` and `feature_used`), credentials `{"personalApiKey"}`.
//!
//! Sync: per tracked event name, `GET {host}/api/projects/{projectId}/events/?event=<name>
//! &after=<cursor>&limit=100`, following `next` to the end. PostHog lists newest first, so the
//! cursor (`after`) moves to the newest timestamp read only when a walk has reached its end;
//! while a walk is under way the cursor holds its `next` URL and the newest timestamp it has
//! seen, so a stopped run resumes at the page it stopped at.
//!
//! Webhook: `POST /api/v1/webhooks/posthog/{integrationId}`, signed with the integration's
//! webhook secret in GitHub's scheme (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
//! body>`) — configure it as a PostHog webhook destination with that header. The body is a
//! destination's default payload (`{"event": {...}, "person": {...}}`), one event object, or an
//! array of either.
//!
//! Both paths key a signal by the event's uuid (`posthog:<uuid>`): the same event arriving by
//! webhook and by sync is one signal (the original made two).
//!
//! People: the `distinct_id` is remembered as a `POSTHOG` identity, which finds a person
//! already known but never creates one alone (anonymous visitors stay anonymous); an email
//! (`$set.email`, `email`, `$user_email`, the person's `email`, or a `distinct_id` that is an
//! email) names the person, and a company email names the account.
//!
//! Event names: `$pageview` → `page_view`, `$screen` → `screen_view`, `signup`/`sign_up`/
//! `signed_up` → `signup`, `feature_used`/`feature_usage` → `feature_usage`; PostHog's other
//! `$` events (`$pageleave`, `$autocapture`, `$identify`, …) are not signals; any other name is
//! `posthog_<name in lower snake case>`.

use chrono::{DateTime, Utc};
use domain::FieldError;
use domain::signals::identifiers::kind;
use domain::signals::{ActorHints, Input};
use serde_json::{Map, Value, json};

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::webhook::{Delivery, Inbound, Refusal};

pub struct PostHog;

/// The host when the config names none (PostHog Cloud US).
pub const DEFAULT_HOST: &str = "https://us.posthog.com";
/// Events read when the config names none.
pub const DEFAULT_EVENTS: &[&str] = &["$pageview", "signup", "feature_used"];
/// Events per page asked for.
pub const PAGE: usize = 100;
/// How far back the first run reads.
const FIRST_LOOKBACK: chrono::Duration = chrono::Duration::hours(24);
/// Custom properties kept in a signal's metadata, and the length of each value.
const MAX_PROPS: usize = 20;
const MAX_PROP_CHARS: usize = 500;

/// The signal type of a PostHog event name; `None` for events that are not signals.
pub fn signal_type(event: &str) -> Option<String> {
    let e = event.trim();
    match e {
        "$pageview" => return Some("page_view".into()),
        "$screen" => return Some("screen_view".into()),
        _ => {}
    }
    if e.is_empty() || e.starts_with('$') {
        return None;
    }
    let mut snake = String::with_capacity(e.len());
    let mut gap = false;
    for c in e.chars() {
        if c.is_alphanumeric() {
            if gap && !snake.is_empty() {
                snake.push('_');
            }
            gap = false;
            snake.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    match snake.as_str() {
        "" => None,
        "signup" | "sign_up" | "signed_up" => Some("signup".into()),
        "feature_used" | "feature_usage" => Some("feature_usage".into()),
        s => Some(format!("posthog_{s}").chars().take(100).collect()),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn looks_like_email(s: &str) -> bool {
    domain::signals::identifiers::email(s).is_some()
}

/// One PostHog event as the API and the webhook give it, with the person when given.
fn to_input(event: &Value, person: Option<&Value>) -> Option<Input> {
    let name = text(event, "event")?;
    let signal_type = signal_type(name)?;
    let uuid = text(event, "uuid").or_else(|| text(event, "id"))?;
    let distinct_id = text(event, "distinct_id");
    let empty = Map::new();
    let props = event
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let person_props = person
        .and_then(|p| p.get("properties"))
        .or_else(|| event.get("person").and_then(|p| p.get("properties")));
    let prop = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let email = props
        .get("$set")
        .and_then(|s| text(s, "email"))
        .or_else(|| prop("email"))
        .or_else(|| prop("$user_email"))
        .or_else(|| person_props.and_then(|p| text(p, "email")))
        .or(distinct_id.filter(|d| looks_like_email(d)))
        .filter(|e| looks_like_email(e))
        .map(str::to_owned);
    let name_of_person = person_props
        .and_then(|p| text(p, "name"))
        .or_else(|| props.get("$set").and_then(|s| text(s, "name")))
        .map(str::to_owned);
    let mut meta = Map::new();
    meta.insert("event".into(), json!(name));
    meta.insert("posthogEventId".into(), json!(uuid));
    if let Some(d) = distinct_id {
        meta.insert("distinctId".into(), json!(d));
    }
    for (key, prop_name) in [
        ("url", "$current_url"),
        ("pathname", "$pathname"),
        ("referrer", "$referrer"),
        ("browser", "$browser"),
        ("browserVersion", "$browser_version"),
        ("os", "$os"),
        ("deviceType", "$device_type"),
        ("lib", "$lib"),
        ("libVersion", "$lib_version"),
    ] {
        if let Some(v) = props.get(prop_name).filter(|v| !v.is_null()) {
            meta.insert(key.into(), v.clone());
        }
    }
    let mut custom = Map::new();
    for (k, v) in props.iter().filter(|(k, _)| !k.starts_with('$')) {
        if custom.len() >= MAX_PROPS {
            break;
        }
        let v = match v {
            Value::String(s) => json!(s.chars().take(MAX_PROP_CHARS).collect::<String>()),
            Value::Object(_) | Value::Array(_) => {
                let s = v.to_string();
                if s.chars().count() > MAX_PROP_CHARS {
                    continue;
                }
                v.clone()
            }
            other => other.clone(),
        };
        custom.insert(k.clone(), v);
    }
    if !custom.is_empty() {
        meta.insert("properties".into(), Value::Object(custom));
    }
    let timestamp = text(event, "timestamp").and_then(|t| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.with_timezone(&Utc).to_rfc3339())
    });
    let mut actor = ActorHints {
        email,
        name: name_of_person,
        ..Default::default()
    };
    if let Some(d) = distinct_id {
        actor
            .source_ids
            .push((kind::POSTHOG, d.chars().take(200).collect()));
    }
    Some(Input {
        signal_type,
        idempotency_key: Some(key(uuid)),
        timestamp,
        metadata: Some(Value::Object(meta)),
        actor: Some(actor),
        ..Default::default()
    })
}

/// The idempotency key of a PostHog event (shared by the sync and the webhook).
pub fn key(uuid: &str) -> String {
    format!("posthog:{}", uuid.to_lowercase())
}

/// The signals a webhook body stands for: a destination's default payload, one event, or an
/// array of either.
pub fn webhook_inputs(body: &Value) -> Result<Vec<Input>, Refusal> {
    let items: Vec<&Value> = match body {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![body],
        _ => {
            return Err(Refusal::BadRequest(
                "the body is not a PostHog event or a list of events".into(),
            ));
        }
    };
    let mut out = Vec::new();
    for item in items {
        let (event, person) = match item.get("event") {
            Some(e @ Value::Object(_)) => (e, item.get("person")),
            Some(Value::String(_)) => (item, item.get("person")),
            _ => {
                return Err(Refusal::BadRequest(
                    "an item has no event: expected {\"event\": {...}} or an event object".into(),
                ));
            }
        };
        if text(event, "uuid").or_else(|| text(event, "id")).is_none() {
            return Err(Refusal::BadRequest("an event has no uuid".into()));
        }
        out.extend(to_input(event, person));
    }
    Ok(out)
}

fn host_of(cx: &SyncContext) -> String {
    cx.integration
        .config
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_HOST)
        .trim_end_matches('/')
        .to_owned()
}

fn list_of(cfg: &Value, key: &str) -> Vec<String> {
    cfg.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct EventsPage {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    results: Vec<Value>,
}

impl PostHog {
    /// Reads one event name from the cursor to the end.
    async fn walk(&self, cx: &SyncContext, api: &str, key: &str, event: &str) -> Result<(), Stop> {
        let resource = format!("events:{event}");
        let state = if cx.full {
            Value::Null
        } else {
            cx.cursor(&resource)
                .await?
                .map(|c| c.state)
                .unwrap_or(Value::Null)
        };
        let after = text(&state, "after").map(str::to_owned).unwrap_or_else(|| {
            (Utc::now() - FIRST_LOOKBACK).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        });
        let mut newest = text(&state, "newest").map(str::to_owned);
        let mut url = match text(&state, "next") {
            Some(next) => next.to_owned(),
            None => {
                let mut u = url::Url::parse(&format!("{api}/events/"))
                    .map_err(|e| Stop::Invalid(format!("the PostHog host is not a URL ({e})")))?;
                u.query_pairs_mut()
                    .append_pair("event", event)
                    .append_pair("after", &after)
                    .append_pair("limit", &PAGE.to_string());
                u.to_string()
            }
        };
        loop {
            let req = Request::get(url.clone()).header("authorization", format!("Bearer {key}"));
            let page: EventsPage = match cx.get(req).await? {
                Fetched::Ok(p) => p.json("PostHog events")?,
                Fetched::NotModified => EventsPage {
                    next: None,
                    results: Vec::new(),
                },
                Fetched::Missing => {
                    return Err(Stop::Invalid(format!(
                        "PostHog has no project {} at {}",
                        cx.integration.config["projectId"],
                        host_of(cx)
                    )));
                }
            };
            for e in &page.results {
                if let Some(t) = text(e, "timestamp")
                    && newest.as_deref().is_none_or(|n| later(t, n))
                {
                    newest = Some(t.to_owned());
                }
            }
            let inputs: Vec<Input> = page
                .results
                .iter()
                .filter_map(|e| to_input(e, None))
                .collect();
            cx.ingest(inputs).await?;
            match page
                .next
                .filter(|n| !n.is_empty() && !page.results.is_empty())
            {
                Some(next) => {
                    cx.save_cursor(
                        &resource,
                        json!({"after": after, "newest": newest, "next": next}),
                        None,
                        None,
                    )
                    .await?;
                    url = next;
                }
                None => {
                    let done = newest.unwrap_or(after);
                    cx.save_cursor(&resource, json!({"after": done}), None, None)
                        .await?;
                    return Ok(());
                }
            }
        }
    }
}

/// Whether timestamp `a` is after `b` (RFC 3339; unparsable ones compare as text).
fn later(a: &str, b: &str) -> bool {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

#[async_trait::async_trait]
impl crate::Connector for PostHog {
    fn kind(&self) -> &'static str {
        "POSTHOG"
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
        let mut out = Map::new();
        let host = match cfg.get("host").filter(|v| !v.is_null()) {
            None => Some(DEFAULT_HOST.to_owned()),
            Some(h) => {
                let h = h.as_str().map(|s| s.trim().trim_end_matches('/'));
                match h.and_then(|s| url::Url::parse(s).ok().map(|u| (s, u))) {
                    Some((s, u))
                        if matches!(u.scheme(), "http" | "https") && u.host().is_some() =>
                    {
                        Some(s.to_owned())
                    }
                    _ => {
                        errors.push(FieldError::new(
                            "config.host",
                            "must be the PostHog URL, such as https://us.posthog.com",
                        ));
                        None
                    }
                }
            }
        };
        out.insert("host".into(), json!(host));
        match cfg.get("projectId") {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
                out.insert("projectId".into(), json!(n.to_string()));
            }
            Some(Value::String(s))
                if !s.trim().is_empty() && s.trim().chars().all(|c| c.is_ascii_digit()) =>
            {
                out.insert("projectId".into(), json!(s.trim()));
            }
            _ => errors.push(FieldError::new(
                "config.projectId",
                "must be the PostHog project id (a number)",
            )),
        }
        let mut events = Vec::new();
        match cfg.get("events").filter(|v| !v.is_null()) {
            None => events.extend(DEFAULT_EVENTS.iter().map(|e| e.to_string())),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= 50 => {
                for (i, e) in list.iter().enumerate() {
                    match e.as_str().map(str::trim) {
                        Some(name) if signal_type(name).is_some() && name.len() <= 200 => {
                            if !events.iter().any(|x| x == name) {
                                events.push(name.to_owned());
                            }
                        }
                        _ => errors.push(FieldError::new(
                            format!("config.events.{i}"),
                            "must be an event name that becomes a signal ($pageview, $screen, or your own events)",
                        )),
                    }
                }
            }
            Some(_) => errors.push(FieldError::new(
                "config.events",
                "must list 1 to 50 event names",
            )),
        }
        out.insert("events".into(), json!(events));
        for k in cfg.keys() {
            if !matches!(k.as_str(), "host" | "projectId" | "events") {
                errors.push(FieldError::new(
                    format!("config.{k}"),
                    "is not a PostHog setting (host, projectId, events)",
                ));
            }
        }
        match credentials.and_then(|c| c.get("personalApiKey")) {
            Some(Value::String(k)) if !k.trim().is_empty() => {}
            _ => errors.push(FieldError::new(
                "credentials.personalApiKey",
                "must be a PostHog personal API key (with read access to events)",
            )),
        }
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let key = cx
            .credentials
            .get("personalApiKey")
            .cloned()
            .ok_or_else(|| Stop::Credentials("no PostHog personal API key is stored".into()))?;
        let project = text(&cx.integration.config, "projectId")
            .unwrap_or_default()
            .to_owned();
        let api = format!("{}/api/projects/{project}", host_of(cx));
        for event in list_of(&cx.integration.config, "events") {
            self.walk(cx, &api, &key, &event).await?;
        }
        Ok(())
    }

    fn webhooks(&self) -> bool {
        true
    }

    fn webhook(&self, d: &Inbound<'_>) -> Option<Result<Delivery, Refusal>> {
        Some(d.verify_hub_sha256().and_then(|()| {
            let body = d.json()?;
            let inputs = webhook_inputs(&body)?;
            Ok(if inputs.is_empty() {
                Delivery::Ignore("no tracked event (PostHog's own $ events are not signals)".into())
            } else {
                Delivery::Ingest(inputs)
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_map_as_documented() {
        assert_eq!(signal_type("$pageview").as_deref(), Some("page_view"));
        assert_eq!(signal_type("$screen").as_deref(), Some("screen_view"));
        assert_eq!(signal_type("Signed Up").as_deref(), Some("signup"));
        assert_eq!(signal_type("sign-up").as_deref(), Some("signup"));
        assert_eq!(
            signal_type("feature_used").as_deref(),
            Some("feature_usage")
        );
        assert_eq!(
            signal_type("Project Created").as_deref(),
            Some("posthog_project_created")
        );
        assert_eq!(signal_type("$pageleave"), None);
        assert_eq!(signal_type("$autocapture"), None);
        assert_eq!(signal_type("  "), None);
    }

    #[test]
    fn people_come_from_emails_and_distinct_ids() {
        let e = json!({"uuid": "0190-A", "event": "$pageview", "distinct_id": "u-1",
            "timestamp": "2026-11-01T10:00:00Z",
            "properties": {"$set": {"email": "ana@acme.io"}, "$current_url": "https://x/pricing", "plan": "pro", "$ip": "1.2.3.4"}});
        let i = to_input(&e, None).unwrap();
        assert_eq!(i.idempotency_key.as_deref(), Some("posthog:0190-a"));
        let a = i.actor.unwrap();
        assert_eq!(a.email.as_deref(), Some("ana@acme.io"));
        assert_eq!(a.source_ids, vec![(kind::POSTHOG, "u-1".to_owned())]);
        let m = i.metadata.unwrap();
        assert_eq!(m["url"], "https://x/pricing");
        assert_eq!(m["properties"], json!({"plan": "pro"}));
        // An email as the distinct id names the person.
        let e =
            json!({"id": "b", "event": "signup", "distinct_id": "bo@acme.io", "properties": {}});
        let i = to_input(&e, None).unwrap();
        assert_eq!(i.actor.unwrap().email.as_deref(), Some("bo@acme.io"));
    }
}
