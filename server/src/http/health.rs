//! `GET /health` in the shape operators and load balancers rely on and `GET /health/ready` for orchestrators.
//! Both really ask the database (bounded by a short timeout); `/health` also pings Redis when it
//! is configured.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::state::AppState;

/// How long a dependency may take to answer a health probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    pub timestamp: String,
    pub uptime: u64,
    pub database: &'static str,
    /// The read replica (`DATABASE_READ_URL`): `ok` or `error`; absent when none is configured.
    #[serde(rename = "databaseRead", skip_serializing_if = "Option::is_none")]
    pub database_read: Option<&'static str>,
    pub redis: &'static str,
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (code, body) = report(&state).await;
    (code, Json(body))
}

/// A worker's health: the same report (its own database pool and Redis), saying it is a worker.
#[derive(Serialize)]
pub struct WorkerHealth {
    #[serde(flatten)]
    pub health: Health,
    pub service: &'static str,
}

pub async fn worker_health(State(state): State<AppState>) -> (StatusCode, Json<WorkerHealth>) {
    let (code, health) = report(&state).await;
    let body = WorkerHealth {
        health,
        service: "worker",
    };
    (code, Json(body))
}

async fn report(state: &AppState) -> (StatusCode, Health) {
    let (db_ok, read_ok, redis) = tokio::join!(
        domain::db::ping(&state.db, PROBE_TIMEOUT),
        async {
            match &state.read_db {
                None => None,
                Some(read) => Some(domain::db::ping(read, PROBE_TIMEOUT).await),
            }
        },
        async {
            match &state.redis {
                None => "disabled",
                Some(pool) if crate::redis::ping(pool, PROBE_TIMEOUT).await => "ok",
                Some(_) => "error",
            }
        }
    );
    let database = if db_ok.is_ok() { "ok" } else { "error" };
    let database_read = read_ok
        .as_ref()
        .map(|r| if r.is_ok() { "ok" } else { "error" });
    // Without the replica the list pages fail but everything else works: degraded, not down.
    let (code, status) = match (database, database_read, redis) {
        ("error", _, _) => (StatusCode::SERVICE_UNAVAILABLE, "error"),
        (_, Some("error"), _) | (_, _, "error") => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ok"),
    };
    if let Err(e) = &db_ok {
        tracing::error!(error = %e, "health check: database unreachable");
    }
    if let Some(Err(e)) = &read_ok {
        tracing::error!(error = %e, "health check: read replica unreachable");
    }
    let body = Health {
        status,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        uptime: state.started_at.elapsed().as_secs(),
        database,
        database_read,
        redis,
    };
    (code, body)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub status: &'static str,
    pub database: &'static str,
    pub pending_migrations: Option<usize>,
}

/// 200 only when the database answers and every migration this binary knows is applied.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let pending = tokio::time::timeout(PROBE_TIMEOUT, domain::db::pending_migrations(&state.db))
        .await
        .ok()
        .and_then(Result::ok);
    let body = match pending {
        Some(0) => Readiness {
            status: "ready",
            database: "ok",
            pending_migrations: Some(0),
        },
        Some(n) => Readiness {
            status: "not_ready",
            database: "ok",
            pending_migrations: Some(n),
        },
        None => Readiness {
            status: "not_ready",
            database: "error",
            pending_migrations: None,
        },
    };
    let code = if body.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
