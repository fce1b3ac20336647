//! Intercom and Zendesk against local fakes of their APIs: every page read to the end and only
//! what changed afterwards, people by email with the desk's user id remembered, a spent budget
//! (BACKOFF, then the continuation resumes at its page), rejected credentials (ERROR until
//! updated), 5xx retried, each desk's own webhook signature accepted and refused, the same
//! change by webhook and by sync making one signal, the hourly cron entries, and tenants.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{
    UPDATE, connect, integration, ok, post_webhook, signals, sync, visible_signals,
};
use devsignal_tests::fakes::support::FakeDesk;
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const TOKEN: &str = "dG9rOmdvb2Q=";
const CLIENT_SECRET: &str = "intercom-client-secret";
const ZD_EMAIL: &str = "agent@vendor.io";
const ZD_TOKEN: &str = "zd-api-token";
const ZD_SECRET: &str = "zd-signing-secret";

async fn intercom_app() -> (FakeDesk, TestApp) {
    let desk = FakeDesk::intercom(TOKEN).await;
    let app = spawn_app_with(&[("INTERCOM_API_URL", &desk.url)]).await;
    (desk, app)
}

fn intercom_creds(token: &str) -> Value {
    json!({"accessToken": token, "clientSecret": CLIENT_SECRET})
}

fn zendesk_config(desk: &FakeDesk) -> Value {
    json!({"subdomain": "acme", "baseUrl": desk.url})
}

fn zendesk_creds(token: &str) -> Value {
    json!({"email": ZD_EMAIL, "apiToken": token, "webhookSecret": ZD_SECRET})
}

async fn identities(app: &TestApp, kind: &str) -> u64 {
    entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq(kind))
        .count(&app.db)
        .await
        .unwrap()
}

async fn intercom_webhook(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers: Vec<(&str, String)> = secret
        .map(|s| vec![("x-hub-signature", connectors::intercom::sign(s, &bytes))])
        .unwrap_or_default();
    post_webhook(app, "intercom", id, &bytes, &headers).await
}

async fn zendesk_webhook(
    app: &TestApp,
    id: &str,
    secret: &str,
    timestamp: &str,
    body: &[u8],
) -> reqwest::Response {
    post_webhook(
        app,
        "zendesk",
        id,
        body,
        &[
            (
                "x-zendesk-webhook-signature-timestamp",
                timestamp.to_owned(),
            ),
            (
                "x-zendesk-webhook-signature",
                connectors::zendesk::sign(secret, timestamp, body),
            ),
        ],
    )
    .await
}

#[tokio::test]
async fn intercom_reads_every_page_then_only_what_changed() {
    let (desk, app) = intercom_app().await;
    desk.with(|d| {
        d.items = FakeDesk::generated(320, "acme.io");
        d.per_page = 150;
    });
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "INTERCOM", json!({}), Some(intercom_creds(TOKEN))).await;
    assert!(
        integration(&app, &s, &id).await["webhookUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/webhooks/intercom/{id}"))
    );
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    // 320 opened, every third closed and rated.
    let closed = 320 / 3;
    assert_eq!(signals(&app, Some("intercom_conversation_open")).await, 320);
    assert_eq!(
        signals(&app, Some("intercom_conversation_closed")).await,
        closed as u64
    );
    assert_eq!(
        signals(&app, Some("intercom_conversation_rated")).await,
        closed as u64
    );
    let hits = desk.hits();
    assert_eq!(hits.len(), 3, "320 conversations in pages of 150");
    assert!(
        hits.iter().all(|h| h.method == "POST"
            && h.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(hits[1].body["pagination"]["starting_after"].is_string());
    // People by email, their Intercom contact id remembered.
    assert_eq!(
        entity::contacts::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        160
    );
    assert_eq!(identities(&app, "INTERCOM").await, 160);

    // A conversation closed since: only it is read, and only its closing is new.
    let newest = desk.with(|d| {
        d.hits.clear();
        let item = &mut d.items[0];
        item.state = "closed".into();
        item.updated_at = Utc::now();
        d.items.iter().skip(1).map(|i| i.updated_at).max().unwrap()
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 1);
    let hits = desk.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].body["query"]["value"],
        json!(newest.timestamp()),
        "the cursor is the last update read"
    );
}

#[tokio::test]
async fn intercom_backs_off_on_a_spent_budget_and_stops_on_a_bad_token_until_updated() {
    let (desk, app) = intercom_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "INTERCOM", json!({}), Some(intercom_creds(TOKEN))).await;
    desk.with(|d| {
        d.items = FakeDesk::generated(30, "acme.io");
        d.per_page = 10;
        d.remaining = 2;
        d.reset = Utc::now() + chrono::Duration::seconds(4);
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(
        desk.hits().iter().all(|h| h.status == 200),
        "spent, not exceeded"
    );
    let i = eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert!(i["lastSuccessAt"].is_string());
    assert_eq!(signals(&app, Some("intercom_conversation_open")).await, 30);
    let pages: Vec<_> = desk
        .hits()
        .into_iter()
        .filter(|h| h.status == 200)
        .collect();
    assert_eq!(pages.len(), 3, "the continuation started at the third page");

    // A revoked token: FAILED, ERROR, no retries, until the token is updated.
    desk.with(|d| {
        d.secret = "new-token".into();
        d.hits.clear();
        d.fail.push(("conversations".into(), 503));
    });
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "FAILED");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    assert!(
        i["lastError"]
            .as_str()
            .unwrap()
            .contains("Access Token Invalid"),
        "{i}"
    );
    assert_eq!(
        desk.hits().len(),
        2,
        "the 503 retried once, the 401 not at all"
    );
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": intercom_creds("new-token")}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        run["signalsCreated"], 0,
        "a full re-read makes nothing twice"
    );
}

fn notification(topic: &str, conv: &Value, id: &str) -> Value {
    json!({
        "type": "notification_event", "app_id": "abc", "id": id, "topic": topic,
        "delivery_attempts": 1, "created_at": Utc::now().timestamp(),
        "data": {"type": "notification_event_data", "item": conv},
    })
}

#[tokio::test]
async fn intercom_webhooks_are_verified_and_one_change_is_one_signal() {
    let (desk, app) = intercom_app().await;
    let items = FakeDesk::generated(3, "acme.io");
    desk.with(|d| d.items = items.clone());
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, whsec) = connect(&app, &s, "INTERCOM", json!({}), Some(intercom_creds(TOKEN))).await;
    let conv = items[0].intercom();
    let created = notification("conversation.user.created", &conv, "notif_1");
    assert_eq!(
        intercom_webhook(&app, &id, None, &created).await.status(),
        401
    );
    // DevSignal's own webhook secret is not Intercom's scheme: the client secret signs.
    assert_eq!(
        intercom_webhook(&app, &id, Some(&whsec), &created)
            .await
            .status(),
        401
    );
    assert_eq!(signals(&app, None).await, 0);
    let ping = json!({"type": "notification_event", "topic": "ping", "data": {"item": {"type": "ping", "message": "hi"}}});
    let r = intercom_webhook(&app, &id, Some(CLIENT_SECRET), &ping).await;
    assert_eq!(r.status(), 200);

    let r = intercom_webhook(&app, &id, Some(CLIENT_SECRET), &created).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["created"], 1, "{out}");
    let mut replied = conv.clone();
    replied["conversation_parts"] = json!({"type": "conversation_part.list", "conversation_parts": [{"type": "conversation_part", "id": "part-9", "part_type": "comment"}]});
    let reply = notification("conversation.user.replied", &replied, "notif_2");
    for _ in 0..2 {
        let r = intercom_webhook(&app, &id, Some(CLIENT_SECRET), &reply).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(signals(&app, Some("intercom_conversation_reply")).await, 1);
    let r = intercom_webhook(
        &app,
        &id,
        Some(CLIENT_SECRET),
        &notification("contact.user.tag.created", &conv, "notif_3"),
    )
    .await;
    assert_eq!(r.status(), 202);
    // The sync reads the same conversation: its opening is not made twice.
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(signals(&app, Some("intercom_conversation_open")).await, 3);
}

#[tokio::test]
async fn zendesk_reads_the_export_to_its_end_and_resumes_from_its_cursor() {
    let desk = FakeDesk::zendesk(ZD_EMAIL, ZD_TOKEN).await;
    desk.with(|d| {
        d.items = FakeDesk::generated(250, "globex.com");
        d.per_page = 100;
    });
    let app = spawn_app_with(&[]).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "ZENDESK",
        zendesk_config(&desk),
        Some(zendesk_creds(ZD_TOKEN)),
    )
    .await;
    assert_eq!(
        integration(&app, &s, &id).await["config"],
        json!({"subdomain": "acme", "baseUrl": desk.url})
    );
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(signals(&app, Some("zendesk_ticket_created")).await, 250);
    let solved = (250 / 3) as u64;
    assert_eq!(signals(&app, Some("zendesk_ticket_solved")).await, solved);
    assert_eq!(
        signals(&app, Some("zendesk_satisfaction_rated")).await,
        solved
    );
    assert_eq!(
        signals(&app, Some("zendesk_ticket_updated")).await,
        250 - solved
    );
    let hits = desk.hits();
    assert_eq!(hits.len(), 3);
    assert!(hits[0].param("start_time").is_some());
    assert!(hits[1].param("cursor").is_some() && hits[2].param("cursor").is_some());
    assert_eq!(identities(&app, "ZENDESK").await, 125);
    assert_eq!(
        entity::contacts::Entity::find()
            .filter(entity::contacts::Column::Email.like("%@globex.com"))
            .count(&app.db)
            .await
            .unwrap(),
        125
    );

    // The next run starts at the stored cursor and reads only the ticket solved since.
    desk.with(|d| {
        d.hits.clear();
        let t = &mut d.items[0];
        t.state = "closed".into();
        t.updated_at = Utc::now();
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let hits = desk.hits();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].param("cursor").is_some());
    // Its solving is new; its creation is known.
    assert_eq!(run["signalsCreated"], 1);
    assert_eq!(
        signals(&app, Some("zendesk_ticket_solved")).await,
        solved + 1
    );
}

#[tokio::test]
async fn zendesk_backs_off_on_429_retries_5xx_and_stops_on_bad_credentials() {
    let desk = FakeDesk::zendesk(ZD_EMAIL, ZD_TOKEN).await;
    let app = spawn_app_with(&[]).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "ZENDESK",
        zendesk_config(&desk),
        Some(zendesk_creds(ZD_TOKEN)),
    )
    .await;
    desk.with(|d| {
        d.items = FakeDesk::generated(30, "globex.com");
        d.per_page = 10;
        d.remaining = 2;
        d.reset = Utc::now() + chrono::Duration::seconds(4);
        d.fail.push(("cursor.json".into(), 502));
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(desk.hits().iter().any(|h| h.status == 429));
    assert!(desk.hits().iter().any(|h| h.status == 502));
    eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert_eq!(signals(&app, Some("zendesk_ticket_created")).await, 30);
    let pages: Vec<_> = desk
        .hits()
        .into_iter()
        .filter(|h| h.status == 200)
        .collect();
    assert_eq!(pages.len(), 3, "no page read twice: {pages:?}");

    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": zendesk_creds("revoked")}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["requests"], 1);
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    assert!(
        i["lastError"].as_str().unwrap().contains("authenticate"),
        "{i}"
    );
}

#[tokio::test]
async fn zendesk_webhooks_are_verified_and_find_people_by_their_zendesk_id() {
    let desk = FakeDesk::zendesk(ZD_EMAIL, ZD_TOKEN).await;
    let items = FakeDesk::generated(4, "globex.com");
    desk.with(|d| d.items = items[..2].to_vec());
    let app = spawn_app_with(&[]).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "ZENDESK",
        zendesk_config(&desk),
        Some(zendesk_creds(ZD_TOKEN)),
    )
    .await;
    // The sync knows the requesters (their emails side-loaded).
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let before = signals(&app, None).await;
    // A Zendesk event names only the requester's id.
    let ticket = items[2].zendesk();
    let event = json!({
        "type": "zen:event-type:ticket.created", "account_id": 1, "id": "evt-1",
        "time": Utc::now().to_rfc3339(), "zendesk_event_version": "2022-11-06",
        "subject": format!("zen:ticket:{}", items[2].id), "detail": ticket, "event": {},
    });
    let body = serde_json::to_vec(&event).unwrap();
    let ts = "2026-12-02T10:00:00Z";
    let r = zendesk_webhook(&app, &id, "wrong-secret", ts, &body).await;
    assert_eq!(r.status(), 401);
    // A signature over another timestamp is refused.
    let r = post_webhook(
        &app,
        "zendesk",
        &id,
        &body,
        &[
            (
                "x-zendesk-webhook-signature-timestamp",
                "2026-12-02T10:00:01Z".into(),
            ),
            (
                "x-zendesk-webhook-signature",
                connectors::zendesk::sign(ZD_SECRET, ts, &body),
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(signals(&app, None).await, before);

    let r = zendesk_webhook(&app, &id, ZD_SECRET, ts, &body).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    // The ticket was created, and is solved and rated.
    assert_eq!(out["created"], 3, "{out}");
    let sig = entity::signals::Entity::find()
        .filter(entity::signals::Column::SignalType.eq("zendesk_ticket_created"))
        .filter(
            entity::signals::Column::IdempotencyKey
                .eq(format!("zendesk:ticket:{}:created", items[2].id)),
        )
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    // items[2]'s requester is the same person as items[0]'s (two people for four tickets).
    assert_eq!(items[2].requester_id, items[0].requester_id);
    assert!(sig.contact_id.is_some(), "found by the ZENDESK identity");
    // A redelivery, and then the sync reading the same ticket, make nothing twice.
    let r = zendesk_webhook(&app, &id, ZD_SECRET, ts, &body).await;
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["deduplicated"], 3, "{out}");
    desk.with(|d| d.items.push(items[2].clone()));
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        signals(&app, Some("zendesk_ticket_created")).await,
        3,
        "{run}"
    );
}

#[tokio::test]
async fn support_desks_are_per_tenant_and_run_hourly() {
    let desk = FakeDesk::zendesk(ZD_EMAIL, ZD_TOKEN).await;
    let items = FakeDesk::generated(2, "globex.com");
    let app = spawn_app_with(&[]).await;
    let (a, b) = app.two_tenants().await;
    let (id_a, _) = connect(
        &app,
        &a,
        "ZENDESK",
        zendesk_config(&desk),
        Some(zendesk_creds(ZD_TOKEN)),
    )
    .await;
    let body = serde_json::to_vec(&json!({"type": "ticket.created", "ticket": items[0].zendesk()}))
        .unwrap();
    assert_eq!(
        zendesk_webhook(&app, &id_a, ZD_SECRET, "t", &body)
            .await
            .status(),
        200
    );
    // Created, and updated since.
    assert_eq!(visible_signals(&app, &a).await.len(), 2);
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
    // The hourly entries fan out to due integrations of their kind.
    desk.with(|d| d.items = items.clone());
    for name in ["zendesk-sync-scheduler", "intercom-sync-scheduler"] {
        let def = jobs::registry::find(name).unwrap();
        let job = domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
            .await
            .unwrap()
            .unwrap();
        let done = eventually(Duration::from_secs(20), "the fan-out", || async {
            domain::queue::get(&app.db, job)
                .await
                .unwrap()
                .filter(|j| j.finished_at.is_some())
        })
        .await;
        assert_eq!(done.state, "completed", "{name}");
    }
    eventually(
        Duration::from_secs(30),
        "the scheduled Zendesk run",
        || async {
            let i = integration(&app, &a, &id_a).await;
            i["lastSuccessAt"].is_string().then_some(())
        },
    )
    .await;
    assert!(visible_signals(&app, &a).await.len() > 2);
    assert!(visible_signals(&app, &b).await.is_empty());
}
