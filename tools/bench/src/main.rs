//! `make bench`: for each nats-server configuration — durable
//! (`deploy/nats/durable.conf`, SQLite `synchronous=FULL`) and fast
//! (`fast.conf`, SQLite `NORMAL`) — on a private nats-server of that
//! configuration, measures
//!
//! 1. the baseline: raw JetStream publish and pull consume + ack of
//!    messages the size of a realistic `RawFeedback` ([`raw`]);
//! 2. end to end: feedback published on `feedback.raw.web` as fast as it
//!    goes, carried through all five services (in this process, through
//!    their library `start`), timed until analytics has counted it all; the
//!    broker's own counts of publishes and deliveries per feedback
//!    ([`server_stats`]) and the CPU time per feedback ([`cpu`]);
//! 3. latency raw → `ticket.evt.created` and raw → `notify.evt.requested`
//!    (p50/p99) at a fixed offered load for at least 30 s: 200/s durable,
//!    1,000/s fast, or 90 % of the end-to-end rate where that is lower.
//!
//! 4. notification on its own: accepted feedback and created tickets in,
//!    notices out ([`notifications`]); intake on its own: raw feedback in,
//!    `feedback.evt.accepted` out, against raw publish ([`intake`]).
//!
//! 5. sla-timer's durable timers: a million pending, fire lateness under a
//!    steady load, restart catch-up ([`sla_timers`]), in a child process
//!    of its own (so its RSS is the timers'); alone with
//!    `KESU_BENCH_ONLY=sla_timers`.
//!
//! `KESU_BENCH_ONLY=e2e` runs parts 1–3 only and prints them (for trying a
//! change; `latest.json` is left as it was).
//!
//! 6. analytics on its own: ingest against raw consume, and 90-day queries
//!    over a million tickets ([`analytics`]); `KESU_BENCH_ONLY=analytics`
//!    runs this part alone and adds it to an existing `latest.json`.
//!
//! It prints a table and writes `target/bench/latest.json` ([`report`]).
//! Settings: `KESU_BENCH_BACKEND` (`sqlite`, default, or `postgres`),
//! `KESU_BENCH_CONFIGS` (default `durable,fast`), `KESU_BENCH_N`
//! (feedbacks in the end-to-end phase; default 4,000 durable, 10,000 fast),
//! `KESU_BENCH_LATENCY_SECS` (default 30), `KESU_BENCH_RATE` (the latency
//! phase's offered load per second instead of the configuration's, to
//! look at latency under a lighter or heavier load).

mod analytics;
mod cpu;
mod handler_time;
mod intake;
mod load;
mod notifications;
mod raw;
mod report;
mod server_stats;
mod sla_timers;

/// The allocator of the `kesu` binary, so the services run here as there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kesu_proto::v1::analytics_service_client::AnalyticsServiceClient;
use kesu_system_tests::{Backend, SERVICES, TestSystem, feedback};
use kesu_testkit::NatsProfile;
use prost::Message;

use load::Arrivals;
use report::Figures;
use server_stats::Counts;

/// One configuration of broker and database durability.
struct Config {
    name: &'static str,
    nats: NatsProfile,
    /// `KESU_SQLITE_SYNCHRONOUS` for the services.
    sqlite_synchronous: &'static str,
    /// The latency phase's offered load.
    target_per_s: f64,
    default_n: usize,
}

const CONFIGS: [Config; 2] = [
    Config {
        name: "durable",
        nats: NatsProfile::Durable,
        sqlite_synchronous: "FULL",
        target_per_s: 200.0,
        default_n: 4_000,
    },
    Config {
        name: "fast",
        nats: NatsProfile::Fast,
        sqlite_synchronous: "NORMAL",
        target_per_s: 1_000.0,
        default_n: 10_000,
    },
];

struct Settings {
    backend: Backend,
    backend_name: String,
    n: Option<usize>,
    latency_secs: f64,
    /// `KESU_BENCH_RATE`: the latency phase's offered load.
    rate: Option<f64>,
    /// `KESU_BENCH_ONLY=e2e`: the raw baseline, end to end and latency only.
    e2e_only: bool,
}

fn env_number<T: std::str::FromStr>(key: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(key) {
        Ok(v) => v.trim().parse().map(Some).map_err(|_| anyhow::anyhow!("{key}={v:?} is not a number")),
        Err(_) => Ok(None),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let latest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/latest.json");
    if std::env::var("KESU_BENCH_ONLY").is_ok_and(|v| v == "sla_timers") {
        let figures = sla_timers::measure().await?;
        sla_timers::print(&figures);
        sla_timers::merge_json(&latest, &figures)?;
        return Ok(());
    }
    let backend_name = std::env::var("KESU_BENCH_BACKEND").unwrap_or_else(|_| "sqlite".into()).to_ascii_lowercase();
    let backend = match backend_name.as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" | "postgresql" => Backend::Postgres,
        other => bail!("KESU_BENCH_BACKEND={other:?}: expected sqlite or postgres"),
    };
    let wanted = std::env::var("KESU_BENCH_CONFIGS").unwrap_or_else(|_| "durable,fast".into());
    let mut configs = Vec::new();
    for name in wanted.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let config = CONFIGS.iter().find(|c| c.name == name);
        configs.push(config.with_context(|| format!("KESU_BENCH_CONFIGS: no configuration {name:?} (durable, fast)"))?);
    }
    let settings = Settings {
        backend,
        backend_name: backend_name.clone(),
        n: env_number("KESU_BENCH_N")?,
        latency_secs: env_number("KESU_BENCH_LATENCY_SECS")?.unwrap_or(30.0),
        rate: env_number("KESU_BENCH_RATE")?,
        e2e_only: std::env::var("KESU_BENCH_ONLY").is_ok_and(|v| v == "e2e"),
    };
    let payload = feedback::robot_vacuum("bench-0000000").encode_to_vec().len();
    println!(
        "kesu benchmark on {backend_name}: payload {payload} bytes, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    if std::env::var("KESU_BENCH_ONLY").is_ok_and(|v| v == "analytics") {
        return analytics_only(&configs, &settings).await;
    }

    let mut runs = Vec::new();
    let mut version = String::new();
    for config in configs {
        let (figures, server) =
            run(config, &settings).await.with_context(|| format!("configuration {}", config.name))?;
        version = server;
        runs.push(figures);
    }

    println!();
    println!("nats-server {version}, {backend_name}");
    print!("{}", report::table(&runs, settings.backend == Backend::Sqlite));
    if settings.e2e_only {
        println!("(KESU_BENCH_ONLY=e2e: target/bench/latest.json left as it was)");
        return Ok(());
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/latest.json");
    report::write_json(&path, &runs, &version, &settings.backend_name)?;
    // In a process of its own: its RSS figure is the timers', not what the
    // parts before left in this process's heap.
    let status = std::process::Command::new(std::env::current_exe()?)
        .env("KESU_BENCH_ONLY", "sla_timers")
        .status()
        .context("starting the sla_timers part")?;
    if !status.success() {
        bail!("the sla_timers part failed: {status}");
    }
    println!("\nfigures written to {}", path.canonicalize().unwrap_or(path).display());
    Ok(())
}

/// One configuration: its own nats-server and services. Returns the
/// figures and the server's version.
async fn run(config: &Config, settings: &Settings) -> anyhow::Result<(Figures, String)> {
    // Customer SMS held in quiet hours would stop the run at night: the
    // bench measures throughput whatever the hour.
    let any_hour = kesu_system_tests::journey::AnyHour::new();
    let [policy] = any_hour.env();
    let env = [("KESU_SQLITE_SYNCHRONOUS", config.sqlite_synchronous), policy];
    let system = TestSystem::try_start_on(config.nats, settings.backend, &SERVICES, &env)
        .await
        .context("PostgreSQL is not reachable at 127.0.0.1:5432")?;
    // As in production without an OTLP endpoint: no span per message (the
    // test set-up turns spans on to check propagation).
    kesu_telemetry::set_spans_exported(false);
    let version = system.client.server_info().version;
    let js = system.js.clone();
    println!(
        "\n[{}] nats-server {version} ({}.conf), SQLite synchronous={}",
        config.name, config.name, config.sqlite_synchronous
    );

    // 1. Baseline on the same server.
    let payload = feedback::robot_vacuum("bench-0000000").encode_to_vec().len();
    let (raw_n, raw_publish_per_s) = raw::publish(&js, 20_000, payload, Duration::from_secs(8)).await?;
    let raw_consume_per_s = raw::consume(&js, raw_n).await?;
    println!("  raw: {raw_n} messages, publish {raw_publish_per_s:.0}/s, consume + ack {raw_consume_per_s:.0}/s");

    // 2. End to end, saturating.
    let arrivals = Arrivals::watch(&system).await?;
    let mut analytics = AnalyticsServiceClient::with_interceptor(
        system.channel("analytics").await,
        system.bearer(kesu_system_tests::Role::Analyst),
    );
    let warmup = 300;
    load::publish(&system, "warm", warmup, None).await?;
    load::wait_through_analytics(&mut analytics, warmup as u64).await?;

    let n = settings.n.unwrap_or(config.default_n);
    let counts_before = Counts::read(&js).await?;
    let cpu_before = cpu::used_with(system.nats.pid())?;
    let handled_before = handler_time::Snapshot::read(&system).await?;
    let start = Instant::now();
    load::publish(&system, "full", n, None).await?;
    load::wait_through_analytics(&mut analytics, (warmup + n) as u64).await?;
    let e2e = start.elapsed();
    let cpu = cpu::used_with(system.nats.pid())? - cpu_before;
    let counts = Counts::read(&js).await?.since(counts_before);
    let e2e_per_s = n as f64 / e2e.as_secs_f64();
    println!("  end to end: {n} feedbacks in {:.1} s, {e2e_per_s:.0}/s", e2e.as_secs_f64());
    handler_time::Snapshot::read(&system).await?.print_since(&handled_before, n);

    // 3. Latency at a fixed offered load, or what the machine sustains.
    let sustained = (e2e_per_s * 0.9).floor().max(1.0);
    let target_per_s = settings.rate.unwrap_or(config.target_per_s);
    let rate = target_per_s.min(sustained);
    if rate < target_per_s {
        println!(
            "  this machine sustains about {e2e_per_s:.0}/s: offering {rate:.0}/s instead of {:.0}/s",
            target_per_s
        );
    }
    let paced_n = (rate * settings.latency_secs).ceil() as usize;
    let handled_before = handler_time::Snapshot::read(&system).await?;
    let paced_cpu_before = cpu::used_with(system.nats.pid())?;
    let paced_start = Instant::now();
    let sent = load::publish(&system, "paced", paced_n, Some(rate)).await?;
    let offered_per_s = paced_n as f64 / paced_start.elapsed().as_secs_f64();
    let latency_secs = paced_start.elapsed().as_secs_f64();
    load::wait_through_analytics(&mut analytics, (warmup + n + paced_n) as u64).await?;
    let latency = arrivals.latencies(&sent);
    let paced_cpu = cpu::used_with(system.nats.pid())? - paced_cpu_before;
    println!(
        "  latency phase CPU: {:.2} ms per feedback, {:.2} cores",
        paced_cpu.as_secs_f64() * 1000.0 / paced_n as f64,
        paced_cpu.as_secs_f64() / paced_start.elapsed().as_secs_f64()
    );
    handler_time::Snapshot::read(&system).await?.print_since(&handled_before, paced_n);
    println!(
        "  latency phase: {paced_n} feedbacks at {offered_per_s:.0}/s over {latency_secs:.1} s ({} tickets, {} notifications seen)",
        latency.ticket_created.count, latency.notification_requested.count
    );
    system.stop().await;

    let (notification, intake, analytics) = if settings.e2e_only {
        (None, None, None)
    } else {
        let (n4, i5, a6) = alone(config, settings, n).await?;
        (Some(n4), Some(i5), Some(a6))
    };

    let figures = Figures {
        name: config.name,
        sqlite_synchronous: config.sqlite_synchronous,
        raw_publish_per_s,
        raw_consume_per_s,
        feedbacks: n,
        e2e_per_s,
        publishes_per_feedback: counts.publishes as f64 / n as f64,
        consumes_per_feedback: counts.consumes as f64 / n as f64,
        cpu_per_feedback: cpu / n as u32,
        target_per_s,
        offered_per_s,
        latency_secs,
        latency,
        notification,
        intake,
        analytics,
    };
    Ok((figures, version))
}

/// Parts 4–6: notification, intake and analytics each on its own.
async fn alone(
    config: &Config,
    settings: &Settings,
    n: usize,
) -> anyhow::Result<(notifications::Figures, intake::Figures, analytics::Figures)> {
    // 4. notification on its own.
    let notification = notifications::measure(config.nats, settings.backend, config.sqlite_synchronous, n / 2).await?;
    println!(
        "  notification alone: {} tickets, {:.0} events/s in, {:.0} notices/s out ({:.4} of raw publish {:.0}/s)",
        notification.tickets,
        notification.events_per_s,
        notification.notices_per_s,
        notification.ratio(),
        notification.raw_publish_per_s
    );

    // 5. intake on its own.
    let intake = intake::measure(config.nats, settings.backend, config.sqlite_synchronous, n).await?;
    println!(
        "  intake alone: {} feedbacks, {:.0} accepted/s ({:.4} of raw publish {:.0}/s)",
        intake.feedbacks,
        intake.accepted_per_s,
        intake.ratio(),
        intake.raw_publish_per_s
    );

    // 6. analytics on its own.
    let analytics = analytics::measure(config.nats, settings.backend, config.sqlite_synchronous, n).await?;
    print_analytics(&analytics);

    Ok((notification, intake, analytics))
}

fn print_analytics(a: &analytics::Figures) {
    println!(
        "  analytics alone: {} events at {:.0}/s ({:.4} of raw consume {:.0}/s); 90 days of {} tickets: \
         rates p50 {:.1} ms p99 {:.1} ms, volume by day p50 {:.1} ms p99 {:.1} ms ({} queries); start-up \
         {:.0} ms (not timed), facts written in {:.1} s, rollups rebuilt in {:.1} s",
        a.events,
        a.events_per_s,
        a.ratio(),
        a.raw_consume_per_s,
        a.tickets,
        a.rates_p50.as_secs_f64() * 1000.0,
        a.rates_p99.as_secs_f64() * 1000.0,
        a.volume_p50.as_secs_f64() * 1000.0,
        a.volume_p99.as_secs_f64() * 1000.0,
        a.queries,
        a.startup.as_secs_f64() * 1000.0,
        a.fill.as_secs_f64(),
        a.rollup_rebuild.as_secs_f64()
    );
}

/// `KESU_BENCH_ONLY=analytics`: the analytics part alone, added under
/// `<config>.analytics` to `target/bench/latest.json`.
async fn analytics_only(configs: &[&Config], settings: &Settings) -> anyhow::Result<()> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/latest.json");
    let mut doc: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    for config in configs {
        println!("configuration {}: analytics alone", config.name);
        let n = settings.n.unwrap_or(config.default_n);
        let a = analytics::measure(config.nats, settings.backend, config.sqlite_synchronous, n).await?;
        print_analytics(&a);
        doc[config.name]["analytics"] = a.to_json();
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("\nfigures written to {}", path.display());
    Ok(())
}
