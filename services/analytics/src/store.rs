//! analytics' tables.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

/// Counter increments by (local day, metric, dimension), summed over a batch.
pub type Counts = BTreeMap<(String, &'static str, String), i64>;

/// Adds the increments to the daily counters (one upsert per counter).
pub async fn add(conn: &mut AnyConnection, counts: &Counts) -> Result<(), sqlx::Error> {
    for ((day, metric, dim), amount) in counts {
        sqlx::query(
            "INSERT INTO daily_counts (day, metric, dim, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (day, metric, dim) DO UPDATE SET value = daily_counts.value + excluded.value",
        )
        .bind(day.as_str())
        .bind(*metric)
        .bind(dim.as_str())
        .bind(*amount)
        .execute(&mut *conn)
        .await?;
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
