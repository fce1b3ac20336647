//! Ingest's rules as a sender sees them: the sender's id is the only dedup rule when there is
//! one (REST `idempotencyKey`, Segment `messageId`); content dedup only for signals without
//! one, and only at the same sender-given timestamp (a retried delivery); unknown REST keys
//! refused by name; the batch status codes (201, 200, 207, 400).

use base64::Engine;
use devsignal_tests::{Session, TestApp, eventually, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

async fn signal_count(app: &TestApp, s: &Session) -> i64 {
    let r = app
        .graphql_as(s.token(), "{ signals(first: 1) { totalCount } }", json!({}))
        .await;
    ok(&r)["signals"]["totalCount"].as_i64().unwrap()
}

struct Rest<'a> {
    app: &'a TestApp,
    key: String,
}

impl Rest<'_> {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn segment(&self, path: &str, body: Value) -> (u16, Value) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.key));
        let r = self
            .app
            .client
            .post(self.app.url(path))
            .header("authorization", format!("Basic {basic}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

async fn setup<'a>(app: &'a TestApp, email: &str) -> (Session, Rest<'a>) {
    let s = app.register(email, "Rules").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    (s, Rest { app, key })
}

#[tokio::test]
async fn a_senders_id_is_the_only_dedup_rule_when_present() {
    let app = spawn_app().await;
    let (s, rest) = setup(&app, "ids@rules.test").await;
    let at = "2026-11-30T10:00:00Z";

    // Five Segment `track` calls, same person, event, properties and time, distinct messageIds:
    // five events.
    for i in 0..5 {
        let (status, body) = rest
            .segment(
                "/v1/track",
                json!({"userId": "u-1", "event": "Docs Searched", "properties": {"q": "auth"},
                       "timestamp": at, "messageId": format!("msg-{i}")}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["deduplicated"], false, "message {i}: {body}");
    }
    assert_eq!(signal_count(&app, &s).await, 5);
    // The same messageId again, whatever it says now: the original.
    let (_, body) = rest
        .segment(
            "/v1/track",
            json!({"userId": "u-2", "event": "Other", "messageId": "msg-3"}),
        )
        .await;
    assert_eq!(body["deduplicated"], true, "{body}");
    assert_eq!(signal_count(&app, &s).await, 5);

    // REST: distinct idempotency keys with identical content and time are distinct events.
    let sig = |k: &str| {
        json!({"type": "api_call", "actor": {"email": "dev@acme.io"}, "metadata": {"endpoint": "/v1/x"},
               "timestamp": at, "idempotencyKey": k})
    };
    for k in ["r-1", "r-2", "r-3"] {
        let (status, body) = rest.post("/api/v1/signals", sig(k)).await;
        assert_eq!(status, 201, "{k}: {body}");
    }
    let (status, again) = rest.post("/api/v1/signals", sig("r-2")).await;
    assert_eq!(status, 200);
    assert_eq!(again["deduplicated"], true);
    assert_eq!(signal_count(&app, &s).await, 8);

    // Within one batch too: distinct keys land, a repeated key is the first item's signal.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [sig("b-1"), sig("b-2"), sig("b-1")]}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["summary"]["deduplicated"], 1, "{b}");
    assert_eq!(
        b["results"][2]["signal"]["id"],
        b["results"][0]["signal"]["id"]
    );
    assert_eq!(signal_count(&app, &s).await, 10);
}

#[tokio::test]
async fn content_dedup_only_catches_a_retry_at_the_same_timestamp() {
    let app = spawn_app().await;
    let (s, rest) = setup(&app, "content@rules.test").await;
    let sig = |at: Option<&str>| {
        let mut v = json!({"type": "page_view", "actor": {"email": "dev@acme.io"}, "metadata": {"path": "/pricing"}});
        if let Some(at) = at {
            v["timestamp"] = json!(at);
        }
        v
    };

    // A retried delivery: same content, same timestamp, no key → the original.
    let (status, first) = rest
        .post("/api/v1/signals", sig(Some("2026-11-30T10:00:00.123456Z")))
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, retry) = rest
        .post(
            "/api/v1/signals",
            sig(Some("2026-11-30T11:00:00.123456+01:00")),
        )
        .await;
    assert_eq!(status, 200, "the same instant in another offset: {retry}");
    assert_eq!(retry["deduplicated"], true);
    assert_eq!(retry["id"], first["id"]);

    // Real repeats: another time, or no time at all (twice).
    for at in [Some("2026-11-30T10:00:01Z"), None, None] {
        let (status, body) = rest.post("/api/v1/signals", sig(at)).await;
        assert_eq!(status, 201, "{at:?}: {body}");
        assert_eq!(body["deduplicated"], false);
    }
    assert_eq!(signal_count(&app, &s).await, 4);

    // A signal with a key never matches by content, and is never matched by it.
    let mut keyed = sig(Some("2026-11-30T10:00:00.123456Z"));
    keyed["idempotencyKey"] = json!("k-1");
    let (status, body) = rest.post("/api/v1/signals", keyed).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(signal_count(&app, &s).await, 5);

    // In one batch: a repeated item with the same timestamp is one signal; without one, two.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [
                sig(Some("2026-11-29T08:00:00Z")), sig(Some("2026-11-29T08:00:00Z")),
                sig(None), sig(None),
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let dedup: Vec<bool> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["deduplicated"].as_bool().unwrap())
        .collect();
    assert_eq!(dedup, [false, true, false, false]);
    assert_eq!(signal_count(&app, &s).await, 8);

    // GraphQL follows the same rule.
    let q = "mutation($input: SignalInput!) { ingestSignal(input: $input) { deduplicated } }";
    let r = app
        .graphql_as(
            s.token(),
            q,
            json!({"input": sig(Some("2026-11-29T08:00:00Z"))}),
        )
        .await;
    assert_eq!(ok(&r)["ingestSignal"]["deduplicated"], true);
    let r = app
        .graphql_as(s.token(), q, json!({"input": sig(None)}))
        .await;
    assert_eq!(ok(&r)["ingestSignal"]["deduplicated"], false);
}

#[tokio::test]
async fn unknown_rest_fields_are_refused_by_name() {
    let app = spawn_app().await;
    let (s, rest) = setup(&app, "typo@rules.test").await;

    for (body, fields) in [
        (
            json!({"type": "signup", "actor": {"mail": "jane@acme.io"}}),
            vec!["actor.mail"],
        ),
        (
            json!({"type": "signup", "idempotency_key": "k", "acount": {"domain": "acme.io"}}),
            vec!["acount", "idempotency_key"],
        ),
        (
            json!({"type": "signup", "account": {"domain": "acme.io", "github_org": "acme"}}),
            vec!["account.github_org"],
        ),
    ] {
        let (status, e) = rest.post("/api/v1/signals", body.clone()).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["code"], "BAD_USER_INPUT");
        let mut got: Vec<&str> = e["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, fields, "{e}");
    }
    // Free-form metadata keeps any key.
    let (status, _) = rest
        .post(
            "/api/v1/signals",
            json!({"type": "signup", "metadata": {"anything": {"goes": 1}}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(signal_count(&app, &s).await, 1);

    // In a batch the item with the typo fails alone; an unknown envelope key fails the batch.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [
                {"type": "signup", "actor": {"email": "a@acme.io"}},
                {"type": "signup", "actor": {"mail": "b@acme.io"}},
            ]}),
        )
        .await;
    assert_eq!(status, 207, "{b}");
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "signals.1.actor.mail"
    );
    let (status, e) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [{"type": "signup"}], "signal": []}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["fields"][0]["field"], "signal");
    assert_eq!(signal_count(&app, &s).await, 2);

    // Segment messages stay lenient: its spec allows extra fields.
    let (status, body) = rest
        .segment(
            "/v1/track",
            json!({"userId": "u-1", "event": "Signed Up", "integrations": {"All": true}, "_metadata": {"x": 1}, "extra": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn batch_statuses_say_what_was_stored() {
    let app = spawn_app().await;
    let (s, rest) = setup(&app, "status@rules.test").await;
    let good = |k: &str| json!({"type": "signup", "idempotencyKey": k});
    let bad = json!({"type": ""});

    // Every item stored: 201.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [good("a"), good("b")]}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    // Every item a repeat: nothing stored, 200.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [good("a"), good("b")]}),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["summary"]["deduplicated"], 2);
    // Some failed: 207 with a result per item; the good one is stored.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [good("c"), bad.clone()]}),
        )
        .await;
    assert_eq!(status, 207, "{b}");
    assert_eq!(b["results"][0]["success"], true);
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "signals.1.type"
    );
    // Every item failed: 400, with the results and the usual error.
    let (status, b) = rest
        .post(
            "/api/v1/signals/batch",
            json!({"signals": [bad.clone(), {"type": "x", "actor": {"email": "nope"}}]}),
        )
        .await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(b["summary"]["failed"], 2);
    assert_eq!(b["error"]["code"], "BAD_USER_INPUT");
    let fields: Vec<&str> = b["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["signals.0.type", "signals.1.actor.email"]);
    assert_eq!(signal_count(&app, &s).await, 3);

    // Segment: a batch where every message failed answers 400 (an SDK drops it rather than
    // retrying it forever); some failed: 200 with `success: false`.
    let (status, b) = rest
        .segment(
            "/v1/batch",
            json!({"batch": [{"type": "track", "userId": "u"}, {"type": "nope"}]}),
        )
        .await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(b["success"], false);
    let (status, b) = rest
        .segment(
            "/v1/batch",
            json!({"batch": [{"type": "track", "userId": "u", "event": "E"}, {"type": "nope"}]}),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["success"], false);
    assert_eq!(signal_count(&app, &s).await, 4);
}

#[tokio::test]
async fn signal_types_have_one_spelling() {
    let app = spawn_app().await;
    let (s, rest) = setup(&app, "types@rules.test").await;
    let person = json!({"email": "dev@acme.io"});
    // Four spellings of reading the docs, over REST, GraphQL and Segment.
    for t in ["docs_view", "Docs Viewed", "docs_read"] {
        let (status, body) = rest
            .post(
                "/api/v1/signals",
                json!({"type": t, "actor": person, "idempotencyKey": t}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["type"], "docs_read", "{t}");
    }
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { type account { id } } } }",
            json!({"input": {"type": "docs_visit", "actor": person}}),
        )
        .await;
    let signal = &ok(&r)["ingestSignal"]["signal"];
    assert_eq!(signal["type"], "docs_read");
    let account = signal["account"]["id"].as_str().unwrap().to_owned();
    let (status, _) = rest
        .segment(
            "/v1/track",
            json!({"userId": "u-1", "event": "Page Viewed", "properties": {"email": "dev@acme.io"}}),
        )
        .await;
    assert_eq!(status, 200);
    // A custom event keeps its name.
    let (_, body) = rest
        .post(
            "/api/v1/signals",
            json!({"type": "Feature Activated", "actor": person}),
        )
        .await;
    assert_eq!(body["type"], "Feature Activated");

    let r = app
        .graphql_as(
            s.token(),
            "{ signals(first: 20) { edges { node { type } } } }",
            json!({}),
        )
        .await;
    let mut types: Vec<&str> = ok(&r)["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "Feature Activated",
            "docs_read",
            "docs_read",
            "docs_read",
            "docs_read",
            "page_view"
        ]
    );
    // Filtering by an alias finds the canonical type.
    let r = app
        .graphql_as(
            s.token(),
            "{ signals(first: 20, filter: {type: [\"docs_view\"]}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 4);

    // Scoring counts the spellings as one feature: docs_read, page_view, Feature Activated.
    let breadth = eventually(
        std::time::Duration::from_secs(20),
        "the account to be scored with every signal",
        || async {
            let r = app
                .graphql_as(
                    s.token(),
                    "query($id: ID!) { account(id: $id) { score { signalCount factors { name inputs } } } }",
                    json!({"id": account}),
                )
                .await;
            let score = ok(&r)["account"]["score"].clone();
            (score["signalCount"] == 6).then(|| {
                score["factors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["name"] == "feature_breadth")
                    .unwrap()["inputs"]
                    .clone()
            })
        },
    )
    .await;
    assert_eq!(breadth["distinctTypes"], 3, "{breadth}");
}
