//! Personal data typed into free text leaves intake masked, national id
//! numbers are never kept, and the language is detected when not stated.

use kesu_proto::v1::*;
use kesu_storage::sqlx;
use kesu_system_tests::{Backend, TestSystem, feedback};

const ID: &str = "11010519491231002X";

#[tokio::test]
async fn phones_and_ids_in_the_description_never_leave_intake_in_clear_and_the_language_is_detected() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut raw = feedback::late_delivery("web-pii");
    raw.locale.clear();
    raw.description = format!("My parcel never came. Call me on 139 8765 4321, my ID is {ID}, mail bob@example.org");
    let reply = system.submit("web", &raw).await;
    assert_eq!(reply.outcome, SubmitOutcome::Accepted as i32, "{reply:?}");

    let accepted = system.wait_for("FEEDBACK", "feedback.evt.accepted", 1).await;
    let bytes = accepted[0].payload.as_ref();
    for secret in ["98765", "8765 4321", "1101051949", "bob@example.org"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} left intake in clear");
    }
    let event: FeedbackEvent = accepted[0].decode();
    let Some(feedback_event::Kind::Accepted(a)) = event.kind else { panic!("not accepted") };
    let record = a.feedback.unwrap();
    assert_eq!(record.locale, "en", "detected from the text");
    assert_eq!(
        record.description,
        "My parcel never came. Call me on 139****4321, my ID is [ID removed], mail b***@example.org"
    );
    assert!(!record.sealed_description.is_empty());

    // Not kept even in intake's own database: neither the record nor the original bytes.
    let db = system.database("intake", kesu_intake::MIGRATIONS).await;
    let (original, stored): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT original, record FROM feedback").fetch_one(db.pool()).await.unwrap();
    for blob in [&original, &stored] {
        assert!(!blob.windows(10).any(|w| w == b"1101051949"), "the national id was kept");
    }
    assert!(original.windows(4).any(|w| w == b"8765"), "the original keeps the phone number (sealed record aside)");
    system.stop().await;
}
