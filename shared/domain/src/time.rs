//! Conversions between protobuf timestamps, chrono and the epoch
//! milliseconds the databases store.

use chrono::{DateTime, TimeZone, Utc};
use prost_types::Timestamp;

/// A chrono instant as a protobuf timestamp.
pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

/// A protobuf timestamp as a chrono instant; `None` when out of range or the
/// nanos are not in 0..1e9 (a malformed message).
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    Utc.timestamp_opt(ts.seconds, ts.nanos as u32).single()
}

/// Epoch milliseconds, as stored in the databases.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Epoch milliseconds back to an instant (saturating at the epoch on
/// nonsense values, which only a corrupted row could hold).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Epoch milliseconds as a protobuf timestamp.
pub fn millis_to_timestamp(ms: i64) -> Timestamp {
    to_timestamp(from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_protobuf() {
        let at = Utc.with_ymd_and_hms(2023, 10, 1, 8, 30, 0).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
    }

    #[test]
    fn rejects_bad_nanos() {
        assert_eq!(from_timestamp(&Timestamp { seconds: 0, nanos: -1 }), None);
        assert_eq!(from_timestamp(&Timestamp { seconds: 0, nanos: 1_000_000_000 }), None);
    }
}
