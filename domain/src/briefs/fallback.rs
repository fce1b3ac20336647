//! The brief without a model: the same context read by fixed rules — what the last 30 days'
//! signals were (types with counts), the score, its trend and largest factors, the company's
//! facts, the most active people, open deals — and a few next-best actions that follow from
//! them. Every statement cites the ids it is computed from, like a model's must.

use std::collections::HashMap;

use uuid::Uuid;

use super::context::{BriefContext, contact_fact, contact_name, deal_fact, factor_fact};
use super::{Action, Draft, Statement};

/// Signals cited per statement at most (the newest of the ones it counts).
const CITED_SIGNALS: usize = 5;
const TOP_TYPES: usize = 3;
const TOP_PEOPLE: usize = 3;
const TOP_FACTORS: usize = 3;

fn statement(section: &str, text: String, cites: Vec<String>) -> Statement {
    Statement {
        section: section.to_owned(),
        text,
        cites,
    }
}

/// Deal stages that are over.
fn closed(stage: &str) -> bool {
    crate::crm::deals::CLOSED.contains(&stage)
}

/// Builds the deterministic brief of `ctx`.
pub fn build(ctx: &BriefContext) -> Draft {
    let mut statements = Vec::new();
    let mut actions = Vec::new();

    // Summary: signal types with counts, newest signals of each cited.
    let mut by_type: Vec<(&str, Vec<Uuid>)> = Vec::new();
    for s in &ctx.signals {
        match by_type.iter_mut().find(|(t, _)| *t == s.signal_type) {
            Some((_, ids)) => ids.push(s.id),
            None => by_type.push((&s.signal_type, vec![s.id])),
        }
    }
    by_type.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    if by_type.is_empty() {
        statements.push(statement(
            "summary",
            format!(
                "No signals in the last {} days.",
                super::context::WINDOW_DAYS
            ),
            vec!["fact:activity".into()],
        ));
    } else {
        let listed: Vec<String> = by_type
            .iter()
            .take(TOP_TYPES)
            .map(|(t, ids)| format!("{t} ×{}", ids.len()))
            .collect();
        let mut cites = vec!["fact:activity".to_owned()];
        for (_, ids) in by_type.iter().take(TOP_TYPES) {
            cites.extend(ids.iter().take(CITED_SIGNALS).map(Uuid::to_string));
        }
        statements.push(statement(
            "summary",
            format!(
                "{} signals in the last {} days; most frequent: {}.",
                ctx.signals_in_window,
                super::context::WINDOW_DAYS,
                listed.join(", ")
            ),
            cites,
        ));
    }

    // Score, trend, factors.
    if let Some(score) = &ctx.score {
        statements.push(statement(
            "usage",
            format!(
                "PQA score {} ({}), trend {}.",
                score.score, score.tier, score.trend
            ),
            vec!["fact:score".into(), "fact:trend".into()],
        ));
        let mut factors: Vec<_> = ctx.factors.iter().filter(|f| f.points > 0.0).collect();
        factors.sort_by(|a, b| b.points.total_cmp(&a.points).then(a.name.cmp(&b.name)));
        if !factors.is_empty() {
            let top: Vec<_> = factors.iter().take(TOP_FACTORS).collect();
            statements.push(statement(
                "usage",
                format!(
                    "Largest score factors: {}.",
                    top.iter()
                        .map(|f| format!("{} {}/{}", f.name, f.points, f.max_points))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                top.iter().map(|f| factor_fact(&f.name)).collect(),
            ));
        }
    }

    // Company facts.
    let a = &ctx.account;
    let mut company = vec![a.name.clone()];
    let mut cites = vec!["fact:name".to_owned()];
    for (id, label, value) in [
        ("fact:domain", "", &a.domain),
        ("fact:industry", "industry ", &a.industry),
        ("fact:size", "size ", &a.size),
    ] {
        if ctx.facts.iter().any(|(f, _)| f == id)
            && let Some(v) = value
        {
            company.push(format!("{label}{}", v.trim()));
            cites.push(id.to_owned());
        }
    }
    statements.push(statement(
        "company",
        format!("{}.", company.join(", ")),
        cites,
    ));

    // The most active people.
    let people = ctx.contacts_by_id();
    let mut activity: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for s in &ctx.signals {
        if let Some(c) = s.contact_id.filter(|c| people.contains_key(c)) {
            activity.entry(c).or_default().push(s.id);
        }
    }
    let mut active: Vec<(Uuid, Vec<Uuid>)> = activity.into_iter().collect();
    active.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    if !active.is_empty() {
        let top: Vec<_> = active.iter().take(TOP_PEOPLE).collect();
        let mut cites = Vec::new();
        let mut names = Vec::new();
        for (id, signals) in &top {
            let c = people[id];
            let title = c
                .title
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            names.push(format!(
                "{}{title}, {} signals",
                contact_name(c),
                signals.len()
            ));
            cites.push(contact_fact(*id));
            cites.extend(signals.iter().take(2).map(Uuid::to_string));
        }
        statements.push(statement(
            "people",
            format!("Most active people: {}.", names.join("; ")),
            cites,
        ));
    }

    // Deals.
    let open: Vec<_> = ctx.deals.iter().filter(|d| !closed(&d.stage)).collect();
    if !open.is_empty() {
        statements.push(statement(
            "approach",
            format!(
                "Open deals: {}.",
                open.iter()
                    .map(|d| format!("{} ({})", d.title, d.stage))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            open.iter().map(|d| deal_fact(d.id)).collect(),
        ));
    }

    // Next-best actions that follow from the facts.
    let tier = ctx.score.as_ref().map(|s| s.tier.as_str()).unwrap_or("");
    let hot = matches!(tier, "HOT" | "WARM");
    if let Some((person, signals)) = active.first() {
        let c = people[person];
        let mut cites = vec![contact_fact(*person)];
        cites.extend(signals.iter().take(3).map(Uuid::to_string));
        actions.push(Action {
            action: format!("Reach out to {}", contact_name(c)),
            reasoning: format!(
                "The most active person on the account: {} signals in the last {} days.",
                signals.len(),
                super::context::WINDOW_DAYS
            ),
            priority: if hot { "high" } else { "medium" }.into(),
            contact_id: Some(*person),
            cites,
        });
    }
    if let Some(score) = &ctx.score {
        if score.trend == "FALLING" {
            actions.push(Action {
                action: "Check in before engagement drops further".into(),
                reasoning: format!("The score is falling (now {}).", score.score),
                priority: "high".into(),
                contact_id: None,
                cites: vec!["fact:trend".into(), "fact:score".into()],
            });
        }
        if hot && open.is_empty() {
            actions.push(Action {
                action: "Open a deal".into(),
                reasoning: format!("The account is {} with no open deal.", score.tier),
                priority: "medium".into(),
                contact_id: None,
                cites: vec!["fact:score".into()],
            });
        }
    }
    if let Some(d) = open.first() {
        actions.push(Action {
            action: format!("Advance the deal \"{}\"", d.title),
            reasoning: format!("It is open at stage {}.", d.stage),
            priority: "medium".into(),
            contact_id: d.contact_id.filter(|c| people.contains_key(c)),
            cites: vec![deal_fact(d.id)],
        });
    }
    Draft {
        statements,
        actions,
        dropped: 0,
    }
}
