//! Plan limits at their edges, on every path that can cross one: contacts (by hand, in a batch,
//! by ingest), signals per month (REST single and batch, GraphQL), members (invitations and
//! joining), integrations and AI briefs, a connector at the signal limit (stops, then goes on
//! from there); `PLAN_LIMIT` naming the limit, its value, the use and
//! the plan (REST 402); 80 % and 100 % warnings once each, as events and notifications; nothing
//! accepted is lost and nothing refused is half-written; the operator's `devsignal billing`.

use chrono::Utc;
use devsignal_tests::connectors::{connect, integration, signals, sync};
use devsignal_tests::fakes::github::{FakeGitHub, Repo};
use devsignal_tests::{Session, TestApp, assert_code, spawn_app_with};
use domain::billing::{Metric, Override};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cli::run;
use crate::crm_accounts::ok;

const CREATE: &str = "mutation($input: ContactFields!) { createContact(input: $input) { id } }";
const CREATE_MANY: &str =
    "mutation($input: [ContactFields!]!) { createContacts(input: $input) { id } }";
const USAGE: &str = "{ usage { plan enforced contacts { current limit percentage } signalsPerMonth { current limit percentage } members { current limit } integrations { current limit } aiBriefsPerMonth { current limit } } }";
const NOTIFICATIONS: &str = "{ notifications(first: 20) { nodes { kind title data } } }";

async fn enforcing() -> TestApp {
    spawn_app_with(&[("PLAN_ENFORCEMENT", "true")]).await
}

async fn set_limits(app: &TestApp, s: &Session, limits: &[(Metric, Override)]) {
    let org = Uuid::parse_str(&s.organization_id).unwrap();
    domain::billing::set_by_operator(&app.db, org, None, limits)
        .await
        .unwrap();
}

async fn usage(app: &TestApp, s: &Session) -> Value {
    ok(&app.graphql_as(s.token(), USAGE, json!({})).await)["usage"].clone()
}

fn quota(r: &Value, limit: &str, allowed: u64, current: u64, plan: &str) {
    assert_code(r, "PLAN_LIMIT");
    let ext = &r["errors"][0]["extensions"];
    assert_eq!(ext["limit"], limit, "{r}");
    assert_eq!(ext["allowed"], allowed, "{r}");
    assert_eq!(ext["current"], current, "{r}");
    assert_eq!(ext["plan"], plan, "{r}");
}

async fn warnings(app: &TestApp, s: &Session) -> Vec<Value> {
    let r = app
        .graphql_as(
            s.token(),
            "{ events(first: 100, types: [\"organization.usage_warning\"]) { payload } }",
            json!({}),
        )
        .await;
    ok(&r)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect()
}

fn contact(i: usize) -> Value {
    json!({"email": format!("p{i}@people.test"), "firstName": format!("P{i}")})
}

#[tokio::test]
async fn contacts_stop_at_the_limit_with_a_warning_at_80_and_100_percent() {
    let app = enforcing().await;
    let owner = app.register("owner@contacts-limit.test", "Limited").await;
    let other = app.register("owner@contacts-free.test", "Free").await;
    set_limits(&app, &owner, &[(Metric::Contacts, Override::Limit(5))]).await;
    for i in 0..3 {
        ok(&app
            .graphql_as(owner.token(), CREATE, json!({"input": contact(i)}))
            .await);
    }
    assert!(warnings(&app, &owner).await.is_empty());
    ok(&app
        .graphql_as(owner.token(), CREATE, json!({"input": contact(3)}))
        .await);
    let w = warnings(&app, &owner).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["limit"], "contacts");
    assert_eq!(w[0]["threshold"], 80);
    assert_eq!(w[0]["current"], 4);
    // A batch that would cross the limit is refused whole: nothing of it is written.
    let r = app
        .graphql_as(
            owner.token(),
            CREATE_MANY,
            json!({"input": [contact(4), contact(5)]}),
        )
        .await;
    quota(&r, "contacts", 5, 4, "free");
    assert_eq!(usage(&app, &owner).await["contacts"]["current"], 4);
    ok(&app
        .graphql_as(owner.token(), CREATE, json!({"input": contact(4)}))
        .await);
    let r = app
        .graphql_as(owner.token(), CREATE, json!({"input": contact(6)}))
        .await;
    quota(&r, "contacts", 5, 5, "free");
    let u = usage(&app, &owner).await;
    assert_eq!(u["enforced"], true);
    assert_eq!(
        u["contacts"],
        json!({"current": 5, "limit": 5, "percentage": 100})
    );
    let w = warnings(&app, &owner).await;
    assert_eq!(w.len(), 2);
    assert_eq!(w[1]["threshold"], 100);
    // The owner is told in the app, once per threshold.
    let n = ok(&app
        .graphql_as(owner.token(), NOTIFICATIONS, json!({}))
        .await)["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let kinds: Vec<&str> = n
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| *k == "USAGE_WARNING")
        .collect();
    assert_eq!(kinds.len(), 2, "{n:?}");
    // Another organization has its own count and its own (free) limit.
    ok(&app
        .graphql_as(other.token(), CREATE, json!({"input": contact(9)}))
        .await);
    let u = usage(&app, &other).await;
    assert_eq!(u["contacts"]["current"], 1);
    assert_eq!(u["contacts"]["limit"], 1_000);
    assert!(warnings(&app, &other).await.is_empty());
}

#[tokio::test]
async fn ingest_past_the_monthly_signal_limit_refuses_new_signals_and_keeps_every_accepted_one() {
    let app = enforcing().await;
    let owner = app.register("owner@signals-limit.test", "Signals").await;
    set_limits(
        &app,
        &owner,
        &[(Metric::SignalsPerMonth, Override::Limit(5))],
    )
    .await;
    let key = app
        .api_key(&owner, &["signals:write", "signals:read"])
        .await;
    let post = |path: &'static str, body: Value| {
        let c = app.client.clone();
        let url = app.url(path);
        let key = key.clone();
        async move {
            let r = c
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let items: Vec<Value> = (0..7)
        .map(|i| json!({"type": "page_view", "idempotencyKey": format!("k{i}"), "actor": {"email": format!("dev{i}@acme.test")}}))
        .collect();
    let (status, b) = post("/api/v1/signals/batch", json!({"signals": items})).await;
    assert_eq!(status, 207, "{b}");
    assert_eq!(b["summary"]["succeeded"], 5, "{b}");
    assert_eq!(b["summary"]["failed"], 2);
    assert_eq!(b["results"][5]["error"]["code"], "PLAN_LIMIT");
    assert_eq!(b["results"][6]["error"]["code"], "PLAN_LIMIT");
    // A repeat of an accepted signal is still answered (it is not new).
    let (status, again) = post(
        "/api/v1/signals",
        json!({"type": "page_view", "idempotencyKey": "k0", "actor": {"email": "dev0@acme.test"}}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deduplicated"], true);
    // A new one is refused with 402, naming the limit, its value, the use and the plan.
    let (status, e) = post(
        "/api/v1/signals",
        json!({"type": "page_view", "actor": {"email": "late@acme.test"}}),
    )
    .await;
    assert_eq!(status, 402, "{e}");
    assert_eq!(e["error"]["code"], "PLAN_LIMIT");
    assert_eq!(e["error"]["limit"], "signalsPerMonth");
    assert_eq!(e["error"]["allowed"], 5);
    assert_eq!(e["error"]["current"], 5);
    assert_eq!(e["error"]["plan"], "free");
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { ingestSignal(input: {type: \"signup\"}) { deduplicated } }",
            json!({}),
        )
        .await;
    quota(&r, "signalsPerMonth", 5, 5, "free");
    // Exactly the five accepted signals are stored and counted.
    let u = usage(&app, &owner).await;
    assert_eq!(u["signalsPerMonth"]["current"], 5);
    assert_eq!(u["signalsPerMonth"]["percentage"], 100);
    let r = app
        .graphql_as(
            owner.token(),
            "{ signals(first: 50) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 5);
    let w = warnings(&app, &owner).await;
    let thresholds: Vec<i64> = w.iter().filter_map(|p| p["threshold"].as_i64()).collect();
    assert_eq!(thresholds, [80, 100], "{w:?}");
    assert_eq!(w[0]["period"], format!("{}", Utc::now().format("%Y-%m")));

    // Raised by the operator: ingest goes on.
    set_limits(
        &app,
        &owner,
        &[(Metric::SignalsPerMonth, Override::Limit(6))],
    )
    .await;
    let (status, _) = post(
        "/api/v1/signals",
        json!({"type": "page_view", "actor": {"email": "late@acme.test"}}),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn ingest_past_the_contact_limit_keeps_the_signal_without_a_new_contact() {
    let app = enforcing().await;
    let owner = app.register("owner@ingest-contacts.test", "People").await;
    set_limits(&app, &owner, &[(Metric::Contacts, Override::Limit(1))]).await;
    let ingest = "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id contact { email } account { domain } } } }";
    let r = app
        .graphql_as(
            owner.token(),
            ingest,
            json!({"input": {"type": "signup", "actor": {"email": "first@corp.test"}}}),
        )
        .await;
    assert_eq!(
        ok(&r)["ingestSignal"]["signal"]["contact"]["email"],
        "first@corp.test"
    );
    let r = app
        .graphql_as(
            owner.token(),
            ingest,
            json!({"input": {"type": "signup", "actor": {"email": "second@corp.test"}}}),
        )
        .await;
    let s = &ok(&r)["ingestSignal"]["signal"];
    assert!(s["id"].is_string(), "the signal is stored: {r}");
    assert!(s["contact"].is_null(), "no contact past the limit: {r}");
    assert_eq!(s["account"]["domain"], "corp.test");
    let u = usage(&app, &owner).await;
    assert_eq!(u["contacts"]["current"], 1);
    assert_eq!(u["signalsPerMonth"]["current"], 2);
}

#[tokio::test]
async fn members_invitations_and_joining_respect_the_member_limit() {
    let app = enforcing().await;
    let owner = app.register("owner@seats.test", "Seats").await;
    let invite = |email: &str| {
        format!("mutation {{ inviteMember(email: \"{email}\", role: MEMBER) {{ id }} }}")
    };
    // The free plan has one seat, the owner's.
    let r = app
        .graphql_as(owner.token(), &invite("a@seats.test"), json!({}))
        .await;
    quota(&r, "members", 1, 1, "free");
    set_limits(&app, &owner, &[(Metric::Members, Override::Limit(3))]).await;
    // An open invitation holds a seat.
    ok(&app
        .graphql_as(owner.token(), &invite("a@seats.test"), json!({}))
        .await);
    ok(&app
        .graphql_as(owner.token(), &invite("b@seats.test"), json!({}))
        .await);
    let r = app
        .graphql_as(owner.token(), &invite("c@seats.test"), json!({}))
        .await;
    quota(&r, "members", 3, 3, "free");
    // The plan shrank after the invitations were sent: joining is refused.
    set_limits(&app, &owner, &[(Metric::Members, Override::Limit(1))]).await;
    let token = app.mailed_token("a@seats.test").await;
    let a = app.register("a@seats.test", "A's own").await;
    let r = app
        .graphql_as(
            a.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { role } }",
            json!({"t": token}),
        )
        .await;
    quota(&r, "members", 1, 1, "free");
    let u = usage(&app, &owner).await;
    assert_eq!(u["members"]["limit"], 1);
}

#[tokio::test]
async fn integrations_and_ai_briefs_are_limited_by_the_plan() {
    let app = spawn_app_with(&[
        ("PLAN_ENFORCEMENT", "true"),
        ("ANTHROPIC_API_KEY", "sk-ant-never-called"),
        ("ANTHROPIC_API_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let owner = app.register("owner@integrations-limit.test", "Int").await;
    set_limits(&app, &owner, &[(Metric::Integrations, Override::Limit(1))]).await;
    let connect = "mutation($input: ConnectIntegrationInput!) { connectIntegration(input: $input) { integration { id } } }";
    let github = json!({"input": {"kind": "GITHUB", "config": {"repos": ["a/b"]}, "credentials": {"token": "ghp_x"}}});
    let r = app.graphql_as(owner.token(), connect, github.clone()).await;
    let id = ok(&r)["connectIntegration"]["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.graphql_as(owner.token(), connect, github.clone()).await;
    quota(&r, "integrations", 1, 1, "free");
    ok(&app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { disconnectIntegration(id: $id) { id } }",
            json!({"id": id}),
        )
        .await);
    ok(&app.graphql_as(owner.token(), connect, github).await);

    // The free plan writes no AI briefs with a model (the server's key is never called).
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createAccount(input: {name: \"Acme\", domain: \"acme.test\"}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { generateAccountBrief(accountId: $id) { cached } }",
            json!({"id": account}),
        )
        .await;
    quota(&r, "aiBriefsPerMonth", 0, 0, "free");
    let u = usage(&app, &owner).await;
    assert_eq!(u["aiBriefsPerMonth"], json!({"current": 0, "limit": 0}));
    assert_eq!(u["integrations"], json!({"current": 1, "limit": 1}));
}

#[tokio::test]
async fn an_operator_puts_an_organization_on_a_plan_and_raises_one_limit() {
    let app = enforcing().await;
    let owner = app.register("owner@operator.test", "Op").await;
    let db = app.test_db.url.as_str();
    let env = [("DATABASE_URL", db)];
    let (code, out, err) = run(
        &[
            "billing",
            "set",
            &owner.organization_id,
            "--plan",
            "pro",
            "--limit",
            "contacts=7",
            "--limit",
            "members=unlimited",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("plan: pro (ACTIVE)"), "{out}");
    assert!(out.contains("(set for this organization)"), "{out}");
    let u = usage(&app, &owner).await;
    assert_eq!(u["plan"], "PRO");
    assert_eq!(u["contacts"]["limit"], 7);
    assert!(u["members"]["limit"].is_null());
    assert_eq!(u["signalsPerMonth"]["limit"], 100_000);
    let (code, out, _) = run(&["billing", "show", &owner.organization_id], &env).await;
    assert_eq!(code, 0);
    assert!(out.contains("contacts"), "{out}");
    // Back to the plan's limit.
    let (code, _, _) = run(
        &[
            "billing",
            "set",
            &owner.organization_id,
            "--limit",
            "contacts=plan",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(usage(&app, &owner).await["contacts"]["limit"], 25_000);
    // Mistakes are named.
    let (code, _, err) = run(
        &[
            "billing",
            "set",
            &owner.organization_id,
            "--limit",
            "seats=3",
        ],
        &env,
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("\"seats\" is not a limit"), "{err}");
    let (code, _, err) = run(
        &["billing", "set", &owner.organization_id, "--plan", "gold"],
        &env,
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("is not a plan"), "{err}");
    let (code, _, err) = run(&["billing", "show", &Uuid::now_v7().to_string()], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("no organization"), "{err}");
}

/// A connector at the monthly signal limit: the run stores what fits, then stops before its
/// cursor passes the refused items (PARTIAL, the integration still CONNECTED with the reason);
/// once the limit allows, the next ordinary run picks up exactly those items.
#[tokio::test]
async fn a_connector_stops_at_the_signal_limit_and_goes_on_from_there_when_it_allows() {
    let gh = FakeGitHub::start().await;
    let t = Utc::now() - chrono::Duration::days(1);
    let logins: Vec<String> = (0..6).map(|i| format!("limited-gh-{i}")).collect();
    gh.repo(
        "acme/limited",
        Repo {
            stargazers: logins.iter().map(|l| (l.clone(), t)).collect(),
            ..Default::default()
        },
    );
    let app = spawn_app_with(&[("PLAN_ENFORCEMENT", "true"), ("GITHUB_API_URL", &gh.url)]).await;
    let owner = app.register("owner@connector-limit.test", "Limited").await;
    set_limits(
        &app,
        &owner,
        &[(Metric::SignalsPerMonth, Override::Limit(4))],
    )
    .await;
    let (id, _) = connect(
        &app,
        &owner,
        "GITHUB",
        json!({"repos": ["acme/limited"]}),
        None,
    )
    .await;
    let run = sync(&app, &owner, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert_eq!(run["signalsCreated"], 4, "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("signalsPerMonth"),
        "{run}"
    );
    let i = integration(&app, &owner, &id).await;
    assert_eq!(i["status"], "CONNECTED", "{i}");
    assert!(i["lastError"].as_str().unwrap().contains("goes on"), "{i}");
    assert_eq!(signals(&app, Some("repo_star")).await, 4);
    // Still at the limit: the next run stores nothing and loses nothing.
    let run = sync(&app, &owner, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert_eq!(run["signalsCreated"], 0, "{run}");

    set_limits(
        &app,
        &owner,
        &[(Metric::SignalsPerMonth, Override::Unlimited)],
    )
    .await;
    let run = sync(&app, &owner, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["signalsCreated"], 2, "the two refused stars: {run}");
    assert_eq!(signals(&app, Some("repo_star")).await, 6);
    let i = integration(&app, &owner, &id).await;
    assert!(i["lastError"].is_null(), "{i}");
}
