//! The review queue: malformed data waits for staff; approve with
//! corrections makes the ticket, reject with a reason ends it; every
//! decision is an event and in the audit record; roles are checked.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::intake::{events_of, kind, vague};
use kesu_system_tests::{Backend, Role, TestSystem, feedback};

fn bad_phone(external_id: &str) -> RawFeedback {
    let mut raw = feedback::robot_vacuum(external_id);
    raw.customer.as_mut().unwrap().contacts[0].value = "call me maybe".into();
    raw
}

#[tokio::test]
async fn review_approve_with_corrections_makes_a_ticket_and_reject_with_a_reason_ends_it() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await;
    let first = system.submit("web", &bad_phone("web-review-1")).await;
    let second = system.submit("web", &bad_phone("web-review-2")).await;
    let asked = system.submit("web", &vague("web-review-vague")).await;
    assert_eq!(first.outcome, SubmitOutcome::PendingReview as i32);
    assert_eq!(asked.outcome, SubmitOutcome::NeedsInfo as i32);

    let mut agent = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let queue = |status: FeedbackStatus| ListReviewQueueRequest { status: status as i32, ..Default::default() };
    let pending = agent.list_review_queue(queue(FeedbackStatus::PendingReview)).await.unwrap().into_inner();
    let numbers: Vec<&str> = pending.feedback.iter().map(|f| f.feedback_number.as_str()).collect();
    assert_eq!(numbers, [first.feedback_number.as_str(), second.feedback_number.as_str()]);
    assert_eq!(pending.feedback[0].issues[0].field, "customer.contacts[0].value");
    assert!(pending.feedback[0].customer.as_ref().unwrap().contacts[0].masked.contains('*'), "masked");
    let both = agent.list_review_queue(queue(FeedbackStatus::Unspecified)).await.unwrap().into_inner();
    assert_eq!(both.feedback.len(), 3);
    let paged = agent
        .list_review_queue(ListReviewQueueRequest {
            page: Some(PageRequest { page_size: 2, ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rest = agent
        .list_review_queue(ListReviewQueueRequest {
            page: Some(PageRequest { page_size: 2, page_token: paged.next_page_token.clone() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((paged.feedback.len(), rest.feedback.len()), (2, 1));

    // A handler may not decide reviews.
    let mut handler =
        IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Handler));
    let approve = ResolveReviewRequest {
        feedback_number: first.feedback_number.clone(),
        decision: ReviewDecision::Corrected as i32,
        correction: Some(RawFeedback { customer: feedback::robot_vacuum("x").customer, ..Default::default() }),
        fields: vec!["customer".into()],
        note: "phone number confirmed by call".into(),
    };
    let denied = handler.resolve_review(approve.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let done = agent.resolve_review(approve.clone()).await.unwrap().into_inner();
    assert_eq!(
        (done.outcome, done.feedback_number.as_str()),
        (SubmitOutcome::Accepted as i32, first.feedback_number.as_str())
    );
    let created = system.wait_for("TICKETS", "ticket.evt.created", 1).await;
    assert_eq!(created[0].decode::<TicketEvent>().ticket.unwrap().feedback_number, first.feedback_number);
    let events = events_of(&system, &first.feedback_number).await;
    assert_eq!(events.iter().map(kind).collect::<Vec<_>>(), ["review_required", "reviewed", "accepted"]);
    let Some(feedback_event::Kind::Reviewed(r)) = &events[1].kind else { panic!("not reviewed") };
    assert_eq!((r.decision, r.reviewer.as_str()), (ReviewDecision::Corrected as i32, "s-test-agent"));
    let again = agent.resolve_review(approve).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "decided once");

    // Reject: the reason is required.
    let mut reject = ResolveReviewRequest {
        feedback_number: second.feedback_number.clone(),
        decision: ReviewDecision::Rejected as i32,
        ..Default::default()
    };
    let status = agent.resolve_review(reject.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("note"), "{status:?}");
    reject.note = "test submission by the web team".into();
    let ended = agent.resolve_review(reject).await.unwrap().into_inner();
    assert_eq!(ended.outcome, SubmitOutcome::Rejected as i32);
    let events = events_of(&system, &second.feedback_number).await;
    assert_eq!(events.iter().map(kind).collect::<Vec<_>>(), ["review_required", "reviewed"]);
    let stored = agent
        .get_feedback(GetFeedbackRequest {
            key: Some(get_feedback_request::Key::FeedbackNumber(second.feedback_number.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.status, FeedbackStatus::Rejected as i32);
    system.wait_until_settled("FEEDBACK", "routing").await;
    assert_eq!(system.messages("TICKETS", "ticket.evt.created").await.len(), 1, "no ticket for the rejected one");

    // Every decision is audited with the staff id and the feedback number.
    let db = system.database("intake", kesu_intake::MIGRATIONS).await;
    let rows = kesu_auth::audit::recent(&db, 50).await.unwrap();
    let decisions: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.action == "kesu.v1.IntakeService/ResolveReview" && r.outcome == "OK")
        .map(|r| (r.staff_id.as_str(), r.subject_id.as_str()))
        .collect();
    assert_eq!(decisions.len(), 2, "{rows:?}");
    assert!(decisions.contains(&("s-test-agent", second.feedback_number.as_str())));
    system.stop().await;
}
