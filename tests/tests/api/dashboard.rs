//! The dashboard served by the binary: the app's files with their cache policy and CSP, the
//! history fallback for page paths, the API's JSON 404 everywhere else, and the offline GraphiQL.

use serde_json::Value;

use devsignal_tests::spawn_app;
use server::http::dashboard;

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_app_is_served_at_the_root_with_history_fallback_and_cache_policy() {
    let app = spawn_app().await;
    let root = app.get("/").await;
    assert_eq!(root.status(), 200);
    assert!(header(&root, "content-type").starts_with("text/html"));
    assert_eq!(header(&root, "cache-control"), "no-cache");
    let csp = header(&root, "content-security-policy").to_owned();
    let index = root.text().await.unwrap();

    // A page path of the app gets the same document (the app's router draws the page).
    for path in [
        "/accounts/0193e2a0-0000-7000-8000-000000000000",
        "/settings/api-keys",
        "/reset-password?token=abc",
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(header(&page, "cache-control"), "no-cache", "{path}");
        assert_eq!(page.text().await.unwrap(), index, "{path}");
    }

    if !dashboard::is_built() {
        // Built without Node.js: the page says how to get the dashboard.
        assert!(index.contains("Node.js"), "{index}");
        assert!(index.contains("DEVSIGNAL_SKIP_FRONTEND"), "{index}");
        return;
    }

    // Only our own origin: no inline scripts, no outside hosts.
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("http"), "{csp}");

    // Every script and stylesheet the document names is served, fingerprinted and immutable.
    let assets: Vec<&str> = index
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "index.html names no script: {index}"
    );
    for asset in &assets {
        let resp = app.get(asset).await;
        assert_eq!(resp.status(), 200, "{asset}");
        assert_eq!(
            header(&resp, "cache-control"),
            "public, max-age=31536000, immutable",
            "{asset}"
        );
        let ct = header(&resp, "content-type");
        if asset.ends_with(".js") {
            assert!(ct.contains("javascript"), "{asset}: {ct}");
        } else if asset.ends_with(".css") {
            assert!(ct.starts_with("text/css"), "{asset}: {ct}");
        }
        // Revalidation by ETag answers 304 without a body.
        let etag = header(&resp, "etag").to_owned();
        assert!(!etag.is_empty(), "{asset} has no ETag");
        let again = app
            .client
            .get(app.url(asset))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{asset}");
    }

    // A fingerprinted file of another build is a 404, not the app's HTML.
    let gone = app.get("/assets/main-00000000.js").await;
    assert_eq!(gone.status(), 404);
    assert!(header(&gone, "content-type").contains("json"));

    // Unfingerprinted files (the icon) are revalidated, not cached for a year.
    let icon = app.get("/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(header(&icon, "cache-control"), "no-cache");
    assert!(header(&icon, "content-type").starts_with("image/svg"));
}

#[tokio::test]
async fn api_paths_and_other_methods_keep_the_json_404() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/nothing-here",
        "/api",
        "/v1/nothing",
        "/health/nothing",
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path}: {body}");
    }
    let resp = app
        .client
        .post(app.url("/accounts"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");

    // The operator routes are untouched.
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    assert!(header(&health, "content-type").contains("json"));
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(header(&metrics, "content-type").contains("openmetrics"));
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary() {
    let app = spawn_app().await;
    let resp = app.get("/graphiql").await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type").starts_with("text/html"));
    let csp = header(&resp, "content-security-policy").to_owned();
    let page = resp.text().await.unwrap();
    if dashboard::is_built() {
        // No CDN: the page and its policy name no outside host.
        assert!(!page.contains("unpkg") && !page.contains("cdn"), "{page}");
        assert!(!csp.contains("http"), "{csp}");
        let script = page
            .split('"')
            .find(|s| s.starts_with("/assets/graphiql") && s.ends_with(".js"))
            .expect("graphiql.html names its bundle");
        let js = app.get(script).await;
        assert_eq!(js.status(), 200);
        assert!(!js.text().await.unwrap().contains("https://unpkg.com"));
    } else {
        assert!(page.contains("GraphiQL"), "{page}");
    }
}
