//! One batch of an import against the database: [`plan`] reads what the batch's rows name
//! (existing contacts by email, accounts by domain or name, deals by record id or by title and
//! account, in a few `IN` statements), checks each row with the CRM's own validation (a new
//! row as a create checks it, a known one as an update does) and decides what each row
//! becomes; it writes nothing, so the dry run uses it alone. [`apply`] writes a plan inside
//! the batch's transaction: multi-row inserts, one update per changed row, the `*.created` /
//! `*.updated` events in one append, rescore requests for scored accounts whose inputs moved.
//!
//! Rows that fail validation are left out of the plan (and reported) before anything is
//! written; the rows that pass are written together or, if a statement fails, not at all.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use entity::{companies, contacts, deals, import_keys};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::csvfile::Row;
use super::imports::RowError;
use super::rows::{AccountRef, Item};
use crate::crm::{self, accounts, deals as crm_deals};
use crate::{Actor, FieldError, Result, events};

/// Who writes and how.
pub struct Ctx<'a> {
    pub organization_id: Uuid,
    /// The importing actor, recorded on the events.
    pub actor: Option<&'a Actor>,
    /// A new deal's owner when the file names none (the importing user).
    pub owner: Option<Uuid>,
}

/// What a batch did (or, in a dry run, would do).
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub errors: Vec<RowError>,
}

impl Outcome {
    fn fail(&mut self, row: &Row, errors: Vec<FieldError>) {
        self.failed += 1;
        self.errors.extend(errors.into_iter().map(|e| RowError {
            row: row.number,
            line: Some(row.line),
            field: e.field,
            message: e.message,
        }));
    }
}

/// What a batch will write.
#[derive(Default)]
pub struct Plan {
    pub outcome: Outcome,
    new_accounts: Vec<companies::Model>,
    changed_accounts: Vec<(companies::Model, companies::Model)>,
    new_contacts: Vec<contacts::Model>,
    changed_contacts: Vec<(contacts::Model, contacts::Model)>,
    new_deals: Vec<deals::Model>,
    changed_deals: Vec<(deals::Model, deals::Model)>,
    new_keys: Vec<(String, Uuid)>,
}

fn changed(old: &Value, new: &Value) -> bool {
    crm::diff(old, new)
        .as_object()
        .is_some_and(|c| !c.is_empty())
}

/// The organization's accounts a batch names, by normalised domain and lower-cased name (the
/// accounts the batch creates join them as it goes).
#[derive(Default)]
struct Accounts {
    by_domain: HashMap<String, (Uuid, bool)>,
    by_name: HashMap<String, (Uuid, bool)>,
}

async fn load_accounts(
    db: &impl ConnectionTrait,
    org: Uuid,
    domains: Vec<String>,
    names: Vec<String>,
) -> Result<(Accounts, Vec<companies::Model>)> {
    let mut out = Accounts::default();
    if domains.is_empty() && names.is_empty() {
        return Ok((out, Vec::new()));
    }
    let rows = companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(org))
        .filter(
            Condition::any()
                .add(companies::Column::DomainNormalized.is_in(domains))
                .add(Expr::expr(Func::lower(Expr::col(companies::Column::Name))).is_in(names)),
        )
        .order_by_asc(companies::Column::Id)
        .all(db)
        .await?;
    for a in &rows {
        if let Some(d) = &a.domain_normalized {
            out.by_domain.entry(d.clone()).or_insert((a.id, false));
        }
        out.by_name
            .entry(a.name.to_lowercase())
            .or_insert((a.id, false));
    }
    Ok((out, rows))
}

impl Plan {
    /// The account a contact or deal row names: found by domain, else by name, else created
    /// (named by the row's company name, or its domain). Errors name the row's columns'
    /// fields (`accountName`, `accountDomain`).
    fn account_for(
        &mut self,
        accts: &mut Accounts,
        org: Uuid,
        r: &AccountRef,
    ) -> std::result::Result<Option<Uuid>, Vec<FieldError>> {
        if r.is_empty() {
            return Ok(None);
        }
        if let Some(d) = &r.domain
            && let Some((id, _)) = accts.by_domain.get(d)
        {
            return Ok(Some(*id));
        }
        if let Some(n) = &r.name
            && let Some((id, _)) = accts.by_name.get(&n.to_lowercase())
        {
            return Ok(Some(*id));
        }
        let input = accounts::CreateInput {
            name: r
                .name
                .clone()
                .or_else(|| r.domain.clone())
                .unwrap_or_default(),
            domain: r.domain.clone(),
            ..Default::default()
        };
        let m = accounts::validate_new(org, input).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let field = if e.field == "domain" {
                        "accountDomain"
                    } else {
                        "accountName"
                    };
                    FieldError::new(field, e.message)
                })
                .collect::<Vec<_>>()
        })?;
        if let Some(d) = &m.domain_normalized {
            accts.by_domain.insert(d.clone(), (m.id, true));
        }
        accts.by_name.insert(m.name.to_lowercase(), (m.id, true));
        let id = m.id;
        self.new_accounts.push(m);
        Ok(Some(id))
    }
}

fn refs_of(
    items: &[(Row, std::result::Result<Item, Vec<FieldError>>)],
) -> (Vec<String>, Vec<String>) {
    let mut domains = HashSet::new();
    let mut names = HashSet::new();
    for (_, item) in items {
        let r = match item {
            Ok(Item::Contact { account, .. }) | Ok(Item::Deal { account, .. }) => account,
            _ => continue,
        };
        if let Some(d) = &r.domain {
            domains.insert(d.clone());
        }
        if let Some(n) = &r.name {
            names.insert(n.to_lowercase());
        }
    }
    (domains.into_iter().collect(), names.into_iter().collect())
}

/// Decides what each row of a batch becomes. `seen` (dry runs) holds the keys of earlier
/// batches, which a real run would have written by now: a row naming one would update it.
pub async fn plan(
    db: &impl ConnectionTrait,
    cx: &Ctx<'_>,
    items: Vec<(Row, std::result::Result<Item, Vec<FieldError>>)>,
    mut seen: Option<&mut HashSet<String>>,
) -> Result<Plan> {
    let org = cx.organization_id;
    let mut plan = Plan::default();
    let (domains, names) = refs_of(&items);
    let (mut accts, _) = load_accounts(db, org, domains, names).await?;
    let mut was_seen = |key: &str| {
        seen.as_deref_mut()
            .is_some_and(|s| !s.insert(key.to_owned()))
    };
    let kind = items
        .iter()
        .find_map(|(_, i)| i.as_ref().ok())
        .map(|i| match i {
            Item::Contact { .. } => 0,
            Item::Account { .. } => 1,
            Item::Deal { .. } => 2,
        });
    match kind {
        None => {}
        Some(0) => {
            let emails: Vec<String> = items
                .iter()
                .filter_map(|(_, i)| match i {
                    Ok(Item::Contact { email, .. }) => Some(email.clone()),
                    _ => None,
                })
                .collect();
            let mut current: HashMap<String, (Option<contacts::Model>, contacts::Model)> =
                contacts::Entity::find()
                    .filter(contacts::Column::OrganizationId.eq(org))
                    .filter(contacts::Column::EmailNormalized.is_in(emails))
                    .all(db)
                    .await?
                    .into_iter()
                    .filter_map(|c| Some((c.email_normalized.clone()?, (Some(c.clone()), c))))
                    .collect();
            for (row, item) in items {
                let (mut input, email, account) = match item {
                    Ok(Item::Contact {
                        input,
                        email,
                        account,
                    }) => (input, email, account),
                    Ok(_) => continue,
                    Err(e) => {
                        plan.outcome.fail(&row, e);
                        continue;
                    }
                };
                match plan.account_for(&mut accts, org, &account) {
                    Ok(Some(id)) => input.account_id = Some(Some(id)),
                    Ok(None) => {}
                    Err(e) => {
                        plan.outcome.fail(&row, e);
                        continue;
                    }
                }
                if let Some((old, cur)) = current.get(&email) {
                    match crm::contacts::validate_change(cur, input) {
                        Ok(m) => {
                            if changed(&crm::contacts::snapshot(cur), &crm::contacts::snapshot(&m))
                            {
                                plan.outcome.updated += 1;
                                current.insert(email, (old.clone(), m));
                            } else {
                                plan.outcome.unchanged += 1;
                            }
                        }
                        Err(e) => plan.outcome.fail(&row, e),
                    }
                } else if was_seen(&email) {
                    plan.outcome.updated += 1;
                } else {
                    match crm::contacts::validate_new(org, input) {
                        Ok(m) => {
                            plan.outcome.created += 1;
                            current.insert(email, (None, m));
                        }
                        Err(e) => plan.outcome.fail(&row, e),
                    }
                }
            }
            for (_, (old, new)) in current {
                match old {
                    None => plan.new_contacts.push(new),
                    Some(old) if old != new => plan.changed_contacts.push((old, new)),
                    Some(_) => {}
                }
            }
            plan.new_contacts.sort_by_key(|m| m.id);
        }
        Some(1) => {
            let mut domains = Vec::new();
            let mut names = Vec::new();
            for (_, i) in &items {
                if let Ok(Item::Account { key, .. }) = i {
                    if let Some(d) = key.strip_prefix("domain:") {
                        domains.push(d.to_owned());
                    } else if let Some(n) = key.strip_prefix("name:") {
                        names.push(n.to_owned());
                    }
                }
            }
            let (_, rows) = load_accounts(db, org, domains, names).await?;
            let mut current: HashMap<String, (Option<companies::Model>, companies::Model)> =
                HashMap::new();
            for a in rows {
                if let Some(d) = &a.domain_normalized {
                    current
                        .entry(format!("domain:{d}"))
                        .or_insert((Some(a.clone()), a.clone()));
                }
                current
                    .entry(format!("name:{}", a.name.to_lowercase()))
                    .or_insert((Some(a.clone()), a));
            }
            for (row, item) in items {
                let (create, update, key) = match item {
                    Ok(Item::Account {
                        create,
                        update,
                        key,
                        ..
                    }) => (create, update, key),
                    Ok(_) => continue,
                    Err(e) => {
                        plan.outcome.fail(&row, e);
                        continue;
                    }
                };
                if let Some((old, cur)) = current.get(&key) {
                    match accounts::validate_change(cur, update) {
                        Ok(m) => {
                            if changed(&accounts::snapshot(cur), &accounts::snapshot(&m)) {
                                plan.outcome.updated += 1;
                                current.insert(key, (old.clone(), m));
                            } else {
                                plan.outcome.unchanged += 1;
                            }
                        }
                        Err(e) => plan.outcome.fail(&row, e),
                    }
                } else if was_seen(&key) {
                    plan.outcome.updated += 1;
                } else {
                    match accounts::validate_new(org, create) {
                        Ok(m) => {
                            plan.outcome.created += 1;
                            current.insert(key, (None, m));
                        }
                        Err(e) => plan.outcome.fail(&row, e),
                    }
                }
            }
            let mut done = HashSet::new();
            for (_, (old, new)) in current {
                if !done.insert(new.id) {
                    continue;
                }
                match old {
                    None => plan.new_accounts.push(new),
                    Some(old) if old != new => plan.changed_accounts.push((old, new)),
                    Some(_) => {}
                }
            }
            plan.new_accounts.sort_by_key(|m| m.id);
        }
        Some(_) => deals_plan(db, cx, &mut plan, &mut accts, items, &mut was_seen).await?,
    }
    Ok(plan)
}

async fn deals_plan(
    db: &impl ConnectionTrait,
    cx: &Ctx<'_>,
    plan: &mut Plan,
    accts: &mut Accounts,
    items: Vec<(Row, std::result::Result<Item, Vec<FieldError>>)>,
    was_seen: &mut impl FnMut(&str) -> bool,
) -> Result<()> {
    let org = cx.organization_id;
    let mut records = Vec::new();
    let mut titles = Vec::new();
    let mut emails = Vec::new();
    for (_, i) in &items {
        if let Ok(Item::Deal {
            record,
            title,
            contact_email,
            ..
        }) = i
        {
            records.extend(record.clone());
            titles.push(title.clone());
            emails.extend(contact_email.clone());
        }
    }
    let keyed: HashMap<String, Uuid> = if records.is_empty() {
        HashMap::new()
    } else {
        import_keys::Entity::find()
            .filter(import_keys::Column::OrganizationId.eq(org))
            .filter(import_keys::Column::Entity.eq("DEALS"))
            .filter(import_keys::Column::Key.is_in(records))
            .all(db)
            .await?
            .into_iter()
            .map(|k| (k.key, k.object_id))
            .collect()
    };
    let ids: Vec<Uuid> = keyed.values().copied().collect();
    // Deals by id, and by (lower title, account).
    let mut deals_by_id: HashMap<Uuid, (Option<deals::Model>, deals::Model)> =
        deals::Entity::find()
            .filter(deals::Column::OrganizationId.eq(org))
            .filter(
                Condition::any()
                    .add(deals::Column::Id.is_in(ids))
                    .add(Expr::expr(Func::lower(Expr::col(deals::Column::Title))).is_in(titles)),
            )
            .order_by_asc(deals::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(|d| (d.id, (Some(d.clone()), d)))
            .collect();
    let mut by_title: HashMap<(String, Option<Uuid>), Uuid> = HashMap::new();
    let mut sorted: Vec<&deals::Model> = deals_by_id.values().map(|(_, d)| d).collect();
    sorted.sort_by_key(|d| d.id);
    for d in sorted {
        by_title
            .entry((d.title.to_lowercase(), d.account_id))
            .or_insert(d.id);
    }
    let contacts_by_email: HashMap<String, Uuid> = if emails.is_empty() {
        HashMap::new()
    } else {
        contacts::Entity::find()
            .filter(contacts::Column::OrganizationId.eq(org))
            .filter(contacts::Column::EmailNormalized.is_in(emails))
            .all(db)
            .await?
            .into_iter()
            .filter_map(|c| Some((c.email_normalized?, c.id)))
            .collect()
    };
    let mut keyed = keyed;
    for (row, item) in items {
        let (mut input, record, title, account, contact_email) = match item {
            Ok(Item::Deal {
                input,
                record,
                title,
                account,
                contact_email,
            }) => (input, record, title, account, contact_email),
            Ok(_) => continue,
            Err(e) => {
                plan.outcome.fail(&row, e);
                continue;
            }
        };
        let account_id = match plan.account_for(accts, org, &account) {
            Ok(a) => a,
            Err(e) => {
                plan.outcome.fail(&row, e);
                continue;
            }
        };
        if account_id.is_some() {
            input.account_id = Some(account_id);
        }
        if let Some(c) = contact_email.and_then(|e| contacts_by_email.get(&e).copied()) {
            input.contact_id = Some(Some(c));
        }
        let title_key = (title.clone(), account_id);
        let found = record
            .as_ref()
            .and_then(|r| keyed.get(r).copied())
            .or_else(|| by_title.get(&title_key).copied());
        let seen_key = record
            .clone()
            .unwrap_or_else(|| format!("title:{title}|{account_id:?}"));
        if let Some(id) = found
            && let Some((old, cur)) = deals_by_id.get(&id)
        {
            match crm_deals::validate_change(cur, input) {
                Ok(m) => {
                    if changed(&crm_deals::snapshot(cur), &crm_deals::snapshot(&m)) {
                        plan.outcome.updated += 1;
                        deals_by_id.insert(id, (old.clone(), m));
                    } else {
                        plan.outcome.unchanged += 1;
                    }
                    if let Some(r) = record
                        && !keyed.contains_key(&r)
                    {
                        keyed.insert(r.clone(), id);
                        plan.new_keys.push((r, id));
                    }
                }
                Err(e) => plan.outcome.fail(&row, e),
            }
        } else if was_seen(&seen_key) {
            plan.outcome.updated += 1;
        } else {
            match crm_deals::validate_new(org, cx.owner, input) {
                Ok(m) => {
                    plan.outcome.created += 1;
                    by_title.entry(title_key).or_insert(m.id);
                    if let Some(r) = record {
                        keyed.insert(r.clone(), m.id);
                        plan.new_keys.push((r, m.id));
                    }
                    deals_by_id.insert(m.id, (None, m));
                }
                Err(e) => plan.outcome.fail(&row, e),
            }
        }
    }
    for (_, (old, new)) in deals_by_id {
        match old {
            None => plan.new_deals.push(new),
            Some(old) if old != new => plan.changed_deals.push((old, new)),
            Some(_) => {}
        }
    }
    plan.new_deals.sort_by_key(|m| m.id);
    Ok(())
}

/// Creates the new contacts of one import batch inside its transaction (multi-row inserts and
/// their `contact.created` events, returned to be appended with the batch's others). Every
/// contact an import creates goes through here: a person erased under GDPR is refused (the
/// batch, and so the import, stops with `CONFLICT` on `email`), and so is a batch past the
/// plan's contact limit (`PLAN_LIMIT`); both leave the batch unwritten.
async fn create_contacts(
    txn: &DatabaseTransaction,
    contacts: &[contacts::Model],
) -> Result<Vec<(&'static str, Value)>> {
    let Some(org) = contacts.first().map(|c| c.organization_id) else {
        return Ok(Vec::new());
    };
    let emails: Vec<(String, String)> = contacts
        .iter()
        .filter_map(|m| m.email_normalized.clone().map(|e| ("email".to_owned(), e)))
        .collect();
    crate::privacy::tombstones::refuse_erased_emails(txn, org, &emails).await?;
    if let Some(standing) = crate::billing::limits(txn, org, Utc::now()).await? {
        crate::billing::usage::admit(
            txn,
            org,
            &standing,
            crate::billing::Metric::Contacts,
            contacts.len() as u64,
        )
        .await?;
    }
    for chunk in contacts.chunks(crate::db::rows_per_insert::<contacts::Entity>()) {
        contacts::Entity::insert_many(chunk.iter().cloned().map(contacts::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(contacts
        .iter()
        .map(|m| ("contact.created", crm::contacts::snapshot(m)))
        .collect())
}

/// Writes a plan inside the batch's transaction; returns its outcome.
pub async fn apply(txn: &DatabaseTransaction, cx: &Ctx<'_>, plan: Plan) -> Result<Outcome> {
    let org = cx.organization_id;
    let now = Utc::now();
    let mut events: Vec<(&str, Value)> = Vec::new();
    let mut rescore: HashSet<Uuid> = HashSet::new();
    for chunk in plan
        .new_accounts
        .chunks(crate::db::rows_per_insert::<companies::Entity>())
    {
        companies::Entity::insert_many(chunk.iter().cloned().map(companies::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    events.extend(
        plan.new_accounts
            .iter()
            .map(|m| ("company.created", accounts::snapshot(m))),
    );
    for (old, mut m) in plan.changed_accounts {
        m.updated_at = now;
        let changes = crm::diff(&accounts::snapshot(&old), &accounts::snapshot(&m));
        let mut am = accounts::active(m.clone());
        am.id = ActiveValue::Unchanged(old.id);
        am.organization_id = ActiveValue::Unchanged(old.organization_id);
        am.created_at = ActiveValue::Unchanged(old.created_at);
        am.score = ActiveValue::NotSet;
        am.update(txn).await?;
        if old.size != m.size && old.score.is_some() {
            rescore.insert(m.id);
        }
        events.push((
            "company.updated",
            json!({"account": accounts::snapshot(&m), "changes": changes}),
        ));
    }
    events.extend(create_contacts(txn, &plan.new_contacts).await?);
    let mut moved_accounts = Vec::new();
    for (old, mut m) in plan.changed_contacts {
        m.updated_at = now;
        let changes = crm::diff(&crm::contacts::snapshot(&old), &crm::contacts::snapshot(&m));
        let mut am = crm::contacts::active(m.clone());
        am.id = ActiveValue::Unchanged(old.id);
        am.organization_id = ActiveValue::Unchanged(old.organization_id);
        am.created_at = ActiveValue::Unchanged(old.created_at);
        am.update(txn).await?;
        let seniority = |c: &contacts::Model| c.custom_fields.get("seniority").cloned();
        if old.title != m.title
            || seniority(&old) != seniority(&m)
            || old.account_id != m.account_id
        {
            moved_accounts.extend(old.account_id);
            moved_accounts.extend(m.account_id);
        }
        events.push((
            "contact.updated",
            json!({"contact": crm::contacts::snapshot(&m), "changes": changes}),
        ));
    }
    if !moved_accounts.is_empty() {
        let scored: Vec<Uuid> = companies::Entity::find()
            .filter(companies::Column::OrganizationId.eq(org))
            .filter(companies::Column::Id.is_in(moved_accounts))
            .filter(companies::Column::Score.is_not_null())
            .all(txn)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        rescore.extend(scored);
    }
    for chunk in plan
        .new_deals
        .chunks(crate::db::rows_per_insert::<deals::Entity>())
    {
        deals::Entity::insert_many(chunk.iter().cloned().map(deals::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    events.extend(
        plan.new_deals
            .iter()
            .map(|m| ("deal.created", crm_deals::snapshot(m))),
    );
    for (old, mut m) in plan.changed_deals {
        m.updated_at = now;
        let changes = crm::diff(&crm_deals::snapshot(&old), &crm_deals::snapshot(&m));
        let mut am = crm_deals::active(m.clone());
        am.id = ActiveValue::Unchanged(old.id);
        am.organization_id = ActiveValue::Unchanged(old.organization_id);
        am.created_at = ActiveValue::Unchanged(old.created_at);
        am.update(txn).await?;
        events.push((
            "deal.updated",
            json!({"deal": crm_deals::snapshot(&m), "changes": changes}),
        ));
        if m.stage != old.stage {
            events.push((
                "deal.stage_changed",
                json!({"deal": crm_deals::snapshot(&m), "from": old.stage, "to": m.stage}),
            ));
        }
    }
    if !plan.new_keys.is_empty() {
        import_keys::Entity::insert_many(plan.new_keys.iter().map(|(k, id)| {
            import_keys::ActiveModel {
                organization_id: ActiveValue::Set(org),
                entity: ActiveValue::Set("DEALS".into()),
                key: ActiveValue::Set(k.clone()),
                object_id: ActiveValue::Set(*id),
                created_at: ActiveValue::Set(now),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                import_keys::Column::OrganizationId,
                import_keys::Column::Entity,
                import_keys::Column::Key,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    let rescore: Vec<Uuid> = rescore.into_iter().collect();
    crate::scoring::request_rescore(txn, org, &rescore).await?;
    events::append_many(txn, org, cx.actor, events).await?;
    Ok(plan.outcome)
}
