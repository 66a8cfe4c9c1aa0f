//! The questions analytics answers, shared by the gRPC API, the HTTP JSON
//! API, the CSV export, the weekly report and the dashboard: who may ask
//! (a department manager sees their own department only), and the figures
//! for a time range and filters.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kesu_auth::{Role, Staff};
use kesu_domain::Policy;
use kesu_proto::v1::*;
use kesu_storage::Database;

use crate::aggregate;
use crate::error::Error;
use crate::figures;
use crate::query::{self, Filter, Range, Row};
use crate::rollup_query;

/// Roles that may read analytics (the role table of the contract).
pub const READERS: &[Role] = &[Role::Analyst, Role::Director, Role::DepartmentManager, Role::Supervisor, Role::Admin];

#[derive(Clone)]
pub struct Analytics {
    pub db: Database,
    pub policy: Arc<Policy>,
}

impl Analytics {
    pub fn new(db: Database, policy: Arc<Policy>) -> Self {
        Self { db, policy }
    }

    /// The filter a caller may use: a department manager's is pinned to
    /// their department (asking for another is refused).
    pub fn scope(&self, staff: Option<&Staff>, mut filter: Filter) -> Result<Filter, Error> {
        if let Some(staff) = staff {
            if !READERS.contains(&staff.role) {
                return Err(Error::PermissionDenied(format!(
                    "role {} may not read analytics (analyst, director, department_manager, supervisor, admin may)",
                    staff.role
                )));
            }
            if staff.role == Role::DepartmentManager {
                if !filter.department.is_empty() && filter.department != staff.department {
                    return Err(Error::PermissionDenied(format!(
                        "department: a department manager sees their own department ({}) only",
                        staff.department
                    )));
                }
                filter.department = staff.department.clone();
            }
        }
        Ok(filter)
    }

    /// A proto time range as `[from, to)` (whole history when unset).
    pub fn range(&self, range: Option<&TimeRange>) -> Result<Range, Error> {
        let ms = |ts: Option<&prost_types::Timestamp>, field: &'static str, default: i64| match ts {
            None => Ok(default),
            Some(ts) => kesu_domain::time::from_timestamp(ts)
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| Error::InvalidArgument { field, message: "not a valid timestamp".into() }),
        };
        Ok(Range {
            from_ms: ms(range.and_then(|r| r.from.as_ref()), "range.from", Range::ALL.from_ms)?,
            to_ms: ms(range.and_then(|r| r.to.as_ref()), "range.to", Range::ALL.to_ms)?,
        })
    }

    /// A range from text: RFC 3339 instants, or local dates (`from` at the
    /// start of its day, `to` at the end of its day).
    pub fn parse_range(&self, from: Option<&str>, to: Option<&str>) -> Result<Range, Error> {
        let tz = self.policy.time_zone();
        let parse = |text: Option<&str>, field: &'static str, end_of_day: bool, default: i64| -> Result<i64, Error> {
            let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(default) };
            if let Ok(at) = DateTime::parse_from_rfc3339(text) {
                return Ok(at.timestamp_millis());
            }
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| Error::InvalidArgument {
                field,
                message: format!("{text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
            })?;
            let day = if end_of_day { day.succ_opt().unwrap_or(day) } else { day };
            let start = day.and_hms_opt(0, 0, 0).expect("midnight exists");
            Ok(tz.from_local_datetime(&start).earliest().map(|t| t.timestamp_millis()).unwrap_or(default))
        };
        Ok(Range {
            from_ms: parse(from, "from", false, Range::ALL.from_ms)?,
            to_ms: parse(to, "to", true, Range::ALL.to_ms)?,
        })
    }

    pub async fn rows(&self, range: Range, filter: &Filter) -> Result<Vec<Row>, Error> {
        query::load(self.db.pool(), range, filter).await
    }

    /// The local days of a range when it falls on whole days: such queries
    /// read the per-day rollups instead of the fact rows.
    fn days(&self, range: Range) -> Option<rollup_query::Days> {
        rollup_query::whole_days(range, self.policy.time_zone())
    }

    pub async fn volume(&self, range: Range, filter: &Filter, group_by: &str) -> Result<Vec<CountByKey>, Error> {
        match self.days(range).filter(|_| rollup_query::groups(group_by)) {
            Some(days) => rollup_query::volume(self.db.pool(), &days, filter, group_by).await,
            None => aggregate::volume(self.db.pool(), range, filter, group_by).await,
        }
    }

    pub async fn shares(&self, range: Range, filter: &Filter, group_by: &str) -> Result<ShareResponse, Error> {
        Ok(aggregate::shares_of(self.volume(range, filter, group_by).await?))
    }

    pub async fn attainment(
        &self,
        range: Range,
        filter: &Filter,
        group_by: &str,
    ) -> Result<Vec<SlaAttainmentRow>, Error> {
        aggregate::attainment(self.db.pool(), range, filter, group_by).await
    }

    pub async fn satisfaction(
        &self,
        range: Range,
        filter: &Filter,
        group_by: &str,
    ) -> Result<Vec<SatisfactionRow>, Error> {
        match self.days(range).filter(|_| rollup_query::groups(group_by)) {
            Some(days) => rollup_query::satisfaction(self.db.pool(), &days, filter, group_by).await,
            None => aggregate::satisfaction(self.db.pool(), range, filter, group_by).await,
        }
    }

    pub async fn handling_times(&self, range: Range, filter: &Filter) -> Result<HandlingTimesResponse, Error> {
        aggregate::handling_times(self.db.pool(), range, filter).await
    }

    pub async fn rates(&self, range: Range, filter: &Filter) -> Result<RatesResponse, Error> {
        match self.days(range) {
            Some(days) => rollup_query::rates(self.db.pool(), &days, filter).await,
            None => aggregate::rates(self.db.pool(), range, filter).await,
        }
    }

    pub async fn common_issues(&self, range: Range, filter: &Filter) -> Result<CommonIssueStatsResponse, Error> {
        Ok(figures::common_issues(&query::links(self.db.pool(), range, filter).await?, range))
    }

    pub async fn sla_risk(&self, range: Range, filter: &Filter) -> Result<SlaRiskResponse, Error> {
        aggregate::sla_risk(self.db.pool(), range, filter).await
    }

    /// The daily counters (feedback, notifications, …) over the local days of a range.
    pub async fn summary(&self, range: Range) -> Result<Summary, Error> {
        let tz = self.policy.time_zone();
        let day = |ms: i64, default: &str| {
            if ms <= Range::ALL.from_ms || ms >= Range::ALL.to_ms {
                return default.to_string();
            }
            Utc.timestamp_millis_opt(ms)
                .single()
                .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| default.into())
        };
        // `to` is exclusive: the last day is the one of the instant before it.
        let (from, to) = (day(range.from_ms, "0000-01-01"), day(range.to_ms.saturating_sub(1), "9999-12-31"));
        let rows = crate::store::totals(self.db.pool(), &from, &to).await?;
        Ok(summary_of(&rows))
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
