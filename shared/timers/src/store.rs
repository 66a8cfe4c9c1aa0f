//! The SQL of `kesu_timers`, the same on SQLite and PostgreSQL except for
//! the row locks replicas claim due timers with.

use std::collections::BTreeMap;

use kesu_storage::{Backend, Database};
use sqlx::AnyConnection;

use crate::{ScheduledTimer, Timer};

/// Rows per multi-row statement (five parameters each).
const CHUNK: usize = kesu_storage::Database::rows_per_statement(5);

/// A claimed row: id, kind, key, due (ms), payload.
pub(crate) type Row = (i64, String, String, i64, Vec<u8>);

/// Upserts timers, one statement per chunk; of several timers with the
/// same kind and key the last wins (one statement may not touch a row
/// twice on PostgreSQL).
pub(crate) async fn upsert(conn: &mut AnyConnection, timers: &[Timer], now_ms: i64) -> Result<(), sqlx::Error> {
    let mut last: BTreeMap<(&str, &str), &Timer> = BTreeMap::new();
    for timer in timers {
        last.insert((timer.kind.as_str(), timer.key.as_str()), timer);
    }
    let unique: Vec<&Timer> = last.into_values().collect();
    for chunk in unique.chunks(CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = i * 5;
                format!("(${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5)
            })
            .collect();
        let sql = format!(
            "INSERT INTO kesu_timers (kind, timer_key, due, payload, scheduled_at) VALUES {} \
             ON CONFLICT (kind, timer_key) DO UPDATE SET due = excluded.due, payload = excluded.payload, \
             scheduled_at = excluded.scheduled_at",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for timer in chunk {
            query = query
                .bind(timer.kind.as_str())
                .bind(timer.key.as_str())
                .bind(timer.due.timestamp_millis())
                .bind(timer.payload.clone())
                .bind(now_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes pending timers of one kind by key; how many there were.
pub(crate) async fn cancel(conn: &mut AnyConnection, kind: &str, keys: &[&str]) -> Result<u64, sqlx::Error> {
    let mut removed = 0;
    for chunk in keys.chunks(kesu_storage::MAX_PARAMS - 1) {
        let sql = format!(
            "DELETE FROM kesu_timers WHERE kind = $1 AND timer_key IN ({})",
            Database::placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind);
        for key in chunk {
            query = query.bind(*key);
        }
        removed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(removed)
}

/// The pending timer of a kind and key.
pub(crate) async fn find(pool: &sqlx::AnyPool, kind: &str, key: &str) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as("SELECT id, kind, timer_key, due, payload FROM kesu_timers WHERE kind = $1 AND timer_key = $2")
        .bind(kind)
        .bind(key)
        .fetch_optional(pool)
        .await
}

/// The first `limit` due instants up to `until_ms`, in order: the window.
pub(crate) async fn window(pool: &sqlx::AnyPool, until_ms: i64, limit: usize) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT due FROM kesu_timers WHERE due <= $1 ORDER BY due, id LIMIT $2")
        .bind(until_ms)
        .bind(limit as i64)
        .fetch_all(pool)
        .await
}

/// Claims up to `limit` timers due at `now_ms`, earliest first, and deletes
/// them — inside the caller's transaction, so they come back if it rolls
/// back. On PostgreSQL rows another replica has claimed are skipped.
pub(crate) async fn claim_due(
    conn: &mut AnyConnection,
    backend: Backend,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<Row>, sqlx::Error> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT id, kind, timer_key, due, payload FROM kesu_timers WHERE due <= $1 ORDER BY due, id LIMIT $2{lock}"
    );
    let rows: Vec<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now_ms).bind(limit as i64).fetch_all(&mut *conn).await?;
    delete(conn, rows.iter().map(|r| r.0)).await?;
    Ok(rows)
}

/// Claims one timer by id if it is still pending and due (the one-by-one
/// retry after a batch failed).
pub(crate) async fn claim_one(
    conn: &mut AnyConnection,
    backend: Backend,
    id: i64,
    now_ms: i64,
) -> Result<Option<Row>, sqlx::Error> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!("SELECT id, kind, timer_key, due, payload FROM kesu_timers WHERE id = $1 AND due <= $2{lock}");
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(now_ms).fetch_optional(&mut *conn).await?;
    if let Some(row) = &row {
        delete(conn, [row.0]).await?;
    }
    Ok(row)
}

async fn delete(conn: &mut AnyConnection, ids: impl IntoIterator<Item = i64>) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = ids.into_iter().collect();
    for chunk in ids.chunks(kesu_storage::MAX_PARAMS) {
        let sql = format!("DELETE FROM kesu_timers WHERE id IN ({})", Database::placeholders(1, chunk.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Keeps a timer whose handler failed for good, with the reason (the row
/// was claimed, so deleted, in the same transaction).
pub(crate) async fn park(conn: &mut AnyConnection, row: &Row, now_ms: i64, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kesu_timers_parked (id, kind, timer_key, due, payload, parked_at, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(row.0)
    .bind(row.1.as_str())
    .bind(row.2.as_str())
    .bind(row.3)
    .bind(row.4.clone())
    .bind(now_ms)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) fn scheduled(row: Row) -> ScheduledTimer {
    let (id, kind, key, due, payload) = row;
    ScheduledTimer { id, kind, key, due: crate::firing::instant(due), payload }
}
