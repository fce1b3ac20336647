//! The schema stays shardable by tenant: a PostgreSQL distributed by `organization_id` (Citus)
//! accepts it. Every table is either a tenant table (`organization_id NOT NULL`) or one of the
//! named global tables; on PostgreSQL every primary and unique key of a tenant table holds
//! `organization_id`, and every reference between tenant tables holds it on both sides, at the
//! same place, without `SET NULL`. The nullable references are cleared by the application
//! (`domain::db::detach`), which deleting an account, a contact or a deal shows.

use std::collections::BTreeSet;

use devsignal_tests::{Session, TestApp, assert_code, spawn_app};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

/// The tables without an organization of their own, and why: on a sharded PostgreSQL they are
/// reference tables (copied to every node) or stay on the coordinator.
const GLOBAL: &[(&str, &str)] = &[
    ("organizations", "the tenants themselves"),
    ("users", "a person may belong to several organizations"),
    (
        "auth_tokens",
        "a user's email-verification and password-reset tokens",
    ),
    (
        "audit_logs",
        "also records sign-ins that precede any organization",
    ),
    ("billing_settings", "the installation's Stripe prices"),
    (
        "billing_events",
        "Stripe's events, some for no organization",
    ),
    (
        "jobs",
        "one queue for the installation; system jobs have no organization",
    ),
    ("job_queues", "the queues' pause switches"),
    ("job_cron_ticks", "the scheduler's claimed ticks"),
    ("job_schedule_states", "the cron table's switches"),
    ("scheduler_heartbeats", "the scheduler instances"),
    (
        "webhook_cursor",
        "the webhook fan-out's place in the event log",
    ),
    ("event_head", "the event log's highest position handed out"),
    ("seaql_migrations", "the schema's history"),
];

async fn rows(app: &TestApp, sql: &str) -> Vec<Vec<String>> {
    let backend = app.db.get_database_backend();
    app.db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (0..)
                .map_while(|i| r.try_get_by_index::<String>(i).ok())
                .collect()
        })
        .collect()
}

/// `(table, organization_id is NOT NULL)` for every table, on either backend.
async fn tables(app: &TestApp) -> Vec<(String, Option<bool>)> {
    let sql = match app.db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT c.relname::text, COALESCE((SELECT CASE WHEN a.attnotnull THEN 'yes' ELSE 'no' END \
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' \
             AND NOT a.attisdropped), '-') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1"
        }
        _ => {
            "SELECT m.name, COALESCE((SELECT CASE WHEN p.\"notnull\" = 1 THEN 'yes' ELSE 'no' END \
             FROM pragma_table_info(m.name) p WHERE p.name = 'organization_id'), '-') \
             FROM sqlite_master m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND NOT EXISTS (SELECT 1 FROM sqlite_master v \
             WHERE v.sql LIKE 'CREATE VIRTUAL TABLE%' AND m.name LIKE v.name || '%') ORDER BY 1"
        }
    };
    rows(app, sql)
        .await
        .into_iter()
        .map(|r| {
            let org = match r[1].as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            };
            (r[0].clone(), org)
        })
        .collect()
}

#[tokio::test]
async fn every_table_is_a_tenant_table_or_a_named_global_one() {
    let app = spawn_app().await;
    let postgres = app.db.get_database_backend() == DbBackend::Postgres;
    let global: BTreeSet<&str> = GLOBAL.iter().map(|(t, _)| *t).collect();
    let mut tenant = 0;
    for (table, org) in tables(&app).await {
        if global.contains(table.as_str()) {
            continue;
        }
        // SQLite cannot make a column NOT NULL after the fact; PostgreSQL says it.
        assert!(
            org == Some(true) || (!postgres && org == Some(false)),
            "table {table} has no organization_id NOT NULL: give it one (a tenant table) or name \
             it in GLOBAL with the reason it belongs to no organization"
        );
        tenant += 1;
    }
    assert!(tenant >= 45, "only {tenant} tenant tables found");
}

#[tokio::test]
async fn on_postgres_every_key_and_reference_of_a_tenant_table_holds_the_organization() {
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    const TENANT: &str = "SELECT c.oid FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace \
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' \
        AND a.attnotnull AND NOT a.attisdropped \
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')";
    // Primary keys and unique indexes (constraints or not, partial or not).
    let keys = rows(
        &app,
        &format!(
            "SELECT t.relname::text, i.relname::text FROM pg_index x \
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE x.indisunique AND x.indrelid IN ({TENANT}) AND NOT EXISTS \
             (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid \
              AND a.attname = 'organization_id' AND a.attnum = ANY(x.indkey::int2[])) ORDER BY 1, 2"
        ),
    )
    .await;
    assert!(
        keys.is_empty(),
        "unique keys of tenant tables without organization_id: {keys:?}"
    );
    let tenant_keys = rows(
        &app,
        &format!(
            "SELECT count(*)::text FROM pg_index x WHERE x.indisunique AND x.indrelid IN ({TENANT})"
        ),
    )
    .await;
    assert!(tenant_keys[0][0].parse::<u32>().unwrap() >= 60);

    // References between tenant tables: organization_id on both sides at the same place, and
    // no SET NULL / SET DEFAULT (Citus refuses them on a key holding the distribution column).
    // A partition's copies of its table's references (`conparentid`) are left out.
    let references = rows(
        &app,
        &format!(
            "SELECT c.conname::text, c.conrelid::regclass::text, c.confrelid::regclass::text, \
             c.confdeltype::text, \
             (SELECT array_position(c.conkey, a.attnum)::text FROM pg_attribute a \
              WHERE a.attrelid = c.conrelid AND a.attname = 'organization_id'), \
             (SELECT array_position(c.confkey, a.attnum)::text FROM pg_attribute a \
              WHERE a.attrelid = c.confrelid AND a.attname = 'organization_id'), \
             (SELECT string_agg(a.attname, ',') FROM pg_attribute a \
              WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) \
              AND a.attname <> 'organization_id') \
             FROM pg_constraint c WHERE c.contype = 'f' AND c.conparentid = 0 \
             AND c.conrelid IN ({TENANT}) AND c.confrelid IN ({TENANT}) ORDER BY 1"
        ),
    )
    .await;
    assert!(references.len() >= 20, "{references:?}");
    let mut plain = BTreeSet::new();
    for r in &references {
        let (name, from, to, on_delete) = (&r[0], &r[1], &r[2], &r[3]);
        let (from_pos, to_pos) = (r.get(4), r.get(5));
        assert!(
            from_pos.is_some() && from_pos == to_pos,
            "{name} ({from} → {to}) must hold organization_id at the same place on both sides: {r:?}"
        );
        assert!(
            on_delete != "n" && on_delete != "d",
            "{name} ({from} → {to}) sets a column on delete; clear it in domain::db::detach"
        );
        if on_delete != "c" {
            plain.insert((to.clone(), from.clone(), r[6].clone()));
        }
    }
    let detached: BTreeSet<(String, String, String)> = domain::db::NULLABLE_REFERENCES
        .iter()
        .map(|(r, t, c)| (r.table().to_owned(), (*t).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(
        plain, detached,
        "the references that deleting does not cascade must be the ones domain::db::detach clears"
    );

    // A global (reference) table may not point at a tenant (distributed) one.
    let upward = rows(
        &app,
        &format!(
            "SELECT c.conname::text FROM pg_constraint c WHERE c.contype = 'f' \
             AND c.conrelid NOT IN ({TENANT}) AND c.confrelid IN ({TENANT})"
        ),
    )
    .await;
    assert!(upward.is_empty(), "{upward:?}");
}

async fn gql(app: &TestApp, s: &Session, q: &str, vars: Value) -> Value {
    ok(&app.graphql_as(s.token(), q, vars).await).clone()
}

/// The row `id` of `E`, which must exist.
async fn row<E>(app: &TestApp, id: Uuid) -> E::Model
where
    E: EntityTrait,
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<Uuid>,
{
    E::find_by_id(id).one(&app.db).await.unwrap().unwrap()
}

fn uuid(v: &Value) -> Uuid {
    v.as_str().unwrap().parse().unwrap()
}

async fn delete(app: &TestApp, s: &Session, what: &str, id: Uuid) {
    let field = format!("delete{what}");
    let r = app
        .graphql_as(
            s.token(),
            &format!("mutation($id: ID!) {{ {field}(id: $id) }}"),
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)[&field], id.to_string());
}

#[tokio::test]
async fn deleting_an_account_a_contact_or_a_deal_unlinks_what_pointed_at_it() {
    use entity::{activities, contacts, deals, signals};
    let app = spawn_app().await;
    let (s, other) = app.two_tenants().await;
    let signal = gql(
        &app,
        &s,
        "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id contact { id } account { id } } } }",
        json!({"input": {"type": "repo_star", "actor": {"email": "ann@unlink-keys.io"}}}),
    )
    .await["ingestSignal"]["signal"]
        .clone();
    let (sig, con, acc) = (
        uuid(&signal["id"]),
        uuid(&signal["contact"]["id"]),
        uuid(&signal["account"]["id"]),
    );
    let deal = uuid(
        &gql(
            &app,
            &s,
            "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
            json!({"input": {"title": "Unlink", "accountId": acc, "contactId": con}}),
        )
        .await["createDeal"]["id"],
    );
    let activity = uuid(
        &gql(
            &app,
            &s,
            "mutation($input: ActivityInput!) { createActivity(input: $input) { id } }",
            json!({"input": {"type": "CALL", "title": "Call", "accountId": acc,
                             "contactId": con, "dealId": deal}}),
        )
        .await["createActivity"]["id"],
    );
    // Another tenant cannot delete them.
    let r = app
        .graphql_as(
            other.token(),
            "mutation($id: ID!) { deleteAccount(id: $id) }",
            json!({"id": acc}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");

    delete(&app, &s, "Deal", deal).await;
    let a = row::<activities::Entity>(&app, activity).await;
    assert_eq!(
        (a.deal_id, a.contact_id, a.account_id),
        (None, Some(con), Some(acc))
    );

    delete(&app, &s, "Contact", con).await;
    let a = row::<activities::Entity>(&app, activity).await;
    assert_eq!((a.contact_id, a.account_id), (None, Some(acc)));
    let sg = row::<signals::Entity>(&app, sig).await;
    assert_eq!((sg.contact_id, sg.account_id), (None, Some(acc)));

    // A second contact and a second deal on the account, then the account goes.
    let con2 = uuid(
        &gql(
            &app,
            &s,
            "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
            json!({"input": {"email": "bo@unlink-keys.io", "accountId": acc}}),
        )
        .await["createContact"]["id"],
    );
    let deal2 = uuid(
        &gql(
            &app,
            &s,
            "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
            json!({"input": {"title": "Second", "accountId": acc, "contactId": con2}}),
        )
        .await["createDeal"]["id"],
    );
    delete(&app, &s, "Account", acc).await;
    let c = row::<contacts::Entity>(&app, con2).await;
    assert_eq!(c.account_id, None);
    let d = row::<deals::Entity>(&app, deal2).await;
    assert_eq!((d.account_id, d.contact_id), (None, Some(con2)));
    let a = row::<activities::Entity>(&app, activity).await;
    assert_eq!((a.account_id, a.contact_id, a.deal_id), (None, None, None));
    let sg = row::<signals::Entity>(&app, sig).await;
    assert_eq!((sg.account_id, sg.contact_id), (None, None));
}
