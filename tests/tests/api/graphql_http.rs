//! GraphQL over HTTP as its spec says (issue 21, item 20): the spec's own audit (graphql-http's
//! server audits, `tests/audit/`), media types by `Accept` and their status codes, the body's
//! content type, queries by GET (mutations refused), variables coerced before anything runs and
//! named when wrong, GraphiQL only for browsers asking for HTML. Beside it, the WebSocket
//! transport's deadline for queries and mutations, and a request whose client hangs up stopping.

use std::path::Path;
use std::time::Duration;

use devsignal_tests::{TestApp, error_code, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// A POST of `body` (JSON) with `Accept: accept`: status, content type, body.
async fn post(app: &TestApp, accept: &str, body: Value) -> (u16, String, Value) {
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

async fn answer(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

/// The URL of `/api/v1/graphql` with these query parameters.
fn get_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/api/v1/graphql")).unwrap();
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    url.to_string()
}

/// A GET of `/api/v1/graphql` with these query parameters and `Accept`.
async fn get(app: &TestApp, params: &[(&str, &str)], accept: &str) -> reqwest::Response {
    app.client
        .get(get_url(app, params))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_graphql_over_http_audit_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audit");
    let required = std::env::var_os("GRAPHQL_HTTP_AUDIT_REQUIRED").is_some();
    if !dir.join("node_modules/graphql-http").is_dir() {
        assert!(
            !required,
            "GRAPHQL_HTTP_AUDIT_REQUIRED: run `npm ci` in tests/audit"
        );
        eprintln!(
            "skipped: the audit's npm packages are not installed (`npm ci` in tests/audit; \
             .ci/run does it)"
        );
        return;
    }
    let app = spawn_app().await;
    let out = tokio::process::Command::new("node")
        .arg(dir.join("graphql-http-audit.mjs"))
        .arg(app.url("/api/v1/graphql"))
        .output()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            assert!(
                !required,
                "GRAPHQL_HTTP_AUDIT_REQUIRED: node cannot be run ({e})"
            );
            eprintln!("skipped: node cannot be run ({e})");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the audit failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("0 MUST failed, 0 SHOULD failed"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_response_media_type_follows_accept() {
    let app = spawn_app().await;
    let query = json!({"query": "{ __typename }"});
    for (accept, expected) in [
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (
            "application/graphql-response+json, application/json;q=0.9",
            GRAPHQL_RESPONSE_JSON,
        ),
        (
            "application/json, application/graphql-response+json;q=0.5",
            "application/json",
        ),
    ] {
        let (status, content_type, body) = post(&app, accept, query.clone()).await;
        assert_eq!(status, 200, "{accept}: {body}");
        assert_eq!(content_type, expected, "{accept}");
        assert_eq!(body["data"]["__typename"], "QueryRoot", "{body}");
    }
    // No Accept at all: JSON.
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .json(&query)
        .send()
        .await
        .unwrap();
    let (_, content_type, _) = answer(resp).await;
    assert_eq!(content_type, "application/json");
}

#[tokio::test]
async fn request_errors_are_400_without_data_under_graphql_response_json() {
    let app = spawn_app().await;
    let cases = [
        (json!({"query": "{"}), "GRAPHQL_PARSE_FAILED"),
        (
            json!({"query": "{ noSuchField }"}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            json!({"query": "query Q($id: ID!) { __typename }", "variables": {"id": null}}),
            "BAD_USER_INPUT",
        ),
    ];
    for (request, code) in cases {
        let (status, content_type, body) = post(&app, GRAPHQL_RESPONSE_JSON, request.clone()).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
        assert!(body.get("data").is_none(), "{request}: {body}");
        assert_eq!(error_code(&body), Some(code), "{body}");
        // The legacy media type keeps answering 200, with `data: null`.
        let (status, content_type, body) = post(&app, "application/json", request.clone()).await;
        assert_eq!(status, 200, "{request}: {body}");
        assert_eq!(content_type, "application/json");
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(error_code(&body), Some(code), "{body}");
    }
    // An error while executing is a 200 with its `data` under either type.
    let (status, _, body) = post(
        &app,
        GRAPHQL_RESPONSE_JSON,
        json!({"query": "{ __typename viewer { role } }"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_some(), "{body}");
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    // A request without a document is malformed: 400 under either type.
    for accept in [GRAPHQL_RESPONSE_JSON, "application/json"] {
        let (status, _, body) = post(&app, accept, json!({"qeury": "{ __typename }"})).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_code(&body), Some("BAD_REQUEST"), "{body}");
    }
    // A body that is not a GraphQL request stays a 400 under either type.
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("accept", GRAPHQL_RESPONSE_JSON)
        .header("content-type", "application/json")
        .body("{ \"not a JSON")
        .send()
        .await
        .unwrap();
    let (status, content_type, body) = answer(resp).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
    assert_eq!(error_code(&body), Some("BAD_REQUEST"), "{body}");
}

#[tokio::test]
async fn a_request_refused_by_the_rate_limit_is_429_under_graphql_response_json() {
    // With 3 requests a minute, one mutation of four fields is four operations.
    let app = spawn_app_with(&[("RATE_LIMIT_API", "3")]).await;
    let four: String = (0..4)
        .map(|i| format!("r{i}: recomputeScores {{ id }} "))
        .collect();
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("accept", GRAPHQL_RESPONSE_JSON)
        .json(&json!({"query": format!("mutation {{ {four} }}")}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let (status, _, body) = answer(resp).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
}

#[tokio::test]
async fn a_post_without_a_json_content_type_is_415() {
    let app = spawn_app().await;
    let body = r#"{"query": "{ __typename }"}"#;
    for content_type in [None, Some("text/plain"), Some("application/graphql")] {
        let mut req = app.client.post(app.url("/api/v1/graphql")).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (status, _, answer) = answer(req.send().await.unwrap()).await;
        assert_eq!(status, 415, "{content_type:?}: {answer}");
        assert_eq!(
            error_code(&answer),
            Some("UNSUPPORTED_MEDIA_TYPE"),
            "{answer}"
        );
    }
    // Parameters of the media type are fine.
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, _, answer) = answer(resp).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["__typename"], "QueryRoot");
}

#[tokio::test]
async fn get_runs_queries_with_variables_and_operation_name() {
    let app = spawn_app().await;
    let resp = get(&app, &[("query", "{ serverInfo { version } }")], "*/*").await;
    let (status, content_type, body) = answer(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    assert_eq!(
        body["data"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let resp = get(
        &app,
        &[
            (
                "query",
                "query A { __typename } query B($name: String!) { __type(name: $name) { name } }",
            ),
            ("variables", r#"{"name": "ServerInfo"}"#),
            ("operationName", "B"),
        ],
        GRAPHQL_RESPONSE_JSON,
    )
    .await;
    let (status, content_type, body) = answer(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
    assert_eq!(body["data"]["__type"]["name"], "ServerInfo", "{body}");
    // Credentials work as they do on POST.
    let s = app.register("get@http.test", "Get").await;
    let resp = app
        .client
        .get(get_url(&app, &[("query", "{ viewer { role } }")]))
        .bearer_auth(&s.access_token)
        .send()
        .await
        .unwrap();
    let (_, _, body) = answer(resp).await;
    assert_eq!(body["data"]["viewer"]["role"], "OWNER", "{body}");
    // A GET without a document, from a client that is not a browser: 400.
    let (status, _, body) = answer(get(&app, &[], "application/json").await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), Some("BAD_REQUEST"), "{body}");
    // Variables that are not JSON: 400.
    let resp = get(
        &app,
        &[("query", "{ __typename }"), ("variables", "{nope")],
        "application/json",
    )
    .await;
    let (status, _, body) = answer(resp).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn get_refuses_mutations_and_subscriptions_with_405() {
    let app = spawn_app().await;
    let s = app.register("get@http.test", "Get").await;
    let mutation = r#"mutation { createAccount(input: {name: "By GET"}) { id } }"#;
    for (query, name) in [
        (mutation, None),
        ("subscription { serverTime }", None),
        (
            "query Q { __typename } mutation M { createAccount(input: {name: \"By GET\"}) { id } }",
            Some("M"),
        ),
    ] {
        let mut params = vec![("query", query)];
        if let Some(name) = name {
            params.push(("operationName", name));
        }
        let resp = app
            .client
            .get(get_url(&app, &params))
            .header("accept", GRAPHQL_RESPONSE_JSON)
            .bearer_auth(&s.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{query}");
        assert_eq!(resp.headers()["allow"], "POST");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), Some("METHOD_NOT_ALLOWED"), "{body}");
    }
    // Nothing ran: the same mutation by POST finds no account made before it.
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 10) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["accounts"]["edges"], json!([]), "{r}");
}

#[tokio::test]
async fn graphiql_is_offered_only_to_browsers_asking_for_html() {
    let app = spawn_app().await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let resp = get(&app, &[], browser).await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(resp.headers()["location"], "/graphiql");
    // A browser that names a query gets it run.
    let resp = get(&app, &[("query", "{ __typename }")], browser).await;
    let (status, content_type, body) = answer(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    assert_eq!(body["data"]["__typename"], "QueryRoot");
    // Any other client gets GraphQL, never the page.
    let resp = get(&app, &[], "*/*").await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn variable_errors_name_the_variable() {
    let app = spawn_app().await;
    let s = app.register("vars@http.test", "Vars").await;
    let create = "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }";
    let cases = [
        (
            "query($ms: Int) { __typename }",
            json!({"ms": "soon"}),
            "ms",
            "Int",
        ),
        ("query($id: ID!) { __typename }", json!({}), "id", "ID!"),
        (
            "query($id: ID!) { __typename }",
            json!({"id": null}),
            "id",
            "ID!",
        ),
        (create, json!({"input": {"name": 5}}), "input", "input.name"),
        (create, json!({"input": {}}), "input", "input.name"),
        (
            create,
            json!({"input": {"name": "A", "nope": 1}}),
            "input",
            "input.nope",
        ),
    ];
    for (query, variables, variable, detail) in cases {
        let r = app.graphql_as(s.token(), query, variables.clone()).await;
        assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{variables}: {r}");
        let e = &r["errors"][0];
        assert_eq!(e["extensions"]["variable"], variable, "{r}");
        assert_eq!(e["extensions"]["fields"][0]["field"], variable, "{r}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(&format!("\"${variable}\"")), "{message}");
        assert!(message.contains(detail), "{message}");
    }
    // A variable the query does not declare is ignored; a right one runs.
    let r = app
        .graphql_as(
            s.token(),
            create,
            json!({"input": {"name": "Fine"}, "extra": 1}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    // Over WebSocket too.
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.subscribe(
        "1",
        "subscription($ms: Int) { serverTime(intervalMs: $ms) }",
        json!({"ms": "soon"}),
    )
    .await;
    let msg = ws.next(Duration::from_secs(10)).await.unwrap();
    assert!(msg.to_string().contains("\\\"$ms\\\""), "{msg}");
}

/// Holds the accounts table (`companies`) in a transaction, so that creating an account waits.
async fn hold_accounts(app: &TestApp) -> sea_orm::DatabaseTransaction {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let mut tries = 0;
    loop {
        let lock = app.db.begin().await.unwrap();
        let taken = if app.test_db.is_postgres() {
            lock.execute_unprepared("LOCK TABLE companies IN EXCLUSIVE MODE")
                .await
        } else {
            // SQLite answers "database is locked" at once when the app's own loops hold the
            // write lock: try again.
            lock.execute_unprepared("DELETE FROM companies WHERE 1 = 0")
                .await
        };
        match taken {
            Ok(_) => return lock,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = lock.rollback().await;
                eprintln!("taking the lock: {e}; again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not take the lock: {e}"),
        }
    }
}

#[tokio::test]
async fn queries_and_mutations_over_websocket_have_the_http_deadline() {
    let app = spawn_app_with(&[("GRAPHQL_TIMEOUT_MS", "300")]).await;
    let s = app.register("slow@ws.test", "Slow").await;
    let mut ws = app.ws("graphql-transport-ws").await;
    let ack = ws
        .init(json!({"Authorization": format!("Bearer {}", s.access_token)}))
        .await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let lock = hold_accounts(&app).await;
    ws.subscribe(
        "1",
        r#"mutation { createAccount(input: {name: "Blocked"}) { id } }"#,
        json!({}),
    )
    .await;
    let data = ws.next_data().await;
    lock.rollback().await.unwrap();
    assert_eq!(error_code(&data), Some("TIMEOUT"), "{data}");
    let message = data["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("GRAPHQL_TIMEOUT_MS"), "{message}");
    assert!(!message.contains("  "), "{message}");
    let done = ws.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(done["type"], "complete", "{done}");
    // The connection goes on, and a subscription outlives the deadline.
    ws.subscribe(
        "2",
        "subscription { serverTime(intervalMs: 100) }",
        json!({}),
    )
    .await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_millis(700) {
        let data = ws.next_data().await;
        assert!(data["data"]["serverTime"].is_string(), "{data}");
    }
    ws.stop("2").await;
}

#[tokio::test]
async fn a_request_whose_client_hangs_up_stops() {
    // A Clearbit that never answers: it reports when the server's request arrives, and when the
    // server hangs up on it.
    let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outside_url = format!("http://{}", outside.local_addr().unwrap());
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel::<()>();
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut conn, _) = outside.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request was cut short");
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = arrived_tx.send(());
        // Never answer; wait for the other side to close.
        while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    let app = spawn_app_with(&[
        ("CLEARBIT_API_KEY", "sk_test_hang"),
        ("CLEARBIT_COMPANY_URL", &outside_url),
        ("CLEARBIT_PERSON_URL", &outside_url),
        // Neither the deadline nor Clearbit's own timeout (10 s) may end it first.
        ("GRAPHQL_TIMEOUT_MS", "60000"),
    ])
    .await;
    let s = app.register("hang@http.test", "Hang").await;
    let r = app
        .graphql_as(
            s.token(),
            r#"mutation { createAccount(input: {name: "Acme", domain: "acme.io"}) { id } }"#,
            json!({}),
        )
        .await;
    let id = r["data"]["createAccount"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body =
        json!({"query": format!("mutation {{ enrichAccount(id: \"{id}\") {{ outcome }} }}")})
            .to_string();
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let request = format!(
        "POST /api/v1/graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
        s.access_token,
        body.len()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), arrived)
        .await
        .expect("the enrichment reached the outside service")
        .unwrap();
    // The client gives up.
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the server hung up on the outside service once its client had gone")
        .unwrap();
}
