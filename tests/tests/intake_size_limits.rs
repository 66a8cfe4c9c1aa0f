//! A description over the limit is refused naming `description` on every
//! path: gRPC, request/reply and the JetStream publish. Only a message over
//! the broker's max payload is refused by the broker itself.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::{Backend, Role, TestSystem, feedback};
use prost::Message;
use tonic_types::StatusExt;

fn oversized(external_id: &str, chars: usize) -> RawFeedback {
    RawFeedback {
        description: "扫地机器人开机无反应。".repeat(chars / 11 + 1), ..feedback::robot_vacuum(external_id)
    }
}

#[tokio::test]
async fn a_two_megabyte_description_over_grpc_is_refused_by_our_validator_naming_the_field() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent))
        .max_encoding_message_size(64 * 1024 * 1024);
    let raw = RawFeedback { channel: Channel::Web as i32, ..oversized("grpc-big", 700_000) };
    assert!(raw.encoded_len() > 2 * 1024 * 1024);
    let status = intake.submit_feedback(raw).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let violations = status.get_error_details().bad_request().expect("a BadRequest").field_violations.clone();
    assert_eq!(violations[0].field, "description");
    assert!(status.message().contains("at most 5000"), "{}", status.message());
    system.stop().await;
}

#[tokio::test]
async fn request_reply_and_jetstream_name_the_description() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    // 600 KB: over the policy's limit, under the broker's max payload.
    let reply = system.submit("web", &oversized("rr-big", 200_000)).await;
    assert_eq!(reply.outcome, SubmitOutcome::Rejected as i32);
    assert_eq!((reply.errors[0].field.as_str(), reply.errors[0].code.as_str()), ("description", "too_long"));
    assert_eq!(reply.errors.len(), 1, "{:?}", reply.errors);

    system.publish_raw("web", &oversized("js-big", 200_000), None).await;
    let rejected = system.wait_for("FEEDBACK", "feedback.evt.rejected", 2).await;
    let event: FeedbackEvent = rejected[1].decode();
    assert_eq!(event.external_id, "js-big");
    let Some(feedback_event::Kind::Rejected(r)) = event.kind else { panic!("not rejected") };
    assert_eq!((r.errors[0].field.as_str(), r.errors[0].code.as_str()), ("description", "too_long"));
    assert!(r.sealed_original.is_empty() && r.original_size > 600_000, "kept by intake, not carried");

    // Over the broker's limit the stream itself refuses the publish at once.
    let huge = oversized("js-huge", 400_000).encode_to_vec();
    assert!(huge.len() > 1024 * 1024);
    let refused = system.js.publish("feedback.raw.web", huge.into()).await;
    let error = match refused {
        Err(e) => e.to_string(),
        Ok(ack) => ack.await.expect_err("the stream refuses a message over its max size").to_string(),
    };
    assert!(error.to_lowercase().contains("size") || error.to_lowercase().contains("payload"), "{error}");
    system.stop().await;
}
