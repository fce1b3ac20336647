//! Organizations and roles: members, invitations, role changes, removal, ownership transfer,
//! switching organizations, VIEWER read-only, and authentication over WebSocket.

use std::time::Duration;

use devsignal_tests::{error_code, spawn_app};
use serde_json::{Value, json};

const MEMBERS: &str = "{ members { user { id email } role joinedAt } }";

fn role_of(members: &Value, user_id: &str) -> Option<String> {
    members["data"]["members"]
        .as_array()?
        .iter()
        .find(|m| m["user"]["id"] == user_id)
        .map(|m| m["role"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn invitations_add_members_once_and_only_for_the_invited_email() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app.add_member(&owner, "mia@example.com", "MEMBER").await;
    let members = app.graphql_as(owner.token(), MEMBERS, json!({})).await;
    assert_eq!(
        role_of(&members, &member.user_id).as_deref(),
        Some("MEMBER")
    );
    assert_eq!(role_of(&members, &owner.user_id).as_deref(), Some("OWNER"));

    // The invitation mail carried a single-use token: a second accept fails.
    let token = app.mailed_token("mia@example.com").await;
    let again = app
        .graphql_as(
            member.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { accessToken } }",
            json!({"t": token}),
        )
        .await;
    assert_eq!(error_code(&again), Some("BAD_USER_INPUT"));

    // Someone else cannot use an invitation meant for another address.
    app.graphql_as(
        owner.token(),
        "mutation { inviteMember(email: \"zoe@example.com\", role: VIEWER) { id } }",
        json!({}),
    )
    .await;
    let zoe_token = app.mailed_token("zoe@example.com").await;
    let resp = app
        .graphql_as(
            member.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { accessToken } }",
            json!({"t": zoe_token}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    // Pending invitations are listed; members cannot be invited twice; OWNER is not invitable.
    let inv = app
        .graphql_as(owner.token(), "{ invitations { email role } }", json!({}))
        .await;
    assert_eq!(inv["data"]["invitations"][0]["email"], "zoe@example.com");
    let resp = app
        .graphql_as(
            owner.token(),
            "mutation { inviteMember(email: \"MIA@example.com\", role: ADMIN) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("CONFLICT"));
    let resp = app
        .graphql_as(
            owner.token(),
            "mutation { inviteMember(email: \"x@example.com\", role: OWNER) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("BAD_USER_INPUT"));
    // Members cannot invite.
    let resp = app
        .graphql_as(
            member.token(),
            "mutation { inviteMember(email: \"y@example.com\", role: MEMBER) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
}

#[tokio::test]
async fn organizations_lists_all_and_switch_gives_tokens_for_another() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let mia = app.add_member(&owner, "mia@example.com", "VIEWER").await;
    let list = app
        .graphql_as(
            mia.token(),
            "{ organizations { organization { id name } role } }",
            json!({}),
        )
        .await;
    let orgs = list["data"]["organizations"].as_array().unwrap();
    assert_eq!(orgs.len(), 2, "{list}");
    assert!(
        orgs.iter()
            .any(|o| o["organization"]["name"] == "Acme" && o["role"] == "VIEWER")
    );
    let own = orgs.iter().find(|o| o["role"] == "OWNER").unwrap()["organization"]["id"].clone();
    let sw = app
        .graphql_as(
            mia.token(),
            "mutation($id: ID!) { switchOrganization(organizationId: $id) { accessToken organization { id } role } }",
            json!({"id": own}),
        )
        .await;
    assert_eq!(sw["data"]["switchOrganization"]["role"], "OWNER", "{sw}");
    let token = sw["data"]["switchOrganization"]["accessToken"]
        .as_str()
        .unwrap();
    let v = app
        .graphql_as(
            Some(token),
            "{ viewer { organization { id } role } }",
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["viewer"]["organization"]["id"], own);
    // Not an organization of hers: NOT_FOUND.
    let stranger = app.register("stranger@example.com", "Elsewhere").await;
    let sw = app
        .graphql_as(
            mia.token(),
            "mutation($id: ID!) { switchOrganization(organizationId: $id) { accessToken } }",
            json!({"id": stranger.organization_id}),
        )
        .await;
    assert_eq!(error_code(&sw), Some("NOT_FOUND"));
}

#[tokio::test]
async fn a_viewer_reads_but_every_write_is_forbidden() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let viewer = app.add_member(&owner, "vic@example.com", "VIEWER").await;
    for q in ["{ organization { name } }", MEMBERS, "{ viewer { role } }"] {
        let r = app.graphql_as(viewer.token(), q, json!({})).await;
        assert!(r.get("errors").is_none(), "{q}: {r}");
    }
    let writes = [
        "mutation { inviteMember(email: \"n@example.com\", role: MEMBER) { id } }".to_owned(),
        "mutation { createApiKey(input: {name: \"k\", scopes: [\"admin\"]}) { key } }".to_owned(),
        format!(
            "mutation {{ updateMemberRole(userId: \"{}\", role: ADMIN) {{ role }} }}",
            viewer.user_id
        ),
        format!("mutation {{ removeMember(userId: \"{}\") }}", owner.user_id),
        format!(
            "mutation {{ transferOwnership(userId: \"{}\") {{ role }} }}",
            viewer.user_id
        ),
    ];
    for q in &writes {
        let r = app.graphql_as(viewer.token(), q, json!({})).await;
        assert_eq!(error_code(&r), Some("FORBIDDEN"), "{q}: {r}");
    }
    let r = app
        .graphql_as(viewer.token(), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
}

#[tokio::test]
async fn roles_change_at_once_and_an_owner_always_remains() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let mia = app.add_member(&owner, "mia@example.com", "MEMBER").await;
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { updateMemberRole(userId: $u, role: ADMIN) { user { id } role } }",
            json!({"u": mia.user_id}),
        )
        .await;
    assert_eq!(r["data"]["updateMemberRole"]["role"], "ADMIN", "{r}");
    // Her existing token carries the new role immediately.
    let v = app
        .graphql_as(mia.token(), "{ viewer { role } }", json!({}))
        .await;
    assert_eq!(v["data"]["viewer"]["role"], "ADMIN");
    // An ADMIN cannot demote or remove the OWNER, nor make anyone OWNER by role change.
    let r = app
        .graphql_as(
            mia.token(),
            "mutation($u: ID!) { updateMemberRole(userId: $u, role: MEMBER) { role } }",
            json!({"u": owner.user_id}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
    let r = app
        .graphql_as(
            mia.token(),
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({"u": owner.user_id}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { updateMemberRole(userId: $u, role: OWNER) { role } }",
            json!({"u": mia.user_id}),
        )
        .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"));
    // Only the OWNER transfers ownership; the old owner becomes ADMIN.
    let r = app
        .graphql_as(
            mia.token(),
            "mutation($u: ID!) { transferOwnership(userId: $u) { role } }",
            json!({"u": mia.user_id}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { transferOwnership(userId: $u) { role } }",
            json!({"u": mia.user_id}),
        )
        .await;
    assert_eq!(r["data"]["transferOwnership"]["role"], "OWNER", "{r}");
    let members = app.graphql_as(mia.token(), MEMBERS, json!({})).await;
    assert_eq!(role_of(&members, &mia.user_id).as_deref(), Some("OWNER"));
    assert_eq!(role_of(&members, &owner.user_id).as_deref(), Some("ADMIN"));
    let owners = members["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "OWNER")
        .count();
    assert_eq!(owners, 1);
}

#[tokio::test]
async fn a_removed_member_loses_access_at_once() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let mia = app.add_member(&owner, "mia@example.com", "MEMBER").await;
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({"u": mia.user_id}),
        )
        .await;
    assert_eq!(r["data"]["removeMember"], true, "{r}");
    let v = app
        .graphql_as(mia.token(), "{ organization { id } }", json!({}))
        .await;
    assert_eq!(error_code(&v), Some("UNAUTHENTICATED"));
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": mia.refresh_token}),
        )
        .await;
    assert_eq!(refresh.status(), 401);
    let members = app.graphql_as(owner.token(), MEMBERS, json!({})).await;
    assert_eq!(role_of(&members, &mia.user_id), None);
    // The owner cannot remove themself.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({"u": owner.user_id}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
}

#[tokio::test]
async fn websocket_connection_init_authenticates_users_and_keys() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let key = app.api_key(&owner, &["admin"]).await;
    for (protocol, credential) in [
        (
            "graphql-transport-ws",
            format!("Bearer {}", owner.access_token),
        ),
        ("graphql-ws", format!("Bearer {}", owner.access_token)),
        ("graphql-transport-ws", format!("Bearer {key}")),
    ] {
        let mut ws = app.ws(protocol).await;
        let ack = ws.init(json!({"Authorization": credential})).await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws.subscribe("1", "{ viewer { organization { id } role } }", json!({}))
            .await;
        let data = ws.next_data().await;
        assert_eq!(
            data["data"]["viewer"]["organization"]["id"],
            owner.organization_id.as_str(),
            "{protocol}: {data}"
        );
    }
    // Without credentials the connection works, but the viewer needs authentication.
    let mut ws = app.ws("graphql-transport-ws").await;
    let ack = ws.init(json!({})).await;
    assert_eq!(ack["type"], "connection_ack");
    ws.subscribe("1", "{ viewer { role } }", json!({})).await;
    let data = ws.next_data().await;
    assert_eq!(
        data["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{data}"
    );
    // A bad token is refused at connection_init.
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({"type": "connection_init", "payload": {"Authorization": "Bearer not-a-token"}}))
        .await;
    let answer = ws.next(Duration::from_secs(10)).await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|m| m["type"] != "connection_ack"),
        "{answer:?}"
    );
}
