//! Subjects and streams: the bus contract in code (docs/contract.md).
//!
//! - `feedback.raw.<channel>`: raw feedback from adapters (stream FEEDBACK_RAW)
//! - `feedback.submit.<channel>`: request/reply submit (core NATS, no stream)
//! - `feedback.evt.<kind>`: intake's facts (stream FEEDBACK)
//! - `ticket.evt.<kind>`: routing's facts (stream TICKETS)
//! - `sla.evt.<kind>`: sla-timer's facts (stream SLA)
//! - `notify.req.<channel>`, `notify.evt.<kind>`: notification (stream NOTIFY)
//! - `dlq.<service>`: dead letters (stream DLQ)

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
pub const DLQ_PREFIX: &str = "dlq";

/// A stream and the subjects it captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
    pub description: &'static str,
}

pub const FEEDBACK_RAW: StreamSpec = StreamSpec {
    name: "FEEDBACK_RAW",
    subjects: &["feedback.raw.>"],
    description: "Raw feedback as channel adapters publish it (kesu.v1.RawFeedback)",
};
pub const FEEDBACK: StreamSpec = StreamSpec {
    name: "FEEDBACK",
    subjects: &["feedback.evt.>"],
    description: "Intake's feedback events (kesu.v1.FeedbackEvent)",
};
pub const TICKETS: StreamSpec = StreamSpec {
    name: "TICKETS",
    subjects: &["ticket.evt.>"],
    description: "Routing's ticket events (kesu.v1.TicketEvent)",
};
pub const SLA: StreamSpec =
    StreamSpec { name: "SLA", subjects: &["sla.evt.>"], description: "SLA clock events (kesu.v1.SlaEvent)" };
pub const NOTIFY: StreamSpec = StreamSpec {
    name: "NOTIFY",
    subjects: &["notify.req.>", "notify.evt.>"],
    description: "Notification requests for senders and delivery events",
};
pub const DLQ: StreamSpec = StreamSpec {
    name: "DLQ",
    subjects: &["dlq.>"],
    description: "Dead letters: original bytes and headers plus Kesu-Dlq-* headers",
};

/// Every stream, in dependency order.
pub const ALL_STREAMS: [StreamSpec; 6] = [FEEDBACK_RAW, FEEDBACK, TICKETS, SLA, NOTIFY, DLQ];

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

pub fn sla_event(kind: &str) -> String {
    format!("{SLA_EVT_PREFIX}.{kind}")
}

pub fn notify_request(channel: &str) -> String {
    format!("{NOTIFY_REQ_PREFIX}.{channel}")
}

pub fn notify_event(kind: &str) -> String {
    format!("{NOTIFY_EVT_PREFIX}.{kind}")
}

pub fn dlq(service: &str) -> String {
    format!("{DLQ_PREFIX}.{service}")
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
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            dlq_max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

fn stream_config(spec: &StreamSpec, settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: spec.name.to_string(),
        subjects: spec.subjects.iter().map(|s| s.to_string()).collect(),
        description: Some(spec.description.to_string()),
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: if spec.name == DLQ.name { settings.dlq_max_age } else { settings.max_age },
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    spec: &StreamSpec,
    settings: &StreamSettings,
) -> Result<(), BusError> {
    let err = |e: &dyn std::fmt::Display| BusError::Stream { stream: spec.name.to_string(), error: e.to_string() };
    let wanted = stream_config(spec, settings);
    match js.get_stream(spec.name).await {
        Ok(mut existing) => {
            let info = existing.info().await.map_err(|e| err(&e))?;
            let have = &info.config;
            let differs = have.subjects != wanted.subjects
                || have.max_age != wanted.max_age
                || have.duplicate_window != wanted.duplicate_window
                || have.description != wanted.description;
            if differs {
                let mut update = have.clone();
                update.subjects = wanted.subjects.clone();
                update.max_age = wanted.max_age;
                update.duplicate_window = wanted.duplicate_window;
                update.description = wanted.description.clone();
                js.update_stream(update).await.map_err(|e| err(&e))?;
                tracing::info!(stream = spec.name, "stream limits updated");
            }
            Ok(())
        }
        Err(_) => match js.create_stream(wanted).await {
            Ok(_) => Ok(()),
            // Another replica created it between our get and create.
            Err(e) if js.get_stream(spec.name).await.is_ok() => {
                tracing::debug!(stream = spec.name, error = %e, "stream created concurrently");
                Ok(())
            }
            Err(e) => Err(err(&e)),
        },
    }
}
