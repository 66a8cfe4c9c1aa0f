//! Durable timers on both back ends, in virtual time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use kesu_bus::{HandleError, OutboxWaker, Outgoing, UnitOfWork};
use kesu_domain::{Clock, ManualClock};
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;
use kesu_testkit::{TempDatabase, eventually};
use kesu_timers::{FiredTimer, Timer, TimerHandler, TimerSettings, Timers};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

async fn open(temp: &TempDatabase) -> Database {
    Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS, kesu_timers::MIGRATIONS]).await.unwrap()
}

fn timers(db: &Database, clock: &ManualClock, settings: TimerSettings) -> Timers {
    Timers::new(db.clone(), Arc::new(clock.clone()), OutboxWaker::default(), settings, &MetricsRegistry::default())
}

fn fast() -> TimerSettings {
    TimerSettings { refresh: Duration::from_millis(50), ..TimerSettings::default() }
}

/// Emits one outbox row per fired timer (subject `test.fired.<kind>`,
/// payload `<key>|<late>`, the timer's deterministic event id); timers whose
/// payload is `poison` fail for good, `flaky` ones fail the first time;
/// `chain:<n>` schedules `chain:<n-1>` one hour later.
struct Recorder {
    timers: Timers,
    replica: &'static str,
    flaky_failures: AtomicU32,
}

impl TimerHandler for Recorder {
    async fn fire(&self, work: &mut UnitOfWork, timer: &FiredTimer) -> Result<(), HandleError> {
        match timer.payload.as_slice() {
            b"poison" => return Err(HandleError::Permanent("poison timer".into())),
            b"flaky" if self.flaky_failures.fetch_add(1, Ordering::SeqCst) == 0 => {
                return Err(HandleError::Transient("flaky".into()));
            }
            _ => {}
        }
        if let Some(n) = timer.key.strip_prefix("chain:").and_then(|n| n.parse::<u32>().ok())
            && n > 0
        {
            let next =
                Timer::new(&timer.kind, format!("chain:{}", n - 1), timer.due + chrono::Duration::hours(1), vec![]);
            self.timers.schedule(work, next).await?;
        }
        work.emit(Outgoing {
            subject: format!("test.fired.{}", timer.kind),
            msg_id: timer.event_id("fired"),
            msg_type: "test".into(),
            payload: Bytes::from(format!("{}|{}|{}", timer.key, timer.late, self.replica)),
            traceparent: None,
        })
        .await?;
        Ok(())
    }
}

fn recorder(timers: &Timers) -> Recorder {
    replica(timers, "a")
}

fn replica(timers: &Timers, name: &'static str) -> Recorder {
    Recorder { timers: timers.clone(), replica: name, flaky_failures: AtomicU32::new(0) }
}

/// What fired so far: (key, late), in outbox order.
async fn fired(db: &Database) -> Vec<(String, bool)> {
    fired_by(db).await.into_iter().map(|(key, late, _)| (key, late)).collect()
}

/// What fired so far: (key, late, replica), in outbox order.
async fn fired_by(db: &Database) -> Vec<(String, bool, String)> {
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM kesu_outbox ORDER BY id").fetch_all(db.pool()).await.unwrap();
    rows.into_iter()
        .map(|p| {
            let text = String::from_utf8(p).unwrap();
            let mut parts = text.split('|');
            let (key, late, replica) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            (key.to_string(), late == "true", replica.to_string())
        })
        .collect()
}

async fn pending(db: &Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM kesu_timers").fetch_one(db.pool()).await.unwrap()
}

async fn schedule(db: &Database, timers: &Timers, list: Vec<Timer>) {
    let mut work = UnitOfWork::begin(db).await.unwrap();
    timers.schedule_many(&mut work, &list).await.unwrap();
    work.commit(&OutboxWaker::default()).await.unwrap();
}

fn at(minutes: i64, key: &str) -> Timer {
    Timer::new("test", key, t0() + chrono::Duration::minutes(minutes), vec![])
}

#[tokio::test]
async fn scheduling_replaces_cancels_and_rolls_back_with_the_transaction() {
    for temp in TempDatabase::every_backend().await {
        let db = open(&temp).await;
        let clock = ManualClock::new(t0());
        let timers = timers(&db, &clock, fast());
        schedule(&db, &timers, vec![at(10, "a"), at(20, "b"), at(30, "a")]).await;
        let a = timers.find("test", "a").await.unwrap().expect("a is pending");
        assert_eq!(a.due, t0() + chrono::Duration::minutes(30), "{}: the later scheduling wins", temp.label());
        schedule(&db, &timers, vec![at(5, "a")]).await;
        let again = timers.find("test", "a").await.unwrap().unwrap();
        assert_eq!((again.id, again.due), (a.id, t0() + chrono::Duration::minutes(5)), "{}", temp.label());

        let mut work = UnitOfWork::begin(&db).await.unwrap();
        timers.schedule(&mut work, at(1, "rolled-back")).await.unwrap();
        assert!(timers.cancel(&mut work, "test", "b").await.unwrap());
        work.rollback().await.unwrap();
        assert!(timers.find("test", "rolled-back").await.unwrap().is_none(), "{}", temp.label());
        assert!(timers.find("test", "b").await.unwrap().is_some(), "{}", temp.label());

        let mut work = UnitOfWork::begin(&db).await.unwrap();
        assert_eq!(timers.cancel_many(&mut work, "test", &["a", "b", "nope"]).await.unwrap(), 2);
        assert!(!timers.cancel(&mut work, "other-kind", "a").await.unwrap());
        work.commit(&OutboxWaker::default()).await.unwrap();
        assert_eq!(pending(&db).await, 0, "{}", temp.label());
    }
}

#[tokio::test]
async fn due_timers_fire_in_order_once_and_may_schedule_follow_ups() {
    for temp in TempDatabase::every_backend().await {
        let db = open(&temp).await;
        let clock = ManualClock::new(t0());
        let timers = timers(&db, &clock, TimerSettings { batch: 2, ..fast() });
        let handler = recorder(&timers);
        schedule(&db, &timers, vec![at(3, "c"), at(1, "a"), at(2, "b"), at(90, "later"), at(0, "chain:2")]).await;

        assert_eq!(timers.fire_due(&handler).await.unwrap().fired, 1, "{}: only chain:2 is due", temp.label());
        clock.advance(chrono::Duration::minutes(3));
        let report = timers.fire_due(&handler).await.unwrap();
        assert_eq!((report.fired, report.late), (3, 0), "{}", temp.label());
        assert_eq!(timers.fire_due(&handler).await.unwrap().fired, 0, "{}: nothing fires twice", temp.label());
        clock.advance(chrono::Duration::hours(3));
        timers.fire_due(&handler).await.unwrap();
        let keys: Vec<String> = fired(&db).await.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["chain:2", "a", "b", "c", "chain:1", "later", "chain:0"], "{}", temp.label());
        assert_eq!(pending(&db).await, 0, "{}", temp.label());
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT event_id FROM kesu_outbox").fetch_all(db.pool()).await.unwrap();
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).unwrap().get_version_num() == 7));
    }
}

#[tokio::test]
async fn a_failing_timer_is_retried_or_parked_and_the_others_still_fire() {
    for temp in TempDatabase::every_backend().await {
        let db = open(&temp).await;
        let clock = ManualClock::new(t0());
        let timers = timers(&db, &clock, fast());
        let handler = recorder(&timers);
        let mut list = vec![at(0, "a"), at(0, "b")];
        list.push(Timer::new("test", "bad", t0(), b"poison".to_vec()));
        list.push(Timer::new("test", "shaky", t0(), b"flaky".to_vec()));
        schedule(&db, &timers, list).await;

        let err = timers.fire_due(&handler).await.unwrap_err();
        assert!(err.to_string().contains("flaky"), "{}: {err}", temp.label());
        let report = timers.fire_due(&handler).await.unwrap();
        assert_eq!(report.parked, 0, "{}: parked in the first pass", temp.label());
        let mut keys: Vec<String> = fired(&db).await.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        assert_eq!(keys, ["a", "b", "shaky"], "{}", temp.label());
        let parked: Vec<(String, String)> =
            sqlx::query_as("SELECT timer_key, reason FROM kesu_timers_parked").fetch_all(db.pool()).await.unwrap();
        assert_eq!(parked, [("bad".to_string(), "poison timer".to_string())], "{}", temp.label());
        assert_eq!(pending(&db).await, 0, "{}", temp.label());
    }
}

#[tokio::test]
async fn the_loop_follows_virtual_time_and_wakes_for_nearer_timers() {
    for temp in TempDatabase::every_backend().await {
        let db = open(&temp).await;
        let clock = ManualClock::new(t0());
        // A long refresh: only being woken makes it look again.
        let timers = timers(&db, &clock, TimerSettings { refresh: Duration::from_secs(3600), ..fast() });
        schedule(&db, &timers, vec![at(60 * 24 * 7, "next-week")]).await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(timers.clone().run(Arc::new(recorder(&timers)), stop.clone()));

        // Scheduled in this process and already due: fires without a wake.
        schedule(&db, &timers, vec![at(-1, "overdue")]).await;
        eventually("the overdue timer", WAIT, || async { (fired(&db).await.len() == 1).then_some(()) }).await;

        // Seven days of virtual time.
        for _ in 0..7 {
            clock.advance(chrono::Duration::days(1));
            timers.wake();
        }
        eventually("next week's timer", WAIT, || async { (fired(&db).await.len() == 2).then_some(()) }).await;
        assert_eq!(fired(&db).await[1], ("next-week".to_string(), false), "{}", temp.label());
        stop.cancel();
        task.await.unwrap();
    }
}

#[tokio::test]
async fn after_a_restart_what_came_due_while_down_fires_once_flagged_late() {
    for temp in TempDatabase::every_backend().await {
        let db = open(&temp).await;
        let clock = ManualClock::new(t0());
        // A window smaller than the backlog: it is reloaded as it drains.
        let settings = TimerSettings { window_limit: 16, batch: 7, ..fast() };
        let first = timers(&db, &clock, settings.clone());
        let list: Vec<Timer> = (0..100).map(|i| at(i, &format!("t{i:03}"))).collect();
        schedule(&db, &first, list).await;
        drop(first);

        // Down for two hours; then a new process starts.
        clock.advance(chrono::Duration::hours(2));
        let timers = timers(&db, &clock, settings);
        let stop = CancellationToken::new();
        let task = tokio::spawn(timers.clone().run(Arc::new(recorder(&timers)), stop.clone()));
        let all = eventually("the backlog", WAIT, || async {
            let all = fired(&db).await;
            (all.len() >= 100).then_some(all)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fired(&db).await.len(), 100, "{}: nothing twice", temp.label());
        assert!(all.iter().all(|(_, late)| *late), "{}: all flagged late", temp.label());
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{}: in due order", temp.label());

        // A timer due after the start is not late.
        schedule(&db, &timers, vec![at(130, "after-start")]).await;
        clock.advance(chrono::Duration::minutes(15));
        timers.wake();
        eventually("the timer due after the start", WAIT, || async {
            fired(&db).await.last().filter(|(k, _)| k == "after-start").cloned()
        })
        .await;
        assert!(!fired(&db).await[100].1, "{}", temp.label());
        stop.cancel();
        task.await.unwrap();
    }
}

#[tokio::test]
async fn two_replicas_on_postgres_fire_each_timer_once() {
    let Some(temp) = TempDatabase::postgres().await else { return };
    let db_a = open(&temp).await;
    let db_b = open(&temp).await;
    let clock = ManualClock::new(t0());
    let settings = TimerSettings { batch: 32, refresh: Duration::from_millis(20), ..TimerSettings::default() };
    let a = timers(&db_a, &clock, settings.clone());
    let b = timers(&db_b, &clock, settings);
    let n = 3000;
    let list: Vec<Timer> = (0..n).map(|i| at(i % 600, &format!("t{i}"))).collect();
    schedule(&db_a, &a, list).await;

    let stop = CancellationToken::new();
    let tasks = [
        tokio::spawn(a.clone().run(Arc::new(replica(&a, "a")), stop.clone())),
        tokio::spawn(b.clone().run(Arc::new(replica(&b, "b")), stop.clone())),
    ];
    for _ in 0..10 {
        clock.advance(chrono::Duration::minutes(60));
        a.wake();
        b.wake();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    eventually("every timer fired", WAIT, || async { (fired(&db_a).await.len() >= n as usize).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = fired_by(&db_a).await;
    let by_b = all.iter().filter(|(_, _, r)| r == "b").count();
    assert!(by_b > 0 && by_b < n as usize, "both replicas fired some ({by_b} of {n} by b)");
    let mut keys: Vec<String> = all.into_iter().map(|(k, _, _)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n as usize, "each timer fired exactly once");
    assert_eq!(fired(&db_a).await.len(), n as usize);
    stop.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(pending(&db_a).await, 0);
}

#[tokio::test]
async fn now_is_the_injected_clock() {
    // The loop never reads the wall clock for due times: a clock far in the
    // past fires nothing of today.
    let temp = TempDatabase::sqlite();
    let db = open(&temp).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap());
    let timers = timers(&db, &clock, fast());
    schedule(&db, &timers, vec![at(0, "today")]).await;
    assert_eq!(timers.fire_due(&recorder(&timers)).await.unwrap().fired, 0);
    clock.set(Utc::now());
    assert!(clock.now() > t0());
    assert_eq!(timers.fire_due(&recorder(&timers)).await.unwrap().fired, 1);
}
