//! Zendesk: tickets, read by sync and received by webhook.
//!
//! Config `{"subdomain"}` (the API is `https://<subdomain>.zendesk.com`; `baseUrl` overrides it
//! for tests, proxies and sandboxes), credentials `{"email", "apiToken", "webhookSecret"}`:
//! requests authenticate with HTTP Basic `<email>/token:<apiToken>`; `webhookSecret` is the
//! signing secret Zendesk shows for the webhook.
//!
//! Sync (hourly, `zendesk-sync-scheduler`): the incremental ticket export,
//! `GET /api/v2/incremental/tickets/cursor.json?start_time=<unix>&include=users`, then each
//! `after_url` until `end_of_stream`. Its `after_cursor` is saved after every page, so a stopped
//! run resumes at the page it stopped at and the next run reads only tickets changed since. The
//! first run reads the last 30 days. Zendesk's `Retry-After` on 429 and its
//! `x-rate-limit-remaining` are honoured by the HTTP layer.
//!
//! Webhook: `POST /api/v1/webhooks/zendesk/{integrationId}`, verified per Zendesk's
//! documentation: `X-Zendesk-Webhook-Signature` is the base64 HMAC-SHA256, under the signing
//! secret, of `X-Zendesk-Webhook-Signature-Timestamp` followed by the raw body. The body is a
//! Zendesk event (`{"type": "zen:event-type:ticket.created", "id", "detail": {ticket}}`) or a
//! trigger's JSON (`{"type": "ticket.created", "ticket": {...}}`).
//!
//! Signals, keyed by the object so a webhook and a sync of the same change are one signal:
//! `zendesk_ticket_created` (`zendesk:ticket:<id>:created`), `zendesk_ticket_solved` when solved
//! or closed (`…:solved`), `zendesk_satisfaction_rated` for a good or bad rating (`…:rated`),
//! and `zendesk_ticket_updated` for any other change (`…:updated:<updated_at>`).
//!
//! People: the requester, by email (from the export's side-loaded users, or the trigger's
//! `requester`), with the Zendesk user id remembered as a `ZENDESK` identity, which is how a
//! Zendesk event (which names only `requester_id`) finds the person.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use domain::FieldError;
use domain::signals::identifiers::kind;
use domain::signals::{ActorHints, Input};
use serde_json::{Map, Value, json};

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::webhook::{Delivery, Inbound, Refusal, hmac_sha256, same};

pub struct Zendesk;

/// How far back the first run reads.
const FIRST_LOOKBACK: chrono::Duration = chrono::Duration::days(30);
const RESOURCE: &str = "tickets";

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn time(v: &Value, key: &str) -> Option<String> {
    text(v, key)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc).to_rfc3339())
}

/// A requester as known: id, email, name.
#[derive(Debug, Default, Clone)]
pub struct Requester {
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl Requester {
    fn hints(&self) -> ActorHints {
        let mut h = ActorHints {
            email: self
                .email
                .as_deref()
                .and_then(domain::signals::identifiers::email),
            name: self.name.clone(),
            ..Default::default()
        };
        if let Some(id) = &self.id {
            h.source_ids.push((kind::ZENDESK, id.clone()));
        }
        h
    }
}

fn signal(
    signal_type: &str,
    key: String,
    at: Option<String>,
    ticket: &Value,
    who: &Requester,
) -> Input {
    let mut meta = Map::new();
    if let Some(id) = id_text(ticket.get("id")) {
        meta.insert("ticketId".into(), json!(id));
    }
    for k in ["status", "priority", "type"] {
        if let Some(v) = text(ticket, k) {
            meta.insert(k.into(), json!(v));
        }
    }
    if let Some(s) = text(ticket, "subject") {
        meta.insert(
            "subject".into(),
            json!(s.chars().take(300).collect::<String>()),
        );
    }
    if let Some(c) = ticket
        .get("via")
        .and_then(|v| v.get("channel"))
        .and_then(Value::as_str)
    {
        meta.insert("channel".into(), json!(c));
    }
    Input {
        signal_type: signal_type.into(),
        idempotency_key: Some(key),
        timestamp: at,
        metadata: Some(Value::Object(meta)),
        actor: Some(who.hints()),
        ..Default::default()
    }
}

/// The signals a ticket's current state stands for. `created` says whether this change is
/// the ticket's creation (the sync cannot tell, and always includes it; the key makes it one).
pub fn ticket_signals(ticket: &Value, who: &Requester, created: bool) -> Vec<Input> {
    let Some(id) = id_text(ticket.get("id")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if created {
        out.push(signal(
            "zendesk_ticket_created",
            format!("zendesk:ticket:{id}:created"),
            time(ticket, "created_at"),
            ticket,
            who,
        ));
    }
    let status = text(ticket, "status").unwrap_or("");
    let rating = ticket
        .get("satisfaction_rating")
        .and_then(|r| text(r, "score"))
        .filter(|s| matches!(*s, "good" | "bad"));
    if matches!(status, "solved" | "closed") {
        out.push(signal(
            "zendesk_ticket_solved",
            format!("zendesk:ticket:{id}:solved"),
            time(ticket, "updated_at"),
            ticket,
            who,
        ));
    } else if time(ticket, "updated_at") != time(ticket, "created_at")
        && let Some(updated) = time(ticket, "updated_at")
    {
        out.push(signal(
            "zendesk_ticket_updated",
            format!("zendesk:ticket:{id}:updated:{updated}"),
            time(ticket, "updated_at"),
            ticket,
            who,
        ));
    }
    if let Some(score) = rating {
        let mut s = signal(
            "zendesk_satisfaction_rated",
            format!("zendesk:ticket:{id}:rated"),
            time(ticket, "updated_at"),
            ticket,
            who,
        );
        if let Some(Value::Object(m)) = s.metadata.as_mut() {
            m.insert("score".into(), json!(score));
        }
        out.push(s);
    }
    out
}

/// What a verified webhook body stands for.
pub fn webhook_delivery(body: &Value) -> Result<Delivery, Refusal> {
    let event_type = text(body, "type")
        .map(|t| t.trim_start_matches("zen:event-type:").to_owned())
        .ok_or_else(|| Refusal::BadRequest("the event has no type".into()))?;
    let ticket = body
        .get("detail")
        .or_else(|| body.get("ticket"))
        .filter(|t| t.is_object())
        .ok_or_else(|| Refusal::BadRequest("the event has no ticket (detail or ticket)".into()))?;
    if !event_type.starts_with("ticket.") && event_type != "satisfaction_rating.created" {
        return Ok(Delivery::Ignore(format!("{event_type} is not tracked")));
    }
    if id_text(ticket.get("id")).is_none() {
        return Err(Refusal::BadRequest("the ticket has no id".into()));
    }
    let requester = ticket.get("requester").filter(|r| r.is_object());
    let who = Requester {
        id: id_text(ticket.get("requester_id"))
            .or_else(|| requester.and_then(|r| id_text(r.get("id")))),
        email: requester.and_then(|r| text(r, "email")).map(str::to_owned),
        name: requester.and_then(|r| text(r, "name")).map(str::to_owned),
    };
    let inputs = ticket_signals(ticket, &who, event_type == "ticket.created");
    Ok(if inputs.is_empty() {
        Delivery::Ignore("the change is not tracked".into())
    } else {
        Delivery::Ingest(inputs)
    })
}

/// Zendesk's signature of `body` at `timestamp` under `secret`: base64 HMAC-SHA256 of the
/// timestamp followed by the body.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
        secret.as_bytes(),
        &[timestamp.as_bytes(), body],
    ))
}

/// Whether the headers sign `body` under `secret`.
pub fn verify(secret: &str, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return false;
    };
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else {
        return false;
    };
    !secret.is_empty()
        && same(
            &hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), body]),
            &sig,
        )
}

fn base_url(cx: &SyncContext) -> String {
    let cfg = &cx.integration.config;
    match text(cfg, "baseUrl") {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!(
            "https://{}.zendesk.com",
            text(cfg, "subdomain").unwrap_or_default()
        ),
    }
}

fn valid_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[derive(serde::Deserialize)]
struct ExportPage {
    #[serde(default)]
    tickets: Vec<Value>,
    #[serde(default)]
    users: Vec<Value>,
    #[serde(default)]
    after_url: Option<String>,
    #[serde(default)]
    after_cursor: Option<String>,
    #[serde(default)]
    end_of_stream: bool,
}

#[async_trait::async_trait]
impl crate::Connector for Zendesk {
    fn kind(&self) -> &'static str {
        "ZENDESK"
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
        match cfg.get("subdomain").and_then(Value::as_str).map(|s| {
            s.trim()
                .to_lowercase()
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .trim_end_matches(".zendesk.com")
                .to_owned()
        }) {
            Some(s) if valid_subdomain(&s) => {
                out.insert("subdomain".into(), json!(s));
            }
            _ => errors.push(FieldError::new(
                "config.subdomain",
                "must be the Zendesk subdomain (acme for acme.zendesk.com)",
            )),
        }
        if let Some(b) = cfg.get("baseUrl").filter(|v| !v.is_null()) {
            match b
                .as_str()
                .map(|s| s.trim().trim_end_matches('/'))
                .filter(|s| {
                    url::Url::parse(s).ok().is_some_and(|u| {
                        matches!(u.scheme(), "http" | "https") && u.host().is_some()
                    })
                }) {
                Some(s) => {
                    out.insert("baseUrl".into(), json!(s));
                }
                None => errors.push(FieldError::new("config.baseUrl", "must be an http(s) URL")),
            }
        }
        for k in cfg.keys() {
            if k != "subdomain" && k != "baseUrl" {
                errors.push(FieldError::new(
                    format!("config.{k}"),
                    "is not a Zendesk setting (subdomain, baseUrl)",
                ));
            }
        }
        let cred = |k: &str| {
            credentials
                .and_then(|c| c.get(k))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        if cred("email")
            .and_then(domain::signals::identifiers::email)
            .is_none()
        {
            errors.push(FieldError::new(
                "credentials.email",
                "must be the email of the Zendesk agent the API token belongs to",
            ));
        }
        if cred("apiToken").is_none() {
            errors.push(FieldError::new(
                "credentials.apiToken",
                "must be a Zendesk API token",
            ));
        }
        if cred("webhookSecret").is_none() {
            errors.push(FieldError::new(
                "credentials.webhookSecret",
                "must be the signing secret of the Zendesk webhook",
            ));
        }
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let (Some(email), Some(token)) = (
            cx.credentials.get("email").cloned(),
            cx.credentials.get("apiToken").cloned(),
        ) else {
            return Err(Stop::Credentials("no Zendesk API token is stored".into()));
        };
        let base = base_url(cx);
        let state = if cx.full {
            Value::Null
        } else {
            cx.cursor(RESOURCE)
                .await?
                .map(|c| c.state)
                .unwrap_or(Value::Null)
        };
        let mut url = match text(&state, "cursor") {
            Some(c) => {
                let mut u =
                    url::Url::parse(&format!("{base}/api/v2/incremental/tickets/cursor.json"))
                        .map_err(|e| {
                            Stop::Invalid(format!("the Zendesk URL is not valid ({e})"))
                        })?;
                u.query_pairs_mut()
                    .append_pair("cursor", c)
                    .append_pair("include", "users");
                u.to_string()
            }
            None => format!(
                "{base}/api/v2/incremental/tickets/cursor.json?start_time={}&include=users",
                (Utc::now() - FIRST_LOOKBACK).timestamp()
            ),
        };
        loop {
            let req = Request::get(url.clone())
                .basic_auth(format!("{email}/token"), token.clone())
                .header("accept", "application/json");
            let page: ExportPage = match cx.get(req).await? {
                Fetched::Ok(p) => p.json("Zendesk tickets")?,
                Fetched::NotModified | Fetched::Missing => {
                    return Err(Stop::Invalid(format!(
                        "{base} has no Zendesk incremental export: check the subdomain"
                    )));
                }
            };
            let users: std::collections::HashMap<String, &Value> = page
                .users
                .iter()
                .filter_map(|u| id_text(u.get("id")).map(|id| (id, u)))
                .collect();
            let mut inputs = Vec::new();
            for t in &page.tickets {
                if text(t, "status") == Some("deleted") {
                    continue;
                }
                let rid = id_text(t.get("requester_id"));
                let user = rid.as_ref().and_then(|r| users.get(r));
                let who = Requester {
                    id: rid.clone(),
                    email: user.and_then(|u| text(u, "email")).map(str::to_owned),
                    name: user.and_then(|u| text(u, "name")).map(str::to_owned),
                };
                inputs.extend(ticket_signals(t, &who, true));
            }
            cx.ingest(inputs).await?;
            if let Some(c) = page.after_cursor.as_deref().filter(|c| !c.is_empty()) {
                cx.save_cursor(RESOURCE, json!({"cursor": c}), None, None)
                    .await?;
            }
            match page
                .after_url
                .filter(|u| !u.is_empty() && !page.end_of_stream)
            {
                Some(next) => url = next,
                None => return Ok(()),
            }
        }
    }

    fn webhooks(&self) -> bool {
        true
    }

    fn webhook(&self, d: &Inbound<'_>) -> Option<Result<Delivery, Refusal>> {
        let secret = d
            .credentials
            .get("webhookSecret")
            .map(String::as_str)
            .unwrap_or_default();
        if !verify(
            secret,
            d.header("x-zendesk-webhook-signature-timestamp"),
            d.header("x-zendesk-webhook-signature"),
            d.body,
        ) {
            return Some(Err(Refusal::Signature(
                "missing or invalid X-Zendesk-Webhook-Signature".into(),
            )));
        }
        Some(d.json().and_then(|b| webhook_delivery(&b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let s = sign("sec", "2026-12-02T10:00:00Z", b"{}");
        assert!(verify("sec", Some("2026-12-02T10:00:00Z"), Some(&s), b"{}"));
        assert!(!verify(
            "sec",
            Some("2026-12-02T10:00:01Z"),
            Some(&s),
            b"{}"
        ));
        assert!(!verify(
            "sec",
            Some("2026-12-02T10:00:00Z"),
            Some(&s),
            b"{ }"
        ));
        assert!(!verify(
            "other",
            Some("2026-12-02T10:00:00Z"),
            Some(&s),
            b"{}"
        ));
        assert!(!verify("sec", None, Some(&s), b"{}"));
    }

    #[test]
    fn a_solved_rated_ticket_is_created_solved_and_rated() {
        let t = json!({"id": 42, "status": "solved", "created_at": "2026-11-01T10:00:00Z",
            "updated_at": "2026-11-02T10:00:00Z", "requester_id": 9,
            "satisfaction_rating": {"score": "good"}});
        let who = Requester {
            id: Some("9".into()),
            email: Some("ana@acme.io".into()),
            name: None,
        };
        let keys: Vec<_> = ticket_signals(&t, &who, true)
            .into_iter()
            .map(|i| i.idempotency_key.unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "zendesk:ticket:42:created",
                "zendesk:ticket:42:solved",
                "zendesk:ticket:42:rated"
            ]
        );
        let open = json!({"id": 43, "status": "open", "created_at": "2026-11-01T10:00:00Z",
            "updated_at": "2026-11-01T12:00:00Z"});
        let keys: Vec<_> = ticket_signals(&open, &who, false)
            .into_iter()
            .map(|i| i.idempotency_key.unwrap())
            .collect();
        assert_eq!(
            keys,
            ["zendesk:ticket:43:updated:2026-11-01T12:00:00+00:00"]
        );
    }
}
