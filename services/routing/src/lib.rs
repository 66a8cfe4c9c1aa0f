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
use kesu_bus::{ConsumerSpec, Delivery, HandleError, Handler, UnitOfWork, event_meta, subjects};
use kesu_config::{ConfigError, Env};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_domain::{Clock, Priority, SystemClock};
use kesu_proto::type_names;
use kesu_proto::v1::ticket_service_server::TicketServiceServer;
use kesu_proto::v1::{
    Feedback, FeedbackEvent, TicketCreated, TicketEscalated, TicketEvent, TicketStatus, feedback_event, ticket_event,
};
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
        Arc::new(FeedbackEvents { rules, clock, lifecycle: lifecycle.clone() }),
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

/// Intake's events: accepted feedback becomes a ticket; the others need no
/// ticket (yet).
struct FeedbackEvents {
    rules: Arc<tickets::Rules>,
    clock: Arc<dyn Clock>,
    lifecycle: Arc<lifecycle::Context>,
}

impl Handler for FeedbackEvents {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let event: FeedbackEvent = d.decode(type_names::FEEDBACK_EVENT)?;
        match &event.kind {
            Some(feedback_event::Kind::Accepted(accepted)) => {
                let feedback = accepted
                    .feedback
                    .as_ref()
                    .ok_or_else(|| HandleError::Permanent("feedback.evt.accepted without its feedback".into()))?;
                self.create_ticket(work, &event, feedback).await
            }
            Some(_) => Ok(()),
            None => {
                tracing::debug!(subject = %d.subject, "feedback event of a kind this version does not know; skipped");
                Ok(())
            }
        }
    }
}

impl FeedbackEvents {
    async fn create_ticket(
        &self,
        work: &mut UnitOfWork,
        event: &FeedbackEvent,
        feedback: &Feedback,
    ) -> Result<(), HandleError> {
        if feedback.feedback_id.is_empty() || feedback.feedback_number.is_empty() {
            return Err(HandleError::Permanent("accepted feedback without id or number".into()));
        }
        let now = self.clock.now();
        let policy = &self.rules.policy;
        let mut ticket = tickets::from_feedback(feedback, uuid::Uuid::now_v7().to_string(), &self.rules, now);
        let classification = ticket.classification.clone().unwrap_or_default();
        let priority = Priority::from_proto(ticket.priority).unwrap_or(policy.default_priority());
        let department = ticket.department.clone();
        let need = assign::Need {
            type_code: &classification.type_code,
            cause_code: &classification.cause_code,
            department: &department,
            priority,
        };
        if ticket.status == TicketStatus::New as i32 {
            let workload = assign::workload_in_batch(work, &assign::candidates(policy, &need)).await?;
            if let Some(a) = assign::choose(policy, &need, &workload, now) {
                assign::assigned_in_batch(work, &a.handler, to_millis(now)).await?;
                ticket.handler = a.handler;
                ticket.co_handlers = a.co_handlers;
                ticket.status = TicketStatus::Assigned as i32;
            }
        }
        let created = ticket.clone();
        // An urgent ticket pages its department head at once (contract 0.3).
        let head = (priority == Priority::Urgent)
            .then(|| policy.staff().department_head(&ticket.department))
            .flatten()
            .map(|m| m.id.clone());
        if head.is_some() {
            ticket.version = 2;
        }
        if !store::insert_ticket(work.conn(), &ticket, to_millis(now)).await? {
            tracing::debug!(feedback_number = %feedback.feedback_number, "feedback already has a ticket");
            return Ok(());
        }
        let handler = if ticket.handler.is_empty() { "none on duty".to_string() } else { ticket.handler.clone() };
        let summary = format!(
            "created: type {}/{}, priority {} ({}), department {}, handler {handler}",
            display(&classification.type_code),
            display(&classification.cause_code),
            tickets::priority_name(ticket.priority),
            ticket.priority_reasons.join("; "),
            ticket.department,
        );
        store::insert_history(work.conn(), &ticket.ticket_id, 1, "created", "system", to_millis(now), &summary).await?;
        let correlation = event.meta.as_ref().map(|m| m.correlation_id.as_str()).unwrap_or_default();
        let causation = event.meta.as_ref().map(|m| m.event_id.as_str()).unwrap_or_default();
        let meta = event_meta(SERVICE, &ticket.ticket_id, 1, to_timestamp(now), causation, correlation);
        let event_id = meta.event_id.clone();
        let out = TicketEvent {
            meta: Some(meta),
            ticket: Some(created),
            actor: "system".into(),
            kind: Some(ticket_event::Kind::Created(TicketCreated {})),
        };
        work.emit_protobuf(subjects::ticket_event("created"), &event_id, type_names::TICKET_EVENT, &out).await?;
        if let Some(head) = head {
            let reason = format!("urgent: {}", ticket.priority_reasons.join("; "));
            let summary = format!("escalated to the department head {head}: {reason}");
            store::insert_history(work.conn(), &ticket.ticket_id, 2, "escalated", "system", to_millis(now), &summary)
                .await?;
            let meta = event_meta(SERVICE, &ticket.ticket_id, 2, to_timestamp(now), &event_id, correlation);
            let escalated_id = meta.event_id.clone();
            let out = TicketEvent {
                meta: Some(meta),
                ticket: Some(ticket.clone()),
                actor: "system".into(),
                kind: Some(ticket_event::Kind::Escalated(TicketEscalated {
                    level: 1,
                    to_role: "department_head".into(),
                    to_staff: head,
                    reason,
                })),
            };
            work.emit_protobuf(subjects::ticket_event("escalated"), &escalated_id, type_names::TICKET_EVENT, &out)
                .await?;
        }
        common_issues::report(&self.lifecycle, work, &ticket.ticket_id).await?;
        tracing::debug!(feedback_number = %ticket.feedback_number, ticket_id = %ticket.ticket_id, "ticket created");
        Ok(())
    }
}

/// A code for the history, "-" when empty.
fn display(code: &str) -> &str {
    if code.is_empty() { "-" } else { code }
}
