//! Outbound webhooks, tried as an integrator would: a local receiver verifies every
//! request with the Standard Webhooks library, answers with chosen statuses and delays, and the
//! delivery log, retries, `410 Gone`, disabling, redelivery, replay, rotation and the target
//! safety rules are checked through GraphQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app_with};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id url eventTypes enabled status secret createdAt } }";
const CREATE_ACCOUNT: &str =
    "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id name } }";
const DELIVERIES: &str = "query($e: ID, $s: WebhookDeliveryStatus) { webhookDeliveries(endpointId: $e, status: $s, first: 100) { totalCount edges { node { id eventType eventSeq status nextAttemptAt payload attempts { at statusCode latencyMs responseBody error } } } } }";
const ENDPOINT: &str = "query($id: ID!) { webhookEndpoint(id: $id) { id enabled status disabledReason failingSince secret } }";

fn ok(resp: &Value) -> &Value {
    assert!(resp.get("errors").is_none(), "{resp}");
    &resp["data"]
}

fn field(resp: &Value) -> String {
    resp["errors"][0]["extensions"]["fields"][0]["field"]
        .as_str()
        .or_else(|| resp["errors"][0]["extensions"]["field"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    headers: HeaderMap,
    body: Vec<u8>,
    path: String,
    at: std::time::Instant,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// A webhook receiver: records every request and answers with the (status, delay, body) set by
/// [`Receiver::answer`] (200 "ok" at first).
#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    default: Arc<Mutex<(u16, Duration, String)>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Default::default();
        let default = Arc::new(Mutex::new((200u16, Duration::ZERO, "ok".to_owned())));
        let (h, d) = (hits.clone(), default.clone());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let (h, d) = (h.clone(), d.clone());
                async move {
                    h.lock().unwrap().push(Hit {
                        headers,
                        body: body.to_vec(),
                        path: uri.path().to_owned(),
                        at: std::time::Instant::now(),
                    });
                    let (status, delay, body) = d.lock().unwrap().clone();
                    tokio::time::sleep(delay).await;
                    let mut resp = axum::response::Response::new(axum::body::Body::from(body));
                    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                    if status == 302 {
                        resp.headers_mut()
                            .insert("location", "/redirected".parse().unwrap());
                    }
                    resp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, hits, default }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn answer(&self, status: u16, delay: Duration, body: &str) {
        *self.default.lock().unwrap() = (status, delay, body.to_owned());
    }

    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        eventually(
            Duration::from_secs(15),
            &format!("{n} webhook requests"),
            || async {
                let h = self.hits();
                (h.len() >= n).then_some(h)
            },
        )
        .await
    }
}

fn verify(secret: &str, hit: &Hit) {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, hit.header(name).parse().unwrap());
    }
    wh.verify(&hit.body, &headers)
        .unwrap_or_else(|e| panic!("signature does not verify: {e:?} {hit:?}"));
}

async fn create_endpoint(
    app: &TestApp,
    s: &Session,
    url: &str,
    types: &[&str],
) -> (String, String) {
    let r = app
        .graphql_as(
            s.token(),
            CREATE,
            json!({"input": {"url": url, "eventTypes": types}}),
        )
        .await;
    let e = &ok(&r)["createWebhookEndpoint"];
    (
        e["id"].as_str().unwrap().to_owned(),
        e["secret"].as_str().unwrap().to_owned(),
    )
}

async fn create_account(app: &TestApp, s: &Session, name: &str) -> String {
    let r = app
        .graphql_as(s.token(), CREATE_ACCOUNT, json!({"input": {"name": name}}))
        .await;
    ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, s: &Session, endpoint: &str) -> Vec<Value> {
    let r = app
        .graphql_as(s.token(), DELIVERIES, json!({"e": endpoint}))
        .await;
    ok(&r)["webhookDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// `replayWebhooks` of `endpoint` over `[from, to]`; the whole response.
async fn replay(
    app: &TestApp,
    s: &Session,
    endpoint: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Value {
    app.graphql_as(
        s.token(),
        "mutation($id: ID!, $from: DateTime!, $to: DateTime!) { replayWebhooks(endpointId: $id, from: $from, to: $to) { count } }",
        json!({"id": endpoint, "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
    )
    .await
}

async fn endpoint_state(app: &TestApp, s: &Session, id: &str) -> Value {
    let r = app.graphql_as(s.token(), ENDPOINT, json!({"id": id})).await;
    ok(&r)["webhookEndpoint"].clone()
}

#[tokio::test]
async fn endpoints_are_managed_by_admins_and_keys_with_the_scope() {
    let app = spawn_app_with(&[]).await;
    let (a, b) = app.two_tenants().await;
    let rx = Receiver::start().await;

    // Created with a secret shown once; stored encrypted.
    let r = app
        .graphql_as(
            a.token(),
            CREATE,
            json!({"input": {"url": rx.url, "eventTypes": ["company.created", "*"], "description": "CRM sync"}}),
        )
        .await;
    let e = ok(&r)["createWebhookEndpoint"].clone();
    let id = e["id"].as_str().unwrap().to_owned();
    let secret = e["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(&secret["whsec_".len()..])
        .unwrap();
    assert!(key.len() >= 24);
    assert_eq!(e["enabled"], true);
    assert_eq!(e["status"], "HEALTHY");
    let row = entity::webhook_endpoints::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap());
    use sea_orm::EntityTrait;
    let row = row.one(&app.db).await.unwrap().unwrap();
    assert!(!row.secret_ciphertext.contains(&secret["whsec_".len()..]));
    assert!(row.secret_ciphertext.starts_with("v1:"));

    // Listed without the secret.
    let r = app
        .graphql_as(
            a.token(),
            "{ webhookEndpoints { id url secret description eventTypes } }",
            json!({}),
        )
        .await;
    let list = ok(&r)["webhookEndpoints"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["secret"], Value::Null);
    assert_eq!(list[0]["eventTypes"], json!(["company.created", "*"]));

    // Validation names the field.
    for (input, f) in [
        (json!({"url": "not a url", "eventTypes": ["*"]}), "url"),
        (
            json!({"url": "ftp://example.com/x", "eventTypes": ["*"]}),
            "url",
        ),
        (
            json!({"url": rx.url, "eventTypes": ["nope.done"]}),
            "eventTypes",
        ),
        (json!({"url": rx.url, "eventTypes": []}), "eventTypes"),
        (
            json!({"url": rx.url, "eventTypes": ["*"], "filter": {"tiers": ["LUKEWARM"]}}),
            "filter.tiers",
        ),
    ] {
        let r = app
            .graphql_as(a.token(), CREATE, json!({"input": input}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(field(&r), f, "{r}");
    }

    // Update: url, types, disable and re-enable.
    let r = app
        .graphql_as(
            a.token(),
            "mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) { eventTypes enabled status disabledReason description } }",
            json!({"id": id, "input": {"eventTypes": ["contact.created"], "enabled": false, "description": null}}),
        )
        .await;
    let u = &ok(&r)["updateWebhookEndpoint"];
    assert_eq!(u["eventTypes"], json!(["contact.created"]));
    assert_eq!(u["enabled"], false);
    assert_eq!(u["status"], "DISABLED");
    assert_eq!(u["description"], Value::Null);
    let r = app
        .graphql_as(
            a.token(),
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: true}) { enabled status disabledReason } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)["updateWebhookEndpoint"]["status"], "HEALTHY");

    // MEMBER and VIEWER may not; a key needs webhooks:manage.
    let member = app.add_member(&a, "member@example.com", "MEMBER").await;
    let r = app
        .graphql_as(member.token(), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            member.token(),
            CREATE,
            json!({"input": {"url": rx.url, "eventTypes": ["*"]}}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let weak = app.api_key(&a, &["accounts:read"]).await;
    let r = app
        .graphql_with_key(&weak, "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let key = app.api_key(&a, &["webhooks:manage", "deals:read"]).await;
    let r = app
        .graphql_with_key(
            &key,
            CREATE,
            json!({"input": {"url": rx.url, "eventTypes": ["deal.created"]}}),
        )
        .await;
    let by_key = ok(&r)["createWebhookEndpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another organization sees none of it.
    let r = app
        .graphql_as(b.token(), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(ok(&r)["webhookEndpoints"], json!([]));
    let r = app.graphql_as(b.token(), ENDPOINT, json!({"id": id})).await;
    assert_code(&r, "NOT_FOUND");
    let r = app
        .graphql_as(
            b.token(),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    let r = app
        .graphql_as(
            b.token(),
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({"id": id}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    let r = app
        .graphql_as(b.token(), DELIVERIES, json!({"e": id}))
        .await;
    assert_code(&r, "NOT_FOUND");

    // Delete answers the id.
    let r = app
        .graphql_with_key(
            &key,
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({"id": by_key}),
        )
        .await;
    assert_eq!(ok(&r)["deleteWebhookEndpoint"], by_key);
    let r = app
        .graphql_as(a.token(), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(ok(&r)["webhookEndpoints"].as_array().unwrap().len(), 1);

    // The audit log has the changes.
    let r = app
        .graphql_as(
            a.token(),
            "{ auditLog(first: 50) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<String> = ok(&r)["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    for a in [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
}

#[tokio::test]
async fn events_are_delivered_signed_in_order_and_only_to_their_organization() {
    let app = spawn_app_with(&[]).await;
    let (a, b) = app.two_tenants().await;
    let rx = Receiver::start().await;
    let rx_b = Receiver::start().await;
    let (ep, secret) = create_endpoint(&app, &a, &rx.url, &["company.created"]).await;
    create_endpoint(&app, &b, &rx_b.url, &["*"]).await;

    let mut names = Vec::new();
    for i in 0..8 {
        let name = format!("Acme {i}");
        create_account(&app, &a, &name).await;
        names.push(name);
    }
    // Not subscribed: company.updated. Another organization's event: only to its own endpoint.
    create_account(&app, &b, "Other Org Co").await;

    let hits = rx.wait_for(8).await;
    let got: Vec<String> = hits
        .iter()
        .map(|h| h.json()["data"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, names, "deliveries arrive in event order");
    for h in &hits {
        verify(&secret, h);
        let body = h.json();
        assert_eq!(body["type"], "company.created");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(h.header("content-type"), "application/json");
        assert!(h.headers.get("webhook-timestamp").is_some());
        assert_eq!(h.path, "/hook");
    }
    let hits_b = rx_b.wait_for(1).await;
    assert_eq!(hits_b[0].json()["data"]["name"], "Other Org Co");

    // The log shows each delivery SUCCEEDED, with the webhook-id as its id.
    let ds = eventually(
        Duration::from_secs(10),
        "8 succeeded deliveries",
        || async {
            let ds = deliveries(&app, &a, &ep).await;
            (ds.len() == 8 && ds.iter().all(|d| d["status"] == "SUCCEEDED")).then_some(ds)
        },
    )
    .await;
    let ids: Vec<String> = hits.iter().map(|h| h.header("webhook-id")).collect();
    for d in &ds {
        assert!(ids.contains(&d["id"].as_str().unwrap().to_owned()));
        let att = d["attempts"].as_array().unwrap();
        assert_eq!(att.len(), 1);
        assert_eq!(att[0]["statusCode"], 200);
        assert_eq!(att[0]["responseBody"], "ok");
    }
    // No stray requests: exactly the 8 events, nothing from organization B.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits().len(), 8);
    assert_eq!(rx_b.hits().len(), 1);
}

#[tokio::test]
async fn failures_retry_with_doubling_waits_then_fail_and_redelivery_keeps_the_id() {
    let app = spawn_app_with(&[("WEBHOOK_RETRY_BASE_SECONDS", "150ms")]).await;
    let (a, _) = app.two_tenants().await;
    let rx = Receiver::start().await;
    let long = "x".repeat(5000);
    rx.answer(500, Duration::ZERO, &long);
    let (ep, secret) = create_endpoint(&app, &a, &rx.url, &["company.created"]).await;
    create_account(&app, &a, "Flaky Inc").await;

    let hits = rx.wait_for(5).await;
    let failed = eventually(Duration::from_secs(10), "a FAILED delivery", || async {
        let ds = deliveries(&app, &a, &ep).await;
        ds.into_iter().find(|d| d["status"] == "FAILED")
    })
    .await;
    let attempts = failed["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 5, "5 attempts in all");
    for att in attempts {
        assert_eq!(att["statusCode"], 500);
        assert_eq!(
            att["responseBody"].as_str().unwrap().len(),
            1024,
            "cut to 1 KB"
        );
    }
    // Same webhook-id on every retry; each wait about twice the one before.
    let id = failed["id"].as_str().unwrap();
    assert!(hits.iter().all(|h| h.header("webhook-id") == id));
    for (n, pair) in hits.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let want = Duration::from_millis(150 * (1 << n));
        assert!(
            gap + Duration::from_millis(20) >= want,
            "retry {n}: waited {gap:?}, want ≥ {want:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), 5, "no sixth attempt");
    let st = endpoint_state(&app, &a, &ep).await;
    assert_eq!(st["status"], "FAILING");
    assert!(st["failingSince"].is_string());
    assert_eq!(st["enabled"], true);

    // The receiver recovers. The operator's "retry failed webhook jobs" sends the delivery
    // again with the same webhook-id; so does redeliverWebhook.
    rx.answer(204, Duration::ZERO, "");
    let (code, out, err) = crate::cli::run(
        &["jobs", "retry-failed", "webhook-delivery"],
        &[("DATABASE_URL", app.test_db.url.as_str())],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "re-enqueued 1 failed job(s) of webhook-delivery"
    );
    let hits = rx.wait_for(6).await;
    assert_eq!(hits[5].header("webhook-id"), id);
    verify(&secret, &hits[5]);
    eventually(
        Duration::from_secs(10),
        "the re-enqueued delivery to succeed",
        || async {
            let ds = deliveries(&app, &a, &ep).await;
            (ds[0]["status"] == "SUCCEEDED").then_some(())
        },
    )
    .await;
    assert_eq!(endpoint_state(&app, &a, &ep).await["status"], "HEALTHY");
    let r = app
        .graphql_as(
            a.token(),
            "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)["redeliverWebhook"]["status"], "PENDING");
    let hits = rx.wait_for(7).await;
    assert_eq!(hits[6].header("webhook-id"), id);
    eventually(
        Duration::from_secs(10),
        "the redelivery to succeed",
        || async {
            let ds = deliveries(&app, &a, &ep).await;
            (ds[0]["status"] == "SUCCEEDED").then_some(())
        },
    )
    .await;
    assert_eq!(endpoint_state(&app, &a, &ep).await["status"], "HEALTHY");
}

#[tokio::test]
async fn timeouts_and_redirects_are_failures() {
    let app = spawn_app_with(&[
        ("WEBHOOK_TIMEOUT_SECONDS", "300ms"),
        ("WEBHOOK_RETRY_BASE_SECONDS", "3600"),
    ])
    .await;
    let (a, _) = app.two_tenants().await;
    let slow = Receiver::start().await;
    slow.answer(200, Duration::from_secs(3), "late");
    let (ep, _) = create_endpoint(&app, &a, &slow.url, &["company.created"]).await;
    let moved = Receiver::start().await;
    moved.answer(302, Duration::ZERO, "");
    let (ep2, _) = create_endpoint(&app, &a, &moved.url, &["company.created"]).await;
    create_account(&app, &a, "Slowpoke").await;

    let att = eventually(Duration::from_secs(10), "a timed-out attempt", || async {
        let ds = deliveries(&app, &a, &ep).await;
        ds.first()
            .and_then(|d| d["attempts"].as_array().and_then(|a| a.first().cloned()))
    })
    .await;
    assert!(
        att["error"].as_str().unwrap().contains("timed out"),
        "{att}"
    );
    assert_eq!(att["statusCode"], Value::Null);
    let d = &deliveries(&app, &a, &ep).await[0];
    assert_eq!(d["status"], "PENDING");
    assert!(d["nextAttemptAt"].is_string(), "a retry is scheduled");

    let att = eventually(Duration::from_secs(10), "a redirected attempt", || async {
        let ds = deliveries(&app, &a, &ep2).await;
        ds.first()
            .and_then(|d| d["attempts"].as_array().and_then(|a| a.first().cloned()))
    })
    .await;
    assert_eq!(att["statusCode"], 302);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        moved.hits().iter().all(|h| h.path == "/hook"),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn gone_disables_at_once_and_continuous_failure_disables_after_the_period() {
    let app = spawn_app_with(&[
        ("WEBHOOK_RETRY_BASE_SECONDS", "100ms"),
        ("WEBHOOK_DISABLE_AFTER_SECONDS", "1s"),
    ])
    .await;
    let (a, _) = app.two_tenants().await;
    let gone = Receiver::start().await;
    gone.answer(410, Duration::ZERO, "bye");
    let (ep_gone, _) = create_endpoint(&app, &a, &gone.url, &["company.created"]).await;
    let broken = Receiver::start().await;
    broken.answer(503, Duration::ZERO, "down");
    let (ep_broken, _) = create_endpoint(&app, &a, &broken.url, &["company.created"]).await;
    create_account(&app, &a, "First").await;

    let st = eventually(
        Duration::from_secs(10),
        "410 to disable the endpoint",
        || async {
            let st = endpoint_state(&app, &a, &ep_gone).await;
            (st["enabled"] == false).then_some(st)
        },
    )
    .await;
    assert_eq!(st["status"], "DISABLED");
    assert!(st["disabledReason"].as_str().unwrap().contains("410"));
    assert_eq!(gone.hits().len(), 1, "no retry after 410");

    let st = eventually(
        Duration::from_secs(15),
        "continuous failure to disable the endpoint",
        || async {
            let st = endpoint_state(&app, &a, &ep_broken).await;
            (st["enabled"] == false).then_some(st)
        },
    )
    .await;
    assert!(
        st["disabledReason"].as_str().unwrap().contains("failed"),
        "{st}"
    );

    // Each disabling is in the event log, with the reason.
    let r = app
        .graphql_as(
            a.token(),
            "{ events(types: [\"webhook.endpoint_disabled\"]) { payload } }",
            json!({}),
        )
        .await;
    let evs = ok(&r)["events"].as_array().unwrap().clone();
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert!(
        evs.iter()
            .any(|e| e["payload"]["endpointId"] == ep_gone.as_str()
                && e["payload"]["reason"].as_str().unwrap().contains("410"))
    );

    // A disabled endpoint gets nothing more.
    let before = gone.hits().len() + broken.hits().len();
    create_account(&app, &a, "Second").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gone.hits().len() + broken.hits().len(), before);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_test_and_replay_send_again() {
    let app = spawn_app_with(&[]).await;
    let (a, _) = app.two_tenants().await;
    let rx = Receiver::start().await;
    let (ep, old) =
        create_endpoint(&app, &a, &rx.url, &["company.created", "company.updated"]).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    create_account(&app, &a, "Before Rotation").await;
    rx.wait_for(1).await;

    let r = app
        .graphql_as(
            a.token(),
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret previousSecretExpiresAt } }",
            json!({"id": ep}),
        )
        .await;
    let rot = &ok(&r)["rotateWebhookSecret"];
    let new = rot["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until =
        chrono::DateTime::parse_from_rfc3339(rot["previousSecretExpiresAt"].as_str().unwrap())
            .unwrap();
    let left = until.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24));

    create_account(&app, &a, "After Rotation").await;
    let hits = rx.wait_for(2).await;
    let sigs = hits[1].header("webhook-signature");
    assert_eq!(sigs.split(' ').count(), 2, "old and new signatures: {sigs}");
    verify(&new, &hits[1]);
    verify(&old, &hits[1]);
    assert_eq!(hits[0].header("webhook-signature").split(' ').count(), 1);

    // A test message.
    let r = app
        .graphql_as(
            a.token(),
            "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { id eventType status } }",
            json!({"id": ep}),
        )
        .await;
    let test_id = ok(&r)["sendTestWebhook"]["id"].as_str().unwrap().to_owned();
    let hits = rx.wait_for(3).await;
    assert_eq!(hits[2].json()["type"], "webhook.test");
    assert_eq!(hits[2].header("webhook-id"), test_id);
    verify(&new, &hits[2]);

    // Replay re-sends the range from the log as new deliveries, in event order.
    let r = replay(&app, &a, &ep, start, chrono::Utc::now()).await;
    assert_eq!(ok(&r)["replayWebhooks"]["count"], 2);
    let hits = rx.wait_for(5).await;
    let names: Vec<Value> = hits[3..]
        .iter()
        .map(|h| h.json()["data"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("Before Rotation"), json!("After Rotation")]
    );
    assert_ne!(hits[3].header("webhook-id"), hits[0].header("webhook-id"));
    let r = replay(&app, &a, &ep, chrono::Utc::now(), start).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "to");
}

#[tokio::test]
async fn private_targets_are_refused_when_saved_and_when_sent() {
    // The test harness allows private targets; this server does not.
    let app = spawn_app_with(&[("WEBHOOK_ALLOW_PRIVATE", "")]).await;
    let (a, _) = app.two_tenants().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.8/hook",
        "http://metadata.google.internal/x",
        "http://metadata/computeMetadata/v1/",
        "http://198.18.0.1/hook",
        "http://[::127.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "https://user:pw@example.com/x",
    ] {
        let r = app
            .graphql_as(
                a.token(),
                CREATE,
                json!({"input": {"url": url, "eventTypes": ["*"]}}),
            )
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(field(&r), "url", "{url}: {r}");
    }

    // DNS rebinding: a name saved while it looked public but resolving to loopback when sent is
    // refused at connect time. Simulate it with a sender that refuses private targets running
    // against an endpoint row that points at `localhost`.
    let rx = Receiver::start().await;
    let url = rx.url.replace("127.0.0.1", "localhost");
    // No worker (so no delivery loop of its own): only the refusing tick below may send.
    let allowed = devsignal_tests::spawn_app_without_worker().await;
    let (c, _) = allowed.two_tenants().await;
    let (ep, _) = create_endpoint(&allowed, &c, &url, &["company.created"]).await;
    create_account(&allowed, &c, "Rebound").await;
    let settings = domain::webhooks::Settings {
        allow_private: false,
        ..allowed.state.config.webhook_settings()
    };
    let sender = jobs::webhook_delivery::Sender::new(
        settings,
        allowed.state.config.cipher().unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    let opts = jobs::webhook_delivery::PumpOptions {
        owner: "test".into(),
        poll_interval: Duration::from_millis(50),
        concurrency: 1,
        lease: Duration::from_secs(30),
    };
    jobs::webhook_delivery::tick(&allowed.db, &sender, &opts, &Default::default())
        .await
        .unwrap();
    let ds = deliveries(&allowed, &c, &ep).await;
    let att = &ds[0]["attempts"][0];
    assert!(
        att["error"]
            .as_str()
            .unwrap_or_default()
            .contains("private"),
        "{ds:?}"
    );
    assert!(rx.hits().is_empty(), "nothing reached the private target");
}

#[tokio::test]
async fn every_event_becomes_one_delivery_however_many_dispatchers_run() {
    let app = spawn_app_with(&[]).await;
    let (a, _) = app.two_tenants().await;
    let rx = Receiver::start().await;
    let (ep, _) = create_endpoint(&app, &a, &rx.url, &["company.created"]).await;
    let opts = |owner: &str| jobs::webhook_delivery::PumpOptions {
        owner: owner.into(),
        poll_interval: Duration::from_millis(10),
        concurrency: 4,
        lease: Duration::from_secs(30),
    };
    // Two more delivery loops beside the server's own.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut loops = Vec::new();
    for owner in ["extra-1", "extra-2"] {
        loops.push(tokio::spawn(jobs::webhook_delivery::run(
            app.db.clone(),
            app.state.webhooks.clone(),
            opts(owner),
            stop.clone(),
        )));
    }
    let mut names = Vec::new();
    for i in 0..20 {
        names.push(format!("Parallel {i}"));
        create_account(&app, &a, &names[i]).await;
    }
    let hits = rx.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    for l in loops {
        l.await.unwrap();
    }
    let hits_now = rx.hits();
    assert_eq!(hits_now.len(), 20, "each event sent once");
    let got: Vec<String> = hits
        .iter()
        .map(|h| h.json()["data"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, names, "in event order");
    assert_eq!(deliveries(&app, &a, &ep).await.len(), 20);
}

const CREATE_CONTACT: &str =
    "mutation($input: ContactFields!) { createContact(input: $input) { id } }";

/// The deliveries `rx` got of `event_type`, by the id their `data` names.
fn of_type(rx: &Receiver, event_type: &str) -> Vec<Value> {
    rx.hits()
        .iter()
        .map(Hit::json)
        .filter(|b| b["type"] == event_type)
        .collect()
}

#[tokio::test]
async fn endpoints_may_ask_for_the_changed_object_read_when_sent_and_within_scopes() {
    let app = spawn_app_with(&[]).await;
    let (a, b) = app.two_tenants().await;
    let (plain, full) = (Receiver::start().await, Receiver::start().await);
    let types = json!(["company.created", "contact.created", "deal.created"]);
    // Off by default: `data` only, as before.
    let r = app
        .graphql_as(
            a.token(),
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id includeObject } }",
            json!({"input": {"url": plain.url, "eventTypes": types}}),
        )
        .await;
    assert_eq!(ok(&r)["createWebhookEndpoint"]["includeObject"], false);
    let r = app
        .graphql_as(
            a.token(),
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id secret includeObject } }",
            json!({"input": {"url": full.url, "eventTypes": types, "includeObject": true}}),
        )
        .await;
    let e = ok(&r)["createWebhookEndpoint"].clone();
    assert_eq!(e["includeObject"], true);
    let secret = e["secret"].as_str().unwrap().to_owned();

    let r = app
        .graphql_as(
            a.token(),
            "mutation { createAccount(input: {name: \"Acme\", domain: \"acme.test\"}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            a.token(),
            CREATE_CONTACT,
            json!({"input": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@acme.test", "title": "CTO", "accountId": account}}),
        )
        .await;
    let contact = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            a.token(),
            "mutation($a: ID!) { createDeal(input: {title: \"Pilot\", amount: 1200, stage: SALES_QUALIFIED, accountId: $a}) { id stage } }",
            json!({"a": account}),
        )
        .await;
    let deal = ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned();
    let deal_stage = ok(&r)["createDeal"]["stage"].clone();

    let hits = full.wait_for(3).await;
    plain.wait_for(3).await;
    for h in &hits {
        verify(&secret, h);
    }
    for body in plain.hits().iter().map(Hit::json) {
        assert!(body.get("object").is_none(), "{body}");
        assert!(body["data"]["id"].is_string(), "{body}");
    }
    let company = &of_type(&full, "company.created")[0];
    assert_eq!(
        company["object"],
        json!({"id": account, "name": "Acme", "domain": "acme.test", "score": null, "tier": null}),
        "{company}"
    );
    assert_eq!(
        company["data"]["name"], "Acme",
        "the event's data is unchanged"
    );
    let person = &of_type(&full, "contact.created")[0]["object"];
    assert_eq!(person["id"], contact.as_str());
    assert_eq!(person["name"], "Ada Lovelace");
    assert_eq!(person["email"], "ada@acme.test");
    assert_eq!(person["title"], "CTO");
    assert_eq!(person["accountId"], account.as_str());
    let d = &of_type(&full, "deal.created")[0]["object"];
    assert_eq!(d["id"], deal.as_str());
    assert_eq!(d["title"], "Pilot");
    assert_eq!(d["stage"], deal_stage);
    assert_eq!(d["amount"], 1200.0);

    // Turned on by an API key, objects are read with its scopes: after an admin adds contact
    // events, contacts stay out (the key may not read them), accounts come.
    let key = app.api_key(&a, &["webhooks:manage", "accounts:read"]).await;
    let keyed = Receiver::start().await;
    let r = app
        .graphql_as(
            Some(&key),
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id } }",
            json!({"input": {"url": keyed.url, "eventTypes": ["company.created"], "includeObject": true}}),
        )
        .await;
    let keyed_id = ok(&r)["createWebhookEndpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .graphql_as(
            a.token(),
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {eventTypes: [\"company.created\", \"contact.created\"]}) { includeObject } }",
            json!({"id": keyed_id}),
        )
        .await;
    assert_eq!(ok(&r)["updateWebhookEndpoint"]["includeObject"], true);
    create_account(&app, &a, "Keyed Co").await;
    app.graphql_as(
        a.token(),
        CREATE_CONTACT,
        json!({"input": {"email": "grace@keyed.test"}}),
    )
    .await;
    keyed.wait_for(2).await;
    assert_eq!(
        of_type(&keyed, "company.created")[0]["object"]["name"],
        "Keyed Co"
    );
    let c = &of_type(&keyed, "contact.created")[0];
    assert_eq!(c["object"], Value::Null, "{c}");
    assert!(
        !keyed
            .hits()
            .iter()
            .any(|h| String::from_utf8_lossy(&h.body).contains("grace@")
                && h.json()["object"] != Value::Null),
        "the contact's email travelled as an object"
    );

    // Another organization's endpoint never reads this one's rows: an event in B's log naming
    // A's account carries a null object.
    let theirs = Receiver::start().await;
    let r = app
        .graphql_as(
            b.token(),
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id } }",
            json!({"input": {"url": theirs.url, "eventTypes": ["company.created"], "includeObject": true}}),
        )
        .await;
    ok(&r);
    let txn = domain::db::begin(&app.db).await.unwrap();
    domain::events::append(
        &txn,
        b.organization_id.parse().unwrap(),
        None,
        "company.created",
        json!({"id": account, "name": "forged"}),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    let got = theirs.wait_for(1).await[0].json();
    assert_eq!(got["object"], Value::Null, "{got}");
    assert!(!String::from_utf8_lossy(&theirs.hits()[0].body).contains("acme.test"));
}

#[tokio::test]
async fn signal_deliveries_carry_the_metadata_the_log_leaves_out() {
    let app = spawn_app_with(&[]).await;
    let (a, b) = app.two_tenants().await;
    let rx = Receiver::start().await;
    let (ep, _) = create_endpoint(&app, &a, &rx.url, &["signal.created"]).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    let ingest = "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id } } }";
    let metadata = json!({"repo": "devsignal", "nested": {"stars": 3, "tags": ["a", "b"]}});
    let r = app
        .graphql_as(
            a.token(),
            ingest,
            json!({"input": {"type": "repo_star", "actor": {"email": "jane@acme.io"}, "metadata": metadata}}),
        )
        .await;
    let id = ok(&r)["ingestSignal"]["signal"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same signal id cannot reach another organization's signal: B's metadata stays B's.
    let r = app
        .graphql_as(
            b.token(),
            ingest,
            json!({"input": {"type": "repo_star", "actor": {"email": "bob@other.io"}, "metadata": {"secret": "b"}}}),
        )
        .await;
    ok(&r);

    let hits = rx.wait_for(1).await;
    let data = &hits[0].json()["data"];
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["type"], "repo_star");
    assert_eq!(
        data["metadata"], metadata,
        "the delivery carries the signal's metadata"
    );

    // The log itself does not copy it.
    let r = app
        .graphql_as(
            a.token(),
            "query { events(types: [\"signal.created\"]) { payload } }",
            json!({}),
        )
        .await;
    let events = ok(&r)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["id"], id.as_str());
    assert!(events[0]["payload"].get("metadata").is_none(), "{events:?}");

    // A replay reads it again from the signal.
    let r = replay(&app, &a, &ep, start, chrono::Utc::now()).await;
    assert_eq!(ok(&r)["replayWebhooks"]["count"], 1);
    let hits = rx.wait_for(2).await;
    assert_eq!(hits[1].json()["data"]["metadata"], metadata);
    assert_eq!(rx.hits().len(), 2);
}
