//! Reddit (the OAuth API, application-only): new posts and comments that mention the configured
//! keywords, each becoming a signal keyed by its fullname (`reddit:t3_<id>`, `reddit:t1_<id>`),
//! so a post found by the search and again in its subreddit makes one signal.
//!
//! Authentication: `POST REDDIT_AUTH_URL` with `grant_type=client_credentials` and HTTP Basic
//! `clientId:clientSecret` gives a bearer token, which is kept sealed in a cursor (`oauth`) with
//! its expiry and the credentials it belongs to, reused by later runs, fetched again once it has
//! expired (or the credentials changed), and once more when the API answers 401 with it. A 401
//! from the token endpoint is rejected credentials (ERROR until they change).
//!
//! Listings (newest first, 100 a page, `after` paging): the site-wide search
//! (`/search?q=k1 OR "k 2"&sort=new&type=link`), and per configured subreddit its new posts
//! (`/r/<sub>/new`) and new comments (`/r/<sub>/comments`). Every item is matched against the
//! keywords (whole words, case-insensitive; title and selftext of a post, body of a comment).
//! Each listing has a cursor (`search`, `new:<sub>`, `comments:<sub>`: the `since` of this walk,
//! the `after` to continue at, the newest `created_utc` seen). A walk stops at the first item
//! older than `since` or at the listing's end, and then moves `since` to the newest item seen;
//! the cursor is stored after each page, so a stopped run continues at the page it stopped on.
//! The first walk (and a full run) reaches 7 days back.
//!
//! Signals: a post is `reddit_question` when its title asks (a `?`, or it starts with how, why,
//! what, is there, can, does, has anyone), else `reddit_showcase` in a showcase subreddit
//! (showmyproject, sideproject, indiehackers, startups, imadethis, webdev_showcase,
//! buildinpublic), else `reddit_discussion`; a comment is `reddit_question` when its body asks,
//! else `reddit_discussion`. Authors `[deleted]` and `AutoModerator` are skipped. The person is
//! the author (the `REDDIT` identity, named by the username).
//!
//! Budget: `X-Ratelimit-Remaining` (a float) and `X-Ratelimit-Reset` (seconds from now) are
//! read by the HTTP client: a spent budget is waited out when it lifts soon, else the run stops
//! as rate-limited until the reset.

use chrono::{DateTime, TimeZone, Utc};
use domain::FieldError;
use domain::signals::identifiers::kind;
use domain::signals::{ActorHints, Input};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};

pub struct Reddit;

/// Items per listing page (Reddit's maximum).
pub const LIMIT: usize = 100;
/// How far back the first walk of a listing reaches.
const FIRST_DAYS: i64 = 7;
/// The cursor holding the token.
const TOKEN_CURSOR: &str = "oauth";
const MAX_KEYWORDS: usize = 20;
const MAX_SUBREDDITS: usize = 50;

/// Subreddits where people show what they built.
pub const SHOWCASE_SUBREDDITS: &[&str] = &[
    "showmyproject",
    "sideproject",
    "indiehackers",
    "startups",
    "imadethis",
    "webdev_showcase",
    "buildinpublic",
];

/// Authors whose items are skipped.
const SKIPPED_AUTHORS: &[&str] = &["[deleted]", "automoderator"];

/// The idempotency key of a post or comment by its fullname (`t3_…`, `t1_…`).
pub fn key(fullname: &str) -> String {
    format!("reddit:{fullname}")
}

/// Whether `text` asks something: a `?`, or it starts with a question word.
pub fn asks(text: &str) -> bool {
    if text.contains('?') {
        return true;
    }
    let t = text.trim_start().to_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .take(2)
        .collect();
    match words.as_slice() {
        [first, ..] if ["how", "why", "what", "can", "does"].contains(first) => true,
        ["is", "there", ..] | ["has", "anyone", ..] => true,
        _ => false,
    }
}

/// The signal type of a post.
pub fn post_type(subreddit: &str, title: &str) -> &'static str {
    if asks(title) {
        "reddit_question"
    } else if SHOWCASE_SUBREDDITS.contains(&subreddit.to_lowercase().as_str()) {
        "reddit_showcase"
    } else {
        "reddit_discussion"
    }
}

/// The signal type of a comment.
pub fn comment_type(body: &str) -> &'static str {
    if asks(body) {
        "reddit_question"
    } else {
        "reddit_discussion"
    }
}

/// The first keyword `text` mentions as a whole word (case-insensitive).
pub fn mentions<'k>(text: &str, keywords: &'k [String]) -> Option<&'k str> {
    let hay = text.to_lowercase();
    keywords.iter().map(String::as_str).find(|k| {
        let k = k.to_lowercase();
        if k.is_empty() {
            return false;
        }
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        hay.match_indices(&k).any(|(i, _)| {
            !word(hay[..i].chars().next_back()) && !word(hay[i + k.len()..].chars().next())
        })
    })
}

/// The search query: the keywords OR-ed, phrases quoted.
pub fn query(keywords: &[String]) -> String {
    keywords
        .iter()
        .map(|k| {
            if k.contains(char::is_whitespace) {
                format!("\"{k}\"")
            } else {
                k.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn valid_subreddit(s: &str) -> bool {
    (2..=21).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty())
}

/// Which listing a walk reads.
#[derive(Clone, Copy, PartialEq)]
enum Listing {
    Search,
    New,
    Comments,
}

/// A token and until when it is used.
#[derive(Clone)]
struct Token {
    value: String,
    until: DateTime<Utc>,
}

struct Run<'a> {
    cx: &'a SyncContext,
    api: String,
    client_id: String,
    client_secret: String,
    keywords: Vec<String>,
    token: Mutex<Option<Token>>,
}

impl Run<'_> {
    /// Which credentials a stored token belongs to (never the secret itself).
    fn fingerprint(&self) -> String {
        let d = Sha256::digest(format!("{}:{}", self.client_id, self.client_secret));
        hex::encode(&d[..12])
    }

    /// A usable token: this run's, the stored one, or a new one from the token endpoint.
    async fn token(&self) -> Result<String, Stop> {
        let mut held = self.token.lock().await;
        let now = Utc::now();
        if let Some(t) = held.as_ref().filter(|t| t.until > now) {
            return Ok(t.value.clone());
        }
        if held.is_none()
            && let Some(c) = self.cx.cursor(TOKEN_CURSOR).await?
            && s(&c.state, "client") == Some(self.fingerprint().as_str())
            && let Some(until) = s(&c.state, "until")
                .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
                .map(|u| u.with_timezone(&Utc))
                .filter(|u| *u > now)
            && let Some(value) = s(&c.state, "token").and_then(|t| self.cx.rt.cipher().open(t).ok())
        {
            *held = Some(Token {
                value: value.clone(),
                until,
            });
            return Ok(value);
        }
        let req = Request::post_form(
            self.cx.rt.settings().reddit_auth_url.clone(),
            vec![("grant_type".into(), "client_credentials".into())],
        )
        .basic_auth(&self.client_id, &self.client_secret);
        let page = match self.cx.get(req).await? {
            Fetched::Ok(p) => p,
            _ => {
                return Err(Stop::Invalid(
                    "the Reddit token endpoint answered nothing usable".into(),
                ));
            }
        };
        let body: Value = page.json("a Reddit token")?;
        let Some(value) = s(&body, "access_token").map(str::to_owned) else {
            return Err(Stop::Credentials(format!(
                "Reddit refused the client credentials ({}); update them to resume",
                s(&body, "error").unwrap_or("no access_token")
            )));
        };
        let expires_in = body
            .get("expires_in")
            .and_then(|e| e.as_i64())
            .unwrap_or(3600)
            .max(1);
        // A little before the stated expiry, so a token never lapses mid-request.
        let until = Utc::now() + chrono::Duration::seconds(expires_in - (expires_in / 10).min(60));
        let sealed = self.cx.rt.cipher().seal(&value)?;
        self.cx
            .save_cursor(
                TOKEN_CURSOR,
                json!({"token": sealed, "until": until.to_rfc3339(), "client": self.fingerprint()}),
                None,
                None,
            )
            .await?;
        *held = Some(Token {
            value: value.clone(),
            until,
        });
        Ok(value)
    }

    /// A GET of the API with the bearer token; a 401 fetches a new token and tries once more.
    async fn get(&self, url: &str, what: &str) -> Result<Option<Value>, Stop> {
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let req = Request::get(url).header("authorization", format!("bearer {token}"));
            match self.cx.get(req).await {
                Ok(Fetched::Ok(page)) => return page.json(what).map(Some),
                Ok(Fetched::NotModified) => return Ok(None),
                Ok(Fetched::Missing) => return Err(Stop::Invalid(format!("{what} was not found"))),
                Err(Stop::Forbidden(_)) => {
                    return Err(Stop::Invalid(format!(
                        "{what} is private, quarantined or banned: Reddit does not let the app read it; remove it from config.subreddits"
                    )));
                }
                Err(Stop::Credentials(_)) if !renewed => {
                    renewed = true;
                    *self.token.lock().await = Some(Token {
                        value: String::new(),
                        until: Utc::now() - chrono::Duration::seconds(1),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn walk(&self, listing: Listing, sub: Option<&str>) -> Result<(), Stop> {
        let (resource, base, what) = match (listing, sub) {
            (Listing::Search, _) => {
                let q: String =
                    url::form_urlencoded::byte_serialize(query(&self.keywords).as_bytes())
                        .collect();
                (
                    "search".to_owned(),
                    format!(
                        "{}/search?q={q}&sort=new&type=link&limit={LIMIT}&raw_json=1",
                        self.api
                    ),
                    "the Reddit search".to_owned(),
                )
            }
            (Listing::New, Some(sub)) => (
                format!("new:{sub}"),
                format!("{}/r/{sub}/new?limit={LIMIT}&raw_json=1", self.api),
                format!("r/{sub}"),
            ),
            (Listing::Comments, Some(sub)) => (
                format!("comments:{sub}"),
                format!("{}/r/{sub}/comments?limit={LIMIT}&raw_json=1", self.api),
                format!("r/{sub}"),
            ),
            _ => return Ok(()),
        };
        let start = (Utc::now() - chrono::Duration::days(FIRST_DAYS)).timestamp() as f64;
        let state = match self.cx.cursor(&resource).await? {
            Some(c) if !self.cx.full => c.state,
            _ => Value::Null,
        };
        let f = |k: &str| state.get(k).and_then(|v| v.as_f64());
        let since = f("since").unwrap_or(start);
        let mut newest = f("newest").unwrap_or(since).max(since);
        let mut after = s(&state, "after").map(str::to_owned);
        loop {
            let url = match &after {
                Some(a) => format!("{base}&after={a}"),
                None => base.clone(),
            };
            let Some(body) = self.get(&url, &what).await? else {
                return Ok(());
            };
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            let children = data
                .get("children")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default();
            let mut reached_since = false;
            let mut inputs = Vec::new();
            for child in &children {
                let item = child.get("data").unwrap_or(&Value::Null);
                let created = item
                    .get("created_utc")
                    .and_then(|c| c.as_f64())
                    .unwrap_or(0.0);
                if created < since {
                    reached_since = true;
                    continue;
                }
                newest = newest.max(created);
                if let Some(i) = self.signal(s(child, "kind").unwrap_or(""), item, created) {
                    inputs.push(i);
                }
            }
            if !inputs.is_empty() {
                self.cx.ingest(inputs).await?;
            }
            let next = s(&data, "after").map(str::to_owned);
            match next {
                Some(n) if !reached_since && !children.is_empty() => {
                    self.cx
                        .save_cursor(
                            &resource,
                            json!({"since": since, "after": n, "newest": newest}),
                            None,
                            None,
                        )
                        .await?;
                    after = Some(n);
                }
                _ => {
                    self.cx
                        .save_cursor(
                            &resource,
                            json!({"since": newest, "after": null, "newest": newest}),
                            None,
                            None,
                        )
                        .await?;
                    return Ok(());
                }
            }
        }
    }

    /// The signal a listing item stands for, when it mentions a keyword and has a real author.
    fn signal(&self, kind_of: &str, item: &Value, created: f64) -> Option<Input> {
        let author = s(item, "author")?;
        if SKIPPED_AUTHORS.contains(&author.to_lowercase().as_str()) {
            return None;
        }
        let name = s(item, "name")
            .map(str::to_owned)
            .or_else(|| s(item, "id").map(|id| format!("{kind_of}_{id}")))?;
        let subreddit = s(item, "subreddit").unwrap_or("");
        let permalink = s(item, "permalink").map(|p| format!("https://www.reddit.com{p}"));
        let (signal_type, keyword, meta) = match kind_of {
            "t3" => {
                let title = s(item, "title").unwrap_or("");
                let text = format!("{title}\n{}", s(item, "selftext").unwrap_or(""));
                let keyword = mentions(&text, &self.keywords)?;
                (
                    post_type(subreddit, title),
                    keyword,
                    json!({
                        "fullname": name,
                        "subreddit": subreddit,
                        "title": title,
                        "url": permalink,
                        "link": s(item, "url"),
                        "score": item.get("score").and_then(|v| v.as_i64()),
                        "numComments": item.get("num_comments").and_then(|v| v.as_i64()),
                    }),
                )
            }
            "t1" => {
                let body = s(item, "body").unwrap_or("");
                let keyword = mentions(body, &self.keywords)?;
                (
                    comment_type(body),
                    keyword,
                    json!({
                        "fullname": name,
                        "subreddit": subreddit,
                        "title": s(item, "link_title"),
                        "post": s(item, "link_id"),
                        "url": permalink,
                        "excerpt": body.chars().take(500).collect::<String>(),
                        "score": item.get("score").and_then(|v| v.as_i64()),
                    }),
                )
            }
            _ => return None,
        };
        let mut meta = meta;
        meta["keyword"] = json!(keyword);
        let at = Utc
            .timestamp_millis_opt((created * 1000.0) as i64)
            .single()
            .map(|t| t.to_rfc3339());
        Some(Input {
            signal_type: signal_type.into(),
            idempotency_key: Some(key(&name)),
            timestamp: at,
            metadata: Some(meta),
            actor: Some(ActorHints {
                name: Some(author.to_owned()),
                source_ids: vec![(kind::REDDIT, author.to_owned())],
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl crate::Connector for Reddit {
    fn kind(&self) -> &'static str {
        "REDDIT"
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
        let mut keywords: Vec<String> = Vec::new();
        match cfg.get("keywords") {
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, k) in list.iter().enumerate() {
                    let k = k
                        .as_str()
                        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
                    match k {
                        Some(k)
                            if !k.is_empty()
                                && k.chars().count() <= 100
                                && !k.contains('"')
                                && k.chars().any(char::is_alphanumeric) =>
                        {
                            if !keywords.iter().any(|x| x.eq_ignore_ascii_case(&k)) {
                                keywords.push(k);
                            }
                        }
                        _ => errors.push(FieldError::new(
                            format!("config.keywords.{i}"),
                            "must be a word or phrase (up to 100 characters, no quotes)",
                        )),
                    }
                }
                if list.len() > MAX_KEYWORDS {
                    errors.push(FieldError::new(
                        "config.keywords",
                        format!("at most {MAX_KEYWORDS} keywords"),
                    ));
                } else if query(&keywords).len() > 512 {
                    errors.push(FieldError::new(
                        "config.keywords",
                        "the keywords make a search longer than Reddit's 512 characters",
                    ));
                }
            }
            _ => errors.push(FieldError::new(
                "config.keywords",
                "must list at least one keyword",
            )),
        }
        let mut subreddits: Vec<String> = Vec::new();
        match cfg.get("subreddits") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (i, v) in list.iter().enumerate() {
                    let sub = v.as_str().map(|s| {
                        let s = s.trim().trim_start_matches('/');
                        let s = s
                            .strip_prefix("r/")
                            .or_else(|| s.strip_prefix("R/"))
                            .unwrap_or(s);
                        s.trim_end_matches('/').to_lowercase()
                    });
                    match sub {
                        Some(sub) if valid_subreddit(&sub) => {
                            if !subreddits.contains(&sub) {
                                subreddits.push(sub);
                            }
                        }
                        _ => errors.push(FieldError::new(
                            format!("config.subreddits.{i}"),
                            "must be a subreddit name (r/name)",
                        )),
                    }
                }
                if list.len() > MAX_SUBREDDITS {
                    errors.push(FieldError::new(
                        "config.subreddits",
                        format!("at most {MAX_SUBREDDITS} subreddits"),
                    ));
                }
            }
            Some(_) => errors.push(FieldError::new(
                "config.subreddits",
                "must be a list of subreddits",
            )),
        }
        for k in cfg.keys() {
            if k != "keywords" && k != "subreddits" {
                errors.push(FieldError::new(
                    format!("config.{k}"),
                    "is not a Reddit setting (keywords, subreddits)",
                ));
            }
        }
        let creds = credentials.filter(|c| !c.is_null());
        for (field, what) in [
            ("clientId", "the Reddit app's client id"),
            ("clientSecret", "the Reddit app's secret"),
        ] {
            match creds.and_then(|c| c.get(field)) {
                Some(Value::String(v)) if !v.trim().is_empty() => {}
                _ => errors.push(FieldError::new(
                    format!("credentials.{field}"),
                    format!("must be {what} (a script or web app at reddit.com/prefs/apps)"),
                )),
            }
        }
        if errors.is_empty() {
            let mut out = Map::new();
            out.insert("keywords".into(), json!(keywords));
            out.insert("subreddits".into(), json!(subreddits));
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let cred = |k: &str| cx.credentials.get(k).map(|v| v.trim().to_owned());
        let (Some(client_id), Some(client_secret)) = (cred("clientId"), cred("clientSecret"))
        else {
            return Err(Stop::Credentials(
                "Reddit needs credentials (clientId, clientSecret)".into(),
            ));
        };
        let run = Run {
            cx,
            api: cx
                .rt
                .settings()
                .reddit_api_url
                .trim_end_matches('/')
                .to_owned(),
            client_id,
            client_secret,
            keywords: strings(cx.integration.config.get("keywords")),
            token: Mutex::new(None),
        };
        if run.keywords.is_empty() {
            return Err(Stop::Invalid("no keywords are configured".into()));
        }
        run.walk(Listing::Search, None).await?;
        let subs = strings(cx.integration.config.get("subreddits"));
        for sub in &subs {
            run.walk(Listing::New, Some(sub)).await?;
            run.walk(Listing::Comments, Some(sub)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Connector;

    #[test]
    fn questions_showcases_and_discussions() {
        assert_eq!(
            post_type("rust", "Is there a crate for X"),
            "reddit_question"
        );
        assert_eq!(post_type("rust", "Tokio vs async-std?"), "reddit_question");
        assert_eq!(post_type("rust", "How I built it"), "reddit_question");
        assert_eq!(post_type("SideProject", "I made a CRM"), "reddit_showcase");
        assert_eq!(
            post_type("rust", "Whatever happened to it"),
            "reddit_discussion"
        );
        assert_eq!(post_type("rust", "Cannot wait"), "reddit_discussion");
        assert_eq!(comment_type("has anyone tried it"), "reddit_question");
        assert_eq!(comment_type("great work"), "reddit_discussion");
    }

    #[test]
    fn keywords_match_whole_words_in_any_case() {
        let k = vec!["DevSignal".to_owned(), "signal crm".to_owned()];
        assert_eq!(mentions("I love devsignal!", &k), Some("DevSignal"));
        assert_eq!(mentions("a Signal CRM, finally", &k), Some("signal crm"));
        assert_eq!(mentions("mydevsignals", &k), None);
        assert_eq!(query(&k), "DevSignal OR \"signal crm\"");
    }

    #[test]
    fn config_is_normalised_and_credentials_required() {
        let c = Reddit;
        let creds = json!({"clientId": "id", "clientSecret": "secret"});
        assert_eq!(
            c.validate(
                &json!({"keywords": ["devsignal"], "subreddits": ["r/Rust", "/r/SideProject/", "rust"]}),
                Some(&creds)
            )
            .unwrap(),
            json!({"keywords": ["devsignal"], "subreddits": ["rust", "sideproject"]})
        );
        let fields = |r: Result<Value, Vec<FieldError>>| {
            r.unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(c.validate(&json!({"keywords": []}), Some(&creds))),
            ["config.keywords"]
        );
        assert_eq!(
            fields(c.validate(
                &json!({"keywords": ["ok"], "subreddits": ["ok", "no spaces"]}),
                Some(&creds)
            )),
            ["config.subreddits.1"]
        );
        assert_eq!(
            fields(c.validate(&json!({"keywords": ["ok"]}), None)),
            ["credentials.clientId", "credentials.clientSecret"]
        );
    }
}
