//! Intake helpers: supplements over request/reply, feedback that needs
//! info, and reading intake's events.

use kesu_proto::v1::{FeedbackEvent, RawFeedback, SubmitFeedbackResponse, SupplementFeedbackRequest, feedback_event};
use prost::Message;

use crate::{TestSystem, feedback};

/// A web feedback that says nothing ("有问题") and asks for nothing.
pub fn vague(external_id: &str) -> RawFeedback {
    RawFeedback { description: "有问题".into(), customer_request: None, ..feedback::robot_vacuum(external_id) }
}

/// The customer's answer through the adapter: a request on
/// `feedback.supplement.<channel>`.
pub async fn supplement(
    system: &TestSystem,
    channel: &str,
    request: &SupplementFeedbackRequest,
) -> SubmitFeedbackResponse {
    let reply = system
        .client
        .request(format!("feedback.supplement.{channel}"), request.encode_to_vec().into())
        .await
        .expect("intake answers the supplement");
    SubmitFeedbackResponse::decode(reply.payload.as_ref()).expect("the reply is a SubmitFeedbackResponse")
}

/// Intake's events of a feedback number, in stream order.
pub async fn events_of(system: &TestSystem, number: &str) -> Vec<FeedbackEvent> {
    system
        .messages("FEEDBACK", "feedback.evt.")
        .await
        .iter()
        .map(|m| m.decode::<FeedbackEvent>())
        .filter(|e| e.feedback_number == number)
        .collect()
}

/// The snake-case kind of a feedback event (`accepted`, `needs_info`, ...).
pub fn kind(event: &FeedbackEvent) -> &'static str {
    match &event.kind {
        Some(feedback_event::Kind::Accepted(_)) => "accepted",
        Some(feedback_event::Kind::NeedsInfo(_)) => "needs_info",
        Some(feedback_event::Kind::ReviewRequired(_)) => "review_required",
        Some(feedback_event::Kind::Rejected(_)) => "rejected",
        Some(feedback_event::Kind::Duplicate(_)) => "duplicate",
        Some(feedback_event::Kind::Supplemented(_)) => "supplemented",
        Some(feedback_event::Kind::Reviewed(_)) => "reviewed",
        Some(feedback_event::Kind::Closed(_)) => "closed",
        None => "none",
    }
}
