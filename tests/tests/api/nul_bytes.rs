//! The NUL character (U+0000) in any text input: refused with `BAD_USER_INPUT` naming the field
//! (PostgreSQL refuses NUL in `text` and `jsonb`; this was `INTERNAL`/500 there), signed in or
//! not, over GraphQL (literals and variables) and REST; a bad item of a batch fails alone and
//! the batch's other items are stored (REST, GraphQL `ingestSignals`, Segment `/v1/batch`).
//! Run it on PostgreSQL too: that is where NUL broke.

use base64::Engine;
use devsignal_tests::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

const NUL: &str = "a\u{0}b";

/// The fields named by a GraphQL error, asserting its code.
fn gql_fields(r: &Value) -> Vec<String> {
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "want BAD_USER_INPUT: {r}"
    );
    r["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("fields in {r}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

/// The fields named by a REST error body, asserting 400 and its code.
async fn rest_fields(resp: reqwest::Response) -> Vec<String> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT", "{body}");
    body["error"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("fields in {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn count(app: &TestApp, s: &Session, what: &str) -> i64 {
    let r = app
        .graphql_as(
            s.token(),
            &format!("{{ {what}(first: 1) {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    ok(&r)[what]["totalCount"].as_i64().unwrap()
}

#[tokio::test]
async fn graphql_inputs_with_nul_name_the_field() {
    let app = spawn_app().await;
    let s = app.register("owner@nul.test", "Nul").await;

    // Signed out: register and password reset, through variables.
    let r = app
        .graphql(
            "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            json!({"input": {"email": format!("x{NUL}@nul.test"), "password": "long enough 1", "name": "X", "organizationName": "X"}}),
        )
        .await;
    assert_eq!(gql_fields(&r), ["email"]);
    let r = app
        .graphql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({"e": NUL}),
        )
        .await;
    assert_eq!(gql_fields(&r), ["email"]);
    let r = app
        .graphql(
            "mutation { login(email: \"a\\u0000@nul.test\", password: \"whatever\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(gql_fields(&r), ["email"], "a literal in the document");

    // Signed in: each input names its field as the resolvers do.
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": NUL}}),
            vec!["name"],
        ),
        (
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": "Acme", "customFields": {"plan": {"tier": NUL}, NUL: 1}}}),
            vec!["customFields.a\\u0000b", "customFields.plan.tier"],
        ),
        (
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": "Acme", "tags": ["ok", NUL]}}),
            vec!["tags.1"],
        ),
        (
            "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
            json!({"input": {"firstName": "Jane", "notes": NUL}}),
            vec!["notes"],
        ),
        (
            "mutation($input: [ContactFields!]!) { createContacts(input: $input) { id } }",
            json!({"input": [{"email": "ok@nul.test"}, {"email": format!("b{NUL}@nul.test")}]}),
            vec!["input.1.email"],
        ),
        (
            "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
            json!({"input": {"title": NUL}}),
            vec!["title"],
        ),
        (
            "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
            json!({"input": {"type": "NOTE", "title": "t", "description": NUL}}),
            vec!["description"],
        ),
        (
            "mutation($input: SignalInput!) { ingestSignal(input: $input) { deduplicated } }",
            json!({"input": {"type": "x", "actor": {"email": format!("j{NUL}@acme.io")}}}),
            vec!["actor.email"],
        ),
        (
            "query($q: String!) { search(query: $q) { __typename } }",
            json!({"q": NUL}),
            vec!["query"],
        ),
        (
            "query($t: [String!]) { events(first: 1, types: $t) { seq } }",
            json!({"t": [NUL]}),
            vec!["types.0"],
        ),
    ];
    for (query, vars, want) in cases {
        let r = app.graphql_as(s.token(), query, vars.clone()).await;
        let mut got = gql_fields(&r);
        got.sort();
        assert_eq!(got, want, "{query} {vars}");
    }
    // Nothing was written by any of them.
    assert_eq!(count(&app, &s, "accounts").await, 0);
    assert_eq!(count(&app, &s, "contacts").await, 0);
    assert_eq!(count(&app, &s, "signals").await, 0);

    // A batch ingest: the bad items fail alone, named by position; the others are stored.
    let r = app
        .graphql_as(
            s.token(),
            "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded failed } results { success error { code fields { field } } } } }",
            json!({"inputs": [
                {"type": "signup", "actor": {"email": "one@acme.io"}},
                {"type": "signup", "metadata": {"page": {"title": NUL}}},
                {"type": NUL},
                {"type": "signup", "actor": {"email": "two@acme.io"}},
            ]}),
        )
        .await;
    let b = &ok(&r)["ingestSignals"];
    assert_eq!(b["summary"], json!({"succeeded": 2, "failed": 2}), "{b}");
    assert_eq!(b["results"][1]["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "inputs.1.metadata.page.title"
    );
    assert_eq!(
        b["results"][2]["error"]["fields"][0]["field"],
        "inputs.2.type"
    );
    assert_eq!(count(&app, &s, "signals").await, 2);
    assert_eq!(count(&app, &s, "contacts").await, 2);
}

#[tokio::test]
async fn rest_and_segment_inputs_with_nul_name_the_field() {
    let app = spawn_app().await;
    let s = app.register("rest@nul.test", "NulRest").await;
    let key = app.api_key(&s, &["signals:write"]).await;

    // Signed out.
    let r = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "new@nul.test", "password": "long enough 1", "name": NUL, "organizationName": "N"}),
        )
        .await;
    assert_eq!(rest_fields(r).await, ["name"]);
    let r = app
        .post_json("/api/v1/auth/forgot-password", &json!({"email": NUL}))
        .await;
    assert_eq!(rest_fields(r).await, ["email"]);
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": format!("rest{NUL}@nul.test"), "password": "x"}),
        )
        .await;
    assert_eq!(rest_fields(r).await, ["email"]);

    let post = |path: &'static str, body: Value| {
        let req = app.client.post(app.url(path)).bearer_auth(&key).json(&body);
        async move { req.send().await.unwrap() }
    };
    // One signal.
    let r = post(
        "/api/v1/signals",
        json!({"type": "x", "actor": {"email": format!("j{NUL}@acme.io")}}),
    )
    .await;
    assert_eq!(rest_fields(r).await, ["actor.email"]);
    let r = post(
        "/api/v1/signals",
        json!({"type": "x", "metadata": {"tags": ["a", NUL]}}),
    )
    .await;
    assert_eq!(rest_fields(r).await, ["metadata.tags.1"]);
    assert_eq!(count(&app, &s, "signals").await, 0);

    // A REST batch: the bad item fails alone.
    let r = post(
        "/api/v1/signals/batch",
        json!({"signals": [
            {"type": "signup", "actor": {"email": "one@acme.io"}},
            {"type": "signup", "idempotencyKey": NUL},
            {"type": "signup", "actor": {"email": "two@acme.io"}},
        ]}),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["summary"]["succeeded"], 2, "{b}");
    assert_eq!(b["results"][1]["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "signals.1.idempotencyKey"
    );
    assert_eq!(count(&app, &s, "signals").await, 2);

    // Segment: one call, then a batch whose bad message fails alone.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    );
    let segment = |path: &'static str, body: Value| {
        let req = app
            .client
            .post(app.url(path))
            .header("authorization", basic.clone())
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let r = segment(
        "/v1/track",
        json!({"userId": "u1", "event": "Signed Up", "properties": {"plan": NUL}}),
    )
    .await;
    assert_eq!(rest_fields(r).await, ["properties.plan"]);
    let r = segment(
        "/v1/batch",
        json!({"batch": [
            {"type": "track", "userId": "u1", "event": "A", "messageId": "m1"},
            {"type": "track", "userId": "u1", "event": "B", "messageId": "m2", "context": {"page": {"title": NUL}}},
            {"type": "identify", "userId": "u1", "traits": {"email": "u1@acme.io", "title": NUL}, "messageId": "m3"},
            {"type": "track", "userId": "u1", "event": "C", "messageId": "m4"},
        ]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["success"], false, "{b}");
    assert_eq!(b["summary"]["succeeded"], 2, "{b}");
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "batch.1.context.page.title"
    );
    assert_eq!(
        b["results"][2]["error"]["fields"][0]["field"],
        "batch.2.traits.title"
    );
    assert_eq!(count(&app, &s, "signals").await, 4);
}
