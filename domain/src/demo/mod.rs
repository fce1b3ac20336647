//! Demo data: a throw-away demo organization for anyone (`POST /api/v1/demo/seed`), and demo
//! data seeded into one's own organization (`seedDemoData` / `removeDemoData` / `demoData`).
//!
//! Nothing is pre-baked: accounts, contacts, deals, activities and the alert rule are written
//! through the CRM's own functions, the signals through the one ingest path
//! ([`crate::signals::ingest_many`]), the scores by the model ([`crate::scoring::rescore`]), and
//! each of the 45 days of score history by the model as of that day, from the signals before it
//! ([`crate::scoring::load_inputs_as_of`]) — so the demo shows what DevSignal itself computes.
//!
//! A demo organization is `organizations.is_demo`: the `demo-cleanup` job deletes it after 24
//! hours, its alerts stay in the app (no email or Slack to made-up addresses), the weekly
//! digest skips it. Demo data in a real organization is recorded in `demo_seeds` (the ids of
//! everything seeded, one row per organization), so removing it deletes exactly those rows.
//!
//! Files: `data` (what is seeded, from a seed), `seed` (writing it), this file (the public demo,
//! the in-organization seed, its status and removal).

mod data;
mod seed;

use chrono::{DateTime, Utc};
use entity::{
    activities, alert_rules, companies, contacts, deals, demo_seeds, memberships, organizations,
    signals, users,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

pub use data::{DAYS, TAG};
pub use seed::{Counts, Objects};

use crate::alerts::Outbound;
use crate::audit::{self, Entry, Meta};
use crate::error::on_unique;
use crate::identity::users::SignedIn;
use crate::{Actor, Error, Principal, Result, Role};

/// The name of every demo organization.
pub const DEMO_ORGANIZATION: &str = "DevSignal Demo";
/// The domain of demo users' addresses: `.invalid` is reserved (RFC 2606), so nothing can ever
/// be delivered there.
pub const DEMO_EMAIL_DOMAIN: &str = "demo.devsignal.invalid";
/// Refusal of a second `seedDemoData`.
pub const ALREADY_SEEDED: &str =
    "demo data is already present in this organization; remove it with removeDemoData first";

/// A new demo organization with a demo user (its OWNER) and its data; returns the user signed
/// in (the caller issues the session) and what was seeded. Nothing is left behind on failure.
pub async fn create_demo(
    db: &DatabaseConnection,
    meta: &Meta,
    out: &Outbound<'_>,
    seed: u64,
) -> Result<(SignedIn, Counts)> {
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(format!(
            "demo-{}@{DEMO_EMAIL_DOMAIN}",
            Uuid::new_v4().simple()
        )),
        name: Set("Demo User".into()),
        password_hash: Set(None),
        github_id: Set(None),
        google_id: Set(None),
        last_login_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let organization = organizations::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(DEMO_ORGANIZATION.into()),
        is_demo: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    memberships::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization.id),
        user_id: Set(user.id),
        role: Set(Role::Owner.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let actor = Actor {
        organization_id: organization.id,
        role: Role::Owner,
        principal: Principal::User {
            user_id: user.id,
            session_id: Uuid::nil(),
        },
    };
    let mut objects = Objects::default();
    let seeded = match seed::seed(db, &actor, meta, out, seed, &mut objects).await {
        Ok(counts) => demo_seeds::ActiveModel {
            organization_id: Set(organization.id),
            seeded_by: Set(Some(user.id)),
            objects: Set(objects.to_json()),
            seeded_at: Set(now),
        }
        .insert(db)
        .await
        .map(|_| counts)
        .map_err(Error::from),
        Err(e) => Err(e),
    };
    match seeded {
        Ok(counts) => Ok((
            SignedIn {
                user,
                organization,
                role: Role::Owner,
            },
            counts,
        )),
        Err(e) => {
            // The organization's rows cascade with it.
            let cleanup = async {
                organizations::Entity::delete_by_id(organization.id)
                    .exec(db)
                    .await?;
                users::Entity::delete_by_id(user.id).exec(db).await?;
                Ok::<_, sea_orm::DbErr>(())
            };
            if let Err(c) = cleanup.await {
                tracing::error!(error = %c, organizationId = %organization.id, "demo cleanup after a failed seed failed");
            }
            Err(e)
        }
    }
}

/// Whether demo data is present in the actor's organization, and what it holds.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub present: bool,
    pub seeded_at: Option<DateTime<Utc>>,
    pub is_demo_organization: bool,
    pub counts: Counts,
}

fn admin(actor: &Actor) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")
}

/// The demo data of the actor's organization (ADMIN).
pub async fn status(db: &DatabaseConnection, actor: &Actor) -> Result<Status> {
    admin(actor)?;
    let org = crate::identity::organizations::current(db, actor).await?;
    let row = demo_seeds::Entity::find_by_id(actor.organization_id)
        .one(db)
        .await?;
    Ok(match row {
        None => Status {
            is_demo_organization: org.is_demo,
            ..Default::default()
        },
        Some(r) => Status {
            present: true,
            seeded_at: Some(r.seeded_at),
            is_demo_organization: org.is_demo,
            counts: Objects::from_json(&r.objects).counts(),
        },
    })
}

/// Seeds demo data into the actor's organization (ADMIN), recorded so [`remove`] deletes
/// exactly it. A second seed while it is present is a `CONFLICT`; a failure leaves nothing.
pub async fn seed_into(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    out: &Outbound<'_>,
    seed: u64,
) -> Result<Status> {
    admin(actor)?;
    let org = actor.organization_id;
    let now = Utc::now();
    // The row is the claim: its primary key (the organization) decides a concurrent second seed.
    demo_seeds::ActiveModel {
        organization_id: Set(org),
        seeded_by: Set(actor.user_id()),
        objects: Set(json!({})),
        seeded_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|e| on_unique(e, "organization", ALREADY_SEEDED))?;
    let mut objects = Objects::default();
    match seed::seed(db, actor, meta, out, seed, &mut objects).await {
        Ok(counts) => {
            demo_seeds::ActiveModel {
                organization_id: Set(org),
                objects: Set(objects.to_json()),
                ..Default::default()
            }
            .update(db)
            .await?;
            let txn = crate::db::begin(db).await?;
            audit::record(
                &txn,
                meta,
                Entry::by(actor, "demo.seeded")
                    .target("organization", org)
                    .metadata(serde_json::to_value(counts).unwrap_or_default()),
            )
            .await?;
            txn.commit().await?;
            Ok(Status {
                present: true,
                seeded_at: Some(now),
                is_demo_organization: false,
                counts,
            })
        }
        Err(e) => {
            if let Err(c) = delete_objects(db, org, &objects).await {
                tracing::error!(error = %c, organizationId = %org, "removing a failed demo seed failed");
            }
            Err(e)
        }
    }
}

/// Removes the demo data of the actor's organization (ADMIN): exactly the rows the seed
/// created; the organization's own data stays, and accounts its signals still touch are
/// rescored. `NOT_FOUND` when there is none.
pub async fn remove(db: &DatabaseConnection, actor: &Actor, meta: &Meta) -> Result<Counts> {
    admin(actor)?;
    let org = actor.organization_id;
    let row = demo_seeds::Entity::find_by_id(org)
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "DemoData" })?;
    let objects = Objects::from_json(&row.objects);
    let counts = objects.counts();
    let txn = crate::db::begin(db).await?;
    delete_in(&txn, org, &objects).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "demo.removed")
            .target("organization", org)
            .metadata(serde_json::to_value(counts).unwrap_or_default()),
    )
    .await?;
    txn.commit().await?;
    Ok(counts)
}

async fn delete_objects(db: &DatabaseConnection, org: Uuid, objects: &Objects) -> Result<()> {
    let txn = crate::db::begin(db).await?;
    delete_in(&txn, org, objects).await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes the seeded rows (and the organization's `demo_seeds` row), then asks for the
/// accounts that are left and lost signals to be rescored.
async fn delete_in(txn: &sea_orm::DatabaseTransaction, org: Uuid, o: &Objects) -> Result<()> {
    let mut touched: Vec<Uuid> = Vec::new();
    for chunk in o.signals.chunks(crate::db::IN_LIST) {
        let accounts: Vec<Option<Uuid>> = signals::Entity::find()
            .select_only()
            .column(signals::Column::AccountId)
            .distinct()
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(txn)
            .await?;
        touched.extend(accounts.into_iter().flatten());
        signals::Entity::delete_many()
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::Id.is_in(chunk.to_vec()))
            .exec(txn)
            .await?;
    }
    // The organization's own rows that point at demo rows stay, unlinked.
    crate::db::detach(txn, org, crate::db::Referenced::Deal, &o.deals).await?;
    crate::db::detach(txn, org, crate::db::Referenced::Contact, &o.contacts).await?;
    crate::db::detach(txn, org, crate::db::Referenced::Account, &o.accounts).await?;
    activities::Entity::delete_many()
        .filter(activities::Column::OrganizationId.eq(org))
        .filter(activities::Column::Id.is_in(o.activities.clone()))
        .exec(txn)
        .await?;
    deals::Entity::delete_many()
        .filter(deals::Column::OrganizationId.eq(org))
        .filter(deals::Column::Id.is_in(o.deals.clone()))
        .exec(txn)
        .await?;
    alert_rules::Entity::delete_many()
        .filter(alert_rules::Column::OrganizationId.eq(org))
        .filter(alert_rules::Column::Id.is_in(o.alert_rules.clone()))
        .exec(txn)
        .await?;
    contacts::Entity::delete_many()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(contacts::Column::Id.is_in(o.contacts.clone()))
        .exec(txn)
        .await?;
    companies::Entity::delete_many()
        .filter(companies::Column::OrganizationId.eq(org))
        .filter(companies::Column::Id.is_in(o.accounts.clone()))
        .exec(txn)
        .await?;
    demo_seeds::Entity::delete_by_id(org).exec(txn).await?;
    // Accounts of the organization's own that lost demo signals are scored again.
    touched.sort();
    touched.dedup();
    touched.retain(|a| !o.accounts.contains(a));
    crate::scoring::request_rescore(txn, org, &touched).await
}
