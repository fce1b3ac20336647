//! API-key scopes grant exactly what they name (ARCHITECTURE.md, "API-key scopes"): top-level
//! queries, nested fields of other objects, search hits, live events and webhook endpoints; and a
//! key never grants more than its creator has now (demoted: less; removed: nothing).

use std::time::Duration;

use devsignal_tests::{Session, TestApp, assert_code, error_code, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

/// The codes of the errors whose path starts with `path` (e.g. `["accounts", "nodes", 0,
/// "contacts"]` is under `accounts`).
fn codes_under(resp: &Value, path: &str) -> Vec<String> {
    resp["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["path"][0] == path)
        .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Asserts the request answered and a nested field of `top` was refused as `FORBIDDEN`.
fn nested_forbidden(resp: &Value, top: &str) {
    assert!(!resp["data"][top].is_null(), "{top} answered: {resp}");
    let codes = codes_under(resp, top);
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c == "FORBIDDEN"),
        "a nested field of {top} is FORBIDDEN: {resp}"
    );
}

/// One account with a contact, a deal (owned by the owner), an activity and a signal.
async fn crm(app: &TestApp, owner: &Session) -> (String, String) {
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createAccount(input: {name: \"Rocket Corp\", domain: \"rocket.io\"}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($a: ID!) { createContact(input: {email: \"rita@rocket.io\", firstName: \"Rita\", lastName: \"Rocket\", accountId: $a}) { id } }",
            json!({"a": account}),
        )
        .await;
    let contact = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($a: ID!, $c: ID!, $o: ID!) { createDeal(input: {title: \"Rocket deal\", accountId: $a, contactId: $c, ownerId: $o}) { id } }",
            json!({"a": account, "c": contact, "o": owner.user_id}),
        )
        .await;
    ok(&r);
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($a: ID!) { createActivity(input: {type: NOTE, title: \"Rocket call\", accountId: $a}) { id } }",
            json!({"a": account}),
        )
        .await;
    ok(&r);
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { ingestSignal(input: {type: \"page_view\", actor: {email: \"rita@rocket.io\"}}) { signal { id } } }",
            json!({}),
        )
        .await;
    ok(&r);
    (account, contact)
}

const SEARCH: &str = "query($q: String!) { search(query: $q) { item { __typename } } }";

fn kinds(resp: &Value) -> Vec<String> {
    let mut k: Vec<String> = ok(resp)["search"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["item"]["__typename"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k.dedup();
    k
}

#[tokio::test]
async fn each_scope_grants_exactly_what_it_names() {
    let app = spawn_app().await;
    let owner = app.register("scopes@example.com", "Scopes").await;
    let (account, contact) = crm(&app, &owner).await;

    // accounts:read reads accounts, and neither the contacts, deals nor activities nested in
    // them, nor those lists, nor organization data.
    let accounts = app.api_key(&owner, &["accounts:read"]).await;
    let r = app
        .graphql_with_key(&accounts, "{ accounts { nodes { name } } }", json!({}))
        .await;
    assert_eq!(ok(&r)["accounts"]["nodes"][0]["name"], "Rocket Corp");
    for nested in ["contacts { id }", "deals { id }", "activities { id }"] {
        let r = app
            .graphql_with_key(
                &accounts,
                &format!("{{ accounts {{ nodes {{ name {nested} }} }} }}"),
                json!({}),
            )
            .await;
        nested_forbidden(&r, "accounts");
    }
    for q in [
        "{ contacts { totalCount } }",
        "{ deals { totalCount } }",
        "{ activities { totalCount } }",
        "{ mergeSuggestions { confidence } }",
        "{ members { user { email } } }",
        "{ organization { name } }",
        "{ usage { contacts { current } } }",
    ] {
        let r = app.graphql_with_key(&accounts, q, json!({})).await;
        assert_code(&r, "FORBIDDEN");
    }
    let r = app
        .graphql_with_key(
            &accounts,
            "mutation { createContact(input: {email: \"x@rocket.io\"}) { id } }",
            json!({}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(&accounts, SEARCH, json!({"q": "rocket"}))
        .await;
    assert_eq!(kinds(&r), ["Account"]);

    // contacts:read reads contacts (it granted nothing before), not their account or deals.
    let contacts = app.api_key(&owner, &["contacts:read"]).await;
    let r = app
        .graphql_with_key(&contacts, "{ contacts { nodes { email } } }", json!({}))
        .await;
    assert_eq!(ok(&r)["contacts"]["nodes"][0]["email"], "rita@rocket.io");
    let r = app
        .graphql_with_key(
            &contacts,
            "query($id: ID!) { contact(id: $id) { email account { name } } }",
            json!({"id": contact}),
        )
        .await;
    nested_forbidden(&r, "contact");
    let r = app
        .graphql_with_key(
            &contacts,
            "query($id: ID!) { account(id: $id) { name } }",
            json!({"id": account}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(&contacts, SEARCH, json!({"q": "rocket"}))
        .await;
    assert_eq!(kinds(&r), ["Contact"]);

    // contacts:write writes contacts.
    let writer = app.api_key(&owner, &["contacts:write"]).await;
    let r = app
        .graphql_with_key(
            &writer,
            "mutation { createContact(input: {email: \"new@rocket.io\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(ok(&r)["createContact"]["id"].is_string());

    // deals:read reads deals, not the member who owns them (name and email are organization
    // data).
    let deals = app.api_key(&owner, &["deals:read"]).await;
    let r = app
        .graphql_with_key(&deals, "{ deals { nodes { title } } }", json!({}))
        .await;
    assert_eq!(ok(&r)["deals"]["nodes"][0]["title"], "Rocket deal");
    let r = app
        .graphql_with_key(
            &deals,
            "{ deals { nodes { title owner { email } } } }",
            json!({}),
        )
        .await;
    nested_forbidden(&r, "deals");
    let r = app
        .graphql_with_key(&deals, SEARCH, json!({"q": "rocket"}))
        .await;
    assert_eq!(kinds(&r), ["Deal"]);

    // A Segment write key (signals:write) sends signals and reads no organization data.
    let write_key = app.api_key(&owner, &["signals:write"]).await;
    for q in [
        "{ members { user { email } } }",
        "query($id: ID!) { member(userId: $id) { user { email } } }",
        "{ organization { name } }",
        "{ usage { contacts { current } } }",
    ] {
        let r = app
            .graphql_with_key(&write_key, q, json!({"id": owner.user_id}))
            .await;
        assert_code(&r, "FORBIDDEN");
    }
    let r = app
        .graphql_with_key(&write_key, SEARCH, json!({"q": "rocket"}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(
            &write_key,
            "mutation { ingestSignal(input: {type: \"page_view\", actor: {email: \"rita@rocket.io\"}}) { signal { type contact { email } } } }",
            json!({}),
        )
        .await;
    nested_forbidden(&r, "ingestSignal");
    // Every key may ask which organization it acts for, and with which scopes.
    let r = app
        .graphql_with_key(
            &write_key,
            "{ viewer { organization { id } scopes } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["viewer"]["scopes"], json!(["signals:write"]));

    // organization:read reads members, the organization and usage.
    let org = app.api_key(&owner, &["organization:read"]).await;
    let r = app
        .graphql_with_key(
            &org,
            "{ members { user { email } } organization { name } usage { contacts { current } } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["members"][0]["user"]["email"], "scopes@example.com");
    assert_eq!(ok(&r)["organization"]["name"], "Scopes");
}

#[tokio::test]
async fn activities_and_merges_have_their_own_scopes() {
    let app = spawn_app().await;
    let owner = app.register("acts@example.com", "Acts").await;
    let (account, contact) = crm(&app, &owner).await;
    // accounts:write no longer writes activities or merges contacts.
    let accounts = app
        .api_key(&owner, &["accounts:read", "accounts:write"])
        .await;
    let r = app
        .graphql_with_key(
            &accounts,
            "mutation($a: ID!) { createActivity(input: {type: NOTE, title: \"k\", accountId: $a}) { id } }",
            json!({"a": account}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(
            &accounts,
            "mutation($p: ID!) { mergeContacts(primaryId: $p, duplicateIds: [$p]) { contact { id } } }",
            json!({"p": contact}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let activities = app
        .api_key(&owner, &["activities:read", "activities:write"])
        .await;
    let r = app
        .graphql_with_key(
            &activities,
            "mutation($a: ID!) { createActivity(input: {type: NOTE, title: \"by key\", accountId: $a}) { id } }",
            json!({"a": account}),
        )
        .await;
    assert!(ok(&r)["createActivity"]["id"].is_string());
    let r = app
        .graphql_with_key(&activities, "{ activities { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["activities"]["totalCount"], 2);
    // The timeline holds activities and signals: it needs both scopes.
    let timeline =
        "query($id: ID!) { account(id: $id) { timeline { edges { node { __typename } } } } }";
    let r = app
        .graphql_with_key(
            &app.api_key(&owner, &["accounts:read", "activities:read"])
                .await,
            timeline,
            json!({"id": account}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    assert_eq!(
        r["errors"][0]["path"],
        json!(["account", "timeline"]),
        "{r}"
    );
    let r = app
        .graphql_with_key(
            &app.api_key(
                &owner,
                &["accounts:read", "activities:read", "signals:read"],
            )
            .await,
            timeline,
            json!({"id": account}),
        )
        .await;
    let mut kinds: Vec<&str> = ok(&r)["account"]["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["__typename"].as_str().unwrap())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["Activity", "Signal"]);
}

#[tokio::test]
async fn live_events_and_webhooks_carry_only_what_the_key_reads() {
    let app = spawn_app().await;
    let owner = app.register("live-scope@example.com", "Live").await;

    // A signals:read subscriber gets the signal, but not its contact.
    let key = app.api_key(&owner, &["signals:read"]).await;
    let mut ws = app.ws("graphql-transport-ws").await;
    assert_eq!(
        ws.init(json!({"X-API-Key": key})).await["type"],
        "connection_ack"
    );
    ws.subscribe(
        "s",
        "subscription { signalCreated { type contact { email } } }",
        json!({}),
    )
    .await;
    devsignal_tests::eventually(Duration::from_secs(10), "the subscription", || async {
        (app.state.live.subscribers() >= 1).then_some(())
    })
    .await;
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { ingestSignal(input: {type: \"live_one\", actor: {email: \"lee@live.io\"}}) { signal { id } } }",
            json!({}),
        )
        .await;
    ok(&r);
    let msg = ws.next(Duration::from_secs(60)).await.expect("a message");
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["payload"]["data"]["signalCreated"]["type"], "live_one");
    assert!(msg["payload"]["data"]["signalCreated"]["contact"].is_null());
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );

    // A key managing webhooks may subscribe an endpoint only to events it may read.
    let create = "mutation($types: [String!]!) { createWebhookEndpoint(input: {url: \"https://hooks.example.com/x\", eventTypes: $types}) { id } }";
    let manager = app.api_key(&owner, &["webhooks:manage"]).await;
    for types in [json!(["contact.created"]), json!(["*"])] {
        let r = app
            .graphql_with_key(&manager, create, json!({"types": types}))
            .await;
        assert_eq!(error_code(&r), Some("FORBIDDEN"), "{types}: {r}");
    }
    let manager = app
        .api_key(&owner, &["webhooks:manage", "contacts:read"])
        .await;
    let r = app
        .graphql_with_key(&manager, create, json!({"types": ["contact.created"]}))
        .await;
    let id = ok(&r)["createWebhookEndpoint"]["id"].clone();
    let r = app
        .graphql_with_key(
            &manager,
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {eventTypes: [\"deal.created\"]}) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
}

const LIST_KEYS: &str = "{ apiKeys { id } }";
const CREATE_ACCOUNT: &str = "mutation { createAccount(input: {name: \"by key\"}) { id } }";

async fn set_role(app: &TestApp, owner: &Session, user: &Session, role: &str) {
    let r = app
        .graphql_as(
            owner.token(),
            &format!(
                "mutation($u: ID!) {{ updateMemberRole(userId: $u, role: {role}) {{ role }} }}"
            ),
            json!({"u": user.user_id}),
        )
        .await;
    assert_eq!(ok(&r)["updateMemberRole"]["role"], role);
}

#[tokio::test]
async fn a_key_never_grants_more_than_its_creator_has_now() {
    let app = spawn_app().await;
    let owner = app.register("keyowner@example.com", "Keys").await;
    let admin = app
        .add_member(&owner, "keyadmin@example.com", "ADMIN")
        .await;
    let key = app.api_key(&admin, &["admin"]).await;
    // A key made with that key answers to the same person.
    let r = app
        .graphql_with_key(
            &key,
            "mutation { createApiKey(input: {name: \"child\", scopes: [\"admin\"]}) { key } }",
            json!({}),
        )
        .await;
    let child = ok(&r)["createApiKey"]["key"].as_str().unwrap().to_owned();
    for k in [&key, &child] {
        let r = app.graphql_with_key(k, LIST_KEYS, json!({})).await;
        assert!(r.get("errors").is_none(), "{r}");
    }

    // Demoted to MEMBER: the admin keys act as a member (no key management, writes allowed).
    set_role(&app, &owner, &admin, "MEMBER").await;
    for k in [&key, &child] {
        let r = app.graphql_with_key(k, LIST_KEYS, json!({})).await;
        assert_code(&r, "FORBIDDEN");
        let r = app
            .graphql_with_key(k, "{ auditLog { totalCount } }", json!({}))
            .await;
        assert_code(&r, "FORBIDDEN");
        let r = app.graphql_with_key(k, CREATE_ACCOUNT, json!({})).await;
        assert!(ok(&r)["createAccount"]["id"].is_string());
    }
    // Demoted to VIEWER: read only.
    set_role(&app, &owner, &admin, "VIEWER").await;
    let r = app.graphql_with_key(&key, CREATE_ACCOUNT, json!({})).await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(&key, "{ accounts { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 2);
    // Promoted again: the key follows.
    set_role(&app, &owner, &admin, "ADMIN").await;
    let r = app.graphql_with_key(&key, LIST_KEYS, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");

    // Removed: the keys grant nothing (401), while the owner's own keys go on working.
    let owners = app.api_key(&owner, &["admin"]).await;
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({"u": admin.user_id}),
        )
        .await;
    assert_eq!(ok(&r)["removeMember"], true);
    for k in [&key, &child] {
        let r = app
            .graphql_with_key(k, "{ accounts { totalCount } }", json!({}))
            .await;
        assert_eq!(error_code(&r), Some("UNAUTHENTICATED"));
        assert!(
            r.to_string().contains("no longer a member"),
            "the error says why: {r}"
        );
    }
    let r = app.graphql_with_key(&owners, LIST_KEYS, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
}

#[test]
fn the_documented_scope_table_is_the_list_of_scopes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc
        .find("<!-- api-key-scopes:start -->")
        .expect("start marker");
    let end = doc.find("<!-- api-key-scopes:end -->").expect("end marker");
    let documented: Vec<(String, String)> = doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let (name, grants) = l[2..l.len() - 2].split_once(" | ").unwrap();
            (name.trim_matches('`').to_owned(), grants.to_owned())
        })
        .collect();
    let listed: Vec<(String, String)> = domain::identity::api_keys::SCOPES
        .iter()
        .map(|(n, g)| ((*n).to_owned(), (*g).to_owned()))
        .collect();
    assert_eq!(documented, listed);
}

#[test]
fn the_dashboard_offers_every_scope() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../frontend/src/pages/settings/ApiKeys.tsx");
    let page = std::fs::read_to_string(path).unwrap();
    let start = page.find("export const SCOPES").expect("the SCOPES list");
    let end = start + page[start..].find("];").expect("its end");
    let mut offered: Vec<&str> = page[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("['")?.split('\'').next())
        .collect();
    offered.sort_unstable();
    let mut known: Vec<&str> = domain::identity::api_keys::SCOPES
        .iter()
        .map(|(n, _)| *n)
        .collect();
    known.sort_unstable();
    assert_eq!(offered, known);
}
