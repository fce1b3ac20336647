//! The event log's ordering promise, on the real database of the run (SQLite or PostgreSQL):
//! a consumer that resumes from the last position it saw never skips an event, even while many
//! transactions append and commit concurrently, and appenders do not wait for one another.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use devsignal_tests::spawn_app;
use domain::events::{self, EventQuery};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

async fn organization(db: &DatabaseConnection) -> Uuid {
    let org = Uuid::now_v7();
    entity::organizations::ActiveModel {
        id: Set(org),
        name: Set("Acme".into()),
        is_demo: Set(false),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    org
}

async fn after(db: &DatabaseConnection, org: Uuid, cursor: i64) -> Vec<events::Event> {
    events::sequence(db).await.unwrap();
    events::read(
        db,
        org,
        &EventQuery {
            after: Some(cursor),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The case a number handed out at insert time gets wrong: a transaction that appended first
/// commits last. Its event must come after everything a consumer has already read, not before.
/// (PostgreSQL only: SQLite has one writer at a time, so the overlap cannot happen there.)
#[tokio::test]
async fn an_event_committed_late_comes_after_what_was_already_read_and_nobody_waited_for_it() {
    let app = spawn_app().await;
    if !app.test_db.is_postgres() {
        return;
    }
    let org = organization(&app.db).await;
    let slow = app.db.begin().await.unwrap();
    events::append(&slow, org, None, "contact.created", json!({"n": "slow"}))
        .await
        .unwrap();
    // Another writer appends and commits while the first is still open: it must not wait for
    // it (appends share no lock).
    let quick = tokio::time::timeout(Duration::from_secs(5), async {
        let txn = app.db.begin().await.unwrap();
        events::append(&txn, org, None, "contact.created", json!({"n": "quick"}))
            .await
            .unwrap();
        txn.commit().await.unwrap();
    })
    .await;
    assert!(
        quick.is_ok(),
        "an append waited for another open transaction"
    );
    let first = after(&app.db, org, 0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].payload["n"], "quick");
    slow.commit().await.unwrap();
    let second = after(&app.db, org, first[0].seq).await;
    assert_eq!(second.len(), 1, "the late commit was skipped");
    assert_eq!(second[0].payload["n"], "slow");
    assert!(second[0].seq > first[0].seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resuming_consumer_never_skips_concurrently_committed_events() {
    let app = spawn_app().await;
    let org = organization(&app.db).await;

    const WRITERS: usize = 8;
    const EACH: usize = 15;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let db = app.db.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                let txn = db.begin().await.unwrap();
                events::append(&txn, org, None, "contact.created", json!({"w": w, "i": i}))
                    .await
                    .unwrap();
                // Hold the transaction open a little after taking a sequence number: without
                // ordered commits a later number could become visible first.
                tokio::time::sleep(Duration::from_millis((i % 3) as u64)).await;
                txn.commit().await.unwrap();
            }
        }));
    }

    let total = WRITERS * EACH;
    let mut seen = BTreeSet::new();
    let mut cursor = 0i64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {total} events seen",
            seen.len()
        );
        events::sequence(&app.db).await.unwrap();
        let page = events::read(
            &app.db,
            org,
            &EventQuery {
                after: Some(cursor),
                limit: 7,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for e in &page {
            assert!(e.seq > cursor);
            cursor = e.seq;
            seen.insert((
                e.payload["w"].as_u64().unwrap(),
                e.payload["i"].as_u64().unwrap(),
            ));
        }
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    events::sequence(&app.db).await.unwrap();
    // Everything committed was seen exactly by walking forward from the cursor.
    let all = events::read(
        &app.db,
        org,
        &EventQuery {
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.len(), total);
    assert_eq!(seen.len(), total);
}

/// Appends `n` events of `org` in one committed transaction and positions them.
async fn append_committed(db: &DatabaseConnection, org: Uuid, n: usize) {
    let txn = domain::db::begin(db).await.unwrap();
    for i in 0..n {
        events::append(&txn, org, None, "contact.created", json!({"n": i}))
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    events::sequence(db).await.unwrap();
}

async fn delete_organization(db: &DatabaseConnection, org: Uuid) {
    use sea_orm::EntityTrait;
    entity::organizations::Entity::delete_by_id(org)
        .exec(db)
        .await
        .unwrap();
}

/// An organization's deletion takes its events with it (the rows cascade: the demo clean-up,
/// an erasure of the last owner). When those were the newest, their positions must not be handed
/// out again: every follower of the whole log (the live tailer, the webhook and alert cursors)
/// is already past them and would skip the events that got them. Followers pass over the gap.
#[tokio::test]
async fn positions_of_deleted_events_are_never_handed_out_again() {
    let app = spawn_app().await;
    let (a, b) = (organization(&app.db).await, organization(&app.db).await);
    append_committed(&app.db, a, 2).await;
    append_committed(&app.db, b, 3).await;
    let top = events::latest_seq_all(&app.db).await.unwrap();
    // A follower of the whole log has read everything.
    let (read, through) = events::tail(&app.db, 0, 100).await.unwrap();
    assert_eq!(read.len(), 5);
    assert_eq!(through, top);

    delete_organization(&app.db, b).await;
    assert_eq!(events::latest_seq_all(&app.db).await.unwrap(), top);
    let (read, through) = events::tail(&app.db, through, 100).await.unwrap();
    assert!(read.is_empty());
    assert_eq!(through, top);

    append_committed(&app.db, a, 1).await;
    let (read, through) = events::tail(&app.db, through, 100).await.unwrap();
    assert_eq!(read.len(), 1, "the follower gets A's new event");
    assert!(
        read[0].seq > top,
        "{} reused a position up to {top}",
        read[0].seq
    );
    assert_eq!(through, read[0].seq);
    assert_eq!(after(&app.db, a, 0).await.len(), 3);

    // A follower that had read only A's events before B's went reads through the gap: its
    // next page is A's new event, and a page that finds nothing moves it to the head.
    let first_a = after(&app.db, a, 0).await[1].seq;
    let (read, through) = events::tail(&app.db, first_a, 100).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.organization_id).collect::<Vec<_>>(),
        [a]
    );
    assert_eq!(through, read[0].seq);
    delete_organization(&app.db, a).await;
    let (read, through) = events::tail(&app.db, first_a, 100).await.unwrap();
    assert!(read.is_empty());
    assert_eq!(through, events::latest_seq_all(&app.db).await.unwrap());
}

/// A follower with nothing new to read (the usual poll) reads the log's head row, not the
/// event table, whose every monthly partition such a probe would visit on PostgreSQL.
#[tokio::test]
async fn an_idle_followers_poll_reads_the_head_not_the_events() {
    use std::sync::{Arc, Mutex};
    let app = spawn_app().await;
    let org = organization(&app.db).await;
    append_committed(&app.db, org, 2).await;
    let top = events::latest_seq_all(&app.db).await.unwrap();
    let txn = domain::db::begin(&app.db).await.unwrap();
    events::create_cursor(&txn, "idle-test", events::CursorStart::End)
        .await
        .unwrap();
    txn.commit().await.unwrap();

    let mut db = domain::db::connect(
        &app.test_db.url,
        &domain::db::PoolSettings {
            max_connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    db.set_metric_callback(move |info| s.lock().unwrap().push(info.statement.sql.clone()));
    assert_eq!(
        events::pending_after(&db, "idle-test").await.unwrap(),
        Some(false)
    );
    let (read, through) = events::tail(&db, top, 100).await.unwrap();
    assert!(read.is_empty());
    assert_eq!(through, top);
    let statements = seen.lock().unwrap().clone();
    assert!(!statements.is_empty());
    for sql in &statements {
        assert!(
            !sql.contains("\"events\"") && !sql.contains(" events "),
            "an idle poll read the event table: {sql}"
        );
    }
    // One event more, and both see it.
    append_committed(&app.db, org, 1).await;
    assert_eq!(
        events::pending_after(&db, "idle-test").await.unwrap(),
        Some(true)
    );
    assert_eq!(events::tail(&db, top, 100).await.unwrap().0.len(), 1);
}

/// The migration that brings the head starts it past every position a log already gave and
/// every consumer cursor (which a deletion may have left past the stored events).
#[tokio::test]
async fn the_head_starts_past_every_given_position_and_cursor() {
    let test_db = devsignal_tests::TestDatabase::new().await;
    let db = domain::db::connect(&test_db.url, &Default::default())
        .await
        .unwrap();
    domain::db::migrate_up(&db).await.unwrap();
    let org = organization(&db).await;
    append_committed(&db, org, 3).await;
    let top = events::latest_seq_all(&db).await.unwrap();
    // Undo the head's migration and every one after it.
    let steps = {
        use migration::MigratorTrait as _;
        let all = migration::Migrator::migrations();
        let at = all
            .iter()
            .position(|m| m.name() == "m20261210_000034_event_head")
            .unwrap();
        u32::try_from(all.len() - at).unwrap()
    };
    domain::db::migrate_down(&db, steps).await.unwrap();
    domain::db::migrate_up(&db).await.unwrap();
    assert_eq!(events::latest_seq_all(&db).await.unwrap(), top);

    entity::webhook_cursor::ActiveModel {
        name: Set("ahead".into()),
        last_seq: Set(top + 10),
        updated_at: Set(Utc::now()),
    }
    .insert(&db)
    .await
    .unwrap();
    domain::db::migrate_down(&db, steps).await.unwrap();
    domain::db::migrate_up(&db).await.unwrap();
    assert_eq!(events::latest_seq_all(&db).await.unwrap(), top + 10);
    append_committed(&db, org, 1).await;
    assert_eq!(after(&db, org, top + 10).await.len(), 1);
}
