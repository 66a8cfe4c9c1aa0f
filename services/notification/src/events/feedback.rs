//! Intake's feedback events: the acknowledgement when feedback is accepted
//! (once per feedback), and the request to supplement when it needs info.

use kesu_bus::HandleError;
use kesu_domain::policy::Trigger;
use kesu_proto::v1::{Feedback, FeedbackEvent, feedback_event};

use crate::moment::{Facts, Moment, Source};

/// The moments of a feedback event (none for kinds that tell nobody).
pub fn moments(event: &FeedbackEvent, traceparent: Option<&str>) -> Result<Vec<Moment>, HandleError> {
    let source = Source::of(event.meta.as_ref(), traceparent);
    let missing = |what: &str| HandleError::Permanent(format!("feedback.evt.{what} without its feedback"));
    Ok(match &event.kind {
        Some(feedback_event::Kind::Accepted(a)) => {
            let feedback = a.feedback.as_ref().ok_or_else(|| missing("accepted"))?;
            let mut moment = of_feedback(Trigger::FeedbackAccepted, source, feedback);
            // One acknowledgement per feedback, whatever announces it again.
            moment.scope = format!("ack:{}", feedback.feedback_id);
            vec![moment]
        }
        Some(feedback_event::Kind::NeedsInfo(n)) => {
            let feedback = n.feedback.as_ref().ok_or_else(|| missing("needs_info"))?;
            let mut moment = of_feedback(Trigger::FeedbackNeedsInfo, source, feedback);
            moment.facts.missing = if n.missing.is_empty() { feedback.issues.clone() } else { n.missing.clone() };
            vec![moment]
        }
        _ => Vec::new(),
    })
}

fn of_feedback(trigger: Trigger, source: Source, f: &Feedback) -> Moment {
    Moment {
        trigger: Some(trigger),
        scope: source.event_id.clone(),
        source,
        feedback_id: f.feedback_id.clone(),
        feedback_number: f.feedback_number.clone(),
        title: if f.title.is_empty() { f.description.chars().take(40).collect() } else { f.title.clone() },
        customer: f.customer.clone(),
        locale: f.locale.clone(),
        time_zone: f.time_zone.clone(),
        priority: f.urgency,
        facts: Facts::default(),
        ..Default::default()
    }
}
