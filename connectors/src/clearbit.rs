//! Clearbit: company and person enrichment (not a signal source).
//!
//! Credentials `{"apiKey"}`; config `{}`. Requests send `Authorization: Bearer <apiKey>` to
//! `GET {CLEARBIT_COMPANY_URL}/v2/companies/find?domain=` (`https://company.clearbit.com`) and
//! `GET {CLEARBIT_PERSON_URL}/v2/people/find?email=` (`https://person.clearbit.com`). The key is
//! the organization's CLEARBIT integration's, else `CLEARBIT_API_KEY` (for every organization).
//!
//! Answers: 200 → the record; 202 → Clearbit is researching it ("try later": not remembered);
//! 404 (`unknown_record`) and 422 (an invalid domain or email) → no data, remembered for 30
//! days like a record; 429 → rate limited until `Retry-After` (the nightly pass stops and
//! continues then; an on-demand call answers `RATE_LIMITED`); 401/403 → the key is refused: the
//! integration goes `ERROR` with the message; 5xx, timeouts → retried with backoff.
//!
//! What is read (the fields of Clearbit's Company and Person objects): company `name`,
//! `category.industry` / `sector` / `subIndustry`, `metrics.employees` / `employeesRange`,
//! `description`, `logo`, `geo.city` / `geo.country`, `foundedYear`, `tech[]`,
//! `twitter.handle`, `linkedin.handle`, `facebook.handle`; person `name.givenName` /
//! `familyName`, `employment.title` / `seniority` / `role`, `geo.city` / `geo.country`,
//! `twitter.handle`, `linkedin.handle`, `avatar`. What they fill is `domain::enrichment`'s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::enrichment::{self, CompanyFacts, PersonFacts, kind, object, outcome};
use domain::{Actor, Error, FieldError, Meta, Principal, Role};
use entity::{companies, contacts, integrations};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use secrecy::ExposeSecret;
use serde_json::Value;
use uuid::Uuid;

use crate::run::{Stop, SyncContext};
use crate::{Runtime, status, store};

pub struct Clearbit;

/// The source's name in enrichment records.
pub const SOURCE: &str = "clearbit";
/// The kind in `KINDS`.
pub const KIND: &str = "CLEARBIT";
/// Why Clearbit is never synced.
pub const NO_SYNC: &str = "Clearbit is an enrichment source: it is read by enrichAccount/enrichContact and the nightly clearbit-enrichment-scheduler, not synced";

#[async_trait::async_trait]
impl crate::Connector for Clearbit {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        match config {
            Value::Null => {}
            Value::Object(m) => {
                for k in m.keys() {
                    errors.push(FieldError::new(
                        format!("config.{k}"),
                        "Clearbit takes no configuration",
                    ));
                }
            }
            _ => errors.push(FieldError::new("config", "must be an object")),
        }
        let key = credentials
            .and_then(|c| c.get("apiKey"))
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        if key.is_empty() {
            errors.push(FieldError::new(
                "credentials.apiKey",
                "is required (your Clearbit secret API key, sk_…)",
            ));
        } else if key.len() > 200 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(
                "credentials.apiKey",
                "must be a Clearbit API key (no spaces, at most 200 characters)",
            ));
        }
        if errors.is_empty() {
            Ok(serde_json::json!({}))
        } else {
            Err(errors)
        }
    }

    fn syncs(&self) -> bool {
        false
    }

    async fn sync(&self, _cx: &SyncContext) -> Result<(), Stop> {
        Err(Stop::Invalid(NO_SYNC.into()))
    }
}

/// One answer of Clearbit's find endpoints.
#[derive(Debug, Clone)]
pub enum Answer {
    Found(Value),
    /// 404 or 422: Clearbit has nothing (remembered).
    NoData,
    /// 202: Clearbit is looking it up; ask again later (not remembered).
    Pending,
}

/// The API key to use for an organization and the integration it belongs to (none for
/// `CLEARBIT_API_KEY`).
#[derive(Clone)]
pub struct Key {
    pub key: String,
    pub integration: Option<integrations::Model>,
}

/// The organization's key: its CLEARBIT integration's (connected, credentials not refused),
/// else the environment's. `Err` says why there is none.
pub async fn key_for(
    rt: &Runtime,
    db: &DatabaseConnection,
    organization_id: Uuid,
) -> domain::Result<Result<Key, String>> {
    let integration = integrations::Entity::find()
        .filter(integrations::Column::OrganizationId.eq(organization_id))
        .filter(integrations::Column::Kind.eq(KIND))
        .filter(integrations::Column::Status.ne(status::DISCONNECTED))
        .order_by_desc(integrations::Column::Id)
        .one(db)
        .await?;
    let env = rt
        .settings()
        .clearbit_api_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned());
    if let Some(m) = integration {
        if !m.credentials_rejected
            && let Some(key) = store::credentials(rt, &m)?.get("apiKey").cloned()
        {
            return Ok(Ok(Key {
                key,
                integration: Some(m),
            }));
        }
        if let Some(key) = env {
            return Ok(Ok(Key {
                key,
                integration: None,
            }));
        }
        return Ok(Err(format!(
            "the CLEARBIT integration's key was refused ({}); update its credentials",
            m.last_error.as_deref().unwrap_or("no key")
        )));
    }
    Ok(match env {
        Some(key) => Ok(Key {
            key,
            integration: None,
        }),
        None => Err(
            "no Clearbit key: connect a CLEARBIT integration (credentials apiKey) or set CLEARBIT_API_KEY"
                .into(),
        ),
    })
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> DateTime<Utc> {
    let v = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
    let at = v.and_then(|v| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Utc::now() + chrono::Duration::milliseconds((s * 1000.0).ceil() as i64))
            .or_else(|| {
                DateTime::parse_from_rfc2822(v.trim())
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            })
    });
    at.unwrap_or_else(|| Utc::now() + chrono::Duration::minutes(1))
}

/// Clearbit's error body: `{"error": {"type", "message"}}`.
fn error_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = v.get("error");
    let kind = e.and_then(|e| e.get("type")).and_then(Value::as_str);
    let message = e
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .or_else(|| e.and_then(Value::as_str));
    match (kind, message) {
        (Some(k), Some(m)) => format!("{k}: {m}"),
        (None, Some(m)) | (Some(m), None) => m.to_owned(),
        (None, None) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
    .chars()
    .take(300)
    .collect()
}

/// One find request with its retries (5xx, timeouts, connection errors). Returns the answer
/// and the number of requests sent.
pub async fn find(rt: &Runtime, url: &str, key: &str) -> (Result<Answer, Stop>, u32) {
    let s = rt.settings();
    let mut requests = 0;
    let mut problem = String::new();
    for attempt in 1..=s.max_attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(domain::queue::backoff(s.retry_base, (attempt - 1) as i32)).await;
        }
        requests += 1;
        let resp = match rt
            .client()
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {key}"))
            .timeout(s.timeout.min(Duration::from_secs(10)))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                problem = if e.is_timeout() {
                    "Clearbit timed out".to_owned()
                } else {
                    format!("Clearbit could not be reached ({e})")
                };
                continue;
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                problem = format!("reading Clearbit's answer failed ({e})");
                continue;
            }
        };
        let result = match status {
            StatusCode::OK => match serde_json::from_slice::<Value>(&body) {
                Ok(v) if v.is_object() => Ok(Answer::Found(v)),
                _ => Err(Stop::Invalid(
                    "Clearbit answered 200 with a body that is not a JSON object".into(),
                )),
            },
            StatusCode::ACCEPTED => Ok(Answer::Pending),
            StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => Ok(Answer::NoData),
            StatusCode::TOO_MANY_REQUESTS => Err(Stop::RateLimited {
                until: retry_after(&headers),
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Stop::Credentials(format!(
                "Clearbit refused the API key ({} {}); update the CLEARBIT integration's credentials",
                status.as_u16(),
                error_of(&body)
            ))),
            s if s.is_server_error() => {
                problem = format!("Clearbit answered {} {}", s.as_u16(), error_of(&body));
                continue;
            }
            s => Err(Stop::Invalid(format!(
                "Clearbit answered {} {}",
                s.as_u16(),
                error_of(&body)
            ))),
        };
        return (result, requests);
    }
    (
        Err(Stop::Transient(format!(
            "{problem} (after {requests} attempts)"
        ))),
        requests,
    )
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn int(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_i64().or_else(|| cur.as_f64().map(|f| f as i64))
}

/// The facts of a Clearbit Company object.
pub fn company_facts(v: &Value) -> CompanyFacts {
    CompanyFacts {
        name: text(v, &["name"]),
        industry: text(v, &["category", "industry"]),
        sector: text(v, &["category", "sector"]),
        sub_industry: text(v, &["category", "subIndustry"]),
        employees: int(v, &["metrics", "employees"]),
        employees_range: text(v, &["metrics", "employeesRange"]),
        description: text(v, &["description"]),
        logo: text(v, &["logo"]),
        city: text(v, &["geo", "city"]),
        country: text(v, &["geo", "country"]),
        founded_year: int(v, &["foundedYear"]),
        tech: v
            .get("tech")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        twitter_handle: text(v, &["twitter", "handle"]),
        linkedin_handle: text(v, &["linkedin", "handle"]),
        facebook_handle: text(v, &["facebook", "handle"]),
    }
}

/// The facts of a Clearbit Person object.
pub fn person_facts(v: &Value) -> PersonFacts {
    PersonFacts {
        given_name: text(v, &["name", "givenName"]),
        family_name: text(v, &["name", "familyName"]),
        title: text(v, &["employment", "title"]),
        seniority: text(v, &["employment", "seniority"]),
        role: text(v, &["employment", "role"]),
        city: text(v, &["geo", "city"]),
        country: text(v, &["geo", "country"]),
        twitter_handle: text(v, &["twitter", "handle"]),
        linkedin_handle: text(v, &["linkedin", "handle"]),
        avatar: text(v, &["avatar"]),
    }
}

/// Marks the integration `ERROR` with `message` (its key was refused): no enrichment uses it
/// until its credentials change.
pub async fn refuse(
    db: &DatabaseConnection,
    m: &integrations::Model,
    message: &str,
) -> domain::Result<()> {
    integrations::Entity::update_many()
        .col_expr(integrations::Column::Status, Expr::value(status::ERROR))
        .col_expr(integrations::Column::LastError, Expr::value(message))
        .col_expr(integrations::Column::CredentialsRejected, Expr::value(true))
        .col_expr(integrations::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(integrations::Column::Id.eq(m.id))
        .filter(integrations::Column::Status.ne(status::DISCONNECTED))
        .exec(db)
        .await?;
    Ok(())
}

/// What one enrichment of one object came to.
#[derive(Debug, Clone)]
pub struct Outcome<M> {
    pub object: M,
    /// One of `domain::enrichment::outcome`.
    pub outcome: &'static str,
    pub fields: Vec<String>,
    /// Whether Clearbit was asked (false: the cache answered, or there was nothing to ask).
    pub fetched: bool,
    /// Requests sent to Clearbit (retries included).
    pub requests: u32,
}

/// Why an enrichment stopped.
#[derive(Debug)]
pub enum Failure {
    /// Our side (rights, not found, database).
    Domain(Error),
    /// Clearbit's side.
    Source(Stop),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Domain(e)
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Domain(e) => e,
            Failure::Source(Stop::RateLimited { until }) => Error::RateLimited {
                retry_after_secs: (until - Utc::now()).num_seconds().max(1) as u64,
            },
            Failure::Source(Stop::Internal(e)) => Error::Internal(e),
            Failure::Source(Stop::PlanLimit(m)) => Error::PlanLimit(m),
            Failure::Source(
                Stop::Credentials(m) | Stop::Forbidden(m) | Stop::Invalid(m) | Stop::Transient(m),
            ) => Error::Upstream(m),
        }
    }
}

/// Asks Clearbit (or the cache) about one lookup. A refused key marks the integration `ERROR`.
async fn ask(
    rt: &Runtime,
    db: &DatabaseConnection,
    org: Uuid,
    key: &Key,
    cache_kind: &str,
    lookup: &str,
    url: String,
) -> Result<(Answer, u32), Failure> {
    if let Some(cached) = enrichment::cached(db, org, cache_kind, lookup).await? {
        return Ok((cached.map_or(Answer::NoData, Answer::Found), 0));
    }
    let (answer, requests) = find(rt, &url, &key.key).await;
    match answer {
        Ok(answer) => {
            match &answer {
                Answer::Found(v) => {
                    // Only the facts read are kept, not the whole record.
                    let facts = if cache_kind == kind::COMPANY {
                        serde_json::to_value(company_facts(v))
                    } else {
                        serde_json::to_value(person_facts(v))
                    }
                    .map_err(|e| Error::Internal(format!("enrichment facts: {e}")))?;
                    enrichment::remember(db, org, cache_kind, lookup, SOURCE, Some(facts.clone()))
                        .await?;
                    return Ok((Answer::Found(facts), requests));
                }
                Answer::NoData => {
                    enrichment::remember(db, org, cache_kind, lookup, SOURCE, None).await?;
                }
                Answer::Pending => {}
            }
            Ok((answer, requests))
        }
        Err(stop) => {
            if let (Stop::Credentials(m), Some(i)) = (&stop, &key.integration) {
                refuse(db, i, m).await?;
            }
            Err(Failure::Source(stop))
        }
    }
}

fn url_with(base: &str, path: &str, param: &str, value: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(param, value)
        .finish();
    format!("{}{path}?{q}", base.trim_end_matches('/'))
}

/// One Clearbit API: where it is, what it is asked by, and its cache's kind.
struct Api<'a> {
    base: &'a str,
    path: &'static str,
    param: &'static str,
    cache_kind: &'static str,
}

/// What enriching an account and a contact share: a record with nothing to look up is
/// `NO_DATA`; the key is the given one, else the organization's; the answer (cached, or asked)
/// found is applied by `apply` (only empty fields), and no data or a 202 is recorded as such.
#[allow(clippy::too_many_arguments)]
async fn lookup<M>(
    rt: &Runtime,
    db: &DatabaseConnection,
    org: Uuid,
    object_kind: &'static str,
    id: Uuid,
    current: M,
    by: Option<String>,
    key: Option<&Key>,
    api: Api<'_>,
    apply: impl AsyncFnOnce(serde_json::Value) -> Result<(M, Vec<String>), Failure>,
) -> Result<Outcome<M>, Failure> {
    let done = |object: M, outcome: &'static str, fields: Vec<String>, requests: u32| Outcome {
        object,
        outcome,
        fields,
        fetched: requests > 0,
        requests,
    };
    let Some(by) = by else {
        enrichment::record(db, org, object_kind, id, SOURCE, outcome::NO_DATA, &[]).await?;
        return Ok(done(current, outcome::NO_DATA, Vec::new(), 0));
    };
    let key = match key {
        Some(k) => k.clone(),
        None => match key_for(rt, db, org).await? {
            Ok(k) => k,
            Err(why) => return Err(Failure::Domain(Error::invalid("id", why))),
        },
    };
    let url = url_with(api.base, api.path, api.param, &by);
    let (answer, requests) = ask(rt, db, org, &key, api.cache_kind, &by, url).await?;
    match answer {
        Answer::Found(v) => {
            let (object, fields) = apply(v).await?;
            let outcome = if fields.is_empty() {
                outcome::UNCHANGED
            } else {
                outcome::ENRICHED
            };
            Ok(done(object, outcome, fields, requests))
        }
        Answer::NoData | Answer::Pending => {
            let o = if matches!(answer, Answer::Pending) {
                outcome::PENDING
            } else {
                outcome::NO_DATA
            };
            enrichment::record(db, org, object_kind, id, SOURCE, o, &[]).await?;
            Ok(done(current, o, Vec::new(), requests))
        }
    }
}

/// Enriches one account by its domain (`enrichAccount`, and the nightly pass with the
/// integration's actor). An account without a domain, or one Clearbit does not know, comes
/// back `NO_DATA`; a 202 `PENDING`.
pub async fn enrich_account(
    rt: &Runtime,
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    key: Option<&Key>,
) -> Result<Outcome<companies::Model>, Failure> {
    let m = enrichment::account_for_enrichment(db, actor, id).await?;
    let by = m.domain_normalized.clone();
    let api = Api {
        base: &rt.settings().clearbit_company_url,
        path: "/v2/companies/find",
        param: "domain",
        cache_kind: kind::COMPANY,
    };
    lookup(
        rt,
        db,
        actor.organization_id,
        object::ACCOUNT,
        id,
        m,
        by,
        key,
        api,
        async |v| {
            let facts: CompanyFacts = serde_json::from_value(v).unwrap_or_default();
            Ok(enrichment::apply_company(db, actor, meta, id, SOURCE, &facts).await?)
        },
    )
    .await
}

/// Enriches one contact by its email (`enrichContact`, and the nightly pass).
pub async fn enrich_contact(
    rt: &Runtime,
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
    key: Option<&Key>,
) -> Result<Outcome<contacts::Model>, Failure> {
    let m = enrichment::contact_for_enrichment(db, actor, id).await?;
    let by = m.email_normalized.clone();
    let api = Api {
        base: &rt.settings().clearbit_person_url,
        path: "/v2/people/find",
        param: "email",
        cache_kind: kind::PERSON,
    };
    lookup(
        rt,
        db,
        actor.organization_id,
        object::CONTACT,
        id,
        m,
        by,
        key,
        api,
        async |v| {
            let facts: PersonFacts = serde_json::from_value(v).unwrap_or_default();
            Ok(enrichment::apply_person(db, actor, meta, id, SOURCE, &facts).await?)
        },
    )
    .await
}

/// What a nightly pass over one organization did.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub enriched: u32,
    pub unchanged: u32,
    pub no_data: u32,
    pub pending: u32,
    pub failed: u32,
    /// Requests sent to Clearbit (at least one per failure).
    pub requests: u32,
    /// Set when Clearbit's rate limit stopped the pass: it continues then.
    pub rate_limited_until: Option<DateTime<Utc>>,
    /// Set when Clearbit refused the key: the pass stopped.
    pub refused: Option<String>,
}

impl Pass {
    /// `3 enriched, 1 unchanged, 2 no data, 0 pending, 0 failed`.
    pub fn summary(&self) -> String {
        format!(
            "{} enriched, {} unchanged, {} no data, {} pending, {} failed",
            self.enriched, self.unchanged, self.no_data, self.pending, self.failed
        )
    }

    fn count(&mut self, o: &str, requests: u32) {
        self.requests += requests;
        match o {
            outcome::ENRICHED => self.enriched += 1,
            outcome::UNCHANGED => self.unchanged += 1,
            outcome::PENDING => self.pending += 1,
            _ => self.no_data += 1,
        }
    }
}

/// Objects one pass reads per kind (the rest wait for the next pass).
pub const PASS_LIMIT: u64 = 500;

/// The actor of the nightly pass: the organization, acting as its CLEARBIT integration (or as
/// no integration, with the environment's key).
pub fn pass_actor(organization_id: Uuid, key: &Key) -> Actor {
    Actor {
        organization_id,
        role: Role::Admin,
        principal: Principal::Integration {
            integration_id: key.integration.as_ref().map_or(Uuid::nil(), |m| m.id),
        },
    }
}

/// Enriches the organization's accounts that miss data and then its contacts, not tried
/// recently, until done, rate limited or refused. Per-object failures (Clearbit's 5xx after
/// retries, an unexpected answer) are counted and logged and the pass goes on.
pub async fn pass(
    rt: &Runtime,
    db: &DatabaseConnection,
    organization_id: Uuid,
    key: &Key,
) -> domain::Result<Pass> {
    let actor = pass_actor(organization_id, key);
    let meta = Meta::default();
    let mut out = Pass::default();
    let stop = |out: &mut Pass, s: Stop| -> bool {
        out.requests += 1;
        match s {
            Stop::RateLimited { until } => {
                out.rate_limited_until = Some(until);
                true
            }
            Stop::Credentials(m) | Stop::Forbidden(m) => {
                out.refused = Some(m);
                true
            }
            other => {
                tracing::warn!(organizationId = %organization_id, problem = ?other, "Clearbit enrichment failed");
                out.failed += 1;
                false
            }
        }
    };
    for m in enrichment::due_accounts(db, organization_id, PASS_LIMIT).await? {
        match enrich_account(rt, db, &actor, &meta, m.id, Some(key)).await {
            Ok(o) => {
                tracing::info!(organizationId = %organization_id, accountId = %m.id, outcome = o.outcome, fields = o.fields.len(), "Account enrichment");
                out.count(o.outcome, o.requests);
            }
            Err(Failure::Domain(Error::NotFound { .. })) => {}
            Err(Failure::Domain(e)) => return Err(e),
            Err(Failure::Source(s)) => {
                if stop(&mut out, s) {
                    return Ok(out);
                }
            }
        }
    }
    for m in enrichment::due_contacts(db, organization_id, PASS_LIMIT).await? {
        match enrich_contact(rt, db, &actor, &meta, m.id, Some(key)).await {
            Ok(o) => {
                tracing::info!(organizationId = %organization_id, contactId = %m.id, outcome = o.outcome, fields = o.fields.len(), "Contact enrichment");
                out.count(o.outcome, o.requests);
            }
            Err(Failure::Domain(Error::NotFound { .. })) => {}
            Err(Failure::Domain(e)) => return Err(e),
            Err(Failure::Source(s)) => {
                if stop(&mut out, s) {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Records a pass made with an integration's key as one of its runs (what it cost and came
/// to, shown with the integration's runs): `SUCCEEDED`; `PARTIAL` when Clearbit's rate limit
/// stopped it (it continues later); `FAILED` when the key was refused (the integration is
/// `ERROR`). The integration's last sync (and last success) are updated.
pub async fn record_pass(
    db: &DatabaseConnection,
    key: &Key,
    started_at: DateTime<Utc>,
    pass: &Pass,
) -> domain::Result<()> {
    use sea_orm::{ActiveModelTrait, Set};
    let Some(m) = &key.integration else {
        return Ok(());
    };
    let now = Utc::now();
    let (status, error) = match (&pass.refused, pass.rate_limited_until) {
        (Some(why), _) => (
            crate::run_status::FAILED,
            Some(format!("{why} ({})", pass.summary())),
        ),
        (None, Some(until)) => (
            crate::run_status::PARTIAL,
            Some(format!(
                "Clearbit's rate limit stopped the pass after {}; it continues at {}",
                pass.summary(),
                until.to_rfc3339()
            )),
        ),
        (None, None) if pass.failed > 0 => (
            crate::run_status::PARTIAL,
            Some(format!("some lookups failed: {}", pass.summary())),
        ),
        (None, None) => (crate::run_status::SUCCEEDED, None),
    };
    entity::integration_runs::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(m.organization_id),
        integration_id: Set(m.id),
        status: Set(status.into()),
        full: Set(false),
        started_at: Set(started_at),
        finished_at: Set(Some(now)),
        signals_created: Set(0),
        requests: Set(i32::try_from(pass.requests).unwrap_or(i32::MAX)),
        error: Set(error),
        pushed: Set(0),
        pulled: Set(0),
        errors: Set(None),
    }
    .insert(db)
    .await?;
    let mut update = integrations::Entity::update_many()
        .col_expr(integrations::Column::LastSyncAt, Expr::value(now))
        .col_expr(integrations::Column::UpdatedAt, Expr::value(now));
    if pass.refused.is_none() {
        update = update.col_expr(integrations::Column::LastSuccessAt, Expr::value(now));
    }
    update
        .filter(integrations::Column::Id.eq(m.id))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_clearbit_objects() {
        let c = company_facts(&json!({
            "name": "Acme", "domain": "acme.io", "description": "Rockets",
            "category": {"industry": "Aerospace", "sector": "Industrials", "subIndustry": "Rockets"},
            "metrics": {"employees": 120, "employeesRange": "51-250"},
            "geo": {"city": "Austin", "country": "United States"},
            "foundedYear": 2012, "logo": "https://logo.clearbit.com/acme.io",
            "tech": ["aws_route_53", "google_apps"],
            "twitter": {"handle": "acme"}, "linkedin": {"handle": "company/acme"},
            "facebook": {"handle": null}
        }));
        assert_eq!(c.industry.as_deref(), Some("Aerospace"));
        assert_eq!(c.size(), Some("MEDIUM"));
        assert_eq!(c.tech.len(), 2);
        assert_eq!(c.facebook_handle, None);
        let p = person_facts(&json!({
            "name": {"fullName": "Ada Lovelace", "givenName": "Ada", "familyName": "Lovelace"},
            "employment": {"title": "CTO", "seniority": "executive", "role": "engineering"},
            "geo": {"city": "London", "country": "United Kingdom"},
            "twitter": {"handle": "ada"}, "linkedin": {"handle": "in/ada"}, "avatar": "https://a/x.png"
        }));
        assert_eq!(p.given_name.as_deref(), Some("Ada"));
        assert_eq!(p.seniority.as_deref(), Some("executive"));
    }

    #[test]
    fn error_bodies_are_read() {
        assert_eq!(
            error_of(br#"{"error":{"type":"unknown_record","message":"Unknown domain"}}"#),
            "unknown_record: Unknown domain"
        );
    }
}
