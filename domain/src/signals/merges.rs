//! Contact merges (issue 6, behaviour 5). When two contacts turn out to be one person, the
//! duplicate's signals, activities, deals and identities move to the primary, its tags are added,
//! the primary's empty fields are filled from it, the primary inherits its account if it had
//! none, and the duplicate is deleted. Every merge is recorded in `contact_merges` with its
//! reason, confidence and evidence, and with **exactly** what it changed, so [`unmerge`] can
//! re-create the duplicate under its own id and reverse only what the merge did: later edits of
//! the primary win, and rows that arrived after the merge stay with the primary.
//!
//! Three ways in, one piece of merge code ([`merge_in`], inside the caller's transaction):
//! - [`merge`]: a person merges up to [`MAX_DUPLICATES`] contacts into one (all or nothing);
//! - ingest ([`crate::signals`]): a signal whose hints name its contact and exactly one other
//!   contact with confidence ≥ [`confidence::AUTO_MERGE`] merges the two in the batch's own
//!   transaction ([`auto_merge`]);
//! - [`suggestions`] only proposes pairs, with their evidence, for a human to decide.
//!
//! An undone merge is a human's "these are different people": ingest never auto-merges that pair
//! again (durably, unlike the original's in-memory 24-hour cooldown), while [`suggestions`] still
//! shows the pair, marked `previously_unmerged`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{activities, companies, contact_identities, contact_merges, contacts, deals, signals};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta};
use crate::error::on_unique;
use crate::signals::identifiers::{self, confidence, kind};
use crate::{Actor, Error, Result, events, scoring};

/// The most duplicates one [`merge`] takes.
pub const MAX_DUPLICATES: usize = 50;
/// The most suggestions (and merge records) one call returns.
pub const MAX_PAGE: u64 = 100;
/// Contacts sharing one value beyond this many are not paired with each other: a value that
/// many people share (a team inbox, a common name) says little about any two of them, and
/// pairing them all would be quadratic.
pub const MAX_GROUP: usize = 50;
/// How many tags a contact may carry (as [`crate::crm::tags`] enforces).
const MAX_TAGS: usize = 50;

/// Why a merge happened.
pub mod reason {
    /// A person asked for it (`mergeContacts`).
    pub const MANUAL: &str = "MANUAL";
    /// Ingest found one signal naming both contacts.
    pub const AUTO: &str = "AUTO";
}

/// Where a piece of evidence was seen on a contact.
pub mod source {
    /// One of the contact's identities (`contact_identities`).
    pub const IDENTITY: &str = "IDENTITY";
    /// A field of the contact row (email, GitHub, Twitter, LinkedIn, name).
    pub const FIELD: &str = "FIELD";
    /// A signal attributed to the contact carried the value as a hint (auto-merge).
    pub const SIGNAL: &str = "SIGNAL";
}

/// The evidence kind for two contacts with the same full name.
pub const NAME: &str = "NAME";

/// Audit actions.
pub mod action {
    pub const MERGED: &str = "contact.merged";
    pub const UNMERGED: &str = "contact.unmerged";
}

/// The identity kinds compared across contacts.
const COMPARED: &[&str] = &[
    kind::EMAIL,
    kind::GITHUB,
    kind::NPM,
    kind::TWITTER,
    kind::LINKEDIN,
];

/// One contact on which a piece of evidence was seen, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sighting {
    pub contact_id: Uuid,
    /// One of [`source`].
    pub source: String,
}

/// Why two contacts look like one person: a value both carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// An identity kind ([`kind`]: EMAIL, GITHUB, NPM, TWITTER, LINKEDIN) or [`NAME`].
    pub kind: String,
    /// The normalised value (a lower-cased full name for NAME).
    pub value: String,
    /// How much this one piece says on its own.
    pub confidence: f64,
    /// Where it was seen, on each side.
    pub seen_on: Vec<Sighting>,
}

/// One recorded merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub id: Uuid,
    pub primary_id: Uuid,
    pub merged_id: Uuid,
    /// One of [`reason`].
    pub reason: String,
    pub confidence: Option<f64>,
    pub evidence: Vec<Evidence>,
    /// The user who merged (absent for API keys).
    pub merged_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

impl From<contact_merges::Model> for Merge {
    fn from(m: contact_merges::Model) -> Self {
        Merge {
            id: m.id,
            primary_id: m.primary_id,
            merged_id: m.merged_id,
            reason: m.reason,
            confidence: m.confidence,
            evidence: serde_json::from_value(m.evidence).unwrap_or_default(),
            merged_by: m.merged_by,
            created_at: m.created_at,
            undone_at: m.undone_at,
        }
    }
}

/// The outcome of [`merge`]: the primary as it is now, and one record per duplicate.
#[derive(Debug, Clone)]
pub struct Merged {
    pub contact: contacts::Model,
    pub merges: Vec<Merge>,
}

/// Two contacts that look like one person.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// The older contact first.
    pub contacts: [contacts::Model; 2],
    /// `1 − Π(1 − cᵢ)` over the evidence, at most 1.
    pub confidence: f64,
    /// Strongest first.
    pub evidence: Vec<Evidence>,
    /// A merge of these two was undone before (a person said they differ).
    pub previously_unmerged: bool,
}

/// Several independent pieces of evidence combined: `1 − Π(1 − cᵢ)`, within 0..=1 (0 for none).
pub fn combine(confidences: impl IntoIterator<Item = f64>) -> f64 {
    let doubt: f64 = confidences
        .into_iter()
        .map(|c| 1.0 - c.clamp(0.0, 1.0))
        .product();
    (1.0 - doubt).clamp(0.0, 1.0)
}

/// The confidence of a shared identifier of `kind` (reference 1.5).
pub fn kind_confidence(k: &str) -> f64 {
    match k {
        kind::EMAIL => confidence::EXACT_EMAIL,
        kind::GITHUB => confidence::GITHUB,
        kind::NPM => confidence::NPM,
        _ => confidence::SOCIAL,
    }
}

fn compared_kind(k: &str) -> Option<&'static str> {
    COMPARED.iter().copied().find(|c| *c == k)
}

/// `first last`, lower-cased, single-spaced; only when both parts are there.
fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let words: Vec<String> = [first?, last?]
        .iter()
        .flat_map(|p| p.split_whitespace())
        .map(str::to_lowercase)
        .collect();
    let (f, l) = (first?.trim(), last?.trim());
    (!f.is_empty() && !l.is_empty()).then(|| words.join(" "))
}

/// What is compared of one contact.
#[derive(Debug, Clone)]
struct Person {
    id: Uuid,
    account_id: Option<Uuid>,
    name: Option<String>,
    /// (kind, normalised value, [`source`])
    values: Vec<(&'static str, String, &'static str)>,
}

/// The comparable columns of a contact row.
type Comparable = (
    Uuid,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Person {
    fn new(row: Comparable) -> Self {
        let (id, account_id, first, last, email, github, twitter, linked_in) = row;
        let mut values = Vec::new();
        let mut field = |k: &'static str, v: Option<String>, norm: fn(&str) -> Option<String>| {
            if let Some(n) = v.as_deref().and_then(norm) {
                values.push((k, n, source::FIELD));
            }
        };
        field(kind::EMAIL, email, identifiers::email);
        field(kind::GITHUB, github, identifiers::handle);
        field(kind::TWITTER, twitter, identifiers::handle);
        field(kind::LINKEDIN, linked_in, identifiers::linkedin);
        Person {
            id,
            account_id,
            name: full_name(first.as_deref(), last.as_deref()),
            values,
        }
    }

    fn of(m: &contacts::Model) -> Self {
        Person::new((
            m.id,
            m.account_id,
            m.first_name.clone(),
            m.last_name.clone(),
            m.email_normalized.clone(),
            m.github.clone(),
            m.twitter.clone(),
            m.linked_in.clone(),
        ))
    }

    fn add_identity(&mut self, k: &str, value: String) {
        if let Some(k) = compared_kind(k) {
            self.values.push((k, value, source::IDENTITY));
        }
    }
}

fn sources_of<'a>(p: &'a Person, k: &str, v: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for (k2, v2, s) in &p.values {
        if *k2 == k && v2 == v && !out.contains(s) {
            out.push(s);
        }
    }
    out
}

/// Everything two contacts have in common, strongest first.
fn pair_evidence(a: &Person, b: &Person) -> Vec<Evidence> {
    let mut out = Vec::new();
    let mut done: HashSet<(&str, &str)> = HashSet::new();
    for (k, v, _) in &a.values {
        if !done.insert((k, v.as_str())) {
            continue;
        }
        let on_b = sources_of(b, k, v);
        if on_b.is_empty() {
            continue;
        }
        let mut seen_on: Vec<Sighting> = sources_of(a, k, v)
            .into_iter()
            .map(|s| Sighting {
                contact_id: a.id,
                source: s.to_owned(),
            })
            .collect();
        seen_on.extend(on_b.into_iter().map(|s| Sighting {
            contact_id: b.id,
            source: s.to_owned(),
        }));
        out.push(Evidence {
            kind: (*k).to_owned(),
            value: v.clone(),
            confidence: kind_confidence(k),
            seen_on,
        });
    }
    if let (Some(na), Some(nb)) = (&a.name, &b.name)
        && na == nb
    {
        let same_account = a.account_id.is_some() && a.account_id == b.account_id;
        out.push(Evidence {
            kind: NAME.to_owned(),
            value: na.clone(),
            confidence: if same_account {
                confidence::NAME_AT_ACCOUNT
            } else {
                confidence::NAME
            },
            seen_on: [a.id, b.id]
                .into_iter()
                .map(|contact_id| Sighting {
                    contact_id,
                    source: source::FIELD.to_owned(),
                })
                .collect(),
        });
    }
    sort_evidence(&mut out);
    out
}

fn sort_evidence(e: &mut [Evidence]) {
    e.sort_by(|x, y| {
        y.confidence
            .total_cmp(&x.confidence)
            .then_with(|| x.kind.cmp(&y.kind))
            .then_with(|| x.value.cmp(&y.value))
    });
}

/// The unordered key of a pair.
fn pair(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The pairs (unordered) with an undone merge between them, among `among` (all when `None`).
async fn undone_pairs(
    db: &impl ConnectionTrait,
    org: Uuid,
    among: Option<&[Uuid]>,
) -> Result<HashSet<(Uuid, Uuid)>> {
    let mut q = contact_merges::Entity::find()
        .select_only()
        .column(contact_merges::Column::PrimaryId)
        .column(contact_merges::Column::MergedId)
        .filter(contact_merges::Column::OrganizationId.eq(org))
        .filter(contact_merges::Column::UndoneAt.is_not_null());
    if let Some(ids) = among {
        q = q
            .filter(contact_merges::Column::PrimaryId.is_in(ids.to_vec()))
            .filter(contact_merges::Column::MergedId.is_in(ids.to_vec()));
    }
    Ok(q.into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(a, b)| pair(a, b))
        .collect())
}

/// The full contact row, as the undo record keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContactRow {
    id: Uuid,
    organization_id: Uuid,
    account_id: Option<Uuid>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    email_normalized: Option<String>,
    title: Option<String>,
    phone: Option<String>,
    github: Option<String>,
    twitter: Option<String>,
    linked_in: Option<String>,
    city: Option<String>,
    country: Option<String>,
    notes: Option<String>,
    custom_fields: Value,
    tags: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&contacts::Model> for ContactRow {
    fn from(m: &contacts::Model) -> Self {
        ContactRow {
            id: m.id,
            organization_id: m.organization_id,
            account_id: m.account_id,
            first_name: m.first_name.clone(),
            last_name: m.last_name.clone(),
            email: m.email.clone(),
            email_normalized: m.email_normalized.clone(),
            title: m.title.clone(),
            phone: m.phone.clone(),
            github: m.github.clone(),
            twitter: m.twitter.clone(),
            linked_in: m.linked_in.clone(),
            city: m.city.clone(),
            country: m.country.clone(),
            notes: m.notes.clone(),
            custom_fields: m.custom_fields.clone(),
            tags: m.tags.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<ContactRow> for contacts::Model {
    fn from(r: ContactRow) -> Self {
        contacts::Model {
            id: r.id,
            organization_id: r.organization_id,
            account_id: r.account_id,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            email_normalized: r.email_normalized,
            title: r.title,
            phone: r.phone,
            github: r.github,
            twitter: r.twitter,
            linked_in: r.linked_in,
            city: r.city,
            country: r.country,
            notes: r.notes,
            custom_fields: r.custom_fields,
            tags: r.tags,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The ids of the rows a merge moved from the duplicate to the primary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Moved {
    signals: Vec<Uuid>,
    activities: Vec<Uuid>,
    deals: Vec<Uuid>,
    identities: Vec<Uuid>,
}

/// A primary field the merge filled: it was empty (`from` is always null) and got `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Filled {
    from: Option<String>,
    to: String,
}

/// Exactly what one merge changed, so that [`unmerge`] can reverse it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Undo {
    version: u32,
    /// The duplicate as it was just before the merge.
    duplicate: ContactRow,
    moved: Moved,
    /// API field name → the value the merge put into the (empty) primary field.
    filled: BTreeMap<String, Filled>,
    /// Tags the primary did not have and got from the duplicate.
    added_tags: Vec<String>,
    /// The account the primary inherited (it had none).
    inherited_account: Option<Uuid>,
}

/// The primary fields a merge fills when they are empty, by API name. `email` brings
/// `email_normalized` along.
const FILLABLE: &[&str] = &[
    "firstName",
    "lastName",
    "email",
    "title",
    "phone",
    "github",
    "twitter",
    "linkedIn",
    "city",
    "country",
    "notes",
];

fn slot<'a>(m: &'a mut contacts::Model, name: &str) -> Option<&'a mut Option<String>> {
    Some(match name {
        "firstName" => &mut m.first_name,
        "lastName" => &mut m.last_name,
        "email" => &mut m.email,
        "title" => &mut m.title,
        "phone" => &mut m.phone,
        "github" => &mut m.github,
        "twitter" => &mut m.twitter,
        "linkedIn" => &mut m.linked_in,
        "city" => &mut m.city,
        "country" => &mut m.country,
        "notes" => &mut m.notes,
        _ => return None,
    })
}

fn tag_list(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Every column of `m` set, the key unchanged: for writing a contact back whole.
fn whole_update(m: &contacts::Model) -> contacts::ActiveModel {
    contacts::ActiveModel {
        id: ActiveValue::Unchanged(m.id),
        organization_id: ActiveValue::Unchanged(m.organization_id),
        account_id: Set(m.account_id),
        first_name: Set(m.first_name.clone()),
        last_name: Set(m.last_name.clone()),
        email: Set(m.email.clone()),
        email_normalized: Set(m.email_normalized.clone()),
        title: Set(m.title.clone()),
        phone: Set(m.phone.clone()),
        github: Set(m.github.clone()),
        twitter: Set(m.twitter.clone()),
        linked_in: Set(m.linked_in.clone()),
        city: Set(m.city.clone()),
        country: Set(m.country.clone()),
        notes: Set(m.notes.clone()),
        custom_fields: Set(m.custom_fields.clone()),
        tags: Set(m.tags.clone()),
        created_at: ActiveValue::Unchanged(m.created_at),
        updated_at: Set(m.updated_at),
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

/// Contact writes: MEMBER+ and, for API keys, the `accounts:write` scope (as in
/// [`crate::crm::contacts`]).
fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("accounts:write")
}

fn read_rights(actor: &Actor) -> Result<()> {
    actor.require_scope("accounts:read")
}

fn check_first(first: u64) -> Result<()> {
    if (1..=MAX_PAGE).contains(&first) {
        Ok(())
    } else {
        Err(Error::invalid(
            "first",
            format!("must be between 1 and {MAX_PAGE}"),
        ))
    }
}

/// The contacts with these ids in the organization, locked for the rest of the transaction on
/// PostgreSQL (in id order, so concurrent merges queue rather than deadlock; an ingest that
/// would attribute a signal to one of them waits, and retries if the contact is gone).
/// SQLite's `BEGIN IMMEDIATE` already serialises writers.
async fn lock_contacts(
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
async fn identities_of(
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
struct Owned<E: EntityTrait> {
    id: E::Column,
    organization: E::Column,
    contact: E::Column,
}

const ACTIVITIES: Owned<activities::Entity> = Owned::of(
    activities::Column::Id,
    activities::Column::OrganizationId,
    activities::Column::ContactId,
);
const DEALS: Owned<deals::Entity> = Owned::of(
    deals::Column::Id,
    deals::Column::OrganizationId,
    deals::Column::ContactId,
);
const IDENTITIES: Owned<contact_identities::Entity> = Owned::of(
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
    async fn ids(&self, txn: &DatabaseTransaction, org: Uuid, contact: Uuid) -> Result<Vec<Uuid>> {
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
    async fn reassign(
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

/// Merges `duplicate_ids` (1 to [`MAX_DUPLICATES`]) into `primary_id` (MEMBER+, key scope
/// `accounts:write`), in one transaction: all or nothing. Any id that is not a contact of the
/// organization answers `NOT_FOUND` and nothing is written. Each duplicate gets its own record
/// (reason MANUAL) holding the evidence the pair shared at the time (possibly none; the
/// confidence is then absent).
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

/// Reverses one merge (MEMBER+, key scope `accounts:write`) in one transaction: re-creates the
/// duplicate with its id and fields, moves back the recorded signals, activities, deals and
/// identities that still belong to the primary, removes the tags the merge added, clears the
/// fields it filled where they still hold what it put there (a later edit wins), and un-inherits
/// the account if it is still the inherited one. `CONFLICT` when the merge was already undone,
/// when the primary no longer exists (undo the later merge first), or when the duplicate's email
/// now belongs to another contact. Returns the restored contact.
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

/// Pairs of the organization's contacts that look like one person, highest confidence first
/// (at most `first`, 1 to [`MAX_PAGE`]), each with its evidence: the same normalised email,
/// GitHub, Twitter/X or LinkedIn in a field or an identity (npm in identities) on both sides,
/// or the same full name (0.7 at the same account, 0.5 otherwise), combined as `1 − Π(1 − c)`.
///
/// Cost: four statements whatever the size (the comparable columns of every contact, their
/// identities, the undone merges, and the contacts of the page), grouped in memory. That is
/// fine up to tens of thousands of contacts; beyond, this wants a precomputed candidates table.
/// Values shared by more than [`MAX_GROUP`] contacts are not paired on.
pub async fn suggestions(
    db: &impl ConnectionTrait,
    actor: &Actor,
    first: u64,
) -> Result<Vec<Suggestion>> {
    read_rights(actor)?;
    check_first(first)?;
    let org = actor.organization_id;
    let rows: Vec<Comparable> = contacts::Entity::find()
        .select_only()
        .column(contacts::Column::Id)
        .column(contacts::Column::AccountId)
        .column(contacts::Column::FirstName)
        .column(contacts::Column::LastName)
        .column(contacts::Column::EmailNormalized)
        .column(contacts::Column::Github)
        .column(contacts::Column::Twitter)
        .column(contacts::Column::LinkedIn)
        .filter(contacts::Column::OrganizationId.eq(org))
        .into_tuple()
        .all(db)
        .await?;
    let mut people: HashMap<Uuid, Person> =
        rows.into_iter().map(|r| (r.0, Person::new(r))).collect();
    for (c, k, v) in identities_of(db, org, None).await? {
        if let Some(p) = people.get_mut(&c) {
            p.add_identity(&k, v);
        }
    }
    let mut groups: HashMap<(&str, &str), Vec<Uuid>> = HashMap::new();
    for p in people.values() {
        for (k, v, _) in &p.values {
            groups.entry((k, v.as_str())).or_default().push(p.id);
        }
        if let Some(n) = &p.name {
            groups.entry((NAME, n.as_str())).or_default().push(p.id);
        }
    }
    let mut pairs: HashSet<(Uuid, Uuid)> = HashSet::new();
    for ids in groups.values_mut() {
        ids.sort();
        ids.dedup();
        if ids.len() < 2 || ids.len() > MAX_GROUP {
            continue;
        }
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                pairs.insert((*a, *b));
            }
        }
    }
    let mut scored: Vec<(f64, (Uuid, Uuid), Vec<Evidence>)> = pairs
        .into_iter()
        .filter_map(|(a, b)| {
            let ev = pair_evidence(people.get(&a)?, people.get(&b)?);
            (!ev.is_empty()).then(|| (combine(ev.iter().map(|e| e.confidence)), (a, b), ev))
        })
        .collect();
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    scored.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    if scored.is_empty() {
        return Ok(Vec::new());
    }
    let undone = undone_pairs(db, org, None).await?;
    let ids: Vec<Uuid> = scored
        .iter()
        .flat_map(|(_, (a, b), _)| [*a, *b])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let models: HashMap<Uuid, contacts::Model> = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    Ok(scored
        .into_iter()
        .filter_map(|(confidence, (a, b), evidence)| {
            Some(Suggestion {
                contacts: [models.get(&a)?.clone(), models.get(&b)?.clone()],
                confidence,
                evidence,
                previously_unmerged: undone.contains(&(a, b)),
            })
        })
        .collect())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn confidences_combine_as_independent_evidence() {
        assert!(close(combine([]), 0.0));
        assert!(close(combine([0.95]), 0.95));
        assert!(close(combine([0.9, 0.7]), 0.97));
        assert!(close(combine([0.95, 0.9, 0.5]), 1.0 - 0.05 * 0.1 * 0.5));
        assert!(close(combine([1.0, 0.5]), 1.0));
        // Out-of-range inputs never push the result outside 0..=1.
        assert!(close(combine([1.5, 0.2]), 1.0));
        assert!(close(combine([-0.3]), 0.0));
    }

    fn person(
        id: u128,
        account: Option<u128>,
        name: (&str, &str),
        email: Option<&str>,
        github: Option<&str>,
    ) -> Person {
        Person::new((
            Uuid::from_u128(id),
            account.map(Uuid::from_u128),
            Some(name.0.to_owned()).filter(|s| !s.is_empty()),
            Some(name.1.to_owned()).filter(|s| !s.is_empty()),
            email.map(str::to_owned),
            github.map(str::to_owned),
            None,
            None,
        ))
    }

    #[test]
    fn pairs_share_normalised_values_and_full_names() {
        let mut a = person(
            1,
            Some(9),
            ("Jane", "Doe"),
            Some("jane@acme.io"),
            Some("@JaneDev"),
        );
        let mut b = person(2, Some(9), (" jane ", "DOE"), None, None);
        b.add_identity(kind::GITHUB, "janedev".into());
        a.add_identity(kind::NPM, "jd".into());
        b.add_identity(kind::NPM, "jd".into());
        b.add_identity(kind::DOMAIN, "acme.io".into());
        let ev = pair_evidence(&a, &b);
        let kinds: Vec<(&str, &str, f64)> = ev
            .iter()
            .map(|e| (e.kind.as_str(), e.value.as_str(), e.confidence))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("GITHUB", "janedev", 0.95),
                ("NPM", "jd", 0.95),
                ("NAME", "jane doe", 0.7)
            ]
        );
        assert_eq!(
            ev[0].seen_on,
            vec![
                Sighting {
                    contact_id: a.id,
                    source: source::FIELD.into()
                },
                Sighting {
                    contact_id: b.id,
                    source: source::IDENTITY.into()
                },
            ]
        );
        // The same name at different accounts, or with no account, counts less.
        let c = person(3, None, ("Jane", "Doe"), None, None);
        assert_eq!(pair_evidence(&a, &c)[0].confidence, confidence::NAME);
        // A first name alone is no full name.
        let d = person(4, Some(9), ("Jane", ""), None, None);
        assert!(pair_evidence(&a, &d).is_empty());
    }
}
