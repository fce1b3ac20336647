//! `devsignal secrets …`: the operator's view of the secrets sealed at rest (webhook signing
//! secrets, integration credentials and webhook secrets, signal-source secrets, tokens cached in
//! integration cursors) and the rotation of `ENCRYPTION_KEY`.
//!
//! Rotation, online: start every process with the new `ENCRYPTION_KEY` and the old one as
//! `ENCRYPTION_KEY_PREVIOUS` (they read both and seal under the new one), run `secrets rotate`
//! (it re-seals what is still under the old key; the server may keep running), check with
//! `secrets check`, then remove `ENCRYPTION_KEY_PREVIOUS`. Each value is replaced only if it is
//! still the one that was read (compare-and-set), so a secret the server rewrites meanwhile is
//! never overwritten with a stale one; the run is resumable, because what is already under the
//! new key is skipped.

use std::fmt::Write as _;

use anyhow::Context as _;
use clap::Subcommand;
use entity::{ai_settings, integration_cursors, integrations, signal_sources, webhook_endpoints};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use domain::secrets::{Cipher, SealedUnder};

use crate::config::Config;

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum SecretsAction {
    /// Count the stored secrets that open under ENCRYPTION_KEY, under ENCRYPTION_KEY_PREVIOUS,
    /// and under neither; exits 1 when any opens under neither (they would be unusable).
    Check,
    /// Re-seal under ENCRYPTION_KEY every stored secret still sealed under
    /// ENCRYPTION_KEY_PREVIOUS. Safe while the server runs, and resumable: run it again after an
    /// interruption. Remove ENCRYPTION_KEY_PREVIOUS once `secrets check` shows none left.
    Rotate,
}

/// Rows read and updated per statement.
const PAGE: u64 = 500;
/// How often a value the server rewrote between our read and our write is read again.
const RETRIES: usize = 5;

/// What one stored place (a table's column) holds.
#[derive(Default)]
struct Tally {
    place: &'static str,
    current: u64,
    previous: u64,
    resealed: u64,
    unreadable: Vec<String>,
}

impl Tally {
    fn new(place: &'static str) -> Self {
        Tally {
            place,
            ..Default::default()
        }
    }

    fn line(&self, rotate: bool) -> String {
        let mut out = format!("{:<48} current {:>6}", self.place, self.current);
        if rotate {
            let _ = write!(out, "  re-sealed {:>6}", self.resealed);
        }
        let _ = write!(
            out,
            "  previous key {:>6}  unreadable {:>6}",
            self.previous,
            self.unreadable.len()
        );
        out
    }
}

pub async fn run(config: Config, action: SecretsAction) -> anyhow::Result<()> {
    let cipher = config.cipher().context(
        "ENCRYPTION_KEY is not set: set it to the key the server seals with (and \
         ENCRYPTION_KEY_PREVIOUS to the key being rotated away from)",
    )?;
    let rotate = matches!(action, SecretsAction::Rotate);
    if rotate && !cipher.has_previous() {
        eprintln!(
            "ENCRYPTION_KEY_PREVIOUS is not set: nothing can be re-sealed; checking that every \
             secret opens under ENCRYPTION_KEY"
        );
    }
    let db = super::open_existing_database(&config).await?;
    let tallies = sweep(&db, &cipher, rotate && cipher.has_previous()).await;
    db.close().await.ok();
    let tallies = tallies?;
    for t in &tallies {
        println!("{}", t.line(rotate));
    }
    let unreadable: Vec<String> = tallies
        .iter()
        .flat_map(|t| {
            t.unreadable
                .iter()
                .map(move |id| format!("{} {id}", t.place))
        })
        .collect();
    let previous: u64 = tallies.iter().map(|t| t.previous).sum();
    if !unreadable.is_empty() {
        let shown: Vec<&str> = unreadable.iter().take(10).map(String::as_str).collect();
        anyhow::bail!(
            "{} stored secret(s) open under neither ENCRYPTION_KEY nor ENCRYPTION_KEY_PREVIOUS \
             (they were sealed under another key; set it as ENCRYPTION_KEY_PREVIOUS, or have \
             their owners set them anew): {}",
            unreadable.len(),
            shown.join(", ")
        );
    }
    if previous > 0 {
        println!(
            "{previous} secret(s) are still sealed under ENCRYPTION_KEY_PREVIOUS: run `devsignal \
             secrets rotate` before removing it"
        );
    } else {
        println!("every stored secret is sealed under ENCRYPTION_KEY");
    }
    Ok(())
}

/// Visits every sealed value, re-sealing those under the previous key when `write` is set.
async fn sweep(
    db: &DatabaseConnection,
    cipher: &Cipher,
    write: bool,
) -> anyhow::Result<Vec<Tally>> {
    let mut out = Vec::new();
    macro_rules! column {
        ($entity:ident, $col:ident, $place:literal) => {
            out.push(
                sweep_column::<$entity::Entity>(
                    db,
                    cipher,
                    write,
                    $entity::Column::Id,
                    $entity::Column::$col,
                    Tally::new($place),
                )
                .await
                .context(concat!("re-sealing ", $place))?,
            );
        };
    }
    column!(
        webhook_endpoints,
        SecretCiphertext,
        "webhook_endpoints.secret"
    );
    column!(
        webhook_endpoints,
        PreviousSecretCiphertext,
        "webhook_endpoints.previous_secret"
    );
    column!(
        integrations,
        CredentialsCiphertext,
        "integrations.credentials"
    );
    column!(
        integrations,
        WebhookSecretCiphertext,
        "integrations.webhook_secret"
    );
    column!(signal_sources, SecretCiphertext, "signal_sources.secret");
    column!(ai_settings, ApiKeyCiphertext, "ai_settings.api_key");
    out.push(
        sweep_cursors(db, cipher, write)
            .await
            .context("re-sealing integration_cursors.state")?,
    );
    Ok(out)
}

/// One sealed column of a table keyed by a UUID `id`, read in pages in id order.
async fn sweep_column<E: EntityTrait>(
    db: &DatabaseConnection,
    cipher: &Cipher,
    write: bool,
    id: E::Column,
    col: E::Column,
    mut tally: Tally,
) -> anyhow::Result<Tally> {
    let mut after: Option<Uuid> = None;
    loop {
        let mut q = E::find()
            .select_only()
            .column(id)
            .column(col)
            .filter(col.is_not_null())
            .order_by_asc(id)
            .limit(PAGE);
        if let Some(after) = after {
            q = q.filter(id.gt(after));
        }
        let rows: Vec<(Uuid, String)> = q.into_tuple().all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(tally);
        };
        after = Some(last.0);
        for (row, mut sealed) in rows {
            let mut tries = 0;
            loop {
                match cipher.open_under(&sealed) {
                    Err(_) => tally.unreadable.push(row.to_string()),
                    Ok((_, SealedUnder::Current)) => tally.current += 1,
                    Ok((_, SealedUnder::Previous)) if !write => tally.previous += 1,
                    Ok((plain, SealedUnder::Previous)) => {
                        let updated = E::update_many()
                            .col_expr(col, Expr::value(cipher.seal(&plain)?))
                            .filter(id.eq(row))
                            .filter(col.eq(sealed.clone()))
                            .exec(db)
                            .await?;
                        if updated.rows_affected == 0 && tries < RETRIES {
                            // Rewritten (or deleted) since it was read: look again.
                            tries += 1;
                            let now: Option<Option<String>> = E::find()
                                .select_only()
                                .column(col)
                                .filter(id.eq(row))
                                .into_tuple()
                                .one(db)
                                .await?;
                            match now.flatten() {
                                Some(now) => {
                                    sealed = now;
                                    continue;
                                }
                                None => break,
                            }
                        }
                        if updated.rows_affected == 0 {
                            tally.previous += 1;
                        } else {
                            tally.resealed += 1;
                        }
                    }
                }
                break;
            }
        }
    }
}

/// Re-seals every string in `value` (at any depth) that opens under the previous key. Strings
/// that open under no key are left alone: cursor state is the connectors' own JSON, and only
/// what opens is known to be a sealed value.
fn reseal_json(
    cipher: &Cipher,
    value: &mut Value,
    tally: &mut Tally,
    write: bool,
) -> anyhow::Result<bool> {
    let mut changed = false;
    match value {
        Value::String(s) if s.starts_with("v1:") => match cipher.open_under(s) {
            Ok((_, SealedUnder::Current)) => tally.current += 1,
            Ok((plain, SealedUnder::Previous)) => {
                if write {
                    *s = cipher.seal(&plain)?;
                    changed = true;
                } else {
                    tally.previous += 1;
                }
            }
            Err(_) => {}
        },
        Value::Array(items) => {
            for item in items {
                changed |= reseal_json(cipher, item, tally, write)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                changed |= reseal_json(cipher, item, tally, write)?;
            }
        }
        _ => {}
    }
    Ok(changed)
}

/// Tokens connectors cache in their cursors (e.g. Reddit's access token), sealed inside the
/// state JSON. A cursor is replaced only if its `updated_at` is still the one read.
async fn sweep_cursors(
    db: &DatabaseConnection,
    cipher: &Cipher,
    write: bool,
) -> anyhow::Result<Tally> {
    use integration_cursors::Column as C;
    let mut tally = Tally::new("integration_cursors.state");
    let mut after: Option<(Uuid, String)> = None;
    loop {
        let mut q = integration_cursors::Entity::find()
            .order_by_asc(C::IntegrationId)
            .order_by_asc(C::Resource)
            .limit(PAGE);
        if let Some((integration, resource)) = &after {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(C::IntegrationId.gt(*integration))
                    .add(
                        sea_orm::Condition::all()
                            .add(C::IntegrationId.eq(*integration))
                            .add(C::Resource.gt(resource.clone())),
                    ),
            );
        }
        let rows = q.all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(tally);
        };
        after = Some((last.integration_id, last.resource.clone()));
        for mut row in rows {
            let mut tries = 0;
            loop {
                let mut state = row.state.clone();
                let mut seen = Tally::new(tally.place);
                let changed = reseal_json(cipher, &mut state, &mut seen, write)?;
                if !changed || tries == RETRIES {
                    tally.current += seen.current;
                    // Out of retries: what is left under the previous key counts as such.
                    tally.previous += seen.previous + u64::from(changed);
                    break;
                }
                let updated = integration_cursors::Entity::update_many()
                    .col_expr(C::State, Expr::value(state))
                    .filter(C::IntegrationId.eq(row.integration_id))
                    .filter(C::Resource.eq(row.resource.clone()))
                    .filter(C::UpdatedAt.eq(row.updated_at))
                    .exec(db)
                    .await?;
                if updated.rows_affected > 0 {
                    tally.current += seen.current;
                    tally.resealed += 1;
                    break;
                }
                // Rewritten by its connector since it was read: look again.
                tries += 1;
                match integration_cursors::Entity::find_by_id((
                    row.integration_id,
                    row.resource.clone(),
                ))
                .one(db)
                .await?
                {
                    Some(now) => row = now,
                    None => break,
                }
            }
        }
    }
}
