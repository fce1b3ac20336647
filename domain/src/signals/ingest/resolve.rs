//! Identity resolution: the contact and account of each signal, found in what the batch
//! loaded or created in memory, and the auto-merge candidates its hints reveal.

use entity::{companies, contact_identities, contacts};
use sea_orm::{DatabaseTransaction, Set};
use serde_json::json;
use uuid::Uuid;

use super::batch::Writer;
use super::validate::{Hints, Prepared};
use crate::Result;
use crate::signals::identifiers::{self, confidence, kind};
use crate::signals::merges::{self, Candidate, Evidence, Sighting};

impl Writer {
    /// Finds or creates the contact and the account of one signal.
    pub(super) async fn resolve(
        &mut self,
        txn: &DatabaseTransaction,
        p: &Prepared,
    ) -> Result<(Option<Uuid>, Option<Uuid>)> {
        let h = &p.hints;
        let ids = h.identities();
        let mut contact = p.actor_id;
        if contact.is_none() {
            if let Some(e) = &h.email {
                contact = self.contacts_by_email.get(e).copied();
            }
            for (k, v, _) in &ids {
                if contact.is_some() {
                    break;
                }
                contact = self.identities.get(&(k.to_string(), v.clone())).copied();
            }
        }
        // The account: explicit, else the contact's, else from domain, email or GitHub org.
        let mut account = p.account_id;
        if account.is_none()
            && let Some(c) = contact
        {
            account = self.contact_account.get(&c).copied().flatten();
        }
        if account.is_none() {
            let domain = h.domain.clone().or_else(|| {
                h.email
                    .as_deref()
                    .and_then(identifiers::company_domain_of_email)
            });
            if let Some(d) = domain {
                account = Some(self.company_for_domain(&d, h));
            } else if let Some(g) = &h.github_org {
                account = Some(self.company_for_github_org(g, h));
            }
        }
        // A contact is created only from something that names a person (an email or a
        // handle), not from a bare user id of the sender's product.
        let nameable = ids.iter().any(|(k, _, _)| !kind::NOT_NAMEABLE.contains(k));
        // Past the plan's contact limit the signal is kept, attributed to its account only.
        if contact.is_none() && nameable && self.contact_room != Some(0) {
            contact = Some(self.create_contact(h, account));
            if let Some(r) = self.contact_room.as_mut() {
                *r -= 1;
            }
        }
        if let Some(c) = contact {
            self.note_other_owners(c, &ids);
            if let Some(a) = account
                && self.contact_account.get(&c).copied().flatten().is_none()
            {
                self.link_contact(c, a);
            }
            for (k, v, conf) in ids {
                let key = (k.to_owned(), v.clone());
                if self.identities.contains_key(&key) {
                    continue;
                }
                self.identities.insert(key, c);
                self.new_identities.push(contact_identities::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    organization_id: Set(self.org),
                    contact_id: Set(c),
                    kind: Set(k.to_owned()),
                    value: Set(v),
                    confidence: Set(conf),
                    verified: Set(conf >= confidence::VERIFIED),
                    provenance: Set(format!("signal:{}", p.source.kind.to_lowercase())),
                    created_at: Set(self.now),
                });
            }
            if let Some(t) = &p.contact_traits {
                self.apply_contact_traits(txn, c, t).await?;
            }
        }
        if let (Some(a), Some(t)) = (account, &p.account_traits) {
            self.apply_account_traits(txn, a, t).await?;
        }
        Ok((contact, account))
    }

    /// Auto-merge detection, from the batch's maps only: if the hints of a signal attributed
    /// to `c` name exactly one other contact, with a hint of confidence ≥ 0.8, that pair is merged
    /// at flush time. Several other contacts: nothing (left to `mergeSuggestions`).
    pub(super) fn note_other_owners(&mut self, c: Uuid, ids: &[(&'static str, String, f64)]) {
        let mut evidence: Vec<(Uuid, Evidence)> = Vec::new();
        for (k, v, conf) in ids {
            if kind::NOT_NAMEABLE.contains(k) {
                continue;
            }
            let mut owners: Vec<(Uuid, &str)> = Vec::new();
            if *k == kind::EMAIL
                && let Some(o) = self.contacts_by_email.get(v)
            {
                owners.push((*o, merges::source::FIELD));
            }
            if let Some(o) = self.identities.get(&(k.to_string(), v.clone())) {
                owners.push((*o, merges::source::IDENTITY));
            }
            for (o, source) in owners.into_iter().filter(|(o, _)| *o != c) {
                let seen = Sighting {
                    contact_id: o,
                    source: source.to_owned(),
                };
                match evidence
                    .iter_mut()
                    .find(|(x, e)| *x == o && e.kind == *k && e.value == *v)
                {
                    Some((_, e)) => e.seen_on.insert(0, seen),
                    None => evidence.push((
                        o,
                        Evidence {
                            kind: (*k).to_owned(),
                            value: v.clone(),
                            confidence: *conf,
                            seen_on: vec![
                                seen,
                                Sighting {
                                    contact_id: c,
                                    source: merges::source::SIGNAL.to_owned(),
                                },
                            ],
                        },
                    )),
                }
            }
        }
        let Some(other) = evidence.first().map(|(o, _)| *o) else {
            return;
        };
        if evidence.iter().any(|(o, _)| *o != other) {
            return;
        }
        let best = evidence
            .iter()
            .map(|(_, e)| e.confidence)
            .fold(0.0, f64::max);
        let known = self
            .merge_candidates
            .iter()
            .any(|m| (m.contact, m.other) == (c, other) || (m.contact, m.other) == (other, c));
        if best < confidence::AUTO_MERGE || known {
            return;
        }
        self.merge_candidates.push(Candidate {
            contact: c,
            other,
            confidence: best,
            evidence: evidence.into_iter().map(|(_, e)| e).collect(),
        });
    }

    /// Brings the batch's maps up to date after auto-merges.
    pub(super) fn apply_merges(&mut self, done: &merges::AutoMerged) {
        let to = |id: &mut Uuid| {
            if let Some(p) = done.merged_into.get(id) {
                *id = *p;
            }
        };
        self.identities.values_mut().for_each(to);
        self.contacts_by_email.values_mut().for_each(to);
        for dup in done.merged_into.keys() {
            self.contact_account.remove(dup);
        }
        for (p, a) in &done.primary_accounts {
            self.contact_account.insert(*p, *a);
        }
        self.touched_accounts.extend(done.accounts.iter().copied());
    }

    pub(super) fn company_for_domain(&mut self, domain: &str, h: &Hints) -> Uuid {
        if let Some(id) = self.companies_by_domain.get(domain) {
            return *id;
        }
        let name = h
            .company_name
            .clone()
            .unwrap_or_else(|| identifiers::name_from_domain(domain));
        let mut m = self.blank_company(name);
        m.domain = Some(domain.to_owned());
        m.domain_normalized = Some(domain.to_owned());
        m.website = Some(format!("https://{domain}"));
        m.github_org = h.github_org.clone();
        let id = m.id;
        self.tiers.insert(id, None);
        self.new_companies.push(m);
        self.companies_by_domain.insert(domain.to_owned(), id);
        if let Some(g) = &h.github_org {
            self.companies_by_ghorg.entry(g.clone()).or_insert(id);
        }
        id
    }

    pub(super) fn company_for_github_org(&mut self, github_org: &str, h: &Hints) -> Uuid {
        if let Some(id) = self.companies_by_ghorg.get(github_org) {
            return *id;
        }
        let mut m = self.blank_company(
            h.company_name
                .clone()
                .unwrap_or_else(|| github_org.to_owned()),
        );
        m.github_org = Some(github_org.to_owned());
        let id = m.id;
        self.tiers.insert(id, None);
        self.new_companies.push(m);
        self.companies_by_ghorg.insert(github_org.to_owned(), id);
        id
    }

    pub(super) fn blank_company(&self, name: String) -> companies::Model {
        companies::Model {
            id: Uuid::now_v7(),
            organization_id: self.org,
            name: name.chars().take(200).collect(),
            domain: None,
            domain_normalized: None,
            industry: None,
            size: None,
            website: None,
            github_org: None,
            city: None,
            country: None,
            description: None,
            custom_fields: json!({
                "enrichmentSource": "identity_resolution",
                "enrichedAt": self.now,
            }),
            tags: json!([]),
            score: None,
            created_at: self.now,
            updated_at: self.now,
        }
    }

    pub(super) fn create_contact(&mut self, h: &Hints, account: Option<Uuid>) -> Uuid {
        // Only a name the sender gave is a name: a GitHub login, npm user or handle is an
        // identity (kept in its own field), never a first name.
        let first = h.first_name.clone();
        let m = contacts::Model {
            id: Uuid::now_v7(),
            organization_id: self.org,
            account_id: account,
            first_name: first.map(|s| s.chars().take(100).collect()),
            last_name: h.last_name.clone().map(|s| s.chars().take(100).collect()),
            email: h.email.clone(),
            email_normalized: h.email.clone(),
            title: None,
            phone: None,
            github: h.github.clone(),
            twitter: h.twitter.clone(),
            linked_in: h.linkedin.clone(),
            city: None,
            country: None,
            notes: None,
            custom_fields: json!({"source": "identity_resolution"}),
            tags: json!([]),
            created_at: self.now,
            updated_at: self.now,
        };
        let id = m.id;
        self.new_contacts.push(m);
        if let Some(e) = &h.email {
            self.contacts_by_email.insert(e.clone(), id);
        }
        self.contact_account.insert(id, account);
        id
    }

    /// Links a contact without an account to `account`: a contact the batch creates gets it
    /// in its row, an existing one in one update per account at flush.
    pub(super) fn link_contact(&mut self, contact: Uuid, account: Uuid) {
        self.contact_account.insert(contact, Some(account));
        if let Some(m) = self.new_contacts.iter_mut().find(|m| m.id == contact) {
            m.account_id = Some(account);
            return;
        }
        self.links.entry(account).or_default().push(contact);
        self.events.push((
            "contact.updated",
            json!({"id": contact, "changes": {"accountId": {"from": null, "to": account}}}),
        ));
    }
}
