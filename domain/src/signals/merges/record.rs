//! The record a merge keeps of exactly what it changed, so that an undo reverses only that.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::contacts;
use sea_orm::{ActiveValue, Set};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The full contact row, as the undo record keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContactRow {
    pub(super) id: Uuid,
    pub(super) organization_id: Uuid,
    pub(super) account_id: Option<Uuid>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) email_normalized: Option<String>,
    pub(super) title: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) github: Option<String>,
    pub(super) twitter: Option<String>,
    pub(super) linked_in: Option<String>,
    pub(super) city: Option<String>,
    pub(super) country: Option<String>,
    pub(super) notes: Option<String>,
    pub(super) custom_fields: Value,
    pub(super) tags: Value,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
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
pub(super) struct Moved {
    pub(super) signals: Vec<Uuid>,
    pub(super) activities: Vec<Uuid>,
    pub(super) deals: Vec<Uuid>,
    pub(super) identities: Vec<Uuid>,
}

/// A primary field the merge filled: it was empty (`from` is always null) and got `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Filled {
    pub(super) from: Option<String>,
    pub(super) to: String,
}

/// Exactly what one merge changed, so that [`unmerge`] can reverse it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Undo {
    pub(super) version: u32,
    /// The duplicate as it was just before the merge.
    pub(super) duplicate: ContactRow,
    pub(super) moved: Moved,
    /// API field name → the value the merge put into the (empty) primary field.
    pub(super) filled: BTreeMap<String, Filled>,
    /// Tags the primary did not have and got from the duplicate.
    pub(super) added_tags: Vec<String>,
    /// The account the primary inherited (it had none).
    pub(super) inherited_account: Option<Uuid>,
}

/// The primary fields a merge fills when they are empty, by API name. `email` brings
/// `email_normalized` along.
pub(super) const FILLABLE: &[&str] = &[
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

pub(super) fn slot<'a>(m: &'a mut contacts::Model, name: &str) -> Option<&'a mut Option<String>> {
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

pub(super) fn tag_list(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Every column of `m` set, the key unchanged: for writing a contact back whole.
pub(super) fn whole_update(m: &contacts::Model) -> contacts::ActiveModel {
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
