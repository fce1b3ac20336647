//! The cron table's run-time state: entries an operator disabled (kept across restarts, read at
//! every tick, so a change reaches every running scheduler at once), the ticks each entry
//! handled, and the heartbeats of the running schedulers.

use chrono::{DateTime, Utc};
use entity::{job_cron_ticks, job_schedule_states, scheduler_heartbeats};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::Result;

/// Why a recorded tick enqueued no job (`job_cron_ticks.skipped`).
pub mod skipped {
    /// The entry was disabled at the tick.
    pub const DISABLED: &str = "disabled";
    /// An identical job was still waiting (its dedupe key).
    pub const DUPLICATE: &str = "duplicate";
}

/// Disables (or enables) cron entry `name`. Returns false when it already was in that state.
pub async fn set_schedule_disabled(
    db: &impl ConnectionTrait,
    name: &str,
    disabled: bool,
    by: Option<&str>,
    reason: Option<&str>,
) -> Result<bool> {
    let was = schedule_disabled(db, name).await?;
    if was == disabled {
        return Ok(false);
    }
    let now = Utc::now();
    job_schedule_states::Entity::insert(job_schedule_states::ActiveModel {
        name: Set(name.to_owned()),
        disabled: Set(disabled),
        disabled_at: Set(disabled.then_some(now)),
        disabled_by: Set(by.filter(|_| disabled).map(str::to_owned)),
        reason: Set(reason.filter(|_| disabled).map(str::to_owned)),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(job_schedule_states::Column::Name)
            .update_columns([
                job_schedule_states::Column::Disabled,
                job_schedule_states::Column::DisabledAt,
                job_schedule_states::Column::DisabledBy,
                job_schedule_states::Column::Reason,
                job_schedule_states::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(true)
}

/// Whether cron entry `name` is disabled now.
pub async fn schedule_disabled(db: &impl ConnectionTrait, name: &str) -> Result<bool> {
    Ok(job_schedule_states::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .is_some_and(|s| s.disabled))
}

/// Every entry with a recorded state (enabled ones included once they were disabled before).
pub async fn schedule_states(db: &impl ConnectionTrait) -> Result<Vec<job_schedule_states::Model>> {
    Ok(job_schedule_states::Entity::find().all(db).await?)
}

/// The last recorded tick of `name` (enqueued or skipped).
pub async fn last_tick_of(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<job_cron_ticks::Model>> {
    Ok(job_cron_ticks::Entity::find()
        .filter(job_cron_ticks::Column::Name.eq(name))
        .order_by_desc(job_cron_ticks::Column::TickAt)
        .one(db)
        .await?)
}

/// The time of each entry's last recorded tick, in one statement (for `/metrics`).
pub async fn last_tick_times(db: &impl ConnectionTrait) -> Result<Vec<(String, DateTime<Utc>)>> {
    Ok(job_cron_ticks::Entity::find()
        .select_only()
        .column(job_cron_ticks::Column::Name)
        .column_as(job_cron_ticks::Column::TickAt.max(), "last_tick_at")
        .group_by(job_cron_ticks::Column::Name)
        .into_tuple()
        .all(db)
        .await?)
}

/// A running scheduler, as its heartbeat records it.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub instance_id: String,
    pub host: String,
    pub pid: i32,
    pub started_at: DateTime<Utc>,
}

/// Records that `who` is alive now.
pub async fn beat(db: &impl ConnectionTrait, who: &Heartbeat) -> Result<()> {
    scheduler_heartbeats::Entity::insert(scheduler_heartbeats::ActiveModel {
        instance_id: Set(who.instance_id.clone()),
        host: Set(who.host.clone()),
        pid: Set(who.pid),
        started_at: Set(who.started_at),
        beat_at: Set(Utc::now()),
        stopped_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(scheduler_heartbeats::Column::InstanceId)
            .update_columns([
                scheduler_heartbeats::Column::BeatAt,
                scheduler_heartbeats::Column::StoppedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Records that `instance_id` stopped cleanly (it no longer counts as alive).
pub async fn stopped(db: &impl ConnectionTrait, instance_id: &str) -> Result<()> {
    let now = Utc::now();
    scheduler_heartbeats::Entity::update_many()
        .col_expr(
            scheduler_heartbeats::Column::StoppedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(scheduler_heartbeats::Column::InstanceId.eq(instance_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the heartbeats of schedulers silent since before `before`, except the most recent
/// one (so "last beat … ago" can still be told). Returns how many.
pub async fn prune_heartbeats(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64> {
    let Some(newest) = scheduler_heartbeats::Entity::find()
        .order_by_desc(scheduler_heartbeats::Column::BeatAt)
        .one(db)
        .await?
    else {
        return Ok(0);
    };
    Ok(scheduler_heartbeats::Entity::delete_many()
        .filter(scheduler_heartbeats::Column::BeatAt.lt(before))
        .filter(scheduler_heartbeats::Column::InstanceId.ne(newest.instance_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// Every recorded scheduler, the most recent beat first.
pub async fn heartbeats(db: &impl ConnectionTrait) -> Result<Vec<scheduler_heartbeats::Model>> {
    Ok(scheduler_heartbeats::Entity::find()
        .order_by_desc(scheduler_heartbeats::Column::BeatAt)
        .all(db)
        .await?)
}

/// What the heartbeats say at `now`: how many schedulers beat within `stale_after` and have not
/// stopped, and the most recent beat of any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub alive: usize,
    pub last_beat: Option<DateTime<Utc>>,
}

/// Reads [`Liveness`] from the heartbeats.
pub async fn liveness(
    db: &impl ConnectionTrait,
    stale_after: std::time::Duration,
) -> Result<Liveness> {
    let now = Utc::now();
    let stale = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    let all = heartbeats(db).await?;
    Ok(Liveness {
        alive: all
            .iter()
            .filter(|h| h.stopped_at.is_none() && now - h.beat_at <= stale)
            .count(),
        last_beat: all.first().map(|h| h.beat_at),
    })
}
