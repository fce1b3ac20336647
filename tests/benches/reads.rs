//! Read throughput and latency of the hot GraphQL queries over a large organization, on
//! PostgreSQL or SQLite. Prints figures; asserts nothing.
//!
//! With `BENCH_DATABASE_URL` (an admin URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable`; see `ingest.rs` for why TLS is
//! off) it creates a fresh database `ds_bench_<uuid>` there (dropped at the end); without it, a
//! SQLite file in a temporary directory. It starts the real server in-process on port 0 (rate
//! limits lifted, production pool), registers a user and an API key with `accounts:read` and
//! `signals:read`, and bulk-loads one organization with plain SQL: N accounts (80 % scored,
//! the rest unscored, so the list by score crosses from scored to unscored), 3N contacts (three
//! per account) and 10N signals (ten per account, event times over 30 days). Then, for each
//! query × concurrency, clients send requests back to back for `BENCH_SECONDS` and it prints
//! requests/s, p50/p99 latency, statements per request (the server's pool counts them), CPU per
//! request (this process and the database's backends: steadier than a rate on a shared
//! machine), the cores other processes took meanwhile and the process's resident memory (server
//! and client share it).
//!
//! Queries: the accounts page by score with score and five contacts each; `topAccounts`;
//! `account(id)` with its timeline; `signals(filter: {account})`; `search` for an account's
//! number (one account, its contacts and their e-mail domain match).
//!
//! Then the live fan-out: `BENCH_SUBSCRIBERS` WebSocket connections (graphql-transport-ws, the
//! read key) each subscribe to `signalCreated { id type metadata }`; one signal at a time is
//! ingested over REST and the bench waits until every subscriber has it, and prints delivery
//! latency (from the ingest request's start to each subscriber's receipt) p50/p99/max, deliveries
//! received of those expected, statements per signal (ingest included) and RSS with the
//! connections open. Last, RSS after `BENCH_IDLE_SECONDS` idle.
//!
//! `cargo bench -p devsignal-tests --bench reads` (release), or `--profile dev` for a quick look.
//! Knobs: `BENCH_ACCOUNTS` (N, default 100000 on PostgreSQL, 20000 on SQLite: a debug build of SQLite
//! loads ~10k signals/s),
//! `BENCH_SECONDS` (per query and concurrency, default 5), `BENCH_CONCURRENCY` (default `1,8`),
//! `BENCH_SUBSCRIBERS` (default 1000; 0 skips the fan-out), `BENCH_FANOUT_SIGNALS` (default 20),
//! `BENCH_IDLE_SECONDS` (default 10), `BENCH_SEED`, `BENCH_KEEP=1` (keep the database and print
//! its URL), `BENCH_QUERIES` (comma-separated parts of the names of the queries to run, e.g.
//! `accounts page,search`; all by default).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use devsignal_tests::bench::{
    Cpu, api_source, cores, cpu_sample, env_list, env_or, load_average, load_fixture, ms,
    others_cores, ours_ms, percentile, profile, progress, redis_state, row_id, rss_mb,
};
use devsignal_tests::{TestApp, TestDatabase, spawn_on};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

struct Opts {
    admin_url: Option<String>,
    accounts: usize,
    seconds: u64,
    concurrency: Vec<usize>,
    seed: u64,
    keep: bool,
    subscribers: usize,
    fanout_signals: usize,
    idle_seconds: u64,
    /// Runs only the queries whose names contain one of these (comma-separated).
    only: Option<String>,
}

impl Opts {
    fn from_env() -> Self {
        let admin_url = std::env::var("BENCH_DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty());
        let default_accounts = if admin_url.is_some() { 100_000 } else { 20_000 };
        Opts {
            accounts: env_or("BENCH_ACCOUNTS", default_accounts).max(10),
            admin_url,
            seconds: env_or("BENCH_SECONDS", 5u64).max(1),
            concurrency: env_list("BENCH_CONCURRENCY", &[1, 8]),
            seed: env_or("BENCH_SEED", 22u64),
            keep: env_or("BENCH_KEEP", 0u8) == 1,
            subscribers: env_or("BENCH_SUBSCRIBERS", 1000usize),
            fanout_signals: env_or("BENCH_FANOUT_SIGNALS", 20usize).max(1),
            idle_seconds: env_or("BENCH_IDLE_SECONDS", 10u64),
            only: std::env::var("BENCH_QUERIES")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    }
}

/// SplitMix64, for picking accounts.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

const ACCOUNTS_PAGE: &str = "{ accounts(first: 50, orderBy: {field: SCORE, direction: DESC}) { edges { node { name domain score { score tier } contacts(first: 5) { email } } } } }";
const TOP_ACCOUNTS: &str = "{ topAccounts(first: 10) { name domain score { score tier } } }";
const ACCOUNT_TIMELINE: &str = "query($id: ID!) { account(id: $id) { name domain score { score tier } timeline(first: 20) { edges { node { __typename ... on Signal { type timestamp } ... on Activity { title } } } } } }";
const ACCOUNT_SIGNALS: &str = "query($id: ID!) { signals(first: 20, filter: {account: $id}) { edges { node { id type timestamp } } } }";
const SEARCH: &str = "query($q: String!) { search(query: $q, first: 20) { rank item { __typename ... on Account { name } ... on Contact { email } } } }";

/// A GraphQL answer as the load checks it: valid JSON, `errors` absent.
#[derive(serde::Deserialize)]
struct Answer {
    #[allow(dead_code)]
    data: Option<serde::de::IgnoredAny>,
    errors: Option<serde::de::IgnoredAny>,
}

/// A query and how each request picks its variables.
struct Query {
    name: &'static str,
    text: &'static str,
    vars: fn(&mut Rng, usize) -> Value,
}

const QUERIES: &[Query] = &[
    Query {
        name: "accounts page by score",
        text: ACCOUNTS_PAGE,
        vars: |_, _| json!({}),
    },
    Query {
        name: "topAccounts",
        text: TOP_ACCOUNTS,
        vars: |_, _| json!({}),
    },
    Query {
        name: "account + timeline",
        text: ACCOUNT_TIMELINE,
        vars: |r, n| json!({"id": row_id('a', r.below(n))}),
    },
    Query {
        name: "signals of an account",
        text: ACCOUNT_SIGNALS,
        vars: |r, n| json!({"id": row_id('a', r.below(n))}),
    },
    Query {
        name: "search",
        text: SEARCH,
        vars: |r, n| json!({"q": r.below(n).to_string()}),
    },
];

struct Run {
    query: &'static str,
    concurrency: usize,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    statements: u64,
    others: f64,
    /// CPU of this process and the database per request, ms.
    cpu: f64,
    rss: f64,
}

/// Where requests go and what they may pick from.
struct Target {
    client: reqwest::Client,
    url: String,
    key: String,
    /// Accounts in the fixture.
    n: usize,
    seed: u64,
}

async fn run(
    t: &Target,
    q: &Query,
    concurrency: usize,
    seconds: u64,
) -> (usize, usize, Duration, Vec<Duration>) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for lane in 0..concurrency {
        let (client, url, key) = (t.client.clone(), t.url.clone(), t.key.clone());
        let (text, vars, n, seed) = (q.text, q.vars, t.n, t.seed);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(lane as u64));
            let (mut requests, mut errors, mut latencies) = (0, 0, Vec::new());
            while Instant::now() < deadline {
                let body = json!({"query": text, "variables": vars(&mut rng, n)});
                let t = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("x-api-key", &key)
                    .json(&body)
                    .send()
                    .await
                {
                    // Checked as JSON without building it: the client's share of the cores
                    // is the server's to use.
                    Ok(r) if r.status().is_success() => r
                        .bytes()
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Answer>(&b).ok())
                        .is_some_and(|a| a.errors.is_none()),
                    _ => false,
                };
                latencies.push(t.elapsed());
                requests += 1;
                errors += usize::from(!ok);
            }
            (requests, errors, latencies)
        }));
    }
    let (mut requests, mut errors, mut latencies) = (0, 0, Vec::new());
    for t in tasks {
        let (r, e, l) = t.await.unwrap();
        requests += r;
        errors += e;
        latencies.extend(l);
    }
    latencies.sort();
    (requests, errors, started.elapsed(), latencies)
}

// ---------------------------------------------------------------------------------------------
// Live fan-out
// ---------------------------------------------------------------------------------------------

const FANOUT: &str = "subscription { signalCreated { id type metadata } }";

struct Fanout {
    setup_secs: f64,
    /// Every delivery's latency, sorted.
    latencies: Vec<Duration>,
    /// Per signal: from the ingest request's start to the last subscriber's receipt, sorted.
    rounds: Vec<Duration>,
    statements: u64,
    others: f64,
    rss: f64,
}

/// Opens `subscribers` subscriptions, then ingests `signals` signals one at a time, each after
/// every subscriber has the one before (or 30 s have passed).
async fn fanout(
    app: &TestApp,
    client: &reqwest::Client,
    key: &str,
    write_key: &str,
    subscribers: usize,
    signals: usize,
    db_name: &str,
) -> Fanout {
    use devsignal_tests::WsClient;
    use tokio::sync::{Semaphore, mpsc};

    progress(&format!("fan-out: connecting {subscribers} subscribers"));
    let started = Instant::now();
    let url = format!("ws://127.0.0.1:{}/api/v1/graphql/ws", app.port);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let opening = std::sync::Arc::new(Semaphore::new(32));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let (url, key, tx, ready_tx) = (url.clone(), key.to_owned(), tx.clone(), ready_tx.clone());
        let opening = opening.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = {
                let _slot = opening.acquire().await.unwrap();
                let mut ws = WsClient::connect(&url, "graphql-transport-ws").await;
                let ack = ws.init(json!({"apiKey": key})).await;
                assert_eq!(ack["type"], "connection_ack", "{ack}");
                ws.subscribe("s", FANOUT, json!({})).await;
                ws
            };
            ready_tx.send(()).ok();
            while let Some(msg) = ws.next(Duration::from_secs(600)).await {
                let seq = msg["payload"]["data"]["signalCreated"]["metadata"]["seq"].as_u64();
                if let Some(seq) = seq {
                    tx.send((seq, Instant::now())).ok();
                }
            }
        }));
    }
    drop((tx, ready_tx));
    for _ in 0..subscribers {
        ready_rx.recv().await.expect("a subscriber connected");
    }
    // A subscription is live once it has had a signal: the first one (seq 0) is not measured.
    let send = |seq: u64| {
        let body = json!({"type": "fanout", "actor": {"email": "fan@gmail.com"}, "metadata": {"seq": seq}});
        let req = client
            .post(app.url("/api/v1/signals"))
            .header("x-api-key", write_key)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            assert!(
                resp.status().is_success(),
                "fan-out signal: {}",
                resp.status()
            );
        }
    };
    let mut got = 0;
    send(0).await;
    while got < subscribers {
        let (seq, _) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("every subscriber has the first signal within 60 s")
            .expect("subscribers running");
        got += usize::from(seq == 0);
    }
    let setup_secs = started.elapsed().as_secs_f64();

    progress(&format!(
        "fan-out: {signals} signals to {subscribers} subscribers"
    ));
    let statements = app.state.metrics.db_statements.clone();
    let (s0, c0) = (statements.get(), cpu_sample(db_name));
    let (mut latencies, mut rounds) = (Vec::new(), Vec::new());
    for seq in 1..=signals as u64 {
        let sent = Instant::now();
        send(seq).await;
        let mut last = sent;
        let mut got = 0;
        let deadline = sent + Duration::from_secs(30);
        while got < subscribers {
            let Ok(Some((s, at))) = tokio::time::timeout_at(deadline.into(), rx.recv()).await
            else {
                break;
            };
            if s == seq {
                got += 1;
                latencies.push(at - sent);
                last = last.max(at);
            }
        }
        rounds.push(last - sent);
    }
    let (statements, others, rss) = (
        statements.get() - s0,
        others_cores(c0, cpu_sample(db_name), cores()),
        rss_mb(),
    );
    for t in tasks {
        t.abort();
    }
    latencies.sort();
    rounds.sort();
    Fanout {
        setup_secs,
        latencies,
        rounds,
        statements,
        others,
        rss,
    }
}

#[tokio::main]
async fn main() {
    let opts = Opts::from_env();
    let test_db = match &opts.admin_url {
        Some(admin) => TestDatabase::postgres(admin, "ds_bench").await,
        None => TestDatabase::sqlite(),
    };
    let url = test_db.url.clone();
    let pg = test_db.is_postgres();
    let db_name = if pg {
        url.rsplit('/')
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        // No PostgreSQL backend is ours.
        "-".into()
    };
    let mut vars = devsignal_tests::bench::server_vars(&test_db);
    // Every subscriber connects from 127.0.0.1 with the same key.
    vars.insert(
        "WS_MAX_CONNECTIONS".into(),
        (opts.subscribers + 10).to_string(),
    );
    let rss_start = rss_mb();
    let app: TestApp = spawn_on(test_db, vars).await;
    let rss_started = rss_mb();
    let cfg = app.state.config.clone();
    let session = app.register("bench@bench-owner.io", "Bench Org").await;
    let org = Uuid::parse_str(&session.organization_id).unwrap();
    let write_key = app.api_key(&session, &["signals:write"]).await;
    let key = app
        .api_key(
            &session,
            &[
                "accounts:read",
                "contacts:read",
                "activities:read",
                "signals:read",
            ],
        )
        .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let db = domain::db::connect(
        &url,
        &domain::db::PoolSettings {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await
    .expect("fixture connection");
    let source = api_source(&app, &write_key, &db, org).await;

    let n = opts.accounts;
    let t = Instant::now();
    load_fixture(&db, org, source, n).await;
    let load_secs = t.elapsed().as_secs_f64();
    let version = if pg {
        let v: String = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SHOW server_version",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        format!("PostgreSQL {v}")
    } else {
        let v: String = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT sqlite_version()",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        format!("SQLite {v}")
    };
    db.close().await.ok();

    let cores = cores();
    println!("DevSignal read benchmark");
    println!(
        "machine: {cores} cores (load average {} at start) | {version} | Redis {} | profile {} | {n} accounts, {} contacts, {} signals (loaded in {load_secs:.1} s) | {} s per query and concurrency",
        load_average(),
        redis_state(&app),
        profile(),
        3 * n,
        10 * n,
        opts.seconds,
    );
    println!(
        "server: in-process, pool {} connections; client, server and database share the cores; requests with an API key (accounts:read, signals:read)",
        cfg.database_max_connections
    );
    println!();

    let target = Target {
        client: client.clone(),
        url: format!("{}/api/v1/graphql", app.address),
        key: key.clone(),
        n,
        seed: opts.seed,
    };
    let statements = app.state.metrics.db_statements.clone();
    let rss_loaded = rss_mb();
    let mut runs = Vec::new();
    for q in QUERIES {
        if opts
            .only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|o| q.name.contains(o.trim())))
        {
            continue;
        }
        // Warm-up: connections, prepared statements, caches.
        run(&target, q, 2, 1).await;
        for &concurrency in &opts.concurrency {
            progress(&format!("{} × {concurrency}", q.name));
            let s0 = statements.get();
            let c0: Cpu = cpu_sample(&db_name);
            let (requests, errors, elapsed, latencies) =
                run(&target, q, concurrency, opts.seconds).await;
            let c1 = cpu_sample(&db_name);
            runs.push(Run {
                query: q.name,
                concurrency,
                requests,
                errors,
                elapsed,
                latencies,
                statements: statements.get() - s0,
                others: others_cores(c0, c1, cores),
                cpu: ours_ms(c0, c1) / requests.max(1) as f64,
                rss: rss_mb(),
            });
        }
    }

    println!(
        "{:<24} {:>5} {:>9} {:>8} {:>8} {:>8} {:>7} {:>10} {:>8} {:>7} {:>7}",
        "query",
        "conc",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "stmts/req",
        "cpu ms",
        "others",
        "RSS MB"
    );
    for r in &runs {
        println!(
            "{:<24} {:>5} {:>9} {:>8.0} {:>8.1} {:>8.1} {:>7} {:>10.1} {:>8.2} {:>7.2} {:>7.0}",
            r.query,
            r.concurrency,
            r.requests,
            r.requests as f64 / r.elapsed.as_secs_f64(),
            ms(percentile(&r.latencies, 0.50)),
            ms(percentile(&r.latencies, 0.99)),
            r.errors,
            r.statements as f64 / r.requests.max(1) as f64,
            r.cpu,
            r.others,
            r.rss,
        );
    }
    println!(
        "(stmts/req: statements on the server's pool per request, authentication included; cpu ms: CPU per request of this process and the database's backends; others: cores used by other processes meanwhile; RSS: this process — server and client — after the run)"
    );
    if opts.subscribers > 0 {
        println!();
        let f = fanout(
            &app,
            &client,
            &key,
            &write_key,
            opts.subscribers,
            opts.fanout_signals,
            &db_name,
        )
        .await;
        println!(
            "signalCreated fan-out: {} subscribers (connected and subscribed in {:.1} s), {} signals one at a time",
            opts.subscribers, f.setup_secs, opts.fanout_signals
        );
        println!(
            "  deliveries {}/{} | latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | every subscriber served in {:.1} ms per signal (p50) | {:.1} statements per signal (ingest included) | others {:.2} cores | RSS {:.0} MB with the connections open",
            f.latencies.len(),
            opts.subscribers * opts.fanout_signals,
            ms(percentile(&f.latencies, 0.50)),
            ms(percentile(&f.latencies, 0.99)),
            ms(f.latencies.last().copied().unwrap_or_default()),
            ms(percentile(&f.rounds, 0.50)),
            f.statements as f64 / opts.fanout_signals as f64,
            f.others,
            f.rss,
        );
        println!(
            "  (latency: from the start of the ingest request to a subscriber's receipt; the subscribers are this process's own WebSocket clients)"
        );
    }
    let rss_end = rss_mb();
    if opts.idle_seconds > 0 {
        progress(&format!("idle {} s", opts.idle_seconds));
        tokio::time::sleep(Duration::from_secs(opts.idle_seconds)).await;
    }
    println!();
    println!(
        "RSS: {rss_start:.0} MB before the server started, {rss_started:.0} MB once it answered, {rss_loaded:.0} MB after loading, {rss_end:.0} MB at the end, {:.0} MB after {} s idle; load average at the end: {}",
        rss_mb(),
        opts.idle_seconds,
        load_average()
    );

    if opts.keep {
        println!();
        println!("kept the database: {url}");
        std::mem::forget(app);
        return;
    }
    app.shutdown().await.ok();
}
