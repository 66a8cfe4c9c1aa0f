//! sla-timer's tables.

use kesu_proto::v1::SlaClock;
use prost::Message;
use sqlx::AnyConnection;

use crate::clocks::{kind_name, state_name};
use crate::error::Error;

fn millis(ts: &Option<prost_types::Timestamp>) -> i64 {
    ts.as_ref().and_then(kesu_domain::time::from_timestamp).map(kesu_domain::time::to_millis).unwrap_or_default()
}

/// Inserts a clock; `false` if the ticket already has a clock of that kind.
pub async fn insert_clock(
    conn: &mut AnyConnection,
    clock: &SlaClock,
    priority: &str,
    department: &str,
) -> Result<bool, sqlx::Error> {
    let kind = kind_name(clock.kind);
    let done = sqlx::query(
        "INSERT INTO sla_clocks (clock_id, ticket_id, kind, state, priority, department, started_at, warn_at, deadline, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (clock_id) DO NOTHING",
    )
    .bind(format!("{}:{kind}", clock.ticket_id))
    .bind(&clock.ticket_id)
    .bind(&kind)
    .bind(state_name(clock.state))
    .bind(priority)
    .bind(department)
    .bind(millis(&clock.started_at))
    .bind(millis(&clock.warn_at))
    .bind(millis(&clock.deadline))
    .bind(clock.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
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
        Risk::Breached => "((state = 'running' AND deadline <= $1) OR state = 'breached')",
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
}
