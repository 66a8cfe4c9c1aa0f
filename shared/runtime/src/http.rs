//! The HTTP side of every service: `/healthz` (the process runs),
//! `/readyz` (it can do its work: NATS connected, database answering,
//! consumers declared), `/metrics` (Prometheus text).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kesu_bus::Bus;
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;

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

    /// Every check and whether it passes.
    pub async fn report(&self) -> BTreeMap<String, bool> {
        let mut report = self.conditions.lock().expect("readiness lock poisoned").clone();
        report.insert("nats".into(), self.bus.is_connected());
        report.insert("database".into(), self.db.ping().await);
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
    let ready = report.values().all(|ok| *ok);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "ready": ready, "checks": report });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string())
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
