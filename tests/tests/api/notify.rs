//! Alert delivery channels and preferences (#18 item 4): a rule's emails (through a local SMTP
//! server: HTML and text, a signed one-click unsubscribe link that works) and Slack posts (Block
//! Kit, to a local fake incoming webhook whose URL passes the webhook target checks), each
//! recorded with its outcome; a failed email or post retries alone as a job while the others
//! and the in-app notification go through; members' preferences (in-app, alert emails, digest);
//! `notificationCreated` live; another organization sees none of it.

use std::time::Duration;

use devsignal_tests::fakes::slack::FakeSlack;
use devsignal_tests::fakes::smtp::{FakeSmtp, Mail};
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app_with};
use serde_json::{Value, json};

use crate::alerts::{create_rule, evaluated, notifications, signal};
use crate::crm_accounts::ok;

const DELIVERIES: &str = "query($rule: ID) { alertDeliveries(ruleId: $rule) { id kind channel ruleId accountId userId target status attempts lastError sentAt } }";
const PREFS: &str = "{ notificationPreferences { inApp alertEmails digest } }";
const SET_PREFS: &str = "mutation($input: NotificationPreferencesInput!) { updateNotificationPreferences(input: $input) { inApp alertEmails digest } }";

async fn app_with_mail(smtp: &FakeSmtp) -> TestApp {
    spawn_app_with(&[
        ("SMTP_URL", &smtp.url),
        ("EMAIL_FROM", "alerts@devsignal.test"),
    ])
    .await
}

async fn deliveries(app: &TestApp, s: &Session) -> Vec<Value> {
    let r = app.graphql_as(s.token(), DELIVERIES, json!({})).await;
    ok(&r)["alertDeliveries"].as_array().unwrap().clone()
}

/// Waits until every delivery so far is `status`, and returns them.
async fn all_are(app: &TestApp, s: &Session, n: usize, status: &str) -> Vec<Value> {
    eventually(
        Duration::from_secs(30),
        "the deliveries to settle",
        || async {
            let d = deliveries(app, s).await;
            (d.len() == n && d.iter().all(|x| x["status"] == status)).then_some(d)
        },
    )
    .await
}

async fn mails(smtp: &FakeSmtp, n: usize) -> Vec<Mail> {
    eventually(Duration::from_secs(30), "the emails", || async {
        let m = smtp.mails();
        (m.len() >= n).then_some(m)
    })
    .await
}

/// The unsubscribe URL's path and query, from the `List-Unsubscribe` header.
fn unsubscribe_path(mail: &Mail) -> String {
    let h = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = h.trim_start_matches('<').trim_end_matches('>');
    let at = url.find("/api/v1/").expect("an API path");
    url[at..].to_owned()
}

#[tokio::test]
async fn an_alert_goes_by_email_and_to_slack_and_each_delivery_is_recorded() {
    let smtp = FakeSmtp::start().await;
    let slack = FakeSlack::start().await;
    let app = app_with_mail(&smtp).await;
    let s = app.register("owner@mail.test", "Mail").await;
    let rule = create_rule(
        &app,
        &s,
        json!({"name": "Stars", "trigger": "NEW_SIGNAL", "signalTypes": ["repo_star"],
               "channels": {"email": true, "slackWebhookUrl": slack.url}}),
    )
    .await;
    let r = app
        .graphql_as(
            s.token(),
            "{ alertRules { channels { inApp email slack } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["alertRules"][0]["channels"],
        json!({"inApp": true, "email": true, "slack": true})
    );
    assert!(
        !r.to_string().contains(&slack.url),
        "the Slack URL is never shown"
    );

    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    evaluated(&app).await;
    let sent = all_are(&app, &s, 2, "SENT").await;
    let email = sent.iter().find(|d| d["channel"] == "EMAIL").unwrap();
    assert_eq!(email["target"], "owner@mail.test");
    assert_eq!(email["kind"], "ALERT");
    assert_eq!(email["ruleId"], rule["id"]);
    assert_eq!(email["userId"].as_str(), Some(s.user_id.as_str()));
    assert_eq!(email["attempts"], 1);
    assert!(!email["sentAt"].is_null());
    assert!(sent.iter().any(|d| d["channel"] == "SLACK"));

    let m = mails(&smtp, 1).await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].to, vec!["owner@mail.test"]);
    assert_eq!(m[0].from, "alerts@devsignal.test");
    let subject = m[0].header("Subject").unwrap();
    assert!(subject.starts_with("[DevSignal]"), "{subject}");
    let body = m[0].decoded();
    assert!(body.contains("multipart/alternative"), "text and HTML");
    assert!(body.contains("text/plain") && body.contains("text/html"));
    assert!(body.contains("Account: Acme"), "{body}");
    assert!(body.contains("/accounts/"), "a link into the dashboard");
    assert_eq!(
        m[0].header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    let posts = slack.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["blocks"][0]["type"], "header");
    assert!(posts[0]["text"].as_str().unwrap().contains("Acme"));
    // The in-app notification is there too.
    assert_eq!(
        notifications(&app, &s).await["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_unsubscribe_link_turns_alert_emails_off_with_one_click() {
    let smtp = FakeSmtp::start().await;
    let app = app_with_mail(&smtp).await;
    let s = app.register("owner@unsub.test", "Unsub").await;
    create_rule(
        &app,
        &s,
        json!({"name": "Any", "trigger": "NEW_SIGNAL", "cooldownMinutes": 0,
               "channels": {"email": true}}),
    )
    .await;
    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    let m = mails(&smtp, 1).await;
    let path = unsubscribe_path(&m[0]);
    assert!(m[0].decoded().contains("Unsubscribe from alert emails"));

    // Opening the link (what a mail scanner does too) changes nothing: it shows a button.
    let page = app.get(&path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    let r = app.graphql_as(s.token(), PREFS, json!({})).await;
    assert_eq!(ok(&r)["notificationPreferences"]["alertEmails"], true);

    // The one-click POST (RFC 8058) unsubscribes.
    let resp = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = app.graphql_as(s.token(), PREFS, json!({})).await;
    assert_eq!(
        ok(&r)["notificationPreferences"],
        json!({"inApp": true, "alertEmails": false, "digest": "WEEKLY"})
    );

    // The next alert reaches the app but sends no email.
    signal(&app, &s, "acme.io", "bo", "repo_star").await;
    evaluated(&app).await;
    eventually(
        Duration::from_secs(20),
        "the second notification",
        || async {
            (notifications(&app, &s).await["nodes"]
                .as_array()
                .unwrap()
                .len()
                == 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(deliveries(&app, &s).await.len(), 1);
    assert_eq!(smtp.mails().len(), 1);

    // A forged or altered token is refused and changes nothing.
    let forged = path.replace("token=", "token=x");
    assert_eq!(app.get(&forged).await.status(), 400);
    let resp = app
        .client
        .post(format!("{}{forged}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_failed_email_or_slack_post_retries_alone() {
    let smtp = FakeSmtp::start().await;
    let slack = FakeSlack::start().await;
    smtp.refuse(1);
    slack.fail(1);
    let app = app_with_mail(&smtp).await;
    let s = app.register("owner@retry.test", "Retry").await;
    create_rule(
        &app,
        &s,
        json!({"name": "Any", "trigger": "NEW_SIGNAL",
               "channels": {"email": true, "slackWebhookUrl": slack.url}}),
    )
    .await;
    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    evaluated(&app).await;
    // The in-app notification does not wait for them.
    assert_eq!(
        notifications(&app, &s).await["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Both first attempts fail and are recorded, still pending.
    let failed = eventually(Duration::from_secs(20), "the failed attempts", || async {
        let d = deliveries(&app, &s).await;
        (d.len() == 2 && d.iter().all(|x| x["attempts"] == 1)).then_some(d)
    })
    .await;
    for d in &failed {
        assert_eq!(d["status"], "PENDING", "{d}");
    }
    let email = failed.iter().find(|d| d["channel"] == "EMAIL").unwrap();
    assert!(
        email["lastError"].as_str().unwrap().contains("451"),
        "{email}"
    );
    let post = failed.iter().find(|d| d["channel"] == "SLACK").unwrap();
    assert!(
        post["lastError"].as_str().unwrap().contains("500"),
        "{post}"
    );
    // Each retries as its own job and goes through.
    let sent = all_are(&app, &s, 2, "SENT").await;
    assert!(
        sent.iter()
            .all(|d| d["attempts"] == 2 && d["lastError"].is_null())
    );
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(slack.posts().len(), 1);
}

#[tokio::test]
async fn slack_urls_pass_the_webhook_target_checks() {
    let app = spawn_app_with(&[("WEBHOOK_ALLOW_PRIVATE", "")]).await;
    let s = app.register("owner@targets.test", "Targets").await;
    for url in [
        "http://127.0.0.1:9/services/x",
        "not a url",
        "http://169.254.169.254/x",
    ] {
        let r = app
            .graphql_as(
                s.token(),
                "mutation($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }",
                json!({"input": {"name": "S", "trigger": "NEW_SIGNAL",
                                  "channels": {"slackWebhookUrl": url}}}),
            )
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert!(
            r.to_string().contains("input.channels.slackWebhookUrl"),
            "{url}: {r}"
        );
    }
    let r = app
        .graphql_as(s.token(), "{ alertRules { id } }", json!({}))
        .await;
    assert_eq!(ok(&r)["alertRules"], json!([]), "nothing half-written");
}

#[tokio::test]
async fn preferences_are_each_members_own_and_in_app_can_be_turned_off() {
    let smtp = FakeSmtp::start().await;
    let app = app_with_mail(&smtp).await;
    let s = app.register("owner@prefs.test", "Prefs").await;
    let r = app.graphql_as(s.token(), PREFS, json!({})).await;
    assert_eq!(
        ok(&r)["notificationPreferences"],
        json!({"inApp": true, "alertEmails": true, "digest": "WEEKLY"})
    );
    let r = app
        .graphql_as(
            s.token(),
            SET_PREFS,
            json!({"input": {"inApp": false, "digest": "NEVER"}}),
        )
        .await;
    assert_eq!(
        ok(&r)["updateNotificationPreferences"],
        json!({"inApp": false, "alertEmails": true, "digest": "NEVER"})
    );
    create_rule(
        &app,
        &s,
        json!({"name": "Any", "trigger": "NEW_SIGNAL", "channels": {"email": true}}),
    )
    .await;
    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    evaluated(&app).await;
    // Email still comes; the app stays quiet for this member.
    mails(&smtp, 1).await;
    assert_eq!(notifications(&app, &s).await["nodes"], json!([]));

    // Preferences belong to members: an API key has none.
    let key = app.api_key(&s, &["admin"]).await;
    let r = app.graphql_as(Some(&key), PREFS, json!({})).await;
    assert_code(&r, "FORBIDDEN");

    // Another organization sees none of the deliveries, and its member's preferences are
    // separate.
    let other = app.register("owner@elsewhere.test", "Elsewhere").await;
    assert_eq!(deliveries(&app, &other).await, Vec::<Value>::new());
    let r = app.graphql_as(other.token(), PREFS, json!({})).await;
    assert_eq!(ok(&r)["notificationPreferences"]["inApp"], true);
    let r = app
        .graphql_as(
            other.token(),
            DELIVERIES,
            json!({"rule": deliveries(&app, &s).await[0]["ruleId"]}),
        )
        .await;
    assert_eq!(ok(&r)["alertDeliveries"], json!([]));
}

#[tokio::test]
async fn notification_created_streams_the_members_new_notifications() {
    let app = spawn_app_with(&[]).await;
    let s = app.register("owner@live-notify.test", "LiveNotify").await;
    let other = app.register("owner@live-other.test", "LiveOther").await;
    create_rule(&app, &s, json!({"name": "Any", "trigger": "NEW_SIGNAL"})).await;
    create_rule(
        &app,
        &other,
        json!({"name": "Any", "trigger": "NEW_SIGNAL"}),
    )
    .await;

    let mut ws = app.ws("graphql-transport-ws").await;
    let ack = ws
        .init(json!({"Authorization": format!("Bearer {}", s.access_token)}))
        .await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.subscribe(
        "n",
        "subscription { notificationCreated { id kind title account { domain } } }",
        json!({}),
    )
    .await;
    eventually(Duration::from_secs(10), "the subscription", || async {
        (app.state.live.subscribers() >= 1).then_some(())
    })
    .await;
    // The other organization's alert is not heard; this one's is.
    signal(&app, &other, "elsewhere.io", "zed", "repo_star").await;
    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    let msg = ws.next_data().await;
    let n = &msg["data"]["notificationCreated"];
    assert_eq!(n["kind"], "ALERT", "{msg}");
    assert_eq!(n["account"]["domain"], "acme.io", "{msg}");
    let listed = notifications(&app, &s).await;
    assert_eq!(listed["nodes"][0]["id"], n["id"]);

    // An API key cannot follow a member's notifications.
    let key = app.api_key(&s, &["admin"]).await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.init(json!({"Authorization": format!("Bearer {key}")}))
        .await;
    ws.subscribe(
        "k",
        "subscription { notificationCreated { id } }",
        json!({}),
    )
    .await;
    let msg = ws.next(Duration::from_secs(10)).await.expect("an answer");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );
}
