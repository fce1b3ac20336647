//! What one GraphQL request or WebSocket connection may ask for (issue 21, items 1–4 and 12):
//! complexity multiplied by page sizes, relation cycles, document limits checked before anything
//! runs, aliases, mutation fields and batches counted against the rate limit, the deadline, the
//! response size, operations per WebSocket connection and connections per client. Each refusal
//! carries a code, and the server keeps answering.

use std::time::Duration;

use devsignal_tests::{TestApp, error_code, spawn_app, spawn_app_with};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

async fn health_answers(app: &TestApp) {
    assert_eq!(app.get("/health").await.status(), 200);
}

fn message(resp: &Value) -> &str {
    resp["errors"][0]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn nested_lists_multiply_their_page_sizes_into_the_complexity() {
    let app = spawn_app().await;
    let s = app.register("nest@limits.test", "Nest").await;
    // 100 accounts × 100 contacts each: refused before it runs.
    let wide = "{ accounts(first: 100) { edges { node { contacts(first: 100) { id } } } } }";
    let r = app.graphql_as(s.token(), wide, json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(message(&r).contains("too complex"), "{r}");
    // The same through variables, and with the default page size (20 × 20 × 20 rows).
    let r = app
        .graphql_as(
            s.token(),
            "query($n: Int) { accounts(first: $n) { edges { node { contacts(first: $n) { id } } } } }",
            json!({"n": 100}),
        )
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    let defaults =
        "{ accounts { edges { node { contacts { account { deals { id title } } } } } } }";
    let r = app.graphql_as(s.token(), defaults, json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    // A page the dashboard asks for still runs.
    let page = "{ accounts(first: 50) { totalCount edges { node { id name contacts(first: 5) { id email } deals(first: 5) { id } } } } }";
    let r = app.graphql_as(s.token(), page, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    health_answers(&app).await;
}

#[tokio::test]
async fn relation_cycles_are_followed_only_so_deep() {
    let app = spawn_app().await;
    let s = app.register("cycle@limits.test", "Cycle").await;
    // One row per level keeps the complexity tiny, but the cycle is refused.
    let cycle = "{ accounts(first: 1) { edges { node { contacts(first: 1) { account { contacts(first: 1) { account { contacts(first: 1) { account { contacts(first: 1) { id } } } } } } } } } } }";
    let r = app.graphql_as(s.token(), cycle, json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(message(&r).contains("`contacts` is nested"), "{r}");
    let shallow = "{ accounts(first: 1) { edges { node { contacts(first: 1) { account { contacts(first: 1) { id } } } } } } }";
    let r = app.graphql_as(s.token(), shallow, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
}

/// `depth` levels of fragments, each spreading the one below twice: 2^depth `__typename`s.
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

#[tokio::test]
async fn documents_are_limited_before_they_run_without_signing_in() {
    let app = spawn_app().await;
    let q = fan_out(22);
    assert!(q.len() < 2_000, "a small document: {} bytes", q.len());
    let r = app.graphql(&q, json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(message(&r).contains("fragments are expanded"), "{r}");
    health_answers(&app).await;
    // A few expansions are fine.
    let r = app.graphql(&fan_out(3), json!({})).await;
    assert_eq!(r["data"]["__typename"], "QueryRoot", "{r}");

    let aliases: String = (0..51).map(|i| format!("a{i}: __typename ")).collect();
    let r = app.graphql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(message(&r).contains("aliases"), "{r}");

    let directives = "__typename @include(if: true) ".repeat(51);
    let r = app.graphql(&format!("{{ {directives} }}"), json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(message(&r).contains("directives"), "{r}");

    let big = format!("# {}\n{{ __typename }}", "x".repeat(70 * 1024));
    let r = app.graphql(&big, json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(message(&r).contains("bytes"), "{r}");

    let cycle = "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }";
    let r = app.graphql(cycle, json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    health_answers(&app).await;
}

#[tokio::test]
async fn aliased_mutations_are_capped_and_each_counts_against_the_rate_limit() {
    let app = spawn_app().await;
    let s = app.register("alias@limits.test", "Alias").await;
    let many: String = (0..11)
        .map(|i| format!("r{i}: recomputeScores {{ id }} "))
        .collect();
    let r = app
        .graphql_as(s.token(), &format!("mutation {{ {many} }}"), json!({}))
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(r["data"].is_null(), "nothing ran: {r}");

    // With 3 requests a minute, one mutation of four fields is four operations.
    let app = spawn_app_with(&[("RATE_LIMIT_API", "3")]).await;
    let four: String = (0..4)
        .map(|i| format!("r{i}: recomputeScores {{ id }} "))
        .collect();
    let r = app
        .graphql(&format!("mutation {{ {four} }}"), json!({}))
        .await;
    assert_eq!(error_code(&r), Some("RATE_LIMITED"), "{r}");
    assert!(r["errors"][0]["extensions"]["retryAfter"].is_u64(), "{r}");
}

#[tokio::test]
async fn batches_are_capped_and_each_operation_counts_against_the_rate_limit() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..11)
        .map(|_| json!({"query": "{ __typename }"}))
        .collect();
    let resp = app.post_json("/api/v1/graphql", &json!(batch)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("BAD_REQUEST"), "{body}");
    assert!(message(&body).contains("GRAPHQL_MAX_BATCH"), "{body}");

    let app = spawn_app_with(&[("RATE_LIMIT_API", "3")]).await;
    let batch: Vec<Value> = (0..4).map(|_| json!({"query": "{ __typename }"})).collect();
    let resp = app.post_json("/api/v1/graphql", &json!(batch)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
}

#[tokio::test]
async fn a_request_past_its_deadline_is_stopped_with_timeout() {
    let app = spawn_app_with(&[("GRAPHQL_TIMEOUT_MS", "300")]).await;
    let s = app.register("slow@limits.test", "Slow").await;
    // Hold the accounts table (`companies`) so that creating one cannot finish before the deadline.
    // SQLite answers "database is locked" at once (no busy wait) when a deferred transaction
    // cannot take the write lock because the app's own loops hold it: try again.
    let mut tries = 0;
    let lock = loop {
        let lock = app.db.begin().await.unwrap();
        let taken = if app.test_db.is_postgres() {
            lock.execute_unprepared("LOCK TABLE companies IN EXCLUSIVE MODE")
                .await
        } else {
            lock.execute_unprepared("DELETE FROM companies WHERE 1 = 0")
                .await
        };
        match taken {
            Ok(_) => break lock,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = lock.rollback().await;
                eprintln!("taking the lock: {e}; again");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not take the lock: {e}"),
        }
    };
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Blocked\"}) { id } }",
            json!({}),
        )
        .await;
    lock.rollback().await.unwrap();
    assert_eq!(error_code(&r), Some("TIMEOUT"), "{r}");
    assert!(message(&r).contains("GRAPHQL_TIMEOUT_MS"), "{r}");
    assert!(
        !message(&r).contains("  "),
        "one sentence, no run of spaces: {r}"
    );
    health_answers(&app).await;
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_refused() {
    let app = spawn_app_with(&[("GRAPHQL_MAX_RESPONSE_BYTES", "2000")]).await;
    let r = app
        .graphql("{ __schema { types { name description } } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("LIMIT_EXCEEDED"), "{r}");
    assert!(r.get("data").is_none_or(Value::is_null), "{r}");
    let r = app.graphql("{ __typename }", json!({})).await;
    assert_eq!(r["data"]["__typename"], "QueryRoot", "{r}");
}

#[tokio::test]
async fn client_mistakes_in_choosing_the_operation_are_client_errors() {
    let app = spawn_app().await;
    let two = "query A { __typename } query B { __typename }";
    for (query, name) in [(two, Some("C")), (two, None), ("{ __typename }", Some("A"))] {
        let resp = app
            .post_json(
                "/api/v1/graphql",
                &json!({"query": query, "operationName": name}),
            )
            .await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            error_code(&body),
            Some("BAD_REQUEST"),
            "{query} {name:?}: {body}"
        );
    }
    let resp = app
        .post_json(
            "/api/v1/graphql",
            &json!({"query": two, "operationName": "B"}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "QueryRoot", "{body}");
    let r = app
        .graphql("{ __typename } { __typename }", json!({}))
        .await;
    let code = error_code(&r);
    assert!(
        matches!(
            code,
            Some("GRAPHQL_PARSE_FAILED" | "GRAPHQL_VALIDATION_FAILED")
        ),
        "{r}"
    );
}

#[tokio::test]
async fn a_websocket_connection_runs_a_bounded_number_of_subscriptions() {
    let app = spawn_app_with(&[("WS_MAX_SUBSCRIPTIONS", "3")]).await;
    let mut ws = app.ws("graphql-transport-ws").await;
    assert_eq!(ws.init(json!({})).await["type"], "connection_ack");
    let tick = "subscription { serverTime(intervalMs: 60000) }";
    for id in ["1", "2", "3"] {
        ws.subscribe(id, tick, json!({})).await;
        let first = ws.next_data().await;
        assert!(first["data"]["serverTime"].is_string(), "{first}");
    }
    ws.subscribe("4", tick, json!({})).await;
    let refused = ws.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(refused["id"], "4", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{refused}"
    );
    let end = ws.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(end["type"], "complete", "{end}");
    // Stopping one frees its place.
    ws.stop("1").await;
    ws.subscribe("5", tick, json!({})).await;
    let msg = loop {
        let m = ws.next(Duration::from_secs(10)).await.unwrap();
        if m["id"] == "5" {
            break m;
        }
    };
    assert!(msg["payload"]["data"]["serverTime"].is_string(), "{msg}");
}

#[tokio::test]
async fn a_client_holds_a_bounded_number_of_websocket_connections() {
    let app = spawn_app_with(&[("WS_MAX_CONNECTIONS", "2")]).await;
    let a = app.ws("graphql-transport-ws").await;
    let _b = app.ws("graphql-transport-ws").await;
    let url = format!("ws://127.0.0.1:{}/api/v1/graphql/ws", app.port);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
        }
        other => panic!(
            "a third connection was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    health_answers(&app).await;
    // Closing one frees its place.
    drop(a);
    devsignal_tests::eventually(Duration::from_secs(10), "a free connection", || {
        let req = req.clone();
        async move { tokio_tungstenite::connect_async(req).await.ok() }
    })
    .await;
}

/// Connections are also counted per credential: one token cannot hold more than
/// `WS_MAX_CONNECTIONS` by coming from many addresses (here through a trusted proxy).
#[tokio::test]
async fn a_credential_holds_a_bounded_number_of_websocket_connections_from_any_address() {
    let app = spawn_app_with(&[("WS_MAX_CONNECTIONS", "2"), ("TRUST_PROXY", "1")]).await;
    let (a, b) = app.two_tenants().await;
    let url = format!("ws://127.0.0.1:{}/api/v1/graphql/ws", app.port);
    let connect = |ip: &'static str| {
        let url = url.clone();
        async move {
            devsignal_tests::WsClient::connect_with(
                &url,
                "graphql-transport-ws",
                &[("X-Forwarded-For", ip)],
            )
            .await
        }
    };
    let init = |s: &devsignal_tests::Session| json!({"Authorization": format!("Bearer {}", s.access_token)});
    let mut first = connect("203.0.113.1").await;
    assert_eq!(first.init(init(&a)).await["type"], "connection_ack");
    let mut second = connect("203.0.113.2").await;
    assert_eq!(second.init(init(&a)).await["type"], "connection_ack");
    // A third address, the same token: refused at connection_init.
    let mut third = connect("203.0.113.3").await;
    third
        .send(json!({"type": "connection_init", "payload": init(&a)}))
        .await;
    let answer = third.next(Duration::from_secs(10)).await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|a| a["type"] != "connection_ack"),
        "{answer:?}"
    );
    // Another credential from that address is welcome.
    let mut other = connect("203.0.113.3").await;
    assert_eq!(other.init(init(&b)).await["type"], "connection_ack");
    // Closing one of the token's connections frees its place.
    drop(first);
    devsignal_tests::eventually(Duration::from_secs(10), "a free place", || async {
        let mut again = connect("203.0.113.4").await;
        again
            .send(json!({"type": "connection_init", "payload": init(&a)}))
            .await;
        let answer = again.next(Duration::from_secs(10)).await?;
        (answer["type"] == "connection_ack").then_some(again)
    })
    .await;
}

#[tokio::test]
async fn background_loops_have_their_own_pool_when_requests_hold_every_connection() {
    let app = spawn_app_with(&[("DATABASE_MAX_CONNECTIONS", "2")]).await;
    // Whatever holds every connection of the serving pool (here: two open transactions)...
    let held = [app.db.begin().await.unwrap(), app.db.begin().await.unwrap()];
    // ...the worker still claims and runs a job.
    let side = domain::db::connect(&app.test_db.url, &Default::default())
        .await
        .unwrap();
    let job = domain::queue::NewJob::new("signal-processing", "noop", json!({}));
    let id = domain::queue::enqueue(&side, job).await.unwrap().unwrap();
    devsignal_tests::eventually(Duration::from_secs(20), "the job to complete", || {
        let side = side.clone();
        async move {
            let j = domain::queue::get(&side, id).await.unwrap().unwrap();
            (j.state == domain::queue::state::COMPLETED).then_some(())
        }
    })
    .await;
    drop(held);
}

#[tokio::test]
async fn each_websocket_operation_counts_against_the_rate_limit() {
    let app = spawn_app_with(&[("RATE_LIMIT_API", "3")]).await;
    // The upgrade is the first request of the minute, each operation one more.
    let mut ws = app.ws("graphql-transport-ws").await;
    assert_eq!(ws.init(json!({})).await["type"], "connection_ack");
    let tick = "subscription { serverTime(intervalMs: 60000) }";
    for id in ["1", "2"] {
        ws.subscribe(id, tick, json!({})).await;
        assert!(ws.next_data().await["data"]["serverTime"].is_string());
    }
    ws.subscribe("3", tick, json!({})).await;
    let refused = ws.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(refused["id"], "3", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
}

/// Connections of the serving pool in use right now.
fn in_use(db: &sea_orm::DatabaseConnection) -> u32 {
    match domain::db::Backend::of(db) {
        domain::db::Backend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            p.size().saturating_sub(p.num_idle() as u32)
        }
        domain::db::Backend::Postgres => {
            let p = db.get_postgres_connection_pool();
            p.size().saturating_sub(p.num_idle() as u32)
        }
    }
}

/// 50 aliased lists with a nested relation: one request that used to take every connection.
fn fifty_lists() -> String {
    let fields: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "a{i}: accounts(first: 5) {{ totalCount edges {{ node {{ id name contacts(first: 2) {{ id }} }} }} }}"
            )
        })
        .collect();
    format!("{{ {} }}", fields.join(" "))
}

async fn seed_accounts(app: &TestApp, token: Option<&str>) {
    let input: Vec<Value> = (0..30)
        .map(|i| json!({"name": format!("Pool {i:02}")}))
        .collect();
    let r = app
        .graphql_as(
            token,
            "mutation($i: [CreateAccountInput!]!) { createAccounts(input: $i) { id } }",
            json!({"i": input}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
}

/// The most serving-pool connections in use while `query` runs once.
async fn peak_connections(app: &TestApp, token: Option<&str>, query: &str) -> (u32, Value) {
    let db = app.state.db.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut peak = 0;
            while !stop.is_cancelled() {
                peak = peak.max(in_use(&db));
                tokio::task::yield_now().await;
            }
            peak
        }
    });
    let r = app.graphql_as(token, query, json!({})).await;
    stop.cancel();
    (sampler.await.unwrap(), r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_holds_a_bounded_number_of_pool_connections() {
    let app = spawn_app_with(&[
        ("DATABASE_MAX_CONNECTIONS", "12"),
        ("DATABASE_REQUEST_CONNECTIONS", "1"),
    ])
    .await;
    let s = app.register("pool@limits.test", "Pool").await;
    seed_accounts(&app, s.token()).await;
    let (peak, r) = peak_connections(&app, s.token(), &fifty_lists()).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(r["data"]["a49"]["totalCount"], 30, "{r}");
    println!(
        "50 aliased lists, DATABASE_REQUEST_CONNECTIONS=1: peak {peak} of 12 connections in use"
    );
    // Its one slot; the connections its previous statements released, which sqlx hands back to
    // the pool on spawned tasks, so they count as in use a moment longer (longer on a loaded
    // machine); and one for whatever else the process runs meanwhile (the live tailer).
    // Unbounded, the request takes all twelve.
    assert!(peak <= 6, "one request held {peak} connections at once");
    // For comparison, the same request allowed the whole pool but one.
    let app = spawn_app_with(&[
        ("DATABASE_MAX_CONNECTIONS", "12"),
        ("DATABASE_REQUEST_CONNECTIONS", "100"),
    ])
    .await;
    let s = app.register("pool@limits.test", "Pool").await;
    seed_accounts(&app, s.token()).await;
    let (wide, r) = peak_connections(&app, s.token(), &fifty_lists()).await;
    assert!(r.get("errors").is_none(), "{r}");
    println!(
        "50 aliased lists, DATABASE_REQUEST_CONNECTIONS=100 (capped at 11): peak {wide} of 12"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_heavy_requests_on_a_small_pool_leaves_jobs_running_and_answers_cleanly() {
    let app = spawn_app_with(&[("DATABASE_MAX_CONNECTIONS", "2")]).await;
    let s = app.register("flood@limits.test", "Flood").await;
    seed_accounts(&app, s.token()).await;
    let query = fifty_lists();
    let started = std::time::Instant::now();
    let flood: Vec<_> = (0..12)
        .map(|_| {
            let (client, url, token, query) = (
                app.client.clone(),
                app.url("/api/v1/graphql"),
                s.token().map(str::to_owned),
                query.clone(),
            );
            tokio::spawn(async move {
                let mut req = client.post(url).json(&json!({"query": query}));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    // Meanwhile the worker runs a job on its own pool.
    let side = domain::db::connect(&app.test_db.url, &Default::default())
        .await
        .unwrap();
    let job = domain::queue::NewJob::new("signal-processing", "noop", json!({}));
    let id = domain::queue::enqueue(&side, job).await.unwrap().unwrap();
    devsignal_tests::eventually(Duration::from_secs(20), "the job to complete", || {
        let side = side.clone();
        async move {
            let j = domain::queue::get(&side, id).await.unwrap().unwrap();
            (j.state == domain::queue::state::COMPLETED).then_some(())
        }
    })
    .await;
    let job_done = started.elapsed();
    let (mut ok, mut unavailable) = (0, 0);
    for f in flood {
        let (status, body) = f.await.unwrap();
        let codes: Vec<&str> = body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["extensions"]["code"].as_str().unwrap_or("none"))
                    .collect()
            })
            .unwrap_or_default();
        match (status, codes.is_empty()) {
            (200, true) if body["data"]["a49"]["totalCount"] == 30 => ok += 1,
            (200 | 503, false) if codes.iter().all(|c| *c == "UNAVAILABLE") => unavailable += 1,
            _ => panic!("a request of the flood answered {status}: {body}"),
        }
    }
    println!(
        "12 × 50 aliased lists on a pool of 2: {ok} answered, {unavailable} UNAVAILABLE, in {:?}; \
         a job completed after {job_done:?}",
        started.elapsed()
    );
    health_answers(&app).await;
}

/// Errors raised before a document runs carry their codes over HTTP and over WebSocket alike:
/// the parser's nesting limit, validation, and variables of the wrong type.
#[tokio::test]
async fn errors_before_execution_carry_codes_on_every_transport() {
    let app = spawn_app().await;
    let deep = format!(
        "{{ {} __typename {} }}",
        "... on QueryRoot { ".repeat(40),
        "}".repeat(40)
    );
    let unknown_field = "{ noSuchField }";
    let wrong_variable =
        "query($n: Int) { serverInfo { version } accounts(first: $n) { totalCount } }";
    let cases = [
        (deep.as_str(), json!({}), "GRAPHQL_PARSE_FAILED"),
        (unknown_field, json!({}), "GRAPHQL_VALIDATION_FAILED"),
        (wrong_variable, json!({"n": "ten"}), "BAD_USER_INPUT"),
    ];
    for (query, variables, code) in &cases {
        let r = app.graphql(query, variables.clone()).await;
        assert_eq!(error_code(&r), Some(*code), "HTTP {query}: {r}");
    }
    let mut ws = app.ws("graphql-transport-ws").await;
    assert_eq!(ws.init(json!({})).await["type"], "connection_ack");
    for (i, (query, variables, code)) in cases.iter().enumerate() {
        let id = format!("op{i}");
        ws.subscribe(&id, query, variables.clone()).await;
        let msg = loop {
            let msg = ws.next(Duration::from_secs(10)).await.expect("an answer");
            if msg["type"] != "complete" {
                break msg;
            }
        };
        assert_eq!(msg["id"], id.as_str(), "{msg}");
        let errors = match msg["type"].as_str() {
            Some("error") => msg["payload"].clone(),
            _ => msg["payload"]["errors"].clone(),
        };
        assert_eq!(
            errors[0]["extensions"]["code"], *code,
            "WebSocket {query}: {msg}"
        );
    }
}

/// A document whose text was parsed and admitted before starts from a copy of that parse
/// (counted as `reused` in `devsignal_graphql_documents_total`), and every check after the parse
/// still runs on each request: complexity with this request's variables, the operation it names.
/// A document that does not parse, or is longer than the kept size, is parsed every time; the
/// kept set is bounded, least recently used out first.
#[tokio::test]
async fn a_document_is_parsed_once_and_still_checked_on_every_request() {
    let app = spawn_app().await;
    let s = app.register("parse@limits.test", "Parse").await;
    let m = &app.state.metrics;
    let counts = || {
        (
            m.graphql_documents_parsed.get(),
            m.graphql_documents_reused.get(),
        )
    };
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Kept\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");

    let q = "query Names($n: Int) { accounts(first: $n) { edges { node { name contacts(first: $n) { id } } } } } query Count { accounts { totalCount } }";
    let (parsed, reused) = counts();
    let first = app
        .graphql_as_named(s.token(), q, "Names", json!({"n": 5}))
        .await;
    assert_eq!(
        first["data"]["accounts"]["edges"][0]["node"]["name"],
        "Kept"
    );
    assert_eq!(counts(), (parsed + 1, reused));
    let again = app
        .graphql_as_named(s.token(), q, "Names", json!({"n": 5}))
        .await;
    assert_eq!(again, first);
    assert_eq!(counts(), (parsed + 1, reused + 1));
    // The same text naming its other operation.
    let count = app.graphql_as_named(s.token(), q, "Count", json!({})).await;
    assert_eq!(count["data"]["accounts"]["totalCount"], 1, "{count}");
    assert_eq!(counts(), (parsed + 1, reused + 2));
    // Variables that make the kept document too complex are refused.
    let wide = app
        .graphql_as_named(s.token(), q, "Names", json!({"n": 100}))
        .await;
    assert_eq!(
        error_code(&wide),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{wide}"
    );
    assert_eq!(counts(), (parsed + 1, reused + 3));

    // A document that does not parse is never kept.
    for _ in 0..2 {
        let r = app.graphql_as(s.token(), "{ accounts { ", json!({})).await;
        assert_eq!(error_code(&r), Some("GRAPHQL_PARSE_FAILED"), "{r}");
    }
    assert_eq!(counts(), (parsed + 3, reused + 3));
    // Nor one longer than the kept size (a long comment here).
    let long = format!(
        "# {}\n{{ accounts {{ totalCount }} }}",
        "x".repeat(9 * 1024)
    );
    for _ in 0..2 {
        let r = app.graphql_as(s.token(), &long, json!({})).await;
        assert_eq!(r["data"]["accounts"]["totalCount"], 1, "{r}");
    }
    assert_eq!(counts(), (parsed + 5, reused + 3));

    // 256 documents are kept: after 256 others, the first is parsed again.
    for i in 0..256 {
        let r = app
            .graphql_as(s.token(), &format!("{{ a{i}: __typename }}"), json!({}))
            .await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    let (parsed, reused) = counts();
    let r = app.graphql_as_named(s.token(), q, "Count", json!({})).await;
    assert_eq!(r, count);
    assert_eq!(counts(), (parsed + 1, reused));
    health_answers(&app).await;
}
