//! The PostHog connector against a local fake of PostHog's events API: every page read to the
//! end and only what is new afterwards, people found by email and then by distinct id, a
//! throttled run backing off until `Retry-After` and resuming at the page it stopped at, a
//! rejected key (ERROR until updated), 502s retried, and the signed webhook (refused without
//! the signature, accepted with it; the same event by webhook and by sync is one signal).

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{
    UPDATE, connect, integration, ok, post_signed, signals, sync, visible_signals,
};
use devsignal_tests::fakes::posthog::{Event, FakePostHog};
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const KEY: &str = "phx_good_key";

fn config(ph: &FakePostHog, events: &[&str]) -> Value {
    json!({"host": ph.url, "projectId": 42, "events": events})
}

async fn setup(events: Vec<Event>) -> (FakePostHog, TestApp) {
    let ph = FakePostHog::start("42", KEY).await;
    ph.with(|d| d.events = events);
    (ph, spawn_app().await)
}

async fn contacts_with_email(app: &TestApp) -> u64 {
    entity::contacts::Entity::find()
        .filter(entity::contacts::Column::Email.is_not_null())
        .count(&app.db)
        .await
        .unwrap()
}

async fn attributed(app: &TestApp, signal_type: &str) -> u64 {
    entity::signals::Entity::find()
        .filter(entity::signals::Column::SignalType.eq(signal_type))
        .filter(entity::signals::Column::ContactId.is_not_null())
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sync_reads_every_page_then_only_what_is_new() {
    let mut events = FakePostHog::generated("$pageview", 250, "acme.io");
    events.extend(FakePostHog::generated("Project Created", 30, "acme.io"));
    let mut leave = FakePostHog::generated("$pageleave", 5, "acme.io");
    for e in &mut leave {
        e.uuid = format!("leave-{}", e.uuid);
    }
    events.extend(leave);
    for e in events.iter_mut().filter(|e| e.event == "Project Created") {
        e.uuid = format!("pc-{}", e.uuid);
    }
    let (ph, app) = setup(events).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "POSTHOG",
        config(&ph, &["$pageview", "Project Created"]),
        Some(json!({"personalApiKey": KEY})),
    )
    .await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["config"]["projectId"], "42", "normalised, no secrets");
    assert!(
        i["webhookUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/webhooks/posthog/{id}"))
    );

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 280);
    assert_eq!(signals(&app, Some("page_view")).await, 250);
    assert_eq!(signals(&app, Some("posthog_project_created")).await, 30);
    assert_eq!(signals(&app, None).await, 280, "$pageleave is not a signal");
    let hits = ph.hits();
    assert_eq!(run["requests"], json!(hits.len()));
    assert_eq!(hits.len(), 3 + 1, "250 page views in 3 pages, 30 in 1");
    assert!(
        hits.iter()
            .all(|h| h.authorization.as_deref() == Some("Bearer phx_good_key"))
    );
    // Pages after the first follow `next` (PostHog's `before`).
    assert_eq!(
        hits.iter()
            .filter(|h| h.param("event").as_deref() == Some("$pageview"))
            .filter(|h| h.param("before").is_some())
            .count(),
        2
    );
    // Identified people (every third, by `$set.email`) are contacts at their company.
    let identified = contacts_with_email(&app).await;
    assert!(identified > 0);
    let company = entity::companies::Entity::find()
        .filter(entity::companies::Column::Domain.eq("acme.io"))
        .one(&app.db)
        .await
        .unwrap();
    assert!(company.is_some(), "the email's company is the account");
    let pageviews_attributed = attributed(&app, "page_view").await;

    // New events: only they are read, and an identified person's event without an email is
    // theirs by distinct id.
    let known = ph.with(|d| {
        d.events
            .iter()
            .find(|e| e.properties.get("$set").is_some() && e.event == "$pageview")
            .unwrap()
            .clone()
    });
    let first_run_newest = ph.with(|d| {
        d.events
            .iter()
            .filter(|e| e.event == "$pageview")
            .map(|e| e.timestamp)
            .max()
            .unwrap()
    });
    ph.with(|d| {
        d.hits.clear();
        for k in 0..5 {
            d.events.push(Event {
                uuid: format!("new-{k}"),
                event: "$pageview".into(),
                distinct_id: known.distinct_id.clone(),
                timestamp: Utc::now() - chrono::Duration::seconds(10 - k),
                properties: json!({"$current_url": "https://app.example/pricing"}),
            });
        }
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 5);
    assert_eq!(
        attributed(&app, "page_view").await,
        pageviews_attributed + 5
    );
    let hits = ph.hits();
    assert_eq!(hits.len(), 2, "one page per event name: {hits:?}");
    let after = hits
        .iter()
        .find(|h| h.param("event").as_deref() == Some("$pageview"))
        .and_then(|h| h.param("after"))
        .unwrap();
    let after = chrono::DateTime::parse_from_rfc3339(&after).unwrap();
    assert_eq!(
        after.timestamp_micros(),
        first_run_newest.timestamp_micros(),
        "the cursor is the newest event read"
    );
}

#[tokio::test]
async fn a_throttled_run_backs_off_until_retry_after_then_resumes_where_it_stopped() {
    let (ph, app) = setup(FakePostHog::generated("$pageview", 250, "acme.io")).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "POSTHOG",
        config(&ph, &["$pageview"]),
        Some(json!({"personalApiKey": KEY})),
    )
    .await;
    ph.with(|d| {
        d.remaining = 2;
        d.reset = Utc::now() + chrono::Duration::seconds(4);
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("rate limit"),
        "{run}"
    );
    assert_eq!(run["signalsCreated"], 200);
    let i = integration(&app, &s, &id).await;
    assert!(
        i["status"] == "BACKOFF" || Utc::now() >= ph.with(|d| d.reset),
        "{i}"
    );
    let i = eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert!(
        i["runs"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["node"]["status"] == "SUCCEEDED"),
        "{i}"
    );
    assert_eq!(signals(&app, Some("page_view")).await, 250);
    // The continuation started at the third page (its `next`), not at the first.
    let ok_hits: Vec<_> = ph.hits().into_iter().filter(|h| h.status == 200).collect();
    assert_eq!(ok_hits.len(), 3, "{ok_hits:?}");
    assert!(ok_hits[2].param("before").is_some());
}

#[tokio::test]
async fn a_rejected_key_is_an_error_until_it_is_updated_and_server_errors_are_retried() {
    let (ph, app) = setup(FakePostHog::generated("$pageview", 3, "acme.io")).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "POSTHOG",
        config(&ph, &["$pageview"]),
        Some(json!({"personalApiKey": "phx_wrong"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["requests"], 1, "no retries on 401");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    assert!(i["lastError"].as_str().unwrap().contains("401"), "{i}");
    assert_eq!(
        connectors::run::fan_out(&app.db, "POSTHOG").await.unwrap(),
        0
    );

    ph.with(|d| {
        d.fail.push(("events".into(), 502));
        d.fail.push(("events".into(), 503));
    });
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": {"personalApiKey": KEY}}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["requests"], 3, "two failures retried, then the page");
    assert_eq!(signals(&app, Some("page_view")).await, 3);
}

fn destination_payload(e: &Event, email: Option<&str>) -> Value {
    let mut props = e.properties.clone();
    if let Some(p) = props.as_object_mut() {
        p.remove("$set");
    }
    json!({
        "event": {
            "uuid": e.uuid,
            "event": e.event,
            "distinct_id": e.distinct_id,
            "properties": props,
            "timestamp": e.timestamp.to_rfc3339(),
            "url": "https://us.posthog.com/project/42/events/x",
        },
        "person": {"id": "p1", "properties": {"email": email, "name": "Ana Lee"}},
        "project": {"id": 42, "name": "Acme"},
    })
}

#[tokio::test]
async fn the_webhook_is_verified_and_a_webhook_and_a_sync_of_one_event_are_one_signal() {
    let events = FakePostHog::generated("signup", 3, "acme.io");
    let (ph, app) = setup(events.clone()).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, secret) = connect(
        &app,
        &s,
        "POSTHOG",
        config(&ph, &["signup"]),
        Some(json!({"personalApiKey": KEY})),
    )
    .await;
    let body = destination_payload(&events[0], Some("ana@acme.io"));
    // Unsigned, or signed with another secret: refused, nothing stored.
    let r = post_signed(&app, "posthog", &id, None, &body).await;
    assert_eq!(r.status(), 401);
    let r = post_signed(&app, "posthog", &id, Some("whsec_other"), &body).await;
    assert_eq!(r.status(), 401);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(signals(&app, None).await, 0);

    let r = post_signed(&app, "posthog", &id, Some(&secret), &body).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["created"], 1, "{out}");
    assert_eq!(out["signals"][0]["signalType"], "signup");
    // The person is named by the person's email and remembered by distinct id.
    let contact = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::Email.eq("ana@acme.io"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("a contact for the person's email");
    let ids = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::ContactId.eq(contact.id))
        .filter(entity::contact_identities::Column::Kind.eq("POSTHOG"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].value, events[0].distinct_id);

    // A redelivery is the same signal.
    let r = post_signed(&app, "posthog", &id, Some(&secret), &body).await;
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["deduplicated"], 1, "{out}");
    // An event that is not a signal is accepted and ignored; a body that is no event is 400.
    let mut leave = events[1].clone();
    leave.event = "$pageleave".into();
    let r = post_signed(
        &app,
        "posthog",
        &id,
        Some(&secret),
        &destination_payload(&leave, None),
    )
    .await;
    assert_eq!(r.status(), 202);
    let r = post_signed(&app, "posthog", &id, Some(&secret), &json!({"hello": 1})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(signals(&app, None).await, 1);

    // The sync reads all three events; the one that came by webhook is not made twice.
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 2);
    assert_eq!(signals(&app, Some("signup")).await, 3);
}

#[tokio::test]
async fn posthog_integrations_and_their_signals_are_invisible_to_other_tenants() {
    let events = FakePostHog::generated("signup", 2, "acme.io");
    let (ph, app) = setup(events.clone()).await;
    let (a, b) = app.two_tenants().await;
    let (id_a, secret_a) = connect(
        &app,
        &a,
        "POSTHOG",
        config(&ph, &["signup"]),
        Some(json!({"personalApiKey": KEY})),
    )
    .await;
    let (id_b, secret_b) = connect(
        &app,
        &b,
        "POSTHOG",
        config(&ph, &["signup"]),
        Some(json!({"personalApiKey": KEY})),
    )
    .await;
    let body = destination_payload(&events[0], Some("ana@acme.io"));
    // B's secret does not open A's webhook.
    let r = post_signed(&app, "posthog", &id_a, Some(&secret_b), &body).await;
    assert_eq!(r.status(), 401);
    let r = post_signed(&app, "posthog", &id_a, Some(&secret_a), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(visible_signals(&app, &a).await.len(), 1);
    assert!(visible_signals(&app, &b).await.is_empty());
    assert_code(
        &app.graphql_as(
            b.token(),
            "mutation($id: ID!) { syncIntegration(id: $id) { id } }",
            json!({"id": id_a}),
        )
        .await,
        "NOT_FOUND",
    );
    // B's own sync of the same project makes B's own signals; A's stay A's.
    let run = sync(&app, &b, &id_b, false).await;
    assert_eq!(run["signalsCreated"], 2);
    assert_eq!(visible_signals(&app, &a).await.len(), 1);
    assert_eq!(visible_signals(&app, &b).await.len(), 2);
}

#[tokio::test]
async fn bad_posthog_settings_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    for (input, field) in [
        (
            json!({"kind": "POSTHOG", "config": {"projectId": 1}}),
            "credentials.personalApiKey",
        ),
        (
            json!({"kind": "POSTHOG", "config": {"projectId": "x1"}, "credentials": {"personalApiKey": "k"}}),
            "config.projectId",
        ),
        (
            json!({"kind": "POSTHOG", "config": {"projectId": 1, "host": "ftp://x"}, "credentials": {"personalApiKey": "k"}}),
            "config.host",
        ),
        (
            json!({"kind": "POSTHOG", "config": {"projectId": 1, "events": ["$pageleave"]}, "credentials": {"personalApiKey": "k"}}),
            "config.events.0",
        ),
    ] {
        let resp = app
            .graphql_as(
                s.token(),
                devsignal_tests::connectors::CONNECT,
                json!({"input": input}),
            )
            .await;
        assert_code(&resp, "BAD_USER_INPUT");
        let fields: Vec<String> = resp["errors"][0]["extensions"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(fields.iter().any(|f| f.ends_with(field)), "{field}: {resp}");
    }
}
