//! The event log's ordering promise, on the real database of the run (SQLite or PostgreSQL):
//! a consumer that resumes from the last sequence number it saw never skips an event, even while
//! many transactions append and commit concurrently.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use devsignal_tests::spawn_app;
use domain::events::{self, EventQuery};
use sea_orm::{ActiveModelTrait, Set, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resuming_consumer_never_skips_concurrently_committed_events() {
    let app = spawn_app().await;
    let org = Uuid::now_v7();
    entity::organizations::ActiveModel {
        id: Set(org),
        name: Set("Acme".into()),
        is_demo: Set(false),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await
    .unwrap();

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
