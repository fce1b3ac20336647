//! A small GraphQL-over-WebSocket client for tests, speaking either `graphql-transport-ws`
//! (the graphql-ws library) or the legacy `graphql-ws` (subscriptions-transport-ws) protocol.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    stream: Stream,
    pub protocol: String,
}

impl WsClient {
    pub async fn connect(url: &str, protocol: &str) -> Self {
        Self::connect_with(url, protocol, &[]).await
    }

    /// Connects with extra request headers (e.g. `X-Forwarded-For`).
    pub async fn connect_with(url: &str, protocol: &str, headers: &[(&str, &str)]) -> Self {
        let mut req = url.into_client_request().expect("ws request");
        for (name, value) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).expect("protocol header"),
        );
        // A small read buffer (tungstenite reserves 128 KiB per connection by default), so a
        // bench's thousand clients do not hide the server's own memory; it grows when needed.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4 * 1024);
        let (stream, resp) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
            .await
            .expect("WebSocket connect");
        let accepted = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(accepted, protocol, "server did not accept subprotocol");
        WsClient {
            stream,
            protocol: protocol.to_owned(),
        }
    }

    fn legacy(&self) -> bool {
        self.protocol == "graphql-ws"
    }

    pub async fn send(&mut self, msg: Value) {
        self.stream
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Sends `msg`; false if the connection refused it (closed or reset while sending).
    pub async fn try_send(&mut self, msg: Value) -> bool {
        self.stream
            .send(Message::Text(msg.to_string().into()))
            .await
            .is_ok()
    }

    /// The next JSON message (skipping pings and keep-alives), or `None` when closed.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(timeout, self.stream.next())
                .await
                .expect("timed out waiting for a WebSocket message")?;
            match msg.ok()? {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).expect("JSON message");
                    match v["type"].as_str() {
                        Some("ping") => self.send(json!({"type": "pong"})).await,
                        Some("ka") | Some("pong") => {}
                        _ => return Some(v),
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Sends `connection_init` with `payload` and returns the server's answer.
    pub async fn init(&mut self, payload: Value) -> Value {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        self.next(Duration::from_secs(10))
            .await
            .expect("answer to connection_init")
    }

    /// Starts a subscription under `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy() { "start" } else { "subscribe" };
        self.send(
            json!({"type": kind, "id": id, "payload": {"query": query, "variables": variables}}),
        )
        .await;
    }

    /// Stops the subscription `id`.
    pub async fn stop(&mut self, id: &str) {
        let kind = if self.legacy() { "stop" } else { "complete" };
        self.send(json!({"type": kind, "id": id})).await;
    }

    /// The payload of the next data message (`next`, or `data` in the legacy protocol).
    pub async fn next_data(&mut self) -> Value {
        let msg = self
            .next(Duration::from_secs(10))
            .await
            .expect("a data message");
        let expected = if self.legacy() { "data" } else { "next" };
        assert_eq!(msg["type"], expected, "unexpected message {msg}");
        msg["payload"].clone()
    }
}
