//! Atomic batch publishing (nats-server 2.12, ADR-50): several messages to
//! one stream stored all or none, with one acknowledgement for the batch.
//!
//! The outbox relay uses it for the rows of one stream: with
//! `sync_interval: always` the server fsyncs a batch a few times instead of
//! once per message (measured on 2.15.1: 1 fsync per single publish, about
//! 4 per batch of 64), which is what bounded the durable configuration.
//!
//! Every message but the last is sent without a reply subject; the last
//! carries `Nats-Batch-Commit: 1` and gets the acknowledgement (or the
//! error: a message id already in the duplicate window rejects the whole
//! batch, error code 10201). A caller that gets an error publishes the
//! messages one by one instead, where duplicates are dropped one by one.

use std::sync::{Arc, RwLock};

use async_nats::header::{NATS_BATCH_COMMIT, NATS_BATCH_ID, NATS_BATCH_SEQUENCE};
use async_nats::jetstream::context::PublishAckFuture;

use crate::subjects::{self, StreamSpec};
use crate::{Bus, BusError, Outgoing};

/// Most messages in one batch: the server's default limit is 1,000.
pub const MAX_BATCH: usize = 1000;

/// Fewest messages worth a batch. The server stages each batch in a store
/// of its own (a directory, its metadata written and fsynced, removed after
/// the commit), a fixed cost about that of a dozen single publishes
/// (measured with nats-server 2.15.1 and `sync_interval: always`: batches
/// of 16 no faster than single publishes, of 64 three times, of 256 six
/// times). Fewer go one by one.
pub const MIN_BATCH: usize = 16;

/// Room below the server's max payload that a message in a batch must
/// leave: the room the event streams' size limit leaves (headers, batch
/// headers). Larger ones go one by one, where a message the server can
/// never take is told apart.
const HEADER_ROOM: usize = crate::subjects::DEAD_LETTER_HEADER_ROOM as usize;

/// The streams this connection declared that accept atomic batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct AtomicStreams(Arc<RwLock<Vec<StreamSpec>>>);

impl AtomicStreams {
    pub(crate) fn record(&self, spec: StreamSpec, accepts: bool) {
        let mut specs = self.0.write().expect("atomic stream list poisoned");
        specs.retain(|s| s.name != spec.name);
        if accepts {
            specs.push(spec);
        }
    }

    fn stream_of(&self, subject: &str) -> Option<&'static str> {
        let specs = self.0.read().expect("atomic stream list poisoned");
        specs.iter().find(|s| s.subjects.iter().any(|p| subjects::matches(p, subject))).map(|s| s.name)
    }
}

impl Bus {
    /// The stream that captures `subject`, if this service declared it and
    /// it accepts atomic batches.
    pub fn atomic_stream(&self, subject: &str) -> Option<&'static str> {
        self.atomic.stream_of(subject)
    }

    /// Whether `msg` is small enough to go in a batch.
    pub fn fits_in_batch(&self, msg: &Outgoing) -> bool {
        msg.payload.len() + HEADER_ROOM <= self.client().server_info().max_payload
    }

    /// Sends `msgs` (2 to [`MAX_BATCH`]; the relay sends at least
    /// [`MIN_BATCH`], all captured by one stream that
    /// accepts atomic batches, each [`Bus::fits_in_batch`]) as one atomic
    /// batch and returns the pending acknowledgement of the whole batch.
    pub async fn publish_atomic(&self, msgs: &[Outgoing]) -> Result<PublishAckFuture, BusError> {
        let Some((last, rest)) = msgs.split_last() else {
            return Err(BusError::Publish { subject: String::new(), error: "empty batch".into() });
        };
        debug_assert!(msgs.len() <= MAX_BATCH, "a batch of {} messages", msgs.len());
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let failed = |msg: &Outgoing, e: &dyn std::fmt::Display| BusError::Publish {
            subject: msg.subject.clone(),
            error: e.to_string(),
        };
        for (i, msg) in rest.iter().enumerate() {
            let mut headers = msg.headers();
            headers.insert(NATS_BATCH_ID, batch_id.as_str());
            headers.insert(NATS_BATCH_SEQUENCE, (i + 1).to_string());
            self.client()
                .publish_with_headers(msg.subject.clone(), headers, msg.payload.clone())
                .await
                .map_err(|e| failed(msg, &e))?;
        }
        let mut headers = last.headers();
        headers.insert(NATS_BATCH_ID, batch_id.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, msgs.len().to_string());
        headers.insert(NATS_BATCH_COMMIT, "1");
        let ack = self
            .jetstream()
            .publish_with_headers(last.subject.clone(), headers, last.payload.clone())
            .await
            .map_err(|e| failed(last, &e))?;
        for msg in msgs {
            self.metrics().published(&msg.subject);
        }
        Ok(ack)
    }
}
