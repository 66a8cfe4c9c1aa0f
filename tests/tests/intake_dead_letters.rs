//! Intake's dead letters are sealed in the stream, visible to admins with
//! the original opened, and can be replayed.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::{Backend, Role, TestSystem};

#[tokio::test]
async fn admins_list_dead_letters_opened_and_replay_them_into_the_rejected_record() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let garbage = b"\xff\xff\xff 13812345678 not protobuf".to_vec();
    system.publish_bytes("feedback.raw.web", garbage.clone(), None).await;
    let dead = system.wait_for("DLQ_INTAKE", "dlq.intake", 1).await;
    assert!(!dead[0].payload.windows(11).any(|w| w == b"13812345678"), "sealed in the stream");

    let mut agent = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let denied = agent.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let mut admin = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Admin));
    let listed = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.dead_letters.len(), 1);
    let letter = &listed.dead_letters[0];
    assert_eq!(letter.original, garbage, "opened for the admin");
    assert_eq!(
        (letter.original_subject.as_str(), letter.original_stream.as_str()),
        ("feedback.raw.web", "FEEDBACK_RAW")
    );
    assert!(letter.error.contains("kesu.v1.RawFeedback"), "{}", letter.error);
    assert_eq!(letter.headers.get("Kesu-Type").map(String::as_str), Some("kesu.v1.RawFeedback"));
    assert!(listed.next_page_token.is_empty());

    let replayed =
        admin.replay_dead_letter(ReplayDeadLetterRequest { sequence: letter.sequence }).await.unwrap().into_inner();
    assert_eq!(replayed.outcome, SubmitOutcome::Rejected as i32);
    assert_eq!((replayed.errors[0].field.as_str(), replayed.errors[0].code.as_str()), ("payload", "undecodable"));
    let after = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner();
    assert!(after.dead_letters.is_empty(), "replayed dead letters are removed");
    let again = admin.replay_dead_letter(ReplayDeadLetterRequest { sequence: letter.sequence }).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);
    // Now kept with the rejected submissions, exactly as sent.
    let rejected = agent.list_rejected(ListRejectedRequest::default()).await.unwrap().into_inner();
    assert_eq!(rejected.rejected[0].original, garbage);
    system.stop().await;
}

#[tokio::test]
async fn raw_feedback_is_kept_by_the_broker_for_a_day_not_a_week() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut raw = system.js.get_stream("FEEDBACK_RAW").await.unwrap();
    assert_eq!(raw.info().await.unwrap().config.max_age, std::time::Duration::from_secs(24 * 3600));
    let mut events = system.js.get_stream("FEEDBACK").await.unwrap();
    assert_eq!(events.info().await.unwrap().config.max_age, std::time::Duration::from_secs(7 * 24 * 3600));
    system.stop().await;

    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[("KESU_INTAKE_RAW_MAX_AGE", "1h")]).await;
    let mut raw = system.js.get_stream("FEEDBACK_RAW").await.unwrap();
    assert_eq!(raw.info().await.unwrap().config.max_age, std::time::Duration::from_secs(3600));
    system.stop().await;
}
