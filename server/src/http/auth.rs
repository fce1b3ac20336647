//! `/api/v1/auth/*`: register, login, refresh, logout, forgot-password, reset-password and the
//! OAuth start/callback/exchange. The same `domain` functions serve the GraphQL mutations.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiResult;
use super::json::Json;
use super::oauth;
use crate::auth::{self, ClientIp, Tokens};
use crate::state::AppState;
use domain::identity::users::SignedIn;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/forgot-password", post(forgot_password))
        .route("/api/v1/auth/reset-password", post(reset_password))
        .route("/api/v1/auth/oauth/exchange", post(oauth::exchange))
        .route("/api/v1/auth/oauth/{provider}", get(oauth::start))
        .route(
            "/api/v1/auth/oauth/{provider}/callback",
            get(oauth::callback),
        )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationBody {
    pub id: uuid::Uuid,
    pub name: String,
}

/// The answer of every flow that signs in.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthBody {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserBody,
    pub organization: OrganizationBody,
    pub role: domain::Role,
}

impl AuthBody {
    pub fn new(signed: SignedIn, tokens: Tokens) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            user: UserBody {
                id: signed.user.id,
                email: signed.user.email,
                name: signed.user.name,
            },
            organization: OrganizationBody {
                id: signed.organization.id,
                name: signed.organization.name,
            },
            role: signed.role,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RegisterRequest {
    email: String,
    password: String,
    name: String,
    organization_name: String,
    /// Joins the inviting organization instead of creating one.
    invitation_token: String,
}

async fn register(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<Response> {
    let meta = auth::meta(&ip, &headers);
    let signed = if body.invitation_token.trim().is_empty() {
        domain::identity::users::register(
            &state.db,
            &meta,
            domain::identity::users::RegisterInput {
                email: body.email,
                password: body.password,
                name: body.name,
                organization_name: body.organization_name,
            },
        )
        .await?
    } else {
        domain::identity::organizations::register_invited(
            &state.db,
            &meta,
            domain::identity::organizations::RegisterInvitedInput {
                email: body.email,
                password: body.password,
                name: body.name,
                invitation_token: body.invitation_token,
            },
        )
        .await?
    };
    let tokens = state.identity.start_session(&meta, &signed).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AuthBody::new(signed, tokens)),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LoginRequest {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Response> {
    let meta = auth::meta(&ip, &headers);
    let signed =
        domain::identity::users::login(&state.db, &meta, &body.email, &body.password).await?;
    let tokens = state.identity.start_session(&meta, &signed).await?;
    Ok(axum::Json(AuthBody::new(signed, tokens)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Response> {
    if body.refresh_token.trim().is_empty() {
        return Err(domain::Error::invalid("refreshToken", "is required").into());
    }
    let (signed, tokens) = state.identity.refresh(&body.refresh_token).await?;
    Ok(axum::Json(AuthBody::new(signed, tokens)).into_response())
}

/// Ends the session of the access token in `Authorization`, or of the `refreshToken` in the body.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    if let Some(actor) = state.identity.authenticate(&headers).await? {
        if let domain::Principal::User { session_id, .. } = actor.principal {
            domain::identity::sessions::revoke(&state.db, session_id, "logout").await?;
            return Ok(StatusCode::NO_CONTENT);
        }
        return Err(domain::Error::Forbidden("API keys have no session to end".into()).into());
    }
    let refresh: RefreshRequest = serde_json::from_slice(&body).unwrap_or_default();
    if refresh.refresh_token.is_empty() {
        return Err(domain::Error::Unauthenticated(
            "send the access token as `Authorization: Bearer …` or the refreshToken".into(),
        )
        .into());
    }
    state
        .identity
        .logout_refresh(&refresh.refresh_token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ForgotRequest {
    email: String,
}

pub const FORGOT_MESSAGE: &str =
    "if an account exists for this email, a password reset link has been sent";

async fn forgot_password(
    State(state): State<AppState>,
    Json(body): Json<ForgotRequest>,
) -> ApiResult<Response> {
    // A malformed address is the caller's mistake, said as such; whether an account exists for
    // a well-formed one is never said.
    let email = domain::secrets::normalize_email("email", &body.email)?;
    state.identity.send_password_reset(&email).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "message": FORGOT_MESSAGE })),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ResetRequest {
    token: String,
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Json(body): Json<ResetRequest>,
) -> ApiResult<Response> {
    let meta = auth::meta(&ip, &headers);
    domain::identity::users::reset_password(&state.db, &meta, &body.token, &body.password).await?;
    Ok(axum::Json(json!({ "message": "password updated; sign in again" })).into_response())
}
