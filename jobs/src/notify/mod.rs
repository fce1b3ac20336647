//! Sends what alerts and digests decided to send: each `alert_deliveries` row (an email to a
//! member, or a post to a Slack incoming webhook) by its own `deliver-notification` job. A
//! failed attempt is recorded on the row and the job retries with backoff; the row is `FAILED`
//! once the job's attempts are used up. Slack posts go through the webhook sender's client, so
//! the same target rules hold at connect time (no internal addresses unless allowed).

pub mod digest;
pub mod mail;
pub mod render;

use std::time::Duration;

use domain::alerts::{self, Unsubscribe};
use entity::{alert_deliveries, jobs};
use uuid::Uuid;

pub use mail::{Email, Mailer};

use crate::webhook_delivery::Sender;

/// How much of a Slack error body is kept.
const ERROR_BODY: usize = 300;

/// Everything sending needs (cheap to clone).
#[derive(Clone)]
pub struct Notifier {
    pub mailer: Mailer,
    /// The webhook sender: its guarded HTTP client and the secrets cipher.
    pub sender: Sender,
    /// The dashboard's address, for links (`FRONTEND_URL`).
    pub frontend_url: String,
    /// The server's own address, for unsubscribe links (`API_URL`).
    pub api_url: String,
}

impl Notifier {
    /// The one-click unsubscribe URL for `user` in `org`.
    pub fn unsubscribe_url(&self, org: Uuid, user: Uuid, what: Unsubscribe) -> String {
        let token = alerts::unsubscribe_token(self.sender.cipher(), org, user, what);
        format!(
            "{}/api/v1/notifications/unsubscribe?token={token}",
            self.api_url.trim_end_matches('/')
        )
    }

    async fn send(&self, d: &alert_deliveries::Model) -> Result<(), String> {
        match d.channel.as_str() {
            "EMAIL" => {
                let user = d.user_id.ok_or("an email delivery without a member")?;
                let email = if d.kind == "DIGEST" {
                    let url = self.unsubscribe_url(d.organization_id, user, Unsubscribe::Digest);
                    digest::digest_email(&d.content, &d.target, &self.frontend_url, &url)?
                } else {
                    let url = self.unsubscribe_url(d.organization_id, user, Unsubscribe::Alerts);
                    render::alert_email(&d.content, &d.target, &self.frontend_url, &url)
                };
                self.mailer
                    .send_email(email)
                    .await
                    .map_err(|e| e.to_string())
            }
            "SLACK" => {
                let sealed = d.sealed_url.as_deref().ok_or("no Slack URL is stored")?;
                let url = self
                    .sender
                    .cipher()
                    .open(sealed)
                    .map_err(|e| e.to_string())?;
                let body = render::alert_slack(&d.content, &self.frontend_url);
                let resp = self
                    .sender
                    .client()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| format!("posting to Slack: {e}"))?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = resp.text().await.unwrap_or_default();
                Err(format!(
                    "Slack answered {status}: {}",
                    text.chars().take(ERROR_BODY).collect::<String>()
                ))
            }
            other => Err(format!("unknown channel {other}")),
        }
    }
}

/// The `deliver-notification` job: one attempt at one delivery.
pub async fn deliver(ctx: crate::Context, job: jobs::Model) -> anyhow::Result<()> {
    let id: Uuid = job
        .payload
        .get("deliveryId")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("deliver-notification needs a deliveryId"))?;
    let Some(d) = alerts::pending_delivery(&ctx.db, id).await? else {
        tracing::info!(deliveryId = %id, "Nothing to do: the delivery is no longer pending");
        return Ok(());
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), ctx.notifier.send(&d))
        .await
        .unwrap_or_else(|_| Err("timed out after 60 s".into()));
    let last = job.attempts >= job.max_attempts;
    alerts::record_delivery_attempt(
        &ctx.db,
        id,
        outcome.as_ref().err().map(String::as_str),
        last,
    )
    .await?;
    match outcome {
        Ok(()) => {
            tracing::info!(deliveryId = %id, channel = %d.channel, kind = %d.kind, "Notification sent");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(deliveryId = %id, channel = %d.channel, error = %e, last, "Notification not sent");
            anyhow::bail!(e)
        }
    }
}
