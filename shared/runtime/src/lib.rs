//! The shape every kesu service process shares, so each service's `lib.rs`
//! is about its domain and the `kesu` binary only names them:
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
//! - [`run_process`]: one or several services ([`Target`]) as a process,
//!   with telemetry, signals and exit codes; [`Target::describe`] lists a
//!   service's configuration keys for `kesu --help`.
//! - [`status`]: internal errors as a generic gRPC status with an error id.

mod auth;
mod config;
mod http;
mod launch;
pub mod paging;
mod process;
pub mod reflection;
pub mod status;

pub use auth::{AuthLayer, GrpcRouter};
pub use config::{CommonConfig, ServicePorts, contact_key};
pub use http::{CHECK_TIMEOUT, Readiness, ReadinessReport};
pub use launch::{Target, describe_telemetry, main, run_process};
pub use process::{RunningService, ServiceCore, StartError, grpc_router};

pub use tokio_util::sync::CancellationToken;
