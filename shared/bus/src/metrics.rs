//! Bus metrics: messages handled per stream and outcome, handling time,
//! publishes per subject prefix, dead letters, outbox backlog.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use kesu_telemetry::MetricsRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConsumedLabels {
    pub stream: String,
    pub consumer: String,
    /// ok, duplicate, retried, dead_lettered
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StreamLabels {
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SubjectLabels {
    /// The subject without its last token (`feedback.evt`), to bound cardinality.
    pub subject: String,
}

/// Counters and histograms of the bus, registered once per process.
#[derive(Clone)]
pub struct BusMetrics {
    pub(crate) consumed: Family<ConsumedLabels, Counter>,
    pub(crate) handle_seconds: Family<StreamLabels, Histogram>,
    pub(crate) published: Family<SubjectLabels, Counter>,
    pub(crate) outbox_pending: Gauge,
    pub(crate) outbox_published: Counter,
    pub(crate) outbox_errors: Counter,
    pub(crate) outbox_parked: Counter,
}

impl std::fmt::Debug for BusMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusMetrics")
    }
}

impl BusMetrics {
    pub fn new(registry: &MetricsRegistry) -> Self {
        let metrics = Self {
            consumed: Family::default(),
            handle_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
            published: Family::default(),
            outbox_pending: Gauge::default(),
            outbox_published: Counter::default(),
            outbox_errors: Counter::default(),
            outbox_parked: Counter::default(),
        };
        registry.register(|r| {
            r.register("bus_consumed", "Messages handled, by stream, consumer and outcome", metrics.consumed.clone());
            r.register("bus_handle_seconds", "Time to apply one batch of messages", metrics.handle_seconds.clone());
            r.register("bus_published", "Messages published, by subject prefix", metrics.published.clone());
            r.register("outbox_pending", "Outbox rows waiting to be published", metrics.outbox_pending.clone());
            r.register("outbox_published", "Outbox rows published", metrics.outbox_published.clone());
            r.register("outbox_publish_errors", "Failed outbox publish attempts", metrics.outbox_errors.clone());
            r.register(
                "outbox_parked",
                "Outbox rows the broker can never accept, moved to kesu_outbox_parked",
                metrics.outbox_parked.clone(),
            );
        });
        metrics
    }

    pub(crate) fn published(&self, subject: &str) {
        let prefix = subject.rsplit_once('.').map(|(p, _)| p).unwrap_or(subject);
        self.published.get_or_create(&SubjectLabels { subject: prefix.to_string() }).inc();
    }

    pub(crate) fn consumed(&self, stream: &str, consumer: &str, outcome: &str) {
        self.consumed_n(stream, consumer, outcome, 1);
    }

    pub(crate) fn consumed_n(&self, stream: &str, consumer: &str, outcome: &str, n: u64) {
        self.consumed
            .get_or_create(&ConsumedLabels {
                stream: stream.to_string(),
                consumer: consumer.to_string(),
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }
}
