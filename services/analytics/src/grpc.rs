//! analytics' gRPC API: the figures of [`crate::api`] for a time range and
//! filters, scoped to the caller (a department manager sees their own
//! department only).

use kesu_proto::v1::analytics_service_server::AnalyticsService;
use kesu_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::EventCounter;
use crate::api::Analytics;
use crate::error::Error;
use crate::query::{Filter, Range};
use crate::rebuild::Rebuilder;
use crate::report;

pub struct AnalyticsApi {
    analytics: Analytics,
    rebuilder: Rebuilder<EventCounter>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
}

impl AnalyticsApi {
    pub fn new(analytics: Analytics, rebuilder: Rebuilder<EventCounter>) -> Self {
        Self { analytics, rebuilder, rebuilding: tokio::sync::Mutex::new(()) }
    }

    fn scope<T>(&self, request: &Request<T>, filter: Option<&AnalyticsFilter>) -> Result<Filter, Error> {
        self.analytics.scope(kesu_auth::staff(request), Filter::from_proto(filter))
    }

    fn query(&self, request: &Request<AnalyticsQuery>) -> Result<(Range, Filter), Status> {
        let q = request.get_ref();
        let filter = self.scope(request, q.filter.as_ref())?;
        Ok((self.analytics.range(q.range.as_ref())?, filter))
    }
}

fn ok<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn get_summary(&self, request: Request<GetSummaryRequest>) -> Result<Response<Summary>, Status> {
        if kesu_auth::staff(&request).is_some_and(|s| s.role == kesu_auth::Role::DepartmentManager) {
            return Err(Error::PermissionDenied(
                "the summary covers every department: a department manager uses the filtered queries".into(),
            )
            .into());
        }
        let range = self.analytics.range(request.get_ref().range.as_ref())?;
        ok(self.analytics.summary(range).await)
    }

    async fn get_volume(&self, request: Request<VolumeRequest>) -> Result<Response<VolumeResponse>, Status> {
        let filter = self.scope(&request, request.get_ref().filter.as_ref())?;
        let req = request.into_inner();
        let range = self.analytics.range(req.range.as_ref())?;
        ok(self.analytics.volume(range, &filter, &req.group_by).await.map(|rows| VolumeResponse { rows }))
    }

    async fn get_sla_attainment(
        &self,
        request: Request<SlaAttainmentRequest>,
    ) -> Result<Response<SlaAttainmentResponse>, Status> {
        let filter = self.scope(&request, request.get_ref().filter.as_ref())?;
        let req = request.into_inner();
        let range = self.analytics.range(req.range.as_ref())?;
        ok(self.analytics.attainment(range, &filter, &req.group_by).await.map(|rows| SlaAttainmentResponse { rows }))
    }

    async fn get_satisfaction(
        &self,
        request: Request<SatisfactionRequest>,
    ) -> Result<Response<SatisfactionResponse>, Status> {
        let filter = self.scope(&request, request.get_ref().filter.as_ref())?;
        let req = request.into_inner();
        let range = self.analytics.range(req.range.as_ref())?;
        ok(self.analytics.satisfaction(range, &filter, &req.group_by).await.map(|rows| SatisfactionResponse { rows }))
    }

    async fn get_weekly_report(&self, request: Request<WeeklyReportRequest>) -> Result<Response<WeeklyReport>, Status> {
        let filter = self.scope(&request, None)?;
        let req = request.into_inner();
        let tz = self.analytics.policy.time_zone();
        // Unset: last week (the latest complete one).
        let week = match req.week_of.as_ref() {
            None => report::Week::of(chrono::Utc::now().with_timezone(&tz).date_naive()).previous(),
            Some(ts) => {
                let at = kesu_domain::time::from_timestamp(ts).ok_or_else(|| Error::InvalidArgument {
                    field: "week_of",
                    message: "not a valid timestamp".into(),
                })?;
                report::Week::of(at.with_timezone(&tz).date_naive())
            }
        };
        let locale = match req.locale.as_str() {
            "" | "zh" | "zh-CN" => "zh",
            "en" | "en-GB" | "en-US" => "en",
            other => {
                return Err(Error::InvalidArgument { field: "locale", message: format!("{other:?}: zh or en") }.into());
            }
        };
        let mut weekly = report::weekly(&self.analytics, week, locale, &filter).await?;
        if filter.department.is_empty() {
            let range = week.range(tz);
            weekly.proto.summary = Some(self.analytics.summary(range).await?);
        }
        Ok(Response::new(weekly.proto))
    }

    async fn get_cause_shares(&self, request: Request<AnalyticsQuery>) -> Result<Response<ShareResponse>, Status> {
        let (range, filter) = self.query(&request)?;
        ok(self.analytics.shares(range, &filter, "cause").await)
    }

    async fn get_type_shares(&self, request: Request<AnalyticsQuery>) -> Result<Response<ShareResponse>, Status> {
        let (range, filter) = self.query(&request)?;
        ok(self.analytics.shares(range, &filter, "type").await)
    }

    async fn get_handling_times(
        &self,
        request: Request<AnalyticsQuery>,
    ) -> Result<Response<HandlingTimesResponse>, Status> {
        let (range, filter) = self.query(&request)?;
        ok(self.analytics.handling_times(range, &filter).await)
    }

    async fn get_rates(&self, request: Request<AnalyticsQuery>) -> Result<Response<RatesResponse>, Status> {
        let (range, filter) = self.query(&request)?;
        ok(self.analytics.rates(range, &filter).await)
    }

    async fn get_common_issue_stats(
        &self,
        request: Request<AnalyticsQuery>,
    ) -> Result<Response<CommonIssueStatsResponse>, Status> {
        let (range, filter) = self.query(&request)?;
        ok(self.analytics.common_issues(range, &filter).await)
    }

    async fn get_sla_risk(&self, request: Request<AnalyticsQuery>) -> Result<Response<SlaRiskResponse>, Status> {
        let (range, filter) = self.query(&request)?;
        ok(self.analytics.sla_risk(range, &filter).await)
    }

    async fn rebuild_rollups(&self, request: Request<RebuildRequest>) -> Result<Response<RebuildResponse>, Status> {
        let Ok(_running) = self.rebuilding.try_lock() else {
            return Err(Status::failed_precondition("a rebuild is already running"));
        };
        ok(self.rebuilder.run(request.get_ref().force).await)
    }
}
