//! CRM relations resolve through per-request DataLoaders: a page of accounts with their
//! contacts, deals and deal owners costs the same small number of SQL statements whether it
//! holds 5 accounts or 50 (counted by the `db_statements` metric on the server's pool).

use devsignal_tests::{Session, TestApp, assert_code, spawn_app_with};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

// Small nested pages: the complexity limit counts every nested list once per row it may return
// (20 by default), and each account here has one row of each.
const NESTED: &str = "query($n: Int!) { accounts(first: $n) { edges { node { id contacts(first: 5) { id account { id } deals(first: 2) { id } } deals(first: 2) { id owner { id } contact { id } account { id } } activities(first: 2) { id author { id } deal { id } } } } } }";

async fn statements_for(app: &TestApp, s: &Session, n: usize) -> (u64, Value) {
    let before = app.state.metrics.db_statements.get();
    let r = app.graphql_as(s.token(), NESTED, json!({"n": n})).await;
    let after = app.state.metrics.db_statements.get();
    (after - before, r)
}

#[tokio::test]
async fn nested_relations_cost_a_constant_number_of_statements() {
    // The pool's statement counter is process-wide: keep the background loops (job worker,
    // scheduler, webhook delivery) quiet so only the measured requests count.
    let app = spawn_app_with(&[
        ("JOB_POLL_INTERVAL_MS", "3600000"),
        ("WEBHOOK_POLL_INTERVAL_MS", "3600000"),
        ("SCHEDULER_ENABLED", "false"),
    ])
    .await;
    let owner = app.register("loader@example.com", "Loaders").await;
    let inputs: Vec<Value> = (0..50).map(|i| json!({"name": format!("A{i}")})).collect();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id } }",
            json!({"input": inputs}),
        )
        .await;
    let accounts: Vec<String> = ok(&r)["createAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let contacts: Vec<Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"email": format!("c{i}@example.com"), "accountId": a}))
        .collect();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: [ContactFields!]!) { createContacts(input: $input) { id account { id } } }",
            json!({"input": contacts}),
        )
        .await;
    let contacts: Vec<(String, String)> = ok(&r)["createContacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["account"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (i, (contact, account)) in contacts.iter().enumerate() {
        let r = app
            .graphql_as(
                owner.token(),
                "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
                json!({"input": {"title": format!("D{i}"), "accountId": account, "contactId": contact}}),
            )
            .await;
        let deal = ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned();
        if i % 5 == 0 {
            let r = app
                .graphql_as(
                    owner.token(),
                    "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
                    json!({"input": {"type": "NOTE", "title": "n", "accountId": account, "dealId": deal}}),
                )
                .await;
            ok(&r);
        }
    }

    let (few, r) = statements_for(&app, &owner, 5).await;
    assert_eq!(ok(&r)["accounts"]["edges"].as_array().unwrap().len(), 5);
    let (many, r) = statements_for(&app, &owner, 50).await;
    let edges = ok(&r)["accounts"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 50);
    // Every relation resolved, from the right parent.
    for e in &edges {
        let n = &e["node"];
        let cs = n["contacts"].as_array().unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["account"]["id"], n["id"]);
        assert_eq!(cs[0]["deals"].as_array().unwrap().len(), 1);
        let ds = n["deals"].as_array().unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0]["owner"]["id"], owner.user_id.as_str());
        assert_eq!(ds[0]["contact"]["id"], cs[0]["id"]);
        assert_eq!(ds[0]["account"]["id"], n["id"]);
    }
    let with_activity = edges
        .iter()
        .filter(|e| e["node"]["activities"].as_array().unwrap().len() == 1)
        .count();
    assert_eq!(with_activity, 10);
    // Authentication + count + page + one statement per relation: independent of the number of
    // accounts.
    eprintln!("statements: 5 accounts {few}, 50 accounts {many}");
    // Typically 12 for both. A loader batch may still split when the machine is loaded, so allow
    // some slack: one statement per account would be 450+.
    assert!(
        many <= 24 && few <= 24,
        "50 accounts cost {many}, 5 cost {few}"
    );

    // The example: 50 accounts with their contacts and deals.
    const SIMPLE: &str =
        "{ accounts(first: 50) { edges { node { id contacts { id } deals { id } } } } }";
    let before = app.state.metrics.db_statements.get();
    let r = app.graphql_as(owner.token(), SIMPLE, json!({})).await;
    let simple = app.state.metrics.db_statements.get() - before;
    assert_eq!(ok(&r)["accounts"]["edges"].as_array().unwrap().len(), 50);
    eprintln!("statements: 50 accounts with contacts and deals {simple}");
    // Typically 5 (session, count, page, contacts, deals) or 6; a loader batch may split in two
    // when the machine is loaded, hence the margin. One statement per account would be 100+.
    assert!(simple <= 8, "{simple} statements");

    // Nested lists are capped and say so.
    let r = app
        .graphql_as(
            owner.token(),
            "{ accounts(first: 1) { edges { node { contacts(first: 101) { id } } } } }",
            json!({}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "first");
}
