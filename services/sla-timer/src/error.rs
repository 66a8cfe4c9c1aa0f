//! sla-timer's errors, and the one place they become gRPC statuses: clients
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
    /// A ticket's stored facts do not decode (or encode).
    #[error("sla_tickets row {key} cannot be decoded: {message}")]
    CorruptFacts { key: String, message: String },
    /// The policy given to try (PreviewClocks) is not valid.
    #[error("policy_toml: {0}")]
    BadPolicy(String),
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
            Error::CorruptRow { .. } | Error::CorruptFacts { .. } => kesu_runtime::status::internal(&e),
            Error::BadPolicy(message) => Status::invalid_argument(format!("policy_toml: {message}")),
        }
    }
}
