//! Twitter/X: tweets matching the configured keywords, read with the v2 recent search
//! (`GET /tweets/search/recent`, `Authorization: Bearer <token>`) and the query
//! `(k1 OR "k 2") -is:retweet`. Each tweet becomes one signal keyed `twitter:<tweetId>`:
//! `twitter_question` (the text has a `?`), else `twitter_complaint` (broken, bug, hate, …),
//! else `twitter_praise` (love, awesome, thanks, …), else `twitter_mention`.
//!
//! Paging: one resource (`search`) whose cursor holds the query it was made for, the newest
//! tweet id of the last complete walk (`sinceId`) and, while a walk is under way, the
//! continuation (`nextToken`) and the newest id seen so far (`pendingNewest`). A run asks with
//! `since_id` and follows `meta.next_token` to the end; the cursor is stored after each page, so
//! a stopped run resumes from the page it stopped at, and `sinceId` moves (ids compared as
//! numbers) only when the walk completes. A changed keyword list starts afresh (the last 7 days,
//! all recent search holds).
//!
//! People and companies: the author expansion gives the person (Twitter/X handle and name); the
//! profile's URL (its `expanded_url`, not the t.co link) or else a domain in the bio gives the
//! account's domain — never a hosting or publishing domain or free mail.
//!
//! Rate limits: `x-rate-limit-remaining` / `x-rate-limit-reset` (epoch seconds) and 429 are
//! honoured by [`crate::http`] and [`SyncContext::get`].

use std::collections::HashMap;

use domain::FieldError;
use domain::signals::{AccountHints, ActorHints, Input};
use serde_json::{Value, json};

use crate::github::blog_domain;
use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};

pub struct Twitter;

/// Tweets per page asked for (the recent search's maximum).
pub const PER_PAGE: usize = 100;
/// The most keywords a configuration may name.
pub const MAX_KEYWORDS: usize = 25;
/// The longest keyword.
pub const MAX_KEYWORD_CHARS: usize = 100;
/// The longest query the recent search takes (standard access).
pub const MAX_QUERY_CHARS: usize = 512;
/// The cursor's resource.
const RESOURCE: &str = "search";

const TWEET_FIELDS: &str = "created_at,author_id,public_metrics,lang,conversation_id";
const USER_FIELDS: &str = "username,name,description,url,entities";

/// Words and phrases of a complaint.
const COMPLAINT: &[&str] = &[
    "broken",
    "bug",
    "bugs",
    "buggy",
    "hate",
    "hates",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "crash",
    "crashes",
    "crashing",
    "sucks",
    "useless",
    "frustrating",
    "annoying",
    "disappointed",
    "disappointing",
    "doesn't work",
    "doesnt work",
    "does not work",
    "not working",
    "stopped working",
];

/// Words and phrases of praise.
const PRAISE: &[&str] = &[
    "love",
    "loving",
    "loves",
    "awesome",
    "great",
    "amazing",
    "thanks",
    "thank you",
    "excellent",
    "fantastic",
    "brilliant",
    "incredible",
    "impressive",
    "kudos",
    "wonderful",
    "beautiful",
    "best",
    "well done",
    "game changer",
];

/// The idempotency key of a tweet.
pub fn key(tweet_id: &str) -> String {
    format!("twitter:{tweet_id}")
}

/// Whether `text` (lower case) says one of `words`: a single word as a whole word, a phrase
/// anywhere.
fn says(text: &str, words: &[&str]) -> bool {
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|t| !t.is_empty())
        .collect();
    words.iter().any(|w| {
        if w.contains(' ') || w.contains('\'') {
            text.contains(w)
        } else {
            tokens.contains(w)
        }
    })
}

/// The class of a tweet: question first, then complaint, then praise, else a mention.
pub fn classify(text: &str) -> &'static str {
    let t = text.to_lowercase().replace('’', "'");
    if t.contains('?') {
        "twitter_question"
    } else if says(&t, COMPLAINT) {
        "twitter_complaint"
    } else if says(&t, PRAISE) {
        "twitter_praise"
    } else {
        "twitter_mention"
    }
}

/// The search query: the keywords OR-ed (a keyword with spaces or symbols quoted), retweets
/// left out.
pub fn query(keywords: &[String]) -> String {
    let terms: Vec<String> = keywords
        .iter()
        .map(|k| {
            let k = k.replace('"', "");
            if k.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '#' | '@' | '$'))
            {
                k
            } else {
                format!("\"{k}\"")
            }
        })
        .collect();
    format!("({}) -is:retweet", terms.join(" OR "))
}

/// File extensions that look like domains in a bio (`Node.js`), never a company.
const NOT_TLDS: &[&str] = &[
    "js", "ts", "jsx", "tsx", "md", "txt", "json", "yaml", "yml", "toml", "lock", "exe", "png",
    "jpg", "gif", "pdf", "html", "css", "rb", "php", "c", "h", "cpp",
];

/// The first domain-looking token of a bio (`Building acme.io`, `CTO @ https://acme.dev/`).
pub fn domain_in(text: &str) -> Option<String> {
    text.split_whitespace().find_map(|tok| {
        let tok = tok
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let bare = tok
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = bare.split(['/', '?', '#']).next().unwrap_or("");
        let tld = host.rsplit('.').next().unwrap_or("");
        let looks = host.contains('.')
            && tld.len() >= 2
            && tld.chars().all(|c| c.is_ascii_alphabetic())
            && !NOT_TLDS.contains(&tld)
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        if !looks {
            return None;
        }
        company_domain(host)
    })
}

/// A URL's domain when it can be a company's (not t.co, hosting or free mail).
fn company_domain(url: &str) -> Option<String> {
    blog_domain(url).filter(|d| d != "t.co")
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// The person and company a user object (from `includes.users`) names.
pub fn person(user: &Value) -> (ActorHints, Option<AccountHints>) {
    let actor = ActorHints {
        twitter: str_of(user, &["username"]).map(str::to_owned),
        name: str_of(user, &["name"]).map(|n| n.chars().take(200).collect()),
        ..Default::default()
    };
    let expanded = |path: &[&str]| -> Vec<String> {
        let mut cur = user;
        for p in path {
            match cur.get(*p) {
                Some(v) => cur = v,
                None => return Vec::new(),
            }
        }
        cur.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| str_of(u, &["expanded_url"]).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let domain = expanded(&["entities", "url", "urls"])
        .iter()
        .chain(expanded(&["entities", "description", "urls"]).iter())
        .find_map(|u| company_domain(u))
        .or_else(|| {
            str_of(user, &["url"])
                .filter(|u| !u.contains("://t.co/"))
                .and_then(company_domain)
        })
        .or_else(|| str_of(user, &["description"]).and_then(domain_in));
    let account = domain.map(|d| AccountHints {
        domain: Some(d),
        ..Default::default()
    });
    (actor, account)
}

/// The signal of one tweet, with its author from the expansions (when present).
pub fn tweet_signal(
    tweet: &Value,
    users: &HashMap<String, Value>,
    keywords: &[String],
) -> Option<Input> {
    let id = str_of(tweet, &["id"])?;
    let text = str_of(tweet, &["text"]).unwrap_or("");
    let author = str_of(tweet, &["author_id"]).and_then(|a| users.get(a));
    let (actor, account) = match author {
        Some(u) => {
            let (a, c) = person(u);
            (Some(a), c)
        }
        None => (None, None),
    };
    let lower = text.to_lowercase();
    let matched: Vec<&String> = keywords
        .iter()
        .filter(|k| lower.contains(&k.to_lowercase()))
        .collect();
    let username = author.and_then(|u| str_of(u, &["username"])).unwrap_or("i");
    Some(Input {
        signal_type: classify(text).into(),
        idempotency_key: Some(key(id)),
        timestamp: str_of(tweet, &["created_at"]).map(str::to_owned),
        metadata: Some(json!({
            "tweetId": id,
            "text": text.chars().take(500).collect::<String>(),
            "url": format!("https://x.com/{username}/status/{id}"),
            "lang": str_of(tweet, &["lang"]),
            "keywords": matched,
            "publicMetrics": tweet.get("public_metrics"),
        })),
        actor,
        account,
        ..Default::default()
    })
}

fn validate(config: &Value, credentials: Option<&Value>) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Value::Object(cfg) = config else {
        return Err(vec![FieldError::new("config", "must be an object")]);
    };
    let mut keywords: Vec<String> = Vec::new();
    match cfg.get("keywords") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, k) in list.iter().enumerate() {
                match k.as_str().map(|s| s.trim().replace('"', "")) {
                    Some(k) if !k.is_empty() && k.chars().count() <= MAX_KEYWORD_CHARS => {
                        if !keywords.iter().any(|x| x.eq_ignore_ascii_case(&k)) {
                            keywords.push(k);
                        }
                    }
                    _ => errors.push(FieldError::new(
                        format!("config.keywords.{i}"),
                        format!("must be a keyword of 1 to {MAX_KEYWORD_CHARS} characters"),
                    )),
                }
            }
            if list.len() > MAX_KEYWORDS {
                errors.push(FieldError::new(
                    "config.keywords",
                    format!("at most {MAX_KEYWORDS} keywords"),
                ));
            } else if errors.is_empty() && query(&keywords).chars().count() > MAX_QUERY_CHARS {
                errors.push(FieldError::new(
                    "config.keywords",
                    format!("together the keywords make a search longer than {MAX_QUERY_CHARS} characters"),
                ));
            }
        }
        _ => errors.push(FieldError::new(
            "config.keywords",
            format!("must list 1 to {MAX_KEYWORDS} keywords"),
        )),
    }
    for k in cfg.keys() {
        if k != "keywords" {
            errors.push(FieldError::new(
                format!("config.{k}"),
                "is not a Twitter/X setting (keywords)",
            ));
        }
    }
    match credentials
        .filter(|c| !c.is_null())
        .and_then(|c| c.get("bearerToken"))
    {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        _ => errors.push(FieldError::new(
            "credentials.bearerToken",
            "must be the Twitter/X API bearer token",
        )),
    }
    if errors.is_empty() {
        Ok(json!({ "keywords": keywords }))
    } else {
        Err(errors)
    }
}

/// A tweet id as a number (ids are compared numerically, not as text).
fn num(id: &str) -> Option<u64> {
    id.parse().ok()
}

fn max_id(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if num(&b) > num(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[async_trait::async_trait]
impl crate::Connector for Twitter {
    fn kind(&self) -> &'static str {
        "TWITTER"
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
            .get("bearerToken")
            .filter(|t| !t.trim().is_empty())
            .cloned()
            .ok_or_else(|| {
                Stop::Credentials(
                    "no Twitter/X bearer token is stored; add credentials.bearerToken".into(),
                )
            })?;
        let keywords: Vec<String> = cx
            .integration
            .config
            .get("keywords")
            .and_then(|k| k.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if keywords.is_empty() {
            return Err(Stop::Invalid("config.keywords is empty".into()));
        }
        let q = query(&keywords);
        let api = cx.rt.settings().twitter_api_url.trim_end_matches('/');
        let state = match cx.cursor(RESOURCE).await? {
            Some(c) if c.state.get("query").and_then(|v| v.as_str()) == Some(q.as_str()) => c.state,
            _ => Value::Null,
        };
        let text = |k: &str| {
            state
                .get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        // A full run walks again from the start of what the search holds; it keeps a walk
        // under way only when it is itself that walk's continuation.
        let mut since = if cx.full { None } else { text("sinceId") };
        let mut restarted = false;
        let (mut next, mut pending) = if cx.full {
            (None, None)
        } else {
            (text("nextToken"), text("pendingNewest"))
        };
        loop {
            let mut url = url::Url::parse(&format!("{api}/tweets/search/recent"))
                .map_err(|e| Stop::Internal(format!("TWITTER_API_URL: {e}")))?;
            {
                let mut qp = url.query_pairs_mut();
                qp.append_pair("query", &q)
                    .append_pair("max_results", &PER_PAGE.to_string())
                    .append_pair("expansions", "author_id")
                    .append_pair("tweet.fields", TWEET_FIELDS)
                    .append_pair("user.fields", USER_FIELDS);
                if let Some(s) = &since {
                    qp.append_pair("since_id", s);
                }
                if let Some(n) = &next {
                    qp.append_pair("next_token", n);
                }
            }
            let req =
                Request::get(String::from(url)).header("authorization", format!("Bearer {token}"));
            let page = match cx.get(req).await {
                // A `since_id` older than the search's seven days, or a `next_token` that
                // expired while the integration waited, is refused: the walk starts again over
                // what the search holds (the keys keep it free of duplicates).
                Err(Stop::Invalid(m))
                    if !restarted
                        && (since.is_some() || next.is_some())
                        && ["since_id", "next_token", "pagination_token"]
                            .iter()
                            .any(|p| m.contains(p)) =>
                {
                    tracing::info!(error = %m, "Twitter/X refused the cursor; the walk starts again");
                    restarted = true;
                    since = None;
                    next = None;
                    continue;
                }
                Err(e) => return Err(e),
                Ok(Fetched::Ok(p)) => p,
                Ok(_) => {
                    return Err(Stop::Invalid(
                        "the Twitter/X recent search was not found".into(),
                    ));
                }
            };
            let body: Value = page.json("Twitter/X recent search")?;
            let tweets = body
                .get("data")
                .and_then(|d| d.as_array())
                .cloned()
                .unwrap_or_default();
            let users: HashMap<String, Value> = body
                .get("includes")
                .and_then(|i| i.get("users"))
                .and_then(|u| u.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|u| str_of(u, &["id"]).map(|id| (id.to_owned(), u.clone())))
                        .collect()
                })
                .unwrap_or_default();
            let newest = tweets
                .iter()
                .filter_map(|t| str_of(t, &["id"]))
                .filter(|id| num(id).is_some())
                .max_by_key(|id| num(id))
                .map(str::to_owned);
            pending = max_id(pending, newest);
            let inputs: Vec<Input> = tweets
                .iter()
                .filter_map(|t| tweet_signal(t, &users, &keywords))
                .collect();
            if !inputs.is_empty() {
                cx.ingest(inputs).await?;
            }
            next = body
                .get("meta")
                .and_then(|m| str_of(m, &["next_token"]))
                .map(str::to_owned);
            match &next {
                Some(n) => {
                    cx.save_cursor(
                        RESOURCE,
                        json!({"query": q, "sinceId": since, "nextToken": n, "pendingNewest": pending}),
                        None,
                        None,
                    )
                    .await?;
                }
                None => {
                    // The walk is complete: what it read is the new floor. A full run never
                    // moves it back.
                    let kept = if cx.full {
                        text("sinceId")
                    } else {
                        since.clone()
                    };
                    cx.save_cursor(
                        RESOURCE,
                        json!({"query": q, "sinceId": max_id(kept, pending)}),
                        None,
                        None,
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tweets_are_classified_question_first() {
        assert_eq!(classify("Does acme support SSO?"), "twitter_question");
        assert_eq!(classify("acme is broken again?"), "twitter_question");
        assert_eq!(
            classify("acme doesn’t work with node 22"),
            "twitter_complaint"
        );
        assert_eq!(
            classify("found a bug in acme, I love it anyway"),
            "twitter_complaint"
        );
        assert_eq!(classify("I love acme, thanks team"), "twitter_praise");
        assert_eq!(classify("Thank you @acme"), "twitter_praise");
        assert_eq!(classify("debugging with acme today"), "twitter_mention");
        assert_eq!(classify("trying acme"), "twitter_mention");
    }

    #[test]
    fn the_query_quotes_phrases_and_leaves_out_retweets() {
        assert_eq!(
            query(&["acme".into(), "acme cloud".into(), "#acmedev".into()]),
            "(acme OR \"acme cloud\" OR #acmedev) -is:retweet"
        );
    }

    #[test]
    fn companies_come_from_expanded_urls_or_the_bio() {
        let (a, c) = person(&json!({
            "id": "1", "username": "ada", "name": "Ada L", "url": "https://t.co/abc",
            "entities": {"url": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://www.initech.com/team"}]}},
        }));
        assert_eq!(a.twitter.as_deref(), Some("ada"));
        assert_eq!(a.name.as_deref(), Some("Ada L"));
        assert_eq!(c.unwrap().domain.as_deref(), Some("initech.com"));
        let (_, c) = person(
            &json!({"id": "2", "username": "b", "description": "Node.js dev. Building umbrella.io, ex-gmail.com"}),
        );
        assert_eq!(c.unwrap().domain.as_deref(), Some("umbrella.io"));
        let (_, c) = person(&json!({"id": "3", "username": "c", "url": "https://t.co/x",
            "entities": {"url": {"urls": [{"expanded_url": "https://someone.github.io"}]}},
            "description": "writing on medium.com"}));
        assert!(c.is_none());
        assert_eq!(
            max_id(Some("999".into()), Some("1000".into())).as_deref(),
            Some("1000")
        );
    }

    #[test]
    fn configuration_is_checked_naming_fields() {
        let creds = json!({"bearerToken": "x"});
        assert_eq!(
            validate(
                &json!({"keywords": [" acme ", "Acme", "acme cloud"]}),
                Some(&creds)
            )
            .unwrap(),
            json!({"keywords": ["acme", "acme cloud"]})
        );
        let fields = |c: Value, cr: Option<&Value>| -> Vec<String> {
            validate(&c, cr)
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            fields(json!({"keywords": []}), Some(&creds)),
            ["config.keywords"]
        );
        assert_eq!(
            fields(
                json!({"keywords": ["ok", " ", "x".repeat(101)]}),
                Some(&creds)
            ),
            ["config.keywords.1", "config.keywords.2"]
        );
        let many: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
        assert_eq!(
            fields(json!({"keywords": many}), Some(&creds)),
            ["config.keywords"]
        );
        assert_eq!(
            fields(json!({"keywords": ["a"]}), None),
            ["credentials.bearerToken"]
        );
    }
}
