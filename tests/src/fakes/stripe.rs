//! A fake of the parts of Stripe's API billing uses, answering like the real one:
//! `POST /v1/customers`, `POST /v1/checkout/sessions`, `POST /v1/billing_portal/sessions` and
//! `GET /v1/subscriptions/{id}`. Requests need `Authorization: Bearer <the key>` (401
//! `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: …"}}`
//! otherwise) and form-encoded bodies; a missing required parameter answers 400 with
//! `error.param`. `POST /v1/customers` honours `Idempotency-Key` (the same key answers the same
//! customer). An unknown price answers 400 `resource_missing`. Subscriptions are what the test
//! puts in ([`FakeStripe::put_subscription`]); an unknown one answers 404. The webhook side
//! ([`FakeStripe::event`], [`signed`]) builds events and signs them the way Stripe does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub form: HashMap<String, String>,
    pub idempotency_key: Option<String>,
    pub version: Option<String>,
    pub status: u16,
}

#[derive(Default)]
pub struct Data {
    pub key: String,
    pub prices: Vec<String>,
    pub customers: HashMap<String, Value>,
    pub idempotent: HashMap<String, String>,
    pub subscriptions: HashMap<String, Value>,
    pub hits: Vec<Hit>,
    pub next: u64,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Response {
    let mut e = json!({"type": kind, "message": message});
    if let Some(c) = code {
        e["code"] = json!(c);
    }
    if let Some(p) = param {
        e["param"] = json!(p);
    }
    (
        StatusCode::from_u16(status).unwrap(),
        [
            ("content-type", "application/json"),
            ("request-id", "req_fake"),
        ],
        json!({"error": e}).to_string(),
    )
        .into_response()
}

impl FakeStripe {
    /// A fake accepting the secret `key` and knowing `prices`.
    pub async fn start(key: &str, prices: &[&str]) -> FakeStripe {
        let data = Arc::new(Mutex::new(Data {
            key: key.to_owned(),
            prices: prices.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe { url, data }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }

    /// The customers created.
    pub fn customers(&self) -> Vec<Value> {
        self.data
            .lock()
            .unwrap()
            .customers
            .values()
            .cloned()
            .collect()
    }

    /// Stores (or replaces) a subscription that `GET /v1/subscriptions/{id}` answers.
    pub fn put_subscription(&self, sub: Value) {
        let id = sub["id"].as_str().unwrap().to_owned();
        self.data.lock().unwrap().subscriptions.insert(id, sub);
    }
}

/// A subscription object as Stripe sends it (API version 2025-03-31: the period is on the item).
pub fn subscription(
    id: &str,
    customer: &str,
    status: &str,
    price: &str,
    organization_id: &str,
    period_end: i64,
) -> Value {
    json!({
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": false,
        "created": period_end - 30 * 86_400,
        "metadata": {"organizationId": organization_id},
        "items": {"object": "list", "data": [{
            "id": format!("si_{id}"),
            "object": "subscription_item",
            "price": {"id": price, "object": "price", "recurring": {"interval": "month"}},
            "quantity": 1,
            "current_period_start": period_end - 30 * 86_400,
            "current_period_end": period_end,
        }]},
    })
}

/// An event of `kind` about `object`, created at `created` (unix seconds).
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "type": kind,
        "livemode": false,
        "pending_webhooks": 1,
        "data": {"object": object},
    })
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp` under `secret`
/// (computed here independently of the server's code: HMAC-SHA-256 of `t.body`, hex).
pub fn signed(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn form_of(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[allow(clippy::result_large_err)]
async fn handle(
    State(data): State<Arc<Mutex<Data>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let form = form_of(&body);
    let mut d = data.lock().unwrap();
    let path = uri.path().to_owned();
    let mut hit = Hit {
        method: method.to_string(),
        path: path.clone(),
        form: form.clone(),
        idempotency_key: header("idempotency-key"),
        version: header("stripe-version"),
        status: 200,
    };
    let authorized = header("authorization").as_deref() == Some(&format!("Bearer {}", d.key));
    let need = |name: &str| -> Result<String, Response> {
        form.get(name).cloned().ok_or_else(|| {
            error(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                &format!("Missing required param: {name}."),
                Some(name),
            )
        })
    };
    let resp: Result<Value, Response> = if !authorized {
        Err(error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****",
            None,
        ))
    } else {
        match (method.as_str(), path.as_str()) {
            ("POST", "/v1/customers") => {
                let known = hit
                    .idempotency_key
                    .as_ref()
                    .and_then(|k| d.idempotent.get(k).cloned());
                match known {
                    Some(id) => Ok(d.customers[&id].clone()),
                    None => {
                        d.next += 1;
                        let id = format!("cus_fake{}", d.next);
                        let c = json!({
                            "id": id,
                            "object": "customer",
                            "name": form.get("name"),
                            "email": form.get("email"),
                            "metadata": {"organizationId": form.get("metadata[organizationId]")},
                        });
                        d.customers.insert(id.clone(), c.clone());
                        if let Some(k) = &hit.idempotency_key {
                            d.idempotent.insert(k.clone(), id);
                        }
                        Ok(c)
                    }
                }
            }
            ("POST", "/v1/checkout/sessions") => (|| {
                let customer = need("customer")?;
                let price = need("line_items[0][price]")?;
                need("success_url")?;
                need("cancel_url")?;
                if need("mode")? != "subscription" {
                    return Err(error(
                        400,
                        "invalid_request_error",
                        None,
                        "mode",
                        Some("mode"),
                    ));
                }
                if !d.customers.contains_key(&customer) {
                    return Err(error(
                        400,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such customer: '{customer}'"),
                        Some("customer"),
                    ));
                }
                if !d.prices.contains(&price) {
                    return Err(error(
                        400,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such price: '{price}'"),
                        Some("line_items[0][price]"),
                    ));
                }
                Ok(())
            })()
            .map(|()| {
                d.next += 1;
                let id = format!("cs_test_fake{}", d.next);
                json!({
                    "id": id,
                    "object": "checkout.session",
                    "mode": "subscription",
                    "customer": form.get("customer"),
                    "client_reference_id": form.get("client_reference_id"),
                    "metadata": {"organizationId": form.get("metadata[organizationId]")},
                    "success_url": form.get("success_url"),
                    "cancel_url": form.get("cancel_url"),
                    "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                })
            }),
            ("POST", "/v1/billing_portal/sessions") => need("customer").and_then(|customer| {
                if !d.customers.contains_key(&customer) {
                    return Err(error(
                        400,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such customer: '{customer}'"),
                        Some("customer"),
                    ));
                }
                d.next += 1;
                Ok(json!({
                    "id": format!("bps_fake{}", d.next),
                    "object": "billing_portal.session",
                    "customer": customer,
                    "return_url": form.get("return_url"),
                    "url": format!("https://billing.stripe.com/p/session/test_{}", d.next),
                }))
            }),
            ("GET", p) if p.starts_with("/v1/subscriptions/") => {
                let id = &p["/v1/subscriptions/".len()..];
                d.subscriptions.get(id).cloned().ok_or_else(|| {
                    error(
                        404,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such subscription: '{id}'"),
                        Some("id"),
                    )
                })
            }
            _ => Err(error(
                404,
                "invalid_request_error",
                None,
                &format!("Unrecognized request URL ({method}: {path})."),
                None,
            )),
        }
    };
    let resp = match resp {
        Ok(v) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(r) => r,
    };
    hit.status = resp.status().as_u16();
    d.hits.push(hit);
    resp
}
