//! Fuzzing from outside (issue 21, item 23): every GraphQL operation of the schema called with
//! garbage in each argument and each input field, every REST endpoint sent malformed bodies
//! (broken JSON, wrong types, huge strings and lists, NUL bytes, invalid UTF-8, deep nesting, a
//! gzip bomb), and each denial-of-service shape of the issue run at once while `/health` and
//! another tenant are probed. No answer may be a 5xx or `INTERNAL`, none may hang, a refused
//! mutation changes nothing, and the server keeps serving others.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use devsignal_tests::{Session, TestApp, spawn_app};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::cross_tenant::{Schema, fixture, gql_type, unwrap};

/// Values that are wrong for most arguments in one way or another.
fn garbage() -> Vec<(&'static str, Value)> {
    vec![
        ("null", Value::Null),
        ("a number", json!(12345)),
        ("a word", json!("not-a-valid-value")),
        ("an object", json!({"x": 1})),
        ("a NUL byte", json!("a\u{0}b")),
        ("a huge string", json!("x".repeat(300_000))),
        ("a huge list", json!(vec!["x"; 20_000])),
        ("a huge number", json!(1e300)),
        ("below i32", json!(-2_147_483_649_i64)),
        ("odd unicode", json!("\u{202e}\u{1f4a5}\u{fffd}\u{feff}")),
    ]
}

/// One statement counting the rows of every table a request could half-write (the background
/// ones — jobs, events, audit, deliveries — excepted: they move on their own).
async fn row_counts(app: &TestApp) -> Vec<i64> {
    const TABLES: [&str; 13] = [
        "organizations",
        "users",
        "memberships",
        "invitations",
        "api_keys",
        "companies",
        "contacts",
        "contact_identities",
        "deals",
        "activities",
        "signals",
        "webhook_endpoints",
        "integrations",
    ];
    let sql = format!(
        "SELECT {}",
        TABLES
            .iter()
            .map(|t| format!("(SELECT COUNT(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let db = &app.state.db;
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    (0..TABLES.len())
        .map(|i| row.try_get_by_index::<i64>(i).unwrap())
        .collect()
}

/// What is wrong with an answer, if anything: a 5xx, an `INTERNAL` error, no JSON.
fn server_fault(status: u16, body: &str) -> Option<String> {
    if status >= 500 {
        return Some(format!("HTTP {status}: {body:.300}"));
    }
    if body.contains("\"INTERNAL\"") {
        return Some(format!("INTERNAL: {body:.300}"));
    }
    None
}

/// Posts a GraphQL request as `s`; (status, body text). A hang fails the test.
async fn post_graphql(app: &TestApp, s: &Session, query: &str, vars: &Value) -> (u16, String) {
    let r = app
        .client
        .post(app.url("/api/v1/graphql"))
        .bearer_auth(s.token().unwrap())
        .timeout(Duration::from_secs(30))
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer within 30 s ({e}): {query:.200}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Operations that end the caller's session or organization run last, so the others run with a
/// working token.
fn ends_things(op: &str) -> bool {
    [
        "delete",
        "remove",
        "revoke",
        "logout",
        "leave",
        "erase",
        "disconnect",
    ]
    .iter()
    .any(|w| op.to_lowercase().contains(w))
}

#[tokio::test]
async fn schema_driven_garbage_gets_client_errors_and_changes_nothing() {
    let app = spawn_app().await;
    let (a, _b) = app.two_tenants().await;
    let ids = fixture(&app, &a).await;
    let schema = Schema::introspect(&app, &a).await;

    let mut operations: Vec<(&str, &Value)> = Vec::new();
    for (root, keyword) in &schema.roots {
        for f in schema.types[root]["fields"].as_array().unwrap() {
            operations.push((keyword, f));
        }
    }
    operations.sort_by_key(|(_, f)| ends_things(f["name"].as_str().unwrap()));

    let (mut calls, mut problems) = (0, Vec::new());
    let mut refused_mutations = 0;
    for (keyword, f) in operations {
        let op = f["name"].as_str().unwrap();
        let args = f["args"].as_array().unwrap();
        if args.is_empty() {
            continue;
        }
        // A plausible call: every argument declared and given a value.
        let mut filled = crate::cross_tenant::Filled::default();
        let mut base = serde_json::Map::new();
        for arg in args {
            let name = arg["name"].as_str().unwrap();
            base.insert(
                name.to_owned(),
                schema.value(op, name, &arg["type"], &ids, 0, &mut filled),
            );
        }
        let decls: Vec<String> = args
            .iter()
            .map(|a| format!("${}: {}", a["name"].as_str().unwrap(), gql_type(&a["type"])))
            .collect();
        let passed: Vec<String> = args
            .iter()
            .map(|a| format!("{0}: ${0}", a["name"].as_str().unwrap()))
            .collect();
        let query = format!(
            "{keyword}({}) {{ {op}({}){} }}",
            decls.join(", "),
            passed.join(", "),
            schema.selection(&f["type"])
        );
        // Each argument, and each field of an input-object argument, replaced by each garbage.
        let mut variants: Vec<(String, Value)> = Vec::new();
        for arg in args {
            let name = arg["name"].as_str().unwrap();
            for (what, g) in garbage() {
                let mut vars = base.clone();
                vars.insert(name.to_owned(), g.clone());
                variants.push((format!("{name} = {what}"), Value::Object(vars)));
            }
            let (ty, _, _) = unwrap(&arg["type"]);
            if schema.kind(&ty) == "INPUT_OBJECT" && base[name].is_object() {
                for field in schema.types[&ty]["inputFields"].as_array().unwrap() {
                    let fname = field["name"].as_str().unwrap();
                    for (what, g) in garbage() {
                        let mut vars = base.clone();
                        vars[name][fname] = g;
                        variants.push((format!("{name}.{fname} = {what}"), Value::Object(vars)));
                    }
                }
            }
        }
        for (what, vars) in variants {
            let before = if keyword == "mutation" {
                Some(row_counts(&app).await)
            } else {
                None
            };
            let (status, body) = post_graphql(&app, &a, &query, &vars).await;
            calls += 1;
            if let Some(fault) = server_fault(status, &body) {
                problems.push(format!("{op}({what}): {fault}"));
                continue;
            }
            let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let refused = answer["data"][op].is_null() && answer.get("errors").is_some();
            if let Some(before) = before
                && refused
            {
                refused_mutations += 1;
                let after = row_counts(&app).await;
                if before != after {
                    problems.push(format!(
                        "{op}({what}) was refused but changed rows: {before:?} → {after:?}: {body:.300}"
                    ));
                }
            }
        }
    }
    println!(
        "fuzz: {calls} GraphQL calls, {refused_mutations} refused mutations checked for changes"
    );
    assert!(calls > 1_000, "only {calls} calls were generated");
    assert!(
        problems.is_empty(),
        "{} of {calls} calls went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(app.get("/health").await.status(), 200);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A JSON body that nests `depth` arrays.
fn deep_json(depth: usize) -> Vec<u8> {
    let mut s = "[".repeat(depth);
    s.push_str(&"]".repeat(depth));
    s.into_bytes()
}

#[tokio::test]
async fn malformed_rest_bodies_get_client_errors_and_change_nothing() {
    let app = spawn_app().await;
    let s = app.register("owner@fuzz.test", "Fuzz").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let nobody = uuid::Uuid::now_v7();
    // (path, how it is authenticated)
    let endpoints: Vec<(String, &str)> = vec![
        ("/api/v1/auth/register".into(), ""),
        ("/api/v1/auth/login".into(), ""),
        ("/api/v1/auth/refresh".into(), ""),
        ("/api/v1/auth/forgot-password".into(), ""),
        ("/api/v1/auth/reset-password".into(), ""),
        ("/api/v1/auth/oauth/exchange".into(), ""),
        ("/api/v1/signals".into(), "bearer"),
        ("/api/v1/signals/batch".into(), "bearer"),
        ("/v1/track".into(), "basic"),
        ("/v1/identify".into(), "basic"),
        ("/v1/batch".into(), "basic"),
        (format!("/api/v1/webhooks/github/{nobody}"), ""),
        (format!("/api/v1/webhooks/posthog/{nobody}"), ""),
        ("/api/v1/graphql".into(), "bearer"),
    ];
    let huge = format!(
        r#"{{"type": "{}", "email": "a@b.io"}}"#,
        "x".repeat(6 << 20)
    );
    let many: Vec<Value> = (0..20_000).map(|i| json!({"type": "x", "n": i})).collect();
    let bomb = gzip(&vec![b' '; 64 << 20]);
    // (what, content type, content encoding, body)
    let bodies: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        ("broken JSON", "application/json", None, br#"{"type": "x","#.to_vec()),
        ("not an object", "application/json", None, b"[1, 2, 3]".to_vec()),
        ("a bare string", "application/json", None, br#""hello""#.to_vec()),
        ("null", "application/json", None, b"null".to_vec()),
        (
            "wrong types",
            "application/json",
            None,
            br#"{"type": 5, "actor": "x", "email": 7, "password": [], "signals": {}, "batch": 1, "query": 3, "token": false, "refreshToken": {}, "code": []}"#.to_vec(),
        ),
        ("a huge string", "application/json", None, huge.into_bytes()),
        (
            "a huge list",
            "application/json",
            None,
            json!({"signals": many, "batch": many}).to_string().into_bytes(),
        ),
        (
            "NUL bytes",
            "application/json",
            None,
            br#"{"type": "a\u0000b", "email": "a\u0000@b.io", "password": "p\u0000", "event": "x\u0000", "userId": "\u0000", "token": "\u0000", "refreshToken": "\u0000", "query": "{ __typename \u0000 }"}"#.to_vec(),
        ),
        (
            "invalid UTF-8",
            "application/json",
            None,
            b"{\"type\": \"\xff\xfe\xfd\", \"email\": \"\xc3\x28@b.io\"}".to_vec(),
        ),
        ("deep nesting", "application/json", None, deep_json(100_000)),
        ("a gzip bomb", "application/json", Some("gzip"), bomb),
        ("not gzip at all", "application/json", Some("gzip"), b"{}".to_vec()),
        ("text/plain", "text/plain", None, br#"{"type": "x"}"#.to_vec()),
        ("an empty body", "application/json", None, Vec::new()),
    ];
    let mut problems = Vec::new();
    let mut calls = 0;
    for (path, auth) in &endpoints {
        for (what, content_type, encoding, body) in &bodies {
            let before = row_counts(&app).await;
            let mut req = app
                .client
                .post(app.url(path))
                .timeout(Duration::from_secs(30))
                .header("content-type", *content_type)
                .body(body.clone());
            if let Some(e) = encoding {
                req = req.header("content-encoding", *e);
            }
            req = match *auth {
                "bearer" => req.bearer_auth(&key),
                "basic" => req.basic_auth(&key, Some("")),
                _ => req,
            };
            let started = Instant::now();
            let r = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} with {what}: no answer ({e})"));
            calls += 1;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            if let Some(fault) = server_fault(status, &text) {
                problems.push(format!("{path} with {what}: {fault}"));
            } else if status < 400
                && !matches!(*what, "not gzip at all" | "an empty body" | "text/plain")
            {
                // Some bodies are not wrong for every endpoint (JSON sent as text/plain, as
                // browsers' sendBeacon does, is fine for ingest); garbage that was accepted
                // must still not be a success with nothing said.
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if v.get("errors").is_none() && v.get("error").is_none() {
                    problems.push(format!(
                        "{path} with {what}: accepted ({status}): {text:.300}"
                    ));
                }
            }
            if status >= 400 && row_counts(&app).await != before {
                problems.push(format!(
                    "{path} with {what}: refused ({status}) but changed rows"
                ));
            }
            if started.elapsed() > Duration::from_secs(10) {
                problems.push(format!("{path} with {what}: took {:?}", started.elapsed()));
            }
        }
    }
    println!("fuzz: {calls} REST calls with malformed bodies");
    assert!(
        problems.is_empty(),
        "{} of {calls} calls went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(app.get("/health").await.status(), 200);
}

/// This process's resident memory in MB (the server under test runs in it).
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Probes `/health` and another tenant's page every 100 ms while a shape runs: the slowest
/// answer of each, and whether any failed.
struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Duration, Duration, Vec<String>)>,
}

impl Probe {
    fn start(app: &TestApp, other: &Session) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, health, graphql) = (
            app.client.clone(),
            app.url("/health"),
            app.url("/api/v1/graphql"),
        );
        let token = other.token().unwrap().to_owned();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let (mut worst_health, mut worst_page, mut failures) =
                    (Duration::ZERO, Duration::ZERO, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    match client
                        .get(&health)
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {}
                        other => failures.push(format!("/health: {other:?}")),
                    }
                    worst_health = worst_health.max(t.elapsed());
                    let t = Instant::now();
                    let r = client
                        .post(&graphql)
                        .bearer_auth(&token)
                        .timeout(Duration::from_secs(30))
                        .json(&json!({"query": "{ accounts(first: 5) { edges { node { id name } } } }"}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            if v.get("errors").is_some() {
                                failures.push(format!("other tenant: {v}"));
                            }
                        }
                        other => failures.push(format!("other tenant: {other:?}")),
                    }
                    worst_page = worst_page.max(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (worst_health, worst_page, failures)
            }
        });
        Probe { stop, task }
    }

    async fn finish(self) -> (Duration, Duration, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// `depth` levels of fragments, each spreading the one below twice.
fn fan_out(depth: usize) -> String {
    let mut q = format!("query {{ ...F{depth} }}\nfragment F0 on QueryRoot {{ __typename }}\n");
    for i in 1..=depth {
        q.push_str(&format!(
            "fragment F{i} on QueryRoot {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    q
}

/// Every denial-of-service shape of the issue, each sent several times at once: each is refused
/// or answered within a bounded time and memory, never with a 5xx, while `/health` and another
/// tenant's page keep answering. Prints a line per shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_dos_shape_stays_bounded_while_others_are_served() {
    let app = spawn_app().await;
    let attacker = app.register("attacker@fuzz.test", "Attacker").await;
    let other = app.register("other@fuzz.test", "Other").await;
    for n in 0..5 {
        let r = app
            .graphql_as(
                attacker.token(),
                "mutation($e: String!) { ingestSignal(input: {type: \"signup\", actor: {email: $e}}) { signal { id } } }",
                json!({"e": format!("dev{n}@big{}.io", n % 2)}),
            )
            .await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    let mut nested = String::from("contacts(first: 100) { id }");
    for _ in 0..4 {
        nested = format!("contacts(first: 100) {{ account {{ {nested} }} }}");
    }
    let nested = format!("{{ accounts(first: 100) {{ edges {{ node {{ {nested} }} }} }} }}");
    let aliases: String = (0..1000)
        .map(|i| format!("a{i}: accounts(first: 100) {{ edges {{ node {{ contacts(first: 100) {{ id }} }} }} }} "))
        .collect();
    let recompute: String = (0..1000)
        .map(|i| format!("r{i}: recomputeScores {{ id }} "))
        .collect();
    let shapes: Vec<(&str, Option<&Session>, String)> = vec![
        ("nested lists", Some(&attacker), nested),
        ("fragment fan-out, signed out", None, fan_out(22)),
        (
            "1,000 aliases of a nested list",
            Some(&attacker),
            format!("{{ {aliases} }}"),
        ),
        (
            "1,000 aliased recomputeScores",
            Some(&attacker),
            format!("mutation {{ {recompute} }}"),
        ),
    ];
    let mut problems = Vec::new();
    for (name, who, query) in shapes {
        let rss = rss_mb();
        let probe = Probe::start(&app, &other);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (client, url, query) = (
                app.client.clone(),
                app.url("/api/v1/graphql"),
                query.clone(),
            );
            let token = who.map(|s| s.token().unwrap().to_owned());
            tasks.spawn(async move {
                let mut req = client
                    .post(url)
                    .timeout(Duration::from_secs(60))
                    .json(&json!({"query": query}));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = req.send().await.map_err(|e| e.to_string())?;
                let status = r.status().as_u16();
                Ok::<_, String>((status, r.text().await.unwrap_or_default()))
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok((status, body)) => {
                    if let Some(fault) = server_fault(status, &body) {
                        problems.push(format!("{name}: {fault}"));
                    }
                }
                Err(e) => problems.push(format!("{name}: no answer: {e}")),
            }
        }
        let took = started.elapsed();
        let (health, page, failures) = probe.finish().await;
        println!(
            "dos: {name:<32} 4 at once in {:>7.1} ms; slowest /health {:>6.1} ms, other tenant {:>6.1} ms; RSS {rss} → {} MB",
            took.as_secs_f64() * 1e3,
            health.as_secs_f64() * 1e3,
            page.as_secs_f64() * 1e3,
            rss_mb()
        );
        problems.extend(failures.into_iter().map(|f| format!("{name}: {f}")));
        // Generous bounds: "bounded" and "keeps answering", not a performance target.
        if took > Duration::from_secs(20) {
            problems.push(format!("{name}: took {took:?}"));
        }
        if health.max(page) > Duration::from_secs(5) {
            problems.push(format!("{name}: others waited {:?}", health.max(page)));
        }
    }

    // One WebSocket connection asking for 2,000 fast subscriptions gets its cap, no more.
    let probe = Probe::start(&app, &other);
    let started = Instant::now();
    let mut ws = app.ws("graphql-transport-ws").await;
    let ack = ws
        .init(json!({"Authorization": format!("Bearer {}", attacker.token().unwrap())}))
        .await;
    assert_eq!(ack["type"], "connection_ack");
    for i in 0..2000 {
        ws.subscribe(
            &i.to_string(),
            "subscription { serverTime(intervalMs: 100) }",
            json!({}),
        )
        .await;
    }
    let mut running: HashMap<String, bool> = HashMap::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let Some(m) = ws.next(Duration::from_millis(500)).await else {
            break;
        };
        if m["type"] == "next" && m["payload"]["data"]["serverTime"].is_string() {
            running.insert(m["id"].as_str().unwrap_or_default().to_owned(), true);
        }
    }
    drop(ws);
    let (health, page, failures) = probe.finish().await;
    println!(
        "dos: {:<32} {} running after {:>7.1} ms; slowest /health {:>6.1} ms, other tenant {:>6.1} ms",
        "2,000 subscriptions, one socket",
        running.len(),
        started.elapsed().as_secs_f64() * 1e3,
        health.as_secs_f64() * 1e3,
        page.as_secs_f64() * 1e3
    );
    let cap = app.state.config.graphql_limits.ws_max_subscriptions;
    assert!(
        running.len() <= cap,
        "{} subscriptions ran; the cap is {cap}",
        running.len()
    );
    problems.extend(failures.into_iter().map(|f| format!("subscriptions: {f}")));

    // Twenty logins at once (hashing is bounded; the auth limiter refuses past its budget).
    let probe = Probe::start(&app, &other);
    let started = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/login"));
        let password = if i % 2 == 0 {
            devsignal_tests::TEST_PASSWORD.to_owned()
        } else {
            format!("wrong {i}")
        };
        logins.spawn(async move {
            client
                .post(url)
                .timeout(Duration::from_secs(60))
                .json(&json!({"email": "attacker@fuzz.test", "password": password}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    while let Some(done) = logins.join_next().await {
        match done.unwrap() {
            Ok(status) if status < 500 => {}
            other => problems.push(format!("logins: {other:?}")),
        }
    }
    let (health, page, failures) = probe.finish().await;
    println!(
        "dos: {:<32} done in {:>7.1} ms; slowest /health {:>6.1} ms, other tenant {:>6.1} ms",
        "20 logins at once",
        started.elapsed().as_secs_f64() * 1e3,
        health.as_secs_f64() * 1e3,
        page.as_secs_f64() * 1e3
    );
    problems.extend(failures.into_iter().map(|f| format!("logins: {f}")));
    if health.max(page) > Duration::from_secs(5) {
        problems.push(format!("logins: others waited {:?}", health.max(page)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
