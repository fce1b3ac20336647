//! AI account briefs against a local fake of Anthropic's Messages API: a model's statements kept
//! only when their citations check out (an unknown id, another organization's signal or no
//! citation drops them), the cache (no request while the account is unchanged, a new signal
//! regenerates), the monthly budget (`PLAN_LIMIT`), the deterministic brief without a key,
//! Anthropic's refusals (nothing stored, the slot given back), an unreadable answer, the
//! organization's own key, and tenants.

use devsignal_tests::connectors::ok;
use devsignal_tests::fakes::anthropic::{FakeAnthropic, Reply};
use std::time::Duration;

use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app_with};
use serde_json::{Value, json};

const SERVER_KEY: &str = "sk-ant-server-0123456789abcdef";
const ORG_KEY: &str = "sk-ant-org-fedcba9876543210";

const GENERATE: &str = "mutation($id: ID!, $force: Boolean! = false) { generateAccountBrief(accountId: $id, force: $force) { cached brief { id accountId source fallbackReason model dropped inputTokens outputTokens generatedAt statements { section text cites } nextBestActions { action reasoning priority contactId cites } } } }";
const BRIEF: &str = "query($id: ID!) { account(id: $id) { brief { id source dropped stale statements { text cites } } } }";
const USAGE: &str = "{ aiUsage { month briefs inputTokens outputTokens limit plan } }";

/// An account with one person and `signals` signals of theirs; returns (account, contact,
/// signal ids).
async fn account_with_signals(
    app: &TestApp,
    s: &Session,
    domain: &str,
    signals: usize,
) -> (String, String, Vec<String>) {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($d: String!) { createAccount(input: {name: \"Acme\", domain: $d, industry: \"Software\"}) { id } }",
            json!({"d": domain}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            s.token(),
            "mutation($e: String!, $a: ID!) { createContact(input: {email: $e, firstName: \"Ada\", lastName: \"Lovelace\", title: \"CTO\", accountId: $a}) { id } }",
            json!({"e": format!("ada@{domain}"), "a": account}),
        )
        .await;
    let contact = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for n in 0..signals {
        ids.push(
            ingest(
                app,
                s,
                &account,
                &contact,
                if n % 2 == 0 { "repo_star" } else { "signup" },
            )
            .await,
        );
    }
    if signals > 0 {
        scored(app, s, &account, signals).await;
    }
    (account, contact, ids)
}

/// Waits until the account's score counts `signals` signals (scores are computed off the
/// request path, and a brief's inputs include the score).
async fn scored(app: &TestApp, s: &Session, account: &str, signals: usize) {
    eventually(Duration::from_secs(20), "the account's score", || async {
        let r = app
            .graphql_as(
                s.token(),
                "query($id: ID!) { account(id: $id) { score { signalCount } } }",
                json!({"id": account}),
            )
            .await;
        (r["data"]["account"]["score"]["signalCount"] == signals).then_some(())
    })
    .await
}

async fn ingest(app: &TestApp, s: &Session, account: &str, contact: &str, kind: &str) -> String {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($t: String!, $a: ID!, $c: ID!) { ingestSignal(input: {type: $t, accountId: $a, actorId: $c}) { signal { id } } }",
            json!({"t": kind, "a": account, "c": contact}),
        )
        .await;
    ok(&r)["ingestSignal"]["signal"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn generate(app: &TestApp, s: &Session, account: &str) -> Value {
    app.graphql_as(s.token(), GENERATE, json!({"id": account}))
        .await
}

async fn usage(app: &TestApp, s: &Session) -> Value {
    let r = app.graphql_as(s.token(), USAGE, json!({})).await;
    ok(&r)["aiUsage"].clone()
}

async fn app_with(fake: &FakeAnthropic, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(&str, &str)> = vec![("ANTHROPIC_API_URL", fake.url.as_str())];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

fn answer(statements: Value, actions: Value) -> String {
    json!({"statements": statements, "actions": actions}).to_string()
}

#[tokio::test]
async fn a_model_brief_keeps_only_statements_whose_citations_check_out() {
    let fake = FakeAnthropic::start(&[SERVER_KEY]).await;
    let app = app_with(&fake, &[("ANTHROPIC_API_KEY", SERVER_KEY)]).await;
    let (a, b) = app.two_tenants().await;
    let (account, contact, signals) = account_with_signals(&app, &a, "acme.io", 3).await;
    let (_, _, foreign) = account_with_signals(&app, &b, "other.io", 1).await;
    let made_up = uuid::Uuid::now_v7().to_string();
    fake.reply(Reply::text(
        format!(
            "```json\n{}\n```",
            answer(
                json!([
                    {"section": "summary", "text": "Ada starred the repo and signed up.", "cites": [signals[0], signals[1], "fact:activity"]},
                    {"section": "company", "text": "Acme is a software company.", "cites": ["fact:name", "fact:industry"]},
                    {"section": "usage", "text": "Heavy API use.", "cites": [made_up]},
                    {"section": "usage", "text": "Another org's signal.", "cites": [foreign[0]]},
                    {"section": "people", "text": "Nobody cited.", "cites": []},
                    {"section": "people", "text": "A fact that is not there.", "cites": ["fact:revenue"]},
                ]),
                json!([
                    {"action": "Email Ada", "reasoning": "She is the most active.", "priority": "high", "contactId": contact, "cites": [format!("fact:contact:{contact}")]},
                    {"action": "Call Bob", "reasoning": "Invented.", "priority": "medium", "contactId": made_up, "cites": ["fact:name"]},
                    {"action": "Ship swag", "reasoning": "Invented.", "priority": "low", "contactId": null, "cites": [made_up]},
                ]),
            )
        ),
        1200,
        340,
    ));
    let r = generate(&app, &a, &account).await;
    let g = &ok(&r)["generateAccountBrief"];
    assert_eq!(g["cached"], false);
    let brief = &g["brief"];
    assert_eq!(brief["source"], "MODEL", "{r}");
    assert_eq!(brief["fallbackReason"], Value::Null);
    assert_eq!(brief["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(brief["accountId"], account.as_str());
    let statements = brief["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{brief}");
    assert_eq!(statements[0]["section"], "SUMMARY");
    assert_eq!(
        statements[0]["cites"],
        json!([signals[0], signals[1], "fact:activity"])
    );
    assert_eq!(statements[1]["section"], "COMPANY");
    let actions = brief["nextBestActions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{brief}");
    assert_eq!(actions[0]["action"], "Email Ada");
    assert_eq!(actions[0]["priority"], "HIGH");
    assert_eq!(actions[0]["contactId"], contact.as_str());
    assert_eq!(brief["dropped"], 6);
    assert_eq!(brief["inputTokens"], 1200);
    assert_eq!(brief["outputTokens"], 340);

    // The request, as the Messages API wants it; the prompt holds this account's data only.
    let hits = fake.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.path, "/v1/messages");
    assert_eq!(hit.api_key.as_deref(), Some(SERVER_KEY));
    assert_eq!(hit.version.as_deref(), Some("2023-06-01"));
    assert_eq!(hit.body["model"], "claude-sonnet-4-5-20250929");
    assert!(hit.body["max_tokens"].as_u64().unwrap() >= 1024);
    assert_eq!(hit.body["messages"][0]["role"], "user");
    let prompt = hit.prompt();
    for id in &signals {
        assert!(prompt.contains(id.as_str()), "{prompt}");
    }
    assert!(prompt.contains(&format!("fact:contact:{contact}")));
    assert!(
        !prompt.contains(foreign[0].as_str()),
        "another org's signal in the prompt"
    );

    // Stored: the account shows it, not stale; the use is counted.
    let r = app
        .graphql_as(a.token(), BRIEF, json!({"id": account}))
        .await;
    let stored = &ok(&r)["account"]["brief"];
    assert_eq!(stored["id"], brief["id"]);
    assert_eq!(stored["stale"], false);
    assert_eq!(stored["statements"].as_array().unwrap().len(), 2);
    let u = usage(&app, &a).await;
    assert_eq!(u["briefs"], 1);
    assert_eq!(u["inputTokens"], 1200);
    assert_eq!(u["outputTokens"], 340);
    assert_eq!(u["limit"], 100);
    assert_eq!(u["month"], chrono::Utc::now().format("%Y-%m").to_string());
    // The other organization's use is its own.
    let u = usage(&app, &b).await;
    assert_eq!(u["briefs"], 0);
    assert_eq!(u["inputTokens"], 0);
}

#[tokio::test]
async fn an_unchanged_account_is_served_from_the_cache_and_a_new_signal_regenerates() {
    let fake = FakeAnthropic::start(&[SERVER_KEY]).await;
    let app = app_with(&fake, &[("ANTHROPIC_API_KEY", SERVER_KEY)]).await;
    let a = app.register("cache@briefs.test", "Cache").await;
    let (account, contact, signals) = account_with_signals(&app, &a, "cache.io", 2).await;
    let reply = |cite: &str| {
        Reply::text(
            answer(
                json!([{"section": "summary", "text": "Active.", "cites": [cite]}]),
                json!([]),
            ),
            100,
            20,
        )
    };
    fake.reply(reply(&signals[0]));
    let first = generate(&app, &a, &account).await;
    let first_id = ok(&first)["generateAccountBrief"]["brief"]["id"].clone();
    assert_eq!(ok(&first)["generateAccountBrief"]["cached"], false);

    let again = generate(&app, &a, &account).await;
    assert_eq!(
        ok(&again)["generateAccountBrief"]["cached"],
        true,
        "{again}"
    );
    assert_eq!(ok(&again)["generateAccountBrief"]["brief"]["id"], first_id);
    assert_eq!(fake.hits().len(), 1, "a cache hit asks nothing");
    assert_eq!(
        usage(&app, &a).await["briefs"],
        1,
        "a cache hit is not counted"
    );

    // A new signal changes the inputs: the stored brief is stale and the next one is asked for.
    let new = ingest(&app, &a, &account, &contact, "page_view").await;
    scored(&app, &a, &account, 3).await;
    let r = app
        .graphql_as(a.token(), BRIEF, json!({"id": account}))
        .await;
    assert_eq!(ok(&r)["account"]["brief"]["stale"], true);
    fake.reply(reply(&new));
    let third = generate(&app, &a, &account).await;
    let g = &ok(&third)["generateAccountBrief"];
    assert_eq!(g["cached"], false);
    assert_eq!(g["brief"]["statements"][0]["cites"], json!([new]));
    let hits = fake.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits[1].prompt().contains(new.as_str()));
    assert_eq!(usage(&app, &a).await["briefs"], 2);

    // `force` asks again even when nothing changed.
    fake.reply(reply(&new));
    let r = app
        .graphql_as(a.token(), GENERATE, json!({"id": account, "force": true}))
        .await;
    assert_eq!(ok(&r)["generateAccountBrief"]["cached"], false);
    assert_eq!(fake.hits().len(), 3);
}

#[tokio::test]
async fn the_monthly_budget_answers_plan_limit() {
    let fake = FakeAnthropic::start(&[SERVER_KEY]).await;
    let app = app_with(
        &fake,
        &[
            ("ANTHROPIC_API_KEY", SERVER_KEY),
            ("AI_BRIEFS_PER_MONTH", "1"),
        ],
    )
    .await;
    let a = app.register("budget@briefs.test", "Budget").await;
    let (first, _, s1) = account_with_signals(&app, &a, "one.io", 1).await;
    let (second, _, _) = account_with_signals(&app, &a, "two.io", 1).await;
    fake.reply(Reply::text(
        answer(
            json!([{"section": "summary", "text": "One signal.", "cites": [s1[0]]}]),
            json!([]),
        ),
        50,
        10,
    ));
    ok(&generate(&app, &a, &first).await);
    let r = generate(&app, &a, &second).await;
    assert_code(&r, "PLAN_LIMIT");
    let ext = &r["errors"][0]["extensions"];
    assert_eq!(ext["limit"], "aiBriefsPerMonth", "{r}");
    assert_eq!(ext["allowed"], 1);
    assert_eq!(ext["current"], 1);
    assert_eq!(ext["plan"], "default");
    assert_eq!(fake.hits().len(), 1, "nothing asked over the budget");
    let r = app
        .graphql_as(a.token(), BRIEF, json!({"id": second}))
        .await;
    assert_eq!(ok(&r)["account"]["brief"], Value::Null);
    // The cached brief is still served: a cache hit costs nothing.
    let r = generate(&app, &a, &first).await;
    assert_eq!(ok(&r)["generateAccountBrief"]["cached"], true);
    let u = usage(&app, &a).await;
    assert_eq!(u["briefs"], 1);
    assert_eq!(u["limit"], 1);
}

#[tokio::test]
async fn without_a_key_the_brief_is_the_deterministic_one_citing_real_data() {
    let fake = FakeAnthropic::start(&[SERVER_KEY]).await;
    let app = app_with(&fake, &[]).await;
    let a = app.register("fallback@briefs.test", "Fallback").await;
    let (account, contact, signals) = account_with_signals(&app, &a, "rules.io", 5).await;
    let r = generate(&app, &a, &account).await;
    let brief = &ok(&r)["generateAccountBrief"]["brief"];
    assert_eq!(brief["source"], "FALLBACK", "{r}");
    assert_eq!(brief["fallbackReason"], "NO_KEY");
    assert_eq!(brief["model"], Value::Null);
    assert_eq!(brief["inputTokens"], 0);
    let statements = brief["statements"].as_array().unwrap();
    let summary = &statements[0];
    assert_eq!(summary["section"], "SUMMARY");
    let text = summary["text"].as_str().unwrap();
    assert!(text.contains("5 signals"), "{text}");
    assert!(
        text.contains("repo_star ×3") && text.contains("signup ×2"),
        "{text}"
    );
    let people = statements
        .iter()
        .find(|s| s["section"] == "PEOPLE")
        .expect("a people statement");
    assert!(
        people["text"]
            .as_str()
            .unwrap()
            .contains("Ada Lovelace (CTO), 5 signals")
    );
    // Every citation is this account's real data.
    let contact_fact = format!("fact:contact:{contact}");
    let mut cited = 0;
    for s in statements
        .iter()
        .chain(brief["nextBestActions"].as_array().unwrap())
    {
        let cites = s["cites"].as_array().unwrap();
        assert!(!cites.is_empty(), "uncited: {s}");
        for c in cites {
            let c = c.as_str().unwrap();
            cited += 1;
            assert!(
                signals.iter().any(|id| id == c)
                    || c == contact_fact
                    || [
                        "fact:activity",
                        "fact:name",
                        "fact:domain",
                        "fact:industry",
                        "fact:score",
                        "fact:trend"
                    ]
                    .contains(&c)
                    || c.starts_with("fact:factor:"),
                "{c} is not this account's"
            );
        }
    }
    assert!(cited > 3);
    let action = &brief["nextBestActions"][0];
    assert_eq!(action["contactId"], contact.as_str());
    assert!(action["action"].as_str().unwrap().contains("Ada Lovelace"));
    assert!(fake.hits().is_empty(), "no key, no request");
    assert_eq!(
        usage(&app, &a).await["briefs"],
        0,
        "the fallback is not counted"
    );
    let r = generate(&app, &a, &account).await;
    assert_eq!(ok(&r)["generateAccountBrief"]["cached"], true);
    // An empty account gets a brief too: no statement is invented.
    let r = app
        .graphql_as(
            a.token(),
            "mutation { createAccount(input: {name: \"Quiet\"}) { id } }",
            json!({}),
        )
        .await;
    let quiet = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = generate(&app, &a, &quiet).await;
    let brief = &ok(&r)["generateAccountBrief"]["brief"];
    assert_eq!(
        brief["statements"][0]["text"],
        "No signals in the last 30 days."
    );
    assert_eq!(brief["statements"][0]["cites"], json!(["fact:activity"]));
    assert_eq!(brief["nextBestActions"], json!([]));
}

#[tokio::test]
async fn anthropic_refusals_are_clear_errors_and_store_nothing() {
    let fake = FakeAnthropic::start(&[SERVER_KEY]).await;
    let app = app_with(
        &fake,
        &[("ANTHROPIC_API_KEY", "sk-ant-wrong-key-000000000")],
    )
    .await;
    let a = app.register("refused@briefs.test", "Refused").await;
    let (account, _, _) = account_with_signals(&app, &a, "refused.io", 1).await;
    let r = generate(&app, &a, &account).await;
    assert_code(&r, "UPSTREAM_ERROR");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("refused the server's ANTHROPIC_API_KEY"),
        "{message}"
    );
    assert!(message.contains("401 authentication_error"), "{message}");
    assert!(!message.contains("sk-ant-wrong"), "the key is never shown");
    assert_eq!(fake.hits()[0].status, 401);

    // The organization's own key is used instead; Anthropic overloaded, then rate limited.
    let r = app
        .graphql_as(
            a.token(),
            "mutation($k: String!) { setAiApiKey(apiKey: $k) { configured keySource } }",
            json!({"k": SERVER_KEY}),
        )
        .await;
    assert_eq!(ok(&r)["setAiApiKey"]["keySource"], "ORGANIZATION");
    fake.reply(Reply::Error(529, "overloaded_error", "Overloaded"));
    let r = generate(&app, &a, &account).await;
    assert_code(&r, "UPSTREAM_ERROR");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("529 overloaded_error"), "{message}");
    fake.reply(Reply::Error(
        429,
        "rate_limit_error",
        "Number of requests has exceeded your rate limit",
    ));
    let r = generate(&app, &a, &account).await;
    assert_code(&r, "RATE_LIMITED");
    assert_eq!(r["errors"][0]["extensions"]["retryAfter"], 17);
    let r = app
        .graphql_as(a.token(), BRIEF, json!({"id": account}))
        .await;
    assert_eq!(ok(&r)["account"]["brief"], Value::Null, "nothing stored");
    assert_eq!(
        usage(&app, &a).await["briefs"],
        0,
        "failed calls give their slot back"
    );

    // An answer that is not the JSON asked for: the deterministic brief, marked, and counted.
    fake.reply(Reply::text(
        "I'm sorry, I can't produce JSON today.",
        900,
        12,
    ));
    let r = generate(&app, &a, &account).await;
    let brief = &ok(&r)["generateAccountBrief"]["brief"];
    assert_eq!(brief["source"], "FALLBACK");
    assert_eq!(brief["fallbackReason"], "UNREADABLE");
    assert!(!brief["statements"].as_array().unwrap().is_empty());
    let u = usage(&app, &a).await;
    assert_eq!(
        (u["briefs"].clone(), u["inputTokens"].clone()),
        (json!(1), json!(900))
    );
}

#[tokio::test]
async fn the_organization_key_is_checked_sealed_and_never_shown() {
    let fake = FakeAnthropic::start(&[ORG_KEY]).await;
    let app = app_with(&fake, &[]).await;
    let a = app.register("key@briefs.test", "Key").await;
    const SET: &str = "mutation($k: String!) { setAiApiKey(apiKey: $k) { configured keyPrefix keySource model } }";
    let r = app
        .graphql_as(a.token(), SET, json!({"k": "sk-live-not-anthropic"}))
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(r["errors"][0]["extensions"]["fields"][0]["field"], "apiKey");
    let member = app.add_member(&a, "member@briefs.test", "MEMBER").await;
    let r = app
        .graphql_as(member.token(), SET, json!({"k": ORG_KEY}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            a.token(),
            "{ aiSettings { configured keySource } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["aiSettings"],
        json!({"configured": false, "keySource": "NONE"})
    );

    let r = app.graphql_as(a.token(), SET, json!({"k": ORG_KEY})).await;
    let s = &ok(&r)["setAiApiKey"];
    assert_eq!(s["configured"], true);
    assert_eq!(s["keyPrefix"], "sk-ant-org");
    assert_eq!(s["keySource"], "ORGANIZATION");
    assert!(!r.to_string().contains(ORG_KEY));
    let stored: Vec<entity::ai_settings::Model> =
        <entity::ai_settings::Entity as sea_orm::EntityTrait>::find()
            .all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].api_key_ciphertext.contains(ORG_KEY),
        "sealed at rest"
    );

    // A member generates with the organization's key.
    let (account, _, signals) = account_with_signals(&app, &a, "byok.io", 1).await;
    fake.reply(Reply::text(
        answer(
            json!([{"section": "summary", "text": "One star.", "cites": [signals[0]]}]),
            json!([]),
        ),
        10,
        5,
    ));
    let r = generate(&app, &member, &account).await;
    assert_eq!(ok(&r)["generateAccountBrief"]["brief"]["source"], "MODEL");
    assert_eq!(fake.hits()[0].api_key.as_deref(), Some(ORG_KEY));
    // A viewer may read the brief but not generate one.
    let viewer = app.add_member(&a, "viewer@briefs.test", "VIEWER").await;
    assert_code(&generate(&app, &viewer, &account).await, "FORBIDDEN");
    let r = app
        .graphql_as(viewer.token(), BRIEF, json!({"id": account}))
        .await;
    assert_eq!(ok(&r)["account"]["brief"]["source"], "MODEL");
    // An API key without signals:read may not read it.
    let key = app.api_key(&a, &["accounts:read", "contacts:read"]).await;
    let r = app
        .graphql_with_key(&key, BRIEF, json!({"id": account}))
        .await;
    assert_code(&r, "FORBIDDEN");

    let r = app
        .graphql_as(
            a.token(),
            "mutation { clearAiApiKey { configured keyPrefix keySource } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["clearAiApiKey"],
        json!({"configured": false, "keyPrefix": null, "keySource": "NONE"})
    );
}

#[tokio::test]
async fn briefs_are_isolated_between_organizations() {
    let fake = FakeAnthropic::start(&[SERVER_KEY]).await;
    let app = app_with(&fake, &[("ANTHROPIC_API_KEY", SERVER_KEY)]).await;
    let (a, b) = app.two_tenants().await;
    let (account, _, signals) = account_with_signals(&app, &a, "mine.io", 1).await;
    fake.reply(Reply::text(
        answer(
            json!([{"section": "summary", "text": "Mine.", "cites": [signals[0]]}]),
            json!([]),
        ),
        10,
        5,
    ));
    ok(&generate(&app, &a, &account).await);
    // B can neither generate nor read A's brief, and spends nothing trying.
    assert_code(&generate(&app, &b, &account).await, "NOT_FOUND");
    let r = app
        .graphql_as(b.token(), BRIEF, json!({"id": account}))
        .await;
    assert_code(&r, "NOT_FOUND");
    assert_eq!(fake.hits().len(), 1);
    assert_eq!(usage(&app, &b).await["briefs"], 0);
    assert_eq!(usage(&app, &a).await["briefs"], 1);
    // B's own key does not become A's.
    let r = app
        .graphql_as(
            b.token(),
            "mutation($k: String!) { setAiApiKey(apiKey: $k) { configured } }",
            json!({"k": ORG_KEY}),
        )
        .await;
    ok(&r);
    let r = app
        .graphql_as(
            a.token(),
            "{ aiSettings { configured keySource } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["aiSettings"],
        json!({"configured": false, "keySource": "SERVER"})
    );
}
