//! The built-in senders' record of each request (`sender_sends`): what
//! makes a send happen once per request id across redeliveries and
//! replicas. A request is claimed before an attempt (state `sending`, with
//! a lease as long as the consumer's ack wait), finished as `sent` or
//! `failed`, or released after a failed attempt for the retry. A request
//! found `sent` or `failed` is a duplicate (the same `Nats-Msg-Id`
//! published again after the duplicate window) and is not sent again; one
//! found `sending` under a live lease is being sent by another replica.

use sqlx::{AnyConnection, AnyPool, Row};

/// What claiming a request gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send; the attempt's number (1 for the first).
    Mine { attempt: u32 },
    /// Another replica is sending it until then (epoch ms).
    Busy { until_ms: i64 },
    /// Sent or failed before: a duplicate.
    Done { state: String },
}

pub async fn claim(
    pool: &AnyPool,
    request_id: &str,
    channel: &str,
    sender: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Claim, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO sender_sends (request_id, channel, sender, state, attempts, lease_until, updated_at)
         VALUES ($1, $2, $3, 'sending', 0, $4, $5) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(channel)
    .bind(sender)
    .bind(now_ms + lease_ms)
    .bind(now_ms)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Mine { attempt: 1 });
    }
    let taken = sqlx::query(
        "UPDATE sender_sends SET lease_until = $2, updated_at = $3
         WHERE request_id = $1 AND state = 'sending' AND lease_until <= $3",
    )
    .bind(request_id)
    .bind(now_ms + lease_ms)
    .bind(now_ms)
    .execute(pool)
    .await?;
    let row = sqlx::query("SELECT state, attempts, lease_until FROM sender_sends WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(pool)
        .await?;
    let state: String = row.try_get(0)?;
    let attempts: i64 = row.try_get(1)?;
    let lease_until: i64 = row.try_get(2)?;
    Ok(if taken.rows_affected() == 1 {
        Claim::Mine { attempt: attempts as u32 + 1 }
    } else if state == "sending" {
        Claim::Busy { until_ms: lease_until }
    } else {
        Claim::Done { state }
    })
}

/// After a failed attempt that will be retried: counted, lease dropped.
pub async fn release(pool: &AnyPool, request_id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sender_sends SET attempts = attempts + 1, lease_until = 0, updated_at = $2 WHERE request_id = $1",
    )
    .bind(request_id)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// The attempt's end: `sent` (with the provider's id) or `failed`.
pub async fn finish(
    conn: &mut AnyConnection,
    request_id: &str,
    state: &str,
    provider_id: Option<&str>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sender_sends SET state = $2, attempts = attempts + 1, provider_id = COALESCE($3, provider_id),
             lease_until = 0, updated_at = $4
         WHERE request_id = $1",
    )
    .bind(request_id)
    .bind(state)
    .bind(provider_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request a provider's message id (or our own request id, used as
/// idempotency key) belongs to, with its channel.
pub async fn find(pool: &AnyPool, id: &str) -> Result<Option<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, channel, attempts FROM sender_sends WHERE provider_id = $1 OR request_id = $1 LIMIT 1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Requests by channel and state (for the status RPC).
pub async fn counts(pool: &AnyPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT channel, state, COUNT(*) FROM sender_sends GROUP BY channel, state").fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_storage::Database;
    use kesu_testkit::TempDatabase;

    #[tokio::test]
    async fn a_request_is_sent_by_one_claimant_once() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        let pool = db.writer();
        assert_eq!(claim(pool, "R", "sms", "t", 1_000, 500).await.unwrap(), Claim::Mine { attempt: 1 });
        assert_eq!(claim(pool, "R", "sms", "t", 1_200, 500).await.unwrap(), Claim::Busy { until_ms: 1_500 });
        // The first claimant crashed mid-send: its lease runs out.
        assert_eq!(claim(pool, "R", "sms", "t", 1_600, 500).await.unwrap(), Claim::Mine { attempt: 1 });
        release(pool, "R", 1_700).await.unwrap();
        assert_eq!(claim(pool, "R", "sms", "t", 1_800, 500).await.unwrap(), Claim::Mine { attempt: 2 });
        let mut conn = pool.acquire().await.unwrap();
        finish(&mut conn, "R", "sent", Some("<R@x>"), 1_900).await.unwrap();
        drop(conn);
        assert_eq!(claim(pool, "R", "sms", "t", 9_000, 500).await.unwrap(), Claim::Done { state: "sent".into() });
        assert_eq!(find(pool, "<R@x>").await.unwrap().unwrap().0, "R");
        assert_eq!(find(pool, "R").await.unwrap().unwrap().2, 2);
    }
}
