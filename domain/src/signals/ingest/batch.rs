//! What a batch knows before it writes: the signals, identities, contacts and accounts its
//! items name, read in a few statements, and the locks on what it may create.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use entity::{companies, contact_identities, contacts, signals};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use super::validate::Prepared;
use crate::Result;
use crate::signals::identifiers::{self, kind};
use crate::signals::merges::Candidate;
/// The account of an identity's contact, read by the contact's key for each identity found (a
/// join let PostgreSQL scan the organization's contacts for a batch of a thousand).
const IDENTITY_ACCOUNT: &str = "(SELECT c.account_id FROM contacts c \
     WHERE c.id = contact_identities.contact_id \
     AND c.organization_id = contact_identities.organization_id)";

fn identity_account() -> Expr {
    Expr::cust(IDENTITY_ACCOUNT)
}

/// The score tier of the account whose id is the SQL expression `account` of organization `org`
/// (another expression), read with the row that names the account: no lookup of its own.
fn tier_of(account: &str, org: &str) -> Expr {
    Expr::cust(format!(
        "(SELECT s.tier FROM account_scores s WHERE s.organization_id = {org} \
         AND s.account_id = {account})"
    ))
}

/// The tier of an identity's contact's account (as [`identity_account`] reads the account).
fn identity_tier() -> Expr {
    tier_of(IDENTITY_ACCOUNT, "contact_identities.organization_id")
}

/// The tier of a contact's account.
fn contact_tier() -> Expr {
    tier_of("contacts.account_id", "contacts.organization_id")
}

/// The tier of an account.
fn company_tier() -> Expr {
    tier_of("companies.id", "companies.organization_id")
}

/// The stored signals carrying `keys`, by key.
async fn by_idempotency(
    txn: &DatabaseTransaction,
    org: Uuid,
    keys: &[String],
) -> Result<HashMap<String, signals::Model>> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(crate::db::IN_LIST) {
        for s in signals::Entity::find()
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::IdempotencyKey.is_in(chunk.to_vec()))
            .all(txn)
            .await?
        {
            if let Some(k) = s.idempotency_key.clone() {
                found.insert(k, s);
            }
        }
    }
    Ok(found)
}

/// What [`claim_unknown`] found.
#[derive(Debug, Clone, Default)]
pub(super) struct Claimed {
    /// The batch names identities, domains or GitHub organizations not known yet: it may create
    /// people or companies.
    pub may_create: bool,
    /// Another batch claimed some of those since this one read them (it may have created them
    /// meanwhile): the whole batch is read again.
    pub reload_people: bool,
    /// Idempotency keys another batch claimed since this one read them: they are read again.
    pub reload_keys: Vec<String>,
}

/// What a claim is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Claim {
    People,
    Key(String),
}

/// On PostgreSQL, claims the identities, domains, GitHub organizations and idempotency keys of
/// the batch that `w` did not find, i.e. what the batch may create, until the transaction ends.
/// What exists already needs no claim: people seen before, the common case, never make batches
/// wait for each other. Idempotency keys need one because `signals` is partitioned by month
/// there, and a partitioned table's unique index must hold the partition column, which the
/// key's uniqueness does not.
///
/// A claim is a row of `ingest_claims` (migration `000031`): one multi-row
/// `INSERT … ON CONFLICT DO NOTHING` in ascending order (so concurrent batches queue rather than
/// deadlock). A row another batch is inserting makes this one wait for that batch to end; a row
/// that is there already was claimed by a batch that has ended, whose creations this batch
/// did not read: it locks those rows (`FOR UPDATE`) and the caller reads them again. Row locks
/// take no slot of PostgreSQL's shared lock table, unlike one advisory lock per claim.
pub(super) async fn claim_unknown(
    txn: &DatabaseTransaction,
    org: Uuid,
    items: &[Result<Prepared>],
    w: &Writer,
) -> Result<Claimed> {
    let mut claimed = Claimed::default();
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(claimed);
    }
    let mut claims: BTreeMap<i64, Claim> = BTreeMap::new();
    let mut person = |what: String| {
        claims
            .entry(crate::db::lock_key(org, &what))
            .or_insert(Claim::People);
    };
    for p in items.iter().flatten() {
        for (k, v, _) in p.hints.identities() {
            let known = w.identities.contains_key(&(k.to_owned(), v.clone()))
                || (k == kind::EMAIL && w.contacts_by_email.contains_key(&v));
            if !known {
                person(format!("{k}:{v}"));
            }
        }
        let email_domain = p
            .hints
            .email
            .as_deref()
            .and_then(identifiers::company_domain_of_email);
        for d in p.hints.domain.iter().chain(email_domain.iter()) {
            if !w.companies_by_domain.contains_key(d) {
                person(format!("domain:{d}"));
            }
        }
        if let Some(g) = &p.hints.github_org
            && !w.companies_by_ghorg.contains_key(g)
        {
            person(format!("ghorg:{g}"));
        }
    }
    claimed.may_create = !claims.is_empty();
    for p in items.iter().flatten() {
        if let Some(k) = &p.idempotency_key
            && !w.by_idempotency.contains_key(k)
        {
            claims
                .entry(crate::db::lock_key(org, &format!("idempotency:{k}")))
                .or_insert_with(|| Claim::Key(k.clone()));
        }
    }
    if claims.is_empty() {
        return Ok(claimed);
    }
    let started = std::time::Instant::now();
    let result = take_claims(txn, org, claims, claimed).await;
    CLAIMS.record(started.elapsed());
    result
}

/// Batches of this process that took claims, and the time they spent taking them: inserting the
/// rows, waiting for concurrent batches that claimed the same things to end, locking what they
/// left. A few milliseconds per batch alone; more means batches wait for each other (see
/// [`claim_totals`]).
struct ClaimTotals {
    batches: AtomicU64,
    nanos: AtomicU64,
}

impl ClaimTotals {
    fn record(&self, took: std::time::Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

static CLAIMS: ClaimTotals = ClaimTotals {
    batches: AtomicU64::new(0),
    nanos: AtomicU64::new(0),
};

/// Since this process started: how many ingest batches took claims (PostgreSQL, a batch that
/// may create people, accounts or signals with idempotency keys), and the time they spent taking
/// them. Concurrent batches naming the same new person wait here for each other, so the time per
/// batch is how much ingest is serialised (the `devsignal_ingest_claim_seconds` metric).
pub fn claim_totals() -> (u64, std::time::Duration) {
    (
        CLAIMS.batches.load(Ordering::Relaxed),
        std::time::Duration::from_nanos(CLAIMS.nanos.load(Ordering::Relaxed)),
    )
}

async fn take_claims(
    txn: &DatabaseTransaction,
    org: Uuid,
    mut claims: BTreeMap<i64, Claim>,
    mut claimed: Claimed,
) -> Result<Claimed> {
    let fresh: HashSet<i64> = claims_of(
        txn,
        format!(
            "INSERT INTO ingest_claims (claim, organization_id) \
             SELECT k, '{org}'::uuid FROM unnest(ARRAY[{}]::bigint[]) AS k ORDER BY k \
             ON CONFLICT DO NOTHING RETURNING claim",
            bigints(claims.keys())
        ),
    )
    .await?;
    let taken: Vec<i64> = claims
        .keys()
        .filter(|k| !fresh.contains(k))
        .copied()
        .collect();
    if taken.is_empty() {
        return Ok(claimed);
    }
    claims_of(
        txn,
        format!(
            "SELECT claim FROM ingest_claims WHERE organization_id = '{org}'::uuid \
             AND claim = ANY(ARRAY[{}]::bigint[]) ORDER BY claim FOR UPDATE",
            bigints(&taken)
        ),
    )
    .await?;
    for k in taken {
        match claims.remove(&k) {
            Some(Claim::People) => claimed.reload_people = true,
            Some(Claim::Key(key)) => claimed.reload_keys.push(key),
            None => {}
        }
    }
    Ok(claimed)
}

/// `keys` as the elements of a PostgreSQL array literal.
fn bigints<'a>(keys: impl IntoIterator<Item = &'a i64>) -> String {
    keys.into_iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `sql` on PostgreSQL and returns the `claim` column of its rows.
async fn claims_of(txn: &DatabaseTransaction, sql: String) -> Result<HashSet<i64>> {
    let rows = txn
        .query_all_raw(sea_orm::Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    let mut out = HashSet::with_capacity(rows.len());
    for r in rows {
        out.insert(r.try_get::<i64>("", "claim")?);
    }
    Ok(out)
}

/// What a batch knows and what it will write, kept in memory so lookups and inserts happen once
/// per batch.
pub(super) struct Writer {
    pub(super) org: Uuid,
    pub(super) now: DateTime<Utc>,
    pub(super) by_idempotency: HashMap<String, signals::Model>,
    /// Signals without a sender's id by (content key, event time).
    pub(super) by_content: HashMap<(String, DateTime<Utc>), signals::Model>,
    pub(super) identities: HashMap<(String, String), Uuid>,
    pub(super) contacts_by_email: HashMap<String, Uuid>,
    pub(super) contact_account: HashMap<Uuid, Option<Uuid>>,
    pub(super) companies_by_domain: HashMap<String, Uuid>,
    pub(super) companies_by_ghorg: HashMap<String, Uuid>,
    /// The score tier of each account a lookup above returned (`None`: not scored yet), for the
    /// `signal.created` payloads.
    pub(super) tiers: HashMap<Uuid, Option<String>>,
    pub(super) new_signals: Vec<signals::Model>,
    pub(super) new_identities: Vec<contact_identities::ActiveModel>,
    /// Accounts and contacts created by the batch, inserted at flush (their `*.created` events
    /// carry them as they are then, traits applied).
    pub(super) new_companies: Vec<companies::Model>,
    pub(super) new_contacts: Vec<contacts::Model>,
    /// Existing contacts the batch linked to an account.
    pub(super) links: BTreeMap<Uuid, Vec<Uuid>>,
    /// Events other than the `*.created` and `signal.created` ones, in the order they happened.
    pub(super) events: Vec<(&'static str, Value)>,
    pub(super) touched_accounts: BTreeSet<Uuid>,
    /// Pairs to auto-merge at flush time.
    pub(super) merge_candidates: Vec<Candidate>,
    /// The plan's limits when the installation enforces them ([`Writer::limit`]).
    pub(super) limits: Option<crate::billing::Standing>,
    /// Contacts the batch may still create (`None`: unlimited) and how many existed before.
    pub(super) contact_room: Option<u64>,
    pub(super) contacts_before: u64,
    /// Signals the batch may still store this month (`None`: unlimited).
    pub(super) signal_room: Option<u64>,
}

impl Writer {
    /// Reads the room the plan leaves: signals this month, and contacts when the batch may create
    /// some (`may_create`: it names people not known yet), under the contact limit's lock.
    pub(super) async fn limit(
        &mut self,
        txn: &DatabaseTransaction,
        limits: Option<crate::billing::Standing>,
        may_create: bool,
    ) -> Result<()> {
        use crate::billing::{Metric, usage};
        if let Some(st) = &limits {
            if may_create
                && let Some((used, room)) = usage::room(txn, self.org, st, Metric::Contacts).await?
            {
                self.contacts_before = used;
                self.contact_room = Some(room);
            }
            self.signal_room = usage::signal_room(txn, self.org, st, self.now)
                .await?
                .map(|(_, room)| room);
        }
        self.limits = limits;
        Ok(())
    }

    /// The refusal of a signal past the month's limit.
    pub(super) fn signal_refusal(&self) -> crate::Error {
        use crate::billing::Metric;
        match &self.limits {
            Some(st) => st.refuse(
                Metric::SignalsPerMonth,
                st.limit(Metric::SignalsPerMonth).unwrap_or(0),
            ),
            None => crate::Error::Internal("no signal limit".into()),
        }
    }

    /// Reads again the stored signals of `keys` (after claiming them: another batch may have
    /// stored some meanwhile).
    pub(super) async fn reload_idempotency(
        &mut self,
        txn: &DatabaseTransaction,
        org: Uuid,
        keys: &[String],
    ) -> Result<()> {
        self.by_idempotency
            .extend(by_idempotency(txn, org, keys).await?);
        Ok(())
    }

    pub(super) async fn load(
        txn: &DatabaseTransaction,
        org: Uuid,
        items: &[Result<Prepared>],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let ok: Vec<&Prepared> = items.iter().flatten().collect();
        let keys: Vec<String> = ok
            .iter()
            .filter_map(|p| p.idempotency_key.clone())
            .collect();
        let by_idempotency = by_idempotency(txn, org, &keys).await?;
        // Content dedup: the earlier signals without a sender's id whose content key and event
        // time equal an eligible item's (the index is (organization, dedupe_key, timestamp)).
        let content: HashSet<(String, DateTime<Utc>)> = ok
            .iter()
            .filter(|p| p.content_dedup)
            .map(|p| (p.dedupe_key.clone(), p.timestamp))
            .collect();
        let content: Vec<(String, DateTime<Utc>)> = content.into_iter().collect();
        let mut by_content: HashMap<(String, DateTime<Utc>), signals::Model> = HashMap::new();
        for chunk in content.chunks(crate::db::IN_LIST / 2) {
            let keys: BTreeSet<String> = chunk.iter().map(|(k, _)| k.clone()).collect();
            let times: BTreeSet<DateTime<Utc>> = chunk.iter().map(|(_, t)| *t).collect();
            for s in signals::Entity::find()
                .filter(signals::Column::OrganizationId.eq(org))
                .filter(signals::Column::DedupeKey.is_in(keys))
                .filter(signals::Column::Timestamp.is_in(times))
                .filter(signals::Column::IdempotencyKey.is_null())
                .all(txn)
                .await?
            {
                by_content
                    .entry((s.dedupe_key.clone(), s.timestamp))
                    .or_insert(s);
            }
        }
        let mut pairs: HashSet<(String, String)> = HashSet::new();
        let mut emails = HashSet::new();
        let mut domains = HashSet::new();
        let mut orgs = HashSet::new();
        let mut contact_ids: HashSet<Uuid> = HashSet::new();
        for p in &ok {
            for (k, v, _) in p.hints.identities() {
                pairs.insert((k.to_owned(), v));
            }
            if let Some(e) = &p.hints.email {
                emails.insert(e.clone());
                domains.extend(identifiers::company_domain_of_email(e));
            }
            domains.extend(p.hints.domain.clone());
            orgs.extend(p.hints.github_org.clone());
            contact_ids.extend(p.actor_id);
        }
        let mut identities = HashMap::new();
        let values: Vec<String> = pairs
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let kinds: Vec<String> = pairs
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Each contact found, by identity or by email, comes with its account and that account's
        // tier: no third lookup unless the batch names contacts by id.
        let mut contact_account = HashMap::new();
        let mut tiers = HashMap::new();
        for chunk in values.chunks(crate::db::IN_LIST) {
            // (organization, kind, value) is the unique index: naming the kinds lets the lookup
            // use all of it instead of reading every identity of the organization.
            for (kind, value, contact, account, tier) in contact_identities::Entity::find()
                .select_only()
                .column(contact_identities::Column::Kind)
                .column(contact_identities::Column::Value)
                .column(contact_identities::Column::ContactId)
                .expr(identity_account())
                .expr(identity_tier())
                .filter(contact_identities::Column::OrganizationId.eq(org))
                .filter(contact_identities::Column::Kind.is_in(kinds.clone()))
                .filter(contact_identities::Column::Value.is_in(chunk.to_vec()))
                .into_tuple::<(String, String, Uuid, Option<Uuid>, Option<String>)>()
                .all(txn)
                .await?
            {
                if pairs.contains(&(kind.clone(), value.clone())) {
                    identities.insert((kind, value), contact);
                    contact_account.insert(contact, account);
                    tiers.extend(account.map(|a| (a, tier)));
                }
            }
        }
        let mut contacts_by_email = HashMap::new();
        let emails: Vec<String> = emails.into_iter().collect();
        for chunk in emails.chunks(crate::db::IN_LIST) {
            for (id, e, account, tier) in contacts::Entity::find()
                .select_only()
                .column(contacts::Column::Id)
                .column(contacts::Column::EmailNormalized)
                .column(contacts::Column::AccountId)
                .expr(contact_tier())
                .filter(contacts::Column::OrganizationId.eq(org))
                .filter(contacts::Column::EmailNormalized.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Option<String>, Option<Uuid>, Option<String>)>()
                .all(txn)
                .await?
            {
                if let Some(e) = e {
                    contacts_by_email.insert(e, id);
                }
                contact_account.insert(id, account);
                tiers.extend(account.map(|a| (a, tier)));
            }
        }
        let ids: Vec<Uuid> = contact_ids
            .into_iter()
            .filter(|c| !contact_account.contains_key(c))
            .collect();
        for chunk in ids.chunks(crate::db::IN_LIST) {
            for (id, account, tier) in contacts::Entity::find()
                .select_only()
                .column(contacts::Column::Id)
                .column(contacts::Column::AccountId)
                .expr(contact_tier())
                .filter(contacts::Column::OrganizationId.eq(org))
                .filter(contacts::Column::Id.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Option<Uuid>, Option<String>)>()
                .all(txn)
                .await?
            {
                contact_account.insert(id, account);
                tiers.extend(account.map(|a| (a, tier)));
            }
        }
        let mut companies_by_domain = HashMap::new();
        let domains: Vec<String> = domains.into_iter().collect();
        for chunk in domains.chunks(crate::db::IN_LIST) {
            for (id, d, tier) in companies::Entity::find()
                .select_only()
                .column(companies::Column::Id)
                .column(companies::Column::DomainNormalized)
                .expr(company_tier())
                .filter(companies::Column::OrganizationId.eq(org))
                .filter(companies::Column::DomainNormalized.is_in(chunk.to_vec()))
                .into_tuple::<(Uuid, Option<String>, Option<String>)>()
                .all(txn)
                .await?
            {
                tiers.insert(id, tier);
                if let Some(d) = d {
                    companies_by_domain.insert(d, id);
                }
            }
        }
        let mut companies_by_ghorg = HashMap::new();
        if !orgs.is_empty() {
            // GitHub organizations compare case-insensitively; accounts carry them as typed.
            let wanted: HashSet<String> = orgs;
            let variants: Vec<String> = wanted.iter().cloned().collect();
            for (id, g, tier) in companies::Entity::find()
                .select_only()
                .column(companies::Column::Id)
                .column(companies::Column::GithubOrg)
                .expr(company_tier())
                .filter(companies::Column::OrganizationId.eq(org))
                .filter(
                    Expr::expr(Func::lower(Expr::col(companies::Column::GithubOrg)))
                        .is_in(variants),
                )
                .into_tuple::<(Uuid, Option<String>, Option<String>)>()
                .all(txn)
                .await?
            {
                tiers.insert(id, tier);
                if let Some(g) = g {
                    companies_by_ghorg.entry(g.to_lowercase()).or_insert(id);
                }
            }
        }
        Ok(Writer {
            org,
            now,
            by_idempotency,
            by_content,
            identities,
            contacts_by_email,
            contact_account,
            companies_by_domain,
            companies_by_ghorg,
            tiers,
            new_signals: Vec::new(),
            new_identities: Vec::new(),
            new_companies: Vec::new(),
            new_contacts: Vec::new(),
            links: BTreeMap::new(),
            events: Vec::new(),
            touched_accounts: BTreeSet::new(),
            merge_candidates: Vec::new(),
            limits: None,
            contact_room: None,
            contacts_before: 0,
            signal_room: None,
        })
    }
}
