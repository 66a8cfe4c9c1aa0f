//! The `deliveries` table: every notification decided, with its status.
//! The record (`kesu.v1.Delivery`) holds the masked address only; the clear
//! address is kept in its own column until `address_until` (the configured
//! retention), for resends, and then erased.

use kesu_proto::v1::{Delivery, DeliveryStatus, NotificationPurpose, NotifyChannel};
use kesu_storage::Database;
use prost::Message;
use sqlx::{AnyConnection, Row};

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

pub fn status_name(status: i32) -> String {
    DeliveryStatus::try_from(status)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("DELIVERY_STATUS_")
        .to_lowercase()
}

/// A delivery to record.
pub struct NewDelivery<'a> {
    pub record: &'a Delivery,
    pub dedup_key: &'a str,
    /// The ticket, or the feedback before there is a ticket, or the report.
    pub about: &'a str,
    pub feedback_id: &'a str,
    /// "customer" or the staff id.
    pub recipient: &'a str,
    pub address: Option<&'a str>,
    pub address_until: Option<i64>,
    /// The template data (JSON), for resends.
    pub data: &'a str,
    pub at_ms: i64,
}

const COLUMNS: usize = 15;

/// Records deliveries in one statement per chunk; returns the request ids
/// actually inserted (a dedup key recorded before is skipped).
pub async fn insert_many(conn: &mut AnyConnection, rows: &[NewDelivery<'_>]) -> Result<Vec<String>, sqlx::Error> {
    let mut inserted = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(Database::rows_per_statement(COLUMNS)) {
        let values: Vec<String> =
            (0..chunk.len()).map(|i| format!("({})", Database::placeholders(i * COLUMNS + 1, COLUMNS))).collect();
        let sql = format!(
            "INSERT INTO deliveries (request_id, dedup_key, ticket_id, channel, purpose, status, requested_at, updated_at,
                 record, about, feedback_id, recipient, address, address_until, data)
             VALUES {} ON CONFLICT (dedup_key) DO NOTHING RETURNING request_id",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            let d = row.record;
            query = query
                .bind(d.request_id.clone())
                .bind(row.dedup_key.to_string())
                .bind(d.ticket_id.clone())
                .bind(channel_name(d.channel))
                .bind(purpose_name(d.purpose))
                .bind(status_name(d.status))
                .bind(row.at_ms)
                .bind(row.at_ms)
                .bind(d.encode_to_vec())
                .bind(row.about.to_string())
                .bind(row.feedback_id.to_string())
                .bind(row.recipient.to_string())
                .bind(row.address.map(str::to_string))
                .bind(row.address_until)
                .bind(row.data.to_string());
        }
        for r in query.fetch_all(&mut *conn).await? {
            inserted.push(r.try_get::<String, _>(0)?);
        }
    }
    Ok(inserted)
}

/// A stored delivery with what the record does not hold.
#[derive(Debug, Clone)]
pub struct Stored {
    pub delivery: Delivery,
    pub about: String,
    pub feedback_id: String,
    pub recipient: String,
    pub address: Option<String>,
    pub data: String,
}

/// The deliveries with these request ids (for updates in a transaction).
pub async fn get_many(conn: &mut AnyConnection, request_ids: &[String]) -> Result<Vec<Stored>, Error> {
    let mut out = Vec::with_capacity(request_ids.len());
    for chunk in request_ids.chunks(kesu_storage::MAX_PARAMS) {
        let sql = format!(
            "SELECT request_id, record, about, feedback_id, recipient, address, data FROM deliveries WHERE request_id IN ({})",
            Database::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.push(stored(&row)?);
        }
    }
    Ok(out)
}

/// One delivery by request id.
pub async fn get(pool: &sqlx::AnyPool, request_id: &str) -> Result<Option<Stored>, Error> {
    let row = sqlx::query(
        "SELECT request_id, record, about, feedback_id, recipient, address, data FROM deliveries WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(stored).transpose()
}

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, Error> {
    let id: String = row.try_get(0)?;
    let bytes: Vec<u8> = row.try_get(1)?;
    Ok(Stored {
        delivery: Error::decode("deliveries", &id, &bytes)?,
        about: row.try_get(2)?,
        feedback_id: row.try_get(3)?,
        recipient: row.try_get(4)?,
        address: row.try_get(5)?,
        data: row.try_get(6)?,
    })
}

/// Writes a changed record and its status.
pub async fn update(conn: &mut AnyConnection, delivery: &Delivery, at_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE deliveries SET status = $2, updated_at = $3, record = $4 WHERE request_id = $1")
        .bind(&delivery.request_id)
        .bind(status_name(delivery.status))
        .bind(at_ms)
        .bind(delivery.encode_to_vec())
        .execute(conn)
        .await?;
    Ok(())
}

/// The deliveries about any of `abouts` (a ticket and its feedback) in the
/// order they were decided, after the cursor.
pub async fn list(
    pool: &sqlx::AnyPool,
    abouts: &[&str],
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, Delivery)>, Error> {
    let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
    let sql = format!(
        "SELECT requested_at, request_id, record FROM deliveries
         WHERE about IN ({}) AND (requested_at > $1 OR (requested_at = $1 AND request_id > $2))
         ORDER BY requested_at, request_id LIMIT $3",
        Database::placeholders(4, abouts.len())
    );
    let mut query =
        sqlx::query_as::<_, (i64, String, Vec<u8>)>(sqlx::AssertSqlSafe(sql)).bind(after_at).bind(after_id).bind(limit);
    for about in abouts {
        query = query.bind(about.to_string());
    }
    query
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(at, id, b)| {
            let delivery = Error::decode("deliveries", &id, &b)?;
            Ok((at, id, delivery))
        })
        .collect()
}

/// Erases clear addresses whose retention has passed; how many.
pub async fn erase_addresses(db: &Database, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE deliveries SET address = NULL, address_until = NULL WHERE address_until <= $1")
        .bind(now_ms)
        .execute(db.writer())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_testkit::TempDatabase;

    #[tokio::test]
    async fn a_delivery_that_does_not_decode_is_an_error_not_a_gap() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        sqlx::query(
            "INSERT INTO deliveries (request_id, dedup_key, ticket_id, channel, purpose, status, requested_at, updated_at, record, about)
             VALUES ('R-1', 'T-1:ack:customer', 'T-1', 'sms', 'ack', 'sent', 1, 1, $1, 'T-1')",
        )
        .bind(vec![0x0a_u8, 0x05, 0x01])
        .execute(db.writer())
        .await
        .unwrap();
        let err = list(db.pool(), &["T-1"], None, 10).await.unwrap_err();
        assert!(matches!(&err, Error::CorruptRow { table: "deliveries", key, .. } if key == "R-1"), "{err}");
    }

    #[tokio::test]
    async fn a_dedup_key_is_recorded_once_and_addresses_expire() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        let record = |id: &str| Delivery { request_id: id.into(), ticket_id: "T-1".into(), ..Default::default() };
        let (a, b) = (record("R-1"), record("R-2"));
        let row = |d, address_until| NewDelivery {
            record: d,
            dedup_key: "same",
            about: "T-1",
            feedback_id: "F-1",
            recipient: "customer",
            address: Some("13812345678"),
            address_until,
            data: "{}",
            at_ms: 5,
        };
        let mut conn = db.writer().acquire().await.unwrap();
        let inserted = insert_many(&mut conn, &[row(&a, Some(10)), row(&b, Some(10))]).await.unwrap();
        assert_eq!(inserted, ["R-1"]);
        drop(conn);
        assert_eq!(erase_addresses(&db, 9).await.unwrap(), 0);
        assert_eq!(erase_addresses(&db, 10).await.unwrap(), 1);
        assert_eq!(get(db.pool(), "R-1").await.unwrap().unwrap().address, None);
    }
}
