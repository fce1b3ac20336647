//! GDPR rights: `exportContactData` (art. 15) returns what is held about a person;
//! `eraseContact` (art. 17) leaves no trace of them in any table (every row of every table is
//! searched for their email, name and login), keeps their signals anonymous for the account's
//! score, and keeps hashed tombstones so that ingest (GraphQL and REST), contact creation and
//! upserts never bring them back; nor does a connector's re-sync, which no longer reads or
//! caches their profile. ADMIN only; other organizations get NOT_FOUND.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::connectors::{connect, sync};
use devsignal_tests::fakes::github::{FakeGitHub, Issue, Repo};
use devsignal_tests::{
    Recorder, Session, TestApp, assert_code, eventually, spawn_app, spawn_app_with,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

const EMAIL: &str = "zelda.quixote@erasable-example.dev";
const DUP_EMAIL: &str = "zq.personal@mailbox-example.org";
const LOGIN: &str = "zquixote";
const AVATAR: &str = "avatars.example-cdn.test/u/zq-4711.png";
/// What must be found nowhere after the erasure (lower case).
const TRACES: &[&str] = &[
    EMAIL,
    DUP_EMAIL,
    LOGIN,
    "zelda quixote",
    "quixote",
    AVATAR,
    "+1 555 0142",
];

const INGEST: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { results { success dropped signal { id contact { id } account { id } } error { message } } } }";
const ERASE: &str = "mutation($id: ID!) { eraseContact(id: $id) { contactId identities signalsAnonymised activitiesDeleted dealsUnlinked mergesDeleted rowsRedacted tombstones } }";
const EXPORT: &str = "query($id: ID!) { exportContactData(id: $id) }";

async fn gql(app: &TestApp, s: &Session, q: &str, v: Value) -> Value {
    let r = app.graphql_as(s.token(), q, v).await;
    ok(&r).clone()
}

/// Every row of every table as text, lower case: PostgreSQL's `row::text`, SQLite's columns
/// read as bytes (so text inside blobs counts too).
async fn every_row(app: &TestApp) -> Vec<(String, String)> {
    let db = &app.db;
    let backend = db.get_database_backend();
    let mut out = Vec::new();
    let q = |sql: String| Statement::from_string(backend, sql);
    if backend == DbBackend::Postgres {
        let tables = db
            .query_all_raw(q(
                "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public'".into(),
            ))
            .await
            .unwrap();
        for t in tables {
            let t: String = t.try_get("", "t").unwrap();
            for r in db
                .query_all_raw(q(format!("SELECT x::text AS v FROM \"{t}\" x")))
                .await
                .unwrap()
            {
                let v: String = r.try_get("", "v").unwrap();
                out.push((t.clone(), v.to_lowercase()));
            }
        }
    } else {
        let tables = db
            .query_all_raw(q(
                "SELECT name AS t FROM sqlite_master WHERE type = 'table'".into(),
            ))
            .await
            .unwrap();
        for t in tables {
            let t: String = t.try_get("", "t").unwrap();
            let cols = db
                .query_all_raw(q(format!("SELECT name AS c FROM pragma_table_info('{t}')")))
                .await
                .unwrap();
            for c in cols {
                let c: String = c.try_get("", "c").unwrap();
                for r in db
                    .query_all_raw(q(format!("SELECT hex(\"{c}\") AS v FROM \"{t}\"")))
                    .await
                    .unwrap()
                {
                    let v: Option<String> = r.try_get("", "v").unwrap();
                    let bytes = unhex(&v.unwrap_or_default());
                    let text = String::from_utf8_lossy(&bytes).to_lowercase();
                    out.push((format!("{t}.{c}"), text));
                }
            }
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

async fn traces(app: &TestApp) -> Vec<String> {
    mentions(app, TRACES).await
}

/// Rows of any table holding any of `needles` (lower case), as "table: row".
async fn mentions(app: &TestApp, needles: &[&str]) -> Vec<String> {
    every_row(app)
        .await
        .into_iter()
        .filter(|(_, v)| needles.iter().any(|n| v.contains(n)))
        .map(|(t, v)| format!("{t}: {}", v.chars().take(300).collect::<String>()))
        .collect()
}

/// The person, with data in every place that can hold it; returns (contact id, account id).
async fn person(app: &TestApp, a: &Session) -> (String, String) {
    let hook = Recorder::start().await;
    gql(
        app,
        a,
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { id } }",
        json!({"input": {"url": format!("{}/hook", hook.address), "eventTypes": ["*"], "includeObject": true}}),
    )
    .await;
    gql(
        app,
        a,
        "mutation { createAlertRule(input: {name: \"Every signal\", trigger: NEW_SIGNAL, cooldownMinutes: 0, channels: {inApp: true, email: true}}) { id } }",
        json!({}),
    )
    .await;
    let d = gql(
        app,
        a,
        INGEST,
        json!({"inputs": [
            {"type": "repo_star", "idempotencyKey": format!("github:star:acme/widgets:{LOGIN}"),
             "actor": {"email": EMAIL, "github": LOGIN, "name": "Zelda Quixote"},
             "metadata": {"repo": "acme/widgets", "login": LOGIN, "email": EMAIL,
                          "avatar_url": format!("https://{AVATAR}"),
                          "html_url": format!("https://github.com/{LOGIN}")}},
            {"type": "issue_opened", "actor": {"github": LOGIN},
             "metadata": {"title": "Crash reported by Zelda Quixote", "user": {"login": LOGIN}}},
            {"type": "signup", "actor": {"email": "bystander@erasable-example.dev", "name": "Bea Stander"}},
        ]}),
    )
    .await;
    let results = &d["ingestSignals"]["results"];
    let contact = results[0]["signal"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = results[0]["signal"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(results[1]["signal"]["contact"]["id"], contact.as_str());

    // A duplicate merged into them, an update, activities, a deal.
    let d = gql(
        app,
        a,
        "mutation { createContact(input: {firstName: \"Zelda\", lastName: \"Quixote\", email: \"zq.personal@mailbox-example.org\", notes: \"met at a meetup\"}) { id } }",
        json!({}),
    )
    .await;
    let dup = d["createContact"]["id"].as_str().unwrap().to_owned();
    gql(
        app,
        a,
        "mutation($p: ID!, $d: [ID!]!) { mergeContacts(primaryId: $p, duplicateIds: $d) { contact { id } } }",
        json!({"p": contact, "d": [dup]}),
    )
    .await;
    gql(
        app,
        a,
        "mutation($id: ID!) { updateContact(id: $id, input: {title: \"CTO\", phone: \"+1 555 0142\", notes: \"Zelda Quixote prefers email\"}) { id } }",
        json!({"id": contact}),
    )
    .await;
    gql(
        app,
        a,
        "mutation($c: ID, $a: ID) { createActivity(input: {type: CALL, title: \"Call with Zelda Quixote\", contactId: $c, accountId: $a}) { id } }",
        json!({"c": contact, "a": account}),
    )
    .await;
    gql(
        app,
        a,
        "mutation($a: ID) { createActivity(input: {type: NOTE, title: \"Account note\", description: \"Champion: zelda.quixote@erasable-example.dev (zquixote on GitHub)\", accountId: $a}) { id } }",
        json!({"a": account}),
    )
    .await;
    gql(
        app,
        a,
        "mutation($c: ID, $a: ID) { createDeal(input: {title: \"Widgets rollout\", description: \"Sponsor: Zelda Quixote\", contactId: $c, accountId: $a}) { id } }",
        json!({"c": contact, "a": account}),
    )
    .await;
    // The alert and the webhooks have run over those events.
    eventually(
        Duration::from_secs(20),
        "notifications and deliveries",
        || async {
            let n = count(app, "notifications").await;
            let d = count(app, "alert_deliveries").await;
            let w = count(app, "webhook_deliveries").await;
            (n > 0 && d > 0 && w > 5).then_some(())
        },
    )
    .await;
    (contact, account)
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let r = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    r.try_get("", "n").unwrap()
}

#[tokio::test]
async fn erasure_leaves_no_trace_and_nothing_brings_the_person_back() {
    let app = spawn_app().await;
    let (a, _) = app.two_tenants().await;
    let (contact, account) = person(&app, &a).await;
    assert!(!traces(&app).await.is_empty(), "the person is stored");

    // Access: everything held about them.
    let d = gql(&app, &a, EXPORT, json!({"id": contact})).await;
    let x = &d["exportContactData"];
    assert_eq!(x["contact"]["email"], EMAIL, "{x}");
    assert_eq!(x["contact"]["phone"], "+1 555 0142");
    let kinds: Vec<&str> = x["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"EMAIL") && kinds.contains(&"GITHUB"), "{x}");
    assert_eq!(x["signals"].as_array().unwrap().len(), 2, "{x}");
    assert_eq!(x["signals"][0]["metadata"]["login"], LOGIN);
    assert_eq!(x["deals"].as_array().unwrap().len(), 1);
    assert!(!x["activities"].as_array().unwrap().is_empty());
    assert!(!x["notes"].as_array().unwrap().is_empty());
    assert!(!x["events"].as_array().unwrap().is_empty());
    assert!(!x["auditEntries"].as_array().unwrap().is_empty());
    assert!(!x["notifications"].as_array().unwrap().is_empty(), "{x}");

    // Erasure.
    let d = gql(&app, &a, ERASE, json!({"id": contact})).await;
    let e = &d["eraseContact"];
    assert_eq!(e["contactId"], contact.as_str());
    assert_eq!(e["signalsAnonymised"], 2, "{e}");
    assert_eq!(e["activitiesDeleted"], 1, "{e}");
    assert_eq!(e["dealsUnlinked"], 1, "{e}");
    assert_eq!(e["mergesDeleted"], 1, "{e}");
    assert!(e["tombstones"].as_i64().unwrap() >= 3, "{e}");
    let found = traces(&app).await;
    assert!(found.is_empty(), "traces left:\n{}", found.join("\n"));

    let r = app
        .graphql_as(
            a.token(),
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({"id": contact}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    // The signals stay for the account's score, without the person; the audit entry has counts.
    let d = gql(
        &app,
        &a,
        "query($id: ID!) { account(id: $id) { signals(first: 10) { totalCount nodes { contact { id } metadata } } } auditLog(first: 5) { nodes { action targetId metadata } } }",
        json!({"id": account}),
    )
    .await;
    let sigs = &d["account"]["signals"];
    assert_eq!(sigs["totalCount"], 3, "{sigs}");
    let nodes = sigs["nodes"].as_array().unwrap();
    assert_eq!(
        nodes.iter().filter(|n| n["contact"].is_null()).count(),
        2,
        "{sigs}"
    );
    assert!(
        nodes
            .iter()
            .any(|n| n["metadata"]["repo"] == "acme/widgets"),
        "what is not personal stays: {sigs}"
    );
    let erased = d["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["action"] == "contact.erased")
        .cloned()
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(erased["targetId"], contact.as_str());
    assert_eq!(erased["metadata"]["signalsAnonymised"], 2);

    // Nothing brings them back: GraphQL ingest by email or login (items dropped, others
    // stored), REST ingest, contact creation and upsert.
    let contacts_before = gql(&app, &a, "{ contacts(first: 1) { totalCount } }", json!({})).await["contacts"]["totalCount"].clone();
    let d = gql(
        &app,
        &a,
        INGEST,
        json!({"inputs": [
            {"type": "repo_star", "actor": {"email": EMAIL.to_uppercase(), "name": "Zelda Quixote"}},
            {"type": "repo_fork", "actor": {"github": "ZQuixote"}, "metadata": {"login": LOGIN}},
            {"type": "page_view", "actor": {"email": "someone.new@erasable-example.dev"}},
        ]}),
    )
    .await;
    let res = &d["ingestSignals"]["results"];
    for i in 0..2 {
        assert_eq!(res[i]["success"], true, "{res}");
        assert!(res[i]["signal"].is_null(), "{res}");
        assert!(
            res[i]["dropped"].as_str().unwrap().contains("erased"),
            "{res}"
        );
    }
    assert!(res[2]["signal"]["id"].is_string() && res[2]["dropped"].is_null());
    let r = app
        .graphql_as(
            a.token(),
            "mutation { ingestSignal(input: {type: \"signup\", actor: {github: \"zquixote\"}}) { signal { id } } }",
            json!({}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    let key = app.api_key(&a, &["signals:write"]).await;
    let resp = app
        .client
        .post(app.url("/api/v1/signals/batch"))
        .bearer_auth(&key)
        .json(&json!({"signals": [{"type": "repo_star", "actor": {"github": LOGIN, "email": EMAIL}}]}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body["results"][0]["dropped"].is_string(), "{body}");
    assert!(body["results"][0]["signal"].is_null(), "{body}");
    // Nor can another contact be given their email.
    let d = gql(
        &app,
        &a,
        "{ contacts(first: 1) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    let someone = d["contacts"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = format!(
        "mutation {{ updateContact(id: \"{someone}\", input: {{email: \"zelda.quixote@erasable-example.dev\"}}) {{ id }} }}"
    );
    for q in [
        "mutation { createContact(input: {email: \"Zelda.Quixote@erasable-example.dev\"}) { id } }",
        "mutation { upsertContact(input: {email: \"zelda.quixote@erasable-example.dev\", firstName: \"Z\"}) { id } }",
        update.as_str(),
    ] {
        let r = app.graphql_as(a.token(), q, json!({})).await;
        assert_code(&r, "CONFLICT");
        assert_eq!(field(&r), "email", "{r}");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("erased")
        );
    }
    let d = gql(&app, &a, "{ contacts(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(
        d["contacts"]["totalCount"].as_i64().unwrap(),
        contacts_before.as_i64().unwrap() + 1,
        "only the new person"
    );
    let found = traces(&app).await;
    assert!(
        found.is_empty(),
        "traces after re-ingest:\n{}",
        found.join("\n")
    );
}

#[tokio::test]
async fn erasure_and_export_are_for_admins_of_the_organization() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let d = gql(
        &app,
        &a,
        "mutation { createContact(input: {email: \"rights@rights-example.dev\", firstName: \"Rita\"}) { id } }",
        json!({}),
    )
    .await;
    let id = d["createContact"]["id"].as_str().unwrap().to_owned();
    let member = app.add_member(&a, "member@rights.test", "MEMBER").await;
    for q in [ERASE, EXPORT] {
        let r = app.graphql_as(member.token(), q, json!({"id": id})).await;
        assert_code(&r, "FORBIDDEN");
        // Another organization's admin: no such contact.
        let r = app.graphql_as(b.token(), q, json!({"id": id})).await;
        assert_code(&r, "NOT_FOUND");
        let r = app
            .graphql_as(a.token(), q, json!({"id": "not-an-id"}))
            .await;
        assert_code(&r, "NOT_FOUND");
    }
    // A key needs `admin`.
    let writer = app.api_key(&a, &["contacts:write", "contacts:read"]).await;
    let r = app
        .graphql_with_key(&writer, ERASE, json!({"id": id}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let admin = app.api_key(&a, &["admin"]).await;
    let r = app
        .graphql_with_key(&admin, EXPORT, json!({"id": id}))
        .await;
    assert_eq!(ok(&r)["exportContactData"]["contact"]["firstName"], "Rita");
    let r = app.graphql_with_key(&admin, ERASE, json!({"id": id})).await;
    assert_eq!(ok(&r)["eraseContact"]["contactId"], id.as_str());
    // The other organization may still have a contact with that email.
    let r = app
        .graphql_as(
            b.token(),
            "mutation { createContact(input: {email: \"rights@rights-example.dev\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
}

/// A person a connector brought in, then erased: their cached GitHub profile goes with them,
/// and later syncs (incremental and full, with new activity of theirs) neither read their
/// profile again nor store anything about them, while other people still arrive.
#[tokio::test]
async fn a_connector_resync_brings_no_erased_person_back() {
    const GH_LOGIN: &str = "yerasmus-gh";
    const GH_EMAIL: &str = "yorick.erasmus@erasable-gh.dev";
    const GH_TRACES: &[&str] = &[GH_LOGIN, GH_EMAIL, "yorick erasmus", "erasmus"];
    let gh = FakeGitHub::start().await;
    let t = Utc::now() - chrono::Duration::days(2);
    gh.repo(
        "acme/widgets",
        Repo {
            stargazers: vec![(GH_LOGIN.into(), t), ("keeper-gh".into(), t)],
            ..Default::default()
        },
    );
    gh.user(
        GH_LOGIN,
        json!({"name": "Yorick Erasmus", "email": GH_EMAIL, "company": "@acme"}),
    );
    gh.user("keeper-gh", json!({"name": "Kim Keeper"}));
    let app = spawn_app_with(&[("GITHUB_API_URL", &gh.url)]).await;
    let (a, _) = app.two_tenants().await;
    let (integration, _) =
        connect(&app, &a, "GITHUB", json!({"repos": ["acme/widgets"]}), None).await;
    let run = sync(&app, &a, &integration, false).await;
    assert_eq!(run["signalsCreated"], 2, "{run}");
    let before = mentions(&app, GH_TRACES).await;
    assert!(
        before.iter().any(|r| r.starts_with("integration_cursors")),
        "the profile is cached: {before:#?}"
    );
    let d = gql(
        &app,
        &a,
        "{ contacts(first: 10) { nodes { id github } } }",
        json!({}),
    )
    .await;
    let contact = d["contacts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["github"] == GH_LOGIN)
        .unwrap_or_else(|| panic!("{d}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Access includes what the connector cached about them.
    let d = gql(&app, &a, EXPORT, json!({"id": contact})).await;
    let profiles = &d["exportContactData"]["sourceProfiles"];
    assert_eq!(profiles.as_array().map(Vec::len), Some(1), "{profiles}");
    assert_eq!(profiles[0]["resource"], format!("user:{GH_LOGIN}"));
    assert!(
        profiles[0]["data"].to_string().contains(GH_EMAIL),
        "{profiles}"
    );

    gql(&app, &a, ERASE, json!({"id": contact})).await;
    let left = mentions(&app, GH_TRACES).await;
    assert!(left.is_empty(), "traces left:\n{}", left.join("\n"));

    // New activity of theirs and a newcomer; incremental, then full syncs.
    gh.with(|d| {
        let repo = d.repos.get_mut("acme/widgets").unwrap();
        repo.stargazers.push(("newcomer-gh".into(), Utc::now()));
        repo.issues.push(Issue {
            number: 1,
            author: GH_LOGIN.into(),
            pull_request: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            closed_at: None,
            merged_at: None,
        });
    });
    gh.clear_hits();
    let run = sync(&app, &a, &integration, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 1, "only the newcomer's star: {run}");
    let run = sync(&app, &a, &integration, true).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 0, "{run}");
    let profile_reads: Vec<String> = gh
        .hits()
        .into_iter()
        .map(|h| h.path)
        .filter(|p| p.starts_with(&format!("/users/{GH_LOGIN}")))
        .collect();
    assert!(profile_reads.is_empty(), "{profile_reads:?}");
    let left = mentions(&app, GH_TRACES).await;
    assert!(
        left.is_empty(),
        "traces after re-sync:\n{}",
        left.join("\n")
    );
    let d = gql(
        &app,
        &a,
        "{ contacts(first: 10) { nodes { github } } }",
        json!({}),
    )
    .await;
    let mut logins: Vec<&str> = d["contacts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["github"].as_str())
        .collect();
    logins.sort();
    assert_eq!(logins, ["keeper-gh", "newcomer-gh"], "{d}");
}
