//! What notification reacts to: intake's feedback events, routing's ticket
//! events, sla-timer's SLA events and analytics' published reports, each
//! read by its own durable consumer (a stream whose owner is not running
//! yet holds up only its own notices). Each event becomes moments
//! ([`crate::moment::Moment`]); the rules turn them into notices; a batch's
//! notices and ticket views are written once, before the commit.

pub mod feedback;
pub mod reports;
pub mod sla;
pub mod tickets;

use std::sync::Arc;

use kesu_bus::subjects::{ANALYTICS, FEEDBACK, SLA, TICKETS};
use kesu_bus::{Delivery, HandleError, Handler, UnitOfWork};
use kesu_domain::time::to_millis;
use kesu_domain::{Clock, ContactKey, Policy};
use kesu_proto::type_names;
use kesu_timers::Timers;

use crate::decide::Decider;
use crate::moment::Moment;
use crate::notice::{self, Notice};
use crate::projection::{self, Latest};

/// Readiness check that fails while sealed contacts do not open.
pub const CONTACT_KEY_CHECK: &str = "contact key opens sealed contacts";

/// What reacting needs.
pub struct Context {
    pub policy: Arc<Policy>,
    pub key: ContactKey,
    pub clock: Arc<dyn Clock>,
    pub timers: Timers,
    pub readiness: kesu_runtime::Readiness,
    pub address_retention: chrono::Duration,
}

impl Context {
    pub fn decider(&self) -> Decider<'_> {
        Decider { policy: &self.policy, key: &self.key, now: self.clock.now() }
    }
}

/// What a batch accumulates.
#[derive(Default)]
struct Batch {
    notices: Vec<Notice>,
    views: Latest,
}

/// The handler of the four event streams (one consumer each).
pub struct Reactions {
    pub ctx: Arc<Context>,
}

impl Handler for Reactions {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let traceparent = d.traceparent.as_deref();
        let moments: Vec<Moment> = match d.stream.as_str() {
            s if s == FEEDBACK.name => feedback::moments(&d.decode(type_names::FEEDBACK_EVENT)?, traceparent)?,
            s if s == TICKETS.name => {
                let event = d.decode(type_names::TICKET_EVENT)?;
                let moments = tickets::moments(&event, &self.ctx.policy, traceparent)?;
                if let Some(ticket) = &event.ticket {
                    work.batch_state::<Batch>().views.offer(ticket);
                }
                moments
            }
            s if s == SLA.name => {
                let event: kesu_proto::v1::SlaEvent = d.decode(type_names::SLA_EVENT)?;
                let view = if sla::concerns_anyone(&event) {
                    projection::get(work.conn(), &event.ticket_id)
                        .await
                        .map_err(|e| HandleError::Transient(e.to_string()))?
                } else {
                    None
                };
                sla::moments(&event, view.as_ref(), traceparent)?
            }
            s if s == ANALYTICS.name => reports::moments(&d.decode(type_names::ANALYTICS_EVENT)?, traceparent)?,
            other => return Err(HandleError::Permanent(format!("notification does not read stream {other}"))),
        };
        let decider = self.ctx.decider();
        let mut notices = Vec::new();
        for moment in &moments {
            match decider.decide(moment) {
                Ok(mut decided) => notices.append(&mut decided),
                Err(crate::decide::WrongKey) => {
                    // A configuration error of this service, not of the
                    // message: not ready, and the message retried (then
                    // dead-lettered, kept for replay) rather than the
                    // customer silently skipped.
                    self.ctx.readiness.set(CONTACT_KEY_CHECK, false);
                    return Err(HandleError::Transient(
                        "a sealed contact does not open with this service's CONTACT_KEY (it must equal intake's)"
                            .into(),
                    ));
                }
            }
        }
        if moments.iter().any(|m| m.customer.is_some()) {
            self.ctx.readiness.set(CONTACT_KEY_CHECK, true);
        }
        work.batch_state::<Batch>().notices.append(&mut notices);
        Ok(())
    }

    async fn before_commit(&self, work: &mut UnitOfWork) -> Result<(), HandleError> {
        let now = self.ctx.clock.now();
        flush_views(work, now).await?;
        let batch = work.take_batch_state::<Batch>();
        notice::record(work, batch.notices, now, self.ctx.address_retention, &self.ctx.timers).await?;
        Ok(())
    }
}

/// Writes the ticket views gathered so far in this unit of work.
async fn flush_views(work: &mut UnitOfWork, now: chrono::DateTime<chrono::Utc>) -> Result<(), HandleError> {
    let views: Vec<_> = std::mem::take(&mut work.batch_state::<Batch>().views.0).into_values().collect();
    if !views.is_empty() {
        projection::upsert_many(work.conn(), &views, to_millis(now)).await?;
    }
    Ok(())
}
