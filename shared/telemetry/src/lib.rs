//! Telemetry every service shares: `tracing` logs (JSON in production,
//! pretty in a terminal), OpenTelemetry traces exported over OTLP when an
//! endpoint is configured, W3C trace context carried across NATS in the
//! `traceparent` header, and Prometheus metrics.
//!
//! Personal data never goes into logs, spans or metric labels: the domain
//! types print masked, and nothing here records message payloads.

pub mod metrics;
pub mod propagation;

use std::io::IsTerminal;
use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter};

pub use metrics::MetricsRegistry;
pub use propagation::{
    current_traceparent, new_traceparent, set_parent_from_traceparent, set_spans_exported, spans_exported, trace_id_of,
};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
    /// Pretty on a terminal, JSON otherwise.
    Auto,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "auto" => Ok(LogFormat::Auto),
            _ => Err(format!("unknown log format {s:?} (json, pretty or auto)")),
        }
    }
}

/// Telemetry settings of a process.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of traces, e.g. "kesu-intake" (`kesu intake`), "kesu" (`kesu all`).
    pub service_name: String,
    pub log_format: LogFormat,
    /// An `EnvFilter` directive such as "info,kesu=debug".
    pub log_filter: String,
    /// OTLP/gRPC endpoint (e.g. "http://otel-collector:4317"); none: traces
    /// are still created and propagated, but not exported.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("log filter {0:?} is invalid: {1}")]
    Filter(String, String),
    #[error("OTLP exporter for {0:?} could not be built: {1}")]
    Exporter(String, String),
    #[error("a global subscriber is already installed")]
    AlreadyInstalled,
}

/// Flushes and shuts down trace export when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber, tracer provider and propagator.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    propagation::set_spans_exported(config.otlp_endpoint.is_some());
    let provider = tracer_provider(&config.service_name, config.otlp_endpoint.as_deref())?;
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| TelemetryError::Filter(config.log_filter.clone(), e.to_string()))?;
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer().json().with_current_span(true).with_span_list(false).boxed()
    } else {
        tracing_subscriber::fmt::layer().compact().boxed()
    };
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(config.service_name.clone()))
        .with_filter(LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard { provider })
}

/// For tests: installs once per process a subscriber that creates real
/// trace ids (so propagation can be checked) and logs warnings to the test
/// output (`KESU_TEST_LOG` overrides the filter).
pub fn init_for_tests() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Tests check propagation through real spans.
        propagation::set_spans_exported(true);
        let provider = SdkTracerProvider::builder().build();
        let filter = EnvFilter::try_new(std::env::var("KESU_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .unwrap_or_else(|_| EnvFilter::new("warn"));
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_test_writer().compact().with_filter(filter))
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("kesu-tests"))
                    .with_filter(LevelFilter::INFO),
            )
            .try_init();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider);
    });
}

fn tracer_provider(service: &str, endpoint: Option<&str>) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_string()).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match endpoint {
        None => builder,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| TelemetryError::Exporter(endpoint.to_string(), e.to_string()))?;
            builder.with_batch_exporter(exporter)
        }
    };
    Ok(builder.build())
}
