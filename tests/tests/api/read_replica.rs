//! `DATABASE_READ_URL`: list pages and search of query operations read the replica; writes,
//! lookups by id and what a mutation answers read the primary. The replica here is a read-only
//! copy of the primary taken at one moment (a replica lagging behind, frozen), opened read-only
//! (`default_transaction_read_only` on PostgreSQL, `mode=ro` on SQLite), so a write routed to it
//! fails the test as it would fail on a real standby.

use devsignal_tests::{
    Session, TestApp, TestDatabase, postgres_admin_url, spawn_config, test_vars,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use server::config::Config;

use crate::crm_accounts::ok;

/// Copies the primary's database, as it stands, over the replica's (both servers stopped).
async fn copy_database(primary: &TestDatabase, replica: &TestDatabase) {
    if let Some(admin) = postgres_admin_url() {
        let name = |db: &TestDatabase| {
            url::Url::parse(&db.url)
                .expect("a URL")
                .path()
                .trim_start_matches('/')
                .to_owned()
        };
        let (from, to) = (name(primary), name(replica));
        let conn = Database::connect(&admin).await.expect("admin connection");
        let run = |sql: String| {
            let conn = &conn;
            async move {
                conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql))
                    .await
            }
        };
        run(format!("DROP DATABASE {to} WITH (FORCE)"))
            .await
            .expect("drop the empty replica");
        // A template may have no other sessions: the stopped server's last connections may
        // take a moment to go.
        let mut tries = 0;
        while let Err(e) = run(format!("CREATE DATABASE {to} TEMPLATE {from}")).await {
            tries += 1;
            assert!(tries < 100, "copy the primary: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        conn.close().await.ok();
    } else {
        let file = domain::db::sqlite_file(&replica.url).expect("a SQLite file");
        let conn = Database::connect(&primary.url)
            .await
            .expect("open the primary");
        conn.execute_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("VACUUM INTO '{}'", file.display()),
        ))
        .await
        .expect("copy the primary");
        conn.close().await.ok();
    }
}

/// The replica's URL, opened read-only.
fn read_only(replica: &TestDatabase) -> String {
    if replica.is_postgres() {
        format!(
            "{}?options=-c%20default_transaction_read_only%3Don",
            replica.url
        )
    } else {
        let file = domain::db::sqlite_file(&replica.url).expect("a SQLite file");
        format!("sqlite://{}?mode=ro", file.display())
    }
}

fn no_worker(vars: &std::collections::HashMap<String, String>) -> Config {
    let mut config = Config::from_vars(vars).expect("test configuration is valid");
    config.run_worker = false;
    config
}

async fn create_account(app: &TestApp, s: &Session, name: &str, domain: &str) -> Value {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { id name domain } }",
            json!({"i": {"name": name, "domain": domain}}),
        )
        .await;
    ok(&r)["createAccount"].clone()
}

async fn account_names(app: &TestApp, s: &Session) -> Vec<String> {
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 50) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    let mut names: Vec<String> = ok(&r)["accounts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn search_names(app: &TestApp, s: &Session, q: &str) -> Vec<String> {
    let r = app
        .graphql_as(
            s.token(),
            "query($q: String!) { search(query: $q) { item { ... on Account { name } } } }",
            json!({"q": q}),
        )
        .await;
    ok(&r)["search"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["item"]["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn list_pages_and_search_read_the_replica_while_writes_and_lookups_read_the_primary() {
    // The primary, with one account, then copied: the replica has that account only.
    let primary = TestDatabase::new().await;
    let vars = test_vars(&primary, &[]);
    let mut first = spawn_config(primary, no_worker(&vars)).await;
    let owner = first.register("owner@replica.test", "Replica Co").await;
    create_account(&first, &owner, "Copied Labs", "copied.test").await;
    first.stop().await.expect("stop the first server");
    let replica = TestDatabase::new().await;
    copy_database(&first.test_db, &replica).await;

    let mut with_replica = vars.clone();
    with_replica.insert("DATABASE_READ_URL".into(), read_only(&replica));
    let app = spawn_config(replica, no_worker(&with_replica)).await;
    assert!(app.state.read_db.is_some(), "the replica is configured");

    // A write goes to the primary (the replica is read-only: it would fail there), and what the
    // mutation answers is read from the primary.
    let made = create_account(&app, &owner, "Written Later", "later.test").await;
    assert_eq!(made["name"], "Written Later");
    assert_eq!(made["domain"], "later.test");
    let later_id = made["id"].as_str().unwrap().to_owned();

    // The list page and search read the replica, which has not seen the later write.
    assert_eq!(account_names(&app, &owner).await, vec!["Copied Labs"]);
    assert_eq!(
        search_names(&app, &owner, "Copied").await,
        vec!["Copied Labs"]
    );
    assert!(search_names(&app, &owner, "Written").await.is_empty());

    // A lookup by id reads the primary: a caller finds what it has just created.
    let r = app
        .graphql_as(
            owner.token(),
            "query($id: ID!) { account(id: $id) { name } }",
            json!({"id": later_id}),
        )
        .await;
    assert_eq!(ok(&r)["account"]["name"], "Written Later");

    // A list inside a mutation's answer reads the primary too: a contact created on the later
    // account shows in that account's contacts at once.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($i: ContactFields!) { createContact(input: $i) { email account { name } } }",
            json!({"i": {"email": "dev@later.test", "firstName": "Dev", "accountId": later_id}}),
        )
        .await;
    assert_eq!(ok(&r)["createContact"]["account"]["name"], "Written Later");

    // Health reports the replica beside the primary.
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["databaseRead"], "ok");
    drop(app);
    drop(first);
}

#[tokio::test]
async fn a_replica_that_does_not_answer_degrades_the_lists_but_not_the_server() {
    let primary = TestDatabase::new().await;
    if !primary.is_postgres() {
        // A SQLite replica is a file beside the server: one that cannot be opened is a
        // configuration mistake, refused at start with the variable named.
        let blocker = primary.dir.path().join("not-a-directory");
        std::fs::write(&blocker, b"x").unwrap();
        let url = format!("sqlite://{}/replica.db?mode=ro", blocker.display());
        let vars = test_vars(&primary, &[("DATABASE_READ_URL", url.as_str())]);
        let refused = server::build_state(no_worker(&vars), Default::default()).await;
        let err = format!("{:#}", refused.err().expect("the server does not start"));
        assert!(err.contains("cannot open the read replica"), "{err}");
        return;
    }
    // Nothing listens on port 9 here: the pool connects lazily, so the server starts.
    let vars = test_vars(
        &primary,
        &[(
            "DATABASE_READ_URL",
            "postgres://postgres@127.0.0.1:9/devsignal",
        )],
    );
    let app = spawn_config(primary, no_worker(&vars)).await;
    let owner = app.register("owner@down.test", "Down Co").await;

    // Writes and lookups work; the health says degraded and names the replica.
    let made = create_account(&app, &owner, "Still Written", "still.test").await;
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["databaseRead"], "error");
    let r = app
        .graphql_as(
            owner.token(),
            "query($id: ID!) { account(id: $id) { name } }",
            json!({"id": made["id"]}),
        )
        .await;
    assert_eq!(ok(&r)["account"]["name"], "Still Written");

    // A list page answers with a coded error, not a 500 or an empty page.
    let r = app
        .graphql_as(
            owner.token(),
            "{ accounts { edges { node { name } } } }",
            json!({}),
        )
        .await;
    let code = r["errors"][0]["extensions"]["code"].as_str();
    assert_eq!(code, Some("UNAVAILABLE"), "{r}");
}
