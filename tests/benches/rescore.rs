//! Bulk rescoring: how fast a whole organization is recomputed and how much memory it takes, on
//! PostgreSQL or SQLite. Prints figures; asserts nothing.
//!
//! With `BENCH_DATABASE_URL` (an admin URL, as for `reads.rs`) it creates a fresh database there
//! (dropped at the end); without it, a SQLite file in a temporary directory. It starts the real
//! server in-process on port 0, registers an owner and bulk-loads one organization with plain SQL
//! ([`devsignal_tests::bench::load_fixture`]: N accounts, 3N contacts, 10N signals, 80 % of the
//! accounts scored). Then it runs the nightly recompute (`domain::scoring::rescore_organization`)
//! directly, and prints accounts/s with the process's resident memory: before, the peak during
//! the run (sampled every 50 ms, and `VmHWM` reset just before the run) and after. Then it does
//! the same for the admin's `recomputeScores` (the server's worker runs it as `recompute-scores`
//! jobs; the bench polls `scoreRecompute` until it finished). The server,
//! its allocator and SQLite's page cache share this process, so on SQLite the figures include
//! the database's own memory.
//!
//! `cargo bench -p devsignal-tests --bench rescore` (release), or `--profile dev` for a quick
//! look. Knobs: `BENCH_ACCOUNTS` (N, default 100000), `BENCH_IDLE_SECONDS` (how long to idle
//! after the run before the final RSS, default 5), `BENCH_BREAKDOWN_PAGES` (pages timed phase by
//! phase at the end, default 10). For analysis on PostgreSQL: `BENCH_LOG_STATEMENTS=1` makes the
//! server log every statement of the bench database with its duration
//! (`log_min_duration_statement = 0`, parameters left out; superuser only; keep N small).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use devsignal_tests::bench::{
    api_source, env_or, load_fixture, profile, progress, rss_by_kind, rss_mb,
};
use devsignal_tests::{TestApp, TestDatabase, spawn_on};
use domain::scoring::RECOMPUTE_CHUNK as CHUNK;
use uuid::Uuid;

/// Statements per chunk of [`CHUNK`] accounts, from the server's statement counter (every
/// statement of both pools, so the worker's and the GraphQL polls' too).
fn per_chunk(statements: u64, accounts: usize) -> f64 {
    statements as f64 / accounts.div_ceil(CHUNK).max(1) as f64
}

/// The process's peak resident memory in MB since the last [`reset_peak`] (`VmHWM`).
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets `VmHWM` to the current RSS (proc(5), `clear_refs` value 5); ignored where refused.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").ok();
}

/// Samples RSS every 50 ms until stopped; returns the highest sample in MB.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kb = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_kb.clone());
        let handle = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max((rss_mb() * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Sampler {
            stop,
            peak_kb,
            handle,
        }
    }

    async fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.ok();
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

#[tokio::main]
async fn main() {
    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let n: usize = env_or("BENCH_ACCOUNTS", 100_000usize).max(10);
    let idle: u64 = env_or("BENCH_IDLE_SECONDS", 5);
    let test_db = match &admin_url {
        Some(admin) => TestDatabase::postgres(admin, "ds_bench").await,
        None => TestDatabase::sqlite(),
    };
    let backend = if test_db.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let url = test_db.url.clone();
    if let (Some(admin), true) = (&admin_url, env_or("BENCH_LOG_STATEMENTS", 0u8) == 1) {
        let name = url.rsplit('/').next().unwrap_or_default();
        let name = name.split('?').next().unwrap_or_default();
        let admin = sea_orm::Database::connect(admin)
            .await
            .expect("admin connection");
        for setting in [
            "log_min_duration_statement = 0",
            "log_parameter_max_length = 0",
        ] {
            sea_orm::ConnectionTrait::execute_unprepared(
                &admin,
                &format!("ALTER DATABASE {name} SET {setting}"),
            )
            .await
            .expect("logging statements needs a superuser");
        }
        admin.close().await.ok();
    }
    let vars = devsignal_tests::bench::server_vars(&test_db);
    let app: TestApp = spawn_on(test_db, vars).await;
    let session = app.register("bench@bench-owner.io", "Bench Org").await;
    let org = Uuid::parse_str(&session.organization_id).unwrap();
    let write_key = app.api_key(&session, &["signals:write"]).await;
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
    let t = Instant::now();
    load_fixture(&db, org, source, n).await;
    let load_secs = t.elapsed().as_secs_f64();
    db.close().await.ok();

    println!("DevSignal rescore benchmark");
    println!(
        "{backend} | profile {} | allocator: {} | {n} accounts, {} contacts, {} signals (loaded in {load_secs:.1} s)",
        profile(),
        server::ALLOCATOR,
        3 * n,
        10 * n,
    );

    // The nightly recompute, called as its job calls it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_mb();
    reset_peak();
    let sampler = Sampler::start();
    progress("nightly recompute");
    let statements = app.state.metrics.db_statements.get();
    let t = Instant::now();
    let scored = domain::scoring::rescore_organization(&app.state.db, org)
        .await
        .expect("recompute");
    let secs = t.elapsed().as_secs_f64();
    let statements = app.state.metrics.db_statements.get() - statements;
    let sampled = sampler.finish().await;
    let right_after = rss_mb();
    let kinds = rss_by_kind();
    tokio::time::sleep(Duration::from_secs(idle)).await;
    println!(
        "nightly recompute: {scored} accounts in {secs:.1} s = {:.0} accounts/s | {:.1} statements per chunk of {CHUNK} | RSS MB: before {before:.0} | peak {:.0} (sampled {sampled:.0}) | right after {right_after:.0} | after {idle} s idle {:.0}",
        scored as f64 / secs,
        per_chunk(statements, scored),
        peak_mb(),
        rss_mb(),
    );
    println!("  right after, by kind: {kinds}");

    // The admin's recompute: `recomputeScores` starts it, the server's worker runs it in chunks
    // (handing over to a fresh job every few), `scoreRecompute` reads its progress.
    let before = rss_mb();
    reset_peak();
    let sampler = Sampler::start();
    progress("recomputeScores");
    let statements = app.state.metrics.db_statements.get();
    let t = Instant::now();
    let r = app
        .graphql_as(
            session.token(),
            "mutation { recomputeScores { id total } }",
            serde_json::json!({}),
        )
        .await;
    let id = r["data"]["recomputeScores"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("recomputeScores: {r}"))
        .to_owned();
    let done = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = app
            .graphql_as(
                session.token(),
                "query($id: ID!) { scoreRecompute(id: $id) { status processed total } }",
                serde_json::json!({"id": id}),
            )
            .await;
        let rc = r["data"]["scoreRecompute"].clone();
        if rc["status"] != "RUNNING" {
            break rc;
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let statements = app.state.metrics.db_statements.get() - statements;
    let sampled = sampler.finish().await;
    let right_after = rss_mb();
    let kinds = rss_by_kind();
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let processed = done["processed"].as_f64().unwrap_or(0.0);
    println!(
        "recomputeScores job: {} {processed} of {} accounts in {secs:.1} s = {:.0} accounts/s | {:.1} statements per chunk of {CHUNK} (with the polls and the worker's own) | RSS MB: before {before:.0} | peak {:.0} (sampled {sampled:.0}) | right after {right_after:.0} | after {idle} s idle {:.0}",
        done["status"].as_str().unwrap_or("?"),
        done["total"],
        processed / secs,
        per_chunk(statements, processed as usize),
        peak_mb(),
        rss_mb(),
    );
    println!("  right after, by kind: {kinds}");

    // Where a chunk's time goes: the keyset page, the model's inputs (four reads), the model
    // itself, and the whole chunk (reads, model and the writes: scores, the accounts' copies,
    // events), over the first pages.
    let pages: usize = env_or("BENCH_BREAKDOWN_PAGES", 10);
    let db = &app.state.db;
    let now = chrono::Utc::now();
    let since = domain::scoring::window_start(now);
    let (_, config) = domain::scoring::current_config(db, org).await.unwrap();
    let (mut t_page, mut t_inputs, mut t_model, mut t_chunk) = (0.0, 0.0, 0.0, 0.0);
    let (mut cursor, mut accounts, mut signals) = (None, 0usize, 0usize);
    for _ in 0..pages {
        let t = Instant::now();
        let page = domain::scoring::scorable_page(db, org, since, cursor, CHUNK)
            .await
            .unwrap();
        t_page += t.elapsed().as_secs_f64();
        let Some(last) = page.last().copied() else {
            break;
        };
        let t = Instant::now();
        let inputs = domain::scoring::load_inputs(db, org, &page, now)
            .await
            .unwrap();
        t_inputs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (_, i) in inputs.values() {
            signals += i.signals.len();
            std::hint::black_box(domain::scoring::compute(&config, i, now));
        }
        t_model += t.elapsed().as_secs_f64();
        let t = Instant::now();
        domain::scoring::rescore(db, org, &page).await.unwrap();
        t_chunk += t.elapsed().as_secs_f64();
        accounts += page.len();
        cursor = Some(last);
    }
    let per = |secs: f64| 1000.0 * secs / (accounts.max(1) as f64 / CHUNK as f64);
    println!(
        "per chunk of {CHUNK} ({accounts} accounts, {signals} signals): page {:.1} ms | inputs {:.1} ms | model {:.1} ms | whole chunk {:.1} ms (so writes ≈ {:.1} ms)",
        per(t_page),
        per(t_inputs),
        per(t_model),
        per(t_chunk),
        per(t_chunk - t_inputs - t_model),
    );
}
