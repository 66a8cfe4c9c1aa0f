//! Subjects and streams: the bus contract in code (docs/contract.md).
//!
//! - `feedback.raw.<channel>`: raw feedback from adapters (stream FEEDBACK_RAW)
//! - `feedback.submit.<channel>`: request/reply submit (core NATS, no stream)
//! - `feedback.evt.<kind>`: intake's facts (stream FEEDBACK)
//! - `ticket.evt.<kind>`: routing's facts (stream TICKETS)
//! - `sla.evt.<kind>`: sla-timer's facts (stream SLA)
//! - `notify.req.<channel>`: requests for senders, with addresses (stream
//!   NOTIFY_REQUESTS)
//! - `notify.evt.<kind>`: notification events, never addresses (stream
//!   NOTIFICATIONS)
//! - `notify.report.<channel>`: senders' delivery reports (stream
//!   NOTIFY_REPORTS, declared by notification)
//! - `analytics.evt.<kind>`: analytics' announcements, e.g. a weekly report
//!   (stream ANALYTICS)
//! - `dlq.<service>`: dead letters (stream DLQ_<SERVICE>, one per service)
//!
//! Each stream has one owner: the service that produces it declares it and
//! keeps its limits; consumers only declare their durable consumers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::BusError;

pub const FEEDBACK_RAW_PREFIX: &str = "feedback.raw";
pub const FEEDBACK_SUBMIT_PREFIX: &str = "feedback.submit";
pub const FEEDBACK_EVT_PREFIX: &str = "feedback.evt";
pub const TICKET_EVT_PREFIX: &str = "ticket.evt";
pub const SLA_EVT_PREFIX: &str = "sla.evt";
pub const NOTIFY_REQ_PREFIX: &str = "notify.req";
pub const NOTIFY_EVT_PREFIX: &str = "notify.evt";
pub const NOTIFY_REPORT_PREFIX: &str = "notify.report";
pub const ANALYTICS_EVT_PREFIX: &str = "analytics.evt";
pub const DLQ_PREFIX: &str = "dlq";

/// A stream, the subjects it captures, and the service that declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
    pub description: &'static str,
    /// The only service that declares and updates the stream.
    pub owner: &'static str,
}

pub const FEEDBACK_RAW: StreamSpec = StreamSpec {
    name: "FEEDBACK_RAW",
    subjects: &["feedback.raw.>"],
    description: "Raw feedback as channel adapters publish it (kesu.v1.RawFeedback)",
    owner: "intake",
};
pub const FEEDBACK: StreamSpec = StreamSpec {
    name: "FEEDBACK",
    subjects: &["feedback.evt.>"],
    description: "Intake's feedback events (kesu.v1.FeedbackEvent)",
    owner: "intake",
};
pub const TICKETS: StreamSpec = StreamSpec {
    name: "TICKETS",
    subjects: &["ticket.evt.>"],
    description: "Routing's ticket events (kesu.v1.TicketEvent)",
    owner: "routing",
};
pub const SLA: StreamSpec = StreamSpec {
    name: "SLA",
    subjects: &["sla.evt.>"],
    description: "SLA clock events (kesu.v1.SlaEvent)",
    owner: "sla-timer",
};
/// Requests for senders: these carry addresses, so only senders read them.
pub const NOTIFY_REQUESTS: StreamSpec = StreamSpec {
    name: "NOTIFY_REQUESTS",
    subjects: &["notify.req.>"],
    description: "Notification requests for senders, with addresses (kesu.v1.NotificationRequest)",
    owner: "notification",
};
/// What happened to notifications, without addresses.
pub const NOTIFICATIONS: StreamSpec = StreamSpec {
    name: "NOTIFICATIONS",
    subjects: &["notify.evt.>"],
    description: "Notification events, without addresses (kesu.v1.NotificationEvent)",
    owner: "notification",
};

/// Senders' delivery reports (`notify.report.<channel>`), without addresses.
pub const NOTIFY_REPORTS: StreamSpec = StreamSpec {
    name: "NOTIFY_REPORTS",
    subjects: &["notify.report.>"],
    description: "Senders' delivery reports, without addresses (kesu.v1.DeliveryReport)",
    owner: "notification",
};

/// Analytics' announcements (reports published), without personal data.
pub const ANALYTICS: StreamSpec = StreamSpec {
    name: "ANALYTICS",
    subjects: &["analytics.evt.>"],
    description: "Analytics events: reports published (kesu.v1.AnalyticsEvent)",
    owner: "analytics",
};

/// The event streams, in dependency order (dead-letter streams are per
/// service: [`dead_letters`]).
pub const ALL_STREAMS: [StreamSpec; 8] =
    [FEEDBACK_RAW, FEEDBACK, TICKETS, SLA, NOTIFY_REQUESTS, NOTIFICATIONS, NOTIFY_REPORTS, ANALYTICS];

/// The streams `service` owns, its dead-letter stream included.
pub fn owned_by(service: &str) -> Vec<StreamSpec> {
    let mut owned: Vec<StreamSpec> = ALL_STREAMS.iter().copied().filter(|s| s.owner == service).collect();
    owned.push(dead_letters(service));
    owned
}

/// The dead-letter stream of one service: `DLQ_<SERVICE>` capturing
/// `dlq.<service>`, declared by that service.
pub fn dead_letters(service: &str) -> StreamSpec {
    static SPECS: Mutex<Option<HashMap<String, StreamSpec>>> = Mutex::new(None);
    let mut specs = SPECS.lock().expect("dead-letter spec cache poisoned");
    *specs.get_or_insert_with(HashMap::new).entry(service.to_string()).or_insert_with(|| {
        // Leaked once per service name: stream specs are static everywhere else.
        let name: &'static str =
            Box::leak(format!("{DLQ_STREAM_PREFIX}{}", service.to_ascii_uppercase().replace(['-', '.'], "_")).into());
        let subject: &'static str = Box::leak(dlq(service).into());
        let subjects: &'static [&'static str] = Box::leak(vec![subject].into_boxed_slice());
        let owner: &'static str = Box::leak(service.to_string().into());
        StreamSpec {
            name,
            subjects,
            description: "Dead letters: original bytes and headers plus Kesu-Dlq-* headers",
            owner,
        }
    })
}

/// Dead-letter streams are named `DLQ_<SERVICE>`.
pub const DLQ_STREAM_PREFIX: &str = "DLQ_";

/// Room kept below the server's max payload for the headers a dead letter
/// adds to the original: an input message at the stream's limit can always
/// be dead-lettered.
pub const DEAD_LETTER_HEADER_ROOM: i64 = 16 * 1024;

pub fn raw_feedback(channel_token: &str) -> String {
    format!("{FEEDBACK_RAW_PREFIX}.{channel_token}")
}

pub fn submit_feedback(channel_token: &str) -> String {
    format!("{FEEDBACK_SUBMIT_PREFIX}.{channel_token}")
}

pub fn feedback_event(kind: &str) -> String {
    format!("{FEEDBACK_EVT_PREFIX}.{kind}")
}

pub fn ticket_event(kind: &str) -> String {
    format!("{TICKET_EVT_PREFIX}.{kind}")
}

pub fn analytics_event(kind: &str) -> String {
    format!("{ANALYTICS_EVT_PREFIX}.{kind}")
}

pub fn sla_event(kind: &str) -> String {
    format!("{SLA_EVT_PREFIX}.{kind}")
}

pub fn notify_request(channel: &str) -> String {
    format!("{NOTIFY_REQ_PREFIX}.{channel}")
}

pub fn notify_event(kind: &str) -> String {
    format!("{NOTIFY_EVT_PREFIX}.{kind}")
}

pub fn notify_report(channel: &str) -> String {
    format!("{NOTIFY_REPORT_PREFIX}.{channel}")
}

pub fn dlq(service: &str) -> String {
    format!("{DLQ_PREFIX}.{service}")
}

/// Whether `subject` is captured by `pattern` (`*` one token, `>` the rest).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for want in pattern.split('.') {
        match (want, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (want, Some(got)) if want == got => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// The last token of a subject (`feedback.raw.web` → `web`).
pub fn last_token(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or(subject)
}

/// Limits applied to every stream.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// How long messages are kept (limits retention).
    pub max_age: Duration,
    /// JetStream de-duplication window for Nats-Msg-Id.
    pub duplicate_window: Duration,
    pub replicas: usize,
    /// How long dead letters are kept: longer than everything else, so
    /// there is time to look at them and replay them.
    pub dlq_max_age: Duration,
    /// Largest message an event stream accepts (the server's max payload
    /// less [`DEAD_LETTER_HEADER_ROOM`]); -1 for the server's limit.
    pub max_message_size: i32,
    /// Streams kept for a time of their own instead of `max_age` (stream
    /// name, max age): notification keeps `NOTIFY_REQUESTS`, which carries
    /// addresses, only as long as delivery needs.
    pub max_age_of: Vec<(&'static str, Duration)>,
    /// Whether event streams accept atomic batches (`allow_atomic`): set
    /// when the server is new enough ([`crate::server_version::ATOMIC_BATCHES`]).
    pub atomic_batches: bool,
}

impl StreamSettings {
    /// How long `stream`'s messages are kept.
    pub fn max_age_for(&self, stream: &str) -> Duration {
        if stream.starts_with(DLQ_STREAM_PREFIX) {
            return self.dlq_max_age;
        }
        self.max_age_of.iter().find(|(name, _)| *name == stream).map_or(self.max_age, |(_, age)| *age)
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            dlq_max_age: Duration::from_secs(30 * 24 * 3600),
            max_message_size: -1,
            max_age_of: Vec::new(),
            atomic_batches: false,
        }
    }
}

fn stream_config(spec: &StreamSpec, settings: &StreamSettings) -> stream::Config {
    let dead_letters = spec.name.starts_with(DLQ_STREAM_PREFIX);
    stream::Config {
        name: spec.name.to_string(),
        subjects: spec.subjects.iter().map(|s| s.to_string()).collect(),
        description: Some(spec.description.to_string()),
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: settings.max_age_for(spec.name),
        max_message_size: if dead_letters { -1 } else { settings.max_message_size },
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        // Dead letters are published one by one; event streams take the
        // outbox relay's batches.
        allow_atomic_publish: settings.atomic_batches && !dead_letters,
        ..Default::default()
    }
}

/// Creates the stream or updates the limits that changed; returns whether
/// the stream, as the server has it, accepts atomic batches.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    spec: &StreamSpec,
    settings: &StreamSettings,
) -> Result<bool, BusError> {
    let err = |e: &dyn std::fmt::Display| BusError::Stream { stream: spec.name.to_string(), error: e.to_string() };
    let wanted = stream_config(spec, settings);
    match js.get_stream(spec.name).await {
        Ok(mut existing) => {
            let info = existing.info().await.map_err(|e| err(&e))?;
            let have = &info.config;
            // Never switched off: in a cluster of mixed versions a replica
            // connected to an older node would otherwise turn it off for
            // replicas on newer ones.
            let atomic = wanted.allow_atomic_publish || have.allow_atomic_publish;
            let differs = have.subjects != wanted.subjects
                || have.max_age != wanted.max_age
                || have.duplicate_window != wanted.duplicate_window
                || have.max_message_size != wanted.max_message_size
                || have.description != wanted.description
                || have.allow_atomic_publish != atomic;
            if differs {
                let mut update = have.clone();
                update.subjects = wanted.subjects.clone();
                update.max_age = wanted.max_age;
                update.duplicate_window = wanted.duplicate_window;
                update.max_message_size = wanted.max_message_size;
                update.description = wanted.description.clone();
                update.allow_atomic_publish = atomic;
                let updated = js.update_stream(update).await.map_err(|e| err(&e))?;
                tracing::info!(stream = spec.name, "stream limits updated");
                return Ok(updated.config.allow_atomic_publish);
            }
            Ok(have.allow_atomic_publish)
        }
        Err(_) => match js.create_stream(wanted).await {
            Ok(created) => Ok(created.cached_info().config.allow_atomic_publish),
            // Another replica created it between our get and create.
            Err(e) if js.get_stream(spec.name).await.is_ok() => {
                tracing::debug!(stream = spec.name, error = %e, "stream created concurrently");
                let mut stream = js.get_stream(spec.name).await.map_err(|e| err(&e))?;
                Ok(stream.info().await.map_err(|e| err(&e))?.config.allow_atomic_publish)
            }
            Err(e) if e.to_string().contains("overlap") => Err(err(&format!(
                "{e}: another stream captures {:?}; streams of kesu before 0.2 (NOTIFY, DLQ) must be removed once \
                 drained (`nats stream rm NOTIFY`, `nats stream rm DLQ`), see docs/contract.md",
                spec.subjects
            ))),
            Err(e) => Err(err(&e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_nats_does() {
        assert!(matches("ticket.evt.>", "ticket.evt.created"));
        assert!(matches("ticket.evt.>", "ticket.evt.a.b"));
        assert!(!matches("ticket.evt.>", "ticket.evt"));
        assert!(!matches("ticket.evt.>", "ticket.evtx.created"));
        assert!(matches("dlq.routing", "dlq.routing"));
        assert!(!matches("dlq.routing", "dlq.routing.x"));
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.b.d"));
    }
}
