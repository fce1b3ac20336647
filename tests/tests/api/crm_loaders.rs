//! CRM relations resolve through per-request DataLoaders: a page of accounts with their
//! contacts, deals and deal owners costs the same small number of SQL statements whether it
//! holds 5 accounts or 50 (counted by the `db_statements` metric on the server's pool).

use devsignal_tests::{Session, TestApp, assert_code, spawn_app_with};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

// Small nested pages: the complexity limit counts every nested list once per row it may return
// (20 by default), and each account here has one row of each.
const NESTED: &str = "query($n: Int!) { accounts(first: $n) { edges { node { id contacts(first: 5) { id account { id } deals(first: 2) { id } } deals(first: 2) { id owner { id } contact { id } account { id } } activities(first: 2) { id author { id } deal { id } } } } } }";

/// An app whose background loops (job worker, scheduler, webhook delivery) stay quiet, so the
/// pool's process-wide statement counter counts only the measured requests.
async fn quiet_app() -> TestApp {
    spawn_app_with(&[
        ("JOB_POLL_INTERVAL_MS", "3600000"),
        ("WEBHOOK_POLL_INTERVAL_MS", "3600000"),
        ("SCHEDULER_ENABLED", "false"),
    ])
    .await
}

async fn statements_for(app: &TestApp, s: &Session, n: usize) -> (u64, Value) {
    let before = app.state.metrics.db_statements.get();
    let r = app.graphql_as(s.token(), NESTED, json!({"n": n})).await;
    let after = app.state.metrics.db_statements.get();
    (after - before, r)
}

#[tokio::test]
async fn nested_relations_cost_a_constant_number_of_statements() {
    let app = quiet_app().await;
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

/// A nested list shows each parent's newest `first` rows, read per parent in SQL (not the
/// parent's every row cut afterwards): aliases with different sizes on the same parents share
/// one batch and each gets its own count.
#[tokio::test]
async fn nested_lists_show_each_parents_newest_rows() {
    let app = quiet_app().await;
    let owner = app.register("newest@example.com", "Newest").await;
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createAccounts(input: [{name: \"Big\"}, {name: \"Small\"}]) { id } }",
            json!({}),
        )
        .await;
    let ids: Vec<String> = ok(&r)["createAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    // Seven contacts on the first account, two on the second, one at a time (oldest first).
    for (account, n, prefix) in [(&ids[0], 7, "big"), (&ids[1], 2, "small")] {
        for i in 0..n {
            let r = app
                .graphql_as(
                    owner.token(),
                    "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
                    json!({"input": {"email": format!("{prefix}{i}@example.com"), "accountId": account}}),
                )
                .await;
            ok(&r);
        }
    }
    const Q: &str = "{ accounts(first: 2, orderBy: {field: NAME, direction: ASC}) { edges { node { name few: contacts(first: 3) { email } many: contacts(first: 10) { email } usual: contacts { email } } } } }";
    let before = app.state.metrics.db_statements.get();
    let r = app.graphql_as(owner.token(), Q, json!({})).await;
    let statements = app.state.metrics.db_statements.get() - before;
    let emails = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let edges = ok(&r)["accounts"]["edges"].as_array().unwrap().clone();
    let (big, small) = (&edges[0]["node"], &edges[1]["node"]);
    assert_eq!(big["name"], "Big");
    assert_eq!(
        emails(&big["few"]),
        ["big6@example.com", "big5@example.com", "big4@example.com"]
    );
    let all_big: Vec<String> = (0..7)
        .rev()
        .map(|i| format!("big{i}@example.com"))
        .collect();
    assert_eq!(emails(&big["many"]), all_big);
    assert_eq!(emails(&big["usual"]), all_big);
    let all_small = ["small1@example.com", "small0@example.com"];
    for list in ["few", "many", "usual"] {
        assert_eq!(emails(&small[list]), all_small, "{list}");
    }
    // Session, page, and the three aliases' contacts in one batch (a loaded machine may split
    // a batch).
    assert!(statements <= 5, "{statements} statements");
}

/// The selection a test puts under a field of type `kind`/`name`: nothing for a scalar or an
/// enum, else the object's id, its edges' ids (a connection) or its type name.
async fn probe(app: &TestApp, s: &Session, ty: &Value) -> String {
    let mut ty = ty;
    while ty["ofType"].is_object() {
        ty = &ty["ofType"];
    }
    if matches!(ty["kind"].as_str(), Some("SCALAR" | "ENUM")) {
        return String::new();
    }
    let r = app
        .graphql_as(
            s.token(),
            "query($t: String!) { __type(name: $t) { fields { name } } }",
            json!({"t": ty["name"]}),
        )
        .await;
    let has = |f: &str| {
        ok(&r)["__type"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == f)
    };
    if has("id") {
        "{ id }".into()
    } else if has("edges") {
        "{ edges { node { id } } }".into()
    } else {
        "{ __typename }".into()
    }
}

/// Every field of `ty` (none takes a required argument) with the selection [`probe`] gives it.
async fn fields_of(app: &TestApp, s: &Session, ty: &str) -> Vec<(String, String)> {
    let r = app
        .graphql_as(
            s.token(),
            "query($t: String!) { __type(name: $t) { fields { name args { type { kind } } type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }",
            json!({"t": ty}),
        )
        .await;
    let mut out = Vec::new();
    for f in ok(&r)["__type"]["fields"].as_array().unwrap() {
        assert!(
            f["args"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["type"]["kind"] != "NON_NULL"),
            "{ty}.{} takes a required argument",
            f["name"]
        );
        let name = f["name"].as_str().unwrap().to_owned();
        out.push((name, probe(app, s, &f["type"]).await));
    }
    out
}

/// A nested list reads only the columns its selection needs (`Contact.columns`, …): every field
/// of a nested contact, deal and activity, asked for alone (so only its own columns are read),
/// resolves exactly as the same object read by id with every column, so a field that reads a
/// column its entry does not name fails here; selections spread through fragments and aliases
/// asking for different fields of the same parents' rows are read in full.
#[tokio::test]
async fn nested_lists_read_the_columns_each_field_needs() {
    let app = quiet_app().await;
    let owner = app.register("pruned@example.com", "Pruned").await;
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createAccount(input: {name: \"Full\"}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    // Every field set, each to a value of its own.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
            json!({"input": {
                "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                "title": "Engineer", "phone": "+44 20 7946 0001", "github": "ada-gh",
                "twitter": "ada_tw", "linkedIn": "ada-li", "city": "London", "country": "GB",
                "notes": "first programmer", "customFields": {"tier": "gold"},
                "tags": ["vip", "oss"], "accountId": account,
            }}),
        )
        .await;
    let contact = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
            json!({"input": {
                "title": "Expansion", "amount": 1234.5, "currency": "EUR", "stage": "CLOSED_WON",
                "probability": 90, "expectedCloseDate": "2027-01-31", "description": "big one",
                "customFields": {"source": "plg"}, "tags": ["q1"], "accountId": account,
                "contactId": contact,
            }}),
        )
        .await;
    let deal = ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
            json!({"input": {
                "type": "MEETING", "title": "Kickoff", "description": "agenda",
                "status": "COMPLETED", "priority": "HIGH", "dueDate": "2027-01-15T10:00:00Z",
                "accountId": account, "contactId": contact, "dealId": deal,
                "customFields": {"room": "4"},
            }}),
        )
        .await;
    let activity = ok(&r)["createActivity"]["id"].as_str().unwrap().to_owned();

    // (type, the object read by id, the nested lists that show it)
    let cases = [
        (
            "Contact",
            format!("contact(id: \"{contact}\")"),
            vec![format!(
                "account(id: \"{account}\") {{ list: contacts(first: 5)"
            )],
        ),
        (
            "Deal",
            format!("deal(id: \"{deal}\")"),
            vec![
                format!("account(id: \"{account}\") {{ list: deals(first: 5)"),
                format!("contact(id: \"{contact}\") {{ list: deals(first: 5)"),
            ],
        ),
        (
            "Activity",
            format!("activity(id: \"{activity}\")"),
            vec![format!(
                "account(id: \"{account}\") {{ list: activities(first: 5)"
            )],
        ),
    ];
    for (ty, by_id, lists) in &cases {
        let fields = fields_of(&app, &owner, ty).await;
        assert!(fields.len() >= 15, "{ty}: {fields:?}");
        for (name, sub) in &fields {
            let r = app
                .graphql_as(
                    owner.token(),
                    &format!("{{ one: {by_id} {{ {name} {sub} }} }}"),
                    json!({}),
                )
                .await;
            let expected = ok(&r)["one"][name.as_str()].clone();
            for list in lists {
                let r = app
                    .graphql_as(
                        owner.token(),
                        &format!("{{ {list} {{ {name} {sub} }} }} }}"),
                        json!({}),
                    )
                    .await;
                let rows = ok(&r).as_object().unwrap().values().next().unwrap()["list"].clone();
                assert_eq!(rows.as_array().unwrap().len(), 1, "{ty}.{name} in {list}");
                assert_eq!(rows[0][name.as_str()], expected, "{ty}.{name} in {list}");
            }
        }
    }
    // The fixture sets every field, so no field read by id is a placeholder.
    let r = app
        .graphql_as(
            owner.token(),
            &format!("{{ contact(id: \"{contact}\") {{ email notes tags }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["contact"],
        json!({"email": "ada@example.com", "notes": "first programmer", "tags": ["vip", "oss"]})
    );

    // Aliases with different fields of the same rows share one batch, which reads the fields of
    // both; a fragment's fields count.
    let q = format!(
        "query {{ account(id: \"{account}\") {{ a: contacts {{ email }} b: contacts(first: 3) {{ ...C }} c: contacts {{ ... on Contact {{ city }} }} }} }} fragment C on Contact {{ phone tags }}"
    );
    let r = app.graphql_as(owner.token(), &q, json!({})).await;
    assert_eq!(
        ok(&r)["account"],
        json!({
            "a": [{"email": "ada@example.com"}],
            "b": [{"phone": "+44 20 7946 0001", "tags": ["vip", "oss"]}],
            "c": [{"city": "London"}],
        })
    );
}
