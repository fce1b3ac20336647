//! `devsignal backup`, `devsignal backup --verify` and `devsignal restore` as an operator runs
//! them: an online backup while signals keep arriving, a restore into a fresh database of the
//! same or the other backend, compared table by table, and a server on the restored database
//! that signs in, reads, searches and still decrypts sealed secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devsignal_tests::{
    Recorder, Session, TEST_PASSWORD, TestApp, TestDatabase, postgres_admin_url, spawn_on,
    test_vars,
};
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::{Value, json};

use super::cli::run;

fn ok(r: &Value) -> &Value {
    assert!(r.get("errors").is_none(), "unexpected errors: {r}");
    &r["data"]
}

/// `DATABASE_URL` and `DATA_DIR` of a test database, as an operator sets them.
fn env_of(db: &TestDatabase) -> Vec<(String, String)> {
    vec![
        ("DATABASE_URL".into(), db.url.clone()),
        ("DATA_DIR".into(), db.dir.path().display().to_string()),
    ]
}

async fn devsignal(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(args, &env).await
}

/// An archive as the test reads it, independently of the code that wrote it.
struct Archive {
    header: Value,
    /// table → rows (JSON arrays in the header's column order).
    rows: BTreeMap<String, Vec<Value>>,
}

impl Archive {
    fn read(path: &Path) -> Archive {
        let file = std::fs::File::open(path).unwrap();
        let lines: Vec<String> = BufReader::new(flate2::read::GzDecoder::new(file))
            .lines()
            .map(Result::unwrap)
            .collect();
        let header: Value = serde_json::from_str(&lines[0]).unwrap();
        let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut current = String::new();
        for line in &lines[1..lines.len() - 1] {
            let v: Value = serde_json::from_str(line).unwrap();
            match v {
                Value::Array(_) => rows.get_mut(&current).unwrap().push(v),
                v => {
                    current = v["table"].as_str().unwrap().to_owned();
                    rows.insert(current.clone(), Vec::new());
                }
            }
        }
        let trailer: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(trailer["end"], true);
        Archive { header, rows }
    }

    fn count(&self, table: &str) -> u64 {
        self.header["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == table)
            .unwrap_or_else(|| panic!("no table {table} in the header"))["rows"]
            .as_u64()
            .unwrap()
    }

    fn columns(&self, table: &str) -> Vec<(String, String)> {
        self.header["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == table)
            .unwrap()["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// A table's rows, canonical across backends (timestamps to microseconds, which is what
    /// PostgreSQL keeps) and sorted (PostgreSQL's text collation may order keys differently).
    fn canonical(&self, table: &str) -> Vec<String> {
        let kinds: Vec<String> = self.columns(table).into_iter().map(|(_, t)| t).collect();
        let mut out: Vec<String> = self.rows[table]
            .iter()
            .map(|row| {
                let row: Vec<Value> = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(&kinds)
                    .map(|(v, k)| match (v, k.as_str()) {
                        (Value::String(s), "timestamp") => {
                            let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
                            json!(
                                t.with_timezone(&chrono::Utc)
                                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                            )
                        }
                        _ => v.clone(),
                    })
                    .collect();
                serde_json::to_string(&row).unwrap()
            })
            .collect();
        out.sort();
        out
    }
}

async fn count(db: &impl ConnectionTrait, table: &str) -> u64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) FROM \"{table}\""),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap() as u64
}

/// Every table of a database, as its catalog lists them.
async fn real_tables(db: &impl ConnectionTrait) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            // A partition's rows are its table's (`signals`, `events`).
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
             AND NOT c.relispartition"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// What a test organization holds that the restored one must still answer.
struct Org {
    owner: Session,
    account_id: String,
    webhook_id: String,
    webhook_secret: String,
}

const SEARCH: &str = "query($q: String!) { search(query: $q, first: 20) { item { __typename ... on Account { id name } ... on Contact { id email } ... on Deal { id title } } } }";

/// A realistic organization through the API: an owner and a member, an API key, accounts,
/// contacts, a deal and an activity, a webhook endpoint (sealed secret, deliveries), and
/// `signals` signals from 60 people at 12 companies.
async fn populate(app: &TestApp, signals: usize) -> Org {
    let owner = app.register("owner@rocket.dev", "Rocket Org").await;
    app.add_member(&owner, "member@rocket.dev", "MEMBER").await;
    app.api_key(&owner, &["signals:write", "accounts:read"])
        .await;
    let mutate = |q: &'static str, input: Value| {
        let token = owner.access_token.clone();
        async move {
            let r = app
                .graphql_as(Some(&token), q, json!({"input": input}))
                .await;
            ok(&r).clone()
        }
    };
    let account = mutate(
        "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
        json!({"name": "Rocket Labs", "domain": "rocketlabs.dev", "description": "launch tooling", "customFields": {"tier": "gold", "n": 3}}),
    )
    .await;
    let account_id = account["createAccount"]["id"].as_str().unwrap().to_owned();
    for (first, email) in [("Ann", "ann@rocketlabs.dev"), ("Bob", "bob@rocketlabs.dev")] {
        mutate(
            "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
            json!({"firstName": first, "lastName": "Rocket", "email": email, "accountId": account_id}),
        )
        .await;
    }
    let deal = mutate(
        "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
        json!({"title": "Rocket expansion", "amount": 12500.5, "accountId": account_id}),
    )
    .await;
    mutate(
        "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
        json!({"type": "CALL", "title": "Call about the rocket", "dealId": deal["createDeal"]["id"]}),
    )
    .await;
    let rx = Recorder::start().await;
    let hook = mutate(
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id secret } }",
        json!({"url": format!("{}/hook", rx.address), "eventTypes": ["*"], "description": "CRM sync"}),
    )
    .await;
    let webhook_id = hook["createWebhookEndpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook_secret = hook["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut n = 0;
    while n < signals {
        let batch: Vec<Value> = (n..signals.min(n + 500)).map(signal).collect();
        n += batch.len();
        let r = app
            .client
            .post(app.url("/api/v1/signals/batch"))
            .bearer_auth(&owner.access_token)
            .json(&json!({ "signals": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    Org {
        owner,
        account_id,
        webhook_id,
        webhook_secret,
    }
}

fn signal(n: usize) -> Value {
    const TYPES: [&str; 4] = ["api_call", "docs_read", "signup", "feature_used"];
    json!({
        "type": TYPES[n % TYPES.len()],
        "actor": {"email": format!("dev{}@company{}.test", n % 60, n % 12)},
        "idempotencyKey": format!("sig-{n}"),
        "metadata": {"n": n, "ok": n.is_multiple_of(2), "tags": ["a", "b"]},
    })
}

/// Posts signals one by one until stopped; counts those stored.
fn start_writer(app: &TestApp, token: &str) -> (Arc<AtomicBool>, Arc<AtomicUsize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let (client, url, token) = (
        app.client.clone(),
        app.url("/api/v1/signals"),
        token.to_owned(),
    );
    let (s, w) = (stop.clone(), written.clone());
    tokio::spawn(async move {
        let mut n = 1_000_000;
        while !s.load(Ordering::SeqCst) {
            n += 1;
            let r = client
                .post(&url)
                .bearer_auth(&token)
                .json(&signal(n))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                w.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (stop, written)
}

async fn wait_for(written: &AtomicUsize, at_least: usize) {
    devsignal_tests::eventually(Duration::from_secs(60), "the writer to write", || async {
        (written.load(Ordering::SeqCst) >= at_least).then_some(())
    })
    .await;
}

/// Backs up `source` (served, with a writer ingesting through HTTP the whole time), restores
/// into the empty `target`, compares them, and serves the restored database.
async fn round_trip(source: TestDatabase, target: TestDatabase) {
    // Built first, so the timings below are the commands' own.
    devsignal_tests::devsignal_bin();
    let vars = test_vars(&source, &[]);
    let key = vars["ENCRYPTION_KEY"].clone();
    let source_env = env_of(&source);
    let app = spawn_on(source, vars).await;
    let org = populate(&app, 2000).await;

    let (stop, written) = start_writer(&app, &org.owner.access_token);
    wait_for(&written, 5).await;
    let before = count(&app.db, "signals").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devsignal.backup");
    let file_s = file.display().to_string();
    let started = Instant::now();
    let (code, out, err) = devsignal(&["backup", &file_s], &source_env).await;
    let backup_secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "backup failed: {err}");
    assert!(out.contains("backed up"), "{out}");
    assert!(err.contains("signals"), "progress lines on stderr: {err}");
    let during = written.load(Ordering::SeqCst);
    wait_for(&written, during + 5).await;
    stop.store(true, Ordering::SeqCst);
    let after = count(&app.db, "signals").await;
    assert!(file.exists() && !dir.path().join("devsignal.backup.partial").exists());

    let archive = Archive::read(&file);
    let h = &archive.header;
    assert_eq!(h["format"], "devsignal-backup");
    assert_eq!(h["formatVersion"], 1);
    assert_eq!(h["devsignalVersion"], env!("CARGO_PKG_VERSION"));
    assert!(h["createdAt"].as_str().unwrap().ends_with('Z'));
    let migrations: Vec<&str> = h["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let known: Vec<String> = {
        use migration::MigratorTrait;
        migration::Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    };
    assert_eq!(migrations, known);
    // The snapshot: the signal count is the header's, between the counts before and after.
    let snap = archive.count("signals");
    println!("signals: {before} before the backup, {snap} in the snapshot, {after} after");
    assert!(
        before <= snap && snap <= after,
        "{before} <= {snap} <= {after}"
    );
    assert_eq!(archive.rows["signals"].len() as u64, snap);

    // Every table the source database really has is backed up, derived, or the migrations.
    let derived: Vec<&str> = h["derived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for table in real_tables(&app.db).await {
        let is_derived = derived
            .iter()
            .any(|d| table == *d || table.starts_with(&format!("{d}_")));
        assert!(
            archive.rows.contains_key(&table) || is_derived || table == "seaql_migrations",
            "table {table} is neither backed up nor derived"
        );
    }
    for table in [
        "organizations",
        "users",
        "memberships",
        "api_keys",
        "companies",
        "contacts",
    ] {
        assert!(archive.count(table) > 0, "{table} is empty in the archive");
    }
    for table in [
        "deals",
        "activities",
        "webhook_endpoints",
        "events",
        "audit_logs",
    ] {
        assert!(archive.count(table) > 0, "{table} is empty in the archive");
    }

    // Restore into the empty target.
    let target_env = env_of(&target);
    let started = Instant::now();
    let (code, out, err) = devsignal(&["restore", &file_s], &target_env).await;
    let restore_secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "restore failed: {err}");
    assert!(out.contains("restored"), "{out}");
    let total: u64 = archive.rows.values().map(|r| r.len() as u64).sum();
    println!(
        "backup: {total} rows in {backup_secs:.2} s ({:.0} rows/s); restore: {:.2} s ({:.0} rows/s); archive {} bytes",
        total as f64 / backup_secs,
        restore_secs,
        total as f64 / restore_secs,
        std::fs::metadata(&file).unwrap().len()
    );

    // The restored database, read directly: every table holds the archive's count.
    let restored = domain::db::connect(&target.url, &Default::default())
        .await
        .unwrap();
    for (table, rows) in &archive.rows {
        assert_eq!(
            count(&restored, table).await,
            rows.len() as u64,
            "rows of {table}"
        );
    }
    // Each archived signal is the restored row, field by field.
    let by_id: BTreeMap<String, entity::signals::Model> = entity::signals::Entity::find()
        .all(&restored)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id.to_string(), s))
        .collect();
    let cols: Vec<String> = archive
        .columns("signals")
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    for row in &archive.rows["signals"] {
        let row: BTreeMap<&str, &Value> = cols
            .iter()
            .map(String::as_str)
            .zip(row.as_array().unwrap())
            .collect();
        let s = &by_id[row["id"].as_str().unwrap()];
        assert_eq!(row["type"], &json!(s.signal_type));
        assert_eq!(row["metadata"], &s.metadata);
        assert_eq!(row["dedupe_key"], &json!(s.dedupe_key));
        assert_eq!(row["contact_id"], &json!(s.contact_id));
        let t = chrono::DateTime::parse_from_rfc3339(row["timestamp"].as_str().unwrap()).unwrap();
        assert_eq!(
            t.timestamp_micros(),
            s.timestamp.timestamp_micros(),
            "timestamp"
        );
    }
    // And every table, row by row: a backup of the restored database holds the same rows.
    let again = dir.path().join("again.backup");
    let (code, _, err) = devsignal(&["backup", &again.display().to_string()], &target_env).await;
    assert_eq!(code, 0, "backup of the restored database: {err}");
    let again = Archive::read(&again);
    assert_eq!(
        archive.rows.keys().collect::<Vec<_>>(),
        again.rows.keys().collect::<Vec<_>>()
    );
    for table in archive.rows.keys() {
        assert_eq!(archive.columns(table), again.columns(table), "{table}");
        assert!(
            archive.canonical(table) == again.canonical(table),
            "table {table} differs after the restore"
        );
    }

    // A sealed webhook secret opens with the same ENCRYPTION_KEY.
    let endpoint = entity::webhook_endpoints::Entity::find_by_id(
        org.webhook_id.parse::<uuid::Uuid>().unwrap(),
    )
    .one(&restored)
    .await
    .unwrap()
    .unwrap();
    let cipher = domain::secrets::Cipher::from_hex(&key).unwrap();
    assert_eq!(
        cipher.open(&endpoint.secret_ciphertext).unwrap(),
        org.webhook_secret
    );
    restored.close().await.unwrap();
    drop(app);

    // A server on the restored database: sign in with the original password, read, search.
    let vars = test_vars(&target, &[("ENCRYPTION_KEY", &key)]);
    let app = spawn_on(target, vars).await;
    let me = app.login(&org.owner.email, TEST_PASSWORD).await;
    assert_eq!(me.user_id, org.owner.user_id);
    let r = app
        .graphql_as(
            me.token(),
            "query($id: ID!) { account(id: $id) { name domain } }",
            json!({"id": org.account_id}),
        )
        .await;
    assert_eq!(ok(&r)["account"]["name"], "Rocket Labs");
    let r = app
        .graphql_as(me.token(), SEARCH, json!({"q": "rocket"}))
        .await;
    let kinds: BTreeSet<&str> = ok(&r)["search"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["item"]["__typename"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["Account", "Contact", "Deal"]),
        "search after the restore: {r}"
    );
    // The event log goes on after the restored sequence.
    let r = app
        .graphql_as(
            me.token(),
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": "After Restore"}}),
        )
        .await;
    ok(&r);
}

#[tokio::test]
async fn an_online_backup_restores_into_a_fresh_database_with_everything_in_it() {
    round_trip(TestDatabase::new().await, TestDatabase::new().await).await;
}

/// SQLite → PostgreSQL and back: the same two commands move an installation between backends.
#[tokio::test]
async fn a_backup_moves_between_sqlite_and_postgresql() {
    let Some(admin) = postgres_admin_url() else {
        eprintln!("TEST_DATABASE_URL is not set: the cross-backend round trip needs PostgreSQL");
        return;
    };
    round_trip(
        TestDatabase::sqlite(),
        TestDatabase::postgres(&admin, "ds_test").await,
    )
    .await;
    round_trip(
        TestDatabase::postgres(&admin, "ds_test").await,
        TestDatabase::sqlite(),
    )
    .await;
}

/// Gzip `text` into `path` (to build damaged archives that still decompress).
fn gzip_to(path: &Path, text: &str) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut s,
    )
    .unwrap();
    s
}

#[tokio::test]
async fn verify_names_each_problem_and_restore_refuses_what_it_must() {
    let source = TestDatabase::new().await;
    let vars = test_vars(&source, &[]);
    let env = env_of(&source);
    let app = spawn_on(source, vars).await;
    populate(&app, 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("good.backup");
    let good = file.display().to_string();
    let (code, _, err) = devsignal(&["backup", &good], &env).await;
    assert_eq!(code, 0, "{err}");

    // A good archive: exit 0 and a summary.
    let (code, out, err) = devsignal(&["backup", "--verify", &good], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK:") && out.contains("signals"), "{out}");
    assert!(
        out.contains("created at") && out.contains("devsignal"),
        "{out}"
    );

    let bytes = std::fs::read(&file).unwrap();
    let check = async |name: &str, content: &[u8], expected: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let (code, out, err) =
            devsignal(&["backup", "--verify", &path.display().to_string()], &[]).await;
        assert_ne!(code, 0, "{name} passed verification: {out}");
        eprintln!("{name}: {}", err.trim_end());
        assert!(
            expected.iter().any(|e| err.contains(e)),
            "{name}: expected one of {expected:?} in: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    };
    // A flipped byte in the middle of the compressed stream.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    check("flipped.backup", &flipped, &["is damaged"]).await;
    // Cut in half, and cut just before the end.
    check(
        "half.backup",
        &bytes[..bytes.len() / 2],
        &["is truncated", "is damaged"],
    )
    .await;
    check(
        "short.backup",
        &bytes[..bytes.len() - 3],
        &["is truncated", "is damaged"],
    )
    .await;
    check(
        "text.backup",
        b"hello, not an archive\n",
        &["not a DevSignal backup archive"],
    )
    .await;
    check("empty.backup", b"", &["not a DevSignal backup archive"]).await;
    // A changed row that still decompresses: only the checksum can tell.
    let text = gunzip(&file);
    let changed = text.replacen("owner@rocket.dev", "evil@rocket.dev", 1);
    assert_ne!(changed, text);
    let path = dir.path().join("changed.backup");
    gzip_to(&path, &changed);
    check(
        "changed.backup",
        &std::fs::read(&path).unwrap(),
        &["checksum mismatch"],
    )
    .await;
    // The trailer gone.
    let no_trailer: String =
        text.lines()
            .take(text.lines().count() - 1)
            .fold(String::new(), |mut s, l| {
                s.push_str(l);
                s.push('\n');
                s
            });
    gzip_to(&path, &no_trailer);
    check(
        "no-trailer.backup",
        &std::fs::read(&path).unwrap(),
        &["is truncated"],
    )
    .await;
    // A missing file.
    let (code, _, err) = devsignal(&["backup", "--verify", "/nonexistent/x.backup"], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("no such file"), "{err}");

    // Restore into a database that holds data: refused, naming what it holds, changing nothing.
    let before = count(&app.db, "signals").await;
    let (code, _, err) = devsignal(&["restore", &good], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("is not empty"), "{err}");
    assert!(
        err.contains("organizations") && err.contains("signals"),
        "{err}"
    );
    assert_eq!(count(&app.db, "signals").await, before);

    // An archive from a newer schema: refused before anything is written.
    let newer = text.replacen(
        "\"migrations\":[",
        "\"migrations\":[\"m20990101_000001_from_the_future\",",
        1,
    );
    gzip_to(&path, &newer);
    let target = TestDatabase::new().await;
    let (code, _, err) =
        devsignal(&["restore", &path.display().to_string()], &env_of(&target)).await;
    assert_ne!(code, 0);
    assert!(err.contains("newer than this devsignal"), "{err}");
    assert!(err.contains("m20990101_000001_from_the_future"), "{err}");

    // A damaged archive restores nothing: the target stays empty, and a good one then succeeds.
    std::fs::write(&path, &flipped).unwrap();
    let target_env = env_of(&target);
    let (code, _, err) = devsignal(&["restore", &path.display().to_string()], &target_env).await;
    assert_ne!(code, 0, "a damaged archive restored");
    assert!(
        err.contains("damaged") || err.contains("truncated"),
        "{err}"
    );
    let (code, _, err) = devsignal(&["restore", &good], &target_env).await;
    assert_eq!(code, 0, "restore after a failed one: {err}");
}
