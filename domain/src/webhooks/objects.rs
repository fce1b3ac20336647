//! The changed object a delivery carries when its endpoint asks for it (`include_object`): the
//! object's current fields, read when the delivery is sent (a retry sends what is current then),
//! from the endpoint's own organization, and only what the endpoint's creator may read (an API
//! key's scopes, kept in `object_scopes` when it turned the option on). The event's `data` stays
//! as the log has it.

use entity::{
    account_scores, companies, contacts, deals, signal_sources, signals, webhook_endpoints,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Result;

/// The key of the body under which the object travels: `{"type","timestamp","data","object"}`.
pub const OBJECT_KEY: &str = "object";

/// What an event is about, when it is about one CRM row or signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Account(Uuid),
    Contact(Uuid),
    Deal(Uuid),
    Signal(Uuid),
}

impl Subject {
    /// The scope that reads this kind of object.
    fn read_scope(self) -> &'static str {
        match self {
            Subject::Account(_) => "accounts:read",
            Subject::Contact(_) => "contacts:read",
            Subject::Deal(_) => "deals:read",
            Subject::Signal(_) => "signals:read",
        }
    }
}

fn id_at(payload: &Value, paths: &[&[&str]]) -> Option<Uuid> {
    paths.iter().find_map(|path| {
        let v = path.iter().try_fold(payload, |v, k| v.get(*k))?;
        v.as_str().and_then(|s| Uuid::parse_str(s).ok())
    })
}

/// The object an event of `event_type` with `payload` is about; `None` for events about no
/// single object (activities, alerts, tests, …).
fn subject(event_type: &str, payload: &Value) -> Option<Subject> {
    let (noun, _) = event_type.split_once('.')?;
    match noun {
        "company" => id_at(payload, &[&["account", "id"], &["id"]]).map(Subject::Account),
        "score" | "tier" | "anomaly" => id_at(payload, &[&["accountId"]]).map(Subject::Account),
        "contact" => {
            id_at(payload, &[&["contact", "id"], &["primaryId"], &["id"]]).map(Subject::Contact)
        }
        "deal" => id_at(payload, &[&["deal", "id"], &["id"]]).map(Subject::Deal),
        "signal" => id_at(payload, &[&["id"]]).map(Subject::Signal),
        _ => None,
    }
}

/// May the endpoint's creator read with `scope`? `object_scopes` null: a person turned the option
/// on (their role reads every CRM object); otherwise the API key's scopes.
fn may_read(endpoint: &webhook_endpoints::Model, scope: &str) -> bool {
    match &endpoint.object_scopes {
        None => true,
        Some(Value::Array(scopes)) => scopes
            .iter()
            .any(|s| s.as_str() == Some(scope) || s.as_str() == Some("admin")),
        Some(_) => false,
    }
}

/// The `object` of a delivery of this event to `endpoint`: `None` when the endpoint did not ask
/// for objects or the event is about no single object; `Some(null)` when the object is gone or
/// the creator may not read it; otherwise its current fields.
pub async fn object_for(
    db: &impl ConnectionTrait,
    endpoint: &webhook_endpoints::Model,
    event_type: &str,
    payload: &Value,
) -> Result<Option<Value>> {
    if !endpoint.include_object {
        return Ok(None);
    }
    let Some(subject) = subject(event_type, payload) else {
        return Ok(None);
    };
    if !may_read(endpoint, subject.read_scope()) {
        return Ok(Some(Value::Null));
    }
    let org = endpoint.organization_id;
    let object = match subject {
        Subject::Account(id) => match companies::Entity::find_by_id(id)
            .filter(companies::Column::OrganizationId.eq(org))
            .one(db)
            .await?
        {
            None => Value::Null,
            Some(a) => {
                let score = account_scores::Entity::find_by_id(id)
                    .filter(account_scores::Column::OrganizationId.eq(org))
                    .one(db)
                    .await?;
                json!({
                    "id": a.id, "name": a.name, "domain": a.domain,
                    "score": score.as_ref().map(|s| s.score),
                    "tier": score.as_ref().map(|s| s.tier.clone()),
                })
            }
        },
        Subject::Contact(id) => contacts::Entity::find_by_id(id)
            .filter(contacts::Column::OrganizationId.eq(org))
            .one(db)
            .await?
            .map_or(Value::Null, |c| {
                let name = [c.first_name.as_deref(), c.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                json!({
                    "id": c.id, "name": (!name.is_empty()).then_some(name),
                    "firstName": c.first_name, "lastName": c.last_name, "email": c.email,
                    "title": c.title, "accountId": c.account_id,
                })
            }),
        Subject::Deal(id) => deals::Entity::find_by_id(id)
            .filter(deals::Column::OrganizationId.eq(org))
            .one(db)
            .await?
            .map_or(Value::Null, |d| {
                json!({
                    "id": d.id, "title": d.title, "stage": d.stage, "amount": d.amount,
                    "currency": d.currency, "accountId": d.account_id, "contactId": d.contact_id,
                })
            }),
        Subject::Signal(id) => match signals::Entity::find_by_id(id)
            .filter(signals::Column::OrganizationId.eq(org))
            .one(db)
            .await?
        {
            None => Value::Null,
            Some(s) => {
                let source = signal_sources::Entity::find_by_id(s.source_id)
                    .filter(signal_sources::Column::OrganizationId.eq(org))
                    .one(db)
                    .await?;
                json!({
                    "id": s.id, "type": s.signal_type,
                    "source": source.map(|src| json!({"id": src.id, "name": src.name, "kind": src.kind})),
                    "timestamp": s.timestamp, "accountId": s.account_id, "contactId": s.contact_id,
                })
            }
        },
    };
    Ok(Some(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_object() {
        let id = Uuid::from_u128(9);
        let s = id.to_string();
        assert_eq!(
            subject("company.created", &json!({"id": s})),
            Some(Subject::Account(id))
        );
        assert_eq!(
            subject(
                "company.updated",
                &json!({"account": {"id": s}, "changes": {}})
            ),
            Some(Subject::Account(id))
        );
        assert_eq!(
            subject("tier.changed", &json!({"accountId": s})),
            Some(Subject::Account(id))
        );
        assert_eq!(
            subject("contact.updated", &json!({"contact": {"id": s}})),
            Some(Subject::Contact(id))
        );
        assert_eq!(
            subject("deal.stage_changed", &json!({"deal": {"id": s}})),
            Some(Subject::Deal(id))
        );
        assert_eq!(
            subject("signal.created", &json!({"id": s})),
            Some(Subject::Signal(id))
        );
        assert_eq!(
            subject("anomaly.detected", &json!({"accountId": s})),
            Some(Subject::Account(id))
        );
        assert_eq!(subject("activity.created", &json!({"id": s})), None);
        assert_eq!(subject("webhook.test", &json!({})), None);
    }
}
