//! The figures management asks for, computed from the loaded ticket rows
//! (pure functions: the same rows always give the same answers).
//! Percentiles are nearest-rank; rates are 0 when there is nothing to divide.

use std::collections::BTreeMap;

use kesu_proto::v1::{
    CommonIssueStat, CommonIssueStatsResponse, CountByKey, DimensionMean, DurationStats, HandlingTimesResponse,
    RatesResponse, SatisfactionRow, ShareByKey, ShareResponse, SlaAttainmentRow, SlaRiskResponse,
};

use crate::query::{Link, Range, Row};

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Rows counted per key of `group_by`, in key order for time keys (day,
/// week, hour), by count (largest first) otherwise.
pub fn volume(rows: &[Row], group_by: &str) -> Vec<CountByKey> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        if let Some(key) = row.key(group_by) {
            *counts.entry(key).or_default() += 1;
        }
    }
    let mut out: Vec<CountByKey> = counts.into_iter().map(|(key, count)| CountByKey { key, count }).collect();
    if !matches!(group_by, "day" | "week" | "hour") {
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    }
    out
}

/// Day counts (`YYYY-MM-DD` keys, in order) with the days between them that
/// had none filled in as zeros, for a trend line.
pub fn fill_days(counts: Vec<CountByKey>) -> Vec<CountByKey> {
    let parse = |k: &str| chrono::NaiveDate::parse_from_str(k, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) =
        (counts.first().and_then(|c| parse(&c.key)), counts.last().and_then(|c| parse(&c.key)))
    else {
        return counts;
    };
    let mut out = Vec::new();
    let mut day = first;
    while day <= last && out.len() <= 3660 {
        let key = day.format("%Y-%m-%d").to_string();
        let count = counts.iter().find(|c| c.key == key).map(|c| c.count).unwrap_or(0);
        out.push(CountByKey { key, count });
        day = day.succ_opt().unwrap_or(last + chrono::Duration::days(1));
    }
    out
}

/// Each key's share of the rows ("logistics is 30 % of complaints").
pub fn shares(rows: &[Row], group_by: &str) -> ShareResponse {
    let total = rows.len() as u64;
    let rows = volume(rows, group_by)
        .into_iter()
        .map(|c| ShareByKey { share: ratio(c.count, total), key: c.key, count: c.count })
        .collect();
    ShareResponse { total, rows }
}

/// The nearest-rank `p` percentile (0 < p <= 1) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub const BUCKETS: [(&str, f64); 6] = [
    ("<=1h", 3600.0),
    ("1-4h", 4.0 * 3600.0),
    ("4-8h", 8.0 * 3600.0),
    ("8-24h", 24.0 * 3600.0),
    ("1-3d", 72.0 * 3600.0),
    (">3d", f64::INFINITY),
];

/// Count, median, p90 and histogram of durations in seconds.
pub fn durations(mut seconds: Vec<f64>) -> DurationStats {
    seconds.sort_by(|a, b| a.total_cmp(b));
    let histogram = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (key, upper))| {
            let lower = if i == 0 { f64::NEG_INFINITY } else { BUCKETS[i - 1].1 };
            let count = seconds.iter().filter(|s| **s > lower && **s <= *upper).count() as u64;
            CountByKey { key: key.to_string(), count }
        })
        .collect();
    DurationStats {
        count: seconds.len() as u64,
        median: percentile(&seconds, 0.5),
        p90: percentile(&seconds, 0.9),
        histogram,
    }
}

fn response_seconds(rows: &[&Row]) -> Vec<f64> {
    rows.iter().filter_map(|r| r.responded_ms.map(|at| (at - r.received_ms).max(0) as f64 / 1000.0)).collect()
}

fn resolution_seconds(rows: &[&Row]) -> Vec<f64> {
    rows.iter().filter_map(|r| r.resolved_ms.map(|at| (at - r.received_ms).max(0) as f64 / 1000.0)).collect()
}

pub fn handling_times(rows: &[Row]) -> HandlingTimesResponse {
    let all: Vec<&Row> = rows.iter().collect();
    HandlingTimesResponse {
        response: Some(durations(response_seconds(&all))),
        resolution: Some(durations(resolution_seconds(&all))),
    }
}

fn grouped<'a>(rows: &'a [Row], group_by: &str) -> BTreeMap<String, Vec<&'a Row>> {
    let mut groups: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        if let Some(key) = row.key(group_by) {
            groups.entry(key).or_default().push(row);
        }
    }
    groups
}

/// SLA attainment of the response and resolution clocks per group, with
/// the median and p90 times.
pub fn attainment(rows: &[Row], group_by: &str) -> Vec<SlaAttainmentRow> {
    grouped(rows, group_by)
        .into_iter()
        .map(|(key, rows)| {
            let count = |pick: fn(&Row) -> Option<crate::query::Outcome>, met: bool| {
                rows.iter().filter_map(|r| pick(r)).filter(|o| if met { o.is_met() } else { o.breached }).count() as u64
            };
            let response_met = count(|r| r.response, true);
            let response_breached = count(|r| r.response, false);
            let resolution_met = count(|r| r.resolution, true);
            let resolution_breached = count(|r| r.resolution, false);
            let response = durations(response_seconds(&rows));
            let resolution = durations(resolution_seconds(&rows));
            SlaAttainmentRow {
                key,
                response_met,
                response_breached,
                resolution_met,
                resolution_breached,
                response_median: response.median,
                response_p90: response.p90,
                resolution_median: resolution.median,
                resolution_p90: resolution.p90,
                response_attainment: ratio(response_met, response_met + response_breached),
                resolution_attainment: ratio(resolution_met, resolution_met + resolution_breached),
            }
        })
        .collect()
}

pub const DIMENSIONS: [&str; 4] = ["response_speed", "result", "attitude", "communication"];

/// Satisfaction per group: ratings, mean, share ≤ 3, distribution 1..5 and
/// the mean of each dimension. Unrated tickets are left out.
pub fn satisfaction(rows: &[Row], group_by: &str) -> Vec<SatisfactionRow> {
    let rated: Vec<Row> = rows.iter().filter(|r| r.scores[0].is_some()).cloned().collect();
    grouped(&rated, group_by)
        .into_iter()
        .map(|(key, rows)| {
            let scores: Vec<i64> = rows.iter().filter_map(|r| r.scores[0]).collect();
            let n = scores.len() as u64;
            let distribution = (1..=5)
                .map(|s| CountByKey { key: s.to_string(), count: scores.iter().filter(|v| **v == s).count() as u64 })
                .collect();
            let dimensions = DIMENSIONS
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let values: Vec<i64> = rows.iter().filter_map(|r| r.scores[i + 1]).collect();
                    DimensionMean {
                        dimension: name.to_string(),
                        rated: values.len() as u64,
                        average: if values.is_empty() {
                            0.0
                        } else {
                            values.iter().sum::<i64>() as f64 / values.len() as f64
                        },
                    }
                })
                .collect();
            SatisfactionRow {
                key,
                rated: n,
                average: if n == 0 { 0.0 } else { scores.iter().sum::<i64>() as f64 / n as f64 },
                low_share: ratio(scores.iter().filter(|s| **s <= 3).count() as u64, n),
                distribution,
                dimensions,
            }
        })
        .collect()
}

pub fn rates(rows: &[Row]) -> RatesResponse {
    let tickets = rows.len() as u64;
    let resolved = rows.iter().filter(|r| r.ever_resolved).count() as u64;
    let reopened = rows.iter().filter(|r| r.reopen_count > 0).count() as u64;
    let with_customer = rows.iter().filter(|r| !r.customer_key.is_empty()).count() as u64;
    let repeats = rows.iter().filter(|r| r.repeat).count() as u64;
    let reclassified = rows.iter().filter(|r| r.reclassified).count() as u64;
    RatesResponse {
        tickets,
        resolved,
        reopened,
        reopen_rate: ratio(reopened, resolved),
        with_customer,
        repeats,
        repeat_feedback_rate: ratio(repeats, with_customer),
        reclassified,
        reclassification_rate: ratio(reclassified, tickets),
    }
}

/// Common issues: open or not, size up to the end of the range and growth
/// within it, largest growth first. The type, cause and department are
/// those of the issue's first ticket.
pub fn common_issues(links: &[Link], range: Range) -> CommonIssueStatsResponse {
    let mut by_issue: BTreeMap<&str, Vec<&Link>> = BTreeMap::new();
    for link in links.iter().filter(|l| l.linked_ms < range.to_ms) {
        by_issue.entry(l_id(link)).or_default().push(link);
    }
    let mut issues: Vec<CommonIssueStat> = by_issue
        .into_iter()
        .map(|(id, links)| {
            let first = links.iter().min_by_key(|l| (l.linked_ms, l.ticket_id.as_str())).expect("not empty");
            CommonIssueStat {
                common_issue_id: id.to_string(),
                type_code: first.type_code.clone(),
                cause_code: first.cause_code.clone(),
                department: first.department.clone(),
                open: links.iter().any(|l| l.is_open),
                size: links.len() as u64,
                growth: links.iter().filter(|l| l.linked_ms >= range.from_ms).count() as u64,
            }
        })
        .collect();
    issues.sort_by(|a, b| {
        b.growth.cmp(&a.growth).then(b.size.cmp(&a.size)).then_with(|| a.common_issue_id.cmp(&b.common_issue_id))
    });
    CommonIssueStatsResponse { open: issues.iter().filter(|i| i.open).count() as u64, issues }
}

fn l_id(link: &Link) -> &str {
    link.common_issue_id.as_str()
}

/// Breached and at-risk response/resolution clocks of the open tickets.
pub fn sla_risk(rows: &[Row]) -> SlaRiskResponse {
    let mut breaches: BTreeMap<String, u64> = BTreeMap::new();
    let mut risks: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.is_open) {
        for outcome in [row.response, row.resolution].into_iter().flatten() {
            if outcome.breached {
                *breaches.entry(row.department.clone()).or_default() += 1;
            } else if outcome.at_risk() {
                *risks.entry(row.department.clone()).or_default() += 1;
            }
        }
    }
    let list = |m: BTreeMap<String, u64>| m.into_iter().map(|(key, count)| CountByKey { key, count }).collect();
    SlaRiskResponse {
        open_breaches: breaches.values().sum(),
        at_risk: risks.values().sum(),
        breaches_by_department: list(breaches),
        at_risk_by_department: list(risks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.9), 9.0);
        assert_eq!(percentile(&[7.0], 0.9), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn trend_days_without_tickets_are_zeros() {
        let c = |k: &str, n| CountByKey { key: k.into(), count: n };
        let filled = fill_days(vec![c("2026-11-28", 2), c("2026-12-01", 1)]);
        assert_eq!(filled, [c("2026-11-28", 2), c("2026-11-29", 0), c("2026-11-30", 0), c("2026-12-01", 1)]);
        assert_eq!(fill_days(vec![]), []);
    }

    #[test]
    fn histogram_buckets_are_upper_inclusive() {
        let d = durations(vec![3600.0, 3601.0, 3.0 * 86400.0, 3.0 * 86400.0 + 1.0]);
        let counts: Vec<u64> = d.histogram.iter().map(|c| c.count).collect();
        assert_eq!(counts, [1, 1, 0, 0, 1, 1]);
    }
}
