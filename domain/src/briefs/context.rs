//! What a brief is built from: the account's facts and recent signals, each under a stable id
//! the model must cite. Signals are cited by their own UUID; everything else by a `fact:` id
//! (`fact:name`, `fact:domain`, `fact:score`, `fact:trend`, `fact:factor:<name>`,
//! `fact:contact:<uuid>`, `fact:deal:<uuid>`, `fact:activity`, …). The same context gives the
//! prompt, the set of ids citations are checked against, and the hash that keys the cache.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{account_scores, companies, contacts, deals, signals};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::scoring::Factor;
use crate::{Actor, Result};

/// The window of signals a brief looks at.
pub const WINDOW_DAYS: i64 = 30;
pub const MAX_CONTACTS: u64 = 50;
pub const MAX_SIGNALS: u64 = 200;
pub const MAX_DEALS: u64 = 20;
/// A signal's metadata is shown up to this many characters of its JSON.
const MAX_METADATA_CHARS: usize = 300;

/// An account's inputs, read once.
#[derive(Debug, Clone)]
pub struct BriefContext {
    pub account: companies::Model,
    /// `(id, value)` in prompt order.
    pub facts: Vec<(String, Value)>,
    /// Newest first.
    pub signals: Vec<signals::Model>,
    pub contacts: Vec<contacts::Model>,
    pub deals: Vec<deals::Model>,
    pub score: Option<account_scores::Model>,
    pub factors: Vec<Factor>,
    /// Signals of the window (all of them, not only those shown).
    pub signals_in_window: u64,
}

/// The id a contact is cited by.
pub fn contact_fact(id: Uuid) -> String {
    format!("fact:contact:{id}")
}

/// The id a deal is cited by.
pub fn deal_fact(id: Uuid) -> String {
    format!("fact:deal:{id}")
}

/// The id a score factor is cited by.
pub fn factor_fact(name: &str) -> String {
    format!("fact:factor:{name}")
}

/// A contact's display name: first and last name, else the email, else its id.
pub fn contact_name(c: &contacts::Model) -> String {
    let name = [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        name
    } else if let Some(e) = c.email.as_deref().filter(|e| !e.is_empty()) {
        e.to_owned()
    } else {
        c.id.to_string()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Reads the account's context as of `now`. `NOT_FOUND` for an account of another
/// organization; the scopes are the caller's to check.
pub async fn load_context(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<BriefContext> {
    let org = actor.organization_id;
    let account = crate::crm::accounts::get(db, actor, account_id).await?;
    let contacts = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::AccountId.eq(account_id))
        .order_by_desc(contacts::Column::UpdatedAt)
        .order_by_desc(contacts::Column::Id)
        .limit(MAX_CONTACTS)
        .all(db)
        .await?;
    let since = now - chrono::Duration::days(WINDOW_DAYS);
    let in_window = || {
        signals::Entity::find()
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::AccountId.eq(account_id))
            .filter(signals::Column::Timestamp.gte(since))
            .filter(signals::Column::Timestamp.lte(now))
    };
    let signals = in_window()
        .order_by_desc(signals::Column::Timestamp)
        .order_by_desc(signals::Column::Id)
        .limit(MAX_SIGNALS)
        .all(db)
        .await?;
    let signals_in_window = if (signals.len() as u64) < MAX_SIGNALS {
        signals.len() as u64
    } else {
        in_window().count(db).await?
    };
    let score = account_scores::Entity::find()
        .filter(account_scores::Column::OrganizationId.eq(org))
        .filter(account_scores::Column::AccountId.eq(account_id))
        .one(db)
        .await?;
    let deals = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org))
        .filter(deals::Column::AccountId.eq(account_id))
        .order_by_desc(deals::Column::UpdatedAt)
        .order_by_desc(deals::Column::Id)
        .limit(MAX_DEALS)
        .all(db)
        .await?;
    let factors: Vec<Factor> = score
        .as_ref()
        .and_then(|s| serde_json::from_value(s.factors.clone()).ok())
        .unwrap_or_default();
    let mut ctx = BriefContext {
        account,
        facts: Vec::new(),
        signals,
        contacts,
        deals,
        score,
        factors,
        signals_in_window,
    };
    ctx.facts = ctx.build_facts();
    Ok(ctx)
}

impl BriefContext {
    fn build_facts(&self) -> Vec<(String, Value)> {
        let a = &self.account;
        let mut facts = vec![("fact:name".to_owned(), json!({"name": a.name}))];
        let optional = [
            ("fact:domain", "domain", &a.domain),
            ("fact:industry", "industry", &a.industry),
            ("fact:size", "size", &a.size),
            ("fact:website", "website", &a.website),
            ("fact:githubOrg", "githubOrg", &a.github_org),
            ("fact:description", "description", &a.description),
        ];
        for (id, key, value) in optional {
            if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                facts.push((id.to_owned(), json!({ key: truncate(v, 500) })));
            }
        }
        if a.city.is_some() || a.country.is_some() {
            facts.push((
                "fact:location".to_owned(),
                json!({"city": a.city, "country": a.country}),
            ));
        }
        let people: HashSet<Uuid> = self.signals.iter().filter_map(|s| s.contact_id).collect();
        facts.push((
            "fact:activity".to_owned(),
            json!({
                "windowDays": WINDOW_DAYS,
                "signals": self.signals_in_window,
                "distinctPeopleInShownSignals": people.len(),
            }),
        ));
        if let Some(s) = &self.score {
            facts.push((
                "fact:score".to_owned(),
                json!({
                    "score": s.score,
                    "tier": s.tier,
                    "signalCount": s.signal_count,
                    "userCount": s.user_count,
                }),
            ));
            facts.push(("fact:trend".to_owned(), json!({"trend": s.trend})));
            for f in &self.factors {
                facts.push((
                    factor_fact(&f.name),
                    json!({
                        "points": f.points,
                        "maxPoints": f.max_points,
                        "description": f.description,
                    }),
                ));
            }
        }
        for c in &self.contacts {
            facts.push((
                contact_fact(c.id),
                json!({
                    "id": c.id,
                    "name": contact_name(c),
                    "email": c.email,
                    "title": c.title,
                    "github": c.github,
                }),
            ));
        }
        for d in &self.deals {
            facts.push((
                deal_fact(d.id),
                json!({
                    "title": d.title,
                    "stage": d.stage,
                    "amount": d.amount,
                    "currency": d.currency,
                    "expectedCloseDate": d.expected_close_date,
                }),
            ));
        }
        facts
    }

    /// The signals as the prompt shows them.
    fn signal_lines(&self) -> Vec<Value> {
        let shown: HashSet<Uuid> = self.contacts.iter().map(|c| c.id).collect();
        self.signals
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "type": s.signal_type,
                    "time": s.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "person": s.contact_id.filter(|c| shown.contains(c)).map(contact_fact),
                    "metadata": truncate(&s.metadata.to_string(), MAX_METADATA_CHARS),
                })
            })
            .collect()
    }

    /// Every id a citation may name.
    pub fn ids(&self) -> HashSet<String> {
        self.facts
            .iter()
            .map(|(id, _)| id.clone())
            .chain(self.signals.iter().map(|s| s.id.to_string()))
            .collect()
    }

    /// The account's people, by id.
    pub fn contacts_by_id(&self) -> HashMap<Uuid, &contacts::Model> {
        self.contacts.iter().map(|c| (c.id, c)).collect()
    }

    /// The data part of the prompt: facts and signals with their ids.
    pub fn data(&self) -> Value {
        let facts: Vec<Value> = self
            .facts
            .iter()
            .map(|(id, v)| json!({"id": id, "fact": v}))
            .collect();
        json!({"facts": facts, "signals": self.signal_lines()})
    }

    /// The hash of everything a brief by `writer` (`model:<id>` or `fallback`) is built from.
    pub fn hash(&self, writer: &str) -> String {
        let input = json!({
            "version": super::PROMPT_VERSION,
            "writer": writer,
            "account": self.account.id,
            "data": self.data(),
        });
        crate::secrets::sha256_hex(&input.to_string())
    }

    /// The user message: the data, then what to answer.
    pub fn prompt(&self) -> String {
        format!(
            "Account data (JSON). Each fact and signal has an \"id\".\n{}\n\n{}",
            self.data(),
            INSTRUCTIONS
        )
    }
}

/// What the model is asked for.
pub const INSTRUCTIONS: &str = r#"Write a brief about this account for a sales team, and suggest 3 to 5 next best actions.
Use only the data above. Every statement and every action must cite, in "cites", the ids of the facts and signals it rests on (at least one; copy ids exactly). Do not state anything the data does not support.
Sections: "summary" (what is happening, recent signal patterns), "company" (firmographics), "usage" (product usage seen in signals), "people" (key people, roles and activity), "approach" (how to reach out).
Answer with one JSON object and nothing else:
{"statements":[{"section":"summary","text":"...","cites":["<id>"]}],"actions":[{"action":"short imperative","reasoning":"one or two sentences","priority":"high|medium|low","contactId":"<contact uuid or null>","cites":["<id>"]}]}"#;
