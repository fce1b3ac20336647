//! An account's timeline: its activities and signals merged, newest first.

use chrono::{DateTime, Utc};
use entity::signals;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::paging::{self, Page};
use crate::{Actor, Result};
/// One entry of an account's timeline.
#[derive(Debug, Clone)]
pub enum TimelineEntry {
    Activity(entity::activities::Model),
    Signal(signals::Model),
}

impl TimelineEntry {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        match self {
            TimelineEntry::Activity(a) => (a.created_at, a.id),
            TimelineEntry::Signal(s) => (s.timestamp, s.id),
        }
    }
}

/// What a timeline cursor holds: the entry's time and id.
#[derive(serde::Serialize, serde::Deserialize)]
struct Key {
    t: DateTime<Utc>,
    id: Uuid,
}

fn timeline_cursor(t: DateTime<Utc>, id: Uuid) -> String {
    paging::encode(&Key { t, id })
}

fn parse_timeline_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let k: Key = paging::decode("after", c)?;
    Ok((k.t, k.id))
}

/// An account's activities (by creation time) and signals (by event time), newest first, with
/// stable cursors: a page starts strictly after the (time, id) of the cursor's entry. Each side
/// is read from its index on (account, time, id); the total (two `COUNT`s) only when `count`.
pub async fn timeline(
    db: &impl ConnectionTrait,
    actor: &Actor,
    account_id: Uuid,
    first: u64,
    after: Option<&str>,
    count: bool,
) -> Result<Page<TimelineEntry>> {
    use entity::activities;
    use sea_orm::{PaginatorTrait, QueryOrder};
    // Activities and signals both: a key needs the scope of each.
    actor.require_scope("accounts:read")?;
    actor.require_scope("activities:read")?;
    actor.require_scope("signals:read")?;
    paging::check_first(first)?;
    let org = actor.organization_id;
    let cursor = after.map(parse_timeline_cursor).transpose()?;
    let mut acts = activities::Entity::find()
        .filter(activities::Column::OrganizationId.eq(org))
        .filter(activities::Column::AccountId.eq(account_id));
    let mut sigs = signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(org))
        .filter(signals::Column::AccountId.eq(account_id));
    let total = if count {
        Some(acts.clone().count(db).await? + sigs.clone().count(db).await?)
    } else {
        None
    };
    if let Some((t, id)) = cursor {
        acts = acts.filter(
            Condition::any()
                .add(activities::Column::CreatedAt.lt(t))
                .add(
                    Condition::all()
                        .add(activities::Column::CreatedAt.eq(t))
                        .add(activities::Column::Id.lt(id)),
                ),
        );
        sigs = sigs.filter(
            Condition::any().add(signals::Column::Timestamp.lt(t)).add(
                Condition::all()
                    .add(signals::Column::Timestamp.eq(t))
                    .add(signals::Column::Id.lt(id)),
            ),
        );
    }
    let a = acts
        .order_by_desc(activities::Column::CreatedAt)
        .order_by_desc(activities::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let s = sigs
        .order_by_desc(signals::Column::Timestamp)
        .order_by_desc(signals::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let mut all: Vec<TimelineEntry> = a
        .into_iter()
        .map(TimelineEntry::Activity)
        .chain(s.into_iter().map(TimelineEntry::Signal))
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.key()));
    let has_next = all.len() as u64 > first;
    all.truncate(first as usize);
    let cursors = all
        .iter()
        .map(|e| {
            let (t, id) = e.key();
            timeline_cursor(t, id)
        })
        .collect();
    Ok(Page {
        items: all,
        cursors,
        has_next,
        has_previous: after.is_some(),
        total,
    })
}
