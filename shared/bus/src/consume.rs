//! Durable pull consumers: receive, hand to the service's handler, ack
//! after the handler committed; retry transient failures with back-off; dead-
//! letter what cannot succeed.
//!
//! Delivery accounting: the server redelivers without limit (max_deliver is
//! enforced here), so a message whose handling kills the process every time
//! is still caught: once it has been delivered more than `max_deliver` times
//! it goes to the dead-letter subject before the handler sees it again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use kesu_config::{ConfigError, Env};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::publish::{HEADER_MSG_ID, HEADER_TRACEPARENT, HEADER_TYPE, header_safe};
use crate::subjects::StreamSpec;
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

/// Why a handler did not apply a message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandleError {
    /// Will never succeed (undecodable, violates the contract): dead-letter now.
    #[error("{0}")]
    Permanent(String),
    /// May succeed later (database busy, dependency down): retry.
    #[error("{0}")]
    Transient(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        HandleError::Transient(format!("database: {e}"))
    }
}

impl From<BusError> for HandleError {
    fn from(e: BusError) -> Self {
        HandleError::Transient(e.to_string())
    }
}

/// A service's reaction to one message. It must be idempotent: claim the
/// message in the inbox inside its transaction.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// What the inbox keys a message on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupKey {
    /// The `Nats-Msg-Id` header (event ids of our own events); falls back to
    /// stream and sequence when absent.
    MessageId,
    /// Stream and sequence: for input whose publishers may reuse ids.
    StreamSequence,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    pub headers: Option<HeaderMap>,
    /// The inbox key (see [`DedupKey`]).
    pub message_id: String,
    pub stream: String,
    pub stream_sequence: u64,
    /// 1 on first delivery.
    pub delivered: u32,
    pub traceparent: Option<String>,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// Decodes the payload; failure is permanent and names the type.
    pub fn decode<M: prost::Message + Default>(&self, type_name: &str) -> Result<M, HandleError> {
        M::decode(self.payload.as_ref())
            .map_err(|e| HandleError::Permanent(format!("payload is not a valid {type_name}: {e}")))
    }
}

/// Tuning of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Redelivery if not acked within this time (progress is signalled while
    /// a handler runs).
    pub ack_wait: Duration,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliver: u32,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    /// Unacknowledged messages the server lets all replicas hold.
    pub max_ack_pending: u32,
    /// First retry delay; doubles per delivery, at most 5 minutes.
    pub retry_delay: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            concurrency: 32,
            max_ack_pending: 1024,
            retry_delay: Duration::from_secs(1),
        }
    }
}

impl ConsumerSettings {
    /// `CONSUMER_ACK_WAIT`, `CONSUMER_MAX_DELIVER`, `CONSUMER_CONCURRENCY`,
    /// `CONSUMER_MAX_ACK_PENDING`, `CONSUMER_RETRY_DELAY`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            ack_wait: env.duration("CONSUMER_ACK_WAIT", d.ack_wait)?,
            max_deliver: env.bounded("CONSUMER_MAX_DELIVER", d.max_deliver.into(), 1, 1000)? as u32,
            concurrency: env.bounded("CONSUMER_CONCURRENCY", d.concurrency as u64, 1, 4096)? as usize,
            max_ack_pending: env.bounded("CONSUMER_MAX_ACK_PENDING", d.max_ack_pending.into(), 1, 1_000_000)? as u32,
            retry_delay: env.duration("CONSUMER_RETRY_DELAY", d.retry_delay)?,
        })
    }
}

/// A durable consumer of one stream.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: StreamSpec,
    /// Durable name: the service's name, shared by its replicas.
    pub durable: String,
    pub filter_subject: Option<String>,
    pub dedup: DedupKey,
    pub settings: ConsumerSettings,
}

impl ConsumerSpec {
    pub fn new(stream: StreamSpec, durable: &str, settings: ConsumerSettings) -> Self {
        Self { stream, durable: durable.to_string(), filter_subject: None, dedup: DedupKey::MessageId, settings }
    }

    pub fn filter(mut self, subject: &str) -> Self {
        self.filter_subject = Some(subject.to_string());
        self
    }

    pub fn dedup(mut self, key: DedupKey) -> Self {
        self.dedup = key;
        self
    }

    /// The inbox's name for this consumer.
    pub fn inbox_name(&self) -> String {
        format!("{}:{}", self.stream.name, self.durable)
    }
}

/// A declared consumer, ready to run.
pub struct Consumer<H> {
    bus: Bus,
    spec: Arc<ConsumerSpec>,
    handler: Arc<H>,
    consumer: PullConsumer,
}

/// What processing needs to know about the consumer as the server has it.
#[derive(Debug, Clone)]
struct Declared {
    /// The server's ack wait: progress is signalled well within it.
    ack_wait: Duration,
    /// When the stream was created: part of stream-sequence inbox keys, so a
    /// re-created stream (sequences restart) is not mistaken for redelivery.
    stream_epoch: i64,
}

/// Declares the durable consumer (idempotent) and returns it ready to run.
/// Fails if a consumer of that name exists with another filter or ack
/// policy (it would deliver the wrong messages, and NATS 2.9 cannot change
/// a filter in place).
pub async fn declare<H: Handler>(bus: &Bus, spec: ConsumerSpec, handler: Arc<H>) -> Result<Consumer<H>, BusError> {
    let consumer = create_consumer(bus, &spec).await?;
    Ok(Consumer { bus: bus.clone(), spec: Arc::new(spec), handler, consumer })
}

fn declared(consumer: &PullConsumer, stream_epoch: i64) -> Declared {
    Declared { ack_wait: consumer.cached_info().config.ack_wait, stream_epoch }
}

async fn create_consumer(bus: &Bus, spec: &ConsumerSpec) -> Result<PullConsumer, BusError> {
    let err = |e: &dyn std::fmt::Display| BusError::Consumer {
        stream: spec.stream.name.to_string(),
        consumer: spec.durable.clone(),
        error: e.to_string(),
    };
    let stream = bus.jetstream().get_stream(spec.stream.name).await.map_err(|e| err(&e))?;
    let config = pull::Config {
        durable_name: Some(spec.durable.clone()),
        description: Some(format!("kesu {} consuming {}", spec.durable, spec.stream.name)),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: spec.settings.ack_wait,
        // Unlimited on the server; the limit is enforced in `process`, which
        // dead-letters instead of leaving the message stranded.
        max_deliver: -1,
        filter_subject: spec.filter_subject.clone().unwrap_or_default(),
        max_ack_pending: spec.settings.max_ack_pending.into(),
        ..Default::default()
    };
    let wanted_filter = config.filter_subject.clone();
    let consumer = match stream.create_consumer(config).await {
        Ok(consumer) => consumer,
        Err(create_error) => match stream.get_consumer::<pull::Config>(&spec.durable).await {
            Ok(consumer) => {
                tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, error = %create_error,
                    "consumer exists with other settings; using the server's");
                consumer
            }
            Err(_) => return Err(err(&create_error)),
        },
    };
    let have = &consumer.cached_info().config;
    if have.filter_subject != wanted_filter || have.ack_policy != AckPolicy::Explicit {
        return Err(err(&format!(
            "it exists with filter {:?} and ack policy {:?}, but this service needs filter {wanted_filter:?} and explicit \
             acks; delete it (`nats consumer rm {} {}`) and restart so it is declared afresh",
            have.filter_subject, have.ack_policy, spec.stream.name, spec.durable
        )));
    }
    Ok(consumer)
}

async fn stream_epoch(bus: &Bus, spec: &ConsumerSpec) -> i64 {
    match bus.jetstream().get_stream(spec.stream.name).await {
        Ok(mut stream) => stream.info().await.map(|i| i.created.unix_timestamp()).unwrap_or_default(),
        Err(_) => 0,
    }
}

impl<H: Handler> Consumer<H> {
    /// Pulls and handles messages until `shutdown`, then lets in-flight
    /// handlers finish (they ack or nak as usual) and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let Consumer { bus, spec, handler, mut consumer } = self;
        let mut info = Arc::new(declared(&consumer, stream_epoch(&bus, &spec).await));
        let concurrency = spec.settings.concurrency;
        let semaphore = Arc::new(Semaphore::new(concurrency));
        let mut tasks = JoinSet::new();
        'outer: loop {
            let mut messages = match consumer.stream().max_messages_per_batch(concurrency.min(256)).messages().await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, error = %e, "cannot pull; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'outer,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    if let Ok(c) = create_consumer(&bus, &spec).await {
                        info = Arc::new(declared(&c, stream_epoch(&bus, &spec).await));
                        consumer = c;
                    }
                    continue 'outer;
                }
            };
            let mut consecutive_errors = 0u32;
            loop {
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => break 'outer,
                    p = semaphore.clone().acquire_owned() => p.expect("semaphore is never closed"),
                };
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break 'outer,
                    next = messages.next() => next,
                };
                while tasks.try_join_next().is_some() {}
                match next {
                    Some(Ok(msg)) => {
                        consecutive_errors = 0;
                        let (bus, spec, handler, info) = (bus.clone(), spec.clone(), handler.clone(), info.clone());
                        tasks.spawn(async move {
                            process(&bus, &spec, &info, handler.as_ref(), msg).await;
                            drop(permit);
                        });
                    }
                    Some(Err(e)) => {
                        consecutive_errors += 1;
                        tracing::debug!(consumer = %spec.durable, error = %e, "pull stream error");
                        if consecutive_errors >= 10 {
                            tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, error = %e,
                                "pull stream keeps failing; re-declaring the consumer");
                            if let Ok(c) = create_consumer(&bus, &spec).await {
                                info = Arc::new(declared(&c, stream_epoch(&bus, &spec).await));
                                consumer = c;
                            }
                            continue 'outer;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    None => {
                        // The pull stream ended (consumer deleted, connection
                        // closed): wait a little, declare again, pull again.
                        tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, "pull stream ended; re-declaring");
                        tokio::select! {
                            _ = shutdown.cancelled() => break 'outer,
                            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        }
                        if let Ok(c) = create_consumer(&bus, &spec).await {
                            info = Arc::new(declared(&c, stream_epoch(&bus, &spec).await));
                            consumer = c;
                        }
                        continue 'outer;
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// The delivery, or `None` when the message carries no JetStream metadata
/// (then it cannot be keyed in the inbox and is handed back).
fn delivery_of(msg: &jetstream::Message, spec: &ConsumerSpec, info: &Declared) -> Option<Delivery> {
    let meta = msg.info().ok()?;
    let (stream, sequence, delivered) = (meta.stream.to_string(), meta.stream_sequence, meta.delivered.max(1) as u32);
    let header = |name: &str| msg.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
    let message_id = match spec.dedup {
        DedupKey::MessageId => header(HEADER_MSG_ID).filter(|id| !id.is_empty()),
        DedupKey::StreamSequence => None,
    }
    .unwrap_or_else(|| format!("{stream}@{}:{sequence}", info.stream_epoch));
    Some(Delivery {
        subject: msg.subject.to_string(),
        payload: msg.payload.clone(),
        headers: msg.headers.clone(),
        message_id,
        stream,
        stream_sequence: sequence,
        delivered,
        traceparent: header(HEADER_TRACEPARENT),
    })
}

async fn process<H: Handler>(bus: &Bus, spec: &ConsumerSpec, info: &Declared, handler: &H, msg: jetstream::Message) {
    let Some(delivery) = delivery_of(&msg, spec, info) else {
        tracing::error!(subject = %msg.subject, "message without JetStream metadata; handing it back");
        let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
        return;
    };
    let span = tracing::info_span!(
        "consume",
        service = bus.service(),
        stream = %delivery.stream,
        subject = %delivery.subject,
        seq = delivery.stream_sequence,
        delivered = delivery.delivered,
        msg_type = delivery.header(HEADER_TYPE).unwrap_or(""),
    );
    if let Some(tp) = &delivery.traceparent {
        kesu_telemetry::set_parent_from_traceparent(&span, tp);
    }
    async {
        let metrics = bus.metrics();
        let max = spec.settings.max_deliver;
        if delivery.delivered > max {
            let reason = format!(
                "delivered {} times without being acknowledged (the service stopped while handling it each time)",
                delivery.delivered
            );
            settle_dead_letter(bus, spec, &msg, &delivery, &reason).await;
            return;
        }
        let started = Instant::now();
        let result = with_progress(handler.handle(&delivery), &msg, info.ack_wait).await;
        metrics
            .handle_seconds
            .get_or_create(&crate::metrics::StreamLabels { stream: delivery.stream.clone() })
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, "ack failed; the message will be redelivered and skipped by the inbox");
                }
                metrics.consumed(&delivery.stream, &spec.durable, "ok");
            }
            Err(HandleError::Permanent(reason)) => {
                tracing::warn!(error = %reason, "message cannot be handled; dead-lettering it");
                settle_dead_letter(bus, spec, &msg, &delivery, &reason).await;
            }
            Err(HandleError::Transient(reason)) if delivery.delivered >= max => {
                tracing::warn!(error = %reason, "message failed on its last delivery; dead-lettering it");
                let reason = format!("failed {} deliveries; last error: {reason}", delivery.delivered);
                settle_dead_letter(bus, spec, &msg, &delivery, &reason).await;
            }
            Err(HandleError::Transient(reason)) => {
                let delay = retry_delay(spec.settings.retry_delay, delivery.delivered);
                tracing::warn!(error = %reason, retry_in = ?delay, "handling failed; will retry");
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                metrics.consumed(&delivery.stream, &spec.durable, "retried");
            }
        }
    }
    .instrument(span)
    .await;
}

/// Runs `work`, telling the server the message is still being worked on so
/// it is not redelivered to another replica meanwhile.
async fn with_progress<F: Future>(work: F, msg: &jetstream::Message, ack_wait: Duration) -> F::Output {
    tokio::pin!(work);
    let period = (ack_wait / 2).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = tick.tick() => { let _ = msg.ack_with(AckKind::Progress).await; }
        }
    }
}

fn retry_delay(first: Duration, delivered: u32) -> Duration {
    let factor = 2u32.saturating_pow(delivered.saturating_sub(1).min(16));
    (first * factor).min(Duration::from_secs(300))
}

/// Dead-letters and terminates; if the dead letter cannot be written, naks
/// so nothing is lost.
async fn settle_dead_letter(
    bus: &Bus,
    spec: &ConsumerSpec,
    msg: &jetstream::Message,
    delivery: &Delivery,
    reason: &str,
) {
    match dead_letter(bus, &spec.durable, delivery, reason).await {
        Ok(()) => {
            let _ = msg.ack_with(AckKind::Term).await;
            bus.metrics().consumed(&delivery.stream, &spec.durable, "dead_lettered");
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write the dead letter; the message stays for redelivery");
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            bus.metrics().consumed(&delivery.stream, &spec.durable, "retried");
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_cap() {
        let first = Duration::from_secs(1);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(first, 3), Duration::from_secs(4));
        assert_eq!(retry_delay(first, 30), Duration::from_secs(300));
    }
}
