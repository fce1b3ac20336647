//! The error codes are one documented list: ARCHITECTURE.md's table equals `domain::Code`, and
//! every code the domain's errors and the REST layer's statuses produce is in it.

use domain::Code;

fn documented() -> Vec<(String, u16)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc
        .find("<!-- error-codes:start -->")
        .expect("the table's start marker");
    let end = doc
        .find("<!-- error-codes:end -->")
        .expect("the table's end marker");
    doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].parse().expect("an HTTP status"),
            )
        })
        .collect()
}

#[test]
fn the_documented_table_is_the_list_of_codes() {
    let listed: Vec<(String, u16)> = Code::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.http_status()))
        .collect();
    assert_eq!(documented(), listed);
}

#[test]
fn every_error_and_status_maps_to_a_listed_code() {
    let errors = [
        domain::Error::NotFound { entity: "X" },
        domain::Error::Conflict {
            field: "f".into(),
            message: "m".into(),
        },
        domain::Error::invalid("f", "m"),
        domain::Error::Unauthenticated("m".into()),
        domain::Error::Forbidden("m".into()),
        domain::Error::RateLimited {
            retry_after_secs: 1,
        },
        domain::Error::PlanLimit("m".into()),
        domain::Error::Quota {
            limit: "aiBriefsPerMonth",
            allowed: 1,
            used: 1,
            plan: "default".into(),
        },
        domain::Error::Upstream("m".into()),
        domain::Error::Database(sea_orm::DbErr::Custom("x".into())),
        domain::Error::Internal("x".into()),
    ];
    for e in &errors {
        assert!(Code::ALL.contains(&e.kind()), "{e:?}");
        assert_eq!(e.code(), e.kind().as_str());
    }
    for status in 400..600u16 {
        let s = http::StatusCode::from_u16(status).unwrap();
        let code = server::http::error::ApiError::code_for_status(s);
        assert!(Code::ALL.contains(&code), "{status} -> {code}");
    }
}

/// Numbers out of range are the client's mistake: an amount too large for a float, a page size
/// beyond a 32-bit Int, written inline or sent as variables.
#[tokio::test]
async fn numbers_out_of_range_get_client_codes() {
    let app = devsignal_tests::spawn_app().await;
    let s = app.register("range@codes.test", "Range").await;
    let cases = [
        (
            "mutation { createDeal(input: {title: \"Big\", amount: 1e400}) { id } }",
            serde_json::json!({}),
        ),
        (
            "{ accounts(first: 99999999999999) { totalCount } }",
            serde_json::json!({}),
        ),
        (
            "query($n: Int) { accounts(first: $n) { totalCount } }",
            serde_json::json!({"n": 99_999_999_999_999_i64}),
        ),
    ];
    for (query, variables) in cases {
        let r = app.graphql_as(s.token(), query, variables).await;
        let code = r["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("none");
        assert!(
            [
                "BAD_USER_INPUT",
                "GRAPHQL_VALIDATION_FAILED",
                "GRAPHQL_PARSE_FAILED",
                "BAD_REQUEST"
            ]
            .contains(&code),
            "{query}: {r}"
        );
    }
    // Sent as raw JSON, a number no float can hold is refused before execution.
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .bearer_auth(s.token().unwrap())
        .header("content-type", "application/json")
        .body(r#"{"query": "mutation($a: Float) { createDeal(input: {title: \"Big\", amount: $a}) { id } }", "variables": {"a": 1e400}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
}
