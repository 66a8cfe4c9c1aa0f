//! Intake's tables.

use kesu_proto::v1::{Feedback, FeedbackStatus, RawFeedback, RejectedSubmission};
use prost::Message;
use sqlx::AnyConnection;

use crate::error::Error;

/// An earlier feedback with the same channel and external id.
pub struct Existing {
    pub feedback_id: String,
    pub feedback_number: String,
    pub status: String,
}

pub async fn find_by_external_id(
    conn: &mut AnyConnection,
    channel: &str,
    external_id: &str,
) -> Result<Option<Existing>, sqlx::Error> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT feedback_id, feedback_number, status FROM feedback WHERE channel = $1 AND external_id = $2
         UNION ALL
         SELECT feedback_id, feedback_number, 'merged' FROM merged_submissions WHERE channel = $1 AND external_id = $2",
    )
    .bind(channel)
    .bind(external_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(feedback_id, feedback_number, status)| Existing { feedback_id, feedback_number, status }))
}

/// The next serial of a local date (`YYYYMMDD`); atomic on both back ends,
/// so replicas sharing a database never hand out the same number.
pub async fn next_serial(conn: &mut AnyConnection, day: &str) -> Result<u64, sqlx::Error> {
    let serial: i64 = sqlx::query_scalar(
        "INSERT INTO daily_serials (day, last_serial) VALUES ($1, 1)
         ON CONFLICT (day) DO UPDATE SET last_serial = daily_serials.last_serial + 1
         RETURNING last_serial",
    )
    .bind(day)
    .fetch_one(conn)
    .await?;
    Ok(serial as u64)
}

pub async fn insert_feedback(
    conn: &mut AnyConnection,
    record: &Feedback,
    channel: &str,
    status: &str,
    original: &[u8],
    original_subject: &str,
    received_at_ms: i64,
) -> Result<(), sqlx::Error> {
    let customer_key = record.customer.as_ref().map(|c| c.customer_key.as_str()).unwrap_or_default();
    sqlx::query(
        "INSERT INTO feedback (feedback_id, feedback_number, channel, external_id, status, customer_key,
                               received_at, record, original, original_subject)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&record.feedback_id)
    .bind(&record.feedback_number)
    .bind(channel)
    .bind(&record.external_id)
    .bind(status)
    .bind(customer_key)
    .bind(received_at_ms)
    .bind(record.encode_to_vec())
    .bind(original.to_vec())
    .bind(original_subject)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_rejected(
    conn: &mut AnyConnection,
    rejected: &RejectedSubmission,
    channel: &str,
    external_id: &str,
    received_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rejected_submissions (rejection_id, subject, channel, external_id, received_at, record)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&rejected.rejection_id)
    .bind(&rejected.subject)
    .bind(channel)
    .bind(external_id)
    .bind(received_at_ms)
    .bind(rejected.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_feedback(pool: &sqlx::AnyPool, by: FeedbackKey<'_>) -> Result<Option<Feedback>, Error> {
    let row: Option<(String, Vec<u8>)> = match by {
        FeedbackKey::Id(id) => {
            sqlx::query_as("SELECT feedback_id, record FROM feedback WHERE feedback_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }
        FeedbackKey::Number(n) => {
            sqlx::query_as("SELECT feedback_id, record FROM feedback WHERE feedback_number = $1")
                .bind(n)
                .fetch_optional(pool)
                .await?
        }
    };
    row.map(|(id, bytes)| Error::decode("feedback", &id, &bytes)).transpose()
}

/// The `status` column's value for a status.
pub fn status_name(status: FeedbackStatus) -> &'static str {
    match status {
        FeedbackStatus::Accepted => "accepted",
        FeedbackStatus::NeedsInfo => "needs_info",
        FeedbackStatus::PendingReview => "pending_review",
        FeedbackStatus::Rejected => "rejected",
        FeedbackStatus::Merged => "merged",
        FeedbackStatus::Closed => "closed",
        FeedbackStatus::Unspecified => "unspecified",
    }
}

/// A feedback as stored, with the submission as amended so far.
pub struct Stored {
    pub channel: String,
    pub status: String,
    pub version: i64,
    pub record: Feedback,
    /// The submission with supplements and corrections applied.
    pub raw: RawFeedback,
}

/// Loads a feedback to change it, inside the caller's transaction.
pub async fn load(conn: &mut AnyConnection, by: FeedbackKey<'_>) -> Result<Option<Stored>, Error> {
    const BY_ID: &str = "SELECT feedback_id, channel, status, version, record, COALESCE(amended, original)
                         FROM feedback WHERE feedback_id = $1";
    const BY_NUMBER: &str = "SELECT feedback_id, channel, status, version, record, COALESCE(amended, original)
                             FROM feedback WHERE feedback_number = $1";
    let (sql, value) = match by {
        FeedbackKey::Id(id) => (BY_ID, id),
        FeedbackKey::Number(n) => (BY_NUMBER, n),
    };
    type Row = (String, String, String, i64, Vec<u8>, Vec<u8>);
    let row: Option<Row> = sqlx::query_as(sql).bind(value).fetch_optional(conn).await?;
    let Some((id, channel, status, version, record, raw)) = row else { return Ok(None) };
    Ok(Some(Stored {
        channel,
        status,
        version,
        record: Error::decode("feedback", &id, &record)?,
        raw: Error::decode("feedback", &id, &raw)?,
    }))
}

/// Stores a changed feedback if it is still at `version` (no other replica
/// changed it meanwhile); `false` if it was.
pub async fn update(
    conn: &mut AnyConnection,
    record: &Feedback,
    version: i64,
    amended: Option<&RawFeedback>,
) -> Result<bool, sqlx::Error> {
    let status = status_name(FeedbackStatus::try_from(record.status).unwrap_or_default());
    let done = sqlx::query(
        "UPDATE feedback SET status = $1, record = $2, amended = COALESCE($3, amended), version = version + 1
         WHERE feedback_id = $4 AND version = $5",
    )
    .bind(status)
    .bind(record.encode_to_vec())
    .bind(amended.map(|r| r.encode_to_vec()))
    .bind(&record.feedback_id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps a supplement or correction exactly as received.
pub async fn insert_amendment(
    conn: &mut AnyConnection,
    feedback_id: &str,
    kind: &str,
    actor: &str,
    received_at_ms: i64,
    original: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO feedback_amendments (amendment_id, feedback_id, kind, actor, received_at, original)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(feedback_id)
    .bind(kind)
    .bind(actor)
    .bind(received_at_ms)
    .bind(original.to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum FeedbackKey<'a> {
    Id(&'a str),
    Number(&'a str),
}

/// Feedback waiting for someone (`statuses`: pending review and/or needs
/// info), oldest first, after the cursor `(received_at, id)`.
pub async fn list_queue(
    pool: &sqlx::AnyPool,
    statuses: &[&str],
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, Feedback)>, Error> {
    let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
    let first = statuses.first().copied().unwrap_or_default();
    let second = statuses.get(1).copied().unwrap_or(first);
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT received_at, feedback_id, record FROM feedback
         WHERE status IN ($1, $2) AND (received_at > $3 OR (received_at = $3 AND feedback_id > $4))
         ORDER BY received_at, feedback_id LIMIT $5",
    )
    .bind(first)
    .bind(second)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(at, id, bytes)| {
            let feedback = Error::decode("feedback", &id, &bytes)?;
            Ok((at, id, feedback))
        })
        .collect()
}

/// Rejected submissions, newest first, after the cursor `(received_at, id)`.
pub async fn list_rejected(
    pool: &sqlx::AnyPool,
    channel: Option<&str>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, RejectedSubmission)>, Error> {
    let (before_at, before_id) = before.unwrap_or((i64::MAX, String::new()));
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT received_at, rejection_id, record FROM rejected_submissions
         WHERE ($1 = '' OR channel = $1) AND (received_at < $2 OR (received_at = $2 AND rejection_id < $3))
         ORDER BY received_at DESC, rejection_id DESC LIMIT $4",
    )
    .bind(channel.unwrap_or(""))
    .bind(before_at)
    .bind(if before_id.is_empty() { "\u{10FFFF}".to_string() } else { before_id })
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(at, id, bytes)| {
            let rejected = Error::decode("rejected_submissions", &id, &bytes)?;
            Ok((at, id, rejected))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_storage::Database;
    use kesu_testkit::TempDatabase;

    #[tokio::test]
    async fn a_rejected_submission_that_does_not_decode_is_an_error_not_a_gap() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        sqlx::query(
            "INSERT INTO rejected_submissions (rejection_id, subject, channel, external_id, received_at, record)
             VALUES ('X-1', 'feedback.raw.web', 'web', 'web-1', 1, $1)",
        )
        .bind(vec![0x0a_u8, 0x05, 0x01])
        .execute(db.writer())
        .await
        .unwrap();
        let err = list_rejected(db.pool(), None, None, 10).await.unwrap_err();
        assert!(matches!(&err, Error::CorruptRow { table: "rejected_submissions", key, .. } if key == "X-1"), "{err}");
    }
}
