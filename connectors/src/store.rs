//! Integrations as data: connect, update, disconnect, list (ADMIN, or an API key with
//! `integrations:manage`), their runs, per-resource cursors, and package downloads. Every query
//! that an actor makes is scoped by the actor's organization; a foreign id answers `NOT_FOUND`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{Actor, Error, FieldError, Principal, Result, Role};
use entity::{
    integration_cursors, integration_runs, integrations, package_downloads, signal_sources,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{KINDS, Runtime, connector, is_built, status};

/// Integrations are managed by ADMINs, or by API keys with `integrations:manage`.
pub fn manage(actor: &Actor) -> Result<()> {
    match actor.principal {
        Principal::User { .. } => actor.require_role(Role::Admin),
        Principal::ApiKey { .. } | Principal::Integration { .. } => {
            actor.require_scope("integrations:manage")
        }
    }
}

/// What `connectIntegration` gets.
#[derive(Debug, Clone)]
pub struct ConnectInput {
    pub kind: String,
    pub config: Value,
    pub credentials: Option<Value>,
}

/// What `updateIntegration` gets: each part given replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    pub config: Option<Value>,
    pub credentials: Option<Value>,
}

/// A new integration and its webhook secret (shown once).
pub struct Connected {
    pub integration: integrations::Model,
    pub webhook_secret: String,
}

fn kind_checked(kind: &str) -> Result<&'static dyn crate::Connector> {
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        return Err(Error::invalid(
            "kind",
            format!(
                "unknown kind; one of {}",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    match connector(kind) {
        Some(c) if is_built(kind) => Ok(c),
        _ => Err(Error::invalid(
            "kind",
            format!("the {kind} connector is not available yet"),
        )),
    }
}

fn credentials_map(field: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(m) = v else {
        return Err(Error::invalid(field, "must be an object of strings"));
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            Value::Null => {}
            _ => return Err(Error::invalid(format!("{field}.{k}"), "must be a string")),
        }
    }
    Ok(out)
}

fn seal_credentials(rt: &Runtime, v: Option<&Value>) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let map = credentials_map("credentials", v)?;
            if map.is_empty() {
                return Ok(None);
            }
            let json = serde_json::to_string(&map)
                .map_err(|e| Error::Internal(format!("credentials: {e}")))?;
            Ok(Some(rt.cipher().seal(&json)?))
        }
    }
}

/// An integration's credentials, for its connector (never for the API).
pub fn credentials(rt: &Runtime, m: &integrations::Model) -> Result<BTreeMap<String, String>> {
    match &m.credentials_ciphertext {
        None => Ok(BTreeMap::new()),
        Some(c) => serde_json::from_str(&rt.cipher().open(c)?)
            .map_err(|e| Error::Internal(format!("stored credentials: {e}"))),
    }
}

/// The webhook secret of an integration (for verifying inbound webhooks).
pub fn webhook_secret(rt: &Runtime, m: &integrations::Model) -> Result<String> {
    rt.cipher().open(&m.webhook_secret_ciphertext)
}

fn validation(errors: Vec<FieldError>) -> Error {
    Error::Validation(errors)
}

fn source_name(kind: &str, config: &Value) -> String {
    let what = config
        .get("repos")
        .or_else(|| config.get("packages"))
        .or_else(|| config.get("tags"))
        .or_else(|| config.get("keywords"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let label = match kind {
        "GITHUB" => "GitHub",
        "NPM" => "npm",
        "PYPI" => "PyPI",
        "POSTHOG" => "PostHog",
        "LINKEDIN" => "LinkedIn",
        "INTERCOM" => "Intercom",
        "ZENDESK" => "Zendesk",
        "STACKOVERFLOW" => "Stack Overflow",
        "REDDIT" => "Reddit",
        "CLEARBIT" => "Clearbit",
        other => other,
    };
    let name = if what.is_empty() {
        label.to_owned()
    } else {
        format!("{label}: {what}")
    };
    name.chars().take(200).collect()
}

/// Connects a source: validates the kind and configuration, seals the credentials, makes a
/// webhook secret and the integration's own signal source. The first run starts with
/// `syncIntegration` or at the kind's next scheduled sync.
pub async fn connect(
    db: &DatabaseConnection,
    rt: &Runtime,
    actor: &Actor,
    input: ConnectInput,
) -> Result<Connected> {
    manage(actor)?;
    let kind = input.kind.trim().to_uppercase();
    let c = kind_checked(&kind)?;
    let config = c
        .validate(&input.config, input.credentials.as_ref())
        .map_err(validation)?;
    let credentials = seal_credentials(rt, input.credentials.as_ref())?;
    let secret = format!("whsec_{}", domain::secrets::random_alphanumeric(40));
    let now = Utc::now();
    let txn = domain::db::begin(db).await?;
    if let Some(standing) = domain::billing::limits(&txn, actor.organization_id, now).await? {
        domain::billing::usage::admit(
            &txn,
            actor.organization_id,
            &standing,
            domain::billing::Metric::Integrations,
            1,
        )
        .await?;
    }
    let source = signal_sources::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        kind: Set(kind.clone()),
        name: Set(source_name(&kind, &config)),
        status: Set("ACTIVE".into()),
        config: Set(json!({})),
        secret_ciphertext: Set(None),
        system_key: Set(None),
        last_sync_at: Set(None),
        error_message: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let integration = integrations::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        kind: Set(kind),
        status: Set(status::CONNECTED.into()),
        config: Set(config),
        credentials_ciphertext: Set(credentials),
        webhook_secret_ciphertext: Set(rt.cipher().seal(&secret)?),
        source_id: Set(source.id),
        last_sync_at: Set(None),
        last_success_at: Set(None),
        last_error: Set(None),
        credentials_rejected: Set(false),
        next_sync_at: Set(c.syncs().then_some(now)),
        failure_streak: Set(0),
        running_run_id: Set(None),
        run_lease_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Connected {
        integration,
        webhook_secret: secret,
    })
}

async fn find_own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<integrations::Model> {
    integrations::Entity::find_by_id(id)
        .filter(integrations::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "Integration",
        })
}

/// Changes the configuration and/or credentials. New credentials or configuration lift an
/// `ERROR` that they caused: the integration is `CONNECTED` and due again.
pub async fn update(
    db: &DatabaseConnection,
    rt: &Runtime,
    actor: &Actor,
    id: Uuid,
    input: UpdateInput,
) -> Result<integrations::Model> {
    manage(actor)?;
    let txn = domain::db::begin(db).await?;
    let m = find_own(&txn, actor, id).await?;
    if m.status == status::DISCONNECTED {
        return Err(Error::Conflict {
            field: "id".into(),
            message: "the integration is disconnected; connect it again".into(),
        });
    }
    let c = kind_checked(&m.kind)?;
    let config = input.config.clone().unwrap_or_else(|| m.config.clone());
    let creds_given = input.credentials.is_some();
    let stored_creds = if creds_given {
        input.credentials.clone()
    } else {
        let map = credentials(rt, &m)?;
        (!map.is_empty()).then(|| json!(map))
    };
    let config = c
        .validate(&config, stored_creds.as_ref())
        .map_err(validation)?;
    let mut am: integrations::ActiveModel = m.clone().into();
    am.config = Set(config);
    if creds_given {
        am.credentials_ciphertext = Set(seal_credentials(rt, input.credentials.as_ref())?);
    }
    if m.credentials_rejected || m.status == status::ERROR {
        am.credentials_rejected = Set(false);
        am.failure_streak = Set(0);
        am.next_sync_at = Set(Some(Utc::now()));
        if m.running_run_id.is_none() {
            am.status = Set(status::CONNECTED.into());
        }
    }
    am.updated_at = Set(Utc::now());
    let m = am.update(&txn).await?;
    txn.commit().await?;
    Ok(m)
}

/// Disconnects: no more runs or webhooks, the credentials are forgotten; signals, runs and
/// downloads already stored stay.
pub async fn disconnect(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<integrations::Model> {
    manage(actor)?;
    let txn = domain::db::begin(db).await?;
    let m = find_own(&txn, actor, id).await?;
    let mut am: integrations::ActiveModel = m.into();
    am.status = Set(status::DISCONNECTED.into());
    am.credentials_ciphertext = Set(None);
    am.next_sync_at = Set(None);
    am.updated_at = Set(Utc::now());
    let m = am.update(&txn).await?;
    txn.commit().await?;
    Ok(m)
}

/// The organization's integrations, oldest first.
pub async fn list(db: &impl ConnectionTrait, actor: &Actor) -> Result<Vec<integrations::Model>> {
    manage(actor)?;
    Ok(integrations::Entity::find()
        .filter(integrations::Column::OrganizationId.eq(actor.organization_id))
        .order_by_asc(integrations::Column::Id)
        .all(db)
        .await?)
}

/// One integration of the organization.
pub async fn get(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<integrations::Model> {
    manage(actor)?;
    find_own(db, actor, id).await
}

/// A page of an integration's runs, newest first.
pub async fn runs(
    db: &impl ConnectionTrait,
    actor: &Actor,
    integration_id: Uuid,
    page: &domain::crm::PageRequest,
) -> Result<domain::crm::Page<integration_runs::Model>> {
    manage(actor)?;
    let cond = Condition::all()
        .add(integration_runs::Column::OrganizationId.eq(actor.organization_id))
        .add(integration_runs::Column::IntegrationId.eq(integration_id));
    domain::crm::fetch_page::<integration_runs::Entity>(
        db,
        cond,
        integration_runs::Column::Id,
        |_| None,
        page,
    )
    .await
}

/// One run of the organization.
pub async fn run(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<integration_runs::Model> {
    manage(actor)?;
    integration_runs::Entity::find_by_id(id)
        .filter(integration_runs::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "IntegrationRun",
        })
}

/// An integration by id, without an actor (jobs and inbound webhooks, which are not tenants'
/// requests; they act on the row's own organization).
pub async fn by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<integrations::Model>> {
    Ok(integrations::Entity::find_by_id(id).one(db).await?)
}

/// Every organization's integrations in `ERROR`, for the operator's `devsignal doctor` (not a
/// tenant's request).
pub async fn in_error(db: &impl ConnectionTrait) -> Result<Vec<integrations::Model>> {
    Ok(integrations::Entity::find()
        .filter(integrations::Column::Status.eq(status::ERROR))
        .order_by_asc(integrations::Column::UpdatedAt)
        .all(db)
        .await?)
}

/// The stored cursor of one resource.
pub async fn cursor(
    db: &impl ConnectionTrait,
    integration_id: Uuid,
    resource: &str,
) -> Result<Option<integration_cursors::Model>> {
    Ok(
        integration_cursors::Entity::find_by_id((integration_id, resource.to_owned()))
            .one(db)
            .await?,
    )
}

/// Stores one resource's cursor (insert or replace).
pub async fn put_cursor(
    db: &impl ConnectionTrait,
    integration: &integrations::Model,
    resource: &str,
    state: Value,
    etag: Option<String>,
    last_modified: Option<String>,
) -> Result<()> {
    integration_cursors::Entity::insert(integration_cursors::ActiveModel {
        integration_id: Set(integration.id),
        organization_id: Set(integration.organization_id),
        resource: Set(resource.to_owned()),
        state: Set(state),
        etag: Set(etag),
        last_modified: Set(last_modified),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            integration_cursors::Column::IntegrationId,
            integration_cursors::Column::Resource,
            integration_cursors::Column::OrganizationId,
        ])
        .update_columns([
            integration_cursors::Column::State,
            integration_cursors::Column::Etag,
            integration_cursors::Column::LastModified,
            integration_cursors::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Registries of package downloads.
pub const REGISTRIES: &[&str] = &["NPM", "PYPI"];

/// One package's daily downloads between `from` and `to` (inclusive, `YYYY-MM-DD`), oldest
/// first (any member; API keys need `signals:read`).
pub async fn package_downloads(
    db: &impl ConnectionTrait,
    actor: &Actor,
    registry: &str,
    package: &str,
    from: Option<String>,
    to: Option<String>,
) -> Result<Vec<package_downloads::Model>> {
    actor.require_scope("signals:read")?;
    if !REGISTRIES.contains(&registry) {
        return Err(Error::invalid("registry", "must be NPM or PYPI"));
    }
    let package = package.trim();
    if package.is_empty() {
        return Err(Error::invalid("package", "is required"));
    }
    let mut q = package_downloads::Entity::find()
        .filter(package_downloads::Column::OrganizationId.eq(actor.organization_id))
        .filter(package_downloads::Column::Registry.eq(registry))
        .filter(package_downloads::Column::Package.eq(package.to_lowercase()));
    if let Some(f) = from {
        q = q.filter(package_downloads::Column::Day.gte(f));
    }
    if let Some(t) = to {
        q = q.filter(package_downloads::Column::Day.lte(t));
    }
    Ok(q.order_by_asc(package_downloads::Column::Day)
        .all(db)
        .await?)
}

/// When an integration runs next if nothing else happens: its `nextSyncAt`.
pub fn next_sync_at(m: &integrations::Model) -> Option<DateTime<Utc>> {
    m.next_sync_at
}

/// Replaces an integration's sealed credentials (a refreshed OAuth token), leaving its status
/// alone.
pub async fn replace_credentials(
    db: &impl ConnectionTrait,
    rt: &Runtime,
    id: Uuid,
    credentials: &BTreeMap<String, String>,
) -> Result<()> {
    let json = serde_json::to_string(credentials)
        .map_err(|e| Error::Internal(format!("credentials: {e}")))?;
    let sealed = rt.cipher().seal(&json)?;
    integrations::Entity::update_many()
        .col_expr(
            integrations::Column::CredentialsCiphertext,
            sea_orm::sea_query::Expr::value(Some(sealed)),
        )
        .filter(integrations::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// An OAuth connection's outcome: the organization's integration of `kind` (the oldest one not
/// disconnected) gets the new credentials — an `ERROR` they caused is lifted — or, when it has
/// none, one is connected. Returns the integration's id.
pub async fn connect_or_reconnect(
    db: &DatabaseConnection,
    rt: &Runtime,
    actor: &Actor,
    kind: &str,
    credentials: Value,
) -> Result<Uuid> {
    manage(actor)?;
    let existing = integrations::Entity::find()
        .filter(integrations::Column::OrganizationId.eq(actor.organization_id))
        .filter(integrations::Column::Kind.eq(kind))
        .filter(integrations::Column::Status.ne(status::DISCONNECTED))
        .order_by_asc(integrations::Column::Id)
        .one(db)
        .await?;
    match existing {
        Some(m) => Ok(update(
            db,
            rt,
            actor,
            m.id,
            UpdateInput {
                config: None,
                credentials: Some(credentials),
            },
        )
        .await?
        .id),
        None => Ok(connect(
            db,
            rt,
            actor,
            ConnectInput {
                kind: kind.to_owned(),
                config: json!({}),
                credentials: Some(credentials),
            },
        )
        .await?
        .integration
        .id),
    }
}
