//! CRM lists: `orderBy` on every connection with stable keyset paging (the cursor carries the
//! sort key and the id), and the shared filters (tag, created/updated ranges).

use devsignal_tests::{Session, TestApp, assert_code, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

async fn gql(app: &TestApp, s: &Session, q: &str, vars: Value) -> Value {
    app.graphql_as(s.token(), q, vars).await
}

/// Walks every page of `list` in `order`, inserting a row (with `insert`) between pages; returns
/// the nodes seen.
async fn walk<F, Fut>(
    app: &TestApp,
    s: &Session,
    list: &str,
    fields: &str,
    order: Value,
    mut insert: F,
) -> Vec<Value>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let q = format!(
        "query($after: String, $order: {}Order) {{ {list}(first: 3, after: $after, orderBy: $order) {{ pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {fields} }} }} }} }}",
        match list {
            "accounts" => "Account",
            "contacts" => "Contact",
            "deals" => "Deal",
            _ => "Activity",
        }
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for round in 0.. {
        let r = gql(app, s, &q, json!({"after": after, "order": order})).await;
        let conn = &ok(&r)[list];
        seen.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        insert(round).await;
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert!(round < 40, "too many pages");
    }
    seen
}

fn ids(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_no_repeat_no_skip(seen: &[Value], original: &[String]) {
    let seen = ids(seen);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a row repeated: {seen:?}");
    for id in original {
        assert!(seen.contains(id), "row {id} skipped");
    }
}

#[tokio::test]
async fn paging_is_stable_under_every_order_while_rows_are_inserted() {
    let app = spawn_app().await;
    let owner = app.register("order@example.com", "Order").await;

    // Accounts by NAME ascending, with ties (same name in different case).
    let names = [
        "delta", "Alpha", "charlie", "alpha", "Bravo", "echo", "ALPHA", "foxtrot",
    ];
    let inputs: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    let r = gql(
        &app,
        &owner,
        "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id } }",
        json!({"input": inputs}),
    )
    .await;
    let original = ids(ok(&r)["createAccounts"].as_array().unwrap());
    let seen = walk(
        &app,
        &owner,
        "accounts",
        "id name",
        json!({"field": "NAME", "direction": "ASC"}),
        |i| {
            let app = &app;
            let owner = &owner;
            async move {
                // New rows land before, inside and after the part already walked.
                let name = ["aaa", "cat", "zzz"][i % 3];
                ok(&gql(
                    app,
                    owner,
                    "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
                    json!({"input": {"name": format!("{name}{i}")}}),
                )
                .await);
            }
        },
    )
    .await;
    assert_no_repeat_no_skip(&seen, &original);
    let keys: Vec<String> = seen
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "sorted by name: {keys:?}"
    );

    // Deals by AMOUNT descending, empty amounts last (lowest), ties on equal amounts.
    let mut original = Vec::new();
    for (i, amount) in [
        Some(10.0),
        None,
        Some(50.0),
        Some(10.0),
        None,
        Some(99.5),
        Some(0.0),
    ]
    .into_iter()
    .enumerate()
    {
        let r = gql(
            &app,
            &owner,
            "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
            json!({"input": {"title": format!("D{i}"), "amount": amount}}),
        )
        .await;
        original.push(ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned());
    }
    let seen = walk(
        &app,
        &owner,
        "deals",
        "id amount",
        json!({"field": "AMOUNT", "direction": "DESC"}),
        |i| {
            let app = &app;
            let owner = &owner;
            async move {
                let amount = [json!(1000), json!(10), Value::Null][i % 3].clone();
                ok(&gql(
                    app,
                    owner,
                    "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
                    json!({"input": {"title": format!("new {i}"), "amount": amount}}),
                )
                .await);
            }
        },
    )
    .await;
    assert_no_repeat_no_skip(&seen, &original);
    let amounts: Vec<f64> = seen
        .iter()
        .map(|n| n["amount"].as_f64().unwrap_or(f64::MIN))
        .collect();
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "{amounts:?}");

    // Activities by DUE_DATE ascending (empty first), contacts by EMAIL descending.
    let mut original = Vec::new();
    for (i, due) in [
        json!("2027-03-01T00:00:00Z"),
        Value::Null,
        json!("2027-01-01T00:00:00Z"),
        json!("2027-03-01T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = gql(
            &app,
            &owner,
            "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
            json!({"input": {"type": "TASK", "title": format!("T{i}"), "dueDate": due}}),
        )
        .await;
        original.push(ok(&r)["createActivity"]["id"].as_str().unwrap().to_owned());
    }
    let seen = walk(&app, &owner, "activities", "id dueDate", json!({"field": "DUE_DATE", "direction": "ASC"}), |i| {
        let app = &app;
        let owner = &owner;
        async move {
            ok(&gql(app, owner, "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }", json!({"input": {"type": "CALL", "title": format!("c{i}"), "dueDate": "2027-02-01T00:00:00Z"}})).await);
        }
    })
    .await;
    assert_no_repeat_no_skip(&seen, &original);
    assert_eq!(seen[0]["dueDate"], Value::Null);

    let mut original = Vec::new();
    for e in ["b@x.io", "d@x.io", "a@x.io", "c@x.io"] {
        let r = gql(
            &app,
            &owner,
            "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
            json!({"input": {"email": e}}),
        )
        .await;
        original.push(ok(&r)["createContact"]["id"].as_str().unwrap().to_owned());
    }
    let seen = walk(
        &app,
        &owner,
        "contacts",
        "id email",
        json!({"field": "EMAIL", "direction": "DESC"}),
        |i| {
            let app = &app;
            let owner = &owner;
            async move {
                ok(&gql(
                    app,
                    owner,
                    "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
                    json!({"input": {"email": format!("bb{i}@x.io")}}),
                )
                .await);
            }
        },
    )
    .await;
    assert_no_repeat_no_skip(&seen, &original);

    // Backwards under an order: the last two by name.
    let r = gql(
        &app,
        &owner,
        "{ accounts(last: 2, orderBy: {field: NAME, direction: ASC}) { pageInfo { hasPreviousPage } edges { node { name } } } }",
        json!({}),
    )
    .await;
    let names: Vec<&str> = ok(&r)["accounts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names[1].starts_with("zzz"));

    // A cursor of another order is refused, naming the argument.
    let r = gql(
        &app,
        &owner,
        "{ accounts(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    let c = ok(&r)["accounts"]["edges"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = gql(
        &app,
        &owner,
        "query($c: String) { accounts(first: 1, after: $c, orderBy: {field: NAME}) { totalCount } }",
        json!({"c": c}),
    )
    .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "after");
    let r = gql(
        &app,
        &owner,
        "{ accounts(after: \"garbage\") { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(field(&r), "after");
}

#[tokio::test]
async fn lists_filter_by_tag_and_time_ranges() {
    let app = spawn_app().await;
    let owner = app.register("filters@example.com", "Filters").await;
    let r = gql(
        &app,
        &owner,
        "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id createdAt } }",
        json!({"input": [
            {"name": "A", "tags": ["hot", "b2b"]},
            {"name": "B", "tags": ["hotter"]},
            {"name": "C", "tags": ["we\"ird_%"]},
        ]}),
    )
    .await;
    let created = ok(&r)["createAccounts"].as_array().unwrap().clone();
    for (tag, n) in [
        ("hot", 1),
        ("HOT ", 1),
        ("hotter", 1),
        ("b2b", 1),
        ("we\"ird_%", 1),
        ("we", 0),
        ("%", 0),
    ] {
        let r = gql(
            &app,
            &owner,
            "query($t: String) { accounts(filter: {tag: $t}) { totalCount } }",
            json!({"t": tag}),
        )
        .await;
        assert_eq!(ok(&r)["accounts"]["totalCount"], n, "tag {tag:?}");
    }
    ok(&gql(
        &app,
        &owner,
        "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
        json!({"input": {"email": "t@x.io", "tags": ["vip"]}}),
    )
    .await);
    ok(&gql(
        &app,
        &owner,
        "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
        json!({"input": {"title": "t", "tags": ["vip"]}}),
    )
    .await);
    let r = gql(&app, &owner, "{ contacts(filter: {tag: \"vip\"}) { totalCount } deals(filter: {tag: \"vip\"}) { totalCount } }", json!({})).await;
    assert_eq!(ok(&r)["contacts"]["totalCount"], 1);
    assert_eq!(ok(&r)["deals"]["totalCount"], 1);
    let r = gql(
        &app,
        &owner,
        "{ activities(filter: {tag: \"vip\"}) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(field(&r), "filter.tag");

    // Time ranges: created after the first account excludes nothing created before it.
    let first_created = created[0]["createdAt"].as_str().unwrap();
    let r = gql(
        &app,
        &owner,
        "query($t: DateTime) { before: accounts(filter: {createdBefore: $t}) { totalCount } after: accounts(filter: {createdAfter: \"2000-01-01T00:00:00Z\", updatedBefore: \"2999-01-01T00:00:00Z\"}) { totalCount } none: accounts(filter: {updatedAfter: \"2999-01-01T00:00:00Z\"}) { totalCount } }",
        json!({"t": first_created}),
    )
    .await;
    assert_eq!(ok(&r)["before"]["totalCount"], 0);
    assert_eq!(ok(&r)["after"]["totalCount"], 3);
    assert_eq!(ok(&r)["none"]["totalCount"], 0);
}
