//! The inbox: which messages a consumer has already applied.
//!
//! The consume loop claims the message ids of a batch in the same
//! transaction as the handlers' effects; an id already there is a
//! redelivery of something committed before, and its handler is skipped.

use std::collections::HashSet;

use sqlx::AnyConnection;

/// Records the ids of a batch as applied by `consumer` in one statement per
/// chunk; returns those that were not recorded before.
pub async fn claim_batch(
    conn: &mut AnyConnection,
    consumer: &str,
    message_ids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut claimed = HashSet::with_capacity(message_ids.len());
    let now = crate::now_millis();
    // Placeholders in order of first use ($1 consumer, $2 time, then the
    // ids), which both back ends bind alike; at most `MAX_PARAMS` per statement.
    for chunk in message_ids.chunks(kesu_storage::MAX_PARAMS - 2) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("($1, $2, ${})", i + 3)).collect();
        let sql = format!(
            "INSERT INTO kesu_inbox (consumer, processed_at, message_id) VALUES {} \
             ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id",
            rows.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(consumer).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        claimed.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(claimed)
}

/// Records `message_id` as applied by `consumer`; `false` if it already was.
pub async fn claim(conn: &mut AnyConnection, consumer: &str, message_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO kesu_inbox (consumer, message_id, processed_at) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .bind(crate::now_millis())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets ids older than `older_than_ms` (epoch ms); call periodically with
/// a cut-off well beyond the stream's max age.
pub async fn purge(pool: &sqlx::AnyPool, older_than_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM kesu_inbox WHERE processed_at < $1").bind(older_than_ms).execute(pool).await?;
    Ok(done.rows_affected())
}
