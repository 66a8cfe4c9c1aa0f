//! notification's tables.

use kesu_proto::v1::{Delivery, DeliveryStatus, NotificationPurpose, NotifyChannel};
use prost::Message;
use sqlx::AnyConnection;

use crate::error::Error;

pub fn channel_name(channel: i32) -> &'static str {
    match NotifyChannel::try_from(channel).unwrap_or_default() {
        NotifyChannel::Sms => "sms",
        NotifyChannel::Email => "email",
        NotifyChannel::App => "app",
        NotifyChannel::Unspecified => "none",
    }
}

pub fn purpose_name(purpose: i32) -> String {
    NotificationPurpose::try_from(purpose)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("NOTIFICATION_PURPOSE_")
        .to_lowercase()
}

fn status_name(status: i32) -> String {
    DeliveryStatus::try_from(status)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("DELIVERY_STATUS_")
        .to_lowercase()
}

/// Records a delivery; `false` if one with this dedup key exists already.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    delivery: &Delivery,
    dedup_key: &str,
    at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO deliveries (request_id, dedup_key, ticket_id, channel, purpose, status, requested_at, updated_at, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(&delivery.request_id)
    .bind(dedup_key)
    .bind(&delivery.ticket_id)
    .bind(channel_name(delivery.channel))
    .bind(purpose_name(delivery.purpose))
    .bind(status_name(delivery.status))
    .bind(at_ms)
    .bind(delivery.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A ticket's deliveries in the order they were decided, after the cursor.
pub async fn list(
    pool: &sqlx::AnyPool,
    ticket_id: &str,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, Delivery)>, Error> {
    let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT requested_at, request_id, record FROM deliveries
         WHERE ticket_id = $1 AND (requested_at > $2 OR (requested_at = $2 AND request_id > $3))
         ORDER BY requested_at, request_id LIMIT $4",
    )
    .bind(ticket_id)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(at, id, b)| {
            let delivery = Error::decode("deliveries", &id, &b)?;
            Ok((at, id, delivery))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_storage::Database;
    use kesu_testkit::TempDatabase;

    #[tokio::test]
    async fn a_delivery_that_does_not_decode_is_an_error_not_a_gap() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        sqlx::query(
            "INSERT INTO deliveries (request_id, dedup_key, ticket_id, channel, purpose, status, requested_at, updated_at, record)
             VALUES ('R-1', 'T-1:ack:customer', 'T-1', 'sms', 'ack', 'sent', 1, 1, $1)",
        )
        .bind(vec![0x0a_u8, 0x05, 0x01])
        .execute(db.writer())
        .await
        .unwrap();
        let err = list(db.pool(), "T-1", None, 10).await.unwrap_err();
        assert!(matches!(&err, Error::CorruptRow { table: "deliveries", key, .. } if key == "R-1"), "{err}");
    }
}
