//! Personal data rights over GraphQL: `eraseContact` (GDPR art. 17) and `exportContactData`
//! (art. 15), both ADMIN (an API key needs `admin`).

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use serde_json::Value;

use crate::graphql::common::{db, meta, parse_id};
use crate::graphql::{GqlResultExt, actor};

/// What an erasure removed or changed (counts only: the person's data is gone).
#[derive(SimpleObject)]
pub struct ContactErasure {
    /// The erased contact's id (it no longer resolves).
    pub contact_id: ID,
    /// Identities (email, GitHub, …) deleted.
    pub identities: i32,
    /// Their signals kept for the account's score, without them.
    pub signals_anonymised: i32,
    /// Activities about them, deleted.
    pub activities_deleted: i32,
    /// Deals that named them as contact, now without one.
    pub deals_unlinked: i32,
    /// Merge records they were part of, deleted.
    pub merges_deleted: i32,
    /// Rows elsewhere (events, notifications, deliveries, audit entries, …) that quoted them
    /// and were redacted or dropped.
    pub rows_redacted: i32,
    /// Hashed identifiers kept so no ingest, import or sync re-creates them.
    pub tombstones: i32,
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// Everything held about a contact (GDPR art. 15), as JSON (ADMIN): `contact`, `identities`,
    /// `signals`, `activities`, `deals`, `notes`, `notifications`, `auditEntries`, `events`.
    async fn export_contact_data(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Json<Value>> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        let data = domain::privacy::export_contact(&*db(ctx).await?, actor, id)
            .await
            .gql()?;
        Ok(Json(data))
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Erases a contact (GDPR art. 17; ADMIN): the contact, its identities, activities about
    /// them and their personal data wherever it was kept (signals stay, anonymous, for the
    /// account's score); hashed identifiers are kept so that no ingest, import or connector
    /// creates them again. One transaction; the audit entry holds counts only.
    async fn erase_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ContactErasure> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "Contact").gql()?;
        let e = domain::privacy::erase_contact(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ContactErasure {
            contact_id: ID(e.contact_id.to_string()),
            identities: count(e.identities),
            signals_anonymised: count(e.signals_anonymised),
            activities_deleted: count(e.activities_deleted),
            deals_unlinked: count(e.deals_unlinked),
            merges_deleted: count(e.merges_deleted),
            rows_redacted: count(e.rows_redacted),
            tombstones: count(e.tombstones),
        })
    }
}
