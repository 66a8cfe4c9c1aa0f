//! The HTTP side of every service: `/healthz` (the process runs; never
//! touches the database), `/readyz` (it can do its work: NATS connected,
//! database answering, consumers declared), `/metrics` (Prometheus text).
//!
//! Probes answer promptly under full load: every live check is bounded by
//! [`CHECK_TIMEOUT`], and a check that does not answer in time is reported
//! not ready, with the reason, instead of holding the probe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kesu_bus::Bus;
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;

/// How long a live readiness check may take before it counts as failed
/// (well inside the usual probe timeouts of 1–2 s).
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// What `/readyz` answers: every check and whether it passes, and why
/// those that fail do.
#[derive(Debug, Clone, Default)]
pub struct ReadinessReport {
    pub checks: BTreeMap<String, bool>,
    pub problems: BTreeMap<String, String>,
}

impl ReadinessReport {
    pub fn ready(&self) -> bool {
        self.checks.values().all(|ok| *ok)
    }
}

/// Named readiness conditions plus live checks of NATS and the database.
#[derive(Clone, Debug)]
pub struct Readiness {
    conditions: Arc<Mutex<BTreeMap<String, bool>>>,
    bus: Bus,
    db: Database,
}

impl Readiness {
    pub fn new(bus: Bus, db: Database) -> Self {
        Self { conditions: Arc::default(), bus, db }
    }

    pub fn set(&self, name: &str, ready: bool) {
        self.conditions.lock().expect("readiness lock poisoned").insert(name.to_string(), ready);
    }

    /// Every check and whether it passes; none takes longer than [`CHECK_TIMEOUT`].
    pub async fn report(&self) -> ReadinessReport {
        let mut report = ReadinessReport {
            checks: self.conditions.lock().expect("readiness lock poisoned").clone(),
            problems: BTreeMap::new(),
        };
        for (name, ok) in &report.checks {
            if !ok {
                report.problems.insert(name.clone(), "not started".into());
            }
        }
        let nats = self.bus.is_connected();
        report.checks.insert("nats".into(), nats);
        if !nats {
            report.problems.insert("nats".into(), "not connected".into());
        }
        // The database may be busy (a backlog holding every connection, a
        // long write): a probe must not queue behind it.
        let database = match tokio::time::timeout(CHECK_TIMEOUT, self.db.ping()).await {
            Ok(true) => None,
            Ok(false) => Some("does not answer".to_string()),
            Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        report.checks.insert("database".into(), database.is_none());
        if let Some(problem) = database {
            report.problems.insert("database".into(), problem);
        }
        report
    }
}

#[derive(Clone)]
struct HttpState {
    readiness: Readiness,
    metrics: MetricsRegistry,
}

pub(crate) fn router(readiness: Readiness, metrics: MetricsRegistry, extra: Option<Router>) -> Router {
    let base = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState { readiness, metrics });
    match extra {
        Some(extra) => base.merge(extra),
        None => base,
    }
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let report = state.readiness.report().await;
    let ready = report.ready();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "ready": ready, "checks": report.checks, "problems": report.problems });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string())
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
