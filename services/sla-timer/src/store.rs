//! sla-timer's tables: what is known of each ticket (`sla_tickets`) and
//! its planned clocks (`sla_clocks`, for the at-risk and breached lists).

use kesu_proto::v1::{SlaClock, SlaClockState};
use kesu_storage::{Backend, params};
use prost::Message;
use sqlx::AnyConnection;

use crate::clocks::{kind_name, state_name};
use crate::error::Error;
use crate::facts::TicketFacts;

fn millis(ts: &Option<prost_types::Timestamp>) -> Option<i64> {
    ts.as_ref().and_then(kesu_domain::time::from_timestamp).map(kesu_domain::time::to_millis)
}

/// A ticket's facts, locked for this transaction on PostgreSQL (a ticket
/// event and a firing timer on two replicas take turns).
pub async fn load_facts(
    conn: &mut AnyConnection,
    backend: Backend,
    ticket_id: &str,
) -> Result<Option<TicketFacts>, Error> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!("SELECT facts FROM sla_tickets WHERE ticket_id = $1{lock}");
    let row: Option<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(ticket_id).fetch_optional(&mut *conn).await?;
    row.map(|text| {
        serde_json::from_str(&text)
            .map_err(|e| Error::CorruptFacts { key: ticket_id.to_string(), message: e.to_string() })
    })
    .transpose()
}

/// The facts, read without locking (for the API).
pub async fn read_facts(pool: &sqlx::AnyPool, ticket_id: &str) -> Result<Option<TicketFacts>, Error> {
    let row: Option<String> = sqlx::query_scalar("SELECT facts FROM sla_tickets WHERE ticket_id = $1")
        .bind(ticket_id)
        .fetch_optional(pool)
        .await?;
    row.map(|text| {
        serde_json::from_str(&text)
            .map_err(|e| Error::CorruptFacts { key: ticket_id.to_string(), message: e.to_string() })
    })
    .transpose()
}

/// Stores tickets' facts (each with the time it was saved) in multi-row
/// upserts.
pub async fn save_facts(conn: &mut AnyConnection, facts: &[(&TicketFacts, i64)]) -> Result<(), Error> {
    for chunk in facts.chunks(kesu_storage::Database::rows_per_statement(4)) {
        let sql = format!(
            "INSERT INTO sla_tickets (ticket_id, version, facts, updated_at) VALUES {}
             ON CONFLICT (ticket_id) DO UPDATE SET version = excluded.version, facts = excluded.facts,
             updated_at = excluded.updated_at",
            params::values(params::anonymous(conn), chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (facts, now_ms) in chunk {
            let text = serde_json::to_string(facts)
                .map_err(|e| Error::CorruptFacts { key: facts.ticket_id.clone(), message: e.to_string() })?;
            query = query.bind(facts.ticket_id.as_str()).bind(facts.snapshot.version as i64).bind(text).bind(*now_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A ticket's planned clocks, to store.
pub struct TicketClocks<'a> {
    pub ticket_id: &'a str,
    pub clocks: &'a [SlaClock],
    pub priority: &'a str,
    pub department: &'a str,
}

/// Tickets per statement cancelling clocks no longer planned (each with up
/// to six clock ids in the statement).
const TICKETS_PER_CANCEL: usize = 32;

/// Writes tickets' planned clocks in multi-row statements (a paused clock
/// has no deadline: it sorts last and is never at risk), and cancels the
/// rows of clocks their plans no longer have (result notice and follow-up
/// after a reopen), so the lists never show them.
pub async fn upsert_clocks(conn: &mut AnyConnection, tickets: &[TicketClocks<'_>]) -> Result<(), sqlx::Error> {
    for chunk in tickets.chunks(TICKETS_PER_CANCEL) {
        let anonymous = params::anonymous(conn);
        let planned: Vec<String> =
            chunk.iter().flat_map(|t| t.clocks.iter().map(|c| clock_id(t.ticket_id, c))).collect();
        let mut sql = format!(
            "UPDATE sla_clocks SET state = 'cancelled' WHERE ticket_id IN ({}) AND state <> 'cancelled'",
            params::list(anonymous, 1, chunk.len())
        );
        if !planned.is_empty() {
            sql.push_str(&format!(
                " AND clock_id NOT IN ({})",
                params::list(anonymous, 1 + chunk.len(), planned.len())
            ));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            query = query.bind(t.ticket_id);
        }
        for id in &planned {
            query = query.bind(id.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    let rows: Vec<(&TicketClocks<'_>, &SlaClock)> =
        tickets.iter().flat_map(|t| t.clocks.iter().map(move |c| (t, c))).collect();
    for chunk in rows.chunks(kesu_storage::Database::rows_per_statement(10)) {
        let sql = format!(
            "INSERT INTO sla_clocks (clock_id, ticket_id, kind, state, priority, department, started_at, warn_at, deadline, record)
             VALUES {}
             ON CONFLICT (clock_id) DO UPDATE SET state = excluded.state, priority = excluded.priority,
             department = excluded.department, started_at = excluded.started_at, warn_at = excluded.warn_at,
             deadline = excluded.deadline, record = excluded.record",
            params::values(params::anonymous(conn), chunk.len(), 10)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (t, clock) in chunk {
            let paused = clock.state == SlaClockState::Paused as i32;
            let deadline = if paused { None } else { millis(&clock.deadline) }.unwrap_or(i64::MAX);
            let warn_at = if paused { None } else { millis(&clock.warn_at) }.unwrap_or(deadline);
            query = query
                .bind(clock_id(t.ticket_id, clock))
                .bind(t.ticket_id)
                .bind(kind_name(clock.kind))
                .bind(state_name(clock.state))
                .bind(t.priority)
                .bind(t.department)
                .bind(millis(&clock.started_at).unwrap_or_default())
                .bind(warn_at)
                .bind(deadline)
                .bind(clock.encode_to_vec());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A clock's row id: one row per ticket and kind.
fn clock_id(ticket_id: &str, clock: &SlaClock) -> String {
    format!("{ticket_id}:{}", kind_name(clock.kind))
}

pub async fn ticket_clocks(pool: &sqlx::AnyPool, ticket_id: &str) -> Result<Vec<SlaClock>, Error> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT clock_id, record FROM sla_clocks WHERE ticket_id = $1 ORDER BY started_at, kind")
            .bind(ticket_id)
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(|(id, b)| Error::decode("sla_clocks", &id, &b)).collect()
}

/// Which running clocks to list.
pub enum Risk {
    /// Past the warning point, deadline not yet reached.
    AtRisk,
    /// Deadline reached (whether or not the breach has fired yet).
    Breached,
}

/// Clocks by deadline, most urgent first, after the cursor `(deadline, clock_id)`.
pub async fn list(
    pool: &sqlx::AnyPool,
    risk: Risk,
    now_ms: i64,
    department: &str,
    priority: &str,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, SlaClock)>, Error> {
    let condition = match risk {
        Risk::AtRisk => "state = 'running' AND warn_at <= $1 AND deadline > $1",
        Risk::Breached => "((state IN ('running', 'breached') AND deadline <= $1) OR state = 'breached')",
    };
    let sql = format!(
        "SELECT deadline, clock_id, record FROM sla_clocks WHERE {condition}
         AND ($2 = '' OR department = $2) AND ($3 = '' OR priority = $3)
         AND (deadline > $4 OR (deadline = $4 AND clock_id > $5))
         ORDER BY deadline, clock_id LIMIT $6"
    );
    let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .bind(department)
        .bind(priority)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(at, id, b)| {
            let clock = Error::decode("sla_clocks", &id, &b)?;
            Ok((at, id, clock))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_storage::Database;
    use kesu_testkit::TempDatabase;

    #[tokio::test]
    async fn a_clock_that_does_not_decode_is_an_error_not_a_gap() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        sqlx::query(
            "INSERT INTO sla_clocks (clock_id, ticket_id, kind, state, priority, department, started_at, warn_at, deadline, record)
             VALUES ('T-1:resolve', 'T-1', 'resolve', 'running', 'p3', 'service', 1, 2, 3, $1)",
        )
        .bind(vec![0x0a_u8, 0x05, 0x01])
        .execute(db.writer())
        .await
        .unwrap();
        let err = ticket_clocks(db.pool(), "T-1").await.unwrap_err();
        assert!(matches!(&err, Error::CorruptRow { table: "sla_clocks", key, .. } if key == "T-1:resolve"), "{err}");
        let err = list(db.pool(), Risk::Breached, 10, "", "", None, 10).await.unwrap_err();
        assert!(matches!(err, Error::CorruptRow { .. }), "{err}");
    }

    #[tokio::test]
    async fn facts_that_do_not_decode_are_an_error_naming_the_ticket() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        sqlx::query("INSERT INTO sla_tickets (ticket_id, version, facts, updated_at) VALUES ('T-2', 1, '{', 0)")
            .execute(db.writer())
            .await
            .unwrap();
        let err = read_facts(db.pool(), "T-2").await.unwrap_err();
        assert!(matches!(&err, Error::CorruptFacts { key, .. } if key == "T-2"), "{err}");
    }

    #[tokio::test]
    async fn clocks_the_plan_no_longer_has_leave_the_lists() {
        use kesu_proto::v1::SlaClockKind;
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        let clock = |kind: SlaClockKind, deadline: i64| SlaClock {
            ticket_id: "T-3".into(),
            kind: kind as i32,
            state: SlaClockState::Running as i32,
            deadline: Some(kesu_domain::time::millis_to_timestamp(deadline)),
            warn_at: Some(kesu_domain::time::millis_to_timestamp(deadline - 10)),
            ..Default::default()
        };
        let mut conn = db.writer().acquire().await.unwrap();
        let both = [clock(SlaClockKind::Resolution, 100), clock(SlaClockKind::FollowUp, 50)];
        let t = |ticket_id, clocks| TicketClocks { ticket_id, clocks, priority: "high", department: "d" };
        upsert_clocks(conn.as_mut(), &[t("T-3", &both[..]), t("T-4", &both[..])]).await.unwrap();
        assert_eq!(list(db.pool(), Risk::Breached, 200, "", "", None, 10).await.unwrap().len(), 4);
        // Reopened: the follow-up clock is gone from T-3's plan, and T-4
        // (in the same statement) keeps both.
        upsert_clocks(conn.as_mut(), &[t("T-3", &both[..1]), t("T-4", &both[..])]).await.unwrap();
        let listed = list(db.pool(), Risk::Breached, 200, "", "", None, 10).await.unwrap();
        let mut ids: Vec<&str> = listed.iter().map(|(_, id, _)| id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["T-3:resolution", "T-4:follow_up", "T-4:resolution"]);
    }
}
