//! W3C trace context across the bus: the `traceparent` header of a message
//! becomes the parent of the span that handles it, and the current span's
//! context is written into every message published.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static SPANS_EXPORTED: AtomicBool = AtomicBool::new(false);

/// Whether spans go anywhere (an OTLP endpoint is configured, or tests look
/// at them). When they do not, the bus makes no span per message and passes
/// the incoming trace context on as it is.
pub fn spans_exported() -> bool {
    SPANS_EXPORTED.load(Ordering::Relaxed)
}

/// Says whether spans go anywhere; `init` sets it from the OTLP endpoint.
/// The benchmark turns it off after the test set-up turned it on, so it
/// measures what production without an exporter runs.
pub fn set_spans_exported(exported: bool) {
    SPANS_EXPORTED.store(exported, Ordering::Relaxed);
}

/// A fresh sampled `traceparent`: a trace that starts here.
pub fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

/// The current span's context as a `traceparent` value; `None` when there
/// is no valid trace (telemetry not installed).
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace in `traceparent` (ignored if malformed).
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace id (32 hex digits) of a `traceparent` value, if well formed.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2) && hex(trace, 32) && hex(span, 16) && hex(flags, 2) && trace != "0".repeat(32)).then_some(trace)
}

/// The `traceparent` to send with an outgoing message: the current span's
/// if there is one, otherwise the incoming one, so a trace continues even in
/// a process without telemetry installed.
pub fn outgoing_traceparent(incoming: Option<&str>) -> Option<String> {
    current_traceparent().or_else(|| incoming.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trace_ids() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id_of(tp), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id_of("garbage"), None);
        assert_eq!(trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
    }

    #[test]
    fn a_child_span_continues_the_incoming_trace() {
        crate::init_for_tests();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = tracing::info_span!("handle");
        set_parent_from_traceparent(&span, tp);
        let out = span.in_scope(current_traceparent).expect("a trace is current");
        assert_eq!(trace_id_of(&out), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_ne!(out, tp, "the child has its own span id");
    }
}
