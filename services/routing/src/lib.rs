//! Routing: turns accepted feedback into tickets and runs their lifecycle.
//!
//! Consumes `feedback.evt.>`; for each accepted feedback creates exactly one
//! ticket (classified from the taxonomy, prioritised, given a department)
//! and announces it on `ticket.evt.created` through the outbox. Serves the
//! staff ticket API over gRPC. Replicas share the durable consumer and the
//! database; a feedback never gets two tickets (unique per feedback).

pub mod assign;
mod cases;
pub mod classify;
pub mod common_issues;
pub mod creation;
pub mod customer_rating;
mod error;
mod grpc;
pub mod lifecycle;
pub mod priority;
pub mod roles;
mod sla_risk;
mod store;
pub mod tickets;

use std::sync::Arc;

use kesu_bus::subjects::FEEDBACK;
use kesu_bus::{ConsumerSpec, subjects};
use kesu_config::{ConfigError, Env};
use kesu_domain::{Clock, SystemClock};
use kesu_proto::v1::ticket_service_server::TicketServiceServer;
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::Migrations;
use tokio_util::sync::CancellationToken;

pub use error::Error;

pub const SERVICE: &str = "routing";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50052, http: 8082 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// Routing's settings (`KESU_ROUTING_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Checks customers' rating tokens (`CONTACT_KEY`, as intake's and notification's).
    pub contact_key: kesu_domain::ContactKey,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { common: CommonConfig::from_env(env, SERVICE, PORTS)?, contact_key: kesu_runtime::contact_key(env)? })
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
    let settings = config.common.consumer.clone();
    let policy = config.common.policy.clone();
    let mut core = ServiceCore::start(config.common, MIGRATIONS, shutdown).await?;
    let lifecycle = Arc::new(lifecycle::Context {
        db: core.db.clone(),
        outbox: core.outbox.clone(),
        policy: policy.clone(),
        clock: clock.clone(),
    });
    // sla-timer's warnings and breaches feed the "at risk" queue; without
    // sla-timer routing still works (not part of readiness).
    // Only what moves the at-risk queue: the clocks' starts, pauses and
    // plans (most of the stream) never reach routing.
    let risk_subjects = ["warning", "breached", "escalated", "met"].map(subjects::sla_event);
    let sla = ConsumerSpec::new(subjects::SLA, SERVICE, settings.clone())
        .filters(&risk_subjects.iter().map(String::as_str).collect::<Vec<_>>());
    let sla_events = Arc::new(sla_risk::SlaEvents { clock: clock.clone() });
    let sla = kesu_bus::Consumer::new(&core.bus, &core.db, &core.outbox, sla, sla_events);
    core.spawn_worker(sla.run(core.shutdown_token(), |_, _| {}));
    let rules = Arc::new(tickets::Rules::new(policy));
    core.consume(
        ConsumerSpec::new(FEEDBACK, SERVICE, settings),
        Arc::new(creation::FeedbackEvents { rules, clock, lifecycle: lifecycle.clone() }),
    );

    // Customers' ratings through adapters (request/reply, queue group).
    let subject = format!("{}.>", customer_rating::RATE_PREFIX);
    let subscriber = core
        .bus
        .client()
        .queue_subscribe(subject.clone(), SERVICE.to_string())
        .await
        .map_err(|e| StartError::Other(format!("subscribing to {subject}: {e}")))?;
    // A round trip, so the server has registered the subscription once we serve.
    core.bus
        .jetstream()
        .get_stream(subjects::TICKETS.name)
        .await
        .map_err(|e| StartError::Other(format!("confirming the {subject} subscription: {e}")))?;
    let (client, token) = (core.bus.client().clone(), core.shutdown_token());
    let key = Arc::new(config.contact_key);
    core.spawn_worker(customer_rating::serve(client, lifecycle.clone(), key, subscriber, token));

    let (router, health) =
        kesu_runtime::grpc_router(kesu_proto::v1::ticket_service_server::SERVICE_NAME, core.auth_layer(&roles::TABLE));
    health.set_serving::<TicketServiceServer<grpc::TicketApi>>().await;
    let router = router.add_service(TicketServiceServer::new(grpc::TicketApi::new(lifecycle)));
    core.serve(router, health, None).await
}
