//! Cross-tenant calls generated from the schema: every query and mutation that takes an id — as
//! an argument, or as a field of an input object — is called by another organization (with a
//! user token and with an admin API key) with this organization's ids. Each answers NOT_FOUND or
//! FORBIDDEN, or an empty result, and nothing of this organization changes. The operations are
//! read from introspection, so a new operation is covered without editing this test; an id the
//! test does not know how to fill fails it, naming the operation and argument.

use std::collections::{BTreeMap, HashMap};

use devsignal_tests::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

const TYPE_REF: &str = "fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

fn data<'a>(resp: &'a Value, field: &str) -> &'a Value {
    assert!(resp.get("errors").is_none(), "{field}: {resp}");
    &resp["data"][field]
}

async fn gql(app: &TestApp, s: &Session, q: &str, vars: Value) -> Value {
    app.graphql_as(s.token(), q, vars).await
}

/// This organization's objects, one of each kind an id can name.
pub(crate) async fn fixture(app: &TestApp, a: &Session) -> HashMap<&'static str, String> {
    let mut ids = HashMap::new();
    let id_of = |v: &Value| v.as_str().unwrap().to_owned();
    let r = gql(
        app,
        a,
        "mutation { createAccount(input: {name: \"A Corp\", domain: \"a-corp.io\"}) { id } }",
        json!({}),
    )
    .await;
    ids.insert("account", id_of(&data(&r, "createAccount")["id"]));
    let mut contacts = Vec::new();
    for n in 0..3 {
        let r = gql(
            app,
            a,
            "mutation($e: String!, $a: ID!) { createContact(input: {email: $e, firstName: \"Ann\", accountId: $a}) { id } }",
            json!({"e": format!("ann{n}@a-corp.io"), "a": ids["account"]}),
        )
        .await;
        contacts.push(id_of(&data(&r, "createContact")["id"]));
    }
    ids.insert("contact", contacts[0].clone());
    ids.insert("contact2", contacts[1].clone());
    let r = gql(
        app,
        a,
        "mutation($a: ID!, $c: ID!) { createDeal(input: {title: \"A deal\", accountId: $a, contactId: $c}) { id } }",
        json!({"a": ids["account"], "c": contacts[0]}),
    )
    .await;
    ids.insert("deal", id_of(&data(&r, "createDeal")["id"]));
    let r = gql(
        app,
        a,
        "mutation($c: ID!) { createActivity(input: {type: CALL, title: \"A call\", contactId: $c}) { id } }",
        json!({"c": contacts[0]}),
    )
    .await;
    ids.insert("activity", id_of(&data(&r, "createActivity")["id"]));
    let r = gql(
        app,
        a,
        "mutation($c: ID!) { ingestSignal(input: {type: \"signup\", actorId: $c}) { signal { id source { id } } } }",
        json!({"c": contacts[0]}),
    )
    .await;
    let sig = &data(&r, "ingestSignal")["signal"];
    ids.insert("signal", id_of(&sig["id"]));
    ids.insert("source", id_of(&sig["source"]["id"]));
    let r = gql(
        app,
        a,
        "mutation { createWebhookEndpoint(input: {url: \"http://127.0.0.1:9/hook\", eventTypes: [\"signal.created\"]}) { id } }",
        json!({}),
    )
    .await;
    ids.insert("endpoint", id_of(&data(&r, "createWebhookEndpoint")["id"]));
    let r = gql(
        app,
        a,
        "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { id } }",
        json!({"e": ids["endpoint"]}),
    )
    .await;
    ids.insert("delivery", id_of(&data(&r, "sendTestWebhook")["id"]));
    let r = gql(
        app,
        a,
        "mutation { connectIntegration(input: {kind: LINKEDIN, config: {companyPageUrl: \"https://www.linkedin.com/company/a-corp\"}}) { integration { id } } }",
        json!({}),
    )
    .await;
    ids.insert(
        "integration",
        id_of(&data(&r, "connectIntegration")["integration"]["id"]),
    );
    let r = gql(
        app,
        a,
        "mutation { createApiKey(input: {name: \"A key\", scopes: [\"admin\"]}) { apiKey { id } } }",
        json!({}),
    )
    .await;
    ids.insert("apiKey", id_of(&data(&r, "createApiKey")["apiKey"]["id"]));
    let r = gql(
        app,
        a,
        "mutation($p: ID!, $d: ID!) { mergeContacts(primaryId: $p, duplicateIds: [$d]) { merges { id } } }",
        json!({"p": contacts[1], "d": contacts[2]}),
    )
    .await;
    ids.insert(
        "merge",
        id_of(&data(&r, "mergeContacts")["merges"][0]["id"]),
    );
    let r = gql(
        app,
        a,
        "mutation { createAlertRule(input: {name: \"A rule\", trigger: NEW_SIGNAL}) { id } }",
        json!({}),
    )
    .await;
    ids.insert("alertRule", id_of(&data(&r, "createAlertRule")["id"]));
    let r = gql(app, a, "mutation { recomputeScores { id } }", json!({})).await;
    ids.insert("scoreRecompute", id_of(&data(&r, "recomputeScores")["id"]));
    // A notification of A's owner, as an alert leaves it.
    let notification = uuid::Uuid::now_v7();
    sea_orm::ActiveModelTrait::insert(
        entity::notifications::ActiveModel {
            id: sea_orm::Set(notification),
            organization_id: sea_orm::Set(a.organization_id.parse().unwrap()),
            user_id: sea_orm::Set(a.user_id.parse().unwrap()),
            kind: sea_orm::Set("ALERT".into()),
            rule_id: sea_orm::Set(None),
            account_id: sea_orm::Set(None),
            title: sea_orm::Set("A's alert".into()),
            body: sea_orm::Set(String::new()),
            data: sea_orm::Set(json!({})),
            event_seq: sea_orm::Set(None),
            read_at: sea_orm::Set(None),
            created_at: sea_orm::Set(chrono::Utc::now()),
        },
        &app.db,
    )
    .await
    .unwrap();
    ids.insert("notification", notification.to_string());
    let r = gql(
        app,
        a,
        "mutation { createImport(entity: CONTACTS) { import { id } } }",
        json!({}),
    )
    .await;
    ids.insert("import", id_of(&data(&r, "createImport")["import"]["id"]));
    let r = gql(
        app,
        a,
        "mutation { exportData(entities: [CONTACTS], format: CSV) { id } }",
        json!({}),
    )
    .await;
    ids.insert("export", id_of(&data(&r, "exportData")["id"]));
    ids.insert("user", a.user_id.clone());
    ids.insert("organization", a.organization_id.clone());
    ids
}

/// Which of the fixture's ids an id argument or input field takes: by its name, else by the
/// operation's name (`id` of `updateDeal` is a deal).
fn entity_for(operation: &str, name: &str) -> Option<&'static str> {
    let by_name = match name {
        "accountId" | "accountIds" | "account" => Some("account"),
        "contactId" | "contactIds" | "contact" | "actorId" | "primaryId" | "duplicateIds" => {
            Some("contact")
        }
        "dealId" => Some("deal"),
        "endpointId" => Some("endpoint"),
        "deliveryId" => Some("delivery"),
        "sourceId" | "source" => Some("source"),
        "integrationId" => Some("integration"),
        "mergeId" => Some("merge"),
        "ruleId" => Some("alertRule"),
        "userId" | "ownerId" | "recipientIds" => Some("user"),
        "organizationId" => Some("organization"),
        "id" | "ids" | "after" => None,
        _ => return None,
    };
    if by_name.is_some() {
        return by_name;
    }
    let op = operation.to_lowercase();
    [
        ("webhookendpoint", "endpoint"),
        ("webhooksecret", "endpoint"),
        ("webhookdelivery", "delivery"),
        ("apikey", "apiKey"),
        ("alertrule", "alertRule"),
        ("scorerecompute", "scoreRecompute"),
        ("import", "import"),
        ("export", "export"),
        ("notification", "notification"),
        ("signalsource", "source"),
        ("integration", "integration"),
        ("account", "account"),
        ("contact", "contact"),
        ("deal", "deal"),
        ("activity", "activity"),
        ("signal", "signal"),
    ]
    .iter()
    .find(|(k, _)| op.contains(k))
    .map(|(_, e)| *e)
}

/// A type reference without its wrappers: (name, list, non-null).
pub(crate) fn unwrap(t: &Value) -> (String, bool, bool) {
    let mut cur = t;
    let mut list = false;
    let non_null = cur["kind"] == "NON_NULL";
    loop {
        match cur["kind"].as_str() {
            Some("NON_NULL") => cur = &cur["ofType"],
            Some("LIST") => {
                list = true;
                cur = &cur["ofType"];
            }
            _ => {
                return (
                    cur["name"].as_str().unwrap_or("").to_owned(),
                    list,
                    non_null,
                );
            }
        }
    }
}

pub(crate) struct Schema {
    pub(crate) types: BTreeMap<String, Value>,
    /// The root operation types: (type name, `query` or `mutation`).
    pub(crate) roots: Vec<(String, &'static str)>,
}

impl Schema {
    /// The schema as `s` sees it through introspection.
    pub(crate) async fn introspect(app: &TestApp, s: &Session) -> Schema {
        let intro = app
            .graphql_as(
                s.token(),
                &format!(
                    "{{ __schema {{ queryType {{ name }} mutationType {{ name }} types {{ kind name
                       fields {{ name args {{ name defaultValue type {{ ...T }} }} type {{ ...T }} }}
                       inputFields {{ name defaultValue type {{ ...T }} }} enumValues {{ name }} }} }} }}
                     {TYPE_REF}"
                ),
                json!({}),
            )
            .await;
        let root = |which: &str| {
            intro["data"]["__schema"][which]["name"]
                .as_str()
                .map(str::to_owned)
        };
        Schema {
            types: intro["data"]["__schema"]["types"]
                .as_array()
                .unwrap_or_else(|| panic!("introspection: {intro}"))
                .iter()
                .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
                .collect(),
            roots: [("queryType", "query"), ("mutationType", "mutation")]
                .into_iter()
                .filter_map(|(which, keyword)| Some((root(which)?, keyword)))
                .collect(),
        }
    }

    pub(crate) fn kind(&self, name: &str) -> &str {
        self.types[name]["kind"].as_str().unwrap_or("")
    }

    /// A value for a type: ids of the fixture where the name says which, required fields of
    /// inputs with plain values. `None` when the value needs an id nobody named.
    pub(crate) fn value(
        &self,
        operation: &str,
        name: &str,
        t: &Value,
        ids: &HashMap<&'static str, String>,
        depth: usize,
        filled: &mut Filled,
    ) -> Value {
        let (ty, list, _) = unwrap(t);
        let one = match ty.as_str() {
            "ID" => match entity_for(operation, name) {
                Some(e) => {
                    // A second contact where a list names others than the first.
                    let e = if name == "duplicateIds" {
                        "contact2"
                    } else {
                        e
                    };
                    json!(ids[e])
                }
                None => {
                    filled.missing.push(format!("{operation}({name})"));
                    json!("00000000-0000-0000-0000-000000000000")
                }
            },
            "String" => json!(match (operation, name) {
                ("triggerJob", "name") => "capture-score-snapshot",
                (_, "email") => "x@b-corp.io",
                (_, "url") => "https://example.com/hook",
                (_, "eventTypes") => "*",
                _ => "x",
            }),
            "Int" => json!(1),
            "Float" => json!(1.0),
            "Boolean" => json!(false),
            "DateTime" => json!("2026-01-01T00:00:00Z"),
            "Date" | "NaiveDate" => json!("2026-01-01"),
            "JSON" => json!({}),
            _ => match self.kind(&ty) {
                "ENUM" => json!(self.types[&ty]["enumValues"][0]["name"]),
                "INPUT_OBJECT" => {
                    let mut obj = serde_json::Map::new();
                    for f in self.types[&ty]["inputFields"].as_array().unwrap() {
                        let fname = f["name"].as_str().unwrap();
                        let (fty, _, required) = unwrap(&f["type"]);
                        let holds_id = fty == "ID" || self.holds_id(&fty, depth + 1);
                        // Plausible values where a name says what is meant, so that the ids
                        // are what the answer is about.
                        let plausible =
                            matches!(fname, "email" | "title" | "name" | "url") && fty == "String";
                        if (required && f["defaultValue"].is_null())
                            || (holds_id && depth < 3)
                            || plausible
                        {
                            obj.insert(
                                fname.to_owned(),
                                self.value(operation, fname, &f["type"], ids, depth + 1, filled),
                            );
                        }
                    }
                    Value::Object(obj)
                }
                _ => json!("x"),
            },
        };
        if list { json!([one]) } else { one }
    }

    /// Whether an input type holds an ID field (within a few levels).
    pub(crate) fn holds_id(&self, ty: &str, depth: usize) -> bool {
        if depth > 3 || self.kind(ty) != "INPUT_OBJECT" {
            return false;
        }
        self.types[ty]["inputFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| {
                let (fty, _, _) = unwrap(&f["type"]);
                fty == "ID" || self.holds_id(&fty, depth + 1)
            })
    }

    /// The selection set of a result type: `__typename` for objects, the edges of a connection,
    /// each item's success of a batch.
    pub(crate) fn selection(&self, t: &Value) -> String {
        let (ty, _, _) = unwrap(t);
        let has = |field: &str| {
            self.types[&ty]["fields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["name"] == field))
        };
        match self.kind(&ty) {
            "OBJECT" if has("edges") => " { edges { cursor } }".into(),
            "OBJECT" if has("results") => " { results { success } }".into(),
            "OBJECT" => " { __typename }".into(),
            "INTERFACE" | "UNION" => " { __typename }".into(),
            _ => String::new(),
        }
    }
}

pub(crate) fn gql_type(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", gql_type(&t["ofType"])),
        Some("LIST") => format!("[{}]", gql_type(&t["ofType"])),
        _ => t["name"].as_str().unwrap_or("").to_owned(),
    }
}

/// What the generator filled in for one operation.
#[derive(Default)]
pub(crate) struct Filled {
    /// Id arguments nobody named.
    pub(crate) missing: Vec<String>,
}

/// The fields an error names.
fn fields_named(resp: &Value) -> Vec<String> {
    let mut named: Vec<String> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    named.sort();
    named
}

/// Whether an answer gives the caller nothing: a NOT_FOUND or FORBIDDEN error; a
/// BAD_USER_INPUT exactly as for ids that exist nowhere (`nowhere`: the same call with fresh
/// ids); an empty list or connection, null, or a batch whose every item failed.
fn gives_nothing(resp: &Value, nowhere: &Value, field: &str) -> bool {
    if let Some(code) = resp["errors"][0]["extensions"]["code"].as_str() {
        if code == "BAD_USER_INPUT" {
            return nowhere["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
                && fields_named(resp) == fields_named(nowhere);
        }
        return matches!(code, "NOT_FOUND" | "FORBIDDEN");
    }
    let v = &resp["data"][field];
    // The same answer as for an id that exists nowhere (an empty page, 0 changed) says nothing
    // about the id.
    resp == nowhere
        || v.is_null()
        || v.as_array().is_some_and(|a| a.is_empty())
        || v["edges"].as_array().is_some_and(|a| a.is_empty())
        || v["results"]
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["success"] == false))
}

/// `vars` with every id of the fixture replaced by a fresh one (an id that exists nowhere).
fn nowhere(vars: &Value, ids: &HashMap<&'static str, String>) -> Value {
    let mut text = vars.to_string();
    for id in ids.values() {
        text = text.replace(id.as_str(), &uuid::Uuid::now_v7().to_string());
    }
    serde_json::from_str(&text).unwrap()
}

async fn snapshot(app: &TestApp, a: &Session, ids: &HashMap<&'static str, String>) -> Value {
    let r = gql(
        app,
        a,
        "query($acc: ID!, $c: ID!, $d: ID!, $act: ID!, $s: ID!, $e: ID!, $i: ID!) {
            account(id: $acc) { name domain tags }
            contact(id: $c) { email firstName tags account { id } }
            deal(id: $d) { title stage amount }
            activity(id: $act) { title status }
            signal(id: $s) { type }
            webhookEndpoint(id: $e) { url enabled }
            integration(id: $i) { status config }
            apiKeys { id revokedAt }
            members { role user { id } }
            contactMerges { id }
            alertRules { id name enabled }
            notifications { unreadCount nodes { id read } }
        }",
        json!({"acc": ids["account"], "c": ids["contact"], "d": ids["deal"], "act": ids["activity"],
               "s": ids["signal"], "e": ids["endpoint"], "i": ids["integration"]}),
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    r["data"].clone()
}

#[tokio::test]
async fn every_operation_taking_an_id_gives_another_organization_nothing() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let ids = fixture(&app, &a).await;
    let before = snapshot(&app, &a, &ids).await;
    let b_key = app.api_key(&b, &["admin"]).await;

    let schema = Schema::introspect(&app, &b).await;
    let mut tried = 0;
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    let mut covered = Vec::new();
    for (root, keyword) in &schema.roots {
        for f in schema.types[root]["fields"].as_array().unwrap() {
            let op = f["name"].as_str().unwrap();
            let args = f["args"].as_array().unwrap();
            let takes_id = args.iter().any(|a| {
                let (ty, _, _) = unwrap(&a["type"]);
                ty == "ID" || schema.holds_id(&ty, 0)
            });
            if !takes_id {
                continue;
            }
            let mut decls = Vec::new();
            let mut passed = Vec::new();
            let mut vars = serde_json::Map::new();
            let mut filled = Filled::default();
            for a in args {
                let name = a["name"].as_str().unwrap();
                let (ty, _, required) = unwrap(&a["type"]);
                let holds_id = ty == "ID" || schema.holds_id(&ty, 0);
                let needed = required && a["defaultValue"].is_null();
                if !(holds_id || needed) {
                    continue;
                }
                decls.push(format!("${name}: {}", gql_type(&a["type"])));
                passed.push(format!("{name}: ${name}"));
                vars.insert(
                    name.to_owned(),
                    schema.value(op, name, &a["type"], &ids, 0, &mut filled),
                );
            }
            let q = format!(
                "{keyword}({}) {{ {op}({}){} }}",
                decls.join(", "),
                passed.join(", "),
                schema.selection(&f["type"])
            );
            let vars = Value::Object(vars);
            missing.append(&mut filled.missing);
            tried += 1;
            covered.push(op.to_owned());
            let fresh = nowhere(&vars, &ids);
            let as_user = app.graphql_as(b.token(), &q, vars.clone()).await;
            let user_nowhere = app.graphql_as(b.token(), &q, fresh.clone()).await;
            if !gives_nothing(&as_user, &user_nowhere, op) {
                problems.push(format!(
                    "user: {q} {vars} → {as_user} (ids of nobody: {user_nowhere})"
                ));
            }
            let as_key = app.graphql_with_key(&b_key, &q, vars.clone()).await;
            let key_nowhere = app.graphql_with_key(&b_key, &q, fresh).await;
            if !gives_nothing(&as_key, &key_nowhere, op) {
                problems.push(format!(
                    "key: {q} {vars} → {as_key} (ids of nobody: {key_nowhere})"
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ids the test cannot fill (teach entity_for): {missing:?}"
    );
    assert!(
        tried >= 40,
        "only {tried} operations take an id? {covered:?}"
    );
    for op in [
        "createDeal",
        "ingestSignals",
        "updateContact",
        "importLinkedInContacts",
    ] {
        assert!(
            covered.iter().any(|c| c == op),
            "{op} is not covered: {covered:?}"
        );
    }
    assert!(
        problems.is_empty(),
        "{} of {tried} operations gave another organization something:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let after = snapshot(&app, &a, &ids).await;
    assert_eq!(before, after, "the organization's objects changed");
}
