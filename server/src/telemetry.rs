//! Logging and error reporting. In production (or with `LOG_FORMAT=json`) every line is one JSON
//! object in the shape log pipelines expect: `level`, `message`, `timestamp`, then the context fields
//! of the event and of every enclosing span (`requestId`, `organizationId`, `queue`, `jobId`, …)
//! flattened at the top level, so `grep '"level":"error"'` and `jq .requestId` just work.
//! Otherwise lines are human-readable. Sentry is wired in through `sentry-tracing` when
//! `SENTRY_DSN` is set.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

/// The default filter: our own crates at `info`, chatty dependencies quieter.
pub const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,tokio_cron_scheduler=warn";

/// The target of events meant for error reporting (Sentry) only: an operator command prints its
/// error to stderr itself, once, and reports it under this target.
pub const REPORT_ONLY: &str = "devsignal::report";

/// Keeps Sentry alive for the life of the process; dropping it flushes pending events.
pub struct TelemetryGuard {
    _sentry: Option<sentry::ClientInitGuard>,
}

/// Installs the global subscriber for the process. Call once, from `main`.
pub fn init(config: &Config) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let sentry_guard = config.sentry_dsn.as_ref().map(|dsn| {
        sentry::init((
            dsn.expose_secret(),
            sentry::ClientOptions::new()
                .maybe_release(
                    config
                        .sentry_release
                        .clone()
                        .map(Into::into)
                        .or(sentry::release_name!()),
                )
                .environment(format!("{:?}", config.environment).to_lowercase())
                .traces_sample_rate(config.sentry_traces_sample_rate)
                .shutdown_timeout(SENTRY_TIMEOUT)
                .transport(TimeoutTransport),
        ))
    });
    // Error-level events become Sentry issues; warnings and infos before them are breadcrumbs.
    let sentry_layer = sentry_guard.as_ref().map(|_| {
        sentry_tracing::ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(sentry_tracing::BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
            // Performance tracing: root spans (a request, a job) become transactions, sampled
            // at SENTRY_TRACES_SAMPLE_RATE; nothing is built when the rate is 0.
            .and_then(
                (config.sentry_traces_sample_rate > 0.0)
                    .then(|| sentry_tracing::SpanLayer::new().with_filter(LevelFilter::INFO)),
            )
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(sentry_layer);
    // Events of REPORT_ONLY go to Sentry, never to the console.
    let console = filter_fn(|meta| meta.target() != REPORT_ONLY);
    // A second init (tests) is not an error worth stopping for.
    let _ = match config.log_format {
        LogFormat::Json => registry
            .with(JsonLayer::new(std::io::stdout).with_filter(console))
            .try_init(),
        // Colours only for a terminal: redirected to a file or a pipe, lines stay plain text.
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_filter(console),
            )
            .try_init(),
    };
    TelemetryGuard {
        _sentry: sentry_guard,
    }
}

/// How long one delivery to Sentry, and the final flush at exit, may take.
const SENTRY_TIMEOUT: Duration = Duration::from_secs(3);

/// Sentry's HTTP transport with a request timeout: its default client has none, so an endpoint
/// that accepts a connection and never answers would hold the process at exit forever.
struct TimeoutTransport;

impl sentry::TransportFactory for TimeoutTransport {
    fn create_transport_with_options(
        &self,
        options: sentry::TransportOptions,
    ) -> Arc<dyn sentry::Transport> {
        let client = reqwest::Client::builder()
            .timeout(SENTRY_TIMEOUT)
            .connect_timeout(SENTRY_TIMEOUT)
            .build()
            .unwrap_or_default();
        Arc::new(
            sentry::transports::ReqwestHttpTransportOptions::from(options)
                .with_client(client)
                .build(),
        )
    }
}

/// Writes each event as one JSON line with span context flattened in.
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// The fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().to_ascii_lowercase()),
        );
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in fields {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        line.entry("message")
            .or_insert(Value::String(String::new()));
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_owned()),
        );
        let mut buf = match serde_json::to_vec(&line) {
            Ok(buf) => buf,
            Err(_) => return,
        };
        buf.push(b'\n');
        let _ = self.make_writer.make_writer().write_all(&buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn json_lines_have_level_message_timestamp_and_span_context() {
        let buf = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(buf.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                requestId = "req-1",
                organizationId = tracing::field::Empty
            );
            span.record("organizationId", "org-9");
            let _g = span.enter();
            tracing::error!(queue = "webhook-delivery", attempt = 2, "Job failed");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["level"], "error");
        assert_eq!(line["message"], "Job failed");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["organizationId"], "org-9");
        assert_eq!(line["queue"], "webhook-delivery");
        assert_eq!(line["attempt"], 2);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
