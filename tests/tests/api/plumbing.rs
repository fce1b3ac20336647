use devsignal_tests::{spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let app = spawn_app().await;
    let resp = app.get("/api/v1/nothing-here").await;
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/nothing-here")
    );
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = spawn_app().await;
    let resp = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let big = "x".repeat(5 * 1024 * 1024 + 1);
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read() {
    let app = spawn_app().await;
    let padding = " ".repeat(4 * 1024 * 1024);
    let body = format!("{{\"query\": \"{{ serverInfo {{ version }} }}\"{padding}}}");
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "my-trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "my-trace-123");
    let resp = app.get("/health").await;
    let generated = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    // errors carry it too
    let resp = app.get("/api/v1/missing").await;
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn security_headers_are_set() {
    let app = spawn_app().await;
    let resp = app.get("/health").await;
    let h = resp.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h.contains_key("content-security-policy"));
}

#[tokio::test]
async fn cors_follows_cors_origin() {
    let app = spawn_app_with(&[("CORS_ORIGIN", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let other = preflight("https://evil.example.net").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    // Without CORS_ORIGIN (development) any origin may call, but never with credentials.
    let open = spawn_app().await;
    let any = open
        .client
        .request(reqwest::Method::OPTIONS, open.url("/api/v1/graphql"))
        .header("origin", "https://evil.example.net")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        any.headers()["access-control-allow-origin"],
        "https://evil.example.net"
    );
    assert!(
        !any.headers()
            .contains_key("access-control-allow-credentials")
    );
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/health").await;
    app.graphql("{ serverInfo { version } }", json!({})).await;
    app.get("/api/v1/does-not-exist/123").await;
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(
            r#"devsignal_http_requests_total{method="GET",route="/health",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/graphql",status="200""#),
        "{text}"
    );
    assert!(
        text.contains("devsignal_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // raw paths never become labels
    assert!(!text.contains("does-not-exist"), "{text}");
    assert!(text.contains(r#"route="unmatched""#));
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let body = r#"{"query":"{ serverInfo { version } }"}"#;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    conn.write_all(
        format!(
            "POST /api/v1/graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The server answers `100 Continue` when the handler starts reading the body: from then
    // on the request is in flight (its body not yet sent) when shutdown begins.
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).await.unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    let port = app.port;
    let server = tokio::spawn(app.shutdown());
    devsignal_tests::eventually(
        std::time::Duration::from_secs(10),
        "the listener to close",
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    conn.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("serverInfo"), "{answer}");
    server.await.unwrap().unwrap();
}

/// The server's allocator gives memory back after a spike without waiting for the next
/// allocation: jemalloc's background purging threads run in every process that links the server
/// (glibc's malloc has none, and kept a spike's memory; `--bench memory` shows the figures).
#[tokio::test]
async fn the_allocator_purges_freed_memory_in_the_background() {
    let app = spawn_app().await;
    // A spike of large allocations, freed.
    drop((0..64).map(|_| vec![1u8; 1 << 20]).collect::<Vec<_>>());
    assert_eq!(app.get("/health").await.status(), 200);
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect();
    assert!(
        threads.iter().any(|t| t.starts_with("jemalloc_bg_thd")),
        "no background purging thread among {threads:?} (allocator: {})",
        server::ALLOCATOR
    );
}

/// A source's response is read up to `connectors::http::MAX_RESPONSE_BYTES`; a larger one stops
/// the run instead of growing a buffer without bound.
#[tokio::test]
async fn a_source_response_past_the_cap_stops_instead_of_filling_memory() {
    use connectors::http::{MAX_RESPONSE_BYTES, Request, exchange};
    use connectors::run::Stop;
    use std::time::Duration;
    let _app = spawn_app().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let size = MAX_RESPONSE_BYTES + (1 << 20);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                let _ = sock.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 1 << 16];
                for _ in 0..size / chunk.len() {
                    if sock.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let client = reqwest::Client::new();
    let req = Request::get(format!("http://127.0.0.1:{port}/huge"));
    let ex = exchange(&client, &req, Duration::from_millis(1), 1, Duration::ZERO).await;
    match ex.result {
        Err(Stop::Invalid(m)) => assert!(m.contains("more than 32 MiB"), "{m}"),
        Err(other) => panic!("stopped otherwise: {other:?}"),
        Ok(_) => panic!("a {size}-byte body was read whole"),
    }
}
