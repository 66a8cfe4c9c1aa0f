//! analytics' gRPC API. This version answers the summary and volumes from
//! the daily counters; attainment, satisfaction and the weekly report
//! arrive with the analytics issue and report UNIMPLEMENTED.

use std::sync::Arc;

use kesu_domain::Policy;
use kesu_proto::v1::analytics_service_server::AnalyticsService;
use kesu_proto::v1::*;
use kesu_storage::Database;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store;

pub struct AnalyticsApi {
    db: Database,
    policy: Arc<Policy>,
}

impl AnalyticsApi {
    pub fn new(db: Database, policy: Arc<Policy>) -> Self {
        Self { db, policy }
    }

    /// Local days covered by a range (whole history when unset).
    fn days(&self, range: Option<&TimeRange>) -> Result<(String, String), Error> {
        let tz = self.policy.time_zone();
        let day = |ts: Option<&prost_types::Timestamp>, field: &'static str, default: &str| match ts {
            None => Ok(default.to_string()),
            Some(ts) => kesu_domain::time::from_timestamp(ts)
                .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                .ok_or_else(|| Error::InvalidArgument { field, message: "not a valid timestamp".into() }),
        };
        let from = day(range.and_then(|r| r.from.as_ref()), "range.from", "0000-01-01")?;
        let to = day(range.and_then(|r| r.to.as_ref()), "range.to", "9999-12-31")?;
        Ok((from, to))
    }
}

fn summary_of(rows: &[(String, String, i64)]) -> Summary {
    let total = |metric: &str| rows.iter().filter(|(m, _, _)| m == metric).map(|(_, _, v)| *v as u64).sum::<u64>();
    let by = |metric: &str| {
        rows.iter()
            .filter(|(m, _, _)| m == metric)
            .map(|(_, dim, v)| CountByKey { key: dim.clone(), count: *v as u64 })
            .collect::<Vec<_>>()
    };
    Summary {
        feedback_received: total("feedback.received"),
        feedback_accepted: total("feedback.accepted"),
        feedback_needs_info: total("feedback.needs_info"),
        feedback_pending_review: total("feedback.pending_review"),
        feedback_rejected: total("feedback.rejected"),
        feedback_duplicates: total("feedback.duplicate"),
        tickets_created: total("tickets.created"),
        sla_clocks_armed: total("sla.armed"),
        notifications_requested: total("notifications.requested"),
        notifications_sent: total("notifications.sent"),
        notifications_failed: total("notifications.failed"),
        feedback_by_channel: by("feedback.by_channel"),
        tickets_by_priority: by("tickets.by_priority"),
        tickets_by_department: by("tickets.by_department"),
        notifications_by_channel: by("notifications.by_channel"),
        tickets_by_type: by("tickets.by_type"),
        tickets_resolved: total("tickets.resolved"),
        tickets_reopened: total("tickets.reopened"),
        sla_breaches: total("sla.breached"),
    }
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn get_summary(&self, request: Request<GetSummaryRequest>) -> Result<Response<Summary>, Status> {
        let (from, to) = self.days(request.get_ref().range.as_ref())?;
        let rows = store::totals(self.db.pool(), &from, &to).await.map_err(Error::from)?;
        Ok(Response::new(summary_of(&rows)))
    }

    async fn get_volume(&self, request: Request<VolumeRequest>) -> Result<Response<VolumeResponse>, Status> {
        let req = request.into_inner();
        let (from, to) = self.days(req.range.as_ref())?;
        let metric = match req.group_by.as_str() {
            "day" => {
                let rows =
                    store::per_day(self.db.pool(), "feedback.received", &from, &to).await.map_err(Error::from)?;
                let rows = rows.into_iter().map(|(key, v)| CountByKey { key, count: v as u64 }).collect();
                return Ok(Response::new(VolumeResponse { rows }));
            }
            "channel" => "feedback.by_channel",
            "type" => "tickets.by_type",
            "department" => "tickets.by_department",
            "priority" => "tickets.by_priority",
            "cause" | "region" | "hour" => {
                return Err(Status::unimplemented(format!(
                    "volume by {} is not available in this version of analytics",
                    req.group_by
                )));
            }
            other => {
                return Err(Error::InvalidArgument {
                    field: "group_by",
                    message: format!(
                        "{other:?} is not one of channel, type, cause, department, priority, region, hour, day"
                    ),
                }
                .into());
            }
        };
        let rows = store::totals(self.db.pool(), &from, &to).await.map_err(Error::from)?;
        let rows = rows
            .into_iter()
            .filter(|(m, _, _)| m == metric)
            .map(|(_, key, v)| CountByKey { key, count: v as u64 })
            .collect();
        Ok(Response::new(VolumeResponse { rows }))
    }

    async fn get_sla_attainment(
        &self,
        _: Request<SlaAttainmentRequest>,
    ) -> Result<Response<SlaAttainmentResponse>, Status> {
        Err(Status::unimplemented("SLA attainment is not available in this version of analytics"))
    }

    async fn get_satisfaction(
        &self,
        _: Request<SatisfactionRequest>,
    ) -> Result<Response<SatisfactionResponse>, Status> {
        Err(Status::unimplemented("satisfaction is not available in this version of analytics"))
    }

    async fn get_weekly_report(&self, _: Request<WeeklyReportRequest>) -> Result<Response<WeeklyReport>, Status> {
        Err(Status::unimplemented("the weekly report is not available in this version of analytics"))
    }
}
