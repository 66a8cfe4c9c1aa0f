//! Analytics' announcements: a published report (the weekly 问题分析报告)
//! goes to management.

use kesu_bus::HandleError;
use kesu_domain::policy::Trigger;
use kesu_proto::v1::{AnalyticsEvent, analytics_event};

use crate::moment::{Facts, Moment, Source};

pub fn moments(event: &AnalyticsEvent, traceparent: Option<&str>) -> Result<Vec<Moment>, HandleError> {
    let source = Source::of(event.meta.as_ref(), traceparent);
    Ok(match &event.kind {
        Some(analytics_event::Kind::ReportPublished(report)) => {
            if report.report_id.is_empty() {
                return Err(HandleError::Permanent("analytics.evt.report_published without report_id".into()));
            }
            vec![Moment {
                trigger: Some(Trigger::ReportPublished),
                scope: format!("report:{}", report.report_id),
                source,
                report_id: report.report_id.clone(),
                title: report.title_zh.clone(),
                facts: Facts { report: Some(report.clone()), ..Default::default() },
                ..Default::default()
            }]
        }
        None => Vec::new(),
    })
}
