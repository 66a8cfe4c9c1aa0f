//! The handle services schedule through, and the one firing loop per
//! service that holds the near window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kesu_bus::{HandleError, OutboxWaker, UnitOfWork};
use kesu_domain::Clock;
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{FiredLabels, TimerMetrics};
use crate::store::{self, Row};
use crate::{FiredTimer, ScheduledTimer, Timer, TimerError, TimerHandler, TimerSettings};

/// After a timer already due is scheduled in this process, the loop looks
/// once more this long after it was woken: the scheduling transaction may
/// not have committed when the loop first looked.
const RECHECK_AFTER: Duration = Duration::from_millis(50);

/// A service's durable timers: schedule and cancel inside a unit of work,
/// fire with [`Timers::run`]. Cheap to clone; every clone shares the loop's
/// wake-up.
#[derive(Clone)]
pub struct Timers {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    clock: Arc<dyn Clock>,
    outbox: OutboxWaker,
    settings: TimerSettings,
    metrics: TimerMetrics,
    /// Timers due before this instant came due while the service was down.
    started_ms: i64,
    wake: Notify,
    /// Due instants scheduled in this process inside the loop's window,
    /// not yet merged into it.
    hints: Mutex<Vec<i64>>,
    /// Too many hints to keep: the loop reloads the window instead.
    hints_overflowed: AtomicBool,
    /// The window's far end: a timer due before it must join the window.
    window_end: AtomicI64,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").field("settings", &self.inner.settings).finish()
    }
}

/// What one [`Timers::fire_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FireReport {
    pub fired: usize,
    /// Of those, how many came due while the service was down.
    pub late: usize,
    /// Timers whose handler failed for good, kept in `kesu_timers_parked`.
    pub parked: usize,
}

impl Timers {
    /// Timers in `db` (which must include [`crate::MIGRATIONS`]), on
    /// `clock`; `outbox` is woken after each batch that emitted events;
    /// metrics go to `registry`.
    pub fn new(
        db: Database,
        clock: Arc<dyn Clock>,
        outbox: OutboxWaker,
        settings: TimerSettings,
        registry: &MetricsRegistry,
    ) -> Self {
        let started_ms = clock.now().timestamp_millis();
        Self {
            inner: Arc::new(Inner {
                db,
                clock,
                outbox,
                settings,
                metrics: TimerMetrics::new(registry),
                started_ms,
                wake: Notify::new(),
                hints: Mutex::new(Vec::new()),
                hints_overflowed: AtomicBool::new(false),
                window_end: AtomicI64::new(i64::MAX),
            }),
        }
    }

    /// Schedules a timer in the caller's transaction, replacing a pending
    /// one of the same kind and key.
    pub async fn schedule(&self, work: &mut UnitOfWork, timer: Timer) -> Result<(), sqlx::Error> {
        self.schedule_many(work, std::slice::from_ref(&timer)).await
    }

    /// Schedules several timers in the caller's transaction (one statement
    /// per 128); of two with the same kind and key the later one wins.
    pub async fn schedule_many(&self, work: &mut UnitOfWork, timers: &[Timer]) -> Result<(), sqlx::Error> {
        if timers.is_empty() {
            return Ok(());
        }
        store::upsert(work.conn(), timers, self.inner.clock.now().timestamp_millis()).await?;
        let end = self.inner.window_end.load(Ordering::Acquire);
        let near: Vec<i64> = timers.iter().map(|t| t.due.timestamp_millis()).filter(|due| *due <= end).collect();
        if !near.is_empty() {
            {
                let mut hints = self.inner.hints.lock().expect("timer hints lock poisoned");
                if hints.len() + near.len() > self.inner.settings.window_limit {
                    hints.clear();
                    self.inner.hints_overflowed.store(true, Ordering::Release);
                } else {
                    hints.extend(near);
                }
            }
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Cancels the pending timer of a kind and key in the caller's
    /// transaction; whether there was one.
    pub async fn cancel(&self, work: &mut UnitOfWork, kind: &str, key: &str) -> Result<bool, sqlx::Error> {
        Ok(store::cancel(work.conn(), kind, &[key]).await? > 0)
    }

    /// Cancels the pending timers of one kind with these keys; how many
    /// there were.
    pub async fn cancel_many(&self, work: &mut UnitOfWork, kind: &str, keys: &[&str]) -> Result<u64, sqlx::Error> {
        store::cancel(work.conn(), kind, keys).await
    }

    /// The pending timer of a kind and key, if any (committed state).
    pub async fn find(&self, kind: &str, key: &str) -> Result<Option<ScheduledTimer>, sqlx::Error> {
        Ok(store::find(self.inner.db.pool(), kind, key).await?.map(store::scheduled))
    }

    /// Makes the loop look at the clock and its window now (after moving a
    /// manual clock in tests; scheduling wakes it by itself).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The settings in force.
    pub fn settings(&self) -> &TimerSettings {
        &self.inner.settings
    }

    /// Fires every timer due at the clock's current time, in batches of
    /// [`TimerSettings::batch`], each in one unit of work. A batch whose
    /// handler fails is rolled back and its timers fired one per
    /// transaction, so only the failing one is retried (transient) or
    /// parked (permanent). [`Timers::run`] calls this; tests may too.
    pub async fn fire_due<H: TimerHandler>(&self, handler: &H) -> Result<FireReport, TimerError> {
        let inner = &self.inner;
        let mut report = FireReport::default();
        loop {
            let now = inner.clock.now();
            let mut work = UnitOfWork::begin(&inner.db).await?;
            let rows =
                store::claim_due(work.conn(), inner.db.backend(), now.timestamp_millis(), inner.settings.batch).await?;
            if rows.is_empty() {
                work.rollback().await?;
                return Ok(report);
            }
            let claimed = rows.len();
            let mut failed = false;
            for row in &rows {
                if handler.fire(&mut work, &self.fired(row, now)).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed {
                work.rollback().await?;
                for row in &rows {
                    self.fire_alone(handler, row.0, &mut report).await?;
                }
            } else {
                work.commit(&inner.outbox).await?;
                for row in &rows {
                    self.count_fired(&self.fired(row, now), &mut report);
                }
            }
            if claimed < inner.settings.batch {
                return Ok(report);
            }
        }
    }

    /// Fires one timer in a transaction of its own; parks it if its handler
    /// fails for good.
    async fn fire_alone<H: TimerHandler>(
        &self,
        handler: &H,
        id: i64,
        report: &mut FireReport,
    ) -> Result<(), TimerError> {
        let inner = &self.inner;
        let backend = inner.db.backend();
        let now = inner.clock.now();
        let mut work = UnitOfWork::begin(&inner.db).await?;
        let Some(row) = store::claim_one(work.conn(), backend, id, now.timestamp_millis()).await? else {
            work.rollback().await?;
            return Ok(());
        };
        let fired = self.fired(&row, now);
        match handler.fire(&mut work, &fired).await {
            Ok(()) => {
                work.commit(&inner.outbox).await?;
                self.count_fired(&fired, report);
                Ok(())
            }
            Err(HandleError::Transient(error)) => {
                work.rollback().await?;
                Err(TimerError::Handler { kind: fired.kind, key: fired.key, error })
            }
            Err(HandleError::Permanent(error)) => {
                work.rollback().await?;
                let mut work = UnitOfWork::begin(&inner.db).await?;
                if let Some(row) = store::claim_one(work.conn(), backend, id, now.timestamp_millis()).await? {
                    store::park(work.conn(), &row, now.timestamp_millis(), &error).await?;
                    work.commit(&inner.outbox).await?;
                    tracing::error!(timer_id = id, kind = %fired.kind, error = %error,
                        "timer handler failed for good; timer parked in kesu_timers_parked");
                    inner.metrics.parked.inc();
                    report.parked += 1;
                } else {
                    work.rollback().await?;
                }
                Ok(())
            }
        }
    }

    fn fired(&self, row: &Row, now: DateTime<Utc>) -> FiredTimer {
        let (id, kind, key, due, payload) = row.clone();
        FiredTimer { id, kind, key, due: instant(due), payload, fired_at: now, late: due < self.inner.started_ms }
    }

    fn count_fired(&self, fired: &FiredTimer, report: &mut FireReport) {
        let metrics = &self.inner.metrics;
        metrics.fired.get_or_create(&FiredLabels { late: fired.late.to_string() }).inc();
        metrics.lateness.observe(fired.lateness().num_milliseconds() as f64 / 1000.0);
        report.fired += 1;
        report.late += usize::from(fired.late);
    }

    /// Fires timers as they come due until shut down: first what came due
    /// while the service was down, then each batch at its instant.
    pub async fn run<H: TimerHandler>(self, handler: Arc<H>, shutdown: CancellationToken) {
        let inner = &self.inner;
        let mut window = Window::default();
        let mut reload_at = Instant::now();
        let mut recheck_at: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let now_ms = inner.clock.now().timestamp_millis();
            if Instant::now() >= reload_at
                || now_ms >= window.end
                || inner.hints_overflowed.swap(false, Ordering::AcqRel)
            {
                match self.load_window(now_ms).await {
                    Ok(loaded) => window = loaded,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "timers: cannot read the window; will retry");
                        if pause(&shutdown, backoff).await {
                            break;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
                reload_at = Instant::now() + inner.settings.refresh;
            }
            if self.merge_hints(&mut window, now_ms) {
                recheck_at = Some(Instant::now() + RECHECK_AFTER);
            }
            let recheck = recheck_at.is_some_and(|at| at <= Instant::now());
            if window.front().is_some_and(|due| due <= now_ms) || recheck {
                if recheck {
                    recheck_at = None;
                }
                match self.fire_due(&*handler).await {
                    Ok(report) => {
                        if report.late > 0 {
                            tracing::info!(late = report.late, "timers: fired what came due while down");
                        }
                        window.drop_through(now_ms);
                        inner.metrics.window.set(window.dues.len() as i64);
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "timers: firing failed; will retry");
                        if pause(&shutdown, backoff).await {
                            break;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        reload_at = Instant::now();
                    }
                }
                continue;
            }
            let mut sleep = reload_at.saturating_duration_since(Instant::now());
            if let Some(due) = window.front() {
                sleep = sleep.min(Duration::from_millis((due - now_ms).max(0) as u64));
            }
            if let Some(at) = recheck_at {
                sleep = sleep.min(at.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// The next due instants from the database.
    async fn load_window(&self, now_ms: i64) -> Result<Window, sqlx::Error> {
        let settings = &self.inner.settings;
        let horizon = now_ms.saturating_add(settings.horizon.as_millis() as i64);
        let dues = store::window(self.inner.db.pool(), horizon, settings.window_limit).await?;
        let truncated = dues.len() >= settings.window_limit;
        let end = if truncated { dues.last().copied().unwrap_or(horizon) } else { horizon };
        self.inner.window_end.store(end, Ordering::Release);
        self.inner.metrics.window.set(dues.len() as i64);
        Ok(Window { dues: dues.into(), end })
    }

    /// Moves the hints into the window; whether one was already due (its
    /// transaction may commit a moment later: look again then).
    fn merge_hints(&self, window: &mut Window, now_ms: i64) -> bool {
        let hints = std::mem::take(&mut *self.inner.hints.lock().expect("timer hints lock poisoned"));
        let mut due_now = false;
        for due in hints {
            due_now |= due <= now_ms;
            window.insert(due);
        }
        if window.dues.len() > self.inner.settings.window_limit {
            window.dues.truncate(self.inner.settings.window_limit);
            window.end = window.dues.back().copied().unwrap_or(window.end);
            self.inner.window_end.store(window.end, Ordering::Release);
        }
        due_now
    }
}

/// Sleeps unless shut down first; whether shutdown came.
async fn pause(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

/// The near window: the next due instants in order, up to `end`.
#[derive(Debug, Default)]
struct Window {
    dues: VecDeque<i64>,
    /// Everything due before this is in `dues` (or was fired); past it the
    /// window must be reloaded.
    end: i64,
}

impl Window {
    fn front(&self) -> Option<i64> {
        self.dues.front().copied()
    }

    fn insert(&mut self, due: i64) {
        let at = self.dues.partition_point(|d| *d <= due);
        self.dues.insert(at, due);
    }

    fn drop_through(&mut self, now_ms: i64) {
        while self.dues.front().is_some_and(|d| *d <= now_ms) {
            self.dues.pop_front();
        }
    }
}

/// An instant stored as epoch milliseconds.
pub(crate) fn instant(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_stays_in_order() {
        let mut window = Window { dues: VecDeque::from([10, 20, 30]), end: 100 };
        window.insert(15);
        window.insert(5);
        window.insert(30);
        assert_eq!(window.dues, [5, 10, 15, 20, 30, 30]);
        window.drop_through(20);
        assert_eq!(window.front(), Some(30));
    }
}
