//! Outgoing messages and the header convention.

use async_nats::HeaderMap;
use bytes::Bytes;
use kesu_proto::v1::EventMeta;

pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
pub const HEADER_TRACEPARENT: &str = "traceparent";
pub const HEADER_CONTENT_TYPE: &str = "Content-Type";
pub const HEADER_TYPE: &str = "Kesu-Type";
pub const CONTENT_TYPE_PROTOBUF: &str = "application/protobuf";

/// A message to publish: protobuf payload with its id, type and trace.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    /// The event id; JetStream drops a second message with the same id
    /// inside the stream's duplicate window.
    pub msg_id: String,
    /// Fully-qualified protobuf type, e.g. `kesu.v1.FeedbackEvent`.
    pub msg_type: String,
    pub payload: Bytes,
    pub traceparent: Option<String>,
}

impl Outgoing {
    /// Encodes `message` and takes the current trace context.
    pub fn protobuf<M: prost::Message>(
        subject: impl Into<String>,
        msg_id: impl Into<String>,
        msg_type: &str,
        message: &M,
    ) -> Self {
        Self {
            subject: subject.into(),
            msg_id: msg_id.into(),
            msg_type: msg_type.to_string(),
            payload: Bytes::from(message.encode_to_vec()),
            traceparent: kesu_telemetry::current_traceparent(),
        }
    }

    /// The NATS headers of the convention.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, self.msg_id.as_str());
        headers.insert(HEADER_CONTENT_TYPE, CONTENT_TYPE_PROTOBUF);
        headers.insert(HEADER_TYPE, self.msg_type.as_str());
        if let Some(tp) = &self.traceparent {
            headers.insert(HEADER_TRACEPARENT, tp.as_str());
        }
        headers
    }
}

/// The envelope of a new event: a fresh UUIDv7 event id and the current
/// trace context.
pub fn event_meta(
    producer: &str,
    aggregate_id: &str,
    aggregate_version: u64,
    occurred_at: prost_types::Timestamp,
    causation_id: &str,
    correlation_id: &str,
) -> EventMeta {
    EventMeta {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(occurred_at),
        producer: producer.to_string(),
        aggregate_id: aggregate_id.to_string(),
        aggregate_version,
        traceparent: kesu_telemetry::current_traceparent().unwrap_or_default(),
        causation_id: causation_id.to_string(),
        correlation_id: correlation_id.to_string(),
    }
}

/// A header value safe to send: one line, bounded length.
pub fn header_safe(text: &str, max: usize) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_single_line_and_bounded() {
        assert_eq!(header_safe("a\r\nb", 100), "a  b");
        let long = "错".repeat(100);
        let safe = header_safe(&long, 10);
        assert!(safe.len() <= 10 + '…'.len_utf8());
    }
}
