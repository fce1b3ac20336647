//! A large insert sent as one JSON parameter (`domain::db::recordset`, PostgreSQL's
//! `json_to_recordset`) stores exactly what the same rows inserted as `VALUES` store: text with
//! quotes, backslashes and non-ASCII characters, NULLs, nested JSON and JSON scalars,
//! timestamps with nanoseconds (kept to the microsecond as the driver keeps them, before and
//! after PostgreSQL's epoch), floats and booleans; rows keep their given order for a sequence
//! default; `ON CONFLICT … DO NOTHING` skips what exists; and what JSON cannot carry faithfully
//! is left to the usual insert. On SQLite there is no such path (`Carried::send_large` declines
//! off PostgreSQL), and the test checks that.

use chrono::{DateTime, Duration, Utc};
use devsignal_tests::bench::api_source;
use devsignal_tests::spawn_app_with;
use domain::db::{Backend, Carried, recordset};
use entity::{contact_identities, contacts, events, signals};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Iterable, QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

fn all<E: EntityTrait>() -> Vec<E::Column> {
    E::Column::iter().collect()
}

#[tokio::test]
async fn json_recordset_insert_stores_what_values_insert_stores() {
    let app = spawn_app_with(&[]).await;
    let owner = app.register("recordset@example.com", "Recordset").await;
    let org = Uuid::parse_str(&owner.organization_id).unwrap();
    let key = app.api_key(&owner, &["signals:write"]).await;
    let db = &app.db;
    let source = api_source(&app, &key, db, org).await;
    // To the microsecond, so rows read back compare equal to the rows given.
    let now = DateTime::<Utc>::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    // Nanoseconds the database cannot keep, after and before 2000-01-01.
    let late = DateTime::<Utc>::from_timestamp(1_764_000_000, 123_456_789).unwrap();
    let early = DateTime::<Utc>::from_timestamp(900_000_000, 987_654_321).unwrap();
    let signal = |n: usize, full: bool| signals::Model {
        id: Uuid::now_v7(),
        organization_id: org,
        source_id: source,
        signal_type: format!("type \"{n}\" \\ é ✓ 'q'"),
        contact_id: None,
        account_id: None,
        anonymous_id: full.then(|| "anon\n\ttab".to_owned()),
        metadata: if full {
            json!({"nested": {"list": [1, 2.5, "x\"y", null, true]}, "emoji": "🚀", "n": n})
        } else {
            json!("a JSON string")
        },
        idempotency_key: full.then(|| format!("key-{n}")),
        dedupe_key: format!("dedupe-{n}"),
        timestamp: if n % 2 == 0 { late } else { early },
        created_at: now - Duration::nanoseconds(n as i64 * 1_001),
    };
    let rows: Vec<signals::Model> = (0..6).map(|n| signal(n, n % 3 != 0)).collect();
    let copies: Vec<signals::Model> = rows
        .iter()
        .map(|r| signals::Model {
            id: Uuid::now_v7(),
            idempotency_key: r.idempotency_key.as_ref().map(|k| format!("copy-{k}")),
            ..r.clone()
        })
        .collect();

    let backend = Backend::of(db);
    let txn = db.begin().await.unwrap();
    let mut carried = Carried::new(&txn);
    // Sixty copies of a 12-column row are past the carried limit.
    let many: Vec<signals::Model> = (0..200).map(|n| signal(n + 100, true)).collect();
    let sent = carried
        .send_large::<signals::Entity>(&txn, &all::<signals::Entity>(), &many, &[])
        .await
        .unwrap();
    assert_eq!(sent, backend == Backend::Postgres, "send_large on {backend:?}");
    carried.send(&txn).await.unwrap();
    txn.rollback().await.unwrap();
    if backend != Backend::Postgres {
        return;
    }

    let insert = recordset::insert::<signals::Entity>(&all::<signals::Entity>(), &rows, &[])
        .expect("every signal column has a JSON form");
    db.execute_raw(insert).await.unwrap();
    signals::Entity::insert_many(copies.iter().cloned().map(signals::ActiveModel::from))
        .exec_without_returning(db)
        .await
        .unwrap();
    let read = |ids: Vec<Uuid>| async move {
        let mut found = signals::Entity::find()
            .filter(signals::Column::Id.is_in(ids))
            .all(db)
            .await
            .unwrap();
        found.sort_by_key(|s| s.dedupe_key.clone());
        found
    };
    let by_json = read(rows.iter().map(|r| r.id).collect()).await;
    let by_values = read(copies.iter().map(|r| r.id).collect()).await;
    assert_eq!(by_json.len(), rows.len());
    for (j, v) in by_json.iter().zip(&by_values) {
        let v = signals::Model {
            id: j.id,
            idempotency_key: v.idempotency_key.as_ref().map(|k| k["copy-".len()..].to_owned()),
            ..v.clone()
        };
        assert_eq!(j, &v, "JSON insert vs VALUES insert");
    }
    // The microseconds kept are the driver's: cut toward 2000-01-01.
    let stamps: Vec<i64> = by_json
        .iter()
        .map(|s| s.timestamp.timestamp_micros())
        .collect();
    assert!(stamps.contains(&(late.timestamp_micros())), "{stamps:?}");
    assert!(stamps.contains(&(early.timestamp_micros() + 1)), "{stamps:?}");

    // Order kept for a sequence default: events numbered as given.
    let event = |t: &str, n: usize| events::Model {
        seq: 0,
        id: Uuid::now_v7(),
        organization_id: org,
        event_type: t.to_owned(),
        payload: json!({"n": n}),
        actor_user_id: None,
        actor_api_key_id: None,
        occurred_at: now,
        position: None,
    };
    let given: Vec<events::Model> = (0..50)
        .map(|n| event(if n % 2 == 0 { "signal.created" } else { "contact.created" }, n))
        .collect();
    let columns = [
        events::Column::Id,
        events::Column::OrganizationId,
        events::Column::EventType,
        events::Column::Payload,
        events::Column::ActorUserId,
        events::Column::ActorApiKeyId,
        events::Column::OccurredAt,
    ];
    db.execute_raw(recordset::insert::<events::Entity>(&columns, &given, &[]).unwrap())
        .await
        .unwrap();
    let stored = events::Entity::find()
        .filter(events::Column::Id.is_in(given.iter().map(|e| e.id)))
        .order_by_asc(events::Column::Seq)
        .all(db)
        .await
        .unwrap();
    let order: Vec<Uuid> = stored.iter().map(|e| e.id).collect();
    assert_eq!(order, given.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(stored.iter().zip(&given).all(|(s, g)| s.payload == g.payload));

    // ON CONFLICT … DO NOTHING: an identity that exists is skipped, a new one stored.
    let contact = Uuid::now_v7();
    contacts::Entity::insert(contacts::ActiveModel::from(contacts::Model {
        id: contact,
        organization_id: org,
        account_id: None,
        first_name: None,
        last_name: None,
        email: None,
        email_normalized: None,
        title: None,
        phone: None,
        github: None,
        twitter: None,
        linked_in: None,
        city: None,
        country: None,
        notes: None,
        custom_fields: json!({}),
        tags: json!([]),
        created_at: now,
        updated_at: now,
    }))
    .exec_without_returning(db)
    .await
    .unwrap();
    let identity = |value: &str, confidence: f64| contact_identities::Model {
        id: Uuid::now_v7(),
        organization_id: org,
        contact_id: contact,
        kind: "EMAIL".into(),
        value: value.into(),
        confidence,
        verified: confidence > 0.5,
        provenance: "test".into(),
        created_at: now,
    };
    let key = [
        contact_identities::Column::OrganizationId,
        contact_identities::Column::Kind,
        contact_identities::Column::Value,
    ];
    let first = identity("a@x.io", 0.1 + 0.2);
    contact_identities::Entity::insert(contact_identities::ActiveModel::from(first.clone()))
        .exec_without_returning(db)
        .await
        .unwrap();
    let again = [identity("a@x.io", 1.0), identity("b@x.io", 0.3)];
    db.execute_raw(
        recordset::insert::<contact_identities::Entity>(
            &all::<contact_identities::Entity>(),
            &again,
            &key,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let mut stored = contact_identities::Entity::find()
        .filter(contact_identities::Column::ContactId.eq(contact))
        .all(db)
        .await
        .unwrap();
    stored.sort_by(|a, b| a.value.cmp(&b.value));
    assert_eq!(stored, vec![first, again[1].clone()]);

    // What JSON cannot carry faithfully is declined: a JSON null (it would read as SQL NULL), a
    // float that is not finite.
    let null_metadata = signals::Model {
        metadata: serde_json::Value::Null,
        ..rows[0].clone()
    };
    assert!(
        recordset::insert::<signals::Entity>(&all::<signals::Entity>(), &[null_metadata], &[])
            .is_none()
    );
    assert!(
        recordset::insert::<contact_identities::Entity>(
            &all::<contact_identities::Entity>(),
            &[identity("c@x.io", f64::NAN)],
            &key,
        )
        .is_none()
    );
}
