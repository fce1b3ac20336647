//! OAuth login with GitHub and Google: authorization code with PKCE and a single-use state.
//!
//! `GET /api/v1/auth/oauth/{provider}` stores the state (hashed, 10 minutes, with the PKCE
//! verifier) and redirects to the provider. The callback consumes the state (a bad or replayed
//! state is refused), exchanges the code, reads a verified email, links or creates the user, and
//! redirects to `FRONTEND_URL/oauth/callback?code=…` with a one-time code (60 s) that
//! `POST /api/v1/auth/oauth/exchange` trades for tokens: no token ever travels in a URL.
//!
//! Provider URLs come from `GITHUB_OAUTH_BASE_URL` (authorize and token), `GITHUB_API_BASE_URL`,
//! `GOOGLE_OAUTH_BASE_URL` (authorize), `GOOGLE_OAUTH_TOKEN_BASE_URL`, `GOOGLE_API_BASE_URL`, so
//! tests run the whole flow against a local fake.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use domain::identity::one_time;
use domain::identity::users::OAuthIdentity;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::json::Json;
use crate::auth::ClientIp;
use crate::config::Config;
use crate::state::AppState;

/// How long a started login may take.
const STATE_TTL_MINUTES: i64 = 10;
/// How long the one-time exchange code lives.
const EXCHANGE_TTL_SECONDS: i64 = 60;

struct Provider {
    name: &'static str,
    client_id: String,
    client_secret: SecretString,
    auth_url: String,
    token_url: String,
    api: String,
    scopes: &'static [&'static str],
}

fn provider(config: &Config, name: &str) -> Result<Provider, ApiError> {
    let not_configured = |label: &str| {
        ApiError::not_found(format!("{label} sign-in is not configured on this server"))
    };
    match name {
        "github" => {
            let (Some(id), Some(secret)) = (&config.github_client_id, &config.github_client_secret)
            else {
                return Err(not_configured("GitHub"));
            };
            let base = config.base_url("GITHUB_OAUTH", "https://github.com");
            Ok(Provider {
                name: "github",
                client_id: id.clone(),
                client_secret: secret.clone(),
                auth_url: format!("{base}/login/oauth/authorize"),
                token_url: format!("{base}/login/oauth/access_token"),
                api: config.base_url("GITHUB_API", "https://api.github.com"),
                scopes: &["read:user", "user:email"],
            })
        }
        "google" => {
            let (Some(id), Some(secret)) = (&config.google_client_id, &config.google_client_secret)
            else {
                return Err(not_configured("Google"));
            };
            let base = config.base_url("GOOGLE_OAUTH", "https://accounts.google.com");
            let token = config.base_url("GOOGLE_OAUTH_TOKEN", "https://oauth2.googleapis.com");
            Ok(Provider {
                name: "google",
                client_id: id.clone(),
                client_secret: secret.clone(),
                auth_url: format!("{base}/o/oauth2/v2/auth"),
                token_url: format!("{token}/token"),
                api: config.base_url("GOOGLE_API", "https://openidconnect.googleapis.com"),
                scopes: &["openid", "email", "profile"],
            })
        }
        _ => Err(ApiError::not_found(format!(
            "unknown sign-in provider {name:?} (github or google)"
        ))),
    }
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub(super) fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::from(domain::Error::Internal(format!("{what}: {e}")))
}

fn client(config: &Config, p: &Provider) -> Result<Client, ApiError> {
    let redirect = format!("{}/api/v1/auth/oauth/{}/callback", config.api_url, p.name);
    Ok(BasicClient::new(ClientId::new(p.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            p.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_uri(AuthUrl::new(p.auth_url.clone()).map_err(|e| internal("auth URL", e))?)
        .set_token_uri(TokenUrl::new(p.token_url.clone()).map_err(|e| internal("token URL", e))?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| internal("redirect URL", e))?))
}

pub(super) fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

#[derive(serde::Serialize, Deserialize)]
struct StateData {
    provider: String,
    verifier: String,
}

/// `GET /api/v1/auth/oauth/{provider}`: redirects to the provider's consent page.
pub async fn start(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let p = provider(&state.config, &name)?;
    let client = client(&state.config, &p)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let data = serde_json::to_string(&StateData {
        provider: p.name.to_owned(),
        verifier: verifier.secret().clone(),
    })
    .map_err(|e| internal("state", e))?;
    let csrf = one_time::issue(
        &state.db,
        one_time::OAUTH_STATE,
        Duration::minutes(STATE_TTL_MINUTES),
        one_time::NewToken {
            data: Some(data),
            ..Default::default()
        },
    )
    .await?;
    let mut req = client
        .authorize_url(move || CsrfToken::new(csrf))
        .set_pkce_challenge(challenge);
    for s in p.scopes {
        req = req.add_scope(Scope::new((*s).to_owned()));
    }
    let (url, _) = req.url();
    Ok(redirect(url.as_str()))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(super) async fn oauth_http(
    client: &reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

pub(super) fn bad_gateway(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        domain::Code::UpstreamError,
        message,
    )
}

/// `GET /api/v1/auth/oauth/{provider}/callback?code&state`.
pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    axum::Extension(ip): axum::Extension<ClientIp>,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let p = provider(&state.config, &name)?;
    if let Some(error) = q.error {
        return Err(
            domain::Error::invalid("error", format!("the provider refused: {error}")).into(),
        );
    }
    let (Some(code), Some(csrf)) = (q.code, q.state) else {
        return Err(domain::Error::invalid("code", "code and state are required").into());
    };
    let bad_state = || {
        ApiError::from(domain::Error::invalid(
            "state",
            "is invalid, expired or already used",
        ))
    };
    let stored = one_time::consume(&state.db, one_time::OAUTH_STATE, &csrf)
        .await?
        .ok_or_else(bad_state)?;
    let data: StateData = stored
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(bad_state)?;
    if data.provider != p.name {
        return Err(bad_state());
    }
    let client = client(&state.config, &p)?;
    let identity =
        fetch_identity(state.identity.http.clone(), client, p, code, data.verifier).await?;
    let meta = crate::auth::meta(&ip, &headers);
    let signed = domain::identity::users::oauth_sign_in(&state.db, &meta, identity).await?;
    let exchange = one_time::issue(
        &state.db,
        one_time::OAUTH_CODE,
        Duration::seconds(EXCHANGE_TTL_SECONDS),
        one_time::NewToken {
            user_id: Some(signed.user.id),
            organization_id: Some(signed.organization.id),
            data: None,
        },
    )
    .await?;
    Ok(redirect(&format!(
        "{}/oauth/callback?code={exchange}",
        state.config.frontend_url
    )))
}

/// Exchanges the code (with the PKCE verifier) and reads the provider's identity.
///
/// oauth2's request future cannot be proven `Send` (a higher-ranked lifetime inside the crate),
/// so the exchange runs to completion on a blocking-pool thread that drives it with the runtime
/// handle. Sign-ins are rare; this costs one thread for the length of two HTTP calls.
async fn fetch_identity(
    http: reqwest::Client,
    client: Client,
    p: Provider,
    code: String,
    verifier: String,
) -> Result<OAuthIdentity, ApiError> {
    let handle = tokio::runtime::Handle::current();
    let http_for_api = http.clone();
    let token = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let adapter = |req: oauth2::HttpRequest| oauth_http(&http, req);
            client
                .exchange_code(AuthorizationCode::new(code))
                .set_pkce_verifier(PkceCodeVerifier::new(verifier))
                .request_async(&adapter)
                .await
                .map(|t| t.access_token().secret().clone())
                .map_err(|e| e.to_string())
        })
    })
    .await
    .map_err(|e| internal("OAuth exchange task", e))?
    .map_err(|e| {
        tracing::warn!(provider = p.name, error = %e, "OAuth code exchange failed");
        bad_gateway("the sign-in provider did not accept the code")
    })?;
    match p.name {
        "github" => github_identity(&http_for_api, &p.api, &token).await,
        _ => google_identity(&http_for_api, &p.api, &token).await,
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<T, ApiError> {
    let resp = http
        .get(url)
        .bearer_auth(token)
        .header(header::USER_AGENT, "DevSignal")
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|_| bad_gateway("the sign-in provider is unreachable"))?;
    if !resp.status().is_success() {
        return Err(bad_gateway("the sign-in provider refused the token"));
    }
    resp.json()
        .await
        .map_err(|_| bad_gateway("the sign-in provider answered unexpectedly"))
}

fn no_verified_email() -> ApiError {
    domain::Error::invalid("email", "the provider reports no verified email address").into()
}

async fn github_identity(
    http: &reqwest::Client,
    api: &str,
    token: &str,
) -> Result<OAuthIdentity, ApiError> {
    #[derive(Deserialize)]
    struct GhUser {
        id: i64,
        login: String,
        name: Option<String>,
    }
    #[derive(Deserialize)]
    struct GhEmail {
        email: String,
        primary: bool,
        verified: bool,
    }
    let user: GhUser = get_json(http, &format!("{api}/user"), token).await?;
    let emails: Vec<GhEmail> = get_json(http, &format!("{api}/user/emails"), token).await?;
    let email = emails
        .iter()
        .filter(|e| e.verified)
        .max_by_key(|e| e.primary)
        .map(|e| e.email.clone())
        .ok_or_else(no_verified_email)?;
    Ok(OAuthIdentity {
        provider: "github",
        subject: user.id.to_string(),
        email,
        name: user.name.or(Some(user.login)),
    })
}

async fn google_identity(
    http: &reqwest::Client,
    api: &str,
    token: &str,
) -> Result<OAuthIdentity, ApiError> {
    #[derive(Deserialize)]
    struct GoogleUser {
        sub: String,
        email: Option<String>,
        #[serde(default)]
        email_verified: bool,
        name: Option<String>,
    }
    let user: GoogleUser = get_json(http, &format!("{api}/v1/userinfo"), token).await?;
    let email = user
        .email
        .filter(|_| user.email_verified)
        .ok_or_else(no_verified_email)?;
    Ok(OAuthIdentity {
        provider: "google",
        subject: user.sub,
        email,
        name: user.name,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ExchangeRequest {
    code: String,
}

/// `POST /api/v1/auth/oauth/exchange {"code"}`: the one-time code for tokens (once).
pub async fn exchange(
    State(state): State<AppState>,
    axum::Extension(ip): axum::Extension<ClientIp>,
    headers: axum::http::HeaderMap,
    Json(body): Json<ExchangeRequest>,
) -> ApiResult<Response> {
    let invalid = || {
        ApiError::from(domain::Error::invalid(
            "code",
            "is invalid, expired or already used",
        ))
    };
    let used = one_time::consume(&state.db, one_time::OAUTH_CODE, body.code.trim())
        .await?
        .ok_or_else(invalid)?;
    let (Some(user_id), Some(org_id)) = (used.user_id, used.organization_id) else {
        return Err(invalid());
    };
    let user = domain::identity::users::get(&state.db, user_id).await?;
    let meta = crate::auth::meta(&ip, &headers);
    let (organization, role) = domain::identity::users::membership_in(&state.db, user_id, org_id)
        .await?
        .ok_or_else(invalid)?;
    let signed = domain::identity::users::SignedIn {
        user,
        organization,
        role,
    };
    let tokens = state.identity.start_session(&meta, &signed).await?;
    Ok(axum::Json(super::auth::AuthBody::new(signed, tokens)).into_response())
}
