//! A fake Slack incoming webhook (`POST /services/T…/B…/…`), answering like Slack: `200 ok` for
//! a JSON message with `text` or `blocks`, `400 invalid_payload` for a body that is not one,
//! `404 no_service` for an unknown path, and, while `failing` is above zero, `500
//! rollup_error` (counted down). Every message accepted is recorded.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde_json::Value;

pub const PATH: &str = "/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX";

#[derive(Default)]
pub struct Data {
    pub posts: Vec<Value>,
    pub failing: u32,
}

#[derive(Clone)]
pub struct FakeSlack {
    /// The webhook URL to give a rule.
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let data = Arc::new(Mutex::new(Data::default()));
        let app = Router::new().fallback(handle).with_state(data.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack { url, data }
    }

    pub fn posts(&self) -> Vec<Value> {
        self.data.lock().unwrap().posts.clone()
    }

    pub fn fail(&self, n: u32) {
        self.data.lock().unwrap().failing = n;
    }
}

async fn handle(
    State(data): State<Arc<Mutex<Data>>>,
    uri: Uri,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if uri.path() != PATH {
        return (StatusCode::NOT_FOUND, "no_service");
    }
    let mut d = data.lock().unwrap();
    if d.failing > 0 {
        d.failing -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "rollup_error");
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.get("text").is_some() || v.get("blocks").is_some() => {
            d.posts.push(v);
            (StatusCode::OK, "ok")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_payload"),
    }
}
