//! The bus: NATS JetStream as every kesu service uses it.
//!
//! - [`subjects`]: the subject and stream names (the contract in code);
//! - [`Bus`]: connection, declaration of the streams a service owns,
//!   publishing with `Nats-Msg-Id`, `traceparent`, content type and message
//!   type headers;
//! - [`consume`]: durable pull consumers applying batches of messages in one
//!   [`UnitOfWork`] each, acked after the commit, with redelivery back-off,
//!   max-deliver and a [`dead_letter`] path that keeps the original bytes,
//!   headers and the error;
//! - [`inbox`] and [`outbox`]: effectively-once processing on top of
//!   at-least-once delivery (see docs/delivery.md); the relay publishes a
//!   stream's rows as one atomic batch where the server allows it.

mod atomic_batch;
mod batch;
pub mod consume;
pub mod dead_letter;
pub mod inbox;
mod metrics;
pub mod outbox;
pub mod publish;
pub mod server_version;
pub mod subjects;
pub mod unit_of_work;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use kesu_config::{ConfigError, Env, Secret};
use kesu_storage::Migrations;
use kesu_telemetry::MetricsRegistry;

pub use atomic_batch::{MAX_BATCH as MAX_ATOMIC_BATCH, MIN_BATCH as MIN_ATOMIC_BATCH};
pub use consume::{Consumer, ConsumerSettings, ConsumerSpec, Delivery, HandleError, Handler};
pub use metrics::BusMetrics;
pub use outbox::{OutboxRelay, OutboxWaker};
pub use publish::{Outgoing, event_meta};
pub use subjects::StreamSpec;
pub use unit_of_work::UnitOfWork;

/// The inbox and outbox tables; every service includes these in its
/// database (versions 1–999 are reserved for shared crates).
pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach NATS at {url} within {waited:?}: {error}")]
    Connect { url: String, waited: Duration, error: String },
    #[error("NATS at {url}: {reason}")]
    ServerVersion { url: String, reason: String },
    #[error("declaring stream {stream}: {error}")]
    Stream { stream: String, error: String },
    #[error("stream {stream} does not exist yet (it is declared by {owner}): {error}")]
    MissingStream { stream: String, owner: &'static str, error: String },
    #[error("declaring consumer {consumer} on {stream}: {error}")]
    Consumer { stream: String, consumer: String, error: String },
    #[error("publishing to {subject}: {error}")]
    Publish { subject: String, error: String },
    #[error("publishing to {subject}: the message is larger than the server's max payload")]
    TooLarge { subject: String },
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
}

/// How to reach NATS and how streams are sized.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    pub tls_required: bool,
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// How long start-up keeps trying to reach NATS.
    pub connect_timeout: Duration,
    pub streams: subjects::StreamSettings,
}

impl BusConfig {
    /// `NATS_URL`, `NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`,
    /// `NATS_TLS_REQUIRED`, `NATS_TLS_CA_FILE`, `NATS_CONNECT_TIMEOUT`,
    /// `STREAM_MAX_AGE`, `STREAM_DUPLICATE_WINDOW`, `STREAM_REPLICAS`,
    /// `DLQ_MAX_AGE`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.string("NATS_URL", "nats://127.0.0.1:4222")?,
            user: env.optional("NATS_USER")?,
            password: env.secret("NATS_PASSWORD")?,
            token: env.secret("NATS_TOKEN")?,
            tls_required: env.flag("NATS_TLS_REQUIRED", false)?,
            tls_ca_file: env.optional("NATS_TLS_CA_FILE")?,
            connect_timeout: env.duration("NATS_CONNECT_TIMEOUT", Duration::from_secs(30))?,
            streams: subjects::StreamSettings {
                max_age: env.duration("STREAM_MAX_AGE", Duration::from_secs(7 * 24 * 3600))?,
                duplicate_window: env.duration("STREAM_DUPLICATE_WINDOW", Duration::from_secs(120))?,
                dlq_max_age: env.duration("DLQ_MAX_AGE", Duration::from_secs(30 * 24 * 3600))?,
                replicas: env.bounded("STREAM_REPLICAS", 1, 1, 5)? as usize,
                max_message_size: -1,
                max_age_of: Vec::new(),
                atomic_batches: false,
            },
        })
    }

    /// Defaults with the given URL (tests, tools).
    pub fn local(url: &str) -> Self {
        Self {
            url: url.to_string(),
            user: None,
            password: None,
            token: None,
            tls_required: false,
            tls_ca_file: None,
            connect_timeout: Duration::from_secs(10),
            streams: subjects::StreamSettings::default(),
        }
    }
}

/// A connection to NATS with JetStream, for one service.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    service: Arc<str>,
    config: Arc<BusConfig>,
    metrics: BusMetrics,
    atomic: atomic_batch::AtomicStreams,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("service", &self.service).field("url", &self.config.url).finish()
    }
}

impl Bus {
    /// Connects, retrying until `connect_timeout` so services may start
    /// before the broker.
    pub async fn connect(config: &BusConfig, service: &str, registry: &MetricsRegistry) -> Result<Self, BusError> {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        let client = loop {
            let mut options = async_nats::ConnectOptions::new()
                .name(format!("kesu-{service}"))
                .connection_timeout(Duration::from_secs(5))
                .max_reconnects(None)
                .require_tls(config.tls_required);
            if let (Some(user), Some(password)) = (&config.user, &config.password) {
                options = options.user_and_password(user.clone(), password.expose().to_string());
            }
            if let Some(token) = &config.token {
                options = options.token(token.expose().to_string());
            }
            if let Some(ca) = &config.tls_ca_file {
                options = options.add_root_certificates(ca.clone());
            }
            match options.connect(config.url.as_str()).await {
                Ok(client) => break client,
                Err(e) if started.elapsed() + delay < config.connect_timeout => {
                    tracing::warn!(url = %config.url, error = %e, "NATS not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(BusError::Connect {
                        url: config.url.clone(),
                        waited: started.elapsed(),
                        error: e.to_string(),
                    });
                }
            }
        };
        let version = server_version::check(&client.server_info().version)
            .map_err(|reason| BusError::ServerVersion { url: config.url.clone(), reason })?;
        let js = jetstream::new(client.clone());
        let mut config = config.clone();
        config.streams.atomic_batches = version >= server_version::ATOMIC_BATCHES;
        let max_payload = client.server_info().max_payload as i64;
        if max_payload > 2 * subjects::DEAD_LETTER_HEADER_ROOM {
            config.streams.max_message_size = (max_payload - subjects::DEAD_LETTER_HEADER_ROOM) as i32;
        }
        Ok(Self {
            client,
            js,
            service: service.into(),
            config: Arc::new(config),
            metrics: BusMetrics::new(registry),
            atomic: Default::default(),
        })
    }

    /// Declares the given streams (creates them, or updates limits that
    /// changed). Idempotent: every replica does it at start. A service
    /// declares only the streams it owns ([`subjects::owned_by`]).
    pub async fn ensure_streams(&self, specs: &[StreamSpec]) -> Result<(), BusError> {
        for spec in specs {
            let atomic = subjects::ensure_stream(&self.js, spec, &self.config.streams).await?;
            self.atomic.record(*spec, atomic);
        }
        Ok(())
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The stream limits in force (the max message size follows the server).
    pub fn stream_settings(&self) -> &subjects::StreamSettings {
        &self.config.streams
    }

    pub fn metrics(&self) -> &BusMetrics {
        &self.metrics
    }

    /// Whether the connection is up (for readiness).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes to JetStream and waits for the stream's acknowledgement.
    pub async fn publish(&self, msg: Outgoing) -> Result<jetstream::publish::PublishAck, BusError> {
        let subject = msg.subject.clone();
        let ack = self.publish_pipelined(msg).await?;
        ack.await.map_err(|e| BusError::Publish { subject, error: e.to_string() })
    }

    /// Sends to JetStream and returns the pending acknowledgement, so many
    /// publishes can be in flight at once.
    pub async fn publish_pipelined(&self, msg: Outgoing) -> Result<jetstream::context::PublishAckFuture, BusError> {
        let headers = msg.headers();
        let ack = self.js.publish_with_headers(msg.subject.clone(), headers, msg.payload).await.map_err(|e| match e
            .kind()
        {
            jetstream::context::PublishErrorKind::MaxPayloadExceeded => {
                BusError::TooLarge { subject: msg.subject.clone() }
            }
            _ => BusError::Publish { subject: msg.subject.clone(), error: e.to_string() },
        })?;
        self.metrics.published(&msg.subject);
        Ok(ack)
    }

    /// Drains the connection (flushes pending publishes).
    pub async fn close(&self) {
        let _ = self.client.flush().await;
    }
}

/// Milliseconds since the epoch, as the inbox and outbox store time.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
