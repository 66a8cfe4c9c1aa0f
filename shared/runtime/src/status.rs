//! What a client is told when a request fails inside a service: a generic
//! message and an error id, never database or internal text. The detail
//! goes to the service log under the same id, so an operator can find it
//! from what the client quotes. Each service's `error.rs` maps its error
//! enum to a gRPC status through these helpers.

use std::fmt::Display;

use kesu_storage::sqlx;
use tonic::Status;
use tonic::metadata::MetadataValue;

/// The gRPC metadata key that carries the error id (also in the message).
pub const ERROR_ID_HEADER: &str = "kesu-error-id";

/// A fresh error id: a UUIDv7, so ids sort by time in the log.
pub fn error_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Logs `error` (which must not hold personal data) with a new error id
/// and returns the id to hand to the client.
pub fn report(what: &str, error: &dyn Display) -> String {
    let id = error_id();
    tracing::error!(error_id = %id, error = %error, "{what}");
    id
}

/// INTERNAL with a generic message naming the error id; the detail is logged.
pub fn internal(error: &dyn Display) -> Status {
    let id = report("request failed", error);
    with_id(Status::internal(format!("internal error (id {id}); see the service log")), &id)
}

/// UNAVAILABLE (the client may retry) with a generic message naming the
/// error id; the detail is logged.
pub fn unavailable(error: &dyn Display) -> Status {
    let id = report("request failed; the client may retry", error);
    with_id(Status::unavailable(format!("temporarily unavailable, retry (id {id}); see the service log")), &id)
}

/// A database error as a status: UNAVAILABLE when a retry may succeed
/// (the pool or connection failed, the database is busy, locked or
/// shutting down), INTERNAL otherwise (a missing table, a broken row).
pub fn database(error: &sqlx::Error) -> Status {
    if is_transient(error) {
        unavailable(&format_args!("database: {error}"))
    } else {
        internal(&format_args!("database: {error}"))
    }
}

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite: SQLITE_BUSY / SQLITE_LOCKED (and their extended codes).
            let sqlite_busy = code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            // PostgreSQL SQLSTATE: connection exception, insufficient
            // resources, operator intervention, serialization failure, deadlock.
            let postgres_transient =
                ["08", "53", "57"].iter().any(|class| code.starts_with(class)) || code == "40001" || code == "40P01";
            sqlite_busy || postgres_transient
        }
        _ => false,
    }
}

fn with_id(mut status: Status, id: &str) -> Status {
    if let Ok(value) = MetadataValue::try_from(id) {
        status.metadata_mut().insert(ERROR_ID_HEADER, value);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_carry_an_id_and_no_detail() {
        let status = internal(&"no such table: tickets");
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("table"), "{}", status.message());
        let id = status.metadata().get(ERROR_ID_HEADER).expect("id header").to_str().unwrap().to_string();
        assert!(status.message().contains(&id), "{}", status.message());

        let status = unavailable(&"pool timed out while waiting for an open connection");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("pool"), "{}", status.message());
        assert!(status.metadata().get(ERROR_ID_HEADER).is_some());

        let status = database(&sqlx::Error::PoolTimedOut);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let status = database(&sqlx::Error::RowNotFound);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("row"), "{}", status.message());
    }
}
