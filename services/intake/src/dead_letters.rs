//! Intake's dead letters (`DLQ_INTAKE`): what the raw-feedback consumer
//! could not take (undecodable bytes; a database down for every delivery).
//! Their payload may hold personal data, so it is sealed with the contact
//! key in the stream (`Kesu-Dlq-Sealed: contact-key`); only
//! `ListDeadLetters` (admins, audited as a clear read) opens it, and
//! `ReplayDeadLetter` takes the original through intake again — a
//! submission that still cannot be taken is kept as rejected (and listed by
//! `ListRejected`) — then removes the dead letter.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream;
use kesu_bus::dead_letter::{
    DLQ_DELIVERIES, DLQ_ERROR, DLQ_SEALED, DLQ_SEQUENCE, DLQ_STREAM, DLQ_SUBJECT, DeadLetterSeal,
};
use kesu_domain::ContactKey;
use kesu_proto::v1::{DeadLetter, RawFeedback, SubmitFeedbackResponse};
use prost::Message;

use crate::error::Error;
use crate::pipeline::{Intake, Path, Submission};

/// The `Kesu-Dlq-Sealed` value of intake's dead letters.
pub const SCHEME: &str = "contact-key";

/// The seal intake's raw-feedback consumer puts on its dead letters.
pub fn seal(key: ContactKey) -> DeadLetterSeal {
    DeadLetterSeal { scheme: SCHEME, seal: Arc::new(move |bytes| key.seal_bytes(bytes)) }
}

/// Reads and replays intake's dead letters.
pub struct DeadLetters {
    js: jetstream::Context,
    stream: String,
}

impl DeadLetters {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js, stream: kesu_bus::subjects::dead_letters(crate::SERVICE).name.to_string() }
    }

    /// Up to `limit` dead letters from sequence `from` on, and the sequence
    /// to go on from (0: no more).
    pub async fn list(&self, key: &ContactKey, from: u64, limit: usize) -> Result<(Vec<DeadLetter>, u64), Error> {
        let Ok(mut stream) = self.js.get_stream(&self.stream).await else { return Ok((Vec::new(), 0)) };
        let info = stream.info().await.map_err(|e| Error::Unavailable(format!("{}: {e}", self.stream)))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut out = Vec::new();
        let mut seq = from.max(first);
        while seq <= last && out.len() < limit {
            if let Some(letter) = self.get(&stream, key, seq).await? {
                out.push(letter);
            }
            seq += 1;
        }
        let next = if seq <= last { seq } else { 0 };
        Ok((out, next))
    }

    async fn get(
        &self,
        stream: &jetstream::stream::Stream,
        key: &ContactKey,
        seq: u64,
    ) -> Result<Option<DeadLetter>, Error> {
        let Ok(msg) = stream.get_raw_message(seq).await else { return Ok(None) };
        let headers: HashMap<String, String> = msg
            .headers
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| (name.to_string(), v.to_string())))
            .collect();
        let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
        let original = if headers.contains_key(DLQ_SEALED) {
            key.open_bytes(&msg.payload).map_err(|_| Error::Sealed(seq))?
        } else {
            msg.payload.to_vec()
        };
        Ok(Some(DeadLetter {
            sequence: seq,
            dead_lettered_at: Some(prost_types::Timestamp {
                seconds: msg.time.unix_timestamp(),
                nanos: msg.time.nanosecond() as i32,
            }),
            original_subject: header(DLQ_SUBJECT),
            original_stream: header(DLQ_STREAM),
            original_sequence: header(DLQ_SEQUENCE).parse().unwrap_or_default(),
            error: header(DLQ_ERROR),
            deliveries: header(DLQ_DELIVERIES).parse().unwrap_or_default(),
            headers,
            original,
        }))
    }

    /// Takes dead letter `seq` through intake again and removes it.
    pub async fn replay(&self, intake: &Intake, seq: u64) -> Result<SubmitFeedbackResponse, Error> {
        let stream = self.js.get_stream(&self.stream).await.map_err(|_| Error::NotFound("no such dead letter"))?;
        let letter = self.get(&stream, intake.key(), seq).await?.ok_or(Error::NotFound("no such dead letter"))?;
        let raw = RawFeedback::decode(letter.original.as_slice()).map_err(|e| e.to_string());
        let subject = if letter.original_subject.is_empty() { "replay" } else { &letter.original_subject };
        let submission =
            Submission { subject, original: &letter.original, raw, inbox: None, causation: "", path: Path::Stream };
        let response = intake
            .submit(submission)
            .await
            .map_err(Error::Submission)?
            .ok_or(Error::Unavailable("the replay was not answered".into()))?;
        stream.delete_message(seq).await.map_err(|e| Error::Unavailable(format!("removing dead letter {seq}: {e}")))?;
        tracing::info!(sequence = seq, "dead letter replayed");
        Ok(response)
    }
}
