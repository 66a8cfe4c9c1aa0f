//! The review queue: feedback with malformed data (a contact in a bad
//! format, garbled text, suspected spam) waits in *pending review* until
//! staff decide (`ResolveReview`, agents and supervisors; audited):
//!
//! - `APPROVED`: taken as it is → `accepted` (routing makes the ticket);
//! - `CORRECTED`: the fields named in `fields` are taken from
//!   `correction` (as for a supplement) and the whole checked again; it
//!   must then be free of review problems → `accepted` (or `needs_info`
//!   when the correction left something missing);
//! - `REJECTED`: ends without a ticket; `note` (the reason) is required.
//!
//! Every decision is `feedback.evt.reviewed` (decision, reviewer, note),
//! followed by `accepted` or `needs_info` when it goes on. This module also
//! holds the text rules that send a submission to review.

use kesu_bus::{HandleError, UnitOfWork, event_meta};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::v1::{
    Channel, FeedbackReviewed, FeedbackStatus, FieldError, RawFeedback, ResolveReviewRequest, ReviewDecision,
    SubmitFeedbackResponse, SubmitOutcome, feedback_event,
};
use prost::Message;

use crate::expiry::NEEDS_INFO_EXPIRY;
use crate::pipeline::{Intake, Taken, announce, emit, feedback_event};
use crate::store::{self, FeedbackKey};
use crate::supplement::amend;
use crate::validate::{self, Verdict, field_error};
use crate::{free_text, pipeline};

/// Phrases of advertising and fraud that do not belong in a complaint.
const SPAM_PHRASES: &[&str] = &[
    "加微信",
    "加v",
    "代开发票",
    "刷单",
    "兼职日结",
    "贷款秒批",
    "博彩",
    "buy now",
    "click here",
    "casino",
    "viagra",
    "crypto giveaway",
    "work from home and earn",
];

/// Review problems of free text: garbled (undecodable characters, mostly
/// symbols) or suspected spam (two or more links, advertising phrases).
pub fn text_problems(field: &str, text: &str) -> Vec<FieldError> {
    let mut problems = Vec::new();
    let visible: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let symbols = visible.iter().filter(|c| !c.is_alphanumeric() && !is_punctuation(**c)).count();
    let garbled = text.contains('\u{FFFD}')
        || visible.iter().any(|c| ('\u{E000}'..='\u{F8FF}').contains(c))
        || (visible.len() >= 10 && symbols * 10 >= visible.len() * 3);
    if garbled {
        problems.push(field_error(field, "garbled", format!("{field} looks garbled (wrong encoding or symbols)")));
    }
    let lower = text.to_lowercase();
    let links = lower.matches("http://").count() + lower.matches("https://").count() + lower.matches("www.").count();
    if links >= 2 || SPAM_PHRASES.iter().any(|p| lower.contains(p)) {
        problems.push(field_error(field, "suspected_spam", format!("{field} looks like advertising or spam")));
    }
    problems
}

fn is_punctuation(c: char) -> bool {
    ".,!?;:'\"()-/%，。！？、；：“”‘’（）《》【】…—～·".contains(c)
}

fn refused(number: &str, errors: Vec<FieldError>) -> SubmitFeedbackResponse {
    SubmitFeedbackResponse {
        outcome: SubmitOutcome::Rejected as i32,
        feedback_number: number.to_string(),
        errors,
        ..Default::default()
    }
}

impl Intake {
    /// A staff decision on a feedback pending review, in a unit of work of
    /// its own. Refusals (nothing changed) are answered `REJECTED` with the
    /// field named (`not_found`, `not_pending_review`, ...).
    pub async fn resolve_review(
        &self,
        reviewer: &str,
        request: &ResolveReviewRequest,
    ) -> Result<SubmitFeedbackResponse, HandleError> {
        let number = request.feedback_number.trim();
        if number.is_empty() {
            return Ok(refused("", vec![field_error("feedback_number", "required", "feedback_number is required")]));
        }
        let decision = ReviewDecision::try_from(request.decision).unwrap_or_default();
        let note = request.note.trim();
        match decision {
            ReviewDecision::Unspecified => {
                let error =
                    field_error("decision", "required", "decision is required: approved, corrected or rejected");
                return Ok(refused(number, vec![error]));
            }
            ReviewDecision::Rejected if note.is_empty() => {
                let error = field_error("note", "required", "a rejection needs the reason in note");
                return Ok(refused(number, vec![error]));
            }
            _ => {}
        }
        let mut correction = request.correction.clone().unwrap_or_default();
        free_text::strip_national_ids(&mut correction);
        if decision == ReviewDecision::Corrected
            && let Err(errors) = amend(&mut RawFeedback::default(), &correction, &request.fields)
        {
            return Ok(refused(number, errors));
        }
        let now = self.clock.now();
        let mut work = UnitOfWork::begin(&self.db).await?;
        let stored = store::load(work.conn(), FeedbackKey::Number(number))
            .await
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        let Some(stored) = stored else {
            return Ok(refused(
                number,
                vec![field_error("feedback_number", "not_found", format!("no feedback {number}"))],
            ));
        };
        if stored.status != store::status_name(FeedbackStatus::PendingReview) {
            let message = format!("{number} is not pending review (it is {})", stored.status);
            return Ok(refused(number, vec![field_error("feedback_number", "not_pending_review", message)]));
        }
        let channel = Channel::try_from(stored.record.channel).unwrap_or_default();
        let mut amended = None;
        // What follows the decision: accepted, needs info (what is missing), or the end.
        let (record, next) = match decision {
            ReviewDecision::Approved => {
                let mut record = stored.record.clone();
                record.status = FeedbackStatus::Accepted as i32;
                (record, Some(Vec::new()))
            }
            ReviewDecision::Rejected => {
                let mut record = stored.record.clone();
                record.status = FeedbackStatus::Rejected as i32;
                (record, None)
            }
            _ => {
                let mut raw = stored.raw.clone();
                amend(&mut raw, &correction, &request.fields)
                    .map_err(|_| HandleError::Permanent("a correction checked before failed to apply".to_string()))?;
                let ctx = validate::Context { policy: &self.policy, key: &self.key, now };
                let (fresh, missing) = match validate::check(&raw, Some(channel), &ctx).1 {
                    Verdict::Reject(errors) | Verdict::Review(_, errors) => return Ok(refused(number, errors)),
                    Verdict::Accept(r) => (r, Vec::new()),
                    Verdict::NeedsInfo(r, missing) => (r, missing),
                };
                let mut record = *fresh;
                record.feedback_id = stored.record.feedback_id.clone();
                record.feedback_number = stored.record.feedback_number.clone();
                record.received_at = stored.record.received_at;
                amended = Some(raw);
                (record, Some(missing))
            }
        };
        let state =
            next.as_deref().map(|missing| if missing.is_empty() { Taken::Accepted } else { Taken::NeedsInfo(missing) });
        let mut record = record;
        if let Some(state) = state {
            record.status = state.status() as i32;
        }
        if !store::update(work.conn(), &record, stored.version, amended.as_ref()).await? {
            let _ = work.rollback().await;
            return Err(HandleError::Transient(format!("{number} was changed meanwhile; retry")));
        }
        store::insert_amendment(
            work.conn(),
            &record.feedback_id,
            "review",
            reviewer,
            to_millis(now),
            &ResolveReviewRequest { correction: Some(correction), ..request.clone() }.encode_to_vec(),
        )
        .await?;
        if let Some(Taken::NeedsInfo(_)) = state {
            self.arm_expiry(&mut work, &record.feedback_id, now).await?;
        } else {
            self.timers.cancel(&mut work, NEEDS_INFO_EXPIRY, &record.feedback_id).await?;
        }
        let version = (stored.version + 1) as u64;
        let correlation = format!("{}:{}", stored.channel, record.external_id);
        let meta = || event_meta("intake", &record.feedback_id, version, to_timestamp(now), "", &correlation);
        let kind = feedback_event::Kind::Reviewed(FeedbackReviewed {
            feedback: Some(record.clone()),
            decision: decision as i32,
            reviewer: reviewer.to_string(),
            note: note.to_string(),
        });
        emit(&mut work, "reviewed", &feedback_event(&record, meta(), kind)).await?;
        if let Some(state) = state {
            announce(&mut work, &record, state, meta()).await?;
        }
        work.commit(&self.outbox).await?;
        tracing::info!(feedback_number = %record.feedback_number, decision = decision.as_str_name(), "review resolved");
        Ok(match state {
            Some(state) => pipeline::answer(&record, state),
            None => SubmitFeedbackResponse {
                outcome: SubmitOutcome::Rejected as i32,
                feedback_id: record.feedback_id.clone(),
                feedback_number: record.feedback_number.clone(),
                errors: Vec::new(),
                channel: record.channel,
                external_id: record.external_id.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<String> {
        text_problems("description", text).into_iter().map(|e| e.code).collect()
    }

    #[test]
    fn garbled_text_and_spam_go_to_review_in_chinese_and_english() {
        assert_eq!(codes("购买的产品\u{FFFD}\u{FFFD}开机无反应"), ["garbled"]);
        assert_eq!(codes("#$%^&*@#$%^&*()_+=<>|~`"), ["garbled"]);
        assert_eq!(codes("加微信 abc123 代开发票，优惠多多"), ["suspected_spam"]);
        assert_eq!(codes("Buy now at https://a.example and https://b.example"), ["suspected_spam"]);
        assert!(codes("购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。").is_empty());
        assert!(codes("My order (SO-1) has not arrived; see https://shop.example/orders/1").is_empty());
    }
}
