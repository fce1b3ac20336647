//! The one-click unsubscribe link of every alert and digest email
//! (`/api/v1/notifications/unsubscribe?token=…`, signed, naming one member, organization and
//! kind of email). `POST` unsubscribes: what a mail client sends for `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click` (RFC 8058), and what the page's button sends. `GET` — what a link
//! click, or a mail scanner prefetching links, does — only shows that button, so a scanner
//! cannot unsubscribe anyone.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use domain::alerts::Unsubscribe;
use serde::Deserialize;

use crate::state::AppState;
use jobs::notify::render::esc;

pub const PATH: &str = "/api/v1/notifications/unsubscribe";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(page).post(unsubscribe))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn what(w: Unsubscribe) -> &'static str {
    match w {
        Unsubscribe::Alerts => "alert emails",
        Unsubscribe::Digest => "the weekly digest",
    }
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
             <body><h1>{}</h1>{body}</body></html>",
            esc(title),
            esc(title)
        )),
    )
        .into_response()
}

fn invalid() -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "This unsubscribe link is not valid",
        "<p>Change what you receive under Settings → Notifications in DevSignal.</p>",
    )
}

async fn page(State(st): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    match domain::alerts::check_unsubscribe(st.webhooks.cipher(), &q.token) {
        Ok(w) => html(
            StatusCode::OK,
            &format!("Unsubscribe from {}?", what(w)),
            &format!(
                "<form method=\"post\" action=\"{PATH}?token={}\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                esc(&q.token)
            ),
        ),
        Err(_) => invalid(),
    }
}

async fn unsubscribe(State(st): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    match domain::alerts::unsubscribe(&st.db, st.webhooks.cipher(), &q.token).await {
        Ok(w) => html(
            StatusCode::OK,
            &format!("You are unsubscribed from {}", what(w)),
            "<p>Turn it back on under Settings → Notifications in DevSignal.</p>",
        ),
        Err(e) if !e.is_internal() => invalid(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribing failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unsubscribing failed",
                "<p>Please try again in a minute.</p>",
            )
        }
    }
}
