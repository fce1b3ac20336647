//! A member's notification preferences in an organization (in-app alerts, alert emails, the
//! digest's frequency; no stored row means the defaults), and the signed one-click unsubscribe
//! links every email carries.

use std::collections::HashMap;

use base64::Engine;
use chrono::Utc;
use entity::{memberships, notification_preferences as prefs};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secrets::Cipher;
use crate::{Actor, Error, Result};

/// How often a member gets the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DigestFrequency {
    Weekly,
    Never,
}

impl DigestFrequency {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestFrequency::Weekly => "WEEKLY",
            DigestFrequency::Never => "NEVER",
        }
    }

    fn parse(s: &str) -> DigestFrequency {
        if s == "NEVER" {
            DigestFrequency::Never
        } else {
            DigestFrequency::Weekly
        }
    }
}

/// A member's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// Alerts appear in the app.
    pub in_app: bool,
    /// Alerts of rules with the email channel come by email.
    pub alert_emails: bool,
    pub digest: DigestFrequency,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            in_app: true,
            alert_emails: true,
            digest: DigestFrequency::Weekly,
        }
    }
}

impl From<prefs::Model> for Preferences {
    fn from(m: prefs::Model) -> Self {
        Preferences {
            in_app: m.in_app,
            alert_emails: m.alert_emails,
            digest: DigestFrequency::parse(&m.digest),
        }
    }
}

fn member(actor: &Actor) -> Result<Uuid> {
    actor.user_id().ok_or_else(|| {
        Error::Forbidden("notification preferences belong to a member, not to an API key".into())
    })
}

/// The preferences of `users` in `org` (the defaults for those without a row).
pub async fn of_members(
    db: &impl ConnectionTrait,
    org: Uuid,
    users: &[Uuid],
) -> Result<HashMap<Uuid, Preferences>> {
    let mut out: HashMap<Uuid, Preferences> =
        users.iter().map(|u| (*u, Preferences::default())).collect();
    if users.is_empty() {
        return Ok(out);
    }
    for row in prefs::Entity::find()
        .filter(prefs::Column::OrganizationId.eq(org))
        .filter(prefs::Column::UserId.is_in(users.to_vec()))
        .all(db)
        .await?
    {
        out.insert(row.user_id, row.into());
    }
    Ok(out)
}

/// The actor's own preferences.
pub async fn preferences(db: &impl ConnectionTrait, actor: &Actor) -> Result<Preferences> {
    let user = member(actor)?;
    Ok(of_members(db, actor.organization_id, &[user])
        .await?
        .remove(&user)
        .unwrap_or_default())
}

async fn store(db: &impl ConnectionTrait, org: Uuid, user: Uuid, p: Preferences) -> Result<()> {
    prefs::Entity::insert(prefs::ActiveModel {
        organization_id: Set(org),
        user_id: Set(user),
        in_app: Set(p.in_app),
        alert_emails: Set(p.alert_emails),
        digest: Set(p.digest.as_str().into()),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([prefs::Column::OrganizationId, prefs::Column::UserId])
            .update_columns([
                prefs::Column::InApp,
                prefs::Column::AlertEmails,
                prefs::Column::Digest,
                prefs::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Changes the actor's own preferences: each `Some` replaces, each `None` stays.
pub async fn update_preferences(
    db: &impl ConnectionTrait,
    actor: &Actor,
    in_app: Option<bool>,
    alert_emails: Option<bool>,
    digest: Option<DigestFrequency>,
) -> Result<Preferences> {
    let user = member(actor)?;
    let mut p = preferences(db, actor).await?;
    p.in_app = in_app.unwrap_or(p.in_app);
    p.alert_emails = alert_emails.unwrap_or(p.alert_emails);
    p.digest = digest.unwrap_or(p.digest);
    store(db, actor.organization_id, user, p).await?;
    Ok(p)
}

/// What an unsubscribe link turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unsubscribe {
    /// Alert emails.
    Alerts,
    /// The digest.
    Digest,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    o: Uuid,
    u: Uuid,
    w: Unsubscribe,
}

const PURPOSE: &str = "unsubscribe";

/// The signed token of an unsubscribe link for `user` in `org` (no expiry: an old email's link
/// still works; it names one member, one organization and one kind of email).
pub fn unsubscribe_token(cipher: &Cipher, org: Uuid, user: Uuid, what: Unsubscribe) -> String {
    let claims = serde_json::to_vec(&Claims {
        o: org,
        u: user,
        w: what,
    })
    .unwrap_or_default();
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&claims);
    let sig = cipher.sign(PURPOSE, body.as_bytes());
    format!("{body}.{sig}")
}

fn claims(cipher: &Cipher, token: &str) -> Result<Claims> {
    let bad = || Error::invalid("token", "this unsubscribe link is not valid");
    let (body, sig) = token.split_once('.').ok_or_else(bad)?;
    if !cipher.verify(PURPOSE, body.as_bytes(), sig) {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad())?;
    serde_json::from_slice(&raw).map_err(|_| bad())
}

/// Whom a valid token names and what it turns off (nothing is changed).
pub fn check_unsubscribe(cipher: &Cipher, token: &str) -> Result<Unsubscribe> {
    claims(cipher, token).map(|c| c.w)
}

/// Follows an unsubscribe link: turns off what it names for its member, if still a member.
pub async fn unsubscribe(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    token: &str,
) -> Result<Unsubscribe> {
    let c = claims(cipher, token)?;
    let still = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(c.o))
        .filter(memberships::Column::UserId.eq(c.u))
        .one(db)
        .await?
        .is_some();
    if still {
        let mut p = of_members(db, c.o, &[c.u])
            .await?
            .remove(&c.u)
            .unwrap_or_default();
        match c.w {
            Unsubscribe::Alerts => p.alert_emails = false,
            Unsubscribe::Digest => p.digest = DigestFrequency::Never,
        }
        store(db, c.o, c.u, p).await?;
    }
    Ok(c.w)
}
