//! The one piece of merge code: locks, moving rows from the duplicate to the primary, filling
//! fields, recording the merge.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use entity::{activities, contact_identities, contact_merges, contacts, deals, signals};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::record::*;
use super::*;
use crate::audit::{self, Entry, Meta};
use crate::error::on_unique;
use crate::{Actor, Result, events};
/// The contacts with these ids in the organization, locked for the rest of the transaction on
/// PostgreSQL (in id order, so concurrent merges queue rather than deadlock; an ingest that
/// would attribute a signal to one of them waits, and retries if the contact is gone).
/// SQLite's `BEGIN IMMEDIATE` already serialises writers.
pub(super) async fn lock_contacts(
    txn: &DatabaseTransaction,
    org: Uuid,
    ids: &[Uuid],
) -> Result<Vec<contacts::Model>> {
    Ok(contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::Id.is_in(ids.to_vec()))
        .order_by_asc(contacts::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?)
}

/// The compared identities of these contacts: (contact, kind, value).
pub(super) async fn identities_of(
    db: &impl ConnectionTrait,
    org: Uuid,
    ids: Option<&[Uuid]>,
) -> Result<Vec<(Uuid, String, String)>> {
    let mut q = contact_identities::Entity::find()
        .select_only()
        .column(contact_identities::Column::ContactId)
        .column(contact_identities::Column::Kind)
        .column(contact_identities::Column::Value)
        .filter(contact_identities::Column::OrganizationId.eq(org))
        .filter(contact_identities::Column::Kind.is_in(COMPARED.iter().copied()));
    if let Some(ids) = ids {
        q = q.filter(contact_identities::Column::ContactId.is_in(ids.to_vec()));
    }
    Ok(q.into_tuple().all(db).await?)
}

/// Why one merge happens.
#[derive(Debug, Clone)]
pub(crate) struct How {
    pub reason: &'static str,
    pub confidence: Option<f64>,
    pub evidence: Vec<Evidence>,
}

/// What [`merge_in`] did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The primary as it is now.
    pub primary: contacts::Model,
    pub record: contact_merges::Model,
    /// Accounts whose scores may change: those of the moved signals, and the accounts of both
    /// contacts (people and titles per account change).
    pub accounts: BTreeSet<Uuid>,
}

/// Rows of a table that belong to a contact: its id, organization and contact columns, so
/// a merge and its undo move activities, deals and identities the same way.
pub(super) struct Owned<E: EntityTrait> {
    id: E::Column,
    organization: E::Column,
    contact: E::Column,
}

pub(super) const ACTIVITIES: Owned<activities::Entity> = Owned::of(
    activities::Column::Id,
    activities::Column::OrganizationId,
    activities::Column::ContactId,
);
pub(super) const DEALS: Owned<deals::Entity> = Owned::of(
    deals::Column::Id,
    deals::Column::OrganizationId,
    deals::Column::ContactId,
);
pub(super) const IDENTITIES: Owned<contact_identities::Entity> = Owned::of(
    contact_identities::Column::Id,
    contact_identities::Column::OrganizationId,
    contact_identities::Column::ContactId,
);

impl<E: EntityTrait> Owned<E> {
    const fn of(id: E::Column, organization: E::Column, contact: E::Column) -> Self {
        Owned {
            id,
            organization,
            contact,
        }
    }

    /// The ids of `contact`'s rows.
    pub(super) async fn ids(
        &self,
        txn: &DatabaseTransaction,
        org: Uuid,
        contact: Uuid,
    ) -> Result<Vec<Uuid>> {
        Ok(E::find()
            .select_only()
            .column(self.id)
            .filter(self.organization.eq(org))
            .filter(self.contact.eq(contact))
            .into_tuple()
            .all(txn)
            .await?)
    }

    /// Gives `from`'s rows to `to`: all of them, or only those of `only` that `from` still
    /// holds. Their own `updated_at` stays: only the owner changes. Returns how many moved.
    pub(super) async fn reassign(
        &self,
        txn: &DatabaseTransaction,
        org: Uuid,
        from: Uuid,
        to: Uuid,
        only: Option<&[Uuid]>,
    ) -> Result<u64> {
        let update = || {
            E::update_many()
                .col_expr(self.contact, Expr::value(to))
                .filter(self.organization.eq(org))
                .filter(self.contact.eq(from))
        };
        let Some(only) = only else {
            return Ok(update().exec(txn).await?.rows_affected);
        };
        let mut moved = 0;
        for chunk in only.chunks(crate::db::IN_LIST) {
            moved += update()
                .filter(self.id.is_in(chunk.to_vec()))
                .exec(txn)
                .await?
                .rows_affected;
        }
        Ok(moved)
    }
}

/// Merges `dup` into `primary` inside `txn`: the one piece of merge code behind [`merge`] and
/// ingest's auto-merge. Both rows must be the organization's and locked by the caller
/// ([`lock_contacts`]). Records the merge with its undo information, appends `contact.merged`
/// (and `contact.updated` when the primary changed) and an audit entry. The caller enqueues the
/// rescoring of [`Outcome::accounts`].
pub(crate) async fn merge_in(
    txn: &DatabaseTransaction,
    actor: &Actor,
    meta: &Meta,
    primary: contacts::Model,
    dup: contacts::Model,
    how: How,
) -> Result<Outcome> {
    let org = actor.organization_id;
    let now = Utc::now();
    let signal_rows: Vec<(Uuid, Option<Uuid>)> = signals::Entity::find()
        .select_only()
        .column(signals::Column::Id)
        .column(signals::Column::AccountId)
        .filter(signals::Column::OrganizationId.eq(org))
        .filter(signals::Column::ContactId.eq(dup.id))
        .into_tuple()
        .all(txn)
        .await?;
    let activity_ids = ACTIVITIES.ids(txn, org, dup.id).await?;
    let deal_ids = DEALS.ids(txn, org, dup.id).await?;
    let identity_ids = IDENTITIES.ids(txn, org, dup.id).await?;
    // Move what belongs to the duplicate. Their own `updated_at` stays: only the owner changes.
    if !signal_rows.is_empty() {
        signals::Entity::update_many()
            .col_expr(signals::Column::ContactId, Expr::value(primary.id))
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::ContactId.eq(dup.id))
            .exec(txn)
            .await?;
    }
    if !activity_ids.is_empty() {
        ACTIVITIES
            .reassign(txn, org, dup.id, primary.id, None)
            .await?;
    }
    if !deal_ids.is_empty() {
        DEALS.reassign(txn, org, dup.id, primary.id, None).await?;
    }
    if !identity_ids.is_empty() {
        IDENTITIES
            .reassign(txn, org, dup.id, primary.id, None)
            .await?;
    }

    // The primary: empty fields filled, tags added, account inherited.
    let mut new = primary.clone();
    let mut filled = BTreeMap::new();
    let mut source = dup.clone();
    for name in FILLABLE {
        let theirs = slot(&mut source, name).and_then(|s| s.clone());
        if let (Some(ours), Some(v)) = (slot(&mut new, name), theirs)
            && ours.is_none()
        {
            *ours = Some(v.clone());
            filled.insert(
                (*name).to_owned(),
                Filled {
                    from: None,
                    to: v.clone(),
                },
            );
        }
    }
    if filled.contains_key("email") {
        new.email_normalized = dup.email_normalized.clone();
    }
    let mut tags = tag_list(&primary.tags);
    let mut added_tags = Vec::new();
    for t in tag_list(&dup.tags) {
        if !tags.contains(&t) && tags.len() < MAX_TAGS {
            tags.push(t.clone());
            added_tags.push(t);
        }
    }
    new.tags = json!(tags);
    let inherited_account = match (primary.account_id, dup.account_id) {
        (None, Some(a)) => {
            new.account_id = Some(a);
            Some(a)
        }
        _ => None,
    };
    let changed = !filled.is_empty() || !added_tags.is_empty() || inherited_account.is_some();

    // The duplicate goes first: the primary may take its email, which is unique.
    contacts::Entity::delete_many()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::Id.eq(dup.id))
        .exec(txn)
        .await?;
    if changed {
        new.updated_at = now;
        new = whole_update(&new)
            .update(txn)
            .await
            .map_err(|e| on_unique(e, "email", "a contact with this email already exists"))?;
    }

    let moved = Moved {
        signals: signal_rows.iter().map(|(id, _)| *id).collect(),
        activities: activity_ids,
        deals: deal_ids,
        identities: identity_ids,
    };
    let counts = json!({
        "signals": moved.signals.len(),
        "activities": moved.activities.len(),
        "deals": moved.deals.len(),
        "identities": moved.identities.len(),
    });
    let undo = Undo {
        version: 1,
        duplicate: ContactRow::from(&dup),
        moved,
        filled,
        added_tags,
        inherited_account,
    };
    let evidence = serde_json::to_value(&how.evidence).map_err(|e| internal("evidence", e))?;
    let record = contact_merges::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        primary_id: Set(primary.id),
        merged_id: Set(dup.id),
        reason: Set(how.reason.to_owned()),
        confidence: Set(how.confidence),
        evidence: Set(evidence.clone()),
        undo: Set(serde_json::to_value(&undo).map_err(|e| internal("undo", e))?),
        merged_by: Set(actor.user_id()),
        created_at: Set(now),
        undone_at: Set(None),
    }
    .insert(txn)
    .await?;

    audit::record(
        txn,
        meta,
        Entry::by(actor, action::MERGED)
            .target("contact", primary.id)
            .metadata(json!({
                "mergeId": record.id, "mergedId": dup.id, "reason": how.reason,
                "confidence": how.confidence, "moved": counts,
            })),
    )
    .await?;
    events::append(
        txn,
        org,
        Some(actor),
        "contact.merged",
        json!({
            "primaryId": primary.id, "mergedId": dup.id, "mergeId": record.id,
            "reason": how.reason, "confidence": how.confidence, "evidence": evidence,
            "moved": counts, "mergedContact": crate::crm::contacts::snapshot(&dup),
        }),
    )
    .await?;
    if changed {
        let changes = crate::crm::diff(
            &crate::crm::contacts::snapshot(&primary),
            &crate::crm::contacts::snapshot(&new),
        );
        events::append(
            txn,
            org,
            Some(actor),
            "contact.updated",
            json!({"contact": crate::crm::contacts::snapshot(&new), "changes": changes}),
        )
        .await?;
    }

    let mut accounts: BTreeSet<Uuid> = signal_rows.into_iter().filter_map(|(_, a)| a).collect();
    accounts.extend(dup.account_id);
    accounts.extend(primary.account_id);
    accounts.extend(new.account_id);
    Ok(Outcome {
        primary: new,
        record,
        accounts,
    })
}
