//! sla-timer's events: warnings, breaches, escalations, overdue
//! acknowledgements and stale tickets to the staff the event names (as
//! roles, resolved through the staff directory), and the customer's
//! periodic progress update.

use kesu_bus::HandleError;
use kesu_domain::policy::Trigger;
use kesu_proto::v1::{SlaClock, SlaEvent, Ticket, TicketStatus, sla_event};

use crate::moment::{Moment, Source, instant};

/// Whether the event tells anyone (armed, paused, resumed and met do not).
pub fn concerns_anyone(event: &SlaEvent) -> bool {
    use sla_event::Kind;
    matches!(
        event.kind,
        Some(
            Kind::Warning(_)
                | Kind::Breached(_)
                | Kind::Escalated(_)
                | Kind::AckOverdue(_)
                | Kind::Stale(_)
                | Kind::UpdateDue(_)
        )
    )
}

/// The moments of an SLA event; `view` is the ticket as notification last
/// saw it (needed for the customer's progress update).
pub fn moments(event: &SlaEvent, view: Option<&Ticket>, traceparent: Option<&str>) -> Result<Vec<Moment>, HandleError> {
    use sla_event::Kind;
    let Some(kind) = &event.kind else { return Ok(Vec::new()) };
    if !concerns_anyone(event) {
        return Ok(Vec::new());
    }
    if event.ticket_id.is_empty() {
        return Err(HandleError::Permanent("an SLA event without ticket_id".into()));
    }
    let source = Source::of(event.meta.as_ref(), traceparent);
    let (trigger, clock) = match kind {
        Kind::Warning(w) => (Trigger::SlaWarning, w.clock.as_ref()),
        Kind::Breached(b) => (Trigger::SlaBreached, b.clock.as_ref()),
        Kind::Escalated(e) => (Trigger::SlaEscalated, e.clock.as_ref()),
        Kind::AckOverdue(a) => (Trigger::SlaAckOverdue, a.clock.as_ref()),
        Kind::Stale(_) => (Trigger::SlaStale, None),
        Kind::UpdateDue(_) => (Trigger::SlaUpdateDue, None),
        _ => return Ok(Vec::new()),
    };
    if trigger == Trigger::SlaUpdateDue {
        let Some(ticket) = view else {
            // sla-timer saw the ticket, so routing's event is on its way.
            return Err(HandleError::Transient(format!(
                "ticket {} not seen yet: its progress update waits",
                event.ticket_id
            )));
        };
        let closed = [TicketStatus::Resolved, TicketStatus::Closed, TicketStatus::Archived, TicketStatus::FollowUp]
            .map(|s| s as i32)
            .contains(&ticket.status);
        if closed {
            return Ok(Vec::new());
        }
    }
    let mut m = match view {
        Some(ticket) => Moment::of_ticket(trigger, source, ticket),
        None => Moment { trigger: Some(trigger), scope: source.event_id.clone(), source, ..Default::default() },
    };
    m.ticket_id = event.ticket_id.clone();
    if !event.feedback_number.is_empty() {
        m.feedback_number = event.feedback_number.clone();
    }
    if event.priority != 0 {
        m.priority = event.priority;
    }
    if !event.department.is_empty() {
        m.department = event.department.clone();
    }
    if !event.handler.is_empty() {
        m.handler = event.handler.clone();
    }
    m.sla_roles = event.recipient_roles.clone();
    m.facts.level = event.level;
    if let Some(c) = clock {
        apply_clock(&mut m, c);
    }
    match kind {
        Kind::Warning(w) => m.facts.percent_elapsed = w.percent_elapsed,
        Kind::Escalated(e) => {
            m.facts.level = e.level.max(event.level);
            m.facts.reason = e.reason.clone();
            m.escalated_to = e.to_staff.clone();
        }
        Kind::AckOverdue(a) if !a.handler.is_empty() => m.handler = a.handler.clone(),
        Kind::Stale(s) => m.deadline = instant(s.last_progress_at.as_ref()),
        Kind::UpdateDue(u) => m.facts.sequence = u.sequence,
        _ => {}
    }
    Ok(vec![m])
}

fn apply_clock(m: &mut Moment, clock: &SlaClock) {
    m.facts.clock = clock.kind;
    m.deadline = instant(clock.deadline.as_ref());
}
