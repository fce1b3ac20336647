//! The Discord connector against a local fake of the Discord API: the first sync reads every
//! page of every channel (and no further back than 7 days), a re-sync creates nothing; classes
//! (question channels, threads created, bots and system messages skipped, forum posts, an
//! unreadable channel skipped); per-route buckets sat out inside the run when they reset within
//! moments, a long reset or a global 429 stopping the run (PARTIAL, BACKOFF) until the
//! continuation; rejected credentials (ERROR, recovery); 502s retried; a stopped run resuming
//! at its cursor; bad configuration refused; and tenants kept apart across Discord and Twitter/X.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{UPDATE, connect, integration, ok, signals, sync};
use devsignal_tests::fakes::discord::{Bucket, Channel, FakeDiscord, Message, snowflake};
use devsignal_tests::fakes::twitter::FakeTwitter;
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const GUILD: u64 = 100_000_000_000_000_001;
const GENERAL: u64 = 100_000_000_000_000_010;
const HELP: u64 = 100_000_000_000_000_011;
const NEWS: u64 = 100_000_000_000_000_012;
const FORUM: u64 = 100_000_000_000_000_013;
const VOICE: u64 = 100_000_000_000_000_014;
const MODS: u64 = 100_000_000_000_000_015;

async fn app_for(dc: &FakeDiscord) -> TestApp {
    spawn_app_with(&[("DISCORD_API_URL", &dc.url)]).await
}

fn text(id: u64, name: &str) -> Channel {
    Channel {
        id,
        name: name.into(),
        kind: 0,
        parent_id: None,
        owner_id: None,
    }
}

fn config() -> Value {
    json!({"guildId": GUILD.to_string()})
}

fn creds(t: &str) -> Option<Value> {
    Some(json!({"botToken": t}))
}

/// A guild with `#general` holding `n` messages by distinct people.
fn general_with(dc: &FakeDiscord, n: usize) -> Vec<u64> {
    dc.channel(GUILD, text(GENERAL, "general"));
    let msgs = FakeDiscord::generated(n, 1);
    let ids = msgs.iter().map(|m| m.id).collect();
    dc.post(GENERAL, msgs);
    ids
}

/// The `after` parameters of the requests for `channel`'s messages.
fn afters(dc: &FakeDiscord, channel: u64) -> Vec<String> {
    dc.hits()
        .iter()
        .filter(|h| h.path.ends_with(&format!("/channels/{channel}/messages")))
        .filter_map(|h| h.param("after"))
        .collect()
}

fn message_statuses(dc: &FakeDiscord) -> Vec<u16> {
    dc.hits()
        .iter()
        .filter(|h| h.path.ends_with("/messages"))
        .map(|h| h.status)
        .collect()
}

#[tokio::test]
async fn discord_first_sync_reads_every_page_and_a_resync_creates_nothing() {
    let dc = FakeDiscord::start().await;
    dc.with(|d| d.token = Some("bot-good".into()));
    let ids = general_with(&dc, 250);
    // A message from before the 7-day window is not read.
    let old = Utc::now() - chrono::Duration::days(8);
    dc.post(
        GENERAL,
        vec![Message {
            id: snowflake(old, 0),
            author_id: 1,
            username: "ancient".into(),
            global_name: None,
            bot: false,
            kind: 0,
            content: "long ago".into(),
            thread_id: None,
        }],
    );
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("bot-good")).await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(
        i["config"],
        json!({"guildId": GUILD.to_string(), "channels": []})
    );

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 250);
    assert_eq!(signals(&app, Some("discord_message")).await, 250);
    let hits = dc.hits();
    assert_eq!(run["requests"], json!(hits.len()));
    assert!(
        hits.iter()
            .all(|h| h.authorization.as_deref() == Some("Bot bot-good"))
    );
    // Three pages: from 7 days ago, then after the newest id of each full page.
    let pages = afters(&dc, GENERAL);
    assert_eq!(pages.len(), 3, "{pages:?}");
    let floor: u64 = pages[0].parse().unwrap();
    let week_ago = snowflake(Utc::now() - chrono::Duration::days(7), 0);
    assert!(
        floor.abs_diff(week_ago) < (120_000 << 22),
        "the first page starts 7 days ago"
    );
    assert_eq!(pages[1..], [ids[99].to_string(), ids[199].to_string()]);
    assert!(
        hits.iter()
            .all(|h| h.param("limit").is_none_or(|l| l == "100"))
    );
    // The cursor is the newest id read.
    let cursor = entity::integration_cursors::Entity::find()
        .filter(entity::integration_cursors::Column::Resource.eq(format!("channel:{GENERAL}")))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cursor.state["after"], ids[249].to_string());
    // The person is the Discord id with the display name.
    let ident = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("DISCORD"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(ident.len(), 250);
    let key = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq(format!("discord:{}", ids[0])))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.metadata["channelName"], "general");

    // Nothing new: one request after the cursor, nothing stored.
    dc.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["signalsCreated"], 0);
    assert_eq!(afters(&dc, GENERAL), [ids[249].to_string()]);
    // A full re-sync reads the window again and stores nothing twice.
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["signalsCreated"], 0);
    assert_eq!(signals(&app, None).await, 250);
    // New messages are read after the cursor.
    dc.post(GENERAL, FakeDiscord::generated_until(3, 5000, Utc::now()));
    dc.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 3);
    assert_eq!(afters(&dc, GENERAL), [ids[249].to_string()]);
}

fn msg(id: u64, author: u64, name: &str, kind: u64, content: &str) -> Message {
    Message {
        id,
        author_id: author,
        username: name.to_lowercase(),
        global_name: Some(name.into()),
        bot: false,
        kind,
        content: content.into(),
        thread_id: None,
    }
}

#[tokio::test]
async fn discord_messages_threads_and_questions_are_classified_and_bots_skipped() {
    let dc = FakeDiscord::start().await;
    let t = |m: i64, seq: u64| snowflake(Utc::now() - chrono::Duration::minutes(m), seq);
    let (alice, bob, carol, dave, erin, frank, bot, joiner) = (11, 12, 13, 14, 15, 16, 17, 18);
    let thread1 = t(50, 1);
    let thread2 = t(40, 2);
    for c in [
        text(GENERAL, "general"),
        text(HELP, "help"),
        Channel {
            kind: 5,
            ..text(NEWS, "announcements")
        },
        Channel {
            kind: 15,
            ..text(FORUM, "support-forum")
        },
        Channel {
            kind: 2,
            ..text(VOICE, "voice")
        },
        text(MODS, "mods"),
        // A thread of #general, announced there, and a forum post.
        Channel {
            id: thread1,
            name: "release plans".into(),
            kind: 11,
            parent_id: Some(GENERAL),
            owner_id: Some(alice),
        },
        Channel {
            id: thread2,
            name: "install fails".into(),
            kind: 11,
            parent_id: Some(FORUM),
            owner_id: Some(frank),
        },
    ] {
        dc.channel(GUILD, c);
    }
    dc.with(|d| d.forbidden.insert(MODS));
    let mut announce = msg(t(50, 3), alice, "Alice", 18, "release plans");
    announce.thread_id = Some(thread1);
    let mut from_bot = msg(t(30, 4), bot, "Mee6", 0, "level up!");
    from_bot.bot = true;
    dc.post(
        GENERAL,
        vec![
            msg(t(60, 5), alice, "Alice", 0, "hello all"),
            msg(t(59, 6), bob, "Bob", 19, "hi alice"),
            announce,
            from_bot,
            msg(t(20, 7), joiner, "Joiner", 7, ""),
        ],
    );
    dc.post(
        HELP,
        vec![msg(t(45, 8), carol, "Carol", 0, "how do I deploy?")],
    );
    dc.post(NEWS, vec![msg(t(44, 9), dave, "Dave", 0, "v2 is out")]);
    dc.post(VOICE, vec![msg(t(43, 10), dave, "Dave", 0, "in voice")]);
    dc.post(MODS, vec![msg(t(42, 11), dave, "Dave", 0, "secret")]);
    dc.post(
        thread1,
        vec![msg(t(49, 12), erin, "Erin", 0, "count me in")],
    );
    // A forum post's starter message has the thread's id.
    dc.post(
        thread2,
        vec![msg(thread2, frank, "Frank", 0, "npm install fails")],
    );

    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("x")).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        signals(&app, Some("discord_message")).await,
        4,
        "alice, bob, dave, erin"
    );
    assert_eq!(
        signals(&app, Some("discord_question_asked")).await,
        2,
        "in #help and in a post of #support-forum"
    );
    assert_eq!(
        signals(&app, Some("discord_thread_created")).await,
        2,
        "the announced thread once, and the forum post"
    );
    assert_eq!(run["signalsCreated"], 8);
    let thread_key = entity::signals::Entity::find()
        .filter(entity::signals::Column::IdempotencyKey.eq(format!("discord:thread:{thread1}")))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(thread_key.signal_type, "discord_thread_created");
    // The voice channel is not read; the forum itself has no messages to read; #mods answers
    // 403 and is skipped (the channels were not named, so it is not an error).
    let hits = dc.hits();
    let read: Vec<&str> = hits
        .iter()
        .filter(|h| h.path.ends_with("/messages"))
        .map(|h| h.path.as_str())
        .collect();
    assert!(!read.iter().any(|p| p.contains(&VOICE.to_string())));
    assert!(!read.iter().any(|p| p.contains(&FORUM.to_string())));
    assert!(read.iter().any(|p| p.contains(&MODS.to_string())));
    assert!(read.iter().any(|p| p.contains(&thread2.to_string())));
    // People: six, by their Discord ids and display names; never the bot or the join notice.
    let idents = entity::contact_identities::Entity::find()
        .filter(entity::contact_identities::Column::Kind.eq("DISCORD"))
        .all(&app.db)
        .await
        .unwrap();
    let mut who: Vec<String> = idents.iter().map(|i| i.value.clone()).collect();
    who.sort();
    assert_eq!(who, ["11", "12", "13", "14", "15", "16"]);
    let resp = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 50) { edges { node { firstName } } } }",
            json!({}),
        )
        .await;
    let names: Vec<String> = ok(&resp)["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["firstName"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"Carol".to_owned()), "{names:?}");
    let q = entity::signals::Entity::find()
        .filter(entity::signals::Column::SignalType.eq("discord_question_asked"))
        .all(&app.db)
        .await
        .unwrap();
    let chans: Vec<&str> = q
        .iter()
        .map(|s| s.metadata["channelName"].as_str().unwrap())
        .collect();
    assert!(
        chans.contains(&"help") && chans.contains(&"support-forum"),
        "{chans:?}"
    );

    // Named channels only: a channel named explicitly that the bot cannot read is an error.
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"config": {"guildId": GUILD.to_string(), "channels": [MODS.to_string()]}}}),
        )
        .await;
    ok(&resp);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert!(run["error"].as_str().unwrap().contains("#mods"), "{run}");
}

#[tokio::test]
async fn discord_a_bucket_resetting_within_moments_is_waited_out_inside_the_run() {
    let dc = FakeDiscord::start().await;
    general_with(&dc, 250);
    // One request per 0.3 s on the messages route, and a global 429 for 0.2 s on the first.
    dc.with(|d| {
        d.bucket = Some(Bucket::new(1, Duration::from_millis(300)));
        d.limited.push(("/messages".into(), 0.2, true));
    });
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("x")).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(run["error"].is_null());
    assert_eq!(run["signalsCreated"], 250);
    // The injected 429 was retried after its retry_after; the bucket itself was never
    // overrun: each empty bucket was waited out before the next request.
    assert_eq!(message_statuses(&dc), [429, 200, 200, 200]);
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "CONNECTED");
    assert!(i["nextSyncAt"].is_null());
}

#[tokio::test]
async fn discord_a_long_reset_or_global_limit_backs_off_then_the_continuation_finishes() {
    let dc = FakeDiscord::start().await;
    let ids = general_with(&dc, 250);
    dc.with(|d| d.bucket = Some(Bucket::new(2, Duration::from_secs(3))));
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("x")).await;
    let started = Utc::now();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(run["error"].as_str().unwrap().contains("rate limit"));
    assert_eq!(
        signals(&app, None).await,
        200,
        "two pages before the bucket ran dry"
    );
    let i = integration(&app, &s, &id).await;
    if i["status"] == "BACKOFF" {
        let next = chrono::DateTime::parse_from_rfc3339(i["nextSyncAt"].as_str().unwrap()).unwrap();
        let wait = next.with_timezone(&Utc) - started;
        assert!(
            wait > chrono::Duration::seconds(1) && wait <= chrono::Duration::seconds(4),
            "nextSyncAt is the bucket's reset: {wait}"
        );
    }
    // No request hit the empty bucket.
    assert!(!message_statuses(&dc).contains(&429));
    let before = afters(&dc, GENERAL).len();
    eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert_eq!(signals(&app, None).await, 250);
    assert_eq!(
        afters(&dc, GENERAL)[before..],
        [ids[199].to_string()],
        "the continuation starts at the cursor"
    );

    // A global 429 with a retry_after past the inline wait stops the run too.
    dc.post(GENERAL, FakeDiscord::generated_until(5, 7000, Utc::now()));
    dc.with(|d| d.limited.push(("/messages".into(), 2.5, true)));
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    eventually(
        Duration::from_secs(30),
        "the second continuation",
        || async {
            let i = integration(&app, &s, &id).await;
            (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(())
        },
    )
    .await;
    assert_eq!(signals(&app, None).await, 255);
}

#[tokio::test]
async fn discord_rejected_credentials_stop_until_they_change() {
    let dc = FakeDiscord::start().await;
    general_with(&dc, 3);
    dc.with(|d| d.token = Some("good".into()));
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("bad")).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["requests"], 1, "no retries on 401");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let err = i["lastError"].as_str().unwrap();
    assert!(err.contains("401") && err.contains("credentials"), "{err}");
    assert!(i["nextSyncAt"].is_null());
    assert_eq!(
        connectors::run::fan_out(&app.db, "DISCORD").await.unwrap(),
        0
    );
    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": {"botToken": "good"}}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    // The cron entry fans out to it.
    let def = jobs::registry::find("discord-sync-scheduler").unwrap();
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
async fn discord_server_errors_are_retried() {
    let dc = FakeDiscord::start().await;
    general_with(&dc, 3);
    dc.with(|d| {
        d.fail.push(("/messages".into(), 502));
        d.fail.push(("/messages".into(), 502));
    });
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("x")).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 3);
    assert_eq!(message_statuses(&dc), [502, 502, 200]);
    assert_eq!(run["requests"], json!(dc.hits().len()));
}

#[tokio::test]
async fn discord_a_stopped_run_resumes_from_its_cursor() {
    let dc = FakeDiscord::start().await;
    let ids = general_with(&dc, 250);
    // Page 3 keeps failing: the run stops after storing pages 1 and 2.
    let page3 = format!("after={}", ids[199]);
    dc.with(|d| {
        for _ in 0..4 {
            d.fail.push((page3.clone(), 503));
        }
    });
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("x")).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(run["error"].as_str().unwrap().contains("503"), "{run}");
    assert_eq!(signals(&app, None).await, 200);
    dc.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 50);
    assert_eq!(
        afters(&dc, GENERAL),
        [ids[199].to_string()],
        "pages 1 and 2 are not read again"
    );
}

#[tokio::test]
async fn discord_bad_configuration_is_refused_naming_the_field() {
    let dc = FakeDiscord::start().await;
    let app = app_for(&dc).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let g = GUILD.to_string();
    for (input, field) in [
        (
            json!({"config": {}, "credentials": {"botToken": "x"}}),
            "config.guildId",
        ),
        (
            json!({"config": {"guildId": "my server"}, "credentials": {"botToken": "x"}}),
            "config.guildId",
        ),
        (
            json!({"config": {"guildId": g, "channels": ["general"]}, "credentials": {"botToken": "x"}}),
            "config.channels.0",
        ),
        (
            json!({"config": {"guildId": g, "channels": "general"}, "credentials": {"botToken": "x"}}),
            "config.channels",
        ),
        (
            json!({"config": {"guildId": g, "channelz": []}, "credentials": {"botToken": "x"}}),
            "config.channelz",
        ),
        (json!({"config": {"guildId": g}}), "credentials.botToken"),
        (
            json!({"config": {"guildId": g}, "credentials": {"botToken": " "}}),
            "credentials.botToken",
        ),
    ] {
        let mut input = input;
        input["kind"] = json!("DISCORD");
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
    // A guild the bot is not in: the run fails naming it and nothing is read.
    let (id, _) = connect(&app, &s, "DISCORD", config(), creds("x")).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert!(run["error"].as_str().unwrap().contains(&g), "{run}");
    assert_eq!(integration(&app, &s, &id).await["status"], "ERROR");
}

/// Two organizations connect Discord and Twitter/X against the same sources; each sees only
/// its own signals and contacts.
#[tokio::test]
async fn discord_and_twitter_signals_stay_with_their_tenant() {
    let dc = FakeDiscord::start().await;
    general_with(&dc, 3);
    let tw = FakeTwitter::start().await;
    tw.generated(2, 1_000_000, "acme rocks");
    tw.generated(4, 2_000_000, "globex rocks");
    let app = spawn_app_with(&[("DISCORD_API_URL", &dc.url), ("TWITTER_API_URL", &tw.url)]).await;
    let (a, b) = app.two_tenants().await;
    let (da, _) = connect(&app, &a, "DISCORD", config(), creds("x")).await;
    let (ta, _) = connect(
        &app,
        &a,
        "TWITTER",
        json!({"keywords": ["acme"]}),
        Some(json!({"bearerToken": "t"})),
    )
    .await;
    let (tb, _) = connect(
        &app,
        &b,
        "TWITTER",
        json!({"keywords": ["globex"]}),
        Some(json!({"bearerToken": "t"})),
    )
    .await;
    assert_eq!(sync(&app, &a, &da, false).await["signalsCreated"], 3);
    assert_eq!(sync(&app, &a, &ta, false).await["signalsCreated"], 2);
    assert_eq!(sync(&app, &b, &tb, false).await["signalsCreated"], 4);
    let q = "{ signals(first: 100) { totalCount edges { node { type } } } contacts(first: 100) { totalCount edges { node { twitter } } } }";
    let ra = app.graphql_as(a.token(), q, json!({})).await;
    let rb = app.graphql_as(b.token(), q, json!({})).await;
    let (ra, rb) = (ok(&ra), ok(&rb));
    assert_eq!(ra["signals"]["totalCount"], 5);
    assert_eq!(ra["contacts"]["totalCount"], 5);
    assert_eq!(rb["signals"]["totalCount"], 4);
    assert_eq!(rb["contacts"]["totalCount"], 4);
    let handles = |r: &Value| -> Vec<String> {
        r["contacts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["node"]["twitter"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        handles(ra).iter().all(|h| h.starts_with("tw100000")),
        "{:?}",
        handles(ra)
    );
    assert!(
        handles(rb).iter().all(|h| h.starts_with("tw200000")),
        "{:?}",
        handles(rb)
    );
    assert!(
        rb["signals"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["node"]["type"] != "discord_message")
    );
    // B cannot run or read A's integrations.
    assert_code(
        &app.graphql_as(
            b.token(),
            devsignal_tests::connectors::SYNC,
            json!({"id": da}),
        )
        .await,
        "NOT_FOUND",
    );
}
