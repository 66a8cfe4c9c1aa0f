//! The one path every submission takes, whether it came from the stream,
//! a request/reply submit or gRPC: check, then in one transaction
//! de-duplicate, number, record and write the event to the outbox.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kesu_bus::{HandleError, OutboxWaker, UnitOfWork, event_meta, subjects};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_domain::{Clock, ContactKey, FeedbackNumber, Policy, channel_from_token, channel_token};
use kesu_proto::type_names;
use kesu_proto::v1::{
    Channel, DuplicateReason, Feedback, FeedbackAccepted, FeedbackDuplicate, FeedbackEvent, FeedbackNeedsInfo,
    FeedbackRejected, FeedbackReviewRequired, FeedbackStatus, FieldError, RawFeedback, RejectedSubmission,
    SubmitFeedbackResponse, SubmitOutcome, feedback_event,
};
use kesu_storage::Database;
use kesu_timers::{Timer, Timers};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message;

use crate::validate::{self, Verdict, field_error};
use crate::{duplicates, free_text, store};

/// Rejected originals up to this size travel (sealed) in the rejected
/// event; larger ones only in intake's database.
const MAX_ORIGINAL_IN_EVENT: usize = 64 * 1024;

/// Where a submission came from (a metric label).
#[derive(Debug, Clone, Copy)]
pub enum Path {
    Stream,
    Request,
    Grpc,
}

impl Path {
    fn as_str(self) -> &'static str {
        match self {
            Path::Stream => "stream",
            Path::Request => "request",
            Path::Grpc => "grpc",
        }
    }
}

/// One submission as received.
pub struct Submission<'a> {
    /// `feedback.raw.<channel>`, `feedback.submit.<channel>` or `grpc`.
    pub subject: &'a str,
    /// The bytes exactly as received.
    pub original: &'a [u8],
    /// The decoded message, or why it could not be decoded.
    pub raw: Result<RawFeedback, String>,
    /// `(consumer, message id)` for stream deliveries: applied at most once.
    pub inbox: Option<(&'a str, &'a str)>,
    /// Id of the message this came from, if any.
    pub causation: &'a str,
    pub path: Path,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubmissionLabels {
    channel: String,
    outcome: String,
    path: String,
}

/// Intake's core.
pub struct Intake {
    pub(crate) db: Database,
    pub(crate) outbox: OutboxWaker,
    pub(crate) policy: Arc<Policy>,
    pub(crate) key: ContactKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) timers: Timers,
    /// How long a needs-info feedback waits for its supplement.
    pub(crate) needs_info_expiry: chrono::Duration,
    /// Same customer, near-identical text within this: a duplicate (`None`: off).
    pub(crate) dedup_window: Option<chrono::Duration>,
    submissions: Family<SubmissionLabels, Counter>,
}

/// What [`Intake::new`] needs besides the database and the outbox.
pub struct Parts {
    pub policy: Arc<Policy>,
    pub key: ContactKey,
    pub clock: Arc<dyn Clock>,
    pub timers: Timers,
    pub needs_info_expiry: chrono::Duration,
    pub dedup_window: Option<chrono::Duration>,
}

impl Intake {
    pub fn new(db: Database, outbox: OutboxWaker, parts: Parts, metrics: &kesu_telemetry::MetricsRegistry) -> Self {
        let submissions = Family::<SubmissionLabels, Counter>::default();
        metrics.register(|r| {
            r.register("intake_submissions", "Submissions by channel, outcome and path", submissions.clone())
        });
        let Parts { policy, key, clock, timers, needs_info_expiry, dedup_window } = parts;
        Self { db, outbox, policy, key, clock, timers, needs_info_expiry, dedup_window, submissions }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn key(&self) -> &ContactKey {
        &self.key
    }

    /// Takes a submission in a unit of work of its own (request/reply and
    /// gRPC). `Ok(None)` means a stream delivery that was applied before (a
    /// redelivery), so there is nothing new to answer.
    pub async fn submit(&self, s: Submission<'_>) -> Result<Option<SubmitFeedbackResponse>, HandleError> {
        // A concurrent submission of the same (channel, external id) on
        // another replica makes our insert fail: look again, it is a duplicate.
        for attempt in 0.. {
            let mut work = UnitOfWork::begin(&self.db).await?;
            if let Some((consumer, id)) = s.inbox
                && !kesu_bus::inbox::claim(work.conn(), consumer, id).await?
            {
                return Ok(None);
            }
            match self.apply(&mut work, &s).await {
                Ok(response) => {
                    work.commit(&self.outbox).await?;
                    return Ok(Some(response));
                }
                Err(e) if is_unique_violation(&e) && attempt < 3 => {
                    let _ = work.rollback().await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// Takes a submission inside the caller's unit of work (the stream's
    /// batches): checks, de-duplicates, numbers, records, and emits the event.
    /// National id numbers typed into free text are removed first, from
    /// the original kept too: they are never stored, not even sealed.
    pub async fn apply(
        &self,
        work: &mut UnitOfWork,
        s: &Submission<'_>,
    ) -> Result<SubmitFeedbackResponse, sqlx::Error> {
        if let Ok(raw) = &s.raw
            && free_text::contains_national_id(raw)
        {
            let mut clean = raw.clone();
            free_text::strip_national_ids(&mut clean);
            let original = clean.encode_to_vec();
            let s = Submission { original: &original, raw: Ok(clean), ..*s };
            return self.apply_clean(work, &s).await;
        }
        self.apply_clean(work, s).await
    }

    async fn apply_clean(
        &self,
        work: &mut UnitOfWork,
        s: &Submission<'_>,
    ) -> Result<SubmitFeedbackResponse, sqlx::Error> {
        let now = self.clock.now();
        let subject_channel = subject_channel(s.subject);
        let (channel, verdict) = match &s.raw {
            Ok(raw) => {
                validate::check(raw, subject_channel, &validate::Context { policy: &self.policy, key: &self.key, now })
            }
            Err(reason) => (
                subject_channel.unwrap_or(Channel::Unspecified),
                Verdict::Reject(vec![field_error(
                    "payload",
                    "undecodable",
                    format!("payload is not a valid kesu.v1.RawFeedback: {reason}"),
                )]),
            ),
        };
        let external_id = s.raw.as_ref().map(|r| clip(r.external_id.trim(), 128)).unwrap_or_default();
        let response = match &verdict {
            Verdict::Reject(errors) => self.reject(work, s, channel, &external_id, errors, now).await?,
            Verdict::Accept(record) => self.take(work, s, channel, record, Taken::Accepted, now).await?,
            Verdict::NeedsInfo(record, missing) => {
                self.take(work, s, channel, record, Taken::NeedsInfo(missing), now).await?
            }
            Verdict::Review(record, problems) => {
                self.take(work, s, channel, record, Taken::Review(problems), now).await?
            }
        };
        let outcome = SubmitOutcome::try_from(response.outcome).unwrap_or_default();
        self.submissions
            .get_or_create(&SubmissionLabels {
                channel: channel_token(channel).unwrap_or("unknown").to_string(),
                outcome: outcome.as_str_name().trim_start_matches("SUBMIT_OUTCOME_").to_lowercase(),
                path: s.path.as_str().to_string(),
            })
            .inc();
        tracing::debug!(
            feedback_number = %response.feedback_number,
            channel = channel_token(channel).unwrap_or("unknown"),
            outcome = outcome.as_str_name(),
            "submission taken"
        );
        Ok(response)
    }

    async fn take(
        &self,
        work: &mut UnitOfWork,
        s: &Submission<'_>,
        channel: Channel,
        record: &Feedback,
        state: Taken<'_>,
        now: DateTime<Utc>,
    ) -> Result<SubmitFeedbackResponse, sqlx::Error> {
        let token = channel_token(channel).expect("accepted submissions have a channel");
        let correlation = format!("{token}:{}", record.external_id);
        if let Some(existing) = store::find_by_external_id(work.conn(), token, &record.external_id).await? {
            return self.duplicate(work, s, channel, &record.external_id, existing, now).await;
        }
        if let Some(window) = self.dedup_window
            && let Some(original) = duplicates::find_original(work.conn(), record, window, now).await?
        {
            duplicates::insert_merged(work.conn(), token, &record.external_id, &original, to_millis(now), s.original)
                .await?;
            let existing = store::Existing {
                feedback_id: original.feedback_id,
                feedback_number: original.feedback_number,
                status: "merged".into(),
            };
            return self
                .announce_duplicate(
                    work,
                    s,
                    channel,
                    &record.external_id,
                    existing,
                    DuplicateReason::SameCustomerText,
                    now,
                )
                .await;
        }
        let day = now.with_timezone(&self.policy.time_zone()).date_naive();
        let serial = store::next_serial(work.conn(), &day.format("%Y%m%d").to_string()).await?;
        let number = FeedbackNumber::new(&self.policy.doc.intake.number_prefix, day, serial)
            .expect("the policy's prefix is validated at load");
        let mut record = record.clone();
        record.feedback_id = uuid::Uuid::now_v7().to_string();
        record.feedback_number = number.to_string();
        record.status = state.status() as i32;
        store::insert_feedback(
            work.conn(),
            &record,
            token,
            store::status_name(state.status()),
            s.original,
            s.subject,
            to_millis(now),
        )
        .await?;
        if let Taken::NeedsInfo(_) = state {
            self.arm_expiry(work, &record.feedback_id, now).await?;
        }
        let meta = event_meta("intake", &record.feedback_id, 1, to_timestamp(now), s.causation, &correlation);
        announce(work, &record, state, meta).await?;
        Ok(answer(&record, state))
    }

    /// Closes a needs-info feedback not supplemented within the expiry.
    pub(crate) async fn arm_expiry(
        &self,
        work: &mut UnitOfWork,
        feedback_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let due = now + self.needs_info_expiry;
        self.timers.schedule(work, Timer::new(crate::expiry::NEEDS_INFO_EXPIRY, feedback_id, due, Vec::new())).await
    }

    /// A submission already taken under the same channel and external id:
    /// announced as a duplicate, answered with the number given first.
    async fn duplicate(
        &self,
        work: &mut UnitOfWork,
        s: &Submission<'_>,
        channel: Channel,
        external_id: &str,
        existing: store::Existing,
        now: DateTime<Utc>,
    ) -> Result<SubmitFeedbackResponse, sqlx::Error> {
        self.announce_duplicate(work, s, channel, external_id, existing, DuplicateReason::SameExternalId, now).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn announce_duplicate(
        &self,
        work: &mut UnitOfWork,
        s: &Submission<'_>,
        channel: Channel,
        external_id: &str,
        existing: store::Existing,
        reason: DuplicateReason,
        now: DateTime<Utc>,
    ) -> Result<SubmitFeedbackResponse, sqlx::Error> {
        let token = channel_token(channel).unwrap_or_default();
        let correlation = format!("{token}:{external_id}");
        let event = FeedbackEvent {
            meta: Some(event_meta("intake", &existing.feedback_id, 0, to_timestamp(now), s.causation, &correlation)),
            channel: channel as i32,
            external_id: external_id.to_string(),
            feedback_number: existing.feedback_number.clone(),
            feedback_id: existing.feedback_id.clone(),
            kind: Some(feedback_event::Kind::Duplicate(FeedbackDuplicate {
                original_feedback_id: existing.feedback_id.clone(),
                original_feedback_number: existing.feedback_number.clone(),
                reason: reason as i32,
            })),
        };
        emit(work, "duplicate", &event).await?;
        tracing::debug!(status = %existing.status, "duplicate of an earlier submission");
        Ok(SubmitFeedbackResponse {
            outcome: SubmitOutcome::Duplicate as i32,
            feedback_id: existing.feedback_id,
            feedback_number: existing.feedback_number,
            errors: Vec::new(),
            channel: channel as i32,
            external_id: external_id.to_string(),
        })
    }

    async fn reject(
        &self,
        work: &mut UnitOfWork,
        s: &Submission<'_>,
        channel: Channel,
        external_id: &str,
        errors: &[FieldError],
        now: DateTime<Utc>,
    ) -> Result<SubmitFeedbackResponse, sqlx::Error> {
        let token = channel_token(channel).unwrap_or("");
        // Sent before and taken then: the earlier number stands, whatever
        // is wrong with this copy.
        if !token.is_empty()
            && !external_id.is_empty()
            && let Some(existing) = store::find_by_external_id(work.conn(), token, external_id).await?
        {
            return self.duplicate(work, s, channel, external_id, existing, now).await;
        }
        let rejection_id = uuid::Uuid::now_v7().to_string();
        let kept = RejectedSubmission {
            rejection_id: rejection_id.clone(),
            subject: s.subject.to_string(),
            received_at: Some(to_timestamp(now)),
            errors: errors.to_vec(),
            original: s.original.to_vec(),
        };
        store::insert_rejected(work.conn(), &kept, token, external_id, to_millis(now)).await?;
        let correlation = format!("{token}:{external_id}");
        let event = FeedbackEvent {
            meta: Some(event_meta("intake", &rejection_id, 0, to_timestamp(now), s.causation, &correlation)),
            channel: channel as i32,
            external_id: external_id.to_string(),
            feedback_number: String::new(),
            feedback_id: String::new(),
            kind: Some(feedback_event::Kind::Rejected(FeedbackRejected {
                errors: errors.to_vec(),
                sealed_original: if s.original.len() <= MAX_ORIGINAL_IN_EVENT {
                    self.key.seal_bytes(s.original)
                } else {
                    Vec::new()
                },
                original_subject: s.subject.to_string(),
                rejection_id,
                original_size: s.original.len() as u64,
            })),
        };
        emit(work, "rejected", &event).await?;
        Ok(SubmitFeedbackResponse {
            outcome: SubmitOutcome::Rejected as i32,
            feedback_id: String::new(),
            feedback_number: String::new(),
            errors: errors.to_vec(),
            channel: channel as i32,
            external_id: external_id.to_string(),
        })
    }
}

/// Where a taken (or amended) feedback stands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Taken<'a> {
    Accepted,
    /// What the customer is asked to supply.
    NeedsInfo(&'a [FieldError]),
    /// What a person must review.
    Review(&'a [FieldError]),
}

impl Taken<'_> {
    pub(crate) fn status(self) -> FeedbackStatus {
        match self {
            Taken::Accepted => FeedbackStatus::Accepted,
            Taken::NeedsInfo(_) => FeedbackStatus::NeedsInfo,
            Taken::Review(_) => FeedbackStatus::PendingReview,
        }
    }

    fn outcome(self) -> SubmitOutcome {
        match self {
            Taken::Accepted => SubmitOutcome::Accepted,
            Taken::NeedsInfo(_) => SubmitOutcome::NeedsInfo,
            Taken::Review(_) => SubmitOutcome::PendingReview,
        }
    }
}

/// The answer to the submitter for a feedback in `state`.
pub(crate) fn answer(record: &Feedback, state: Taken<'_>) -> SubmitFeedbackResponse {
    let errors = match state {
        Taken::Accepted => Vec::new(),
        Taken::NeedsInfo(p) | Taken::Review(p) => p.to_vec(),
    };
    SubmitFeedbackResponse {
        outcome: state.outcome() as i32,
        feedback_id: record.feedback_id.clone(),
        feedback_number: record.feedback_number.clone(),
        errors,
        channel: record.channel,
        external_id: record.external_id.clone(),
    }
}

/// Announces a feedback in `state`: `feedback.evt.accepted`, `needs_info`
/// or `review_required`, carrying the record.
pub(crate) async fn announce(
    work: &mut UnitOfWork,
    record: &Feedback,
    state: Taken<'_>,
    meta: kesu_proto::v1::EventMeta,
) -> Result<(), sqlx::Error> {
    let feedback = Some(record.clone());
    let (name, kind) = match state {
        Taken::Accepted => ("accepted", feedback_event::Kind::Accepted(FeedbackAccepted { feedback })),
        Taken::NeedsInfo(missing) => {
            ("needs_info", feedback_event::Kind::NeedsInfo(FeedbackNeedsInfo { feedback, missing: missing.to_vec() }))
        }
        Taken::Review(problems) => (
            "review_required",
            feedback_event::Kind::ReviewRequired(FeedbackReviewRequired { feedback, problems: problems.to_vec() }),
        ),
    };
    emit(work, name, &feedback_event(record, meta, kind)).await
}

/// An event about `record`.
pub(crate) fn feedback_event(
    record: &Feedback,
    meta: kesu_proto::v1::EventMeta,
    kind: feedback_event::Kind,
) -> FeedbackEvent {
    FeedbackEvent {
        meta: Some(meta),
        channel: record.channel,
        external_id: record.external_id.clone(),
        feedback_number: record.feedback_number.clone(),
        feedback_id: record.feedback_id.clone(),
        kind: Some(kind),
    }
}

pub(crate) async fn emit(work: &mut UnitOfWork, kind: &str, event: &FeedbackEvent) -> Result<(), sqlx::Error> {
    let id = event.meta.as_ref().map(|m| m.event_id.as_str()).unwrap_or_default();
    work.emit_protobuf(subjects::feedback_event(kind), id, type_names::FEEDBACK_EVENT, event).await
}

/// The channel named by a `feedback.raw.<channel>` or `feedback.submit.<channel>` subject.
fn subject_channel(subject: &str) -> Option<Channel> {
    let rest = subject.strip_prefix("feedback.raw.").or_else(|| subject.strip_prefix("feedback.submit."))?;
    channel_from_token(rest)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn clip(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_channels() {
        assert_eq!(subject_channel("feedback.raw.web"), Some(Channel::Web));
        assert_eq!(subject_channel("feedback.submit.mini_program"), Some(Channel::MiniProgram));
        assert_eq!(subject_channel("feedback.raw.fax"), None);
        assert_eq!(subject_channel("grpc"), None);
    }
}
