//! Writing a batch: each item deduplicated and recorded in memory, then every row, merge,
//! rescore request and event written in a few statements at flush.

use std::collections::HashMap;

use entity::{account_scores, companies, contact_identities, contacts, signals};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::batch::Writer;
use super::validate::Prepared;
use super::{AccountTraits, ContactTraits, Ingested};
use crate::signals::event_payload;
use crate::signals::merges::{self};
use crate::{Actor, Result, events, scoring};

impl Writer {
    /// Whether ingesting `p` would store a new signal (not a profile update, not a repeat).
    pub(super) fn stores(&self, p: &Prepared) -> bool {
        if p.profile_only {
            return false;
        }
        if p.idempotency_key
            .as_ref()
            .is_some_and(|k| self.by_idempotency.contains_key(k))
        {
            return false;
        }
        !(p.content_dedup
            && self
                .by_content
                .contains_key(&(p.dedupe_key.clone(), p.timestamp)))
    }

    pub(super) async fn ingest(
        &mut self,
        txn: &DatabaseTransaction,
        p: Prepared,
    ) -> Result<Ingested> {
        if p.profile_only {
            // Applying the same traits again changes nothing, so a repeated message needs no
            // deduplication.
            let (contact_id, account_id) = self.resolve(txn, &p).await?;
            return Ok(Ingested {
                signal: None,
                deduplicated: false,
                contact_id,
                account_id,
                dropped: None,
            });
        }
        if let Some(k) = &p.idempotency_key
            && let Some(s) = self.by_idempotency.get(k)
        {
            return Ok(Ingested::stored(s.clone(), true));
        }
        let content_key = p.content_dedup.then(|| (p.dedupe_key.clone(), p.timestamp));
        if let Some(s) = content_key.as_ref().and_then(|k| self.by_content.get(k)) {
            return Ok(Ingested::stored(s.clone(), true));
        }
        let (contact_id, account_id) = self.resolve(txn, &p).await?;
        let signal = signals::Model {
            id: Uuid::now_v7(),
            organization_id: self.org,
            source_id: p.source.id,
            signal_type: p.signal_type,
            contact_id,
            account_id,
            anonymous_id: p.anonymous_id,
            metadata: p.metadata,
            idempotency_key: p.idempotency_key,
            dedupe_key: p.dedupe_key,
            timestamp: p.timestamp,
            created_at: self.now,
        };
        if let Some(k) = &signal.idempotency_key {
            self.by_idempotency.insert(k.clone(), signal.clone());
        }
        if let Some(k) = content_key {
            self.by_content.insert(k, signal.clone());
        }
        self.touched_accounts.extend(account_id);
        if let Some(r) = self.signal_room.as_mut() {
            *r = r.saturating_sub(1);
        }
        self.new_signals.push(signal.clone());
        Ok(Ingested::stored(signal, false))
    }

    pub(super) async fn apply_contact_traits(
        &mut self,
        txn: &DatabaseTransaction,
        contact: Uuid,
        t: &ContactTraits,
    ) -> Result<()> {
        let cut = |s: &String, n: usize| -> String { s.trim().chars().take(n).collect() };
        let given: Vec<(contacts::Column, &str, String)> = [
            (contacts::Column::FirstName, "firstName", &t.first_name, 100),
            (contacts::Column::LastName, "lastName", &t.last_name, 100),
            (contacts::Column::Title, "title", &t.title, 200),
            (contacts::Column::Phone, "phone", &t.phone, 50),
            (contacts::Column::City, "city", &t.city, 100),
            (contacts::Column::Country, "country", &t.country, 100),
        ]
        .into_iter()
        .filter_map(|(col, name, v, n)| {
            v.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (col, name, cut(v, n)))
        })
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        if let Some(m) = self.new_contacts.iter_mut().find(|m| m.id == contact) {
            // Created by this batch: its `contact.created` will carry the traits.
            for (col, _, v) in given {
                let slot = match col {
                    contacts::Column::FirstName => &mut m.first_name,
                    contacts::Column::LastName => &mut m.last_name,
                    contacts::Column::Title => &mut m.title,
                    contacts::Column::Phone => &mut m.phone,
                    contacts::Column::City => &mut m.city,
                    _ => &mut m.country,
                };
                *slot = Some(v);
            }
        } else {
            let mut q = contacts::Entity::update_many();
            let mut changes = serde_json::Map::new();
            for (col, name, v) in given {
                changes.insert(name.into(), json!(v));
                q = q.col_expr(col, v.into());
            }
            q.col_expr(contacts::Column::UpdatedAt, self.now.into())
                .filter(contacts::Column::Id.eq(contact))
                .filter(contacts::Column::OrganizationId.eq(self.org))
                .exec(txn)
                .await?;
            self.events
                .push(("contact.updated", json!({"id": contact, "traits": changes})));
        }
        // A new title can change the account's seniority factor.
        self.touched_accounts
            .extend(self.contact_account.get(&contact).copied().flatten());
        Ok(())
    }

    pub(super) async fn apply_account_traits(
        &mut self,
        txn: &DatabaseTransaction,
        account: Uuid,
        t: &AccountTraits,
    ) -> Result<()> {
        let cut = |s: &String, n: usize| -> String { s.trim().chars().take(n).collect() };
        let given: Vec<(companies::Column, &str, String)> = [
            (companies::Column::Name, "name", &t.name, 200),
            (companies::Column::Industry, "industry", &t.industry, 100),
            (companies::Column::Size, "size", &t.size, 20),
            (companies::Column::Website, "website", &t.website, 500),
        ]
        .into_iter()
        .filter_map(|(col, name, v, n)| {
            v.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (col, name, cut(v, n)))
        })
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        if let Some(m) = self.new_companies.iter_mut().find(|m| m.id == account) {
            for (col, _, v) in given {
                match col {
                    companies::Column::Name => m.name = v,
                    companies::Column::Industry => m.industry = Some(v),
                    companies::Column::Size => m.size = Some(v),
                    _ => m.website = Some(v),
                }
            }
        } else {
            let mut q = companies::Entity::update_many();
            let mut changes = serde_json::Map::new();
            for (col, name, v) in given {
                changes.insert(name.into(), json!(v));
                q = q.col_expr(col, v.into());
            }
            q.col_expr(companies::Column::UpdatedAt, self.now.into())
                .filter(companies::Column::Id.eq(account))
                .filter(companies::Column::OrganizationId.eq(self.org))
                .exec(txn)
                .await?;
            self.events
                .push(("company.updated", json!({"id": account, "traits": changes})));
        }
        self.touched_accounts.insert(account);
        Ok(())
    }

    /// Writes what the batch collected, a few statements per kind of row: accounts and contacts
    /// it created, links, identities, signals, auto-merges, the rescore requests, and last (so
    /// the events' ordering lock is held only to the commit) every event in one append.
    /// Returns merged contact → its primary.
    pub(super) async fn flush(
        &mut self,
        txn: &DatabaseTransaction,
        actor: &Actor,
    ) -> Result<HashMap<Uuid, Uuid>> {
        let mut events: Vec<(&str, Value)> = Vec::new();
        let companies = std::mem::take(&mut self.new_companies);
        for chunk in companies.chunks(crate::db::rows_per_insert::<companies::Entity>()) {
            companies::Entity::insert_many(chunk.iter().cloned().map(companies::ActiveModel::from))
                .exec_without_returning(txn)
                .await?;
        }
        events.extend(
            companies
                .iter()
                .map(|m| ("company.created", crate::crm::accounts::snapshot(m))),
        );
        let contacts = std::mem::take(&mut self.new_contacts);
        for chunk in contacts.chunks(crate::db::rows_per_insert::<contacts::Entity>()) {
            contacts::Entity::insert_many(chunk.iter().cloned().map(contacts::ActiveModel::from))
                .exec_without_returning(txn)
                .await?;
        }
        events.extend(
            contacts
                .iter()
                .map(|m| ("contact.created", crate::crm::contacts::snapshot(m))),
        );
        for (account, ids) in std::mem::take(&mut self.links) {
            contacts::Entity::update_many()
                .col_expr(contacts::Column::AccountId, account.into())
                .col_expr(contacts::Column::UpdatedAt, self.now.into())
                .filter(contacts::Column::OrganizationId.eq(self.org))
                .filter(contacts::Column::Id.is_in(ids))
                .exec(txn)
                .await?;
        }
        events.append(&mut self.events);
        // From here on, what needs no answer goes in one statement on PostgreSQL: the
        // identities and signals (sent before a merge, which moves them), the rescore requests
        // and their job, the month's count and the events.
        let mut carried = crate::db::Carried::new(txn);
        let identities = std::mem::take(&mut self.new_identities);
        for chunk in identities.chunks(crate::db::rows_per_insert::<contact_identities::Entity>()) {
            let insert = contact_identities::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        contact_identities::Column::OrganizationId,
                        contact_identities::Column::Kind,
                        contact_identities::Column::Value,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .into_query();
            carried
                .push::<contact_identities::Entity>(txn, insert, chunk.len(), None)
                .await?;
        }
        let mut signals = std::mem::take(&mut self.new_signals);
        for chunk in signals.chunks(crate::db::rows_per_insert::<signals::Entity>()) {
            let insert =
                signals::Entity::insert_many(chunk.iter().cloned().map(signals::ActiveModel::from))
                    .into_query();
            carried
                .push::<signals::Entity>(txn, insert, chunk.len(), None)
                .await?;
        }
        let candidates = std::mem::take(&mut self.merge_candidates);
        if !candidates.is_empty() {
            carried.flush(txn).await?;
        }
        let done = merges::auto_merge(txn, actor, candidates).await?;
        self.apply_merges(&done);
        for s in &mut signals {
            if let Some(p) = s.contact_id.and_then(|c| done.merged_into.get(&c)) {
                s.contact_id = Some(*p);
            }
        }
        let accounts: Vec<Uuid> = self.touched_accounts.iter().copied().collect();
        // The tiers came with the lookups that found the accounts, and an account the batch
        // created has none: only an account named otherwise (by id, or by a merge) is read here.
        let unknown: Vec<Uuid> = if signals.is_empty() {
            Vec::new()
        } else {
            accounts
                .iter()
                .filter(|a| !self.tiers.contains_key(a))
                .copied()
                .collect()
        };
        if !unknown.is_empty() {
            self.tiers.extend(
                account_scores::Entity::find()
                    .select_only()
                    .column(account_scores::Column::AccountId)
                    .column(account_scores::Column::Tier)
                    .filter(account_scores::Column::OrganizationId.eq(self.org))
                    .filter(account_scores::Column::AccountId.is_in(unknown))
                    .into_tuple::<(Uuid, String)>()
                    .all(txn)
                    .await?
                    .into_iter()
                    .map(|(a, t)| (a, Some(t))),
            );
        }
        let tiers = &self.tiers;
        events.extend(signals.iter().map(|s| {
            let tier = s.account_id.and_then(|a| tiers.get(&a).cloned().flatten());
            (
                events::EventType::SignalCreated.as_str(),
                event_payload(s, tier.as_deref()),
            )
        }));
        scoring::request_rescore_carried(txn, self.org, &accounts, &mut carried).await?;
        // Counted last, so the month's counter row is held only to the commit.
        if let Some(st) = &self.limits
            && !contacts.is_empty()
        {
            let before = self.contacts_before;
            crate::billing::usage::warn(
                txn,
                self.org,
                st,
                crate::billing::Metric::Contacts,
                before,
                before + contacts.len() as u64,
            )
            .await?;
        }
        crate::billing::usage::count_signals(
            txn,
            self.org,
            self.limits.as_ref(),
            signals.len() as u64,
            self.now,
            &mut carried,
        )
        .await?;
        events::append_carried(txn, self.org, Some(actor), events, &mut carried).await?;
        carried.send(txn).await?;
        Ok(done.merged_into)
    }
}
