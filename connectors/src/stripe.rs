//! Stripe's API, for billing: customers, Checkout sessions, billing-portal sessions and
//! retrieving a subscription. `domain::billing` owns the plans and the state webhook events
//! move; this is the HTTP.
//!
//! Requests are form-encoded `POST`s (or a `GET`) to `{STRIPE_API_URL}/v1/…` with the secret key
//! as a bearer token and a pinned `Stripe-Version`. A customer is created with an idempotency
//! key derived from the organization, so two concurrent first checkouts get one customer.
//!
//! Errors (`{"error":{"type","code","message","param"}}`): 401/403 → the key was refused
//! (`UPSTREAM_ERROR`, telling the operator to check `STRIPE_SECRET_KEY`); 429 → `RATE_LIMITED`;
//! other 4xx → `UPSTREAM_ERROR` with Stripe's message; 5xx, a timeout or no connection →
//! `UPSTREAM_ERROR`, try again.

use std::time::Duration;

use domain::Error;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

pub const DEFAULT_API_URL: &str = "https://api.stripe.com";
/// The API version every request names (what the webhook events' shapes follow).
pub const API_VERSION: &str = "2025-03-31.basil";
/// One request's bound.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Where Stripe is and the key to it.
#[derive(Clone)]
pub struct Stripe {
    pub client: reqwest::Client,
    pub api_url: String,
    pub secret_key: String,
}

fn error_detail(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    let e = &v["error"];
    let message: String = e["message"]
        .as_str()
        .unwrap_or("")
        .trim()
        .chars()
        .take(300)
        .collect();
    let kind = e["code"]
        .as_str()
        .or_else(|| e["type"].as_str())
        .unwrap_or("error");
    if message.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {message}")
    }
}

impl Stripe {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> domain::Result<Value> {
        let url = format!("{}/v1/{path}", self.api_url.trim_end_matches('/'));
        let mut req = self
            .client
            .request(method, &url)
            .timeout(TIMEOUT)
            .bearer_auth(&self.secret_key)
            .header("Stripe-Version", API_VERSION);
        if !form.is_empty() {
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(error = %e, path, "Stripe request failed");
            Error::Upstream(if e.is_timeout() {
                format!(
                    "Stripe did not answer within {} s; try again",
                    TIMEOUT.as_secs()
                )
            } else {
                "Stripe could not be reached; try again".to_owned()
            })
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = resp.text().await.map_err(|e| {
            tracing::warn!(error = %e, "reading Stripe's answer failed");
            Error::Upstream("Stripe's answer could not be read; try again".into())
        })?;
        if !status.is_success() {
            let detail = error_detail(&text);
            let code = status.as_u16();
            tracing::warn!(status = code, path, detail, "Stripe refused a request");
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Upstream(format!(
                    "Stripe refused the server's STRIPE_SECRET_KEY ({code} {detail}); the operator must check it"
                )),
                StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
                    retry_after_secs: retry_after.unwrap_or(5),
                },
                s if s.is_client_error() => {
                    Error::Upstream(format!("Stripe rejected the request ({code} {detail})"))
                }
                _ => Error::Upstream(format!(
                    "Stripe is unavailable ({code} {detail}); try again shortly"
                )),
            });
        }
        serde_json::from_str(&text).map_err(|e| {
            tracing::warn!(error = %e, "Stripe's answer is not JSON");
            Error::Upstream("Stripe's answer was not JSON; try again".into())
        })
    }

    fn id_in(v: &Value, what: &str) -> domain::Result<String> {
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Upstream(format!("Stripe's {what} has no id")))
    }

    /// Creates the organization's customer (idempotent per organization).
    pub async fn create_customer(
        &self,
        organization_id: Uuid,
        name: &str,
        email: Option<&str>,
    ) -> domain::Result<String> {
        let mut form = vec![
            ("name", name.to_owned()),
            ("metadata[organizationId]", organization_id.to_string()),
        ];
        if let Some(e) = email {
            form.push(("email", e.to_owned()));
        }
        let key = format!("devsignal-customer-{organization_id}");
        let v = self
            .call(reqwest::Method::POST, "customers", &form, Some(&key))
            .await?;
        Self::id_in(&v, "customer")
    }

    /// A subscription-mode Checkout session for `price`; answers its id and URL.
    pub async fn create_checkout_session(
        &self,
        organization_id: Uuid,
        customer: &str,
        price: &str,
        success_url: &str,
        cancel_url: &str,
    ) -> domain::Result<(String, String)> {
        let org = organization_id.to_string();
        let form = vec![
            ("mode", "subscription".to_owned()),
            ("customer", customer.to_owned()),
            ("line_items[0][price]", price.to_owned()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("success_url", success_url.to_owned()),
            ("cancel_url", cancel_url.to_owned()),
            ("client_reference_id", org.clone()),
            ("metadata[organizationId]", org.clone()),
            ("subscription_data[metadata][organizationId]", org),
        ];
        let v = self
            .call(reqwest::Method::POST, "checkout/sessions", &form, None)
            .await?;
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Upstream("Stripe's Checkout session has no url".into()))?;
        Ok((Self::id_in(&v, "Checkout session")?, url.to_owned()))
    }

    /// A billing-portal session for the customer; answers its URL.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> domain::Result<String> {
        let form = vec![
            ("customer", customer.to_owned()),
            ("return_url", return_url.to_owned()),
        ];
        let v = self
            .call(
                reqwest::Method::POST,
                "billing_portal/sessions",
                &form,
                None,
            )
            .await?;
        v.get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Upstream("Stripe's portal session has no url".into()))
    }

    /// The subscription `id`, as Stripe has it now.
    pub async fn subscription(&self, id: &str) -> domain::Result<Value> {
        let path = format!(
            "subscriptions/{}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        self.call(reqwest::Method::GET, &path, &[], None).await
    }
}
