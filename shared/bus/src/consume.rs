//! Durable pull consumers: receive what is ready, apply it in batches in
//! one unit of work, ack after the commit; retry transient failures with
//! back-off; dead-letter what cannot succeed.
//!
//! A consumer declares only its durable consumer, never the stream: the
//! stream belongs to the service that produces it. Until that stream exists
//! the consumer waits and reports itself not ready.
//!
//! Delivery accounting: the server redelivers without limit (max_deliver is
//! enforced here), so a message whose handling kills the process every time
//! is still caught: once it has been delivered more than `max_deliver` times
//! it goes to the dead-letter subject before the handler sees it again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use bytes::Bytes;
use futures::StreamExt;
use kesu_config::{ConfigError, Env};
use kesu_storage::Database;
use tokio_util::sync::CancellationToken;

use crate::outbox::OutboxWaker;
use crate::subjects::StreamSpec;
use crate::unit_of_work::UnitOfWork;
use crate::{Bus, BusError};

pub use crate::dead_letter::{
    DLQ_CONSUMER, DLQ_DELIVERIES, DLQ_ERROR, DLQ_ORIGINAL_MSG_ID, DLQ_SEQUENCE, DLQ_SERVICE, DLQ_STREAM, DLQ_SUBJECT,
    dead_letter,
};

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

/// A service's reaction to one message, applied inside the batch's unit of
/// work: the consume loop has already claimed the message in the inbox (a
/// redelivery of something applied before never reaches the handler), and
/// commits, acks and wakes the relay after it. The handler only reads and
/// writes through `work` and emits events with it.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        work: &mut UnitOfWork,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// Called once per unit of work after the last message and before the
    /// commit: writes what the handler accumulated in
    /// [`UnitOfWork::batch_state`] (one statement per key instead of one per
    /// message).
    fn before_commit(&self, _work: &mut UnitOfWork) -> impl Future<Output = Result<(), HandleError>> + Send {
        async { Ok(()) }
    }
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
    /// a batch is applied), so the work of a killed process is taken over in
    /// seconds.
    pub ack_wait: Duration,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliver: u32,
    /// Most messages applied in one transaction; a batch takes what is ready
    /// without waiting for more.
    pub batch_size: usize,
    /// Unacknowledged messages the server lets all replicas hold.
    pub max_ack_pending: u32,
    /// First retry delay; doubles per delivery, at most 5 minutes.
    pub retry_delay: Duration,
    /// How long a batch smaller than `batch_size` waits for more messages
    /// before it is applied (0: it takes what is ready). For consumers off
    /// the customer's path (analytics): at a low rate each message would
    /// otherwise be a transaction of its own, whose fixed cost took most of
    /// the machine's CPU at 200 feedback/s.
    pub linger: Duration,
}

/// The longest `CONSUMER_LINGER`: delivered messages wait in the batch
/// with their ack timers running.
pub const MAX_LINGER: Duration = Duration::from_secs(1);

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(10),
            max_deliver: 5,
            batch_size: 256,
            max_ack_pending: 1024,
            retry_delay: Duration::from_secs(1),
            linger: Duration::ZERO,
        }
    }
}

impl ConsumerSettings {
    /// `CONSUMER_ACK_WAIT`, `CONSUMER_MAX_DELIVER`, `CONSUMER_BATCH_SIZE`,
    /// `CONSUMER_MAX_ACK_PENDING`, `CONSUMER_RETRY_DELAY`, `CONSUMER_LINGER`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::from_env_or(env, Self::default())
    }

    /// As [`Self::from_env`], with a service's own defaults.
    pub fn from_env_or(env: &Env, d: Self) -> Result<Self, ConfigError> {
        let linger = env.duration("CONSUMER_LINGER", d.linger)?;
        if linger > MAX_LINGER {
            return Err(ConfigError {
                key: env.name_of("CONSUMER_LINGER"),
                message: format!(
                    "{linger:?} is longer than {MAX_LINGER:?}: delivered messages wait with their ack timers running"
                ),
            });
        }
        Ok(Self {
            ack_wait: env.duration("CONSUMER_ACK_WAIT", d.ack_wait)?.max(Duration::from_secs(1)),
            max_deliver: env.bounded("CONSUMER_MAX_DELIVER", d.max_deliver.into(), 1, 1000)? as u32,
            batch_size: env.bounded("CONSUMER_BATCH_SIZE", d.batch_size as u64, 1, 4096)? as usize,
            max_ack_pending: env.bounded("CONSUMER_MAX_ACK_PENDING", d.max_ack_pending.into(), 1, 1_000_000)? as u32,
            retry_delay: env.duration("CONSUMER_RETRY_DELAY", d.retry_delay)?,
            linger,
        })
    }
}

/// A durable consumer of one stream.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: StreamSpec,
    /// Durable name: the service's name, shared by its replicas.
    pub durable: String,
    /// Subjects taken from the stream (empty: all of them).
    pub filter_subjects: Vec<String>,
    pub dedup: DedupKey,
    pub settings: ConsumerSettings,
    /// Seals the payload of this consumer's dead letters.
    pub seal: Option<crate::dead_letter::DeadLetterSeal>,
}

impl ConsumerSpec {
    pub fn new(stream: StreamSpec, durable: &str, settings: ConsumerSettings) -> Self {
        Self {
            stream,
            durable: durable.to_string(),
            filter_subjects: Vec::new(),
            dedup: DedupKey::MessageId,
            settings,
            seal: None,
        }
    }

    /// Dead letters of this consumer carry their payload sealed.
    pub fn seal_dead_letters(mut self, seal: crate::dead_letter::DeadLetterSeal) -> Self {
        self.seal = Some(seal);
        self
    }

    pub fn filter(mut self, subject: &str) -> Self {
        self.filter_subjects = vec![subject.to_string()];
        self
    }

    /// Takes only these subjects of the stream (the server skips the rest:
    /// nothing to claim, apply or acknowledge for them).
    pub fn filters(mut self, subjects: &[&str]) -> Self {
        self.filter_subjects = subjects.iter().map(|s| s.to_string()).collect();
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

/// A consumer, ready to run: one stream, or several applied in shared
/// batches ([`Consumer::merged`]).
pub struct Consumer<H> {
    ctx: Arc<ConsumerContext<H>>,
}

/// What applying a batch needs.
pub(crate) struct ConsumerContext<H> {
    pub bus: Bus,
    pub db: Database,
    pub waker: OutboxWaker,
    /// The sources: one durable consumer per stream; a message's `source` is
    /// its index here.
    pub specs: Vec<ConsumerSpec>,
    pub handler: Arc<H>,
}

/// What processing needs to know about the consumer as the server has it.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    /// The server's ack wait: progress is signalled well within it.
    pub ack_wait: Duration,
    /// When the stream was created: part of stream-sequence inbox keys, so a
    /// re-created stream (sequences restart) is not mistaken for redelivery.
    pub stream_epoch: i64,
}

/// A message of a source's pull stream, or the end of that stream.
type Pulled = (usize, Option<Result<async_nats::jetstream::Message, PullError>>);
type PullError = async_nats::error::Error<async_nats::jetstream::consumer::pull::MessagesErrorKind>;

impl<H: Handler> Consumer<H> {
    /// A consumer that applies `spec`'s messages with `handler`, in units of
    /// work on `db`, waking `waker` after commits that emitted events.
    pub fn new(bus: &Bus, db: &Database, waker: &OutboxWaker, spec: ConsumerSpec, handler: Arc<H>) -> Self {
        Self::merged(bus, db, waker, vec![spec], handler)
    }

    /// One consumer over several streams: what is ready on any of them is
    /// applied in the same batches, so a service reading four streams
    /// commits once per batch, not four times. Each stream keeps its own
    /// durable consumer and inbox; the handler tells them apart by
    /// [`Delivery::stream`].
    pub fn merged(bus: &Bus, db: &Database, waker: &OutboxWaker, specs: Vec<ConsumerSpec>, handler: Arc<H>) -> Self {
        assert!(!specs.is_empty(), "a consumer reads at least one stream");
        Self {
            ctx: Arc::new(ConsumerContext { bus: bus.clone(), db: db.clone(), waker: waker.clone(), specs, handler }),
        }
    }

    /// Waits for every stream, declares the durable consumers, then pulls and
    /// applies batches until `shutdown`; the batch in hand is finished (acked
    /// or handed back) before it returns. `ready(i, ok)` is told whether the
    /// consumer of the `i`-th stream is declared on an existing stream.
    pub async fn run(self, shutdown: CancellationToken, ready: impl Fn(usize, bool) + Send) {
        let ctx = self.ctx;
        let batch_size = ctx.specs.iter().map(|s| s.settings.batch_size).max().unwrap_or(1).max(1);
        let linger = ctx.specs.iter().map(|s| s.settings.linger).max().unwrap_or_default().min(MAX_LINGER);
        let mut announced_wait = vec![false; ctx.specs.len()];
        'declare: loop {
            // Every stream is tried each round, so readiness names exactly
            // the ones still missing.
            let mut found: Vec<Option<(PullConsumer, Declared)>> = ctx.specs.iter().map(|_| None).collect();
            loop {
                for (i, spec) in ctx.specs.iter().enumerate() {
                    if found[i].is_some() {
                        continue;
                    }
                    match declare_consumer(&ctx.bus, spec).await {
                        Ok(consumer) => {
                            let info = declared(&consumer, stream_epoch(&ctx.bus, spec).await);
                            announced_wait[i] = false;
                            ready(i, true);
                            found[i] = Some((consumer, info));
                        }
                        Err(e) => {
                            ready(i, false);
                            if !announced_wait[i] {
                                tracing::warn!(stream = spec.stream.name, owner = spec.stream.owner, consumer = %spec.durable,
                                    error = %e, "waiting for the stream (declared by its owner)");
                                announced_wait[i] = true;
                            }
                        }
                    }
                }
                if found.iter().all(Option::is_some) {
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            let consumers: Vec<(PullConsumer, Declared)> = found.into_iter().flatten().collect();
            let mut pulls: Vec<futures::stream::BoxStream<'static, Pulled>> = Vec::with_capacity(consumers.len());
            for (i, (consumer, _)) in consumers.iter().enumerate() {
                match consumer.stream().max_messages_per_batch(batch_size).messages().await {
                    Ok(messages) => pulls.push(
                        messages
                            .map(move |m| (i, Some(m)))
                            .chain(futures::stream::once(async move { (i, None) }))
                            .boxed(),
                    ),
                    Err(e) => {
                        let spec = &ctx.specs[i];
                        tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, error = %e, "cannot pull; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'declare,
                        }
                    }
                }
            }
            let infos: Vec<Declared> = consumers.into_iter().map(|(_, info)| info).collect();
            let mut messages = futures::stream::select_all(pulls);
            let mut consecutive_errors = 0u32;
            loop {
                let first = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = messages.next() => next,
                };
                let mut batch = Vec::with_capacity(batch_size);
                let mut ended = None;
                match first {
                    Some((i, Some(Ok(msg)))) => batch.push((i, msg)),
                    Some((i, Some(Err(e)))) => {
                        consecutive_errors += 1;
                        let spec = &ctx.specs[i];
                        tracing::debug!(consumer = %spec.durable, stream = spec.stream.name, error = %e, "pull stream error");
                        if consecutive_errors >= 10 {
                            tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, error = %e,
                                "pull stream keeps failing; declaring the consumer again");
                            continue 'declare;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Some((i, None)) => ended = Some(i),
                    None => ended = Some(0),
                }
                consecutive_errors = 0;
                // Whatever else is ready joins the batch; only a consumer
                // that lingers waits (that long) for more. A timeout looks at
                // the stream before its deadline, so with no linger this
                // takes what is ready and stops.
                let until = tokio::time::Instant::now() + linger;
                while ended.is_none() && batch.len() < batch_size {
                    match tokio::time::timeout_at(until, messages.next()).await {
                        Ok(Some((i, Some(Ok(msg))))) => batch.push((i, msg)),
                        Ok(Some((i, None))) => ended = Some(i),
                        // An error is seen again on the next pull; nothing is lost.
                        Ok(Some((_, Some(Err(_))))) | Ok(None) | Err(_) => break,
                    }
                }
                if !batch.is_empty() {
                    crate::batch::apply(&ctx, &infos, batch).await;
                }
                if let Some(i) = ended {
                    // A pull stream ended (consumer or stream deleted,
                    // connection closed): declare again and pull again.
                    let spec = &ctx.specs[i];
                    tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, "pull stream ended; declaring again");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => continue 'declare,
                    }
                }
            }
        }
    }
}

fn declared(consumer: &PullConsumer, stream_epoch: i64) -> Declared {
    Declared { ack_wait: consumer.cached_info().config.ack_wait, stream_epoch }
}

/// Declares the durable consumer on the existing stream (never the stream);
/// idempotent. Fails with [`BusError::MissingStream`] while the stream's
/// owner has not declared it, and with advice if a consumer of that name
/// exists with another filter that cannot be changed.
pub async fn declare_consumer(bus: &Bus, spec: &ConsumerSpec) -> Result<PullConsumer, BusError> {
    let err = |e: &dyn std::fmt::Display| BusError::Consumer {
        stream: spec.stream.name.to_string(),
        consumer: spec.durable.clone(),
        error: e.to_string(),
    };
    let stream = bus.jetstream().get_stream(spec.stream.name).await.map_err(|e| BusError::MissingStream {
        stream: spec.stream.name.to_string(),
        owner: spec.stream.owner,
        error: e.to_string(),
    })?;
    let config = pull::Config {
        durable_name: Some(spec.durable.clone()),
        description: Some(format!("kesu {} consuming {}", spec.durable, spec.stream.name)),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: spec.settings.ack_wait,
        // Unlimited on the server; the limit is enforced in the batch, which
        // dead-letters instead of leaving the message stranded.
        max_deliver: -1,
        filter_subject: match spec.filter_subjects.as_slice() {
            [one] => one.clone(),
            _ => String::new(),
        },
        filter_subjects: match spec.filter_subjects.as_slice() {
            [_] => Vec::new(),
            many => many.to_vec(),
        },
        max_ack_pending: spec.settings.max_ack_pending.into(),
        ..Default::default()
    };
    let filters = |one: &str, many: &[String]| {
        let mut all: Vec<String> = many.to_vec();
        if !one.is_empty() {
            all.push(one.to_string());
        }
        all.sort();
        all
    };
    let wanted_filter = filters(&config.filter_subject, &config.filter_subjects);
    let consumer = match stream.create_consumer(config.clone()).await {
        Ok(consumer) => consumer,
        Err(create_error) => match stream.get_consumer::<pull::Config>(&spec.durable).await {
            Ok(existing)
                if {
                    let c = &existing.cached_info().config;
                    filters(&c.filter_subject, &c.filter_subjects) == wanted_filter
                } =>
            {
                // Other limits (ack wait, max ack pending): bring them to ours.
                match stream.update_consumer(config).await {
                    Ok(updated) => updated,
                    Err(e) => {
                        tracing::warn!(consumer = %spec.durable, stream = spec.stream.name, error = %e, first_error = %create_error,
                            "consumer exists with other settings and cannot be updated; using the server's");
                        existing
                    }
                }
            }
            Ok(existing) => existing,
            Err(_) => return Err(err(&create_error)),
        },
    };
    let have = &consumer.cached_info().config;
    let have_filters = filters(&have.filter_subject, &have.filter_subjects);
    if have_filters != wanted_filter || have.ack_policy != AckPolicy::Explicit {
        return Err(err(&format!(
            "it exists with filters {:?} and ack policy {:?}, but this service needs filters {wanted_filter:?} and \
             explicit acks; delete it (`nats consumer rm {} {}`) and restart so it is declared afresh",
            have_filters, have.ack_policy, spec.stream.name, spec.durable
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_vars("analytics", pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn linger_defaults_per_service_and_refuses_more_than_a_second_naming_the_key() {
        let own = ConsumerSettings { linger: Duration::from_millis(50), ..Default::default() };
        assert_eq!(ConsumerSettings::from_env(&env(&[])).unwrap().linger, Duration::ZERO);
        assert_eq!(ConsumerSettings::from_env_or(&env(&[]), own.clone()).unwrap().linger, Duration::from_millis(50));
        let set = env(&[("KESU_ANALYTICS_CONSUMER_LINGER", "200ms")]);
        assert_eq!(ConsumerSettings::from_env_or(&set, own.clone()).unwrap().linger, Duration::from_millis(200));
        let err = ConsumerSettings::from_env_or(&env(&[("KESU_CONSUMER_LINGER", "5s")]), own).unwrap_err();
        assert_eq!(err.key, "KESU_CONSUMER_LINGER");
        assert!(err.message.contains("longer than"), "{}", err.message);
    }
}
