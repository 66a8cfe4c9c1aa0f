//! The shape every kesu service process shares, so each service's `lib.rs`
//! is about its domain and its `main.rs` is ten lines:
//!
//! - [`CommonConfig`]: settings every service has (NATS, database, ports,
//!   consumer tuning, policy file), read from the environment;
//! - [`ServiceCore`]: connects the bus, declares streams, opens and migrates
//!   the database, runs the outbox relay, declares and runs consumers;
//! - [`ServiceCore::serve`]: gRPC (with health and reflection; every other
//!   call needs a staff token whose role the service's table allows) and HTTP
//!   (`/healthz`, `/readyz`, `/metrics`), returning a [`RunningService`];
//! - graceful shutdown in order: stop pulling, finish in-flight messages,
//!   flush the outbox, stop the servers, close the pool;
//! - [`main`]: telemetry, signals and exit codes for the thin binaries.

mod auth;
mod config;
mod http;
pub mod paging;
mod process;

pub use auth::{AuthLayer, GrpcRouter};
pub use config::{CommonConfig, ServicePorts, contact_key};
pub use http::Readiness;
pub use process::{RunningService, ServiceCore, StartError, grpc_router, main};

pub use tokio_util::sync::CancellationToken;
