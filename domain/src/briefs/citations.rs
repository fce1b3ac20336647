//! Reading the model's answer and checking its citations. The answer should be one JSON object
//! `{"statements": [...], "actions": [...]}`; a statement or action is kept only when its shape
//! is right and every id it cites is one the context put in the prompt (a signal UUID of this
//! account's window, or a `fact:` id of its data). Anything else — an unknown id, another
//! organization's signal, no citation at all, an unknown section or priority, a person who is
//! not the account's — is dropped and counted.

use std::collections::HashSet;

use serde_json::Value;
use uuid::Uuid;

use super::{Action, Draft, PRIORITIES, SECTIONS, Statement};

/// At most this many statements and actions are kept.
pub const MAX_STATEMENTS: usize = 20;
pub const MAX_ACTIONS: usize = 5;
const MAX_TEXT: usize = 2_000;
const MAX_ACTION: usize = 300;

/// The JSON object inside the model's text: as is, inside a ```json fence, or between the first
/// `{` and the last `}`.
fn json_object(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        return Some(v);
    }
    let (start, end) = (text.find('{')?, text.rfind('}')?);
    if end <= start {
        return None;
    }
    match serde_json::from_str::<Value>(&text[start..=end]) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// The cited ids, when every one is known and there is at least one.
fn checked_cites(v: &Value, known: &HashSet<String>) -> Option<Vec<String>> {
    let list = v.get("cites")?.as_array()?;
    let mut out: Vec<String> = Vec::new();
    for c in list {
        let id = c.as_str()?.trim();
        if !known.contains(id) {
            return None;
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    }
    (!out.is_empty()).then_some(out)
}

fn text_field(v: &Value, key: &str, max: usize) -> Option<String> {
    let s = v.get(key)?.as_str()?.trim();
    (!s.is_empty() && s.chars().count() <= max).then(|| s.to_owned())
}

fn statement(v: &Value, known: &HashSet<String>) -> Option<Statement> {
    let section = v.get("section")?.as_str()?.trim().to_ascii_lowercase();
    if !SECTIONS.contains(&section.as_str()) {
        return None;
    }
    Some(Statement {
        section,
        text: text_field(v, "text", MAX_TEXT)?,
        cites: checked_cites(v, known)?,
    })
}

fn action(v: &Value, known: &HashSet<String>, people: &HashSet<Uuid>) -> Option<Action> {
    let priority = v.get("priority")?.as_str()?.trim().to_ascii_lowercase();
    if !PRIORITIES.contains(&priority.as_str()) {
        return None;
    }
    let contact_id = match v.get("contactId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "null" => None,
        Some(Value::String(s)) => {
            let raw = s.trim().trim_start_matches("fact:contact:");
            let id = Uuid::parse_str(raw).ok()?;
            if !people.contains(&id) {
                return None;
            }
            Some(id)
        }
        Some(_) => return None,
    };
    Some(Action {
        action: text_field(v, "action", MAX_ACTION)?,
        reasoning: text_field(v, "reasoning", MAX_TEXT)?,
        priority,
        contact_id,
        cites: checked_cites(v, known)?,
    })
}

/// Checks a model's answer against the ids of its context (`known`) and the account's people.
/// `None` when the answer is not the JSON object asked for.
pub fn check_answer(text: &str, known: &HashSet<String>, people: &HashSet<Uuid>) -> Option<Draft> {
    let answer = json_object(text)?;
    let items = |key: &str| -> Option<Vec<Value>> {
        match answer.get(key) {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(a)) => Some(a.clone()),
            Some(_) => None,
        }
    };
    let (raw_statements, raw_actions) = (items("statements")?, items("actions")?);
    let mut draft = Draft::default();
    for v in &raw_statements {
        match statement(v, known) {
            Some(s) if draft.statements.len() < MAX_STATEMENTS => draft.statements.push(s),
            _ => draft.dropped += 1,
        }
    }
    for v in &raw_actions {
        match action(v, known, people) {
            Some(a) if draft.actions.len() < MAX_ACTIONS => draft.actions.push(a),
            _ => draft.dropped += 1,
        }
    }
    Some(draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known() -> HashSet<String> {
        [
            "fact:name",
            "fact:score",
            "0190f1c2-0000-7000-8000-000000000001",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    #[test]
    fn keeps_checked_statements_and_drops_the_rest() {
        let person = Uuid::now_v7();
        let people: HashSet<Uuid> = [person].into_iter().collect();
        let answer = json!({
            "statements": [
                {"section": "Summary", "text": "Active.", "cites": ["0190f1c2-0000-7000-8000-000000000001", "fact:score"]},
                {"section": "summary", "text": "Made up.", "cites": ["0190f1c2-0000-7000-8000-00000000dead"]},
                {"section": "summary", "text": "Uncited.", "cites": []},
                {"section": "gossip", "text": "x", "cites": ["fact:name"]},
            ],
            "actions": [
                {"action": "Call", "reasoning": "Because.", "priority": "HIGH", "contactId": person.to_string(), "cites": ["fact:score"]},
                {"action": "Call", "reasoning": "Because.", "priority": "high", "contactId": Uuid::now_v7().to_string(), "cites": ["fact:score"]},
            ]
        });
        let text = format!("Here you go:\n```json\n{answer}\n```");
        let d = check_answer(&text, &known(), &people).unwrap();
        assert_eq!(d.statements.len(), 1);
        assert_eq!(d.statements[0].section, "summary");
        assert_eq!(d.actions.len(), 1);
        assert_eq!(d.actions[0].priority, "high");
        assert_eq!(d.actions[0].contact_id, Some(person));
        assert_eq!(d.dropped, 4);
    }

    #[test]
    fn an_answer_that_is_not_json_is_unreadable() {
        assert_eq!(
            check_answer("I cannot help.", &known(), &HashSet::new()),
            None
        );
        assert_eq!(
            check_answer("{\"statements\": 3}", &known(), &HashSet::new()),
            None
        );
    }
}
