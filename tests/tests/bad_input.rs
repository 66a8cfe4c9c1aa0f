//! Bad input gets a clear error naming the field, and nothing is lost.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::{Backend, Role, TestSystem, feedback};
use prost::Message;

#[tokio::test]
async fn undecodable_bytes_land_in_the_dead_letter_stream_with_the_error() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let garbage = b"\xff\xff\xff this is not protobuf".to_vec();
    system.publish_bytes("feedback.raw.web", garbage.clone(), None).await;
    let dead = system.wait_for("DLQ_INTAKE", "dlq.intake", 1).await;
    // Kept sealed (it may hold personal data): ListDeadLetters opens it
    // (tests/tests/intake_dead_letters.rs).
    assert_ne!(dead[0].payload.as_ref(), garbage.as_slice(), "the original is sealed in the stream");
    assert_eq!(dead[0].header("Kesu-Dlq-Sealed"), Some("contact-key"));
    let error = dead[0].header("Kesu-Dlq-Error").unwrap();
    assert!(error.contains("kesu.v1.RawFeedback"), "{error}");
    assert_eq!(dead[0].header("Kesu-Dlq-Subject"), Some("feedback.raw.web"));
    assert_eq!(dead[0].header("Kesu-Dlq-Stream"), Some("FEEDBACK_RAW"));
    assert_eq!(dead[0].header("Kesu-Type"), Some("kesu.v1.RawFeedback"), "the original headers are kept");
    // Nothing else came of it, and intake goes on with the next message.
    system.publish_raw("web", &feedback::robot_vacuum("after-garbage"), None).await;
    system.wait_for("FEEDBACK", "feedback.evt.accepted", 1).await;
    assert!(system.messages("FEEDBACK", "feedback.evt.rejected").await.is_empty());
    system.stop().await;
}

#[tokio::test]
async fn a_missing_required_field_is_rejected_by_name_and_the_original_kept() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut raw = feedback::robot_vacuum("web-no-contact");
    raw.customer.as_mut().unwrap().contacts.clear();
    system.publish_raw("web", &raw, None).await;
    let rejected = system.wait_for("FEEDBACK", "feedback.evt.rejected", 1).await;
    let event: FeedbackEvent = rejected[0].decode();
    assert_eq!((event.channel, event.external_id.as_str()), (Channel::Web as i32, "web-no-contact"));
    let Some(feedback_event::Kind::Rejected(r)) = event.kind else { panic!("not rejected") };
    assert_eq!(r.errors.len(), 1);
    assert_eq!((r.errors[0].field.as_str(), r.errors[0].code.as_str()), ("customer.contacts", "required"));
    assert!(!r.sealed_original.is_empty() && !r.sealed_original.windows(6).any(|w| w == "张三".as_bytes()));

    // The original is visible, exactly as sent, to staff through intake.
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let listed = intake.list_rejected(ListRejectedRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.rejected.len(), 1);
    assert_eq!(listed.rejected[0].original, raw.encode_to_vec());
    assert_eq!(listed.rejected[0].errors[0].field, "customer.contacts");
    system.stop().await;
}

#[tokio::test]
async fn unknown_enum_values_oversized_text_and_bad_contacts_are_named() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut raw = feedback::robot_vacuum("web-enum");
    raw.request_nature = 99;
    raw.title = "标".repeat(201);
    let reply = system.submit("web", &raw).await;
    assert_eq!(reply.outcome, SubmitOutcome::Rejected as i32);
    let fields: Vec<&str> = reply.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["title", "request_nature"]);
    assert_eq!(reply.errors[1].code, "unknown_value");

    // A malformed contact is taken, numbered, and queued for review.
    let mut raw = feedback::robot_vacuum("web-bad-phone");
    raw.customer.as_mut().unwrap().contacts[0].value = "call me maybe".into();
    let reply = system.submit("web", &raw).await;
    assert_eq!(reply.outcome, SubmitOutcome::PendingReview as i32);
    assert!(!reply.feedback_number.is_empty());
    assert_eq!(reply.errors[0].field, "customer.contacts[0].value");
    let review = system.wait_for("FEEDBACK", "feedback.evt.review_required", 1).await;
    let event: FeedbackEvent = review[0].decode();
    assert_eq!(event.feedback_number, reply.feedback_number);

    // An undecodable request is answered, not dropped.
    let answer =
        system.client.request("feedback.submit.web", bytes::Bytes::from_static(b"\x08\xff\xff")).await.unwrap();
    let answer = SubmitFeedbackResponse::decode(answer.payload.as_ref()).unwrap();
    assert_eq!(answer.outcome, SubmitOutcome::Rejected as i32);
    assert_eq!((answer.errors[0].field.as_str(), answer.errors[0].code.as_str()), ("payload", "undecodable"));

    // A subject naming no channel, with no channel in the message.
    let reply = system.submit("fax", &feedback::robot_vacuum("fax-1")).await;
    assert_eq!(reply.errors[0].field, "channel");
    system.stop().await;
}

#[tokio::test]
async fn a_resend_of_a_numbered_feedback_keeps_its_number_even_if_this_copy_is_bad() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let first = system.submit("web", &feedback::robot_vacuum("web-resend")).await;
    assert_eq!(first.outcome, SubmitOutcome::Accepted as i32);
    let mut broken = feedback::robot_vacuum("web-resend");
    broken.description.clear();
    let again = system.submit("web", &broken).await;
    assert_eq!(again.outcome, SubmitOutcome::Duplicate as i32, "{again:?}");
    assert_eq!(again.feedback_number, first.feedback_number);
    system.stop().await;
}
