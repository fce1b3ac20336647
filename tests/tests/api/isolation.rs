//! Tenant isolation: no query or mutation lets a user or key of one
//! organization read or change anything of another. A foreign id answers `NOT_FOUND`, exactly as
//! an id that does not exist.

use devsignal_tests::{Session, TestApp, error_code, spawn_app};
use serde_json::{Value, json};

/// Creates an API key in `s`'s organization and returns its id.
async fn key_id(app: &TestApp, s: &Session) -> Value {
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createApiKey(input: {name: \"b key\", scopes: [\"admin\"]}) { apiKey { id } } }",
            json!({}),
        )
        .await;
    r["data"]["createApiKey"]["apiKey"]["id"].clone()
}

#[tokio::test]
async fn foreign_ids_are_not_found_for_every_operation() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let b_key = key_id(&app, &b).await;
    let a_key = app.api_key(&a, &["admin"]).await;
    let missing = uuid::Uuid::new_v4().to_string();

    let by_id: Vec<(&str, Value)> = vec![
        (
            "query($id: ID!) { member(userId: $id) { role } }",
            json!(b.user_id),
        ),
        (
            "mutation($id: ID!) { updateMemberRole(userId: $id, role: VIEWER) { role } }",
            json!(b.user_id),
        ),
        (
            "mutation($id: ID!) { removeMember(userId: $id) }",
            json!(b.user_id),
        ),
        (
            "mutation($id: ID!) { transferOwnership(userId: $id) { role } }",
            json!(b.user_id),
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            b_key.clone(),
        ),
        (
            "mutation($id: ID!) { switchOrganization(organizationId: $id) { accessToken } }",
            json!(b.organization_id),
        ),
    ];
    for (q, foreign) in &by_id {
        let as_user = app.graphql_as(a.token(), q, json!({"id": foreign})).await;
        assert_eq!(error_code(&as_user), Some("NOT_FOUND"), "{q}: {as_user}");
        // Same answer as an id that exists nowhere.
        let nowhere = app.graphql_as(a.token(), q, json!({"id": missing})).await;
        assert_eq!(error_code(&nowhere), Some("NOT_FOUND"), "{q}: {nowhere}");
        if !q.contains("switchOrganization") && !q.contains("transferOwnership") {
            let as_key = app
                .graphql_with_key(&a_key, q, json!({"id": foreign}))
                .await;
            assert_eq!(error_code(&as_key), Some("NOT_FOUND"), "key {q}: {as_key}");
        }
    }
    // Nothing changed in B.
    let members = app
        .graphql_as(b.token(), "{ members { user { id } role } }", json!({}))
        .await;
    assert_eq!(members["data"]["members"].as_array().unwrap().len(), 1);
    assert_eq!(members["data"]["members"][0]["role"], "OWNER");
    let keys = app
        .graphql_as(b.token(), "{ apiKeys { id revokedAt } }", json!({}))
        .await;
    assert!(keys["data"]["apiKeys"][0]["revokedAt"].is_null());
}

#[tokio::test]
async fn lists_show_only_the_own_organization() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    key_id(&app, &b).await;
    app.graphql_as(
        b.token(),
        "mutation { inviteMember(email: \"someone@example.com\", role: MEMBER) { id } }",
        json!({}),
    )
    .await;
    let a_key = app.api_key(&a, &["admin"]).await;
    for token in [a.access_token.as_str(), a_key.as_str()] {
        let org = app
            .graphql_as(Some(token), "{ organization { id } }", json!({}))
            .await;
        assert_eq!(
            org["data"]["organization"]["id"],
            a.organization_id.as_str()
        );
        let members = app
            .graphql_as(Some(token), "{ members { user { id } } }", json!({}))
            .await;
        let ids: Vec<&Value> = members["data"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["user"]["id"])
            .collect();
        assert_eq!(ids, vec![&json!(a.user_id)]);
        let keys = app
            .graphql_as(Some(token), "{ apiKeys { name } }", json!({}))
            .await;
        assert!(
            keys["data"]["apiKeys"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["name"] != "b key"),
            "{keys}"
        );
        let inv = app
            .graphql_as(Some(token), "{ invitations { email } }", json!({}))
            .await;
        assert_eq!(inv["data"]["invitations"], json!([]));
        let log = app
            .graphql_as(
                Some(token),
                "{ auditLog(first: 100) { edges { node { userId action } } } }",
                json!({}),
            )
            .await;
        for e in log["data"]["auditLog"]["edges"].as_array().unwrap() {
            assert_ne!(e["node"]["userId"], json!(b.user_id), "{log}");
            assert_ne!(e["node"]["action"], "member.invited");
        }
    }
    let orgs = app
        .graphql_as(
            a.token(),
            "{ organizations { organization { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        orgs["data"]["organizations"],
        json!([{"organization": {"id": a.organization_id}}])
    );
}

#[tokio::test]
async fn a_token_cannot_be_pointed_at_another_organization() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    // Re-sign A's claims with B's organization: the session is bound to A's organization.
    let secret = {
        use secrecy::ExposeSecret;
        app.state
            .config
            .jwt_secret
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    let mut claims: Value = {
        use base64::Engine;
        let p = a.access_token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    claims["org"] = json!(b.organization_id);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = app
        .graphql_as(Some(&token), "{ organization { id } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    // An invitation of B accepted by A's user with another email: refused.
    app.graphql_as(
        b.token(),
        "mutation { inviteMember(email: \"other@example.com\", role: ADMIN) { id } }",
        json!({}),
    )
    .await;
    let t = app.mailed_token("other@example.com").await;
    let r = app
        .graphql_as(
            a.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { accessToken } }",
            json!({"t": t}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
}

#[tokio::test]
async fn deleting_an_organization_removes_its_identity_data() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    app.api_key(&a, &["admin"]).await;
    app.api_key(&b, &["admin"]).await;
    let count = |table: &'static str| {
        let db = app.db.clone();
        async move {
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &db,
                sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT COUNT(*) FROM {table}"),
                ),
            )
            .await
            .unwrap()
            .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(count("memberships").await, 2);
    sea_orm::ConnectionTrait::execute_raw(
        &app.db,
        sea_orm::Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "DELETE FROM organizations WHERE id = $1",
            [sea_orm::Value::from(
                uuid::Uuid::parse_str(&a.organization_id).unwrap(),
            )],
        ),
    )
    .await
    .unwrap();
    for table in ["memberships", "sessions", "api_keys"] {
        assert_eq!(count(table).await, 1, "{table}");
    }
    let r = app
        .graphql_as(a.token(), "{ organization { id } }", json!({}))
        .await;
    devsignal_tests::assert_code(&r, "UNAUTHENTICATED");
    let r = app
        .graphql_as(b.token(), "{ organization { id } }", json!({}))
        .await;
    assert_eq!(r["data"]["organization"]["id"], b.organization_id.as_str());
}
