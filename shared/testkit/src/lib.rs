//! Test and benchmark support: a private `nats-server` with JetStream on a
//! free port and a temp store, fresh databases on SQLite and PostgreSQL, and
//! waiting helpers. Nothing here talks to shared state: every test gets its
//! own server and its own databases.

mod database;
mod nats;
mod python;

pub use database::{TempDatabase, postgres_admin_url};
pub use nats::{MIN_NATS_SERVER, NatsProfile, NatsServer, find_nats_server, nats_server_version};
pub use python::{python, workspace_root};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics after `timeout` with
/// `what` in the message.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface can bind an ephemeral port")
}
