//! A member's in-app notifications: newest first, read and marked read by that member only.

use chrono::Utc;
use entity::notifications;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{Actor, Error, Result};

/// The most notifications one page returns.
pub const MAX_PAGE: u64 = 100;
/// The most ids one `markNotificationsRead` takes.
pub const MAX_MARK: usize = 500;

fn member(actor: &Actor) -> Result<Uuid> {
    actor.user_id().ok_or_else(|| {
        Error::Forbidden("notifications belong to a signed-in member, not to an API key".into())
    })
}

/// A page of the actor's notifications, newest first: `first` after the id `after`, only
/// unread ones when asked. Returns the page and whether more follow.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    first: u64,
    after: Option<Uuid>,
    unread_only: bool,
) -> Result<(Vec<notifications::Model>, bool)> {
    let user = member(actor)?;
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(Error::invalid("first", "must be between 1 and 100"));
    }
    let mut q = notifications::Entity::find()
        .filter(notifications::Column::OrganizationId.eq(actor.organization_id))
        .filter(notifications::Column::UserId.eq(user));
    if let Some(after) = after {
        q = q.filter(notifications::Column::Id.lt(after));
    }
    if unread_only {
        q = q.filter(notifications::Column::ReadAt.is_null());
    }
    let mut rows = q
        .order_by_desc(notifications::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}

/// How many of the actor's notifications are unread.
pub async fn unread_count(db: &impl ConnectionTrait, actor: &Actor) -> Result<u64> {
    let user = member(actor)?;
    Ok(notifications::Entity::find()
        .filter(notifications::Column::OrganizationId.eq(actor.organization_id))
        .filter(notifications::Column::UserId.eq(user))
        .filter(notifications::Column::ReadAt.is_null())
        .count(db)
        .await?)
}

/// Marks the actor's notifications read: those of `ids`, or all when `ids` is `None`. Ids that
/// are not the actor's are ignored. Returns how many changed.
pub async fn mark_read(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Option<Vec<Uuid>>,
) -> Result<u64> {
    let user = member(actor)?;
    let mut q = notifications::Entity::update_many()
        .col_expr(notifications::Column::ReadAt, Expr::value(Utc::now()))
        .filter(notifications::Column::OrganizationId.eq(actor.organization_id))
        .filter(notifications::Column::UserId.eq(user))
        .filter(notifications::Column::ReadAt.is_null());
    if let Some(ids) = ids {
        if ids.len() > MAX_MARK {
            return Err(Error::invalid("ids", format!("at most {MAX_MARK} ids")));
        }
        q = q.filter(notifications::Column::Id.is_in(ids));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// The id of a member's newest notification (where a live follower starts).
pub async fn latest_notification(
    db: &impl ConnectionTrait,
    org: Uuid,
    user: Uuid,
) -> Result<Option<Uuid>> {
    Ok(notifications::Entity::find()
        .select_only()
        .column(notifications::Column::Id)
        .filter(notifications::Column::OrganizationId.eq(org))
        .filter(notifications::Column::UserId.eq(user))
        .order_by_desc(notifications::Column::Id)
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?)
}

/// A member's notifications newer than `after` (all of them when `None`), oldest first, at
/// most [`MAX_PAGE`].
pub async fn notifications_after(
    db: &impl ConnectionTrait,
    org: Uuid,
    user: Uuid,
    after: Option<Uuid>,
) -> Result<Vec<notifications::Model>> {
    let mut q = notifications::Entity::find()
        .filter(notifications::Column::OrganizationId.eq(org))
        .filter(notifications::Column::UserId.eq(user));
    if let Some(after) = after {
        q = q.filter(notifications::Column::Id.gt(after));
    }
    Ok(q.order_by_asc(notifications::Column::Id)
        .limit(MAX_PAGE)
        .all(db)
        .await?)
}
