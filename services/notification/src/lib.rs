//! Notification: decides who is told what, when and how (DOMAIN.md,
//! "Notifications"), and ships the built-in senders.
//!
//! - [`events`]: reacts to intake's, routing's, sla-timer's and analytics'
//!   events; [`decide`] applies the policy's rules (customers on their
//!   preferred reachable channel, staff through the staff directory);
//!   [`notice`] records each decision once and emits `notify.req.<channel>`
//!   with `notify.evt.requested`, defers it past quiet hours on a durable
//!   timer ([`release`]), or records why it was suppressed;
//! - [`tracking`]: senders' delivery reports become `notify.evt.sent`,
//!   `delivered`, `failed` and the delivery's status;
//! - [`grpc`]: `ListDeliveries`, `Resend`, `PreviewTemplate`;
//! - [`senders`]: SMTP and HTTP-gateway senders, inside this target when
//!   configured or as `kesu senders`.
//!
//! Contacts are opened with the contact key only to address requests;
//! events and records keep the masked form; clear addresses live in the
//! requests' stream and in delivery records only as long as configured.

pub mod decide;
pub mod deliveries;
mod error;
pub mod events;
mod grpc;
mod labels;
pub mod moment;
pub mod notice;
pub mod projection;
pub mod recipients;
pub mod release;
mod resend;
mod retention;
pub mod roles;
pub mod senders;
pub mod tracking;

use std::sync::Arc;
use std::time::Duration;

use kesu_bus::subjects::{ANALYTICS, FEEDBACK, NOTIFY_REPORTS, NOTIFY_REQUESTS, SLA, TICKETS};
use kesu_bus::{Consumer, ConsumerSpec};
use kesu_config::{ConfigError, Env};
use kesu_domain::{Clock, ContactKey, SystemClock};
use kesu_proto::v1::notification_service_server::NotificationServiceServer;
use kesu_proto::v1::sender_service_server::SenderServiceServer;
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::Migrations;
use kesu_timers::{TimerSettings, Timers};
use tokio_util::sync::CancellationToken;

pub use error::Error;

pub const SERVICE: &str = "notification";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50054, http: 8084 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// notification's settings (`KESU_NOTIFICATION_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Opens sealed contacts to address requests; the same key as intake's.
    pub contact_key: ContactKey,
    /// How long `NOTIFY_REQUESTS` keeps requests (they carry addresses).
    pub requests_max_age: Duration,
    /// How long a delivery record keeps the clear address (for resends).
    pub address_retention: Duration,
    pub timers: TimerSettings,
    /// The built-in senders run in this target when configured.
    pub senders: senders::SenderSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut common = CommonConfig::from_env(env, SERVICE, PORTS)?;
        let requests_max_age = env.duration("REQUESTS_MAX_AGE", Duration::from_secs(24 * 3600))?;
        common.bus.streams.max_age_of.push((NOTIFY_REQUESTS.name, requests_max_age));
        Ok(Self {
            common,
            contact_key: kesu_runtime::contact_key(env)?,
            requests_max_age,
            address_retention: env.duration("ADDRESS_RETENTION", Duration::from_secs(24 * 3600))?,
            timers: TimerSettings::from_env(env)?,
            senders: senders::SenderSettings::from_env(env)?,
        })
    }
}

pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown, Arc::new(SystemClock)).await?.wait().await
}

pub async fn start(
    config: Config,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> Result<RunningService, StartError> {
    let consumer = config.common.consumer.clone();
    let policy = config.common.policy.clone();
    let mut core = ServiceCore::start(config.common, MIGRATIONS, shutdown).await?;
    let timers = Timers::new(core.db.clone(), clock.clone(), core.outbox.clone(), config.timers, &core.metrics);
    let address_retention = chrono::Duration::from_std(config.address_retention).unwrap_or(chrono::Duration::days(1));
    let ctx = Arc::new(events::Context {
        policy,
        key: config.contact_key,
        clock: clock.clone(),
        timers: timers.clone(),
        readiness: core.readiness.clone(),
        address_retention,
    });
    // One consumer per stream: a producer that is not running yet holds up
    // only its own notices.
    for stream in [FEEDBACK, TICKETS, SLA] {
        core.consume(
            ConsumerSpec::new(stream, SERVICE, consumer.clone()),
            Arc::new(events::Reactions { ctx: ctx.clone() }),
        );
    }
    // Reports are optional: a deployment without analytics is still ready.
    let reports = Consumer::new(
        &core.bus,
        &core.db,
        &core.outbox,
        ConsumerSpec::new(ANALYTICS, SERVICE, consumer.clone()),
        Arc::new(events::Reactions { ctx: ctx.clone() }),
    );
    core.spawn_worker(reports.run(core.shutdown_token(), |_, _| {}));
    core.consume(
        ConsumerSpec::new(NOTIFY_REPORTS, SERVICE, consumer),
        Arc::new(tracking::DeliveryReports { ctx: ctx.clone() }),
    );
    core.spawn_worker(timers.clone().run(Arc::new(release::Release), core.shutdown_token()));
    core.spawn_worker(retention::erase_expired_addresses(
        core.db.clone(),
        clock.clone(),
        Duration::from_secs(60),
        core.shutdown_token(),
    ));
    let started =
        senders::build(&config.senders, &core.bus, &core.db, &core.outbox, clock).map_err(StartError::Other)?;
    for sender in &started.senders {
        core.spawn_worker(sender.clone().run(core.shutdown_token()));
    }

    // NotificationService, and the status of the senders running here.
    let auth = kesu_auth::AuthLayer::new(
        core.config.auth.verifier.clone(),
        &[&roles::TABLE, &roles::SENDER_TABLE],
        core.db.clone(),
    );
    let (router, health) = kesu_runtime::grpc_router(kesu_proto::v1::notification_service_server::SERVICE_NAME, auth);
    health.set_serving::<NotificationServiceServer<grpc::NotificationApi>>().await;
    health.set_serving::<SenderServiceServer<senders::target::SenderApi>>().await;
    let api = grpc::NotificationApi { db: core.db.clone(), ctx, outbox: core.outbox.clone() };
    let status = senders::target::SenderApi { db: core.db.clone(), senders: started.senders.clone() };
    let router = router.add_service(NotificationServiceServer::new(api)).add_service(SenderServiceServer::new(status));
    core.serve(router, health, started.routes).await
}
