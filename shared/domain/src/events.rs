//! Reading events as the contract says they are.

use kesu_proto::v1::{Ticket, TicketEvent, ticket_event};

/// The ticket of a `ticket.evt.created`; `Ok(None)` for every other kind
/// (including kinds this build does not know); `Err` when a created event
/// lacks the ticket the contract says it carries.
pub fn created_ticket(event: &TicketEvent) -> Result<Option<&Ticket>, &'static str> {
    match (&event.kind, &event.ticket) {
        (Some(ticket_event::Kind::Created(_)), Some(ticket)) => Ok(Some(ticket)),
        (Some(ticket_event::Kind::Created(_)), None) => Err("ticket.evt.created without its ticket"),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::{TicketCreated, TicketResolved};

    #[test]
    fn only_created_events_with_a_ticket_yield_one() {
        let created = |ticket| TicketEvent {
            ticket,
            kind: Some(ticket_event::Kind::Created(TicketCreated {})),
            ..Default::default()
        };
        assert!(created_ticket(&created(Some(Ticket::default()))).unwrap().is_some());
        assert!(created_ticket(&created(None)).is_err());
        let resolved =
            TicketEvent { kind: Some(ticket_event::Kind::Resolved(TicketResolved::default())), ..Default::default() };
        assert!(created_ticket(&resolved).unwrap().is_none());
        assert!(created_ticket(&TicketEvent::default()).unwrap().is_none());
    }
}
