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
    /// The version the scores come from (0: none).
    pub score_version: i64,
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
        let version = t.version.max(e.meta.as_ref().map(|m| m.aggregate_version).unwrap_or(0)) as i64;
        Some(TicketFact {
            ticket_id: t.ticket_id.clone(),
            version,
            score_version: if satisfaction.is_some() { version } else { 0 },
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

fn earliest_of(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl TicketFact {
    /// Takes in a later-handled fact of the same ticket with the rules of
    /// the table (so a batch writes one row per ticket).
    pub fn absorb(&mut self, o: TicketFact) {
        self.responded_ms = earliest_of(self.responded_ms, o.responded_ms);
        self.resolved_ms = earliest_of(self.resolved_ms, o.resolved_ms);
        self.ever_resolved |= o.ever_resolved;
        self.reopen_count = self.reopen_count.max(o.reopen_count);
        self.reclassified |= o.reclassified;
        if o.score_version > self.score_version {
            self.score_version = o.score_version;
            self.satisfaction = o.satisfaction;
        }
        if o.version > self.version {
            self.version = o.version;
            self.channel = o.channel;
            self.type_code = o.type_code;
            self.cause_code = o.cause_code;
            self.department = o.department;
            self.priority = o.priority;
            self.region = o.region;
            self.tier = o.tier;
            self.customer_key = o.customer_key;
            self.status = o.status;
            self.is_open = o.is_open;
            self.common_issue_id = o.common_issue_id;
        }
    }
}

/// Rows per multi-row statement (anonymous parameters on SQLite: see
/// [`crate::store::anonymous`]).
pub(crate) const TICKETS_PER_STATEMENT: usize = 128;

/// What a batch of events leaves, merged per row, written once before commit.
#[derive(Debug, Default)]
pub struct Pending {
    tickets: std::collections::HashMap<String, TicketFact>,
    links: std::collections::HashMap<(String, String), i64>,
    clocks: std::collections::HashMap<(String, &'static str), ClockOutcome>,
}

impl Pending {
    pub fn ticket(&mut self, fact: TicketFact, linked_ms: i64) {
        if !fact.common_issue_id.is_empty() {
            let at = self.links.entry((fact.common_issue_id.clone(), fact.ticket_id.clone())).or_insert(linked_ms);
            *at = (*at).min(linked_ms);
        }
        match self.tickets.get_mut(&fact.ticket_id) {
            Some(seen) => seen.absorb(fact),
            None => {
                self.tickets.insert(fact.ticket_id.clone(), fact);
            }
        }
    }

    pub fn clock(&mut self, o: ClockOutcome) {
        match self.clocks.get_mut(&(o.ticket_id.clone(), o.clock)) {
            Some(seen) => {
                seen.warned |= o.warned;
                seen.met |= o.met;
                seen.breached |= o.breached;
                seen.deadline_ms = o.deadline_ms.or(seen.deadline_ms);
            }
            None => {
                self.clocks.insert((o.ticket_id.clone(), o.clock), o);
            }
        }
    }

    /// Writes everything: multi-row upserts with the merge rules of the tables.
    pub async fn write(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let mut tickets: Vec<TicketFact> = self.tickets.into_values().collect();
        tickets.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
        if !tickets.is_empty() {
            // The rows as they were, then as the upserts leave them: the
            // rollups move by the difference.
            let ids: Vec<&str> = tickets.iter().map(|t| t.ticket_id.as_str()).collect();
            let mut changes = crate::rollup::Changes::before(conn, &ids).await?;
            // Tickets without a row yet are inserted as they are (the row
            // is the fact); should another writer have inserted one
            // meanwhile, it is merged below like the others.
            let (fresh, mut known): (Vec<TicketFact>, Vec<TicketFact>) =
                tickets.into_iter().partition(|t| !changes.had(&t.ticket_id));
            let mut raced: Vec<TicketFact> = Vec::new();
            for chunk in fresh.chunks(TICKETS_PER_STATEMENT) {
                let inserted = insert_new_tickets(conn, chunk).await?;
                for fact in chunk {
                    if inserted.contains(fact.ticket_id.as_str()) {
                        changes.after(vec![crate::rollup::FactRow::of_new(fact)]);
                    } else {
                        raced.push(fact.clone());
                    }
                }
            }
            if !raced.is_empty() {
                let ids: Vec<&str> = raced.iter().map(|t| t.ticket_id.as_str()).collect();
                changes.read_more(conn, &ids).await?;
                known.extend(raced);
            }
            for chunk in known.chunks(TICKETS_PER_STATEMENT) {
                changes.after(merge_tickets(conn, chunk).await?);
            }
            changes.apply(conn).await?;
        }
        let mut links: Vec<((String, String), i64)> = self.links.into_iter().collect();
        links.sort();
        for chunk in links.chunks(1000) {
            let sql = format!(
                "INSERT INTO issue_links (common_issue_id, ticket_id, linked_ms) VALUES {}
                 ON CONFLICT (common_issue_id, ticket_id) DO UPDATE SET linked_ms = CASE WHEN excluded.linked_ms \
                 < issue_links.linked_ms THEN excluded.linked_ms ELSE issue_links.linked_ms END",
                crate::store::values(crate::store::anonymous(conn), chunk.len(), 3)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((issue, ticket), at) in chunk {
                q = q.bind(issue.as_str()).bind(ticket.as_str()).bind(*at);
            }
            q.execute(&mut *conn).await?;
        }
        let mut clocks: Vec<ClockOutcome> = self.clocks.into_values().collect();
        clocks.sort_by(|a, b| (a.ticket_id.as_str(), a.clock).cmp(&(b.ticket_id.as_str(), b.clock)));
        for chunk in clocks.chunks(1000) {
            merge_clocks(conn, chunk).await?;
        }
        Ok(())
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

fn upsert_set() -> &'static str {
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
        set.join(", ")
    })
}

const FACT_COLUMNS: usize = 28;

const INSERT_FACTS: &str = "INSERT INTO ticket_facts (ticket_id, version, received_ms, day, week, hour, channel, \
     type_code, cause_code, department, priority, region, tier, customer_key, status, is_open, responded_ms, \
     resolved_ms, ever_resolved, reopen_count, reclassified, common_issue_id, score_version, score, response_speed, \
     result, attitude, communication) VALUES";

/// The statement `sql` with each fact's row bound, in [`INSERT_FACTS`]' order.
fn bind_facts<'q>(sql: String, facts: &'q [TicketFact]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for f in facts {
        let s = f.satisfaction.unwrap_or([None; 5]);
        q = q
            .bind(f.ticket_id.as_str())
            .bind(f.version)
            .bind(f.received_ms)
            .bind(f.day.as_str())
            .bind(f.week.as_str())
            .bind(f.hour as i64)
            .bind(f.channel.as_str())
            .bind(f.type_code.as_str())
            .bind(f.cause_code.as_str())
            .bind(f.department.as_str())
            .bind(f.priority.as_str())
            .bind(f.region.as_str())
            .bind(f.tier.as_str())
            .bind(f.customer_key.as_str())
            .bind(f.status.as_str())
            .bind(f.is_open as i64)
            .bind(f.responded_ms)
            .bind(f.resolved_ms)
            .bind(f.ever_resolved as i64)
            .bind(f.reopen_count as i64)
            .bind(f.reclassified as i64)
            .bind(f.common_issue_id.as_str())
            .bind(f.score_version)
            .bind(s[0].map(i64::from))
            .bind(s[1].map(i64::from))
            .bind(s[2].map(i64::from))
            .bind(s[3].map(i64::from))
            .bind(s[4].map(i64::from));
    }
    q
}

/// Inserts facts of tickets that had no row; the ids inserted (those left
/// out were inserted by another writer meanwhile).
async fn insert_new_tickets(
    conn: &mut AnyConnection,
    facts: &[TicketFact],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    if facts.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "{INSERT_FACTS} {} ON CONFLICT (ticket_id) DO NOTHING RETURNING ticket_id",
        crate::store::values(crate::store::anonymous(conn), facts.len(), FACT_COLUMNS),
    );
    let rows = bind_facts(sql, facts).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| sqlx::Row::try_get::<String, _>(r, 0)).collect()
}

/// Merges ticket facts (one per ticket) into `ticket_facts` in one
/// statement; returns the rows as they now are.
pub(crate) async fn merge_tickets(
    conn: &mut AnyConnection,
    facts: &[TicketFact],
) -> Result<Vec<crate::rollup::FactRow>, sqlx::Error> {
    if facts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{INSERT_FACTS} {} ON CONFLICT (ticket_id) DO UPDATE SET {} RETURNING {}",
        crate::store::values(crate::store::anonymous(conn), facts.len(), FACT_COLUMNS),
        upsert_set(),
        crate::rollup::ROW_COLUMNS
    );
    bind_facts(sql, facts).fetch_all(&mut *conn).await?.iter().map(crate::rollup::FactRow::of).collect()
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

/// Merges clock outcomes (one per ticket and clock) in one statement: the
/// flags only rise.
pub async fn merge_clocks(conn: &mut AnyConnection, outcomes: &[ClockOutcome]) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO sla_outcomes (ticket_id, clock, deadline_ms, warned, met, breached) VALUES {}
         ON CONFLICT (ticket_id, clock) DO UPDATE SET
           deadline_ms = COALESCE(excluded.deadline_ms, sla_outcomes.deadline_ms),
           warned = CASE WHEN excluded.warned > sla_outcomes.warned THEN excluded.warned ELSE sla_outcomes.warned END,
           met = CASE WHEN excluded.met > sla_outcomes.met THEN excluded.met ELSE sla_outcomes.met END,
           breached = CASE WHEN excluded.breached > sla_outcomes.breached THEN excluded.breached
                      ELSE sla_outcomes.breached END",
        crate::store::values(crate::store::anonymous(conn), outcomes.len(), 6)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for o in outcomes {
        q = q.bind(o.ticket_id.as_str()).bind(o.clock).bind(o.deadline_ms);
        q = q.bind(o.warned as i64).bind(o.met as i64).bind(o.breached as i64);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(version: i64, type_code: &str, responded: Option<i64>, score: Option<i32>) -> TicketFact {
        TicketFact {
            ticket_id: "T1".into(),
            version,
            received_ms: 1000,
            day: "2026-11-23".into(),
            week: "2026-W48".into(),
            hour: 9,
            channel: "web".into(),
            type_code: type_code.into(),
            cause_code: "c".into(),
            department: "d".into(),
            priority: "high".into(),
            region: String::new(),
            tier: String::new(),
            customer_key: "K".into(),
            status: "assigned".into(),
            is_open: true,
            responded_ms: responded,
            resolved_ms: None,
            ever_resolved: false,
            reopen_count: 0,
            reclassified: version == 2,
            common_issue_id: String::new(),
            satisfaction: score.map(|s| [Some(s), None, None, None, None]),
            score_version: if score.is_some() { version } else { 0 },
        }
    }

    #[test]
    fn merging_a_batch_does_not_depend_on_the_order() {
        let facts = [
            fact(1, "logistics", None, None),
            fact(2, "product_quality", Some(5000), None),
            fact(3, "product_quality", Some(4000), Some(2)),
            fact(4, "product_quality", Some(6000), None),
        ];
        let merge = |order: &[usize]| {
            let mut it = order.iter().map(|i| facts[*i].clone());
            let mut first = it.next().unwrap();
            for f in it {
                first.absorb(f);
            }
            first
        };
        let in_order = merge(&[0, 1, 2, 3]);
        for order in [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            assert_eq!(merge(&order), in_order, "order {order:?}");
        }
        assert_eq!((in_order.version, in_order.type_code.as_str()), (4, "product_quality"));
        assert_eq!((in_order.responded_ms, in_order.reclassified), (Some(4000), true));
        assert_eq!((in_order.score_version, in_order.satisfaction.map(|s| s[0])), (3, Some(Some(2))));
    }
}
