//! Steering a ticket: reassign, reclassify, set the priority, escalate,
//! extend a deadline. Each needs a reason where it overrides what the rules
//! or someone else decided.

use kesu_domain::Policy;
use kesu_domain::time::from_timestamp;
use kesu_proto::v1::{
    Classification, ClassificationSource, ClassifyRequest, DeadlineExtended, EscalateRequest, ExtendDeadlineRequest,
    Priority, ReassignRequest, RequestNature, SetPriorityRequest, SlaClockKind, Ticket, TicketAssigned,
    TicketClassified, TicketEscalated, TicketPrioritised, ticket_event::Kind,
};

use super::state::Action;
use super::{Caller, Context, Session, expected, required, retrying};
use crate::error::Error;
use crate::tickets::priority_name;

pub async fn reassign(ctx: &Context, caller: &Caller, req: &ReassignRequest) -> Result<Ticket, Error> {
    let policy = &ctx.policy;
    let handler = req.handler.trim().to_string();
    let member = if handler.is_empty() {
        None
    } else {
        let m = policy.staff().get(&handler).filter(|m| m.active).ok_or_else(|| Error::InvalidArgument {
            field: "handler",
            message: format!("{handler} is not active staff of the directory"),
        })?;
        Some(m)
    };
    let department = match (req.department.trim(), member) {
        ("", Some(m)) => m.department.clone(),
        ("", None) => {
            return Err(Error::InvalidArgument {
                field: "department",
                message: "give a department or a handler".into(),
            });
        }
        (d, _) => {
            policy.department(d).ok_or_else(|| Error::InvalidArgument {
                field: "department",
                message: format!("{d} is not a department of the policy"),
            })?;
            d.to_string()
        }
    };
    if let Some(m) = member
        && m.department != department
    {
        let message = format!("{} works in {}, not {department}", m.id, m.department);
        return Err(Error::InvalidArgument { field: "handler", message });
    }
    let mut co_handlers = Vec::new();
    for c in &req.co_handlers {
        let c = c.trim();
        if policy.staff().get(c).filter(|m| m.active).is_none() {
            let message = format!("{c} is not active staff of the directory");
            return Err(Error::InvalidArgument { field: "co_handlers", message });
        }
        if c != handler && !co_handlers.iter().any(|x: &String| x == c) {
            co_handlers.push(c.to_string());
        }
    }
    let reason = req.reason.trim().to_string();
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Reassign { to_handler: !handler.is_empty() })?;
            let previous = s.ticket.handler.clone();
            if !previous.is_empty() && reason.is_empty() {
                return Err(Error::InvalidArgument {
                    field: "reason",
                    message: "a reassignment needs a reason".into(),
                });
            }
            s.ticket.status = t.to as i32;
            s.ticket.department = department.clone();
            s.ticket.handler = handler.clone();
            s.ticket.co_handlers = co_handlers.clone();
            let who = if handler.is_empty() { "nobody yet".to_string() } else { handler.clone() };
            let mut summary = format!("assigned to {who} in {department}");
            if !reason.is_empty() {
                summary.push_str(&format!(": {reason}"));
            }
            let event = TicketAssigned {
                department: department.clone(),
                handler: handler.clone(),
                co_handlers: co_handlers.clone(),
                previous_handler: previous,
                reason: reason.clone(),
            };
            s.record("assigned", Kind::Assigned(event), summary);
            s.commit().await
        }
        .await
    )
}

pub async fn classify(ctx: &Context, caller: &Caller, req: &ClassifyRequest) -> Result<Ticket, Error> {
    let policy = &ctx.policy;
    let type_code = required("type_code", &req.type_code, "a type of the taxonomy")?;
    let problem_type = policy.problem_type(&type_code).ok_or_else(|| Error::InvalidArgument {
        field: "type_code",
        message: format!("{type_code} is not a type of the taxonomy"),
    })?;
    let cause_code = req.cause_code.trim().to_string();
    if !cause_code.is_empty() && !problem_type.causes.iter().any(|c| c.code == cause_code) {
        let message = format!("{cause_code} is not a cause of {type_code}");
        return Err(Error::InvalidArgument { field: "cause_code", message });
    }
    if RequestNature::try_from(req.request_nature).is_err() {
        let message = format!("{} is not a known RequestNature value", req.request_nature);
        return Err(Error::InvalidArgument { field: "request_nature", message });
    }
    let reason = req.reason.trim().to_string();
    let type_department = problem_type.department.clone();
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Classify)?;
            let previous = s.ticket.classification.clone().unwrap_or_default();
            let correction = !previous.type_code.is_empty();
            if correction && reason.is_empty() {
                let message = "reclassifying needs a reason (it is counted as a correction)".into();
                return Err(Error::InvalidArgument { field: "reason", message });
            }
            let classification = Classification {
                type_code: type_code.clone(),
                cause_code: cause_code.clone(),
                request_nature: if req.request_nature == 0 { previous.request_nature } else { req.request_nature },
                source: ClassificationSource::Staff as i32,
                matched_keywords: Vec::new(),
                confidence: 1.0,
                request_kind: previous.request_kind,
            };
            s.ticket.classification = Some(classification.clone());
            s.ticket.status = t.to as i32;
            if s.ticket.handler.is_empty() {
                // Nobody works it yet: it goes to the type's department.
                s.ticket.department = type_department.clone();
            }
            let mut summary = format!("classified {type_code}/{cause_code}");
            if correction {
                summary = format!(
                    "reclassified from {}/{} to {type_code}/{cause_code}: {reason}",
                    previous.type_code, previous.cause_code
                );
            }
            let event = TicketClassified {
                previous: Some(previous),
                classification: Some(classification),
                reason: reason.clone(),
                correction,
            };
            s.record("classified", Kind::Classified(event), summary);
            s.commit().await
        }
        .await
    )
}

pub async fn set_priority(ctx: &Context, caller: &Caller, req: &SetPriorityRequest) -> Result<Ticket, Error> {
    let priority = Priority::try_from(req.priority)
        .ok()
        .filter(|p| *p != Priority::Unspecified)
        .ok_or_else(|| Error::InvalidArgument { field: "priority", message: "low, medium, high or urgent".into() })?;
    let reason = required("reason", &req.reason, "an override needs a reason")?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            s.decide(Action::SetPriority)?;
            let previous = Priority::try_from(s.ticket.priority).unwrap_or_default();
            s.ticket.priority = priority as i32;
            s.ticket.priority_overridden = true;
            let why = format!("set by staff: {reason}");
            s.ticket.priority_reasons.push(why.clone());
            let summary =
                format!("priority {} → {}: {reason}", priority_name(previous as i32), priority_name(priority as i32));
            let event = TicketPrioritised { previous: previous as i32, priority: priority as i32, reasons: vec![why] };
            s.record("prioritised", Kind::Prioritised(event), summary);
            if priority == Priority::Urgent && previous != Priority::Urgent {
                page_department_head(&mut s, "prioritised to urgent");
            }
            s.commit().await
        }
        .await
    )
}

/// The person an escalation to `role` reaches for a ticket of `department`.
pub fn escalation_target(policy: &Policy, department: &str, role: &str) -> Option<String> {
    let staff = policy.staff();
    match role {
        "supervisor" => staff.supervisors_of(department).first().map(|m| m.id.clone()),
        "department_head" => staff.department_head(department).map(|m| m.id.clone()),
        "director" => staff.director().map(|m| m.id.clone()),
        _ => None,
    }
}

/// Records `ticket.evt.escalated` to the department head (urgent tickets
/// page them at once; contract 0.3).
pub fn page_department_head(s: &mut Session<'_>, reason: &str) {
    let to_staff = escalation_target(s.policy(), &s.ticket.department, "department_head").unwrap_or_default();
    let event = TicketEscalated {
        level: 1,
        to_role: "department_head".into(),
        to_staff: to_staff.clone(),
        reason: reason.into(),
    };
    s.record("escalated", Kind::Escalated(event), format!("escalated to the department head {to_staff}: {reason}"));
}

pub async fn escalate(ctx: &Context, caller: &Caller, req: &EscalateRequest) -> Result<Ticket, Error> {
    let role = req.to_role.trim().to_string();
    let level = match role.as_str() {
        "supervisor" | "department_head" => 1,
        "director" => 2,
        _ => {
            let message = "supervisor, department_head or director".into();
            return Err(Error::InvalidArgument { field: "to_role", message });
        }
    };
    let reason = required("reason", &req.reason, "why it is escalated")?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            s.decide(Action::Escalate)?;
            let to_staff = escalation_target(s.policy(), &s.ticket.department, &role).unwrap_or_default();
            let summary = format!("escalated to the {role} {to_staff}: {reason}");
            let event = TicketEscalated { level, to_role: role.clone(), to_staff, reason: reason.clone() };
            s.record("escalated", Kind::Escalated(event), summary);
            s.commit().await
        }
        .await
    )
}

pub async fn extend_deadline(ctx: &Context, caller: &Caller, req: &ExtendDeadlineRequest) -> Result<Ticket, Error> {
    let clock =
        SlaClockKind::try_from(req.clock).ok().filter(|c| *c != SlaClockKind::Unspecified).ok_or_else(|| {
            Error::InvalidArgument { field: "clock", message: "which deadline: response, resolution, …".into() }
        })?;
    let new_deadline =
        req.new_deadline.ok_or_else(|| Error::InvalidArgument { field: "new_deadline", message: "required".into() })?;
    let reason = required("reason", &req.reason, "a deadline is extended only with a reason")?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            s.decide(Action::ExtendDeadline)?;
            if from_timestamp(&new_deadline).is_none_or(|d| d <= s.now) {
                let message = "must be a valid time in the future".into();
                return Err(Error::InvalidArgument { field: "new_deadline", message });
            }
            let clock_words = clock.as_str_name().trim_start_matches("SLA_CLOCK_KIND_").to_lowercase();
            let summary = format!("{clock_words} deadline extended: {reason}");
            let event = DeadlineExtended {
                clock: clock as i32,
                previous_deadline: None,
                new_deadline: Some(new_deadline),
                reason: reason.clone(),
            };
            s.record("deadline_extended", Kind::DeadlineExtended(event), summary);
            s.commit().await
        }
        .await
    )
}
