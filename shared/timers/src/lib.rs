//! Durable timers: "do this at that instant", kept in the service's own
//! database and fired exactly once in effect, across restarts and replicas.
//!
//! - A timer is a row of `kesu_timers`: a `kind`, a `key` unique per kind
//!   (scheduling the same kind and key again replaces the timer), the `due`
//!   instant and opaque `payload` bytes. [`Timers::schedule`] and
//!   [`Timers::cancel`] run inside the caller's [`UnitOfWork`], so a timer
//!   is set or dropped in the same transaction as the state change that
//!   asks for it.
//! - One firing loop per service ([`Timers::run`]) keeps only a near window
//!   of due instants in memory (the next [`TimerSettings::window_limit`]
//!   within [`TimerSettings::horizon`]): a million pending timers cost
//!   neither a million tasks nor a scan per tick. Scheduling a nearer timer
//!   in this process wakes it early; it reloads the window every
//!   [`TimerSettings::refresh`] to see other replicas' timers.
//! - Due timers are fired in batches, each batch in one [`UnitOfWork`]: the
//!   rows are claimed and deleted, the [`TimerHandler`] emits its events and
//!   may schedule follow-up timers, and everything commits together. A
//!   handler failing for good parks its timer in `kesu_timers_parked` with
//!   the reason (nothing is dropped silently).
//! - On start the loop fires what came due while the service was down, each
//!   marked [`FiredTimer::late`]; a fired row is gone in the same commit, so
//!   it never fires twice. On PostgreSQL replicas share the table and claim
//!   due rows with `FOR UPDATE SKIP LOCKED`; [`FiredTimer::event_id`] gives
//!   deterministic event ids (from the timer's id and due instant), so
//!   JetStream's de-duplication is a second guard.
//! - Time comes from the injected [`kesu_domain::Clock`]: with a
//!   [`kesu_domain::ManualClock`], tests move time and call
//!   [`Timers::wake`] (or [`Timers::fire_due`]) — the same loop code runs
//!   in production and in tests.
//!
//! The tables come with [`MIGRATIONS`] (version 200, in the range of shared
//! crates); `kesu-runtime` applies them in every service's database.

mod firing;
mod metrics;
mod store;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kesu_bus::{HandleError, UnitOfWork};
use kesu_config::{ConfigError, Env};
use kesu_storage::Migrations;
use sha2::{Digest, Sha256};

pub use firing::{FireReport, Timers};

/// `kesu_timers` and `kesu_timers_parked`.
pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// A timer to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// What the timer is for (`sla.point`, `quiet_hours.release`): the
    /// handler dispatches on it.
    pub kind: String,
    /// Unique per kind: scheduling the same kind and key replaces the timer.
    pub key: String,
    pub due: DateTime<Utc>,
    pub payload: Vec<u8>,
}

impl Timer {
    pub fn new(kind: impl Into<String>, key: impl Into<String>, due: DateTime<Utc>, payload: Vec<u8>) -> Self {
        Self { kind: kind.into(), key: key.into(), due, payload }
    }
}

/// A pending timer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledTimer {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub due: DateTime<Utc>,
    pub payload: Vec<u8>,
}

/// A timer being fired, handed to the [`TimerHandler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredTimer {
    /// The row id: unique for each scheduling (re-scheduling a pending
    /// timer keeps it; a timer scheduled after the last one fired gets a
    /// new one).
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub due: DateTime<Utc>,
    pub payload: Vec<u8>,
    /// The clock's time when the batch was claimed.
    pub fired_at: DateTime<Utc>,
    /// It came due before this process started firing (it was due while
    /// the service was down).
    pub late: bool,
}

impl FiredTimer {
    /// How long after its due instant it fires.
    pub fn lateness(&self) -> chrono::Duration {
        (self.fired_at - self.due).max(chrono::Duration::zero())
    }

    /// A deterministic event id (a UUIDv7 whose time is the due instant)
    /// for the `n`-th event this timer emits, `purpose` telling events of
    /// one firing apart: firing the same timer twice — which the row locks
    /// prevent — would give the same ids, and JetStream's de-duplication
    /// would drop the second.
    pub fn event_id(&self, purpose: &str) -> String {
        deterministic_event_id(self.due.timestamp_millis(), &[&self.id.to_string(), &self.kind, &self.key, purpose])
    }
}

/// A UUIDv7 whose timestamp is `millis` and whose other bits come from a
/// hash of `parts`: the same inputs always give the same id.
pub fn deterministic_event_id(millis: i64, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis.max(0) as u64, &random).into_uuid().to_string()
}

/// What a service does when one of its timers comes due: runs inside the
/// batch's unit of work (emit events, change state, schedule follow-ups);
/// the timer's row is already deleted in that transaction.
pub trait TimerHandler: Send + Sync + 'static {
    fn fire(&self, work: &mut UnitOfWork, timer: &FiredTimer) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// Tuning of the firing loop (`TIMER_*`).
#[derive(Debug, Clone)]
pub struct TimerSettings {
    /// How often the window is reloaded from the database without being
    /// woken (other replicas' timers; `TIMER_REFRESH`).
    pub refresh: Duration,
    /// How far ahead the window looks (`TIMER_HORIZON`).
    pub horizon: Duration,
    /// Most due instants held in memory (`TIMER_WINDOW_LIMIT`).
    pub window_limit: usize,
    /// Most timers fired in one transaction (`TIMER_BATCH`).
    pub batch: usize,
}

impl Default for TimerSettings {
    fn default() -> Self {
        Self { refresh: Duration::from_secs(1), horizon: Duration::from_secs(300), window_limit: 4096, batch: 256 }
    }
}

impl TimerSettings {
    /// `TIMER_REFRESH` (1s), `TIMER_HORIZON` (5m), `TIMER_WINDOW_LIMIT`
    /// (4096), `TIMER_BATCH` (256).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let refresh = env.duration("TIMER_REFRESH", d.refresh)?;
        if refresh.is_zero() {
            let key = env.raw("TIMER_REFRESH").map(|(k, _)| k).unwrap_or_default();
            return Err(ConfigError { key, message: "must be longer than zero".into() });
        }
        Ok(Self {
            refresh,
            horizon: env.duration("TIMER_HORIZON", d.horizon)?,
            window_limit: env.bounded("TIMER_WINDOW_LIMIT", d.window_limit as u64, 16, 1_000_000)? as usize,
            batch: env.bounded("TIMER_BATCH", d.batch as u64, 1, 10_000)? as usize,
        })
    }
}

/// Why firing could not proceed (the loop logs it and retries).
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error("timers: database: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("timer {kind}/{key}: {error}")]
    Handler { kind: String, key: String, error: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_deterministic_uuid_v7_at_the_due_instant() {
        let due = DateTime::from_timestamp_millis(1_790_000_000_000).unwrap();
        let timer =
            FiredTimer { id: 7, kind: "k".into(), key: "a".into(), due, payload: vec![], fired_at: due, late: false };
        let id = timer.event_id("warning");
        assert_eq!(id, timer.clone().event_id("warning"));
        assert_ne!(id, timer.event_id("breach"));
        let other = FiredTimer { id: 8, ..timer.clone() };
        assert_ne!(id, other.event_id("warning"));
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let (secs, _) = parsed.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_790_000_000);
    }

    #[test]
    fn settings_name_the_bad_key() {
        let env = Env::from_vars("notification", [("KESU_NOTIFICATION_TIMER_BATCH".to_string(), "0".to_string())]);
        let err = TimerSettings::from_env(&env).unwrap_err();
        assert_eq!(err.key, "KESU_NOTIFICATION_TIMER_BATCH");
        let env = Env::from_vars("notification", [("KESU_TIMER_REFRESH".to_string(), "0s".to_string())]);
        assert_eq!(TimerSettings::from_env(&env).unwrap_err().key, "KESU_TIMER_REFRESH");
        assert_eq!(TimerSettings::from_env(&Env::from_vars("x", [])).unwrap().batch, 256);
    }
}
