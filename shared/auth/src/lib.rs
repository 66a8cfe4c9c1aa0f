//! Staff tokens and roles for every gRPC API.
//!
//! A caller sends `authorization: Bearer <JWT>` (HS256 with a shared secret
//! for small installs, RS256/EdDSA with a public key in production) whose
//! claims name the staff id, role and department. [`AuthLayer`] checks it on
//! every call but health and reflection, enforces the service's
//! [`RoleTable`], writes the [`audit`] log, and hands handlers the verified
//! [`Staff`] in the request extensions.

pub mod audit;
mod cli;
mod config;
mod guard;
mod role;
mod table;
mod token;

pub use audit::MIGRATIONS;
pub use cli::{TokenArgs, TokenCommandError};
pub use config::{AuthConfig, MIN_SECRET_LEN};
pub use guard::{AuthLayer, AuthService};
pub use jsonwebtoken::Algorithm;
pub use role::{Role, UnknownRole};
pub use table::{Audit, RoleTable, Rpc};
pub use token::{Claims, MintError, Signer, Staff, TokenError, Verifier, mint, now_secs};

/// The `iss` services expect unless `AUTH_ISSUER` says otherwise.
pub const DEFAULT_ISSUER: &str = "kesu";
/// The `aud` services expect unless `AUTH_AUDIENCE` says otherwise.
pub const DEFAULT_AUDIENCE: &str = "kesu";

/// The verified caller of a gRPC request (set by [`AuthLayer`]).
pub fn staff<T>(request: &tonic::Request<T>) -> Option<&Staff> {
    request.extensions().get::<Staff>()
}
