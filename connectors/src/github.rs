//! GitHub: stargazers (with `starred_at`), forks, and issues and pull requests of each
//! configured repository, read incrementally, plus the signed webhook's events. Every item
//! becomes a signal whose idempotency key names the object (`github:star:<repo>:<login>`, …), so a
//! webhook and a later sync of the same star, fork or issue make one signal.
//!
//! Paging: each list is a resource with a cursor (the URL of the first page not known to be
//! complete, and that page's ETag). A run starts at the cursor with `If-None-Match`; a 304 means
//! nothing new. A page is followed by `Link: rel="next"`, and a full page without one by the next
//! page number (new items land there), so the cursor always points at a page that is still
//! growing. Stargazers and forks are listed oldest first, issues and pull requests by `updated`
//! ascending, so new and changed items always appear at or after the cursor; once the issues
//! list has run past its first page, the cursor becomes `since` the latest update read.
//!
//! People and companies: each new login's profile (`/users/{login}`) is read once and cached in
//! a cursor (revalidated with its ETag after a day); the contact gets the GitHub identity, the
//! public email and the Twitter/X handle; the account comes from a company handle (`@acme` → the
//! GitHub organization `acme`), else a public organization membership (`/users/{login}/orgs`,
//! read only when the company names none), else the blog's domain — never a hosting or
//! publishing domain (github.io, medium.com, …) or free mail.

use std::collections::HashMap;

use chrono::Utc;
use domain::FieldError;
use domain::signals::identifiers;
use domain::signals::{AccountHints, ActorHints, Input};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use entity::integration_cursors;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::store;

pub struct GitHub;

/// Items per page asked for (GitHub's maximum).
pub const PER_PAGE: usize = 100;
/// How long a cached profile is used without revalidation.
const PROFILE_FRESH: chrono::Duration = chrono::Duration::hours(24);

/// Domains people host blogs and profiles on: never a company's domain.
pub const HOSTING_DOMAINS: &[&str] = &[
    "github.io",
    "github.com",
    "gitlab.io",
    "gitlab.com",
    "bitbucket.io",
    "medium.com",
    "dev.to",
    "hashnode.dev",
    "hashnode.com",
    "substack.com",
    "wordpress.com",
    "blogspot.com",
    "blogger.com",
    "tumblr.com",
    "ghost.io",
    "netlify.app",
    "netlify.com",
    "vercel.app",
    "herokuapp.com",
    "pages.dev",
    "workers.dev",
    "web.app",
    "firebaseapp.com",
    "notion.site",
    "notion.so",
    "gitbook.io",
    "readthedocs.io",
    "about.me",
    "linktr.ee",
    "bio.link",
    "carrd.co",
    "read.cv",
    "codepen.io",
    "replit.com",
    "glitch.me",
    "linkedin.com",
    "twitter.com",
    "x.com",
    "youtube.com",
    "facebook.com",
    "instagram.com",
    "sites.google.com",
    "keybase.io",
    "stackoverflow.com",
    "sourceforge.net",
    "wix.com",
    "wixsite.com",
    "squarespace.com",
    "webflow.io",
    "surge.sh",
    "fly.dev",
    "onrender.com",
    "railway.app",
];

/// Whether `domain` (normalised) is a hosting/publishing domain or one of its subdomains.
pub fn is_hosting(domain: &str) -> bool {
    HOSTING_DOMAINS
        .iter()
        .any(|h| domain == *h || domain.ends_with(&format!(".{h}")))
}

/// The company domain a blog URL speaks for, if any.
pub fn blog_domain(blog: &str) -> Option<String> {
    let d = identifiers::domain(blog)?;
    (!is_hosting(&d) && !identifiers::is_free_mail(&d)).then_some(d)
}

/// The GitHub organization a profile's `company` names with a handle (`@acme` → `acme`).
pub fn company_handle(company: &str) -> Option<String> {
    let at = company.find('@')?;
    let handle: String = company[at + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!handle.is_empty()).then(|| handle.to_lowercase())
}

/// The display name of the organization a profile's `company` names with a handle: the text
/// around the handle (`Acme Inc. (@acme-labs)` → `Acme Inc.`), else the handle as typed
/// (`@Acme` → `Acme`, where the organization is `acme`).
pub fn company_display_name(company: &str) -> Option<String> {
    let at = company.find('@')?;
    let handle: String = company[at + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if handle.is_empty() {
        return None;
    }
    let rest = format!("{}{}", &company[..at], &company[at + 1 + handle.len()..]);
    let rest = rest
        .replace("()", "")
        .trim_matches(|c: char| c.is_whitespace() || "()[],;|-".contains(c))
        .to_owned();
    Some(if rest.is_empty() { handle } else { rest })
}

fn valid_repo(r: &str) -> bool {
    let Some((owner, name)) = r.split_once('/') else {
        return false;
    };
    let ok_owner = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let ok_name = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok_owner && ok_name
}

/// A person as GitHub shows them, cached per login.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub login: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub twitter: Option<String>,
    pub company: Option<String>,
    pub blog: Option<String>,
    /// Public organization memberships (read when the company names none).
    #[serde(default)]
    pub orgs: Vec<String>,
    /// The profile could not be read (deleted user, ghost).
    #[serde(default)]
    pub bare: bool,
}

impl Person {
    pub fn bare(login: &str) -> Self {
        Person {
            login: login.to_lowercase(),
            bare: true,
            ..Default::default()
        }
    }

    fn from_profile(login: &str, p: &Value) -> Self {
        let s = |k: &str| {
            p.get(k)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Person {
            login: s("login")
                .unwrap_or_else(|| login.to_owned())
                .to_lowercase(),
            name: s("name"),
            email: s("email"),
            twitter: s("twitter_username"),
            company: s("company"),
            blog: s("blog"),
            orgs: Vec::new(),
            bare: false,
        }
    }

    /// The GitHub organization the person's account belongs to, if any.
    pub fn org(&self) -> Option<String> {
        self.company
            .as_deref()
            .and_then(company_handle)
            .or_else(|| self.orgs.first().map(|o| o.to_lowercase()))
    }

    /// The identity hints for ingest.
    pub fn hints(&self) -> (ActorHints, Option<AccountHints>) {
        let actor = ActorHints {
            github: Some(self.login.clone()),
            email: self.email.clone(),
            twitter: self.twitter.clone(),
            name: self.name.clone(),
            ..Default::default()
        };
        let org = self.org();
        let domain = self.blog.as_deref().and_then(blog_domain);
        // The account's display name when the profile tells it: the company text around an
        // `@org` handle (or the handle as typed), a plain company name with a real domain, or
        // the public organization as GitHub spells it — never a lower-cased login when better
        // is known.
        let name = match self.company.as_deref() {
            Some(c) if company_handle(c).is_some() => company_display_name(c),
            Some(c) if !c.contains('@') && domain.is_some() => Some(c.to_owned()),
            _ => None,
        }
        .or_else(|| {
            org.as_ref().and_then(|o| {
                self.orgs
                    .iter()
                    .find(|g| g.eq_ignore_ascii_case(o))
                    .cloned()
            })
        })
        .map(|c| c.chars().take(200).collect());
        let account = (org.is_some() || domain.is_some()).then_some(AccountHints {
            name,
            domain,
            github_org: org,
        });
        (actor, account)
    }
}

/// The idempotency keys: one per object, shared by the sync and the webhook.
pub mod key {
    pub fn star(repo: &str, login: &str) -> String {
        format!(
            "github:star:{}:{}",
            repo.to_lowercase(),
            login.to_lowercase()
        )
    }
    pub fn watch(repo: &str, login: &str) -> String {
        format!(
            "github:watch:{}:{}",
            repo.to_lowercase(),
            login.to_lowercase()
        )
    }
    pub fn fork(repo: &str, fork_id: &str) -> String {
        format!("github:fork:{}:{fork_id}", repo.to_lowercase())
    }
    /// `what` is `issue` or `pr`; `event` is `opened`, `closed` or `merged`.
    pub fn issue(repo: &str, what: &str, number: i64, event: &str) -> String {
        format!("github:{what}:{}:{number}:{event}", repo.to_lowercase())
    }
    pub fn comment(repo: &str, id: &str) -> String {
        format!("github:comment:{}:{id}", repo.to_lowercase())
    }
    pub fn release(repo: &str, id: &str) -> String {
        format!("github:release:{}:{id}", repo.to_lowercase())
    }
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// A signal about `person`.
pub fn signal(
    signal_type: &str,
    key: String,
    at: Option<&str>,
    person: &Person,
    metadata: Value,
) -> Input {
    let (actor, account) = person.hints();
    Input {
        signal_type: signal_type.into(),
        idempotency_key: Some(key),
        timestamp: at.map(str::to_owned),
        metadata: Some(metadata),
        actor: Some(actor),
        account,
        ..Default::default()
    }
}

/// The signals an issue (or pull request) of the issues list stands for: opened, and closed
/// or merged (a merged pull request is `pr_merged`, not also `pr_closed`).
pub fn issue_signals(repo: &str, item: &Value, person: &Person) -> Vec<Input> {
    let Some(number) = item.get("number").and_then(|n| n.as_i64()) else {
        return Vec::new();
    };
    let pr = item.get("pull_request").filter(|v| !v.is_null());
    let what = if pr.is_some() { "pr" } else { "issue" };
    let meta = json!({
        "repo": repo,
        "number": number,
        "title": str_of(item, &["title"]),
        "url": str_of(item, &["html_url"]),
    });
    let mut out = vec![signal(
        &format!("{what}_opened"),
        key::issue(repo, what, number, "opened"),
        str_of(item, &["created_at"]),
        person,
        meta.clone(),
    )];
    let merged_at = pr.and_then(|p| str_of(p, &["merged_at"]));
    if let Some(at) = merged_at {
        out.push(signal(
            "pr_merged",
            key::issue(repo, what, number, "merged"),
            Some(at),
            person,
            meta,
        ));
    } else if let Some(at) = str_of(item, &["closed_at"]) {
        out.push(signal(
            &format!("{what}_closed"),
            key::issue(repo, what, number, "closed"),
            Some(at),
            person,
            meta,
        ));
    }
    out
}

/// What a webhook delivery comes to.
#[derive(Debug)]
pub enum WebhookAction {
    Pong,
    Ignore(String),
    Ingest(Box<Input>),
}

/// Maps a webhook event to a signal (the delivery id is kept in the metadata).
pub fn webhook_action(event: &str, payload: &Value, delivery: Option<&str>) -> WebhookAction {
    if event == "ping" {
        return WebhookAction::Pong;
    }
    let Some(repo) = str_of(payload, &["repository", "full_name"]).map(str::to_lowercase) else {
        return WebhookAction::Ignore("no repository in the payload".into());
    };
    let action = str_of(payload, &["action"]).unwrap_or("");
    let sender = str_of(payload, &["sender", "login"]).unwrap_or("");
    let person = |login: &str| Person::bare(login);
    let meta = |extra: Value| {
        let mut m = Map::new();
        m.insert("repo".into(), json!(repo));
        if let Some(d) = delivery {
            m.insert("delivery".into(), json!(d));
        }
        if let Value::Object(e) = extra {
            m.extend(e);
        }
        Value::Object(m)
    };
    let ingest = |i: Input| WebhookAction::Ingest(Box::new(i));
    match (event, action) {
        ("star", "created") if !sender.is_empty() => ingest(signal(
            "repo_star",
            key::star(&repo, sender),
            str_of(payload, &["starred_at"]),
            &person(sender),
            meta(json!({"login": sender.to_lowercase()})),
        )),
        ("watch", "started") if !sender.is_empty() => ingest(signal(
            "repo_watch",
            key::watch(&repo, sender),
            None,
            &person(sender),
            meta(json!({"login": sender.to_lowercase()})),
        )),
        ("fork", _) => {
            let forkee = payload.get("forkee").cloned().unwrap_or(Value::Null);
            let owner = str_of(&forkee, &["owner", "login"]).unwrap_or(sender);
            match forkee.get("id").and_then(id_text) {
                Some(id) if !owner.is_empty() => ingest(signal(
                    "repo_fork",
                    key::fork(&repo, &id),
                    str_of(&forkee, &["created_at"]),
                    &person(owner),
                    meta(json!({"fork": str_of(&forkee, &["full_name"])})),
                )),
                _ => WebhookAction::Ignore("a fork without its forkee".into()),
            }
        }
        ("issues", "opened" | "closed") | ("pull_request", "opened" | "closed") => {
            let obj_key = if event == "issues" {
                "issue"
            } else {
                "pull_request"
            };
            let Some(obj) = payload.get(obj_key) else {
                return WebhookAction::Ignore(format!("no {obj_key} in the payload"));
            };
            let Some(number) = obj.get("number").and_then(|n| n.as_i64()) else {
                return WebhookAction::Ignore("no number".into());
            };
            let what = if event == "issues" { "issue" } else { "pr" };
            let m = meta(json!({
                "number": number,
                "title": str_of(obj, &["title"]),
                "url": str_of(obj, &["html_url"]),
            }));
            if action == "opened" {
                let author = str_of(obj, &["user", "login"]).unwrap_or(sender);
                ingest(signal(
                    &format!("{what}_opened"),
                    key::issue(&repo, what, number, "opened"),
                    str_of(obj, &["created_at"]),
                    &person(author),
                    m,
                ))
            } else if what == "pr" && obj.get("merged").and_then(|v| v.as_bool()) == Some(true) {
                ingest(signal(
                    "pr_merged",
                    key::issue(&repo, what, number, "merged"),
                    str_of(obj, &["merged_at"]),
                    &person(str_of(obj, &["user", "login"]).unwrap_or(sender)),
                    m,
                ))
            } else {
                ingest(signal(
                    &format!("{what}_closed"),
                    key::issue(&repo, what, number, "closed"),
                    str_of(obj, &["closed_at"]),
                    &person(str_of(obj, &["user", "login"]).unwrap_or(sender)),
                    m,
                ))
            }
        }
        ("issue_comment", "created") => match payload
            .get("comment")
            .and_then(|c| c.get("id"))
            .and_then(id_text)
        {
            Some(id) => {
                let c = &payload["comment"];
                let author = str_of(c, &["user", "login"]).unwrap_or(sender);
                ingest(signal(
                    "issue_comment",
                    key::comment(&repo, &id),
                    str_of(c, &["created_at"]),
                    &person(author),
                    meta(json!({
                        "number": payload.get("issue").and_then(|i| i.get("number")),
                        "url": str_of(c, &["html_url"]),
                    })),
                ))
            }
            None => WebhookAction::Ignore("a comment without an id".into()),
        },
        ("release", "published") => match payload
            .get("release")
            .and_then(|r| r.get("id"))
            .and_then(id_text)
        {
            Some(id) => {
                let r = &payload["release"];
                let author = str_of(r, &["author", "login"]).unwrap_or(sender);
                ingest(signal(
                    "release_published",
                    key::release(&repo, &id),
                    str_of(r, &["published_at"]),
                    &person(author),
                    meta(json!({"tag": str_of(r, &["tag_name"]), "url": str_of(r, &["html_url"])})),
                ))
            }
            None => WebhookAction::Ignore("a release without an id".into()),
        },
        _ => WebhookAction::Ignore(format!("{event} {action} is not tracked")),
    }
}

/// The base URL for an integration: `config.apiUrl`, else `GITHUB_API_URL`.
fn api_url(cx: &SyncContext) -> String {
    cx.integration
        .config
        .get("apiUrl")
        .and_then(|v| v.as_str())
        .unwrap_or(&cx.rt.settings().github_api_url)
        .trim_end_matches('/')
        .to_owned()
}

#[derive(Clone, Copy, Debug)]
enum List {
    Stars,
    Forks,
    Issues,
}

impl List {
    /// Where an item of the list names its person's login.
    fn login_path(self) -> &'static [&'static str] {
        match self {
            List::Stars | List::Issues => &["user", "login"],
            List::Forks => &["owner", "login"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            List::Stars => "stars",
            List::Forks => "forks",
            List::Issues => "issues",
        }
    }
    fn first_url(self, api: &str, repo: &str) -> String {
        match self {
            List::Stars => format!("{api}/repos/{repo}/stargazers?per_page={PER_PAGE}&page=1"),
            List::Forks => {
                format!("{api}/repos/{repo}/forks?sort=oldest&per_page={PER_PAGE}&page=1")
            }
            List::Issues => format!(
                "{api}/repos/{repo}/issues?state=all&sort=updated&direction=asc&per_page={PER_PAGE}&page=1"
            ),
        }
    }
    fn accept(self) -> &'static str {
        match self {
            List::Stars => "application/vnd.github.star+json",
            _ => "application/vnd.github+json",
        }
    }
}

/// The `page` parameter of a URL (1 when absent).
fn page_of(url: &str) -> u64 {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "page")
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or(1)
}

/// The URL of the page after `url` (its `page` parameter plus one).
fn bump_page(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    let page: u64 = u
        .query_pairs()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1);
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("page", &(page + 1).to_string());
    Some(u.into())
}

struct Run<'a> {
    cx: &'a SyncContext,
    api: String,
    token: Option<String>,
    people: Mutex<HashMap<String, Person>>,
    /// Cached profile cursors read ahead for a page (`None`: none stored).
    cached: Mutex<HashMap<String, Option<integration_cursors::Model>>>,
}

impl Run<'_> {
    fn request(&self, url: String, accept: &str) -> Request {
        let mut r = Request::get(url)
            .header("accept", accept)
            .header("x-github-api-version", "2022-11-28");
        if let Some(t) = &self.token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r
    }

    async fn walk(&self, repo: &str, list: List) -> Result<(), Stop> {
        let resource = format!("{}:{repo}", list.name());
        let first = list.first_url(&self.api, repo);
        let (mut url, mut etag) = match self.cx.cursor(&resource).await? {
            Some(c) if !self.cx.full => (
                c.state
                    .get("url")
                    .and_then(|u| u.as_str())
                    .filter(|u| u.starts_with(&self.api))
                    .map(str::to_owned)
                    .unwrap_or_else(|| first.clone()),
                c.etag,
            ),
            _ => (first.clone(), None),
        };
        let mut latest: Option<String> = None;
        loop {
            let req = self
                .request(url.clone(), list.accept())
                .validators(etag.clone(), None);
            let page = match self.cx.get(req).await? {
                Fetched::NotModified => return Ok(()),
                Fetched::Missing if page_of(&url) == 1 => {
                    return Err(Stop::Invalid(format!(
                        "the GitHub repository {repo} was not found, or the token cannot see it"
                    )));
                }
                Fetched::Missing => return Ok(()),
                Fetched::Ok(page) => page,
            };
            let items: Vec<Value> = page.json(&format!("GitHub {} of {repo}", list.name()))?;
            let n = items.len();
            if let Some(u) = items
                .iter()
                .filter_map(|i| str_of(i, &["updated_at"]))
                .max()
            {
                latest = latest.max(Some(u.to_owned()));
            }
            self.process(repo, list, items).await?;
            let next = page
                .next
                .clone()
                .or_else(|| if n >= PER_PAGE { bump_page(&url) } else { None });
            match next {
                Some(next) => {
                    self.cx
                        .save_cursor(&resource, json!({ "url": next }), None, None)
                        .await?;
                    url = next;
                    etag = None;
                }
                None => {
                    // Issues: once the list runs past its first page, the next run asks only
                    // for what changed `since` the latest update read (one unconditional
                    // request, then 304s again) instead of paging ever deeper.
                    if let (List::Issues, Some(since)) = (list, &latest)
                        && page_of(&url) > 1
                    {
                        let mut u = url::Url::parse(&first)
                            .map_err(|e| Stop::Internal(format!("issues URL: {e}")))?;
                        u.query_pairs_mut().append_pair("since", since);
                        self.cx
                            .save_cursor(
                                &resource,
                                json!({ "url": String::from(u), "since": since }),
                                None,
                                None,
                            )
                            .await?;
                        return Ok(());
                    }
                    self.cx
                        .save_cursor(&resource, json!({ "url": url }), page.etag, None)
                        .await?;
                    return Ok(());
                }
            }
        }
    }

    /// Reads the cached profiles of a page's logins in one statement.
    async fn prefetch(&self, list: List, items: &[Value]) -> Result<(), Stop> {
        let path = list.login_path();
        let mut resources = Vec::new();
        {
            let people = self.people.lock().await;
            let known = self.cached.lock().await;
            for item in items {
                if let Some(l) = str_of(item, path).map(str::to_lowercase)
                    && !people.contains_key(&l)
                    && !known.contains_key(&l)
                {
                    resources.push(format!("user:{l}"));
                }
            }
        }
        if resources.is_empty() {
            return Ok(());
        }
        let found = integration_cursors::Entity::find()
            .filter(integration_cursors::Column::IntegrationId.eq(self.cx.integration.id))
            .filter(integration_cursors::Column::Resource.is_in(resources.clone()))
            .all(&self.cx.db)
            .await?;
        let mut known = self.cached.lock().await;
        for r in resources {
            if let Some(login) = r.strip_prefix("user:") {
                known.insert(login.to_owned(), None);
            }
        }
        for c in found {
            if let Some(login) = c.resource.strip_prefix("user:") {
                known.insert(login.to_owned(), Some(c));
            }
        }
        Ok(())
    }

    async fn process(&self, repo: &str, list: List, items: Vec<Value>) -> Result<(), Stop> {
        // People erased from the organization (GDPR art. 17) are skipped before their profile
        // is read or cached: nothing about them is fetched or stored again.
        let path = list.login_path();
        let erased = domain::privacy::tombstones::erased_values(
            &self.cx.db,
            self.cx.integration.organization_id,
            domain::signals::identifiers::kind::GITHUB,
            items.iter().filter_map(|i| str_of(i, path)),
        )
        .await?;
        let items: Vec<Value> = items
            .into_iter()
            .filter(|i| str_of(i, path).is_none_or(|l| !erased.contains(&l.to_lowercase())))
            .collect();
        self.prefetch(list, &items).await?;
        let mut inputs = Vec::with_capacity(items.len());
        for item in &items {
            match list {
                List::Stars => {
                    let Some(login) = str_of(item, &["user", "login"]) else {
                        continue;
                    };
                    let p = self.person(login).await?;
                    inputs.push(signal(
                        "repo_star",
                        key::star(repo, login),
                        str_of(item, &["starred_at"]),
                        &p,
                        json!({"repo": repo, "login": p.login}),
                    ));
                }
                List::Forks => {
                    let (Some(login), Some(id)) = (
                        str_of(item, &["owner", "login"]),
                        item.get("id").and_then(id_text),
                    ) else {
                        continue;
                    };
                    let p = self.person(login).await?;
                    inputs.push(signal(
                        "repo_fork",
                        key::fork(repo, &id),
                        str_of(item, &["created_at"]),
                        &p,
                        json!({"repo": repo, "fork": str_of(item, &["full_name"])}),
                    ));
                }
                List::Issues => {
                    let Some(login) = str_of(item, &["user", "login"]) else {
                        continue;
                    };
                    let p = self.person(login).await?;
                    inputs.extend(issue_signals(repo, item, &p));
                }
            }
        }
        if !inputs.is_empty() {
            self.cx.ingest(inputs).await?;
        }
        Ok(())
    }

    /// The person behind `login`: from this run's memory, the cached profile, or GitHub.
    async fn person(&self, login: &str) -> Result<Person, Stop> {
        let login = login.to_lowercase();
        if let Some(p) = self.people.lock().await.get(&login) {
            return Ok(p.clone());
        }
        let resource = format!("user:{login}");
        let prefetched = self.cached.lock().await.remove(&login);
        let cached = match prefetched {
            Some(c) => c,
            None => self.cx.cursor(&resource).await?,
        };
        let cached_person = cached
            .as_ref()
            .and_then(|c| serde_json::from_value::<Person>(c.state.clone()).ok());
        if let (Some(c), Some(p)) = (&cached, &cached_person)
            && c.updated_at > Utc::now() - PROFILE_FRESH
        {
            self.people.lock().await.insert(login, p.clone());
            return Ok(p.clone());
        }
        let etag = cached_person
            .as_ref()
            .and(cached.as_ref())
            .and_then(|c| c.etag.clone());
        let req = self
            .request(
                format!("{}/users/{login}", self.api),
                "application/vnd.github+json",
            )
            .validators(etag.clone(), None);
        let (person, etag) = match self.cx.get(req).await? {
            Fetched::NotModified => match cached_person {
                Some(p) => (p, etag),
                None => (Person::bare(&login), None),
            },
            Fetched::Missing => (Person::bare(&login), None),
            Fetched::Ok(page) => {
                let profile: Value = page.json("a GitHub profile")?;
                let mut p = Person::from_profile(&login, &profile);
                if p.company.as_deref().and_then(company_handle).is_none() {
                    p.orgs = self.orgs(&login).await?;
                }
                (p, page.etag)
            }
        };
        let state = serde_json::to_value(&person).unwrap_or(Value::Null);
        store::put_cursor(
            &self.cx.db,
            &self.cx.integration,
            &resource,
            state,
            etag,
            None,
        )
        .await?;
        self.people.lock().await.insert(login, person.clone());
        Ok(person)
    }

    async fn orgs(&self, login: &str) -> Result<Vec<String>, Stop> {
        let req = self.request(
            format!("{}/users/{login}/orgs?per_page={PER_PAGE}", self.api),
            "application/vnd.github+json",
        );
        match self.cx.get(req).await? {
            Fetched::Ok(page) => {
                let orgs: Vec<Value> = page.json("a GitHub user's organizations")?;
                Ok(orgs
                    .iter()
                    // As GitHub spells them (the account's name); `org()` compares lower-case.
                    .filter_map(|o| str_of(o, &["login"]).map(str::to_owned))
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl crate::Connector for GitHub {
    fn kind(&self) -> &'static str {
        "GITHUB"
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
        let mut repos: Vec<String> = Vec::new();
        match cfg.get("repos") {
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, r) in list.iter().enumerate() {
                    match r
                        .as_str()
                        .map(|s| s.trim().trim_end_matches(".git").to_lowercase())
                    {
                        Some(r) if valid_repo(&r) => {
                            if !repos.contains(&r) {
                                repos.push(r);
                            }
                        }
                        _ => errors.push(FieldError::new(
                            format!("config.repos.{i}"),
                            "must be a repository as owner/name",
                        )),
                    }
                }
                if list.len() > 100 {
                    errors.push(FieldError::new("config.repos", "at most 100 repositories"));
                }
            }
            _ => errors.push(FieldError::new(
                "config.repos",
                "must list at least one repository as owner/name",
            )),
        }
        let mut out = Map::new();
        out.insert("repos".into(), json!(repos));
        if let Some(api) = cfg.get("apiUrl").filter(|v| !v.is_null()) {
            match api
                .as_str()
                .map(|s| s.trim().trim_end_matches('/'))
                .and_then(|s| {
                    url::Url::parse(s)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                        .map(|_| s.to_owned())
                }) {
                Some(s) => {
                    out.insert("apiUrl".into(), json!(s));
                }
                None => errors.push(FieldError::new("config.apiUrl", "must be an http(s) URL")),
            }
        }
        for k in cfg.keys() {
            if k != "repos" && k != "apiUrl" {
                errors.push(FieldError::new(
                    format!("config.{k}"),
                    "is not a GitHub setting (repos, apiUrl)",
                ));
            }
        }
        if let Some(c) = credentials.filter(|c| !c.is_null()) {
            match c.get("token") {
                Some(Value::String(t)) if !t.trim().is_empty() => {}
                _ => errors.push(FieldError::new(
                    "credentials.token",
                    "must be a GitHub token (classic or fine-grained)",
                )),
            }
        }
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let run = Run {
            cx,
            api: api_url(cx),
            token: cx.credentials.get("token").cloned(),
            people: Mutex::new(HashMap::new()),
            cached: Mutex::new(HashMap::new()),
        };
        let repos: Vec<String> = cx
            .integration
            .config
            .get("repos")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for repo in &repos {
            for list in [List::Stars, List::Forks, List::Issues] {
                run.walk(repo, list).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companies_come_from_handles_orgs_and_real_domains() {
        assert_eq!(company_handle("@Acme").as_deref(), Some("acme"));
        assert_eq!(
            company_handle("Acme Inc. (@acme-labs)").as_deref(),
            Some("acme-labs")
        );
        assert_eq!(company_handle("Acme Inc"), None);
        assert_eq!(
            company_display_name("Acme Inc. (@acme-labs)").as_deref(),
            Some("Acme Inc.")
        );
        assert_eq!(company_display_name("@Acme").as_deref(), Some("Acme"));
        assert_eq!(company_display_name("Acme Inc"), None);
        assert_eq!(
            blog_domain("https://www.acme.io/blog").as_deref(),
            Some("acme.io")
        );
        assert_eq!(blog_domain("https://someone.github.io"), None);
        assert_eq!(blog_domain("medium.com/@someone"), None);
        assert_eq!(blog_domain("gmail.com"), None);
        assert!(valid_repo("rust-lang/rust"));
        assert!(!valid_repo("rust-lang"));
        assert!(!valid_repo("a/b/c"));
    }

    #[test]
    fn next_page_is_the_page_parameter_plus_one() {
        assert_eq!(
            bump_page("http://x/repos/a/b/stargazers?per_page=100&page=3").as_deref(),
            Some("http://x/repos/a/b/stargazers?per_page=100&page=4")
        );
    }
}
