//! Salesforce sync both ways against a local fake org: the first full sync (Accounts, Contacts
//! and Opportunities pulled through every SOQL page with stages mapped; the custom fields
//! created before anything is pushed; scored accounts and contacts pushed, matched by website
//! domain / email so nothing is duplicated), incremental syncs sending only changes, per-record
//! refusals recorded and not fatal, refresh on 401 and a revoked grant, and the org's API
//! allowance (`REQUEST_LIMIT_EXCEEDED`, `Sforce-Limit-Info`) backing off without losing work.

use std::time::Duration;

use devsignal_tests::connectors::{
    account_by_domain, connect, integration, ok, scored_signal, scores_settled, sync,
};
use devsignal_tests::fakes::salesforce::FakeSalesforce;
use devsignal_tests::{Session, TestApp, eventually, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const ACCESS: &str = "00Dfake!initial";
const REFRESH: &str = "sf-refresh-1";
const CLIENT_ID: &str = "sf-client";
const CLIENT_SECRET: &str = "sf-secret";

async fn salesforce_app() -> (FakeSalesforce, TestApp) {
    let fake = FakeSalesforce::start(ACCESS, REFRESH, CLIENT_ID, CLIENT_SECRET).await;
    let app = spawn_app_with(&[
        ("SALESFORCE_LOGIN_URL", fake.url.as_str()),
        ("SALESFORCE_CLIENT_ID", CLIENT_ID),
        ("SALESFORCE_CLIENT_SECRET", CLIENT_SECRET),
    ])
    .await;
    (fake, app)
}

async fn connect_salesforce(
    app: &TestApp,
    s: &Session,
    fake: &FakeSalesforce,
    token: &str,
) -> String {
    connect(
        app,
        s,
        "SALESFORCE",
        json!({}),
        Some(json!({"accessToken": token, "refreshToken": REFRESH, "instanceUrl": fake.url})),
    )
    .await
    .0
}

/// The org's side: Acme (www.acme.io, in Berlin), Globex; Jane at Acme, Hank at Globex; an
/// opportunity at Acme in negotiation and one at Globex just prospected.
fn seed(fake: &FakeSalesforce) -> String {
    let acme = fake.add(
        "Account",
        json!({"Name": "Acme", "Website": "https://www.acme.io/", "Industry": "Software",
               "BillingCity": "Berlin", "BillingCountry": "Germany", "OwnerId": "005000000000077AAA"}),
    );
    let globex = fake.add(
        "Account",
        json!({"Name": "Globex", "Website": "globex.com"}),
    );
    fake.add(
        "Contact",
        json!({"Email": "jane@acme.io", "FirstName": "Jane", "LastName": "Doe", "Title": "CTO",
               "AccountId": acme}),
    );
    fake.add(
        "Contact",
        json!({"Email": "hank@globex.com", "LastName": "Scorpio", "AccountId": globex}),
    );
    fake.add(
        "Opportunity",
        json!({"Name": "Acme expansion", "Amount": 48000, "StageName": "Negotiation/Review",
               "CloseDate": "2027-01-15", "AccountId": acme}),
    );
    fake.add(
        "Opportunity",
        json!({"Name": "Globex pilot", "Amount": 5000, "StageName": "Prospecting",
               "CloseDate": "2027-06-30", "AccountId": globex}),
    );
    acme
}

fn writes(fake: &FakeSalesforce) -> usize {
    fake.calls("POST", "/composite/sobjects").len()
        + fake.calls("PATCH", "/composite/sobjects").len()
}

#[tokio::test]
async fn salesforce_first_full_sync_both_ways_then_only_changes() {
    let (fake, app) = salesforce_app().await;
    let acme_sf = seed(&fake);
    // Two records a page: every object needs its nextRecordsUrl followed.
    fake.with(|d| d.page_size = 1);
    let s = app.register("owner@vendor.dev", "Vendor").await;
    // Ours: Initech (only here) and Acme (also there), both scored.
    scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    scored_signal(&app, &s, "ann@acme.io", "repo_fork").await;
    let id = connect_salesforce(&app, &s, &fake, ACCESS).await;

    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        run["pulled"], 6,
        "2 accounts, 2 contacts, 2 opportunities: {run}"
    );
    let continuations = fake
        .hits()
        .iter()
        .filter(|h| h.method == "GET" && h.path.contains("/query/01g"))
        .count();
    assert!(continuations >= 3, "every page read ({continuations})");

    // The custom fields exist on both objects, created before anything was written.
    for object in ["Account", "Contact"] {
        let fields = fake.custom_fields(object);
        for f in [
            "DevSignal_Score",
            "DevSignal_Tier",
            "DevSignal_Signal_Count",
            "DevSignal_Last_Signal_At",
        ] {
            assert!(fields.contains(&f.to_owned()), "{object}.{f}: {fields:?}");
        }
    }
    let hits = fake.hits();
    let last_field = hits
        .iter()
        .rposition(|h| h.path.ends_with("/tooling/sobjects/CustomField"))
        .unwrap();
    let first_write = hits
        .iter()
        .position(|h| h.path.ends_with("/composite/sobjects"))
        .unwrap();
    assert!(last_field < first_write);
    let batch = fake.calls("POST", "/composite/sobjects");
    assert_eq!(batch[0].body["allOrNone"], false);

    // Pulled: Globex is new here, Acme got Salesforce's industry and city, Jane and the deals.
    let globex = account_by_domain(&app, &s, "globex.com").await;
    assert_eq!(globex["name"], "Globex");
    let acme = account_by_domain(&app, &s, "acme.io").await;
    assert_eq!(acme["industry"], "Software");
    assert_eq!(acme["city"], "Berlin");
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
    assert_eq!(expansion["amount"], 48000.0);
    assert_eq!(expansion["expectedCloseDate"], "2027-01-15");
    assert_eq!(expansion["account"]["domain"], "acme.io");
    let pilot = deals.iter().find(|n| n["title"] == "Globex pilot").unwrap();
    assert_eq!(pilot["stage"], "IDENTIFIED");

    // Pushed: Acme matched by its website (not created twice), Initech created with its scores.
    assert_eq!(fake.records("Account").len(), 3, "no duplicate Acme");
    let acme_rec = fake.get(&acme_sf).unwrap();
    assert!(
        acme_rec.fields["DevSignal_Score__c"].as_i64().is_some(),
        "{acme_rec:?}"
    );
    assert!(acme_rec.fields["DevSignal_Tier__c"].as_str().is_some());
    assert_eq!(
        acme_rec.fields["Name"], "Acme",
        "CRM-owned fields are not pushed"
    );
    let initech = fake.find("Account", "Name", "Initech").unwrap();
    assert_eq!(initech.fields["Website"], "https://initech.io");
    assert_eq!(initech.fields["DevSignal_Signal_Count__c"], 1);
    assert_eq!(initech.fields["DevSignal_Top_Signal_Type__c"], "repo_star");
    // Contacts: Bob and Ann created (LastName from the email when unknown), Jane updated.
    let bob = fake.find("Contact", "Email", "bob@initech.io").unwrap();
    assert!(
        bob.fields["LastName"]
            .as_str()
            .is_some_and(|l| !l.is_empty())
    );
    assert!(bob.fields.contains_key("DevSignal_Score__c"));
    let jane = fake.find("Contact", "Email", "jane@acme.io").unwrap();
    assert!(jane.fields.contains_key("DevSignal_Score__c"));
    assert_eq!(fake.records("Contact").len(), 4);

    // Loop guard: our writes moved LastModifiedDate; the next runs read them back, change
    // nothing here and, once scores settle, send nothing.
    scores_settled(&app).await;
    sync(&app, &s, &id, false).await;
    fake.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["pushed"], 0, "{run}");
    assert_eq!(writes(&fake), 0, "nothing to send");
    assert!(
        fake.calls("POST", "/tooling/sobjects/CustomField")
            .is_empty()
    );
    let queries: Vec<String> = fake
        .calls("GET", "/query")
        .iter()
        .filter_map(|h| h.soql())
        .collect();
    assert!(
        queries
            .iter()
            .filter(|q| q.contains("LastModifiedDate ASC"))
            .all(|q| q.contains("WHERE LastModifiedDate >= ")),
        "incremental pulls: {queries:?}"
    );

    // A change there comes back: the name is Salesforce's.
    fake.modify(&acme_sf, json!({"Name": "Acme Corporation"}));
    sync(&app, &s, &id, false).await;
    assert_eq!(
        account_by_domain(&app, &s, "acme.io").await["name"],
        "Acme Corporation"
    );

    // A change here (a new signal at Initech) sends Initech, and only Initech, as an update.
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
    fake.clear_hits();
    sync(&app, &s, &id, false).await;
    let accounts: Vec<Value> = fake
        .hits()
        .iter()
        .filter(|h| h.path.ends_with("/composite/sobjects"))
        .flat_map(|h| h.records())
        .filter(|r| r["attributes"]["type"] == "Account")
        .collect();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["id"], initech.id.as_str());
    assert_eq!(accounts[0]["DevSignal_Signal_Count__c"], 2);
    assert!(fake.calls("POST", "/composite/sobjects").iter().all(|h| {
        h.records()
            .iter()
            .all(|r| r["attributes"]["type"] != "Account")
    }));
    assert_eq!(fake.records("Account").len(), 3, "still no duplicate");
}

#[tokio::test]
async fn salesforce_per_record_errors_are_recorded_and_not_fatal() {
    let (fake, app) = salesforce_app().await;
    fake.with(|d| d.refuse.push("Initech".into()));
    let s = app.register("owner@vendor.dev", "Vendor").await;
    let initech = scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    scored_signal(&app, &s, "ann@hooli.io", "repo_star").await;
    let id = connect_salesforce(&app, &s, &fake, ACCESS).await;
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
            .contains("FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        "{run}"
    );
    assert!(
        fake.find("Account", "Name", "Hooli").is_some(),
        "the rest went through"
    );
    assert!(fake.find("Account", "Name", "Initech").is_none());
    assert_eq!(integration(&app, &s, &id).await["status"], "CONNECTED");

    // Once Salesforce accepts it, the next run sends it: nothing was lost.
    fake.with(|d| d.refuse.clear());
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(fake.find("Account", "Name", "Initech").is_some());
    assert_eq!(fake.records("Account").len(), 2);
}

#[tokio::test]
async fn salesforce_tokens_refresh_on_401_and_a_revoked_grant_stops_with_a_clear_error() {
    let (fake, app) = salesforce_app().await;
    fake.add("Account", json!({"Name": "Acme", "Website": "acme.io"}));
    let s = app.register("owner@vendor.dev", "Vendor").await;
    // The stored token expired (Salesforce names no expiry: the 401 says so).
    let id = connect_salesforce(&app, &s, &fake, "00Dfake!expired").await;
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let refreshes = fake.calls("POST", "/services/oauth2/token");
    assert_eq!(refreshes.len(), 1, "one refresh after the 401");
    assert_eq!(refreshes[0].body["grant_type"], "refresh_token");
    assert_eq!(refreshes[0].body["refresh_token"], REFRESH);
    assert_eq!(refreshes[0].body["client_id"], CLIENT_ID);
    assert_eq!(account_by_domain(&app, &s, "acme.io").await["name"], "Acme");
    // The refreshed token (and the refresh token Salesforce did not resend) were kept.
    sync(&app, &s, &id, false).await;
    assert_eq!(fake.calls("POST", "/services/oauth2/token").len(), 1);
    fake.expire_token();
    assert_eq!(sync(&app, &s, &id, false).await["status"], "SUCCEEDED");
    assert_eq!(fake.calls("POST", "/services/oauth2/token").len(), 2);

    // The user revokes the app: the token dies and the refresh is refused.
    fake.with(|d| d.revoked = true);
    fake.expire_token();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "ERROR");
    let e = i["lastError"].as_str().unwrap();
    assert!(
        e.contains("revoked") && e.contains("connect Salesforce again"),
        "{e}"
    );
    assert!(
        i["nextSyncAt"].is_null(),
        "no scheduled run until reconnected"
    );
}

#[tokio::test]
async fn salesforce_request_limits_back_off_and_lose_nothing() {
    let (fake, app) = salesforce_app().await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    let id = connect_salesforce(&app, &s, &fake, ACCESS).await;

    // The org's 24-hour allowance is spent: 403 REQUEST_LIMIT_EXCEEDED.
    fake.with(|d| d.limit_exceeded = true);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["status"], "BACKOFF", "{i}");
    let next: chrono::DateTime<chrono::Utc> = i["nextSyncAt"].as_str().unwrap().parse().unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::minutes(30),
        "{i}"
    );
    assert!(fake.records("Account").is_empty());

    // The allowance returns: the next run sends what was pending.
    fake.with(|d| d.limit_exceeded = false);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(fake.find("Account", "Name", "Initech").is_some());

    // `Sforce-Limit-Info` saying the last call used the allowance up: the run stops before
    // sending another request, and picks up later.
    scored_signal(&app, &s, "eve@hooli.io", "repo_star").await;
    fake.with(|d| d.api_used = d.api_max - 1);
    fake.clear_hits();
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "PARTIAL", "{run}");
    assert_eq!(
        fake.hits().len(),
        1,
        "stopped after the call that spent the allowance"
    );
    assert_eq!(integration(&app, &s, &id).await["status"], "BACKOFF");
    fake.with(|d| d.api_used = 0);
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(fake.find("Account", "Name", "Hooli").is_some());
}

#[tokio::test]
async fn salesforce_a_record_deleted_there_is_created_again() {
    let (fake, app) = salesforce_app().await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    scored_signal(&app, &s, "bob@initech.io", "repo_star").await;
    let id = connect_salesforce(&app, &s, &fake, ACCESS).await;
    assert_eq!(sync(&app, &s, &id, false).await["status"], "SUCCEEDED");
    let first = fake.find("Account", "Name", "Initech").unwrap();
    scores_settled(&app).await;

    // Someone deletes it in Salesforce; a new signal changes its score here.
    fake.delete(&first.id);
    scored_signal(&app, &s, "carl@initech.io", "pr_opened").await;
    scores_settled(&app).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        runs.push(sync(&app, &s, &id, false).await);
        if fake.find("Account", "Name", "Initech").is_some() {
            break;
        }
    }
    let again = fake
        .find("Account", "Name", "Initech")
        .unwrap_or_else(|| panic!("created again: {runs:?}"));
    assert_ne!(again.id, first.id);
    assert_eq!(again.fields["DevSignal_Signal_Count__c"], 2);
    let deleted_updates = fake
        .hits()
        .iter()
        .filter(|h| h.method == "PATCH")
        .flat_map(|h| h.records())
        .filter(|r| r["id"] == first.id.as_str())
        .count();
    assert_eq!(
        deleted_updates, 1,
        "the update of the deleted record was tried once"
    );
    // The engine reports the record gone (and why) on the run that found it so.
    let said = runs[0]["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(said.len(), 1, "{runs:?}");
    assert_eq!(said[0]["externalId"], first.id.as_str());
    assert!(
        said[0]["message"].as_str().unwrap().contains("deleted"),
        "{said:?}"
    );
    assert_eq!(fake.records("Account").len(), 1);
}

#[tokio::test]
async fn salesforce_sync_is_triggered_by_hand_per_tenant() {
    let (fake, app) = salesforce_app().await;
    fake.add("Account", json!({"Name": "Acme", "Website": "acme.io"}));
    let (a, b) = app.two_tenants().await;
    let ida = connect_salesforce(&app, &a, &fake, ACCESS).await;
    let r = app
        .graphql_as(
            a.token(),
            "mutation { triggerJob(name: \"salesforce-sync\") { id queue } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["triggerJob"]["queue"], "salesforce-sync");
    eventually(Duration::from_secs(30), "the triggered run", || async {
        let i = integration(&app, &a, &ida).await;
        let runs = i["runs"]["edges"].as_array().unwrap().clone();
        runs.iter()
            .any(|e| e["node"]["status"] == "SUCCEEDED")
            .then_some(())
    })
    .await;
    assert_eq!(account_by_domain(&app, &a, "acme.io").await["name"], "Acme");
    assert!(account_by_domain(&app, &b, "acme.io").await.is_null());

    // The same Salesforce Account in two organizations maps to each one's own account.
    let idb = connect_salesforce(&app, &b, &fake, ACCESS).await;
    assert_eq!(sync(&app, &b, &idb, false).await["status"], "SUCCEEDED");
    let acme_a = account_by_domain(&app, &a, "acme.io").await;
    let acme_b = account_by_domain(&app, &b, "acme.io").await;
    assert_ne!(acme_a["id"], acme_b["id"]);
    let n = entity::external_ids::Entity::find()
        .filter(entity::external_ids::Column::System.eq("SALESFORCE"))
        .filter(entity::external_ids::Column::Object.eq("account"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 2, "one mapping per organization");
}

#[tokio::test]
async fn salesforce_connects_with_oauth_and_its_instance_url_comes_with_the_token() {
    let (fake, app) = salesforce_app().await;
    let s = app.register("owner@vendor.dev", "Vendor").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = || async {
        let r = http
            .get(app.url("/api/v1/integrations/salesforce/connect"))
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
            url.starts_with(&format!("{}/services/oauth2/authorize?", fake.url)),
            "{url}"
        );
        assert!(url.contains("code_challenge_method=S256") && url.contains("refresh_token"));
        url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned()
    };
    // The user declines at Salesforce: back on the page with the reason, nothing connected.
    let state = start().await;
    let r = http
        .get(app.url(&format!(
            "/api/v1/integrations/salesforce/callback?error=access_denied&error_description=end-user+denied+authorization&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.contains("/settings/integrations?error=") && to.contains("denied"),
        "{to}"
    );
    // The user consents: the code is traded, the instance URL kept, and the grant syncs.
    let state = start().await;
    let r = http
        .get(app.url(&format!(
            "/api/v1/integrations/salesforce/callback?code=sf-auth-code&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.text().await);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.contains("connected=SALESFORCE&integration="), "{to}");
    let id = to.rsplit('=').next().unwrap().to_owned();
    let i = integration(&app, &s, &id).await;
    assert_eq!(i["kind"], "SALESFORCE");
    assert_eq!(i["status"], "CONNECTED");
    let run = sync(&app, &s, &id, false).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    // A state is used once.
    let again = http
        .get(app.url(&format!(
            "/api/v1/integrations/salesforce/callback?code=sf-auth-code&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
}
