//! LinkedIn: no API to sync (the cron entry says so, `syncIntegration` refuses), a signed
//! webhook for page views, follows, engagement and employee activity (refused without the
//! signature or with a bad event, nothing stored; a redelivery is one signal), and the import
//! of people by CSV or JSON through GraphQL (contacts with their LinkedIn identity, title and
//! company; a bad row refuses the whole import naming it; no signals), per tenant.

use std::time::Duration;

use devsignal_tests::connectors::{
    SYNC, connect, integration, ok, post_signed, post_webhook, signals, visible_signals,
};
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const PAGE: &str = "https://www.linkedin.com/company/vendor";
const IMPORT: &str = "mutation($id: ID!, $format: ImportFormat!, $data: String!) { importLinkedInContacts(integrationId: $id, format: $format, data: $data) { rows contacts accounts } }";

async fn linkedin(app: &TestApp, s: &devsignal_tests::Session) -> (String, String) {
    connect(app, s, "LINKEDIN", json!({"companyPageUrl": PAGE}), None).await
}

async fn contacts(app: &TestApp) -> u64 {
    entity::contacts::Entity::find()
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn linkedin_is_not_synced_and_its_cron_entry_says_why() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = linkedin(&app, &s).await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "CONNECTED");
    assert!(i["nextSyncAt"].is_null(), "{i}");
    assert!(
        i["webhookUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/webhooks/linkedin/{id}"))
    );
    let resp = app.graphql_as(s.token(), SYNC, json!({"id": id})).await;
    assert_code(&resp, "BAD_USER_INPUT");
    assert!(resp.to_string().contains("webhook"), "{resp}");

    let def = jobs::registry::find("linkedin-sync-scheduler").unwrap();
    let job_id = domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
        .await
        .unwrap()
        .unwrap();
    let job = eventually(Duration::from_secs(20), "the job to finish", || async {
        domain::queue::get(&app.db, job_id)
            .await
            .unwrap()
            .filter(|j| j.finished_at.is_some())
    })
    .await;
    assert_eq!(job.state, "skipped");
    assert!(
        job.last_error.as_deref().unwrap().contains("no API"),
        "{job:?}"
    );

    for (config, field) in [
        (json!({}), "config.companyPageUrl"),
        (
            json!({"companyPageUrl": "https://www.linkedin.com/in/someone"}),
            "config.companyPageUrl",
        ),
        (
            json!({"companyPageUrl": PAGE, "token": "x"}),
            "config.token",
        ),
    ] {
        let resp = app
            .graphql_as(
                s.token(),
                devsignal_tests::connectors::CONNECT,
                json!({"input": {"kind": "LINKEDIN", "config": config}}),
            )
            .await;
        assert_code(&resp, "BAD_USER_INPUT");
        assert!(resp.to_string().contains(field), "{field}: {resp}");
    }
}

#[tokio::test]
async fn the_webhook_is_verified_and_makes_one_signal_per_event() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, secret) = linkedin(&app, &s).await;
    let body = json!({"events": [
        {"type": "page_view", "id": "ev-1", "timestamp": "2026-11-30T10:00:00Z",
         "person": {"linkedinUrl": "https://www.linkedin.com/in/ana-lee/", "name": "Ana Lee",
                    "title": "CTO", "company": "Acme", "companyDomain": "acme.io"}},
        {"type": "linkedin_company_follow", "timestamp": "2026-11-30T11:00:00Z",
         "person": {"email": "bo@acme.io"}},
        {"type": "post_engagement", "id": "ev-3", "person": {"linkedinUrl": "https://linkedin.com/in/ana-lee"},
         "details": {"reaction": "like", "post": "urn:li:activity:1"}}
    ]});
    assert_eq!(
        post_signed(&app, "linkedin", &id, None, &body)
            .await
            .status(),
        401
    );
    assert_eq!(
        post_signed(&app, "linkedin", &id, Some("whsec_wrong"), &body)
            .await
            .status(),
        401
    );
    // Signed but tampered with after signing: refused.
    let bytes = serde_json::to_vec(&body).unwrap();
    let sig = connectors::webhook::sign(&secret, &bytes);
    let mut tampered = bytes.clone();
    tampered.push(b' ');
    let r = post_webhook(
        &app,
        "linkedin",
        &id,
        &tampered,
        &[("x-hub-signature-256", sig)],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(signals(&app, None).await, 0);

    let r = post_signed(&app, "linkedin", &id, Some(&secret), &body).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["created"], 3, "{out}");
    assert_eq!(signals(&app, Some("linkedin_page_view")).await, 1);
    assert_eq!(signals(&app, Some("linkedin_company_follow")).await, 1);
    assert_eq!(signals(&app, Some("linkedin_post_engagement")).await, 1);
    // Ana's two events are one contact (the profile URL normalised), at Acme, with her title.
    let ana = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("LINKEDIN"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(ana.len(), 1, "{ana:?}");
    let contact = entity::contacts::Entity::find_by_id(ana[0].contact_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.title.as_deref(), Some("CTO"));
    let company = entity::companies::Entity::find_by_id(contact.account_id.unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(company.domain.as_deref(), Some("acme.io"));

    // A redelivery makes nothing new.
    let r = post_signed(&app, "linkedin", &id, Some(&secret), &body).await;
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["deduplicated"], 3, "{out}");
    assert_eq!(signals(&app, None).await, 3);
    // A bad event refuses the delivery, naming it; nothing of it is stored.
    let bad = json!({"events": [
        {"type": "page_view", "id": "ev-9", "person": {"email": "cy@acme.io"}},
        {"type": "poke", "id": "ev-10", "person": {"email": "cy@acme.io"}}
    ]});
    let r = post_signed(&app, "linkedin", &id, Some(&secret), &bad).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("events.1.type"),
        "{err}"
    );
    let no_key = json!({"type": "page_view", "person": {"email": "cy@acme.io"}});
    let r = post_signed(&app, "linkedin", &id, Some(&secret), &no_key).await;
    assert_eq!(r.status(), 400);
    assert_eq!(signals(&app, None).await, 3);
}

#[tokio::test]
async fn an_import_makes_contacts_with_their_linkedin_identity_and_no_signals() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = linkedin(&app, &s).await;
    let csv = "First Name,Last Name,LinkedIn URL,Email Address,Position,Company,Website\n\
               Ana,Lee,https://www.linkedin.com/in/ana-lee,ana@acme.io,CTO,Acme,acme.io\n\
               Bo,Chen,https://www.linkedin.com/in/bo-chen,,Engineer,Acme,acme.io\n\
               Cy,Diaz,linkedin.com/in/cy-diaz,,VP Eng,Globex,globex.com\n";
    let resp = app
        .graphql_as(
            s.token(),
            IMPORT,
            json!({"id": id, "format": "CSV", "data": csv}),
        )
        .await;
    let r = &ok(&resp)["importLinkedInContacts"];
    assert_eq!(r, &json!({"rows": 3, "contacts": 3, "accounts": 2}));
    assert_eq!(contacts(&app).await, 3);
    assert_eq!(signals(&app, None).await, 0, "an import is not activity");
    let ids = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("LINKEDIN"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(ids, 3);
    let bo = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::FirstName.eq("Bo"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bo.title.as_deref(), Some("Engineer"));

    // JSON, with one person already known by profile: found, not made twice.
    let data = json!([
        {"linkedinUrl": "https://www.linkedin.com/in/ana-lee/", "title": "CTO"},
        {"profileUrl": "https://www.linkedin.com/in/dee-fox", "name": "Dee Fox", "email": "dee@initech.io"}
    ])
    .to_string();
    let resp = app
        .graphql_as(
            s.token(),
            IMPORT,
            json!({"id": id, "format": "JSON", "data": data}),
        )
        .await;
    assert_eq!(ok(&resp)["importLinkedInContacts"]["contacts"], 2);
    assert_eq!(contacts(&app).await, 4);

    // One bad row refuses the import, naming it, and writes nothing.
    let bad = "name,linkedinUrl,email\nEve,https://www.linkedin.com/in/eve,eve@x.io\nFay,https://example.com/fay,\nGus,https://www.linkedin.com/in/gus,not-an-email\n";
    let resp = app
        .graphql_as(
            s.token(),
            IMPORT,
            json!({"id": id, "format": "CSV", "data": bad}),
        )
        .await;
    assert_code(&resp, "BAD_USER_INPUT");
    let text = resp.to_string();
    assert!(text.contains("rows.1.linkedinUrl"), "{text}");
    assert!(text.contains("rows.2.email"), "{text}");
    assert_eq!(contacts(&app).await, 4);
    let resp = app
        .graphql_as(
            s.token(),
            IMPORT,
            json!({"id": id, "format": "CSV", "data": "name,email\nEve,eve@x.io\n"}),
        )
        .await;
    assert_code(&resp, "BAD_USER_INPUT");
    let resp = app
        .graphql_as(
            s.token(),
            IMPORT,
            json!({"id": id, "format": "JSON", "data": "{not json"}),
        )
        .await;
    assert_code(&resp, "BAD_USER_INPUT");
}

#[tokio::test]
async fn linkedin_webhooks_and_imports_are_per_tenant() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let (id_a, secret_a) = linkedin(&app, &a).await;
    let (_, secret_b) = linkedin(&app, &b).await;
    let body = json!({"type": "page_view", "id": "e1", "person": {"email": "ana@acme.io"}});
    assert_eq!(
        post_signed(&app, "linkedin", &id_a, Some(&secret_b), &body)
            .await
            .status(),
        401
    );
    assert_eq!(
        post_signed(&app, "linkedin", &id_a, Some(&secret_a), &body)
            .await
            .status(),
        200
    );
    assert_eq!(visible_signals(&app, &a).await.len(), 1);
    assert!(visible_signals(&app, &b).await.is_empty());
    // B cannot import into A's integration, and a member of A cannot import at all.
    let csv = "linkedinUrl\nhttps://www.linkedin.com/in/zed\n";
    assert_code(
        &app.graphql_as(
            b.token(),
            IMPORT,
            json!({"id": id_a, "format": "CSV", "data": csv}),
        )
        .await,
        "NOT_FOUND",
    );
    let resp = app
        .graphql_as(
            b.token(),
            "{ contacts(first: 10) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&resp)["contacts"]["edges"], json!([]));
    // An unknown kind or integration is 404, not a 500.
    assert_eq!(
        post_signed(&app, "myspace", &id_a, Some(&secret_a), &body)
            .await
            .status(),
        404
    );
    assert_eq!(
        post_signed(&app, "posthog", &id_a, Some(&secret_a), &body)
            .await
            .status(),
        404,
        "the kind in the path is the integration's"
    );
    assert_eq!(
        post_signed(&app, "npm", &id_a, Some(&secret_a), &body)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn inbound_webhooks_are_held_to_the_webhook_rate_limit() {
    let app = devsignal_tests::spawn_app_with(&[("RATE_LIMIT_WEBHOOK", "3")]).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, secret) = linkedin(&app, &s).await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let body =
            json!({"type": "page_view", "id": format!("e{n}"), "person": {"email": "ana@acme.io"}});
        statuses.push(
            post_signed(&app, "linkedin", &id, Some(&secret), &body)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(signals(&app, None).await, 3);
}
