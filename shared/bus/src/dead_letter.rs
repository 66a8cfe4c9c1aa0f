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

/// Publishes the original bytes and headers to `dlq.<service>`, with the
/// error and where it came from in `Kesu-Dlq-*` headers.
pub async fn dead_letter(bus: &Bus, consumer: &str, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
    let mut headers = HeaderMap::new();
    for (name, values) in delivery.headers.iter().flat_map(|h| h.iter()) {
        let name: &str = name.as_ref();
        // Publish expectations and stream directives of the original would
        // apply to the dead letter (and fail it): keep them under another name.
        let lower = name.to_ascii_lowercase();
        let kept = if lower == "nats-msg-id" {
            DLQ_ORIGINAL_MSG_ID.to_string()
        } else if lower.starts_with("nats-expected") || lower == "nats-rollup" || lower == "nats-ttl" {
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
    let subject = crate::subjects::dlq(bus.service());
    let ack = bus
        .jetstream()
        .publish_with_headers(subject.clone(), headers, delivery.payload.clone())
        .await
        .map_err(|e| BusError::Publish { subject: subject.clone(), error: e.to_string() })?;
    ack.await.map_err(|e| BusError::Publish { subject, error: e.to_string() })?;
    bus.metrics().published(&crate::subjects::dlq(bus.service()));
    Ok(())
}
