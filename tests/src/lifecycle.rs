//! Working tickets through the staff API (routing's `TicketService`), as
//! the staff of the default policy's directory.

use kesu_auth::{Role, Staff};
use kesu_proto::v1::ticket_service_client::TicketServiceClient;
use kesu_proto::v1::{GetTicketRequest, RawFeedback, Ticket, TicketEvent, TicketRef, get_ticket_request};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Bearer, TestSystem, WAIT, eventually};

/// The staff API as one member of staff.
pub type Desk = TicketServiceClient<InterceptedService<Channel, Bearer>>;

/// A member of staff (ids from `shared/domain/policy/staff.toml`).
pub fn member(id: &str, role: Role, department: &str) -> Staff {
    Staff::new(id, role, department)
}

/// After-sales handler 1 (工程师).
pub fn as_handler() -> Staff {
    member("s-as-01", Role::Handler, "after_sales")
}

/// The after-sales department head.
pub fn as_manager() -> Staff {
    member("s-as-head", Role::DepartmentManager, "after_sales")
}

/// A frontline agent.
pub fn agent() -> Staff {
    member("s-cs-01", Role::Agent, "customer_service")
}

/// The after-sales supervisor.
pub fn supervisor() -> Staff {
    member("s-sup-02", Role::Supervisor, "after_sales")
}

/// The staff API of routing, as `staff`.
pub async fn desk(system: &TestSystem, staff: &Staff) -> Desk {
    TicketServiceClient::with_interceptor(system.channel("routing").await, Bearer::new(&system.token_for(staff)))
}

/// Submits a feedback (request/reply) and waits for its ticket.
pub async fn ticket_for(system: &TestSystem, channel: &str, raw: &RawFeedback) -> Ticket {
    let number = system.submit(channel, raw).await.feedback_number;
    assert!(!number.is_empty(), "the feedback is accepted");
    let reader = desk(system, &agent()).await;
    eventually(&format!("a ticket for {number}"), WAIT, || {
        let (mut reader, number) = (reader.clone(), number.clone());
        async move {
            let key = Some(get_ticket_request::Key::FeedbackNumber(number));
            reader.get_ticket(GetTicketRequest { key }).await.ok().map(|r| r.into_inner())
        }
    })
    .await
}

/// The ticket as the caller saw it (its id and version).
pub fn at(ticket: &Ticket) -> Option<TicketRef> {
    Some(TicketRef { ticket_id: ticket.ticket_id.clone(), expected_version: ticket.version })
}

/// The ticket's events on `TICKETS`, in order, with their kinds.
pub async fn events_of(system: &TestSystem, ticket_id: &str) -> Vec<(String, TicketEvent)> {
    system
        .messages("TICKETS", "ticket.evt.")
        .await
        .into_iter()
        .map(|m| (m.subject.trim_start_matches("ticket.evt.").to_string(), m.decode::<TicketEvent>()))
        .filter(|(_, e)| e.ticket.as_ref().is_some_and(|t| t.ticket_id == ticket_id))
        .collect()
}

/// Waits until the ticket's events reach `version`.
pub async fn wait_events(system: &TestSystem, ticket_id: &str, version: u64) -> Vec<(String, TicketEvent)> {
    eventually(&format!("events of {ticket_id} up to version {version}"), WAIT, || async {
        let events = events_of(system, ticket_id).await;
        events.iter().any(|(_, e)| e.ticket.as_ref().is_some_and(|t| t.version >= version)).then_some(events)
    })
    .await
}
