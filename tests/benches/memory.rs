//! Whether the process gives memory back after a spike. Prints figures; asserts nothing.
//!
//! It starts the real server in-process on a SQLite file (so the server, its allocator and the
//! client share one process, whose resident memory is read from `/proc/self/status`), loads a
//! small organization whose accounts carry long descriptions, and sends rounds of concurrent
//! requests whose responses are each a few MB (below `GRAPHQL_MAX_RESPONSE_BYTES`, 8 MiB). Then it
//! idles and prints the resident memory before the spike, at its peak (`VmHWM`) and after each
//! idle step. A process that returns memory falls back towards the level before the spike; one
//! that keeps it (glibc's per-thread arenas) stays near the peak.
//!
//! `cargo bench -p devsignal-tests --bench memory` (release), or `--profile dev` for a quick look.
//! Knobs: `BENCH_CONCURRENCY` (requests at once, default 24), `BENCH_ROUNDS` (default 4),
//! `BENCH_RESPONSE_KB` (size of each response, default 6000), `BENCH_IDLE_SECONDS` (default 10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use devsignal_tests::bench::{api_source, env_or, load_fixture, profile, progress, rss_mb};
use devsignal_tests::{TestApp, TestDatabase, spawn_on};
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

/// The process's peak resident memory in MB (`VmHWM`).
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

#[tokio::main]
async fn main() {
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 24);
    let rounds: usize = env_or("BENCH_ROUNDS", 4);
    let response_kb: usize = env_or("BENCH_RESPONSE_KB", 6000);
    let idle: u64 = env_or("BENCH_IDLE_SECONDS", 10);
    let rows = 100usize;
    let per_row = response_kb * 1024 / rows;

    let test_db = TestDatabase::sqlite();
    let url = test_db.url.clone();
    let vars = devsignal_tests::bench::server_vars(&test_db);
    let app: TestApp = spawn_on(test_db, vars).await;
    let session = app.register("bench@bench-owner.io", "Bench Org").await;
    let org = Uuid::parse_str(&session.organization_id).unwrap();
    let write_key = app.api_key(&session, &["signals:write"]).await;
    let key = app.api_key(&session, &["accounts:read"]).await;
    let db = domain::db::connect(&url, &domain::db::PoolSettings::default())
        .await
        .expect("fixture connection");
    let source = api_source(&app, &write_key, &db, org).await;
    load_fixture(&db, org, source, rows).await;
    db.execute_unprepared(&format!(
        "UPDATE companies SET description = printf('%.*c', {per_row}, 'x')"
    ))
    .await
    .unwrap();
    db.close().await.ok();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let query = json!({"query": format!(
        "{{ accounts(first: {rows}) {{ edges {{ node {{ id name description }} }} }} }}"
    )});
    let graphql = format!("{}/api/v1/graphql", app.address);

    println!("DevSignal memory benchmark");
    println!(
        "profile {} | allocator: {} | {rounds} rounds of {concurrency} concurrent responses of ~{response_kb} KB | idle {idle} s",
        profile(),
        server::ALLOCATOR,
    );
    let before = rss_mb();
    progress("spike");
    let started = Instant::now();
    let (mut ok, mut bytes) = (0usize, 0usize);
    for _ in 0..rounds {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, url, key, query) =
                    (client.clone(), graphql.clone(), key.clone(), query.clone());
                tokio::spawn(async move {
                    let r = client
                        .post(url)
                        .header("x-api-key", key)
                        .json(&query)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let body = r.bytes().await.unwrap();
                    let good = status.is_success() && !body.starts_with(b"{\"errors\"");
                    if !good {
                        let head = String::from_utf8_lossy(&body[..body.len().min(200)]);
                        eprintln!("a response failed: {status} {head}");
                    }
                    (good, body.len())
                })
            })
            .collect();
        for t in tasks {
            let (good, n) = t.await.unwrap();
            ok += usize::from(good);
            bytes += n;
        }
    }
    let spike = started.elapsed();
    let after_spike = rss_mb();
    println!(
        "spike: {ok} of {} responses answered, {:.0} MB in {:.1} s",
        rounds * concurrency,
        bytes as f64 / 1e6,
        spike.as_secs_f64()
    );
    let mut line = format!(
        "RSS MB: before {before:.0} | peak {:.0} | right after {after_spike:.0}",
        peak_mb()
    );
    let mut waited = 0;
    for step in [1u64, 4, 5, 10, 20] {
        if waited + step > idle {
            break;
        }
        tokio::time::sleep(Duration::from_secs(step)).await;
        waited += step;
        line.push_str(&format!(" | idle {waited} s {:.0}", rss_mb()));
    }
    println!("{line}");
    // A small request after idling: allocators that return memory lazily do it on the next use.
    let r = client
        .post(&graphql)
        .header("x-api-key", &key)
        .json(&json!({"query": "{ accounts(first: 1) { edges { node { id } } } }"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("RSS MB after one small request: {:.0}", rss_mb());
}
