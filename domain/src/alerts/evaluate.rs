//! The alert consumer: reads the event log after its cursor, in order, and fires the rules the
//! events satisfy. One transaction per batch holds the cursor row, so concurrent workers
//! serialise on it: every event is evaluated once, none is skipped, and a crash leaves the batch
//! to the next attempt. A firing sets the (rule, account) cooldown, leaves a notification for each
//! recipient and appends `alert.triggered` (which webhooks and subscriptions carry on).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    account_scores, alert_cooldowns, alert_rules, companies, events as event_rows, memberships,
    notifications, organizations, score_snapshots, users,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{DEFAULT_WITHIN_DAYS, Rule, Trigger};
use crate::Result;
use crate::events::{CursorStart, EventType};

/// The consumer's row in `webhook_cursor`.
pub const CURSOR: &str = "alerts";
/// Events evaluated per transaction.
pub const BATCH: u64 = 500;

/// What one fired alert says.
#[derive(Debug, Clone)]
pub(super) struct Firing<'a> {
    pub rule: &'a Rule,
    pub account_id: Uuid,
    pub account_name: String,
    /// The event that fired it (none for the time-based triggers).
    pub event_seq: Option<i64>,
    /// When it happened: the event's time, or the moment a time-based condition was met.
    pub at: DateTime<Utc>,
    pub title: String,
    pub data: Value,
}

/// `true` when an account passes a rule's filter (its current tier, its tags, the one account).
pub(super) fn passes(rule: &Rule, account: Uuid, tier: Option<&String>, tags: &[String]) -> bool {
    let f = &rule.filter;
    !(f.account_id.is_some_and(|a| a != account)
        || (!f.tiers.is_empty() && !tier.is_some_and(|t| f.tiers.contains(t)))
        || (!f.tags.is_empty() && !f.tags.iter().any(|t| tags.contains(t))))
}

/// Evaluates every new event until the log is drained; returns how many alerts fired.
pub async fn evaluate_all(db: &DatabaseConnection) -> Result<usize> {
    crate::events::sequence(db).await?;
    // An idle poll reads and leaves (a missing cursor is created below, at the log's end).
    if crate::events::pending_after(db, CURSOR).await? == Some(false) {
        return Ok(0);
    }
    let mut fired = 0;
    loop {
        let txn = crate::db::begin(db).await?;
        let (read, n) = evaluate(&txn, BATCH).await?;
        txn.commit().await?;
        fired += n;
        if (read as u64) < BATCH {
            return Ok(fired);
        }
    }
}

/// Creates the alert cursor at the log's end unless it exists: rules watch what happens from
/// then on, not the history before alerts existed. Creating the first rule does it (after
/// [`crate::events::sequence`]), so a rule sees every event committed after it, however late the
/// evaluator's first round comes; the evaluator does it too, for installations whose rules
/// predate the cursor.
pub(super) async fn ensure_cursor(txn: &DatabaseTransaction) -> Result<()> {
    crate::events::create_cursor(txn, CURSOR, CursorStart::End).await
}

/// Evaluates up to `limit` events after the cursor inside `txn` and moves the cursor past them.
/// Returns how many events were read and how many alerts fired.
#[tracing::instrument(name = "alerts.evaluate", skip_all, fields(events = tracing::field::Empty, fired = tracing::field::Empty))]
pub async fn evaluate(txn: &DatabaseTransaction, limit: u64) -> Result<(usize, usize)> {
    let now = Utc::now();
    let after = crate::events::lock_cursor(txn, CURSOR, CursorStart::End).await?;
    let head = crate::events::top_position(txn).await?;
    let batch = event_rows::Entity::find()
        .filter(event_rows::Column::Position.gt(after))
        .order_by_asc(event_rows::Column::Position)
        .limit(limit.max(1))
        .all(txn)
        .await?;
    let Some(last) = batch.last().and_then(|e| e.position) else {
        crate::events::pass_deleted(txn, CURSOR, after, head).await?;
        return Ok((0, 0));
    };
    let watched = [
        EventType::ScoreChanged.as_str(),
        EventType::TierChanged.as_str(),
        EventType::SignalCreated.as_str(),
        EventType::AnomalyDetected.as_str(),
    ];
    let relevant: Vec<&event_rows::Model> = batch
        .iter()
        .filter(|e| watched.contains(&e.event_type.as_str()))
        .collect();
    let orgs: HashSet<Uuid> = relevant.iter().map(|e| e.organization_id).collect();
    let rules: Vec<Rule> = if orgs.is_empty() {
        Vec::new()
    } else {
        alert_rules::Entity::find()
            .filter(alert_rules::Column::OrganizationId.is_in(orgs))
            .filter(alert_rules::Column::Enabled.eq(true))
            .order_by_asc(alert_rules::Column::Id)
            .all(txn)
            .await?
            .into_iter()
            .filter_map(Rule::from_row)
            .collect()
    };
    let fired = if rules.is_empty() {
        0
    } else {
        fire(txn, &relevant, &rules, now).await?
    };
    crate::events::move_cursor(txn, CURSOR, last).await?;
    let span = tracing::Span::current();
    span.record("events", batch.len());
    span.record("fired", fired);
    Ok((batch.len(), fired))
}

/// The account an event is about, if any.
fn account_of(e: &event_rows::Model) -> Option<Uuid> {
    e.payload
        .get("accountId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

async fn fire(
    txn: &DatabaseTransaction,
    events: &[&event_rows::Model],
    rules: &[Rule],
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut by_org: HashMap<Uuid, Vec<&Rule>> = HashMap::new();
    for r in rules {
        by_org.entry(r.row.organization_id).or_default().push(r);
    }
    let events: Vec<&event_rows::Model> = events
        .iter()
        .copied()
        .filter(|e| by_org.contains_key(&e.organization_id) && account_of(e).is_some())
        .collect();
    let accounts: Vec<Uuid> = {
        let mut a: Vec<Uuid> = events.iter().filter_map(|e| account_of(e)).collect();
        a.sort();
        a.dedup();
        a
    };
    if accounts.is_empty() {
        return Ok(0);
    }
    // What the filters and messages read, once for the batch.
    let companies: HashMap<Uuid, companies::Model> = companies::Entity::find()
        .filter(companies::Column::Id.is_in(accounts.clone()))
        .all(txn)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let tiers: HashMap<Uuid, String> = account_scores::Entity::find()
        .select_only()
        .column(account_scores::Column::AccountId)
        .column(account_scores::Column::Tier)
        .filter(account_scores::Column::AccountId.is_in(accounts.clone()))
        .into_tuple::<(Uuid, String)>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    let longest = rules
        .iter()
        .filter(|r| matches!(r.trigger, Trigger::ScoreRise | Trigger::ScoreDrop))
        .map(|r| r.params.within_days.unwrap_or(DEFAULT_WITHIN_DAYS))
        .max();
    let today = now.date_naive();
    let history: Vec<(Uuid, NaiveDate, i32)> = match longest {
        None => Vec::new(),
        Some(days) => {
            score_snapshots::Entity::find()
                .select_only()
                .column(score_snapshots::Column::AccountId)
                .column(score_snapshots::Column::Day)
                .column(score_snapshots::Column::Score)
                .filter(score_snapshots::Column::AccountId.is_in(accounts.clone()))
                .filter(
                    score_snapshots::Column::Day
                        .gte(today - chrono::Duration::days(i64::from(days))),
                )
                .filter(score_snapshots::Column::Day.lt(today))
                .into_tuple()
                .all(txn)
                .await?
        }
    };
    // The baseline of a rise or drop within `days`: the earliest snapshot in the window.
    let baseline = |account: Uuid, days: i32| -> Option<i64> {
        let from = today - chrono::Duration::days(i64::from(days));
        history
            .iter()
            .filter(|(a, d, _)| *a == account && *d >= from)
            .min_by_key(|(_, d, _)| *d)
            .map(|(_, _, s)| i64::from(*s))
    };

    let mut candidates: Vec<Firing> = Vec::new();
    for e in &events {
        let Some(account) = account_of(e) else {
            continue;
        };
        let Some(company) = companies.get(&account) else {
            continue;
        };
        let tags: Vec<String> = serde_json::from_value(company.tags.clone()).unwrap_or_default();
        for rule in by_org.get(&e.organization_id).into_iter().flatten() {
            if e.occurred_at < rule.row.created_at {
                continue;
            }
            if !passes(rule, account, tiers.get(&account), &tags) {
                continue;
            }
            let p = &e.payload;
            let name = &company.name;
            let hit: Option<(String, Value)> = match (rule.trigger, e.event_type.as_str()) {
                (Trigger::ScoreThreshold, "score.changed") => {
                    let t = i64::from(rule.params.threshold.unwrap_or(100));
                    let new = int(p, "newScore").unwrap_or(0);
                    let below_before = int(p, "oldScore").is_none_or(|o| o < t);
                    (below_before && new >= t).then(|| {
                        (
                            format!("{name} crossed {t}: its score is now {new}"),
                            json!({"threshold": t, "oldScore": p.get("oldScore"), "newScore": new}),
                        )
                    })
                }
                (Trigger::ScoreRise | Trigger::ScoreDrop, "score.changed") => {
                    let days = rule.params.within_days.unwrap_or(DEFAULT_WITHIN_DAYS);
                    let new = int(p, "newScore").unwrap_or(0);
                    let base = baseline(account, days).or_else(|| int(p, "oldScore"));
                    let percent = rule.params.percent.unwrap_or(f64::MAX);
                    base.and_then(|base| {
                        let change = if base == 0 {
                            if new > 0 { f64::INFINITY } else { 0.0 }
                        } else {
                            (new - base) as f64 / base as f64 * 100.0
                        };
                        let rise = rule.trigger == Trigger::ScoreRise;
                        let hit = if rise { change >= percent } else { -change >= percent };
                        hit.then(|| {
                            let shown = if change.is_finite() {
                                format!("{:.0}%", change.abs())
                            } else {
                                "from 0".to_owned()
                            };
                            (
                                format!(
                                    "{name} {} {shown} in {days} days ({base} → {new})",
                                    if rise { "rose" } else { "fell" }
                                ),
                                json!({"baseline": base, "newScore": new, "withinDays": days,
                                       "changePercent": change.is_finite().then_some((change * 10.0).round() / 10.0)}),
                            )
                        })
                    })
                }
                (Trigger::TierChanged, "tier.changed") => {
                    let new = text(p, "newTier").unwrap_or_default();
                    let wanted = rule.params.to_tiers.is_empty()
                        || rule.params.to_tiers.iter().any(|t| t == new);
                    wanted.then(|| {
                        let title = match text(p, "oldTier") {
                            Some(old) => format!("{name} is now {new} (was {old})"),
                            None => format!("{name} is now {new}"),
                        };
                        (
                            title,
                            json!({"oldTier": p.get("oldTier"), "newTier": new,
                                   "newScore": p.get("newScore")}),
                        )
                    })
                }
                (Trigger::NewSignal, "signal.created") => {
                    let ty = crate::signals::types::canonical(text(p, "type").unwrap_or_default());
                    let wanted = rule.params.signal_types.is_empty()
                        || rule
                            .params
                            .signal_types
                            .iter()
                            .any(|t| crate::signals::types::canonical(t) == ty);
                    wanted.then(|| {
                        (
                            format!("New {ty} signal from {name}"),
                            json!({"signalId": p.get("id"), "signalType": ty,
                                   "contactId": p.get("contactId")}),
                        )
                    })
                }
                (Trigger::Anomaly, "anomaly.detected") => anomaly_hit(rule, p, name),
                _ => None,
            };
            if let Some((title, data)) = hit {
                candidates.push(Firing {
                    rule,
                    account_id: account,
                    account_name: name.clone(),
                    event_seq: e.position,
                    at: e.occurred_at,
                    title,
                    data,
                });
            }
        }
    }
    let fired = cooled(txn, candidates).await?;
    record(txn, &fired, now).await?;
    Ok(fired.len())
}

/// An ANOMALY rule's verdict on an `anomaly.detected` payload: its kind is one the rule names
/// (any when none) and its severity at least the rule's minimum.
fn anomaly_hit(rule: &Rule, p: &Value, name: &str) -> Option<(String, Value)> {
    use crate::anomalies::{Kind, Severity};
    let kind = Kind::parse(text(p, "kind")?)?;
    let severity = Severity::parse(text(p, "severity")?)?;
    let kinds = &rule.params.anomaly_kinds;
    let least = rule
        .params
        .min_severity
        .as_deref()
        .and_then(Severity::parse);
    let wanted = (kinds.is_empty() || kinds.iter().any(|k| k == kind.as_str()))
        && least.is_none_or(|l| severity >= l);
    wanted.then(|| {
        let what = match kind {
            Kind::Spike => "spike",
            Kind::Drop => "drop",
        };
        (
            format!("Signal {what} detected for {name}"),
            json!({"anomalyId": p.get("id"), "kind": kind.as_str(), "severity": severity.as_str(),
                   "day": p.get("day"), "todayCount": p.get("todayCount"), "mean": p.get("mean"),
                   "stddev": p.get("stddev"), "zScore": p.get("zScore"),
                   "expectedMin": p.get("expectedMin"), "expectedMax": p.get("expectedMax")}),
        )
    })
}

/// The candidates outside their (rule, account) cooldown, in order: a firing starts the rule's
/// quiet period for that account.
pub(super) async fn cooled<'a>(
    txn: &DatabaseTransaction,
    candidates: Vec<Firing<'a>>,
) -> Result<Vec<Firing<'a>>> {
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let accounts: Vec<Uuid> = {
        let mut a: Vec<Uuid> = candidates.iter().map(|c| c.account_id).collect();
        a.sort();
        a.dedup();
        a
    };
    let rule_ids: Vec<Uuid> = {
        let mut r: Vec<Uuid> = candidates.iter().map(|c| c.rule.row.id).collect();
        r.sort();
        r.dedup();
        r
    };
    let mut last_fired: HashMap<(Uuid, Uuid), DateTime<Utc>> = alert_cooldowns::Entity::find()
        .filter(alert_cooldowns::Column::RuleId.is_in(rule_ids))
        .filter(alert_cooldowns::Column::AccountId.is_in(accounts))
        .all(txn)
        .await?
        .into_iter()
        .map(|c| ((c.rule_id, c.account_id), c.last_fired_at))
        .collect();
    let mut fired: Vec<Firing> = Vec::new();
    for c in candidates {
        let key = (c.rule.row.id, c.account_id);
        let quiet = chrono::Duration::minutes(i64::from(c.rule.row.cooldown_minutes));
        if last_fired.get(&key).is_some_and(|t| c.at < *t + quiet) {
            continue;
        }
        last_fired.insert(key, c.at);
        fired.push(c);
    }
    Ok(fired)
}

/// Stores the firings: cooldowns, one notification per recipient, `alert.triggered` events.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    fired: &[Firing<'_>],
    now: DateTime<Utc>,
) -> Result<()> {
    if fired.is_empty() {
        return Ok(());
    }
    let orgs: Vec<Uuid> = {
        let mut o: Vec<Uuid> = fired.iter().map(|f| f.rule.row.organization_id).collect();
        o.sort();
        o.dedup();
        o
    };
    // Demo organizations are told in the app only: their members' addresses are made up.
    let demo: HashSet<Uuid> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .filter(organizations::Column::Id.is_in(orgs.clone()))
        .filter(organizations::Column::IsDemo.eq(true))
        .into_tuple::<Uuid>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    // Each organization's members with their addresses and preferences.
    let mut members: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    for (org, user, email) in memberships::Entity::find()
        .select_only()
        .column(memberships::Column::OrganizationId)
        .column(memberships::Column::UserId)
        .column(users::Column::Email)
        .inner_join(users::Entity)
        .filter(memberships::Column::OrganizationId.is_in(orgs))
        .into_tuple::<(Uuid, Uuid, String)>()
        .all(txn)
        .await?
    {
        members.entry(org).or_default().push((user, email));
    }
    let mut prefs: HashMap<Uuid, HashMap<Uuid, super::Preferences>> = HashMap::new();
    for (org, list) in &members {
        let ids: Vec<Uuid> = list.iter().map(|(u, _)| *u).collect();
        prefs.insert(*org, super::of_members(txn, *org, &ids).await?);
    }
    let mut cooldowns: HashMap<(Uuid, Uuid, Uuid), DateTime<Utc>> = HashMap::new();
    let mut rows: Vec<notifications::Model> = Vec::new();
    let mut deliveries: Vec<super::NewDelivery> = Vec::new();
    let mut events: HashMap<Uuid, Vec<Value>> = HashMap::new();
    for f in fired {
        let org = f.rule.row.organization_id;
        cooldowns.insert((org, f.rule.row.id, f.account_id), f.at);
        let all = members.get(&org).cloned().unwrap_or_default();
        // Recipients who left the organization are no longer told.
        let to: Vec<(Uuid, String)> = if f.rule.recipients.is_empty() {
            all
        } else {
            all.into_iter()
                .filter(|(u, _)| f.rule.recipients.contains(u))
                .collect()
        };
        let pref = |u: &Uuid| {
            prefs
                .get(&org)
                .and_then(|p| p.get(u))
                .copied()
                .unwrap_or_default()
        };
        let data = json!({
            "ruleId": f.rule.row.id,
            "ruleName": f.rule.row.name,
            "trigger": f.rule.trigger.as_str(),
            "accountId": f.account_id,
            "accountName": f.account_name,
            "eventSeq": f.event_seq,
            "details": f.data,
        });
        let body = format!(
            "Alert rule \"{}\" ({}).",
            f.rule.row.name,
            f.rule.trigger.as_str()
        );
        let title: String = f.title.chars().take(300).collect();
        let mut content = data.clone();
        content["title"] = json!(title);
        content["body"] = json!(body);
        let delivery = |channel| super::NewDelivery {
            org,
            kind: super::Kind::Alert,
            channel,
            rule_id: Some(f.rule.row.id),
            account_id: Some(f.account_id),
            content: content.clone(),
        };
        for (user, email) in &to {
            let p = pref(user);
            if f.rule.channels.in_app && p.in_app {
                rows.push(notifications::Model {
                    id: Uuid::now_v7(),
                    organization_id: org,
                    user_id: *user,
                    kind: "ALERT".into(),
                    rule_id: Some(f.rule.row.id),
                    account_id: Some(f.account_id),
                    title: title.clone(),
                    body: body.clone(),
                    data: data.clone(),
                    event_seq: f.event_seq,
                    read_at: None,
                    created_at: now,
                });
            }
            if f.rule.channels.email && p.alert_emails && !demo.contains(&org) {
                deliveries.push(delivery(super::Channel::Email {
                    user: *user,
                    address: email.clone(),
                }));
            }
        }
        if let Some(sealed) = f
            .rule
            .row
            .slack_url
            .as_ref()
            .filter(|_| !demo.contains(&org))
        {
            deliveries.push(delivery(super::Channel::Slack {
                sealed_url: sealed.clone(),
                host: "Slack incoming webhook".into(),
            }));
        }
        let mut payload = data;
        payload["title"] = json!(f.title);
        payload["triggeredAt"] = json!(now);
        events.entry(org).or_default().push(payload);
    }
    alert_cooldowns::Entity::insert_many(cooldowns.into_iter().map(|((o, r, a), at)| {
        alert_cooldowns::ActiveModel {
            organization_id: Set(o),
            rule_id: Set(r),
            account_id: Set(a),
            last_fired_at: Set(at),
        }
    }))
    .on_conflict(
        OnConflict::columns([
            alert_cooldowns::Column::OrganizationId,
            alert_cooldowns::Column::RuleId,
            alert_cooldowns::Column::AccountId,
        ])
        .update_column(alert_cooldowns::Column::LastFiredAt)
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    for chunk in rows.chunks(crate::db::rows_per_insert::<notifications::Entity>()) {
        notifications::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(txn)
        .await?;
    }
    super::queue_deliveries(txn, deliveries).await?;
    for (org, payloads) in events {
        crate::events::append_many(
            txn,
            org,
            None,
            payloads
                .into_iter()
                .map(|p| (EventType::AlertTriggered.as_str(), p))
                .collect(),
        )
        .await?;
    }
    Ok(())
}
