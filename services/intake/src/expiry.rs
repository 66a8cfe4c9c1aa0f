//! A needs-info feedback not supplemented in time is closed, with a reason
//! and `feedback.evt.closed` (code `needs_info_expired`): nothing ends
//! silently. The expiry is a durable timer (`kesu-timers`, in intake's
//! database) armed when the feedback is taken or supplemented and still
//! incomplete, dropped when a supplement completes it; one that came due
//! while intake was down fires at start.

use kesu_bus::{HandleError, UnitOfWork, event_meta};
use kesu_domain::time::to_timestamp;
use kesu_proto::v1::{FeedbackClosed, FeedbackStatus, feedback_event};
use kesu_timers::{FiredTimer, TimerHandler};

use crate::pipeline::{emit, feedback_event};
use crate::store::{self, FeedbackKey};

/// The timer kind; the key is the feedback id.
pub const NEEDS_INFO_EXPIRY: &str = "intake.needs_info_expiry";

/// The `FeedbackClosed.code` of an expired needs-info feedback.
pub const NEEDS_INFO_EXPIRED: &str = "needs_info_expired";

pub struct Expiry {
    /// For the reason's text ("not supplemented within 72h").
    pub expiry: String,
}

impl TimerHandler for Expiry {
    async fn fire(&self, work: &mut UnitOfWork, timer: &FiredTimer) -> Result<(), HandleError> {
        if timer.kind != NEEDS_INFO_EXPIRY {
            return Err(HandleError::Permanent(format!("intake has no timers of kind {:?}", timer.kind)));
        }
        let stored = store::load(work.conn(), FeedbackKey::Id(&timer.key))
            .await
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        let Some(stored) = stored else {
            return Err(HandleError::Permanent(format!("needs-info expiry of unknown feedback {}", timer.key)));
        };
        if stored.status != store::status_name(FeedbackStatus::NeedsInfo) {
            // Supplemented meanwhile (the timer is normally dropped then).
            return Ok(());
        }
        let mut record = stored.record;
        record.status = FeedbackStatus::Closed as i32;
        if !store::update(work.conn(), &record, stored.version, None).await? {
            return Err(HandleError::Transient(format!("feedback {} changed while closing it", timer.key)));
        }
        let correlation = format!("{}:{}", stored.channel, record.external_id);
        let meta = event_meta(
            "intake",
            &record.feedback_id,
            (stored.version + 1) as u64,
            to_timestamp(timer.fired_at),
            "",
            &correlation,
        );
        let meta = kesu_proto::v1::EventMeta { event_id: timer.event_id("closed"), ..meta };
        let kind = feedback_event::Kind::Closed(FeedbackClosed {
            feedback: Some(record.clone()),
            code: NEEDS_INFO_EXPIRED.into(),
            reason: format!("the customer did not supply the missing information within {}", self.expiry),
        });
        emit(work, "closed", &feedback_event(&record, meta, kind)).await?;
        tracing::info!(feedback_number = %record.feedback_number, "needs-info feedback closed: not supplemented in time");
        Ok(())
    }
}
