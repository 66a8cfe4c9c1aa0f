//! Fuzzy duplicates: the same customer with near-identical text inside the
//! duplicate window is merged into the earlier feedback, never a second one.
//!
//! The rule, for a new submission and each earlier feedback of the same
//! customer (`customer_key`, the keyed pseudonym) received within the window
//! and still open (accepted, needs info or pending review):
//!
//! - both descriptions are compared after masking, lower-casing and keeping
//!   only letters and digits; they are near-identical when equal, or when
//!   the shorter is at least 80 % of the longer and the Sørensen–Dice
//!   coefficient of their character bigrams is at least 0.9 (a typo, a
//!   changed particle, added punctuation);
//! - and their order numbers do not differ (equal, or one of them empty).
//!
//! The duplicate is answered `DUPLICATE` with the earlier number,
//! announced on `feedback.evt.duplicate` (reason `SAME_CUSTOMER_TEXT`) and
//! kept in `merged_submissions` (with its original bytes), so a resend of it
//! is a duplicate too. Replicas sharing a database serialise on a row per
//! customer (`dedup_customers`) taken in the same transaction before the
//! comparison: of two copies arriving at the same moment, the second waits
//! for the first to commit and then sees it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use kesu_proto::v1::Feedback;
use sqlx::AnyConnection;

use crate::error::Error;

/// Least Sørensen–Dice coefficient of near-identical texts.
pub const MIN_SIMILARITY: f64 = 0.9;

/// An earlier feedback a submission duplicates.
pub struct Original {
    pub feedback_id: String,
    pub feedback_number: String,
}

/// Letters and digits only, lower-cased.
fn normalize(text: &str) -> Vec<char> {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Whether two descriptions say the same thing (see the module's rule).
pub fn near_identical(a: &str, b: &str) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    if a == b {
        return !a.is_empty();
    }
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if short.len() < 2 || short.len() * 5 < long.len() * 4 {
        return false;
    }
    dice(&a, &b) >= MIN_SIMILARITY
}

fn dice(a: &[char], b: &[char]) -> f64 {
    let bigrams = |s: &[char]| {
        let mut m: HashMap<(char, char), usize> = HashMap::new();
        for w in s.windows(2) {
            *m.entry((w[0], w[1])).or_default() += 1;
        }
        m
    };
    let (x, y) = (bigrams(a), bigrams(b));
    let common: usize = x.iter().map(|(k, n)| (*n).min(y.get(k).copied().unwrap_or(0))).sum();
    let total = a.len().saturating_sub(1) + b.len().saturating_sub(1);
    if total == 0 { 0.0 } else { 2.0 * common as f64 / total as f64 }
}

fn same_order(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a.is_empty() || b.is_empty() || a.eq_ignore_ascii_case(b)
}

/// The earlier open feedback `record` duplicates, if any. Takes the
/// customer's row lock first (see the module doc).
pub async fn find_original(
    conn: &mut AnyConnection,
    record: &Feedback,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<Option<Original>, sqlx::Error> {
    let Some(customer_key) = record.customer.as_ref().map(|c| c.customer_key.as_str()).filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let now_ms = now.timestamp_millis();
    sqlx::query(
        "INSERT INTO dedup_customers (customer_key, touched_at) VALUES ($1, $2)
         ON CONFLICT (customer_key) DO UPDATE SET touched_at = $2",
    )
    .bind(customer_key)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT feedback_id, feedback_number, record FROM feedback
         WHERE customer_key = $1 AND received_at >= $2 AND status IN ('accepted', 'needs_info', 'pending_review')
         ORDER BY received_at, feedback_id",
    )
    .bind(customer_key)
    .bind(now_ms - window.num_milliseconds())
    .fetch_all(&mut *conn)
    .await?;
    for (feedback_id, feedback_number, bytes) in rows {
        let earlier: Feedback =
            Error::decode("feedback", &feedback_id, &bytes).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        if near_identical(&earlier.description, &record.description)
            && same_order(&earlier.order_number, &record.order_number)
        {
            return Ok(Some(Original { feedback_id, feedback_number }));
        }
    }
    Ok(None)
}

/// Keeps a submission merged into an earlier feedback.
pub async fn insert_merged(
    conn: &mut AnyConnection,
    channel: &str,
    external_id: &str,
    original: &Original,
    received_at_ms: i64,
    bytes: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO merged_submissions (channel, external_id, feedback_id, feedback_number, received_at, original)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(channel)
    .bind(external_id)
    .bind(&original.feedback_id)
    .bind(&original.feedback_number)
    .bind(received_at_ms)
    .bind(bytes.to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_identical_texts_in_chinese_and_english() {
        let same = [
            (
                "购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。",
                "购买的扫地机器人开机无反应,使用时间一周,已充电一整夜",
            ),
            (
                "购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。",
                "购买的扫地机器人开机没反应，使用时间一周，已充电一整夜。",
            ),
            (
                "My order has not arrived two weeks after dispatch.",
                "my order has not arrived two weeks after dispatch!!",
            ),
            ("My order has not arrived two weeks after dispatch.", "My order has not arived two weeks after dispatch."),
        ];
        for (a, b) in same {
            assert!(near_identical(a, b), "{a:?} ~ {b:?}");
        }
        let different = [
            ("购买的扫地机器人开机无反应，使用时间一周。", "扫地机器人的充电座坏了，无法充电。"),
            ("My order has not arrived two weeks after dispatch.", "My order arrived damaged, the box was crushed."),
            ("My order has not arrived.", "My order has not arrived two weeks after dispatch and nobody answers."),
            ("", ""),
        ];
        for (a, b) in different {
            assert!(!near_identical(a, b), "{a:?} !~ {b:?}");
        }
        assert!(same_order("SO-1", "") && same_order("so-1", "SO-1") && !same_order("SO-1", "SO-2"));
    }
}
