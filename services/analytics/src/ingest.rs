//! What ticket and SLA events leave in analytics' fact tables, written so
//! that a redelivered or late event changes nothing it should not: the
//! ticket's state follows the newest version seen, first response and
//! resolution are the earliest times seen, counts and flags only go up.
//! Only codes, times and the customer's keyed pseudonym are kept.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use kesu_proto::v1::{
    Channel, SlaClock, SlaClockKind, SlaEvent, Ticket, TicketEvent, TicketStatus, sla_event, ticket_event,
};
use sqlx::AnyConnection;

/// A ticket's row of `ticket_facts`, from one event's ticket state.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFact {
    pub ticket_id: String,
    pub version: i64,
    pub received_ms: i64,
    pub day: String,
    pub week: String,
    pub hour: i32,
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
    pub reopen_count: i32,
    pub reclassified: bool,
    pub common_issue_id: String,
    /// Scores 1..5 when rated: score, response speed, result, attitude, communication.
    pub satisfaction: Option<[Option<i32>; 5]>,
}

fn ms(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.and_then(kesu_domain::time::from_timestamp).map(|t| t.timestamp_millis())
}

/// The local day (YYYY-MM-DD), ISO week (YYYY-Www) and hour of an instant.
pub fn local_keys(at_ms: i64, tz: Tz) -> (String, String, i32) {
    let at = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default().with_timezone(&tz);
    let week = at.iso_week();
    (at.format("%Y-%m-%d").to_string(), format!("{}-W{:02}", week.year(), week.week()), at.hour() as i32)
}

pub fn channel_token(c: i32) -> String {
    Channel::try_from(c).ok().and_then(kesu_domain::channel_token).unwrap_or("unknown").to_string()
}

pub fn priority_token(p: i32) -> String {
    kesu_domain::Priority::from_proto(p).map(|p| p.as_str()).unwrap_or("unspecified").to_string()
}

fn status_token(s: i32) -> (&'static str, bool) {
    match TicketStatus::try_from(s).unwrap_or_default() {
        TicketStatus::Unspecified => ("unspecified", true),
        TicketStatus::New => ("new", true),
        TicketStatus::Triage => ("triage", true),
        TicketStatus::Assigned => ("assigned", true),
        TicketStatus::Acknowledged => ("acknowledged", true),
        TicketStatus::InProgress => ("in_progress", true),
        TicketStatus::WaitingOnCustomer => ("waiting_on_customer", true),
        TicketStatus::Reopened => ("reopened", true),
        TicketStatus::Resolved => ("resolved", false),
        TicketStatus::FollowUp => ("follow_up", false),
        TicketStatus::Closed => ("closed", false),
        TicketStatus::Archived => ("archived", false),
    }
}

fn score(v: u32) -> Option<i32> {
    (1..=5).contains(&v).then_some(v as i32)
}

impl TicketFact {
    /// The fact of a ticket event (`None` without a ticket or id).
    pub fn of(e: &TicketEvent, tz: Tz) -> Option<TicketFact> {
        let t: &Ticket = e.ticket.as_ref()?;
        if t.ticket_id.is_empty() {
            return None;
        }
        let occurred = ms(e.meta.as_ref().and_then(|m| m.occurred_at.as_ref()));
        let received_ms = ms(t.received_at.as_ref())
            .or(ms(t.created_at.as_ref()))
            .or(occurred)
            .unwrap_or_else(|| Utc::now().timestamp_millis());
        let (day, week, hour) = local_keys(received_ms, tz);
        let class = t.classification.clone().unwrap_or_default();
        let (status, is_open) = status_token(t.status);
        let resolved_ms = ms(t.resolved_at.as_ref()).or(ms(t.resolution.as_ref().and_then(|r| r.resolved_at.as_ref())));
        let responded_ms =
            [ms(t.acknowledged_at.as_ref()), ms(t.last_progress_at.as_ref()), resolved_ms].into_iter().flatten().min();
        let resolved_event = matches!(e.kind, Some(ticket_event::Kind::Resolved(_)));
        let resolved_ms = resolved_ms.or(if resolved_event { occurred } else { None });
        let reclassified = matches!(&e.kind, Some(ticket_event::Kind::Classified(c)) if c.correction);
        let satisfaction = t.satisfaction.as_ref().and_then(|s| {
            score(s.score).map(|overall| {
                [Some(overall), score(s.response_speed), score(s.result), score(s.attitude), score(s.communication)]
            })
        });
        Some(TicketFact {
            ticket_id: t.ticket_id.clone(),
            version: t.version.max(e.meta.as_ref().map(|m| m.aggregate_version).unwrap_or(0)) as i64,
            received_ms,
            day,
            week,
            hour,
            channel: channel_token(t.channel),
            type_code: if class.type_code.is_empty() { "unclassified".into() } else { class.type_code },
            cause_code: if class.cause_code.is_empty() { "unknown".into() } else { class.cause_code },
            department: t.department.clone(),
            priority: priority_token(t.priority),
            region: t.region.clone(),
            tier: t.customer.as_ref().map(|c| c.tier.clone()).unwrap_or_default(),
            customer_key: t.customer.as_ref().map(|c| c.customer_key.clone()).unwrap_or_default(),
            status: status.into(),
            is_open,
            responded_ms,
            resolved_ms,
            ever_resolved: resolved_ms.is_some() || !is_open || t.reopen_count > 0,
            reopen_count: t.reopen_count.max(matches!(e.kind, Some(ticket_event::Kind::Reopened(_))) as u32) as i32,
            reclassified,
            common_issue_id: match &e.kind {
                Some(ticket_event::Kind::Linked(l)) if !l.common_issue_id.is_empty() => l.common_issue_id.clone(),
                _ => t.common_issue_id.clone(),
            },
            satisfaction,
        })
    }
}

/// Columns that follow the newest version.
const LATEST: [&str; 11] = [
    "channel",
    "type_code",
    "cause_code",
    "department",
    "priority",
    "region",
    "tier",
    "customer_key",
    "status",
    "is_open",
    "common_issue_id",
];
const SCORES: [&str; 5] = ["score", "response_speed", "result", "attitude", "communication"];

fn earliest(col: &str) -> String {
    format!(
        "{col} = CASE WHEN ticket_facts.{col} IS NULL THEN excluded.{col} WHEN excluded.{col} IS NULL THEN \
         ticket_facts.{col} WHEN excluded.{col} < ticket_facts.{col} THEN excluded.{col} ELSE ticket_facts.{col} END"
    )
}

fn largest(col: &str) -> String {
    format!("{col} = CASE WHEN excluded.{col} > ticket_facts.{col} THEN excluded.{col} ELSE ticket_facts.{col} END")
}

fn upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let mut set: Vec<String> = LATEST
            .iter()
            .map(|c| {
                format!("{c} = CASE WHEN excluded.version > ticket_facts.version THEN excluded.{c} ELSE ticket_facts.{c} END")
            })
            .collect();
        set.extend(SCORES.iter().map(|c| {
            format!(
                "{c} = CASE WHEN excluded.score_version > ticket_facts.score_version THEN excluded.{c} \
                 ELSE ticket_facts.{c} END"
            )
        }));
        set.push(largest("score_version"));
        set.push(largest("version"));
        set.push(earliest("responded_ms"));
        set.push(earliest("resolved_ms"));
        set.push(largest("ever_resolved"));
        set.push(largest("reopen_count"));
        set.push(largest("reclassified"));
        format!(
            "INSERT INTO ticket_facts (ticket_id, version, received_ms, day, week, hour, channel, type_code, \
             cause_code, department, priority, region, tier, customer_key, status, is_open, responded_ms, \
             resolved_ms, ever_resolved, reopen_count, reclassified, common_issue_id, score_version, score, \
             response_speed, result, attitude, communication) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28) \
             ON CONFLICT (ticket_id) DO UPDATE SET {}",
            set.join(", ")
        )
    })
}

/// Merges a ticket fact into `ticket_facts` (and its common-issue link).
pub async fn merge_ticket(conn: &mut AnyConnection, f: &TicketFact, linked_ms: i64) -> Result<(), sqlx::Error> {
    let s = f.satisfaction.unwrap_or([None; 5]);
    sqlx::query(sqlx::AssertSqlSafe(upsert_sql()))
        .bind(&f.ticket_id)
        .bind(f.version)
        .bind(f.received_ms)
        .bind(&f.day)
        .bind(&f.week)
        .bind(f.hour as i64)
        .bind(&f.channel)
        .bind(&f.type_code)
        .bind(&f.cause_code)
        .bind(&f.department)
        .bind(&f.priority)
        .bind(&f.region)
        .bind(&f.tier)
        .bind(&f.customer_key)
        .bind(&f.status)
        .bind(f.is_open as i64)
        .bind(f.responded_ms)
        .bind(f.resolved_ms)
        .bind(f.ever_resolved as i64)
        .bind(f.reopen_count as i64)
        .bind(f.reclassified as i64)
        .bind(&f.common_issue_id)
        .bind(if f.satisfaction.is_some() { f.version } else { 0 })
        .bind(s[0].map(i64::from))
        .bind(s[1].map(i64::from))
        .bind(s[2].map(i64::from))
        .bind(s[3].map(i64::from))
        .bind(s[4].map(i64::from))
        .execute(&mut *conn)
        .await?;
    if !f.common_issue_id.is_empty() {
        sqlx::query(
            "INSERT INTO issue_links (common_issue_id, ticket_id, linked_ms) VALUES ($1, $2, $3)
             ON CONFLICT (common_issue_id, ticket_id) DO UPDATE SET linked_ms =
             CASE WHEN excluded.linked_ms < issue_links.linked_ms THEN excluded.linked_ms ELSE issue_links.linked_ms END",
        )
        .bind(&f.common_issue_id)
        .bind(&f.ticket_id)
        .bind(linked_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One SLA clock's outcome flags from an SLA event.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockOutcome {
    pub ticket_id: String,
    pub clock: &'static str,
    pub deadline_ms: Option<i64>,
    pub warned: bool,
    pub met: bool,
    pub breached: bool,
}

pub fn clock_token(kind: i32) -> &'static str {
    match SlaClockKind::try_from(kind).unwrap_or_default() {
        SlaClockKind::Acknowledge => "acknowledge",
        SlaClockKind::Response => "response",
        SlaClockKind::Resolution => "resolution",
        SlaClockKind::ResultNotice => "result_notice",
        SlaClockKind::FollowUp => "follow_up",
        SlaClockKind::ProgressUpdate => "progress_update",
        SlaClockKind::Unspecified => "unspecified",
    }
}

impl ClockOutcome {
    pub fn of(e: &SlaEvent) -> Vec<ClockOutcome> {
        let one = |c: &SlaClock, warned, met, breached| ClockOutcome {
            ticket_id: if c.ticket_id.is_empty() { e.ticket_id.clone() } else { c.ticket_id.clone() },
            clock: clock_token(c.kind),
            deadline_ms: ms(c.deadline.as_ref()),
            warned,
            met,
            breached,
        };
        match &e.kind {
            Some(sla_event::Kind::Armed(a)) => a.clocks.iter().map(|c| one(c, false, false, false)).collect(),
            Some(sla_event::Kind::Warning(w)) => w.clock.iter().map(|c| one(c, true, false, false)).collect(),
            Some(sla_event::Kind::Breached(b)) => b.clock.iter().map(|c| one(c, false, false, true)).collect(),
            Some(sla_event::Kind::Escalated(x)) => x.clock.iter().map(|c| one(c, false, false, true)).collect(),
            Some(sla_event::Kind::Met(m)) => m.clock.iter().map(|c| one(c, false, true, false)).collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|o| !o.ticket_id.is_empty())
        .collect()
    }
}

pub async fn merge_clock(conn: &mut AnyConnection, o: &ClockOutcome) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sla_outcomes (ticket_id, clock, deadline_ms, warned, met, breached) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (ticket_id, clock) DO UPDATE SET
           deadline_ms = COALESCE(excluded.deadline_ms, sla_outcomes.deadline_ms),
           warned = CASE WHEN excluded.warned > sla_outcomes.warned THEN excluded.warned ELSE sla_outcomes.warned END,
           met = CASE WHEN excluded.met > sla_outcomes.met THEN excluded.met ELSE sla_outcomes.met END,
           breached = CASE WHEN excluded.breached > sla_outcomes.breached THEN excluded.breached
                      ELSE sla_outcomes.breached END",
    )
    .bind(&o.ticket_id)
    .bind(o.clock)
    .bind(o.deadline_ms)
    .bind(o.warned as i64)
    .bind(o.met as i64)
    .bind(o.breached as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
