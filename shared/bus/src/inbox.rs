//! The inbox: which messages a consumer has already applied.
//!
//! A handler claims the message id in the same transaction as its effects;
//! if the claim finds the id already there, the message is a redelivery of
//! something committed before, and the handler skips it.

use sqlx::AnyConnection;

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
