//! What the benches share: knobs from the environment, latency percentiles, progress lines,
//! the CPU other processes take meanwhile and this process's resident memory (Linux `/proc`),
//! and a large organization loaded with plain SQL ([`load_fixture`]).

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

/// The variables a bench's server starts with: the test defaults, but the worker's production
/// poll intervals (the harness speeds them up for tests) and rate limits lifted.
pub fn server_vars(test_db: &crate::TestDatabase) -> std::collections::HashMap<String, String> {
    let lifted = "1000000000";
    let mut vars = crate::test_vars(
        test_db,
        &[
            ("JOB_POLL_INTERVAL_MS", ""),
            ("WEBHOOK_POLL_INTERVAL_MS", ""),
            ("RATE_LIMIT_API", lifted),
            ("RATE_LIMIT_SIGNAL", lifted),
            ("RATE_LIMIT_AUTH", lifted),
        ],
    );
    // Server knobs a bench run may set to compare (e.g. the per-request connection cap).
    for knob in [
        "DATABASE_MAX_CONNECTIONS",
        "DATABASE_REQUEST_CONNECTIONS",
        "DATABASE_STATEMENT_CACHE",
    ] {
        if let Ok(v) = std::env::var(knob) {
            vars.insert(knob.to_owned(), v);
        }
    }
    vars
}

/// A knob: the variable parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A comma-separated knob of positive numbers, or `default`.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .filter(|n| *n > 0)
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// A progress line on stderr with the UTC time, to find a phase in the database's log.
pub fn progress(what: &str) {
    eprintln!(
        "{} {what} …",
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
}

/// The `q` quantile of sorted latencies.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time on the machine, and the part of it spent by this process and PostgreSQL (its
/// background processes and the backends of the bench database), from `/proc` (Linux only).
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub total: u64,
    pub busy: u64,
    pub ours: u64,
}

/// A sample of [`Cpu`]; `db_name` names the bench database, whose backends count as ours.
pub fn cpu_sample(db_name: &str) -> Cpu {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let stat = read("/proc/stat");
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    // A process's CPU time; with `reaped`, also that of its children that have exited (the
    // postmaster's: backends and parallel workers that came and went between two samples).
    let jiffies = |pid: &str, reaped: bool| -> u64 {
        let st = read(&format!("/proc/{pid}/stat"));
        let rest = st.rsplit_once(')').map_or("", |(_, r)| r);
        let v: Vec<&str> = rest.split_whitespace().collect();
        // proc(5): after "(comm)" come state (field 3), ppid, …; utime is field 14, stime 15.
        let field = |n: usize| {
            v.get(n - 3)
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0)
        };
        field(14) + field(15) + if reaped { field(16) + field(17) } else { 0 }
    };
    let mut ours = jiffies("self", false);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let comm = read(&format!("/proc/{name}/comm"));
            if comm.trim() != "postgres" {
                continue;
            }
            let cmd = read(&format!("/proc/{name}/cmdline")).replace('\0', " ");
            // Backends show "postgres: <user> <database> <client> <state>"; background
            // processes (WAL writer, checkpointer, …) serve every database, ours included.
            let backend = cmd.contains("127.0.0.1(") || cmd.contains("[local]");
            if !backend || cmd.contains(db_name) {
                ours += jiffies(&name, true);
            }
        }
    }
    Cpu {
        total,
        busy: total.saturating_sub(idle),
        ours,
    }
}

/// Cores' worth of CPU that other processes used between two samples.
pub fn others_cores(a: Cpu, b: Cpu, cores: usize) -> f64 {
    let total = b.total.saturating_sub(a.total).max(1) as f64;
    let others = b.busy.saturating_sub(a.busy) as f64 - b.ours.saturating_sub(a.ours) as f64;
    (others.max(0.0) / total) * cores as f64
}

/// Milliseconds of CPU this process and the bench database's PostgreSQL processes used between
/// two samples (`/proc` counts in ticks of 10 ms). Steadier than a rate when other processes
/// share the machine: divided by the requests served, the cost of one.
pub fn ours_ms(a: Cpu, b: Cpu) -> f64 {
    b.ours.saturating_sub(a.ours) as f64 * 10.0
}

/// The machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The one-minute load average, `?` where `/proc` is missing.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The build profile the bench runs in.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Whether the app runs with Redis.
pub fn redis_state(app: &crate::TestApp) -> &'static str {
    if app.state.redis.is_some() {
        "on"
    } else {
        "off"
    }
}

/// This process's resident memory in MB (`VmRSS`), 0 where `/proc` is missing.
pub fn rss_mb() -> f64 {
    rss_of("self").0
}

/// The resident memory of process `pid` (`self` for this one) in MB: now (`VmRSS`) and its peak
/// (`VmHWM`); zeros if it cannot be read.
pub fn rss_of(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------------------------
// A large organization, in plain SQL on either backend (the read bench and the plan test)
/// This process's resident memory by kind, from `/proc/self/smaps`: mapped files (the binary
/// above all), glibc's heaps (`[heap]` and the per-thread arenas, aligned to 64 MiB: near empty
/// since jemalloc serves C code's `malloc` too, SQLite's page caches and statements included)
/// and the other anonymous memory (jemalloc's, thread stacks). A heuristic for finding where
/// memory goes.
pub fn rss_by_kind() -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut files, mut arenas, mut other) = (0u64, 0u64, 0u64);
    let mut kind = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, _)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let start = u64::from_str_radix(start, 16).unwrap_or(1);
            kind = match fields.nth(4) {
                Some("[heap]") => 1,
                Some(name) if !name.starts_with('[') => 0,
                _ if start % (64 << 20) == 0 => 1,
                _ => 2,
            };
        } else if first == "Rss:" {
            let kb: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match kind {
                0 => files += kb,
                1 => arenas += kb,
                _ => other += kb,
            }
        }
    }
    format!(
        "files {} MB | glibc arenas (SQLite) {} MB | other anonymous (jemalloc, stacks) {} MB",
        files / 1024,
        arenas / 1024,
        other / 1024
    )
}

// ---------------------------------------------------------------------------------------------

/// Row `i`'s id in a table tagged by one hex digit (`a` accounts, `c` contacts, `e` signals).
pub fn row_id(tag: char, i: usize) -> Uuid {
    Uuid::parse_str(&format!("0000000{tag}-0000-7000-8000-{i:012x}")).unwrap()
}

/// SQL spellings that differ between the backends.
struct Sql {
    pg: bool,
}

impl Sql {
    /// `INSERT INTO {into} SELECT {select} …` over `i` = 0 … n-1 (`filter` on `i`, if any).
    fn insert_series(&self, n: usize, into: &str, select: &str, filter: &str) -> String {
        let filter = if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {filter}")
        };
        if self.pg {
            format!(
                "INSERT INTO {into} SELECT {select} FROM generate_series(0::bigint, {}) AS g(i){filter}",
                n - 1
            )
        } else {
            format!(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {}) INSERT INTO {into} SELECT {select} FROM g{filter}",
                n - 1
            )
        }
    }

    /// The id [`row_id`] gives, computed from the SQL expression `i`.
    fn id(&self, tag: char, i: &str) -> String {
        if self.pg {
            format!("('0000000{tag}-0000-7000-8000-' || lpad(to_hex({i}), 12, '0'))::uuid")
        } else {
            format!("unhex('0000000{tag}000070008000' || printf('%012x', {i}))")
        }
    }

    fn uuid(&self, u: Uuid) -> String {
        if self.pg {
            format!("'{u}'::uuid")
        } else {
            format!("unhex('{}')", u.simple())
        }
    }

    /// The time `secs` (an SQL expression) seconds ago, as the server stores times.
    fn ago(&self, secs: &str) -> String {
        if self.pg {
            format!("now() - ({secs}) * interval '1 second'")
        } else {
            format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || ({secs}) || ' seconds')")
        }
    }

    fn json(&self, v: &str) -> String {
        if self.pg {
            format!("'{v}'::jsonb")
        } else {
            format!("'{v}'")
        }
    }
}

/// The organization's API signal source: one signal sent with `write_key` (`signals:write`)
/// creates it.
pub async fn api_source(
    app: &crate::TestApp,
    write_key: &str,
    db: &DatabaseConnection,
    org: Uuid,
) -> Uuid {
    let resp = app
        .client
        .post(app.url("/api/v1/signals"))
        .header("x-api-key", write_key)
        .json(&json!({"type": "signup", "actor": {"email": "seed@gmail.com"}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "seed signal: {}", resp.status());
    entity::signal_sources::Entity::find()
        .filter(entity::signal_sources::Column::OrganizationId.eq(org))
        .one(db)
        .await
        .unwrap()
        .expect("the API source")
        .id
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// Account `i`'s score, when `i % 5 <> 0` (the others stay unscored). The copy on the account
/// row is written with the row: an UPDATE of 100k accounts would cost SQLite a scan of the
/// search index per row (its update trigger finds the old entry by an unindexed column).
const SCORE: &str = "((i * 37) % 101)";

/// Loads into `org` N accounts (`Company <i>`, `company<i>.io`), 3N contacts (three per account)
/// and 10N signals from `source` (ten per account, event times over 30 days), and scores 80 % of
/// the accounts (the rest stay unscored), then `VACUUM ANALYZE`s (SQLite: `ANALYZE`). Ids are
/// [`row_id`]s.
pub async fn load_fixture(db: &DatabaseConnection, org: Uuid, source: Uuid, n: usize) {
    let s = Sql {
        pg: db.get_database_backend() == DbBackend::Postgres,
    };
    let (o, src) = (s.uuid(org), s.uuid(source));
    let (obj, arr) = (s.json("{}"), s.json("[]"));
    progress(&format!("{n} accounts"));
    exec(
        db,
        &s.insert_series(
            n,
            "companies (id, organization_id, name, domain, domain_normalized, custom_fields, tags, score, created_at, updated_at)",
            &format!(
                "{}, {o}, 'Company ' || i, 'company' || i || '.io', 'company' || i || '.io', {obj}, {arr}, CASE WHEN i % 5 <> 0 THEN {SCORE} END, {t}, {t}",
                s.id('a', "i"),
                t = s.ago("i % 2592000"),
            ),
            "",
        ),
    )
    .await;
    progress(&format!("{} contacts", 3 * n));
    exec(
        db,
        &s.insert_series(
            3 * n,
            "contacts (id, organization_id, account_id, first_name, last_name, email, email_normalized, custom_fields, tags, created_at, updated_at)",
            &format!(
                "{}, {o}, {}, 'Person', 'P' || i, 'p' || i || '@company' || (i % {n}) || '.io', 'p' || i || '@company' || (i % {n}) || '.io', {obj}, {arr}, {t}, {t}",
                s.id('c', "i"),
                s.id('a', &format!("i % {n}")),
                t = s.ago("i % 2592000"),
            ),
            "",
        ),
    )
    .await;
    progress(&format!("{} signals", 10 * n));
    exec(
        db,
        &s.insert_series(
            10 * n,
            "signals (id, organization_id, source_id, type, contact_id, account_id, metadata, dedupe_key, timestamp, created_at)",
            &format!(
                "{}, {o}, {src}, CASE i % 4 WHEN 0 THEN 'page_view' WHEN 1 THEN 'api_call' WHEN 2 THEN 'docs_visit' ELSE 'repo_star' END, {}, {}, {}, 'bench:' || i, {}, {}",
                s.id('e', "i"),
                s.id('c', &format!("i % {}", 3 * n)),
                s.id('a', &format!("i % {n}")),
                s.json(r#"{"path": "/docs/getting-started"}"#),
                s.ago("(i * 7919) % 2592000"),
                s.ago("i % 2592000"),
            ),
            "",
        ),
    )
    .await;
    progress("scores");
    let score = SCORE;
    exec(
        db,
        &s.insert_series(
            n,
            "account_scores (account_id, organization_id, score, tier, trend, factors, signal_count, user_count, config_version, computed_at)",
            &format!(
                "{}, {o}, {score}, CASE WHEN {score} >= 70 THEN 'HOT' WHEN {score} >= 40 THEN 'WARM' WHEN {score} >= 10 THEN 'COLD' ELSE 'INACTIVE' END, 'STABLE', {arr}, 10, 3, 1, {}",
                s.id('a', "i"),
                s.ago("0"),
            ),
            "i % 5 <> 0",
        ),
    )
    .await;
    // As autovacuum would leave the tables before long: statistics, the visibility map, and the
    // search indexes' pending lists merged (PostgreSQL; SQLite has none of these but statistics).
    progress("vacuum and analyze");
    exec(db, if s.pg { "VACUUM ANALYZE" } else { "ANALYZE" }).await;
}
