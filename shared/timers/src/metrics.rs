//! Timer metrics: fired (on time or late), lateness, parked, window size.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use kesu_telemetry::MetricsRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FiredLabels {
    /// "true" when the timer came due while the service was down.
    pub late: String,
}

#[derive(Clone)]
pub(crate) struct TimerMetrics {
    pub fired: Family<FiredLabels, Counter>,
    pub lateness: Histogram,
    pub parked: Counter,
    pub window: Gauge,
}

impl TimerMetrics {
    pub fn new(registry: &MetricsRegistry) -> Self {
        let metrics = Self {
            fired: Family::default(),
            lateness: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            parked: Counter::default(),
            window: Gauge::default(),
        };
        registry.register(|r| {
            r.register(
                "timers_fired",
                "Durable timers fired, by whether they came due while down",
                metrics.fired.clone(),
            );
            r.register(
                "timers_fire_lateness_seconds",
                "Time from a timer's due instant to its firing",
                metrics.lateness.clone(),
            );
            r.register(
                "timers_parked",
                "Timers whose handler failed for good, kept in kesu_timers_parked",
                metrics.parked.clone(),
            );
            r.register("timers_window", "Due instants of the near window held in memory", metrics.window.clone());
        });
        metrics
    }
}
