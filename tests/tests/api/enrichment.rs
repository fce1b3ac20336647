//! Enrichment from Clearbit against a local fake of its API: on demand (`enrichAccount`,
//! `enrichContact`) filling only empty fields and recording what was filled, the 30-day cache
//! (found and "no data"), 202 not remembered, 429 writing nothing, a refused key turning the
//! integration ERROR, a title or seniority filled rescoring the account, the nightly pass
//! enriching only what misses data (with the integration's key or `CLEARBIT_API_KEY`), and
//! tenants.

use std::time::Duration;

use devsignal_tests::connectors::{UPDATE, connect, integration, ok};
use devsignal_tests::fakes::clearbit::{self, FakeClearbit};
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app_with};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

const KEY: &str = "sk_test_4f1c2a";

const ENRICH_ACCOUNT: &str = "mutation($id: ID!) { enrichAccount(id: $id) { outcome fieldsFilled fetched account { id name domain industry size description city country customFields enrichment { source enrichedAt fields lastOutcome } } } }";
const ENRICH_CONTACT: &str = "mutation($id: ID!) { enrichContact(id: $id) { outcome fieldsFilled fetched contact { id firstName lastName title city country twitter linkedIn customFields enrichment { source enrichedAt fields lastOutcome } } } }";
const ACCOUNT: &str = "query($id: ID!) { account(id: $id) { id industry size description city country customFields enrichment { source enrichedAt fields lastOutcome } score { score factors { name points } } } }";
const CREATE_ACCOUNT: &str =
    "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }";
const CREATE_CONTACT: &str =
    "mutation($input: ContactFields!) { createContact(input: $input) { id } }";

async fn app_with(fake: &FakeClearbit, extra: &[(&str, &str)]) -> TestApp {
    let env = fake.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

async fn fake() -> FakeClearbit {
    let fake = FakeClearbit::start(KEY).await;
    fake.with(|d| {
        d.companies.insert(
            "acme.io".into(),
            clearbit::company("acme.io", "Acme", "Software", 120),
        );
        d.companies.insert(
            "full.io".into(),
            clearbit::company("full.io", "Full", "Software", 5000),
        );
        d.people.insert(
            "ada@acme.io".into(),
            clearbit::person(
                "ada@acme.io",
                "Ada",
                "Lovelace",
                "VP Engineering",
                "executive",
            ),
        );
        d.people.insert(
            "grace@acme.io".into(),
            clearbit::person("grace@acme.io", "Grace", "Hopper", "Engineer", "executive"),
        );
    });
    fake
}

async fn create_account(app: &TestApp, s: &Session, input: Value) -> String {
    let r = app
        .graphql_as(s.token(), CREATE_ACCOUNT, json!({"input": input}))
        .await;
    ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned()
}

async fn create_contact(app: &TestApp, s: &Session, input: Value) -> String {
    let r = app
        .graphql_as(s.token(), CREATE_CONTACT, json!({"input": input}))
        .await;
    ok(&r)["createContact"]["id"].as_str().unwrap().to_owned()
}

async fn enrich_account(app: &TestApp, s: &Session, id: &str) -> Value {
    app.graphql_as(s.token(), ENRICH_ACCOUNT, json!({"id": id}))
        .await
}

async fn enrich_contact(app: &TestApp, s: &Session, id: &str) -> Value {
    app.graphql_as(s.token(), ENRICH_CONTACT, json!({"id": id}))
        .await
}

async fn account(app: &TestApp, s: &Session, id: &str) -> Value {
    let r = app.graphql_as(s.token(), ACCOUNT, json!({"id": id})).await;
    ok(&r)["account"].clone()
}

async fn connected(app: &TestApp, s: &Session, key: &str) -> String {
    connect(app, s, "CLEARBIT", json!({}), Some(json!({"apiKey": key})))
        .await
        .0
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// Runs the nightly entry and waits for its end.
async fn nightly(app: &TestApp) -> entity::jobs::Model {
    let def = jobs::registry::find("clearbit-enrichment-scheduler").unwrap();
    let job = domain::queue::enqueue(&app.db, jobs::registry::new_job(def, json!({})))
        .await
        .unwrap()
        .unwrap();
    eventually(Duration::from_secs(30), "the enrichment pass", || async {
        domain::queue::get(&app.db, job)
            .await
            .unwrap()
            .filter(|j| j.finished_at.is_some())
    })
    .await
}

#[tokio::test]
async fn clearbit_is_a_built_kind_that_needs_a_key() {
    let fake = fake().await;
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@kinds.io", "Kinds").await;
    let r = app
        .graphql_as(
            s.token(),
            "{ integrationKinds { kind label built syncs webhooks } }",
            json!({}),
        )
        .await;
    let kinds = ok(&r)["integrationKinds"].as_array().unwrap().clone();
    let cb = kinds.iter().find(|k| k["kind"] == "CLEARBIT").unwrap();
    assert_eq!(
        cb,
        &json!({"kind": "CLEARBIT", "label": "Clearbit", "built": true, "syncs": false, "webhooks": false})
    );
    for credentials in [
        json!({}),
        json!({"apiKey": "  "}),
        json!({"apiKey": "a key"}),
    ] {
        let r = app
            .graphql_as(
                s.token(),
                devsignal_tests::connectors::CONNECT,
                json!({"input": {"kind": "CLEARBIT", "config": {}, "credentials": credentials}}),
            )
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(
            r["errors"][0]["extensions"]["fields"][0]["field"], "credentials.apiKey",
            "{r}"
        );
    }
    let id = connected(&app, &s, KEY).await;
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "CONNECTED");
    assert_eq!(i["nextSyncAt"], Value::Null, "never synced");
    // Without a key (no integration, no CLEARBIT_API_KEY) enrichment says so.
    let t = app.register("admin@nokey.io", "NoKey").await;
    let acc = create_account(&app, &t, json!({"name": "Acme", "domain": "acme.io"})).await;
    let r = enrich_account(&app, &t, &acc).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CLEARBIT_API_KEY"),
        "{r}"
    );
    assert!(fake.hits().is_empty());
}

#[tokio::test]
async fn enrich_account_fills_only_empty_fields_and_uses_the_cache() {
    let fake = fake().await;
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@acme.io", "Vendor").await;
    connected(&app, &s, KEY).await;
    let id = create_account(
        &app,
        &s,
        json!({"name": "Acme", "domain": "https://www.Acme.io/", "industry": "Developer tools",
               "customFields": {"twitterHandle": "acme_hq", "plan": "pro"}}),
    )
    .await;
    assert_eq!(account(&app, &s, &id).await["enrichment"], Value::Null);

    let r = enrich_account(&app, &s, &id).await;
    let e = &ok(&r)["enrichAccount"];
    assert_eq!(e["outcome"], "ENRICHED", "{e}");
    assert_eq!(e["fetched"], true);
    let mut filled = strings(&e["fieldsFilled"]);
    filled.sort();
    assert_eq!(
        filled,
        [
            "city",
            "country",
            "customFields.foundedYear",
            "customFields.linkedinHandle",
            "customFields.logo",
            "customFields.tech",
            "description",
            "size"
        ]
    );
    let a = &e["account"];
    // What a user set stays.
    assert_eq!(a["industry"], "Developer tools");
    assert_eq!(a["customFields"]["twitterHandle"], "acme_hq");
    assert_eq!(a["customFields"]["plan"], "pro");
    // What was empty is filled: 120 employees is MEDIUM.
    assert_eq!(a["size"], "MEDIUM");
    assert_eq!(a["description"], "Acme builds developer tools.");
    assert_eq!(a["city"], "San Francisco");
    assert_eq!(a["country"], "United States");
    assert_eq!(
        a["customFields"]["logo"],
        "https://logo.clearbit.com/acme.io"
    );
    assert_eq!(a["customFields"]["foundedYear"], 2015);
    assert_eq!(
        a["customFields"]["tech"],
        json!(["google_analytics", "aws_route_53", "stripe"])
    );
    assert_eq!(a["customFields"]["linkedinHandle"], "company/acme");
    assert_eq!(a["enrichment"]["source"], "clearbit");
    assert_eq!(a["enrichment"]["lastOutcome"], "ENRICHED");
    assert!(a["enrichment"]["enrichedAt"].is_string());
    assert_eq!(a["enrichment"]["fields"].as_array().unwrap().len(), 8);
    // One request, by the normalised domain, with the key as a bearer token.
    let hits = fake.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "/v2/companies/find");
    assert_eq!(hits[0].lookup, "acme.io");
    assert_eq!(
        hits[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    // The change went through the CRM update: audited, with its event.
    let events = entity::events::Entity::find().all(&app.db).await.unwrap();
    assert!(events.iter().any(|ev| ev.event_type == "company.updated"));

    // Again: the cache answers, nothing is left to fill.
    let r = enrich_account(&app, &s, &id).await;
    let e = &ok(&r)["enrichAccount"];
    assert_eq!(e["outcome"], "UNCHANGED", "{e}");
    assert_eq!(e["fetched"], false);
    assert_eq!(fake.hits_for("acme.io"), 1);

    // A field the user clears later is filled again from the cache, still without a request.
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { updateAccount(id: $id, input: {city: null}) { city } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)["updateAccount"]["city"], Value::Null);
    let r = enrich_account(&app, &s, &id).await;
    let e = &ok(&r)["enrichAccount"];
    assert_eq!(strings(&e["fieldsFilled"]), ["city"]);
    assert_eq!(fake.hits_for("acme.io"), 1);
}

#[tokio::test]
async fn no_data_is_remembered_and_queued_lookups_are_not() {
    let fake = fake().await;
    fake.with(|d| {
        d.queued.push("slow.io".into());
        d.invalid.push("weird.io".into());
    });
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@nodata.io", "NoData").await;
    connected(&app, &s, KEY).await;
    // 404 unknown_record: no data, remembered.
    let ghost = create_account(&app, &s, json!({"name": "Ghost", "domain": "ghost.io"})).await;
    for fetched in [true, false] {
        let r = enrich_account(&app, &s, &ghost).await;
        let e = &ok(&r)["enrichAccount"];
        assert_eq!(e["outcome"], "NO_DATA", "{e}");
        assert_eq!(e["fetched"], fetched);
        assert_eq!(e["account"]["enrichment"]["lastOutcome"], "NO_DATA");
        assert_eq!(e["account"]["enrichment"]["source"], Value::Null);
    }
    assert_eq!(fake.hits_for("ghost.io"), 1);
    assert_eq!(fake.hits()[0].status, 404);
    // 422: no data, remembered.
    let weird = create_account(&app, &s, json!({"name": "Weird", "domain": "weird.io"})).await;
    for _ in 0..2 {
        let r = enrich_account(&app, &s, &weird).await;
        assert_eq!(ok(&r)["enrichAccount"]["outcome"], "NO_DATA");
    }
    assert_eq!(fake.hits_for("weird.io"), 1);
    // 202 queued: pending, asked again next time.
    let slow = create_account(&app, &s, json!({"name": "Slow", "domain": "slow.io"})).await;
    for _ in 0..2 {
        let r = enrich_account(&app, &s, &slow).await;
        let e = &ok(&r)["enrichAccount"];
        assert_eq!(e["outcome"], "PENDING", "{e}");
        assert_eq!(e["fetched"], true);
    }
    assert_eq!(fake.hits_for("slow.io"), 2);
    // Once Clearbit has it, it is filled.
    fake.with(|d| {
        d.queued.clear();
        d.companies.insert(
            "slow.io".into(),
            clearbit::company("slow.io", "Slow", "Logistics", 8),
        );
    });
    let r = enrich_account(&app, &s, &slow).await;
    let e = &ok(&r)["enrichAccount"];
    assert_eq!(e["outcome"], "ENRICHED");
    assert_eq!(e["account"]["size"], "STARTUP");
    assert_eq!(e["account"]["industry"], "Logistics");
    // Nothing to look up: no request.
    let bare = create_account(&app, &s, json!({"name": "Bare"})).await;
    let r = enrich_account(&app, &s, &bare).await;
    assert_eq!(ok(&r)["enrichAccount"]["outcome"], "NO_DATA");
    assert_eq!(ok(&r)["enrichAccount"]["fetched"], false);
    // A person Clearbit does not know.
    let nobody = create_contact(&app, &s, json!({"email": "nobody@acme.io"})).await;
    for _ in 0..2 {
        let r = enrich_contact(&app, &s, &nobody).await;
        assert_eq!(ok(&r)["enrichContact"]["outcome"], "NO_DATA", "{r}");
    }
    assert_eq!(fake.hits_for("nobody@acme.io"), 1);
}

#[tokio::test]
async fn rate_limit_answers_rate_limited_and_writes_nothing() {
    let fake = fake().await;
    fake.with(|d| {
        d.rate_limited = 1;
        d.retry_after = 900;
    });
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@limited.io", "Limited").await;
    let integration_id = connected(&app, &s, KEY).await;
    let id = create_account(&app, &s, json!({"name": "Acme", "domain": "acme.io"})).await;
    let r = enrich_account(&app, &s, &id).await;
    assert_code(&r, "RATE_LIMITED");
    let a = account(&app, &s, &id).await;
    assert_eq!(a["size"], Value::Null);
    assert_eq!(a["enrichment"], Value::Null);
    assert_eq!(
        entity::enrichment_cache::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        0
    );
    // The integration is not blamed for a rate limit.
    assert_eq!(
        integration(&app, &s, &integration_id).await["status"],
        "CONNECTED"
    );
    let r = enrich_account(&app, &s, &id).await;
    assert_eq!(ok(&r)["enrichAccount"]["outcome"], "ENRICHED");
    assert_eq!(fake.hits_for("acme.io"), 2);

    // The nightly pass stops at the limit and continues at its end; nothing is lost.
    let other = create_account(&app, &s, json!({"name": "Full", "domain": "full.io"})).await;
    fake.with(|d| d.rate_limited = 1);
    let job = nightly(&app).await;
    assert_eq!(job.state, "completed", "{:?}", job.last_error);
    assert_eq!(account(&app, &s, &other).await["size"], Value::Null);
    let waiting = entity::jobs::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|j| {
            j.name == "clearbit-enrichment-scheduler"
                && j.state == "waiting"
                && j.payload["organizationId"] == s.organization_id.as_str()
        })
        .expect("a continuation");
    assert!(waiting.run_at > chrono::Utc::now() + chrono::Duration::minutes(10));
    let i = integration(&app, &s, &integration_id).await;
    let run = &i["runs"]["edges"][0]["node"];
    assert_eq!(run["status"], "PARTIAL", "{i}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("Clearbit's rate limit stopped the pass after 0 enriched"),
        "{run}"
    );
    // The continuation, run now, picks up where the pass stopped.
    let cont = domain::queue::enqueue(
        &app.db,
        jobs::registry::new_job(
            jobs::registry::find("clearbit-enrichment-scheduler").unwrap(),
            json!({"organizationId": s.organization_id}),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    eventually(Duration::from_secs(30), "the continuation", || async {
        domain::queue::get(&app.db, cont)
            .await
            .unwrap()
            .filter(|j| j.finished_at.is_some())
    })
    .await;
    assert_eq!(account(&app, &s, &other).await["size"], "ENTERPRISE");
}

#[tokio::test]
async fn a_refused_key_turns_the_integration_error_until_it_changes() {
    let fake = fake().await;
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@refused.io", "Refused").await;
    let iid = connected(&app, &s, "sk_wrong").await;
    let id = create_account(&app, &s, json!({"name": "Acme", "domain": "acme.io"})).await;
    let r = enrich_account(&app, &s, &id).await;
    assert_code(&r, "UPSTREAM_ERROR");
    let msg = r["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("Clearbit refused the API key (401"), "{msg}");
    let i = integration(&app, &s, &iid).await;
    assert_eq!(i["status"], "ERROR");
    assert!(i["lastError"].as_str().unwrap().contains("auth_required"));
    // No further request with the refused key.
    let r = enrich_account(&app, &s, &id).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(fake.hits().len(), 1);
    // New credentials lift the error.
    let r = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": iid, "input": {"credentials": {"apiKey": KEY}}}),
        )
        .await;
    assert_eq!(ok(&r)["updateIntegration"]["status"], "CONNECTED");
    let r = enrich_account(&app, &s, &id).await;
    assert_eq!(ok(&r)["enrichAccount"]["outcome"], "ENRICHED");
}

async fn scored_account(app: &TestApp, s: &Session, domain: &str) -> String {
    let id = create_account(app, s, json!({"name": domain, "domain": domain})).await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id } } }",
            json!({"input": {"type": "repo_star", "accountId": id}}),
        )
        .await;
    ok(&r);
    eventually(Duration::from_secs(20), "the first score", || async {
        let a = account(app, s, &id).await;
        a["score"].is_object().then_some(())
    })
    .await;
    id
}

fn seniority_points(a: &Value) -> f64 {
    a["score"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "seniority_signals")
        .unwrap()["points"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn enrich_contact_fills_empty_fields_and_rescores_on_title_and_seniority() {
    let fake = fake().await;
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@people.io", "People").await;
    connected(&app, &s, KEY).await;
    let acc = scored_account(&app, &s, "people.io").await;
    assert_eq!(seniority_points(&account(&app, &s, &acc).await), 0.0);

    // Title filled ("VP Engineering" is senior): 5 points.
    let ada = create_contact(
        &app,
        &s,
        json!({"email": "ada@acme.io", "firstName": "Augusta", "accountId": acc,
               "customFields": {"role": "founder"}}),
    )
    .await;
    let r = enrich_contact(&app, &s, &ada).await;
    let e = &ok(&r)["enrichContact"];
    assert_eq!(e["outcome"], "ENRICHED", "{e}");
    let c = &e["contact"];
    assert_eq!(c["firstName"], "Augusta", "a name the user set stays");
    assert_eq!(c["lastName"], "Lovelace");
    assert_eq!(c["title"], "VP Engineering");
    assert_eq!(c["city"], "London");
    assert_eq!(c["country"], "United Kingdom");
    assert_eq!(c["twitter"], "ada_dev");
    assert_eq!(c["linkedIn"], "https://www.linkedin.com/in/adalovelace");
    assert_eq!(c["customFields"]["seniority"], "executive");
    assert_eq!(c["customFields"]["role"], "founder");
    assert_eq!(
        c["customFields"]["avatar"],
        "https://avatars.example/Ada.png"
    );
    assert_eq!(c["enrichment"]["source"], "clearbit");
    let mut filled = strings(&e["fieldsFilled"]);
    filled.sort();
    assert_eq!(
        filled,
        [
            "city",
            "country",
            "customFields.avatar",
            "customFields.seniority",
            "lastName",
            "linkedIn",
            "title",
            "twitter"
        ]
    );
    eventually(Duration::from_secs(20), "the rescore on title", || async {
        (seniority_points(&account(&app, &s, &acc).await) == 5.0).then_some(())
    })
    .await;

    // Seniority filled on a contact whose title is not senior: 5 more points.
    let grace = create_contact(
        &app,
        &s,
        json!({"email": "grace@acme.io", "title": "Engineer", "accountId": acc}),
    )
    .await;
    let r = enrich_contact(&app, &s, &grace).await;
    let e = &ok(&r)["enrichContact"];
    assert_eq!(e["contact"]["title"], "Engineer");
    assert!(strings(&e["fieldsFilled"]).contains(&"customFields.seniority".to_owned()));
    eventually(
        Duration::from_secs(20),
        "the rescore on seniority",
        || async { (seniority_points(&account(&app, &s, &acc).await) == 10.0).then_some(()) },
    )
    .await;
    assert_eq!(fake.hits().len(), 2);
}

#[tokio::test]
async fn the_nightly_pass_enriches_only_what_misses_data() {
    let fake = fake().await;
    let app = app_with(&fake, &[]).await;
    let s = app.register("admin@nightly.io", "Nightly").await;
    // Nothing connected: nothing to do.
    let job = nightly(&app).await;
    assert_eq!(job.state, "completed");
    assert!(fake.hits().is_empty());

    let iid = connected(&app, &s, KEY).await;
    let missing = create_account(&app, &s, json!({"name": "Acme", "domain": "acme.io"})).await;
    let complete = create_account(
        &app,
        &s,
        json!({"name": "Full", "domain": "full.io", "industry": "Retail", "size": "SMALL",
               "description": "Shops", "city": "Paris", "country": "France"}),
    )
    .await;
    create_account(&app, &s, json!({"name": "No domain"})).await;
    let ada = create_contact(&app, &s, json!({"email": "ada@acme.io"})).await;
    create_contact(&app, &s, json!({"firstName": "No email"})).await;

    let job = nightly(&app).await;
    assert_eq!(job.state, "completed", "{:?}", job.last_error);
    assert_eq!(fake.hits_for("acme.io"), 1);
    assert_eq!(fake.hits_for("full.io"), 0, "nothing missing");
    assert_eq!(fake.hits_for("ada@acme.io"), 1);
    assert_eq!(fake.hits().len(), 2);
    let a = account(&app, &s, &missing).await;
    assert_eq!(a["industry"], "Software");
    assert_eq!(a["enrichment"]["source"], "clearbit");
    assert_eq!(
        account(&app, &s, &complete).await["enrichment"],
        Value::Null
    );
    let r = app
        .graphql_as(
            s.token(),
            "query($id: ID!) { contact(id: $id) { title enrichment { fields } } }",
            json!({"id": ada}),
        )
        .await;
    assert_eq!(ok(&r)["contact"]["title"], "VP Engineering");
    // The pass is one of the integration's runs: what it cost and how it ended.
    let i = integration(&app, &s, &iid).await;
    let runs = i["runs"]["edges"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{i}");
    assert_eq!(runs[0]["node"]["status"], "SUCCEEDED");
    assert_eq!(runs[0]["node"]["requests"], 2);
    assert!(i["lastSuccessAt"].is_string());

    // Tried recently: the next night leaves them alone.
    let job = nightly(&app).await;
    assert_eq!(job.state, "completed");
    assert_eq!(fake.hits().len(), 2);
}

#[tokio::test]
async fn clearbit_api_key_serves_every_organization() {
    let fake = fake().await;
    let app = app_with(&fake, &[("CLEARBIT_API_KEY", KEY)]).await;
    let (a, b) = app.two_tenants().await;
    let acc_a = create_account(&app, &a, json!({"name": "Acme", "domain": "acme.io"})).await;
    let acc_b = create_account(&app, &b, json!({"name": "Acme", "domain": "acme.io"})).await;
    let job = nightly(&app).await;
    assert_eq!(job.state, "completed", "{:?}", job.last_error);
    assert_eq!(account(&app, &a, &acc_a).await["industry"], "Software");
    assert_eq!(account(&app, &b, &acc_b).await["industry"], "Software");
    // The cache is per organization.
    assert_eq!(fake.hits_for("acme.io"), 2);
}

#[tokio::test]
async fn another_organizations_ids_are_not_found_and_nothing_changes() {
    let fake = fake().await;
    let app = app_with(&fake, &[("CLEARBIT_API_KEY", KEY)]).await;
    let (a, b) = app.two_tenants().await;
    let acc = create_account(&app, &a, json!({"name": "Acme", "domain": "acme.io"})).await;
    let con = create_contact(&app, &a, json!({"email": "ada@acme.io"})).await;
    assert_code(&enrich_account(&app, &b, &acc).await, "NOT_FOUND");
    assert_code(&enrich_contact(&app, &b, &con).await, "NOT_FOUND");
    assert_code(&enrich_account(&app, &b, &con).await, "NOT_FOUND");
    assert_code(&enrich_account(&app, &a, "not-an-id").await, "NOT_FOUND");
    assert_code(
        &enrich_contact(&app, &a, "00000000-0000-0000-0000-000000000001").await,
        "NOT_FOUND",
    );
    assert!(fake.hits().is_empty());
    assert_eq!(account(&app, &a, &acc).await["enrichment"], Value::Null);
    // Rights: a viewer and a key without accounts:write may not.
    let viewer = app.add_member(&a, "viewer@tenant-a.io", "VIEWER").await;
    assert_code(&enrich_account(&app, &viewer, &acc).await, "FORBIDDEN");
    let key = app.api_key(&a, &["accounts:read"]).await;
    assert_code(
        &app.graphql_with_key(&key, ENRICH_ACCOUNT, json!({"id": acc}))
            .await,
        "FORBIDDEN",
    );
    assert!(fake.hits().is_empty());
}
