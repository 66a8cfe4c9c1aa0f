//! A customer who gave only a landline or a 400 number is flagged, so the
//! ticket tells the handler to call.

use kesu_proto::v1::*;
use kesu_system_tests::{Backend, TestSystem, feedback};

#[tokio::test]
async fn landline_and_400_only_customers_are_flagged_on_the_feedback_and_the_ticket() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await;
    for (id, number) in [("phone-landline", "021-61234567"), ("phone-400", "400 812 3456")] {
        let mut raw = feedback::robot_vacuum(id);
        raw.customer.as_mut().unwrap().contacts[0].value = number.into();
        let reply = system.submit("phone", &raw).await;
        assert_eq!(reply.outcome, SubmitOutcome::Accepted as i32, "{reply:?}");
    }
    system.submit("phone", &feedback::robot_vacuum("phone-mobile")).await;
    let created = system.wait_for("TICKETS", "ticket.evt.created", 3).await;
    let mut flags: Vec<(String, bool)> = created
        .iter()
        .map(|m| m.decode::<TicketEvent>().ticket.unwrap())
        .map(|t| (t.external_id, t.no_reachable_contact))
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        [("phone-400".to_string(), true), ("phone-landline".to_string(), true), ("phone-mobile".to_string(), false)]
    );
    let accepted = system.wait_for("FEEDBACK", "feedback.evt.accepted", 3).await;
    let event: FeedbackEvent = accepted[0].decode();
    let Some(feedback_event::Kind::Accepted(a)) = event.kind else { panic!("not accepted") };
    assert!(a.feedback.unwrap().no_reachable_contact);
    system.stop().await;
}
