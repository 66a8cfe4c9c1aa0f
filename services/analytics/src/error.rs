//! analytics' errors, and the one place they become gRPC statuses: clients
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
    /// The caller's role may not see this (e.g. another department).
    #[error("{0}")]
    PermissionDenied(String),
    /// The bus is unreachable or refused (the message says which stream).
    #[error("{0}")]
    Unavailable(String),
    /// A report template failed to render (a bug: templates are checked at build).
    #[error("report rendering: {0}")]
    Render(String),
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::NotFound(what) => Status::not_found(what),
            Error::InvalidArgument { field, message } => Status::invalid_argument(format!("{field}: {message}")),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::Render(e) => kesu_runtime::status::internal(&e),
            Error::Unavailable(e) => kesu_runtime::status::unavailable(&e),
            Error::Database(e) => kesu_runtime::status::database(&e),
        }
    }
}

impl Error {
    /// The HTTP status and JSON body of the error (internal detail logged
    /// under an error id, never sent).
    pub fn http(&self) -> (axum::http::StatusCode, serde_json::Value) {
        use axum::http::StatusCode;
        match self {
            Error::NotFound(what) => (StatusCode::NOT_FOUND, serde_json::json!({ "error": what })),
            Error::InvalidArgument { field, message } => {
                (StatusCode::BAD_REQUEST, serde_json::json!({ "error": format!("{field}: {message}"), "field": field }))
            }
            Error::PermissionDenied(message) => (StatusCode::FORBIDDEN, serde_json::json!({ "error": message })),
            Error::Unavailable(e) => {
                let id = kesu_runtime::status::report("request failed; the client may retry", e);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "error": format!("temporarily unavailable, retry (id {id}); see the service log") }),
                )
            }
            Error::Render(e) => {
                let id = kesu_runtime::status::report("report rendering failed", e);
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": format!("internal error (id {id}); see the service log") }),
                )
            }
            Error::Database(e) => {
                let id = kesu_runtime::status::report("request failed", e);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "error": format!("temporarily unavailable, retry (id {id}); see the service log") }),
                )
            }
        }
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        let (status, body) = self.http();
        (status, axum::Json(body)).into_response()
    }
}
