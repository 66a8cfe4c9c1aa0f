//! sla-timer: the clocks on every ticket.
//!
//! Consumes `ticket.evt.>` and folds each event into what it knows of the
//! ticket (`facts`, by ticket version); plans every clock from it
//! (`plan`: acknowledge, response, resolution, progress update, result
//! notice, follow-up visit, on the business calendar, pauses left out);
//! announces clocks that start, pause, resume and stop (`sla.evt.armed`,
//! `paused`, `resumed`, `met`); and keeps one durable timer per ticket
//! (`kesu-timers`) at its next warning, breach, escalation or reminder,
//! which fires `sla.evt.warning`, `breached`, `escalated`, `ack_overdue`,
//! `stale` and `update_due` with the level and recipients' roles. Serves a
//! ticket's clocks, the at-risk and breached lists and `PreviewClocks`.

pub mod clocks;
mod counting;
mod error;
pub mod facts;
mod firing;
mod grpc;
pub mod plan;
pub mod preview;
pub mod roles;
mod store;

use std::sync::Arc;

use kesu_bus::subjects::TICKETS;
use kesu_bus::{ConsumerSpec, Delivery, HandleError, Handler, UnitOfWork};
use kesu_config::{ConfigError, Env};
use kesu_domain::{Clock, Policy, SystemClock};
use kesu_proto::type_names;
use kesu_proto::v1::TicketEvent;
use kesu_proto::v1::sla_service_server::SlaServiceServer;
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::{Backend, Migrations};
use kesu_timers::{TimerSettings, Timers};
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use firing::TIMER_KIND;

pub const SERVICE: &str = "sla-timer";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50053, http: 8083 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// sla-timer's settings (`KESU_SLA_TIMER_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub timers: TimerSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { common: CommonConfig::from_env(env, SERVICE, PORTS)?, timers: TimerSettings::from_env(env)? })
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
    let timers = Timers::new(core.db.clone(), clock.clone(), core.outbox.clone(), config.timers, &core.metrics);
    let ctx = Arc::new(Context { policy, clock: clock.clone(), timers: timers.clone(), backend: core.db.backend() });
    core.consume(ConsumerSpec::new(TICKETS, SERVICE, settings), Arc::new(TicketEvents { ctx: ctx.clone() }));
    core.spawn_worker(timers.run(Arc::new(firing::Points { ctx: ctx.clone() }), core.shutdown_token()));

    let (router, health) =
        kesu_runtime::grpc_router(kesu_proto::v1::sla_service_server::SERVICE_NAME, core.auth_layer(&roles::TABLE));
    health.set_serving::<SlaServiceServer<grpc::SlaApi>>().await;
    let router = router.add_service(SlaServiceServer::new(grpc::SlaApi::new(core.db.clone(), ctx)));
    core.serve(router, health, None).await
}

/// What the handlers share.
pub(crate) struct Context {
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub timers: Timers,
    pub backend: Backend,
}

struct TicketEvents {
    ctx: Arc<Context>,
}

impl Handler for TicketEvents {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let event: TicketEvent = d.decode(type_names::TICKET_EVENT)?;
        kesu_domain::events::created_ticket(&event).map_err(|e| HandleError::Permanent(e.into()))?;
        let Some(ticket) = &event.ticket else {
            return Err(HandleError::Permanent("a ticket event without its ticket".into()));
        };
        if ticket.ticket_id.is_empty() {
            return Err(HandleError::Permanent("a ticket event without ticket_id".into()));
        }
        firing::apply_ticket_event(&self.ctx, work, &event).await
    }

    async fn before_commit(&self, work: &mut UnitOfWork) -> Result<(), HandleError> {
        work.take_batch_state::<firing::Batch>().write(&self.ctx, work).await
    }
}

impl From<Error> for HandleError {
    fn from(e: Error) -> Self {
        match e {
            Error::Database(e) => HandleError::Transient(format!("database: {e}")),
            other => HandleError::Permanent(other.to_string()),
        }
    }
}
