//! The figures computed by the database (counts and sums grouped in SQL),
//! so a query returns a few rows whatever the number of tickets; only the
//! percentiles read one duration per ticket. Same definitions as
//! [`crate::figures`] (which works on loaded rows, for the weekly report).

use std::collections::BTreeMap;

use kesu_proto::v1::{
    CountByKey, DimensionMean, HandlingTimesResponse, RatesResponse, SatisfactionRow, ShareByKey, ShareResponse,
    SlaAttainmentRow, SlaRiskResponse,
};
use sqlx::Row as _;

use crate::error::Error;
use crate::figures::{self, DIMENSIONS};
use crate::query::{self, Filter, Range};

/// The SQL expression of a grouping over `ticket_facts t`.
pub(crate) fn key_expr(group_by: &str) -> Result<&'static str, Error> {
    query::check_group("group_by", group_by)?;
    Ok(match group_by {
        "" | "all" => "'all'",
        "channel" => "t.channel",
        "type" => "t.type_code",
        "cause" => "t.cause_code",
        "department" => "t.department",
        "priority" | "level" => "t.priority",
        "region" => "t.region",
        "tier" => "t.tier",
        "hour" => "CAST(t.hour AS TEXT)",
        "day" => "t.day",
        _ => "t.week",
    })
}

/// `GROUP BY` of a key (none for the single group "all": PostgreSQL
/// groups by no constant).
pub(crate) fn group_clause(key: &str) -> String {
    if key == "'all'" { String::new() } else { format!("GROUP BY {key}") }
}

fn key_text(group_by: &str, key: String) -> String {
    if group_by == "hour" { key.parse::<u32>().map(|h| format!("{h:02}")).unwrap_or(key) } else { key }
}

/// A query over `ticket_facts t` (plus `joins`) for a range and filter.
struct Sql {
    sql: String,
    binds: Vec<String>,
    range: Range,
}

impl Sql {
    fn new(select: &str, joins: &str, range: Range, filter: &Filter, extra: &str, tail: &str) -> Sql {
        let (cond, binds) = query::conditions(filter, 1);
        Sql { sql: format!("SELECT {select} FROM ticket_facts t {joins} WHERE {cond} {extra} {tail}"), binds, range }
    }

    async fn fetch(self, pool: &sqlx::AnyPool) -> Result<Vec<sqlx::any::AnyRow>, Error> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.sql)).bind(self.range.from_ms).bind(self.range.to_ms);
        for v in &self.binds {
            q = q.bind(v.as_str());
        }
        Ok(q.fetch_all(pool).await?)
    }
}

pub(crate) fn int(r: &sqlx::any::AnyRow, i: usize) -> Result<i64, Error> {
    Ok(r.try_get::<Option<i64>, _>(i)?.unwrap_or(0))
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

pub async fn volume(
    pool: &sqlx::AnyPool,
    range: Range,
    filter: &Filter,
    group_by: &str,
) -> Result<Vec<CountByKey>, Error> {
    let key = key_expr(group_by)?;
    let rows = Sql::new(&format!("{key}, COUNT(*)"), "", range, filter, "", &group_clause(key)).fetch(pool).await?;
    volume_of(rows, group_by)
}

/// Volume rows (key, count) as answered.
pub(crate) fn volume_of(rows: Vec<sqlx::any::AnyRow>, group_by: &str) -> Result<Vec<CountByKey>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let count = int(&r, 1)? as u64;
        if count > 0 {
            out.push(CountByKey { key: key_text(group_by, r.try_get(0)?), count });
        }
    }
    if matches!(group_by, "day" | "week" | "hour") {
        out.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    }
    Ok(out)
}

/// Each key's share of the counts.
pub(crate) fn shares_of(counts: Vec<CountByKey>) -> ShareResponse {
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let rows =
        counts.into_iter().map(|c| ShareByKey { share: ratio(c.count, total), key: c.key, count: c.count }).collect();
    ShareResponse { total, rows }
}

/// Durations in seconds from receipt to `column`, per group key.
async fn durations(
    pool: &sqlx::AnyPool,
    range: Range,
    filter: &Filter,
    key: &str,
    column: &str,
) -> Result<BTreeMap<String, Vec<f64>>, Error> {
    let rows = Sql::new(
        &format!("{key}, t.{column} - t.received_ms"),
        "",
        range,
        filter,
        &format!("AND t.{column} IS NOT NULL"),
        "",
    )
    .fetch(pool)
    .await?;
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let ms = int(&r, 1)?.max(0);
        out.entry(r.try_get(0)?).or_default().push(ms as f64 / 1000.0);
    }
    Ok(out)
}

pub async fn handling_times(
    pool: &sqlx::AnyPool,
    range: Range,
    filter: &Filter,
) -> Result<HandlingTimesResponse, Error> {
    let mut response = durations(pool, range, filter, "'all'", "responded_ms").await?;
    let mut resolution = durations(pool, range, filter, "'all'", "resolved_ms").await?;
    Ok(HandlingTimesResponse {
        response: Some(figures::durations(response.remove("all").unwrap_or_default())),
        resolution: Some(figures::durations(resolution.remove("all").unwrap_or_default())),
    })
}

const OUTCOMES: &str = "LEFT JOIN sla_outcomes r ON r.ticket_id = t.ticket_id AND r.clock = 'response'
     LEFT JOIN sla_outcomes s ON s.ticket_id = t.ticket_id AND s.clock = 'resolution'";

pub async fn attainment(
    pool: &sqlx::AnyPool,
    range: Range,
    filter: &Filter,
    group_by: &str,
) -> Result<Vec<SlaAttainmentRow>, Error> {
    let key = key_expr(group_by)?;
    let select = format!(
        "{key}, CAST(SUM(CASE WHEN r.met = 1 AND r.breached = 0 THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN r.breached = 1 THEN 1 ELSE 0 END) AS BIGINT),
         CAST(SUM(CASE WHEN s.met = 1 AND s.breached = 0 THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN s.breached = 1 THEN 1 ELSE 0 END) AS BIGINT), COUNT(*)"
    );
    let rows = Sql::new(&select, OUTCOMES, range, filter, "", &group_clause(key)).fetch(pool).await?;
    let mut response_times = durations(pool, range, filter, key, "responded_ms").await?;
    let mut resolution_times = durations(pool, range, filter, key, "resolved_ms").await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.into_iter().filter(|r| int(r, 5).unwrap_or(0) > 0) {
        let raw_key: String = r.try_get(0)?;
        let (rm, rb, sm, sb) = (int(&r, 1)? as u64, int(&r, 2)? as u64, int(&r, 3)? as u64, int(&r, 4)? as u64);
        let response = figures::durations(response_times.remove(&raw_key).unwrap_or_default());
        let resolution = figures::durations(resolution_times.remove(&raw_key).unwrap_or_default());
        out.push(SlaAttainmentRow {
            key: key_text(group_by, raw_key),
            response_met: rm,
            response_breached: rb,
            resolution_met: sm,
            resolution_breached: sb,
            response_median: response.median,
            response_p90: response.p90,
            resolution_median: resolution.median,
            resolution_p90: resolution.p90,
            response_attainment: ratio(rm, rm + rb),
            resolution_attainment: ratio(sm, sm + sb),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

pub async fn satisfaction(
    pool: &sqlx::AnyPool,
    range: Range,
    filter: &Filter,
    group_by: &str,
) -> Result<Vec<SatisfactionRow>, Error> {
    let key = key_expr(group_by)?;
    let mut select = format!(
        "{key}, COUNT(t.score), CAST(SUM(t.score) AS BIGINT), CAST(SUM(CASE WHEN t.score <= 3 THEN 1 ELSE 0 END) AS BIGINT)"
    );
    for s in 1..=5 {
        select.push_str(&format!(", CAST(SUM(CASE WHEN t.score = {s} THEN 1 ELSE 0 END) AS BIGINT)"));
    }
    for d in DIMENSIONS {
        select.push_str(&format!(", COUNT(t.{d}), CAST(SUM(t.{d}) AS BIGINT)"));
    }
    let rows = Sql::new(&select, "", range, filter, "AND t.score IS NOT NULL", &group_clause(key)).fetch(pool).await?;
    satisfaction_of(rows, group_by)
}

/// Satisfaction rows (key, rated, sum, low, scores 1..5, then count and sum
/// per dimension) as answered.
pub(crate) fn satisfaction_of(rows: Vec<sqlx::any::AnyRow>, group_by: &str) -> Result<Vec<SatisfactionRow>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let rated = int(&r, 1)? as u64;
        if rated == 0 {
            continue;
        }
        let distribution = (1..=5)
            .map(|s| Ok(CountByKey { key: s.to_string(), count: int(&r, 3 + s)? as u64 }))
            .collect::<Result<Vec<_>, Error>>()?;
        let dimensions = DIMENSIONS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (n, sum) = (int(&r, 9 + 2 * i)? as u64, int(&r, 10 + 2 * i)?);
                Ok(DimensionMean {
                    dimension: name.to_string(),
                    rated: n,
                    average: if n == 0 { 0.0 } else { sum as f64 / n as f64 },
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        out.push(SatisfactionRow {
            key: key_text(group_by, r.try_get(0)?),
            rated,
            average: if rated == 0 { 0.0 } else { int(&r, 2)? as f64 / rated as f64 },
            low_share: ratio(int(&r, 3)? as u64, rated),
            distribution,
            dimensions,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// An earlier ticket of the same customer within the 30 days before (same
/// instant: the smaller id counts as earlier).
const REPEAT: &str = "EXISTS (SELECT 1 FROM ticket_facts p WHERE p.customer_key = t.customer_key
     AND p.ticket_id <> t.ticket_id AND p.received_ms >= t.received_ms - 2592000000
     AND (p.received_ms < t.received_ms OR (p.received_ms = t.received_ms AND p.ticket_id < t.ticket_id)))";

pub async fn rates(pool: &sqlx::AnyPool, range: Range, filter: &Filter) -> Result<RatesResponse, Error> {
    let select = format!(
        "COUNT(*), CAST(SUM(t.ever_resolved) AS BIGINT), CAST(SUM(CASE WHEN t.reopen_count > 0 THEN 1 ELSE 0 END) AS BIGINT),
         CAST(SUM(CASE WHEN t.customer_key <> '' THEN 1 ELSE 0 END) AS BIGINT),
         CAST(SUM(CASE WHEN t.customer_key <> '' AND {REPEAT} THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(t.reclassified) AS BIGINT)"
    );
    let rows = Sql::new(&select, "", range, filter, "", "").fetch(pool).await?;
    rates_of(rows)
}

/// The rates from one row: tickets, resolved, reopened, with customer,
/// repeats, reclassified.
pub(crate) fn rates_of(rows: Vec<sqlx::any::AnyRow>) -> Result<RatesResponse, Error> {
    let r = rows.first().ok_or(Error::NotFound("no answer"))?;
    let (tickets, resolved, reopened) = (int(r, 0)? as u64, int(r, 1)? as u64, int(r, 2)? as u64);
    let (with_customer, repeats, reclassified) = (int(r, 3)? as u64, int(r, 4)? as u64, int(r, 5)? as u64);
    Ok(RatesResponse {
        tickets,
        resolved,
        reopened,
        reopen_rate: ratio(reopened, resolved),
        with_customer,
        repeats,
        repeat_feedback_rate: ratio(repeats, with_customer),
        reclassified,
        reclassification_rate: ratio(reclassified, tickets),
    })
}

pub async fn sla_risk(pool: &sqlx::AnyPool, range: Range, filter: &Filter) -> Result<SlaRiskResponse, Error> {
    let select = "t.department, CAST(SUM(CASE WHEN o.breached = 1 THEN 1 ELSE 0 END) AS BIGINT),
         CAST(SUM(CASE WHEN o.warned = 1 AND o.met = 0 AND o.breached = 0 THEN 1 ELSE 0 END) AS BIGINT)";
    let joins = "JOIN sla_outcomes o ON o.ticket_id = t.ticket_id AND o.clock IN ('response', 'resolution')";
    let rows = Sql::new(select, joins, range, filter, "AND t.is_open = 1", "GROUP BY t.department").fetch(pool).await?;
    let (mut breaches, mut risks) = (BTreeMap::new(), BTreeMap::new());
    for r in rows {
        let department: String = r.try_get(0)?;
        let (b, k) = (int(&r, 1)? as u64, int(&r, 2)? as u64);
        if b > 0 {
            breaches.insert(department.clone(), b);
        }
        if k > 0 {
            risks.insert(department, k);
        }
    }
    let list = |m: BTreeMap<String, u64>| m.into_iter().map(|(key, count)| CountByKey { key, count }).collect();
    Ok(SlaRiskResponse {
        open_breaches: breaches.values().sum(),
        at_risk: risks.values().sum(),
        breaches_by_department: list(breaches),
        at_risk_by_department: list(risks),
    })
}
