//! Where a rule's alerts go besides the app: `channels` (in-app, email to its recipients) and its
//! Slack incoming webhook, whose URL passes the webhook endpoints' target checks and is stored
//! sealed, never shown again (only its host).

use serde::{Deserialize, Serialize};

use crate::secrets::Cipher;
use crate::webhooks::Settings;
use crate::{Error, Result};

/// The channels a rule uses (the Slack post is there when a Slack URL is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channels {
    /// A notification in the app for each recipient.
    #[serde(default = "yes")]
    pub in_app: bool,
    /// An email to each recipient (who has not turned alert emails off).
    #[serde(default)]
    pub email: bool,
}

fn yes() -> bool {
    true
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            in_app: true,
            email: false,
        }
    }
}

impl Channels {
    /// A stored rule's channels (absent: in-app only).
    pub fn of(stored: Option<&serde_json::Value>) -> Channels {
        stored
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

/// What an update does with the rule's Slack URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SlackChange {
    /// Leaves it as it is (and a new rule without one).
    #[default]
    Keep,
    /// Removes it.
    Remove,
    /// Sets it (checked like a webhook endpoint's URL).
    Set(String),
}

/// Where sealing and checking happen: the webhook target rules and the secrets cipher.
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    pub targets: &'a Settings,
    pub cipher: &'a Cipher,
}

/// The field a Slack URL's problems are reported on.
pub const SLACK_FIELD: &str = "input.channels.slackWebhookUrl";

/// The sealed URL to store: `None` to keep the current one, `Some(None)` to remove it.
pub(super) async fn seal_slack(
    out: &Outbound<'_>,
    change: &SlackChange,
) -> Result<Option<Option<String>>> {
    match change {
        SlackChange::Keep => Ok(None),
        SlackChange::Remove => Ok(Some(None)),
        SlackChange::Set(raw) => {
            let raw = raw.trim();
            if raw.len() > 2000 {
                return Err(Error::invalid(
                    SLACK_FIELD,
                    "must be at most 2000 characters",
                ));
            }
            let url = crate::webhooks::check_url(out.targets, SLACK_FIELD, raw).await?;
            Ok(Some(Some(out.cipher.seal(url.as_str())?)))
        }
    }
}

/// What a Slack URL is shown as: its host.
pub fn slack_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "slack".into())
}
