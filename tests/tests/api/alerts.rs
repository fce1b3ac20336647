//! Alert rules (#18): CRUD and its checks (ADMIN); each trigger fires on exactly the case it
//! names — SCORE_THRESHOLD on crossing only, SCORE_RISE/SCORE_DROP against score history,
//! TIER_CHANGED, NEW_SIGNAL of given types — filters, cooldown per (rule, account), evaluation
//! from the event log exactly once however many evaluators run, in-app notifications per member
//! (list, unread, mark read) and `alert.triggered`; another organization sees and fires none.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const CREATE: &str = "mutation($input: AlertRuleInput!) { createAlertRule(input: $input) { id name trigger threshold percent withinDays signalTypes toTiers filter { tiers tags accountId } recipientIds cooldownMinutes enabled } }";
const NOTIFICATIONS: &str = "query($unread: Boolean, $first: Int, $after: ID) { notifications(unread: $unread, first: $first, after: $after) { unreadCount hasNextPage endCursor nodes { id kind title body data read account { domain } ruleId } } }";
const INGEST: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded } } }";

pub(crate) async fn create_rule(app: &TestApp, s: &Session, input: Value) -> Value {
    let r = app
        .graphql_as(s.token(), CREATE, json!({"input": input}))
        .await;
    ok(&r)["createAlertRule"].clone()
}

pub(crate) async fn signal(app: &TestApp, s: &Session, domain: &str, who: &str, ty: &str) {
    let r = app
        .graphql_as(
            s.token(),
            INGEST,
            json!({"inputs": [{"type": ty, "actor": {"email": format!("{who}@{domain}")},
                               "metadata": {"n": Uuid::new_v4().to_string()}}]}),
        )
        .await;
    assert_eq!(ok(&r)["ingestSignals"]["summary"]["succeeded"], 1, "{r}");
}

pub(crate) async fn notifications(app: &TestApp, s: &Session) -> Value {
    let r = app
        .graphql_as(s.token(), NOTIFICATIONS, json!({"first": 100}))
        .await;
    ok(&r)["notifications"].clone()
}

/// Waits until every event so far was evaluated (the alert cursor reached the log's end).
pub(crate) async fn evaluated(app: &TestApp) {
    eventually(
        Duration::from_secs(20),
        "alerts to catch up with the log",
        || async {
            let end = domain::events::latest_seq_all(&app.db).await.unwrap();
            let cursor = entity::webhook_cursor::Entity::find_by_id("alerts".to_owned())
                .one(&app.db)
                .await
                .unwrap()
                .map(|c| c.last_seq);
            (cursor.is_some_and(|c| c >= end)).then_some(())
        },
    )
    .await;
}

/// Waits until the account at `domain` has a score and every rescore so far was evaluated.
async fn settled(app: &TestApp, s: &Session, domain: &str) -> (Uuid, i64) {
    let scored = eventually(
        Duration::from_secs(20),
        "the account to be scored",
        || async {
            let r = app
                .graphql_as(
                    s.token(),
                    "{ accounts(first: 50) { edges { node { id domain score { score } } } } }",
                    json!({}),
                )
                .await;
            ok(&r)["accounts"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["node"]["domain"] == domain && !e["node"]["score"].is_null())
                .map(|e| {
                    (
                        Uuid::parse_str(e["node"]["id"].as_str().unwrap()).unwrap(),
                        e["node"]["score"]["score"].as_i64().unwrap(),
                    )
                })
        },
    )
    .await;
    // No rescore left waiting.
    eventually(Duration::from_secs(20), "rescores to finish", || async {
        let left = entity::rescore_requests::Entity::find()
            .count(&app.db)
            .await
            .unwrap();
        (left == 0).then_some(())
    })
    .await;
    evaluated(app).await;
    scored
}

fn titles(n: &Value) -> Vec<String> {
    n["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rules_are_created_read_updated_and_deleted_by_admins_with_checks() {
    let app = spawn_app().await;
    let s = app.register("owner@alerts.test", "Alerts").await;
    let rule = create_rule(
        &app,
        &s,
        json!({"name": " Hot accounts ", "trigger": "TIER_CHANGED", "toTiers": ["HOT"],
               "filter": {"tags": ["vip"]}}),
    )
    .await;
    assert_eq!(rule["name"], "Hot accounts");
    assert_eq!(rule["toTiers"], json!(["HOT"]));
    assert_eq!(rule["filter"]["tags"], json!(["vip"]));
    assert_eq!(rule["cooldownMinutes"], 1440);
    assert_eq!(rule["enabled"], true);
    assert_eq!(rule["withinDays"], Value::Null);
    let drop = create_rule(
        &app,
        &s,
        json!({"name": "Drops", "trigger": "SCORE_DROP", "percent": 25.0}),
    )
    .await;
    assert_eq!(drop["withinDays"], 7);

    // Each check names its field.
    for (input, field) in [
        (
            json!({"name": "t", "trigger": "SCORE_THRESHOLD"}),
            "input.threshold",
        ),
        (
            json!({"name": "t", "trigger": "SCORE_THRESHOLD", "threshold": 101}),
            "input.threshold",
        ),
        (
            json!({"name": "r", "trigger": "SCORE_RISE"}),
            "input.percent",
        ),
        (
            json!({"name": "r", "trigger": "SCORE_RISE", "percent": 10.0, "withinDays": 91}),
            "input.withinDays",
        ),
        (json!({"name": "", "trigger": "NEW_SIGNAL"}), "input.name"),
        (
            json!({"name": "n", "trigger": "NEW_SIGNAL", "cooldownMinutes": -1}),
            "input.cooldownMinutes",
        ),
        (
            json!({"name": "n", "trigger": "TIER_CHANGED", "signalTypes": ["repo_star"]}),
            "input.signalTypes",
        ),
        (
            json!({"name": "n", "trigger": "NEW_SIGNAL", "recipientIds": [Uuid::new_v4()]}),
            "input.recipientIds",
        ),
        (
            json!({"name": "n", "trigger": "NEW_SIGNAL", "filter": {"accountId": Uuid::new_v4()}}),
            "input.filter.accountId",
        ),
        (
            json!({"name": "n", "trigger": "NEW_SIGNAL", "filter": {"accountId": "nope"}}),
            "input.filter.accountId",
        ),
    ] {
        let r = app
            .graphql_as(s.token(), CREATE, json!({"input": input}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        let fields: Vec<&str> = r["errors"][0]["extensions"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{input}: {r}");
    }

    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!, $input: AlertRuleInput!) { updateAlertRule(id: $id, input: $input) { id name trigger threshold enabled cooldownMinutes } }",
            json!({"id": rule["id"], "input": {"name": "Crossing 70", "trigger": "SCORE_THRESHOLD", "threshold": 70, "enabled": false, "cooldownMinutes": 0}}),
        )
        .await;
    let updated = &ok(&r)["updateAlertRule"];
    assert_eq!(
        (
            &updated["id"],
            &updated["trigger"],
            &updated["threshold"],
            &updated["enabled"]
        ),
        (
            &rule["id"],
            &json!("SCORE_THRESHOLD"),
            &json!(70),
            &json!(false)
        )
    );
    let r = app
        .graphql_as(s.token(), "{ alertRules { id name } }", json!({}))
        .await;
    let names: Vec<&str> = ok(&r)["alertRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Crossing 70", "Drops"]);

    // Members may not manage rules.
    let member = app.add_member(&s, "member@alerts.test", "MEMBER").await;
    let r = app
        .graphql_as(member.token(), "{ alertRules { id } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            member.token(),
            CREATE,
            json!({"input": {"name": "n", "trigger": "NEW_SIGNAL"}}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");

    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { deleteAlertRule(id: $id) }",
            json!({"id": rule["id"]}),
        )
        .await;
    assert_eq!(ok(&r)["deleteAlertRule"], true);
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { deleteAlertRule(id: $id) }",
            json!({"id": rule["id"]}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    let r = app
        .graphql_as(
            s.token(),
            "{ auditLog(first: 20) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions = r.to_string();
    for a in [
        "alert_rule.created",
        "alert_rule.updated",
        "alert_rule.deleted",
    ] {
        assert!(actions.contains(a), "{a} missing from the audit log: {r}");
    }
}

#[tokio::test]
async fn a_threshold_fires_on_the_crossing_only_and_new_signals_of_their_types() {
    let app = spawn_app().await;
    let s = app.register("cross@alerts.test", "Crossing").await;
    // Armed before any event: the first score of an account crosses from no score.
    create_rule(
        &app,
        &s,
        json!({"name": "Scored", "trigger": "SCORE_THRESHOLD", "threshold": 1, "cooldownMinutes": 0}),
    )
    .await;
    create_rule(
        &app,
        &s,
        json!({"name": "Stars", "trigger": "NEW_SIGNAL", "signalTypes": ["github_star"]}),
    )
    .await;
    signal(&app, &s, "acme.io", "ann", "api_call").await;
    settled(&app, &s, "acme.io").await;
    let n = notifications(&app, &s).await;
    assert_eq!(titles(&n).len(), 1, "{n}");
    assert!(titles(&n)[0].starts_with("Acme crossed 1"), "{n}");
    assert_eq!(n["nodes"][0]["account"]["domain"], "acme.io");
    assert_eq!(n["nodes"][0]["kind"], "ALERT");
    assert_eq!(n["nodes"][0]["data"]["trigger"], "SCORE_THRESHOLD");

    // More signals move the score but it was already above: no second crossing (cooldown 0).
    signal(&app, &s, "acme.io", "bob", "docs_read").await;
    signal(&app, &s, "acme.io", "cat", "api_call").await;
    settled(&app, &s, "acme.io").await;
    assert_eq!(titles(&notifications(&app, &s).await).len(), 1);

    // A star (its alias github_star named in the rule) fires the signal rule; a second star
    // at the same account is inside the rule's cooldown; a star elsewhere is another account.
    signal(&app, &s, "acme.io", "ann", "repo_star").await;
    settled(&app, &s, "acme.io").await;
    signal(&app, &s, "acme.io", "bob", "repo_star").await;
    signal(&app, &s, "globex.com", "dan", "repo_star").await;
    settled(&app, &s, "globex.com").await;
    let t = titles(&notifications(&app, &s).await);
    let stars: Vec<&String> = t
        .iter()
        .filter(|x| x.starts_with("New repo_star"))
        .collect();
    assert_eq!(stars.len(), 2, "{t:?}");
    assert!(
        t.contains(&"New repo_star signal from Acme".to_owned()),
        "{t:?}"
    );
    assert!(
        t.contains(&"New repo_star signal from Globex".to_owned()),
        "{t:?}"
    );
    assert!(t.iter().any(|x| x.starts_with("Globex crossed 1")), "{t:?}");
    assert_eq!(t.len(), 4, "{t:?}");

    // Each firing is an alert.triggered event too.
    let r = app
        .graphql_as(
            s.token(),
            "{ events(first: 100, types: [\"alert.triggered\"]) { payload } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["events"].as_array().unwrap().len(), 4, "{r}");
}

#[tokio::test]
async fn tiers_filters_rises_and_drops_against_history() {
    let app = spawn_app().await;
    let s = app.register("tiers@alerts.test", "Tiers").await;
    let org = Uuid::parse_str(&s.organization_id).unwrap();
    signal(&app, &s, "vip.io", "ann", "api_call").await;
    signal(&app, &s, "plain.io", "bob", "api_call").await;
    let (vip, _) = settled(&app, &s, "vip.io").await;
    let (plain, _) = settled(&app, &s, "plain.io").await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { tagAccount(id: $id, input: {add: [\"vip\"]}) { id } }",
            json!({"id": vip}),
        )
        .await;
    ok(&r);
    create_rule(
        &app,
        &s,
        json!({"name": "VIP to hot", "trigger": "TIER_CHANGED", "toTiers": ["HOT"], "filter": {"tags": ["vip"]}}),
    )
    .await;
    // Every score becomes HOT under a hot threshold of 3; the nightly recompute applies it.
    let r = app
        .graphql_as(
            s.token(),
            "mutation { updateScoringConfig(input: {thresholds: {hot: 3, warm: 2, cold: 1}}) { version } }",
            json!({}),
        )
        .await;
    ok(&r);
    let r = app
        .graphql_as(
            s.token(),
            "mutation { triggerJob(name: \"capture-score-snapshot\") { id } }",
            json!({}),
        )
        .await;
    ok(&r);
    eventually(Duration::from_secs(20), "the VIP alert", || async {
        let t = titles(&notifications(&app, &s).await);
        (!t.is_empty()).then_some(t)
    })
    .await;
    settled(&app, &s, "plain.io").await;
    let t = titles(&notifications(&app, &s).await);
    assert_eq!(t.len(), 1, "only the tagged account: {t:?}");
    assert!(t[0].starts_with("Vip is now HOT"), "{t:?}");

    // A week of history: vip was at 100 three days ago, plain at 1.
    for (account, score) in [(vip, 100), (plain, 1)] {
        entity::score_snapshots::ActiveModel {
            organization_id: Set(org),
            account_id: Set(account),
            day: Set(Utc::now().date_naive() - chrono::Duration::days(3)),
            score: Set(score),
            tier: Set("HOT".into()),
            signal_count: Set(1),
            user_count: Set(1),
            captured_at: Set(Utc::now()),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    create_rule(
        &app,
        &s,
        json!({"name": "Drop", "trigger": "SCORE_DROP", "percent": 20.0, "withinDays": 5}),
    )
    .await;
    create_rule(
        &app,
        &s,
        json!({"name": "Rise", "trigger": "SCORE_RISE", "percent": 50.0}),
    )
    .await;
    // A second person at each moves both scores; against history vip fell from 100 and plain
    // rose from 1 (their previous scores say nothing of the kind).
    signal(&app, &s, "vip.io", "cat", "api_call").await;
    signal(&app, &s, "plain.io", "dan", "api_call").await;
    settled(&app, &s, "vip.io").await;
    settled(&app, &s, "plain.io").await;
    let t = titles(&notifications(&app, &s).await);
    assert!(
        t.iter()
            .any(|x| x.starts_with("Vip fell") && x.contains("in 5 days (100 → ")),
        "{t:?}"
    );
    assert!(
        t.iter()
            .any(|x| x.starts_with("Plain rose") && x.contains("in 7 days (1 → ")),
        "{t:?}"
    );
    assert_eq!(t.len(), 3, "{t:?}");
}

#[tokio::test]
async fn concurrent_evaluators_fire_each_alert_once() {
    let app = spawn_app().await;
    let s = app.register("twice@alerts.test", "Twice").await;
    create_rule(
        &app,
        &s,
        json!({"name": "Any signal", "trigger": "NEW_SIGNAL", "cooldownMinutes": 0}),
    )
    .await;
    let inputs: Vec<Value> = (0..40)
        .map(|i| json!({"type": "api_call", "actor": {"email": format!("p{i}@many{}.io", i % 5)}, "metadata": {"i": i}}))
        .collect();
    let r = app
        .graphql_as(s.token(), INGEST, json!({"inputs": inputs}))
        .await;
    assert_eq!(ok(&r)["ingestSignals"]["summary"]["succeeded"], 40);
    // Four evaluators race the server's own.
    let db = app.db.clone();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { domain::alerts::evaluate_all(&db).await.unwrap() })
        })
        .collect();
    for r in runs {
        r.await.unwrap();
    }
    evaluated(&app).await;
    let n = notifications(&app, &s).await;
    assert_eq!(n["unreadCount"], 40, "{n}");
}

#[tokio::test]
async fn notifications_are_each_members_own_and_marked_read() {
    let app = spawn_app().await;
    let s = app.register("read@alerts.test", "Read").await;
    let member = app.add_member(&s, "viewer@alerts.test", "MEMBER").await;
    let other = app.add_member(&s, "other@alerts.test", "MEMBER").await;
    // The owner and one member are told; the other member is not a recipient.
    create_rule(
        &app,
        &s,
        json!({"name": "Signals", "trigger": "NEW_SIGNAL", "cooldownMinutes": 0,
               "recipientIds": [s.user_id, member.user_id]}),
    )
    .await;
    for i in 0..3 {
        signal(&app, &s, "initech.com", &format!("p{i}"), "api_call").await;
    }
    settled(&app, &s, "initech.com").await;
    let mine = notifications(&app, &s).await;
    assert_eq!(mine["unreadCount"], 3);
    assert_eq!(notifications(&app, &member).await["unreadCount"], 3);
    assert_eq!(notifications(&app, &other).await["unreadCount"], 0);

    // Pages, newest first.
    let r = app
        .graphql_as(s.token(), NOTIFICATIONS, json!({"first": 2}))
        .await;
    let page = &ok(&r)["notifications"];
    assert_eq!(page["hasNextPage"], true);
    let r = app
        .graphql_as(
            s.token(),
            NOTIFICATIONS,
            json!({"first": 2, "after": page["endCursor"]}),
        )
        .await;
    let next = &ok(&r)["notifications"];
    assert_eq!(next["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(next["hasNextPage"], false);
    let ids: Vec<&Value> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(next["nodes"].as_array().unwrap())
        .map(|x| &x["id"])
        .collect();
    let want: Vec<&Value> = mine["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["id"])
        .collect();
    assert_eq!(ids, want);

    // Another member cannot mark the owner's read.
    let mark = "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }";
    let r = app
        .graphql_as(
            member.token(),
            mark,
            json!({"ids": [mine["nodes"][0]["id"]]}),
        )
        .await;
    assert_eq!(ok(&r)["markNotificationsRead"], 0);
    let r = app
        .graphql_as(s.token(), mark, json!({"ids": [mine["nodes"][0]["id"]]}))
        .await;
    assert_eq!(ok(&r)["markNotificationsRead"], 1);
    let r = app
        .graphql_as(
            s.token(),
            NOTIFICATIONS,
            json!({"unread": true, "first": 10}),
        )
        .await;
    assert_eq!(ok(&r)["notifications"]["unreadCount"], 2);
    assert_eq!(
        ok(&r)["notifications"]["nodes"].as_array().unwrap().len(),
        2
    );
    let r = app
        .graphql_as(s.token(), "mutation { markNotificationsRead }", json!({}))
        .await;
    assert_eq!(ok(&r)["markNotificationsRead"], 2);
    assert_eq!(notifications(&app, &s).await["unreadCount"], 0);
    assert_eq!(notifications(&app, &member).await["unreadCount"], 3);

    // Notifications are a person's: an API key is refused.
    let key = app.api_key(&s, &["accounts:read"]).await;
    let r = app
        .graphql_with_key(&key, "{ notifications { unreadCount } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
}

#[tokio::test]
async fn another_organization_neither_sees_nor_fires_rules() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let rule = create_rule(
        &app,
        &a,
        json!({"name": "A's signals", "trigger": "NEW_SIGNAL", "cooldownMinutes": 0}),
    )
    .await;
    let r = app
        .graphql_as(b.token(), "{ alertRules { id } }", json!({}))
        .await;
    assert_eq!(ok(&r)["alertRules"], json!([]));
    for q in [
        "mutation($id: ID!) { deleteAlertRule(id: $id) }",
        "mutation($id: ID!) { updateAlertRule(id: $id, input: {name: \"x\", trigger: NEW_SIGNAL}) { id } }",
    ] {
        let r = app
            .graphql_as(b.token(), q, json!({"id": rule["id"]}))
            .await;
        assert_code(&r, "NOT_FOUND");
    }
    // B's recipients and accounts are not A's to name.
    let r = app
        .graphql_as(
            a.token(),
            CREATE,
            json!({"input": {"name": "n", "trigger": "NEW_SIGNAL", "recipientIds": [b.user_id]}}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    // B's signals fire nothing of A's; A's own do, for A only.
    signal(&app, &b, "bcorp.io", "x", "api_call").await;
    settled(&app, &b, "bcorp.io").await;
    assert_eq!(notifications(&app, &a).await["unreadCount"], 0);
    signal(&app, &a, "acorp.io", "y", "api_call").await;
    settled(&app, &a, "acorp.io").await;
    assert_eq!(notifications(&app, &a).await["unreadCount"], 1);
    assert_eq!(notifications(&app, &b).await["unreadCount"], 0);
    let stored = entity::notifications::Entity::find()
        .filter(
            entity::notifications::Column::OrganizationId
                .eq(Uuid::parse_str(&b.organization_id).unwrap()),
        )
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

/// Sets a rule's creation time back (as if it had been written `days` ago).
async fn created_days_ago(app: &TestApp, rule: &Value, days: i64) {
    let id = Uuid::parse_str(rule["id"].as_str().unwrap()).unwrap();
    entity::alert_rules::Entity::update_many()
        .col_expr(
            entity::alert_rules::Column::CreatedAt,
            sea_orm::sea_query::Expr::value(Utc::now() - chrono::Duration::days(days)),
        )
        .filter(entity::alert_rules::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
}

/// Moves every signal of `domain` back by `days` (and rescores it, so the stored last signal
/// follows).
async fn age_signals(app: &TestApp, s: &Session, domain: &str, days: i64) {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.db.get_database_backend();
    let (id, _) = settled(app, s, domain).await;
    let sql = if app.test_db.is_postgres() {
        format!(
            "UPDATE signals SET timestamp = timestamp - INTERVAL '{days} days' WHERE account_id = '{id}'"
        )
    } else {
        let hex = id.simple().to_string();
        format!(
            "UPDATE signals SET timestamp = strftime('%Y-%m-%dT%H:%M:%f+00:00', timestamp, '-{days} days') WHERE hex(account_id) = upper('{hex}') OR account_id = '{id}'"
        )
    };
    app.db
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    domain::scoring::rescore(&app.db, Uuid::parse_str(&s.organization_id).unwrap(), &[id])
        .await
        .unwrap();
}

#[tokio::test]
async fn silence_and_falling_engagement_are_checked_on_schedule() {
    let app = spawn_app().await;
    let s = app.register("quiet@alerts.test", "Quiet").await;
    for (domain, n) in [("quiet.io", 1), ("long.io", 1), ("busy.io", 1)] {
        for i in 0..n {
            signal(&app, &s, domain, &format!("p{i}"), "api_call").await;
        }
    }
    settled(&app, &s, "busy.io").await;
    // quiet.io's last signal was 11 days ago, long.io's 13, busy.io's today.
    age_signals(&app, &s, "quiet.io", 11).await;
    age_signals(&app, &s, "long.io", 13).await;
    let inactive = create_rule(
        &app,
        &s,
        json!({"name": "Quiet for 10 days", "trigger": "ACCOUNT_INACTIVE", "withinDays": 10}),
    )
    .await;
    assert_eq!(inactive["withinDays"], 10);
    // The rule has watched for 2 days: quiet.io's silence reached 10 days meanwhile; long.io
    // was already silent for 10 days before the rule existed.
    created_days_ago(&app, &inactive, 2).await;
    let fired = domain::alerts::check_timed(&app.db, Utc::now())
        .await
        .unwrap();
    assert_eq!(fired, 1);
    let t = titles(&notifications(&app, &s).await);
    assert_eq!(t, vec!["Quiet has sent no signal for 10 days".to_owned()]);
    // Checked again (two jobs, or the next round): the same silence does not fire twice.
    let (a, b) = tokio::join!(
        domain::alerts::check_timed(&app.db, Utc::now()),
        domain::alerts::check_timed(&app.db, Utc::now())
    );
    assert_eq!(a.unwrap() + b.unwrap(), 0);

    // Engagement: 6 signals 8–13 days ago, 1 in the last week: a drop of 83 %.
    let drop = create_rule(
        &app,
        &s,
        json!({"name": "Engagement halves", "trigger": "ENGAGEMENT_DROP", "percent": 50.0}),
    )
    .await;
    assert_eq!(drop["withinDays"], 7);
    for i in 0..6 {
        signal(&app, &s, "fading.io", &format!("f{i}"), "api_call").await;
    }
    age_signals(&app, &s, "fading.io", 9).await;
    signal(&app, &s, "fading.io", "f9", "docs_read").await;
    // busy.io: two signals before, one now — under the minimum of 3 before, never compared.
    settled(&app, &s, "fading.io").await;
    let fired = domain::alerts::check_timed(&app.db, Utc::now())
        .await
        .unwrap();
    assert_eq!(fired, 1);
    let t = titles(&notifications(&app, &s).await);
    assert!(
        t.contains(&"Fading's signals fell 83.3% over 7 days (6 → 1)".to_owned()),
        "{t:?}"
    );
    // Still low five minutes later: inside the rule's cooldown.
    let later = Utc::now() + chrono::Duration::minutes(5);
    assert_eq!(
        domain::alerts::check_timed(&app.db, later).await.unwrap(),
        0
    );
    assert_eq!(titles(&notifications(&app, &s).await).len(), 2);

    // The scheduled job runs the same check (and is no longer reported as not built).
    let schedule = jobs::registry::schedule("alert-check-scheduler").unwrap();
    let id = jobs::scheduler::fire(&app.db, schedule, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let done = eventually(
        Duration::from_secs(20),
        "the alert check to finish",
        || async {
            let j = entity::jobs::Entity::find_by_id(id)
                .one(&app.db)
                .await
                .unwrap()
                .unwrap();
            matches!(j.state.as_str(), "completed" | "failed" | "skipped").then_some(j)
        },
    )
    .await;
    assert_eq!(done.state, "completed", "{:?}", done.last_error);
}

#[tokio::test]
async fn a_new_rule_sees_the_next_signal_however_late_the_evaluator_first_runs() {
    // No worker: nothing evaluates until the test says so, as when the evaluator's first round
    // comes after the rule and the signal.
    let app = devsignal_tests::spawn_app_without_worker().await;
    let s = app.register("owner@late.test", "Late").await;
    signal(&app, &s, "before.io", "ana", "repo_star").await;
    create_rule(
        &app,
        &s,
        json!({"name": "Stars", "trigger": "NEW_SIGNAL", "signalTypes": ["repo_star"]}),
    )
    .await;
    signal(&app, &s, "acme.io", "ana", "repo_star").await;
    assert_eq!(domain::alerts::evaluate_all(&app.db).await.unwrap(), 1);
    let n = notifications(&app, &s).await;
    let nodes = n["nodes"].as_array().unwrap();
    assert_eq!(
        nodes.len(),
        1,
        "the signal after the rule, not the one before: {n}"
    );
    assert_eq!(nodes[0]["account"]["domain"], "acme.io");
}
