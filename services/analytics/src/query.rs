//! Reading the facts back: the tickets received in a time range that match
//! the filters, with their SLA outcomes and the earlier tickets of the same
//! customers (for the repeat rate). The figures are computed from these in
//! [`crate::figures`].

use std::collections::HashMap;

use sqlx::Row as _;

use crate::error::Error;

/// The query filters (empty = any). Names as in the HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Filter {
    pub channel: String,
    #[serde(alias = "type")]
    pub type_code: String,
    #[serde(alias = "cause")]
    pub cause_code: String,
    pub department: String,
    pub priority: String,
    pub region: String,
    pub tier: String,
}

impl Filter {
    pub fn from_proto(f: Option<&kesu_proto::v1::AnalyticsFilter>) -> Filter {
        let Some(f) = f else { return Filter::default() };
        Filter {
            channel: f.channel.clone(),
            type_code: f.type_code.clone(),
            cause_code: f.cause_code.clone(),
            department: f.department.clone(),
            priority: f.priority.clone(),
            region: f.region.clone(),
            tier: f.tier.clone(),
        }
    }

    pub(crate) fn columns(&self) -> Vec<(&'static str, &str)> {
        [
            ("channel", self.channel.as_str()),
            ("type_code", self.type_code.as_str()),
            ("cause_code", self.cause_code.as_str()),
            ("department", self.department.as_str()),
            ("priority", self.priority.as_str()),
            ("region", self.region.as_str()),
            ("tier", self.tier.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// A time range `[from_ms, to_ms)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Range {
    pub const ALL: Range = Range { from_ms: i64::MIN / 2, to_ms: i64::MAX / 2 };
}

/// How an SLA clock ended (as far as analytics has heard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub warned: bool,
    pub met: bool,
    pub breached: bool,
}

impl Outcome {
    /// Met in time (a breach is final: a later "met" does not undo it).
    pub fn is_met(&self) -> bool {
        self.met && !self.breached
    }
    /// Past its warning point, still running.
    pub fn at_risk(&self) -> bool {
        self.warned && !self.met && !self.breached
    }
}

/// One ticket as the figures see it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub ticket_id: String,
    pub received_ms: i64,
    pub day: String,
    pub week: String,
    pub hour: i64,
    pub channel: String,
    pub type_code: String,
    pub cause_code: String,
    pub department: String,
    pub priority: String,
    pub region: String,
    pub tier: String,
    pub customer_key: String,
    pub status: String,
    pub is_open: bool,
    pub responded_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub ever_resolved: bool,
    pub reopen_count: i64,
    pub reclassified: bool,
    pub common_issue_id: String,
    /// score, response speed, result, attitude, communication.
    pub scores: [Option<i64>; 5],
    pub response: Option<Outcome>,
    pub resolution: Option<Outcome>,
    /// An earlier ticket of the same customer within the 30 days before.
    pub repeat: bool,
}

impl Row {
    /// The value of a grouping dimension.
    pub fn key(&self, group_by: &str) -> Option<String> {
        Some(match group_by {
            "" | "all" => "all".to_string(),
            "channel" => self.channel.clone(),
            "type" => self.type_code.clone(),
            "cause" => self.cause_code.clone(),
            "department" => self.department.clone(),
            "priority" | "level" => self.priority.clone(),
            "region" => self.region.clone(),
            "tier" => self.tier.clone(),
            "hour" => format!("{:02}", self.hour),
            "day" => self.day.clone(),
            "week" => self.week.clone(),
            _ => return None,
        })
    }
}

/// The dimensions a query may group by.
pub const GROUPS: &str = "channel, type, cause, department, priority, region, tier, hour, day, week";

/// Checks a group_by (the error names `field`).
pub fn check_group(field: &'static str, group_by: &str) -> Result<(), Error> {
    Row::default()
        .key(group_by)
        .map(drop)
        .ok_or_else(|| Error::InvalidArgument { field, message: format!("{group_by:?} is not one of {GROUPS}") })
}

const THIRTY_DAYS_MS: i64 = 30 * 24 * 3600 * 1000;

const COLUMNS: &str = "t.ticket_id, t.received_ms, t.day, t.week, t.hour, t.channel, t.type_code, t.cause_code, \
     t.department, t.priority, t.region, t.tier, t.customer_key, t.status, t.is_open, t.responded_ms, \
     t.resolved_ms, t.ever_resolved, t.reopen_count, t.reclassified, t.common_issue_id, t.score, \
     t.response_speed, t.result, t.attitude, t.communication";

/// `WHERE` over `ticket_facts t` for a range (bound first, at `$first` and
/// `$first + 1`) and a filter, with the filter's binds.
pub(crate) fn conditions(filter: &Filter, first: usize) -> (String, Vec<String>) {
    let mut sql = format!("t.received_ms >= ${} AND t.received_ms < ${}", first, first + 1);
    let mut binds = Vec::new();
    for (i, (col, value)) in filter.columns().into_iter().enumerate() {
        sql.push_str(&format!(" AND t.{col} = ${}", first + 2 + i));
        binds.push(value.to_string());
    }
    (sql, binds)
}

fn b(v: i64) -> bool {
    v != 0
}

/// The tickets received in `range` matching `filter`, with SLA outcomes and
/// repeat flags.
pub async fn load(pool: &sqlx::AnyPool, range: Range, filter: &Filter) -> Result<Vec<Row>, Error> {
    let (cond, binds) = conditions(filter, 1);
    let sql = format!("SELECT {COLUMNS} FROM ticket_facts t WHERE {cond} ORDER BY t.received_ms, t.ticket_id");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(range.from_ms).bind(range.to_ms);
    for v in &binds {
        q = q.bind(v.as_str());
    }
    let mut rows = Vec::new();
    for r in q.fetch_all(pool).await? {
        rows.push(Row {
            ticket_id: r.try_get(0)?,
            received_ms: r.try_get(1)?,
            day: r.try_get(2)?,
            week: r.try_get(3)?,
            hour: r.try_get(4)?,
            channel: r.try_get(5)?,
            type_code: r.try_get(6)?,
            cause_code: r.try_get(7)?,
            department: r.try_get(8)?,
            priority: r.try_get(9)?,
            region: r.try_get(10)?,
            tier: r.try_get(11)?,
            customer_key: r.try_get(12)?,
            status: r.try_get(13)?,
            is_open: b(r.try_get(14)?),
            responded_ms: r.try_get(15)?,
            resolved_ms: r.try_get(16)?,
            ever_resolved: b(r.try_get(17)?),
            reopen_count: r.try_get(18)?,
            reclassified: b(r.try_get(19)?),
            common_issue_id: r.try_get(20)?,
            scores: [r.try_get(21)?, r.try_get(22)?, r.try_get(23)?, r.try_get(24)?, r.try_get(25)?],
            response: None,
            resolution: None,
            repeat: false,
        });
    }
    if rows.is_empty() {
        return Ok(rows);
    }
    // SLA outcomes of the same tickets.
    let sql = format!(
        "SELECT o.ticket_id, o.clock, o.warned, o.met, o.breached FROM sla_outcomes o
         JOIN ticket_facts t ON t.ticket_id = o.ticket_id WHERE {cond} AND o.clock IN ('response', 'resolution')"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(range.from_ms).bind(range.to_ms);
    for v in &binds {
        q = q.bind(v.as_str());
    }
    let mut outcomes: HashMap<String, (Option<Outcome>, Option<Outcome>)> = HashMap::new();
    for r in q.fetch_all(pool).await? {
        let id: String = r.try_get(0)?;
        let clock: String = r.try_get(1)?;
        let o = Outcome { warned: b(r.try_get(2)?), met: b(r.try_get(3)?), breached: b(r.try_get(4)?) };
        let entry = outcomes.entry(id).or_default();
        if clock == "response" {
            entry.0 = Some(o);
        } else {
            entry.1 = Some(o);
        }
    }
    // Every ticket of the customers, from 30 days before the range (any filter).
    let sql = "SELECT customer_key, received_ms, ticket_id FROM ticket_facts
               WHERE customer_key <> '' AND received_ms >= $1 AND received_ms < $2";
    let earlier: Vec<(String, i64, String)> = sqlx::query_as(sql)
        .bind(range.from_ms.saturating_sub(THIRTY_DAYS_MS))
        .bind(range.to_ms)
        .fetch_all(pool)
        .await?;
    let mut by_customer: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    for (key, at, id) in &earlier {
        by_customer.entry(key.as_str()).or_default().push((*at, id.as_str()));
    }
    for row in &mut rows {
        if let Some((response, resolution)) = outcomes.remove(&row.ticket_id) {
            row.response = response;
            row.resolution = resolution;
        }
        if !row.customer_key.is_empty() {
            row.repeat = by_customer.get(row.customer_key.as_str()).is_some_and(|tickets| {
                tickets.iter().any(|(at, id)| {
                    *id != row.ticket_id
                        && *at >= row.received_ms - THIRTY_DAYS_MS
                        && (*at < row.received_ms || (*at == row.received_ms && *id < row.ticket_id.as_str()))
                })
            });
        }
    }
    Ok(rows)
}

/// A ticket's link to a common issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub common_issue_id: String,
    pub ticket_id: String,
    pub linked_ms: i64,
    pub type_code: String,
    pub cause_code: String,
    pub department: String,
    pub is_open: bool,
}

/// Links up to the end of the range of tickets matching the filter (the
/// range limits when they were linked, not when received).
pub async fn links(pool: &sqlx::AnyPool, range: Range, filter: &Filter) -> Result<Vec<Link>, Error> {
    let (cond, binds) = conditions(filter, 2);
    let sql = format!(
        "SELECT l.common_issue_id, l.ticket_id, l.linked_ms, t.type_code, t.cause_code, t.department, t.is_open
         FROM issue_links l JOIN ticket_facts t ON t.ticket_id = l.ticket_id
         WHERE l.linked_ms < $1 AND {cond} ORDER BY l.common_issue_id, l.linked_ms, l.ticket_id"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(range.to_ms).bind(Range::ALL.from_ms).bind(Range::ALL.to_ms);
    for v in &binds {
        q = q.bind(v.as_str());
    }
    let mut out = Vec::new();
    for r in q.fetch_all(pool).await? {
        out.push(Link {
            common_issue_id: r.try_get(0)?,
            ticket_id: r.try_get(1)?,
            linked_ms: r.try_get(2)?,
            type_code: r.try_get(3)?,
            cause_code: r.try_get(4)?,
            department: r.try_get(5)?,
            is_open: b(r.try_get::<i64, _>(6)?),
        });
    }
    Ok(out)
}
