//! Notification: decides who is told what, when and how.
//!
//! Consumes `ticket.evt.>`; when a ticket is created, the customer is sent
//! an acknowledgement with their feedback number on their preferred
//! reachable channel, in their language. The decision is recorded (once per
//! ticket, purpose and recipient) and the work for senders is published on
//! `notify.req.<sms|email|app>` with `notify.evt.requested` (or
//! `notify.evt.suppressed` when the customer cannot be reached) through the
//! outbox. Contacts are opened with the contact key only to address the
//! request; events and records keep the masked form.

mod compose;
mod error;
mod grpc;
pub mod roles;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use kesu_bus::subjects::TICKETS;
use kesu_bus::{ConsumerSpec, Delivery as BusDelivery, HandleError, Handler, UnitOfWork, event_meta, subjects};
use kesu_config::{ConfigError, Env};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_domain::{Clock, ContactKey, Policy, SystemClock};
use kesu_proto::type_names;
use kesu_proto::v1::notification_service_server::NotificationServiceServer;
use kesu_proto::v1::{
    Delivery, DeliveryStatus, NotificationEvent, NotificationPurpose, NotificationRequest, NotificationRequested,
    NotificationSuppressed, Recipient, RecipientKind, Ticket, TicketEvent, notification_event,
};
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::Migrations;
use tokio_util::sync::CancellationToken;

pub use error::Error;

use crate::compose::Unreachable;

pub const SERVICE: &str = "notification";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50054, http: 8084 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// notification's settings (`KESU_NOTIFICATION_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Opens sealed contacts to address requests; the same key as intake's.
    pub contact_key: ContactKey,
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
    let handler =
        TicketEvents { readiness: core.readiness.clone(), policy: policy.clone(), key: config.contact_key, clock };
    core.consume(ConsumerSpec::new(TICKETS, SERVICE, settings), Arc::new(handler));

    let (router, health) = kesu_runtime::grpc_router(
        kesu_proto::v1::notification_service_server::SERVICE_NAME,
        core.auth_layer(&roles::TABLE),
    );
    health.set_serving::<NotificationServiceServer<grpc::NotificationApi>>().await;
    let router =
        router.add_service(NotificationServiceServer::new(grpc::NotificationApi::new(core.db.clone(), policy)));
    core.serve(router, health, None).await
}

/// Readiness check that fails while sealed contacts do not open.
const CONTACT_KEY_CHECK: &str = "contact key opens sealed contacts";

struct TicketEvents {
    readiness: kesu_runtime::Readiness,
    policy: Arc<Policy>,
    key: ContactKey,
    clock: Arc<dyn Clock>,
}

impl Handler for TicketEvents {
    async fn handle(&self, work: &mut UnitOfWork, d: &BusDelivery) -> Result<(), HandleError> {
        let event: TicketEvent = d.decode(type_names::TICKET_EVENT)?;
        match kesu_domain::events::created_ticket(&event).map_err(|e| HandleError::Permanent(e.into()))? {
            Some(ticket) => self.acknowledge(work, &event, ticket).await,
            None => Ok(()),
        }
    }
}

/// What was decided for one notification.
enum Decision {
    Send { destination: compose::Destination, message: compose::Message },
    Suppress(String),
}

impl TicketEvents {
    /// The customer is told their feedback was accepted, with its number.
    async fn acknowledge(
        &self,
        work: &mut UnitOfWork,
        event: &TicketEvent,
        ticket: &Ticket,
    ) -> Result<(), HandleError> {
        let purpose = NotificationPurpose::Acknowledgement;
        let template_id = "acknowledgement";
        let now = self.clock.now();
        let customer = ticket.customer.clone().unwrap_or_default();
        let language = self.policy.template_language(&ticket.locale);
        let decision = match compose::destination(&customer, &self.key) {
            Ok(destination) => {
                let name = self.key.open(&customer.sealed_name).unwrap_or_default();
                let greeting = if name.is_empty() && language == "en" { "there".to_string() } else { name };
                let params = BTreeMap::from([
                    ("feedback_number", ticket.feedback_number.clone()),
                    ("customer_name", greeting),
                    ("title", ticket.title.clone()),
                    ("ticket_id", ticket.ticket_id.clone()),
                    ("department", ticket.department.clone()),
                ]);
                match compose::message(&self.policy, template_id, destination.channel, &ticket.locale, &params) {
                    Ok(message) => Decision::Send { destination, message },
                    Err(reason) => Decision::Suppress(reason),
                }
            }
            Err(Unreachable::NoContact) => Decision::Suppress("no reachable contact for sms, email or app".into()),
            Err(Unreachable::WrongKey) => {
                // A configuration error of this service, not of the message:
                // not ready, and the message retried (then dead-lettered,
                // kept for replay) rather than the customer silently skipped.
                self.readiness.set(CONTACT_KEY_CHECK, false);
                return Err(HandleError::Transient(
                    "a sealed contact does not open with this service's CONTACT_KEY (it must equal intake's)".into(),
                ));
            }
        };
        self.readiness.set(CONTACT_KEY_CHECK, true);

        let request_id = uuid::Uuid::now_v7().to_string();
        let (channel, status, masked, detail) = match &decision {
            Decision::Send { destination, .. } => {
                (destination.channel, DeliveryStatus::Requested, destination.masked.clone(), String::new())
            }
            Decision::Suppress(reason) => {
                (Default::default(), DeliveryStatus::Suppressed, String::new(), reason.clone())
            }
        };
        let record = Delivery {
            request_id: request_id.clone(),
            ticket_id: ticket.ticket_id.clone(),
            channel: channel as i32,
            purpose: purpose as i32,
            recipient_kind: RecipientKind::Customer as i32,
            masked_address: masked.clone(),
            status: status as i32,
            template_id: template_id.into(),
            locale: language.into(),
            requested_at: Some(to_timestamp(now)),
            updated_at: Some(to_timestamp(now)),
            detail: detail.clone(),
        };
        let dedup_key = format!("{}:{}:customer", ticket.ticket_id, store::purpose_name(purpose as i32));

        if !store::insert_delivery(work.conn(), &record, &dedup_key, to_millis(now)).await? {
            return Ok(());
        }
        let source = event.meta.clone().unwrap_or_default();
        let meta = || event_meta(SERVICE, &request_id, 0, to_timestamp(now), &source.event_id, &source.correlation_id);
        let notice = |kind| NotificationEvent {
            meta: Some(meta()),
            request_id: request_id.clone(),
            channel: channel as i32,
            purpose: purpose as i32,
            ticket_id: ticket.ticket_id.clone(),
            recipient_kind: RecipientKind::Customer as i32,
            kind: Some(kind),
        };
        match decision {
            Decision::Send { destination, message } => {
                let request_meta = meta();
                let request_event_id = request_meta.event_id.clone();
                let request = NotificationRequest {
                    meta: Some(request_meta),
                    request_id: request_id.clone(),
                    channel: channel as i32,
                    purpose: purpose as i32,
                    recipient: Some(Recipient {
                        kind: RecipientKind::Customer as i32,
                        address: destination.address,
                        masked_address: destination.masked,
                        display_name: customer.masked_name.clone(),
                        ..Default::default()
                    }),
                    locale: message.language.into(),
                    template_id: template_id.into(),
                    subject: message.subject,
                    body: message.body,
                    params: [("feedback_number".to_string(), ticket.feedback_number.clone())].into(),
                    ticket_id: ticket.ticket_id.clone(),
                    feedback_number: ticket.feedback_number.clone(),
                    priority: ticket.priority,
                    attempt: 1,
                    ..Default::default()
                };
                let subject = subjects::notify_request(store::channel_name(channel as i32));
                work.emit_protobuf(subject, &request_event_id, type_names::NOTIFICATION_REQUEST, &request).await?;
                let requested = notice(notification_event::Kind::Requested(NotificationRequested { not_before: None }));
                emit_notice(work, "requested", &requested).await?;
                tracing::debug!(ticket_id = %ticket.ticket_id, channel = store::channel_name(channel as i32), "acknowledgement requested");
            }
            Decision::Suppress(reason) => {
                let suppressed =
                    notice(notification_event::Kind::Suppressed(NotificationSuppressed { reason: reason.clone() }));
                emit_notice(work, "suppressed", &suppressed).await?;
                tracing::info!(ticket_id = %ticket.ticket_id, reason = %reason, "acknowledgement suppressed");
            }
        }
        Ok(())
    }
}

async fn emit_notice(work: &mut UnitOfWork, kind: &str, event: &NotificationEvent) -> Result<(), sqlx::Error> {
    let id = event.meta.as_ref().map(|m| m.event_id.as_str()).unwrap_or_default();
    work.emit_protobuf(subjects::notify_event(kind), id, type_names::NOTIFICATION_EVENT, event).await
}
