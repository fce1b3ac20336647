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
