//! Start-up, serving and shutdown of a service process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kesu_bus::{Bus, BusError, Consumer, ConsumerSpec, Handler, OutboxRelay, OutboxWaker};
use kesu_config::ConfigError;
use kesu_storage::{Database, DatabaseOptions, Migrations, StorageError};
use kesu_telemetry::MetricsRegistry;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::{AuthLayer, GrpcRouter};
use crate::config::CommonConfig;
use crate::http::{self, Readiness};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr} ({key}): {error}")]
    Bind { key: &'static str, addr: SocketAddr, error: std::io::Error },
    #[error("{server} server failed: {error}")]
    Server { server: &'static str, error: String },
    #[error("{0}")]
    Other(String),
}

/// How long shutdown waits for in-flight requests and messages.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A gRPC router with the health service (all services report SERVING
/// while the process is up) and reflection listing health, reflection and
/// `api` (the fully-qualified name of the service's own API, which the
/// service then adds to the router), behind `auth` (tokens and roles on
/// every other call).
pub fn grpc_router(api: &str, auth: AuthLayer) -> (GrpcRouter, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = crate::reflection::server(api);
    let router = tonic::transport::Server::builder().layer(auth).add_service(health).add_service(reflection);
    (router, reporter)
}

/// What every service has once started: bus, database, outbox relay,
/// metrics, readiness, and its consumers and workers.
pub struct ServiceCore {
    pub config: CommonConfig,
    pub bus: Bus,
    pub db: Database,
    /// Wake after committing outbox rows.
    pub outbox: OutboxWaker,
    pub metrics: MetricsRegistry,
    pub readiness: Readiness,
    shutdown: CancellationToken,
    relay_stop: CancellationToken,
    relay: JoinHandle<()>,
    workers: JoinSet<()>,
}

impl ServiceCore {
    /// Connects to NATS, declares the streams this service owns (its events
    /// and its dead letters; never those it only reads), opens and migrates
    /// the database (inbox/outbox, audit, durable timers plus `migrations`),
    /// starts the outbox relay.
    pub async fn start(
        config: CommonConfig,
        migrations: Migrations,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let metrics = MetricsRegistry::with_prefix("kesu");
        let bus = Bus::connect(&config.bus, config.service, &metrics).await?;
        bus.ensure_streams(&kesu_bus::subjects::owned_by(config.service)).await?;
        let options = DatabaseOptions {
            max_connections: config.db_max_connections,
            sqlite_synchronous: config.sqlite_synchronous,
        };
        let db = Database::open_with(
            &config.database_url,
            options,
            &[kesu_bus::MIGRATIONS, kesu_auth::MIGRATIONS, kesu_timers::MIGRATIONS, migrations],
        )
        .await?;
        tracing::info!(service = config.service, database = db.display(), nats = %config.bus.url, "connected");
        let relay = OutboxRelay::new(db.clone(), bus.clone()).with_poll_interval(config.outbox_poll);
        let outbox = relay.waker();
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(relay.run(relay_stop.clone()));
        let readiness = Readiness::new(bus.clone(), db.clone());
        let mut workers = JoinSet::new();
        workers.spawn(purge_inbox(db.clone(), config.bus.streams.max_age, shutdown.clone()));
        Ok(Self { config, bus, db, outbox, metrics, readiness, shutdown, relay_stop, relay, workers })
    }

    /// Runs a durable consumer until shutdown. It waits for its stream,
    /// which another service may declare later; until then readiness
    /// reports `stream <NAME> (declared by <owner>)` as failing.
    pub fn consume<H: Handler>(&mut self, spec: ConsumerSpec, handler: Arc<H>) {
        self.consume_merged(vec![spec], handler);
    }

    /// Runs one consumer over several streams, applied in shared batches
    /// (one transaction and one commit for what is ready on all of them);
    /// readiness as for [`ServiceCore::consume`], per stream.
    pub fn consume_merged<H: Handler>(&mut self, specs: Vec<ConsumerSpec>, handler: Arc<H>) {
        let names: Vec<String> = specs
            .iter()
            .map(|spec| format!("stream {} (declared by {})", spec.stream.name, spec.stream.owner))
            .collect();
        for name in &names {
            self.readiness.set(name, false);
        }
        let consumer = Consumer::merged(&self.bus, &self.db, &self.outbox, specs, handler);
        let readiness = self.readiness.clone();
        self.workers.spawn(consumer.run(self.shutdown.clone(), move |i, ready| readiness.set(&names[i], ready)));
    }

    /// Runs a background task that must end on shutdown (before the final
    /// outbox flush).
    pub fn spawn_worker<F: Future<Output = ()> + Send + 'static>(&mut self, work: F) {
        self.workers.spawn(work);
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Binds the gRPC and HTTP listeners and serves until shutdown.
    pub async fn serve(
        self,
        grpc: GrpcRouter,
        health: HealthReporter,
        extra_http: Option<axum::Router>,
    ) -> Result<RunningService, StartError> {
        let ServiceCore { config, bus, db, readiness, metrics, shutdown, relay_stop, relay, mut workers, .. } = self;
        let grpc_listener = bind("GRPC_ADDR", config.grpc_addr).await?;
        let http_listener = bind("HTTP_ADDR", config.http_addr).await?;
        let grpc_addr = grpc_listener.local_addr().expect("bound socket has an address");
        let http_addr = http_listener.local_addr().expect("bound socket has an address");
        health.set_service_status("", ServingStatus::Serving).await;

        let mut servers: JoinSet<Result<(), StartError>> = JoinSet::new();
        let token = shutdown.clone();
        // No Nagle on answers: a response written in several small pieces
        // (headers, body, trailers) otherwise waits for the client's delayed
        // ACK, ~40 ms per answer.
        let incoming = futures::StreamExt::map(TcpListenerStream::new(grpc_listener), |stream| {
            if let Ok(s) = &stream {
                let _ = s.set_nodelay(true);
            }
            stream
        });
        servers.spawn(async move {
            grpc.serve_with_incoming_shutdown(incoming, token.cancelled_owned())
                .await
                .map_err(|e| StartError::Server { server: "gRPC", error: e.to_string() })
        });
        let token = shutdown.clone();
        let app = http::router(readiness, metrics, extra_http);
        servers.spawn(async move {
            axum::serve(http_listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
                .map_err(|e| StartError::Server { server: "HTTP", error: e.to_string() })
        });
        tracing::info!(service = config.service, %grpc_addr, %http_addr, "serving");

        let service = config.service;
        let stop = shutdown.clone();
        let handle = tokio::spawn(async move {
            let mut failure = None;
            // A server that ends before shutdown is a failure: stop everything.
            tokio::select! {
                _ = stop.cancelled() => {}
                Some(result) = servers.join_next() => {
                    failure = result.map_err(|e| StartError::Other(e.to_string())).and_then(|r| r).err();
                    stop.cancel();
                }
            }
            tracing::info!(service, "shutting down: finishing in-flight work");
            health.set_service_status("", ServingStatus::NotServing).await;
            // In-flight RPCs and messages get a bounded time; what is cut off
            // is not lost (an unacknowledged message is redelivered).
            let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
            loop {
                match tokio::time::timeout_at(deadline, servers.join_next()).await {
                    Ok(Some(Ok(Err(e)))) => {
                        failure.get_or_insert(e);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!(service, "requests still open after {SHUTDOWN_GRACE:?}; closing them");
                        servers.abort_all();
                        break;
                    }
                }
            }
            loop {
                match tokio::time::timeout_at(deadline, workers.join_next()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!(
                            service,
                            "messages still in flight after {SHUTDOWN_GRACE:?}; they will be redelivered"
                        );
                        workers.abort_all();
                        break;
                    }
                }
            }
            relay_stop.cancel();
            let _ = relay.await;
            bus.close().await;
            db.close().await;
            tracing::info!(service, "stopped");
            failure.map_or(Ok(()), Err)
        });
        Ok(RunningService { grpc_addr, http_addr, shutdown, handle })
    }
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|error| StartError::Bind { key, addr, error })
}

/// Forgets inbox ids long after the stream could redeliver them.
async fn purge_inbox(db: Database, stream_max_age: Duration, shutdown: CancellationToken) {
    let keep = stream_max_age * 2;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        let cutoff = std::time::SystemTime::now()
            .checked_sub(keep)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match kesu_bus::inbox::purge(db.writer(), cutoff).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "inbox purged"),
            Err(e) => tracing::warn!(error = %e, "inbox purge failed"),
            _ => {}
        }
    }
}

/// A started service.
pub struct RunningService {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), StartError>>,
}

impl RunningService {
    /// Asks the service to stop (as SIGTERM does).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the service has stopped.
    pub async fn wait(self) -> Result<(), StartError> {
        self.handle.await.map_err(|e| StartError::Other(format!("service task failed: {e}")))?
    }

    /// Stops and waits.
    pub async fn stop(self) -> Result<(), StartError> {
        self.shutdown();
        self.wait().await
    }
}
