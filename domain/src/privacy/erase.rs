//! `eraseContact`: the person removed from every table that held them, in one transaction.
//!
//! What each table keeps afterwards:
//! - `contacts`, `contact_identities`, their `enrichments` record, `external_ids` mappings,
//!   `enrichment_cache` answers looked up by their identifiers, `contact_merges` they were part
//!   of, activities linked to them, AI briefs that mention them and connectors' cached answers
//!   about them (`integration_cursors`): deleted (the search index
//!   follows its tables; on SQLite its segments are merged so no deleted text lingers).
//! - `signals`: kept for the account's score, without `contact_id`, `anonymous_id` or the
//!   sender's key, with personal metadata dropped and a dedupe key that no longer names them.
//! - `deals`: unlinked from them; every other text or JSON column that may quote them —
//!   events, notifications, alert deliveries, webhook deliveries and attempts, audit entries,
//!   jobs, integration runs, deals, activities, accounts, other contacts' notes, merges — has
//!   their identifiers replaced, and objects about them (carrying their id) lose personal keys.
//! - `erasure_tombstones`: a hash per identifier, so no ingest, import or sync re-creates them.
//!
//! The account is rescored; the audit entry names the contact id and counts only.

use std::collections::BTreeSet;

use entity::{
    account_briefs, activities, alert_deliveries, audit_logs, companies, contact_identities,
    contact_merges, contacts, deals, enrichment_cache, enrichments, events, external_ids,
    integration_cursors, integration_runs, integrations, jobs, notifications, signals,
    webhook_attempts, webhook_cursor, webhook_deliveries,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    EntityTrait, IntoActiveModel, QueryFilter, Statement,
};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::redact;
use super::tombstones;
use crate::audit::{self, Entry, Meta};
use crate::signals::identifiers::kind;
use crate::{Actor, Error, Result, Role, events as log, scoring};

/// The audit action of an erasure.
pub const ERASED_ACTION: &str = "contact.erased";

/// What an erasure removed or changed (counts only).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub contact_id: Uuid,
    pub identities: u64,
    pub signals_anonymised: u64,
    pub activities_deleted: u64,
    pub deals_unlinked: u64,
    pub merges_deleted: u64,
    pub rows_redacted: u64,
    pub tombstones: u64,
}

/// ADMIN (an API key needs `admin`).
pub(super) fn admin(actor: &Actor) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")
}

/// Everything that identifies the person: the tombstone identifiers and the text needles.
pub(super) struct Person {
    pub contact: contacts::Model,
    pub identities: Vec<contact_identities::Model>,
    /// The contact's id and those of duplicates merged into it (their old rows and events
    /// describe the same person).
    pub ids: Vec<String>,
    /// The rows of duplicates merged into it, as the merge recorded them (their emails and
    /// handles are the person's too).
    pub duplicates: Vec<Value>,
}

impl Person {
    pub(super) async fn load(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<Self> {
        let contact = contacts::Entity::find_by_id(id)
            .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
            .one(db)
            .await?
            .ok_or(Error::NotFound { entity: "Contact" })?;
        let identities = contact_identities::Entity::find()
            .filter(contact_identities::Column::OrganizationId.eq(actor.organization_id))
            .filter(contact_identities::Column::ContactId.eq(id))
            .all(db)
            .await?;
        let merges = contact_merges::Entity::find()
            .filter(contact_merges::Column::OrganizationId.eq(actor.organization_id))
            .filter(contact_merges::Column::PrimaryId.eq(id))
            .all(db)
            .await?;
        let ids = std::iter::once(id)
            .chain(merges.iter().map(|m| m.merged_id))
            .map(|i| i.to_string())
            .collect();
        let duplicates = merges
            .into_iter()
            .filter_map(|m| m.undo.get("duplicate").cloned())
            .collect();
        Ok(Person {
            contact,
            identities,
            ids,
            duplicates,
        })
    }

    /// (kind, value) of every identifier to tombstone.
    fn identifiers(&self) -> BTreeSet<(String, String)> {
        let c = &self.contact;
        let mut out = BTreeSet::new();
        for (k, v) in [
            (kind::EMAIL, &c.email_normalized),
            (kind::GITHUB, &c.github),
            (kind::TWITTER, &c.twitter),
            (kind::LINKEDIN, &c.linked_in),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                out.insert((k.to_owned(), tombstones::normalise(v)));
            }
        }
        for i in &self.identities {
            out.insert((i.kind.clone(), tombstones::normalise(&i.value)));
        }
        for d in &self.duplicates {
            for (k, field) in [
                (kind::EMAIL, "email"),
                (kind::GITHUB, "github"),
                (kind::TWITTER, "twitter"),
                (kind::LINKEDIN, "linkedIn"),
            ] {
                if let Some(v) = d
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|v| !v.trim().is_empty())
                {
                    out.insert((k.to_owned(), tombstones::normalise(v)));
                }
            }
        }
        out
    }

    /// The values to erase from text: emails, the full name (a single name part only when it
    /// is the whole name: a shared surname must not be erased from other people), handles,
    /// phone, identity values.
    pub(super) fn needles(&self) -> Vec<String> {
        let c = &self.contact;
        let mut v: Vec<String> = Vec::new();
        let full = [c.first_name.as_deref(), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        v.push(full);
        for x in [
            &c.email,
            &c.email_normalized,
            &c.github,
            &c.twitter,
            &c.linked_in,
            &c.phone,
        ]
        .into_iter()
        .flatten()
        {
            v.push(x.clone());
            v.push(x.trim_start_matches('@').to_owned());
        }
        for i in &self.identities {
            v.push(i.value.clone());
        }
        for d in &self.duplicates {
            let text = |f: &str| d.get(f).and_then(Value::as_str).map(str::to_owned);
            let name = [text("firstName"), text("lastName")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            v.push(name);
            for f in ["email", "github", "twitter", "linkedIn", "phone"] {
                if let Some(x) = text(f) {
                    v.push(x.trim_start_matches('@').to_owned());
                    v.push(x);
                }
            }
        }
        redact::needles(v)
    }
}

/// Walks `v`: an object that carries the person's id (`id`, `contactId`, `actorId`,
/// `primaryId`, `mergedId`) is about them and loses its personal keys; every string loses the
/// needles.
pub(super) fn scrub(v: &mut Value, needles: &[String], ids: &[String]) -> bool {
    let mut changed = false;
    match v {
        Value::Object(o) => {
            let about = [
                "id",
                "contactId",
                "contact_id",
                "actorId",
                "primaryId",
                "mergedId",
            ]
            .iter()
            .any(|k| {
                o.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|v| ids.iter().any(|i| i == v))
            });
            if about {
                for extra in [
                    "notes",
                    "city",
                    "country",
                    "customFields",
                    "custom_fields",
                    "anonymousId",
                ] {
                    if o.get(extra).is_some_and(|x| !x.is_null()) {
                        o.insert(extra.to_owned(), Value::Null);
                        changed = true;
                    }
                }
                let mut shallow = Value::Object(std::mem::take(o));
                changed |= redact::json(&mut shallow, needles, true);
                if let Value::Object(back) = shallow {
                    *o = back;
                }
            }
            for x in o.values_mut() {
                changed |= scrub(x, needles, ids);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                changed |= scrub(x, needles, ids);
            }
        }
        Value::String(_) => changed |= redact::json(v, needles, false),
        _ => {}
    }
    changed
}

fn scrub_text(s: &mut Option<String>, needles: &[String]) -> bool {
    match s.as_deref().and_then(|t| redact::text(t, needles)) {
        Some(t) => {
            *s = Some(t);
            true
        }
        None => false,
    }
}

fn scrub_string(s: &mut String, needles: &[String]) -> bool {
    match redact::text(s, needles) {
        Some(t) => {
            *s = t;
            true
        }
        None => false,
    }
}

/// Connectors' cached answers (`integration_cursors` of the organization's integrations) that
/// name the person, as a whole word, in their resource (`user:<login>`) or their state.
pub(super) async fn cached_about(
    db: &impl ConnectionTrait,
    org: Uuid,
    needles: &[String],
) -> Result<Vec<integration_cursors::Model>> {
    if needles.is_empty() {
        return Ok(Vec::new());
    }
    let candidates = integration_cursors::Entity::find()
        .filter(
            Expr::col(integration_cursors::Column::IntegrationId).in_subquery(
                Query::select()
                    .column(integrations::Column::Id)
                    .from(integrations::Entity)
                    .and_where(integrations::Column::OrganizationId.eq(org))
                    .to_owned(),
            ),
        )
        .filter(redact::mentions(
            &[
                integration_cursors::Column::Resource,
                integration_cursors::Column::State,
            ],
            needles,
        ))
        .all(db)
        .await?;
    Ok(candidates
        .into_iter()
        .filter(|c| {
            redact::text(&c.resource, needles).is_some()
                || redact::text(&c.state.to_string(), needles).is_some()
        })
        .collect())
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Erases the contact (ADMIN; an API key needs `admin`). `NOT_FOUND` for an id that is not one
/// of the organization's contacts. One transaction: all of it or nothing.
pub async fn erase_contact(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
) -> Result<Erasure> {
    admin(actor)?;
    let org = actor.organization_id;
    let txn = crate::db::begin(db).await?;
    // The event-log consumers (alert evaluation, then webhook dispatch) copy payloads into
    // notifications and deliveries under their cursor rows' locks: holding both, in their
    // order, means none of them is copying an event this erasure has not yet redacted.
    for cursor in [crate::alerts::CURSOR, crate::webhooks::CURSOR] {
        webhook_cursor::Entity::update_many()
            .col_expr(
                webhook_cursor::Column::UpdatedAt,
                Expr::value(chrono::Utc::now()),
            )
            .filter(webhook_cursor::Column::Name.eq(cursor))
            .exec(&txn)
            .await?;
    }
    let person = Person::load(&txn, actor, id).await?;
    let needles = person.needles();
    let ids = person.ids.clone();
    let mut find = needles.clone();
    find.extend(ids.iter().cloned());
    let mut out = Erasure {
        contact_id: id,
        identities: person.identities.len() as u64,
        ..Default::default()
    };

    // Their signals: kept, anonymous.
    let mut accounts: BTreeSet<Uuid> = person.contact.account_id.into_iter().collect();
    for mut s in signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(org))
        .filter(signals::Column::ContactId.eq(id))
        .all(&txn)
        .await?
    {
        accounts.extend(s.account_id);
        s.contact_id = None;
        s.anonymous_id = None;
        s.idempotency_key = None;
        s.dedupe_key = format!("erased:{}", sha(&s.dedupe_key));
        redact::json(&mut s.metadata, &needles, true);
        s.into_active_model().reset_all().update(&txn).await?;
        out.signals_anonymised += 1;
    }
    // Other signals that quote them.
    out.rows_redacted += redact::sweep::<signals::Entity, _>(
        &txn,
        Condition::all().add(signals::Column::OrganizationId.eq(org)),
        &[
            signals::Column::Metadata,
            signals::Column::IdempotencyKey,
            signals::Column::AnonymousId,
        ],
        &needles,
        |s| {
            let mut c = redact::json(&mut s.metadata, &needles, false);
            if s.idempotency_key
                .as_deref()
                .is_some_and(|k| redact::text(k, &needles).is_some())
            {
                s.idempotency_key = None;
                c = true;
            }
            if s.anonymous_id
                .as_deref()
                .is_some_and(|k| redact::text(k, &needles).is_some())
            {
                s.anonymous_id = None;
                c = true;
            }
            c
        },
    )
    .await?;

    // Activities about them go; others lose the mentions.
    out.activities_deleted = activities::Entity::delete_many()
        .filter(activities::Column::OrganizationId.eq(org))
        .filter(activities::Column::ContactId.eq(id))
        .exec(&txn)
        .await?
        .rows_affected;
    out.rows_redacted += redact::sweep::<activities::Entity, _>(
        &txn,
        Condition::all().add(activities::Column::OrganizationId.eq(org)),
        &[
            activities::Column::Title,
            activities::Column::Description,
            activities::Column::CustomFields,
        ],
        &needles,
        |a| {
            scrub_string(&mut a.title, &needles)
                | scrub_text(&mut a.description, &needles)
                | redact::json(&mut a.custom_fields, &needles, false)
        },
    )
    .await?;

    // Deals stay, unlinked and without mentions.
    out.deals_unlinked = deals::Entity::update_many()
        .col_expr(deals::Column::ContactId, Expr::value(Option::<Uuid>::None))
        .filter(deals::Column::OrganizationId.eq(org))
        .filter(deals::Column::ContactId.eq(id))
        .exec(&txn)
        .await?
        .rows_affected;
    out.rows_redacted += redact::sweep::<deals::Entity, _>(
        &txn,
        Condition::all().add(deals::Column::OrganizationId.eq(org)),
        &[
            deals::Column::Title,
            deals::Column::Description,
            deals::Column::CustomFields,
        ],
        &needles,
        |d| {
            scrub_string(&mut d.title, &needles)
                | scrub_text(&mut d.description, &needles)
                | redact::json(&mut d.custom_fields, &needles, false)
        },
    )
    .await?;
    out.rows_redacted += redact::sweep::<companies::Entity, _>(
        &txn,
        Condition::all().add(companies::Column::OrganizationId.eq(org)),
        &[
            companies::Column::Description,
            companies::Column::CustomFields,
        ],
        &needles,
        |c| {
            scrub_text(&mut c.description, &needles)
                | redact::json(&mut c.custom_fields, &needles, false)
        },
    )
    .await?;
    out.rows_redacted += redact::sweep::<contacts::Entity, _>(
        &txn,
        Condition::all()
            .add(contacts::Column::OrganizationId.eq(org))
            .add(contacts::Column::Id.ne(id)),
        &[contacts::Column::Notes, contacts::Column::CustomFields],
        &needles,
        |c| {
            scrub_text(&mut c.notes, &needles) | redact::json(&mut c.custom_fields, &needles, false)
        },
    )
    .await?;

    // Merge history they were part of goes; other records lose mentions.
    out.merges_deleted = contact_merges::Entity::delete_many()
        .filter(contact_merges::Column::OrganizationId.eq(org))
        .filter(
            Condition::any()
                .add(contact_merges::Column::PrimaryId.eq(id))
                .add(contact_merges::Column::MergedId.eq(id)),
        )
        .exec(&txn)
        .await?
        .rows_affected;
    out.rows_redacted += redact::sweep::<contact_merges::Entity, _>(
        &txn,
        Condition::all().add(contact_merges::Column::OrganizationId.eq(org)),
        &[
            contact_merges::Column::Undo,
            contact_merges::Column::Evidence,
        ],
        &find,
        |m| scrub(&mut m.undo, &needles, &ids) | scrub(&mut m.evidence, &needles, &ids),
    )
    .await?;

    // The event log, notifications, deliveries, jobs, runs.
    out.rows_redacted += redact::sweep::<events::Entity, _>(
        &txn,
        Condition::all().add(events::Column::OrganizationId.eq(org)),
        &[events::Column::Payload],
        &find,
        |e| scrub(&mut e.payload, &needles, &ids),
    )
    .await?;
    out.rows_redacted += redact::sweep::<notifications::Entity, _>(
        &txn,
        Condition::all().add(notifications::Column::OrganizationId.eq(org)),
        &[
            notifications::Column::Title,
            notifications::Column::Body,
            notifications::Column::Data,
        ],
        &find,
        |n| {
            scrub_string(&mut n.title, &needles)
                | scrub_string(&mut n.body, &needles)
                | scrub(&mut n.data, &needles, &ids)
        },
    )
    .await?;
    out.rows_redacted += redact::sweep::<alert_deliveries::Entity, _>(
        &txn,
        Condition::all().add(alert_deliveries::Column::OrganizationId.eq(org)),
        &[alert_deliveries::Column::Content],
        &find,
        |d| scrub(&mut d.content, &needles, &ids),
    )
    .await?;
    out.rows_redacted += redact::sweep::<webhook_deliveries::Entity, _>(
        &txn,
        Condition::all().add(webhook_deliveries::Column::OrganizationId.eq(org)),
        &[webhook_deliveries::Column::Body],
        &find,
        |d| scrub(&mut d.body, &needles, &ids),
    )
    .await?;
    out.rows_redacted += redact::sweep::<webhook_attempts::Entity, _>(
        &txn,
        Condition::all().add(
            Expr::col(webhook_attempts::Column::DeliveryId).in_subquery(
                Query::select()
                    .column(webhook_deliveries::Column::Id)
                    .from(webhook_deliveries::Entity)
                    .and_where(webhook_deliveries::Column::OrganizationId.eq(org))
                    .to_owned(),
            ),
        ),
        &[
            webhook_attempts::Column::ResponseBody,
            webhook_attempts::Column::Error,
        ],
        &needles,
        |a| scrub_text(&mut a.response_body, &needles) | scrub_text(&mut a.error, &needles),
    )
    .await?;
    out.rows_redacted += redact::sweep::<jobs::Entity, _>(
        &txn,
        Condition::all().add(jobs::Column::OrganizationId.eq(org)),
        &[jobs::Column::Payload, jobs::Column::LastError],
        &needles,
        |j| scrub(&mut j.payload, &needles, &ids) | scrub_text(&mut j.last_error, &needles),
    )
    .await?;
    out.rows_redacted += redact::sweep::<integration_runs::Entity, _>(
        &txn,
        Condition::all().add(integration_runs::Column::OrganizationId.eq(org)),
        &[
            integration_runs::Column::Errors,
            integration_runs::Column::Error,
        ],
        &needles,
        |r| {
            let mut c = scrub_text(&mut r.error, &needles);
            if let Some(e) = r.errors.as_mut() {
                c |= scrub(e, &needles, &ids);
            }
            c
        },
    )
    .await?;
    // Audit entries about them lose their before/after; others lose mentions.
    let about: Vec<audit_logs::Model> = audit_logs::Entity::find()
        .filter(audit_logs::Column::OrganizationId.eq(org))
        .filter(audit_logs::Column::TargetId.is_in(ids.clone()))
        .filter(audit_logs::Column::Metadata.is_not_null())
        .all(&txn)
        .await?;
    for mut a in about {
        a.metadata = Some(json!({ "erased": true }));
        a.into_active_model().reset_all().update(&txn).await?;
        out.rows_redacted += 1;
    }
    out.rows_redacted += redact::sweep::<audit_logs::Entity, _>(
        &txn,
        Condition::all().add(audit_logs::Column::OrganizationId.eq(org)),
        &[audit_logs::Column::Metadata],
        &find,
        |a| {
            a.metadata
                .as_mut()
                .is_some_and(|m| scrub(m, &needles, &ids))
        },
    )
    .await?;
    // AI briefs that mention them are dropped (the next one is written without them).
    let briefs: Vec<Uuid> = account_briefs::Entity::find()
        .filter(account_briefs::Column::OrganizationId.eq(org))
        .filter(redact::mentions(
            &[
                account_briefs::Column::Statements,
                account_briefs::Column::Actions,
            ],
            &find,
        ))
        .all(&txn)
        .await?
        .into_iter()
        .map(|b| b.id)
        .collect();
    if !briefs.is_empty() {
        out.rows_redacted += account_briefs::Entity::delete_many()
            .filter(account_briefs::Column::Id.is_in(briefs))
            .exec(&txn)
            .await?
            .rows_affected;
    }
    // Enrichment's record and cache, CRM mappings.
    enrichments::Entity::delete_many()
        .filter(enrichments::Column::OrganizationId.eq(org))
        .filter(enrichments::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    enrichment_cache::Entity::delete_many()
        .filter(enrichment_cache::Column::OrganizationId.eq(org))
        .filter(redact::mentions(
            &[
                enrichment_cache::Column::Lookup,
                enrichment_cache::Column::Data,
            ],
            &needles,
        ))
        .exec(&txn)
        .await?;
    external_ids::Entity::delete_many()
        .filter(external_ids::Column::OrganizationId.eq(org))
        .filter(external_ids::Column::LocalId.eq(id))
        .exec(&txn)
        .await?;
    // Connectors' cached answers about them (a GitHub profile, a Stack Overflow user): a cache,
    // so deleted; a later run that meets them again is stopped by the tombstones.
    for c in cached_about(&txn, org, &needles).await? {
        out.rows_redacted += integration_cursors::Entity::delete_many()
            .filter(integration_cursors::Column::IntegrationId.eq(c.integration_id))
            .filter(integration_cursors::Column::Resource.eq(c.resource))
            .exec(&txn)
            .await?
            .rows_affected;
    }

    // The person.
    let identifiers = person.identifiers();
    contact_identities::Entity::delete_many()
        .filter(contact_identities::Column::OrganizationId.eq(org))
        .filter(contact_identities::Column::ContactId.eq(id))
        .exec(&txn)
        .await?;
    contacts::Entity::delete_by_id(id).exec(&txn).await?;
    out.tombstones = tombstones::record(&txn, org, &identifiers).await?;

    let accounts: Vec<Uuid> = accounts.into_iter().collect();
    scoring::request_rescore(&txn, org, &accounts).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, ERASED_ACTION)
            .target("contact", id)
            .metadata(serde_json::to_value(&out).unwrap_or(Value::Null)),
    )
    .await?;
    log::append(
        &txn,
        org,
        Some(actor),
        "contact.deleted",
        json!({ "id": id }),
    )
    .await?;
    if txn.get_database_backend() == DbBackend::Sqlite {
        // Merge the full-text index's segments, so the deleted rows' terms are gone, not only
        // marked deleted.
        txn.execute_raw(Statement::from_string(
            DbBackend::Sqlite,
            "INSERT INTO crm_search(crm_search) VALUES('optimize')",
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(out)
}
