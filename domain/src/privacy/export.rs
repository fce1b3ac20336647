//! `exportContactData` (GDPR art. 15): everything held about one person, as JSON.

use entity::{activities, audit_logs, deals, events, notifications, signals};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use super::erase::{Person, admin, cached_about};
use super::redact;
use crate::{Actor, Result, crm};

/// The person's data (ADMIN; an API key needs `admin`): the contact, its identities, signals,
/// activities, deals, notes, notifications and audit entries and events naming them, and what
/// connectors cached about them (`sourceProfiles`).
/// `NOT_FOUND` for an id that is not one of the organization's contacts.
pub async fn export_contact(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<Value> {
    admin(actor)?;
    let org = actor.organization_id;
    let person = Person::load(db, actor, id).await?;
    let mut find = person.needles();
    find.extend(person.ids.iter().cloned());
    let signals = signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(org))
        .filter(signals::Column::ContactId.eq(id))
        .order_by_asc(signals::Column::Timestamp)
        .all(db)
        .await?;
    let activities = activities::Entity::find()
        .filter(activities::Column::OrganizationId.eq(org))
        .filter(
            Condition::any()
                .add(activities::Column::ContactId.eq(id))
                .add(redact::mentions(
                    &[activities::Column::Title, activities::Column::Description],
                    &person.needles(),
                )),
        )
        .order_by_asc(activities::Column::CreatedAt)
        .all(db)
        .await?;
    let deals = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org))
        .filter(deals::Column::ContactId.eq(id))
        .all(db)
        .await?;
    let notifications = notifications::Entity::find()
        .filter(notifications::Column::OrganizationId.eq(org))
        .filter(redact::mentions(
            &[
                notifications::Column::Title,
                notifications::Column::Body,
                notifications::Column::Data,
            ],
            &find,
        ))
        .all(db)
        .await?;
    let audit = audit_logs::Entity::find()
        .filter(audit_logs::Column::OrganizationId.eq(org))
        .filter(
            Condition::any()
                .add(audit_logs::Column::TargetId.is_in(person.ids.clone()))
                .add(redact::mentions(&[audit_logs::Column::Metadata], &find)),
        )
        .order_by_asc(audit_logs::Column::CreatedAt)
        .all(db)
        .await?;
    let events = events::Entity::find()
        .filter(events::Column::OrganizationId.eq(org))
        .filter(redact::mentions(&[events::Column::Payload], &find))
        .order_by_asc(events::Column::Seq)
        .all(db)
        .await?;
    let cached = cached_about(db, org, &person.needles()).await?;
    let notes: Vec<Value> = person
        .contact
        .notes
        .iter()
        .map(|n| json!({"source": "contact", "text": n}))
        .chain(
            activities
                .iter()
                .filter(|a| a.kind == "NOTE")
                .map(|a| json!({"source": "activity", "id": a.id, "text": a.description.clone().unwrap_or_else(|| a.title.clone())})),
        )
        .collect();
    Ok(json!({
        "contact": crm::contacts::snapshot(&person.contact),
        "identities": person.identities.iter().map(|i| json!({
            "kind": i.kind, "value": i.value, "confidence": i.confidence,
            "verified": i.verified, "provenance": i.provenance, "createdAt": i.created_at,
        })).collect::<Vec<_>>(),
        "signals": signals.iter().map(|s| json!({
            "id": s.id, "type": s.signal_type, "accountId": s.account_id,
            "anonymousId": s.anonymous_id, "metadata": s.metadata,
            "idempotencyKey": s.idempotency_key, "timestamp": s.timestamp,
        })).collect::<Vec<_>>(),
        "activities": activities.iter().map(crm::activities::snapshot).collect::<Vec<_>>(),
        "deals": deals.iter().map(crm::deals::snapshot).collect::<Vec<_>>(),
        "notes": notes,
        "notifications": notifications.iter().map(|n| json!({
            "id": n.id, "userId": n.user_id, "kind": n.kind, "title": n.title, "body": n.body,
            "data": n.data, "createdAt": n.created_at,
        })).collect::<Vec<_>>(),
        "auditEntries": audit.iter().map(|a| json!({
            "id": a.id, "action": a.action, "targetType": a.target_type, "targetId": a.target_id,
            "metadata": a.metadata, "createdAt": a.created_at,
        })).collect::<Vec<_>>(),
        "sourceProfiles": cached.iter().map(|c| json!({
            "integrationId": c.integration_id, "resource": c.resource, "data": c.state,
            "updatedAt": c.updated_at,
        })).collect::<Vec<_>>(),
        "events": events.iter().map(|e| json!({
            "seq": e.position, "id": e.id, "type": e.event_type, "payload": e.payload,
            "occurredAt": e.occurred_at,
        })).collect::<Vec<_>>(),
    }))
}
