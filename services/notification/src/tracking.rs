//! Delivery tracking: senders' reports (`notify.report.<channel>`, stream
//! NOTIFY_REPORTS) move a delivery from requested to sent, delivered or
//! failed with the reason, and are announced as `notify.evt.sent`,
//! `delivered`, `failed` for analytics (never with the address). Reports
//! may arrive twice or out of order: a status only moves forward.

use std::sync::Arc;

use kesu_bus::{Delivery as BusDelivery, HandleError, Handler, UnitOfWork};
use kesu_domain::policy::Trigger;
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::type_names;
use kesu_proto::v1::{
    Delivery, DeliveryReport, DeliveryReportKind, DeliveryStatus, NotificationDelivered, NotificationFailed,
    NotificationPurpose, NotificationSent, RecipientKind, notification_event,
};

use crate::events::Context;
use crate::moment::{Moment, Source};
use crate::notice::{self, emit_event, event};
use crate::{deliveries, projection};

/// How far along a status is: a report never moves a delivery back.
fn rank(status: i32) -> u8 {
    match DeliveryStatus::try_from(status).unwrap_or_default() {
        DeliveryStatus::Unspecified | DeliveryStatus::Deferred | DeliveryStatus::Requested => 0,
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Suppressed => 2,
    }
}

/// Applies a report to a delivery; the event kind to announce, if any.
pub fn apply(delivery: &mut Delivery, report: &DeliveryReport) -> Option<notification_event::Kind> {
    let kind = DeliveryReportKind::try_from(report.kind).unwrap_or_default();
    let attempt = report.attempt.max(1);
    delivery.attempts = delivery.attempts.max(attempt);
    if !report.sender.is_empty() {
        delivery.sender = report.sender.clone();
    }
    if !report.provider_message_id.is_empty() {
        delivery.provider_message_id = report.provider_message_id.clone();
    }
    let (status, announce) = match kind {
        DeliveryReportKind::Sent => (
            DeliveryStatus::Sent,
            notification_event::Kind::Sent(NotificationSent {
                sender: report.sender.clone(),
                provider_message_id: report.provider_message_id.clone(),
            }),
        ),
        DeliveryReportKind::Delivered => (
            DeliveryStatus::Delivered,
            notification_event::Kind::Delivered(NotificationDelivered { delivered_at: report.at }),
        ),
        DeliveryReportKind::Failed => {
            delivery.detail = report.reason.clone();
            let failed = notification_event::Kind::Failed(NotificationFailed {
                reason: report.reason.clone(),
                retryable: report.retryable,
                attempt,
            });
            if report.retryable {
                // Still on its way: the status stays, the attempt is told.
                return Some(failed);
            }
            (DeliveryStatus::Failed, failed)
        }
        DeliveryReportKind::Unspecified => return None,
    };
    // Final states stay; nothing moves back; a repeat is not news.
    if rank(delivery.status) == 2 || rank(status as i32) <= rank(delivery.status) {
        return None;
    }
    delivery.status = status as i32;
    Some(announce)
}

/// The consumer of NOTIFY_REPORTS. A customer notice that failed for good
/// becomes a "call the customer" task for the ticket's handler: never
/// silence.
pub struct DeliveryReports {
    pub ctx: Arc<Context>,
}

#[derive(Default)]
struct Reports(Vec<(DeliveryReport, Source)>);

impl Handler for DeliveryReports {
    async fn handle(&self, work: &mut UnitOfWork, d: &BusDelivery) -> Result<(), HandleError> {
        let report: DeliveryReport = d.decode(type_names::DELIVERY_REPORT)?;
        if report.request_id.is_empty() {
            return Err(HandleError::Permanent("a delivery report without request_id".into()));
        }
        let source = Source {
            event_id: d.message_id.clone(),
            correlation_id: String::new(),
            traceparent: d.traceparent.clone(),
        };
        work.batch_state::<Reports>().0.push((report, source));
        Ok(())
    }

    async fn before_commit(&self, work: &mut UnitOfWork) -> Result<(), HandleError> {
        let Reports(reports) = work.take_batch_state::<Reports>();
        if reports.is_empty() {
            return Ok(());
        }
        let now = self.ctx.clock.now();
        let ids: Vec<String> = reports.iter().map(|(r, _)| r.request_id.clone()).collect();
        let mut found: std::collections::HashMap<String, Delivery> = deliveries::get_many(work.conn(), &ids)
            .await
            .map_err(|e| HandleError::Transient(e.to_string()))?
            .into_iter()
            .map(|s| (s.delivery.request_id.clone(), s.delivery))
            .collect();
        let mut changed = std::collections::BTreeSet::new();
        let mut failed = Vec::new();
        for (report, source) in &reports {
            let Some(delivery) = found.get_mut(&report.request_id) else {
                tracing::debug!(request_id = %report.request_id, "a delivery report for a request this service did not make");
                continue;
            };
            if let Some(kind) = apply(delivery, report) {
                delivery.updated_at = Some(to_timestamp(now));
                let e = event(delivery, kind, uuid::Uuid::now_v7().to_string(), source, now);
                emit_event(work, &e, source).await?;
                let customer = delivery.recipient_kind == RecipientKind::Customer as i32;
                if customer && delivery.status == DeliveryStatus::Failed as i32 {
                    failed.push((delivery.clone(), source.clone()));
                }
            }
            changed.insert(report.request_id.clone());
        }
        let mut tasks = Vec::new();
        for (delivery, source) in failed {
            let view = if delivery.ticket_id.is_empty() {
                None
            } else {
                projection::get(work.conn(), &delivery.ticket_id)
                    .await
                    .map_err(|e| HandleError::Transient(e.to_string()))?
            };
            let Some(ticket) = view.filter(|t| !t.handler.is_empty()) else { continue };
            let mut moment = Moment::of_ticket(Trigger::TicketNoReachableContact, source, &ticket);
            moment.scope = format!("failed:{}", delivery.request_id);
            let purpose = NotificationPurpose::try_from(delivery.purpose).unwrap_or_default();
            tasks.extend(self.ctx.decider().call_task(&moment, purpose));
        }
        notice::record(work, tasks, now, self.ctx.address_retention, &self.ctx.timers).await?;
        for id in changed {
            deliveries::update(work.conn(), &found[&id], to_millis(now)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: DeliveryReportKind, retryable: bool) -> DeliveryReport {
        DeliveryReport {
            request_id: "R".into(),
            kind: kind as i32,
            retryable,
            attempt: 2,
            reason: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_status_only_moves_forward() {
        let mut d = Delivery { status: DeliveryStatus::Requested as i32, ..Default::default() };
        assert!(matches!(
            apply(&mut d, &report(DeliveryReportKind::Failed, true)),
            Some(notification_event::Kind::Failed(_))
        ));
        assert_eq!(d.status, DeliveryStatus::Requested as i32);
        assert!(apply(&mut d, &report(DeliveryReportKind::Delivered, false)).is_some());
        assert_eq!(d.status, DeliveryStatus::Delivered as i32);
        assert!(apply(&mut d, &report(DeliveryReportKind::Sent, false)).is_none(), "a late 'sent' changes nothing");
        assert_eq!(d.status, DeliveryStatus::Delivered as i32);
        assert_eq!(d.attempts, 2);
        let mut d = Delivery { status: DeliveryStatus::Sent as i32, ..Default::default() };
        assert!(
            apply(&mut d, &report(DeliveryReportKind::Sent, false)).is_none(),
            "a repeated report is not announced twice"
        );
        assert!(apply(&mut d, &report(DeliveryReportKind::Failed, false)).is_some());
        assert_eq!(d.status, DeliveryStatus::Failed as i32);
    }
}
