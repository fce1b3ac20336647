//! CSV imports and data exports (#19 items 4 and 5), through GraphQL and the signed REST links:
//! awkward files (BOM, `;`, quotes, line breaks), the dry run, bad rows left out before their
//! batch is written (the batch's other rows are written whole: nothing is half-written), a
//! 10,000-row import with live progress and its re-import (no duplicates), HubSpot and
//! Salesforce exports, exports round-tripped in CSV and JSON, expiring and forged links, rights
//! and tenancy.

use std::io::Read;
use std::time::Duration;

use devsignal_tests::{
    Session, TestApp, WsClient, assert_code, eventually, spawn_app, spawn_app_with,
};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

const CREATE: &str = "mutation($e: ImportEntity!) { createImport(entity: $e) { uploadUrl uploadExpiresAt import { id status } } }";
const JOB: &str = "query($id: ID!) { importJob(id: $id) { id entity status source delimiter headers total processed created updated unchanged failed lastError mapping { column field } errors(first: 100) { row line field message } } }";
const PREVIEW: &str = "query($id: ID!) { previewImport(id: $id) { total wouldCreate wouldUpdate unchanged invalid errors { row line field message } } }";
const START: &str = "mutation($id: ID!) { startImport(id: $id) { id status } }";

/// The path and query of an absolute link (the test server's `API_URL` is not its address).
fn path_of(url: &str) -> String {
    let i = url.find("/api/v1/").expect("an API link");
    url[i..].to_owned()
}

async fn create_import(app: &TestApp, s: &Session, entity: &str) -> (String, String) {
    let r = app
        .graphql_as(s.token(), CREATE, json!({"e": entity}))
        .await;
    let c = &ok(&r)["createImport"];
    assert_eq!(c["import"]["status"], "AWAITING_UPLOAD");
    (
        c["import"]["id"].as_str().unwrap().to_owned(),
        path_of(c["uploadUrl"].as_str().unwrap()),
    )
}

async fn put(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Creates an import of `entity` and uploads `csv`; returns its id and the upload's answer.
async fn uploaded(app: &TestApp, s: &Session, entity: &str, csv: &[u8]) -> (String, Value) {
    let (id, path) = create_import(app, s, entity).await;
    let resp = put(app, &path, csv.to_vec()).await;
    assert_eq!(resp.status(), 200);
    (id, resp.json().await.unwrap())
}

async fn job(app: &TestApp, s: &Session, id: &str) -> Value {
    let r = app.graphql_as(s.token(), JOB, json!({"id": id})).await;
    ok(&r)["importJob"].clone()
}

async fn run(app: &TestApp, s: &Session, id: &str) -> Value {
    let r = app.graphql_as(s.token(), START, json!({"id": id})).await;
    assert_eq!(ok(&r)["startImport"]["status"], "QUEUED");
    finished(app, s, id).await
}

async fn finished(app: &TestApp, s: &Session, id: &str) -> Value {
    eventually(Duration::from_secs(120), "the import to finish", || async {
        let j = job(app, s, id).await;
        matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED")).then_some(j)
    })
    .await
}

fn nodes(conn: &Value) -> Vec<Value> {
    conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn contacts(app: &TestApp, s: &Session) -> (i64, Vec<Value>) {
    let r = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 100, orderBy: {field: EMAIL, direction: ASC}) { totalCount edges { node { email firstName lastName notes tags account { name domain } } } } }",
            json!({}),
        )
        .await;
    let c = &ok(&r)["contacts"];
    (c["totalCount"].as_i64().unwrap(), nodes(c))
}

async fn count(app: &TestApp, s: &Session, list: &str) -> i64 {
    let r = app
        .graphql_as(
            s.token(),
            &format!("{{ {list}(first: 1) {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    ok(&r)[list]["totalCount"].as_i64().unwrap()
}

const AWKWARD: &str = "\u{feff}E-mail;First Name;Last Name;Company;Company Domain;Notes;Tags\n\
ann@acme.io;Ann;\"O'Neil; Jr.\";\"Acme; Inc\";acme.io;\"Says \"\"hi\"\"\non two lines\";vip,beta\n\
bob@acme.io;Bob;Builder;\"Acme; Inc\";https://www.acme.io/about;plain;\n\
not-an-email;Carl;C;;;x;\n\
;Dora;D;;;;\n\
eve@other.io;Eve;E;;;;\n";

#[tokio::test]
async fn an_awkward_file_is_read_checked_in_a_dry_run_and_imported_without_its_bad_rows() {
    let app = spawn_app().await;
    let s = app.register("owner@awkward.test", "Awkward").await;
    let (id, up) = uploaded(&app, &s, "CONTACTS", AWKWARD.as_bytes()).await;
    assert_eq!(up["import"]["status"], "READY");
    assert_eq!(up["import"]["delimiter"], ";");
    assert_eq!(up["import"]["total"], 5);

    let j = job(&app, &s, &id).await;
    assert_eq!(
        j["headers"][0], "E-mail",
        "the BOM is not part of the first header"
    );
    let mapped: Vec<(String, Value)> = j["mapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["column"].as_str().unwrap().to_owned(), m["field"].clone()))
        .collect();
    assert_eq!(
        mapped,
        [
            ("E-mail".to_owned(), json!("email")),
            ("First Name".to_owned(), json!("firstName")),
            ("Last Name".to_owned(), json!("lastName")),
            ("Company".to_owned(), json!("accountName")),
            ("Company Domain".to_owned(), json!("accountDomain")),
            ("Notes".to_owned(), json!("notes")),
            ("Tags".to_owned(), json!("tags")),
        ]
    );

    // The dry run: every row checked, row numbers and lines and fields, nothing written.
    let r = app.graphql_as(s.token(), PREVIEW, json!({"id": id})).await;
    let p = &ok(&r)["previewImport"];
    assert_eq!(
        (
            &p["total"],
            &p["wouldCreate"],
            &p["wouldUpdate"],
            &p["invalid"]
        ),
        (&json!(5), &json!(3), &json!(0), &json!(2)),
        "{p}"
    );
    let errors = p["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{p}");
    assert_eq!(
        (&errors[0]["row"], &errors[0]["line"], &errors[0]["field"]),
        (&json!(3), &json!(5), &json!("email"))
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("email address")
    );
    assert_eq!(
        (&errors[1]["row"], &errors[1]["line"], &errors[1]["field"]),
        (&json!(4), &json!(6), &json!("email"))
    );
    assert_eq!(
        count(&app, &s, "contacts").await,
        0,
        "a dry run writes nothing"
    );
    assert_eq!(
        count(&app, &s, "accounts").await,
        0,
        "a dry run writes nothing"
    );

    // The run: the bad rows are left out before their batch is written; the rest is written.
    let j = run(&app, &s, &id).await;
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(
        (&j["processed"], &j["created"], &j["failed"]),
        (&json!(5), &json!(3), &json!(2)),
        "{j}"
    );
    let errs = j["errors"].as_array().unwrap();
    assert_eq!(
        errs.iter()
            .map(|e| e["row"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let (n, list) = contacts(&app, &s).await;
    assert_eq!(n, 3);
    let ann = &list[0];
    assert_eq!(ann["email"], "ann@acme.io");
    assert_eq!(ann["lastName"], "O'Neil; Jr.");
    assert_eq!(ann["notes"], "Says \"hi\"\non two lines");
    assert_eq!(ann["tags"], json!(["vip", "beta"]));
    assert_eq!(ann["account"]["name"], "Acme; Inc");
    assert_eq!(ann["account"]["domain"], "acme.io");
    assert_eq!(
        list[1]["account"]["domain"], "acme.io",
        "bob's website names the same account"
    );
    assert!(list[2]["account"].is_null());
    assert_eq!(
        count(&app, &s, "accounts").await,
        1,
        "one account, linked twice"
    );

    // Started once only.
    let r = app.graphql_as(s.token(), START, json!({"id": id})).await;
    assert_code(&r, "CONFLICT");
}

#[tokio::test]
async fn ten_thousand_contacts_import_with_live_progress_and_a_reimport_duplicates_nothing() {
    let app = spawn_app().await;
    let s = app.register("owner@bulk.test", "Bulk").await;
    let mut csv = String::from("email,first_name,last_name,company,website\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "person{i}@bulk{}.io,First{i},\"Last, {i}\",Company {},https://bulk{}.io\n",
            i % 50,
            i % 50,
            i % 50
        ));
    }
    let (id, up) = uploaded(&app, &s, "CONTACTS", csv.as_bytes()).await;
    assert_eq!(up["import"]["total"], 10_000);

    let mut ws = app.ws("graphql-transport-ws").await;
    let ack = ws
        .init(json!({"Authorization": format!("Bearer {}", s.access_token)}))
        .await;
    assert_eq!(ack["type"], "connection_ack");
    ws.subscribe(
        "p",
        "subscription($id: ID!) { importProgress(id: $id) { status processed total created } }",
        json!({"id": id}),
    )
    .await;
    let first = next(&mut ws).await;
    assert_eq!(first["status"], "READY");
    let r = app.graphql_as(s.token(), START, json!({"id": id})).await;
    ok(&r);
    let mut seen = vec![0];
    loop {
        let p = next(&mut ws).await;
        let processed = p["processed"].as_i64().unwrap();
        assert!(
            processed >= *seen.last().unwrap(),
            "progress only grows: {seen:?} {p}"
        );
        assert_eq!(p["total"], 10_000);
        seen.push(processed);
        if p["status"] == "SUCCEEDED" {
            assert_eq!(processed, 10_000);
            assert_eq!(p["created"], 10_000);
            break;
        }
        assert_ne!(p["status"], "FAILED", "{p}");
    }
    assert!(seen.len() > 2, "progress arrived batch by batch: {seen:?}");
    assert_eq!(count(&app, &s, "contacts").await, 10_000);
    assert_eq!(count(&app, &s, "accounts").await, 50);

    // The same file again: found by email, nothing created, nothing duplicated.
    let (again, _) = uploaded(&app, &s, "CONTACTS", csv.as_bytes()).await;
    let j = run(&app, &s, &again).await;
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(
        (&j["processed"], &j["created"], &j["failed"]),
        (&json!(10_000), &json!(0), &json!(0))
    );
    assert_eq!(
        j["updated"].as_i64().unwrap() + j["unchanged"].as_i64().unwrap(),
        10_000
    );
    assert_eq!(count(&app, &s, "contacts").await, 10_000);
    assert_eq!(count(&app, &s, "accounts").await, 50);
}

async fn next(ws: &mut WsClient) -> Value {
    let msg = ws.next(Duration::from_secs(120)).await.expect("a message");
    assert_eq!(msg["type"], "next", "{msg}");
    msg["payload"]["data"]["importProgress"].clone()
}

#[tokio::test]
async fn the_mapping_is_editable_and_checked() {
    let app = spawn_app().await;
    let s = app.register("owner@mapping.test", "Mapping").await;
    let (id, _) = uploaded(
        &app,
        &s,
        "CONTACTS",
        b"Mail,Shoe size,Remarks\nx@y.io,42,hello\n",
    )
    .await;
    let j = job(&app, &s, &id).await;
    assert_eq!(j["mapping"][0]["field"], "email");
    assert!(j["mapping"][1]["field"].is_null());
    const UPDATE: &str = "mutation($id: ID!, $m: [ImportColumnMappingInput!]!) { updateImportMapping(id: $id, mapping: $m) { mapping { column field } } }";
    let r = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "m": [{"column": "Mail", "field": "email"}, {"column": "Shoe size", "field": "shoeSize"}]}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    let fields = &r["errors"][0]["extensions"]["fields"];
    assert_eq!(fields[0]["field"], "mapping.1.field", "{r}");
    assert!(fields[0]["message"].as_str().unwrap().contains("shoeSize"));
    let r = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "m": [{"column": "Nope", "field": "email"}]}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(
        r["errors"][0]["extensions"]["fields"][0]["field"],
        "mapping.0.column"
    );
    let r = app
        .graphql_as(
            s.token(),
            UPDATE,
            json!({"id": id, "m": [{"column": "Mail", "field": "email"}, {"column": "Remarks", "field": "notes"}]}),
        )
        .await;
    let m = &ok(&r)["updateImportMapping"]["mapping"];
    assert_eq!(m[2], json!({"column": "Remarks", "field": "notes"}));
    assert!(m[1]["field"].is_null());
    let j = run(&app, &s, &id).await;
    assert_eq!(j["created"], 1);
    let (_, list) = contacts(&app, &s).await;
    assert_eq!(list[0]["notes"], "hello");
}

#[tokio::test]
async fn hubspot_and_salesforce_exports_map_their_columns_and_deal_stages() {
    let app = spawn_app().await;
    let s = app.register("owner@crms.test", "Crms").await;

    // HubSpot contacts.
    let (id, _) = uploaded(
        &app,
        &s,
        "CONTACTS",
        b"Record ID,First Name,Last Name,Email,Job Title,Phone Number,Company Name,Company Domain Name\n\
          101,Hal,Hub,hal@hub.io,CTO,+1 555,HubCo,hubco.io\n",
    )
    .await;
    let j = job(&app, &s, &id).await;
    assert_eq!(j["source"], "HUBSPOT");
    let fields: Vec<Value> = j["mapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            json!(null),
            json!("firstName"),
            json!("lastName"),
            json!("email"),
            json!("title"),
            json!("phone"),
            json!("accountName"),
            json!("accountDomain")
        ]
    );
    assert_eq!(run(&app, &s, &id).await["created"], 1);

    // HubSpot deals: labels and internal names of the default pipeline's stages.
    let hubspot_deals = "Record ID,Deal Name,Deal Stage,Amount,Close Date,Company Name\n\
        9001,Hub renewal,Closed Won,\"12,500.50\",2027-01-31 00:00,HubCo\n\
        9002,Hub pilot,appointmentscheduled,1000,2027-02-15,HubCo\n\
        9003,Hub bad,Somewhere Else,1,2027-02-15,HubCo\n";
    let (id, _) = uploaded(&app, &s, "DEALS", hubspot_deals.as_bytes()).await;
    let j = job(&app, &s, &id).await;
    assert_eq!(j["source"], "HUBSPOT");
    let j = run(&app, &s, &id).await;
    assert_eq!((&j["created"], &j["failed"]), (&json!(2), &json!(1)), "{j}");
    assert_eq!(j["errors"][0]["field"], "stage");
    assert_eq!(j["errors"][0]["row"], 3);

    // Salesforce opportunities.
    let sf = "Opportunity Name,Stage,Amount,Close Date,Account Name\n\
        SF expansion,Negotiation/Review,5000,01/31/2027,Force Inc\n\
        SF deal two,Id. Decision Makers,7000,02/28/2027,Force Inc\n";
    let (id, _) = uploaded(&app, &s, "DEALS", sf.as_bytes()).await;
    assert_eq!(job(&app, &s, &id).await["source"], "SALESFORCE");
    assert_eq!(run(&app, &s, &id).await["created"], 2);

    let r = app
        .graphql_as(
            s.token(),
            "{ deals(first: 20, orderBy: {field: TITLE, direction: ASC}) { totalCount edges { node { title stage amount expectedCloseDate account { name } } } } }",
            json!({}),
        )
        .await;
    let deals = nodes(&ok(&r)["deals"]);
    let by: std::collections::HashMap<String, Value> = deals
        .iter()
        .map(|d| (d["title"].as_str().unwrap().to_owned(), d.clone()))
        .collect();
    assert_eq!(by.len(), 4);
    assert_eq!(by["Hub renewal"]["stage"], "CLOSED_WON");
    assert_eq!(by["Hub renewal"]["amount"], 12500.5);
    assert_eq!(by["Hub renewal"]["expectedCloseDate"], "2027-01-31");
    assert_eq!(by["Hub renewal"]["account"]["name"], "HubCo");
    assert_eq!(by["Hub pilot"]["stage"], "IDENTIFIED");
    assert_eq!(by["SF expansion"]["stage"], "NEGOTIATION");
    assert_eq!(by["SF expansion"]["expectedCloseDate"], "2027-01-31");
    assert_eq!(by["SF deal two"]["stage"], "SALES_QUALIFIED");
    assert_eq!(by["SF deal two"]["account"]["name"], "Force Inc");

    // The HubSpot file again, renamed in HubSpot: found by its Record ID, updated in place.
    let renamed = hubspot_deals.replace("Hub renewal", "Hub renewal 2027");
    let (id, _) = uploaded(&app, &s, "DEALS", renamed.as_bytes()).await;
    let j = run(&app, &s, &id).await;
    assert_eq!(
        (&j["created"], &j["updated"]),
        (&json!(0), &json!(1)),
        "{j}"
    );
    assert_eq!(count(&app, &s, "deals").await, 4);
    assert_eq!(count(&app, &s, "accounts").await, 2);
}

#[tokio::test]
async fn upload_links_are_signed_and_files_checked() {
    let app = spawn_app_with(&[("IMPORT_MAX_BYTES", "2000")]).await;
    let s = app.register("owner@links.test", "Links").await;
    let (id, path) = create_import(&app, &s, "CONTACTS").await;

    let forged = path.replace("token=", "token=x");
    let resp = put(&app, &forged, "email\na@b.io\n").await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    // Another import's link does not fit this one.
    let (other, _) = create_import(&app, &s, "CONTACTS").await;
    let moved = path.replace(&id, &other);
    assert_eq!(put(&app, &moved, "email\na@b.io\n").await.status(), 403);

    let big = format!("email\n{}", "someone@example.io\n".repeat(200));
    let resp = put(&app, &path, big).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");

    let resp = put(&app, &path, "").await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["error"]["fields"][0]["field"], "file");

    let resp = put(&app, &path, b"email,name\na@b.io,\xff\xfe\n".to_vec()).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{body}"
    );
    assert_eq!(job(&app, &s, &id).await["status"], "AWAITING_UPLOAD");
    let r = app.graphql_as(s.token(), START, json!({"id": id})).await;
    assert_code(&r, "CONFLICT");

    assert_eq!(put(&app, &path, "email\na@b.io\n").await.status(), 200);
    assert_eq!(job(&app, &s, &id).await["status"], "READY");
}

#[tokio::test]
async fn imports_follow_the_crm_rights_and_stay_in_their_organization() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let (id, path) = create_import(&app, &a, "CONTACTS").await;
    assert_eq!(put(&app, &path, "email\na@a.io\n").await.status(), 200);

    for q in [JOB, PREVIEW, START] {
        let r = app.graphql_as(b.token(), q, json!({"id": id})).await;
        assert_code(&r, "NOT_FOUND");
    }
    let r = app
        .graphql_as(
            b.token(),
            "mutation($id: ID!) { updateImportMapping(id: $id, mapping: []) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    // B's own upload link does not open A's import.
    let (_, b_path) = create_import(&app, &b, "CONTACTS").await;
    let token = b_path.split("token=").nth(1).unwrap();
    let cross = format!("/api/v1/imports/{id}/file?token={token}");
    assert_eq!(put(&app, &cross, "email\nb@b.io\n").await.status(), 403);

    let viewer = app.add_member(&a, "viewer@a.test", "VIEWER").await;
    let r = app
        .graphql_as(viewer.token(), CREATE, json!({"e": "CONTACTS"}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let key = app.api_key(&a, &["contacts:write"]).await;
    let r = app
        .graphql_with_key(&key, CREATE, json!({"e": "CONTACTS"}))
        .await;
    ok(&r);
    let r = app
        .graphql_with_key(&key, CREATE, json!({"e": "DEALS"}))
        .await;
    assert_code(&r, "FORBIDDEN");

    let j = run(&app, &a, &id).await;
    assert_eq!(j["created"], 1);
    assert_eq!(count(&app, &b, "contacts").await, 0);
    let r = app
        .graphql_as(
            a.token(),
            "{ auditLog(first: 20) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<Value> = nodes(&ok(&r)["auditLog"])
        .iter()
        .map(|n| n["action"].clone())
        .collect();
    assert!(actions.contains(&json!("import.started")), "{actions:?}");
}

// ---------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------

const EXPORT: &str = "mutation($e: [ExportEntity!]!, $f: ExportFormat!) { exportData(entities: $e, format: $f) { id status } }";
const EXPORT_JOB: &str = "query($id: ID!) { exportJob(id: $id) { id status entities format rows sizeBytes downloadUrl expiresAt error } }";

async fn export(app: &TestApp, s: &Session, entities: Value, format: &str) -> Value {
    let r = app
        .graphql_as(s.token(), EXPORT, json!({"e": entities, "f": format}))
        .await;
    let id = ok(&r)["exportData"]["id"].as_str().unwrap().to_owned();
    assert_eq!(ok(&r)["exportData"]["status"], "QUEUED");
    eventually(Duration::from_secs(60), "the export to finish", || async {
        let r = app
            .graphql_as(s.token(), EXPORT_JOB, json!({"id": id}))
            .await;
        let j = ok(&r)["exportJob"].clone();
        matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED")).then_some(j)
    })
    .await
}

async fn seed(app: &TestApp, s: &Session) {
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Round, Trip\", domain: \"round.io\"}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    for (i, notes) in ["plain", "with, comma", "with \"quotes\"\nand a line"]
        .iter()
        .enumerate()
    {
        let r = app
            .graphql_as(
                s.token(),
                "mutation($e: String!, $n: String!, $a: ID!) { createContact(input: {email: $e, firstName: \"R\", notes: $n, accountId: $a, tags: [\"x\", \"y\"]}) { id } }",
                json!({"e": format!("r{i}@round.io"), "n": notes, "a": account}),
            )
            .await;
        ok(&r);
    }
    let r = app
        .graphql_as(
            s.token(),
            "mutation($a: ID!) { createDeal(input: {title: \"Round deal\", amount: 10.5, accountId: $a}) { id } }",
            json!({"a": account}),
        )
        .await;
    ok(&r);
    let r = app
        .graphql_as(
            s.token(),
            "mutation { ingestSignal(input: {type: \"signup\", actor: {email: \"r0@round.io\"}}) { signal { id } } }",
            json!({}),
        )
        .await;
    ok(&r);
}

async fn download(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(app.url(&path_of(url))).send().await.unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The members of a ustar archive: (name, content).
fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at] != 0 {
        let h = &bytes[at..at + 512];
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size = usize::from_str_radix(
            std::str::from_utf8(&h[124..135])
                .unwrap()
                .trim_matches('\0'),
            8,
        )
        .unwrap();
        out.push((name, bytes[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[tokio::test]
async fn exports_round_trip_real_rows_behind_signed_expiring_links() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    seed(&app, &a).await;
    seed(&app, &b).await;

    // CSV of one entity: a .csv, every row and awkward value intact.
    let j = export(&app, &a, json!(["CONTACTS"]), "CSV").await;
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(j["rows"], 3);
    let url = j["downloadUrl"].as_str().unwrap().to_owned();
    let resp = download(&app, &url).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"devsignal-export-"),
        "{disposition}"
    );
    let body = resp.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(&body[..]);
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    rows.sort_by(|x, y| x[col("email")].cmp(&y[col("email")]));
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[1][col("notes")], "with, comma");
    assert_eq!(&rows[2][col("notes")], "with \"quotes\"\nand a line");
    assert_eq!(&rows[0][col("tags")], "x, y");
    assert!(rows.iter().all(|r| r[col("email")].ends_with("@round.io")));

    // The exported file imports back into a new organization, as it was.
    let c = app.register("owner@restore.test", "Restore").await;
    let (id, _) = uploaded(&app, &c, "CONTACTS", &body).await;
    let back = run(&app, &c, &id).await;
    assert_eq!(
        (&back["created"], &back["failed"]),
        (&json!(3), &json!(0)),
        "{back}"
    );
    let (_, restored) = contacts(&app, &c).await;
    assert_eq!(restored[2]["notes"], "with \"quotes\"\nand a line");
    assert_eq!(restored[0]["tags"], json!(["x", "y"]));

    // JSON lines of every entity.
    let j = export(
        &app,
        &a,
        json!(["CONTACTS", "ACCOUNTS", "DEALS", "SIGNALS", "ACTIVITIES"]),
        "JSON",
    )
    .await;
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let resp = download(&app, j["downloadUrl"].as_str().unwrap()).await;
    assert_eq!(resp.headers()["content-type"], "application/gzip");
    let text = String::from_utf8(gunzip(&resp.bytes().await.unwrap())).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |e: &str| lines.iter().filter(|l| l["entity"] == e).count();
    assert_eq!(
        (
            of("CONTACTS"),
            of("ACCOUNTS"),
            of("DEALS"),
            of("SIGNALS"),
            of("ACTIVITIES")
        ),
        (3, 1, 1, 1, 0)
    );
    assert_eq!(j["rows"], 6);
    let deal = lines.iter().find(|l| l["entity"] == "DEALS").unwrap();
    assert_eq!(deal["row"]["title"], "Round deal");
    assert_eq!(deal["row"]["amount"], 10.5);
    let account = lines.iter().find(|l| l["entity"] == "ACCOUNTS").unwrap();
    assert_eq!(account["row"]["name"], "Round, Trip");

    // CSV of several entities: a tar.gz of one CSV each.
    let j = export(&app, &a, json!(["ACCOUNTS", "DEALS"]), "CSV").await;
    let resp = download(&app, j["downloadUrl"].as_str().unwrap()).await;
    let members = untar(&gunzip(&resp.bytes().await.unwrap()));
    assert_eq!(
        members.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["accounts.csv", "deals.csv"]
    );
    let accounts = String::from_utf8(members[0].1.clone()).unwrap();
    assert!(accounts.contains("\"Round, Trip\",round.io"), "{accounts}");

    // Forged, moved to another organization's export, or expired: refused.
    let forged = url.replace("token=", "token=A");
    assert_eq!(download(&app, &forged).await.status(), 403);
    let j_b = export(&app, &b, json!(["CONTACTS"]), "CSV").await;
    let b_token = j_b["downloadUrl"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let a_id = url
        .split("/exports/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let cross = format!("/api/v1/exports/{a_id}/download?token={b_token}");
    assert_eq!(
        app.client
            .get(app.url(&cross))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let r = app
        .graphql_as(b.token(), EXPORT_JOB, json!({"id": a_id}))
        .await;
    assert_code(&r, "NOT_FOUND");

    // The status is the database's: expire the export there, and the link stops working.
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let uuid: uuid::Uuid = a_id.parse().unwrap();
    let row = entity::exports::Entity::find_by_id(uuid)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "SUCCEEDED");
    let mut am: entity::exports::ActiveModel = row.clone().into();
    am.expires_at = Set(Some(chrono::Utc::now() - chrono::Duration::minutes(1)));
    am.update(&app.db).await.unwrap();
    let resp = download(&app, &url).await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // The daily cleanup deletes the file and marks the export expired.
    let file = app
        .state
        .config
        .data_dir
        .join("exports")
        .join(row.file_name.unwrap());
    assert!(file.exists());
    let txn = domain::db::begin(&app.db).await.unwrap();
    domain::queue::enqueue(
        &txn,
        domain::queue::defs::DEMO_CLEANUP_SCHEDULER.job(json!({})),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    let j = eventually(Duration::from_secs(30), "the cleanup to run", || async {
        let r = app
            .graphql_as(a.token(), EXPORT_JOB, json!({"id": a_id}))
            .await;
        let j = ok(&r)["exportJob"].clone();
        (j["status"] == "EXPIRED").then_some(j)
    })
    .await;
    assert!(j["downloadUrl"].is_null());
    assert!(!file.exists());

    // Exports hold everything: ADMIN only.
    let member = app.add_member(&a, "member@export.test", "MEMBER").await;
    let r = app
        .graphql_as(
            member.token(),
            EXPORT,
            json!({"e": ["CONTACTS"], "f": "CSV"}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(a.token(), EXPORT, json!({"e": [], "f": "CSV"}))
        .await;
    assert_code(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn exports_are_listed_newest_first_to_the_admins_of_their_organization() {
    const EXPORTS: &str = "query($n: Int! = 20) { exports(first: $n) { id status entities format rows downloadUrl expiresAt } }";
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    seed(&app, &a).await;
    let older = export(&app, &a, json!(["CONTACTS"]), "CSV").await;
    let newer = export(&app, &a, json!(["ACCOUNTS", "DEALS"]), "JSON").await;

    let r = app.graphql_as(a.token(), EXPORTS, json!({})).await;
    let list = ok(&r)["exports"].as_array().unwrap().clone();
    let ids: Vec<&Value> = list.iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, [&newer["id"], &older["id"]], "{r}");
    assert_eq!(
        (&list[0]["entities"], &list[0]["format"], &list[0]["status"]),
        (
            &json!(["ACCOUNTS", "DEALS"]),
            &json!("JSON"),
            &json!("SUCCEEDED")
        )
    );
    assert_eq!(
        (
            &list[1]["entities"],
            &list[1]["rows"],
            &list[1]["downloadUrl"]
        ),
        (&json!(["CONTACTS"]), &json!(3), &older["downloadUrl"]),
        "the listed export carries its download link"
    );
    assert!(list[1]["expiresAt"].is_string());
    let r = app.graphql_as(a.token(), EXPORTS, json!({"n": 1})).await;
    let ids: Vec<Value> = ok(&r)["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, [newer["id"].clone()]);

    // Another organization's list holds none of them; a MEMBER may not list exports.
    let r = app.graphql_as(b.token(), EXPORTS, json!({})).await;
    assert_eq!(ok(&r)["exports"], json!([]));
    let member = app.add_member(&a, "member@exports.test", "MEMBER").await;
    let r = app.graphql_as(member.token(), EXPORTS, json!({})).await;
    assert_code(&r, "FORBIDDEN");
}

/// An import stops, leaving its batch unwritten and saying why, when the batch would cross the
/// plan's contact limit or would bring back a person erased under GDPR.
#[tokio::test]
async fn imports_respect_the_contact_limit_and_never_bring_back_an_erased_person() {
    let app = spawn_app_with(&[("PLAN_ENFORCEMENT", "true")]).await;
    let s = app.register("owner@import-limit.test", "Limits").await;
    let org = uuid::Uuid::parse_str(&s.organization_id).unwrap();
    domain::billing::set_by_operator(
        &app.db,
        org,
        None,
        &[(
            domain::billing::Metric::Contacts,
            domain::billing::Override::Limit(3),
        )],
    )
    .await
    .unwrap();
    let five = b"Email,First Name\na@limit.test,A\nb@limit.test,B\nc@limit.test,C\nd@limit.test,D\ne@limit.test,E\n";
    let (id, _) = uploaded(&app, &s, "CONTACTS", five).await;
    let j = run(&app, &s, &id).await;
    assert_eq!(j["status"], "FAILED", "{j}");
    let why = j["lastError"].as_str().unwrap_or_default();
    assert!(why.contains("contacts") && why.contains('3'), "{why}");
    assert_eq!(
        contacts(&app, &s).await.0,
        0,
        "the refused batch is not written"
    );
    let three = b"Email,First Name\na@limit.test,A\nb@limit.test,B\nc@limit.test,C\n";
    let (id, _) = uploaded(&app, &s, "CONTACTS", three).await;
    let j = run(&app, &s, &id).await;
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(j["created"], 3);

    // Erase one of them; importing them again is refused and creates nothing.
    let (_, list) = contacts(&app, &s).await;
    assert_eq!(list.len(), 3);
    let r = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 1, orderBy: {field: EMAIL, direction: ASC}) { edges { node { id email } } } }",
            json!({}),
        )
        .await;
    let first = nodes(&ok(&r)["contacts"])[0].clone();
    assert_eq!(first["email"], "a@limit.test");
    ok(&app
        .graphql_as(
            s.token(),
            "mutation($id: ID!) { eraseContact(id: $id) { contactId } }",
            json!({"id": first["id"]}),
        )
        .await);
    let back = b"Email,First Name\nz@limit.test,Z\na@limit.test,A\n";
    let (id, _) = uploaded(&app, &s, "CONTACTS", back).await;
    let j = run(&app, &s, &id).await;
    assert_eq!(j["status"], "FAILED", "{j}");
    let why = j["lastError"].as_str().unwrap_or_default();
    assert!(why.contains("erased"), "{why}");
    let (n, list) = contacts(&app, &s).await;
    assert_eq!(n, 2, "{list:?}");
    assert!(
        list.iter()
            .all(|c| c["email"] != "a@limit.test" && c["email"] != "z@limit.test")
    );
}
