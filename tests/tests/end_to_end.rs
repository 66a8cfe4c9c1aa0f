//! A feedback through all five services.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::journey::{
    AnyHour, TRACE_ID, raw_feedback_ends_as_ticket_clocks_notification_and_counts, trace_id,
};
use kesu_system_tests::{Backend, Role, TestSystem, feedback};

#[tokio::test]
async fn a_raw_feedback_flows_through_all_five_services_on_sqlite() {
    let any_hour = AnyHour::new();
    let system = TestSystem::start_with(Backend::Sqlite, &kesu_system_tests::SERVICES, &any_hour.env()).await;
    raw_feedback_ends_as_ticket_clocks_notification_and_counts(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn a_raw_feedback_flows_through_all_five_services_on_postgres() {
    let any_hour = AnyHour::new();
    let Some(system) =
        TestSystem::try_start_with(Backend::Postgres, &kesu_system_tests::SERVICES, &any_hour.env()).await
    else {
        return;
    };
    raw_feedback_ends_as_ticket_clocks_notification_and_counts(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn request_reply_submit_answers_with_the_number_at_once() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let first = system.submit("app", &feedback::robot_vacuum("app-7")).await;
    assert_eq!(first.outcome, SubmitOutcome::Accepted as i32, "{first:?}");
    assert!(first.feedback_number.starts_with("FB") && first.feedback_number.len() == 14, "{first:?}");
    assert_eq!((first.channel, first.external_id.as_str()), (Channel::App as i32, "app-7"));

    let again = system.submit("app", &feedback::robot_vacuum("app-7")).await;
    assert_eq!(again.outcome, SubmitOutcome::Duplicate as i32);
    assert_eq!(again.feedback_number, first.feedback_number, "the same submission keeps its number");

    let second = system.submit("app", &feedback::robot_vacuum("app-8")).await;
    assert_eq!(second.feedback_number[..10], first.feedback_number[..10]);
    assert_eq!(second.feedback_number[10..], *"0002", "daily serials count up");

    let mut bad = feedback::robot_vacuum("app-9");
    bad.customer = None;
    let rejected = system.submit("app", &bad).await;
    assert_eq!(rejected.outcome, SubmitOutcome::Rejected as i32);
    assert_eq!(rejected.errors[0].field, "customer");
    assert!(rejected.feedback_number.is_empty());
    system.stop().await;
}

#[tokio::test]
async fn grpc_submit_names_the_bad_field_in_the_status() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let mut raw = feedback::late_delivery("mail-1");
    raw.channel = Channel::Email as i32;
    let ok = intake.submit_feedback(raw.clone()).await.unwrap().into_inner();
    assert_eq!(ok.outcome, SubmitOutcome::Accepted as i32);
    let stored = intake
        .get_feedback(GetFeedbackRequest { key: Some(get_feedback_request::Key::FeedbackNumber(ok.feedback_number)) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.customer.unwrap().contacts[0].masked, "a***@example.com");

    raw.external_id = "mail-2".into();
    raw.urgency = 42;
    let status = intake.submit_feedback(raw).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let violations = details.bad_request().expect("a BadRequest detail").field_violations.clone();
    assert_eq!(violations[0].field, "urgency");
    assert!(status.message().contains("urgency"));
    system.stop().await;
}

#[tokio::test]
async fn a_trace_started_by_intake_continues_through_the_other_services() {
    let any_hour = AnyHour::new();
    let services = ["intake", "routing", "sla-timer", "notification"];
    let system = TestSystem::start_with(Backend::Sqlite, &services, &any_hour.env()).await;
    system.publish_raw("web", &feedback::robot_vacuum("web-untraced"), None).await;
    let accepted = system.wait_for("FEEDBACK", "feedback.evt.accepted", 1).await;
    let started = trace_id(&accepted[0]);
    assert_ne!(started, TRACE_ID);
    let created = system.wait_for("TICKETS", "ticket.evt.created", 1).await;
    let armed = system.wait_for("SLA", "sla.evt.armed", 1).await;
    let requested = system.wait_for("NOTIFY_REQUESTS", "notify.req.", 1).await;
    for m in [&created[0], &armed[0], &requested[0]] {
        assert_eq!(trace_id(m), started, "{} continues the trace intake started", m.subject);
    }
    system.stop().await;
}
