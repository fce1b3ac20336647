//! The Stack Overflow connector against a local fake of the Stack Exchange API: a first sync
//! reads every page of questions and their answers (people by Stack Exchange id, companies from
//! profile websites) and a re-sync creates nothing; the API's `backoff` (short: waited out;
//! long: BACKOFF until it lifts, then the continuation) and a spent daily quota (BACKOFF until
//! UTC midnight); a rejected key (ERROR until the credentials change); 502s retried; a stopped
//! run resumed at its cursor; bad configuration refused naming the field; and tenant isolation
//! of what Stack Overflow and Reddit bring in; an erased person is skipped by later syncs.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{CONNECT, SYNC, UPDATE, connect, integration, ok, signals, sync};
use devsignal_tests::fakes::reddit::{FakeReddit, Post};
use devsignal_tests::fakes::stackexchange::{FakeStackExchange, Question, User};
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

async fn app_for(se: &FakeStackExchange) -> TestApp {
    spawn_app_with(&[("STACKEXCHANGE_API_URL", &se.url)]).await
}

/// The contact with Stack Exchange user id `id`, and its account's domain.
async fn person(app: &TestApp, id: i64) -> (entity::contacts::Model, Option<String>) {
    let identity = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("STACKOVERFLOW"))
        .filter(entity::contact_identities::Column::Value.eq(id.to_string()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no contact for Stack Exchange user {id}"));
    let contact = entity::contacts::Entity::find_by_id(identity.contact_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut domain = None;
    if let Some(a) = contact.account_id {
        domain = entity::companies::Entity::find_by_id(a)
            .one(&app.db)
            .await
            .unwrap()
            .and_then(|c| c.domain);
    }
    (contact, domain)
}

/// The `page` of every `/questions` call (not answers) among `hits`.
fn question_pages(hits: &[devsignal_tests::fakes::github::Hit]) -> Vec<String> {
    hits.iter()
        .filter(|h| h.path == "/2.3/questions")
        .filter_map(|h| h.param("page"))
        .collect()
}

#[tokio::test]
async fn first_sync_reads_every_page_and_a_resync_creates_nothing() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 250, 40);
    se.generate("tokio", 5000, 3, 2);
    se.with(|d| {
        d.key = Some("k-good".into());
        d.users.insert(
            1,
            User {
                display_name: "Ann O&#39;Brien".into(),
                website_url: Some("https://www.initech.com/about".into()),
            },
        );
        d.users.insert(
            2,
            User {
                display_name: "Bo".into(),
                website_url: Some("https://bo.github.io".into()),
            },
        );
    });
    let app = app_for(&se).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "STACKOVERFLOW",
        json!({"tags": ["Rust", " rust"]}),
        Some(json!({"key": "k-good"})),
    )
    .await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["config"], json!({"tags": ["rust"]}), "lower-cased, once");
    assert_eq!(i["status"], "CONNECTED");

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 375, "250 questions and 125 answers");
    assert_eq!(signals(&app, Some("stackoverflow_question")).await, 250);
    assert_eq!(signals(&app, Some("stackoverflow_answer")).await, 125);
    let hits = se.hits();
    assert_eq!(run["requests"], json!(hits.len()));
    assert_eq!(
        question_pages(&hits),
        ["1", "2", "3"],
        "every page, to the end"
    );
    assert!(hits.iter().all(|h| h.status == 200), "{hits:?}");
    assert!(hits.iter().all(|h| {
        h.param("key").as_deref() == Some("k-good")
            && h.param("site").as_deref() == Some("stackoverflow")
    }));
    // Answers: one call per page of questions naming at most 100 of them.
    let answer_calls: Vec<usize> = hits
        .iter()
        .filter(|h| h.path.ends_with("/answers"))
        .map(|h| h.path.split('/').nth(3).unwrap().split(';').count())
        .collect();
    assert_eq!(answer_calls, [100, 100, 50]);
    // Profiles: read in batches of at most 100, each user once.
    let mut users: Vec<String> = hits
        .iter()
        .filter(|h| h.path.starts_with("/2.3/users/"))
        .flat_map(|h| {
            h.path["/2.3/users/".len()..]
                .split(';')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let n = users.len();
    users.sort();
    users.dedup();
    assert_eq!((n, users.len()), (40, 40));

    let (ann, domain) = person(&app, 1).await;
    assert_eq!(
        domain.as_deref(),
        Some("initech.com"),
        "the website's domain"
    );
    assert_eq!(ann.first_name.as_deref(), Some("Ann"), "{ann:?}");
    assert_eq!(ann.last_name.as_deref(), Some("O'Brien"), "unescaped");
    assert_eq!(person(&app, 2).await.1, None, "never a hosting domain");
    let q = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq("stackoverflow:q:1000"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.signal_type, "stackoverflow_question");
    assert_eq!(q.metadata["title"], "How do I use rust & friends? #1000");
    assert!(
        entity::signals::Entity::find()
            .filter(entity::signals::Column::IdempotencyKey.eq("stackoverflow:a:901000"))
            .one(&app.db)
            .await
            .unwrap()
            .is_some()
    );

    // Nothing new: one call from the newest activity seen, nothing stored, no profile read.
    se.clear_hits();
    let newest = se.with(|d| {
        d.questions
            .iter()
            .filter(|q| q.tags == ["rust"])
            .map(|q| q.last_activity_date)
            .max()
            .unwrap()
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 0);
    let hits = se.hits();
    assert_eq!(question_pages(&hits), ["1"]);
    assert_eq!(
        hits[0].param("min"),
        Some(newest.to_string()),
        "the cursor is the newest activity"
    );
    assert!(!hits.iter().any(|h| h.path.starts_with("/2.3/users/")));
    assert_eq!(signals(&app, None).await, 375);

    // New activity: a new question and an answer to an old one are read next time.
    let now = Utc::now().timestamp();
    se.with(|d| {
        d.questions.push(Question {
            id: 7777,
            tags: vec!["rust".into()],
            owner: Some(41),
            title: "Brand new".into(),
            creation_date: now,
            last_activity_date: now,
        });
        d.users.insert(41, User::default());
        let q = d.questions.iter_mut().find(|q| q.id == 1001).unwrap();
        q.last_activity_date = now;
        d.answers
            .push(devsignal_tests::fakes::stackexchange::Answer {
                id: 8888,
                question_id: 1001,
                owner: Some(3),
                creation_date: now,
                last_activity_date: now,
            });
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 2, "{run}");
    // A full run reads the last 7 days again and stores nothing twice.
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["signalsCreated"], 0);
    assert_eq!(signals(&app, None).await, 377);
}

#[tokio::test]
async fn the_apis_backoff_is_waited_out_or_stops_the_run_until_it_lifts() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 250, 10);
    // Page 1 asks for 1 s (waited out inside the run), page 2 for 3 s (the run stops).
    se.with(|d| {
        d.backoff.push(("&page=1&site".into(), 1));
        d.backoff.push(("&page=2&site".into(), 3));
    });
    let app = app_for(&se).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "STACKOVERFLOW", json!({"tags": ["rust"]}), None).await;
    let before = Utc::now();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("rate limit"),
        "{run}"
    );
    assert_eq!(
        question_pages(&se.hits()),
        ["1", "2"],
        "page 1's backoff was sat out"
    );
    assert_eq!(signals(&app, None).await, 150, "page 1 with its answers");
    let i = integration(&app, &s, &id).await;
    if i["status"] == "BACKOFF" {
        let next = chrono::DateTime::parse_from_rfc3339(i["nextSyncAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            next >= before + chrono::Duration::seconds(3)
                && next <= Utc::now() + chrono::Duration::seconds(3),
            "nextSyncAt is when the backoff lifts: {next} {i}"
        );
    }
    // When it lifts the continuation finishes, never calling during a backoff.
    eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert_eq!(signals(&app, None).await, 375);
    let hits = se.hits();
    assert!(
        hits.iter().all(|h| h.status == 200),
        "no throttle violation: {hits:?}"
    );
    assert_eq!(
        question_pages(&hits),
        ["1", "2", "2", "3"],
        "resumed at page 2"
    );
}

#[tokio::test]
async fn a_spent_daily_quota_backs_off_until_utc_midnight() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 250, 10);
    // Page 1, its answers and its people: the third call spends the quota.
    se.with(|d| d.quota_remaining = 3);
    let app = app_for(&se).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "STACKOVERFLOW", json!({"tags": ["rust"]}), None).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert_eq!(run["requests"], 3, "no call once the quota is spent");
    assert_eq!(signals(&app, None).await, 150);
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "BACKOFF");
    let next = chrono::DateTime::parse_from_rfc3339(i["nextSyncAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let midnight = (Utc::now().date_naive() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(next, midnight, "the quota refills at UTC midnight");
    // A manual sync meanwhile is refused by the API (throttle_violation): still a rate limit.
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "BACKOFF", "{i}");
    // Once the quota is back, the next run goes on from page 2.
    se.with(|d| d.quota_remaining = 10_000);
    se.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(question_pages(&se.hits()), ["2", "3"]);
    assert_eq!(signals(&app, None).await, 375);
}

#[tokio::test]
async fn a_rejected_key_fails_the_run_until_the_credentials_change() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 3, 3);
    se.with(|d| {
        d.key = Some("good".into());
        // A question whose owner deleted their account: the signal lands without a person.
        d.questions.push(Question {
            id: 2000,
            tags: vec!["rust".into()],
            owner: None,
            title: "Orphan".into(),
            creation_date: Utc::now().timestamp() - 100,
            last_activity_date: Utc::now().timestamp() - 100,
        });
    });
    let app = app_for(&se).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "STACKOVERFLOW",
        json!({"tags": ["rust"]}),
        Some(json!({"key": "bad"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["requests"], 1, "no retries");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let err = i["lastError"].as_str().unwrap();
    assert!(err.contains("key") && err.contains("credentials"), "{err}");
    assert!(i["nextSyncAt"].is_null());
    assert_eq!(
        connectors::run::fan_out(&app.db, "STACKOVERFLOW")
            .await
            .unwrap(),
        0,
        "the schedule leaves it alone"
    );
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": {"key": "good"}}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    // The cron entry fans out to it again.
    let def = jobs::registry::find("stackoverflow-sync-scheduler").unwrap();
    domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
        .await
        .unwrap();
    let i = eventually(Duration::from_secs(30), "the scheduled run", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastSuccessAt"].is_string()).then_some(i)
    })
    .await;
    assert!(i["lastError"].is_null());
    assert_eq!(signals(&app, None).await, 6);
    let orphan = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq("stackoverflow:q:2000"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(orphan.contact_id.is_none(), "{orphan:?}");
}

#[tokio::test]
async fn server_errors_are_retried_and_a_stopped_run_resumes_at_its_cursor() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 250, 10);
    se.with(|d| {
        d.fail.push(("/questions?".into(), 502));
        d.fail.push(("/questions?".into(), 502));
        // Page 3 keeps failing: the run stops after pages 1 and 2.
        for _ in 0..4 {
            d.fail.push(("&page=3&site".into(), 503));
        }
    });
    let app = app_for(&se).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "STACKOVERFLOW", json!({"tags": ["rust"]}), None).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(run["error"].as_str().unwrap().contains("503"), "{run}");
    let statuses: Vec<u16> = se
        .hits()
        .iter()
        .filter(|h| h.path == "/2.3/questions")
        .map(|h| h.status)
        .collect();
    assert_eq!(statuses, [502, 502, 200, 200, 503, 503, 503, 503]);
    assert_eq!(signals(&app, None).await, 300, "pages 1 and 2 landed");
    assert_eq!(integration(&app, &s, &id).await["status"], "BACKOFF");
    se.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(question_pages(&se.hits()), ["3"], "not pages 1 and 2 again");
    assert_eq!(signals(&app, None).await, 375);
}

#[tokio::test]
async fn bad_stack_overflow_configuration_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    for (input, field) in [
        (json!({"config": {}}), "config.tags"),
        (json!({"config": {"tags": []}}), "config.tags"),
        (
            json!({"config": {"tags": ["rust", "not a tag"]}}),
            "config.tags.1",
        ),
        (
            json!({"config": {"tags": ["rust"], "site": "x"}}),
            "config.site",
        ),
        (
            json!({"config": {"tags": ["rust"]}, "credentials": {"key": ""}}),
            "credentials.key",
        ),
    ] {
        let mut input = input;
        input["kind"] = json!("STACKOVERFLOW");
        let resp = app
            .graphql_as(s.token(), CONNECT, json!({"input": input}))
            .await;
        assert_code(&resp, "BAD_USER_INPUT");
        let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{resp}");
    }
}

/// What the organization of `token` sees: its signals' keys and its contacts' first names.
async fn seen(app: &TestApp, token: Option<&str>) -> (Vec<String>, Vec<String>) {
    let resp = app
        .graphql_as(
            token,
            "{ signals(first: 100) { edges { node { type idempotencyKey } } } contacts(first: 100) { edges { node { firstName } } } }",
            json!({}),
        )
        .await;
    let data = ok(&resp);
    let mut keys: Vec<String> = data["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["idempotencyKey"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    let mut names: Vec<String> = data["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["firstName"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    (keys, names)
}

#[tokio::test]
async fn stack_overflow_and_reddit_signals_and_contacts_stay_with_their_tenant() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 2, 2);
    se.with(|d| {
        d.users.get_mut(&1).unwrap().display_name = "Alice".into();
        d.users.get_mut(&2).unwrap().display_name = "Bruno".into();
    });
    let rd = FakeReddit::start("app", "secret").await;
    let t = Utc::now().timestamp() as f64 - 600.0;
    rd.with(|d| {
        d.posts.push(Post {
            id: "p1".into(),
            subreddit: "rust".into(),
            author: "carla".into(),
            title: "DevSignal is neat".into(),
            selftext: String::new(),
            created_utc: t,
        })
    });
    let [(k1, v1), (k2, v2)] = rd.vars();
    let app = spawn_app_with(&[("STACKEXCHANGE_API_URL", &se.url), (k1, &v1), (k2, &v2)]).await;
    let (a, b) = app.two_tenants().await;
    let (so, _) = connect(&app, &a, "STACKOVERFLOW", json!({"tags": ["rust"]}), None).await;
    let (rdt, _) = connect(
        &app,
        &b,
        "REDDIT",
        json!({"keywords": ["devsignal"]}),
        Some(json!({"clientId": "app", "clientSecret": "secret"})),
    )
    .await;
    assert_eq!(sync(&app, &a, &so, false).await["signalsCreated"], 3);
    assert_eq!(sync(&app, &b, &rdt, false).await["signalsCreated"], 1);
    let (keys_a, names_a) = seen(&app, a.token()).await;
    let (keys_b, names_b) = seen(&app, b.token()).await;
    assert_eq!(
        keys_a,
        [
            "stackoverflow:a:901000",
            "stackoverflow:q:1000",
            "stackoverflow:q:1001"
        ]
    );
    assert_eq!(names_a, ["Alice", "Bruno"]);
    assert_eq!(keys_b, ["reddit:t3_p1"]);
    assert_eq!(names_b, ["carla"]);
    // B cannot run A's integration, nor read it.
    assert_code(
        &app.graphql_as(b.token(), SYNC, json!({"id": so})).await,
        "NOT_FOUND",
    );
    // B connecting the same tag gets its own signals and contacts; A's stay as they were.
    let (so_b, _) = connect(&app, &b, "STACKOVERFLOW", json!({"tags": ["rust"]}), None).await;
    assert_eq!(sync(&app, &b, &so_b, false).await["signalsCreated"], 3);
    let (keys_b, names_b) = seen(&app, b.token()).await;
    assert_eq!(keys_b.len(), 4);
    assert_eq!(names_b, ["Alice", "Bruno", "carla"]);
    assert_eq!(seen(&app, a.token()).await, (keys_a, names_a));
    let _: Value = integration(&app, &a, &so).await;
}

/// A person erased from the organization (GDPR art. 17): their cached profile goes with them,
/// and a full re-sync neither reads their profile again nor brings their questions or answers
/// back, while everyone else's stay.
#[tokio::test]
async fn a_resync_skips_an_erased_person() {
    let se = FakeStackExchange::start().await;
    se.generate("rust", 1000, 6, 3);
    se.with(|d| {
        d.users.insert(
            2,
            User {
                display_name: "Ursula Erasable".into(),
                website_url: Some("https://ursula-erasable.dev".into()),
            },
        );
    });
    let app = app_for(&se).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "STACKOVERFLOW", json!({"tags": ["rust"]}), None).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 9, "6 questions and 3 answers: {run}");
    let (ursula, _) = person(&app, 2).await;
    let cached = || async {
        entity::integration_cursors::Entity::find()
            .filter(entity::integration_cursors::Column::Resource.eq("user:2"))
            .all(&app.db)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(cached().await, 1, "the profile is cached");
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { eraseContact(id: $id) { contactId } }",
            json!({"id": ursula.id.to_string()}),
        )
        .await;
    ok(&r);
    assert_eq!(cached().await, 0, "the cached profile is erased with them");

    se.clear_hits();
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 0, "{run}");
    assert!(
        se.hits().iter().all(|h| !h.path.starts_with("/2.3/users/")),
        "no profile is read again: {:?}",
        se.hits()
    );
    assert_eq!(cached().await, 0);
    let identities = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("STACKOVERFLOW"))
        .all(&app.db)
        .await
        .unwrap();
    let mut ids: Vec<&str> = identities.iter().map(|i| i.value.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "3"]);
    let named = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::FirstName.eq("Ursula"))
        .all(&app.db)
        .await
        .unwrap();
    assert!(named.is_empty(), "{named:?}");
}
