//! intake's errors, and the one place they become gRPC statuses: clients
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
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: corrupt, or written by an incompatible version.
    #[error("{table} row {key} cannot be decoded: {source}")]
    CorruptRow { table: &'static str, key: String, source: prost::DecodeError },
    /// The broker could not be asked now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A sealed dead letter does not open with this deployment's contact key.
    #[error("dead letter {0} does not open with the contact key")]
    Sealed(u64),
    /// A submission could not be taken now (the client retries with the same external id).
    #[error("cannot take the submission now: {0}")]
    Submission(kesu_bus::HandleError),
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
            Error::Database(e) => kesu_runtime::status::database(&e),
            Error::Submission(kesu_bus::HandleError::Permanent(_)) => kesu_runtime::status::internal(&e),
            Error::Submission(kesu_bus::HandleError::Transient(_)) => kesu_runtime::status::unavailable(&e),
            Error::CorruptRow { .. } | Error::Sealed(_) => kesu_runtime::status::internal(&e),
            Error::Unavailable(_) => kesu_runtime::status::unavailable(&e),
        }
    }
}
