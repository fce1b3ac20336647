//! npm and PyPI: daily downloads per package (the npm downloads range API; pypistats'
//! `overall` without mirrors), stored per package per day (re-reading a day overwrites it), the
//! latest version and maintainers from the registry (npm) or PyPI's JSON API. A day whose
//! downloads are far above the 28 days before it (z-score > 3) appends
//! `package.downloads_spike`; a new latest version appends `package.released`. Neither source
//! names a person per download, so no signal is created: the figures are read with
//! `packageDownloads`, and the events reach webhooks and subscriptions.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use domain::FieldError;
use entity::package_downloads;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::http::{Fetched, Request};
use crate::run::{Stop, SyncContext};
use crate::store;

pub struct Npm;
pub struct Pypi;

/// Days in the baseline a day is compared with.
pub const BASELINE_DAYS: i64 = 28;
/// A day is a spike above this z-score.
pub const SPIKE_Z: f64 = 3.0;
/// Days read on a first (or full) sync.
const FIRST_DAYS: i64 = 120;
/// Days re-read before the last stored day (late corrections).
const REREAD_DAYS: i64 = 2;
/// On a first sync, only the most recent days are checked for spikes (not all history).
const FIRST_SPIKE_DAYS: i64 = 3;

/// A package name as stored: npm names as given (lower case), PyPI names normalised (PEP 503).
pub fn normalize(registry: &str, name: &str) -> String {
    let n = name.trim().to_lowercase();
    if registry == "PYPI" {
        let mut out = String::with_capacity(n.len());
        let mut sep = false;
        for c in n.chars() {
            if matches!(c, '-' | '_' | '.') {
                sep = true;
            } else {
                if sep && !out.is_empty() {
                    out.push('-');
                }
                sep = false;
                out.push(c);
            }
        }
        out
    } else {
        n
    }
}

fn valid(registry: &str, name: &str) -> bool {
    if name.is_empty() || name.len() > 214 {
        return false;
    }
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
            && !s.starts_with('.')
    };
    if registry == "NPM" {
        match name.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('/') {
                Some((scope, pkg)) => plain(scope) && plain(pkg),
                None => false,
            },
            None => plain(name) && !name.starts_with('_'),
        }
    } else {
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
    }
}

fn validate(
    registry: &str,
    config: &Value,
    credentials: Option<&Value>,
) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Value::Object(cfg) = config else {
        return Err(vec![FieldError::new("config", "must be an object")]);
    };
    let mut packages: Vec<String> = Vec::new();
    match cfg.get("packages") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, p) in list.iter().enumerate() {
                match p.as_str().map(|s| normalize(registry, s)) {
                    Some(n) if valid(registry, &n) => {
                        if !packages.contains(&n) {
                            packages.push(n);
                        }
                    }
                    _ => errors.push(FieldError::new(
                        format!("config.packages.{i}"),
                        "is not a valid package name",
                    )),
                }
            }
            if list.len() > 200 {
                errors.push(FieldError::new("config.packages", "at most 200 packages"));
            }
        }
        _ => errors.push(FieldError::new(
            "config.packages",
            "must list at least one package",
        )),
    }
    for k in cfg.keys() {
        if k != "packages" {
            errors.push(FieldError::new(
                format!("config.{k}"),
                "is not a setting (packages)",
            ));
        }
    }
    if credentials.is_some_and(|c| !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty())) {
        errors.push(FieldError::new(
            "credentials",
            "this source needs no credentials",
        ));
    }
    if errors.is_empty() {
        Ok(json!({ "packages": packages }))
    } else {
        Err(errors)
    }
}

fn packages_of(cx: &SyncContext) -> Vec<String> {
    cx.integration
        .config
        .get("packages")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Stores days (overwriting), then checks the new days for spikes and appends events, in one
/// transaction.
async fn store_days(
    cx: &SyncContext,
    registry: &str,
    package: &str,
    days: BTreeMap<NaiveDate, i64>,
) -> Result<(), Stop> {
    if days.is_empty() {
        return Ok(());
    }
    let org = cx.integration.organization_id;
    let now = Utc::now();
    let txn = domain::db::begin(&cx.db).await?;
    let rows: Vec<package_downloads::ActiveModel> = days
        .iter()
        .map(|(d, n)| package_downloads::ActiveModel {
            organization_id: Set(org),
            registry: Set(registry.into()),
            package: Set(package.into()),
            day: Set(d.format("%Y-%m-%d").to_string()),
            downloads: Set(*n),
            updated_at: Set(now),
        })
        .collect();
    for chunk in rows.chunks(500) {
        package_downloads::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    package_downloads::Column::OrganizationId,
                    package_downloads::Column::Registry,
                    package_downloads::Column::Package,
                    package_downloads::Column::Day,
                ])
                .update_columns([
                    package_downloads::Column::Downloads,
                    package_downloads::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    // Spikes: each day after the last one checked (on a first sync, only the latest few).
    let resource = format!("spikes:{package}");
    let checked = store::cursor(&txn, cx.integration.id, &resource)
        .await?
        .and_then(|c| {
            c.state
                .get("lastDay")
                .and_then(|d| d.as_str())
                .and_then(day)
        });
    let last = *days.keys().next_back().unwrap_or(&now.date_naive());
    let from = match checked {
        Some(c) => c + chrono::Duration::days(1),
        None => last - chrono::Duration::days(FIRST_SPIKE_DAYS - 1),
    };
    if from <= last {
        let lo = (from - chrono::Duration::days(BASELINE_DAYS))
            .format("%Y-%m-%d")
            .to_string();
        let stored: BTreeMap<NaiveDate, i64> = package_downloads::Entity::find()
            .filter(package_downloads::Column::OrganizationId.eq(org))
            .filter(package_downloads::Column::Registry.eq(registry))
            .filter(package_downloads::Column::Package.eq(package))
            .filter(package_downloads::Column::Day.gte(lo))
            .all(&txn)
            .await?
            .into_iter()
            .filter_map(|r| day(&r.day).map(|d| (d, r.downloads)))
            .collect();
        let mut events = Vec::new();
        let mut d = from;
        while d <= last {
            if let Some(x) = stored.get(&d) {
                let base: Vec<f64> = (1..=BASELINE_DAYS)
                    .filter_map(|k| stored.get(&(d - chrono::Duration::days(k))))
                    .map(|v| *v as f64)
                    .collect();
                if base.len() as i64 == BASELINE_DAYS {
                    let mean = base.iter().sum::<f64>() / base.len() as f64;
                    let var =
                        base.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / base.len() as f64;
                    let sd = var.sqrt();
                    let z = (*x as f64 - mean) / sd.max(1.0);
                    if z > SPIKE_Z {
                        events.push((
                            "package.downloads_spike",
                            json!({
                                "registry": registry,
                                "package": package,
                                "day": d.format("%Y-%m-%d").to_string(),
                                "downloads": x,
                                "baselineMean": (mean * 100.0).round() / 100.0,
                                "baselineStdDev": (sd * 100.0).round() / 100.0,
                                "zScore": (z * 100.0).round() / 100.0,
                                "integrationId": cx.integration.id,
                            }),
                        ));
                    }
                }
            }
            d += chrono::Duration::days(1);
        }
        store::put_cursor(
            &txn,
            &cx.integration,
            &resource,
            json!({"lastDay": last.format("%Y-%m-%d").to_string()}),
            None,
            None,
        )
        .await?;
        domain::events::append_many(&txn, org, None, events).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Records the latest version and maintainers; a version different from the stored one appends
/// `package.released` (the first read records it without an event).
async fn store_release(
    cx: &SyncContext,
    registry: &str,
    package: &str,
    version: Option<String>,
    maintainers: Vec<String>,
    etag: Option<String>,
    last_modified: Option<String>,
) -> Result<(), Stop> {
    let resource = format!("meta:{package}");
    let previous = cx.cursor(&resource).await?.and_then(|c| {
        c.state
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    });
    let txn = domain::db::begin(&cx.db).await?;
    store::put_cursor(
        &txn,
        &cx.integration,
        &resource,
        json!({"version": version, "maintainers": maintainers}),
        etag,
        last_modified,
    )
    .await?;
    if let (Some(prev), Some(v)) = (&previous, &version)
        && prev != v
    {
        domain::events::append(
            &txn,
            cx.integration.organization_id,
            None,
            "package.released",
            json!({
                "registry": registry,
                "package": package,
                "version": v,
                "previousVersion": prev,
                "maintainers": maintainers,
                "integrationId": cx.integration.id,
            }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The days to ask for: from the last stored day (minus a few, for late corrections) or
/// [`FIRST_DAYS`] back, to today.
async fn window(cx: &SyncContext, package: &str) -> Result<(NaiveDate, NaiveDate), Stop> {
    let today = Utc::now().date_naive();
    let resource = format!("downloads:{package}");
    let last = if cx.full {
        None
    } else {
        cx.cursor(&resource).await?.and_then(|c| {
            c.state
                .get("lastDay")
                .and_then(|d| d.as_str())
                .and_then(day)
        })
    };
    let start = match last {
        Some(l) => (l - chrono::Duration::days(REREAD_DAYS)).min(today),
        None => today - chrono::Duration::days(FIRST_DAYS),
    };
    Ok((start, today))
}

fn missing(registry: &str, package: &str) -> Stop {
    Stop::Invalid(format!("the {registry} package {package} was not found"))
}

#[async_trait::async_trait]
impl crate::Connector for Npm {
    fn kind(&self) -> &'static str {
        "NPM"
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        validate("NPM", config, credentials)
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let s = cx.rt.settings();
        for package in packages_of(cx) {
            let (start, end) = window(cx, &package).await?;
            let url = format!(
                "{}/downloads/range/{}:{}/{package}",
                s.npm_downloads_api_url.trim_end_matches('/'),
                start.format("%Y-%m-%d"),
                end.format("%Y-%m-%d")
            );
            match cx
                .get(Request::get(url).header("accept", "application/json"))
                .await?
            {
                Fetched::Missing => return Err(missing("npm", &package)),
                Fetched::NotModified => {}
                Fetched::Ok(page) => {
                    let body: Value = page.json("npm downloads")?;
                    let days: BTreeMap<NaiveDate, i64> = body
                        .get("downloads")
                        .and_then(|d| d.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|e| {
                                    Some((
                                        day(e.get("day")?.as_str()?)?,
                                        e.get("downloads")?.as_i64()?,
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let last = days.keys().next_back().copied();
                    store_days(cx, "NPM", &package, days).await?;
                    if let Some(last) = last {
                        cx.save_cursor(
                            &format!("downloads:{package}"),
                            json!({"lastDay": last.format("%Y-%m-%d").to_string()}),
                            None,
                            None,
                        )
                        .await?;
                    }
                }
            }
            let meta = cx.cursor(&format!("meta:{package}")).await?;
            let url = format!(
                "{}/{}",
                s.npm_registry_url.trim_end_matches('/'),
                package.replace('/', "%2f")
            );
            let req = Request::get(url)
                .header("accept", "application/json")
                .validators(
                    meta.as_ref().and_then(|m| m.etag.clone()),
                    meta.as_ref().and_then(|m| m.last_modified.clone()),
                );
            match cx.get(req).await? {
                Fetched::Missing => return Err(missing("npm", &package)),
                Fetched::NotModified => {}
                Fetched::Ok(page) => {
                    let doc: Value = page.json("the npm registry document")?;
                    let version = doc
                        .get("dist-tags")
                        .and_then(|t| t.get("latest"))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    let maintainers = doc
                        .get("maintainers")
                        .and_then(|m| m.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| {
                                    m.get("name").and_then(|n| n.as_str()).map(str::to_owned)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    store_release(
                        cx,
                        "NPM",
                        &package,
                        version,
                        maintainers,
                        page.etag,
                        page.last_modified,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::Connector for Pypi {
    fn kind(&self) -> &'static str {
        "PYPI"
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        validate("PYPI", config, credentials)
    }

    async fn sync(&self, cx: &SyncContext) -> Result<(), Stop> {
        let s = cx.rt.settings();
        for package in packages_of(cx) {
            let resource = format!("downloads:{package}");
            let cursor = if cx.full {
                None
            } else {
                cx.cursor(&resource).await?
            };
            let url = format!(
                "{}/packages/{package}/overall?mirrors=false",
                s.pypistats_api_url.trim_end_matches('/')
            );
            let req = Request::get(url)
                .header("accept", "application/json")
                .validators(
                    cursor.as_ref().and_then(|c| c.etag.clone()),
                    cursor.as_ref().and_then(|c| c.last_modified.clone()),
                );
            match cx.get(req).await? {
                Fetched::Missing => return Err(missing("PyPI", &package)),
                Fetched::NotModified => {}
                Fetched::Ok(page) => {
                    let body: Value = page.json("pypistats downloads")?;
                    let days: BTreeMap<NaiveDate, i64> = body
                        .get("data")
                        .and_then(|d| d.as_array())
                        .map(|a| {
                            a.iter()
                                .filter(|e| {
                                    e.get("category")
                                        .and_then(|c| c.as_str())
                                        .is_none_or(|c| c == "without_mirrors")
                                })
                                .filter_map(|e| {
                                    Some((
                                        day(e.get("date")?.as_str()?)?,
                                        e.get("downloads")?.as_i64()?,
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let last = days.keys().next_back().copied();
                    store_days(cx, "PYPI", &package, days).await?;
                    cx.save_cursor(
                        &resource,
                        json!({"lastDay": last.map(|l| l.format("%Y-%m-%d").to_string())}),
                        page.etag,
                        page.last_modified,
                    )
                    .await?;
                }
            }
            let meta = cx.cursor(&format!("meta:{package}")).await?;
            let url = format!("{}/pypi/{package}/json", s.pypi_url.trim_end_matches('/'));
            let req = Request::get(url)
                .header("accept", "application/json")
                .validators(
                    meta.as_ref().and_then(|m| m.etag.clone()),
                    meta.as_ref().and_then(|m| m.last_modified.clone()),
                );
            match cx.get(req).await? {
                Fetched::Missing => return Err(missing("PyPI", &package)),
                Fetched::NotModified => {}
                Fetched::Ok(page) => {
                    let doc: Value = page.json("the PyPI JSON document")?;
                    let info = doc.get("info").cloned().unwrap_or(Value::Null);
                    let version = info
                        .get("version")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    let maintainers = ["author", "maintainer"]
                        .iter()
                        .filter_map(|k| info.get(*k).and_then(|v| v.as_str()))
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect();
                    store_release(
                        cx,
                        "PYPI",
                        &package,
                        version,
                        maintainers,
                        page.etag,
                        page.last_modified,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_normalised() {
        assert_eq!(
            normalize("PYPI", "Django_REST.framework"),
            "django-rest-framework"
        );
        assert!(valid("NPM", "@scope/pkg"));
        assert!(valid("NPM", "left-pad"));
        assert!(!valid("NPM", "@scope"));
        assert!(!valid("NPM", "a b"));
        assert!(valid("PYPI", "requests"));
    }
}
