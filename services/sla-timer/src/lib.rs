//! sla-timer: the clocks on every ticket.
//!
//! Consumes `ticket.evt.>`; when a ticket is created it arms the response
//! and resolution clocks for the ticket's priority (policy targets, business
//! calendar, per-type overrides), stores them durably and announces
//! `sla.evt.armed` through the outbox. Serves a ticket's clocks and the
//! at-risk and breached lists over gRPC.

pub mod clocks;
mod error;
mod grpc;
pub mod roles;
mod store;

use std::sync::Arc;

use kesu_bus::subjects::TICKETS;
use kesu_bus::{ConsumerSpec, Delivery, HandleError, Handler, UnitOfWork, event_meta, subjects};
use kesu_config::{ConfigError, Env};
use kesu_domain::time::to_timestamp;
use kesu_domain::{Clock, Policy, SystemClock};
use kesu_proto::type_names;
use kesu_proto::v1::sla_service_server::SlaServiceServer;
use kesu_proto::v1::{SlaArmed, SlaEvent, Ticket, TicketEvent, sla_event};
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::Migrations;
use tokio_util::sync::CancellationToken;

pub use error::Error;

pub const SERVICE: &str = "sla-timer";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50053, http: 8083 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// sla-timer's settings (`KESU_SLA_TIMER_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { common: CommonConfig::from_env(env, SERVICE, PORTS)? })
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
    core.consume(
        ConsumerSpec::new(TICKETS, SERVICE, settings),
        Arc::new(TicketEvents { policy, clock: clock.clone() }),
    );

    let (router, health) =
        kesu_runtime::grpc_router(kesu_proto::v1::sla_service_server::SERVICE_NAME, core.auth_layer(&roles::TABLE));
    health.set_serving::<SlaServiceServer<grpc::SlaApi>>().await;
    let router = router.add_service(SlaServiceServer::new(grpc::SlaApi::new(core.db.clone(), clock)));
    core.serve(router, health, None).await
}

struct TicketEvents {
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
}

impl Handler for TicketEvents {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let event: TicketEvent = d.decode(type_names::TICKET_EVENT)?;
        match kesu_domain::events::created_ticket(&event).map_err(|e| HandleError::Permanent(e.into()))? {
            Some(ticket) => self.arm(work, &event, ticket).await,
            None => Ok(()),
        }
    }
}

impl TicketEvents {
    async fn arm(&self, work: &mut UnitOfWork, event: &TicketEvent, ticket: &Ticket) -> Result<(), HandleError> {
        let now = self.clock.now();
        let clocks = clocks::arm(ticket, &self.policy, now);
        let priority = kesu_domain::Priority::from_proto(ticket.priority).unwrap_or(self.policy.default_priority());
        let mut armed = Vec::new();
        for clock in clocks {
            if store::insert_clock(work.conn(), &clock, priority.as_str(), &ticket.department).await? {
                armed.push(clock);
            }
        }
        if armed.is_empty() {
            return Ok(());
        }
        let meta = event.meta.clone().unwrap_or_default();
        let out_meta = event_meta(
            SERVICE,
            &ticket.ticket_id,
            ticket.version,
            to_timestamp(now),
            &meta.event_id,
            &meta.correlation_id,
        );
        let event_id = out_meta.event_id.clone();
        let out = SlaEvent {
            meta: Some(out_meta),
            ticket_id: ticket.ticket_id.clone(),
            feedback_number: ticket.feedback_number.clone(),
            priority: ticket.priority,
            department: ticket.department.clone(),
            handler: ticket.handler.clone(),
            fired_late: false,
            recipient_roles: Vec::new(),
            level: 0,
            kind: Some(sla_event::Kind::Armed(SlaArmed { clocks: armed })),
        };
        work.emit_protobuf(subjects::sla_event("armed"), &event_id, type_names::SLA_EVENT, &out).await?;
        tracing::debug!(ticket_id = %ticket.ticket_id, priority = priority.as_str(), "SLA clocks armed");
        Ok(())
    }
}
