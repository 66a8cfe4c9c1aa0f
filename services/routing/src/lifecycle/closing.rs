//! Ending the loop: close after the follow-up (customer confirmed), reopen
//! (at most three times, then a supervisor decides).

use kesu_domain::time::to_timestamp;
use kesu_proto::v1::{CloseRequest, ReopenRequest, Ticket, TicketClosed, ticket_event::Kind};

use super::rating::reopen_in;
use super::state::Action;
use super::{Caller, Context, Session, expected, required, retrying};
use crate::error::Error;

pub async fn reopen(ctx: &Context, caller: &Caller, req: &ReopenRequest) -> Result<Ticket, Error> {
    let reason = required("reason", &req.reason, "why it is reopened")?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            s.decide(Action::Reopen)?;
            reopen_in(&mut s, &reason, false, "");
            s.commit().await
        }
        .await
    )
}

pub async fn close(ctx: &Context, caller: &Caller, req: &CloseRequest) -> Result<Ticket, Error> {
    let note = req.note.trim().to_string();
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Close)?;
            s.ticket.status = t.to as i32;
            s.ticket.closed_at = Some(to_timestamp(s.now));
            let confirmed = if req.customer_confirmed { "customer confirmed" } else { "not confirmed by the customer" };
            let mut summary = format!("closed ({confirmed})");
            if !note.is_empty() {
                summary.push_str(&format!(": {note}"));
            }
            let event = TicketClosed { customer_confirmed: req.customer_confirmed, note: note.clone() };
            s.record("closed", Kind::Closed(event), summary);
            s.commit().await
        }
        .await
    )
}
