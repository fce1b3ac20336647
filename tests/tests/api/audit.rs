//! The audit log: who did what, when, from which IP; readable by ADMIN through `auditLog`.

use devsignal_tests::{TEST_PASSWORD, error_code, spawn_app};
use serde_json::{Value, json};

const LOG: &str = "query($first: Int, $after: String) { auditLog(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id action userId apiKeyId targetType targetId ip metadata createdAt } } } }";

fn actions(resp: &Value) -> Vec<String> {
    resp["data"]["auditLog"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{resp}"))
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sign_ins_role_changes_removals_and_keys_are_recorded() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    // A failed and a successful sign-in.
    app.post_json(
        "/api/v1/auth/login",
        &json!({"email": "owner@example.com", "password": "wrong password"}),
    )
    .await;
    app.login("owner@example.com", TEST_PASSWORD).await;
    // A member joins, changes role, is removed.
    app.graphql_as(
        owner.token(),
        "mutation { inviteMember(email: \"mia@example.com\", role: MEMBER) { id } }",
        json!({}),
    )
    .await;
    let token = app.mailed_token("mia@example.com").await;
    let mia = app.register("mia@example.com", "Mia's").await;
    let r = app
        .graphql_as(
            mia.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { role } }",
            json!({"t": token}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    app.graphql_as(
        owner.token(),
        "mutation($u: ID!) { updateMemberRole(userId: $u, role: VIEWER) { role } }",
        json!({"u": mia.user_id}),
    )
    .await;
    app.graphql_as(
        owner.token(),
        "mutation($u: ID!) { removeMember(userId: $u) }",
        json!({"u": mia.user_id}),
    )
    .await;
    // A key is created and revoked.
    let created = app
        .graphql_as(
            owner.token(),
            "mutation { createApiKey(input: {name: \"k\", scopes: [\"admin\"]}) { apiKey { id } } }",
            json!({}),
        )
        .await;
    let key_id = created["data"]["createApiKey"]["apiKey"]["id"].clone();
    app.graphql_as(
        owner.token(),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({"id": key_id}),
    )
    .await;

    let log = app
        .graphql_as(owner.token(), LOG, json!({"first": 50}))
        .await;
    let got = actions(&log);
    for expected in [
        "auth.register",
        "auth.sign_in_failed",
        "auth.sign_in",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "member.removed",
        "api_key.created",
        "api_key.revoked",
    ] {
        assert!(
            got.iter().any(|a| a == expected),
            "{expected} missing from {got:?}"
        );
    }
    // Newest first, with who, what, when and from where.
    assert_eq!(got[0], "api_key.revoked");
    let newest = &log["data"]["auditLog"]["edges"][0]["node"];
    assert_eq!(newest["userId"], owner.user_id.as_str());
    assert_eq!(newest["targetType"], "api_key");
    assert_eq!(newest["targetId"], key_id);
    assert_eq!(newest["ip"], "127.0.0.1");
    assert!(newest["createdAt"].is_string());
    let change = log["data"]["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["action"] == "member.role_changed")
        .unwrap();
    assert_eq!(
        change["node"]["metadata"],
        json!({"from": "MEMBER", "to": "VIEWER"})
    );
    assert_eq!(change["node"]["targetId"], mia.user_id.as_str());
}

#[tokio::test]
async fn the_log_pages_with_first_and_after_and_needs_admin() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    for _ in 0..4 {
        app.login("owner@example.com", TEST_PASSWORD).await;
    }
    // register + 4 sign-ins
    let page1 = app
        .graphql_as(owner.token(), LOG, json!({"first": 3}))
        .await;
    assert_eq!(page1["data"]["auditLog"]["totalCount"], 5, "{page1}");
    assert_eq!(actions(&page1).len(), 3);
    assert_eq!(page1["data"]["auditLog"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["data"]["auditLog"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .graphql_as(owner.token(), LOG, json!({"first": 3, "after": cursor}))
        .await;
    assert_eq!(actions(&page2), vec!["auth.sign_in", "auth.register"]);
    assert_eq!(page2["data"]["auditLog"]["pageInfo"]["hasNextPage"], false);
    let ids1: Vec<&Value> = page1["data"]["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    for e in page2["data"]["auditLog"]["edges"].as_array().unwrap() {
        assert!(!ids1.contains(&&e["node"]["id"]));
    }
    let bad = app
        .graphql_as(owner.token(), LOG, json!({"first": 0}))
        .await;
    assert_eq!(error_code(&bad), Some("BAD_USER_INPUT"));

    // A MEMBER may not read it.
    app.graphql_as(
        owner.token(),
        "mutation { inviteMember(email: \"mia@example.com\", role: MEMBER) { id } }",
        json!({}),
    )
    .await;
    let token = app.mailed_token("mia@example.com").await;
    let mia = app.register("mia@example.com", "Mia's").await;
    let joined = app
        .graphql_as(
            mia.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { accessToken } }",
            json!({"t": token}),
        )
        .await;
    let t = joined["data"]["acceptInvitation"]["accessToken"]
        .as_str()
        .unwrap();
    let r = app.graphql_as(Some(t), LOG, json!({})).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = app.graphql(LOG, json!({})).await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"));
}
