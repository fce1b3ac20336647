//! Signal ingest throughput and ingest-to-score latency on PostgreSQL. Prints figures;
//! asserts nothing.
//!
//! Creates a fresh database `ds_bench_<uuid>` on the server of `BENCH_DATABASE_URL` (an admin
//! URL, default `postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable`; dropped at the
//! end: TLS is off by default, so figures compare with runs before sqlx 0.9.1, whose 0.9.0 did not
//! set `TCP_NODELAY` and let every statement larger than one TLS record stall ~40 ms on Nagle's
//! algorithm — pass a URL without `sslmode` to measure over TLS), starts the
//! real server in-process on port 0 with its worker (production poll interval, debounce and
//! pool size; Redis from `REDIS_URL` if set; rate limits lifted), registers a user and an API
//! key with `signals:write`, and then for every batch size × concurrency:
//!
//! 1. sends realistic signals (a type mix, known and new people, new and known companies,
//!    free-mail addresses, a few hundred bytes of metadata, some idempotency keys, event times
//!    over the last 30 days) through `POST /api/v1/signals` (batch size 1) or
//!    `/api/v1/signals/batch`, and measures signals/s and request latency;
//! 2. meanwhile, probes (four at a time, each for an account of its own) send one signal after
//!    another and poll `account_scores` (read-only, every 5 ms) until the score counts it:
//!    ingest-to-score;
//! 3. once the score queue is empty again, inserts the rows that ingest stored, copied, into
//!    `signals` with plain multi-row INSERTs of the same batch size at the same concurrency on a
//!    pool like the server's, and prints our rate as a share of that (the copies are deleted).
//!
//! Then a sustained phase (batch 100 × 4 for `BENCH_SCORE_SECONDS`) gives ingest-to-score
//! percentiles over more probes. The client, the server and PostgreSQL share the machine; the
//! `others` columns show how much CPU other processes took meanwhile (a busy machine skews
//! every figure).
//!
//! `cargo bench -p devsignal-tests --bench ingest` (release), or `--profile dev` for a quick look.
//! Knobs: `BENCH_SIGNALS` (signals per configuration, default 10000), `BENCH_SECONDS` (at most
//! this long per configuration, default 10), `BENCH_BATCHES` (default `1,10,100,1000`),
//! `BENCH_CONCURRENCY` (default `1,4,16`), `BENCH_SCORE_SECONDS` (default 60, 0 skips),
//! `BENCH_SEED`. For analysis: `BENCH_LOG_STATEMENTS=1` makes PostgreSQL log every statement of
//! the bench database with its duration (`log_min_duration_statement = 0`, superuser only;
//! keep N small); `BENCH_PG_STATEMENTS=1` prints, for each configuration's load, the statements
//! PostgreSQL spent its time on (`pg_stat_statements`, which must be in the server's
//! `shared_preload_libraries`; reset before each load and read after it, lists of parameters
//! folded so one statement of any batch size is one line); `BENCH_KEEP=1` keeps the database
//! afterwards and prints its URL.
//! `BENCH_ACCEPT=1` sends every request (and each probe after its first) with `Prefer:
//! respond-async`: the signals are accepted into the intake and ingested by the worker, and the
//! tables show the accept rate and, separately, the rate they were stored at.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use devsignal_tests::bench::{
    Cpu, cores, cpu_sample, env_list, env_or, load_average, ms, others_cores, percentile, profile,
    progress, redis_state,
};
use devsignal_tests::{TestApp, TestDatabase, spawn_on};
use entity::{account_scores, signals};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

struct Opts {
    admin_url: String,
    signals: usize,
    seconds: u64,
    batches: Vec<usize>,
    concurrency: Vec<usize>,
    score_seconds: u64,
    seed: u64,
    log_statements: bool,
    /// Print PostgreSQL's account of each configuration's statements (pg_stat_statements).
    pg_statements: bool,
    keep: bool,
    /// Send with `Prefer: respond-async`: measured is the rate requests are accepted at, and
    /// separately the rate they are stored at (until the intake has drained).
    accept: bool,
}

impl Opts {
    fn from_env() -> Self {
        Opts {
            admin_url: std::env::var("BENCH_DATABASE_URL")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| {
                    "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into()
                }),
            signals: env_or("BENCH_SIGNALS", 10_000usize).max(1),
            seconds: env_or("BENCH_SECONDS", 10u64).max(1),
            batches: env_list("BENCH_BATCHES", &[1, 10, 100, 1000])
                .into_iter()
                .map(|b| b.min(domain::signals::MAX_BATCH))
                .collect(),
            concurrency: env_list("BENCH_CONCURRENCY", &[1, 4, 16]),
            score_seconds: env_or("BENCH_SCORE_SECONDS", 60u64),
            seed: env_or("BENCH_SEED", 6u64),
            log_statements: env_or("BENCH_LOG_STATEMENTS", 0u8) == 1,
            pg_statements: env_or("BENCH_PG_STATEMENTS", 0u8) == 1,
            keep: env_or("BENCH_KEEP", 0u8) == 1,
            accept: env_or("BENCH_ACCEPT", 0u8) == 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Realistic signals
// ---------------------------------------------------------------------------------------------

/// SplitMix64: deterministic, so a seed gives the same data set every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// An index skewed towards the start: a few people and companies are far more active.
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * n as f64) as usize).min(n.saturating_sub(1))
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

const FIRST: &[&str] = &[
    "maria", "james", "wei", "priya", "lucas", "amara", "noah", "sofia", "kenji", "fatima", "liam",
    "olga", "mateo", "aisha", "ethan", "ines", "yuki", "omar", "chloe", "ravi", "hannah", "diego",
    "lena", "samir",
];
const LAST: &[&str] = &[
    "garcia", "smith", "zhang", "patel", "muller", "okafor", "johnson", "rossi", "tanaka", "khan",
    "nguyen", "ivanova", "silva", "haddad", "brown", "dubois", "sato", "ali", "martin", "sharma",
];
const WORD_A: &[&str] = &[
    "acme", "nimbus", "quanta", "vertex", "hyper", "lumen", "orbit", "pixel", "stack", "cloud",
    "flux", "nova", "terra", "byte", "core", "delta", "echo", "forge", "grid", "helix", "ionic",
    "kite", "mesa", "nexus",
];
const WORD_B: &[&str] = &[
    "labs", "io", "hq", "ly", "soft", "works", "ai", "dev", "base", "scale", "data", "ops",
];
const TLDS: &[&str] = &["io", "com", "dev", "ai", "co", "tech"];
const FREE: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "hotmail.com",
    "icloud.com",
];
const REPOS: &[&str] = &[
    "devsignal/sdk-js",
    "devsignal/sdk-python",
    "devsignal/cli",
    "devsignal/helm-charts",
    "devsignal/examples",
];
const PACKAGES: &[&str] = &[
    "@devsignal/sdk",
    "@devsignal/react",
    "@devsignal/cli",
    "devsignal-node",
];
const PATHS: &[&str] = &[
    "/docs/getting-started",
    "/docs/api/signals",
    "/docs/guides/identity-resolution",
    "/docs/sdk/javascript",
    "/pricing",
    "/blog/pqa-scoring-explained",
    "/changelog",
    "/docs/webhooks",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "devsignal-node/2.4.1 (node v20.11.0; linux x64)",
];
/// Signal types with their weights (out of 100).
const TYPES: &[(&str, u32)] = &[
    ("page_view", 22),
    ("api_call", 20),
    ("docs_visit", 15),
    ("npm_download", 10),
    ("repo_star", 8),
    ("issue_opened", 5),
    ("pricing_page_view", 5),
    ("pr_merged", 4),
    ("signup", 4),
    ("repo_fork", 3),
    ("support_ticket", 2),
    ("feature_request", 2),
];

struct Company {
    domain: String,
    name: String,
    github_org: Option<String>,
}

struct Person {
    email: Option<String>,
    github: Option<String>,
    npm: Option<String>,
    name: String,
    company: Option<usize>,
    /// Which of email, GitHub, npm an earlier signal already carried.
    seen: [bool; 3],
}

/// Produces signals in the REST shape. People and companies accumulate over the whole run, so a
/// "known" actor is one an earlier signal already named.
struct Generator {
    rng: Rng,
    companies: Vec<Company>,
    people: Vec<Person>,
    serial: u64,
    now: DateTime<Utc>,
}

impl Generator {
    fn new(seed: u64) -> Self {
        Generator {
            rng: Rng(seed),
            companies: Vec::new(),
            people: Vec::new(),
            serial: 0,
            now: Utc::now(),
        }
    }

    fn serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn new_company(&mut self) -> usize {
        let a = *self.rng.pick(WORD_A);
        let b = *self.rng.pick(WORD_B);
        let tld = *self.rng.pick(TLDS);
        let n = self.serial();
        let github_org = self.rng.chance(0.5).then(|| format!("{a}-{b}-{n}"));
        self.companies.push(Company {
            domain: format!("{a}{b}{n}.{tld}"),
            name: format!("{} {} {n}", capitalise(a), capitalise(b)),
            github_org,
        });
        self.companies.len() - 1
    }

    /// A person no signal has named yet: a colleague at a known company, someone at a new
    /// company, a free-mail user (no account), or a GitHub-only developer.
    fn new_person(&mut self) -> usize {
        let first = *self.rng.pick(FIRST);
        let last = *self.rng.pick(LAST);
        let n = self.serial();
        let r = self.rng.unit();
        let (email, company) = if r < 0.40 && !self.companies.is_empty() {
            let c = self.rng.skewed(self.companies.len());
            (
                Some(format!("{first}.{last}{n}@{}", self.companies[c].domain)),
                Some(c),
            )
        } else if r < 0.60 {
            let c = self.new_company();
            (
                Some(format!("{first}.{last}{n}@{}", self.companies[c].domain)),
                Some(c),
            )
        } else if r < 0.85 {
            (
                Some(format!("{first}{last}{n}@{}", self.rng.pick(FREE))),
                None,
            )
        } else {
            let c = (self.rng.chance(0.5) && !self.companies.is_empty())
                .then(|| self.rng.skewed(self.companies.len()))
                .filter(|c| self.companies[*c].github_org.is_some());
            (None, c)
        };
        let github = (email.is_none() || self.rng.chance(0.55))
            .then(|| format!("{}{last}-{n}", &first[..1]));
        let npm = self.rng.chance(0.25).then(|| format!("{first}_{last}{n}"));
        self.people.push(Person {
            email,
            github,
            npm,
            name: format!("{} {}", capitalise(first), capitalise(last)),
            company,
            seen: [false; 3],
        });
        self.people.len() - 1
    }

    fn signal_type(&mut self) -> &'static str {
        let total: u32 = TYPES.iter().map(|(_, w)| w).sum();
        let mut x = (self.rng.next() % u64::from(total)) as u32;
        for (t, w) in TYPES {
            if x < *w {
                return t;
            }
            x -= w;
        }
        TYPES[0].0
    }

    /// One signal: 75 % from a known person (named by an identifier an earlier signal carried),
    /// 25 % from a new one. The identifier follows the type (GitHub events carry the login, npm
    /// the user name, product events the email); 30 % carry every identifier the person has
    /// (an enriched event), which links a known person's other identities.
    fn signal(&mut self) -> Value {
        let ty = self.signal_type();
        let new = self.people.is_empty() || self.rng.chance(0.25);
        let pi = if new {
            self.new_person()
        } else {
            self.rng.skewed(self.people.len())
        };
        let enriched = self.rng.chance(0.3);
        let p = &self.people[pi];
        let ids = [&p.email, &p.github, &p.npm];
        let preferred = match ty {
            "repo_star" | "repo_fork" | "pr_merged" | "issue_opened" => 1,
            "npm_download" => 2,
            _ => 0,
        };
        let mut send = [false; 3];
        if enriched {
            send = ids.map(Option::is_some);
        } else {
            let usable = |i: usize| ids[i].is_some() && (new || p.seen[i]);
            if let Some(i) = std::iter::once(preferred).chain(0..3).find(|&i| usable(i)) {
                send[i] = true;
            }
        }
        let mut actor = serde_json::Map::new();
        for (i, key) in ["email", "github", "npm"].into_iter().enumerate() {
            if let (true, Some(v)) = (send[i], ids[i]) {
                actor.insert(key.into(), json!(v));
            }
        }
        for (seen, sent) in self.people[pi].seen.iter_mut().zip(send) {
            *seen |= sent;
        }
        let p = &self.people[pi];
        if self.rng.chance(0.5) {
            actor.insert("name".into(), json!(p.name));
        }
        let github = p.github.clone();
        let company = p.company;
        let has_email = p.email.is_some();
        let mut body = serde_json::Map::new();
        body.insert("type".into(), json!(ty));
        body.insert("actor".into(), Value::Object(actor));
        if let Some(c) = company.map(|c| &self.companies[c]) {
            if has_email && self.rng.chance(0.25) {
                body.insert(
                    "account".into(),
                    json!({"domain": c.domain, "name": c.name}),
                );
            } else if !has_email && let Some(g) = &c.github_org {
                body.insert("account".into(), json!({"githubOrg": g}));
            }
        }
        body.insert("metadata".into(), self.metadata(ty, github.as_deref()));
        if self.rng.chance(0.3) {
            body.insert(
                "idempotencyKey".into(),
                json!(format!("evt_{}", self.rng.hex(24))),
            );
        }
        let age_ms = (self.rng.unit() * 30.0 * 86_400_000.0) as i64;
        let ts = self.now - chrono::Duration::milliseconds(age_ms);
        body.insert(
            "timestamp".into(),
            json!(ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        Value::Object(body)
    }

    /// A few hundred bytes, shaped like what connectors and SDKs send for the type.
    fn metadata(&mut self, ty: &str, github: Option<&str>) -> Value {
        let r = &mut self.rng;
        let session = r.hex(16);
        match ty {
            "repo_star" | "repo_fork" => json!({
                "repo": r.pick(REPOS), "repo_id": 700_000_000 + r.below(1000),
                "action": if ty == "repo_star" { "created" } else { "forked" },
                "stargazers_count": 1200 + r.below(800), "sender_login": github,
                "installation_id": 41_000_000 + r.below(1000), "delivery": r.hex(32),
                "html_url": format!("https://github.com/{}", r.pick(REPOS)),
            }),
            "pr_merged" | "issue_opened" => json!({
                "repo": r.pick(REPOS), "number": 100 + r.below(4000),
                "title": format!("{} {}", r.pick(&["Fix", "Add", "Support", "Document", "Improve"]),
                    r.pick(&["retry on 429 from the ingest API", "typed metadata for track()", "batch flush interval option", "proxy configuration in the CLI"])),
                "labels": [r.pick(&["bug", "enhancement", "docs", "sdk"])],
                "additions": r.below(400), "deletions": r.below(200), "base": "main",
                "sender_login": github, "delivery": r.hex(32),
            }),
            "npm_download" => json!({
                "package": r.pick(PACKAGES),
                "version": format!("2.{}.{}", r.below(8), r.below(12)),
                "node_version": r.pick(&["v18.19.1", "v20.11.0", "v22.2.0"]),
                "os": r.pick(&["linux", "darwin", "win32"]), "arch": r.pick(&["x64", "arm64"]),
                "ci": r.chance(0.4), "registry": "https://registry.npmjs.org/",
                "download_id": r.hex(20),
            }),
            "api_call" => json!({
                "endpoint": r.pick(&["/v1/events", "/v1/identify", "/v1/flags/evaluate", "/v1/query"]),
                "method": r.pick(&["POST", "GET"]), "status": *r.pick(&[200, 200, 200, 201, 400, 429]),
                "latency_ms": 5 + r.below(400), "sdk": "devsignal-node",
                "sdk_version": format!("2.{}.{}", r.below(8), r.below(12)),
                "region": r.pick(&["us-east-1", "eu-west-1", "ap-southeast-2"]),
                "request_id": format!("req_{session}"), "user_agent": r.pick(AGENTS),
            }),
            "signup" => json!({
                "plan": r.pick(&["free", "free", "team", "trial"]),
                "utm_source": r.pick(&["google", "github", "newsletter", "hn"]),
                "utm_campaign": r.pick(&["launch-week", "docs-cta", "none"]),
                "referrer": "https://www.google.com/", "user_agent": r.pick(AGENTS),
                "session_id": session,
            }),
            "support_ticket" | "feature_request" => json!({
                "ticket_id": format!("T-{}", 10_000 + r.below(90_000)),
                "priority": r.pick(&["low", "normal", "high"]),
                "channel": r.pick(&["email", "discord", "in-app"]),
                "subject": r.pick(&["Webhook signatures fail behind our proxy", "Can we export scores to Snowflake?", "SSO for the dashboard"]),
                "session_id": session,
            }),
            _ => json!({
                "path": r.pick(PATHS), "title": "DevSignal — developer signals for GTM teams",
                "referrer": r.pick(&["https://www.google.com/", "https://github.com/", "https://news.ycombinator.com/", ""]),
                "utm_source": r.pick(&["google", "github", "twitter", "direct"]),
                "viewport": r.pick(&["1440x900", "1920x1080", "390x844"]),
                "time_on_page_s": r.below(600), "user_agent": r.pick(AGENTS), "session_id": session,
            }),
        }
    }

    /// A request body of `k` signals: `{"signals": [...]}`, or the bare signal when `bare`.
    fn body(&mut self, k: usize, bare: bool) -> Bytes {
        let body = if bare {
            self.signal()
        } else {
            json!({ "signals": (0..k).map(|_| self.signal()).collect::<Vec<_>>() })
        };
        Bytes::from(serde_json::to_vec(&body).unwrap())
    }
}

/// Request bodies of `batch` signals made on demand, `left` signals in all. Made when sent, so
/// a configuration stopped by its time limit leaves no unsent signals whose people later
/// signals would treat as known.
#[derive(Clone)]
struct Feed {
    generator: Arc<Mutex<Generator>>,
    left: Arc<AtomicUsize>,
    batch: usize,
}

impl Feed {
    fn new(generator: &Arc<Mutex<Generator>>, signals: usize, batch: usize) -> Self {
        Feed {
            generator: generator.clone(),
            left: Arc::new(AtomicUsize::new(signals)),
            batch,
        }
    }

    fn next(&self) -> Option<(Bytes, usize)> {
        let mut g = self.generator.lock().unwrap();
        let left = self.left.load(Ordering::Relaxed);
        if left == 0 {
            return None;
        }
        let k = left.min(self.batch);
        self.left.store(left - k, Ordering::Relaxed);
        Some((g.body(k, self.batch == 1), k))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

struct Load {
    signals: usize,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.signals as f64 / self.elapsed.as_secs_f64()
    }
}

#[derive(serde::Deserialize)]
struct BatchReply {
    summary: BatchSummary,
}

#[derive(serde::Deserialize)]
struct BatchSummary {
    failed: usize,
}

/// Sends what `feed` makes with `concurrency` requests in flight until it is empty or `limit`
/// has passed.
async fn run_load(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    feed: Feed,
    concurrency: usize,
    limit: Duration,
    accept: bool,
) -> Load {
    let batch = feed.batch;
    let url = if batch == 1 {
        format!("{base}/api/v1/signals")
    } else {
        format!("{base}/api/v1/signals/batch")
    };
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, key, feed) = (client.clone(), url.clone(), key.to_owned(), feed.clone());
        tasks.push(tokio::spawn(async move {
            let (mut signals, mut requests, mut errors) = (0, 0, 0);
            let mut latencies = Vec::new();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let Some((body, k)) = feed.next() else { break };
                let t = Instant::now();
                let mut req = client
                    .post(&url)
                    .header("x-api-key", &key)
                    .header("content-type", "application/json");
                if accept {
                    req = req.header("prefer", "respond-async");
                }
                let resp = req.body(body).send().await;
                let failed = match resp {
                    Err(_) => k,
                    Ok(r) => {
                        let ok = r.status().is_success();
                        match r.bytes().await {
                            Err(_) => k,
                            Ok(_) if !ok => k,
                            Ok(b) if batch > 1 && !accept => {
                                serde_json::from_slice::<BatchReply>(&b)
                                    .map_or(k, |r| r.summary.failed)
                            }
                            Ok(_) => 0,
                        }
                    }
                };
                latencies.push(t.elapsed());
                signals += k;
                requests += 1;
                errors += failed;
            }
            (signals, requests, errors, latencies)
        }));
    }
    let mut load = Load {
        signals: 0,
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (s, r, e, l) = t.await.unwrap();
        load.signals += s;
        load.requests += r;
        load.errors += e;
        load.latencies.extend(l);
    }
    load.elapsed = started.elapsed();
    load.latencies.sort();
    load
}

/// Ingest-to-score: one signal at a time for an account nobody else writes to, then polling
/// `account_scores` until its `signal_count` includes it (computed after the send).
struct Probe {
    lane: usize,
    client: reqwest::Client,
    url: String,
    key: String,
    db: DatabaseConnection,
    account: Option<Uuid>,
    sent: i32,
    rng: Rng,
    /// Sends with `Prefer: respond-async` once its account is known.
    accept: bool,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// Probes in flight at once, each for an account of its own.
const PROBE_LANES: usize = 4;

/// One probe's outcome.
#[derive(Clone, Copy)]
enum Sample {
    Scored(Duration),
    TimedOut,
}

impl Probe {
    async fn once(&mut self) -> Sample {
        let seq = self.rng.hex(16);
        let body = json!({
            "type": "api_call",
            "actor": {"email": format!("probe@bench-probe-{}.io", self.lane), "name": "Probe Bot"},
            "account": {"domain": format!("bench-probe-{}.io", self.lane), "name": "Bench Probe"},
            "metadata": {"endpoint": "/v1/events", "method": "POST", "status": 200, "request_id": seq},
        });
        let sent_at = Utc::now();
        let t = Instant::now();
        let mut req = self.client.post(&self.url).header("x-api-key", &self.key);
        if self.accept && self.account.is_some() {
            req = req.header("prefer", "respond-async");
        }
        let resp = req.json(&body).send().await.expect("probe request");
        assert!(
            resp.status().is_success(),
            "probe ingest: {}",
            resp.status()
        );
        let reply: Value = resp.json().await.expect("probe reply");
        let account = match self.account {
            Some(a) => a,
            None => {
                let a = Uuid::parse_str(reply["accountId"].as_str().expect("probe accountId"))
                    .expect("probe account id");
                self.account = Some(a);
                a
            }
        };
        self.sent += 1;
        loop {
            let row = account_scores::Entity::find_by_id(account)
                .one(&self.db)
                .await
                .expect("read account_scores");
            if row.is_some_and(|r| r.signal_count >= self.sent && r.computed_at >= sent_at) {
                return Sample::Scored(t.elapsed());
            }
            if t.elapsed() > PROBE_TIMEOUT {
                return Sample::TimedOut;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Probes until `stop`, each after a random pause of up to 1 s (so probes do not fall
    /// into step with the worker's poll); returns the probe and its samples.
    fn spawn(mut self, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Probe, Vec<Sample>)> {
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push(self.once().await);
                let pause = Duration::from_millis(self.rng.below(1000) as u64);
                let until = Instant::now() + pause;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (self, samples)
        })
    }
}

/// Several probes, each with an account of its own, so that slow scoring still yields samples.
struct Probes(Vec<Probe>);

impl Probes {
    /// Runs every lane until `stop` (lanes start staggered over the first second).
    async fn during<T>(&mut self, work: impl std::future::Future<Output = T>) -> (T, Vec<Sample>) {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let lanes = self.0.len().max(1);
        for (i, p) in std::mem::take(&mut self.0).into_iter().enumerate() {
            let stop = stop.clone();
            handles.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis((i * 1000 / lanes) as u64)).await;
                p.spawn(stop).await.unwrap()
            }));
        }
        let out = work.await;
        stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for h in handles {
            let (p, s) = h.await.unwrap();
            self.0.push(p);
            samples.extend(s);
        }
        (out, samples)
    }

    fn accounts(&self) -> Vec<Uuid> {
        self.0.iter().filter_map(|p| p.account).collect()
    }
}

struct ScoreStats {
    n: usize,
    timeouts: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn score_stats(samples: &[Sample]) -> ScoreStats {
    let mut d: Vec<Duration> = samples
        .iter()
        .map(|s| match s {
            Sample::Scored(d) => *d,
            Sample::TimedOut => PROBE_TIMEOUT,
        })
        .collect();
    d.sort();
    ScoreStats {
        n: samples.len(),
        timeouts: samples
            .iter()
            .filter(|s| matches!(s, Sample::TimedOut))
            .count(),
        p50: percentile(&d, 0.50),
        p99: percentile(&d, 0.99),
        max: d.last().copied().unwrap_or_default(),
    }
}

fn score_cell(s: &ScoreStats) -> String {
    if s.n == 0 {
        return format!("{:>6} {:>8} {:>8} {:>8} {:>4}", 0, "-", "-", "-", "-");
    }
    let t = |d: Duration| {
        if d >= PROBE_TIMEOUT {
            ">60s".to_owned()
        } else {
            format!("{:.0}", ms(d))
        }
    };
    format!(
        "{:>6} {:>8} {:>8} {:>8} {:>4}",
        s.n,
        t(s.p50),
        t(s.p99),
        t(s.max),
        s.timeouts
    )
}

/// Rescore jobs waiting or running.
async fn score_backlog(db: &DatabaseConnection) -> u64 {
    use entity::jobs;
    jobs::Entity::find()
        .filter(jobs::Column::Queue.eq(domain::scoring::QUEUE))
        .filter(
            jobs::Column::State
                .is_in([domain::queue::state::WAITING, domain::queue::state::ACTIVE]),
        )
        .count(db)
        .await
        .expect("count rescore jobs")
}

/// Requests accepted for later ingest and not yet ingested.
async fn intake_backlog(db: &DatabaseConnection) -> u64 {
    domain::signals::intake::backlog(db)
        .await
        .expect("intake backlog")
        .0
}

/// Waits (at most `limit`) until every accepted request is ingested; returns how long it took.
async fn drain_intake(db: &DatabaseConnection, limit: Duration) -> Duration {
    let started = Instant::now();
    while intake_backlog(db).await > 0 && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Waits (at most `limit`) until nothing accepted waits for ingest and no rescore is waiting or
/// running; returns the backlog left.
async fn quiesce(db: &DatabaseConnection, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let n = score_backlog(db).await + intake_backlog(db).await;
        if n == 0 || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Plain {
    rows: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Plain {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64()
    }
}

/// Copies of the rows ingest stored since `since` (the probe's excluded), inserted with plain
/// multi-row INSERTs of `batch` rows at `concurrency`, then deleted again.
async fn plain_insert(
    db: &DatabaseConnection,
    org: Uuid,
    since: DateTime<Utc>,
    probe_accounts: &[Uuid],
    batch: usize,
    concurrency: usize,
) -> Plain {
    let stored = signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(org))
        .filter(signals::Column::CreatedAt.gte(since))
        .all(db)
        .await
        .expect("read ingested rows");
    let now = Utc::now();
    let copies: Vec<signals::Model> = stored
        .into_iter()
        .filter(|s| s.account_id.is_none_or(|a| !probe_accounts.contains(&a)))
        .map(|mut s| {
            s.id = Uuid::now_v7();
            s.idempotency_key = s.idempotency_key.map(|k| format!("plain:{k}"));
            s.created_at = now;
            s
        })
        .collect();
    let ids: Vec<Uuid> = copies.iter().map(|s| s.id).collect();
    let chunks: Arc<Vec<Vec<signals::Model>>> =
        Arc::new(copies.chunks(batch).map(<[_]>::to_vec).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (db, chunks, next) = (db.clone(), chunks.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { break };
                let t = Instant::now();
                signals::Entity::insert_many(chunk.iter().cloned().map(signals::ActiveModel::from))
                    .exec_without_returning(&db)
                    .await
                    .expect("plain INSERT");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    for chunk in ids.chunks(1000) {
        signals::Entity::delete_many()
            .filter(signals::Column::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await
            .expect("delete the copies");
    }
    db.execute_unprepared("VACUUM (ANALYZE) signals")
        .await
        .expect("vacuum signals");
    Plain {
        rows: ids.len(),
        elapsed,
        latencies,
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

struct Row {
    new_contacts: u64,
    new_accounts: u64,
    others_load: f64,
    others_plain: f64,
    batch: usize,
    concurrency: usize,
    load: Load,
    statements: u64,
    /// Time ingest batches spent taking their claims during the load (waiting for each other).
    claiming: Duration,
    score: ScoreStats,
    backlog_at_end: u64,
    drain: Duration,
    left: u64,
    plain: Plain,
    /// Accept mode: requests still waiting for ingest when the load stopped, and how long
    /// until none did.
    intake_at_end: u64,
    intake_drain: Duration,
}

impl Row {
    /// Signals stored per second: the load's signals over the load's time plus the intake's
    /// drain after it (the load's rate when nothing waits).
    fn stored_rate(&self) -> f64 {
        self.load.signals as f64 / (self.load.elapsed + self.intake_drain).as_secs_f64()
    }
}

/// Contacts and accounts the organization gained since `since` (identity resolution creates them).
async fn created_since(db: &DatabaseConnection, org: Uuid, since: DateTime<Utc>) -> (u64, u64) {
    use entity::{companies, contacts};
    let c = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::CreatedAt.gte(since))
        .count(db)
        .await
        .expect("count contacts");
    let a = companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(org))
        .filter(companies::Column::CreatedAt.gte(since))
        .count(db)
        .await
        .expect("count accounts");
    (c, a)
}

/// The bench database's oid, as SQL (`pg_stat_statements` names databases by it).
const THIS_DATABASE: &str = "(SELECT oid FROM pg_database WHERE datname = current_database())";

async fn pg_statements_reset(db: &DatabaseConnection) {
    let sql = format!("SELECT pg_stat_statements_reset(0, {THIS_DATABASE}, 0)::text");
    scalar(db, &sql).await;
}

/// The statements of the bench database by the time PostgreSQL spent executing them since the
/// last reset (the top 10), each line's share of `wall` included (over 100 % when statements ran
/// side by side). Parameter lists are folded (`IN (…)`, `ARRAY[…]`, `VALUES (…), …`) so a
/// statement is one line whatever its batch's size.
async fn pg_statements_top(db: &DatabaseConnection, wall: Duration) -> String {
    let sql = format!(
        "SELECT sum(calls)::bigint, sum(total_exec_time)::float8, sum(rows)::bigint, q FROM \
         (SELECT calls, total_exec_time, rows, left(regexp_replace(regexp_replace(regexp_replace(\
         query, '\\$\\d+(\\s*(::[a-z]+)?\\s*,\\s*\\$\\d+)*', '…', 'g'), \
         '\\(…\\)(\\s*,\\s*\\(…\\))+', '(…), …', 'g'), '\\s+', ' ', 'g'), 150) AS q \
         FROM pg_stat_statements WHERE dbid = {THIS_DATABASE}) s \
         GROUP BY q ORDER BY 2 DESC LIMIT 10"
    );
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("pg_stat_statements (is it in shared_preload_libraries?)");
    let wall_ms = wall.as_secs_f64() * 1000.0;
    let mut out = format!(
        "{:>8} {:>10} {:>8} {:>7} {:>9}  statement\n",
        "calls", "total ms", "ms/call", "% wall", "rows"
    );
    for r in rows {
        let calls: i64 = r.try_get_by_index(0).unwrap_or_default();
        let total: f64 = r.try_get_by_index(1).unwrap_or_default();
        let returned: i64 = r.try_get_by_index(2).unwrap_or_default();
        let text: String = r.try_get_by_index(3).unwrap_or_default();
        out.push_str(&format!(
            "{calls:>8} {total:>10.1} {:>8.3} {:>6.1}% {returned:>9}  {text}\n",
            total / calls.max(1) as f64,
            100.0 * total / wall_ms,
        ));
    }
    out
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> String {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .and_then(|r| r.try_get_by_index::<String>(0).ok())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let opts = Opts::from_env();
    let test_db = TestDatabase::postgres(&opts.admin_url, "ds_bench").await;
    let url = test_db.url.clone();
    let db_name = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    if opts.log_statements {
        let admin = sea_orm::Database::connect(&opts.admin_url)
            .await
            .expect("admin connection");
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE {db_name} SET log_min_duration_statement = 0"
            ))
            .await
            .expect("log_min_duration_statement needs a superuser");
        admin.close().await.ok();
    }
    let vars = devsignal_tests::bench::server_vars(&test_db);
    if opts.pg_statements {
        let db = sea_orm::Database::connect(&url)
            .await
            .expect("bench database");
        db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .expect("pg_stat_statements needs a superuser");
        db.close().await.ok();
    }
    let app: TestApp = spawn_on(test_db, vars).await;
    let cfg = app.state.config.clone();
    let ro = domain::db::connect(
        &url,
        &domain::db::PoolSettings {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await
    .expect("probe connection");
    let plain_db = domain::db::connect(
        &url,
        &domain::db::PoolSettings {
            max_connections: cfg.database_max_connections,
            ..Default::default()
        },
    )
    .await
    .expect("plain-insert pool");

    let session = app.register("bench@bench-owner.io", "Bench Org").await;
    let key = app.api_key(&session, &["signals:write"]).await;
    let org = Uuid::parse_str(&session.organization_id).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    let version = scalar(&ro, "SHOW server_version").await;
    let tls = scalar(
        &plain_db,
        "SELECT CASE WHEN ssl THEN 'TLS' ELSE 'no TLS' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    let cores = cores();
    println!("DevSignal ingest benchmark");
    println!(
        "machine: {cores} cores (load average {} at start) | PostgreSQL {version} | Redis {} | profile {} | N = {} signals per configuration (at most {} s each)",
        load_average(),
        redis_state(&app),
        profile(),
        opts.signals,
        opts.seconds,
    );
    println!(
        "server: in-process, pool {} connections ({tls}), worker concurrency {} per queue, job poll {} ms, rescore debounce {} ms; client, server and database share the cores",
        cfg.database_max_connections,
        cfg.worker_concurrency,
        cfg.job_poll_interval.as_millis(),
        domain::scoring::DEBOUNCE.as_millis(),
    );
    println!(
        "signals: 75 % from people named before (by an identifier seen before) / 25 % from new people (of these 40 % at a known company, 20 % at a new one, 25 % free mail, 15 % GitHub-only); 30 % with idempotencyKey; metadata ~{} bytes; event times over 30 days",
        {
            let mut g = Generator::new(opts.seed ^ 0xABCD);
            let sizes: usize = (0..1000)
                .map(|_| g.signal()["metadata"].to_string().len())
                .sum();
            sizes / 1000
        }
    );
    println!(
        "ingest-to-score probes: {PROBE_LANES} at a time, each one signal after another for an account of its own (pause 0–1 s between), polling account_scores every 5 ms"
    );
    println!();

    let generator = Arc::new(Mutex::new(Generator::new(opts.seed)));
    let mut probes = Probes(
        (0..PROBE_LANES)
            .map(|lane| Probe {
                lane,
                client: client.clone(),
                url: format!("{}/api/v1/signals", app.address),
                key: key.clone(),
                db: ro.clone(),
                account: None,
                sent: 0,
                rng: Rng(opts.seed.wrapping_mul(31).wrapping_add(lane as u64)),
                accept: opts.accept,
            })
            .collect(),
    );

    // Warm-up: connections, caches and a population of known people and companies.
    progress("warm-up");
    let warm = Feed::new(&generator, 3000, 100);
    let w = run_load(
        &client,
        &app.address,
        &key,
        warm,
        4,
        Duration::from_secs(120),
        false,
    )
    .await;
    assert_eq!(w.errors, 0, "warm-up ingest failed");
    for p in &mut probes.0 {
        p.once().await;
    }
    quiesce(&ro, Duration::from_secs(300)).await;

    // Ingest-to-score with nothing else going on: the floor set by debounce and polling.
    progress("idle probes");
    let idle_cpu = cpu_sample(&db_name);
    let mut idle = Vec::new();
    let probe = &mut probes.0[0];
    for _ in 0..20 {
        idle.push(probe.once().await);
        tokio::time::sleep(Duration::from_millis(probe.rng.below(1000) as u64)).await;
    }
    let idle = score_stats(&idle);
    let idle_others = others_cores(idle_cpu, cpu_sample(&db_name), cores);

    let statements = app.state.metrics.db_statements.clone();
    let mut rows = Vec::new();
    let mut pg_statements = Vec::new();
    for &batch in &opts.batches {
        for &concurrency in &opts.concurrency {
            progress(&format!("batch {batch} × {concurrency}"));
            let feed = Feed::new(&generator, opts.signals, batch);
            quiesce(&ro, Duration::from_secs(300)).await;
            let since = Utc::now();
            let s0 = statements.get();
            let k0 = domain::signals::claim_totals().1;
            if opts.pg_statements {
                pg_statements_reset(&ro).await;
            }
            let c0 = cpu_sample(&db_name);
            let mut s1 = 0;
            let mut k1 = k0;
            let mut c1 = Cpu::default();
            let mut ended = Instant::now();
            let mut backlog_at_end = 0;
            let mut intake_at_end = 0;
            let mut intake_drain = Duration::ZERO;
            let (load, samples) = probes
                .during(async {
                    let load = run_load(
                        &client,
                        &app.address,
                        &key,
                        feed,
                        concurrency,
                        Duration::from_secs(opts.seconds),
                        opts.accept,
                    )
                    .await;
                    s1 = statements.get();
                    k1 = domain::signals::claim_totals().1;
                    c1 = cpu_sample(&db_name);
                    ended = Instant::now();
                    if opts.pg_statements {
                        let top = pg_statements_top(&ro, load.elapsed).await;
                        pg_statements.push((batch, concurrency, top));
                    }
                    intake_at_end = intake_backlog(&ro).await;
                    backlog_at_end = score_backlog(&ro).await;
                    intake_drain = drain_intake(&ro, Duration::from_secs(300)).await;
                    load
                })
                .await;
            let left = quiesce(&ro, Duration::from_secs(300)).await;
            let drain = ended.elapsed();
            let c2 = cpu_sample(&db_name);
            let plain = plain_insert(
                &plain_db,
                org,
                since,
                &probes.accounts(),
                batch,
                concurrency,
            )
            .await;
            let c3 = cpu_sample(&db_name);
            let (new_contacts, new_accounts) = created_since(&ro, org, since).await;
            rows.push(Row {
                batch,
                concurrency,
                statements: s1 - s0,
                claiming: k1.saturating_sub(k0),
                new_contacts,
                new_accounts,
                others_load: others_cores(c0, c1, cores),
                others_plain: others_cores(c2, c3, cores),
                score: score_stats(&samples),
                backlog_at_end,
                drain,
                left,
                plain,
                load,
                intake_at_end,
                intake_drain,
            });
        }
    }

    if opts.accept {
        println!(
            "Mode: accepted for later ingest (Prefer: respond-async): signals/s counts signals accepted (stored in the intake, answered 202); stored/s counts them until the worker had ingested the last (intake@end: requests still waiting when the load stopped)"
        );
        println!(
            "{:>6} {:>5} {:>10} {:>10} {:>10}",
            "batch", "conc", "accepted/s", "stored/s", "intake@end"
        );
        for r in &rows {
            println!(
                "{:>6} {:>5} {:>10.0} {:>10.0} {:>10}",
                r.batch,
                r.concurrency,
                r.load.rate(),
                r.stored_rate(),
                r.intake_at_end
            );
        }
        println!();
    }
    println!("HTTP ingest (signals/s = signals sent / wall time; latency per request)");
    println!(
        "{:>6} {:>5} {:>8} {:>10} {:>9} {:>9} {:>7} {:>10} {:>9} {:>9} {:>7}",
        "batch",
        "conc",
        "signals",
        "signals/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "stmts/req",
        "claim ms",
        "new c/a %",
        "others"
    );
    for r in &rows {
        let per100 = |n: u64| 100.0 * n as f64 / r.load.signals.max(1) as f64;
        println!(
            "{:>6} {:>5} {:>8} {:>10.0} {:>9.1} {:>9.1} {:>7} {:>10.1} {:>9.1} {:>9} {:>7.2}",
            r.batch,
            r.concurrency,
            r.load.signals,
            r.load.rate(),
            ms(percentile(&r.load.latencies, 0.50)),
            ms(percentile(&r.load.latencies, 0.99)),
            r.load.errors,
            r.statements as f64 / r.load.requests.max(1) as f64,
            ms(r.claiming) / r.load.requests.max(1) as f64,
            format!(
                "{:.0}/{:.0}",
                per100(r.new_contacts),
                per100(r.new_accounts)
            ),
            r.others_load,
        );
    }
    println!(
        "(stmts/req: statements on the server's pool during the load, rescore worker included, per request; claim ms: time per request that ingest spent claiming what it may create, waiting for concurrent requests that claimed the same included (PostgreSQL); new c/a %: contacts / accounts that identity resolution created, per 100 signals; others: cores used by other processes on the machine meanwhile)"
    );
    println!();
    println!(
        "Plain multi-row INSERT of the same rows into signals (same batch size and concurrency, pool of {})",
        cfg.database_max_connections
    );
    println!(
        "{:>6} {:>5} {:>8} {:>10} {:>9} {:>9} {:>7} {:>10} {:>12}",
        "batch",
        "conc",
        "rows",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "others",
        "ours/plain",
        "stored/plain"
    );
    for r in &rows {
        println!(
            "{:>6} {:>5} {:>8} {:>10.0} {:>9.1} {:>9.1} {:>7.2} {:>9.1}% {:>11.1}%",
            r.batch,
            r.concurrency,
            r.plain.rows,
            r.plain.rate(),
            ms(percentile(&r.plain.latencies, 0.50)),
            ms(percentile(&r.plain.latencies, 0.99)),
            r.others_plain,
            100.0 * r.load.rate() / r.plain.rate(),
            100.0 * r.stored_rate() / r.plain.rate(),
        );
    }
    println!();
    println!(
        "Ingest-to-score during each configuration's load (send → account_scores counts the signal; ms)"
    );
    println!(
        "{:>6} {:>5} {:>6} {:>8} {:>8} {:>8} {:>4} {:>12} {:>9}",
        "batch", "conc", "probes", "p50", "p99", "max", "t/o", "backlog@end", "drain s"
    );
    for r in &rows {
        println!(
            "{:>6} {:>5} {} {:>12} {:>9}",
            r.batch,
            r.concurrency,
            score_cell(&r.score),
            r.backlog_at_end,
            if r.left > 0 {
                format!(">{:.0} ({} left)", r.drain.as_secs_f64(), r.left)
            } else {
                format!("{:.1}", r.drain.as_secs_f64())
            },
        );
    }
    println!(
        "(backlog@end: rescore jobs waiting or running when the load stopped; drain: until none; t/o: probes not scored within 60 s)"
    );
    println!();
    println!(
        "Ingest-to-score with no ingest load (20 probes, one at a time): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (others: {idle_others:.2} cores)",
        ms(idle.p50),
        ms(idle.p99),
        ms(idle.max)
    );

    if opts.score_seconds > 0 {
        progress("sustained load");
        let (batch, concurrency) = (100, 4);
        let rate = rows
            .iter()
            .find(|r| r.batch == batch && r.concurrency == concurrency)
            .map_or(3000.0, |r| r.load.rate());
        let n = ((rate * 1.5 * opts.score_seconds as f64) as usize).clamp(1000, 400_000);
        let feed = Feed::new(&generator, n, batch);
        quiesce(&ro, Duration::from_secs(300)).await;
        let c0 = cpu_sample(&db_name);
        let mut ended = Instant::now();
        let mut backlog = 0;
        let mut c1 = Cpu::default();
        let (load, samples) = probes
            .during(async {
                let load = run_load(
                    &client,
                    &app.address,
                    &key,
                    feed,
                    concurrency,
                    Duration::from_secs(opts.score_seconds),
                    opts.accept,
                )
                .await;
                ended = Instant::now();
                c1 = cpu_sample(&db_name);
                backlog = score_backlog(&ro).await;
                load
            })
            .await;
        let left = quiesce(&ro, Duration::from_secs(300)).await;
        let s = score_stats(&samples);
        println!(
            "Ingest-to-score under sustained load: batch {batch} × {concurrency} for {} s, {:.0} signals/s, {} errors (others: {:.2} cores)\n  {} probes: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, {} not scored within 60 s; rescore backlog at the end {backlog}, drained in {:.1} s{}",
            opts.score_seconds,
            load.rate(),
            load.errors,
            others_cores(c0, c1, cores),
            s.n,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            s.timeouts,
            ended.elapsed().as_secs_f64(),
            if left > 0 {
                format!(" ({left} still waiting)")
            } else {
                String::new()
            },
        );
    }
    println!();
    for (batch, concurrency, top) in &pg_statements {
        println!(
            "PostgreSQL's statements during the load of batch {batch} × {concurrency} (pg_stat_statements, the 10 it spent the most time executing; probes and the rescore worker included)"
        );
        println!("{top}");
    }
    println!("load average at the end: {}", load_average());
    println!(
        "Targets: batched ingest ≥ 40 % of plain INSERT; ingest-to-score p99 < 2 s. Rows that miss:"
    );
    let mut missed = false;
    for r in rows.iter().filter(|r| r.batch > 1) {
        let share = 100.0 * r.load.rate() / r.plain.rate();
        if share < 40.0 {
            missed = true;
            println!(
                "  batch {} × {}: {share:.1} % of plain INSERT",
                r.batch, r.concurrency
            );
        }
    }
    for r in &rows {
        if r.score.n > 0 && r.score.p99 >= Duration::from_secs(2) {
            missed = true;
            println!(
                "  batch {} × {}: ingest-to-score p99 {:.0} ms",
                r.batch,
                r.concurrency,
                ms(r.score.p99)
            );
        }
    }
    if !missed {
        println!("  none");
    }

    ro.close().await.ok();
    plain_db.close().await.ok();
    if opts.keep {
        println!();
        println!("kept the database: {url}");
        // Skips the harness's drop, which would drop the database; the process ends next.
        std::mem::forget(app);
        return;
    }
    app.shutdown().await.ok();
    // Shutting down drops the app, and with it its database.
}
