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
//! Then it starts the `devsignal` binary of the same profile as a process of its own
//! (`devsignal serve`: app and worker, SQLite, no dashboard when built with
//! `DEVSIGNAL_SKIP_FRONTEND=1`) and prints that process's resident memory 5 s after it answers,
//! at its peak under `BENCH_SERVE_SECONDS` of batched ingest and list pages from 8 clients, and
//! after idling: the figures an operator sees, without this bench's client in them.
//!
//! Knobs: `BENCH_CONCURRENCY` (requests at once, default 24), `BENCH_ROUNDS` (default 4),
//! `BENCH_RESPONSE_KB` (size of each response, default 6000), `BENCH_IDLE_SECONDS` (default 10),
//! `BENCH_SERVE_SECONDS` (default 10; 0 skips the separate process), `BENCH_SERVE_ENV`
//! (`NAME=value` pairs separated by spaces, given to `devsignal serve`: to try a setting such as
//! `DATABASE_MAX_CONNECTIONS=4` or `MALLOC_CONF=…`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use devsignal_tests::bench::{api_source, env_or, load_fixture, profile, progress, rss_mb, rss_of};
use devsignal_tests::{TestApp, TestDatabase, spawn_on};
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

/// The process's peak resident memory in MB (`VmHWM`).
fn peak_mb() -> f64 {
    rss_of("self").1
}

/// `devsignal serve` (app and worker in one process, SQLite, this bench's profile) on its own:
/// its resident memory once it has answered and idled, at its peak under a burst of batched
/// ingest and list pages from 8 clients, and after idling again. Returns the printed line.
async fn serve_alone(idle: u64, load_seconds: u64) -> String {
    use devsignal_tests::processes::{Proc, free_port};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let data = dir.path().display().to_string();
    let lifted = "1000000000";
    let extra = std::env::var("BENCH_SERVE_ENV").unwrap_or_default();
    let mut env = vec![
        ("PORT", port.as_str()),
        ("DATA_DIR", data.as_str()),
        ("RUST_LOG", "warn"),
        ("RATE_LIMIT_API", lifted),
        ("RATE_LIMIT_SIGNAL", lifted),
        ("RATE_LIMIT_AUTH", lifted),
    ];
    env.extend(extra.split_whitespace().filter_map(|kv| kv.split_once('=')));
    let proc = Proc::start(dir.path(), &["serve"], &env);
    let pid = proc.pid().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        let up = client.get(format!("{base}/health")).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (started, _) = rss_of(&pid);
    let at_start = inside(&client, &base).await;

    let answer = |req: reqwest::RequestBuilder, body: serde_json::Value| async move {
        let resp = req.json(&body).send().await.unwrap();
        resp.json::<serde_json::Value>().await.unwrap()
    };
    let r = answer(
        client.post(format!("{base}/api/v1/auth/register")),
        json!({"email": "bench@bench-owner.io", "password": devsignal_tests::TEST_PASSWORD, "name": "Bench", "organizationName": "Bench Org"}),
    )
    .await;
    let token = r["accessToken"].as_str().expect("registered").to_owned();
    let r = answer(
        client.post(format!("{base}/api/v1/graphql")).bearer_auth(&token),
        json!({"query": "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key } }", "variables": {"i": {"name": "bench", "scopes": ["signals:write", "accounts:read"]}}}),
    )
    .await;
    let key = r["data"]["createApiKey"]["key"]
        .as_str()
        .expect("an API key")
        .to_owned();
    progress(&format!(
        "devsignal serve alone: {load_seconds} s of load{}",
        if extra.is_empty() {
            String::new()
        } else {
            format!(" ({extra})")
        }
    ));
    let deadline = Instant::now() + Duration::from_secs(load_seconds);
    let lanes: Vec<_> = (0..8u64)
        .map(|lane| {
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let ok = if n.is_multiple_of(2) {
                        let signals: Vec<_> = (0..100)
                            .map(|i| {
                                let who = (lane * 1_000_003 + n * 100 + i) % 20_000;
                                json!({"type": "page_view", "actor": {"email": format!("dev{who}@co{}.io", who % 2_000)}})
                            })
                            .collect();
                        client
                            .post(format!("{base}/api/v1/signals/batch"))
                            .header("x-api-key", &key)
                            .json(&json!({"signals": signals}))
                            .send()
                            .await
                    } else {
                        client
                            .post(format!("{base}/api/v1/graphql"))
                            .header("x-api-key", &key)
                            .json(&json!({"query": "{ accounts(first: 50) { edges { node { name domain contacts(first: 5) { email } } } } }"}))
                            .send()
                            .await
                    };
                    assert!(ok.is_ok_and(|r| r.status().is_success()), "a request failed");
                }
                n
            })
        })
        .collect();
    let mut requests = 0;
    for lane in lanes {
        requests += lane.await.unwrap();
    }
    let (loaded, peak) = rss_of(&pid);
    let at_end = inside(&client, &base).await;
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let (rested, _) = rss_of(&pid);
    let rested_inside = inside(&client, &base).await;
    drop(proc);
    format!(
        "devsignal serve alone (app + worker, SQLite, {} profile): RSS {started:.0} MB 5 s after it answered ({at_start}) | {requests} requests in {load_seconds} s (batches of 100 signals and account pages, 8 clients): peak {peak:.0} MB, {loaded:.0} MB at the end ({at_end}) | {rested:.0} MB after {idle} s idle ({rested_inside})",
        profile()
    )
}

/// What `devsignal serve`'s own `/metrics` says of its memory and work: the allocator's live
/// and resident bytes, the pools' open connections, its threads, jobs still waiting, and the CPU
/// seconds it has used (so a plateau can be told from a worker still busy).
async fn inside(client: &reqwest::Client, base: &str) -> String {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sum = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let mb = |kind: &str| sum(&format!("devsignal_allocator_bytes{{kind=\"{kind}\"}}")) / 1e6;
    format!(
        "allocator: {:.0} MB live, {:.0} MB active, {:.0} MB resident, {:.0} MB metadata; {:.0} pooled connections, {:.0} threads, {:.0} jobs waiting or running, {:.1} CPU s so far",
        mb("allocated"),
        mb("active"),
        mb("resident"),
        mb("metadata"),
        sum("devsignal_db_pool_connections{"),
        sum("devsignal_process_threads "),
        text.lines()
            .filter(|l| l.starts_with("devsignal_queue_jobs{"))
            .filter(|l| l.contains("state=\"waiting\"") || l.contains("state=\"active\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>(),
        sum("devsignal_process_cpu_seconds_total "),
    )
}

#[tokio::main]
async fn main() {
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 24);
    let rounds: usize = env_or("BENCH_ROUNDS", 4);
    let response_kb: usize = env_or("BENCH_RESPONSE_KB", 6000);
    let idle: u64 = env_or("BENCH_IDLE_SECONDS", 10);
    let serve_seconds: u64 = env_or("BENCH_SERVE_SECONDS", 10);
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
    app.shutdown().await.ok();

    if serve_seconds > 0 {
        progress("devsignal serve alone: starting");
        println!("{}", serve_alone(idle, serve_seconds).await);
    }
}
