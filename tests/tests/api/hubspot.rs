//! HubSpot sync both ways against a local fake of its API: OAuth connection (consent, PKCE,
//! single-use state), the first full sync (properties created, companies/contacts/deals pulled
//! through the domain, scored accounts and contacts pushed, matched by domain/email so nothing
//! is duplicated), incremental syncs sending only changes, the loop guard, the conflict policy,
//! per-record errors, refresh on 401 and a revoked grant, rate limits, the manual trigger, and
//! tenants.

use std::time::Duration;

use devsignal_tests::connectors::{
    account_by_domain, connect, integration, ok, scored_signal, scores_settled, sync,
};
use devsignal_tests::fakes::hubspot::FakeHubSpot;
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

async fn hubspot_app(fake: &FakeHubSpot, oauth: bool) -> TestApp {
    let mut vars = vec![("HUBSPOT_API_URL", fake.url.clone())];
    if oauth {
        vars.push(("HUBSPOT_CLIENT_ID", "hs-client".into()));
        vars.push(("HUBSPOT_CLIENT_SECRET", "hs-secret".into()));
        vars.push(("HUBSPOT_AUTH_URL", format!("{}/oauth/authorize", fake.url)));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&vars).await
}

async fn events(app: &TestApp, kind: &str) -> u64 {
    entity::events::Entity::find()
        .filter(entity::events::Column::EventType.eq(kind))
        .count(&app.db)
        .await
        .unwrap()
}

fn batch_calls(fake: &FakeHubSpot, object: &str) -> Vec<Value> {
    fake.hits()
        .into_iter()
        .filter(|h| {
            h.path
                .starts_with(&format!("/crm/v3/objects/{object}/batch/"))
                && h.status < 300
                || h.status == 207
                    && h.path
                        .starts_with(&format!("/crm/v3/objects/{object}/batch/"))
        })
        .map(|h| json!({"path": h.path, "body": h.body}))
        .collect()
}

/// Sets up HubSpot's side: Acme (acme.io, owner 77), Globex; Jane at Acme; a deal at Acme in
/// `contractsent`, and one in a stage nobody mapped.
fn seed(fake: &FakeHubSpot) -> (String, String) {
    let acme = fake.add(
        "companies",
        json!({"name": "Acme", "domain": "acme.io", "industry": "COMPUTER_SOFTWARE", "hubspot_owner_id": "77"}),
    );
    fake.add(
        "companies",
        json!({"name": "Globex", "domain": "globex.com", "city": "Springfield"}),
    );
    fake.add(
        "contacts",
        json!({"email": "jane@acme.io", "firstname": "Jane", "lastname": "Doe", "jobtitle": "CTO", "associatedcompanyid": acme}),
    );
    let deal = fake.add(
        "deals",
        json!({"dealname": "Acme expansion", "amount": "5000", "dealstage": "contractsent", "closedate": "2027-01-15T00:00:00.000Z"}),
    );
    fake.associate(&deal, &acme);
    fake.add(
        "deals",
        json!({"dealname": "Odd one", "dealstage": "custom_stage_9"}),
    );
    (acme, deal)
}

#[tokio::test]
async fn hubspot_first_full_sync_both_ways_then_only_changes_and_no_loop() {
    let fake = FakeHubSpot::start().await;
    let (acme_hs, _) = seed(&fake);
    let app = hubspot_app(&fake, false).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    // Ours: Initech (only here) and Acme (also in HubSpot), both scored.
    scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    scored_signal(&app, &s, "ann@acme.io", "repo_fork").await;

    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    // The deal in an unmapped stage is a per-record error; everything else went through.
    assert_eq!(run["status"], "PARTIAL", "{run}");
    let errors = run["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{run}");
    assert_eq!(errors[0]["object"], "deal");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("custom_stage_9"),
        "{run}"
    );
    assert_eq!(run["pulled"], 5, "2 companies, 1 contact, 2 deals: {run}");

    // DevSignal's property group and properties exist, created before anything was sent.
    fake.with(|d| {
        assert!(d.groups["companies"].contains(&"devsignal".to_owned()));
        assert!(d.properties["companies"].contains(&"devsignal_score".to_owned()));
        assert!(d.properties["contacts"].contains(&"devsignal_tier".to_owned()));
    });

    // Pulled: Globex is new here, Acme got HubSpot's industry and owner, Jane and the deal.
    let globex = account_by_domain(&app, &s, "globex.com").await;
    assert_eq!(globex["name"], "Globex");
    assert_eq!(globex["city"], "Springfield");
    let acme = account_by_domain(&app, &s, "acme.io").await;
    assert_eq!(acme["industry"], "COMPUTER_SOFTWARE");
    assert_eq!(acme["customFields"]["hubspotOwnerId"], "77");
    let r = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 10, filter: {query: \"jane@acme.io\"}) { nodes { title account { domain } } } deals(first: 10) { nodes { title stage amount expectedCloseDate account { domain } } } }",
            json!({}),
        )
        .await;
    let d = ok(&r);
    assert_eq!(d["contacts"]["nodes"][0]["title"], "CTO");
    assert_eq!(d["contacts"]["nodes"][0]["account"]["domain"], "acme.io");
    let deals = d["deals"]["nodes"].as_array().unwrap();
    let expansion = deals
        .iter()
        .find(|n| n["title"] == "Acme expansion")
        .unwrap();
    assert_eq!(expansion["stage"], "NEGOTIATION");
    assert_eq!(expansion["amount"], 5000.0);
    assert_eq!(expansion["expectedCloseDate"], "2027-01-15");
    assert_eq!(expansion["account"]["domain"], "acme.io");

    // Pushed: Acme matched by domain (not created twice), Initech created, with score fields.
    let companies = fake.records("companies");
    assert_eq!(companies.len(), 3, "no duplicate Acme");
    let acme_rec = companies.iter().find(|r| r.id == acme_hs).unwrap();
    assert!(acme_rec.props.contains_key("devsignal_score"));
    assert!(acme_rec.props["devsignal_tier"].as_str().is_some());
    let initech = fake.find("companies", "domain", "initech.io").unwrap();
    assert_eq!(initech.props["name"], "Initech");
    assert!(initech.props["devsignal_signal_count"].as_str().unwrap() == "1");
    assert_eq!(initech.props["devsignal_top_signal_type"], "repo_star");
    // Contacts with an email: bob and ann created, jane (pulled) updated with her fields.
    let bob = fake.find("contacts", "email", "bob@initech.io").unwrap();
    assert!(bob.props.contains_key("devsignal_score"));
    assert_eq!(fake.records("contacts").len(), 3);
    assert!(run["pushed"].as_i64().unwrap() >= 5, "{run}");

    // Loop guard: our push moved HubSpot's modification times; the next run reads those
    // records back, changes nothing here, and sends nothing. (The pull linked Jane to Acme, so
    // Acme is rescored: one run sends the new scores, after which nothing moves.)
    scores_settled(&app).await;
    sync(&app, &s, &id, false).await;
    let updated_before = events(&app, "account.updated").await;
    let contacts_before = events(&app, "contact.updated").await;
    let batches_before =
        batch_calls(&fake, "companies").len() + batch_calls(&fake, "contacts").len();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["pushed"], 0, "{run}");
    assert!(
        run["pulled"].as_i64().unwrap() >= 2,
        "the pushed records come back: {run}"
    );
    assert_eq!(events(&app, "account.updated").await, updated_before);
    assert_eq!(events(&app, "contact.updated").await, contacts_before);
    assert_eq!(
        batch_calls(&fake, "companies").len() + batch_calls(&fake, "contacts").len(),
        batches_before,
        "nothing to send"
    );
    // Ann, created in HubSpot by our push without a company there, keeps hers here.
    let r = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 5, filter: {query: \"ann@acme.io\"}) { nodes { account { domain } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&r)["contacts"]["nodes"][0]["account"]["domain"],
        "acme.io"
    );

    // A change here (a new signal at Initech) sends Initech, and only Initech.
    scored_signal(&app, &s, "carl@initech.io", "pr_opened").await;
    eventually(Duration::from_secs(30), "Initech rescored", || async {
        let r = app
            .graphql_as(
                s.token(),
                "query($q: String) { accounts(first: 5, filter: {query: $q}) { nodes { domain score { signalCount } } } }",
                json!({"q": "initech.io"}),
            )
            .await;
        (r["data"]["accounts"]["nodes"][0]["score"]["signalCount"] == 2).then_some(())
    })
    .await;
    let before = batch_calls(&fake, "companies").len();
    let run = sync(&app, &s, &id, false).await;
    let calls = batch_calls(&fake, "companies");
    let new: Vec<&Value> = calls[before..].iter().collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["path"], "/crm/v3/objects/companies/batch/update");
    let inputs = new[0]["body"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert_eq!(inputs[0]["id"], initech.id.as_str());
    assert_eq!(inputs[0]["properties"]["devsignal_signal_count"], "2");
    assert!(run["pushed"].as_i64().unwrap() >= 1);
    assert_eq!(fake.records("companies").len(), 3, "still no duplicate");
}

#[tokio::test]
async fn hubspot_conflicts_follow_the_written_policy() {
    let fake = FakeHubSpot::start().await;
    let (acme_hs, deal_hs) = seed(&fake);
    let app = hubspot_app(&fake, false).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({"stageMap": {"custom_stage_9": "ACTIVATED"}}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "a configured stage map: {run}");
    let acme = account_by_domain(&app, &s, "acme.io").await;
    let acme_id = acme["id"].as_str().unwrap().to_owned();

    // Here: the description (shared, only we change it) and the industry (both change it, we
    // first). There: the name (CRM-owned), the city (shared, only HubSpot), the industry (later),
    // the deal's stage and amount (CRM-owned), and our own score property (DevSignal-owned).
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { updateAccount(id: $id, input: {description: \"Ours\", industry: \"Dev tools\", name: \"Acme (ours)\"}) { id } }",
            json!({"id": acme_id}),
        )
        .await;
    ok(&r);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(2);
    fake.edit_at("companies", &acme_hs, "name", json!("Acme Corp"), later);
    fake.edit_at("companies", &acme_hs, "city", json!("Berlin"), later);
    fake.edit_at("companies", &acme_hs, "industry", json!("INTERNET"), later);
    fake.edit_at("companies", &acme_hs, "devsignal_score", json!("1"), later);
    fake.edit("deals", &deal_hs, "dealstage", json!("closedwon"));
    fake.edit("deals", &deal_hs, "amount", json!("7500"));

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let acme = account_by_domain(&app, &s, "acme.io").await;
    assert_eq!(acme["name"], "Acme Corp", "CRM-owned: HubSpot wins");
    assert_eq!(acme["city"], "Berlin", "shared, changed only there");
    assert_eq!(acme["description"], "Ours", "shared, changed only here");
    assert_eq!(
        acme["industry"], "INTERNET",
        "changed on both sides: the newer"
    );
    let r = app
        .graphql_as(
            s.token(),
            "{ deals(first: 10) { nodes { title stage amount } } }",
            json!({}),
        )
        .await;
    let deal = ok(&r)["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["title"] == "Acme expansion")
        .cloned()
        .unwrap();
    assert_eq!(deal["stage"], "CLOSED_WON");
    assert_eq!(deal["amount"], 7500.0);
    // The score is ours: HubSpot's edit is not read back; the next push restores it (the
    // values we last pushed did not change, so it is sent again only on a full sync).
    let score_before =
        fake.find("companies", "domain", "acme.io").unwrap().props["devsignal_score"].clone();
    assert_eq!(score_before, "1");
    let run = sync(&app, &s, &id, true).await;
    assert!(run["pushed"].as_i64().unwrap() >= 1, "{run}");
    assert_ne!(
        fake.find("companies", "domain", "acme.io").unwrap().props["devsignal_score"],
        "1"
    );

    // Both sides change the industry again, ours later this time: ours stays.
    let earlier = chrono::Utc::now() - chrono::Duration::seconds(1);
    fake.edit_at("companies", &acme_hs, "industry", json!("RETAIL"), earlier);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { updateAccount(id: $id, input: {industry: \"Platforms\"}) { id } }",
            json!({"id": acme_id}),
        )
        .await;
    ok(&r);
    let run = sync(&app, &s, &id, true).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        account_by_domain(&app, &s, "acme.io").await["industry"],
        "Platforms"
    );
}

#[tokio::test]
async fn hubspot_per_record_errors_are_recorded_and_not_fatal() {
    let fake = FakeHubSpot::start().await;
    fake.with(|d| d.refuse.push("initech.io".into()));
    let app = hubspot_app(&fake, false).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    let initech = scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    scored_signal(&app, &s, "ann@hooli.io", "repo_star").await;
    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    let errors = run["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{run}");
    assert_eq!(errors[0]["object"], "account");
    assert_eq!(errors[0]["id"], initech.as_str());
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("VALIDATION_ERROR")
    );
    assert!(
        fake.find("companies", "domain", "hooli.io").is_some(),
        "the rest went through"
    );
    assert!(fake.find("companies", "domain", "initech.io").is_none());
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "CONNECTED");
    assert!(
        i["lastError"]
            .as_str()
            .unwrap()
            .contains("1 item(s) were refused"),
        "{i}"
    );

    // Once HubSpot accepts it, the next run sends it: nothing was lost.
    fake.with(|d| d.refuse.clear());
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(fake.find("companies", "domain", "initech.io").is_some());
}

#[tokio::test]
async fn hubspot_tokens_refresh_on_401_and_a_revoked_grant_stops_with_a_clear_error() {
    let fake = FakeHubSpot::start().await;
    fake.add("companies", json!({"name": "Acme", "domain": "acme.io"}));
    let app = hubspot_app(&fake, true).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    // The stored token is stale (HubSpot issued another since); the grant is still good.
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(20)).to_rfc3339();
    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "stale", "refreshToken": "hs-refresh-1", "expiresAt": expires})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        fake.calls("/oauth/v1/token").len(),
        1,
        "one refresh after the 401"
    );
    assert_eq!(account_by_domain(&app, &s, "acme.io").await["name"], "Acme");
    // The refreshed token was kept: the next run needs no refresh.
    sync(&app, &s, &id, false).await;
    assert_eq!(fake.calls("/oauth/v1/token").len(), 1);

    // The user uninstalls the app: the token dies and the refresh is refused.
    fake.with(|d| {
        d.revoked = true;
        d.access_token = "another".into();
    });
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let e = i["lastError"].as_str().unwrap();
    assert!(
        e.contains("revoked") && e.contains("connect HubSpot again"),
        "{e}"
    );
    assert!(
        i["nextSyncAt"].is_null(),
        "no scheduled run until reconnected"
    );
}

#[tokio::test]
async fn hubspot_connects_with_oauth_pkce_and_a_single_use_state() {
    let fake = FakeHubSpot::start().await;
    let app = hubspot_app(&fake, true).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Signed out: refused.
    let r = http
        .get(app.url("/api/v1/integrations/hubspot/connect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A member who is not an admin: refused.
    let member = app.add_member(&s, "m@vendor.dev", "MEMBER").await;
    let r = http
        .get(app.url("/api/v1/integrations/hubspot/connect"))
        .bearer_auth(member.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = http
        .get(app.url("/api/v1/integrations/hubspot/connect"))
        .bearer_auth(s.token().unwrap())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", fake.url)),
        "{url}"
    );
    assert!(url.contains("code_challenge_method=S256") && url.contains("client_id=hs-client"));
    assert!(url.contains("crm.objects.companies.write"), "{url}");
    // The consent page sends the browser back with a code.
    let consent = http.get(&url).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    // The callback is at API_URL; the test server listens elsewhere.
    let at = back
        .find("/api/v1/integrations/hubspot/callback?code=")
        .expect(&back);
    let back = app.url(&back[at..]);
    let done = http.get(&back).send().await.unwrap();
    assert_eq!(done.status(), 302, "{:?}", done.text().await);
    let to = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.contains("/integrations?connected=HUBSPOT&integration="),
        "{to}"
    );
    let id = to.rsplit('=').next().unwrap().to_owned();
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["kind"], "HUBSPOT");
    assert_eq!(i["status"], "CONNECTED");
    // The code was traded with the PKCE verifier, and the grant works for a sync.
    let token_call = fake.calls("/oauth/v1/token");
    assert_eq!(token_call.len(), 1);
    assert!(token_call[0].body["code_verifier"].as_str().is_some());
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");

    // The state works once.
    let again = http.get(&back).send().await.unwrap();
    assert_eq!(again.status(), 400);
    // Connecting again updates the same integration (no second one).
    let r = http
        .get(app.url("/api/v1/integrations/hubspot/connect"))
        .bearer_auth(s.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let consent = http
        .get(r.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    let at = back.find("/api/v1/integrations/").unwrap();
    let done = http.get(app.url(&back[at..])).send().await.unwrap();
    let to = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.ends_with(&format!("integration={id}")), "{to}");

    // A server without HubSpot's OAuth app says so.
    let plain = hubspot_app(&fake, false).await;
    let s2 = plain.register("x@vendor.dev", "X").await;
    let r = http
        .get(plain.url("/api/v1/integrations/hubspot/connect"))
        .bearer_auth(s2.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("HUBSPOT_CLIENT_ID"));
}

#[tokio::test]
async fn hubspot_rate_limits_back_off_and_lose_nothing() {
    let fake = FakeHubSpot::start().await;
    fake.add("companies", json!({"name": "Acme", "domain": "acme.io"}));
    let app = hubspot_app(&fake, false).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    // The rolling ten-second limit: waited out within the run.
    fake.with(|d| d.throttle_next = 2);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(fake.hits().iter().filter(|h| h.status == 429).count(), 2);
    assert!(fake.find("companies", "domain", "initech.io").is_some());

    // The daily allowance spent: the run stops until midnight, nothing half-done is lost.
    scored_signal(&app, &s, "eve@hooli.io", "repo_star").await;
    fake.with(|d| d.daily_spent = true);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "BACKOFF");
    let next: chrono::DateTime<chrono::Utc> = i["nextSyncAt"].as_str().unwrap().parse().unwrap();
    let midnight = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(next, midnight, "{i}");
    fake.with(|d| d.daily_spent = false);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(fake.find("companies", "domain", "hooli.io").is_some());
}

#[tokio::test]
async fn hubspot_sync_is_triggered_by_hand_and_by_the_schedule_per_tenant() {
    let fake = FakeHubSpot::start().await;
    fake.add("companies", json!({"name": "Acme", "domain": "acme.io"}));
    let other = FakeHubSpot::start().await;
    other.add(
        "companies",
        json!({"name": "Umbrella", "domain": "umbrella.io"}),
    );
    let app = hubspot_app(&fake, false).await;
    let (a, b) = app.two_tenants().await;
    let (ida, _) = connect(
        &app,
        &a,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    // runbook 3.4: the organization's HubSpot sync now.
    let r = app
        .graphql_as(
            a.token(),
            "mutation { triggerJob(name: \"hubspot-sync\") { id queue } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["triggerJob"]["queue"], "hubspot-sync");
    // The trigger's job enqueues the run's job: once the run has ended it succeeded. On a
    // loaded machine the two jobs may take a while, and a timeout shows where they stand.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let run = loop {
        let i = integration(&app, &a, &ida).await;
        let ended = i["runs"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["status"] != "RUNNING")
            .map(|e| e["node"].clone());
        if let Some(run) = ended {
            break run;
        }
        if tokio::time::Instant::now() >= deadline {
            let jobs: Vec<(String, String, i32, Option<String>)> = entity::jobs::Entity::find()
                .all(&app.db)
                .await
                .unwrap()
                .into_iter()
                .map(|j| (j.name, j.state, j.attempts, j.last_error))
                .collect();
            panic!("no triggered run ended within 90 s: integration {i}, jobs {jobs:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(account_by_domain(&app, &a, "acme.io").await["name"], "Acme");
    // B has no HubSpot: its trigger is skipped, saying so; and B sees none of A's accounts.
    let r = app
        .graphql_as(
            b.token(),
            "mutation { triggerJob(name: \"hubspot-sync\") { id } }",
            json!({}),
        )
        .await;
    ok(&r);
    assert!(account_by_domain(&app, &b, "acme.io").await.is_null());
    // B cannot read or sync A's integration.
    let r = app
        .graphql_as(
            b.token(),
            "mutation($id: ID!) { syncIntegration(id: $id) { id } }",
            json!({"id": ida}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    // The same HubSpot company in two organizations maps to each one's own account.
    let (idb, _) = connect(
        &app,
        &b,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    let run = sync(&app, &b, &idb, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let acme_a = account_by_domain(&app, &a, "acme.io").await;
    let acme_b = account_by_domain(&app, &b, "acme.io").await;
    assert_ne!(acme_a["id"], acme_b["id"]);
    let n = entity::external_ids::Entity::find()
        .filter(entity::external_ids::Column::System.eq("HUBSPOT"))
        .filter(entity::external_ids::Column::Object.eq("account"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 2, "one mapping per organization");
    drop(other);
}

#[tokio::test]
async fn hubspot_refreshes_a_token_about_to_expire_before_using_it() {
    let fake = FakeHubSpot::start().await;
    fake.add("companies", json!({"name": "Acme", "domain": "acme.io"}));
    let app = hubspot_app(&fake, true).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    // Valid now, but expiring within the minute: refreshed first, never sent to fail.
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1", "refreshToken": "hs-refresh-1", "expiresAt": expires})),
    )
    .await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let hits = fake.hits();
    assert_eq!(hits[0].path, "/oauth/v1/token", "the refresh comes first");
    assert!(
        hits.iter().all(|h| h.status != 401),
        "no request failed for an old token"
    );
    assert!(
        hits[1..]
            .iter()
            .all(|h| h.authorization.as_deref() == Some("Bearer hs-token-2"))
    );
}

#[tokio::test]
async fn hubspot_pulls_a_record_its_search_index_showed_late() {
    let fake = FakeHubSpot::start().await;
    fake.add("companies", json!({"name": "Acme", "domain": "acme.io"}));
    let app = hubspot_app(&fake, false).await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    let (id, _) = connect(
        &app,
        &s,
        "HUBSPOT",
        json!({}),
        Some(json!({"accessToken": "hs-token-1"})),
    )
    .await;
    sync(&app, &s, &id, false).await;
    // Globex changed a minute before Acme, but HubSpot's search shows it only now (its index
    // lags): the next run still reads it.
    let globex = fake.add(
        "companies",
        json!({"name": "Globex", "domain": "globex.com"}),
    );
    fake.edit_at(
        "companies",
        &globex,
        "city",
        json!("Springfield"),
        chrono::Utc::now() - chrono::Duration::seconds(60),
    );
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        account_by_domain(&app, &s, "globex.com").await["city"],
        "Springfield"
    );
}
