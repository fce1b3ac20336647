//! `Account.timeline(first, after)`: the account's activities, newest first, as a Relay
//! connection whose items are a union (signals join later).

use devsignal_tests::spawn_app;
use serde_json::json;

use crate::crm_accounts::ok;

#[tokio::test]
async fn timeline_lists_the_accounts_activities_newest_first_with_paging() {
    let app = spawn_app().await;
    let (owner, other) = app.two_tenants().await;
    let mut accounts = Vec::new();
    for name in ["Mine", "Else"] {
        let r = app
            .graphql_as(
                owner.token(),
                "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
                json!({"input": {"name": name}}),
            )
            .await;
        accounts.push(ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned());
    }
    for (title, acc) in [("first", 0), ("elsewhere", 1), ("second", 0), ("third", 0)] {
        let r = app
            .graphql_as(
                owner.token(),
                "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
                json!({"input": {"type": "NOTE", "title": title, "accountId": accounts[acc]}}),
            )
            .await;
        ok(&r);
    }
    const Q: &str = "query($id: ID!, $after: String) { account(id: $id) { timeline(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { __typename ... on Activity { title } } } } } }";
    let mut titles = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = app
            .graphql_as(owner.token(), Q, json!({"id": accounts[0], "after": after}))
            .await;
        let t = &ok(&r)["account"]["timeline"];
        assert_eq!(t["totalCount"], 3);
        for e in t["edges"].as_array().unwrap() {
            assert_eq!(e["node"]["__typename"], "Activity");
            titles.push(e["node"]["title"].as_str().unwrap().to_owned());
        }
        if t["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = t["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(titles, vec!["third", "second", "first"]);
    // Another tenant cannot reach the account, so not its timeline either.
    let r = app
        .graphql_as(other.token(), Q, json!({"id": accounts[0]}))
        .await;
    devsignal_tests::assert_code(&r, "NOT_FOUND");
}
