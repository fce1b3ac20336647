//! The sync both systems share: fields, pull (with the conflict policy), push (only changes).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::audit::Meta;
use domain::crm::{accounts, contacts, deals};
use entity::{account_scores, companies, external_ids, signals};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Crm, Object, Outbound, Pulled, Refusal, RemoteAccount, RemoteContact, RemoteDeal, Session,
};
use crate::run::{Stop, SyncContext};

/// Local records read per push page.
const PUSH_PAGE: u64 = 200;
/// Each pull reads again what changed this long before its cursor: a CRM's search index lags
/// its writes (HubSpot's by seconds), and a record indexed after a newer one was read must not
/// be skipped. Records read again change nothing (the loop guard).
const OVERLAP: chrono::Duration = chrono::Duration::minutes(5);
/// The version of the fields DevSignal creates in a CRM (bumped when they change).
const FIELDS_VERSION: i64 = 1;

/// One run of a CRM integration: fields, pull, push.
pub async fn sync(crm: &dyn Crm, cx: &SyncContext) -> Result<(), Stop> {
    let s = Session::new(cx, crm.label(), crm.token_refresh(cx.rt.settings()));
    let fields = cx.cursor("crm:fields").await?;
    let fields_done = fields.and_then(|c| c.state.get("version").and_then(|v| v.as_i64()))
        == Some(FIELDS_VERSION);
    if !fields_done || cx.full {
        crm.ensure_fields(&s).await?;
        cx.save_cursor("crm:fields", json!({"version": FIELDS_VERSION}), None, None)
            .await?;
    }
    let stages = stage_map(crm, &cx.integration.config);
    for object in [Object::Account, Object::Contact, Object::Deal] {
        pull(crm, &s, object, &stages).await?;
    }
    for object in [Object::Account, Object::Contact] {
        push(crm, &s, object).await?;
    }
    Ok(())
}

/// The CRM's stages → ours: the system's defaults, overridden by `config.stageMap`.
fn stage_map(crm: &dyn Crm, config: &Value) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = crm
        .default_stage_map()
        .iter()
        .map(|(k, v)| (k.to_lowercase(), (*v).to_owned()))
        .collect();
    if let Some(custom) = config.get("stageMap").and_then(|m| m.as_object()) {
        for (k, v) in custom {
            if let Some(v) = v.as_str() {
                map.insert(k.to_lowercase(), v.to_owned());
            }
        }
    }
    map
}

fn meta(crm: &dyn Crm) -> Meta {
    Meta {
        ip: None,
        user_agent: Some(format!("DevSignal {} sync", crm.label())),
    }
}

/// A domain error on one record: our own failures stop the run; the rest (a record the CRM
/// holds that our rules refuse) are that record's error.
fn per_record(e: domain::Error) -> Result<String, Stop> {
    match e {
        domain::Error::Database(_) | domain::Error::Internal(_) => Err(Stop::from(e)),
        other => Ok(other.to_string()),
    }
}

// ---------------------------------------------------------------- pull

enum Page {
    Accounts(Pulled<RemoteAccount>),
    Contacts(Pulled<RemoteContact>),
    Deals(Pulled<RemoteDeal>),
}

async fn pull(
    crm: &dyn Crm,
    s: &Session<'_>,
    object: Object,
    stages: &HashMap<String, String>,
) -> Result<(), Stop> {
    let cx = s.cx;
    let resource = format!("crm:pull:{}", object.as_str());
    let state = if cx.full {
        Value::Null
    } else {
        cx.cursor(&resource)
            .await?
            .map(|c| c.state)
            .unwrap_or(Value::Null)
    };
    let time = |k: &str| {
        state
            .get(k)
            .and_then(|v| v.as_str())
            .and_then(super::parse_time)
    };
    let mut since = time("since");
    let mut seen = time("seen");
    let mut page = state
        .get("page")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    loop {
        let from = since.map(|t| t - OVERLAP);
        let fetched = match object {
            Object::Account => Page::Accounts(crm.pull_accounts(s, from, page.as_deref()).await?),
            Object::Contact => Page::Contacts(crm.pull_contacts(s, from, page.as_deref()).await?),
            Object::Deal => Page::Deals(crm.pull_deals(s, from, page.as_deref()).await?),
        };
        let (next, latest, n) = match fetched {
            Page::Accounts(p) => {
                let latest = p.items.iter().filter_map(|a| a.modified).max();
                let n = p.items.len();
                for a in p.items {
                    apply_account(crm, s, a).await?;
                }
                (p.next, latest, n)
            }
            Page::Contacts(p) => {
                let latest = p.items.iter().filter_map(|a| a.modified).max();
                let n = p.items.len();
                for c in p.items {
                    apply_contact(crm, s, c).await?;
                }
                (p.next, latest, n)
            }
            Page::Deals(p) => {
                let latest = p.items.iter().filter_map(|a| a.modified).max();
                let n = p.items.len();
                for d in p.items {
                    apply_deal(crm, s, d, stages).await?;
                }
                (p.next, latest, n)
            }
        };
        cx.add_pulled(n);
        seen = seen.max(latest);
        // HubSpot's search pages through 10,000 results at most: a longer pull starts a new
        // search from the newest record read (records at that instant are read again, which
        // changes nothing).
        if next
            .as_deref()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 9_900)
            && seen.is_some()
        {
            since = seen;
            cx.save_cursor(&resource, json!({"since": since, "seen": seen}), None, None)
                .await?;
            page = None;
            continue;
        }
        match next {
            Some(n) => {
                cx.save_cursor(
                    &resource,
                    json!({"since": since, "seen": seen, "page": n}),
                    None,
                    None,
                )
                .await?;
                page = Some(n);
            }
            None => {
                since = seen.or(since);
                cx.save_cursor(&resource, json!({"since": since}), None, None)
                    .await?;
                return Ok(());
            }
        }
    }
}

/// Who owns a field, for the conflict policy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    /// The CRM's value wins whenever it changed there.
    Crm,
    /// The side that changed it wins; when both did, the newer one.
    Shared,
}

/// What to set a field to, if anything: `remote` and `local` now, `base` as last synced (absent
/// when never synced), and whether the CRM's record is newer than ours.
pub fn decide(
    owner: Owner,
    remote: &Option<String>,
    local: &Option<String>,
    base: Option<&Option<String>>,
    remote_newer: bool,
) -> Option<Option<String>> {
    if remote == local {
        return None;
    }
    // A record never synced (or one we created there) with nothing in a field has not cleared
    // it: an empty value there only clears ours once both sides agreed on a value.
    if base.is_none() && remote.is_none() {
        return None;
    }
    let remote_changed = base.is_none_or(|b| b != remote);
    if !remote_changed {
        return None;
    }
    match owner {
        Owner::Crm => Some(remote.clone()),
        Owner::Shared => {
            let local_changed = match base {
                Some(b) => b != local,
                None => local.is_some(),
            };
            (!local_changed || remote_newer).then(|| remote.clone())
        }
    }
}

/// One field of a pulled record: its name, owner, the CRM's value and ours.
type Field = (&'static str, Owner, Option<String>, Option<String>);

/// A field the CRM owns.
fn crm_owned(name: &'static str, remote: Option<String>, local: Option<String>) -> Field {
    (name, Owner::Crm, remote, local)
}

/// A field both sides may edit.
fn shared(name: &'static str, remote: Option<String>, local: Option<String>) -> Field {
    (name, Owner::Shared, remote, local)
}

/// The values of a record as last synced (`None` for a field never synced).
fn base_of(link: Option<&external_ids::Model>) -> BTreeMap<String, Option<String>> {
    link.and_then(|l| l.synced.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned)))
                .collect()
        })
        .unwrap_or_default()
}

/// Applies the policy to every field, returning the changes (field → new value).
fn changes(
    fields: &[Field],
    base: &BTreeMap<String, Option<String>>,
    remote_newer: bool,
) -> BTreeMap<&'static str, Option<String>> {
    fields
        .iter()
        .filter_map(|(name, owner, remote, local)| {
            decide(*owner, remote, local, base.get(*name), remote_newer).map(|v| (*name, v))
        })
        .collect()
}

fn synced_json(fields: &[Field]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, _, remote, _)| ((*k).to_owned(), json!(remote)))
            .collect(),
    )
}

async fn link_of_external(
    s: &Session<'_>,
    crm: &dyn Crm,
    object: Object,
    external: &str,
) -> Result<Option<external_ids::Model>, Stop> {
    Ok(external_ids::Entity::find()
        .filter(external_ids::Column::OrganizationId.eq(s.cx.integration.organization_id))
        .filter(external_ids::Column::System.eq(crm.system()))
        .filter(external_ids::Column::Object.eq(object.as_str()))
        .filter(external_ids::Column::ExternalId.eq(external))
        .one(&s.cx.db)
        .await?)
}

async fn links_of_local(
    s: &Session<'_>,
    crm: &dyn Crm,
    object: Object,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, external_ids::Model>, Stop> {
    Ok(external_ids::Entity::find()
        .filter(external_ids::Column::OrganizationId.eq(s.cx.integration.organization_id))
        .filter(external_ids::Column::System.eq(crm.system()))
        .filter(external_ids::Column::Object.eq(object.as_str()))
        .filter(external_ids::Column::LocalId.is_in(ids.iter().copied()))
        .all(&s.cx.db)
        .await?
        .into_iter()
        .map(|l| (l.local_id, l))
        .collect())
}

/// What to change on a mapping row.
#[derive(Default)]
struct LinkUpdate {
    synced: Option<Value>,
    remote_modified_at: Option<Option<DateTime<Utc>>>,
    pushed_hash: Option<String>,
}

/// Records (or moves) the mapping of `local` to `external`: one CRM record is one of ours.
async fn save_link(
    s: &Session<'_>,
    crm: &dyn Crm,
    object: Object,
    local: Uuid,
    external: &str,
    u: LinkUpdate,
) -> Result<(), Stop> {
    let org = s.cx.integration.organization_id;
    let now = Utc::now();
    let pushing = u.pushed_hash.is_some();
    let txn = s.cx.db.begin().await?;
    // The CRM record mapped to another of ours before (merged or deleted here) moves.
    external_ids::Entity::delete_many()
        .filter(external_ids::Column::OrganizationId.eq(org))
        .filter(external_ids::Column::System.eq(crm.system()))
        .filter(external_ids::Column::Object.eq(object.as_str()))
        .filter(external_ids::Column::ExternalId.eq(external))
        .filter(external_ids::Column::LocalId.ne(local))
        .exec(&txn)
        .await?;
    let existing = external_ids::Entity::find_by_id((
        org,
        crm.system().to_owned(),
        object.as_str().to_owned(),
        local,
    ))
    .one(&txn)
    .await?;
    let row = match existing {
        Some(old) => {
            // A different CRM record than before: what was synced or pushed was for the old one.
            let same = old.external_id == external;
            external_ids::ActiveModel {
                organization_id: Set(org),
                system: Set(old.system),
                object: Set(old.object),
                local_id: Set(local),
                external_id: Set(external.to_owned()),
                pushed_hash: Set(u.pushed_hash.or(if same { old.pushed_hash } else { None })),
                pushed_at: Set(if same { old.pushed_at } else { None }),
                synced: Set(u
                    .synced
                    .unwrap_or(if same { old.synced } else { json!({}) })),
                remote_modified_at: Set(u.remote_modified_at.unwrap_or(if same {
                    old.remote_modified_at
                } else {
                    None
                })),
                updated_at: Set(now),
            }
        }
        None => external_ids::ActiveModel {
            organization_id: Set(org),
            system: Set(crm.system().to_owned()),
            object: Set(object.as_str().to_owned()),
            local_id: Set(local),
            external_id: Set(external.to_owned()),
            pushed_hash: Set(u.pushed_hash.clone()),
            pushed_at: Set(None),
            synced: Set(u.synced.unwrap_or(json!({}))),
            remote_modified_at: Set(u.remote_modified_at.flatten()),
            updated_at: Set(now),
        },
    };
    let mut row = row;
    if pushing {
        row.pushed_at = Set(Some(now));
    }
    external_ids::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                external_ids::Column::OrganizationId,
                external_ids::Column::System,
                external_ids::Column::Object,
                external_ids::Column::LocalId,
            ])
            .update_columns([
                external_ids::Column::ExternalId,
                external_ids::Column::PushedHash,
                external_ids::Column::PushedAt,
                external_ids::Column::Synced,
                external_ids::Column::RemoteModifiedAt,
                external_ids::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

fn owner_key(crm: &dyn Crm) -> String {
    format!("{}OwnerId", crm.system().to_lowercase())
}

/// `custom_fields` with the CRM owner set (or removed).
fn with_owner(crm: &dyn Crm, custom: &Value, owner: &Option<String>) -> Value {
    let mut custom = custom.as_object().cloned().unwrap_or_default();
    match owner {
        Some(o) => custom.insert(owner_key(crm), json!(o)),
        None => custom.remove(&owner_key(crm)),
    };
    Value::Object(custom)
}

fn owner_of(crm: &dyn Crm, custom: &Value) -> Option<String> {
    custom
        .get(owner_key(crm))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

fn newer(remote: Option<DateTime<Utc>>, local: DateTime<Utc>) -> bool {
    remote.is_some_and(|r| r > local)
}

async fn apply_account(crm: &dyn Crm, s: &Session<'_>, a: RemoteAccount) -> Result<(), Stop> {
    let cx = s.cx;
    let org = cx.integration.organization_id;
    let link = link_of_external(s, crm, Object::Account, &a.id).await?;
    let mut local = match &link {
        Some(l) => {
            companies::Entity::find_by_id(l.local_id)
                .filter(companies::Column::OrganizationId.eq(org))
                .one(&cx.db)
                .await?
        }
        None => None,
    };
    let domain = a.domain.as_deref().and_then(super::domain_of);
    if local.is_none()
        && let Some(d) = &domain
    {
        local = companies::Entity::find()
            .filter(companies::Column::OrganizationId.eq(org))
            .filter(companies::Column::DomainNormalized.eq(d.as_str()))
            .one(&cx.db)
            .await?;
    }
    let l = local.as_ref();
    let fields = [
        crm_owned("name", a.name.clone(), l.map(|m| m.name.clone())),
        crm_owned(
            "owner",
            a.owner.clone(),
            l.and_then(|m| owner_of(crm, &m.custom_fields)),
        ),
        shared(
            "industry",
            a.industry.clone(),
            l.and_then(|m| m.industry.clone()),
        ),
        shared("city", a.city.clone(), l.and_then(|m| m.city.clone())),
        shared(
            "country",
            a.country.clone(),
            l.and_then(|m| m.country.clone()),
        ),
        shared(
            "description",
            a.description.clone(),
            l.and_then(|m| m.description.clone()),
        ),
    ];
    let meta = meta(crm);
    let local_id = match local {
        None => {
            let name = a
                .name
                .clone()
                .or_else(|| domain.clone())
                .unwrap_or_else(|| format!("{} company {}", crm.label(), a.id));
            let input = accounts::CreateInput {
                name,
                domain: domain.clone(),
                industry: a.industry.clone(),
                city: a.city.clone(),
                country: a.country.clone(),
                description: a.description.clone(),
                custom_fields: Some(with_owner(crm, &json!({}), &a.owner)),
                ..Default::default()
            };
            match accounts::create(&cx.db, cx.actor(), &meta, input).await {
                Ok(m) => m.id,
                Err(e) => {
                    let msg = per_record(e)?;
                    cx.record_error("account", None, Some(&a.id), &msg);
                    return Ok(());
                }
            }
        }
        Some(m) => {
            let base = base_of(link.as_ref().filter(|l| l.local_id == m.id));
            let ch = changes(&fields, &base, newer(a.modified, m.updated_at));
            if !ch.is_empty() {
                let mut input = accounts::UpdateInput::default();
                for (k, v) in &ch {
                    match *k {
                        // An account always has a name: a CRM record without one keeps ours.
                        "name" => input.name = v.clone(),
                        "owner" => input.custom_fields = Some(with_owner(crm, &m.custom_fields, v)),
                        "industry" => input.industry = Some(v.clone()),
                        "city" => input.city = Some(v.clone()),
                        "country" => input.country = Some(v.clone()),
                        "description" => input.description = Some(v.clone()),
                        _ => {}
                    }
                }
                if m.domain.is_none() && domain.is_some() {
                    input.domain = Some(domain.clone());
                }
                if let Err(e) = accounts::update(&cx.db, cx.actor(), &meta, m.id, input).await {
                    let msg = per_record(e)?;
                    cx.record_error("account", Some(m.id), Some(&a.id), &msg);
                    return Ok(());
                }
            }
            m.id
        }
    };
    save_link(
        s,
        crm,
        Object::Account,
        local_id,
        &a.id,
        LinkUpdate {
            synced: Some(synced_json(&fields)),
            remote_modified_at: Some(a.modified),
            pushed_hash: None,
        },
    )
    .await
}

/// Our account mapped to the CRM's company `external`.
async fn local_account(
    crm: &dyn Crm,
    s: &Session<'_>,
    external: Option<&str>,
) -> Result<Option<Uuid>, Stop> {
    match external {
        None => Ok(None),
        Some(e) => Ok(link_of_external(s, crm, Object::Account, e)
            .await?
            .map(|l| l.local_id)),
    }
}

async fn apply_contact(crm: &dyn Crm, s: &Session<'_>, c: RemoteContact) -> Result<(), Stop> {
    let cx = s.cx;
    let org = cx.integration.organization_id;
    let link = link_of_external(s, crm, Object::Contact, &c.id).await?;
    let mut local = match &link {
        Some(l) => {
            entity::contacts::Entity::find_by_id(l.local_id)
                .filter(entity::contacts::Column::OrganizationId.eq(org))
                .one(&cx.db)
                .await?
        }
        None => None,
    };
    let email = c.email.as_deref().map(|e| e.trim().to_lowercase());
    if local.is_none()
        && let Some(e) = &email
    {
        local = entity::contacts::Entity::find()
            .filter(entity::contacts::Column::OrganizationId.eq(org))
            .filter(entity::contacts::Column::EmailNormalized.eq(e.as_str()))
            .one(&cx.db)
            .await?;
    }
    let account = local_account(crm, s, c.account.as_deref()).await?;
    let l = local.as_ref();
    let fields = [
        shared(
            "firstName",
            c.first_name.clone(),
            l.and_then(|m| m.first_name.clone()),
        ),
        shared(
            "lastName",
            c.last_name.clone(),
            l.and_then(|m| m.last_name.clone()),
        ),
        shared("title", c.title.clone(), l.and_then(|m| m.title.clone())),
        shared("phone", c.phone.clone(), l.and_then(|m| m.phone.clone())),
        shared("city", c.city.clone(), l.and_then(|m| m.city.clone())),
        shared(
            "country",
            c.country.clone(),
            l.and_then(|m| m.country.clone()),
        ),
        shared(
            "account",
            account.map(|a| a.to_string()),
            l.and_then(|m| m.account_id.map(|a| a.to_string())),
        ),
    ];
    let meta = meta(crm);
    let local_id = match local {
        None => {
            let input = contacts::Input {
                first_name: Some(c.first_name.clone()),
                last_name: Some(c.last_name.clone()),
                email: Some(email.clone()),
                title: Some(c.title.clone()),
                phone: Some(c.phone.clone()),
                city: Some(c.city.clone()),
                country: Some(c.country.clone()),
                account_id: Some(account),
                ..Default::default()
            };
            match contacts::create(&cx.db, cx.actor(), &meta, input).await {
                Ok(m) => m.id,
                Err(e) => {
                    let msg = per_record(e)?;
                    cx.record_error("contact", None, Some(&c.id), &msg);
                    return Ok(());
                }
            }
        }
        Some(m) => {
            let base = base_of(link.as_ref().filter(|l| l.local_id == m.id));
            let ch = changes(&fields, &base, newer(c.modified, m.updated_at));
            if !ch.is_empty() {
                let mut input = contacts::Input::default();
                for (k, v) in &ch {
                    match *k {
                        "firstName" => input.first_name = Some(v.clone()),
                        "lastName" => input.last_name = Some(v.clone()),
                        "title" => input.title = Some(v.clone()),
                        "phone" => input.phone = Some(v.clone()),
                        "city" => input.city = Some(v.clone()),
                        "country" => input.country = Some(v.clone()),
                        "account" => input.account_id = Some(account),
                        _ => {}
                    }
                }
                if m.email.is_none() && email.is_some() {
                    input.email = Some(email.clone());
                }
                if let Err(e) = contacts::update(&cx.db, cx.actor(), &meta, m.id, input).await {
                    let msg = per_record(e)?;
                    cx.record_error("contact", Some(m.id), Some(&c.id), &msg);
                    return Ok(());
                }
            }
            m.id
        }
    };
    save_link(
        s,
        crm,
        Object::Contact,
        local_id,
        &c.id,
        LinkUpdate {
            synced: Some(synced_json(&fields)),
            remote_modified_at: Some(c.modified),
            pushed_hash: None,
        },
    )
    .await
}

async fn apply_deal(
    crm: &dyn Crm,
    s: &Session<'_>,
    d: RemoteDeal,
    stages: &HashMap<String, String>,
) -> Result<(), Stop> {
    let cx = s.cx;
    let org = cx.integration.organization_id;
    let link = link_of_external(s, crm, Object::Deal, &d.id).await?;
    let local = match &link {
        Some(l) => {
            entity::deals::Entity::find_by_id(l.local_id)
                .filter(entity::deals::Column::OrganizationId.eq(org))
                .one(&cx.db)
                .await?
        }
        None => None,
    };
    let stage = match d.stage.as_deref() {
        None => None,
        Some(st) => match stages.get(&st.to_lowercase()) {
            Some(ours) => Some(ours.clone()),
            None => {
                cx.record_error(
                    "deal",
                    local.as_ref().map(|m| m.id),
                    Some(&d.id),
                    &format!(
                        "the {} stage {st:?} is not mapped to a DevSignal stage; add it to \
                         the integration's config.stageMap (the deal keeps its stage)",
                        crm.label()
                    ),
                );
                local.as_ref().map(|m| m.stage.clone())
            }
        },
    };
    let account = local_account(crm, s, d.account.as_deref()).await?;
    let l = local.as_ref();
    let fields = [
        crm_owned("title", d.name.clone(), l.map(|m| m.title.clone())),
        crm_owned("stage", stage.clone(), l.map(|m| m.stage.clone())),
        crm_owned(
            "amount",
            d.amount.map(|a| a.to_string()),
            l.and_then(|m| m.amount.map(|a| a.to_string())),
        ),
        crm_owned(
            "closeDate",
            d.close_date.map(|c| c.to_string()),
            l.and_then(|m| m.expected_close_date.map(|c| c.to_string())),
        ),
        crm_owned(
            "owner",
            d.owner.clone(),
            l.and_then(|m| owner_of(crm, &m.custom_fields)),
        ),
        shared(
            "account",
            account.map(|a| a.to_string()),
            l.and_then(|m| m.account_id.map(|a| a.to_string())),
        ),
    ];
    let meta = meta(crm);
    let local_id = match local {
        None => {
            let input = deals::Input {
                title: Some(
                    d.name
                        .clone()
                        .unwrap_or_else(|| format!("{} deal {}", crm.label(), d.id)),
                ),
                amount: Some(d.amount),
                stage: stage.clone(),
                expected_close_date: Some(d.close_date),
                account_id: Some(account),
                custom_fields: Some(with_owner(crm, &json!({}), &d.owner)),
                ..Default::default()
            };
            match deals::create(&cx.db, cx.actor(), &meta, input).await {
                Ok(m) => m.id,
                Err(e) => {
                    let msg = per_record(e)?;
                    cx.record_error("deal", None, Some(&d.id), &msg);
                    return Ok(());
                }
            }
        }
        Some(m) => {
            let base = base_of(link.as_ref().filter(|l| l.local_id == m.id));
            let ch = changes(&fields, &base, newer(d.modified, m.updated_at));
            if !ch.is_empty() {
                let mut input = deals::Input::default();
                for (k, v) in &ch {
                    match *k {
                        "title" => input.title = v.clone(),
                        "stage" => input.stage = v.clone(),
                        "amount" => input.amount = Some(d.amount),
                        "closeDate" => input.expected_close_date = Some(d.close_date),
                        "owner" => input.custom_fields = Some(with_owner(crm, &m.custom_fields, v)),
                        "account" => input.account_id = Some(account),
                        _ => {}
                    }
                }
                if let Err(e) = deals::update(&cx.db, cx.actor(), &meta, m.id, input).await {
                    let msg = per_record(e)?;
                    cx.record_error("deal", Some(m.id), Some(&d.id), &msg);
                    return Ok(());
                }
            }
            m.id
        }
    };
    save_link(
        s,
        crm,
        Object::Deal,
        local_id,
        &d.id,
        LinkUpdate {
            synced: Some(synced_json(&fields)),
            remote_modified_at: Some(d.modified),
            pushed_hash: None,
        },
    )
    .await
}

// ---------------------------------------------------------------- push

/// A hash of what an update sends (the score fields): the key and name only matter when
/// creating.
fn hash_of(row: &Outbound) -> String {
    let v = json!(row.values);
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// The most frequent signal type of each of `accounts`.
async fn top_types(cx: &SyncContext, accounts: &[Uuid]) -> Result<HashMap<Uuid, String>, Stop> {
    let rows: Vec<(Option<Uuid>, String, i64)> = signals::Entity::find()
        .select_only()
        .column(signals::Column::AccountId)
        .column(signals::Column::SignalType)
        .column_as(signals::Column::Id.count(), "n")
        .filter(signals::Column::OrganizationId.eq(cx.integration.organization_id))
        .filter(signals::Column::AccountId.is_in(accounts.iter().copied()))
        .group_by(signals::Column::AccountId)
        .group_by(signals::Column::SignalType)
        .into_tuple()
        .all(&cx.db)
        .await?;
    let mut best: HashMap<Uuid, (i64, String)> = HashMap::new();
    for (account, kind, n) in rows {
        let Some(account) = account else { continue };
        let e = best.entry(account).or_insert((0, String::new()));
        if n > e.0 || (n == e.0 && kind < e.1) {
            *e = (n, kind);
        }
    }
    Ok(best.into_iter().map(|(k, (_, t))| (k, t)).collect())
}

/// Signal count and latest signal of each of `contacts`.
async fn contact_activity(
    cx: &SyncContext,
    contacts: &[Uuid],
) -> Result<HashMap<Uuid, (i64, Option<DateTime<Utc>>)>, Stop> {
    let rows: Vec<(Option<Uuid>, i64, Option<DateTime<Utc>>)> = signals::Entity::find()
        .select_only()
        .column(signals::Column::ContactId)
        .column_as(signals::Column::Id.count(), "n")
        .column_as(signals::Column::Timestamp.max(), "latest")
        .filter(signals::Column::OrganizationId.eq(cx.integration.organization_id))
        .filter(signals::Column::ContactId.is_in(contacts.iter().copied()))
        .group_by(signals::Column::ContactId)
        .into_tuple()
        .all(&cx.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(c, n, latest)| Some((c?, (n, latest))))
        .collect())
}

fn time_value(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

/// The next page of accounts to push (scored accounts, by id), with their score fields.
async fn outbound_accounts(cx: &SyncContext, after: Option<Uuid>) -> Result<Vec<Outbound>, Stop> {
    let org = cx.integration.organization_id;
    let mut q = companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(org))
        .order_by_asc(companies::Column::Id)
        .limit(PUSH_PAGE);
    if let Some(a) = after {
        q = q.filter(companies::Column::Id.gt(a));
    }
    let page = q.all(&cx.db).await?;
    let ids: Vec<Uuid> = page.iter().map(|c| c.id).collect();
    let scores: HashMap<Uuid, account_scores::Model> = account_scores::Entity::find()
        .filter(account_scores::Column::AccountId.is_in(ids.iter().copied()))
        .all(&cx.db)
        .await?
        .into_iter()
        .map(|s| (s.account_id, s))
        .collect();
    let tops = top_types(cx, &ids).await?;
    Ok(page
        .into_iter()
        .map(|c| {
            let sc = scores.get(&c.id);
            Outbound {
                local_id: c.id,
                key: c.domain_normalized.clone(),
                name: Some(c.name.clone()),
                last_name: None,
                values: vec![
                    ("score", json!(sc.map(|s| s.score).or(c.score).unwrap_or(0))),
                    ("tier", json!(sc.map(|s| s.tier.clone()))),
                    ("trend", json!(sc.map(|s| s.trend.clone()))),
                    (
                        "signalCount",
                        json!(sc.map(|s| s.signal_count).unwrap_or(0)),
                    ),
                    ("topSignalType", json!(tops.get(&c.id))),
                    (
                        "lastSignalAt",
                        time_value(sc.and_then(|s| s.last_signal_at)),
                    ),
                ],
            }
        })
        .collect())
}

/// The next page of contacts to push (those with an email, by id), with their score fields:
/// their account's score and tier, their own signal count and latest signal.
async fn outbound_contacts(cx: &SyncContext, after: Option<Uuid>) -> Result<Vec<Outbound>, Stop> {
    use entity::contacts as c;
    let org = cx.integration.organization_id;
    let mut q = c::Entity::find()
        .filter(c::Column::OrganizationId.eq(org))
        .filter(c::Column::EmailNormalized.is_not_null())
        .order_by_asc(c::Column::Id)
        .limit(PUSH_PAGE);
    if let Some(a) = after {
        q = q.filter(c::Column::Id.gt(a));
    }
    let page = q.all(&cx.db).await?;
    let ids: Vec<Uuid> = page.iter().map(|c| c.id).collect();
    let account_ids: Vec<Uuid> = page.iter().filter_map(|c| c.account_id).collect();
    let scores: HashMap<Uuid, account_scores::Model> = account_scores::Entity::find()
        .filter(account_scores::Column::AccountId.is_in(account_ids))
        .all(&cx.db)
        .await?
        .into_iter()
        .map(|s| (s.account_id, s))
        .collect();
    let activity = contact_activity(cx, &ids).await?;
    Ok(page
        .into_iter()
        .map(|m| {
            let sc = m.account_id.and_then(|a| scores.get(&a));
            let (n, latest) = activity.get(&m.id).copied().unwrap_or((0, None));
            Outbound {
                local_id: m.id,
                key: m.email_normalized.clone(),
                name: m.first_name.clone(),
                last_name: m.last_name.clone(),
                values: vec![
                    ("score", json!(sc.map(|s| s.score))),
                    ("tier", json!(sc.map(|s| s.tier.clone()))),
                    ("signalCount", json!(n)),
                    ("lastSignalAt", time_value(latest)),
                ],
            }
        })
        .collect())
}

/// Pushes the score fields of `object`s whose values changed since their last push: matched
/// by mapping, then by key (found in the CRM), else created.
async fn push(crm: &dyn Crm, s: &Session<'_>, object: Object) -> Result<(), Stop> {
    let cx = s.cx;
    let mut after = None;
    loop {
        let page = match object {
            Object::Account => outbound_accounts(cx, after).await?,
            _ => outbound_contacts(cx, after).await?,
        };
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.local_id);
        let ids: Vec<Uuid> = page.iter().map(|r| r.local_id).collect();
        let links = links_of_local(s, crm, object, &ids).await?;
        let mut updates: Vec<(String, Outbound, String)> = Vec::new();
        let mut unlinked: Vec<(Outbound, String)> = Vec::new();
        for row in page {
            let hash = hash_of(&row);
            match links.get(&row.local_id) {
                Some(l) if l.pushed_hash.as_deref() == Some(hash.as_str()) && !cx.full => {}
                Some(l) => updates.push((l.external_id.clone(), row, hash)),
                None => unlinked.push((row, hash)),
            }
        }
        // Records the CRM already has (same domain or email) are linked, not created again.
        let keys: Vec<String> = unlinked.iter().filter_map(|(r, _)| r.key.clone()).collect();
        let mut found: HashMap<String, String> = HashMap::new();
        for chunk in keys.chunks(crm.batch_size().min(100)) {
            for (k, id) in crm.find(s, object, chunk).await? {
                found.entry(k.to_lowercase()).or_insert(id);
            }
        }
        let mut creates = Vec::new();
        for (row, hash) in unlinked {
            match row.key.as_ref().and_then(|k| found.get(&k.to_lowercase())) {
                Some(id) => updates.push((id.clone(), row, hash)),
                None => creates.push((row, hash)),
            }
        }
        for chunk in creates.chunks(crm.batch_size()) {
            let rows: Vec<Outbound> = chunk.iter().map(|(r, _)| r.clone()).collect();
            let answers = match crm.create(s, object, &rows).await {
                Ok(a) => a,
                Err(Stop::Invalid(e)) => vec![Err(Refusal::Refused(e)); rows.len()],
                Err(e) => return Err(e),
            };
            for ((row, hash), answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(id) => {
                        save_link(
                            s,
                            crm,
                            object,
                            row.local_id,
                            &id,
                            LinkUpdate {
                                pushed_hash: Some(hash.clone()),
                                ..Default::default()
                            },
                        )
                        .await?;
                        cx.add_pushed(1);
                    }
                    Err(r) => {
                        let msg = match r {
                            Refusal::Refused(m) => m,
                            Refusal::Gone => "refused as missing".into(),
                        };
                        cx.record_error(object.as_str(), Some(row.local_id), None, &msg);
                    }
                }
            }
        }
        for chunk in updates.chunks(crm.batch_size()) {
            let rows: Vec<(String, Outbound)> = chunk
                .iter()
                .map(|(id, r, _)| (id.clone(), r.clone()))
                .collect();
            let answers = match crm.update(s, object, &rows).await {
                Ok(a) => a,
                Err(Stop::Invalid(e)) => vec![Err(Refusal::Refused(e)); rows.len()],
                Err(e) => return Err(e),
            };
            for ((id, row, hash), answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(()) => {
                        save_link(
                            s,
                            crm,
                            object,
                            row.local_id,
                            id,
                            LinkUpdate {
                                pushed_hash: Some(hash.clone()),
                                ..Default::default()
                            },
                        )
                        .await?;
                        cx.add_pushed(1);
                    }
                    Err(Refusal::Gone) => {
                        // Deleted in the CRM: forget the mapping; the next push matches or
                        // creates the record again.
                        external_ids::Entity::delete_many()
                            .filter(
                                external_ids::Column::OrganizationId
                                    .eq(cx.integration.organization_id),
                            )
                            .filter(external_ids::Column::System.eq(crm.system()))
                            .filter(external_ids::Column::Object.eq(object.as_str()))
                            .filter(external_ids::Column::LocalId.eq(row.local_id))
                            .exec(&cx.db)
                            .await?;
                        cx.record_error(
                            object.as_str(),
                            Some(row.local_id),
                            Some(id),
                            &format!(
                                "the {} record was deleted there; it is matched or created \
                                 again on the next push",
                                crm.label()
                            ),
                        );
                    }
                    Err(Refusal::Refused(m)) => {
                        cx.record_error(object.as_str(), Some(row.local_id), Some(id), &m);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn crm_owned_fields_take_the_crm_value_when_it_changed_there() {
        // Changed in the CRM since the last sync: taken, even if we changed it too.
        assert_eq!(
            decide(Owner::Crm, &s("B"), &s("L"), Some(&s("A")), false),
            Some(s("B"))
        );
        // Unchanged in the CRM: ours stays.
        assert_eq!(
            decide(Owner::Crm, &s("A"), &s("L"), Some(&s("A")), true),
            None
        );
        // Never synced: the CRM's value.
        assert_eq!(
            decide(Owner::Crm, &s("B"), &s("L"), None, false),
            Some(s("B"))
        );
    }

    #[test]
    fn shared_fields_take_the_side_that_changed_and_the_newer_when_both_did() {
        // Only the CRM changed it.
        assert_eq!(
            decide(Owner::Shared, &s("B"), &s("A"), Some(&s("A")), false),
            Some(s("B"))
        );
        // Only we changed it.
        assert_eq!(
            decide(Owner::Shared, &s("A"), &s("L"), Some(&s("A")), true),
            None
        );
        // Both: the newer side.
        assert_eq!(
            decide(Owner::Shared, &s("B"), &s("L"), Some(&s("A")), true),
            Some(s("B"))
        );
        assert_eq!(
            decide(Owner::Shared, &s("B"), &s("L"), Some(&s("A")), false),
            None
        );
        // Never synced: fills an empty field; a set one follows the newer side.
        assert_eq!(
            decide(Owner::Shared, &s("B"), &None, None, false),
            Some(s("B"))
        );
        assert_eq!(decide(Owner::Shared, &s("B"), &s("L"), None, false), None);
    }
}
