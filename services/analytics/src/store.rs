//! analytics' tables.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

/// Counter increments by (local day, metric, dimension), summed over a batch.
pub type Counts = BTreeMap<(String, &'static str, String), i64>;

pub(crate) use kesu_storage::params::{anonymous, list, mark, values};

/// Adds the increments to the daily counters (one multi-row upsert per
/// 100 counters).
pub async fn add(conn: &mut AnyConnection, counts: &Counts) -> Result<(), sqlx::Error> {
    let counts: Vec<_> = counts.iter().collect();
    for chunk in counts.chunks(100) {
        let sql = format!(
            "INSERT INTO daily_counts (day, metric, dim, value) VALUES {}
             ON CONFLICT (day, metric, dim) DO UPDATE SET value = daily_counts.value + excluded.value",
            values(anonymous(conn), chunk.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((day, metric, dim), amount) in chunk {
            q = q.bind(day.as_str()).bind(*metric).bind(dim.as_str()).bind(**amount);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Totals per (metric, dim) over local days `from..=to` (YYYY-MM-DD).
pub async fn totals(pool: &sqlx::AnyPool, from: &str, to: &str) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT metric, dim, CAST(SUM(value) AS BIGINT) FROM daily_counts WHERE day >= $1 AND day <= $2
         GROUP BY metric, dim ORDER BY metric, dim",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}
