//! sla-timer's durable timers at scale (issue 10): a million pending timers
//! of the kind sla-timer keeps (`sla.ticket`, one per ticket, due at its
//! next point) in a SQLite database, the firing loop of `kesu-timers` on the
//! wall clock with a handler that only records when it ran. Measured:
//!
//! - the process's resident memory with the million pending (only the near
//!   window lives in memory) — the figure includes the bench itself;
//! - fire lateness (handler run − due) p50/p99 under a steady firing load
//!   of `FIRING_PER_S` timers a second beside the million;
//! - restart catch-up: a new loop started over the million stored timers of
//!   which `OVERDUE` came due while it was down, timed until all those fired.
//!
//! The SLA handler's own work (planning the ticket's clocks, emitting the
//! events) is not in these figures: that is measured per ticket event in
//! the end-to-end phase.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use kesu_bus::{HandleError, OutboxWaker, UnitOfWork};
use kesu_domain::SystemClock;
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;
use kesu_testkit::TempDatabase;
use kesu_timers::{FiredTimer, TimerHandler, TimerSettings, Timers};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const PENDING: usize = 1_000_000;
const FIRING_PER_S: usize = 500;
const FIRING_SECS: usize = 20;
const OVERDUE: usize = 10_000;
const KIND: &str = "sla.ticket";

#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub pending: usize,
    pub insert_secs: f64,
    pub rss_mb: f64,
    pub fired: usize,
    pub lateness_p50_ms: f64,
    pub lateness_p99_ms: f64,
    pub overdue: usize,
    pub catch_up_secs: f64,
}

impl Figures {
    pub fn to_json(self) -> Value {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "pending_timers": self.pending,
            "insert_secs": r(self.insert_secs),
            "rss_mb": r(self.rss_mb),
            "fired_under_load": self.fired,
            "firing_per_s": FIRING_PER_S,
            "lateness_ms": { "p50": r(self.lateness_p50_ms), "p99": r(self.lateness_p99_ms) },
            "overdue_at_restart": self.overdue,
            "restart_catch_up_secs": r(self.catch_up_secs),
        })
    }
}

/// Records how late each timer ran.
#[derive(Default)]
struct Recorder {
    lateness_ms: Mutex<Vec<f64>>,
}

impl TimerHandler for Recorder {
    async fn fire(&self, _work: &mut UnitOfWork, timer: &FiredTimer) -> Result<(), HandleError> {
        let late = (Utc::now() - timer.due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
        self.lateness_ms.lock().expect("recorder lock").push(late.max(0.0));
        Ok(())
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.lateness_ms.lock().expect("recorder lock").len()
    }
}

/// Inserts timers `keys` due at `due(i)` (ms), in chunked multi-row statements.
async fn insert(db: &Database, keys: std::ops::Range<usize>, due: impl Fn(usize) -> i64) -> anyhow::Result<()> {
    const ROWS: usize = 500;
    let now = Utc::now().timestamp_millis();
    let mut tx = db.writer().begin().await?;
    let keys: Vec<usize> = keys.collect();
    for chunk in keys.chunks(ROWS) {
        let values: Vec<String> =
            (0..chunk.len()).map(|i| format!("(${}, ${}, ${}, $1, $2)", i * 3 + 3, i * 3 + 4, i * 3 + 5)).collect();
        let sql = format!(
            "INSERT INTO kesu_timers (kind, timer_key, due, payload, scheduled_at) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(Vec::<u8>::new()).bind(now);
        for i in chunk {
            q = q.bind(KIND).bind(format!("T-{i:07}")).bind(due(*i));
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn wait_for(recorder: &Recorder, n: usize, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while recorder.count() < n {
        if start.elapsed() > limit {
            anyhow::bail!("only {} of {n} timers fired within {limit:?}", recorder.count());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

pub async fn measure() -> anyhow::Result<Figures> {
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS, kesu_timers::MIGRATIONS]).await?;
    let registry = MetricsRegistry::default();
    let now = Utc::now().timestamp_millis();

    // A million pending, from an hour to about a month ahead.
    let started = Instant::now();
    insert(&db, 0..PENDING, |i| now + 3_600_000 + i as i64 * 2_500).await?;
    let insert_secs = started.elapsed().as_secs_f64();

    // A steady firing load beside them, starting a few seconds from now.
    let firing = FIRING_PER_S * FIRING_SECS;
    let first = Utc::now().timestamp_millis() + 3_000;
    insert(&db, PENDING..PENDING + firing, |i| first + ((i - PENDING) * 1000 / FIRING_PER_S) as i64).await?;
    let recorder = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let timers =
        Timers::new(db.clone(), Arc::new(SystemClock), OutboxWaker::default(), TimerSettings::default(), &registry);
    let running = tokio::spawn(timers.run(recorder.clone(), stop.clone()));
    wait_for(&recorder, firing, Duration::from_secs(FIRING_SECS as u64 + 120)).await?;
    let rss = rss_mb();
    stop.cancel();
    running.await?;
    let mut late = recorder.lateness_ms.lock().expect("recorder lock").clone();
    late.sort_by(f64::total_cmp);

    // Down for a while: OVERDUE timers came due meanwhile; then a new loop.
    let past = Utc::now().timestamp_millis() - 600_000;
    let base = PENDING + firing;
    insert(&db, base..base + OVERDUE, |i| past + (i - base) as i64 * 10).await?;
    let catch_up = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let timers =
        Timers::new(db.clone(), Arc::new(SystemClock), OutboxWaker::default(), TimerSettings::default(), &registry);
    let running = tokio::spawn(timers.run(catch_up.clone(), stop.clone()));
    wait_for(&catch_up, OVERDUE, Duration::from_secs(300)).await?;
    let catch_up_secs = started.elapsed().as_secs_f64();
    stop.cancel();
    running.await?;

    Ok(Figures {
        pending: PENDING,
        insert_secs,
        rss_mb: rss,
        fired: late.len(),
        lateness_p50_ms: percentile(&late, 0.50),
        lateness_p99_ms: percentile(&late, 0.99),
        overdue: OVERDUE,
        catch_up_secs,
    })
}

pub fn print(f: &Figures) {
    println!(
        "  sla timers: {} pending (inserted in {:.1} s), RSS {:.1} MB; {} fired at {FIRING_PER_S}/s, lateness p50 {:.1} ms p99 {:.1} ms; restart with {} overdue: caught up in {:.2} s",
        f.pending, f.insert_secs, f.rss_mb, f.fired, f.lateness_p50_ms, f.lateness_p99_ms, f.overdue, f.catch_up_secs
    );
}

/// Sets `sla_timers` in `latest.json`, keeping what else is there.
pub fn merge_json(path: &Path, f: &Figures) -> anyhow::Result<()> {
    let mut doc = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Map<String, Value>>(&t).ok())
        .unwrap_or_default();
    doc.insert("sla_timers".into(), f.to_json());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&Value::Object(doc))? + "\n")?;
    Ok(())
}
