//! Queue throughput: no-op jobs claimed and completed per second with 1 and 4 workers (each
//! running up to 4 jobs at once), on a fresh SQLite file, and on PostgreSQL when
//! `BENCH_DATABASE_URL` points at an empty database. Prints figures; asserts nothing.
//!
//! `cargo bench -p devsignal-jobs --bench queue` (add `-- 5000` for another job count).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use devsignal_jobs::worker::{NoObserver, WorkerOptions};
use domain::queue::{self, NewJob};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn round(url: &str, workers: usize, n: u64) -> f64 {
    let db = domain::db::connect(url, &Default::default()).await.unwrap();
    domain::db::migrate_up(&db).await.unwrap();
    use sea_orm::EntityTrait;
    entity::jobs::Entity::delete_many().exec(&db).await.unwrap();
    let txn = domain::db::begin(&db).await.unwrap();
    for i in 0..n {
        queue::enqueue(
            &txn,
            NewJob::new("signal-processing", "noop", json!({"i": i})),
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        handles.push(tokio::spawn(devsignal_jobs::worker::run(
            devsignal_jobs::Context {
                db: db.clone(),
                connectors: connectors::Runtime::new(
                    connectors::Settings::default(),
                    domain::secrets::Cipher::new([7; 32]),
                )
                .unwrap(),
                score_history_days: domain::scoring::DEFAULT_HISTORY_DAYS,
                retention: Default::default(),
                notifier: devsignal_jobs::notify::Notifier {
                    mailer: devsignal_jobs::notify::Mailer::new(
                        "bench@localhost",
                        None,
                        std::env::temp_dir().join("devsignal-bench-mail"),
                    )
                    .unwrap(),
                    sender: devsignal_jobs::webhook_delivery::Sender::new(
                        Default::default(),
                        domain::secrets::Cipher::new([7; 32]),
                        Duration::from_secs(10),
                    )
                    .unwrap(),
                    frontend_url: "http://localhost".into(),
                    api_url: "http://localhost".into(),
                },
                data_dir: std::env::temp_dir().join("devsignal-bench-data"),
            },
            WorkerOptions {
                wake: Default::default(),
                id: format!("bench-{w}"),
                concurrency: 4,
                lease: Duration::from_secs(30),
                poll_interval: Duration::from_millis(10),
                shutdown_grace: Duration::from_secs(5),
            },
            Arc::new(NoObserver),
            stop.clone(),
        )));
    }
    loop {
        let c = queue::counts(&db, &["signal-processing"], None)
            .await
            .unwrap();
        if c[0].completed >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    for h in handles {
        h.await.unwrap();
    }
    db.close().await.unwrap();
    n as f64 / secs
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![(
        "sqlite".to_owned(),
        format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()),
    )];
    if let Ok(pg) = std::env::var("BENCH_DATABASE_URL") {
        targets.push(("postgres".to_owned(), pg));
    }
    println!("no-op jobs claimed and completed per second ({n} jobs per round)");
    for (name, url) in targets {
        for workers in [1, 4] {
            let rate = round(&url, workers, n).await;
            println!("{name:<9} {workers} worker(s): {rate:>8.0} jobs/s");
        }
    }
}
