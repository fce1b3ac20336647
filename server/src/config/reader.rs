//! Reading variables: each problem is recorded with the variable's name instead of failing at the
//! first, so a misconfigured process names everything that is wrong at once.

use secrecy::SecretString;
use std::collections::HashMap;
use std::time::Duration;

use super::*;

pub(super) struct Reader<'a> {
    pub(super) vars: &'a HashMap<String, String>,
    pub(super) problems: Vec<ConfigProblem>,
    /// Every variable asked for, set or not ([`Config::variables`]).
    pub(super) asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Reader<'_> {
    /// A variable's value; empty strings count as unset.
    pub(super) fn get(&self, var: &str) -> Option<String> {
        self.asked.borrow_mut().insert(var.to_owned());
        self.vars
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn secret(&self, var: &str) -> Option<SecretString> {
        self.get(var).map(SecretString::from)
    }

    pub(super) fn problem(&mut self, var: &'static str, problem: impl Into<String>) {
        self.problems.push(ConfigProblem {
            var,
            problem: problem.into(),
        });
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &mut self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> T {
        match self.get(var) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(_) => {
                    self.problem(var, format!("must be {what} (got {raw:?})"));
                    default
                }
            },
        }
    }

    /// An optional whole number of months, at least `min`.
    pub(super) fn months(&mut self, var: &'static str, min: u32) -> Option<u32> {
        let raw = self.get(var)?;
        match raw.parse::<u32>() {
            Ok(n) if (min..=1200).contains(&n) => Some(n),
            _ => {
                self.problem(
                    var,
                    format!("must be a number of months from {min} to 1200 (got {raw:?})"),
                );
                None
            }
        }
    }

    /// A number of proxy hops, or a flag (`true` = 1).
    pub(super) fn proxy_hops(&mut self, var: &'static str) -> usize {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => 0,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => 1,
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => 0,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= 10 => n,
                _ => {
                    self.problem(
                        var,
                        format!("must be true, false or a number of proxies up to 10 (got {v:?})"),
                    );
                    0
                }
            },
        }
    }

    pub(super) fn flag(&mut self, var: &'static str) -> bool {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => {
                self.problem(var, format!("must be true or false (got {v:?})"));
                false
            }
        }
    }

    pub(super) fn duration(&mut self, var: &'static str, default: Duration) -> Duration {
        match self.get(var) {
            None => default,
            Some(raw) => match parse_duration(&raw) {
                Some(d) if !d.is_zero() => d,
                _ => {
                    self.problem(
                        var,
                        format!("must be a duration like 15m, 7d or 3600 (got {raw:?})"),
                    );
                    default
                }
            },
        }
    }
}

/// Parses `15m`, `7d`, `12h`, `30s`, `1h 30m`, or a bare number of seconds (as `jsonwebtoken`
/// in the original did).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).ok()
}

/// Checks a database URL's shape; returns what is wrong with it.
pub(super) fn database_url_problem(url: &str) -> Option<String> {
    match domain::db::Backend::from_url(url) {
        None => Some("must start with postgres://, postgresql:// or sqlite:".into()),
        Some(domain::db::Backend::Sqlite) => None,
        Some(domain::db::Backend::Postgres) => match url::Url::parse(url) {
            Err(e) => Some(format!("is not a valid URL ({e})")),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("names no host".into()),
            Ok(u) if u.path().trim_start_matches('/').is_empty() => {
                Some("names no database".into())
            }
            Ok(_) => None,
        },
    }
}
