//! GitHub connector bench: a fake repository with 20,000 stargazers, 2,000 forks and 5,000
//! issues (every stargazer, forker and author with a profile) synced from empty through the
//! real server and its worker, then synced again. Prints requests, wall time and signals/s of
//! the first sync, and the re-sync's requests. Asserts nothing.
//!
//! `cargo bench -p devsignal-tests --bench connectors` (add `--profile dev` for a quick look).
//! The database is SQLite unless `TEST_DATABASE_URL` names a PostgreSQL server (a fresh
//! database is created there). `BENCH_STARS`, `BENCH_FORKS`, `BENCH_ISSUES` change the sizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

use devsignal_tests::connectors::{connect, signals, sync_within};
use devsignal_tests::fakes::github::FakeGitHub;
use devsignal_tests::spawn_app_with;
use serde_json::json;

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let (stars, forks, issues) = (
        var("BENCH_STARS", 20_000),
        var("BENCH_FORKS", 2_000),
        var("BENCH_ISSUES", 5_000),
    );
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(stars, forks, issues));
    // A budget that never runs out: the bench measures the sync, not GitHub's 5,000 an hour
    // (with which this first sync would stop after 5,000 requests and continue at the reset).
    gh.with(|d| {
        d.limit = u64::MAX / 2;
        d.remaining = u64::MAX / 2;
    });
    for i in 0..stars {
        gh.user(&format!("user{i}"), json!({"company": if i % 3 == 0 { "@acme" } else { "" }, "blog": if i % 3 == 1 { format!("https://co{}.example.com", i % 500) } else { String::new() }}));
    }
    for i in 0..forks {
        gh.user(&format!("forker{i}"), json!({"company": "@globex"}));
    }
    for i in 0..50 {
        gh.user(
            &format!("author{i}"),
            json!({"email": format!("a{i}@initech.com")}),
        );
    }
    let app = spawn_app_with(&[("GITHUB_API_URL", &gh.url)]).await;
    let backend = if app.test_db.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let s = app.register("bench@vendor.io", "Bench").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;

    println!("connectors bench: {stars} stargazers, {forks} forks, {issues} issues; {backend}");
    let t = Instant::now();
    let run = sync_within(&app, &s, &id, false, HOUR).await;
    let secs = t.elapsed().as_secs_f64();
    let created = run["signalsCreated"].as_u64().unwrap_or(0);
    println!(
        "first sync: {} ({}), {} requests, {:.1} s, {} signals, {:.0} signals/s",
        run["status"],
        run["error"],
        run["requests"],
        secs,
        created,
        created as f64 / secs
    );
    println!("signals stored: {}", signals(&app, None).await);
    gh.clear_hits();
    let t = Instant::now();
    let run = sync_within(&app, &s, &id, false, HOUR).await;
    let hits = gh.hits();
    println!(
        "re-sync: {}, {} requests ({} answered 304), {} signals, {:.2} s",
        run["status"],
        run["requests"],
        hits.iter().filter(|h| h.status == 304).count(),
        run["signalsCreated"],
        t.elapsed().as_secs_f64()
    );
}
