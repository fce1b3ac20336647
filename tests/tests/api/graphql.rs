use std::time::Duration;

use devsignal_tests::{error_code, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn server_info_names_the_database() {
    let app = spawn_app().await;
    let resp = app
        .graphql("{ serverInfo { version database } }", json!({}))
        .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    assert_eq!(
        resp["data"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let expected = if app.test_db.is_postgres() {
        "POSTGRES"
    } else {
        "SQLITE"
    };
    assert_eq!(resp["data"]["serverInfo"]["database"], expected);
}

#[tokio::test]
async fn batches_are_answered_in_order() {
    let app = spawn_app().await;
    let resp: Value = app
        .client
        .post(app.url("/api/v1/graphql"))
        .json(&json!([
            {"query": "{ serverInfo { version } }"},
            {"query": "{ serverInfo { database } }"}
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(resp[0]["data"]["serverInfo"]["version"].is_string());
    assert!(resp[1]["data"]["serverInfo"]["database"].is_string());
}

#[tokio::test]
async fn graphiql_is_served() {
    let app = spawn_app().await;
    let resp = app.get("/graphiql").await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("graphiql"), "not a GraphiQL page");
    assert!(page.contains("/api/v1/graphql/ws"));
}

#[tokio::test]
async fn the_introspection_query_of_graphiql_fits_the_limits() {
    let app = spawn_app().await;
    let query = r#"
      query IntrospectionQuery {
        __schema {
          queryType { name } mutationType { name } subscriptionType { name }
          types { ...FullType }
          directives { name description locations args { ...InputValue } }
        }
      }
      fragment FullType on __Type {
        kind name description
        fields(includeDeprecated: true) {
          name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
        }
        inputFields { ...InputValue }
        interfaces { ...TypeRef }
        enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
        possibleTypes { ...TypeRef }
      }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type {
        kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name
          ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
      }"#;
    let resp = app.graphql(query, json!({})).await;
    assert!(resp.get("errors").is_none(), "{resp}");
    assert_eq!(resp["data"]["__schema"]["queryType"]["name"], "QueryRoot");
}

#[tokio::test]
async fn an_over_deep_query_is_refused_with_a_code() {
    let app = spawn_app().await;
    let mut nested = String::from("name");
    for _ in 0..20 {
        nested = format!("ofType {{ {nested} }}");
    }
    let query = format!("{{ __type(name: \"ServerInfo\") {{ {nested} }} }}");
    let resp = app.graphql(&query, json!({})).await;
    assert!(resp["data"].is_null(), "{resp}");
    assert_eq!(
        error_code(&resp),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{resp}"
    );
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep")
    );
}

#[tokio::test]
async fn every_graphql_error_carries_a_code() {
    let app = spawn_app().await;
    let resp = app.graphql("{ serverInfo { nope } }", json!({})).await;
    assert_eq!(
        error_code(&resp),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{resp}"
    );
    let resp = app.graphql("{ serverInfo { ", json!({})).await;
    assert_eq!(error_code(&resp), Some("GRAPHQL_PARSE_FAILED"), "{resp}");
}

#[tokio::test]
async fn malformed_graphql_body_is_a_400_with_a_code() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("BAD_REQUEST"));
}

async fn server_time_over(protocol: &str) {
    let app = spawn_app().await;
    let mut ws = app.ws(protocol).await;
    let ack = ws.init(json!({})).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.subscribe(
        "1",
        "subscription($ms: Int) { serverTime(intervalMs: $ms) }",
        json!({"ms": 100}),
    )
    .await;
    let first = ws.next_data().await;
    let second = ws.next_data().await;
    let t1 = chrono::DateTime::parse_from_rfc3339(first["data"]["serverTime"].as_str().unwrap())
        .unwrap();
    let t2 = chrono::DateTime::parse_from_rfc3339(second["data"]["serverTime"].as_str().unwrap())
        .unwrap();
    assert!(t2 > t1, "{t1} then {t2}");
    ws.stop("1").await;
}

#[tokio::test]
async fn subscription_over_graphql_transport_ws() {
    server_time_over("graphql-transport-ws").await;
}

#[tokio::test]
async fn subscription_over_legacy_graphql_ws() {
    server_time_over("graphql-ws").await;
}

#[tokio::test]
async fn a_websocket_message_may_be_as_large_as_a_request_body_and_no_larger() {
    let app = spawn_app().await;
    let query = "subscription($ms: Int) { serverTime(intervalMs: $ms) }";
    // Far beyond the connection's initial read buffer (8 KiB): the buffer grows.
    let mut ws = app.ws("graphql-transport-ws").await;
    assert_eq!(ws.init(json!({})).await["type"], "connection_ack");
    ws.subscribe(
        "1",
        query,
        json!({"ms": 100, "pad": "x".repeat(1024 * 1024)}),
    )
    .await;
    assert!(ws.next_data().await["data"]["serverTime"].is_string());
    // Past the HTTP body limit (5 MiB) the server closes the connection.
    let mut ws = app.ws("graphql-transport-ws").await;
    assert_eq!(ws.init(json!({})).await["type"], "connection_ack");
    // The server may close before the whole message is sent: the send may fail.
    let pad = "x".repeat(6 * 1024 * 1024);
    let vars = json!({"ms": 100, "pad": pad});
    ws.try_send(
        json!({"type": "subscribe", "id": "1", "payload": {"query": query, "variables": vars}}),
    )
    .await;
    assert_eq!(
        ws.next(Duration::from_secs(10)).await,
        None,
        "the connection is closed"
    );
}

#[tokio::test]
async fn subscription_argument_errors_carry_a_code() {
    let app = spawn_app().await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.subscribe("1", "subscription { serverTime(intervalMs: 5) }", json!({}))
        .await;
    let msg = ws.next(Duration::from_secs(10)).await.unwrap();
    // graphql-transport-ws reports resolver errors as a `next` with errors or as `error`.
    let errors = if msg["type"] == "error" {
        msg["payload"].clone()
    } else {
        msg["payload"]["errors"].clone()
    };
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{msg}");
    assert_eq!(
        errors[0]["extensions"]["fields"][0]["field"], "intervalMs",
        "{msg}"
    );
}

#[tokio::test]
async fn subscriptions_end_when_the_server_shuts_down() {
    let app = spawn_app().await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.subscribe(
        "1",
        "subscription { serverTime(intervalMs: 100) }",
        json!({}),
    )
    .await;
    ws.next_data().await;
    app.state.shutdown.cancel();
    // After the stream ends the server completes the subscription.
    loop {
        let msg = ws.next(Duration::from_secs(10)).await;
        match msg {
            None => break,
            Some(m) if m["type"] == "complete" => break,
            Some(m) => assert_eq!(m["type"], "next"),
        }
    }
}
