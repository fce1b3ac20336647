//! Intercom: conversations, read by sync and received by webhook.
//!
//! Credentials `{"accessToken", "clientSecret"}` (Intercom signs an app's webhooks with the
//! app's client secret); config `{}`. Requests send `Authorization: Bearer <accessToken>` and
//! `Intercom-Version: 2.11` to `INTERCOM_API_URL` (`https://api.intercom.io`; the EU and
//! Australian regions are `https://api.eu.intercom.io` and `https://api.au.intercom.io`).
//!
//! Sync (hourly, `intercom-sync-scheduler`): `POST /conversations/search` for conversations
//! updated after the cursor, sorted by `updated_at` ascending, every page
//! (`pages.next.starting_after`); the cursor (the last `updated_at` read and the page to continue
//! from) is saved after each page, so a stopped run resumes where it stopped. The first run reads
//! the last 30 days.
//!
//! Webhook: `POST /api/v1/webhooks/intercom/{integrationId}`, verified per Intercom's
//! documentation: `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body under the client
//! secret>`. `ping` answers 200. Topics: `conversation.user.created` →
//! `intercom_conversation_open`, `conversation.user.replied` → `intercom_conversation_reply`,
//! `conversation.admin.closed` → `intercom_conversation_closed`, `conversation.rating.added` →
//! `intercom_conversation_rated`; others are accepted and ignored.
//!
//! Keys name the object, so a webhook and a sync of the same thing are one signal: a
//! conversation's opening `intercom:conversation:<id>:open`, its closing
//! `intercom:conversation:<id>:closed`, its rating `intercom:conversation:<id>:rated`, a reply
//! `intercom:part:<partId>` (replies come by webhook only; a sync sees conversations, not their
//! parts).
//!
//! People: by email (the author of the conversation's first message, when a user or lead),
//! with the Intercom contact id remembered as an `INTERCOM` identity (which finds a known person
//! but never makes one alone).

use chrono::{TimeZone, Utc};
use domain::FieldError;
use domain::signals::identifiers::kind;
use domain::signals::{ActorHints, Input};
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::webhook::{Delivery, Inbound, Refusal};

pub struct Intercom;

/// The API version asked for.
pub const VERSION: &str = "2.11";
/// Conversations per page asked for (the search API's maximum is 150).
pub const PER_PAGE: u32 = 150;
/// How far back the first run reads.
const FIRST_LOOKBACK: chrono::Duration = chrono::Duration::days(30);
const RESOURCE: &str = "conversations";

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn at(secs: Option<i64>) -> Option<String> {
    secs.and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map(|t| t.to_rfc3339())
}

/// The person a conversation is with: the first message's author when a user or lead, else
/// its first contact.
fn person(conv: &Value) -> ActorHints {
    let author = conv.get("source").and_then(|s| s.get("author"));
    let author_is_person = author
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| matches!(t, "user" | "lead" | "contact"));
    let mut hints = ActorHints::default();
    let contact_id = conv
        .get("contacts")
        .and_then(|c| c.get("contacts"))
        .and_then(|c| c.get(0))
        .and_then(|c| id_text(c.get("id")))
        .or_else(|| {
            author
                .filter(|_| author_is_person)
                .and_then(|a| id_text(a.get("id")))
        });
    if author_is_person && let Some(a) = author {
        hints.email = str_at(a, &["email"]).and_then(domain::signals::identifiers::email);
        hints.name = str_at(a, &["name"]).map(str::to_owned);
    }
    if let Some(id) = contact_id {
        hints.source_ids.push((kind::INTERCOM, id));
    }
    hints
}

fn signal(
    signal_type: &str,
    key: String,
    timestamp: Option<String>,
    conv: &Value,
    meta: Map<String, Value>,
) -> Input {
    let mut meta = meta;
    if let Some(id) = id_text(conv.get("id")) {
        meta.insert("conversationId".into(), json!(id));
    }
    if let Some(s) = str_at(conv, &["source", "subject"]) {
        meta.insert(
            "subject".into(),
            json!(s.chars().take(300).collect::<String>()),
        );
    }
    if let Some(s) = str_at(conv, &["state"]) {
        meta.insert("state".into(), json!(s));
    }
    Input {
        signal_type: signal_type.into(),
        idempotency_key: Some(key),
        timestamp,
        metadata: Some(Value::Object(meta)),
        actor: Some(person(conv)),
        ..Default::default()
    }
}

/// The signals a conversation (as the API lists it) stands for: its opening, its closing when
/// closed, its rating when rated.
pub fn conversation_signals(conv: &Value) -> Vec<Input> {
    let Some(id) = id_text(conv.get("id")) else {
        return Vec::new();
    };
    let mut out = vec![signal(
        "intercom_conversation_open",
        format!("intercom:conversation:{id}:open"),
        at(conv.get("created_at").and_then(Value::as_i64)),
        conv,
        Map::new(),
    )];
    if conv.get("state").and_then(Value::as_str) == Some("closed") {
        let closed_at = conv
            .get("statistics")
            .and_then(|s| s.get("last_close_at"))
            .and_then(Value::as_i64)
            .or_else(|| conv.get("updated_at").and_then(Value::as_i64));
        out.push(signal(
            "intercom_conversation_closed",
            format!("intercom:conversation:{id}:closed"),
            at(closed_at),
            conv,
            Map::new(),
        ));
    }
    if let Some(r) = conv.get("conversation_rating").filter(|r| !r.is_null())
        && let Some(rating) = r.get("rating").and_then(Value::as_i64)
    {
        let mut meta = Map::new();
        meta.insert("rating".into(), json!(rating));
        out.push(signal(
            "intercom_conversation_rated",
            format!("intercom:conversation:{id}:rated"),
            at(r.get("created_at").and_then(Value::as_i64)),
            conv,
            meta,
        ));
    }
    out
}

/// What a verified notification stands for.
pub fn webhook_delivery(body: &Value) -> Result<Delivery, Refusal> {
    let topic = body
        .get("topic")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::BadRequest("the notification has no topic".into()))?;
    if topic == "ping" {
        return Ok(Delivery::Reply(json!({"message": "pong"})));
    }
    let item = body
        .get("data")
        .and_then(|d| d.get("item"))
        .filter(|i| i.is_object());
    let Some(conv) = item else {
        return Err(Refusal::BadRequest(
            "the notification has no data.item".into(),
        ));
    };
    let Some(id) = id_text(conv.get("id")) else {
        return Err(Refusal::BadRequest("the conversation has no id".into()));
    };
    let when = at(body.get("created_at").and_then(Value::as_i64));
    let input = match topic {
        "conversation.user.created" => signal(
            "intercom_conversation_open",
            format!("intercom:conversation:{id}:open"),
            at(conv.get("created_at").and_then(Value::as_i64)).or(when),
            conv,
            Map::new(),
        ),
        "conversation.admin.closed" => signal(
            "intercom_conversation_closed",
            format!("intercom:conversation:{id}:closed"),
            when,
            conv,
            Map::new(),
        ),
        "conversation.rating.added" => {
            let mut meta = Map::new();
            if let Some(r) = conv
                .get("conversation_rating")
                .and_then(|r| r.get("rating"))
            {
                meta.insert("rating".into(), r.clone());
            }
            signal(
                "intercom_conversation_rated",
                format!("intercom:conversation:{id}:rated"),
                when,
                conv,
                meta,
            )
        }
        "conversation.user.replied" => {
            let part = conv
                .get("conversation_parts")
                .and_then(|p| p.get("conversation_parts"))
                .and_then(Value::as_array)
                .and_then(|parts| parts.last())
                .and_then(|p| id_text(p.get("id")));
            let key = match (part, id_text(body.get("id"))) {
                (Some(p), _) => format!("intercom:part:{p}"),
                (None, Some(n)) => format!("intercom:notification:{n}"),
                (None, None) => {
                    return Err(Refusal::BadRequest(
                        "a reply needs its conversation part or the notification id".into(),
                    ));
                }
            };
            signal("intercom_conversation_reply", key, when, conv, Map::new())
        }
        other => return Ok(Delivery::Ignore(format!("topic {other} is not tracked"))),
    };
    Ok(Delivery::Ingest(vec![input]))
}

/// Whether `header` is Intercom's signature (`sha1=<hex HMAC-SHA1>`) of `body` under `secret`.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header
        .and_then(|h| h.trim().strip_prefix("sha1="))
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Intercom's signature header value for `body` (for senders and tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    match hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

#[derive(serde::Deserialize)]
struct SearchPage {
    #[serde(default)]
    conversations: Vec<Value>,
    #[serde(default)]
    pages: Option<Value>,
}

fn required(credentials: Option<&Value>, name: &str, what: &str, errors: &mut Vec<FieldError>) {
    match credentials.and_then(|c| c.get(name)) {
        Some(Value::String(v)) if !v.trim().is_empty() => {}
        _ => errors.push(FieldError::new(format!("credentials.{name}"), what)),
    }
}

#[async_trait::async_trait]
impl crate::Connector for Intercom {
    fn kind(&self) -> &'static str {
        "INTERCOM"
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        match config {
            Value::Object(cfg) => {
                for k in cfg.keys() {
                    errors.push(FieldError::new(
                        format!("config.{k}"),
                        "is not an Intercom setting (Intercom has none: its region is INTERCOM_API_URL)",
                    ));
                }
            }
            Value::Null => {}
            _ => errors.push(FieldError::new("config", "must be an object")),
        }
        required(
            credentials,
            "accessToken",
            "must be the Intercom app's access token",
            &mut errors,
        );
        required(
            credentials,
            "clientSecret",
            "must be the Intercom app's client secret (it signs the app's webhooks)",
            &mut errors,
        );
        if errors.is_empty() {
            Ok(json!({}))
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let token = cx
            .credentials
            .get("accessToken")
            .cloned()
            .ok_or_else(|| Stop::Credentials("no Intercom access token is stored".into()))?;
        let state = if cx.full {
            Value::Null
        } else {
            cx.cursor(RESOURCE)
                .await?
                .map(|c| c.state)
                .unwrap_or(Value::Null)
        };
        let mut since = state
            .get("updatedAfter")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| (Utc::now() - FIRST_LOOKBACK).timestamp());
        let mut starting_after = state
            .get("startingAfter")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // While a walk pages, its query keeps the `since` it started with.
        let walk_since = state
            .get("walkSince")
            .and_then(Value::as_i64)
            .unwrap_or(since);
        let url = format!(
            "{}/conversations/search",
            cx.rt.settings().intercom_api_url.trim_end_matches('/')
        );
        loop {
            let mut pagination = json!({"per_page": PER_PAGE});
            if let Some(s) = &starting_after {
                pagination["starting_after"] = json!(s);
            }
            let body = json!({
                "query": {"field": "updated_at", "operator": ">", "value": walk_since},
                "sort": {"field": "updated_at", "order": "ascending"},
                "pagination": pagination,
            });
            let req = Request::post_json(url.clone(), body)
                .header("authorization", format!("Bearer {token}"))
                .header("intercom-version", VERSION)
                .header("accept", "application/json");
            let page: SearchPage = match cx.get(req).await? {
                Fetched::Ok(p) => p.json("Intercom conversations")?,
                Fetched::NotModified | Fetched::Missing => {
                    return Err(Stop::Invalid(
                        "Intercom's conversation search is not where INTERCOM_API_URL says".into(),
                    ));
                }
            };
            for c in &page.conversations {
                if let Some(u) = c.get("updated_at").and_then(Value::as_i64) {
                    since = since.max(u);
                }
            }
            let inputs = page
                .conversations
                .iter()
                .flat_map(conversation_signals)
                .collect();
            cx.ingest(inputs).await?;
            let next = page
                .pages
                .as_ref()
                .and_then(|p| p.get("next"))
                .and_then(|n| n.get("starting_after"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            match next.filter(|_| !page.conversations.is_empty()) {
                Some(n) => {
                    cx.save_cursor(
                        RESOURCE,
                        json!({"updatedAfter": since, "walkSince": walk_since, "startingAfter": n}),
                        None,
                        None,
                    )
                    .await?;
                    starting_after = Some(n);
                }
                None => {
                    cx.save_cursor(RESOURCE, json!({"updatedAfter": since}), None, None)
                        .await?;
                    return Ok(());
                }
            }
        }
    }

    fn webhooks(&self) -> bool {
        true
    }

    fn webhook(&self, d: &Inbound<'_>) -> Option<Result<Delivery, Refusal>> {
        let secret = d
            .credentials
            .get("clientSecret")
            .map(String::as_str)
            .unwrap_or_default();
        if secret.is_empty() || !verify(secret, d.body, d.header("x-hub-signature")) {
            return Some(Err(Refusal::Signature(
                "missing or invalid X-Hub-Signature (HMAC-SHA1 under the app's client secret)"
                    .into(),
            )));
        }
        Some(d.json().and_then(|b| webhook_delivery(&b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_sha1_under_the_client_secret() {
        let s = sign("cs", b"{}");
        assert!(s.starts_with("sha1=") && s.len() == 5 + 40);
        assert!(verify("cs", b"{}", Some(&s)));
        assert!(!verify("other", b"{}", Some(&s)));
        assert!(!verify("cs", b"{ }", Some(&s)));
        assert!(!verify("cs", b"{}", None));
    }

    #[test]
    fn a_closed_rated_conversation_is_three_signals() {
        let c = json!({"id": "7", "created_at": 1_700_000_000, "updated_at": 1_700_000_500,
            "state": "closed", "conversation_rating": {"rating": 5, "created_at": 1_700_000_600},
            "source": {"author": {"type": "user", "id": "u1", "email": "Ana@Acme.io", "name": "Ana"}, "subject": "Help"},
            "contacts": {"contacts": [{"type": "contact", "id": "c1"}]}});
        let s = conversation_signals(&c);
        let keys: Vec<_> = s
            .iter()
            .map(|i| i.idempotency_key.clone().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "intercom:conversation:7:open",
                "intercom:conversation:7:closed",
                "intercom:conversation:7:rated"
            ]
        );
        let a = s[0].actor.as_ref().unwrap();
        assert_eq!(a.email.as_deref(), Some("ana@acme.io"));
        assert_eq!(a.source_ids, vec![(kind::INTERCOM, "c1".to_owned())]);
    }
}
