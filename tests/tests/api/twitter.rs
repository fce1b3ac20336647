//! The Twitter/X connector against a local fake of the v2 recent search: the first sync follows
//! `next_token` to the end and a re-sync asks only `since_id` the newest tweet; classes and
//! people (handle, name, company domain from the profile URL or bio); a budget resetting within
//! a second waited out, a later reset (or a 429) stopping the run until the continuation, which
//! resumes at the saved `next_token`; rejected credentials (ERROR, recovery); 502s retried; a
//! stopped run resuming from its page; bad configuration refused.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{UPDATE, connect, integration, ok, signals, sync};
use devsignal_tests::fakes::twitter::{FakeTwitter, Tweet, whole_seconds_from_now};
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

async fn app_for(tw: &FakeTwitter) -> TestApp {
    spawn_app_with(&[("TWITTER_API_URL", &tw.url)]).await
}

fn creds(t: &str) -> Option<Value> {
    Some(json!({"bearerToken": t}))
}

fn searches(tw: &FakeTwitter) -> Vec<devsignal_tests::fakes::twitter::Hit> {
    tw.hits()
        .into_iter()
        .filter(|h| h.path == "/2/tweets/search/recent")
        .collect()
}

async fn cursor(app: &TestApp) -> Value {
    entity::integration_cursors::Entity::find()
        .filter(entity::integration_cursors::Column::Resource.eq("search"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .state
}

#[tokio::test]
async fn twitter_first_sync_follows_every_page_and_a_resync_asks_since_the_newest() {
    let tw = FakeTwitter::start().await;
    tw.with(|d| d.token = Some("bearer-good".into()));
    tw.generated(250, 1_000_000, "trying acme today");
    // A retweet and a tweet about something else are not asked for.
    tw.with(|d| {
        d.tweets.push(Tweet {
            id: 2_000_000,
            author_id: 5_001_000,
            text: "RT trying acme".into(),
            created_at: Utc::now(),
            retweet: true,
        });
        d.tweets.push(Tweet {
            id: 2_000_001,
            author_id: 5_001_000,
            text: "lunch".into(),
            created_at: Utc::now(),
            retweet: false,
        });
    });
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": [" acme ", "acme cloud"]}),
        creds("bearer-good"),
    )
    .await;
    assert_eq!(
        integration(&app, &s, &id).await["config"],
        json!({"keywords": ["acme", "acme cloud"]})
    );
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 250);
    assert_eq!(signals(&app, Some("twitter_mention")).await, 250);
    let hits = searches(&tw);
    assert_eq!(hits.len(), 3, "250 tweets are 3 pages");
    assert_eq!(run["requests"], 3);
    for h in &hits {
        assert_eq!(h.authorization.as_deref(), Some("Bearer bearer-good"));
        assert_eq!(
            h.param("query").as_deref(),
            Some("(acme OR \"acme cloud\") -is:retweet")
        );
        assert_eq!(h.param("max_results").as_deref(), Some("100"));
        assert_eq!(h.param("expansions").as_deref(), Some("author_id"));
        assert!(h.param("since_id").is_none());
    }
    assert!(hits[0].param("next_token").is_none());
    assert!(hits[1].param("next_token").is_some() && hits[2].param("next_token").is_some());
    assert_ne!(hits[1].param("next_token"), hits[2].param("next_token"));
    let c = cursor(&app).await;
    assert_eq!(c["sinceId"], "1000249", "the newest id read");
    assert!(c.get("nextToken").is_none_or(Value::is_null), "{c}");

    // Nothing new: one request since the newest id.
    tw.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 0);
    let hits = searches(&tw);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].param("since_id").as_deref(), Some("1000249"));
    // Ids compare as numbers: 10000000 is newer than 1000249 though it sorts first as text.
    tw.generated(2, 10_000_000, "acme cloud is neat");
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 2);
    assert_eq!(cursor(&app).await["sinceId"], "10000001");
    // A full re-sync walks the whole window again and stores nothing twice.
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["signalsCreated"], 0);
    assert_eq!(cursor(&app).await["sinceId"], "10000001");
    assert_eq!(signals(&app, None).await, 252);
}

#[tokio::test]
async fn twitter_tweets_are_classified_and_authors_become_people_and_companies() {
    let tw = FakeTwitter::start().await;
    tw.user(
        1,
        "ada_dev",
        json!({"name": "Ada Lovelace", "url": "https://t.co/abc",
               "entities": {"url": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://www.initech.com/team"}]}}}),
    );
    tw.user(
        2,
        "bob",
        json!({"name": "Bob", "description": "Node.js dev building umbrella.io"}),
    );
    tw.user(
        3,
        "carol",
        json!({"name": "Carol", "url": "https://t.co/x",
               "entities": {"url": {"urls": [{"expanded_url": "https://carol.github.io"}]}},
               "description": "mail me at carol@gmail.com"}),
    );
    tw.user(4, "dave", json!({"name": "Dave"}));
    let t = Utc::now() - chrono::Duration::hours(2);
    let tweet = |id: u64, author: u64, text: &str| Tweet {
        id,
        author_id: author,
        text: text.into(),
        created_at: t,
        retweet: false,
    };
    tw.with(|d| {
        d.tweets.extend([
            tweet(11, 1, "Does acme support SAML?"),
            tweet(12, 2, "acme is broken after the update, terrible"),
            tweet(13, 3, "I love acme, thanks for the great docs"),
            tweet(14, 4, "Writing about acme this week"),
            tweet(15, 4, "acme doesn't work with my proxy"),
        ])
    });
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("x"),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 5);
    assert_eq!(signals(&app, Some("twitter_question")).await, 1);
    assert_eq!(signals(&app, Some("twitter_complaint")).await, 2);
    assert_eq!(signals(&app, Some("twitter_praise")).await, 1);
    assert_eq!(signals(&app, Some("twitter_mention")).await, 1);
    let sig = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq("twitter:11"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sig.signal_type, "twitter_question");
    assert_eq!(sig.metadata["url"], "https://x.com/ada_dev/status/11");
    // People by handle; companies from the expanded profile URL or the bio, never github.io
    // or free mail.
    let domain_of = |handle: &'static str| {
        let db = app.db.clone();
        async move {
            let c = entity::contacts::Entity::find()
                .filter(entity::contacts::Column::Twitter.eq(handle))
                .one(&db)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no contact {handle}"));
            match c.account_id {
                None => None,
                Some(a) => {
                    entity::companies::Entity::find_by_id(a)
                        .one(&db)
                        .await
                        .unwrap()
                        .unwrap()
                        .domain
                }
            }
        }
    };
    assert_eq!(domain_of("ada_dev").await.as_deref(), Some("initech.com"));
    assert_eq!(domain_of("bob").await.as_deref(), Some("umbrella.io"));
    assert_eq!(domain_of("carol").await, None);
    assert_eq!(domain_of("dave").await, None);
    let resp = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 10) { totalCount edges { node { firstName twitter } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&resp)["contacts"]["totalCount"],
        4,
        "dave once for two tweets"
    );
    let ada = ok(&resp)["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["twitter"] == "ada_dev")
        .unwrap()
        .clone();
    assert_eq!(ada["node"]["firstName"], "Ada");
}

#[tokio::test]
async fn twitter_a_budget_resetting_within_a_second_is_waited_out() {
    let tw = FakeTwitter::start().await;
    tw.generated(250, 1_000_000, "acme");
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("x"),
    )
    .await;
    // One request left, refilled at the next whole second (≤ 1 s away: waited inside the run).
    tw.with(|d| {
        d.remaining = 1;
        d.reset = whole_seconds_from_now(1);
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 250);
    let statuses: Vec<u16> = searches(&tw).iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 200],
        "the spent budget was never overrun"
    );
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "CONNECTED");
}

#[tokio::test]
async fn twitter_a_later_reset_backs_off_and_the_continuation_resumes_at_its_page() {
    let tw = FakeTwitter::start().await;
    tw.generated(250, 1_000_000, "acme");
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("x"),
    )
    .await;
    let reset = whole_seconds_from_now(4);
    tw.with(|d| {
        d.remaining = 2;
        d.reset = reset;
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(run["error"].as_str().unwrap().contains("rate limit"));
    assert_eq!(signals(&app, None).await, 200);
    let i = integration(&app, &s, &id).await;
    if i["status"] == "BACKOFF" {
        let next = chrono::DateTime::parse_from_rfc3339(i["nextSyncAt"].as_str().unwrap()).unwrap();
        assert_eq!(
            next.timestamp(),
            reset.timestamp(),
            "nextSyncAt is the reset"
        );
    } else {
        assert!(Utc::now() >= reset, "{i}");
    }
    let c = cursor(&app).await;
    let token = c["nextToken"].as_str().unwrap().to_owned();
    assert!(c.get("sinceId").is_none_or(Value::is_null), "{c}");
    assert_eq!(c["pendingNewest"], "1000249");
    assert!(searches(&tw).iter().all(|h| h.status == 200));
    let before = searches(&tw).len();
    eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(())
    })
    .await;
    assert_eq!(signals(&app, None).await, 250);
    let after = searches(&tw)[before..].to_vec();
    assert_eq!(after.len(), 1, "only page 3 is read: {after:?}");
    assert_eq!(after[0].param("next_token"), Some(token));
    assert_eq!(cursor(&app).await["sinceId"], "1000249");

    // A 429 (a budget spent elsewhere) stops the run the same way.
    tw.generated(3, 3_000_000, "acme");
    tw.with(|d| {
        d.remaining = 0;
        d.reset = whole_seconds_from_now(3);
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert_eq!(searches(&tw).last().unwrap().status, 429);
    eventually(
        Duration::from_secs(30),
        "the second continuation",
        || async {
            let i = integration(&app, &s, &id).await;
            (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(())
        },
    )
    .await;
    assert_eq!(signals(&app, None).await, 253);
    assert_eq!(cursor(&app).await["sinceId"], "3000002");
}

#[tokio::test]
async fn twitter_rejected_credentials_stop_until_they_change() {
    let tw = FakeTwitter::start().await;
    tw.generated(3, 1_000_000, "acme");
    tw.with(|d| d.token = Some("good".into()));
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("bad"),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["requests"], 1, "no retries on 401");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let err = i["lastError"].as_str().unwrap();
    assert!(err.contains("401") && err.contains("credentials"), "{err}");
    assert_eq!(
        connectors::run::fan_out(&app.db, "TWITTER").await.unwrap(),
        0
    );
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": {"bearerToken": "good"}}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    let def = jobs::registry::find("twitter-sync-scheduler").unwrap();
    domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "the scheduled run", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastSuccessAt"].is_string()).then_some(())
    })
    .await;
    assert_eq!(signals(&app, None).await, 3);
}

#[tokio::test]
async fn twitter_server_errors_are_retried() {
    let tw = FakeTwitter::start().await;
    tw.generated(3, 1_000_000, "acme");
    tw.with(|d| {
        d.fail.push(("search".into(), 502));
        d.fail.push(("search".into(), 502));
    });
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("x"),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 3);
    let statuses: Vec<u16> = searches(&tw).iter().map(|h| h.status).collect();
    assert_eq!(statuses, [502, 502, 200]);
    assert_eq!(run["requests"], 3);
}

#[tokio::test]
async fn twitter_a_stopped_run_resumes_from_its_page() {
    let tw = FakeTwitter::start().await;
    tw.generated(250, 1_000_000, "acme");
    // Page 3 (below the oldest id of page 2, 1000050) keeps failing.
    let page3 = format!("next_token=b{:x}", 1_000_050u64);
    tw.with(|d| {
        for _ in 0..4 {
            d.fail.push((page3.clone(), 503));
        }
    });
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("x"),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(signals(&app, None).await, 200);
    tw.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 50);
    let hits = searches(&tw);
    assert_eq!(hits.len(), 1, "pages 1 and 2 are not read again");
    assert_eq!(
        hits[0].param("next_token"),
        Some(format!("b{:x}", 1_000_050u64))
    );
    // The newest id of the whole walk (seen on page 1 of the stopped run) is the new floor.
    assert_eq!(cursor(&app).await["sinceId"], "1000249");
}

#[tokio::test]
async fn twitter_bad_configuration_is_refused_naming_the_field() {
    let tw = FakeTwitter::start().await;
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let many: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
    let long: Vec<String> = (0..25).map(|i| format!("{i}{}", "x".repeat(30))).collect();
    for (input, field) in [
        (
            json!({"config": {}, "credentials": {"bearerToken": "x"}}),
            "config.keywords",
        ),
        (
            json!({"config": {"keywords": []}, "credentials": {"bearerToken": "x"}}),
            "config.keywords",
        ),
        (
            json!({"config": {"keywords": many}, "credentials": {"bearerToken": "x"}}),
            "config.keywords",
        ),
        (
            json!({"config": {"keywords": long}, "credentials": {"bearerToken": "x"}}),
            "config.keywords",
        ),
        (
            json!({"config": {"keywords": ["ok", ""]}, "credentials": {"bearerToken": "x"}}),
            "config.keywords.1",
        ),
        (
            json!({"config": {"keywords": ["x".repeat(101)]}, "credentials": {"bearerToken": "x"}}),
            "config.keywords.0",
        ),
        (
            json!({"config": {"keywords": [7]}, "credentials": {"bearerToken": "x"}}),
            "config.keywords.0",
        ),
        (
            json!({"config": {"keywords": ["acme"], "query": "x"}, "credentials": {"bearerToken": "x"}}),
            "config.query",
        ),
        (
            json!({"config": {"keywords": ["acme"]}}),
            "credentials.bearerToken",
        ),
    ] {
        let mut input = input;
        input["kind"] = json!("TWITTER");
        let resp = app
            .graphql_as(
                s.token(),
                devsignal_tests::connectors::CONNECT,
                json!({"input": input}),
            )
            .await;
        assert_code(&resp, "BAD_USER_INPUT");
        let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{field}: {resp}");
    }
    let resp = app
        .graphql_as(s.token(), "{ integrations { id } }", json!({}))
        .await;
    assert_eq!(ok(&resp)["integrations"], json!([]));
}

#[tokio::test]
async fn twitter_a_since_id_past_the_search_window_starts_the_walk_again() {
    let tw = FakeTwitter::start().await;
    tw.generated(3, 1_000_000, "acme");
    let app = app_for(&tw).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        creds("x"),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 3);
    // A week later the stored since_id is older than the search holds.
    tw.generated(2, 3_000_000, "acme again");
    tw.with(|d| d.min_since_id = Some(2_000_000));
    tw.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 2);
    let hits = searches(&tw);
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].status, 400);
    assert!(hits[1].param("since_id").is_none());
    assert_eq!(cursor(&app).await["sinceId"], "3000001");
}
