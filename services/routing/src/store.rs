//! Routing's tables.

use kesu_proto::v1::{Ticket, TicketHistoryEntry};
use prost::Message;
use sqlx::AnyConnection;

use crate::error::Error;
use crate::tickets::{priority_name, status_name};

/// Inserts a new ticket; `false` if the feedback already has one.
pub async fn insert_ticket(conn: &mut AnyConnection, ticket: &Ticket, at_ms: i64) -> Result<bool, sqlx::Error> {
    let customer_key = ticket.customer.as_ref().map(|c| c.customer_key.as_str()).unwrap_or_default();
    let channel = kesu_proto::v1::Channel::try_from(ticket.channel)
        .ok()
        .and_then(kesu_domain::channel_token)
        .unwrap_or("unknown");
    let done = sqlx::query(
        "INSERT INTO tickets (ticket_id, feedback_id, feedback_number, version, status, priority, department,
                              handler, channel, customer_key, created_at, updated_at, record, co_handlers)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)
         ON CONFLICT (feedback_id) DO NOTHING",
    )
    .bind(&ticket.ticket_id)
    .bind(&ticket.feedback_id)
    .bind(&ticket.feedback_number)
    .bind(ticket.version as i64)
    .bind(status_name(ticket.status))
    .bind(priority_name(ticket.priority))
    .bind(&ticket.department)
    .bind(&ticket.handler)
    .bind(channel)
    .bind(customer_key)
    .bind(at_ms)
    .bind(ticket.encode_to_vec())
    .bind(co_handlers_column(ticket))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// `,s-1,s-2,` (empty without co-handlers), for the "mine" queue.
fn co_handlers_column(ticket: &Ticket) -> String {
    if ticket.co_handlers.is_empty() { String::new() } else { format!(",{},", ticket.co_handlers.join(",")) }
}

pub async fn insert_history(
    conn: &mut AnyConnection,
    ticket_id: &str,
    version: u64,
    kind: &str,
    actor: &str,
    at_ms: i64,
    summary: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ticket_history (ticket_id, version, kind, actor, at, summary) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ticket_id)
    .bind(version as i64)
    .bind(kind)
    .bind(actor)
    .bind(at_ms)
    .bind(summary)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `ticket_history` row.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub ticket_id: String,
    pub version: u64,
    pub kind: String,
    pub actor: String,
    pub at_ms: i64,
    pub summary: String,
}

/// Inserts history rows in multi-row statements.
pub async fn insert_histories(conn: &mut AnyConnection, rows: &[HistoryRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(kesu_storage::Database::rows_per_statement(6)) {
        let sql = format!(
            "INSERT INTO ticket_history (ticket_id, version, kind, actor, at, summary) VALUES {}",
            kesu_storage::params::values(kesu_storage::params::anonymous(conn), chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q.bind(r.ticket_id.as_str()).bind(r.version as i64).bind(r.kind.as_str());
            q = q.bind(r.actor.as_str()).bind(r.at_ms).bind(r.summary.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub enum TicketKey<'a> {
    Id(&'a str),
    FeedbackNumber(&'a str),
}

pub async fn get_ticket(pool: &sqlx::AnyPool, key: TicketKey<'_>) -> Result<Option<Ticket>, Error> {
    let row: Option<(String, Vec<u8>)> = match key {
        TicketKey::Id(id) => {
            sqlx::query_as("SELECT ticket_id, record FROM tickets WHERE ticket_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }
        TicketKey::FeedbackNumber(n) => {
            sqlx::query_as("SELECT ticket_id, record FROM tickets WHERE feedback_number = $1")
                .bind(n)
                .fetch_optional(pool)
                .await?
        }
    };
    row.map(|(id, bytes)| Error::decode("tickets", &id, &bytes)).transpose()
}

/// Filters of a ticket list; empty strings and lists mean "any".
#[derive(Debug, Default)]
pub struct TicketFilter {
    pub statuses: Vec<String>,
    pub department: String,
    pub handler: String,
    pub priority: String,
    pub channel: String,
    /// Handler or co-handler (the "mine" queue).
    pub member: String,
    /// Only tickets with an SLA clock at risk or breached.
    pub at_risk: bool,
    /// Only unclassified tickets: in triage (status, or the triage
    /// department when a triage agent has it).
    pub unclassified: bool,
}

/// Tickets newest first, after the cursor `(created_at, ticket_id)`.
pub async fn list_tickets(
    pool: &sqlx::AnyPool,
    filter: &TicketFilter,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, Ticket)>, Error> {
    let mut sql = String::from("SELECT created_at, ticket_id, record FROM tickets WHERE 1 = 1");
    let mut texts: Vec<String> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: &str| {
        texts.push(value.to_string());
        sql.push_str(&clause.replace('?', &format!("${}", texts.len())));
    };
    for (column, value) in [
        ("department", &filter.department),
        ("handler", &filter.handler),
        ("priority", &filter.priority),
        ("channel", &filter.channel),
    ] {
        if !value.is_empty() {
            arg(&mut sql, &format!(" AND {column} = ?"), value);
        }
    }
    if !filter.member.is_empty() {
        let like = format!("%,{},%", filter.member.replace('%', "").replace('_', "\\_"));
        arg(&mut sql, " AND (handler = ?", &filter.member);
        arg(&mut sql, " OR co_handlers LIKE ? ESCAPE '\\')", &like);
    }
    if filter.unclassified {
        arg(&mut sql, " AND (status = ?", "triage");
        arg(&mut sql, " OR department = ?)", crate::tickets::TRIAGE);
    }
    if filter.at_risk {
        sql.push_str(" AND ticket_id IN (SELECT ticket_id FROM ticket_sla_risk)");
    }
    if !filter.statuses.is_empty() {
        sql.push_str(" AND status IN (");
        for (i, s) in filter.statuses.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            arg(&mut sql, "?", s);
        }
        sql.push(')');
    }
    let n = texts.len();
    sql.push_str(&format!(
        " AND (created_at < ${a} OR (created_at = ${a} AND ticket_id < ${b})) ORDER BY created_at DESC, ticket_id DESC LIMIT ${c}",
        a = n + 1,
        b = n + 2,
        c = n + 3
    ));
    let (before_at, before_id) = before.unwrap_or((i64::MAX, "\u{10FFFF}".into()));
    let mut query = sqlx::query_as::<_, (i64, String, Vec<u8>)>(sqlx::AssertSqlSafe(sql));
    for t in texts {
        query = query.bind(t);
    }
    let rows = query.bind(before_at).bind(before_id).bind(limit).fetch_all(pool).await?;
    rows.into_iter()
        .map(|(at, id, bytes)| {
            let ticket = Error::decode("tickets", &id, &bytes)?;
            Ok((at, id, ticket))
        })
        .collect()
}

pub async fn history(pool: &sqlx::AnyPool, ticket_id: &str) -> Result<Vec<TicketHistoryEntry>, Error> {
    let rows: Vec<(i64, String, String, i64, String)> = sqlx::query_as(
        "SELECT version, kind, actor, at, summary FROM ticket_history WHERE ticket_id = $1 ORDER BY version",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(version, kind, actor, at, summary)| TicketHistoryEntry {
            version: version as u64,
            kind,
            actor,
            at: Some(kesu_domain::time::millis_to_timestamp(at)),
            summary,
        })
        .collect())
}

/// A ticket read inside a unit of work.
pub async fn get_ticket_in(conn: &mut AnyConnection, ticket_id: &str) -> Result<Option<Ticket>, Error> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT record FROM tickets WHERE ticket_id = $1").bind(ticket_id).fetch_optional(conn).await?;
    row.map(|(bytes,)| Error::decode("tickets", ticket_id, &bytes)).transpose()
}

/// Writes a changed ticket if it is still at `expected_version` (compare
/// and set); `false` if someone changed it meanwhile.
pub async fn update_ticket(
    conn: &mut AnyConnection,
    ticket: &Ticket,
    expected_version: u64,
    at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tickets SET version = $1, status = $2, priority = $3, department = $4, handler = $5,
                            updated_at = $6, record = $7, co_handlers = $10
         WHERE ticket_id = $8 AND version = $9",
    )
    .bind(ticket.version as i64)
    .bind(status_name(ticket.status))
    .bind(priority_name(ticket.priority))
    .bind(&ticket.department)
    .bind(&ticket.handler)
    .bind(at_ms)
    .bind(ticket.encode_to_vec())
    .bind(&ticket.ticket_id)
    .bind(expected_version as i64)
    .bind(co_handlers_column(ticket))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
