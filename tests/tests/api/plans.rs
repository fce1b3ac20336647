//! Every list page is an index range scan, never a sort or a scan of the organization's rows:
//! over a few thousand rows (the read bench's fixture), the hot list queries run through the
//! domain functions the resolvers call, on a connection that records each statement, and each
//! recorded `SELECT` is explained on the same database (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN
//! QUERY PLAN`; PostgreSQL with sorts and table scans priced out, so a few thousand rows give
//! the plan a large table would). A plan passes when it reads the table through the index the
//! ordering names and sorts nothing, so a query or migration that loses its index fails here.

use std::sync::{Arc, Mutex};

use devsignal_tests::bench::{api_source, load_fixture, row_id};
use devsignal_tests::{Session, TestApp, spawn_app_with};
use domain::crm::{Order, PageRequest};
use domain::{Actor, Principal, Role};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use secrecy::ExposeSecret;
use uuid::Uuid;

/// Accounts in the fixture (three contacts and ten signals each).
const N: usize = 1000;

/// A connection to the app's database that records the statements run on it.
async fn recording(url: &str) -> (DatabaseConnection, Arc<Mutex<Vec<Statement>>>) {
    let mut db = domain::db::connect(
        url,
        &domain::db::PoolSettings {
            max_connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    db.set_metric_callback(move |info| s.lock().unwrap().push(info.statement.clone()));
    (db, seen)
}

/// The plan of `stmt`, one line per node, explained in a transaction that first runs
/// `settings` (PostgreSQL only: `SET LOCAL …` statements; rolled back after).
async fn explain(db: &DatabaseConnection, stmt: &Statement, settings: &str) -> Vec<String> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let (prefix, column) = if postgres {
        ("EXPLAIN", "QUERY PLAN")
    } else {
        ("EXPLAIN QUERY PLAN", "detail")
    };
    let txn = db.begin().await.unwrap();
    if postgres && !settings.is_empty() {
        txn.execute_unprepared(settings).await.unwrap();
    }
    let lines = txn
        .query_all_raw(Statement {
            sql: format!("{prefix} {}", stmt.sql),
            ..stmt.clone()
        })
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", column).unwrap())
        .collect();
    txn.rollback().await.unwrap();
    lines
}

/// The plan of a page read, one line per node. With a few thousand rows a sort of what is left
/// past a cursor can cost less than reading the index in order, so PostgreSQL is asked for its
/// plan with sorts, bitmap scans and table scans priced out: a sort or a table scan it still
/// chooses means no index serves the query's order and bounds (it never does, whatever the
/// size, without such an index).
async fn plan(db: &DatabaseConnection, stmt: &Statement) -> Vec<String> {
    explain(
        db,
        stmt,
        "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off",
    )
    .await
}

/// An organization holding the read bench's fixture of `n` accounts, a connection to its
/// database that records each statement (the fixture's own cleared), and its owner. The app
/// lives as long as the fixture: dropping it drops its test database.
struct Fixture {
    _app: devsignal_tests::TestApp,
    db: DatabaseConnection,
    seen: Arc<Mutex<Vec<Statement>>>,
    actor: Actor,
}

async fn fixture(email: &str, n: usize) -> Fixture {
    let app = spawn_app_with(&[]).await;
    let owner = app.register(email, "Plans").await;
    let org = Uuid::parse_str(&owner.organization_id).unwrap();
    let write_key = app.api_key(&owner, &["signals:write"]).await;
    let url = app.state.config.database_url.expose_secret().to_owned();
    let (db, seen) = recording(&url).await;
    let source = api_source(&app, &write_key, &db, org).await;
    load_fixture(&db, org, source, n).await;
    seen.lock().unwrap().clear();
    let actor = Actor {
        organization_id: org,
        role: Role::Owner,
        principal: Principal::User {
            user_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
        },
    };
    Fixture {
        _app: app,
        db,
        seen,
        actor,
    }
}

/// Explains the page reads `seen` recorded since it was last drained (every `SELECT` but the
/// count) and checks each reads `table` through `index` (or one of `a|b`) and sorts nothing.
async fn check(
    db: &DatabaseConnection,
    seen: &Mutex<Vec<Statement>>,
    what: &str,
    table: &str,
    index: &str,
) {
    let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
    let reads: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.sql.starts_with("SELECT") && !s.sql.contains("COUNT("))
        .filter(|s| s.sql.contains(&format!("FROM \"{table}\"")))
        .collect();
    assert!(
        !reads.is_empty(),
        "{what}: no read of {table}: {statements:?}"
    );
    // On PostgreSQL `signals` and `events` are partitioned by month: their reads go through
    // the partitions' copies of the index, merged in order (a `Merge Append`, whose `Sort Key`
    // line names the order it keeps, sorts nothing).
    let mut names: Vec<String> = index.split('|').map(str::to_owned).collect();
    if db.get_database_backend() == DbBackend::Postgres {
        for i in index.split('|') {
            let parts = db
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT relid::text AS name FROM pg_partition_tree('{i}')"),
                ))
                .await
                .unwrap();
            names.extend(
                parts
                    .iter()
                    .map(|r| r.try_get::<String>("", "name").unwrap()),
            );
        }
    }
    for stmt in reads {
        let lines = plan(db, stmt).await;
        let text = lines.join("\n");
        let sorts = lines.iter().any(|l| {
            let node = l.trim_start().trim_start_matches("->").trim_start();
            (node.starts_with("Sort") && !node.starts_with("Sort Key"))
                || node.starts_with("Incremental Sort")
                || l.contains("TEMP B-TREE")
                || l.contains("Seq Scan")
        }) || lines
            .iter()
            .any(|l| l.starts_with(&format!("SCAN {table}")));
        assert!(
            !sorts && names.iter().any(|i| text.contains(i.as_str())),
            "{what}: expected an ordered read of {table} through {index}, no sort and no scan of the table\n{}\n{text}",
            stmt.sql
        );
    }
}

fn page(first: u64, after: Option<String>, field: Option<&str>, desc: bool) -> PageRequest {
    PageRequest {
        first: Some(first),
        after,
        order: field.map(|f| Order {
            field: f.into(),
            desc,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn hot_list_queries_read_their_index_in_order() {
    let Fixture {
        _app,
        db,
        seen,
        actor,
    } = fixture("plans@example.com", N).await;

    // Accounts, every ordering, both directions, a first page and the page after it; by score
    // also the pages that cross from scored into unscored accounts and run among them.
    let accounts = domain::crm::accounts::Filter::default();
    for (field, index) in [
        // Newest first: with one organization in the database PostgreSQL walks the primary key
        // backwards (every row is the organization's); either way an ordered index read.
        (None, "idx_companies_org_id|companies_pkey"),
        (Some("SCORE"), "idx_companies_by_score"),
        (Some("NAME"), "idx_companies_by_name"),
        (Some("DOMAIN"), "idx_companies_by_domain"),
        (Some("CREATED_AT"), "idx_companies_by_created"),
        (Some("UPDATED_AT"), "idx_companies_by_updated"),
    ] {
        for desc in [true, false] {
            let what = format!("accounts by {field:?} desc={desc}");
            let first =
                domain::crm::accounts::list(&db, &actor, &accounts, &page(50, None, field, desc))
                    .await
                    .unwrap();
            let after = first.cursors.last().cloned();
            domain::crm::accounts::list(&db, &actor, &accounts, &page(50, after, field, desc))
                .await
                .unwrap();
            check(&db, &seen, &what, "companies", index).await;
        }
    }
    // 80 % of the accounts are scored: page 17 of 50 by score, descending, crosses into the
    // unscored ones, and ascending starts among them.
    for desc in [true, false] {
        let mut after = None;
        for _ in 0..17 {
            let p = domain::crm::accounts::list(
                &db,
                &actor,
                &accounts,
                &page(50, after, Some("SCORE"), desc),
            )
            .await
            .unwrap();
            after = p.cursors.last().cloned();
        }
        check(
            &db,
            &seen,
            &format!("accounts by score across NULLs, desc={desc}"),
            "companies",
            "idx_companies_by_score",
        )
        .await;
    }

    // A page that shows scores reads them in the same statement: the same accounts and cursors
    // as the page alone, each with its own score, still one ordered read of the page's index
    // (and one probe of the scores' primary key per account).
    for desc in [true, false] {
        let mut after = None;
        for _ in 0..17 {
            let req = page(50, after, Some("SCORE"), desc);
            let alone = domain::crm::accounts::list(&db, &actor, &accounts, &req)
                .await
                .unwrap();
            let scored = domain::crm::accounts::list_scored(&db, &actor, &accounts, &req)
                .await
                .unwrap();
            assert_eq!(scored.cursors, alone.cursors);
            assert_eq!(scored.items.len(), alone.items.len());
            for ((a, score), b) in scored.items.iter().zip(&alone.items) {
                assert_eq!(a, b);
                // The fixture scores 80 % of the accounts, and copies each score onto its account.
                assert_eq!(score.as_ref().map(|s| s.score), a.score, "{}", a.name);
                assert!(score.as_ref().is_none_or(|s| s.account_id == a.id));
            }
            after = scored.cursors.last().cloned();
        }
        check(
            &db,
            &seen,
            &format!("accounts with their scores by score, desc={desc}"),
            "companies",
            "idx_companies_by_score",
        )
        .await;
    }

    // A rescore's read of the score window, and the list of accounts a recompute covers, stop
    // where no stored signal can be (a day past now, and an hour): on PostgreSQL they read the
    // window's months and never the `DEFAULT` partition (which holds rows outside the months
    // made, on either side).
    if db.get_database_backend() == DbBackend::Postgres {
        let org = actor.organization_id;
        seen.lock().unwrap().clear();
        let inputs = domain::scoring::load_chunk(&db, org, &[row_id('a', 7)], chrono::Utc::now())
            .await
            .unwrap();
        assert!(!inputs[&row_id('a', 7)].1.signals.is_empty());
        let scorable = domain::scoring::scorable_accounts(&db, org).await.unwrap();
        assert!(scorable.contains(&row_id('a', 7)));
        let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
        let reads: Vec<&Statement> = statements
            .iter()
            .filter(|s| s.sql.contains("FROM \"signals\""))
            .collect();
        assert_eq!(
            reads.len(),
            2,
            "the window and the active accounts: {statements:?}"
        );
        for stmt in reads {
            let text = plan(&db, stmt).await.join("\n");
            assert!(
                text.contains("signals_") && !text.contains("signals_default"),
                "{}\n{text}",
                stmt.sql
            );
        }
    }

    let contacts = domain::crm::contacts::Filter::default();
    for (field, index) in [
        (None, "idx_contacts_org_id|contacts_pkey"),
        (Some("NAME"), "idx_contacts_by_name"),
        (Some("EMAIL"), "idx_contacts_by_email"),
        (Some("CREATED_AT"), "idx_contacts_by_created"),
        (Some("UPDATED_AT"), "idx_contacts_by_updated"),
    ] {
        for desc in [true, false] {
            let first =
                domain::crm::contacts::list(&db, &actor, &contacts, &page(50, None, field, desc))
                    .await
                    .unwrap();
            let after = first.cursors.last().cloned();
            domain::crm::contacts::list(&db, &actor, &contacts, &page(50, after, field, desc))
                .await
                .unwrap();
            check(
                &db,
                &seen,
                &format!("contacts by {field:?} desc={desc}"),
                "contacts",
                index,
            )
            .await;
        }
    }

    // Signals: the organization's, newest first, and one account's.
    let all = domain::signals::Filter::default();
    let p = domain::signals::list(&db, &actor, &all, &page(50, None, None, true))
        .await
        .unwrap();
    domain::signals::list(
        &db,
        &actor,
        &all,
        &page(50, p.cursors.last().cloned(), None, true),
    )
    .await
    .unwrap();
    check(&db, &seen, "signals", "signals", "idx_signals_org_ts").await;
    let one = domain::signals::Filter {
        account_id: Some(row_id('a', 7)),
        ..Default::default()
    };
    domain::signals::list(&db, &actor, &one, &page(5, None, None, true))
        .await
        .unwrap();
    check(
        &db,
        &seen,
        "an account's signals",
        "signals",
        "idx_signals_account_ts_id",
    )
    .await;

    // An account's timeline (its signal side; the fixture has no activities), top accounts.
    domain::signals::timeline(&db, &actor, row_id('a', 7), 5, None, false)
        .await
        .unwrap();
    check(
        &db,
        &seen,
        "timeline",
        "signals",
        "idx_signals_account_ts_id",
    )
    .await;
    domain::scoring::top_accounts(&db, &actor, 10, None)
        .await
        .unwrap();
    check(
        &db,
        &seen,
        "topAccounts",
        "account_scores",
        "idx_account_scores_org_score",
    )
    .await;
    domain::scoring::top_accounts(&db, &actor, 10, Some("HOT"))
        .await
        .unwrap();
    check(
        &db,
        &seen,
        "topAccounts of a tier",
        "account_scores",
        "idx_account_scores_org_tier_score",
    )
    .await;
}

/// A server whose background loops stay quiet: the statement counter is process-wide, so a
/// test that counts statements must not share it with a poll.
async fn quiet_app() -> TestApp {
    spawn_app_with(&[
        ("JOB_POLL_INTERVAL_MS", "3600000"),
        ("WEBHOOK_POLL_INTERVAL_MS", "3600000"),
        ("EVENTS_POLL_INTERVAL_MS", "3600000"),
        ("SCHEDULER_ENABLED", "false"),
    ])
    .await
}

/// `n` accounts named `{prefix}0`, `{prefix}1`, … created through `createAccounts`; their ids.
async fn create_accounts(app: &TestApp, session: &Session, prefix: &str, n: usize) -> Vec<Uuid> {
    let inputs: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"name": format!("{prefix}{i}")}))
        .collect();
    let r = app
        .graphql_as(
            session.token(),
            "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id } }",
            serde_json::json!({"input": inputs}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    r["data"]["createAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| Uuid::parse_str(a["id"].as_str().unwrap()).unwrap())
        .collect()
}

/// The fewest statements the server's pool ran for `q` in ten runs (a background statement may
/// land in some of them), and the last answer.
async fn fewest_statements(app: &TestApp, session: &Session, q: &str) -> (u64, serde_json::Value) {
    let mut fewest = u64::MAX;
    let mut last = serde_json::Value::Null;
    for _ in 0..10 {
        let before = app.state.metrics.db_statements.get();
        let r = app
            .graphql_as(session.token(), q, serde_json::json!({}))
            .await;
        assert!(r.get("errors").is_none(), "{r}");
        fewest = fewest.min(app.state.metrics.db_statements.get() - before);
        last = r;
    }
    (fewest, last)
}

/// `totalCount` costs one `COUNT` only when a query selects it (directly or in a fragment).
#[tokio::test]
async fn total_count_is_counted_only_when_selected() {
    let app = quiet_app().await;
    let owner = app.register("counts@example.com", "Counts").await;
    create_accounts(&app, &owner, "C", 7).await;
    let (without, _) = fewest_statements(
        &app,
        &owner,
        "{ accounts(first: 3) { edges { node { id } } } }",
    )
    .await;
    let (with, r) = fewest_statements(
        &app,
        &owner,
        "{ accounts(first: 3) { totalCount edges { node { id } } } }",
    )
    .await;
    assert_eq!(r["data"]["accounts"]["totalCount"], 7);
    assert_eq!(with, without + 1, "one COUNT when totalCount is selected");
    let (fragment, r) = fewest_statements(
        &app,
        &owner,
        "{ accounts(first: 3) { ...Total edges { node { id } } } } fragment Total on AccountConnection { totalCount }",
    )
    .await;
    assert_eq!(r["data"]["accounts"]["totalCount"], 7);
    assert!(fragment > without, "a fragment's totalCount is counted too");
}

/// A page of accounts that shows `score` reads the scores with the accounts (no statement more
/// than the page alone, by `edges` or `nodes`), each account its own organization's score, as
/// `account(id)` loads it on its own.
#[tokio::test]
async fn an_accounts_page_showing_scores_reads_them_with_the_accounts() {
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
    let app = quiet_app().await;
    let owner = app.register("scored-page@example.com", "Scored").await;
    let other = app.register("scored-page-other@example.com", "Other").await;
    let mut ids = Vec::new();
    for (session, score) in [(&owner, None), (&other, Some(99))] {
        let org = Uuid::parse_str(&session.organization_id).unwrap();
        let accounts = create_accounts(&app, session, "S", 6).await;
        // As a rescore leaves them: the score row, and its copy on the account. The owner's
        // first four accounts score 10, 20, 30, 40; every account of the other organization 99.
        for (i, id) in accounts.iter().enumerate() {
            let Some(value) = score.or((i < 4).then_some(10 * (i as i32 + 1))) else {
                continue;
            };
            entity::account_scores::Entity::insert(entity::account_scores::ActiveModel {
                account_id: Set(*id),
                organization_id: Set(org),
                score: Set(value),
                tier: Set(if value >= 40 { "WARM" } else { "COLD" }.into()),
                trend: Set("RISING".into()),
                factors: Set(serde_json::json!([])),
                signal_count: Set(value),
                user_count: Set(1),
                last_signal_at: Set(None),
                config_version: Set(1),
                computed_at: Set(chrono::Utc::now()),
            })
            .exec_without_returning(&app.state.db)
            .await
            .unwrap();
            entity::companies::Entity::update_many()
                .col_expr(entity::companies::Column::Score, value.into())
                .filter(entity::companies::Column::Id.eq(*id))
                .exec(&app.state.db)
                .await
                .unwrap();
        }
        ids.push(accounts);
    }
    let (alone, _) = fewest_statements(
        &app,
        &owner,
        "{ accounts(first: 10, orderBy: {field: SCORE, direction: DESC}) { edges { node { id } } } }",
    )
    .await;
    let (scored, r) = fewest_statements(
        &app,
        &owner,
        "{ accounts(first: 10, orderBy: {field: SCORE, direction: DESC}) { edges { node { id score { score tier trend signalCount } } } } }",
    )
    .await;
    assert_eq!(scored, alone, "the scores come with the page");
    let (by_nodes, by_nodes_r) = fewest_statements(
        &app,
        &owner,
        "{ accounts(first: 10, orderBy: {field: SCORE, direction: DESC}) { nodes { id score { score tier trend signalCount } } } }",
    )
    .await;
    assert_eq!(by_nodes, alone, "by nodes too");
    let edges: Vec<serde_json::Value> = r["data"]["accounts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(
        serde_json::Value::Array(edges.clone()),
        by_nodes_r["data"]["accounts"]["nodes"]
    );
    let shown: Vec<Option<i64>> = edges.iter().map(|n| n["score"]["score"].as_i64()).collect();
    assert_eq!(shown, [Some(40), Some(30), Some(20), Some(10), None, None]);
    for node in &edges {
        let id = node["id"].as_str().unwrap();
        assert!(
            ids[0].iter().any(|a| a.to_string() == id),
            "only the owner's accounts"
        );
        let one = app
            .graphql_as(
                owner.token(),
                "query($id: ID!) { account(id: $id) { score { score tier trend signalCount } } }",
                serde_json::json!({"id": id}),
            )
            .await;
        assert_eq!(one["data"]["account"]["score"], node["score"], "{id}");
    }
    assert_eq!(edges[0]["score"]["tier"], "WARM");
    assert_eq!(edges[3]["score"]["tier"], "COLD");
    // `topAccounts` reads accounts with their scores anyway, and shows the scores it read.
    let (top_alone, _) = fewest_statements(&app, &owner, "{ topAccounts(first: 3) { id } }").await;
    let (top_scored, r) = fewest_statements(
        &app,
        &owner,
        "{ topAccounts(first: 3) { id score { score tier } } }",
    )
    .await;
    assert_eq!(
        top_scored, top_alone,
        "topAccounts shows the scores it read"
    );
    // What signing in costs, with nothing read after it.
    let (signed_in, _) = fewest_statements(&app, &owner, "{ __typename }").await;
    assert_eq!(
        top_alone,
        signed_in + 1,
        "topAccounts reads the scores and their accounts in one statement"
    );
    let top: Vec<serde_json::Value> = r["data"]["topAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["score"]["score"].clone())
        .collect();
    assert_eq!(top, [40, 30, 20]);
    // The other organization sees its own scores, never the owner's.
    let r = app
        .graphql_as(
            other.token(),
            "{ accounts(first: 10, orderBy: {field: SCORE, direction: DESC}) { nodes { id score { score } } } }",
            serde_json::json!({}),
        )
        .await;
    let nodes = r["data"]["accounts"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{r}");
    for n in nodes {
        assert_eq!(n["score"]["score"], 99);
        assert!(
            ids[1]
                .iter()
                .any(|a| a.to_string() == n["id"].as_str().unwrap())
        );
    }
}

/// A search runs in the backend that received it, through each kind's search index: never a
/// parallel plan (starting workers costs more than the search itself), whatever the planner's
/// prices; on SQLite, through the FTS5 table.
#[tokio::test]
async fn search_reads_its_indexes_without_parallel_workers() {
    let Fixture {
        _app,
        db,
        seen,
        actor,
    } = fixture("search-plans@example.com", 300).await;
    let hits = domain::crm::search::search(&db, &actor, "7", 20)
        .await
        .unwrap();
    assert!(!hits.is_empty(), "the fixture's account 7 is found");
    let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let stmt = statements
        .iter()
        .find(|s| s.sql.contains(if postgres { "@@" } else { "MATCH" }))
        .unwrap_or_else(|| panic!("no search statement: {statements:?}"));
    // Workers priced at nothing: a plan that can run in parallel now does.
    let text = explain(
        &db,
        stmt,
        "SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL min_parallel_index_scan_size = 0",
    )
    .await
    .join("\n");
    if postgres {
        assert!(
            !text.contains("Gather") && !text.contains("Parallel"),
            "a search plan with workers:\n{text}"
        );
        for index in ["idx_companies_search", "idx_contacts_search"] {
            assert!(text.contains(index), "no {index} in\n{text}");
        }
    } else {
        assert!(text.contains("VIRTUAL TABLE INDEX"), "{text}");
    }
}

/// A nested list (`Account.contacts`, …) reads each parent's newest rows through its
/// `(parent, id)` index and stops after the rows it shows: one index probe per parent under a
/// `Limit` on PostgreSQL, never a scan of a parent's every row.
#[tokio::test]
async fn nested_lists_probe_each_parent_through_its_index() {
    let Fixture {
        _app,
        db,
        seen,
        actor,
    } = fixture("nested-plans@example.com", 300).await;
    use entity::contacts;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let parents: Vec<Uuid> = (0..10).map(|i| row_id('a', i)).collect();
    let columns = domain::crm::ChildColumns {
        organization: contacts::Column::OrganizationId,
        parent: contacts::Column::AccountId,
        id: contacts::Column::Id,
        read_scope: "contacts:read",
    };
    let rows = domain::crm::children::<contacts::Entity>(
        &db,
        &actor,
        columns,
        parents.clone(),
        2,
        domain::db::rows::Fields::ALL,
    )
    .await
    .unwrap();
    // The fixture gives every account three contacts: the two newest of each.
    assert_eq!(rows.len(), 20);
    for p in &parents {
        let mut mine: Vec<Uuid> = rows
            .iter()
            .filter(|r| r.account_id == Some(*p))
            .map(|r| r.id)
            .collect();
        mine.sort_unstable_by(|a, b| b.cmp(a));
        let mut all: Vec<Uuid> = contacts::Entity::find()
            .filter(contacts::Column::AccountId.eq(*p))
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(mine, all[..2]);
    }
    let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
    let stmt = statements
        .iter()
        .find(|s| s.sql.contains("contacts"))
        .unwrap_or_else(|| panic!("no read of contacts: {statements:?}"));
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    // As in `plan`: a few hundred rows must give the plan a large table would.
    let text = explain(
        &db,
        stmt,
        "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
    )
    .await
    .join("\n");
    assert!(
        text.contains("idx_contacts_account_newest"),
        "no probe of idx_contacts_account_newest:\n{text}"
    );
    if postgres {
        assert!(
            text.contains("Limit") && !text.contains("Seq Scan"),
            "each parent's read is not cut by a Limit:\n{text}"
        );
    }
}

/// A known person's signal is five lookups and, on PostgreSQL, one write: the signal, its
/// rescore request, the organization's debounced job, the month's count and the
/// `signal.created` event go in one `WITH` statement; the billing policy comes with the source,
/// and the account's tier with the lookup that found the account. A second signal adds its
/// request and joins the waiting job; each event carries the tier its account had (none for an
/// unscored or a new account).
#[tokio::test]
async fn a_known_persons_signal_is_its_lookups_and_one_write() {
    let Fixture {
        _app,
        db,
        seen,
        actor,
    } = fixture("rescore-request@example.com", 20).await;
    let input = |email: &str| domain::signals::Input {
        signal_type: "api_call".into(),
        actor: Some(domain::signals::ActorHints {
            email: Some(email.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let org = actor.organization_id;
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let waiting = || async {
        db.query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE dedupe_key = 'score:{org}' AND state = 'waiting') AS jobs, \
                 (SELECT COUNT(*) FROM rescore_requests WHERE organization_id = {}) AS requests",
                if postgres {
                    format!("'{org}'")
                } else {
                    format!("X'{}'", org.simple())
                }
            ),
            [],
        ))
        .await
        .unwrap()
        .map(|r| {
            (
                r.try_get::<i64>("", "jobs").unwrap(),
                r.try_get::<i64>("", "requests").unwrap(),
            )
        })
        .unwrap()
    };
    // The tier in the `signal.created` event of `signal`.
    let tier_of = |signal: Uuid| {
        let db = &db;
        async move {
            use entity::events::{Column, Entity};
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let event = Entity::find()
                .filter(Column::OrganizationId.eq(org))
                .filter(Column::EventType.eq("signal.created"))
                .all(db)
                .await
                .unwrap()
                .into_iter()
                .find(|e| e.payload["id"] == signal.to_string())
                .expect("the signal's event");
            event
                .payload
                .get("accountTier")
                .cloned()
                .unwrap_or_default()
        }
    };
    let before = waiting().await;
    // p1@company1.io: contact 1 of account 1, which scores 37 (COLD). Their first signal also
    // records the email as an identity (the fixture's contacts have none); the next one is
    // counted.
    let zeroth = domain::signals::ingest(&db, &actor, input("p1@company1.io"))
        .await
        .unwrap();
    assert_eq!(zeroth.account_id, Some(row_id('a', 1)));
    seen.lock().unwrap().clear();
    let first = domain::signals::ingest(&db, &actor, input("p1@company1.io"))
        .await
        .unwrap();
    assert!(!first.deduplicated);
    assert_eq!(first.account_id, Some(row_id('a', 1)));
    let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
    let sql: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
    let writes: Vec<&str> = sql
        .iter()
        .copied()
        .filter(|s| s.contains("INSERT") || s.contains("UPDATE"))
        .collect();
    if postgres {
        assert_eq!(writes.len(), 1, "{writes:#?}");
        for table in [
            "signals",
            "rescore_requests",
            "jobs",
            "usage_counters",
            "events",
        ] {
            assert!(
                writes[0].contains(&format!("INSERT INTO \"{table}\"")),
                "{table}: {}",
                writes[0]
            );
        }
    } else {
        for table in [
            "signals",
            "rescore_requests",
            "jobs",
            "usage_counters",
            "events",
        ] {
            let into = format!("INSERT INTO \"{table}\"");
            assert_eq!(
                writes.iter().filter(|s| s.contains(&into)).count(),
                1,
                "{table}: {writes:#?}"
            );
        }
    }
    assert!(
        !sql.iter().any(|s| s.contains("FROM \"account_scores\"")),
        "the tier is read with the account: {sql:#?}"
    );
    eprintln!("one signal: {} statements", statements.len());
    // The source with the billing policy, the tombstones, identities, contacts and companies:
    // five lookups.
    assert_eq!(statements.len() - writes.len(), 5, "{sql:#?}");
    assert!(
        !sql.iter().any(|s| s.contains("FROM \"billing_settings\"")),
        "the policy is read with the source: {sql:#?}"
    );
    let after_one = waiting().await;
    assert_eq!(after_one.0, 1, "the organization's job waits");
    assert_eq!(after_one.1, before.1 + 2, "a request each");
    let first = first.signal.unwrap().id;
    assert_eq!(tier_of(first).await, "COLD");
    // p2@company2.io's account scores 74 (HOT); account 5 has no score; a new domain makes a
    // new account, which has none either.
    let second = domain::signals::ingest(&db, &actor, input("p2@company2.io"))
        .await
        .unwrap();
    let after_two = waiting().await;
    assert_eq!(after_two.0, 1, "the second signal joins the waiting job");
    assert_eq!(after_two.1, before.1 + 3, "and adds its request");
    assert_eq!(tier_of(second.signal.unwrap().id).await, "HOT");
    for email in ["p5@company5.io", "someone@brand-new.example"] {
        let s = domain::signals::ingest(&db, &actor, input(email))
            .await
            .unwrap();
        assert!(s.account_id.is_some(), "{email}");
        assert_eq!(
            tier_of(s.signal.unwrap().id).await,
            serde_json::Value::Null,
            "{email}"
        );
    }
    // An account named by id is read for its tier: account 3 scores 10 (COLD).
    let named = domain::signals::ingest(
        &db,
        &actor,
        domain::signals::Input {
            account_id: Some(row_id('a', 3).to_string()),
            ..input("anonymous-visitor@brand-new.example")
        },
    )
    .await
    .unwrap();
    assert_eq!(named.account_id, Some(row_id('a', 3)));
    assert_eq!(tier_of(named.signal.unwrap().id).await, "COLD");
}

/// A batch's large inserts go on their own (their text repeats from batch to batch, so the
/// connection's prepared statement serves them again); what is small still goes together.
#[tokio::test]
async fn a_large_batch_sends_its_large_inserts_on_their_own() {
    let Fixture {
        _app,
        db,
        seen,
        actor,
    } = fixture("large-batch@example.com", 20).await;
    // 150 signals of the fixture's 60 known people: more rows than one carried insert takes.
    let inputs: Vec<domain::signals::Input> = (0..150)
        .map(|i| domain::signals::Input {
            signal_type: "api_call".into(),
            idempotency_key: Some(format!("large-{i}")),
            actor: Some(domain::signals::ActorHints {
                email: Some(format!("p{}@company{}.io", i % 60, i % 20)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    seen.lock().unwrap().clear();
    let results = domain::signals::ingest_many(
        &db,
        &actor,
        inputs,
        "input",
        domain::signals::system_source::API,
    )
    .await
    .unwrap();
    assert_eq!(results.len(), 150);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.signal.is_some()))
    );
    let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
    let into_signals: Vec<&str> = statements
        .iter()
        .map(|s| s.sql.as_str())
        .filter(|s| s.contains("INSERT INTO \"signals\""))
        .collect();
    assert_eq!(into_signals.len(), 1, "{into_signals:#?}");
    assert!(
        into_signals[0].starts_with("INSERT INTO \"signals\""),
        "the signals go on their own: {}",
        &into_signals[0][..200]
    );
    if db.get_database_backend() == DbBackend::Postgres {
        let carried: Vec<&str> = statements
            .iter()
            .map(|s| s.sql.as_str())
            .filter(|s| s.starts_with("WITH ") && s.contains("SELECT (SELECT COUNT(*)"))
            .collect();
        assert_eq!(carried.len(), 1, "the small writes still go together");
        for table in ["rescore_requests", "jobs", "usage_counters"] {
            assert!(
                carried[0].contains(&format!("INSERT INTO \"{table}\"")),
                "{table}"
            );
        }
    }
}

/// The sequencer's probe for events without a position walks the pending index in `seq` order
/// (a `Merge Append` of the partitions' index scans): an ordered index scan marks the dead
/// entries positioned events leave behind, so probes stay cheap between vacuums, where the
/// unordered probe's bitmap scan visited every dead entry again on each call. PostgreSQL only:
/// SQLite positions each event as it is appended and has no sequencer.
#[tokio::test]
async fn the_sequencer_probe_walks_the_pending_index_in_order() {
    let app = spawn_app_with(&[]).await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        assert_eq!(domain::events::sequence(&app.db).await.unwrap(), 0);
        return;
    }
    let url = app.state.config.database_url.expose_secret().to_owned();
    let (db, seen) = recording(&url).await;
    domain::events::sequence(&db).await.unwrap();
    let statements: Vec<Statement> = std::mem::take(&mut *seen.lock().unwrap());
    let probe = statements
        .iter()
        .find(|s| s.sql.starts_with("SELECT") && s.sql.contains("\"position\" IS NULL"))
        .unwrap_or_else(|| panic!("no probe among {statements:?}"));
    let lines = plan(&db, probe).await;
    let text = lines.join("\n");
    assert!(
        text.contains("Merge Append")
            && text.contains("Sort Key: events.seq")
            && text.contains("Index Only Scan")
            && !text.contains("Bitmap"),
        "expected an ordered walk of the pending index\n{}\n{text}",
        probe.sql
    );
}
