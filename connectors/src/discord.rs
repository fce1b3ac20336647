//! Discord: the messages and threads of a server's (guild's) channels, read with a bot token
//! (`Authorization: Bot <token>`). Every message becomes a signal keyed `discord:<messageId>`; a
//! thread's creation is keyed `discord:thread:<threadId>` whether it is seen as the parent
//! channel's THREAD_CREATED system message (type 18) or in the guild's active threads, so it
//! makes one signal.
//!
//! Which channels: `config.channels` (channel ids), or every text, announcement and forum
//! channel of `config.guildId` when none are named. Threads: the guild's active threads whose
//! parent is a monitored channel (forum posts are threads); each is read like a channel.
//!
//! Paging: each channel and thread is a resource whose cursor is the newest message id read
//! (a snowflake). A run asks `GET /channels/{id}/messages?limit=100&after=<cursor>`; Discord
//! answers the (at most 100) messages right after the cursor, newest first, so the next page's
//! `after` is the page's largest id, and a page of fewer than 100 is the end. The cursor is
//! stored after every page, so a stopped run resumes there. With no cursor (or a full run) the
//! read starts 7 days ago: the snowflake of a time is `(ms − 1420070400000) << 22`.
//!
//! Classes: `discord_thread_created` (type 18, or a thread's creation), `discord_question_asked`
//! (a message in a channel — or a thread of a channel — whose name starts with help, support,
//! questions, troubleshoot or ask-), else `discord_message`. Bots, webhooks and system messages
//! other than type 18 are skipped. The person is the author's Discord id (`DISCORD` identity)
//! with their display name.
//!
//! Rate limits: Discord's per-route buckets (`X-RateLimit-Remaining`, `X-RateLimit-Reset-After`)
//! and 429 `retry_after` (global or not) are honoured by [`crate::http`] and
//! [`SyncContext::get`]: a wait within `max_inline_wait` is sat out, a longer one stops the run
//! until it lifts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use domain::FieldError;
use domain::signals::identifiers::kind;
use domain::signals::{ActorHints, Input};
use serde_json::{Map, Value, json};

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};

pub struct Discord;

/// Messages per page asked for (Discord's maximum).
pub const PER_PAGE: usize = 100;
/// How far back a first (or full) read goes.
pub const FIRST_DAYS: i64 = 7;
/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const EPOCH_MS: i64 = 1_420_070_400_000;
/// Channel types read: text, announcement, forum (whose posts are threads).
pub const CHANNEL_TYPES: &[u64] = &[0, 5, 15];
/// Channel types that hold no messages of their own (forum, media): only their threads.
const THREAD_ONLY_TYPES: &[u64] = &[15, 16];
/// Message types that are a person's message: default and reply.
const MESSAGE_TYPES: &[u64] = &[0, 19];
/// THREAD_CREATED.
pub const THREAD_CREATED: u64 = 18;
/// Names of channels where people ask for help.
const QUESTION_PREFIXES: &[&str] = &["help", "support", "questions", "troubleshoot", "ask-"];

/// The snowflake of a time (the smallest id of a message sent then).
pub fn snowflake_at(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis() - EPOCH_MS).unwrap_or(0) << 22
}

/// The time a snowflake was made.
pub fn time_of(id: u64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt((id >> 22) as i64 + EPOCH_MS)
        .single()
        .unwrap_or_default()
}

/// A snowflake as a configuration names it: a string of 15 to 20 digits.
pub fn is_snowflake(s: &str) -> bool {
    (15..=20).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_digit())
        && s.parse::<u64>().is_ok()
}

/// Whether a channel's name says people ask for help there (`help`, `❓support-forum`, `ask-us`).
pub fn is_question_channel(name: &str) -> bool {
    let n = name.to_lowercase();
    let n = n.trim_start_matches(|c: char| !c.is_alphanumeric());
    QUESTION_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// The idempotency keys.
pub mod key {
    pub fn message(id: &str) -> String {
        format!("discord:{id}")
    }
    pub fn thread(id: &str) -> String {
        format!("discord:thread:{id}")
    }
}

/// An id in a response (a string of digits, or a number).
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.parse::<u64>().is_ok() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A channel or thread being read.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub name: String,
    /// For a thread: its parent channel (id, name).
    pub parent: Option<(String, String)>,
    /// Named explicitly in the configuration (a refusal to read it is an error, not a skip).
    pub explicit: bool,
}

impl Channel {
    fn question(&self) -> bool {
        is_question_channel(self.parent.as_ref().map_or(&self.name, |(_, n)| n))
    }
    fn resource(&self) -> String {
        match self.parent {
            Some(_) => format!("thread:{}", self.id),
            None => format!("channel:{}", self.id),
        }
    }
    fn metadata(&self, guild: &str, message: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("guildId".into(), json!(guild));
        match &self.parent {
            Some((pid, pname)) => {
                m.insert("channelId".into(), json!(pid));
                m.insert("channelName".into(), json!(pname));
                m.insert("threadId".into(), json!(self.id));
                m.insert("threadName".into(), json!(self.name));
            }
            None => {
                m.insert("channelId".into(), json!(self.id));
                m.insert("channelName".into(), json!(self.name));
            }
        }
        if let Some(id) = message {
            m.insert("messageId".into(), json!(id));
            m.insert(
                "url".into(),
                json!(format!(
                    "https://discord.com/channels/{guild}/{}/{id}",
                    self.id
                )),
            );
        }
        m
    }
}

/// The person behind a Discord user object (`id`, `username`, `global_name`).
pub fn person(user: &Value) -> Option<ActorHints> {
    let id = user.get("id").and_then(id_of)?;
    Some(ActorHints {
        name: str_of(user, "global_name")
            .or_else(|| str_of(user, "username"))
            .map(|n| n.chars().take(200).collect()),
        source_ids: vec![(kind::DISCORD, id)],
        ..Default::default()
    })
}

/// The signal a message stands for, if any: none for bots, webhooks and system messages other
/// than THREAD_CREATED.
pub fn message_signal(guild: &str, ch: &Channel, m: &Value) -> Option<Input> {
    let id = m.get("id").and_then(id_of)?;
    let author = m.get("author")?;
    if author.get("bot").and_then(|b| b.as_bool()) == Some(true)
        || author.get("system").and_then(|b| b.as_bool()) == Some(true)
        || m.get("webhook_id").is_some_and(|w| !w.is_null())
    {
        return None;
    }
    let ty = m.get("type").and_then(|t| t.as_u64()).unwrap_or(0);
    let mut meta = ch.metadata(guild, Some(&id));
    let (signal_type, key) = if ty == THREAD_CREATED {
        // The system message names the new thread in its reference (and by its content).
        let thread = m
            .get("message_reference")
            .and_then(|r| r.get("channel_id"))
            .and_then(id_of)
            .or_else(|| m.get("thread").and_then(|t| t.get("id")).and_then(id_of));
        if let Some(t) = &thread {
            meta.insert("threadId".into(), json!(t));
        }
        if let Some(name) = str_of(m, "content") {
            meta.insert("threadName".into(), json!(name));
        }
        (
            "discord_thread_created",
            thread.map_or_else(|| key::message(&id), |t| key::thread(&t)),
        )
    } else if MESSAGE_TYPES.contains(&ty) {
        if let Some(text) = m.get("content").and_then(|c| c.as_str()) {
            meta.insert(
                "content".into(),
                json!(text.chars().take(500).collect::<String>()),
            );
        }
        let t = if ch.question() {
            "discord_question_asked"
        } else {
            "discord_message"
        };
        (t, key::message(&id))
    } else {
        return None;
    };
    Some(Input {
        signal_type: signal_type.into(),
        idempotency_key: Some(key),
        timestamp: str_of(m, "timestamp").map(str::to_owned),
        metadata: Some(Value::Object(meta)),
        actor: Some(person(author)?),
        ..Default::default()
    })
}

/// The `discord_thread_created` signal of a thread from the guild's thread list.
pub fn thread_signal(guild: &str, th: &Channel, thread: &Value) -> Option<Input> {
    let owner = thread.get("owner_id").and_then(id_of)?;
    let at = thread
        .get("thread_metadata")
        .and_then(|m| str_of(m, "create_timestamp"))
        .map(str::to_owned)
        .or_else(|| th.id.parse::<u64>().ok().map(|id| time_of(id).to_rfc3339()));
    Some(Input {
        signal_type: "discord_thread_created".into(),
        idempotency_key: Some(key::thread(&th.id)),
        timestamp: at,
        metadata: Some(Value::Object(th.metadata(guild, None))),
        actor: Some(ActorHints {
            source_ids: vec![(kind::DISCORD, owner)],
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn validate(config: &Value, credentials: Option<&Value>) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Value::Object(cfg) = config else {
        return Err(vec![FieldError::new("config", "must be an object")]);
    };
    let guild = match cfg.get("guildId").and_then(id_of_text) {
        Some(g) => g,
        None => {
            errors.push(FieldError::new(
                "config.guildId",
                "must be the Discord server (guild) id, a snowflake",
            ));
            String::new()
        }
    };
    let mut channels: Vec<String> = Vec::new();
    match cfg.get("channels") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                match id_of_text(c) {
                    Some(c) => {
                        if !channels.contains(&c) {
                            channels.push(c);
                        }
                    }
                    None => errors.push(FieldError::new(
                        format!("config.channels.{i}"),
                        "must be a channel id, a snowflake",
                    )),
                }
            }
            if list.len() > 500 {
                errors.push(FieldError::new("config.channels", "at most 500 channels"));
            }
        }
        Some(_) => errors.push(FieldError::new(
            "config.channels",
            "must be a list of channel ids (empty: every text channel)",
        )),
    }
    for k in cfg.keys() {
        if k != "guildId" && k != "channels" {
            errors.push(FieldError::new(
                format!("config.{k}"),
                "is not a Discord setting (guildId, channels)",
            ));
        }
    }
    match credentials
        .filter(|c| !c.is_null())
        .and_then(|c| c.get("botToken"))
    {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        _ => errors.push(FieldError::new(
            "credentials.botToken",
            "must be the Discord bot's token",
        )),
    }
    if errors.is_empty() {
        Ok(json!({ "guildId": guild, "channels": channels }))
    } else {
        Err(errors)
    }
}

/// A snowflake given as a string (trimmed) or a number.
fn id_of_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| is_snowflake(s)),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

struct Run<'a> {
    cx: &'a SyncContext,
    api: String,
    token: String,
    guild: String,
    /// Where a first (or full) read starts.
    floor: u64,
}

impl Run<'_> {
    fn request(&self, url: String) -> Request {
        Request::get(url).header("authorization", format!("Bot {}", self.token))
    }

    async fn channels(&self) -> Result<Vec<Value>, Stop> {
        let url = format!("{}/guilds/{}/channels", self.api, self.guild);
        match self.cx.get(self.request(url)).await? {
            Fetched::Ok(page) => page.json("Discord guild channels"),
            _ => Err(Stop::Invalid(format!(
                "the Discord server {} was not found, or the bot is not a member of it",
                self.guild
            ))),
        }
    }

    async fn active_threads(&self) -> Result<Vec<Value>, Stop> {
        let url = format!("{}/guilds/{}/threads/active", self.api, self.guild);
        match self.cx.get(self.request(url)).await? {
            Fetched::Ok(page) => {
                let v: Value = page.json("Discord active threads")?;
                Ok(v.get("threads")
                    .and_then(|t| t.as_array())
                    .cloned()
                    .unwrap_or_default())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Reads a channel's (or thread's) messages after its cursor, every page, storing the
    /// cursor after each.
    async fn read(&self, ch: &Channel) -> Result<(), Stop> {
        let resource = ch.resource();
        let mut after = match self.cx.cursor(&resource).await? {
            Some(c) if !self.cx.full => c
                .state
                .get("after")
                .and_then(id_of_text)
                .and_then(|a| a.parse::<u64>().ok())
                .unwrap_or(self.floor),
            _ => self.floor,
        };
        loop {
            let url = format!(
                "{}/channels/{}/messages?limit={PER_PAGE}&after={after}",
                self.api, ch.id
            );
            let page = match self.cx.get(self.request(url)).await {
                Ok(Fetched::Ok(page)) => page,
                // Deleted meanwhile.
                Ok(_) => return Ok(()),
                // A channel the bot may not read: skipped when it was picked as "every text
                // channel", an error when the configuration names it.
                Err(Stop::Forbidden(_)) => {
                    if ch.explicit {
                        return Err(Stop::Invalid(format!(
                            "the bot may not read the Discord channel #{} ({}): give it View Channel and Read Message History",
                            ch.name, ch.id
                        )));
                    }
                    tracing::info!(channel = %ch.id, "Discord channel skipped: the bot may not read it");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let messages: Vec<Value> = page.json("Discord channel messages")?;
            let n = messages.len();
            let newest = messages
                .iter()
                .filter_map(|m| m.get("id").and_then(id_of))
                .filter_map(|id| id.parse::<u64>().ok())
                .max();
            let inputs: Vec<Input> = messages
                .iter()
                .filter_map(|m| message_signal(&self.guild, ch, m))
                .collect();
            if !inputs.is_empty() {
                self.cx.ingest(inputs).await?;
            }
            match newest {
                Some(newest) if newest > after => {
                    after = newest;
                    self.cx
                        .save_cursor(&resource, json!({ "after": after.to_string() }), None, None)
                        .await?;
                }
                _ => return Ok(()),
            }
            if n < PER_PAGE {
                return Ok(());
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::Connector for Discord {
    fn kind(&self) -> &'static str {
        "DISCORD"
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        validate(config, credentials)
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let token = cx
            .credentials
            .get("botToken")
            .filter(|t| !t.trim().is_empty())
            .cloned()
            .ok_or_else(|| {
                Stop::Credentials("no Discord bot token is stored; add credentials.botToken".into())
            })?;
        let guild = cx
            .integration
            .config
            .get("guildId")
            .and_then(id_of_text)
            .ok_or_else(|| Stop::Invalid("config.guildId is missing".into()))?;
        let configured: Vec<String> = cx
            .integration
            .config
            .get("channels")
            .and_then(|c| c.as_array())
            .map(|a| a.iter().filter_map(id_of_text).collect())
            .unwrap_or_default();
        let run = Run {
            cx,
            api: cx
                .rt
                .settings()
                .discord_api_url
                .trim_end_matches('/')
                .to_owned(),
            token,
            guild: guild.clone(),
            floor: snowflake_at(Utc::now() - chrono::Duration::days(FIRST_DAYS)),
        };
        let all = run.channels().await?;
        let mut names: HashMap<String, (String, u64)> = HashMap::new();
        for c in &all {
            if let Some(id) = c.get("id").and_then(id_of) {
                let name = str_of(c, "name").unwrap_or("").to_owned();
                let ty = c.get("type").and_then(|t| t.as_u64()).unwrap_or(0);
                names.insert(id, (name, ty));
            }
        }
        // Monitored channels, in the guild's order (or the configuration's).
        let monitored: Vec<(Channel, u64)> = if configured.is_empty() {
            all.iter()
                .filter_map(|c| c.get("id").and_then(id_of))
                .filter_map(|id| {
                    let (name, ty) = names.get(&id)?.clone();
                    CHANNEL_TYPES.contains(&ty).then_some((
                        Channel {
                            id,
                            name,
                            parent: None,
                            explicit: false,
                        },
                        ty,
                    ))
                })
                .collect()
        } else {
            let mut out = Vec::new();
            for id in &configured {
                match names.get(id) {
                    Some((name, ty)) => out.push((
                        Channel {
                            id: id.clone(),
                            name: name.clone(),
                            parent: None,
                            explicit: true,
                        },
                        *ty,
                    )),
                    None => {
                        tracing::info!(channel = %id, "configured Discord channel not in the server; skipped")
                    }
                }
            }
            if out.is_empty() {
                return Err(Stop::Invalid(format!(
                    "none of the configured channels is in the Discord server {guild}"
                )));
            }
            out
        };
        let parents: HashSet<&str> = monitored.iter().map(|(c, _)| c.id.as_str()).collect();
        let mut threads = Vec::new();
        let mut created = Vec::new();
        let since = Utc::now() - chrono::Duration::days(FIRST_DAYS);
        for t in run.active_threads().await? {
            let (Some(id), Some(parent)) = (
                t.get("id").and_then(id_of),
                t.get("parent_id").and_then(id_of),
            ) else {
                continue;
            };
            if !parents.contains(parent.as_str()) {
                continue;
            }
            let parent_name = names
                .get(&parent)
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            let th = Channel {
                id,
                name: str_of(&t, "name").unwrap_or("").to_owned(),
                parent: Some((parent, parent_name)),
                explicit: false,
            };
            if let Some(input) = thread_signal(&guild, &th, &t)
                && input
                    .timestamp
                    .as_deref()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .is_some_and(|at| at >= since)
            {
                created.push(input);
            }
            threads.push(th);
        }
        if !created.is_empty() {
            cx.ingest(created).await?;
        }
        for (ch, ty) in &monitored {
            if !THREAD_ONLY_TYPES.contains(ty) {
                run.read(ch).await?;
            }
        }
        for th in &threads {
            run.read(th).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_and_times_round_trip() {
        // Discord's documented example: 175928847299117063 was made at 2016-04-30 11:18:25.796.
        let t = time_of(175_928_847_299_117_063);
        assert_eq!(t.timestamp_millis(), 1_462_015_105_796);
        assert_eq!(snowflake_at(t) >> 22, 175_928_847_299_117_063 >> 22);
        assert!(snowflake_at(t) <= 175_928_847_299_117_063);
        assert_eq!(snowflake_at(Utc.timestamp_millis_opt(EPOCH_MS).unwrap()), 0);
        assert!(is_snowflake("175928847299117063"));
        assert!(!is_snowflake("12ab"));
        assert!(!is_snowflake("1"));
    }

    #[test]
    fn question_channels_are_found_by_name() {
        for n in [
            "help",
            "Help-Desk",
            "support",
            "questions",
            "troubleshooting",
            "ask-the-team",
            "❓help",
        ] {
            assert!(is_question_channel(n), "{n}");
        }
        for n in ["general", "showcase", "asking", "helpless-memes-no"] {
            // `helpless…` starts with help: the original's rule, kept.
            assert_eq!(is_question_channel(n), n.starts_with("help"), "{n}");
        }
    }

    fn ch(name: &str) -> Channel {
        Channel {
            id: "300000000000000001".into(),
            name: name.into(),
            parent: None,
            explicit: false,
        }
    }

    #[test]
    fn messages_are_classified_and_bots_skipped() {
        let user = json!({"id": "200000000000000001", "username": "ada", "global_name": "Ada L"});
        let m = |ty: u64, author: Value| {
            json!({"id": "400000000000000001", "type": ty, "author": author, "content": "hi?",
                   "timestamp": "2026-11-30T10:00:00+00:00",
                   "message_reference": {"channel_id": "500000000000000001"}})
        };
        let s = message_signal("1", &ch("general"), &m(0, user.clone())).unwrap();
        assert_eq!(s.signal_type, "discord_message");
        assert_eq!(
            s.idempotency_key.as_deref(),
            Some("discord:400000000000000001")
        );
        let a = s.actor.unwrap();
        assert_eq!(a.name.as_deref(), Some("Ada L"));
        assert_eq!(
            a.source_ids,
            vec![(kind::DISCORD, "200000000000000001".to_owned())]
        );
        let s = message_signal("1", &ch("help"), &m(19, user.clone())).unwrap();
        assert_eq!(s.signal_type, "discord_question_asked");
        let s = message_signal("1", &ch("general"), &m(18, user.clone())).unwrap();
        assert_eq!(s.signal_type, "discord_thread_created");
        assert_eq!(
            s.idempotency_key.as_deref(),
            Some("discord:thread:500000000000000001")
        );
        let bot = json!({"id": "200000000000000002", "username": "mee6", "bot": true});
        assert!(message_signal("1", &ch("general"), &m(0, bot)).is_none());
        // A member joining (type 7) is a system message.
        assert!(message_signal("1", &ch("general"), &m(7, user)).is_none());
    }

    #[test]
    fn configuration_is_checked_naming_fields() {
        let creds = json!({"botToken": "x"});
        let ok = validate(
            &json!({"guildId": "100000000000000001", "channels": [" 100000000000000002 "]}),
            Some(&creds),
        )
        .unwrap();
        assert_eq!(
            ok,
            json!({"guildId": "100000000000000001", "channels": ["100000000000000002"]})
        );
        let fields = |c: Value, cr: Option<&Value>| -> Vec<String> {
            validate(&c, cr)
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(json!({}), Some(&creds)), ["config.guildId"]);
        assert_eq!(
            fields(
                json!({"guildId": "100000000000000001", "channels": ["general"]}),
                Some(&creds)
            ),
            ["config.channels.0"]
        );
        assert_eq!(
            fields(json!({"guildId": "100000000000000001"}), None),
            ["credentials.botToken"]
        );
    }
}
