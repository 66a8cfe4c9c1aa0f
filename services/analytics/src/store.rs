//! analytics' tables.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

/// Counter increments by (local day, metric, dimension), summed over a batch.
pub type Counts = BTreeMap<(String, &'static str, String), i64>;

/// Whether statements on this connection take anonymous `?` parameters
/// (SQLite) rather than `$n` (PostgreSQL). SQLite, through sqlx, looks each
/// numbered parameter up by name in a list as long as the statement's
/// parameters — time quadratic in their count (256 tickets in one upsert,
/// 7,168 parameters, spent most of ingest's CPU there); anonymous ones are
/// bound in order of appearance, at no such cost. Binds must then come in
/// the order their marks appear in the text.
pub(crate) fn anonymous(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// The mark of parameter `n` (1-based).
pub(crate) fn mark(anonymous: bool, n: usize) -> String {
    if anonymous { "?".to_string() } else { format!("${n}") }
}

/// `count` marks from parameter `first`, comma-separated.
pub(crate) fn list(anonymous: bool, first: usize, count: usize) -> String {
    (first..first + count).map(|n| mark(anonymous, n)).collect::<Vec<_>>().join(", ")
}

/// `rows` parenthesised tuples of `columns` marks each, from parameter 1.
pub(crate) fn values(anonymous: bool, rows: usize, columns: usize) -> String {
    (0..rows).map(|r| format!("({})", list(anonymous, 1 + r * columns, columns))).collect::<Vec<_>>().join(", ")
}

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
