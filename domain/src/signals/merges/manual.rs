//! Merges a person asks for, their undo, and the list of recorded merges.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Utc;
use entity::{companies, contact_merges, contacts, signals};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::apply::*;
use super::evidence::*;
use super::record::*;
use super::*;
use crate::audit::{self, Entry, Meta};
use crate::error::on_unique;
use crate::{Actor, Error, Result, events, scoring};
/// Merges `duplicate_ids` (1 to [`MAX_DUPLICATES`]) into `primary_id` (MEMBER+, key scope
/// `contacts:write`), in one transaction: all or nothing. Any id that is not a contact of the
/// organization answers `NOT_FOUND` and nothing is written. Each duplicate gets its own record
/// (reason MANUAL) holding the evidence the pair shared at the time (possibly none; the
/// confidence is then absent).
#[tracing::instrument(name = "merges.merge", skip_all, fields(organizationId = %actor.organization_id, primaryId = %primary_id, duplicates = duplicate_ids.len()))]
pub async fn merge(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    primary_id: Uuid,
    duplicate_ids: Vec<Uuid>,
) -> Result<Merged> {
    write_rights(actor)?;
    if duplicate_ids.is_empty() || duplicate_ids.len() > MAX_DUPLICATES {
        return Err(Error::invalid(
            "duplicateIds",
            format!("must hold 1 to {MAX_DUPLICATES} contact ids"),
        ));
    }
    if duplicate_ids.contains(&primary_id) {
        return Err(Error::invalid(
            "duplicateIds",
            "must not include the primary contact",
        ));
    }
    if duplicate_ids.iter().collect::<HashSet<_>>().len() != duplicate_ids.len() {
        return Err(Error::invalid(
            "duplicateIds",
            "must not name a contact twice",
        ));
    }
    let org = actor.organization_id;
    let mut all = duplicate_ids.clone();
    all.push(primary_id);
    let txn = crate::db::begin(db).await?;
    let mut rows: HashMap<Uuid, contacts::Model> = lock_contacts(&txn, org, &all)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let not_found = || Error::NotFound { entity: "Contact" };
    let mut primary = rows.remove(&primary_id).ok_or_else(not_found)?;
    let dups = duplicate_ids
        .iter()
        .map(|id| rows.remove(id).ok_or_else(not_found))
        .collect::<Result<Vec<_>>>()?;

    let mut people: HashMap<Uuid, Person> = std::iter::once(&primary)
        .chain(&dups)
        .map(|m| (m.id, Person::of(m)))
        .collect();
    for (c, k, v) in identities_of(&txn, org, Some(&all)).await? {
        if let Some(p) = people.get_mut(&c) {
            p.add_identity(&k, v);
        }
    }
    let mut accounts = BTreeSet::new();
    let mut records = Vec::with_capacity(dups.len());
    for dup in dups {
        let evidence = match (people.get(&primary_id), people.get(&dup.id)) {
            (Some(a), Some(b)) => pair_evidence(a, b),
            _ => Vec::new(),
        };
        let confidence =
            (!evidence.is_empty()).then(|| combine(evidence.iter().map(|e| e.confidence)));
        let how = How {
            reason: reason::MANUAL,
            confidence,
            evidence,
        };
        let out = merge_in(&txn, actor, meta, primary, dup, how).await?;
        primary = out.primary;
        accounts.extend(out.accounts);
        records.push(Merge::from(out.record));
    }
    let accounts: Vec<Uuid> = accounts.into_iter().collect();
    scoring::request_rescore(&txn, org, &accounts).await?;
    txn.commit().await?;
    Ok(Merged {
        contact: primary,
        merges: records,
    })
}

/// Reverses one merge (MEMBER+, key scope `contacts:write`) in one transaction: re-creates the
/// duplicate with its id and fields, moves back the recorded signals, activities, deals and
/// identities that still belong to the primary, removes the tags the merge added, clears the
/// fields it filled where they still hold what it put there (a later edit wins), and un-inherits
/// the account if it is still the inherited one. `CONFLICT` when the merge was already undone,
/// when the primary no longer exists (undo the later merge first), or when the duplicate's email
/// now belongs to another contact. Returns the restored contact.
#[tracing::instrument(name = "merges.unmerge", skip_all, fields(organizationId = %actor.organization_id, mergeId = %merge_id))]
pub async fn unmerge(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    merge_id: Uuid,
) -> Result<contacts::Model> {
    write_rights(actor)?;
    let org = actor.organization_id;
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    let record = contact_merges::Entity::find_by_id(merge_id)
        .filter(contact_merges::Column::OrganizationId.eq(org))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound {
            entity: "ContactMerge",
        })?;
    let conflict = |message: String| Error::Conflict {
        field: "mergeId".into(),
        message,
    };
    if record.undone_at.is_some() {
        return Err(conflict("this merge was already undone".into()));
    }
    let undo: Undo =
        serde_json::from_value(record.undo.clone()).map_err(|e| internal("undo record", e))?;
    let primary = lock_contacts(&txn, org, &[record.primary_id])
        .await?
        .pop()
        .ok_or_else(|| {
            conflict(
                "the primary contact no longer exists (it was deleted or merged again); undo \
                 the later merge first"
                    .into(),
            )
        })?;

    // The primary loses what the merge gave it, unless it was changed since.
    let mut new = primary.clone();
    for (name, f) in &undo.filled {
        if let Some(s) = slot(&mut new, name)
            && s.as_deref() == Some(f.to.as_str())
        {
            *s = None;
            if name == "email" {
                new.email_normalized = None;
            }
        }
    }
    let mut tags = tag_list(&new.tags);
    tags.retain(|t| !undo.added_tags.contains(t));
    new.tags = json!(tags);
    if undo.inherited_account.is_some() && new.account_id == undo.inherited_account {
        new.account_id = None;
    }
    let changed = new != primary;
    if changed {
        new.updated_at = now;
        new = whole_update(&new).update(&txn).await?;
    }

    // The duplicate comes back as it was (unlinked if its account was deleted since, as the
    // foreign key would have left it).
    let mut restored: contacts::Model = undo.duplicate.clone().into();
    if restored.organization_id != org {
        return Err(internal("undo record", "belongs to another organization"));
    }
    if let Some(a) = restored.account_id {
        let exists = companies::Entity::find_by_id(a)
            .filter(companies::Column::OrganizationId.eq(org))
            .count(&txn)
            .await?
            > 0;
        if !exists {
            restored.account_id = None;
        }
    }
    let email = restored.email.clone().unwrap_or_default();
    let restored = contacts::ActiveModel::from(restored)
        .insert(&txn)
        .await
        .map_err(|e| {
            on_unique(
                e,
                "email",
                &format!(
                    "the merged contact's email {email} now belongs to another contact; change \
                     that contact's email first"
                ),
            )
        })?;

    // Move back exactly what the merge moved, where it still belongs to the primary.
    let (p, d) = (primary.id, restored.id);
    let mut accounts: BTreeSet<Uuid> = BTreeSet::new();
    let mut back = [0u64; 4];
    for chunk in undo.moved.signals.chunks(500) {
        let cond = Condition::all()
            .add(signals::Column::OrganizationId.eq(org))
            .add(signals::Column::ContactId.eq(p))
            .add(signals::Column::Id.is_in(chunk.to_vec()));
        let owned: Vec<Option<Uuid>> = signals::Entity::find()
            .select_only()
            .column(signals::Column::AccountId)
            .filter(cond.clone())
            .into_tuple()
            .all(&txn)
            .await?;
        accounts.extend(owned.into_iter().flatten());
        back[0] += signals::Entity::update_many()
            .col_expr(signals::Column::ContactId, Expr::value(d))
            .filter(cond)
            .exec(&txn)
            .await?
            .rows_affected;
    }
    back[1] = ACTIVITIES
        .reassign(&txn, org, p, d, Some(&undo.moved.activities))
        .await?;
    back[2] = DEALS
        .reassign(&txn, org, p, d, Some(&undo.moved.deals))
        .await?;
    back[3] = IDENTITIES
        .reassign(&txn, org, p, d, Some(&undo.moved.identities))
        .await?;
    contact_merges::Entity::update_many()
        .col_expr(contact_merges::Column::UndoneAt, Expr::value(now))
        .filter(contact_merges::Column::Id.eq(record.id))
        .filter(contact_merges::Column::OrganizationId.eq(org))
        .exec(&txn)
        .await?;

    let moved_back = json!({
        "signals": back[0], "activities": back[1], "deals": back[2], "identities": back[3],
    });
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::UNMERGED)
            .target("contact", restored.id)
            .metadata(json!({"mergeId": record.id, "primaryId": p, "movedBack": moved_back})),
    )
    .await?;
    events::append(
        &txn,
        org,
        Some(actor),
        "contact.unmerged",
        json!({
            "mergeId": record.id, "primaryId": p, "restoredId": d, "movedBack": moved_back,
            "contact": crate::crm::contacts::snapshot(&restored),
        }),
    )
    .await?;
    if changed {
        let changes = crate::crm::diff(
            &crate::crm::contacts::snapshot(&primary),
            &crate::crm::contacts::snapshot(&new),
        );
        events::append(
            &txn,
            org,
            Some(actor),
            "contact.updated",
            json!({"contact": crate::crm::contacts::snapshot(&new), "changes": changes}),
        )
        .await?;
    }
    accounts.extend(restored.account_id);
    accounts.extend(primary.account_id);
    accounts.extend(new.account_id);
    let accounts: Vec<Uuid> = accounts.into_iter().collect();
    scoring::request_rescore(&txn, org, &accounts).await?;
    txn.commit().await?;
    Ok(restored)
}

/// The organization's merges, newest first, optionally only those where `contact_id` was the
/// primary or the merged contact; at most `first` (1 to [`MAX_PAGE`]).
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    contact_id: Option<Uuid>,
    first: u64,
) -> Result<Vec<Merge>> {
    read_rights(actor)?;
    check_first(first)?;
    let mut q = contact_merges::Entity::find()
        .filter(contact_merges::Column::OrganizationId.eq(actor.organization_id));
    if let Some(c) = contact_id {
        q = q.filter(
            Condition::any()
                .add(contact_merges::Column::PrimaryId.eq(c))
                .add(contact_merges::Column::MergedId.eq(c)),
        );
    }
    Ok(q.order_by_desc(contact_merges::Column::CreatedAt)
        .order_by_desc(contact_merges::Column::Id)
        .limit(first)
        .all(db)
        .await?
        .into_iter()
        .map(Merge::from)
        .collect())
}
