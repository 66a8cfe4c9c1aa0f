//! Working a ticket: acknowledge, progress at named stages with the
//! communication log, wait on the customer and resume, resolve, notes.

use kesu_proto::v1::{
    AcknowledgeRequest, AddNoteRequest, Communication, CommunicationDirection, NoteAdded, ProgressRecorded,
    ProgressStage, RecordProgressRequest, Resolution, ResolutionResult, ResolveRequest, ResumeRequest, Ticket,
    TicketAcknowledged, TicketResolved, TicketResumed, TicketStatus, WaitOnCustomerRequest, WaitingOnCustomer,
    ticket_event::Kind,
};

use super::state::Action;
use super::{Caller, Context, Session, expected, required, retrying};
use crate::error::Error;
use kesu_domain::time::to_timestamp;

pub async fn acknowledge(ctx: &Context, caller: &Caller, req: &AcknowledgeRequest) -> Result<Ticket, Error> {
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Acknowledge)?;
            s.ticket.status = t.to as i32;
            if s.ticket.acknowledged_at.is_none() {
                s.ticket.acknowledged_at = Some(to_timestamp(s.now));
            }
            let handler = s.ticket.handler.clone();
            s.record("acknowledged", Kind::Acknowledged(TicketAcknowledged { handler }), "acknowledged".into());
            s.commit().await
        }
        .await
    )
}

/// `contacted customer`, … for history.
fn stage_words(stage: ProgressStage) -> &'static str {
    match stage {
        ProgressStage::Unspecified => "unspecified",
        ProgressStage::ContactedCustomer => "contacted customer",
        ProgressStage::Diagnosed => "diagnosed",
        ProgressStage::WaitingForParts => "waiting for parts",
        ProgressStage::FixInProgress => "fix in progress",
        ProgressStage::Done => "done",
        ProgressStage::Other => "other",
    }
}

fn direction_words(d: CommunicationDirection) -> &'static str {
    match d {
        CommunicationDirection::ToCustomer => "to the customer",
        CommunicationDirection::FromCustomer => "from the customer",
        CommunicationDirection::Internal => "internal",
        CommunicationDirection::Unspecified => "unspecified",
    }
}

/// Checks a communication log entry: direction, medium and summary.
fn communication(c: &Communication) -> Result<Communication, Error> {
    let direction = CommunicationDirection::try_from(c.direction)
        .ok()
        .filter(|d| *d != CommunicationDirection::Unspecified)
        .ok_or_else(|| Error::InvalidArgument {
            field: "communication.direction",
            message: "to_customer, from_customer or internal".into(),
        })?;
    Ok(Communication {
        direction: direction as i32,
        medium: required("communication.medium", &c.medium, "how: phone, sms, email, visit, …")?,
        summary: required("communication.summary", &c.summary, "what was said")?,
    })
}

pub async fn record_progress(ctx: &Context, caller: &Caller, req: &RecordProgressRequest) -> Result<Ticket, Error> {
    let stage =
        ProgressStage::try_from(req.stage).ok().filter(|s| *s != ProgressStage::Unspecified).ok_or_else(|| {
            Error::InvalidArgument {
                field: "stage",
                message:
                    "a named stage: contacted_customer, diagnosed, waiting_for_parts, fix_in_progress, done, other"
                        .into(),
            }
        })?;
    let comm = req.communication.as_ref().map(communication).transpose()?;
    let note = req.note.trim().to_string();
    if note.is_empty() && comm.is_none() {
        return Err(Error::InvalidArgument { field: "note", message: "give a note or a communication".into() });
    }
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::RecordProgress)?;
            s.ticket.status = t.to as i32;
            s.ticket.stage = stage as i32;
            s.ticket.last_progress_at = Some(to_timestamp(s.now));
            let mut summary = format!("progress: {}", stage_words(stage));
            if let Some(c) = &comm {
                let dir = CommunicationDirection::try_from(c.direction).unwrap_or_default();
                summary.push_str(&format!("; {} by {}: {}", direction_words(dir), c.medium, c.summary));
            }
            if !note.is_empty() {
                summary.push_str(&format!("; note: {note}"));
            }
            let event = ProgressRecorded {
                stage: stage as i32,
                note: note.clone(),
                communication: comm.clone(),
                notify_customer: req.notify_customer,
            };
            s.record("progress", Kind::Progress(event), summary);
            s.commit().await
        }
        .await
    )
}

pub async fn wait_on_customer(ctx: &Context, caller: &Caller, req: &WaitOnCustomerRequest) -> Result<Ticket, Error> {
    let reason = required("reason", &req.reason, "what the customer is asked for")?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::WaitOnCustomer)?;
            s.ticket.status = t.to as i32;
            let summary = format!("waiting on the customer: {reason}");
            s.record("waiting", Kind::Waiting(WaitingOnCustomer { reason: reason.clone() }), summary);
            s.commit().await
        }
        .await
    )
}

pub async fn resume(ctx: &Context, caller: &Caller, req: &ResumeRequest) -> Result<Ticket, Error> {
    let reason = req.reason.trim().to_string();
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Resume)?;
            s.ticket.status = t.to as i32;
            let summary = if reason.is_empty() { "resumed".to_string() } else { format!("resumed: {reason}") };
            s.record("resumed", Kind::Resumed(TicketResumed { reason: reason.clone() }), summary);
            s.commit().await
        }
        .await
    )
}

pub async fn resolve(ctx: &Context, caller: &Caller, req: &ResolveRequest) -> Result<Ticket, Error> {
    let solution = required("solution", &req.solution, "what was done")?;
    let result =
        ResolutionResult::try_from(req.result).ok().filter(|r| *r != ResolutionResult::Unspecified).ok_or_else(
            || Error::InvalidArgument { field: "result", message: "resolved, partially_resolved or unresolved".into() },
        )?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Resolve)?;
            resolve_in(&mut s, t.to, &solution, result, "");
            s.commit().await
        }
        .await
    )
}

/// Marks the ticket resolved and records it (also used for the tickets of
/// a common issue resolved together).
pub fn resolve_in(
    s: &mut Session<'_>,
    to: TicketStatus,
    solution: &str,
    result: ResolutionResult,
    common_issue_id: &str,
) {
    let now = to_timestamp(s.now);
    s.ticket.status = to as i32;
    s.ticket.resolved_at = Some(now);
    let resolution = Resolution {
        solution: solution.to_string(),
        result: result as i32,
        resolved_by: s.caller().actor().to_string(),
        resolved_at: Some(now),
    };
    s.ticket.resolution = Some(resolution.clone());
    let result_words = result.as_str_name().trim_start_matches("RESOLUTION_RESULT_").to_lowercase();
    let summary = format!("resolved ({result_words}): {solution}");
    let event = TicketResolved { resolution: Some(resolution), common_issue_id: common_issue_id.to_string() };
    s.record("resolved", Kind::Resolved(event), summary);
}

pub async fn add_note(ctx: &Context, caller: &Caller, req: &AddNoteRequest) -> Result<Ticket, Error> {
    let note = required("note", &req.note, "the note's text")?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            s.decide(Action::AddNote)?;
            s.record("note_added", Kind::NoteAdded(NoteAdded { note: note.clone() }), format!("note: {note}"));
            s.commit().await
        }
        .await
    )
}
