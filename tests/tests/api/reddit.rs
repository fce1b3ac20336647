//! The Reddit connector against a local fake of Reddit's OAuth API: a first sync reads the
//! search and each subreddit's new posts and comments to the end (questions, showcases and
//! discussions; keyword matching; `[deleted]` and AutoModerator skipped) and a re-sync creates
//! nothing; the token is fetched once, reused by later runs, fetched again after it expires or
//! is revoked; a spent budget (BACKOFF until the reset, then the continuation); rejected client
//! credentials (ERROR until they change); 502s retried; a stopped run resumed at its cursor;
//! bad configuration refused naming the field.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{CONNECT, UPDATE, connect, integration, ok, signals, sync};
use devsignal_tests::fakes::reddit::{Comment, FakeReddit, Post};
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

const CREDS: (&str, &str) = ("app-id", "app-secret");

async fn start() -> FakeReddit {
    FakeReddit::start(CREDS.0, CREDS.1).await
}

async fn app_for(rd: &FakeReddit) -> TestApp {
    let [(k1, v1), (k2, v2)] = rd.vars();
    spawn_app_with(&[(k1, &v1), (k2, &v2)]).await
}

fn creds() -> serde_json::Value {
    json!({"clientId": CREDS.0, "clientSecret": CREDS.1})
}

fn ago(secs: i64) -> f64 {
    (Utc::now().timestamp() - secs) as f64
}

/// `n` posts `r0..` in r/rust mentioning DevSignal, newest first; every fifth one asks.
fn rust_posts(n: usize) -> Vec<Post> {
    (0..n)
        .map(|i| Post {
            id: format!("r{i}"),
            subreddit: "rust".into(),
            author: format!("dev{}", i % 30),
            title: if i % 5 == 0 {
                format!("How do I configure DevSignal #{i}")
            } else {
                format!("Tried devsignal today #{i}")
            },
            selftext: String::new(),
            created_utc: ago(600 + i as i64 * 60),
        })
        .collect()
}

/// The `after` of every `/search` request.
fn search_afters(rd: &FakeReddit) -> Vec<Option<String>> {
    rd.api_hits()
        .iter()
        .filter(|h| h.path == "/search")
        .map(|h| h.param("after"))
        .collect()
}

async fn identities(app: &TestApp, value: &str) -> u64 {
    entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("REDDIT"))
        .filter(entity::contact_identities::Column::Value.eq(value))
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_sync_reads_every_listing_to_the_end_and_a_resync_creates_nothing() {
    let rd = start().await;
    rd.with(|d| {
        d.posts = rust_posts(250);
        for (i, author) in ["[deleted]", "AutoModerator"].iter().enumerate() {
            d.posts.push(Post {
                id: format!("skip{i}"),
                subreddit: "rust".into(),
                author: (*author).into(),
                title: "DevSignal weekly thread".into(),
                selftext: String::new(),
                created_utc: ago(300),
            });
        }
        // The search matches "devsignals"; the connector wants the word.
        d.posts.push(Post {
            id: "plural".into(),
            subreddit: "rust".into(),
            author: "someone".into(),
            title: "mydevsignals".into(),
            selftext: String::new(),
            created_utc: ago(200),
        });
        for i in 0..30 {
            d.posts.push(Post {
                id: format!("s{i}"),
                subreddit: "SideProject".into(),
                author: format!("maker{i}"),
                title: if i < 10 {
                    format!("I made a thing with DevSignal #{i}")
                } else {
                    format!("My app #{i}")
                },
                selftext: if i == 11 {
                    "Built on devsignal.".into()
                } else {
                    String::new()
                },
                created_utc: ago(700 + i * 30),
            });
        }
        for i in 0..20 {
            d.comments.push(Comment {
                id: format!("c{i}"),
                subreddit: "SideProject".into(),
                author: format!("commenter{i}"),
                body: match i {
                    0..4 => format!("does it work with DevSignal #{i}"),
                    4..8 => format!("devsignal rocks #{i}"),
                    _ => format!("nice #{i}"),
                },
                link_id: "t3_s0".into(),
                created_utc: ago(100 + i * 10),
            });
        }
    });
    let app = app_for(&rd).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "REDDIT",
        json!({"keywords": ["DevSignal"], "subreddits": ["r/SideProject"]}),
        Some(creds()),
    )
    .await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(
        i["config"],
        json!({"keywords": ["DevSignal"], "subreddits": ["sideproject"]}),
        "normalised, no secrets"
    );

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    // 250 r/rust posts, 11 r/sideproject ones naming the keyword, 8 comments naming it.
    assert_eq!(run["signalsCreated"], 269, "{run}");
    assert_eq!(signals(&app, Some("reddit_question")).await, 50 + 4);
    assert_eq!(signals(&app, Some("reddit_showcase")).await, 11);
    assert_eq!(signals(&app, Some("reddit_discussion")).await, 200 + 4);
    assert_eq!(run["requests"], json!(rd.hits().len()));
    // The search: 264 results, three pages followed by `after`.
    let afters = search_afters(&rd);
    assert_eq!(afters.len(), 3, "{afters:?}");
    assert_eq!(afters[0], None);
    let search = rd
        .api_hits()
        .into_iter()
        .find(|h| h.path == "/search")
        .unwrap();
    assert_eq!(search.param("q").as_deref(), Some("DevSignal"));
    assert_eq!(search.param("sort").as_deref(), Some("new"));
    assert_eq!(search.param("limit").as_deref(), Some("100"));
    let paths: Vec<String> = rd.api_hits().iter().map(|h| h.path.clone()).collect();
    assert!(
        paths.contains(&"/r/sideproject/new".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"/r/sideproject/comments".to_owned()));
    // One token for the whole run, every API call with it, as bearer.
    let tokens = rd.token_hits();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].query.contains("grant_type=client_credentials"));
    assert!(
        tokens[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Basic ")
    );
    assert!(rd.api_hits().iter().all(|h| h.authorization.as_deref()
        == Some("bearer fake-token-1")
        && h.user_agent.as_deref().unwrap().starts_with("DevSignal/")));
    // People by username; deleted accounts and AutoModerator are nobody.
    assert_eq!(identities(&app, "dev1").await, 1);
    assert_eq!(identities(&app, "[deleted]").await, 0);
    assert_eq!(identities(&app, "AutoModerator").await, 0);
    assert_eq!(identities(&app, "someone").await, 0, "not the word");
    let c = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq("reddit:t1_c0"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.signal_type, "reddit_question");
    assert_eq!(c.metadata["subreddit"], "SideProject");
    let p = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq("reddit:t3_r0"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.signal_type, "reddit_question");
    assert_eq!(
        p.metadata["url"],
        "https://www.reddit.com/r/rust/comments/r0/post/"
    );

    // Nothing new: each listing's first page only, the stored token, nothing created.
    rd.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 0);
    assert!(rd.token_hits().is_empty(), "the token is reused");
    assert_eq!(rd.api_hits().len(), 3, "{:?}", rd.api_hits());
    assert_eq!(search_afters(&rd), [None]);
    // New items are found next time.
    rd.with(|d| {
        d.posts.push(Post {
            id: "fresh".into(),
            subreddit: "webdev".into(),
            author: "newbie".into(),
            title: "devsignal just shipped".into(),
            selftext: String::new(),
            created_utc: ago(0),
        })
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 1, "{run}");
    assert_eq!(signals(&app, None).await, 270);
}

#[tokio::test]
async fn the_token_is_reused_then_fetched_again_when_it_expires_or_is_revoked() {
    let rd = start().await;
    rd.with(|d| {
        d.posts = rust_posts(5);
        d.expires_in = 6;
    });
    let app = app_for(&rd).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "REDDIT",
        json!({"keywords": ["devsignal"]}),
        Some(creds()),
    )
    .await;
    assert_eq!(sync(&app, &s, &id, false).await["signalsCreated"], 5);
    assert_eq!(sync(&app, &s, &id, false).await["status"], "SUCCEEDED");
    assert_eq!(rd.token_hits().len(), 1, "the second run reuses the token");
    tokio::time::sleep(Duration::from_secs(7)).await;
    rd.with(|d| d.expires_in = 3600);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(rd.token_hits().len(), 2, "expired: a new one");
    assert!(
        rd.api_hits().iter().all(|h| h.status == 200),
        "never sent an expired token"
    );
    // Revoked early: the API answers 401, the connector gets a new token once and goes on.
    rd.revoke_tokens();
    rd.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(rd.token_hits().len(), 1);
    let statuses: Vec<u16> = rd.api_hits().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [401, 200]);
}

#[tokio::test]
async fn a_spent_budget_backs_off_until_the_reset_then_continues() {
    let rd = start().await;
    rd.with(|d| d.posts = rust_posts(250));
    let app = app_for(&rd).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "REDDIT",
        json!({"keywords": ["devsignal"]}),
        Some(creds()),
    )
    .await;
    // Two requests left, the window refilling in 4 s.
    rd.with(|d| {
        d.remaining = 2;
        d.reset = Utc::now() + chrono::Duration::seconds(4);
    });
    let reset = rd.with(|d| d.reset);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(run["error"].as_str().unwrap().contains("rate limit"));
    assert_eq!(signals(&app, None).await, 200, "two pages");
    let i = integration(&app, &s, &id).await;
    if i["status"] == "BACKOFF" {
        let next = chrono::DateTime::parse_from_rfc3339(i["nextSyncAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            (next - reset).num_milliseconds().abs() <= 1500,
            "nextSyncAt is the reset: {next} {reset}"
        );
    }
    eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert_eq!(signals(&app, None).await, 250);
    let hits = rd.api_hits();
    assert!(
        hits.iter().all(|h| h.status == 200),
        "never over budget: {hits:?}"
    );
    assert_eq!(
        search_afters(&rd),
        [None, Some("t3_r99".into()), Some("t3_r199".into())],
        "the continuation starts at the cursor"
    );
    assert_eq!(rd.token_hits().len(), 1);
}

#[tokio::test]
async fn rejected_client_credentials_fail_the_run_until_they_change() {
    let rd = start().await;
    rd.with(|d| d.posts = rust_posts(3));
    let app = app_for(&rd).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "REDDIT",
        json!({"keywords": ["devsignal"]}),
        Some(json!({"clientId": CREDS.0, "clientSecret": "wrong"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["requests"], 1, "the token request, not retried");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let err = i["lastError"].as_str().unwrap();
    assert!(err.contains("401") && err.contains("credentials"), "{err}");
    assert!(rd.api_hits().is_empty());
    assert_eq!(
        connectors::run::fan_out(&app.db, "REDDIT").await.unwrap(),
        0
    );
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": creds()}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    let def = jobs::registry::find("reddit-sync-scheduler").unwrap();
    domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
        .await
        .unwrap();
    let i = eventually(Duration::from_secs(30), "the scheduled run", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastSuccessAt"].is_string()).then_some(i)
    })
    .await;
    assert!(i["lastError"].is_null());
    assert_eq!(signals(&app, None).await, 3);
}

#[tokio::test]
async fn server_errors_are_retried_and_a_stopped_run_resumes_at_its_cursor() {
    let rd = start().await;
    rd.with(|d| {
        d.posts = rust_posts(250);
        d.fail.push(("/search?".into(), 502));
        d.fail.push(("/search?".into(), 502));
        for _ in 0..4 {
            d.fail.push(("after=t3_r199".into(), 503));
        }
    });
    let app = app_for(&rd).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "REDDIT",
        json!({"keywords": ["devsignal"]}),
        Some(creds()),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(run["error"].as_str().unwrap().contains("503"), "{run}");
    let statuses: Vec<u16> = rd.api_hits().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [502, 502, 200, 200, 503, 503, 503, 503]);
    assert_eq!(signals(&app, None).await, 200);
    rd.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        search_afters(&rd),
        [Some("t3_r199".into())],
        "not pages 1 and 2 again"
    );
    assert_eq!(signals(&app, None).await, 250);
}

#[tokio::test]
async fn bad_reddit_configuration_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let good = creds();
    for (config, credentials, want) in [
        (json!({}), Some(good.clone()), vec!["config.keywords"]),
        (
            json!({"keywords": []}),
            Some(good.clone()),
            vec!["config.keywords"],
        ),
        (
            json!({"keywords": ["ok", "  "]}),
            Some(good.clone()),
            vec!["config.keywords.1"],
        ),
        (
            json!({"keywords": ["ok"], "subreddits": ["rust", "not a sub"]}),
            Some(good.clone()),
            vec!["config.subreddits.1"],
        ),
        (
            json!({"keywords": ["ok"]}),
            None,
            vec!["credentials.clientId", "credentials.clientSecret"],
        ),
        (
            json!({"keywords": ["ok"]}),
            Some(json!({"clientId": "x"})),
            vec!["credentials.clientSecret"],
        ),
    ] {
        let resp = app
            .graphql_as(
                s.token(),
                CONNECT,
                json!({"input": {"kind": "REDDIT", "config": config, "credentials": credentials}}),
            )
            .await;
        assert_code(&resp, "BAD_USER_INPUT");
        let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, want, "{resp}");
    }
}
