//! Announcing the weekly report: `analytics.evt.report_published` on the
//! ANALYTICS stream (through the outbox), once per week on a schedule
//! (Monday at `REPORT_WEEKLY_AT`, local) and whenever management asks.
//! Notification mails it to management.

use std::time::Duration;

use chrono::{NaiveDateTime, NaiveTime, Utc};
use kesu_bus::{OutboxWaker, UnitOfWork};
use kesu_proto::type_names;
use kesu_proto::v1::{AnalyticsEvent, EventMeta, analytics_event};
use tokio_util::sync::CancellationToken;

use crate::api::Analytics;
use crate::error::Error;
use crate::report::{self, Week};

/// When the weekly report is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Local time on Monday.
    pub at: NaiveTime,
    /// How often to check.
    pub every: Duration,
}

/// The week whose report is due at a local time: last week, from Monday's
/// time on (all week long, so a service down on Monday catches up).
pub fn due(now: NaiveDateTime, at: NaiveTime) -> Option<Week> {
    let this = Week::of(now.date());
    (now >= this.0.and_time(at)).then(|| this.previous())
}

/// Emits the report of `week` with a new id; when `once` is given, only if
/// no report was recorded under that key before (the schedule's guard,
/// shared by replicas through the database). Returns the report id.
pub async fn publish(
    analytics: &Analytics,
    outbox: &OutboxWaker,
    week: Week,
    once: Option<&str>,
) -> Result<Option<String>, Error> {
    let report_id = uuid::Uuid::now_v7().to_string();
    let report = report::published(analytics, week, &report_id).await?;
    let mut work = UnitOfWork::begin(&analytics.db).await?;
    if let Some(key) = once {
        let recorded = sqlx::query(
            "INSERT INTO published_reports (period, report_id, published_ms) VALUES ($1, $2, $3)
             ON CONFLICT (period) DO NOTHING",
        )
        .bind(key)
        .bind(&report_id)
        .bind(Utc::now().timestamp_millis())
        .execute(work.conn())
        .await?;
        if recorded.rows_affected() == 0 {
            work.rollback().await?;
            return Ok(None);
        }
    }
    let event = AnalyticsEvent {
        meta: Some(EventMeta {
            event_id: report_id.clone(),
            occurred_at: Some(kesu_domain::time::to_timestamp(Utc::now())),
            producer: crate::SERVICE.into(),
            aggregate_id: report_id.clone(),
            aggregate_version: 1,
            ..Default::default()
        }),
        kind: Some(analytics_event::Kind::ReportPublished(report)),
    };
    let subject = kesu_bus::subjects::analytics_event("report_published");
    work.emit_protobuf(subject, &report_id, type_names::ANALYTICS_EVENT, &event).await?;
    work.commit(outbox).await?;
    tracing::info!(report_id, week = week.name(), "weekly report published");
    Ok(Some(report_id))
}

/// Publishes the due weekly reports until shutdown.
pub async fn run_schedule(analytics: Analytics, outbox: OutboxWaker, schedule: Schedule, stop: CancellationToken) {
    loop {
        let now = Utc::now().with_timezone(&analytics.policy.time_zone()).naive_local();
        if let Some(week) = due(now, schedule.at) {
            let key = format!("weekly:{}", week.name());
            if let Err(e) = publish(&analytics, &outbox, week, Some(&key)).await {
                tracing::warn!(error = %e, week = week.name(), "weekly report not published yet; will retry");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(schedule.every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn last_week_is_due_from_monday_at_the_set_time() {
        let at = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let names = |now: NaiveDateTime| due(now, at).iter().map(Week::name).collect::<Vec<_>>();
        assert_eq!(names(monday.and_hms_opt(8, 59, 0).unwrap()), Vec::<String>::new());
        assert_eq!(names(monday.and_hms_opt(9, 0, 0).unwrap()), ["2026-W48"]);
        let sunday = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(23, 0, 0).unwrap();
        assert_eq!(names(sunday), ["2026-W48"]);
    }
}
