//! Prometheus metrics: one registry per process, served as text on
//! `/metrics`. Labels never carry personal data or unbounded ids.

use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

/// The process's metric registry, shared by the components that register
/// into it at start-up and the HTTP endpoint that encodes it.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Registry>>,
}

impl MetricsRegistry {
    /// A registry whose metric names start with `prefix` (e.g. "kesu").
    pub fn with_prefix(prefix: &str) -> Self {
        Self { inner: Arc::new(Mutex::new(Registry::with_prefix(prefix))) }
    }

    /// Registers through a closure (a `Registry` needs `&mut`).
    pub fn register<F: FnOnce(&mut Registry)>(&self, f: F) {
        f(&mut self.inner.lock().expect("metrics lock poisoned"));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.inner.lock().expect("metrics lock poisoned");
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRegistry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn encodes_registered_metrics() {
        let registry = MetricsRegistry::with_prefix("kesu");
        let counter: Counter = Counter::default();
        registry.register(|r| r.register("things", "Things seen", counter.clone()));
        counter.inc();
        let text = registry.encode();
        assert!(text.contains("kesu_things_total 1"), "{text}");
    }
}
