//! `search(query, first)`: ranked hits across accounts, contacts and deals, kept in sync with
//! creates, updates and deletes, scoped by organization, readable by VIEWERs and `accounts:read`
//! keys. Runs on SQLite (FTS5) and PostgreSQL (tsvector) alike.

use devsignal_tests::{Session, TestApp, assert_code, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

const SEARCH: &str = "query($q: String!, $n: Int) { search(query: $q, first: $n) { rank item { __typename ... on Account { id name } ... on Contact { id email } ... on Deal { id title } } } }";

async fn search(app: &TestApp, s: &Session, q: &str) -> Vec<(String, String)> {
    let r = app.graphql_as(s.token(), SEARCH, json!({"q": q})).await;
    let hits = ok(&r)["search"].as_array().unwrap().clone();
    let ranks: Vec<f64> = hits.iter().map(|h| h["rank"].as_f64().unwrap()).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] >= w[1]),
        "best first: {ranks:?}"
    );
    hits.iter()
        .map(|h| {
            let item = &h["item"];
            let label = item["name"]
                .as_str()
                .or(item["email"].as_str())
                .or(item["title"].as_str())
                .unwrap()
                .to_owned();
            (item["__typename"].as_str().unwrap().to_owned(), label)
        })
        .collect()
}

async fn create(app: &TestApp, s: &Session, mutation: &str, input: Value) -> String {
    let r = app
        .graphql_as(
            s.token(),
            &format!(
                "mutation($input: {mutation}) {{ out: {} (input: $input) {{ id }} }}",
                match mutation {
                    "CreateAccountInput!" => "createAccount",
                    "ContactFields!" => "createContact",
                    _ => "createDeal",
                }
            ),
            json!({"input": input}),
        )
        .await;
    ok(&r)["out"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn search_ranks_across_types_follows_changes_and_stays_in_the_tenant() {
    let app = spawn_app().await;
    let (owner, other) = app.two_tenants().await;
    let acc = create(
        &app,
        &owner,
        "CreateAccountInput!",
        json!({"name": "Rocket Labs", "domain": "rocket.dev"}),
    )
    .await;
    create(
        &app,
        &owner,
        "CreateAccountInput!",
        json!({"name": "Slow Co", "description": "they once mentioned a rocket"}),
    )
    .await;
    create(
        &app,
        &owner,
        "ContactFields!",
        json!({"email": "ann@rocket.dev", "firstName": "Ann", "lastName": "Rocket"}),
    )
    .await;
    let deal = create(
        &app,
        &owner,
        "DealInput!",
        json!({"title": "Rocket expansion"}),
    )
    .await;
    create(
        &app,
        &other,
        "CreateAccountInput!",
        json!({"name": "Rocket Elsewhere"}),
    )
    .await;

    let hits = search(&app, &owner, "rocket").await;
    let kinds: Vec<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        kinds.contains(&"Account") && kinds.contains(&"Contact") && kinds.contains(&"Deal"),
        "{hits:?}"
    );
    assert!(
        !hits.iter().any(|(_, l)| l == "Rocket Elsewhere"),
        "other tenant leaked: {hits:?}"
    );
    // A title match ranks above a mention in the description.
    let pos = |label: &str| hits.iter().position(|(_, l)| l == label).unwrap();
    assert!(pos("Rocket Labs") < pos("Slow Co"), "{hits:?}");
    // Several words: all must match.
    let hits = search(&app, &owner, "rocket expansion").await;
    assert_eq!(
        hits,
        vec![("Deal".to_owned(), "Rocket expansion".to_owned())]
    );

    // Updates and deletes are followed.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { updateAccount(id: $id, input: {name: \"Nebula Labs\"}) { id } }",
            json!({"id": acc}),
        )
        .await;
    ok(&r);
    assert_eq!(
        search(&app, &owner, "nebula").await,
        vec![("Account".to_owned(), "Nebula Labs".to_owned())]
    );
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { deleteDeal(id: $id) }",
            json!({"id": deal}),
        )
        .await;
    ok(&r);
    assert!(search(&app, &owner, "expansion").await.is_empty());

    // Roles and scopes: VIEWERs and readers search; other keys may not; input is checked.
    let viewer = app
        .add_member(&owner, "sviewer@example.com", "VIEWER")
        .await;
    assert!(!search(&app, &viewer, "rocket").await.is_empty());
    let key = app.api_key(&owner, &["signals:write"]).await;
    let r = app
        .graphql_with_key(&key, SEARCH, json!({"q": "rocket"}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(owner.token(), SEARCH, json!({"q": "  "}))
        .await;
    assert_eq!(field(&r), "query");
    let r = app
        .graphql_as(owner.token(), SEARCH, json!({"q": "x", "n": 101}))
        .await;
    assert_eq!(field(&r), "first");
    // Query syntax is plain text, never an error.
    for q in ["\"", "rocket OR", "-rocket", "a:b", "(x", "*"] {
        let r = app.graphql_as(owner.token(), SEARCH, json!({"q": q})).await;
        ok(&r);
    }
}

/// On PostgreSQL the search indexes keep their pending list small (migration 000032): every
/// search reads the whole list, which by default grows to 4 MB between vacuums.
#[tokio::test]
async fn postgres_search_indexes_keep_a_small_pending_list() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text AS name, array_to_string(c.reloptions, ',') AS options \
             FROM pg_class c WHERE c.relname IN \
             ('idx_companies_search', 'idx_contacts_search', 'idx_deals_search') ORDER BY 1",
        ))
        .await
        .unwrap();
    let found: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "name").unwrap(),
                r.try_get::<Option<String>>("", "options")
                    .unwrap()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            "idx_companies_search",
            "idx_contacts_search",
            "idx_deals_search"
        ]
        .map(|n| (n.to_owned(), "gin_pending_list_limit=64".to_owned()))
        .to_vec()
    );
}
