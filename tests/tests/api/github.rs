//! The GitHub connector against a local fake of the GitHub API: first sync, a re-sync where
//! every request is conditional, people and companies from profiles, a spent rate limit
//! (BACKOFF until the reset, then continuation), rejected credentials (ERROR, no retries,
//! recovery), 502s retried with backoff, a stopped run resumed from its cursors, a worker
//! SIGKILLed mid-run (its job taken over, or its run taken over once the run's lease expires), and the signed
//! webhook (signature refused or accepted, ping, redelivery, webhook + sync of one star).

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{
    SYNC, UPDATE, connect, integration, ok, signals, sync, wait_run,
};
use devsignal_tests::fakes::github::{FakeGitHub, Issue, Repo};
use devsignal_tests::{TestApp, TestDatabase, eventually, spawn_app_with, spawn_on, test_vars};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

async fn app_for(gh: &FakeGitHub) -> TestApp {
    spawn_app_with(&[("GITHUB_API_URL", &gh.url)]).await
}

/// Signals a repository's data stands for: each star, fork, opened issue or pull request, and
/// each closed (or merged) one.
fn expected(repo: &Repo) -> u64 {
    (repo.stargazers.len()
        + repo.forks.len()
        + repo.issues.len()
        + repo.issues.iter().filter(|i| i.closed_at.is_some()).count()) as u64
}

/// The account (github org, domain) of the contact with GitHub login `login`.
async fn account_of(app: &TestApp, login: &str) -> Option<(Option<String>, Option<String>)> {
    let contact = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::Github.eq(login))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no contact for {login}"));
    let account = contact.account_id?;
    let c = entity::companies::Entity::find_by_id(account)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    Some((c.github_org, c.domain))
}

/// The name of the account of the contact with GitHub login `login`, and the contact's first
/// name.
async fn names_of(app: &TestApp, login: &str) -> (Option<String>, Option<String>) {
    let contact = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::Github.eq(login))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no contact for {login}"));
    let mut account = None;
    if let Some(id) = contact.account_id {
        account = entity::companies::Entity::find_by_id(id)
            .one(&app.db)
            .await
            .unwrap()
            .map(|c| c.name);
    }
    (account, contact.first_name)
}

#[tokio::test]
async fn first_sync_reads_everything_and_a_resync_is_all_conditional() {
    let gh = FakeGitHub::start().await;
    let repo = FakeGitHub::generated(250, 30, 40);
    let want = expected(&repo);
    gh.repo("acme/widget", repo);
    gh.with(|d| d.token = Some("ghp_good".into()));
    gh.user("user1", json!({"company": "@acme"}));
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "GITHUB",
        json!({"repos": ["Acme/Widget"]}),
        Some(json!({"token": "ghp_good"})),
    )
    .await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(
        i["config"],
        json!({"repos": ["acme/widget"]}),
        "normalised, no secrets"
    );
    assert_eq!(i["status"], "CONNECTED");
    assert!(
        i["webhookUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/webhooks/github/{id}"))
    );

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], json!(want));
    assert_eq!(signals(&app, None).await, want);
    assert_eq!(signals(&app, Some("repo_star")).await, 250);
    assert_eq!(signals(&app, Some("repo_fork")).await, 30);
    assert_eq!(signals(&app, Some("pr_merged")).await, 2);
    let hits = gh.hits();
    assert_eq!(run["requests"], json!(hits.len()));
    assert!(
        hits.iter()
            .all(|h| h.authorization.as_deref() == Some("Bearer ghp_good"))
    );
    assert!(hits.iter().all(|h| {
        h.user_agent
            .as_deref()
            .is_some_and(|u| u.starts_with("DevSignal/"))
    }));
    // Pages follow Link: stargazers 1..3, and a 250-item list needs no probe past page 3.
    let star_pages: Vec<String> = hits
        .iter()
        .filter(|h| h.path.ends_with("/stargazers"))
        .filter_map(|h| h.param("page"))
        .collect();
    assert_eq!(star_pages, ["1", "2", "3"]);
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "CONNECTED");
    assert!(i["lastSuccessAt"].is_string());
    assert!(i["lastError"].is_null());
    // The integration writes as the system: its events name no user and no API key.
    let created = entity::events::Entity::find()
        .filter(entity::events::Column::EventType.eq("signal.created"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(created.len() as u64, want);
    assert!(
        created
            .iter()
            .all(|e| e.actor_user_id.is_none() && e.actor_api_key_id.is_none())
    );

    // Nothing changed: one conditional request per list, each a 304, nothing stored.
    gh.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["signalsCreated"], 0);
    let hits = gh.hits();
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(
        hits.iter().all(|h| h.conditional && h.status == 304),
        "{hits:?}"
    );
    assert_eq!(run["requests"], 3);

    // A full re-sync reads everything again and stores nothing twice.
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["full"], true);
    assert_eq!(run["signalsCreated"], 0);
    assert_eq!(signals(&app, None).await, want);

    // New stars land on the last page: the next run reads them.
    gh.with(|d| {
        let r = d.repos.get_mut("acme/widget").unwrap();
        for i in 0..5 {
            r.stargazers.push((format!("late{i}"), Utc::now()));
        }
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 5);
    assert_eq!(signals(&app, Some("repo_star")).await, 255);
}

#[tokio::test]
async fn a_full_last_page_is_probed_so_new_items_after_it_are_found() {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(200, 0, 0));
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    assert_eq!(sync(&app, &s, &id, false).await["signalsCreated"], 200);
    gh.clear_hits();
    assert_eq!(sync(&app, &s, &id, false).await["signalsCreated"], 0);
    assert!(gh.hits().iter().all(|h| h.status == 304), "{:?}", gh.hits());
    gh.with(|d| {
        d.repos
            .get_mut("acme/widget")
            .unwrap()
            .stargazers
            .push(("newcomer".into(), Utc::now()))
    });
    assert_eq!(sync(&app, &s, &id, false).await["signalsCreated"], 1);
}

#[tokio::test]
async fn people_and_companies_come_from_profiles() {
    let gh = FakeGitHub::start().await;
    let t = Utc::now() - chrono::Duration::days(3);
    let logins = ["alice", "bob", "carol", "dave", "erin", "frank"];
    gh.repo(
        "acme/widget",
        Repo {
            stargazers: logins.iter().map(|l| (l.to_string(), t)).collect(),
            ..Default::default()
        },
    );
    gh.user("alice", json!({"name": "Alice A", "company": "@Acme", "twitter_username": "alice_tw", "blog": "https://alice.dev"}));
    gh.user(
        "bob",
        json!({"company": "Initech", "blog": "https://www.initech.com/about"}),
    );
    gh.user(
        "carol",
        json!({"blog": "https://carol.github.io", "email": "carol@gmail.com"}),
    );
    gh.user("dave", json!({"company": "freelance"}));
    gh.with(|d| d.orgs.insert("dave".into(), vec!["Globex".into()]));
    gh.user(
        "erin",
        json!({"email": "erin@umbrella.io", "blog": "medium.com/@erin"}),
    );
    // frank has no profile (404): the signal still lands, with only the GitHub identity.
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 6, "{run}");

    let (org, _) = account_of(&app, "alice").await.unwrap();
    assert_eq!(
        org.as_deref(),
        Some("acme"),
        "@Acme is the GitHub organization acme"
    );
    let (_, domain) = account_of(&app, "bob").await.unwrap();
    assert_eq!(domain.as_deref(), Some("initech.com"), "the blog's domain");
    assert_eq!(
        account_of(&app, "carol").await,
        None,
        "never github.io or free mail"
    );
    let (org, _) = account_of(&app, "dave").await.unwrap();
    assert_eq!(org.as_deref(), Some("globex"), "a public organization");
    let (_, domain) = account_of(&app, "erin").await.unwrap();
    assert_eq!(
        domain.as_deref(),
        Some("umbrella.io"),
        "the public email's company domain, not medium.com"
    );
    assert_eq!(account_of(&app, "frank").await, None);
    // Names: the organization's display name as the profile spells it, a person's own name,
    // and never a login as a first name.
    assert_eq!(
        names_of(&app, "alice").await,
        (Some("Acme".into()), Some("Alice".into()))
    );
    assert_eq!(
        names_of(&app, "dave").await,
        (Some("Globex".into()), None),
        "the organization as GitHub lists it; the login is not a first name"
    );
    assert_eq!(names_of(&app, "frank").await, (None, None));
    let alice = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::Github.eq("alice"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.twitter.as_deref(), Some("alice_tw"));
    let carol = entity::contacts::Entity::find()
        .filter(entity::contacts::Column::Github.eq("carol"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.email.as_deref(), Some("carol@gmail.com"));

    // Organizations are read only when the company names none.
    let hits = gh.hits();
    let orgs: Vec<&str> = hits
        .iter()
        .filter(|h| h.path.ends_with("/orgs"))
        .map(|h| h.path.as_str())
        .collect();
    assert!(
        orgs.contains(&"/users/dave/orgs") && !orgs.contains(&"/users/alice/orgs"),
        "{orgs:?}"
    );
    // Profiles are read once: a full re-sync uses the cache.
    gh.clear_hits();
    sync(&app, &s, &id, true).await;
    assert!(
        gh.hits().iter().all(|h| !h.path.starts_with("/users/")),
        "{:?}",
        gh.hits()
    );
}

#[tokio::test]
async fn a_spent_rate_limit_backs_off_until_the_reset_then_continues() {
    let gh = FakeGitHub::start().await;
    let t = Utc::now() - chrono::Duration::days(1);
    gh.repo(
        "acme/widget",
        Repo {
            stargazers: ["u1", "u2", "u3"]
                .iter()
                .map(|l| (l.to_string(), t))
                .collect(),
            ..Default::default()
        },
    );
    for l in ["u1", "u2", "u3"] {
        gh.user(l, json!({"company": "@acme"}));
    }
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    // Resets are whole seconds, as GitHub sends them.
    let reset = chrono::TimeZone::timestamp_opt(&Utc, Utc::now().timestamp() + 4, 0).unwrap();
    gh.with(|d| {
        d.remaining = 3;
        d.reset = reset;
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert!(run["error"].as_str().unwrap().contains("rate limit"));
    let i = integration(&app, &s, &id).await;
    if i["status"] == "BACKOFF" {
        let next = chrono::DateTime::parse_from_rfc3339(i["nextSyncAt"].as_str().unwrap()).unwrap();
        assert_eq!(
            next.timestamp(),
            reset.timestamp(),
            "nextSyncAt is the reset"
        );
    } else {
        // The continuation may already have started if the reset passed meanwhile.
        assert!(Utc::now() >= reset, "{i}");
    }
    // The budget was spent, not exceeded: no request was refused.
    assert!(gh.hits().iter().all(|h| h.status != 403), "{:?}", gh.hits());
    // At the reset the continuation runs by itself and finishes the work.
    let i = eventually(Duration::from_secs(30), "the continuation", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    let runs = i["runs"]["edges"].as_array().unwrap();
    assert!(
        runs.iter().any(|r| r["node"]["status"] == "SUCCEEDED"),
        "{i}"
    );
    assert_eq!(signals(&app, Some("repo_star")).await, 3);
    assert!(gh.hits().iter().all(|h| h.status != 403));
}

#[tokio::test]
async fn rejected_credentials_stop_without_retries_until_they_change() {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(3, 0, 0));
    gh.with(|d| d.token = Some("good".into()));
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "GITHUB",
        json!({"repos": ["acme/widget"]}),
        Some(json!({"token": "bad"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["requests"], 1, "no retries on 401");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let err = i["lastError"].as_str().unwrap();
    assert!(err.contains("401") && err.contains("credentials"), "{err}");
    assert!(i["nextSyncAt"].is_null());
    // The schedule leaves it alone until the credentials change.
    assert_eq!(
        connectors::run::fan_out(&app.db, "GITHUB").await.unwrap(),
        0
    );
    assert_eq!(gh.hits().len(), 1);

    let resp = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "input": {"credentials": {"token": "good"}}}),
        )
        .await;
    assert_eq!(ok(&resp)["updateIntegration"]["status"], "CONNECTED");
    assert_eq!(
        connectors::run::fan_out(&app.db, "GITHUB").await.unwrap(),
        1,
        "due again"
    );
    let i = eventually(Duration::from_secs(30), "the scheduled run", || async {
        let i = integration(&app, &s, &id).await;
        (i["status"] == "CONNECTED" && i["lastError"].is_null()).then_some(i)
    })
    .await;
    assert!(i["lastSuccessAt"].is_string());
    assert_eq!(signals(&app, Some("repo_star")).await, 3);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(3, 0, 0));
    gh.with(|d| {
        d.fail.push(("stargazers".into(), 502));
        d.fail.push(("stargazers".into(), 502));
    });
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 3);
    let stars: Vec<u16> = gh
        .hits()
        .iter()
        .filter(|h| h.path.ends_with("/stargazers"))
        .map(|h| h.status)
        .collect();
    assert_eq!(stars, [502, 502, 200]);
    assert_eq!(run["requests"], json!(gh.hits().len()));

    // A source that keeps failing: the run fails, the integration backs off and is due later.
    gh.with(|d| {
        for _ in 0..4 {
            d.fail.push(("forks".into(), 503));
        }
    });
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "FAILED");
    assert!(run["error"].as_str().unwrap().contains("503"), "{run}");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "BACKOFF");
    assert!(i["nextSyncAt"].is_string());
}

#[tokio::test]
async fn a_killed_run_resumes_from_its_cursors() {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(250, 0, 0));
    // The run hangs on the third page of stargazers, where the process is then stopped.
    gh.with(|d| d.hang = Some("stargazers?per_page=100&page=3".into()));
    let test_db = TestDatabase::new().await;
    let vars = test_vars(
        &test_db,
        &[
            ("GITHUB_API_URL", &gh.url),
            ("JOB_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let mut app = spawn_on(test_db, vars.clone()).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    let resp = app.graphql_as(s.token(), SYNC, json!({"id": id})).await;
    let run_id = ok(&resp)["syncIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Pages 1 and 2 are stored and the cursor points at page 3, where the request hangs.
    eventually(
        Duration::from_secs(30),
        "the run to reach page 3",
        || async {
            let cursor = entity::integration_cursors::Entity::find()
                .filter(entity::integration_cursors::Column::Resource.eq("stars:acme/widget"))
                .one(&app.db)
                .await
                .unwrap()?;
            cursor.state["url"]
                .as_str()?
                .ends_with("page=3")
                .then_some(())
        },
    )
    .await;
    assert_eq!(signals(&app, Some("repo_star")).await, 200);
    // Kill: the process stops; the job's lease is released, the run is left RUNNING.
    let db = std::mem::replace(&mut app.test_db, TestDatabase::new().await);
    app.shutdown().await.unwrap();
    let before = gh.hits().len();
    let app = spawn_on(db, vars).await;
    let run = wait_run(&app, &s, &id, &run_id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(signals(&app, Some("repo_star")).await, 250);
    let after: Vec<String> = gh.hits()[before..]
        .iter()
        .filter(|h| h.path.ends_with("/stargazers"))
        .filter_map(|h| h.param("page"))
        .collect();
    assert_eq!(
        after,
        ["3"],
        "the run resumed at its cursor, not from page 1"
    );
}

/// A `serve --no-worker` API in this test and a `devsignal worker` process that the test can
/// SIGKILL mid-run: the run of a 250-star repository hangs on the third page of stargazers,
/// the worker dies there, and a second worker starts. Returns what the scenarios need.
struct Killed {
    gh: FakeGitHub,
    app: TestApp,
    s: devsignal_tests::Session,
    id: String,
    run_id: String,
    hits_before: usize,
    env: Vec<(String, String)>,
    cwd: tempfile::TempDir,
}

async fn kill_a_worker_mid_run(leases: &[(&str, &str)]) -> Killed {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(250, 0, 0));
    gh.with(|d| d.hang = Some("stargazers?per_page=100&page=3".into()));
    let test_db = TestDatabase::new().await;
    let mut extra = vec![("GITHUB_API_URL", gh.url.as_str())];
    extra.extend_from_slice(leases);
    let vars = test_vars(&test_db, &extra);
    let mut config = server::config::Config::from_vars(&vars).unwrap();
    config.run_worker = false;
    let env: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k != "PORT")
        .chain([("SCHEDULER_ENABLED".to_owned(), "false".to_owned())])
        .collect();
    let app = devsignal_tests::spawn_config(test_db, config).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    let cwd = tempfile::tempdir().unwrap();
    let mut worker = start_worker(&cwd, &env);
    let resp = app.graphql_as(s.token(), SYNC, json!({"id": id})).await;
    let run_id = ok(&resp)["syncIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        Duration::from_secs(60),
        "the run to reach page 3",
        || async {
            let cursor = entity::integration_cursors::Entity::find()
                .filter(entity::integration_cursors::Column::Resource.eq("stars:acme/widget"))
                .one(&app.db)
                .await
                .unwrap()?;
            cursor.state["url"]
                .as_str()?
                .ends_with("page=3")
                .then_some(())
        },
    )
    .await;
    worker.kill9();
    drop(worker);
    assert_eq!(signals(&app, Some("repo_star")).await, 200);
    // Nothing was released: the run is still RUNNING under the dead worker's lease.
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["runs"]["edges"][0]["node"]["id"], run_id.as_str());
    assert_eq!(i["runs"]["edges"][0]["node"]["status"], "RUNNING");
    let hits_before = gh.hits().len();
    Killed {
        gh,
        app,
        s,
        id,
        run_id,
        hits_before,
        env,
        cwd,
    }
}

fn start_worker(cwd: &tempfile::TempDir, env: &[(String, String)]) -> crate::cli::Proc {
    let port = crate::cli::free_port().to_string();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("WORKER_HEALTH_PORT", &port));
    crate::cli::Proc::start(cwd.path(), &["worker"], &env)
}

/// The stargazer pages the fake served since the kill.
fn pages_after_kill(k: &Killed) -> Vec<String> {
    k.gh.hits()[k.hits_before..]
        .iter()
        .filter(|h| h.path.ends_with("/stargazers"))
        .filter_map(|h| h.param("page"))
        .collect()
}

/// SIGKILL, then the job's lease expires: another worker runs the job again, which carries on
/// the same run from its cursors.
#[tokio::test]
async fn a_run_whose_worker_was_killed_goes_on_when_its_job_is_taken_over() {
    let k = kill_a_worker_mid_run(&[("JOB_LEASE_SECONDS", "2")]).await;
    let mut second = start_worker(&k.cwd, &k.env);
    let run = wait_run(&k.app, &k.s, &k.id, &k.run_id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run} {:?}", second.output());
    assert_eq!(signals(&k.app, Some("repo_star")).await, 250);
    assert_eq!(pages_after_kill(&k), ["3"], "resumed at its cursor");
    assert_eq!(second.terminate().code(), Some(0));
}

/// SIGKILL while the dead worker's job stays claimed (a long job lease): once the run's own
/// lease (`CONNECTOR_RUN_LEASE_SECONDS`) has expired, a new sync takes over — the dead run is
/// marked FAILED ("interrupted") and the new run resumes from its cursors. Until then a sync
/// answers the run in progress.
#[tokio::test]
async fn a_run_whose_worker_was_killed_is_taken_over_once_its_lease_expires() {
    let k = kill_a_worker_mid_run(&[
        ("JOB_LEASE_SECONDS", "600"),
        ("CONNECTOR_RUN_LEASE_SECONDS", "2"),
    ])
    .await;
    let mut second = start_worker(&k.cwd, &k.env);
    let new_run = eventually(
        Duration::from_secs(30),
        "a sync to take over the dead run",
        || async {
            let resp = k
                .app
                .graphql_as(k.s.token(), SYNC, json!({"id": k.id}))
                .await;
            let id = ok(&resp)["syncIntegration"]["id"].as_str()?.to_owned();
            (id != k.run_id).then_some(id)
        },
    )
    .await;
    let run = wait_run(&k.app, &k.s, &k.id, &new_run).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run} {:?}", second.output());
    let old = wait_run(&k.app, &k.s, &k.id, &k.run_id).await;
    assert_eq!(old["status"], "FAILED");
    assert!(
        old["error"].as_str().unwrap().starts_with("interrupted"),
        "{old}"
    );
    assert_eq!(signals(&k.app, Some("repo_star")).await, 250);
    assert_eq!(
        pages_after_kill(&k),
        ["3"],
        "resumed at the dead run's cursor"
    );
    assert_eq!(second.terminate().code(), Some(0));
}

async fn deliver(
    app: &TestApp,
    id: &str,
    event: &str,
    body: &Value,
    signature: Option<String>,
    delivery: &str,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/webhooks/github/{id}")))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .body(bytes);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.send().await.unwrap()
}

fn signed(secret: &str, body: &Value) -> Option<String> {
    Some(connectors::webhook::sign(
        secret,
        &serde_json::to_vec(body).unwrap(),
    ))
}

#[tokio::test]
async fn the_webhook_checks_its_signature_and_maps_events() {
    let gh = FakeGitHub::start().await;
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, secret) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    assert!(secret.starts_with("whsec_"));
    let star = json!({
        "action": "created",
        "starred_at": "2026-11-30T10:00:00Z",
        "repository": {"full_name": "Acme/Widget"},
        "sender": {"login": "Octocat"},
    });
    // Missing or wrong signatures: 401, nothing stored.
    let resp = deliver(&app, &id, "star", &star, None, "d1").await;
    assert_eq!(resp.status(), 401);
    let resp = deliver(&app, &id, "star", &star, signed("whsec_wrong", &star), "d1").await;
    assert_eq!(resp.status(), 401);
    let mut tampered = star.clone();
    tampered["sender"]["login"] = json!("mallory");
    let resp = deliver(
        &app,
        &id,
        "star",
        &tampered,
        signed(&secret, &star).map(|s| s.replace("sha256=", "sha256=0")),
        "d1",
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(signals(&app, None).await, 0);
    // An unknown integration id is not found.
    let other = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        deliver(&app, &other, "star", &star, signed(&secret, &star), "d1")
            .await
            .status(),
        404
    );

    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    let resp = deliver(&app, &id, "ping", &ping, signed(&secret, &ping), "d0").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], "pong");

    let resp = deliver(&app, &id, "star", &star, signed(&secret, &star), "d1").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["signalType"], "repo_star");
    assert_eq!(body["deduplicated"], false);
    // A redelivery of the same delivery is the same signal.
    let resp = deliver(&app, &id, "star", &star, signed(&secret, &star), "d1").await;
    assert_eq!(resp.json::<Value>().await.unwrap()["deduplicated"], true);
    assert_eq!(signals(&app, None).await, 1);
    let sig = entity::signals::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sig.idempotency_key.as_deref(),
        Some("github:star:acme/widget:octocat")
    );
    assert_eq!(sig.timestamp.to_rfc3339(), "2026-11-30T10:00:00+00:00");

    // Untracked events are accepted and ignored.
    let push = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/widget"}, "sender": {"login": "octocat"}});
    assert_eq!(
        deliver(&app, &id, "push", &push, signed(&secret, &push), "d2")
            .await
            .status(),
        202
    );

    // A merged pull request is pr_merged, not also pr_closed.
    let pr = json!({
        "action": "closed",
        "pull_request": {"number": 7, "merged": true, "merged_at": "2026-11-30T11:00:00Z",
                          "closed_at": "2026-11-30T11:00:00Z", "user": {"login": "octocat"}, "title": "Fix"},
        "repository": {"full_name": "acme/widget"},
        "sender": {"login": "maintainer"},
    });
    let resp = deliver(&app, &id, "pull_request", &pr, signed(&secret, &pr), "d3").await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["signalType"],
        "pr_merged"
    );
    for (event, body, ty) in [
        (
            "issues",
            json!({"action": "opened", "issue": {"number": 9, "user": {"login": "a"}, "created_at": "2026-11-29T00:00:00Z"}, "repository": {"full_name": "acme/widget"}, "sender": {"login": "a"}}),
            "issue_opened",
        ),
        (
            "issue_comment",
            json!({"action": "created", "comment": {"id": 55, "user": {"login": "b"}, "created_at": "2026-11-29T00:00:00Z"}, "issue": {"number": 9}, "repository": {"full_name": "acme/widget"}, "sender": {"login": "b"}}),
            "issue_comment",
        ),
        (
            "fork",
            json!({"forkee": {"id": 77, "full_name": "c/widget", "owner": {"login": "c"}, "created_at": "2026-11-29T00:00:00Z"}, "repository": {"full_name": "acme/widget"}, "sender": {"login": "c"}}),
            "repo_fork",
        ),
        (
            "watch",
            json!({"action": "started", "repository": {"full_name": "acme/widget"}, "sender": {"login": "d"}}),
            "repo_watch",
        ),
        (
            "release",
            json!({"action": "published", "release": {"id": 3, "tag_name": "v1.0.0", "author": {"login": "e"}, "published_at": "2026-11-29T00:00:00Z"}, "repository": {"full_name": "acme/widget"}, "sender": {"login": "e"}}),
            "release_published",
        ),
    ] {
        let resp = deliver(&app, &id, event, &body, signed(&secret, &body), event).await;
        assert_eq!(resp.status(), 200, "{event}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["signalType"],
            ty,
            "{event}"
        );
    }
    assert_eq!(signals(&app, Some("pr_closed")).await, 0);
    assert_eq!(signals(&app, None).await, 7);
}

#[tokio::test]
async fn a_webhook_and_a_later_sync_of_the_same_star_make_one_signal() {
    let gh = FakeGitHub::start().await;
    let t = Utc::now() - chrono::Duration::hours(2);
    gh.repo(
        "acme/widget",
        Repo {
            stargazers: vec![("octocat".into(), t), ("hubot".into(), t)],
            forks: vec![(77, "c".into(), t)],
            issues: vec![Issue {
                number: 9,
                author: "a".into(),
                pull_request: false,
                created_at: t,
                updated_at: t,
                closed_at: None,
                merged_at: None,
            }],
        },
    );
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, secret) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    for (event, body) in [
        (
            "star",
            json!({"action": "created", "starred_at": t.to_rfc3339(), "repository": {"full_name": "acme/widget"}, "sender": {"login": "octocat"}}),
        ),
        (
            "fork",
            json!({"forkee": {"id": 77, "full_name": "c/widget", "owner": {"login": "c"}}, "repository": {"full_name": "acme/widget"}, "sender": {"login": "c"}}),
        ),
        (
            "issues",
            json!({"action": "opened", "issue": {"number": 9, "user": {"login": "a"}}, "repository": {"full_name": "acme/widget"}, "sender": {"login": "a"}}),
        ),
    ] {
        let resp = deliver(
            &app,
            &id,
            event,
            &body,
            signed(&secret, &body),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(signals(&app, None).await, 3);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["signalsCreated"], 1, "only hubot's star is new: {run}");
    assert_eq!(signals(&app, Some("repo_star")).await, 2);
    assert_eq!(signals(&app, Some("repo_fork")).await, 1);
    assert_eq!(signals(&app, Some("issue_opened")).await, 1);
}

#[tokio::test]
async fn issues_past_one_page_continue_since_the_latest_update() {
    let gh = FakeGitHub::start().await;
    gh.repo("acme/widget", FakeGitHub::generated(0, 0, 150));
    let app = app_for(&gh).await;
    let s = app.register("admin@vendor.io", "Vendor").await;
    let (id, _) = connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    sync(&app, &s, &id, false).await;
    let before = signals(&app, None).await;
    // The next run asks for what changed since the latest update, then it is 304s again.
    gh.clear_hits();
    assert_eq!(sync(&app, &s, &id, false).await["signalsCreated"], 0);
    let issues: Vec<_> = gh
        .hits()
        .into_iter()
        .filter(|h| h.path.ends_with("/issues"))
        .collect();
    assert_eq!(issues.len(), 1);
    assert!(issues[0].param("since").is_some(), "{issues:?}");
    gh.clear_hits();
    sync(&app, &s, &id, false).await;
    assert!(gh.hits().iter().all(|h| h.status == 304), "{:?}", gh.hits());
    // An old issue closed now is found.
    gh.with(|d| {
        let i = &mut d.repos.get_mut("acme/widget").unwrap().issues[1];
        i.closed_at = Some(Utc::now());
        i.updated_at = Utc::now();
    });
    assert_eq!(sync(&app, &s, &id, false).await["signalsCreated"], 1);
    assert_eq!(signals(&app, None).await, before + 1);
}
