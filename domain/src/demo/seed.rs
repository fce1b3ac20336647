//! Writing the demo's data through the real paths: CRM functions, the ingest path, the model.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use entity::score_snapshots;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::data::{self, ACTIVITIES, COMPANIES, DAYS, DEALS, TAG};
use crate::alerts::{self, Outbound};
use crate::audit::Meta;
use crate::crm::{accounts, activities, contacts, deals};
use crate::scoring;
use crate::signals::{self, Input};
use crate::{Actor, Error, Result};

/// The ids of everything a seed created.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Objects {
    pub accounts: Vec<Uuid>,
    pub contacts: Vec<Uuid>,
    pub signals: Vec<Uuid>,
    pub deals: Vec<Uuid>,
    pub activities: Vec<Uuid>,
    pub alert_rules: Vec<Uuid>,
}

impl Objects {
    pub fn from_json(v: &Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    pub fn counts(&self) -> Counts {
        Counts {
            accounts: self.accounts.len(),
            contacts: self.contacts.len(),
            signals: self.signals.len(),
            deals: self.deals.len(),
            activities: self.activities.len(),
            alert_rules: self.alert_rules.len(),
            snapshots: 0,
        }
    }
}

/// How many rows of each kind a seed wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub accounts: usize,
    pub contacts: usize,
    pub signals: usize,
    pub deals: usize,
    pub activities: usize,
    pub alert_rules: usize,
    /// Daily score snapshots computed (history; not recorded in `demo_seeds`: they go with
    /// their accounts).
    pub snapshots: usize,
}

/// Seeds the demo into the actor's organization, noting each created id in `objects` as it
/// goes (so a failure can be undone).
pub(super) async fn seed(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    out: &Outbound<'_>,
    seed: u64,
    objects: &mut Objects,
) -> Result<Counts> {
    let org = actor.organization_id;
    let now = Utc::now();

    let account_inputs = COMPANIES
        .iter()
        .map(|c| accounts::CreateInput {
            name: c.name.into(),
            domain: Some(c.domain.into()),
            industry: Some(c.industry.into()),
            size: Some(c.size.into()),
            website: Some(format!("https://{}", c.domain)),
            github_org: Some(c.github_org.into()),
            city: Some(c.city.into()),
            country: Some(c.country.into()),
            description: None,
            custom_fields: None,
            tags: std::iter::once(TAG)
                .chain(c.tags.iter().copied())
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    let created = accounts::create_many(db, actor, meta, account_inputs, "accounts").await?;
    objects.accounts = created.iter().map(|a| a.id).collect();
    let account_ids = objects.accounts.clone();

    let mut contact_inputs = Vec::new();
    let mut contact_keys = Vec::new();
    for (ci, c) in COMPANIES.iter().enumerate() {
        for (pi, (first, last, title, login)) in c.people.iter().enumerate() {
            contact_inputs.push(contacts::Input {
                first_name: Some(Some((*first).into())),
                last_name: Some(Some((*last).into())),
                email: Some(Some(format!(
                    "{}.{}@{}",
                    ascii(first),
                    ascii(last),
                    c.domain
                ))),
                title: Some(Some((*title).into())),
                github: Some(Some((*login).into())),
                city: Some(Some(c.city.into())),
                country: Some(Some(c.country.into())),
                tags: Some(vec![TAG.into()]),
                account_id: Some(Some(account_ids[ci])),
                ..Default::default()
            });
            contact_keys.push((ci, pi));
        }
    }
    let people = contacts::create_many(db, actor, meta, contact_inputs, "contacts").await?;
    objects.contacts = people.iter().map(|c| c.id).collect();
    let person: HashMap<(usize, usize), Uuid> = contact_keys
        .into_iter()
        .zip(objects.contacts.iter().copied())
        .collect();

    // The signals, through the ingest path (one batch: the maximum is 1,000).
    let generated = data::signals(seed, now);
    let inputs: Vec<Input> = generated
        .iter()
        .enumerate()
        .map(|(i, s)| Input {
            signal_type: s.signal_type.into(),
            actor_id: s
                .person
                .and_then(|p| person.get(&(s.company, p)))
                .map(Uuid::to_string),
            account_id: Some(account_ids[s.company].to_string()),
            anonymous_id: s.anonymous_id.clone(),
            metadata: Some(s.metadata.clone()),
            idempotency_key: Some(format!("demo:{seed}:{i}")),
            timestamp: Some(s.timestamp.to_rfc3339()),
            ..Default::default()
        })
        .collect();
    for chunk in inputs.chunks(signals::MAX_BATCH) {
        let results = signals::ingest_many(
            db,
            actor,
            chunk.to_vec(),
            "signals",
            signals::system_source::API,
        )
        .await?;
        for r in results {
            let stored = r?;
            if let Some(s) = stored.signal {
                objects.signals.push(s.id);
            }
        }
    }

    // Scores now, by the model.
    scoring::rescore(db, org, &account_ids).await?;
    // History: each past day's score as the model gives it from the signals before that day's
    // end (today's is the score just stored).
    let (_, config) = scoring::current_config(db, org).await?;
    let mut rows = Vec::new();
    for days_ago in 1..DAYS {
        let at = now - Duration::days(days_ago);
        let asked: Vec<(Uuid, chrono::DateTime<Utc>)> =
            account_ids.iter().map(|a| (*a, at)).collect();
        let inputs = scoring::load_inputs_as_of(db, org, &asked).await?;
        for a in &account_ids {
            let Some((_, i)) = inputs.get(a) else {
                continue;
            };
            if i.signals.is_empty() && i.last_signal_at.is_none() {
                continue;
            }
            let c = scoring::compute(&config, i, at);
            rows.push(score_snapshots::ActiveModel {
                organization_id: Set(org),
                account_id: Set(*a),
                day: Set(scoring::day_of(at)),
                score: Set(c.score),
                tier: Set(c.tier.to_owned()),
                signal_count: Set(c.signal_count),
                user_count: Set(c.user_count),
                captured_at: Set(at),
            });
        }
    }
    let snapshots = rows.len() + scoring::capture_snapshots(db, org, now).await? as usize;
    for chunk in rows.chunks(crate::db::rows_per_insert::<score_snapshots::Entity>()) {
        score_snapshots::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    score_snapshots::Column::OrganizationId,
                    score_snapshots::Column::AccountId,
                    score_snapshots::Column::Day,
                ])
                .update_columns([
                    score_snapshots::Column::Score,
                    score_snapshots::Column::Tier,
                    score_snapshots::Column::SignalCount,
                    score_snapshots::Column::UserCount,
                    score_snapshots::Column::CapturedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }

    for (ci, title, stage, amount, pi) in DEALS {
        let d = deals::create(
            db,
            actor,
            meta,
            deals::Input {
                title: Some((*title).into()),
                amount: Some(Some(*amount)),
                currency: Some("USD".into()),
                stage: Some((*stage).into()),
                account_id: Some(Some(account_ids[*ci])),
                contact_id: Some(person.get(&(*ci, *pi)).copied()),
                tags: Some(vec![TAG.into()]),
                ..Default::default()
            },
        )
        .await?;
        objects.deals.push(d.id);
    }
    for (ci, kind, title, description, pi) in ACTIVITIES {
        let a = activities::create(
            db,
            actor,
            meta,
            activities::Input {
                kind: Some((*kind).into()),
                title: Some((*title).into()),
                description: Some(Some((*description).into())),
                account_id: Some(Some(account_ids[*ci])),
                contact_id: Some(pi.and_then(|p| person.get(&(*ci, p)).copied())),
                ..Default::default()
            },
        )
        .await?;
        objects.activities.push(a.id);
    }
    let rule = alerts::create_rule(
        db,
        actor,
        meta,
        out,
        alerts::RuleInput {
            name: "Demo: an account turns HOT".into(),
            trigger: alerts::Trigger::TierChanged,
            params: alerts::Params {
                to_tiers: vec!["HOT".into()],
                ..Default::default()
            },
            filter: alerts::Filter {
                tags: vec![TAG.into()],
                ..Default::default()
            },
            recipients: Vec::new(),
            cooldown_minutes: alerts::DEFAULT_COOLDOWN_MINUTES,
            enabled: true,
            channels: alerts::Channels {
                in_app: true,
                email: false,
            },
            slack: alerts::SlackChange::Keep,
        },
    )
    .await?;
    objects.alert_rules.push(rule.row.id);
    if objects.signals.is_empty() {
        return Err(Error::Internal("the demo stored no signal".into()));
    }
    Ok(Counts {
        snapshots,
        ..objects.counts()
    })
}

/// A name as the local part of an address (`Inês` → `ines`).
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            c => c,
        })
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}
