//! The same submission twice never makes two tickets.

use kesu_proto::v1::ticket_service_client::TicketServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::{Backend, Role, TestSystem, feedback};

#[tokio::test]
async fn the_same_raw_message_published_twice_yields_one_ticket() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await;
    let raw = feedback::robot_vacuum("web-twice");
    // Two publishes with different Nats-Msg-Ids: JetStream keeps both, so
    // intake itself must see that it is the same feedback.
    system.publish_raw("web", &raw, None).await;
    system.publish_raw("web", &raw, None).await;
    let duplicate = system.wait_for("FEEDBACK", "feedback.evt.duplicate", 1).await;
    let accepted = system.wait_for("FEEDBACK", "feedback.evt.accepted", 1).await;
    let dup: FeedbackEvent = duplicate[0].decode();
    let first: FeedbackEvent = accepted[0].decode();
    assert_eq!(dup.feedback_number, first.feedback_number);
    let Some(feedback_event::Kind::Duplicate(d)) = dup.kind else { panic!("not a duplicate") };
    assert_eq!(d.reason, DuplicateReason::SameExternalId as i32);

    system.wait_for("TICKETS", "ticket.evt.created", 1).await;
    // Routing has handled every feedback event and sent what it wrote: a
    // second ticket, if it (wrongly) made one, would be there now.
    system.wait_until_settled("FEEDBACK", "routing").await;
    let mut tickets =
        TicketServiceClient::with_interceptor(system.channel("routing").await, system.bearer(Role::Agent));
    let all = tickets.list_tickets(ListTicketsRequest::default()).await.unwrap().into_inner().tickets;
    assert_eq!(all.len(), 1);
    assert_eq!(system.messages("TICKETS", "ticket.evt.created").await.len(), 1);
    assert_eq!(system.messages("FEEDBACK", "feedback.evt.accepted").await.len(), 1);
    system.stop().await;
}
