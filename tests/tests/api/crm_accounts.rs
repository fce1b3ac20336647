//! CRM core: accounts and contacts over GraphQL — CRUD, validation naming the field,
//! CONFLICT on duplicate (normalised) email and domain, stable paging while rows are inserted,
//! batches all-or-nothing, upsert by email, tenant isolation, VIEWER read-only, key scopes,
//! audit entries, and the event log (one event per change, none for a failed change).

use devsignal_tests::{Session, TestApp, assert_code, spawn_app};
use serde_json::{Value, json};

const CREATE_ACCOUNT: &str = "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id name domain size tags customFields createdAt } }";
const CREATE_CONTACT: &str = "mutation($input: ContactFields!) { createContact(input: $input) { id email firstName account { id name } } }";
const EVENTS: &str = "query($after: Int, $types: [String!]) { events(first: 1000, after: $after, types: $types) { seq type payload } }";

pub(crate) fn ok(resp: &Value) -> &Value {
    assert!(resp.get("errors").is_none(), "{resp}");
    &resp["data"]
}

pub(crate) fn field(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["field"]
        .as_str()
        .or_else(|| resp["errors"][0]["extensions"]["fields"][0]["field"].as_str())
        .unwrap_or_else(|| panic!("no field in {resp}"))
}

async fn create_account(app: &TestApp, s: &Session, input: Value) -> Value {
    app.graphql_as(s.token(), CREATE_ACCOUNT, json!({"input": input}))
        .await
}

async fn event_types(app: &TestApp, s: &Session) -> Vec<String> {
    let r = app.graphql_as(s.token(), EVENTS, json!({})).await;
    ok(&r)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn accounts_and_contacts_crud_with_validation_conflicts_audit_and_events() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;

    // Create, with every kind of field.
    let r = create_account(
        &app,
        &owner,
        json!({"name": " Globex ", "domain": "Globex.com", "size": "LARGE", "tags": ["Hot", "hot", "b2b"], "customFields": {"tier": 1}}),
    )
    .await;
    let acc = ok(&r)["createAccount"].clone();
    assert_eq!(acc["name"], "Globex");
    assert_eq!(acc["size"], "LARGE");
    assert_eq!(acc["tags"], json!(["hot", "b2b"]));
    assert_eq!(acc["customFields"], json!({"tier": 1}));
    let acc_id = acc["id"].as_str().unwrap().to_owned();

    // Validation errors name the field; nothing is written, no event appended.
    let before = event_types(&app, &owner).await;
    let r = create_account(&app, &owner, json!({"name": ""})).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "name");
    let r = create_account(&app, &owner, json!({"name": "X", "domain": "not a domain"})).await;
    assert_eq!(field(&r), "domain");
    let r = create_account(&app, &owner, json!({"name": "X", "customFields": [1]})).await;
    assert_eq!(field(&r), "customFields");

    // Duplicate domain, differently cased and with a scheme: CONFLICT on `domain`, no event.
    let r = create_account(
        &app,
        &owner,
        json!({"name": "Other", "domain": "https://GLOBEX.com"}),
    )
    .await;
    assert_code(&r, "CONFLICT");
    assert_eq!(field(&r), "domain");
    assert_eq!(event_types(&app, &owner).await, before);

    // Read, update (audit with old and new values), list.
    let r = app
        .graphql_as(
            owner.token(),
            "query($id: ID!) { account(id: $id) { name domain } }",
            json!({"id": acc_id}),
        )
        .await;
    assert_eq!(ok(&r)["account"]["domain"], "Globex.com");
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!, $input: UpdateAccountInput!) { updateAccount(id: $id, input: $input) { id name industry domain } }",
            json!({"id": acc_id, "input": {"name": "Globex Corp", "industry": "Energy", "domain": null}}),
        )
        .await;
    let u = &ok(&r)["updateAccount"];
    assert_eq!(u["name"], "Globex Corp");
    assert_eq!(u["industry"], "Energy");
    assert_eq!(u["domain"], Value::Null);
    let r = app
        .graphql_as(
            owner.token(),
            "{ auditLog(first: 50) { edges { node { action targetId metadata } } } }",
            json!({}),
        )
        .await;
    let entries = ok(&r)["auditLog"]["edges"].as_array().unwrap().clone();
    let upd = entries
        .iter()
        .find(|e| e["node"]["action"] == "account.updated")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(upd["node"]["targetId"], acc_id.as_str());
    assert_eq!(
        upd["node"]["metadata"]["changes"]["name"],
        json!({"old": "Globex", "new": "Globex Corp"})
    );
    assert!(
        entries
            .iter()
            .any(|e| e["node"]["action"] == "account.created")
    );

    // Contacts: create linked to the account, duplicate email (any case) conflicts.
    let r = app
        .graphql_as(
            owner.token(),
            CREATE_CONTACT,
            json!({"input": {"email": "Ann@Example.com", "firstName": "Ann", "accountId": acc_id}}),
        )
        .await;
    let c = ok(&r)["createContact"].clone();
    assert_eq!(c["account"]["name"], "Globex Corp");
    let c_id = c["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            CREATE_CONTACT,
            json!({"input": {"email": "ann@EXAMPLE.com "}}),
        )
        .await;
    assert_code(&r, "CONFLICT");
    assert_eq!(field(&r), "email");
    let r = app
        .graphql_as(
            owner.token(),
            CREATE_CONTACT,
            json!({"input": {"email": "nope"}}),
        )
        .await;
    assert_eq!(field(&r), "email");

    // Upsert by email updates the existing contact, or creates one.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: ContactFields!) { upsertContact(input: $input) { id title } }",
            json!({"input": {"email": "ANN@example.com", "title": "CTO"}}),
        )
        .await;
    assert_eq!(ok(&r)["upsertContact"]["id"], c_id.as_str());
    assert_eq!(ok(&r)["upsertContact"]["title"], "CTO");
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: ContactFields!) { upsertContact(input: $input) { id } }",
            json!({"input": {"email": "bob@example.com"}}),
        )
        .await;
    assert_ne!(ok(&r)["upsertContact"]["id"], c_id.as_str());

    // Filter contacts by account and text.
    let r = app
        .graphql_as(
            owner.token(),
            "query($a: ID!) { contacts(filter: {accountId: $a}) { totalCount edges { node { email } } } byText: contacts(filter: {query: \"BOB\"}) { totalCount } }",
            json!({"a": acc_id}),
        )
        .await;
    assert_eq!(ok(&r)["contacts"]["totalCount"], 1);
    assert_eq!(ok(&r)["byText"]["totalCount"], 1);

    // Batches: a bad row rejects the whole batch, naming the row; a good one lands entirely.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: [ContactFields!]!) { createContacts(input: $input) { id } }",
            json!({"input": [{"email": "c1@example.com"}, {"email": "bad"}]}),
        )
        .await;
    assert_eq!(field(&r), "input.1.email");
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: [ContactFields!]!) { createContacts(input: $input) { id } }",
            json!({"input": [{"email": "c1@example.com"}, {"email": "ann@example.com"}]}),
        )
        .await;
    assert_code(&r, "CONFLICT");
    let r = app
        .graphql_as(owner.token(), "{ contacts { totalCount } }", json!({}))
        .await;
    assert_eq!(
        ok(&r)["contacts"]["totalCount"],
        2,
        "nothing of a failed batch lands"
    );
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { name } }",
            json!({"input": [{"name": "A1"}, {"name": "A2", "domain": "a2.io"}]}),
        )
        .await;
    assert_eq!(ok(&r)["createAccounts"].as_array().unwrap().len(), 2);

    // Delete returns the id; the contact stays, unlinked.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { deleteAccount(id: $id) }",
            json!({"id": acc_id}),
        )
        .await;
    assert_eq!(ok(&r)["deleteAccount"], acc_id.as_str());
    let r = app
        .graphql_as(
            owner.token(),
            "query($id: ID!) { contact(id: $id) { account { id } } account: account(id: $id) { id } }",
            json!({"id": c_id}),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    let r = app
        .graphql_as(
            owner.token(),
            "query($id: ID!) { contact(id: $id) { account { id } } }",
            json!({"id": c_id}),
        )
        .await;
    assert_eq!(ok(&r)["contact"]["account"], Value::Null);
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { deleteContact(id: $id) }",
            json!({"id": c_id}),
        )
        .await;
    assert_eq!(ok(&r)["deleteContact"], c_id.as_str());

    // The event log holds one event per change, in order; types filter it.
    let types = event_types(&app, &owner).await;
    assert_eq!(
        types,
        vec![
            "company.created",
            "company.updated",
            "contact.created",
            "contact.updated",
            "contact.created",
            "company.created",
            "company.created",
            "company.deleted",
            "contact.deleted",
        ]
    );
    let r = app
        .graphql_as(owner.token(), EVENTS, json!({"types": ["contact.updated"]}))
        .await;
    let evs = ok(&r)["events"].as_array().unwrap().clone();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["payload"]["changes"]["title"]["new"], "CTO");
    let r = app
        .graphql_as(owner.token(), EVENTS, json!({"after": evs[0]["seq"]}))
        .await;
    assert_eq!(ok(&r)["events"].as_array().unwrap().len(), 5);
    let r = app
        .graphql_as(owner.token(), EVENTS, json!({"types": ["nope"]}))
        .await;
    assert_code(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn paging_is_stable_while_rows_are_inserted_and_first_is_capped() {
    let app = spawn_app().await;
    let owner = app.register("pager@example.com", "Pager").await;
    let inputs: Vec<Value> = (0..25)
        .map(|i| json!({"name": format!("Acc {i}")}))
        .collect();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id } }",
            json!({"input": inputs}),
        )
        .await;
    let mut original: Vec<String> = ok(&r)["createAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    original.sort();

    const PAGE: &str = "query($after: String) { accounts(first: 7, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } } }";
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = app
            .graphql_as(owner.token(), PAGE, json!({"after": after}))
            .await;
        let conn = &ok(&r)["accounts"];
        for e in conn["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], after.is_some());
        // Someone inserts between our pages.
        let r = create_account(&app, &owner, json!({"name": format!("New {pages}")})).await;
        ok(&r);
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert!(pages < 20);
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row repeats");
    assert!(
        original.iter().all(|id| seen.contains(id)),
        "no row skipped"
    );

    // Backwards from the end.
    let r = app
        .graphql_as(
            owner.token(),
            "{ accounts(last: 3) { pageInfo { hasPreviousPage hasNextPage } edges { node { name } } } }",
            json!({}),
        )
        .await;
    let conn = &ok(&r)["accounts"];
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
    let names: Vec<&str> = conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Acc 2", "Acc 1", "Acc 0"]);

    // The cap is enforced and documented in the schema.
    let r = app
        .graphql_as(
            owner.token(),
            "{ accounts(first: 101) { totalCount } }",
            json!({}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "first");
    let sdl =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).unwrap();
    assert!(sdl.contains("Page size, 1 to 100"));
}

#[tokio::test]
async fn tenants_roles_and_key_scopes_are_enforced() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let r = create_account(&app, &a, json!({"name": "A's", "domain": "shared.com"})).await;
    let acc_id = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    // The same domain is free in another organization.
    let r = create_account(&app, &b, json!({"name": "B's", "domain": "shared.com"})).await;
    ok(&r);

    // B cannot see, change, delete or link to A's rows.
    for q in [
        "query($id: ID!) { account(id: $id) { id } }",
        "mutation($id: ID!) { updateAccount(id: $id, input: {name: \"x\"}) { id } }",
        "mutation($id: ID!) { deleteAccount(id: $id) }",
    ] {
        let r = app.graphql_as(b.token(), q, json!({"id": acc_id})).await;
        assert_code(&r, "NOT_FOUND");
    }
    let r = app
        .graphql_as(
            b.token(),
            CREATE_CONTACT,
            json!({"input": {"email": "x@b.com", "accountId": acc_id}}),
        )
        .await;
    assert_eq!(field(&r), "accountId");
    let r = app
        .graphql_as(b.token(), "{ accounts { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 1);

    // VIEWER reads only; the event log is for ADMINs.
    let viewer = app.add_member(&a, "viewer@example.com", "VIEWER").await;
    let r = app
        .graphql_as(viewer.token(), "{ accounts { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 1);
    let r = create_account(&app, &viewer, json!({"name": "nope"})).await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            viewer.token(),
            CREATE_CONTACT,
            json!({"input": {"email": "v@a.com"}}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app.graphql_as(viewer.token(), EVENTS, json!({})).await;
    assert_code(&r, "FORBIDDEN");

    // API keys need accounts:read / accounts:write.
    let reader = app.api_key(&a, &["accounts:read"]).await;
    let writer = app.api_key(&a, &["accounts:read", "accounts:write"]).await;
    let other = app.api_key(&a, &["signals:write"]).await;
    let r = app
        .graphql_with_key(&reader, "{ accounts { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 1);
    let r = app
        .graphql_with_key(&reader, CREATE_ACCOUNT, json!({"input": {"name": "k"}}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(&other, "{ contacts { totalCount } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_with_key(
            &writer,
            CREATE_ACCOUNT,
            json!({"input": {"name": "by key"}}),
        )
        .await;
    assert_eq!(ok(&r)["createAccount"]["name"], "by key");
}

#[tokio::test]
async fn tags_are_added_and_removed() {
    let app = spawn_app().await;
    let owner = app.register("tagger@example.com", "Tags").await;
    let r = create_account(&app, &owner, json!({"name": "T", "tags": ["a", "b"]})).await;
    let id = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { tagAccount(id: $id, input: {add: [\" C \", \"a\"], remove: [\"b\"]}) { tags } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(ok(&r)["tagAccount"]["tags"], json!(["a", "c"]));
    let r = app
        .graphql_as(
            owner.token(),
            CREATE_CONTACT,
            json!({"input": {"email": "t@example.com"}}),
        )
        .await;
    let cid = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { tagContact(id: $id, input: {add: [\"vip\"]}) { tags } }",
            json!({"id": cid}),
        )
        .await;
    assert_eq!(ok(&r)["tagContact"]["tags"], json!(["vip"]));
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { tagContact(id: $id, input: {add: [\"\"]}) { tags } }",
            json!({"id": cid}),
        )
        .await;
    assert_eq!(field(&r), "addTags");
    let types = event_types(&app, &owner).await;
    assert_eq!(
        types,
        vec![
            "company.created",
            "company.updated",
            "contact.created",
            "contact.updated"
        ]
    );
}

#[tokio::test]
async fn accounts_filter_by_the_source_of_their_signals_within_the_tenant() {
    const INGEST: &str = "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { account { id } source { id builtIn } } } }";
    const LIST: &str = "query($f: AccountFilter) { accounts(first: 50, filter: $f) { totalCount nodes { domain } } }";
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let ingest = |s: &Session, input: Value| {
        let token = s.token().map(str::to_owned);
        let app = &app;
        async move {
            let r = app
                .graphql_as(token.as_deref(), INGEST, json!({"input": input}))
                .await;
            ok(&r)["ingestSignal"]["signal"].clone()
        }
    };
    let domains = |r: &Value| -> Vec<String> {
        let mut d: Vec<String> = ok(r)["accounts"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["domain"].as_str().unwrap().to_owned())
            .collect();
        d.sort();
        d
    };
    let r = app
        .graphql_as(
            a.token(),
            "mutation { createSignalSource(input: {kind: \"CUSTOM_WEBHOOK\", name: \"Docs site\"}) { id } }",
            json!({}),
        )
        .await;
    let docs = ok(&r)["createSignalSource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ingest(
        &a,
        json!({"type": "docs_view", "sourceId": docs, "actor": {"email": "jane@acme.io"}}),
    )
    .await;
    let api = ingest(
        &a,
        json!({"type": "api_call", "actor": {"email": "bob@globex.com"}}),
    )
    .await;
    assert_eq!(api["source"]["builtIn"], true);
    let api = api["source"]["id"].as_str().unwrap().to_owned();
    // Both sources for one account; none for another.
    ingest(
        &a,
        json!({"type": "api_call", "actor": {"email": "carol@initech.io"}}),
    )
    .await;
    ingest(
        &a,
        json!({"type": "docs_view", "sourceId": docs, "actor": {"email": "dan@initech.io"}}),
    )
    .await;
    create_account(&app, &a, json!({"name": "Quiet", "domain": "quiet.dev"})).await;

    let list = |s: &Session, f: Value| {
        let token = s.token().map(str::to_owned);
        let app = &app;
        async move {
            app.graphql_as(token.as_deref(), LIST, json!({"f": f}))
                .await
        }
    };
    let r = list(&a, json!({"source": docs})).await;
    assert_eq!(domains(&r), ["acme.io", "initech.io"], "{r}");
    assert_eq!(ok(&r)["accounts"]["totalCount"], 2);
    let r = list(&a, json!({"source": api})).await;
    assert_eq!(domains(&r), ["globex.com", "initech.io"], "{r}");
    let r = list(&a, json!({"source": docs, "query": "acme"})).await;
    assert_eq!(domains(&r), ["acme.io"], "{r}");
    let r = list(&a, json!({})).await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 4, "{r}");

    // Another organization naming these sources sees none of their accounts, even with
    // accounts of its own that have signals.
    ingest(
        &b,
        json!({"type": "api_call", "actor": {"email": "eve@acme.io"}}),
    )
    .await;
    for source in [&docs, &api] {
        let r = list(&b, json!({"source": source})).await;
        assert_eq!(ok(&r)["accounts"]["totalCount"], 0, "{r}");
        assert_eq!(domains(&r), Vec::<String>::new());
    }
    let r = list(&b, json!({})).await;
    assert_eq!(domains(&r), ["acme.io"], "{r}");

    let r = list(&a, json!({"source": "not-an-id"})).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(field(&r), "filter.source");
}
