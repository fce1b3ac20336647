//! A fake of Anthropic's Messages API: `POST /v1/messages`, answering like the real one. A
//! request needs `x-api-key` equal to one of the keys it accepts (401 `authentication_error`
//! otherwise), `anthropic-version` (400 `invalid_request_error` without it) and a JSON body with
//! `model`, `max_tokens` and `messages`; it then answers the next scripted reply — a message
//! (`{id, type: "message", role: "assistant", content: [{type: "text", text}], model,
//! stop_reason, usage: {input_tokens, output_tokens}}`) or an error (`{type: "error", error:
//! {type, message}, request_id}` with its status, `retry-after` on 429). Every request is
//! recorded with its headers and body.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A message whose one text block is `text`, with this usage.
    Text {
        text: String,
        input_tokens: i64,
        output_tokens: i64,
    },
    /// An error: status, `error.type`, `error.message`.
    Error(u16, &'static str, &'static str),
}

impl Reply {
    pub fn text(text: impl Into<String>, input_tokens: i64, output_tokens: i64) -> Reply {
        Reply::Text {
            text: text.into(),
            input_tokens,
            output_tokens,
        }
    }
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub api_key: Option<String>,
    pub version: Option<String>,
    pub body: Value,
    pub status: u16,
}

impl Hit {
    /// The user message's text.
    pub fn prompt(&self) -> String {
        self.body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub struct Data {
    pub keys: Vec<String>,
    pub replies: VecDeque<Reply>,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeAnthropic {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    let mut resp = (
        status,
        [("content-type", "application/json"), ("request-id", "req_fake")],
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})
            .to_string(),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("17"));
    }
    resp
}

impl FakeAnthropic {
    /// A fake accepting `keys`.
    pub async fn start(keys: &[&str]) -> FakeAnthropic {
        let data = Arc::new(Mutex::new(Data {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            replies: VecDeque::new(),
            hits: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAnthropic { url, data }
    }

    /// Queues the next answer.
    pub fn reply(&self, reply: Reply) {
        self.data.lock().unwrap().replies.push_back(reply);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }
}

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
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut d = data.lock().unwrap();
    let mut hit = Hit {
        path: uri.path().to_owned(),
        api_key: header("x-api-key"),
        version: header("anthropic-version"),
        body: body_json.clone(),
        status: 200,
    };
    let resp = if method != Method::POST || uri.path() != "/v1/messages" {
        hit.status = 404;
        error(404, "not_found_error", "Not found")
    } else if !hit.api_key.as_ref().is_some_and(|k| d.keys.contains(k)) {
        hit.status = 401;
        error(401, "authentication_error", "invalid x-api-key")
    } else if hit.version.is_none() {
        hit.status = 400;
        error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        )
    } else if !body_json["model"].is_string()
        || !body_json["max_tokens"].is_u64()
        || !body_json["messages"].is_array()
    {
        hit.status = 400;
        error(
            400,
            "invalid_request_error",
            "model, max_tokens and messages are required",
        )
    } else {
        match d.replies.pop_front() {
            None => {
                hit.status = 500;
                error(500, "api_error", "the fake has no reply scripted")
            }
            Some(Reply::Error(status, kind, message)) => {
                hit.status = status;
                error(status, kind, message)
            }
            Some(Reply::Text {
                text,
                input_tokens,
                output_tokens,
            }) => (
                [
                    ("content-type", "application/json"),
                    ("request-id", "req_fake"),
                ],
                json!({
                    "id": format!("msg_{:04}", d.hits.len()),
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": text}],
                    "model": body_json["model"],
                    "stop_reason": "end_turn",
                    "stop_sequence": null,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
                })
                .to_string(),
            )
                .into_response(),
        }
    };
    d.hits.push(hit);
    resp
}
