//! Ingest's auto-merge, inside the batch's transaction.

use std::collections::{BTreeSet, HashMap};

use entity::{contacts, signals};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::apply::*;
use super::evidence::*;
use super::*;
use crate::audit::Meta;
use crate::{Actor, Result};
/// A pair ingest found: one signal attributed to `contact` named `other` through its hints.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub contact: Uuid,
    pub other: Uuid,
    /// The highest confidence of the hints that named `other`.
    pub confidence: f64,
    pub evidence: Vec<Evidence>,
}

/// What [`auto_merge`] did, for the ingest writer to bring its maps up to date.
#[derive(Debug, Clone, Default)]
pub(crate) struct AutoMerged {
    /// Merged contact → the contact it now lives on (followed to the end of any chain).
    pub merged_into: HashMap<Uuid, Uuid>,
    /// Each surviving primary's account now.
    pub primary_accounts: HashMap<Uuid, Option<Uuid>>,
    /// Accounts to rescore.
    pub accounts: BTreeSet<Uuid>,
}

/// Ingest's auto-merge (reason AUTO), inside the batch's transaction after its signals and
/// identities are written, so they move too. The primary is the contact with more signals (a
/// tie keeps the signal's own contact). Pairs with an undone merge between them are skipped;
/// candidates already merged by an earlier one are followed to their primary. Costs nothing
/// without candidates, and a few statements per merge.
#[tracing::instrument(name = "merges.auto_merge", skip_all, fields(organizationId = %actor.organization_id, candidates = candidates.len()))]
pub(crate) async fn auto_merge(
    txn: &DatabaseTransaction,
    actor: &Actor,
    candidates: Vec<Candidate>,
) -> Result<AutoMerged> {
    let mut out = AutoMerged::default();
    if candidates.is_empty() {
        return Ok(out);
    }
    let org = actor.organization_id;
    let ids: Vec<Uuid> = candidates
        .iter()
        .flat_map(|c| [c.contact, c.other])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let undone = undone_pairs(txn, org, Some(&ids)).await?;
    let root = |into: &HashMap<Uuid, Uuid>, mut x: Uuid| {
        while let Some(n) = into.get(&x) {
            x = *n;
        }
        x
    };
    for c in candidates {
        let (a, b) = (
            root(&out.merged_into, c.contact),
            root(&out.merged_into, c.other),
        );
        if a == b || undone.contains(&pair(c.contact, c.other)) || undone.contains(&pair(a, b)) {
            continue;
        }
        let counts: HashMap<Option<Uuid>, i64> = signals::Entity::find()
            .select_only()
            .column(signals::Column::ContactId)
            .column_as(signals::Column::Id.count(), "n")
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::ContactId.is_in([a, b]))
            .group_by(signals::Column::ContactId)
            .into_tuple::<(Option<Uuid>, i64)>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let n = |id: Uuid| counts.get(&Some(id)).copied().unwrap_or(0);
        let (primary_id, dup_id) = if n(b) > n(a) { (b, a) } else { (a, b) };
        let mut rows: HashMap<Uuid, contacts::Model> = lock_contacts(txn, org, &[a, b])
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let (Some(primary), Some(dup)) = (rows.remove(&primary_id), rows.remove(&dup_id)) else {
            continue;
        };
        let how = How {
            reason: reason::AUTO,
            confidence: Some(c.confidence),
            evidence: c.evidence,
        };
        let done = merge_in(txn, actor, &Meta::default(), primary, dup, how).await?;
        out.merged_into.insert(dup_id, primary_id);
        out.primary_accounts.remove(&dup_id);
        out.primary_accounts
            .insert(primary_id, done.primary.account_id);
        out.accounts.extend(done.accounts);
    }
    let keys: Vec<Uuid> = out.merged_into.keys().copied().collect();
    for k in keys {
        let r = root(&out.merged_into, k);
        out.merged_into.insert(k, r);
    }
    Ok(out)
}
