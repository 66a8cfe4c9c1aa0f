//! Answers read from the per-day rollups ([`crate::rollup`]) when a query's
//! range falls on whole local days and its grouping is one the rollups keep
//! (every filter dimension, day, week; not the hour of day). The answers are
//! the same as from the fact rows ([`crate::aggregate`]): the same columns,
//! summed over rollup rows instead of counted over tickets.

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use kesu_proto::v1::{CountByKey, RatesResponse, SatisfactionRow};

use crate::aggregate::{self, group_clause, key_expr};
use crate::error::Error;
use crate::figures::DIMENSIONS;
use crate::query::{Filter, Range};

/// Local days `[from, to)` as `YYYY-MM-DD` (open ends as bounds past any day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Days {
    pub from: String,
    pub to: String,
}

/// The local days a range covers, if it begins and ends at local midnights
/// (or is open).
pub fn whole_days(range: Range, tz: Tz) -> Option<Days> {
    let day = |ms: i64| -> Option<String> {
        let local = Utc.timestamp_millis_opt(ms).single()?.with_timezone(&tz);
        let date: NaiveDate = local.date_naive();
        let midnight = tz.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).earliest()?;
        (midnight.timestamp_millis() == ms).then(|| date.format("%Y-%m-%d").to_string())
    };
    let from = if range.from_ms <= Range::ALL.from_ms { "0000-00-00".to_string() } else { day(range.from_ms)? };
    let to = if range.to_ms >= Range::ALL.to_ms { "9999-99-99".to_string() } else { day(range.to_ms)? };
    Some(Days { from, to })
}

/// Whether the rollups keep a grouping.
pub fn groups(group_by: &str) -> bool {
    group_by != "hour"
}

async fn fetch(
    pool: &sqlx::AnyPool,
    select: &str,
    days: &Days,
    filter: &Filter,
    tail: &str,
) -> Result<Vec<sqlx::any::AnyRow>, Error> {
    let mut sql = format!("SELECT {select} FROM ticket_rollups t WHERE t.day >= $1 AND t.day < $2");
    let columns = filter.columns();
    for (i, (col, _)) in columns.iter().enumerate() {
        sql.push_str(&format!(" AND t.{col} = ${}", 3 + i));
    }
    sql.push(' ');
    sql.push_str(tail);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(days.from.as_str()).bind(days.to.as_str());
    for (_, v) in &columns {
        q = q.bind(*v);
    }
    Ok(q.fetch_all(pool).await?)
}

fn sum(col: &str) -> String {
    format!("CAST(SUM(t.{col}) AS BIGINT)")
}

pub async fn volume(
    pool: &sqlx::AnyPool,
    days: &Days,
    filter: &Filter,
    group_by: &str,
) -> Result<Vec<CountByKey>, Error> {
    let key = key_expr(group_by)?;
    let rows = fetch(pool, &format!("{key}, {}", sum("tickets")), days, filter, &group_clause(key)).await?;
    aggregate::volume_of(rows, group_by)
}

pub async fn rates(pool: &sqlx::AnyPool, days: &Days, filter: &Filter) -> Result<RatesResponse, Error> {
    let select: Vec<String> = ["tickets", "resolved", "reopened", "with_customer", "repeats", "reclassified"]
        .iter()
        .map(|c| sum(c))
        .collect();
    aggregate::rates_of(fetch(pool, &select.join(", "), days, filter, "").await?)
}

pub async fn satisfaction(
    pool: &sqlx::AnyPool,
    days: &Days,
    filter: &Filter,
    group_by: &str,
) -> Result<Vec<SatisfactionRow>, Error> {
    let key = key_expr(group_by)?;
    let mut select = vec![key.to_string(), sum("rated"), sum("score_sum"), sum("score_low")];
    select.extend((1..=5).map(|s| sum(&format!("score_{s}"))));
    for d in DIMENSIONS {
        select.push(sum(&format!("{d}_n")));
        select.push(sum(&format!("{d}_sum")));
    }
    aggregate::satisfaction_of(fetch(pool, &select.join(", "), days, filter, &group_clause(key)).await?, group_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ranges_on_local_midnights_are_whole_days() {
        let tz = chrono_tz::Asia::Shanghai;
        let at = |d: u32, h: u32| tz.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap().timestamp_millis();
        let days = |from, to| whole_days(Range { from_ms: from, to_ms: to }, tz);
        assert_eq!(days(at(23, 0), at(30, 0)), Some(Days { from: "2026-11-23".into(), to: "2026-11-30".into() }));
        assert_eq!(days(at(23, 1), at(30, 0)), None);
        assert_eq!(days(at(23, 0), at(29, 23)), None);
        assert_eq!(
            days(Range::ALL.from_ms, at(30, 0)),
            Some(Days { from: "0000-00-00".into(), to: "2026-11-30".into() })
        );
        assert_eq!(whole_days(Range::ALL, tz).map(|d| d.to), Some("9999-99-99".to_string()));
    }
}
