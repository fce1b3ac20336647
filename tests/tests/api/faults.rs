//! Fault tests on whole processes: `serve --no-worker` replicas and `worker`s on a PostgreSQL
//! cluster and a Redis of the test's own, under a steady ingest, while parts are killed, flushed,
//! stopped and started again. They run in the PostgreSQL + Redis pass (`TEST_DATABASE_URL` set;
//! the SQLite pass says it skipped them) and print what each fault cost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devsignal_tests::processes::{OwnPostgres, OwnRedis, Proc, free_port};
use devsignal_tests::{WsClient, eventually, postgres_admin_url};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

/// A PostgreSQL and a Redis of this test's own, and the variables every process gets.
struct Cluster {
    pg: OwnPostgres,
    redis: OwnRedis,
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Cluster {
    /// `None` (with the reason printed) outside the PostgreSQL + Redis pass.
    fn start(extra: &[(&str, &str)]) -> Option<Cluster> {
        if postgres_admin_url().is_none() {
            eprintln!("skipped: the fault tests run in the PostgreSQL + Redis pass");
            return None;
        }
        let pg = OwnPostgres::start().expect("PostgreSQL's server programs (initdb, pg_ctl)");
        let redis = OwnRedis::start(free_port());
        let dir = tempfile::tempdir().unwrap();
        let mut vars: Vec<(String, String)> = [
            ("DATABASE_URL", pg.url()),
            ("REDIS_URL", redis.url()),
            ("DATA_DIR", dir.path().join("data").display().to_string()),
            ("HOST", "127.0.0.1".into()),
            ("RUST_LOG", "info".into()),
            ("JOB_LEASE_SECONDS", "5".into()),
            ("JOB_POLL_INTERVAL_MS", "250".into()),
            ("RATE_LIMIT_API", "1000000".into()),
            ("RATE_LIMIT_SIGNAL", "1000000".into()),
            (
                "ENCRYPTION_KEY",
                "0000000000000000000000000000000000000000000000000000000000000000".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Some(Cluster {
            pg,
            redis,
            dir,
            vars,
        })
    }

    fn spawn(&self, args: &[&str], port_var: &str, port: u16) -> Proc {
        let port = port.to_string();
        let mut env: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push((port_var, &port));
        Proc::start(self.dir.path(), args, &env)
    }

    /// A `serve --no-worker` replica, once it answers `/health/ready`.
    async fn replica(&self) -> Replica {
        let port = free_port();
        let proc = self.spawn(&["serve", "--no-worker"], "PORT", port);
        let url = format!("http://127.0.0.1:{port}");
        ready(&url, &proc).await;
        Replica { proc, url }
    }

    /// A `worker`, once it answers `/health/ready`.
    async fn worker(&self) -> Replica {
        let port = free_port();
        let proc = self.spawn(&["worker"], "WORKER_HEALTH_PORT", port);
        let url = format!("http://127.0.0.1:{port}");
        ready(&url, &proc).await;
        Replica { proc, url }
    }

    async fn db(&self) -> DatabaseConnection {
        sea_orm::Database::connect(self.pg.url()).await.unwrap()
    }
}

/// A process and the base URL of its HTTP port.
struct Replica {
    proc: Proc,
    url: String,
}

impl Drop for Replica {
    /// A failing test shows the end of each process's log.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.proc.output();
            let file = std::env::temp_dir().join(format!(
                "devsignal-faults-{}.log",
                self.url.rsplit(':').next().unwrap_or("process")
            ));
            let _ = std::fs::write(&file, out.join("\n"));
            let tail = &out[out.len().saturating_sub(30)..];
            eprintln!(
                "--- last lines of {} (the whole log: {}) ---\n{}",
                self.url,
                file.display(),
                tail.join("\n")
            );
        }
    }
}

/// A client that waits 30 s for an answer: longer than any deadline of the server's, so an
/// unanswered request is a hang.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn ready(url: &str, proc: &Proc) {
    let c = client();
    eventually(
        Duration::from_secs(60),
        "the process to be ready",
        || async {
            let r = c.get(format!("{url}/health/ready")).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    assert!(
        !proc.output().iter().any(|l| l.contains("ERROR")),
        "{:?}",
        proc.output()
    );
}

/// Registers an owner through `url` and returns their access token.
async fn owner_token(url: &str) -> String {
    let r = client()
        .post(format!("{url}/api/v1/auth/register"))
        .json(
            &json!({"email": "owner@faults.test", "password": devsignal_tests::TEST_PASSWORD,
                      "name": "Owner", "organizationName": "Faults"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}

/// What one ingest request got: its HTTP status (`None`: no answer), the error code of a refusal,
/// when it was sent and how long its answer took.
#[derive(Clone, Debug)]
struct Sent {
    at: Instant,
    took: Duration,
    status: Option<u16>,
    code: Option<String>,
    id: Option<String>,
}

/// A steady ingest: up to `rate` signal requests a second, spread over `targets` in turn, each
/// with an idempotency key of its own (`fault-<n>`), until stopped. At most [`SENDERS`] requests
/// are in flight: a machine too busy to keep up lowers the rate instead of piling up requests
/// until they all pass their deadline, so a failure means a fault, not an overloaded test host.
struct Load {
    sent: Arc<Mutex<BTreeMap<usize, Sent>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinSet<()>,
}

/// Requests a [`Load`] has in flight at most.
const SENDERS: usize = 4;

fn signal_body(n: usize) -> Value {
    const TYPES: [&str; 4] = ["api_call", "docs_read", "signup", "feature_used"];
    json!({
        "type": TYPES[n % TYPES.len()],
        "actor": {"email": format!("dev{}@company{}.test", n % 40, n % 8)},
        "idempotencyKey": format!("fault-{n}"),
        "metadata": {"n": n},
    })
}

async fn send(c: &reqwest::Client, url: &str, token: &str, n: usize) -> Sent {
    let at = Instant::now();
    let r = c
        .post(format!("{url}/api/v1/signals"))
        .bearer_auth(token)
        .json(&signal_body(n))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.json::<Value>().await.unwrap_or_default();
            Sent {
                at,
                took: at.elapsed(),
                status: Some(status),
                code: body["error"]["code"].as_str().map(str::to_owned),
                id: body["id"].as_str().map(str::to_owned),
            }
        }
        Err(e) => {
            static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            if SHOWN.fetch_add(1, Ordering::SeqCst) < 3 {
                println!("faults: request {n} got no answer: {e:?}");
            }
            Sent {
                at,
                took: at.elapsed(),
                status: None,
                code: None,
                id: None,
            }
        }
    }
}

fn acknowledged(s: &Sent) -> bool {
    matches!(s.status, Some(200 | 201))
}

impl Load {
    fn start(targets: Vec<String>, token: String, rate: u32) -> Load {
        let sent: Arc<Mutex<BTreeMap<usize, Sent>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        // One pace for all senders; a tick missed while every sender waits for an answer is
        // skipped, not made up for in a burst.
        let mut pace = tokio::time::interval(Duration::from_secs(1) / rate);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let pace = Arc::new(tokio::sync::Mutex::new(pace));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = client();
        let mut task = tokio::task::JoinSet::new();
        for _ in 0..SENDERS {
            let (sent, stop, pace, next, c, targets, token) = (
                sent.clone(),
                stop.clone(),
                pace.clone(),
                next.clone(),
                c.clone(),
                targets.clone(),
                token.clone(),
            );
            task.spawn(async move {
                loop {
                    pace.lock().await.tick().await;
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let s = send(&c, &targets[n % targets.len()], &token, n).await;
                    sent.lock().unwrap().insert(n, s);
                }
            });
        }
        Load { sent, stop, task }
    }

    /// Stops sending and waits for the answers still outstanding.
    async fn stop(mut self) -> BTreeMap<usize, Sent> {
        self.stop.store(true, Ordering::SeqCst);
        while self.task.join_next().await.transpose().unwrap().is_some() {}
        Arc::try_unwrap(self.sent).unwrap().into_inner().unwrap()
    }
}

/// Sends again, with the same idempotency key, every request that was not acknowledged, until
/// each is; returns the final outcome of every request.
async fn resend_until_acknowledged(
    url: &str,
    token: &str,
    mut sent: BTreeMap<usize, Sent>,
) -> BTreeMap<usize, Sent> {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<usize> = sent
            .iter()
            .filter(|(_, s)| !acknowledged(s))
            .map(|(n, _)| *n)
            .collect();
        if missing.is_empty() {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "{} requests still not acknowledged after a minute of retries",
            missing.len()
        );
        for n in missing {
            let s = send(&c, url, token, n).await;
            sent.insert(n, s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a replica's `/health/ready` and `/health` said, every 200 ms.
#[derive(Clone, Debug)]
struct Probe {
    at: Instant,
    ready: Option<u16>,
    redis: String,
}

struct Monitor {
    probes: Arc<Mutex<Vec<Probe>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    fn start(replica: String) -> Monitor {
        let probes: Arc<Mutex<Vec<Probe>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (probes, stop) = (probes.clone(), stop.clone());
            async move {
                let c = reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let at = Instant::now();
                    let status = |r: Result<reqwest::Response, reqwest::Error>| {
                        r.ok().map(|r| r.status().as_u16())
                    };
                    let (ready, health) = tokio::join!(
                        c.get(format!("{replica}/health/ready")).send(),
                        c.get(format!("{replica}/health")).send()
                    );
                    let ready = status(ready);
                    let redis = match health {
                        Ok(r) => r.json::<Value>().await.ok().map_or(String::new(), |b| {
                            b["redis"].as_str().unwrap_or_default().to_owned()
                        }),
                        Err(_) => String::new(),
                    };
                    probes.lock().unwrap().push(Probe { at, ready, redis });
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        Monitor { probes, stop, task }
    }

    fn between(&self, from: Instant, to: Instant) -> Vec<Probe> {
        self.probes
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.at >= from && p.at <= to)
            .cloned()
            .collect()
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Every acknowledged request is one stored signal: no key missing, none stored twice.
async fn assert_stored_exactly_once(db: &DatabaseConnection, sent: &BTreeMap<usize, Sent>) {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT idempotency_key, COUNT(*) FROM signals WHERE idempotency_key LIKE 'fault-%' \
             GROUP BY idempotency_key",
        ))
        .await
        .unwrap();
    let stored: HashMap<String, i64> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index::<String>(0).unwrap(),
                r.try_get_by_index::<i64>(1).unwrap(),
            )
        })
        .collect();
    let twice: Vec<_> = stored.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let missing: Vec<usize> = sent
        .keys()
        .filter(|n| !stored.contains_key(&format!("fault-{n}")))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged signals are not stored: {missing:?}",
        missing.len()
    );
    assert_eq!(stored.len(), sent.len());
}

/// Every account with signals ends scored after its last signal, no rescore is left waiting, and
/// no job is lost, stuck or failed.
async fn assert_settled(db: &DatabaseConnection) {
    eventually(
        Duration::from_secs(90),
        "every touched account scored and every job finished",
        || async {
            let unscored = count(
                db,
                "SELECT COUNT(*) FROM signals s WHERE s.account_id IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM account_scores a WHERE a.account_id = s.account_id \
                  AND a.computed_at >= s.created_at)",
            )
            .await;
            let requests = count(db, "SELECT COUNT(*) FROM rescore_requests").await;
            let open = count(
                db,
                "SELECT COUNT(*) FROM jobs WHERE state IN ('waiting', 'active') \
                 AND run_at < NOW() - INTERVAL '2 seconds'",
            )
            .await;
            (unscored == 0 && requests == 0 && open == 0).then_some(())
        },
    )
    .await;
    let failed = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT name, attempts, last_error FROM jobs WHERE state = 'failed'",
        ))
        .await
        .unwrap();
    let failed: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "{} after {} attempts: {}",
                r.try_get_by_index::<String>(0).unwrap(),
                r.try_get_by_index::<i32>(1).unwrap(),
                r.try_get_by_index::<Option<String>>(2)
                    .unwrap()
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(failed.is_empty(), "failed jobs: {failed:?}");
}

/// Signal requests a second in the fault test, at most: steady, and within what a debug build
/// serves on a two-core CI machine; when the suite beside it leaves too little, the load's bound
/// on requests in flight lowers the rate, so a fault, not overload, is what the figures show.
const RATE: u32 = 15;

/// One fault: its name and when it began and ended (the service back).
struct Phase {
    name: &'static str,
    from: Instant,
    to: Instant,
}

/// The requests sent between `from` and `to`: how many, which failed (5xx or no answer) by
/// status and code, and how long answers took.
struct Figures {
    of: usize,
    failed: usize,
    failures: BTreeMap<String, usize>,
    median: Duration,
    slowest: Duration,
}

impl Figures {
    fn between(sent: &BTreeMap<usize, Sent>, from: Instant, to: Instant) -> Figures {
        let during: Vec<&Sent> = sent
            .values()
            .filter(|s| s.at >= from && s.at <= to)
            .collect();
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        for s in during.iter().filter(|s| s.status.is_none_or(|c| c >= 500)) {
            let what = match s.status {
                Some(c) => format!("{c} {}", s.code.as_deref().unwrap_or("(no code)")),
                None => "no answer".to_owned(),
            };
            *failures.entry(what).or_default() += 1;
        }
        let mut took: Vec<Duration> = during.iter().map(|s| s.took).collect();
        took.sort();
        Figures {
            of: during.len(),
            failed: failures.values().sum(),
            failures,
            median: took.get(took.len() / 2).copied().unwrap_or_default(),
            slowest: took.last().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>4} of {:>4} requests answered 5xx or not at all {:?}; answers took {} ms \
             (median), {} ms (slowest)",
            self.failed,
            self.of,
            self.failures,
            self.median.as_millis(),
            self.slowest.as_millis()
        )
    }
}

/// #21's fault suite: a steady ingest (up to [`RATE`] requests/s) through `serve --no-worker` with a separate
/// `worker`, while the worker is SIGKILLed and started again, Redis is flushed, then stopped for
/// 30 s and started, and PostgreSQL is stopped and started. Afterwards every acknowledged signal is
/// stored exactly once, every touched account is scored, no job is lost, stuck or failed, the
/// health endpoints reported each outage while it lasted, and neither the replica nor the
/// (restarted) worker needed another restart. Prints, per fault, the 5xx (and unanswered) requests
/// by code and how long answers took.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_steady_ingest_survives_worker_redis_and_postgres_faults() {
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    let mut replica = cluster.replica().await;
    let mut worker = cluster.worker().await;
    let token = owner_token(&replica.url).await;
    let monitor = Monitor::start(replica.url.clone());
    let load = Load::start(vec![replica.url.clone()], token.clone(), RATE);
    let c = client();
    let back = |url: String| {
        let c = c.clone();
        async move {
            eventually(Duration::from_secs(60), "health ok again", || async {
                let r = c.get(format!("{url}/health")).send().await.ok()?;
                let b: Value = r.json().await.ok()?;
                (b["status"] == "ok").then_some(())
            })
            .await;
        }
    };
    let mut phases = Vec::new();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let from = Instant::now();
    phases.push(Phase {
        name: "none (baseline)",
        from: from - Duration::from_secs(5),
        to: from,
    });

    // The worker dies mid-work and comes back 3 s later (on another port).
    worker.proc.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker = cluster.worker().await;
    back(worker.url.clone()).await;
    phases.push(Phase {
        name: "worker SIGKILL + restart",
        from,
        to: Instant::now(),
    });
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Redis loses every key, then goes away for 30 s.
    let from = Instant::now();
    cluster.redis.flush();
    tokio::time::sleep(Duration::from_secs(3)).await;
    phases.push(Phase {
        name: "Redis FLUSHALL",
        from,
        to: Instant::now(),
    });
    let from = Instant::now();
    cluster.redis.kill();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let redis_down = (from, Instant::now());
    cluster.redis.restart();
    back(replica.url.clone()).await;
    back(worker.url.clone()).await;
    phases.push(Phase {
        name: "Redis stopped 30 s",
        from,
        to: Instant::now(),
    });
    tokio::time::sleep(Duration::from_secs(3)).await;

    // PostgreSQL stops (fast shutdown: connections dropped, transactions rolled back) for 5 s.
    let from = Instant::now();
    cluster.pg.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.pg.start_again();
    back(replica.url.clone()).await;
    back(worker.url.clone()).await;
    let pg_down = (from, Instant::now());
    phases.push(Phase {
        name: "PostgreSQL restart",
        from,
        to: Instant::now(),
    });
    tokio::time::sleep(Duration::from_secs(5)).await;

    let sent = load.stop().await;
    let first = sent.values().map(|s| s.at).min().unwrap();
    phases.push(Phase {
        name: "whole run",
        from: first,
        to: Instant::now(),
    });
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for s in sent.values() {
        *statuses
            .entry(s.status.map_or("no answer".into(), |c| c.to_string()))
            .or_default() += 1;
    }
    println!(
        "faults: {} requests at up to {RATE}/s, {SENDERS} in flight at most: {statuses:?}",
        sent.len()
    );
    for p in &phases {
        println!(
            "faults: {:<26} {:>5.1} s  {}",
            p.name,
            (p.to - p.from).as_secs_f64(),
            Figures::between(&sent, p.from, p.to)
        );
    }
    let client_errors: Vec<_> = sent
        .iter()
        .filter(|(_, s)| s.status.is_some_and(|c| (400..500).contains(&c)))
        .collect();
    assert!(
        client_errors.is_empty(),
        "a fault must never look like the client's mistake: {client_errors:?}"
    );
    // Only PostgreSQL's outage may cost requests (a 503 with Retry-After, never a hang): the
    // worker is not on the request path and Redis is optional.
    for p in phases
        .iter()
        .filter(|p| !p.name.starts_with("PostgreSQL") && p.name != "whole run")
    {
        let figures = Figures::between(&sent, p.from, p.to);
        assert!(figures.of > 0, "no request was sent during {}", p.name);
        assert_eq!(figures.failed, 0, "during {}: {figures}", p.name);
    }
    let unanswered = sent.values().filter(|s| s.status.is_none()).count();
    assert_eq!(unanswered, 0, "requests left unanswered for 30 s");

    // Health told the truth while each outage lasted.
    let during_redis = monitor.between(redis_down.0 + Duration::from_secs(3), redis_down.1);
    assert!(
        during_redis.iter().any(|p| p.redis == "error"),
        "/health never said Redis was down: {during_redis:?}"
    );
    let during_pg = monitor.between(pg_down.0, pg_down.1);
    assert!(
        during_pg.iter().any(|p| p.ready.is_some_and(|c| c == 503)),
        "/health/ready never reported PostgreSQL down: {during_pg:?}"
    );
    monitor.stop().await;

    let sent = resend_until_acknowledged(&replica.url, &token, sent).await;
    let db = cluster.db().await;
    assert_stored_exactly_once(&db, &sent).await;
    assert_settled(&db).await;
    // Neither process needed a restart: both still run and answer.
    assert!(replica.proc.running() && worker.proc.running());
    back(replica.url.clone()).await;
    back(worker.url.clone()).await;
}

/// #21's scale-out test: two `serve --no-worker` replicas and two `worker`s (each running the
/// scheduler, the demo clean-up entry every minute) on one PostgreSQL + Redis under a steady
/// ingest spread over both replicas. Each job runs once, each cron tick is enqueued and run once,
/// every signal is scored, and a subscriber on either replica receives every signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_and_two_workers_share_the_work_once() {
    let Some(cluster) = Cluster::start(&[("CRON_OVERRIDES", "demo-cleanup-scheduler=* * * * *")])
    else {
        return;
    };
    let a = cluster.replica().await;
    let b = cluster.replica().await;
    let w1 = cluster.worker().await;
    let w2 = cluster.worker().await;
    let token = owner_token(&a.url).await;
    let db = cluster.db().await;

    let mut subscribers = Vec::new();
    for replica in [&a, &b] {
        let ws_url = format!(
            "{}/api/v1/graphql/ws",
            replica.url.replacen("http", "ws", 1)
        );
        let mut ws = WsClient::connect(&ws_url, "graphql-transport-ws").await;
        let ack = ws
            .init(json!({"Authorization": format!("Bearer {token}")}))
            .await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws.subscribe("s", "subscription { signalCreated { id } }", json!({}))
            .await;
        subscribers.push(ws);
    }
    for replica in [&a, &b] {
        eventually(
            Duration::from_secs(10),
            "the subscription to start",
            || async {
                let text = client()
                    .get(format!("{}/metrics", replica.url))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                text.lines()
                    .any(|l| {
                        !l.starts_with('#') && l.contains("live_subscriptions") && l.ends_with(" 1")
                    })
                    .then_some(())
            },
        )
        .await;
    }

    // Ingest over both replicas until the scheduler ticked at least once (a minute boundary).
    let load = Load::start(vec![a.url.clone(), b.url.clone()], token.clone(), 20);
    let started = Instant::now();
    eventually(
        Duration::from_secs(90),
        "a tick of the demo clean-up entry",
        || async {
            let ticks = count(
                &db,
                "SELECT COUNT(*) FROM job_cron_ticks WHERE name = 'demo-cleanup-scheduler'",
            )
            .await;
            (ticks > 0 && started.elapsed() > Duration::from_secs(20)).then_some(())
        },
    )
    .await;
    let sent = load.stop().await;
    let failed: Vec<_> = sent.iter().filter(|(_, s)| !acknowledged(s)).collect();
    assert!(failed.is_empty(), "with nothing wrong: {failed:?}");
    println!(
        "scale-out: {} signals over 2 replicas in {:.1} s",
        sent.len(),
        started.elapsed().as_secs_f64()
    );
    assert_stored_exactly_once(&db, &sent).await;

    // Each subscriber receives every signal, whichever replica took it.
    let ids: HashSet<String> = sent.values().filter_map(|s| s.id.clone()).collect();
    assert_eq!(ids.len(), sent.len());
    for (which, ws) in subscribers.iter_mut().enumerate() {
        let mut seen = HashSet::new();
        while seen.len() < ids.len() {
            let msg = ws.next(Duration::from_secs(30)).await.unwrap_or_else(|| {
                panic!("subscriber {which} saw {} of {}", seen.len(), ids.len())
            });
            assert_eq!(msg["type"], "next", "{msg}");
            let id = msg["payload"]["data"]["signalCreated"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(ids.contains(&id), "an event nobody sent: {id}");
            assert!(seen.insert(id), "subscriber {which} got an event twice");
        }
    }

    assert_settled(&db).await;
    // Each job ran once: completed on its first attempt.
    let again = count(&db, "SELECT COUNT(*) FROM jobs WHERE attempts > 1").await;
    assert_eq!(again, 0, "a job ran more than once");
    // Each tick enqueued one job, which ran.
    let ticks = count(
        &db,
        "SELECT COUNT(*) FROM job_cron_ticks WHERE name = 'demo-cleanup-scheduler'",
    )
    .await;
    let runs = count(
        &db,
        "SELECT COUNT(*) FROM jobs WHERE name = 'demo-cleanup-scheduler' AND state = 'completed'",
    )
    .await;
    assert_eq!((ticks, runs), (ticks, ticks), "one run per tick");
    println!("scale-out: {ticks} cron ticks, each run once, by two schedulers");
    for r in [&a, &b, &w1, &w2] {
        assert!(
            !r.proc.output().iter().any(|l| l.contains("panicked")),
            "{:?}",
            r.proc.output()
        );
    }
}
