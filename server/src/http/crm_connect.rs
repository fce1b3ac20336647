//! Connecting a CRM with OAuth 2.0 (authorization code with PKCE and a single-use state).
//!
//! `GET /api/v1/integrations/{hubspot|salesforce}/connect` (an admin's token, or an API key with
//! `integrations:manage`) stores the state (hashed, 10 minutes, with the organization and the
//! PKCE verifier) and sends the browser to the CRM's consent page: a 302, or `{"url"}` when the
//! request accepts JSON (a dashboard holding its token in memory fetches the URL, then
//! navigates). The callback consumes the state, exchanges the code, seals the tokens on the
//! organization's integration of that kind (connected now, or updated: reconnecting lifts an
//! `ERROR`) and redirects to `FRONTEND_URL/settings/integrations?connected=<KIND>&integration=<id>` (the dashboard page); a
//! refusal at the CRM redirects with `error=<reason>` instead.
//!
//! Env: `HUBSPOT_CLIENT_ID`/`_SECRET`, `HUBSPOT_AUTH_URL` (consent page), `HUBSPOT_API_URL` (its
//! token endpoint is `/oauth/v1/token`); `SALESFORCE_CLIENT_ID`/`_SECRET`,
//! `SALESFORCE_LOGIN_URL` (`/services/oauth2/authorize` and `/token`; the API's instance URL
//! comes with the token).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use domain::identity::one_time;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::oauth::{bad_gateway, internal, oauth_http, redirect};
use crate::state::AppState;

const STATE_TTL_MINUTES: i64 = 10;

/// Salesforce names the API's host in the token answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Extra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_url: Option<String>,
}

impl ExtraTokenFields for Extra {}

type Tokens = StandardTokenResponse<Extra, BasicTokenType>;
type Client = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

struct Crm {
    kind: &'static str,
    label: &'static str,
    app: connectors::OAuthApp,
    auth_url: String,
    token_url: String,
    scopes: &'static [&'static str],
}

fn crm(state: &AppState, name: &str) -> Result<Crm, ApiError> {
    let s = state.connectors.settings();
    let (kind, label, app) = match name.to_ascii_lowercase().as_str() {
        "hubspot" => ("HUBSPOT", "HubSpot", s.hubspot_app.clone()),
        "salesforce" => ("SALESFORCE", "Salesforce", s.salesforce_app.clone()),
        _ => {
            return Err(ApiError::not_found(format!(
                "{name:?} cannot be connected with OAuth (hubspot or salesforce can)"
            )));
        }
    };
    let app = app.ok_or_else(|| {
        ApiError::not_found(format!(
            "{label} OAuth is not configured on this server ({kind}_CLIENT_ID and \
             {kind}_CLIENT_SECRET); connect with an access token through connectIntegration"
        ))
    })?;
    Ok(match kind {
        "HUBSPOT" => Crm {
            kind,
            label,
            app,
            auth_url: s.hubspot_auth_url.clone(),
            token_url: format!("{}/oauth/v1/token", s.hubspot_api_url.trim_end_matches('/')),
            scopes: &[
                "oauth",
                "crm.objects.companies.read",
                "crm.objects.companies.write",
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.objects.deals.read",
                "crm.schemas.companies.write",
                "crm.schemas.contacts.write",
            ],
        },
        _ => {
            let login = s.salesforce_login_url.trim_end_matches('/');
            Crm {
                kind,
                label,
                app,
                auth_url: format!("{login}/services/oauth2/authorize"),
                token_url: format!("{login}/services/oauth2/token"),
                scopes: &["api", "refresh_token"],
            }
        }
    })
}

fn client(state: &AppState, c: &Crm) -> Result<Client, ApiError> {
    let redirect = format!(
        "{}/api/v1/integrations/{}/callback",
        state.config.api_url,
        c.kind.to_lowercase()
    );
    Ok(oauth2::Client::new(ClientId::new(c.app.client_id.clone()))
        .set_client_secret(ClientSecret::new(c.app.client_secret.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(c.auth_url.clone()).map_err(|e| internal("auth URL", e))?)
        .set_token_uri(TokenUrl::new(c.token_url.clone()).map_err(|e| internal("token URL", e))?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| internal("redirect URL", e))?))
}

#[derive(Serialize, Deserialize)]
struct StateData {
    kind: String,
    verifier: String,
}

/// `GET /api/v1/integrations/{kind}/connect`.
pub async fn connect(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let c = crm(&state, &name)?;
    let actor = state
        .identity
        .authenticate(&headers)
        .await?
        .ok_or_else(|| {
            ApiError::from(domain::Error::Unauthenticated(
                "connecting a CRM needs an admin's token or an API key with integrations:manage"
                    .into(),
            ))
        })?;
    connectors::store::manage(&actor)?;
    let client = client(&state, &c)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let data = serde_json::to_string(&StateData {
        kind: c.kind.to_owned(),
        verifier: verifier.secret().clone(),
    })
    .map_err(|e| internal("state", e))?;
    let csrf = one_time::issue(
        &state.db,
        one_time::CRM_OAUTH_STATE,
        Duration::minutes(STATE_TTL_MINUTES),
        one_time::NewToken {
            organization_id: Some(actor.organization_id),
            user_id: match actor.principal {
                domain::Principal::User { user_id, .. } => Some(user_id),
                _ => None,
            },
            data: Some(data),
        },
    )
    .await?;
    let mut req = client
        .authorize_url(move || CsrfToken::new(csrf))
        .set_pkce_challenge(challenge);
    for s in c.scopes {
        req = req.add_scope(Scope::new((*s).to_owned()));
    }
    let (url, _) = req.url();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(axum::Json(json!({"url": url.as_str()})).into_response());
    }
    Ok(redirect(url.as_str()))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /api/v1/integrations/{kind}/callback?code&state`.
pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let c = crm(&state, &name)?;
    let bad_state = || {
        ApiError::from(domain::Error::invalid(
            "state",
            "is invalid, expired or already used",
        ))
    };
    let csrf = q
        .state
        .ok_or_else(|| ApiError::from(domain::Error::invalid("state", "is required")))?;
    let stored = one_time::consume(&state.db, one_time::CRM_OAUTH_STATE, &csrf)
        .await?
        .ok_or_else(bad_state)?;
    let data: StateData = stored
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(bad_state)?;
    let org = stored.organization_id.ok_or_else(bad_state)?;
    if data.kind != c.kind {
        return Err(bad_state());
    }
    let back = |params: &str| {
        redirect(&format!(
            "{}/settings/integrations?{params}",
            state.config.frontend_url
        ))
    };
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or(error);
        return Ok(back(&format!(
            "error={}&kind={}",
            urlencoding(&format!("{} refused the connection: {why}", c.label)),
            c.kind
        )));
    }
    let code = q
        .code
        .ok_or_else(|| ApiError::from(domain::Error::invalid("code", "is required")))?;
    let client = client(&state, &c)?;
    let tokens = exchange(state.identity.http.clone(), client, code, data.verifier)
        .await
        .map_err(|e| {
            tracing::warn!(kind = c.kind, error = %e, "CRM OAuth code exchange failed");
            bad_gateway(&format!(
                "{} did not accept the authorization code",
                c.label
            ))
        })?;
    let mut credentials = serde_json::Map::new();
    credentials.insert("accessToken".into(), json!(tokens.access_token().secret()));
    if let Some(r) = tokens.refresh_token() {
        credentials.insert("refreshToken".into(), json!(r.secret()));
    }
    if let Some(d) = tokens.expires_in() {
        let at = Utc::now() + Duration::from_std(d).unwrap_or(Duration::minutes(30));
        credentials.insert("expiresAt".into(), json!(at.to_rfc3339()));
    }
    if let Some(u) = &tokens.extra_fields().instance_url {
        credentials.insert("instanceUrl".into(), json!(u));
    }
    let actor = domain::Actor {
        organization_id: org,
        role: domain::Role::Admin,
        principal: match stored.user_id {
            Some(user_id) => domain::Principal::User {
                user_id,
                session_id: Uuid::nil(),
            },
            None => domain::Principal::ApiKey {
                key_id: Uuid::nil(),
                scopes: vec!["integrations:manage".into()],
            },
        },
    };
    let credentials = serde_json::Value::Object(credentials);
    let id = connectors::store::connect_or_reconnect(
        &state.db,
        &state.connectors,
        &actor,
        c.kind,
        credentials,
    )
    .await?;
    Ok(back(&format!("connected={}&integration={id}", c.kind)))
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Exchanges the code with the PKCE verifier. oauth2's request future is not `Send` (see
/// `oauth.rs`), so it runs on a blocking-pool thread driven by the runtime handle.
async fn exchange(
    http: reqwest::Client,
    client: Client,
    code: String,
    verifier: String,
) -> Result<Tokens, String> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let adapter = |req: oauth2::HttpRequest| oauth_http(&http, req);
            client
                .exchange_code(AuthorizationCode::new(code))
                .set_pkce_verifier(PkceCodeVerifier::new(verifier))
                .request_async(&adapter)
                .await
                .map_err(|e| e.to_string())
        })
    })
    .await
    .map_err(|e| e.to_string())?
}
