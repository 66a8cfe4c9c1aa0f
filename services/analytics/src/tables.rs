//! Every figure as a flat table (named columns, rows of values): the shape
//! the HTTP JSON API answers with and the CSV export writes.

use serde_json::{Value, json};

use crate::api::Analytics;
use crate::error::Error;
use crate::figures;
use crate::query::{Filter, Range};

/// The tables, with the grouping each uses when none is asked for.
pub const TABLES: [(&str, &str); 14] = [
    ("volume", "day"),
    ("trend_day", "day"),
    ("trend_week", "week"),
    ("peaks_hour", "hour"),
    ("causes", "cause"),
    ("types", "type"),
    ("sla", "priority"),
    ("times", ""),
    ("satisfaction", "all"),
    ("rates", ""),
    ("common_issues", ""),
    ("sla_risk", ""),
    ("tickets", ""),
    ("summary", ""),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    fn new(name: &str, columns: &[&'static str]) -> Self {
        Self { name: name.to_string(), columns: columns.to_vec(), rows: Vec::new() }
    }

    /// `{"table": …, "columns": […], "rows": [{column: value}, …]}`.
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| Value::Object(self.columns.iter().zip(row).map(|(c, v)| (c.to_string(), v.clone())).collect()))
            .collect();
        json!({ "table": self.name, "columns": self.columns, "rows": rows })
    }

    /// RFC 4180 CSV with a header line.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |cells: Vec<String>, out: &mut String| {
            let cells: Vec<String> = cells.into_iter().map(|c| csv_cell(&c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        };
        line(self.columns.iter().map(|c| c.to_string()).collect(), &mut out);
        for row in &self.rows {
            line(
                row.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    })
                    .collect(),
                &mut out,
            );
        }
        out
    }
}

fn csv_cell(text: &str) -> String {
    // A leading =, +, - or @ would be a formula to a spreadsheet.
    let text = if text.starts_with(['=', '+', '@']) || (text.starts_with('-') && text.parse::<f64>().is_err()) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// Rounds a figure for display (6 decimals).
fn num(x: f64) -> Value {
    json!((x * 1e6).round() / 1e6)
}

/// One table for a range and (already scoped) filter.
pub async fn table(
    analytics: &Analytics,
    name: &str,
    range: Range,
    filter: &Filter,
    group_by: Option<&str>,
) -> Result<Table, Error> {
    let Some((_, default_group)) = TABLES.iter().find(|(n, _)| *n == name) else {
        return Err(Error::InvalidArgument {
            field: "table",
            message: format!(
                "{name:?} is not one of {}",
                TABLES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        });
    };
    let fixed = matches!(name, "trend_day" | "trend_week" | "peaks_hour" | "causes" | "types");
    let group = if fixed { default_group } else { group_by.filter(|g| !g.is_empty()).unwrap_or(default_group) };
    let mut t;
    match name {
        "volume" | "trend_day" | "trend_week" | "peaks_hour" => {
            t = Table::new(name, &["key", "count"]);
            let mut counts = analytics.volume(range, filter, group).await?;
            if name == "trend_day" {
                counts = figures::fill_days(counts);
            }
            for c in counts {
                t.rows.push(vec![json!(c.key), json!(c.count)]);
            }
        }
        "causes" | "types" => {
            t = Table::new(name, &["key", "count", "share"]);
            for c in analytics.shares(range, filter, group).await?.rows {
                t.rows.push(vec![json!(c.key), json!(c.count), num(c.share)]);
            }
        }
        "sla" => {
            t = Table::new(
                name,
                &[
                    "key",
                    "response_met",
                    "response_breached",
                    "response_attainment",
                    "resolution_met",
                    "resolution_breached",
                    "resolution_attainment",
                    "response_median_s",
                    "response_p90_s",
                    "resolution_median_s",
                    "resolution_p90_s",
                ],
            );
            for r in analytics.attainment(range, filter, group).await? {
                t.rows.push(vec![
                    json!(r.key),
                    json!(r.response_met),
                    json!(r.response_breached),
                    num(r.response_attainment),
                    json!(r.resolution_met),
                    json!(r.resolution_breached),
                    num(r.resolution_attainment),
                    num(r.response_median),
                    num(r.response_p90),
                    num(r.resolution_median),
                    num(r.resolution_p90),
                ]);
            }
        }
        "times" => {
            let mut columns = vec!["measure", "count", "median_s", "p90_s"];
            columns.extend(figures::BUCKETS.iter().map(|(k, _)| *k));
            t = Table::new(name, &columns);
            let times = analytics.handling_times(range, filter).await?;
            for (measure, stats) in [("response", times.response), ("resolution", times.resolution)] {
                let stats = stats.unwrap_or_default();
                let mut row = vec![json!(measure), json!(stats.count), num(stats.median), num(stats.p90)];
                row.extend(stats.histogram.iter().map(|b| json!(b.count)));
                t.rows.push(row);
            }
        }
        "satisfaction" => {
            let mut columns = vec!["key", "rated", "average", "low_share", "score_1", "score_2", "score_3", "score_4"];
            columns.extend(["score_5"]);
            columns.extend(figures::DIMENSIONS);
            t = Table::new(name, &columns);
            for r in analytics.satisfaction(range, filter, group).await? {
                let mut row = vec![json!(r.key), json!(r.rated), num(r.average), num(r.low_share)];
                row.extend(r.distribution.iter().map(|d| json!(d.count)));
                row.extend(r.dimensions.iter().map(|d| num(d.average)));
                t.rows.push(row);
            }
        }
        "rates" => {
            t = Table::new(
                name,
                &[
                    "tickets",
                    "resolved",
                    "reopened",
                    "reopen_rate",
                    "with_customer",
                    "repeats",
                    "repeat_feedback_rate",
                    "reclassified",
                    "reclassification_rate",
                ],
            );
            let r = analytics.rates(range, filter).await?;
            t.rows.push(vec![
                json!(r.tickets),
                json!(r.resolved),
                json!(r.reopened),
                num(r.reopen_rate),
                json!(r.with_customer),
                json!(r.repeats),
                num(r.repeat_feedback_rate),
                json!(r.reclassified),
                num(r.reclassification_rate),
            ]);
        }
        "common_issues" => {
            t = Table::new(name, &["common_issue_id", "type", "cause", "department", "open", "size", "growth"]);
            for i in analytics.common_issues(range, filter).await?.issues {
                t.rows.push(vec![
                    json!(i.common_issue_id),
                    json!(i.type_code),
                    json!(i.cause_code),
                    json!(i.department),
                    json!(i.open),
                    json!(i.size),
                    json!(i.growth),
                ]);
            }
        }
        "sla_risk" => {
            t = Table::new(name, &["department", "open_breaches", "at_risk"]);
            let r = analytics.sla_risk(range, filter).await?;
            let mut departments: Vec<&String> =
                r.breaches_by_department.iter().chain(&r.at_risk_by_department).map(|c| &c.key).collect();
            departments.sort();
            departments.dedup();
            let count = |list: &[kesu_proto::v1::CountByKey], d: &str| {
                list.iter().find(|c| c.key == d).map(|c| c.count).unwrap_or(0)
            };
            for d in departments {
                t.rows.push(vec![
                    json!(d),
                    json!(count(&r.breaches_by_department, d)),
                    json!(count(&r.at_risk_by_department, d)),
                ]);
            }
        }
        "tickets" => {
            t = Table::new(
                name,
                &[
                    "ticket_id",
                    "received_at",
                    "day",
                    "channel",
                    "type",
                    "cause",
                    "department",
                    "priority",
                    "region",
                    "tier",
                    "status",
                    "open",
                    "response_s",
                    "resolution_s",
                    "reopen_count",
                    "reclassified",
                    "repeat",
                    "common_issue_id",
                    "score",
                ],
            );
            for r in analytics.rows(range, filter).await? {
                let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(r.received_ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default();
                let secs =
                    |ms: Option<i64>| ms.map(|m| json!((m - r.received_ms).max(0) / 1000)).unwrap_or(Value::Null);
                t.rows.push(vec![
                    json!(r.ticket_id),
                    json!(at),
                    json!(r.day),
                    json!(r.channel),
                    json!(r.type_code),
                    json!(r.cause_code),
                    json!(r.department),
                    json!(r.priority),
                    json!(r.region),
                    json!(r.tier),
                    json!(r.status),
                    json!(r.is_open),
                    secs(r.responded_ms),
                    secs(r.resolved_ms),
                    json!(r.reopen_count),
                    json!(r.reclassified),
                    json!(r.repeat),
                    json!(r.common_issue_id),
                    r.scores[0].map(|s| json!(s)).unwrap_or(Value::Null),
                ]);
            }
        }
        "summary" => {
            if !filter.department.is_empty() {
                return Err(Error::PermissionDenied(
                    "the summary covers every department: a department manager uses the filtered tables".into(),
                ));
            }
            t = Table::new(name, &["metric", "key", "count"]);
            let s = analytics.summary(range).await?;
            for (metric, v) in [
                ("feedback_received", s.feedback_received),
                ("feedback_accepted", s.feedback_accepted),
                ("feedback_needs_info", s.feedback_needs_info),
                ("feedback_pending_review", s.feedback_pending_review),
                ("feedback_rejected", s.feedback_rejected),
                ("feedback_duplicates", s.feedback_duplicates),
                ("tickets_created", s.tickets_created),
                ("tickets_resolved", s.tickets_resolved),
                ("tickets_reopened", s.tickets_reopened),
                ("sla_clocks_armed", s.sla_clocks_armed),
                ("sla_breaches", s.sla_breaches),
                ("notifications_requested", s.notifications_requested),
                ("notifications_sent", s.notifications_sent),
                ("notifications_failed", s.notifications_failed),
            ] {
                t.rows.push(vec![json!(metric), json!(""), json!(v)]);
            }
            for (metric, list) in [
                ("feedback_by_channel", &s.feedback_by_channel),
                ("tickets_by_priority", &s.tickets_by_priority),
                ("tickets_by_department", &s.tickets_by_department),
                ("tickets_by_type", &s.tickets_by_type),
                ("notifications_by_channel", &s.notifications_by_channel),
            ] {
                for c in list {
                    t.rows.push(vec![json!(metric), json!(c.key), json!(c.count)]);
                }
            }
        }
        _ => unreachable!("checked against TABLES"),
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("-1.5"), "-1.5");
        assert_eq!(csv_cell("物流"), "物流");
    }
}
