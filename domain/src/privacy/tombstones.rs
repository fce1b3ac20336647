//! Tombstones: an erased person's identifiers kept only as hashes, so nothing re-creates them.
//!
//! A tombstone is SHA-256 over (organization id, kind, normalised value): the same value in two
//! organizations hashes differently, and the table never holds the value itself. Ingest checks
//! every identifier a batch names in one statement; contact creation checks its emails.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Utc;
use entity::erasure_tombstones;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::signals::identifiers::kind;
use crate::{Error, FieldError, Result};

/// What an item about an erased person is answered with (ingest drops it; creation refuses).
pub const ERASED: &str =
    "this person asked to be erased (GDPR art. 17); nothing about them is stored";

/// The normalised form every identifier is hashed in: trimmed, lower case, without a leading `@`
/// (handles are written both ways).
pub fn normalise(value: &str) -> String {
    value.trim().trim_start_matches('@').to_lowercase()
}

/// The tombstone hash of one identifier (lower-case hex SHA-256).
pub fn hash(organization_id: Uuid, kind: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(organization_id.as_bytes());
    h.update(b"\0");
    h.update(kind.to_uppercase().as_bytes());
    h.update(b"\0");
    h.update(normalise(value).as_bytes());
    hex::encode(h.finalize())
}

/// Records tombstones for `identifiers` ((kind, value) pairs), once each.
pub async fn record(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    identifiers: &BTreeSet<(String, String)>,
) -> Result<u64> {
    let now = Utc::now();
    let rows: Vec<erasure_tombstones::ActiveModel> = identifiers
        .iter()
        .filter(|(_, v)| !normalise(v).is_empty())
        .map(|(k, v)| erasure_tombstones::ActiveModel {
            organization_id: Set(organization_id),
            hash: Set(hash(organization_id, k, v)),
            kind: Set(k.clone()),
            created_at: Set(now),
        })
        .collect();
    let n = rows.len() as u64;
    if rows.is_empty() {
        return Ok(0);
    }
    erasure_tombstones::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                erasure_tombstones::Column::OrganizationId,
                erasure_tombstones::Column::Hash,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(n)
}

/// Which of `hashes` are tombstones of the organization, in one statement per 1,000.
pub async fn erased(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    hashes: Vec<String>,
) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let hashes: Vec<String> = hashes
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for chunk in hashes.chunks(crate::db::IN_LIST) {
        let found: Vec<String> = erasure_tombstones::Entity::find()
            .select_only()
            .column(erasure_tombstones::Column::Hash)
            .filter(erasure_tombstones::Column::OrganizationId.eq(organization_id))
            .filter(erasure_tombstones::Column::Hash.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(found);
    }
    Ok(out)
}

/// Which of `values` (identifiers of `kind`) were erased from the organization, as
/// [`normalise`]d values, in one statement per 1,000. Connectors skip these people before
/// fetching or caching anything about them.
pub async fn erased_values<'a>(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    kind: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<HashSet<String>> {
    let by_hash: HashMap<String, String> = values
        .into_iter()
        .map(|v| (hash(organization_id, kind, v), normalise(v)))
        .collect();
    if by_hash.is_empty() {
        return Ok(HashSet::new());
    }
    let found = erased(db, organization_id, by_hash.keys().cloned().collect()).await?;
    Ok(found
        .into_iter()
        .filter_map(|h| by_hash.get(&h).cloned())
        .collect())
}

/// Refuses (`CONFLICT` on the email's field) to create a contact whose email was erased.
/// `emails` are (field name, email) pairs.
pub async fn refuse_erased_emails(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    emails: &[(String, String)],
) -> Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let hashes: Vec<String> = emails
        .iter()
        .map(|(_, e)| hash(organization_id, kind::EMAIL, e))
        .collect();
    let found = erased(db, organization_id, hashes).await?;
    if found.is_empty() {
        return Ok(());
    }
    let fields: Vec<FieldError> = emails
        .iter()
        .filter(|(_, e)| found.contains(&hash(organization_id, kind::EMAIL, e)))
        .map(|(f, _)| FieldError::new(f.clone(), ERASED))
        .collect();
    match fields.len() {
        1 => Err(Error::Conflict {
            field: fields[0].field.clone(),
            message: ERASED.into(),
        }),
        _ => Err(Error::Validation(fields)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_per_organization_and_normalised() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_eq!(
            hash(a, "EMAIL", " Ann@Example.com"),
            hash(a, "EMAIL", "ann@example.com")
        );
        assert_eq!(hash(a, "GITHUB", "@Octo"), hash(a, "github", "octo"));
        assert_ne!(
            hash(a, "EMAIL", "ann@example.com"),
            hash(b, "EMAIL", "ann@example.com")
        );
        assert_ne!(
            hash(a, "EMAIL", "ann@example.com"),
            hash(a, "GITHUB", "ann@example.com")
        );
        assert_eq!(hash(a, "EMAIL", "x").len(), 64);
    }
}
