//! CRM core, deals and activities: CRUD, validation naming the field, stage moves with
//! `deal.stage_changed` and `closedAt`, owner must be a member, links only inside the
//! organization, tenant isolation, VIEWER read-only, key scopes, audit entries, and events (one
//! per change, none for a failed change).

use devsignal_tests::{Session, TestApp, assert_code, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

const DEAL_FIELDS: &str = "id title amount currency stage probability expectedCloseDate closedAt tags account { id name } contact { id email } owner { id email }";
const ACTIVITY_FIELDS: &str = "id type title status priority dueDate completedAt account { id } contact { id } deal { id title } author { id }";
const EVENTS: &str = "query { events(first: 1000) { seq type payload } }";

fn create_deal_q() -> String {
    format!("mutation($input: DealInput!) {{ createDeal(input: $input) {{ {DEAL_FIELDS} }} }}")
}

fn create_activity_q() -> String {
    format!(
        "mutation($input: ActivityInput!) {{ createActivity(input: $input) {{ {ACTIVITY_FIELDS} }} }}"
    )
}

async fn create_deal(app: &TestApp, s: &Session, input: Value) -> Value {
    app.graphql_as(s.token(), &create_deal_q(), json!({"input": input}))
        .await
}

async fn events(app: &TestApp, s: &Session) -> Vec<Value> {
    let r = app.graphql_as(s.token(), EVENTS, json!({})).await;
    ok(&r)["events"].as_array().unwrap().clone()
}

async fn account_and_contact(app: &TestApp, s: &Session, tag: &str) -> (String, String) {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": format!("Acct {tag}")}}),
        )
        .await;
    let acc = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
            json!({"input": {"email": format!("{tag}@example.com"), "accountId": acc}}),
        )
        .await;
    let con = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    (acc, con)
}

#[tokio::test]
async fn deals_crud_stage_moves_validation_audit_and_events() {
    let app = spawn_app().await;
    let (owner, other) = app.two_tenants().await;
    let (acc, con) = account_and_contact(&app, &owner, "ann").await;

    let r = create_deal(
        &app,
        &owner,
        json!({"title": " Big one ", "amount": 1200.5, "currency": "eur", "probability": 40,
               "expectedCloseDate": "2027-01-31", "tags": ["Q1"], "accountId": acc, "contactId": con}),
    )
    .await;
    let d = ok(&r)["createDeal"].clone();
    assert_eq!(d["title"], "Big one");
    assert_eq!(d["amount"], 1200.5);
    assert_eq!(d["currency"], "EUR");
    assert_eq!(d["stage"], "ANONYMOUS_USAGE");
    assert_eq!(d["expectedCloseDate"], "2027-01-31");
    assert_eq!(d["closedAt"], Value::Null);
    assert_eq!(d["tags"], json!(["q1"]));
    assert_eq!(d["account"]["id"], acc.as_str());
    assert_eq!(d["contact"]["email"], "ann@example.com");
    assert_eq!(
        d["owner"]["id"],
        owner.user_id.as_str(),
        "owner defaults to the creator"
    );
    let id = d["id"].as_str().unwrap().to_owned();

    // Validation names the field; a failed change appends no event.
    let before = events(&app, &owner).await.len();
    for (input, f) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "x", "probability": 101}), "probability"),
        (json!({"title": "x", "amount": -1}), "amount"),
        (json!({"title": "x", "currency": "dollars"}), "currency"),
        (json!({"title": "x", "ownerId": other.user_id}), "ownerId"),
        (json!({"title": "x", "accountId": "nope"}), "accountId"),
    ] {
        let r = create_deal(&app, &owner, input).await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(field(&r), f, "{r}");
    }
    // Links into another organization are refused, naming the field.
    let (foreign_acc, foreign_con) = account_and_contact(&app, &other, "bob").await;
    let r = create_deal(
        &app,
        &owner,
        json!({"title": "x", "accountId": foreign_acc}),
    )
    .await;
    assert_eq!(field(&r), "accountId");
    let r = create_deal(
        &app,
        &owner,
        json!({"title": "x", "contactId": foreign_con}),
    )
    .await;
    assert_eq!(field(&r), "contactId");
    assert_eq!(events(&app, &owner).await.len(), before);

    // Stage moves: closedAt set on CLOSED_WON, cleared when reopened; events carry from/to.
    const MOVE: &str = "mutation($id: ID!, $stage: DealStage!) { moveDeal(id: $id, stage: $stage) { stage closedAt } }";
    let r = app
        .graphql_as(
            owner.token(),
            MOVE,
            json!({"id": id, "stage": "CLOSED_WON"}),
        )
        .await;
    assert_eq!(ok(&r)["moveDeal"]["stage"], "CLOSED_WON");
    assert!(ok(&r)["moveDeal"]["closedAt"].is_string());
    let r = app
        .graphql_as(
            owner.token(),
            MOVE,
            json!({"id": id, "stage": "NEGOTIATION"}),
        )
        .await;
    assert_eq!(ok(&r)["moveDeal"]["closedAt"], Value::Null);
    let evs = events(&app, &owner).await;
    let moves: Vec<(&str, &str)> = evs
        .iter()
        .filter(|e| e["type"] == "deal.stage_changed")
        .map(|e| {
            (
                e["payload"]["from"].as_str().unwrap(),
                e["payload"]["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            ("ANONYMOUS_USAGE", "CLOSED_WON"),
            ("CLOSED_WON", "NEGOTIATION")
        ]
    );
    let seqs: Vec<i64> = evs.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // Update (audit lists old and new values), unlink with null, read back.
    let r = app
        .graphql_as(
            owner.token(),
            &format!("mutation($id: ID!, $input: DealInput!) {{ updateDeal(id: $id, input: $input) {{ {DEAL_FIELDS} }} }}"),
            json!({"id": id, "input": {"title": "Bigger", "contactId": null, "stage": "CLOSED_LOST"}}),
        )
        .await;
    let u = &ok(&r)["updateDeal"];
    assert_eq!(u["title"], "Bigger");
    assert_eq!(u["contact"], Value::Null);
    assert!(u["closedAt"].is_string());
    let r = app
        .graphql_as(
            owner.token(),
            "{ auditLog(first: 50) { edges { node { action targetId metadata } } } }",
            json!({}),
        )
        .await;
    let entries = ok(&r)["auditLog"]["edges"].as_array().unwrap().clone();
    let upd = entries
        .iter()
        .find(|e| {
            e["node"]["action"] == "deal.updated"
                && e["node"]["metadata"]["changes"].get("title").is_some()
        })
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(
        upd["node"]["metadata"]["changes"]["title"],
        json!({"old": "Big one", "new": "Bigger"})
    );
    assert!(
        entries
            .iter()
            .any(|e| e["node"]["action"] == "deal.created")
    );

    // List with filters.
    let r = app
        .graphql_as(
            owner.token(),
            "query($f: DealFilter) { deals(filter: $f) { totalCount edges { node { id } } } }",
            json!({"f": {"stage": "CLOSED_LOST", "accountId": acc, "ownerId": owner.user_id}}),
        )
        .await;
    assert_eq!(ok(&r)["deals"]["totalCount"], 1);
    let r = app
        .graphql_as(
            owner.token(),
            "query($f: DealFilter) { deals(filter: $f) { totalCount } }",
            json!({"f": {"stage": "IDENTIFIED"}}),
        )
        .await;
    assert_eq!(ok(&r)["deals"]["totalCount"], 0);

    // Delete returns the id; the deal is gone; events in order.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { deleteDeal(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)["deleteDeal"], id.as_str());
    let r = app
        .graphql_as(
            owner.token(),
            "query($id: ID!) { deal(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    let types: Vec<String> = events(&app, &owner)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with("deal."))
        .collect();
    assert_eq!(
        types,
        vec![
            "deal.created",
            "deal.updated",
            "deal.stage_changed",
            "deal.updated",
            "deal.stage_changed",
            "deal.updated",
            "deal.stage_changed",
            "deal.deleted"
        ]
    );
}

#[tokio::test]
async fn activities_crud_links_completion_audit_and_events() {
    let app = spawn_app().await;
    let (owner, other) = app.two_tenants().await;
    let (acc, con) = account_and_contact(&app, &owner, "cy").await;
    let r = create_deal(&app, &owner, json!({"title": "D", "accountId": acc})).await;
    let deal = ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned();

    let r = app
        .graphql_as(
            owner.token(),
            &create_activity_q(),
            json!({"input": {"type": "CALL", "title": "Intro call", "dueDate": "2027-02-01T10:00:00Z",
                   "accountId": acc, "contactId": con, "dealId": deal, "priority": "HIGH"}}),
        )
        .await;
    let a = ok(&r)["createActivity"].clone();
    assert_eq!(a["type"], "CALL");
    assert_eq!(a["status"], "PENDING");
    assert_eq!(a["priority"], "HIGH");
    assert_eq!(a["deal"]["title"], "D");
    assert_eq!(a["contact"]["id"], con.as_str());
    assert_eq!(a["author"]["id"], owner.user_id.as_str());
    assert_eq!(a["completedAt"], Value::Null);
    let id = a["id"].as_str().unwrap().to_owned();

    // Validation names the field; foreign links are refused; no event for failures.
    let before = events(&app, &owner).await.len();
    let r = app
        .graphql_as(
            owner.token(),
            &create_activity_q(),
            json!({"input": {"title": "x"}}),
        )
        .await;
    assert_eq!(field(&r), "type");
    let r = app
        .graphql_as(
            owner.token(),
            &create_activity_q(),
            json!({"input": {"type": "NOTE", "title": " "}}),
        )
        .await;
    assert_eq!(field(&r), "title");
    let r = create_deal(&app, &other, json!({"title": "theirs"})).await;
    let foreign_deal = ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            &create_activity_q(),
            json!({"input": {"type": "NOTE", "title": "x", "dealId": foreign_deal}}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "dealId");
    assert_eq!(events(&app, &owner).await.len(), before);

    // Completing sets completedAt; reopening clears it.
    const UPDATE: &str = "mutation($id: ID!, $input: ActivityInput!) { updateActivity(id: $id, input: $input) { status completedAt dueDate } }";
    let r = app
        .graphql_as(
            owner.token(),
            UPDATE,
            json!({"id": id, "input": {"status": "COMPLETED", "dueDate": null}}),
        )
        .await;
    assert!(ok(&r)["updateActivity"]["completedAt"].is_string());
    assert_eq!(ok(&r)["updateActivity"]["dueDate"], Value::Null);
    let r = app
        .graphql_as(
            owner.token(),
            UPDATE,
            json!({"id": id, "input": {"status": "IN_PROGRESS"}}),
        )
        .await;
    assert_eq!(ok(&r)["updateActivity"]["completedAt"], Value::Null);

    // Filters.
    let r = app
        .graphql_as(
            owner.token(),
            "query($f: ActivityFilter) { activities(filter: $f) { totalCount } }",
            json!({"f": {"type": "CALL", "status": "IN_PROGRESS", "dealId": deal, "accountId": acc, "contactId": con}}),
        )
        .await;
    assert_eq!(ok(&r)["activities"]["totalCount"], 1);
    let r = app
        .graphql_as(
            owner.token(),
            "query($f: ActivityFilter) { activities(filter: $f) { totalCount } }",
            json!({"f": {"type": "MEETING"}}),
        )
        .await;
    assert_eq!(ok(&r)["activities"]["totalCount"], 0);

    // Audit and events.
    let r = app
        .graphql_as(
            owner.token(),
            "{ auditLog(first: 50) { edges { node { action metadata } } } }",
            json!({}),
        )
        .await;
    let entries = ok(&r)["auditLog"]["edges"].as_array().unwrap().clone();
    assert!(
        entries
            .iter()
            .any(|e| e["node"]["action"] == "activity.created")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["node"]["action"] == "activity.updated"
                && e["node"]["metadata"]["changes"]["status"]
                    == json!({"old": "PENDING", "new": "COMPLETED"}))
    );

    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { deleteActivity(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)["deleteActivity"], id.as_str());
    let types: Vec<String> = events(&app, &owner)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with("activity."))
        .collect();
    assert_eq!(
        types,
        vec![
            "activity.created",
            "activity.updated",
            "activity.updated",
            "activity.deleted"
        ]
    );
}

#[tokio::test]
async fn deals_and_activities_respect_tenants_roles_and_key_scopes() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let r = create_deal(&app, &a, json!({"title": "A's deal"})).await;
    let deal = ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            a.token(),
            &create_activity_q(),
            json!({"input": {"type": "TASK", "title": "A's task", "dealId": deal}}),
        )
        .await;
    let act = ok(&r)["createActivity"]["id"].as_str().unwrap().to_owned();

    // The other tenant sees nothing and can change nothing: NOT_FOUND.
    for (q, vars) in [
        (
            "query($id: ID!) { deal(id: $id) { id } }",
            json!({"id": deal}),
        ),
        (
            "query($id: ID!) { activity(id: $id) { id } }",
            json!({"id": act}),
        ),
        (
            "mutation($id: ID!) { moveDeal(id: $id, stage: CLOSED_WON) { id } }",
            json!({"id": deal}),
        ),
        (
            "mutation($id: ID!, $input: DealInput!) { updateDeal(id: $id, input: $input) { id } }",
            json!({"id": deal, "input": {"title": "mine"}}),
        ),
        (
            "mutation($id: ID!) { deleteDeal(id: $id) }",
            json!({"id": deal}),
        ),
        (
            "mutation($id: ID!, $input: ActivityInput!) { updateActivity(id: $id, input: $input) { id } }",
            json!({"id": act, "input": {"title": "mine"}}),
        ),
        (
            "mutation($id: ID!) { deleteActivity(id: $id) }",
            json!({"id": act}),
        ),
    ] {
        let r = app.graphql_as(b.token(), q, vars).await;
        assert_code(&r, "NOT_FOUND");
    }
    let r = app
        .graphql_as(
            b.token(),
            "{ deals { totalCount } activities { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["deals"]["totalCount"], 0);
    assert_eq!(ok(&r)["activities"]["totalCount"], 0);

    // VIEWER reads, never writes.
    let viewer = app.add_member(&a, "viewer@example.com", "VIEWER").await;
    let r = app
        .graphql_as(
            viewer.token(),
            "{ deals { totalCount } activities { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["deals"]["totalCount"], 1);
    let r = create_deal(&app, &viewer, json!({"title": "no"})).await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            viewer.token(),
            "mutation($id: ID!) { moveDeal(id: $id, stage: CLOSED_WON) { id } }",
            json!({"id": deal}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            viewer.token(),
            &create_activity_q(),
            json!({"input": {"type": "NOTE", "title": "no"}}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    // A member may own a deal; the viewer is a member too (owners are any member).
    let r = create_deal(
        &app,
        &a,
        json!({"title": "viewer's", "ownerId": viewer.user_id}),
    )
    .await;
    assert_eq!(ok(&r)["createDeal"]["owner"]["id"], viewer.user_id.as_str());

    // API keys: deals:read / activities:read read, deals:write / activities:write write,
    // other scopes (accounts:read included) do neither.
    let reader = app.api_key(&a, &["deals:read", "activities:read"]).await;
    let writer = app.api_key(&a, &["deals:write", "activities:write"]).await;
    let other = app.api_key(&a, &["signals:write"]).await;
    let r = app
        .graphql_with_key(
            &reader,
            "{ deals { totalCount } activities { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["deals"]["totalCount"], 2);
    let r = app
        .graphql_with_key(&reader, &create_deal_q(), json!({"input": {"title": "k"}}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(&other, "{ deals { totalCount } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let accounts = app.api_key(&a, &["accounts:read", "accounts:write"]).await;
    for q in ["{ deals { totalCount } }", "{ activities { totalCount } }"] {
        let r = app.graphql_with_key(&accounts, q, json!({})).await;
        assert_code(&r, "FORBIDDEN");
    }
    let r = app
        .graphql_with_key(&writer, &create_deal_q(), json!({"input": {"title": "k"}}))
        .await;
    assert_eq!(
        ok(&r)["createDeal"]["owner"],
        Value::Null,
        "a key owns nothing"
    );
    let r = app
        .graphql_with_key(
            &writer,
            &create_activity_q(),
            json!({"input": {"type": "NOTE", "title": "by key"}}),
        )
        .await;
    assert_eq!(ok(&r)["createActivity"]["author"], Value::Null);
}

#[tokio::test]
async fn deal_paging_is_stable_while_rows_are_inserted() {
    let app = spawn_app().await;
    let owner = app.register("dealpager@example.com", "Pager").await;
    let mut original = Vec::new();
    for i in 0..12 {
        let r = create_deal(&app, &owner, json!({"title": format!("D{i}")})).await;
        original.push(ok(&r)["createDeal"]["id"].as_str().unwrap().to_owned());
    }
    const PAGE: &str = "query($after: String) { deals(first: 5, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }";
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    for round in 0.. {
        let r = app
            .graphql_as(owner.token(), PAGE, json!({"after": after}))
            .await;
        let conn = &ok(&r)["deals"];
        seen.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        ok(&create_deal(&app, &owner, json!({"title": format!("new {round}")})).await);
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert!(round < 10);
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row repeats");
    assert!(
        original.iter().all(|id| seen.contains(id)),
        "no row skipped"
    );
    let r = app
        .graphql_as(
            owner.token(),
            "{ deals(first: 101) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&r), "first");
}
