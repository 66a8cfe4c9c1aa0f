//! Routing's ticket events: assignment (a created ticket with a handler
//! counts as one) with a "call the customer" task when the customer has no
//! reachable contact, the urgent page to the department head, customer
//! progress, extensions, the result (or the common issue's), the
//! satisfaction survey, and low scores to the supervisor.

use kesu_bus::HandleError;
use kesu_domain::Policy;
use kesu_domain::policy::Trigger;
use kesu_proto::v1::{TicketEvent, ticket_event};

use crate::moment::{Moment, Source, instant};

pub fn moments(event: &TicketEvent, policy: &Policy, traceparent: Option<&str>) -> Result<Vec<Moment>, HandleError> {
    use ticket_event::Kind;
    let Some(kind) = &event.kind else { return Ok(Vec::new()) };
    let ticket = event
        .ticket
        .as_ref()
        .ok_or_else(|| HandleError::Permanent("a ticket event without its ticket (the contract carries it)".into()))?;
    let source = Source::of(event.meta.as_ref(), traceparent);
    let moment = |trigger| Moment::of_ticket(trigger, source.clone(), ticket);
    let mut out = Vec::new();
    match kind {
        Kind::Created(_) | Kind::Assigned(_) if !ticket.handler.is_empty() => {
            out.push(moment(Trigger::TicketAssigned));
            if ticket.no_reachable_contact {
                out.push(moment(Trigger::TicketNoReachableContact));
            }
        }
        Kind::Escalated(e) if e.to_role == "department_head" => {
            let mut m = moment(Trigger::TicketUrgentPage);
            m.escalated_to = e.to_staff.clone();
            m.facts.reason = e.reason.clone();
            m.facts.level = e.level;
            out.push(m);
        }
        Kind::Progress(p) if p.notify_customer => {
            let mut m = moment(Trigger::TicketProgress);
            m.facts.stage = p.stage;
            m.facts.note = p.note.clone();
            out.push(m);
        }
        Kind::DeadlineExtended(x) => {
            let mut m = moment(Trigger::TicketDeadlineExtended);
            m.facts.reason = x.reason.clone();
            m.facts.clock = x.clock;
            m.deadline = instant(x.new_deadline.as_ref());
            out.push(m);
        }
        Kind::Resolved(r) => {
            let resolution = r.resolution.clone().or_else(|| ticket.resolution.clone()).unwrap_or_default();
            let common = !r.common_issue_id.is_empty();
            let trigger = if common { Trigger::TicketCommonIssueResolved } else { Trigger::TicketResolved };
            for trigger in [trigger, Trigger::TicketFollowUp] {
                let mut m = moment(trigger);
                m.facts.result = resolution.result;
                m.facts.solution = resolution.solution.clone();
                m.facts.common_issue_id = r.common_issue_id.clone();
                if trigger == Trigger::TicketFollowUp {
                    // One survey per ticket and round, however often resolved.
                    m.scope = format!("survey:{}:{}", ticket.ticket_id, ticket.survey_round);
                }
                out.push(m);
            }
        }
        Kind::Rated(r) => {
            let satisfaction = r.satisfaction.clone().unwrap_or_default();
            if satisfaction.score >= 1 && satisfaction.score <= policy.notification().low_score_max {
                let mut m = moment(Trigger::TicketRatedLow);
                m.facts.score = satisfaction.score;
                m.facts.comment = satisfaction.comment.clone();
                out.push(m);
            }
        }
        _ => {}
    }
    Ok(out)
}
