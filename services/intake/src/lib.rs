//! Intake: the way in for feedback from every channel.
//!
//! Takes `RawFeedback` from the `FEEDBACK_RAW` stream (`feedback.raw.<channel>`),
//! from request/reply submits (`feedback.submit.<channel>`) and from gRPC;
//! checks it (every problem names its field), de-duplicates by channel and
//! external id, numbers it (`FB` + local date + daily serial), seals personal
//! data, records it with the original bytes, and announces the outcome on
//! `feedback.evt.<kind>` through the outbox. What cannot be decoded goes to
//! `dlq.intake`; what cannot be taken is kept and announced as rejected.

mod duplicates;
mod error;
mod expiry;
pub mod free_text;
mod grpc;
pub mod language;
pub mod needs_info;
mod pipeline;
pub mod review;
pub mod roles;
mod store;
mod submit;
pub mod supplement;
pub mod validate;

use std::sync::Arc;

use kesu_bus::consume::DedupKey;
use kesu_bus::subjects::{FEEDBACK_RAW, FEEDBACK_SUBMIT_PREFIX};
use kesu_bus::{ConsumerSpec, Delivery, HandleError, Handler, UnitOfWork};
use kesu_config::{ConfigError, Env};
use kesu_domain::{Clock, ContactKey, SystemClock};
use kesu_proto::type_names;
use kesu_proto::v1::RawFeedback;
use kesu_proto::v1::intake_service_server::IntakeServiceServer;
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::Migrations;
use kesu_timers::{TimerSettings, Timers};
use tokio_util::sync::CancellationToken;

pub use error::Error;

pub use pipeline::{Intake, Parts, Path, Submission};

/// The largest gRPC request intake decodes (8 MiB); larger ones are
/// refused by the transport (`OUT_OF_RANGE`).
pub const GRPC_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Request/reply supplements: `feedback.supplement.<channel>`.
pub const FEEDBACK_SUPPLEMENT_PREFIX: &str = "feedback.supplement";

pub const SERVICE: &str = "intake";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50051, http: 8081 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// Intake's settings (`KESU_INTAKE_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Seals contacts and names in events; shared with routing and notification.
    pub contact_key: ContactKey,
    /// Request/reply submits answered at once by this process.
    pub submit_concurrency: usize,
    /// How long a needs-info feedback waits for the customer's supplement
    /// before it is closed (`NEEDS_INFO_EXPIRY`, default 72h).
    pub needs_info_expiry: std::time::Duration,
    /// Same customer with near-identical text within this is a duplicate
    /// (`DEDUP_WINDOW`, default the policy's `intake.dedup_window`; `0s`
    /// turns the comparison off).
    pub dedup_window: std::time::Duration,
    pub timers: TimerSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, SERVICE, PORTS)?;
        let policy_window = common.policy.dedup_window().to_std().unwrap_or_default();
        Ok(Self {
            dedup_window: env.duration("DEDUP_WINDOW", policy_window)?,
            common,
            contact_key: kesu_runtime::contact_key(env)?,
            submit_concurrency: env.bounded("SUBMIT_CONCURRENCY", 64, 1, 4096)? as usize,
            needs_info_expiry: env.duration("NEEDS_INFO_EXPIRY", std::time::Duration::from_secs(72 * 3600))?,
            timers: TimerSettings::from_env(env)?,
        })
    }
}

/// Runs intake until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown, Arc::new(SystemClock)).await?.wait().await
}

/// Starts intake and returns once it serves (tests and embedding).
pub async fn start(
    config: Config,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> Result<RunningService, StartError> {
    let settings = config.common.consumer.clone();
    let policy = config.common.policy.clone();
    let mut core = ServiceCore::start(config.common, MIGRATIONS, shutdown).await?;
    let timers = Timers::new(core.db.clone(), clock.clone(), core.outbox.clone(), config.timers, &core.metrics);
    let expiry = chrono::Duration::from_std(config.needs_info_expiry)
        .map_err(|e| StartError::Other(format!("NEEDS_INFO_EXPIRY: {e}")))?;
    let dedup_window = Some(config.dedup_window)
        .filter(|w| !w.is_zero())
        .map(|w| chrono::Duration::from_std(w).unwrap_or(chrono::Duration::MAX));
    let parts = Parts {
        policy,
        key: config.contact_key,
        clock,
        timers: timers.clone(),
        needs_info_expiry: expiry,
        dedup_window,
    };
    let intake = Arc::new(Intake::new(core.db.clone(), core.outbox.clone(), parts, &core.metrics));
    let handler = expiry::Expiry { expiry: humantime::format_duration(config.needs_info_expiry).to_string() };
    core.spawn_worker(timers.run(Arc::new(handler), core.shutdown_token()));

    let spec = ConsumerSpec::new(FEEDBACK_RAW, SERVICE, settings).dedup(DedupKey::StreamSequence);
    core.consume(spec, Arc::new(RawFeedbackHandler { intake: intake.clone() }));

    let mut subscribers = Vec::new();
    for prefix in [FEEDBACK_SUBMIT_PREFIX, FEEDBACK_SUPPLEMENT_PREFIX] {
        let subject = format!("{prefix}.>");
        let subscriber = core
            .bus
            .client()
            .queue_subscribe(subject.clone(), SERVICE.to_string())
            .await
            .map_err(|e| StartError::Other(format!("subscribing to {subject}: {e}")))?;
        subscribers.push(subscriber);
    }
    // Ready only once the server has registered the subscription: a flush
    // only empties our buffer, but the answer to a request on the same
    // connection comes after the server has processed the SUB before it.
    core.bus
        .jetstream()
        .get_stream(FEEDBACK_RAW.name)
        .await
        .map_err(|e| StartError::Other(format!("confirming the submit subscriptions: {e}")))?;
    core.readiness.set("submit subscription", true);
    let (client, token) = (core.bus.client().clone(), core.shutdown_token());
    core.spawn_worker(submit::serve(
        client,
        intake.clone(),
        SERVICE.into(),
        config.submit_concurrency,
        subscribers,
        token,
    ));

    let (router, health) =
        kesu_runtime::grpc_router(kesu_proto::v1::intake_service_server::SERVICE_NAME, core.auth_layer(&roles::TABLE));
    health.set_serving::<IntakeServiceServer<grpc::IntakeApi>>().await;
    // Well above what the policy allows (at most 50,000 characters of
    // description, a 256 KiB record), so that oversized text is answered by
    // the validator naming the field, not by the transport.
    let api = IntakeServiceServer::new(grpc::IntakeApi::new(intake)).max_decoding_message_size(GRPC_MAX_MESSAGE_BYTES);
    let router = router.add_service(api);
    core.serve(router, health, None).await
}

/// Raw feedback from the stream.
struct RawFeedbackHandler {
    intake: Arc<Intake>,
}

impl Handler for RawFeedbackHandler {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let raw: RawFeedback = d.decode(type_names::RAW_FEEDBACK)?;
        let submission = Submission {
            subject: &d.subject,
            original: &d.payload,
            raw: Ok(raw),
            inbox: None,
            causation: &d.message_id,
            path: Path::Stream,
        };
        self.intake.apply(work, &submission).await?;
        Ok(())
    }
}
