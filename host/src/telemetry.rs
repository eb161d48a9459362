//! OpenTelemetry traces, exported over OTLP/HTTP (protobuf) when the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and off otherwise.
//!
//! The code only makes `tracing` spans; this module bridges them to OpenTelemetry with
//! `tracing-opentelemetry`. Spans are exported by the SDK's batch processor on its own thread,
//! so a slow or absent collector never holds up a request: when its queue is full, spans are
//! dropped. Span names and attributes follow the GenAI and HTTP semantic conventions:
//! - `POST /chat` (server): the request, a child of the client's W3C `traceparent` if it sent one;
//! - `chat {model}`: one conversation turn (`gen_ai.*`, with the session as
//!   `gen_ai.conversation.id`), around `memory prompt`, `memory recall`, `memory record` and one
//!   client span per provider attempt (each retry and fallback is its own attempt);
//! - `POST` (client): the plugin's upstream HTTP call, which carries `traceparent` to the vendor.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use percent_encoding::percent_decode_str;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::Env;

/// The service name when `OTEL_SERVICE_NAME` is not set.
pub const SERVICE_NAME: &str = "codexcontinue";

/// The variable OpenTelemetry's GenAI instrumentations use for the opt-in to message contents.
pub const CAPTURE_CONTENT_VAR: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// Whether the operator opted in to message contents in traces.
pub fn capture_content(env: &Env) -> bool {
    env.get(CAPTURE_CONTENT_VAR).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `gen_ai.provider.name` for a plugin id: the convention's well-known value where there is one.
pub fn gen_ai_provider(plugin_id: &str) -> &str {
    match plugin_id {
        "azure-openai" => "azure.ai.openai",
        "mistral" => "mistral_ai",
        other => other,
    }
}

/// Renames a span that may have started already (`otel.name` is read only when a span starts).
pub fn rename(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.context().span().update_name(name);
}

/// How long one export may take before the batch is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?} is not supported: use http/protobuf")]
    Protocol(String),
    #[error("the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Where and how traces go, read from the standard `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: e.g. a collector's API key (never logged).
    pub headers: HashMap<String, String>,
}

impl Settings {
    /// `None` when no endpoint is set: tracing stays off.
    pub fn from_env(env: &Env) -> Result<Option<Self>, Error> {
        let endpoint = match (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), env.get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            // The per-signal variable is used as written; the base gets the signal's path.
            (Some(url), _) => url.to_string(),
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or(env.get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(other) = protocol.filter(|p| *p != "http/protobuf") {
            return Err(Error::Protocol(other.to_string()));
        }
        let headers = env
            .get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or(env.get("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(parse_headers)
            .unwrap_or_default();
        let service_name = env.get("OTEL_SERVICE_NAME").unwrap_or(SERVICE_NAME).to_string();
        Ok(Some(Self { endpoint, service_name, headers }))
    }
}

/// `key1=value1,key2=value2`, values percent-decoded (the OTLP exporter spec's format).
fn parse_headers(text: &str) -> HashMap<String, String> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), percent_decode_str(v.trim()).decode_utf8_lossy().into_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The running exporter; dropping it flushes what is queued.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Where spans go, for the startup log line (written once a subscriber exists).
    endpoint: Option<String>,
}

impl Telemetry {
    /// Starts exporting when `env` names an endpoint, and makes W3C Trace Context the
    /// propagation format for incoming and outgoing requests.
    pub fn start(env: &Env) -> Result<Self, Error> {
        let Some(settings) = Settings::from_env(env)? else {
            return Ok(Self::default());
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(&settings.endpoint)
            .with_headers(settings.headers)
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let resource = Resource::builder()
            .with_service_name(settings.service_name)
            .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![Box::new(
            TraceContextPropagator::new(),
        )]));
        Ok(Self { provider: Some(provider), endpoint: Some(settings.endpoint) })
    }

    /// Whether spans are exported.
    pub fn is_on(&self) -> bool {
        self.provider.is_some()
    }

    /// The URL spans are posted to, when exporting.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The layer that turns this crate's spans into OpenTelemetry spans, when exporting.
    pub fn layer<S>(&self) -> Option<impl Layer<S> + use<S>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = self.provider.as_ref()?.tracer(SERVICE_NAME);
        let only_ours = tracing_subscriber::filter::Targets::new().with_target("codexcontinue", tracing::Level::INFO);
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_filter(only_ours),
        )
    }

    /// Exports every finished span now (tests, and before exit).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!("exporting traces: {e}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("exporting traces at exit: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().copied().collect()
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(Settings::from_env(&env(&[("OTEL_SERVICE_NAME", "x")])).unwrap(), None);
    }

    /// The base endpoint gets `/v1/traces`; the per-signal one is used as written and wins.
    #[test]
    fn endpoints_follow_the_exporter_spec() {
        let base = Settings::from_env(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])).unwrap().unwrap();
        assert_eq!(base.endpoint, "http://c:4318/v1/traces");
        assert_eq!(base.service_name, SERVICE_NAME);
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
            ("OTEL_SERVICE_NAME", "gateway"),
        ]);
        let settings = Settings::from_env(&both).unwrap().unwrap();
        assert_eq!((settings.endpoint.as_str(), settings.service_name.as_str()), ("http://t:9/custom", "gateway"));
    }

    #[test]
    fn grpc_is_refused_with_what_to_use() {
        let e = Settings::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("http/protobuf"), "{e}");
    }

    #[test]
    fn headers_are_comma_separated_and_percent_decoded() {
        let headers = parse_headers("api-key=a%20b%3D, x-team = core ,broken");
        assert_eq!(headers.get("api-key").map(String::as_str), Some("a b="));
        assert_eq!(headers.get("x-team").map(String::as_str), Some("core"));
        assert_eq!(headers.len(), 2);
    }
}
