//! Ticket creation: intake's accepted feedback becomes a ticket, assigned
//! by skill and load, with its history and its common-issue report.
//!
//! Applied in the bus's batches: each feedback's ticket row is written as
//! it is handled (its insert tells a feedback that already has a ticket),
//! while what the batch's tickets share — handlers' assignment counters,
//! history rows, common-issue reports — is gathered in [`Batch`] and
//! written once per batch before commit.

use std::collections::HashMap;
use std::sync::Arc;

use kesu_bus::{Delivery, HandleError, Handler, UnitOfWork, event_meta, subjects};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_domain::{Clock, Priority};
use kesu_proto::type_names;
use kesu_proto::v1::{
    Feedback, FeedbackEvent, Ticket, TicketCreated, TicketEscalated, TicketEvent, TicketStatus, feedback_event,
    ticket_event,
};

use crate::{SERVICE, assign, common_issues, lifecycle, store, tickets};

/// What a batch of feedback gathers for writing once, before commit.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Staff loads read in this batch, moved by its assignments.
    pub workload: assign::Workload,
    /// Per handler: tickets given in this batch and when the last was.
    pub assigned: HashMap<String, (i64, i64)>,
    pub history: Vec<store::HistoryRow>,
    /// New tickets, in order, for their common-issue reports.
    pub reports: Vec<Ticket>,
}

/// Intake's events: accepted feedback becomes a ticket; the others need no
/// ticket (yet).
pub(crate) struct FeedbackEvents {
    pub rules: Arc<tickets::Rules>,
    pub clock: Arc<dyn Clock>,
    pub lifecycle: Arc<lifecycle::Context>,
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

    async fn before_commit(&self, work: &mut UnitOfWork) -> Result<(), HandleError> {
        let batch = work.take_batch_state::<Batch>();
        assign::record_many(work.conn(), &batch.assigned).await?;
        store::insert_histories(work.conn(), &batch.history).await?;
        common_issues::report_batch(&self.lifecycle, work, batch.reports).await?;
        Ok(())
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
        let now_ms = to_millis(now);
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
        let assignment = if ticket.status == TicketStatus::New as i32 {
            let workload = assign::workload_in_batch(work, &assign::candidates(policy, &need)).await?;
            assign::choose(policy, &need, &workload, now)
        } else {
            None
        };
        if let Some(a) = &assignment {
            ticket.handler = a.handler.clone();
            ticket.co_handlers = a.co_handlers.clone();
            ticket.status = TicketStatus::Assigned as i32;
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
        if !store::insert_ticket(work.conn(), &ticket, now_ms).await? {
            tracing::debug!(feedback_number = %feedback.feedback_number, "feedback already has a ticket");
            return Ok(());
        }
        if let Some(a) = &assignment {
            assign::assigned_in_batch(work, &a.handler, now_ms);
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
        let history = |version: u64, kind: &str, summary: String| store::HistoryRow {
            ticket_id: ticket.ticket_id.clone(),
            version,
            kind: kind.to_string(),
            actor: "system".to_string(),
            at_ms: now_ms,
            summary,
        };
        let mut rows = vec![history(1, "created", summary)];
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
            rows.push(history(2, "escalated", format!("escalated to the department head {head}: {reason}")));
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
        tracing::debug!(feedback_number = %ticket.feedback_number, ticket_id = %ticket.ticket_id, "ticket created");
        let batch = work.batch_state::<Batch>();
        batch.history.extend(rows);
        batch.reports.push(ticket);
        Ok(())
    }
}

/// A code for the history, "-" when empty.
fn display(code: &str) -> &str {
    if code.is_empty() { "-" } else { code }
}
