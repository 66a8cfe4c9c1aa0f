//! The dead-letter path: a message that cannot be applied is published to
//! `dlq.<service>` with its original bytes and headers, plus the error and
//! where it came from in `Kesu-Dlq-*` headers, and only then terminated.

use async_nats::HeaderMap;

use crate::consume::Delivery;
use crate::publish::{HEADER_MSG_ID, header_safe};
use crate::{Bus, BusError};

/// Dead-letter headers added to the original ones.
pub const DLQ_ERROR: &str = "Kesu-Dlq-Error";
pub const DLQ_SERVICE: &str = "Kesu-Dlq-Service";
pub const DLQ_CONSUMER: &str = "Kesu-Dlq-Consumer";
pub const DLQ_STREAM: &str = "Kesu-Dlq-Stream";
pub const DLQ_SEQUENCE: &str = "Kesu-Dlq-Sequence";
pub const DLQ_SUBJECT: &str = "Kesu-Dlq-Subject";
pub const DLQ_DELIVERIES: &str = "Kesu-Dlq-Deliveries";
pub const DLQ_ORIGINAL_MSG_ID: &str = "Kesu-Dlq-Original-Msg-Id";
/// Set when the payload is sealed (its value names how): the original
/// bytes are readable only through the owning service.
pub const DLQ_SEALED: &str = "Kesu-Dlq-Sealed";

/// A function sealing bytes.
pub type SealFn = dyn Fn(&[u8]) -> Vec<u8> + Send + Sync;

/// Seals a dead letter's payload (a consumer whose input may hold personal
/// data, e.g. intake's raw feedback, sets one: [`crate::ConsumerSpec::seal_dead_letters`]).
#[derive(Clone)]
pub struct DeadLetterSeal {
    /// The `Kesu-Dlq-Sealed` header's value, e.g. `contact-key`.
    pub scheme: &'static str,
    pub seal: std::sync::Arc<SealFn>,
}

impl std::fmt::Debug for DeadLetterSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeadLetterSeal({})", self.scheme)
    }
}

/// Publishes the original bytes and headers to `dlq.<service>`, with the
/// error and where it came from in `Kesu-Dlq-*` headers.
pub async fn dead_letter(bus: &Bus, consumer: &str, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
    dead_letter_sealed(bus, consumer, delivery, reason, None).await
}

/// As [`dead_letter`], the payload sealed when `seal` is given.
pub async fn dead_letter_sealed(
    bus: &Bus,
    consumer: &str,
    delivery: &Delivery,
    reason: &str,
    seal: Option<&DeadLetterSeal>,
) -> Result<(), BusError> {
    let mut headers = HeaderMap::new();
    for (name, values) in delivery.headers.iter().flat_map(|h| h.iter()) {
        let name: &str = name.as_ref();
        // `Nats-*` headers are directives to the server (publish
        // expectations, rollups, TTLs, atomic batch ids and sequences): they
        // would apply to the dead letter and fail it, so they are kept
        // under another name.
        let lower = name.to_ascii_lowercase();
        let kept = if lower == "nats-msg-id" {
            DLQ_ORIGINAL_MSG_ID.to_string()
        } else if lower.starts_with("nats-") {
            format!("Kesu-Dlq-Original-{name}")
        } else {
            name.to_string()
        };
        for value in values {
            headers.append(kept.as_str(), value.as_str());
        }
    }
    let dlq_id = format!("dlq:{}:{}:{}", bus.service(), delivery.stream, delivery.stream_sequence);
    headers.insert(HEADER_MSG_ID, dlq_id.as_str());
    headers.insert(DLQ_ERROR, header_safe(reason, 2000).as_str());
    headers.insert(DLQ_SERVICE, bus.service());
    headers.insert(DLQ_CONSUMER, consumer);
    headers.insert(DLQ_STREAM, delivery.stream.as_str());
    headers.insert(DLQ_SEQUENCE, delivery.stream_sequence.to_string().as_str());
    headers.insert(DLQ_SUBJECT, delivery.subject.as_str());
    headers.insert(DLQ_DELIVERIES, delivery.delivered.to_string().as_str());
    let payload = match seal {
        Some(seal) => {
            headers.insert(DLQ_SEALED, seal.scheme);
            (seal.seal)(delivery.payload.as_ref()).into()
        }
        None => delivery.payload.clone(),
    };
    let subject = crate::subjects::dlq(bus.service());
    let ack = bus
        .jetstream()
        .publish_with_headers(subject.clone(), headers, payload)
        .await
        .map_err(|e| BusError::Publish { subject: subject.clone(), error: e.to_string() })?;
    ack.await.map_err(|e| BusError::Publish { subject, error: e.to_string() })?;
    bus.metrics().published(&crate::subjects::dlq(bus.service()));
    Ok(())
}
