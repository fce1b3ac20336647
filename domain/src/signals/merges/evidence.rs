//! What two contacts have in common, and the merge suggestions built from it.

use std::collections::{BTreeSet, HashMap, HashSet};

use entity::{contact_merges, contacts};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::apply::identities_of;
use super::*;
use crate::signals::identifiers::{self, confidence, kind};
use crate::{Actor, Result};
/// Several independent pieces of evidence combined: `1 − Π(1 − cᵢ)`, within 0..=1 (0 for none).
pub fn combine(confidences: impl IntoIterator<Item = f64>) -> f64 {
    let doubt: f64 = confidences
        .into_iter()
        .map(|c| 1.0 - c.clamp(0.0, 1.0))
        .product();
    (1.0 - doubt).clamp(0.0, 1.0)
}

/// The confidence of a shared identifier of `kind`.
pub fn kind_confidence(k: &str) -> f64 {
    match k {
        kind::EMAIL => confidence::EXACT_EMAIL,
        kind::GITHUB => confidence::GITHUB,
        kind::NPM => confidence::NPM,
        _ => confidence::SOCIAL,
    }
}

pub(super) fn compared_kind(k: &str) -> Option<&'static str> {
    COMPARED.iter().copied().find(|c| *c == k)
}

/// `first last`, lower-cased, single-spaced; only when both parts are there.
pub(super) fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let words: Vec<String> = [first?, last?]
        .iter()
        .flat_map(|p| p.split_whitespace())
        .map(str::to_lowercase)
        .collect();
    let (f, l) = (first?.trim(), last?.trim());
    (!f.is_empty() && !l.is_empty()).then(|| words.join(" "))
}

/// What is compared of one contact.
#[derive(Debug, Clone)]
pub(super) struct Person {
    id: Uuid,
    account_id: Option<Uuid>,
    name: Option<String>,
    /// (kind, normalised value, [`source`])
    values: Vec<(&'static str, String, &'static str)>,
}

/// The comparable columns of a contact row.
pub(super) type Comparable = (
    Uuid,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Person {
    pub(super) fn new(row: Comparable) -> Self {
        let (id, account_id, first, last, email, github, twitter, linked_in) = row;
        let mut values = Vec::new();
        let mut field = |k: &'static str, v: Option<String>, norm: fn(&str) -> Option<String>| {
            if let Some(n) = v.as_deref().and_then(norm) {
                values.push((k, n, source::FIELD));
            }
        };
        field(kind::EMAIL, email, identifiers::email);
        field(kind::GITHUB, github, identifiers::handle);
        field(kind::TWITTER, twitter, identifiers::handle);
        field(kind::LINKEDIN, linked_in, identifiers::linkedin);
        Person {
            id,
            account_id,
            name: full_name(first.as_deref(), last.as_deref()),
            values,
        }
    }

    pub(super) fn of(m: &contacts::Model) -> Self {
        Person::new((
            m.id,
            m.account_id,
            m.first_name.clone(),
            m.last_name.clone(),
            m.email_normalized.clone(),
            m.github.clone(),
            m.twitter.clone(),
            m.linked_in.clone(),
        ))
    }

    pub(super) fn add_identity(&mut self, k: &str, value: String) {
        if let Some(k) = compared_kind(k) {
            self.values.push((k, value, source::IDENTITY));
        }
    }
}

pub(super) fn sources_of<'a>(p: &'a Person, k: &str, v: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for (k2, v2, s) in &p.values {
        if *k2 == k && v2 == v && !out.contains(s) {
            out.push(s);
        }
    }
    out
}

/// Everything two contacts have in common, strongest first.
pub(super) fn pair_evidence(a: &Person, b: &Person) -> Vec<Evidence> {
    let mut out = Vec::new();
    let mut done: HashSet<(&str, &str)> = HashSet::new();
    for (k, v, _) in &a.values {
        if !done.insert((k, v.as_str())) {
            continue;
        }
        let on_b = sources_of(b, k, v);
        if on_b.is_empty() {
            continue;
        }
        let mut seen_on: Vec<Sighting> = sources_of(a, k, v)
            .into_iter()
            .map(|s| Sighting {
                contact_id: a.id,
                source: s.to_owned(),
            })
            .collect();
        seen_on.extend(on_b.into_iter().map(|s| Sighting {
            contact_id: b.id,
            source: s.to_owned(),
        }));
        out.push(Evidence {
            kind: (*k).to_owned(),
            value: v.clone(),
            confidence: kind_confidence(k),
            seen_on,
        });
    }
    if let (Some(na), Some(nb)) = (&a.name, &b.name)
        && na == nb
    {
        let same_account = a.account_id.is_some() && a.account_id == b.account_id;
        out.push(Evidence {
            kind: NAME.to_owned(),
            value: na.clone(),
            confidence: if same_account {
                confidence::NAME_AT_ACCOUNT
            } else {
                confidence::NAME
            },
            seen_on: [a.id, b.id]
                .into_iter()
                .map(|contact_id| Sighting {
                    contact_id,
                    source: source::FIELD.to_owned(),
                })
                .collect(),
        });
    }
    sort_evidence(&mut out);
    out
}

pub(super) fn sort_evidence(e: &mut [Evidence]) {
    e.sort_by(|x, y| {
        y.confidence
            .total_cmp(&x.confidence)
            .then_with(|| x.kind.cmp(&y.kind))
            .then_with(|| x.value.cmp(&y.value))
    });
}

/// The unordered key of a pair.
pub(super) fn pair(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The pairs (unordered) with an undone merge between them, among `among` (all when `None`).
pub(super) async fn undone_pairs(
    db: &impl ConnectionTrait,
    org: Uuid,
    among: Option<&[Uuid]>,
) -> Result<HashSet<(Uuid, Uuid)>> {
    let mut q = contact_merges::Entity::find()
        .select_only()
        .column(contact_merges::Column::PrimaryId)
        .column(contact_merges::Column::MergedId)
        .filter(contact_merges::Column::OrganizationId.eq(org))
        .filter(contact_merges::Column::UndoneAt.is_not_null());
    if let Some(ids) = among {
        q = q
            .filter(contact_merges::Column::PrimaryId.is_in(ids.to_vec()))
            .filter(contact_merges::Column::MergedId.is_in(ids.to_vec()));
    }
    Ok(q.into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(a, b)| pair(a, b))
        .collect())
}

/// Pairs of the organization's contacts that look like one person, highest confidence first
/// (at most `first`, 1 to [`MAX_PAGE`]), each with its evidence: the same normalised email,
/// GitHub, Twitter/X or LinkedIn in a field or an identity (npm in identities) on both sides,
/// or the same full name (0.7 at the same account, 0.5 otherwise), combined as `1 − Π(1 − c)`.
///
/// Cost: four statements whatever the size (the comparable columns of every contact, their
/// identities, the undone merges, and the contacts of the page), grouped in memory. That is
/// fine up to tens of thousands of contacts; beyond, this wants a precomputed candidates table.
/// Values shared by more than [`MAX_GROUP`] contacts are not paired on.
pub async fn suggestions(
    db: &impl ConnectionTrait,
    actor: &Actor,
    first: u64,
) -> Result<Vec<Suggestion>> {
    read_rights(actor)?;
    check_first(first)?;
    let org = actor.organization_id;
    let rows: Vec<Comparable> = contacts::Entity::find()
        .select_only()
        .column(contacts::Column::Id)
        .column(contacts::Column::AccountId)
        .column(contacts::Column::FirstName)
        .column(contacts::Column::LastName)
        .column(contacts::Column::EmailNormalized)
        .column(contacts::Column::Github)
        .column(contacts::Column::Twitter)
        .column(contacts::Column::LinkedIn)
        .filter(contacts::Column::OrganizationId.eq(org))
        .into_tuple()
        .all(db)
        .await?;
    let mut people: HashMap<Uuid, Person> =
        rows.into_iter().map(|r| (r.0, Person::new(r))).collect();
    for (c, k, v) in identities_of(db, org, None).await? {
        if let Some(p) = people.get_mut(&c) {
            p.add_identity(&k, v);
        }
    }
    let mut groups: HashMap<(&str, &str), Vec<Uuid>> = HashMap::new();
    for p in people.values() {
        for (k, v, _) in &p.values {
            groups.entry((k, v.as_str())).or_default().push(p.id);
        }
        if let Some(n) = &p.name {
            groups.entry((NAME, n.as_str())).or_default().push(p.id);
        }
    }
    let mut pairs: HashSet<(Uuid, Uuid)> = HashSet::new();
    for ids in groups.values_mut() {
        ids.sort();
        ids.dedup();
        if ids.len() < 2 || ids.len() > MAX_GROUP {
            continue;
        }
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                pairs.insert((*a, *b));
            }
        }
    }
    let mut scored: Vec<(f64, (Uuid, Uuid), Vec<Evidence>)> = pairs
        .into_iter()
        .filter_map(|(a, b)| {
            let ev = pair_evidence(people.get(&a)?, people.get(&b)?);
            (!ev.is_empty()).then(|| (combine(ev.iter().map(|e| e.confidence)), (a, b), ev))
        })
        .collect();
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    scored.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    if scored.is_empty() {
        return Ok(Vec::new());
    }
    let undone = undone_pairs(db, org, None).await?;
    let ids: Vec<Uuid> = scored
        .iter()
        .flat_map(|(_, (a, b), _)| [*a, *b])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let models: HashMap<Uuid, contacts::Model> = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    Ok(scored
        .into_iter()
        .filter_map(|(confidence, (a, b), evidence)| {
            Some(Suggestion {
                contacts: [models.get(&a)?.clone(), models.get(&b)?.clone()],
                confidence,
                evidence,
                previously_unmerged: undone.contains(&(a, b)),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn confidences_combine_as_independent_evidence() {
        assert!(close(combine([]), 0.0));
        assert!(close(combine([0.95]), 0.95));
        assert!(close(combine([0.9, 0.7]), 0.97));
        assert!(close(combine([0.95, 0.9, 0.5]), 1.0 - 0.05 * 0.1 * 0.5));
        assert!(close(combine([1.0, 0.5]), 1.0));
        // Out-of-range inputs never push the result outside 0..=1.
        assert!(close(combine([1.5, 0.2]), 1.0));
        assert!(close(combine([-0.3]), 0.0));
    }

    fn person(
        id: u128,
        account: Option<u128>,
        name: (&str, &str),
        email: Option<&str>,
        github: Option<&str>,
    ) -> Person {
        Person::new((
            Uuid::from_u128(id),
            account.map(Uuid::from_u128),
            Some(name.0.to_owned()).filter(|s| !s.is_empty()),
            Some(name.1.to_owned()).filter(|s| !s.is_empty()),
            email.map(str::to_owned),
            github.map(str::to_owned),
            None,
            None,
        ))
    }

    #[test]
    fn pairs_share_normalised_values_and_full_names() {
        let mut a = person(
            1,
            Some(9),
            ("Jane", "Doe"),
            Some("jane@acme.io"),
            Some("@JaneDev"),
        );
        let mut b = person(2, Some(9), (" jane ", "DOE"), None, None);
        b.add_identity(kind::GITHUB, "janedev".into());
        a.add_identity(kind::NPM, "jd".into());
        b.add_identity(kind::NPM, "jd".into());
        b.add_identity(kind::DOMAIN, "acme.io".into());
        let ev = pair_evidence(&a, &b);
        let kinds: Vec<(&str, &str, f64)> = ev
            .iter()
            .map(|e| (e.kind.as_str(), e.value.as_str(), e.confidence))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("GITHUB", "janedev", 0.95),
                ("NPM", "jd", 0.95),
                ("NAME", "jane doe", 0.7)
            ]
        );
        assert_eq!(
            ev[0].seen_on,
            vec![
                Sighting {
                    contact_id: a.id,
                    source: source::FIELD.into()
                },
                Sighting {
                    contact_id: b.id,
                    source: source::IDENTITY.into()
                },
            ]
        );
        // The same name at different accounts, or with no account, counts less.
        let c = person(3, None, ("Jane", "Doe"), None, None);
        assert_eq!(pair_evidence(&a, &c)[0].confidence, confidence::NAME);
        // A first name alone is no full name.
        let d = person(4, Some(9), ("Jane", ""), None, None);
        assert!(pair_evidence(&a, &d).is_empty());
    }
}
