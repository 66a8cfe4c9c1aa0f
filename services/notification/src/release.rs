//! Quiet hours and delayed rules: a held-back request waits on a durable
//! timer (`kesu-timers`, in notification's database) and is released when
//! it comes due — published on `notify.req.<channel>` with
//! `notify.evt.requested`, in the order it was held — never dropped. A
//! timer that came due while the service was down is released at start.

use kesu_bus::{HandleError, UnitOfWork};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::v1::{DeliveryStatus, NotificationRequested, notification_event};
use kesu_timers::{FiredTimer, TimerHandler};
use prost::Message;

use crate::deliveries;
use crate::moment::Source;
use crate::notice::{RELEASE, ReleasePayload, emit_event, emit_request, event};

pub struct Release;

impl TimerHandler for Release {
    async fn fire(&self, work: &mut UnitOfWork, timer: &FiredTimer) -> Result<(), HandleError> {
        if timer.kind != RELEASE {
            return Err(HandleError::Permanent(format!("notification has no timers of kind {:?}", timer.kind)));
        }
        let payload = ReleasePayload::decode(timer.payload.as_slice()).map_err(|e| {
            HandleError::Permanent(format!("release timer {}: payload does not decode: {e}", timer.key))
        })?;
        let Some(mut request) = payload.request else {
            return Err(HandleError::Permanent(format!("release timer {}: no request", timer.key)));
        };
        let source = Source {
            event_id: payload.causation_id,
            correlation_id: payload.correlation_id,
            traceparent: Some(payload.traceparent).filter(|t| !t.is_empty()),
        };
        // Deterministic ids: a second firing would be dropped by JetStream.
        if let Some(meta) = request.meta.as_mut() {
            meta.event_id = timer.event_id("request");
            meta.occurred_at = Some(to_timestamp(timer.fired_at));
        }
        emit_request(work, &request, &source).await?;
        let stored = deliveries::get_many(work.conn(), std::slice::from_ref(&request.request_id))
            .await
            .map_err(|e| HandleError::Transient(e.to_string()))?;
        if let Some(stored) = stored.into_iter().next() {
            let mut delivery = stored.delivery;
            delivery.status = DeliveryStatus::Requested as i32;
            delivery.updated_at = Some(to_timestamp(timer.fired_at));
            deliveries::update(work.conn(), &delivery, to_millis(timer.fired_at)).await?;
            let kind = notification_event::Kind::Requested(NotificationRequested { not_before: request.not_before });
            emit_event(work, &event(&delivery, kind, timer.event_id("requested"), &source, timer.fired_at), &source)
                .await?;
        }
        Ok(())
    }
}
