//! Anthropic's Messages API, for AI account briefs (`domain::briefs` owns everything but the
//! HTTP call, which lives here with the other outside services).
//!
//! One request per brief: `POST {ANTHROPIC_API_URL}/v1/messages` with `x-api-key`,
//! `anthropic-version: 2023-06-01`, the model (`ANTHROPIC_MODEL`), `max_tokens`, a system
//! prompt and one user message holding the account's data; no streaming, no retries (the caller
//! may try again). The answer's `text` content blocks are the brief's JSON; `usage.input_tokens`
//! and `usage.output_tokens` are recorded per organization. The key is the organization's own
//! (`setAiApiKey`), else the server's `ANTHROPIC_API_KEY`; without either, the deterministic
//! brief is stored instead.
//!
//! Errors (`{"type":"error","error":{"type","message"}}`): 401/403 → the key was refused
//! (`UPSTREAM_ERROR`, saying whose key); 429 → `RATE_LIMITED` with Anthropic's `retry-after`;
//! 400 and other 4xx → `UPSTREAM_ERROR` naming the status and Anthropic's message; 5xx and 529
//! (overloaded) → `UPSTREAM_ERROR`, try again later; no answer within [`TIMEOUT`] →
//! `UPSTREAM_ERROR`. A failed call stores nothing and gives its budget slot back.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use domain::briefs::{self, NewBrief, fallback_reason, source};
use domain::{Actor, Error};
use entity::account_briefs;
use reqwest::StatusCode;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::Runtime;

pub const DEFAULT_API_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5-20250929";
pub const DEFAULT_BRIEFS_PER_MONTH: u64 = 100;
/// The API version every request names.
pub const API_VERSION: &str = "2023-06-01";
/// The longest answer asked for.
pub const MAX_TOKENS: u32 = 2048;
/// One request's bound.
pub const TIMEOUT: Duration = Duration::from_secs(60);

const SYSTEM: &str = "You write short, factual account briefs for a B2B sales team from the data you are given. You never state anything the data does not support, and you answer only with the JSON object asked for.";

/// Whose key a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// The organization's own (`setAiApiKey`).
    Organization,
    /// The server's `ANTHROPIC_API_KEY`.
    Server,
}

/// The key a call for `organization_id` uses, if any.
pub async fn key_for(
    rt: &Runtime,
    db: &DatabaseConnection,
    organization_id: Uuid,
) -> domain::Result<Option<(String, KeyOwner)>> {
    if let Some(k) = briefs::organization_key(db, rt.cipher(), organization_id).await? {
        return Ok(Some((k, KeyOwner::Organization)));
    }
    Ok(rt
        .settings()
        .anthropic_api_key
        .as_ref()
        .map(|k| (k.expose_secret().to_owned(), KeyOwner::Server)))
}

/// A Messages API answer (the fields read).
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    usage: Usage,
}

#[derive(Debug, Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: i64,
    #[serde(default)]
    output_tokens: i64,
}

/// What the model said and what it cost.
#[derive(Debug)]
pub struct Answer {
    pub text: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

fn error_detail(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let kind = v["error"]["type"].as_str().unwrap_or("error");
    let message = v["error"]["message"].as_str().unwrap_or("").trim();
    let message: String = message.chars().take(300).collect();
    if message.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {message}")
    }
}

/// Sends one Messages API request.
pub async fn ask(rt: &Runtime, key: &str, owner: KeyOwner, prompt: &str) -> domain::Result<Answer> {
    let s = rt.settings();
    let url = format!("{}/v1/messages", s.anthropic_api_url.trim_end_matches('/'));
    let body = json!({
        "model": s.anthropic_model,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": prompt}],
    });
    let resp = rt
        .client()
        .post(&url)
        .timeout(TIMEOUT)
        .header("x-api-key", key)
        .header("anthropic-version", API_VERSION)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Anthropic request failed");
            Error::Upstream(if e.is_timeout() {
                format!(
                    "Anthropic did not answer within {} s; try again",
                    TIMEOUT.as_secs()
                )
            } else {
                "Anthropic could not be reached; try again".to_owned()
            })
        })?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let text = resp.text().await.map_err(|e| {
        tracing::warn!(error = %e, "reading Anthropic's answer failed");
        Error::Upstream("Anthropic's answer could not be read; try again".into())
    })?;
    if !status.is_success() {
        let detail = error_detail(&text);
        let code = status.as_u16();
        tracing::warn!(status = code, "Anthropic refused a brief request");
        return Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Upstream(match owner {
                KeyOwner::Organization => format!(
                    "Anthropic refused the organization's API key ({code} {detail}); set a valid one with setAiApiKey"
                ),
                KeyOwner::Server => format!(
                    "Anthropic refused the server's ANTHROPIC_API_KEY ({code} {detail}); ask the operator, or set the organization's own key with setAiApiKey"
                ),
            }),
            StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
                retry_after_secs: retry_after.unwrap_or(60),
            },
            s if s.is_client_error() => {
                Error::Upstream(format!("Anthropic rejected the request ({code} {detail})"))
            }
            _ => Error::Upstream(format!(
                "Anthropic is unavailable ({code} {detail}); try again shortly"
            )),
        });
    }
    let message: Message = serde_json::from_str(&text).map_err(|e| {
        tracing::warn!(error = %e, "Anthropic's answer is not a message");
        Error::Upstream("Anthropic's answer was not a message; try again".into())
    })?;
    let text = message
        .content
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Answer {
        text,
        input_tokens: message.usage.input_tokens.max(0),
        output_tokens: message.usage.output_tokens.max(0),
    })
}

/// What `generate_brief` returned.
#[derive(Debug)]
pub struct Generated {
    pub brief: account_briefs::Model,
    /// True when the stored brief still matched the account's inputs and nothing was asked.
    pub cached: bool,
}

/// The account's brief: the stored one when its inputs have not changed (unless `force`),
/// else a new one — from the model when a key is configured (taking one brief of the month's
/// budget: `PLAN_LIMIT` when it is used up), else the deterministic one, marked FALLBACK.
pub async fn generate_brief(
    rt: &Runtime,
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: Uuid,
    force: bool,
) -> domain::Result<Generated> {
    briefs::require_generate(actor)?;
    let now = Utc::now();
    let ctx = briefs::load_context(db, actor, account_id, now).await?;
    let key = key_for(rt, db, actor.organization_id).await?;
    let model = rt.settings().anthropic_model.clone();
    let writer = match &key {
        Some(_) => format!("model:{model}"),
        None => "fallback".to_owned(),
    };
    let input_hash = ctx.hash(&writer);
    if !force
        && let Some(stored) = briefs::latest_one(db, actor, account_id).await?
        && stored.input_hash == input_hash
    {
        return Ok(Generated {
            brief: stored,
            cached: true,
        });
    }
    let Some((key, owner)) = key else {
        let brief = NewBrief {
            account_id,
            input_hash,
            source: source::FALLBACK,
            fallback_reason: Some(fallback_reason::NO_KEY),
            model: None,
            draft: briefs::fallback::build(&ctx),
            input_tokens: 0,
            output_tokens: 0,
        };
        let stored = briefs::save(db, actor, brief, now).await?;
        return Ok(Generated {
            brief: stored,
            cached: false,
        });
    };
    let month = briefs::month_of(now);
    briefs::reserve(
        db,
        actor.organization_id,
        &month,
        rt.settings().ai_briefs_per_month,
        now,
    )
    .await?;
    // From here on the work runs in its own task: a request that gives up (the GraphQL
    // deadline, a client hanging up) does not leave the budget slot taken without a brief —
    // the call finishes and is stored (or its slot given back) regardless.
    let call = Call {
        rt: rt.clone(),
        db: db.clone(),
        actor: actor.clone(),
        account_id,
        input_hash,
        key,
        owner,
        model,
        month,
        now,
    };
    let stored = tokio::spawn(call.run(ctx))
        .await
        .map_err(|e| Error::Internal(format!("the brief's task failed: {e}")))??;
    Ok(Generated {
        brief: stored,
        cached: false,
    })
}

/// A model call for one brief, after its budget slot was taken.
struct Call {
    rt: Runtime,
    db: DatabaseConnection,
    actor: Actor,
    account_id: Uuid,
    input_hash: String,
    key: String,
    owner: KeyOwner,
    model: String,
    month: String,
    now: chrono::DateTime<Utc>,
}

impl Call {
    async fn run(self, ctx: briefs::BriefContext) -> domain::Result<account_briefs::Model> {
        let org = self.actor.organization_id;
        let answer = match ask(&self.rt, &self.key, self.owner, &ctx.prompt()).await {
            Ok(a) => a,
            Err(e) => {
                if let Err(release) = briefs::release(&self.db, org, &self.month).await {
                    tracing::error!(error = ?release, "giving back a brief's budget slot failed");
                }
                return Err(e);
            }
        };
        let people: HashSet<Uuid> = ctx.contacts.iter().map(|c| c.id).collect();
        let checked = briefs::check_answer(&answer.text, &ctx.ids(), &people);
        let (source, reason, draft) = match checked {
            Some(d) if !d.statements.is_empty() => (source::MODEL, None, d),
            Some(d) => {
                let mut fallback = briefs::fallback::build(&ctx);
                fallback.dropped = d.dropped;
                (
                    source::FALLBACK,
                    Some(fallback_reason::NOTHING_CHECKED),
                    fallback,
                )
            }
            None => (
                source::FALLBACK,
                Some(fallback_reason::UNREADABLE),
                briefs::fallback::build(&ctx),
            ),
        };
        let txn = domain::db::begin(&self.db).await?;
        briefs::record_tokens(
            &txn,
            org,
            &self.month,
            answer.input_tokens,
            answer.output_tokens,
            self.now,
        )
        .await?;
        let brief = NewBrief {
            account_id: self.account_id,
            input_hash: self.input_hash,
            source,
            fallback_reason: reason,
            model: Some(&self.model),
            draft,
            input_tokens: answer.input_tokens,
            output_tokens: answer.output_tokens,
        };
        let stored = briefs::save(&txn, &self.actor, brief, self.now).await?;
        txn.commit().await?;
        Ok(stored)
    }
}
