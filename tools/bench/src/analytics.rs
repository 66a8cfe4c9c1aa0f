//! analytics on its own:
//!
//! 1. ingest: `KESU_BENCH_ANALYTICS_EVENTS` (default 100,000) ticket events
//!    (`ticket.evt.created`, distinct tickets, customers with three tickets
//!    each) stored in `TICKETS` before analytics starts; timed from the moment
//!    its consumer has begun delivering (service start-up — migrations,
//!    policy, consumer creation — is measured apart and left out; the events
//!    already acknowledged then are left out of the count) until it has none
//!    pending, against raw JetStream pull consume + ack of messages the same
//!    size on the same server (target ≥ 30 %);
//! 2. query: `KESU_BENCH_ANALYTICS_TICKETS` (default 1,000,000) ticket fact
//!    rows spread over 90 local days written straight into analytics'
//!    database, the repeat flags and per-day rollups then rebuilt from them by
//!    the service's own [`kesu_analytics::rollup::rebuild_from_facts`] (the
//!    state ingest would have left), then `GetRates` and `GetVolume` by day
//!    over those 90 whole local days, each `KESU_BENCH_ANALYTICS_QUERIES`
//!    times (default 10): p50 and p99 (target p99 < 100 ms).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use kesu_proto::v1::{AnalyticsQuery, Channel, Priority, TimeRange, VolumeRequest};
use kesu_system_tests::analytics::{AnalyticsUnderTest, FixtureTicket, Lifecycle};
use kesu_system_tests::{Backend, Role};
use kesu_testkit::NatsProfile;
use prost::Message;
use serde_json::{Value, json};

use crate::raw;

#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub events: usize,
    pub startup: Duration,
    pub fill: Duration,
    pub rollup_rebuild: Duration,
    pub raw_consume_per_s: f64,
    pub events_per_s: f64,
    pub tickets: usize,
    pub queries: usize,
    pub rates_p50: Duration,
    pub rates_p99: Duration,
    pub volume_p50: Duration,
    pub volume_p99: Duration,
}

impl Figures {
    pub fn ratio(self) -> f64 {
        self.events_per_s / self.raw_consume_per_s
    }

    pub fn to_json(self) -> Value {
        let r = |x: f64| (x * 10.0).round() / 10.0;
        let ms = |d: Duration| (d.as_secs_f64() * 100_000.0).round() / 100.0;
        json!({
            "events": self.events,
            "startup_ms": ms(self.startup),
            "fill_s": r(self.fill.as_secs_f64()),
            "rollup_rebuild_s": r(self.rollup_rebuild.as_secs_f64()),
            "raw_consume_per_s": r(self.raw_consume_per_s),
            "events_per_s": r(self.events_per_s),
            "ingest_ratio": (self.ratio() * 10_000.0).round() / 10_000.0,
            "query_tickets": self.tickets,
            "query_days": 90,
            "queries": self.queries,
            "rates_ms": { "p50": ms(self.rates_p50), "p99": ms(self.rates_p99) },
            "volume_by_day_ms": { "p50": ms(self.volume_p50), "p99": ms(self.volume_p99) },
        })
    }
}

fn env_usize(key: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(key) {
        Ok(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{key}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

const CHANNELS: [Channel; 5] = [Channel::Web, Channel::App, Channel::Phone, Channel::Wechat, Channel::Email];
const TYPES: [(&str, &str, &str); 5] = [
    ("logistics", "delivery_delay", "operations"),
    ("product_quality", "defect", "quality"),
    ("billing", "wrong_amount", "finance"),
    ("repair", "no_show", "after_sales"),
    ("consultation", "usage", "customer_service"),
];
const PRIORITIES: [Priority; 4] = [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];

fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub async fn measure(
    profile: NatsProfile,
    backend: Backend,
    sqlite_synchronous: &str,
    _n: usize,
) -> anyhow::Result<Figures> {
    let n = env_usize("KESU_BENCH_ANALYTICS_EVENTS", 100_000)?.max(1);
    let env = [("KESU_SQLITE_SYNCHRONOUS", sqlite_synchronous), ("KESU_ANALYTICS_REPORT_WEEKLY", "off")];
    let mut a = AnalyticsUnderTest::prepare(profile, backend, &env)
        .await
        .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not reachable at 127.0.0.1:5432"))?;
    kesu_telemetry::set_spans_exported(false);
    // Local midnight (the test policy's time zone): the 90 days are whole
    // local days, as a dashboard asks for them.
    let tz = chrono_tz::Asia::Shanghai;
    let start_of_range = tz.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    let ticket = |i: usize| {
        let (type_code, cause_code, department) = TYPES[i % TYPES.len()];
        FixtureTicket {
            id: Box::leak(format!("T-{i:010}").into_boxed_str()),
            received: start_of_range + chrono::Duration::seconds((i as i64 * 7_776_000) / n.max(1) as i64),
            channel: CHANNELS[i % CHANNELS.len()],
            type_code,
            cause_code,
            department,
            priority: PRIORITIES[i % PRIORITIES.len()],
            region: "east",
            tier: "normal",
            customer: Box::leak(format!("C{}", i % (n / 3).max(1)).into_boxed_str()),
        }
    };

    // 1. Raw consume baseline, messages the size of a ticket event.
    let size = Lifecycle { t: &ticket(0) }.created().encode_to_vec().len();
    let (stored, _) = raw::publish(&a.system.js, n, size, Duration::from_secs(30)).await?;
    let raw_consume_per_s = raw::consume(&a.system.js, stored).await?;

    // 2. Ingest: the events stored first, then analytics started.
    let mut acks = Vec::with_capacity(raw::WINDOW);
    for i in 0..n {
        let event = Lifecycle { t: &ticket(i) }.created();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.meta.as_ref().map(|m| m.event_id.as_str()).unwrap_or_default());
        headers.insert("Kesu-Type", "kesu.v1.TicketEvent");
        acks.push(a.system.js.publish_with_headers("ticket.evt.created", headers, event.encode_to_vec().into()).await?);
        if acks.len() >= raw::WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    // The timer starts once analytics' consumer has begun delivering: a
    // watcher polls the consumer while the service starts.
    let launched = Instant::now();
    let watcher = {
        let js = a.system.js.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(stream) = js.get_stream("TICKETS").await
                    && let Ok(info) = stream.consumer_info("analytics").await
                    && info.delivered.stream_sequence > 0
                {
                    return (Instant::now(), info.ack_floor.stream_sequence);
                }
                if launched.elapsed() > Duration::from_secs(120) {
                    return (Instant::now(), 0);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    a.start_analytics().await;
    let (start, acked_before) = watcher.await?;
    let startup = start - launched;
    let stream = a.system.js.get_stream("TICKETS").await?;
    loop {
        if let Ok(info) = stream.consumer_info("analytics").await
            && info.num_pending == 0
            && info.num_ack_pending == 0
            && info.delivered.stream_sequence >= n as u64
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("analytics did not apply {n} events within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events_per_s = (n as u64 - acked_before.min(n as u64)) as f64 / start.elapsed().as_secs_f64();
    crate::handler_time::Snapshot::read_of(&a.system, &["analytics"]).await?.print_per(&Default::default(), n, "event");

    // 3. Query over 90 days of `tickets` fact rows.
    let tickets = env_usize("KESU_BENCH_ANALYTICS_TICKETS", 1_000_000)?;
    let queries = env_usize("KESU_BENCH_ANALYTICS_QUERIES", 10)?.max(1);
    let db = a.system.database("analytics", kesu_analytics::MIGRATIONS).await;
    let t = Instant::now();
    fill_facts(&db, tickets, start_of_range.timestamp_millis(), tz).await?;
    let fill = t.elapsed();
    let t = Instant::now();
    kesu_analytics::rollup::rebuild_from_facts(&db).await?;
    let rollup_rebuild = t.elapsed();
    let range = Some(TimeRange {
        from: Some(kesu_domain::time::to_timestamp(start_of_range)),
        to: Some(kesu_domain::time::to_timestamp(start_of_range + chrono::Duration::days(90))),
    });
    let mut client = a.client(Role::Analyst).await;
    let (mut rates, mut volume) = (Vec::new(), Vec::new());
    for _ in 0..queries {
        let t = Instant::now();
        client.get_rates(AnalyticsQuery { range, filter: None }).await?;
        rates.push(t.elapsed());
        let t = Instant::now();
        client.get_volume(VolumeRequest { range, group_by: "day".into(), filter: None }).await?;
        volume.push(t.elapsed());
    }
    rates.sort();
    volume.sort();
    a.stop().await;
    Ok(Figures {
        events: n,
        startup,
        fill,
        rollup_rebuild,
        raw_consume_per_s,
        events_per_s,
        tickets,
        queries,
        rates_p50: nearest_rank(&rates, 0.5),
        rates_p99: nearest_rank(&rates, 0.99),
        volume_p50: nearest_rank(&volume, 0.5),
        volume_p99: nearest_rank(&volume, 0.99),
    })
}

/// `tickets` fact rows over the 90 days from `from_ms`, 32 per statement
/// (SQLite binds numbered parameters in time quadratic in their count).
async fn fill_facts(
    db: &kesu_storage::Database,
    tickets: usize,
    from_ms: i64,
    tz: chrono_tz::Tz,
) -> anyhow::Result<()> {
    const COLUMNS: usize = 15;
    let span_ms = 90 * 86_400_000i64;
    let mut i = 0;
    while i < tickets {
        let rows = (tickets - i).min(32);
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let b = r * COLUMNS;
                format!(
                    "(${}, 1, ${}, ${}, '2026-W40', ${}, ${}, ${}, ${}, ${}, ${}, 'east', 'normal', ${}, 'resolved', 0, \
                     ${}, ${}, 1, ${}, 0, '', ${}, ${}, 4, 4, 4, 4)",
                    b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13,
                    b + 14, b + 15
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO ticket_facts (ticket_id, version, received_ms, day, week, hour, channel, type_code, \
             cause_code, department, priority, region, tier, customer_key, status, is_open, responded_ms, \
             resolved_ms, ever_resolved, reopen_count, reclassified, common_issue_id, score_version, score, \
             response_speed, result, attitude, communication) VALUES {}",
            values.join(", ")
        );
        let mut q = kesu_storage::sqlx::query(kesu_storage::sqlx::AssertSqlSafe(sql));
        for r in 0..rows {
            let n = i + r;
            let at = from_ms + (n as i64 * span_ms) / tickets as i64;
            let (type_code, cause_code, department) = TYPES[n % TYPES.len()];
            let day = Utc.timestamp_millis_opt(at).unwrap().with_timezone(&tz).format("%Y-%m-%d").to_string();
            q = q
                .bind(format!("F-{n:010}"))
                .bind(at)
                .bind(day)
                .bind((n % 24) as i64)
                .bind(kesu_domain::channel_token(CHANNELS[n % CHANNELS.len()]).unwrap_or("web"))
                .bind(type_code)
                .bind(cause_code)
                .bind(department)
                .bind(["low", "medium", "high", "urgent"][n % 4])
                .bind(format!("K{}", n % (tickets / 3).max(1)))
                .bind(at + 1_800_000)
                .bind(at + 14_400_000)
                .bind((n % 20 == 0) as i64)
                .bind(1i64)
                .bind((1 + n % 5) as i64);
        }
        q.execute(db.writer()).await?;
        i += rows;
    }
    Ok(())
}
