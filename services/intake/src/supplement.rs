//! Supplements: the customer's answer to a needs-info request, through the
//! adapter (`feedback.supplement.<channel>`, request/reply) or staff over
//! gRPC (`SupplementFeedback`).
//!
//! The fields named in the request are taken into the submission as
//! amended so far (attachments are added, custom fields merged, every
//! other field replaced), and the whole is checked again on the same path
//! as a new submission. The feedback keeps its id and number; the answer
//! and the events say where it stands now: `feedback.evt.supplemented`,
//! then `accepted` (routing makes the ticket), `review_required`, or
//! `needs_info` again (the expiry starts over). A supplement that cannot
//! be taken changes nothing and is answered `REJECTED` naming the field.
//! Every supplement is kept as received (`feedback_amendments`).

use kesu_bus::{HandleError, UnitOfWork, event_meta};
use kesu_domain::channel_token;
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::v1::{
    Channel, FeedbackStatus, FeedbackSupplemented, FieldError, RawFeedback, SubmitFeedbackResponse, SubmitOutcome,
    SupplementFeedbackRequest, feedback_event,
};
use prost::Message;

use crate::expiry::NEEDS_INFO_EXPIRY;
use crate::free_text;
use crate::pipeline::{Intake, Taken, announce, answer, emit, feedback_event};
use crate::store::{self, FeedbackKey};
use crate::validate::{self, Verdict, field_error};

/// The fields a supplement or a review correction may set.
pub const FIELDS: &[&str] = &[
    "description",
    "title",
    "customer_request",
    "attachments",
    "product",
    "order_number",
    "occurred_at",
    "problem_type",
    "problem_cause",
    "request_nature",
    "urgency",
    "region",
    "customer",
    "locale",
    "time_zone",
    "custom_fields",
    "affected_customers",
];

/// Takes the named `fields` of `with` into `base`.
pub fn amend(base: &mut RawFeedback, with: &RawFeedback, fields: &[String]) -> Result<(), Vec<FieldError>> {
    if fields.is_empty() {
        let message = format!("name the fields to take, any of: {}", FIELDS.join(", "));
        return Err(vec![field_error("fields", "required", message)]);
    }
    let mut errors = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        match field.trim() {
            "description" => base.description = with.description.clone(),
            "title" => base.title = with.title.clone(),
            "customer_request" => base.customer_request = with.customer_request.clone(),
            "attachments" => base.attachments.extend(with.attachments.iter().cloned()),
            "product" => base.product = with.product.clone(),
            "order_number" => base.order_number = with.order_number.clone(),
            "occurred_at" => base.occurred_at = with.occurred_at.clone(),
            "problem_type" => base.problem_type = with.problem_type.clone(),
            "problem_cause" => base.problem_cause = with.problem_cause.clone(),
            "request_nature" => base.request_nature = with.request_nature,
            "urgency" => base.urgency = with.urgency,
            "region" => base.region = with.region.clone(),
            "customer" => base.customer = with.customer.clone(),
            "locale" => base.locale = with.locale.clone(),
            "time_zone" => base.time_zone = with.time_zone.clone(),
            "custom_fields" => base.custom_fields.extend(with.custom_fields.clone()),
            "affected_customers" => base.affected_customers = with.affected_customers,
            other => errors.push(field_error(
                format!("fields[{i}]"),
                "unknown_value",
                format!("{other:?} cannot be supplemented; any of: {}", FIELDS.join(", ")),
            )),
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// A supplement as received.
pub struct Supplement<'a> {
    /// `feedback.supplement.<channel>` or `grpc`.
    pub subject: &'a str,
    /// The request's bytes as received.
    pub original: &'a [u8],
    pub request: Result<SupplementFeedbackRequest, String>,
    /// Staff id, or `adapter` for request/reply.
    pub actor: &'a str,
}

/// A supplement not taken: nothing changed.
fn refused(number: &str, errors: Vec<FieldError>) -> SubmitFeedbackResponse {
    SubmitFeedbackResponse {
        outcome: SubmitOutcome::Rejected as i32,
        feedback_number: number.to_string(),
        errors,
        ..Default::default()
    }
}

impl Intake {
    /// Takes a supplement in a unit of work of its own. Transient errors
    /// (database, a concurrent change) are retried by the caller.
    pub async fn supplement(&self, s: Supplement<'_>) -> Result<SubmitFeedbackResponse, HandleError> {
        let request = match &s.request {
            Ok(r) => r,
            Err(reason) => {
                let message = format!("payload is not a valid kesu.v1.SupplementFeedbackRequest: {reason}");
                return Ok(refused("", vec![field_error("payload", "undecodable", message)]));
            }
        };
        let number = request.feedback_number.trim();
        if number.is_empty() {
            let error = field_error("feedback_number", "required", "feedback_number is required");
            return Ok(refused("", vec![error]));
        }
        let Some(supplement) = &request.supplement else {
            let error = field_error("supplement", "required", "supplement is required: the fields to take");
            return Ok(refused(number, vec![error]));
        };
        // National id numbers are never kept, not even in the supplement as received.
        let mut supplement = supplement.clone();
        let mut clean = None;
        if free_text::strip_national_ids(&mut supplement) {
            let request = SupplementFeedbackRequest { supplement: Some(supplement.clone()), ..request.clone() };
            clean = Some(request.encode_to_vec());
        }
        let original = clean.as_deref().unwrap_or(s.original);
        let supplement = &supplement;
        // The request itself first: which fields it names.
        if let Err(errors) = amend(&mut RawFeedback::default(), supplement, &request.fields) {
            return Ok(refused(number, errors));
        }
        let now = self.clock.now();
        let mut work = UnitOfWork::begin(&self.db).await?;
        let stored = store::load(work.conn(), FeedbackKey::Number(number))
            .await
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        let Some(stored) = stored else {
            let error = field_error("feedback_number", "not_found", format!("no feedback {number}"));
            return Ok(refused(number, vec![error]));
        };
        let channel = Channel::try_from(stored.record.channel).unwrap_or_default();
        if let Some(token) = s.subject.strip_prefix("feedback.supplement.")
            && Some(token) != channel_token(channel)
        {
            let message = format!("{number} came in on channel {}, not {token}", stored.channel);
            return Ok(refused(number, vec![field_error("channel", "conflict", message)]));
        }
        if stored.status != store::status_name(FeedbackStatus::NeedsInfo) {
            let message = format!("{number} is not waiting for information (it is {})", stored.status);
            return Ok(refused(number, vec![field_error("feedback_number", "not_needs_info", message)]));
        }
        let mut amended = stored.raw.clone();
        if let Err(errors) = amend(&mut amended, supplement, &request.fields) {
            return Ok(refused(number, errors));
        }
        let ctx = validate::Context { policy: &self.policy, key: &self.key, now };
        let (_, verdict) = validate::check(&amended, Some(channel), &ctx);
        let (fresh, state) = match &verdict {
            Verdict::Reject(errors) => return Ok(refused(number, errors.clone())),
            Verdict::Accept(r) => (r, Taken::Accepted),
            Verdict::NeedsInfo(r, missing) => (r, Taken::NeedsInfo(missing)),
            Verdict::Review(r, problems) => (r, Taken::Review(problems)),
        };
        // Same feedback: its id, number and time of receipt stay.
        let mut record = (**fresh).clone();
        record.feedback_id = stored.record.feedback_id.clone();
        record.feedback_number = stored.record.feedback_number.clone();
        record.received_at = stored.record.received_at;
        record.status = state.status() as i32;
        if !store::update(work.conn(), &record, stored.version, Some(&amended)).await? {
            let _ = work.rollback().await;
            return Err(HandleError::Transient(format!("{number} was changed meanwhile; retry")));
        }
        store::insert_amendment(work.conn(), &record.feedback_id, "supplement", s.actor, to_millis(now), original)
            .await?;
        if let Taken::NeedsInfo(_) = state {
            self.arm_expiry(&mut work, &record.feedback_id, now).await?;
        } else {
            self.timers.cancel(&mut work, NEEDS_INFO_EXPIRY, &record.feedback_id).await?;
        }
        let version = (stored.version + 1) as u64;
        let correlation = format!("{}:{}", stored.channel, record.external_id);
        let meta = || event_meta("intake", &record.feedback_id, version, to_timestamp(now), "", &correlation);
        let fields = request.fields.iter().map(|f| f.trim().to_string()).collect();
        let kind = feedback_event::Kind::Supplemented(FeedbackSupplemented { feedback: Some(record.clone()), fields });
        emit(&mut work, "supplemented", &feedback_event(&record, meta(), kind)).await?;
        announce(&mut work, &record, state, meta()).await?;
        work.commit(&self.outbox).await?;
        tracing::debug!(feedback_number = %record.feedback_number, status = ?state.status(), "supplement taken");
        Ok(answer(&record, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::{Attachment, CustomerRequest};

    #[test]
    fn only_the_named_fields_are_taken() {
        let mut base = RawFeedback { description: "有问题".into(), product: "X1".into(), ..Default::default() };
        let with = RawFeedback {
            description: "开机无反应，已充电一整夜".into(),
            product: "ignored".into(),
            customer_request: Some(CustomerRequest { kind: 1, detail: String::new() }),
            attachments: vec![Attachment { name: "a.jpg".into(), uri: "s3://a".into(), ..Default::default() }],
            ..Default::default()
        };
        amend(&mut base, &with, &["description".into(), "customer_request".into(), "attachments".into()]).unwrap();
        assert_eq!(base.description, "开机无反应，已充电一整夜");
        assert_eq!(base.product, "X1");
        assert!(base.customer_request.is_some());
        amend(&mut base, &with, &["attachments".into()]).unwrap();
        assert_eq!(base.attachments.len(), 2, "attachments are added, not replaced");
    }

    #[test]
    fn no_fields_or_unknown_fields_are_named() {
        let mut base = RawFeedback::default();
        let errors = amend(&mut base, &RawFeedback::default(), &[]).unwrap_err();
        assert_eq!((errors[0].field.as_str(), errors[0].code.as_str()), ("fields", "required"));
        let errors =
            amend(&mut base, &RawFeedback::default(), &["description".into(), "external_id".into()]).unwrap_err();
        assert_eq!((errors[0].field.as_str(), errors[0].code.as_str()), ("fields[1]", "unknown_value"));
    }
}
