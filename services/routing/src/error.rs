//! routing's errors, and the one place they become gRPC statuses: clients
//! get NOT_FOUND / INVALID_ARGUMENT with the field named, or a generic
//! message with an error id for anything internal (the detail is logged
//! under that id, see `kesu_runtime::status`).

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What was asked for does not exist (the message says what).
    #[error("{0}")]
    NotFound(&'static str),
    /// A request field is wrong; the message names the field.
    #[error("{field}: {message}")]
    InvalidArgument { field: &'static str, message: String },
    /// The caller's role may call the RPC but not on this ticket (a handler
    /// acts on their own tickets, a department manager on their department's).
    #[error("{0}")]
    NotYours(&'static str),
    /// The action is not allowed in the ticket's current status (the
    /// message names it), or a rule forbids it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The ticket changed since the caller read it (optimistic concurrency).
    #[error("the ticket is at version {current}, not {expected}: read it again and retry")]
    Conflict { current: u64, expected: u64 },
    /// Someone else changed the ticket while this action ran.
    #[error("the ticket changed meanwhile: read it again and retry")]
    ChangedMeanwhile,
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: corrupt, or written by an incompatible version.
    #[error("{table} row {key} cannot be decoded: {source}")]
    CorruptRow { table: &'static str, key: String, source: prost::DecodeError },
}

impl Error {
    /// Decodes the protobuf record stored in a row of `table` keyed `key`.
    pub fn decode<M: prost::Message + Default>(table: &'static str, key: &str, bytes: &[u8]) -> Result<M, Error> {
        M::decode(bytes).map_err(|source| Error::CorruptRow { table, key: key.to_string(), source })
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::NotFound(what) => Status::not_found(what),
            Error::InvalidArgument { field, message } => Status::invalid_argument(format!("{field}: {message}")),
            Error::NotYours(message) => Status::permission_denied(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            e @ (Error::Conflict { .. } | Error::ChangedMeanwhile) => Status::aborted(e.to_string()),
            Error::Database(e) => kesu_runtime::status::database(&e),
            Error::CorruptRow { .. } => kesu_runtime::status::internal(&e),
        }
    }
}

impl From<Error> for kesu_bus::HandleError {
    fn from(e: Error) -> Self {
        match e {
            Error::Database(_) | Error::ChangedMeanwhile | Error::Conflict { .. } => {
                kesu_bus::HandleError::Transient(e.to_string())
            }
            e => kesu_bus::HandleError::Permanent(e.to_string()),
        }
    }
}
