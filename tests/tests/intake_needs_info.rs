//! Needs info: a feedback that says too little is numbered and the customer
//! asked; the supplement completes it under the same number and it goes on
//! to routing; not supplemented in time, it is closed with a reason.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::intake::{events_of, kind, supplement, vague};
use kesu_system_tests::{Backend, Role, TestSystem, feedback};

fn fields(response: &SubmitFeedbackResponse) -> Vec<(&str, &str)> {
    response.errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect()
}

#[tokio::test]
async fn a_vague_feedback_needs_info_and_its_supplement_becomes_a_ticket_under_the_same_number() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await;
    let asked = system.submit("web", &vague("web-vague-1")).await;
    assert_eq!(asked.outcome, SubmitOutcome::NeedsInfo as i32, "{asked:?}");
    assert!(asked.feedback_number.starts_with("FB"), "numbered at once: {asked:?}");
    assert_eq!(fields(&asked), [("description", "vague"), ("customer_request", "required")]);
    let number = asked.feedback_number.clone();

    let needs_info = system.wait_for("FEEDBACK", "feedback.evt.needs_info", 1).await;
    let event: FeedbackEvent = needs_info[0].decode();
    let Some(feedback_event::Kind::NeedsInfo(n)) = event.kind else { panic!("not needs_info") };
    assert_eq!(n.missing.len(), 2);
    assert_eq!(n.feedback.unwrap().status, FeedbackStatus::NeedsInfo as i32);
    system.wait_until_settled("FEEDBACK", "routing").await;
    assert!(system.messages("TICKETS", "ticket.evt.created").await.is_empty(), "no ticket before the supplement");

    // A supplement naming a field that cannot be supplemented changes nothing.
    let mut request = SupplementFeedbackRequest {
        feedback_number: number.clone(),
        supplement: Some(RawFeedback {
            description: "扫地机器人开机无反应，已经充电一整夜，指示灯不亮。".into(),
            customer_request: Some(CustomerRequest { kind: CustomerRequestKind::Repair as i32, detail: String::new() }),
            external_id: "other".into(),
            ..Default::default()
        }),
        fields: vec!["description".into(), "external_id".into()],
    };
    let refused = supplement(&system, "web", &request).await;
    assert_eq!(refused.outcome, SubmitOutcome::Rejected as i32);
    assert_eq!(fields(&refused), [("fields[1]", "unknown_value")]);
    // Only part of what is missing: still needs info, asked again.
    request.fields = vec!["description".into()];
    let partly = supplement(&system, "web", &request).await;
    assert_eq!(partly.outcome, SubmitOutcome::NeedsInfo as i32, "{partly:?}");
    assert_eq!(fields(&partly), [("customer_request", "required")]);
    assert_eq!(partly.feedback_number, number);
    // From another channel's adapter: refused.
    request.fields = vec!["customer_request".into()];
    let foreign = supplement(&system, "app", &request).await;
    assert_eq!(fields(&foreign), [("channel", "conflict")]);

    let done = supplement(&system, "web", &request).await;
    assert_eq!(done.outcome, SubmitOutcome::Accepted as i32, "{done:?}");
    assert_eq!(done.feedback_number, number, "the feedback keeps its number");

    let created = system.wait_for("TICKETS", "ticket.evt.created", 1).await;
    let ticket = created[0].decode::<TicketEvent>().ticket.unwrap();
    assert_eq!(ticket.feedback_number, number);
    let kinds: Vec<&str> = events_of(&system, &number).await.iter().map(kind).collect();
    assert_eq!(kinds, ["needs_info", "supplemented", "needs_info", "supplemented", "accepted"]);

    // Complete now: a further supplement is refused, naming why.
    let again = supplement(&system, "web", &request).await;
    assert_eq!(fields(&again), [("feedback_number", "not_needs_info")]);
    let unknown = supplement(
        &system,
        "web",
        &SupplementFeedbackRequest { feedback_number: "FB202001010001".into(), ..request.clone() },
    )
    .await;
    assert_eq!(fields(&unknown), [("feedback_number", "not_found")]);
    system.stop().await;
}

#[tokio::test]
async fn staff_supplement_over_grpc_and_errors_map_to_statuses() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let mut raw = feedback::late_delivery("mail-vague");
    raw.channel = Channel::Email as i32;
    raw.description = "It doesn't work!".into();
    let asked = intake.submit_feedback(raw).await.unwrap().into_inner();
    assert_eq!(asked.outcome, SubmitOutcome::NeedsInfo as i32, "{asked:?}");
    assert_eq!(fields(&asked), [("description", "vague")]);

    let request = SupplementFeedbackRequest {
        feedback_number: asked.feedback_number.clone(),
        supplement: Some(RawFeedback {
            description: "The parcel has not arrived two weeks after dispatch.".into(),
            ..Default::default()
        }),
        fields: vec!["description".into()],
    };
    let done = intake.supplement_feedback(request.clone()).await.unwrap().into_inner();
    assert_eq!(
        (done.outcome, done.feedback_number.as_str()),
        (SubmitOutcome::Accepted as i32, asked.feedback_number.as_str())
    );
    let stored = intake
        .get_feedback(GetFeedbackRequest { key: Some(get_feedback_request::Key::FeedbackNumber(done.feedback_number)) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.status, FeedbackStatus::Accepted as i32);
    assert_eq!(stored.description, "The parcel has not arrived two weeks after dispatch.");
    assert!(stored.issues.is_empty());

    let status = intake.supplement_feedback(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let unknown = SupplementFeedbackRequest { feedback_number: "FB202001010001".into(), ..request.clone() };
    assert_eq!(intake.supplement_feedback(unknown).await.unwrap_err().code(), tonic::Code::NotFound);
    let no_fields = SupplementFeedbackRequest { fields: vec![], ..request };
    let status = intake.supplement_feedback(no_fields).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("fields"), "{status:?}");
    system.stop().await;
}

#[tokio::test]
async fn a_feedback_not_supplemented_in_time_is_closed_with_a_reason() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[("KESU_INTAKE_NEEDS_INFO_EXPIRY", "1s")]).await;
    let asked = system.submit("web", &vague("web-vague-late")).await;
    assert_eq!(asked.outcome, SubmitOutcome::NeedsInfo as i32);
    let closed = system.wait_for("FEEDBACK", "feedback.evt.closed", 1).await;
    let event: FeedbackEvent = closed[0].decode();
    assert_eq!(event.feedback_number, asked.feedback_number);
    let Some(feedback_event::Kind::Closed(c)) = event.kind else { panic!("not closed") };
    assert_eq!(c.code, "needs_info_expired");
    assert!(c.reason.contains("1s"), "{}", c.reason);
    assert_eq!(c.feedback.unwrap().status, FeedbackStatus::Closed as i32);

    let late = supplement(
        &system,
        "web",
        &SupplementFeedbackRequest {
            feedback_number: asked.feedback_number.clone(),
            supplement: Some(feedback::robot_vacuum("ignored")),
            fields: vec!["description".into(), "customer_request".into()],
        },
    )
    .await;
    assert_eq!(late.outcome, SubmitOutcome::Rejected as i32);
    assert_eq!(fields(&late), [("feedback_number", "not_needs_info")]);
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let stored = intake
        .get_feedback(GetFeedbackRequest {
            key: Some(get_feedback_request::Key::FeedbackNumber(asked.feedback_number)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.status, FeedbackStatus::Closed as i32);
    system.stop().await;
}
