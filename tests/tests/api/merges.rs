//! Contact merges, through GraphQL only: a manual merge moves signals,
//! activities, deals, identities and tags and fills empty fields; an unmerge restores exactly
//! what the merge changed (later edits win); bad input names the field and writes nothing;
//! roles and tenants are enforced; ingest auto-merges when one signal names its contact and
//! exactly one other, never two others and never a pair a person unmerged; suggestions carry
//! their evidence and combined confidence.

use std::time::Duration;

use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::{field, ok};

const CONTACT: &str = "id firstName lastName email title phone github twitter linkedIn city country notes customFields tags createdAt updatedAt account { id }";
const MERGE: &str = "mutation($p: ID!, $d: [ID!]!) { mergeContacts(primaryId: $p, duplicateIds: $d) { contact { id firstName lastName email title phone city tags account { id } } merges { id primaryId mergedContactId reason confidence evidence { kind value confidence seenOn { contactId source } } createdAt undoneAt mergedBy { id } primary { id } } } }";
const UNMERGE: &str = "mutation($m: ID!) { unmergeContact(mergeId: $m) { id email } }";
const SUGGESTIONS: &str = "query($first: Int) { mergeSuggestions(first: $first) { contacts { id } confidence previouslyUnmerged evidence { kind value confidence seenOn { contactId source } } } }";
const MERGES: &str = "query($c: ID) { contactMerges(contactId: $c) { id primaryId mergedContactId reason confidence undoneAt evidence { kind value } } }";
const INGEST: &str = "mutation($input: SignalInput!) { ingestSignal(input: $input) { deduplicated signal { id contact { id } account { id } } } }";
const EVENTS: &str =
    "query($types: [String!]) { events(first: 1000, types: $types) { seq type payload } }";

async fn create_contact(app: &TestApp, s: &Session, input: Value) -> String {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($i: ContactFields!) { createContact(input: $i) { id } }",
            json!({"i": input}),
        )
        .await;
    ok(&r)["createContact"]["id"].as_str().unwrap().to_owned()
}

async fn create_account(app: &TestApp, s: &Session, name: &str, domain: &str) -> String {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { id } }",
            json!({"i": {"name": name, "domain": domain}}),
        )
        .await;
    ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned()
}

async fn ingest(app: &TestApp, s: &Session, input: Value) -> Value {
    let r = app
        .graphql_as(s.token(), INGEST, json!({"input": input}))
        .await;
    ok(&r)["ingestSignal"]["signal"].clone()
}

/// The contact's full row as the API shows it, or `None` when it does not exist.
async fn contact(app: &TestApp, s: &Session, id: &str) -> Option<Value> {
    let r = app
        .graphql_as(
            s.token(),
            &format!("query($id: ID!) {{ contact(id: $id) {{ {CONTACT} }} }}"),
            json!({"id": id}),
        )
        .await;
    if r.get("errors").is_some() {
        assert_code(&r, "NOT_FOUND");
        return None;
    }
    Some(r["data"]["contact"].clone())
}

/// The ids of the contact's signals, sorted.
async fn signal_ids(app: &TestApp, s: &Session, id: &str) -> Vec<String> {
    let r = app
        .graphql_as(
            s.token(),
            "query($id: ID!) { contact(id: $id) { signals(first: 100) { edges { node { id } } } } }",
            json!({"id": id}),
        )
        .await;
    let mut ids: Vec<String> = ok(&r)["contact"]["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The contact ids of a deal and an activity.
async fn owners(app: &TestApp, s: &Session, deal: &str, activity: &str) -> (Value, Value) {
    let r = app
        .graphql_as(
            s.token(),
            "query($d: ID!, $a: ID!) { deal(id: $d) { contact { id } } activity(id: $a) { contact { id } } }",
            json!({"d": deal, "a": activity}),
        )
        .await;
    let d = ok(&r);
    (
        d["deal"]["contact"]["id"].clone(),
        d["activity"]["contact"]["id"].clone(),
    )
}

async fn events_of(app: &TestApp, s: &Session, types: &[&str]) -> Vec<Value> {
    let r = app
        .graphql_as(s.token(), EVENTS, json!({"types": types}))
        .await;
    ok(&r)["events"].as_array().unwrap().clone()
}

async fn contact_count(app: &TestApp, s: &Session) -> u64 {
    let r = app
        .graphql_as(s.token(), "{ contacts { totalCount } }", json!({}))
        .await;
    ok(&r)["contacts"]["totalCount"].as_u64().unwrap()
}

/// The primary and the duplicate of the manual-merge tests, with a signal, a deal and an
/// activity on the duplicate and a signal on the primary.
struct Pair {
    primary: String,
    dup: String,
    account: String,
    deal: String,
    activity: String,
    primary_signal: String,
    dup_signal: String,
}

async fn pair(app: &TestApp, s: &Session) -> Pair {
    let account = create_account(app, s, "Acme", "acme.io").await;
    let primary = create_contact(
        app,
        s,
        json!({"firstName": "Jane", "lastName": "Doe", "github": "janedev", "tags": ["vip", "beta"]}),
    )
    .await;
    let dup = create_contact(
        app,
        s,
        json!({"firstName": "J.", "email": "Jane@Acme.io", "title": "CTO", "phone": "+1 555 0100",
               "city": "Berlin", "tags": ["beta", "champion"], "accountId": account,
               "customFields": {"plan": "team"}, "notes": "met at the conference"}),
    )
    .await;
    // Found by its email: the signal and an EMAIL identity belong to the duplicate.
    let dup_signal = ingest(
        app,
        s,
        json!({"type": "signup", "actor": {"email": "jane@acme.io"}}),
    )
    .await;
    assert_eq!(dup_signal["contact"]["id"], dup.as_str());
    let primary_signal = ingest(
        app,
        s,
        json!({"type": "repo_star", "actorId": primary, "metadata": {"repo": "cli"}}),
    )
    .await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation($c: ID!) { createDeal(input: {title: \"Team plan\", contactId: $c}) { id } createActivity(input: {type: NOTE, title: \"Call\", contactId: $c}) { id } }",
            json!({"c": dup}),
        )
        .await;
    let d = ok(&r);
    Pair {
        primary,
        dup,
        account,
        deal: d["createDeal"]["id"].as_str().unwrap().to_owned(),
        activity: d["createActivity"]["id"].as_str().unwrap().to_owned(),
        primary_signal: primary_signal["id"].as_str().unwrap().to_owned(),
        dup_signal: dup_signal["id"].as_str().unwrap().to_owned(),
    }
}

fn without(mut v: Value, keys: &[&str]) -> Value {
    for k in keys {
        v.as_object_mut().unwrap().remove(*k);
    }
    v
}

#[tokio::test]
async fn a_manual_merge_moves_everything_and_an_unmerge_restores_exactly() {
    let app = spawn_app().await;
    let s = app.register("owner@merge.test", "Merge").await;
    let p = pair(&app, &s).await;
    let primary_before = contact(&app, &s, &p.primary).await.unwrap();
    let dup_before = contact(&app, &s, &p.dup).await.unwrap();

    let r = app
        .graphql_as(s.token(), MERGE, json!({"p": p.primary, "d": [p.dup]}))
        .await;
    let out = &ok(&r)["mergeContacts"];
    let c = &out["contact"];
    // Own fields kept, empty ones filled, tags united, the account inherited.
    assert_eq!(c["firstName"], "Jane");
    assert_eq!(c["lastName"], "Doe");
    assert_eq!(c["email"], "Jane@Acme.io");
    assert_eq!(c["title"], "CTO");
    assert_eq!(c["phone"], "+1 555 0100");
    assert_eq!(c["city"], "Berlin");
    assert_eq!(c["tags"], json!(["vip", "beta", "champion"]));
    assert_eq!(c["account"]["id"], p.account.as_str());
    let m = &out["merges"][0];
    assert_eq!(out["merges"].as_array().unwrap().len(), 1);
    assert_eq!(m["primaryId"], p.primary.as_str());
    assert_eq!(m["primary"]["id"], p.primary.as_str());
    assert_eq!(m["mergedContactId"], p.dup.as_str());
    assert_eq!(m["reason"], "MANUAL");
    assert_eq!(m["mergedBy"]["id"], s.user_id.as_str());
    assert!(m["undoneAt"].is_null());
    let merge_id = m["id"].as_str().unwrap().to_owned();

    // The duplicate is gone; its signal, deal, activity and identity are the primary's.
    assert!(contact(&app, &s, &p.dup).await.is_none());
    let mut both = vec![p.primary_signal.clone(), p.dup_signal.clone()];
    both.sort();
    assert_eq!(signal_ids(&app, &s, &p.primary).await, both);
    let (deal, activity) = owners(&app, &s, &p.deal, &p.activity).await;
    assert_eq!(deal, p.primary.as_str());
    assert_eq!(activity, p.primary.as_str());
    let later = ingest(
        &app,
        &s,
        json!({"type": "login", "actor": {"email": "jane@acme.io"}}),
    )
    .await;
    assert_eq!(
        later["contact"]["id"],
        p.primary.as_str(),
        "the EMAIL identity moved"
    );

    // One contact.merged event, and the primary's contact.updated.
    let merged = events_of(&app, &s, &["contact.merged"]).await;
    assert_eq!(merged.len(), 1);
    let pl = &merged[0]["payload"];
    assert_eq!(pl["primaryId"], p.primary.as_str());
    assert_eq!(pl["mergedId"], p.dup.as_str());
    assert_eq!(pl["mergeId"], merge_id.as_str());
    assert_eq!(pl["reason"], "MANUAL");
    assert_eq!(pl["moved"]["signals"], 1);
    assert_eq!(pl["moved"]["deals"], 1);
    assert_eq!(pl["moved"]["activities"], 1);
    assert_eq!(pl["moved"]["identities"], 1);
    let updated = events_of(&app, &s, &["contact.updated"]).await;
    assert_eq!(
        updated.last().unwrap()["payload"]["contact"]["id"],
        p.primary.as_str()
    );

    // A later edit of a filled field wins over the unmerge.
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { updateContact(id: $id, input: {title: \"VP Engineering\"}) { id } }",
            json!({"id": p.primary}),
        )
        .await;
    ok(&r);

    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": merge_id}))
        .await;
    assert_eq!(ok(&r)["unmergeContact"]["id"], p.dup.as_str());
    // The duplicate is back exactly as it was (id, fields, tags, account, times).
    assert_eq!(contact(&app, &s, &p.dup).await.unwrap(), dup_before);
    // The primary lost what the merge gave it, except the edited title.
    let primary_after = contact(&app, &s, &p.primary).await.unwrap();
    assert_eq!(primary_after["title"], "VP Engineering");
    assert_eq!(
        without(primary_after, &["title", "updatedAt"]),
        without(primary_before, &["title", "updatedAt"])
    );
    // Exactly the moved rows went back; the signal that arrived since stays with the primary.
    assert_eq!(
        signal_ids(&app, &s, &p.dup).await,
        vec![p.dup_signal.clone()]
    );
    let mut kept = vec![
        p.primary_signal.clone(),
        later["id"].as_str().unwrap().to_owned(),
    ];
    kept.sort();
    assert_eq!(signal_ids(&app, &s, &p.primary).await, kept);
    let (deal, activity) = owners(&app, &s, &p.deal, &p.activity).await;
    assert_eq!(deal, p.dup.as_str());
    assert_eq!(activity, p.dup.as_str());
    let again = ingest(
        &app,
        &s,
        json!({"type": "logout", "actor": {"email": "jane@acme.io"}}),
    )
    .await;
    assert_eq!(
        again["contact"]["id"],
        p.dup.as_str(),
        "the identity went back"
    );
    let unmerged = events_of(&app, &s, &["contact.unmerged"]).await;
    assert_eq!(unmerged.len(), 1);
    assert_eq!(unmerged[0]["payload"]["restoredId"], p.dup.as_str());
    assert_eq!(unmerged[0]["payload"]["movedBack"]["signals"], 1);

    // The record says it was undone; a second unmerge is a conflict.
    let r = app.graphql_as(s.token(), MERGES, json!({"c": p.dup})).await;
    let list = ok(&r)["contactMerges"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert!(list[0]["undoneAt"].is_string());
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": merge_id}))
        .await;
    assert_code(&r, "CONFLICT");
}

#[tokio::test]
async fn unmerge_conflicts_when_the_primary_is_gone_or_the_email_is_taken() {
    let app = spawn_app().await;
    let s = app.register("owner@merge2.test", "Merge2").await;
    let a = create_contact(&app, &s, json!({"firstName": "Ann"})).await;
    let b = create_contact(&app, &s, json!({"email": "ann@ex.io"})).await;
    let c = create_contact(&app, &s, json!({"firstName": "Cy"})).await;
    let r = app
        .graphql_as(s.token(), MERGE, json!({"p": a, "d": [b]}))
        .await;
    let first = ok(&r)["mergeContacts"]["merges"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Someone changes the primary's email and another contact takes the merged one.
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { updateContact(id: $id, input: {email: \"ann@new.io\"}) { id } }",
            json!({"id": a}),
        )
        .await;
    ok(&r);
    let taker = create_contact(&app, &s, json!({"email": "ANN@ex.io"})).await;
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": first}))
        .await;
    assert_code(&r, "CONFLICT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ann@ex.io"),
        "{r}"
    );
    assert!(contact(&app, &s, &b).await.is_none(), "nothing was written");
    // Free the email: the unmerge now works.
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { deleteContact(id: $id) }",
            json!({"id": taker}),
        )
        .await;
    ok(&r);

    // A primary merged away itself: its earlier merge cannot be undone first.
    let r = app
        .graphql_as(s.token(), MERGE, json!({"p": c, "d": [a]}))
        .await;
    let second = ok(&r)["mergeContacts"]["merges"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": first}))
        .await;
    assert_code(&r, "CONFLICT");
    // In reverse order both come undone.
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": second}))
        .await;
    assert_eq!(ok(&r)["unmergeContact"]["id"], a.as_str());
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": first}))
        .await;
    assert_eq!(ok(&r)["unmergeContact"]["email"], "ann@ex.io");
    assert_eq!(contact_count(&app, &s).await, 3);

    // The merged contact's account was deleted since: it comes back unlinked.
    let acct = create_account(&app, &s, "Gone", "gone.io").await;
    let x = create_contact(&app, &s, json!({"firstName": "Xa", "accountId": acct})).await;
    let r = app
        .graphql_as(s.token(), MERGE, json!({"p": c, "d": [x]}))
        .await;
    let m = ok(&r)["mergeContacts"]["merges"][0]["id"].clone();
    let r = app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { deleteAccount(id: $id) }",
            json!({"id": acct}),
        )
        .await;
    ok(&r);
    let r = app.graphql_as(s.token(), UNMERGE, json!({"m": m})).await;
    assert_eq!(ok(&r)["unmergeContact"]["id"], x.as_str());
    let back = contact(&app, &s, &x).await.unwrap();
    assert!(back["account"].is_null());
    assert!(contact(&app, &s, &c).await.unwrap()["account"].is_null());
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let s = app.register("owner@merge3.test", "Merge3").await;
    let p = pair(&app, &s).await;
    let merge = |primary: Value, dups: Value| {
        let app = &app;
        let s = &s;
        async move {
            app.graphql_as(s.token(), MERGE, json!({"p": primary, "d": dups}))
                .await
        }
    };
    for (primary, dups, want) in [
        (json!(p.primary), json!([]), "duplicateIds"),
        (json!(p.primary), json!([p.primary]), "duplicateIds"),
        (json!(p.primary), json!([p.dup, p.dup]), "duplicateIds"),
        (json!(p.primary), json!(["not-an-id"]), "duplicateIds"),
        (json!("nope"), json!([p.dup]), "primaryId"),
    ] {
        let r = merge(primary, dups).await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(field(&r), want, "{r}");
    }
    let many: Vec<String> = (0..51).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let r = merge(json!(p.primary), json!(many)).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "duplicateIds");

    // An unknown duplicate among real ones, or an unknown primary: NOT_FOUND, nothing moved.
    let before = contact(&app, &s, &p.primary).await.unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = merge(json!(p.primary), json!([p.dup, unknown])).await;
    assert_code(&r, "NOT_FOUND");
    let r = merge(json!(unknown), json!([p.dup])).await;
    assert_code(&r, "NOT_FOUND");
    assert_eq!(contact(&app, &s, &p.primary).await.unwrap(), before);
    assert!(contact(&app, &s, &p.dup).await.is_some());
    assert_eq!(signal_ids(&app, &s, &p.dup).await, vec![p.dup_signal]);
    assert!(events_of(&app, &s, &["contact.merged"]).await.is_empty());
    let r = app.graphql_as(s.token(), MERGES, json!({})).await;
    assert!(ok(&r)["contactMerges"].as_array().unwrap().is_empty());

    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": unknown}))
        .await;
    assert_code(&r, "NOT_FOUND");
    let r = app.graphql_as(s.token(), UNMERGE, json!({"m": "x"})).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "mergeId");
    for first in [0, 101] {
        let r = app
            .graphql_as(s.token(), SUGGESTIONS, json!({"first": first}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(field(&r), "first");
    }
}

#[tokio::test]
async fn viewers_cannot_merge_and_tenants_are_isolated() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let viewer = app.add_member(&a, "viewer@merge.test", "VIEWER").await;
    let p = pair(&app, &a).await;
    // Tenant B has a contact with the same email: never paired across organizations.
    create_contact(
        &app,
        &b,
        json!({"email": "jane@acme.io", "github": "janedev"}),
    )
    .await;

    let r = app
        .graphql_as(viewer.token(), MERGE, json!({"p": p.primary, "d": [p.dup]}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(b.token(), MERGE, json!({"p": p.primary, "d": [p.dup]}))
        .await;
    assert_code(&r, "NOT_FOUND");
    let own = create_contact(&app, &b, json!({"firstName": "Bee"})).await;
    let r = app
        .graphql_as(b.token(), MERGE, json!({"p": own, "d": [p.dup]}))
        .await;
    assert_code(&r, "NOT_FOUND");
    assert!(contact(&app, &a, &p.dup).await.is_some());

    let r = app
        .graphql_as(a.token(), MERGE, json!({"p": p.primary, "d": [p.dup]}))
        .await;
    let merge_id = ok(&r)["mergeContacts"]["merges"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .graphql_as(viewer.token(), UNMERGE, json!({"m": merge_id}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(b.token(), UNMERGE, json!({"m": merge_id}))
        .await;
    assert_code(&r, "NOT_FOUND");

    // B sees none of A's merges or suggestions; the viewer reads A's.
    for c in [json!(null), json!(p.primary)] {
        let r = app.graphql_as(b.token(), MERGES, json!({"c": c})).await;
        assert!(ok(&r)["contactMerges"].as_array().unwrap().is_empty());
    }
    let r = app
        .graphql_as(viewer.token(), MERGES, json!({"c": p.primary}))
        .await;
    assert_eq!(ok(&r)["contactMerges"].as_array().unwrap().len(), 1);
    create_contact(
        &app,
        &a,
        json!({"email": "other@acme.io", "github": "JaneDev"}),
    )
    .await;
    let r = app.graphql_as(b.token(), SUGGESTIONS, json!({})).await;
    assert!(ok(&r)["mergeSuggestions"].as_array().unwrap().is_empty());
    let r = app.graphql_as(viewer.token(), SUGGESTIONS, json!({})).await;
    let list = ok(&r)["mergeSuggestions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["evidence"][0]["kind"], "GITHUB");
}

async fn score_users(app: &TestApp, s: &Session, account: &str) -> Option<i64> {
    let r = app
        .graphql_as(
            s.token(),
            "query($id: ID!) { account(id: $id) { score { userCount } } }",
            json!({"id": account}),
        )
        .await;
    ok(&r)["account"]["score"]["userCount"].as_i64()
}

async fn wait_users(app: &TestApp, s: &Session, account: &str, want: i64) {
    eventually(
        Duration::from_secs(20),
        &format!("the account to be scored with {want} users"),
        || async { (score_users(app, s, account).await == Some(want)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn ingest_auto_merges_one_other_contact_and_never_an_unmerged_pair() {
    let app = spawn_app().await;
    let s = app.register("owner@auto.test", "Auto").await;
    let a = ingest(
        &app,
        &s,
        json!({"type": "signup", "actor": {"email": "kim@acme.io"}}),
    )
    .await;
    let b = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"github": "KimCodes"}, "account": {"domain": "acme.io"}}),
    )
    .await;
    let (ca, cb) = (
        a["contact"]["id"].as_str().unwrap().to_owned(),
        b["contact"]["id"].as_str().unwrap().to_owned(),
    );
    let account = a["account"]["id"].as_str().unwrap().to_owned();
    assert_ne!(ca, cb);
    assert_eq!(b["account"]["id"], account.as_str());
    wait_users(&app, &s, &account, 2).await;

    // One signal names both: they become one contact (A has more signals, so A stays).
    let both = ingest(
        &app,
        &s,
        json!({"type": "pr_merged", "actor": {"email": "kim@acme.io", "github": "kimcodes"}}),
    )
    .await;
    assert_eq!(both["contact"]["id"], ca.as_str());
    assert!(contact(&app, &s, &cb).await.is_none());
    let merged = contact(&app, &s, &ca).await.unwrap();
    assert_eq!(merged["github"], "kimcodes");
    let mut all = vec![
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
        both["id"].as_str().unwrap().to_owned(),
    ];
    all.sort();
    assert_eq!(signal_ids(&app, &s, &ca).await, all);
    let ev = events_of(&app, &s, &["contact.merged"]).await;
    assert_eq!(ev.len(), 1);
    let pl = &ev[0]["payload"];
    assert_eq!(pl["reason"], "AUTO");
    assert_eq!(pl["primaryId"], ca.as_str());
    assert_eq!(pl["mergedId"], cb.as_str());
    assert_eq!(pl["confidence"], 0.95);
    assert_eq!(pl["evidence"][0]["kind"], "GITHUB");
    assert_eq!(pl["evidence"][0]["value"], "kimcodes");
    // The account now has one person, and its score says so.
    wait_users(&app, &s, &account, 1).await;

    let r = app.graphql_as(s.token(), MERGES, json!({"c": ca})).await;
    let rec = ok(&r)["contactMerges"][0].clone();
    assert_eq!(rec["reason"], "AUTO");
    assert_eq!(rec["confidence"], 0.95);

    // A person says they differ: unmerge, and the same hints never merge them again.
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": rec["id"]}))
        .await;
    assert_eq!(ok(&r)["unmergeContact"]["id"], cb.as_str());
    assert_eq!(
        signal_ids(&app, &s, &cb).await,
        vec![b["id"].as_str().unwrap().to_owned()]
    );
    let again = ingest(
        &app,
        &s,
        json!({"type": "pr_merged", "actor": {"email": "kim@acme.io", "github": "kimcodes"}, "metadata": {"pr": 2}}),
    )
    .await;
    assert_eq!(again["contact"]["id"], ca.as_str());
    assert!(contact(&app, &s, &cb).await.is_some(), "not merged again");
    assert_eq!(events_of(&app, &s, &["contact.merged"]).await.len(), 1);
    wait_users(&app, &s, &account, 2).await;
}

#[tokio::test]
async fn two_other_contacts_are_left_to_suggestions() {
    let app = spawn_app().await;
    let s = app.register("owner@auto2.test", "Auto2").await;
    // A has the GitHub login in a field only; B got it as an identity from a signal.
    let a = create_contact(
        &app,
        &s,
        json!({"email": "lee@acme.io", "github": "LeeDev"}),
    )
    .await;
    let b = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"github": "leedev"}}),
    )
    .await;
    let e = ingest(
        &app,
        &s,
        json!({"type": "npm_download", "actor": {"npm": "lee-npm"}}),
    )
    .await;
    let (cb, ce) = (
        b["contact"]["id"].as_str().unwrap().to_owned(),
        e["contact"]["id"].as_str().unwrap().to_owned(),
    );
    assert_ne!(a, cb);
    // This signal's email finds A, and its GitHub and npm name two other contacts: no merge.
    let sig = ingest(
        &app,
        &s,
        json!({"type": "signup", "actor": {"email": "lee@acme.io", "github": "leedev", "npm": "lee-npm"}}),
    )
    .await;
    assert_eq!(sig["contact"]["id"], a.as_str());
    assert!(events_of(&app, &s, &["contact.merged"]).await.is_empty());
    assert_eq!(contact_count(&app, &s).await, 3);
    assert!(contact(&app, &s, &ce).await.is_some());

    let r = app
        .graphql_as(s.token(), SUGGESTIONS, json!({"first": 5}))
        .await;
    let list = ok(&r)["mergeSuggestions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    let ids: Vec<&str> = list[0]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str(), cb.as_str()], "older first");
    assert_eq!(list[0]["confidence"], 0.95);
    assert_eq!(list[0]["previouslyUnmerged"], false);
    let ev = &list[0]["evidence"][0];
    assert_eq!(ev["kind"], "GITHUB");
    assert_eq!(ev["value"], "leedev");
    let seen: Vec<(String, String)> = ev["seenOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["contactId"].as_str().unwrap().to_owned(),
                x["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(seen.contains(&(a.clone(), "FIELD".into())), "{seen:?}");
    assert!(seen.contains(&(cb.clone(), "IDENTITY".into())), "{seen:?}");
}

#[tokio::test]
async fn suggestions_rank_pairs_by_combined_evidence() {
    let app = spawn_app().await;
    let s = app.register("owner@sugg.test", "Sugg").await;
    let acme = create_account(&app, &s, "Acme", "acme.io").await;
    let c1 = create_contact(
        &app,
        &s,
        json!({"firstName": "Sam", "lastName": "Lee", "email": "sam@acme.io", "github": "samlee",
               "twitter": "@SamLee_", "accountId": acme}),
    )
    .await;
    // The same GitHub login (identity and field): 0.95.
    let c2 = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"github": "SamLee"}}),
    )
    .await;
    let c2 = c2["contact"]["id"].as_str().unwrap().to_owned();
    // The same full name at the same account (0.7) and the same Twitter/X handle (0.9): 0.97.
    let c3 = create_contact(
        &app,
        &s,
        json!({"firstName": " sam", "lastName": "LEE", "twitter": "https://x.com/samlee_", "accountId": acme}),
    )
    .await;
    // The same full name elsewhere: 0.5 with each of c1 and c3.
    let c4 = create_contact(&app, &s, json!({"firstName": "Sam", "lastName": "Lee"})).await;
    // Unrelated.
    create_contact(
        &app,
        &s,
        json!({"firstName": "Max", "email": "max@acme.io"}),
    )
    .await;

    let r = app.graphql_as(s.token(), SUGGESTIONS, json!({})).await;
    let list = ok(&r)["mergeSuggestions"].as_array().unwrap().clone();
    let summary: Vec<(Vec<String>, f64)> = list
        .iter()
        .map(|x| {
            (
                x["contacts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().to_owned())
                    .collect(),
                x["confidence"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!(summary[0].0, vec![c1.clone(), c3.clone()]);
    assert!((summary[0].1 - 0.97).abs() < 1e-9, "{summary:?}");
    assert_eq!(summary[1].0, vec![c1.clone(), c2.clone()]);
    assert!((summary[1].1 - 0.95).abs() < 1e-9);
    for (pair, conf) in &summary[2..] {
        assert!(pair.contains(&c4), "{summary:?}");
        assert!((conf - 0.5).abs() < 1e-9);
    }
    let top: Vec<(String, String, f64)> = list[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
                e["confidence"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![
            ("TWITTER".into(), "samlee_".into(), 0.9),
            ("NAME".into(), "sam lee".into(), 0.7)
        ]
    );
    let r = app
        .graphql_as(s.token(), SUGGESTIONS, json!({"first": 1}))
        .await;
    assert_eq!(ok(&r)["mergeSuggestions"].as_array().unwrap().len(), 1);

    // After a merge the pair is gone; after its unmerge it is back, marked.
    let r = app
        .graphql_as(s.token(), MERGE, json!({"p": c1, "d": [c2]}))
        .await;
    let m = &ok(&r)["mergeContacts"]["merges"][0];
    assert_eq!(m["evidence"][0]["kind"], "GITHUB");
    assert_eq!(m["confidence"], 0.95);
    let merge_id = m["id"].as_str().unwrap().to_owned();
    let r = app.graphql_as(s.token(), SUGGESTIONS, json!({})).await;
    assert_eq!(ok(&r)["mergeSuggestions"].as_array().unwrap().len(), 3);
    let r = app
        .graphql_as(s.token(), UNMERGE, json!({"m": merge_id}))
        .await;
    ok(&r);
    let r = app.graphql_as(s.token(), SUGGESTIONS, json!({})).await;
    let list = ok(&r)["mergeSuggestions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 4);
    assert_eq!(list[1]["contacts"][1]["id"], c2.as_str());
    assert_eq!(list[1]["previouslyUnmerged"], true);
    assert_eq!(list[0]["previouslyUnmerged"], false);
}
