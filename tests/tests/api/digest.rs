//! The weekly digest (#18 item 5): `previewDigest` and the Monday email carry the same content
//! for a prepared week — a tier move against last week's snapshot, new contacts, signals by
//! source against the week before — sent once per member who wants it (a rerun sends nothing
//! more), nothing for an organization with nothing new, and a signed unsubscribe link that
//! turns the digest off.

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use devsignal_tests::fakes::smtp::FakeSmtp;
use devsignal_tests::{Session, TestApp, eventually, spawn_app_with};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::alerts::signal;
use crate::crm_accounts::ok;

const PREVIEW: &str = "{ previewDigest { empty subject text content } }";

async fn preview(app: &TestApp, s: &Session) -> Value {
    let r = app.graphql_as(s.token(), PREVIEW, json!({})).await;
    ok(&r)["previewDigest"].clone()
}

/// Runs the Monday cron entry's job and waits until it and the jobs it fanned out are done.
async fn run_digest(app: &TestApp) {
    let def = jobs::registry::find("weekly-digest-scheduler").unwrap();
    let id = domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
        .await
        .unwrap()
        .unwrap();
    eventually(Duration::from_secs(30), "the digest jobs", || async {
        let done = domain::queue::get(&app.db, id)
            .await
            .unwrap()
            .is_some_and(|j| j.state == "completed");
        let waiting = domain::queue::list(
            &app.db,
            &domain::queue::JobFilter {
                queue: Some("weekly-digest".into()),
                state: Some("waiting".into()),
                ..Default::default()
            },
            &Default::default(),
        )
        .await
        .unwrap()
        .items
        .len();
        (done && waiting == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_digest_says_what_moved_and_is_sent_once_to_members_who_want_it() {
    let smtp = FakeSmtp::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url)]).await;
    let s = app.register("owner@digest.test", "Digest").await;
    let quiet = app.register("owner@quiet.test", "Quiet").await;

    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    signal(&app, &s, "acme.io", "bo", "repo_fork").await;
    signal(&app, &s, "acme.io", "ana", "issue_opened").await;
    // Once scored, the account had a snapshot eight days ago: INACTIVE, 0.
    let account: Uuid = eventually(Duration::from_secs(20), "the score", || async {
        let r = app
            .graphql_as(
                s.token(),
                "{ accounts(first: 5) { edges { node { id score { score } } } } }",
                json!({}),
            )
            .await;
        let e = ok(&r)["accounts"]["edges"][0]["node"].clone();
        (!e["score"].is_null()).then(|| e["id"].as_str().unwrap().parse().unwrap())
    })
    .await;
    entity::score_snapshots::ActiveModel {
        organization_id: Set(s.organization_id.parse().unwrap()),
        account_id: Set(account),
        day: Set((Utc::now() - Days::days(8)).date_naive()),
        score: Set(0),
        tier: Set("INACTIVE".into()),
        signal_count: Set(0),
        user_count: Set(0),
        captured_at: Set(Utc::now() - Days::days(8)),
    }
    .insert(&app.db)
    .await
    .unwrap();

    let p = preview(&app, &s).await;
    assert_eq!(p["empty"], false);
    let c = &p["content"];
    assert_eq!(c["signalsThisWeek"], 3, "{c}");
    assert_eq!(c["signalsLastWeek"], 0);
    assert_eq!(c["signalsBySource"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["signalsBySource"][0]["thisWeek"], 3);
    assert_eq!(c["newContactsCount"], 2);
    assert_eq!(c["tierUps"][0]["accountId"], account.to_string());
    assert_eq!(c["tierUps"][0]["fromTier"], "INACTIVE");
    assert_eq!(c["tierDowns"], json!([]));
    assert_eq!(c["scoreMovers"][0]["fromScore"], 0);
    assert!(p["subject"].as_str().unwrap().contains("3 signals"), "{p}");
    assert!(p["text"].as_str().unwrap().contains("Rose a tier"), "{p}");
    // Nothing happened in the other organization.
    assert_eq!(preview(&app, &quiet).await["empty"], true);

    run_digest(&app).await;
    let mails = eventually(Duration::from_secs(30), "the digest email", || async {
        let m = smtp.mails();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(mails.len(), 1, "only the organization with news gets one");
    assert_eq!(mails[0].to, vec!["owner@digest.test"]);
    let subject = mails[0].header("Subject").unwrap();
    assert_eq!(
        subject,
        format!("[DevSignal] {}", p["subject"].as_str().unwrap())
    );
    let body = mails[0].decoded();
    assert!(
        body.contains("Rose a tier") && body.contains("New contacts: 2"),
        "{body}"
    );
    assert!(
        body.contains(&format!("/accounts/{account}")),
        "links into the dashboard"
    );

    // A rerun the same week sends nothing more.
    run_digest(&app).await;
    let r = app
        .graphql_as(s.token(), "{ alertDeliveries { kind status } }", json!({}))
        .await;
    assert_eq!(
        ok(&r)["alertDeliveries"],
        json!([{"kind": "DIGEST", "status": "SENT"}])
    );
    assert_eq!(smtp.mails().len(), 1);

    // The signed link turns the digest off.
    let h = mails[0].header("List-Unsubscribe").unwrap();
    let url = h.trim_start_matches('<').trim_end_matches('>');
    let path = &url[url.find("/api/v1/").unwrap()..];
    let resp = app
        .client
        .post(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = app
        .graphql_as(
            s.token(),
            "{ notificationPreferences { digest alertEmails } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["notificationPreferences"],
        json!({"digest": "NEVER", "alertEmails": true})
    );
}
