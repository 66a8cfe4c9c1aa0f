//! `make bench`: in one run on one nats-server, measures
//!
//! 1. the baseline: raw JetStream publish rate of messages the size of a
//!    realistic `RawFeedback` (async publish with `Nats-Msg-Id`, 1,024 acks
//!    in flight), and pull-consume + ack of them;
//! 2. end to end: feedback published on `feedback.raw.web` and carried
//!    through all five services (intake → routing → sla-timer →
//!    notification → analytics, SQLite, one process) as fast as they go;
//! 3. latency raw feedback → `ticket.evt.created` (p50/p99) at a steady
//!    offered load of half the measured end-to-end rate, and under the
//!    saturating run.
//!
//! Figures are printed as ratios against the baseline of the same run.
//! `KESU_BENCH_N` sets the number of feedbacks (default 10,000).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use kesu_proto::v1::analytics_service_client::AnalyticsServiceClient;
use kesu_proto::v1::{GetSummaryRequest, RawFeedback, TicketEvent};
use kesu_system_tests::{TestSystem, feedback};
use prost::Message;

const WINDOW: usize = 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("KESU_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let system = TestSystem::start().await;
    let js = system.js.clone();
    let sample = feedback::robot_vacuum("bench-0000000").encode_to_vec();
    println!("kesu benchmark: {n} feedbacks, payload {} bytes, nats-server {}", sample.len(), nats_version());
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // 1. Baseline on the same server.
    let baseline_n = n.max(20_000);
    let publish_rate = baseline_publish(&js, baseline_n, sample.len()).await?;
    let consume_rate = baseline_consume(&js, baseline_n).await?;

    // 2. End to end, saturating.
    let arrivals = Arc::new(Mutex::new(HashMap::<String, Instant>::new()));
    watch_tickets(&system, arrivals.clone()).await?;
    let mut analytics = AnalyticsServiceClient::with_interceptor(
        system.channel("analytics").await,
        system.bearer(kesu_system_tests::Role::Analyst),
    );
    let warmup = 300;
    publish_feedback(&system, "warm", warmup, None).await?;
    wait_through_analytics(&mut analytics, warmup as u64).await?;

    let start = Instant::now();
    let sent = publish_feedback(&system, "full", n, None).await?;
    let published_in = start.elapsed();
    wait_through_analytics(&mut analytics, (warmup + n) as u64).await?;
    let e2e = start.elapsed();
    let e2e_rate = n as f64 / e2e.as_secs_f64();
    let saturated = latencies(&sent, &arrivals);

    // 3. Latency at a steady half of that rate.
    let paced_rate = (e2e_rate / 2.0).max(1.0);
    let paced_n = ((paced_rate * 5.0) as usize).clamp(200, n);
    let sent = publish_feedback(&system, "paced", paced_n, Some(paced_rate)).await?;
    wait_through_analytics(&mut analytics, (warmup + n + paced_n) as u64).await?;
    let paced = latencies(&sent, &arrivals);

    let rss = peak_rss_mib();
    println!();
    println!("| measure | value | vs baseline publish |");
    println!("|---|---|---|");
    println!("| raw JetStream publish (baseline) | {publish_rate:.0} msg/s | 1.00 |");
    println!("| raw JetStream pull consume + ack | {consume_rate:.0} msg/s | {:.2} |", consume_rate / publish_rate);
    println!("| feedback through all five services | {e2e_rate:.0} feedback/s | {:.3} |", e2e_rate / publish_rate);
    println!("| (publishing the {n} took) | {:.2} s | |", published_in.as_secs_f64());
    println!(
        "| latency raw → ticket.created at {paced_rate:.0}/s (p50 / p99) | {} / {} ms | |",
        ms(paced.0),
        ms(paced.1)
    );
    println!("| latency raw → ticket.created saturated (p50 / p99) | {} / {} ms | |", ms(saturated.0), ms(saturated.1));
    println!("| peak RSS, bench + five services in one process | {rss:.0} MiB | |");
    system.stop().await;
    Ok(())
}

fn nats_version() -> String {
    kesu_testkit::find_nats_server()
        .ok()
        .and_then(|path| std::process::Command::new(path).arg("--version").output().ok())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

async fn baseline_publish(js: &jetstream::Context, n: usize, size: usize) -> anyhow::Result<f64> {
    js.create_stream(stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let start = Instant::now();
    let mut acks = Vec::with_capacity(WINDOW);
    for i in 0..n {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("bench-{i}").as_str());
        acks.push(js.publish_with_headers("bench.raw", headers, payload.clone()).await?);
        if acks.len() == WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn baseline_consume(js: &jetstream::Context, n: usize) -> anyhow::Result<f64> {
    let stream = js.get_stream("BENCH").await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let start = Instant::now();
    let mut messages = consumer.stream().max_messages_per_batch(256).messages().await?;
    let mut seen = 0;
    while seen < n {
        let msg = messages.next().await.ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        msg.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        seen += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Publishes `n` feedbacks (pipelined, or paced at `rate` per second) and
/// returns when each was sent, by external id.
async fn publish_feedback(
    system: &TestSystem,
    tag: &str,
    n: usize,
    rate: Option<f64>,
) -> anyhow::Result<HashMap<String, Instant>> {
    let template: RawFeedback = feedback::robot_vacuum("x");
    let mut sent = HashMap::with_capacity(n);
    let mut acks = Vec::with_capacity(WINDOW);
    let start = Instant::now();
    for i in 0..n {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let mut raw = template.clone();
        raw.external_id = format!("bench-{tag}-{i:07}");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", raw.external_id.as_str());
        sent.insert(raw.external_id.clone(), Instant::now());
        acks.push(system.js.publish_with_headers("feedback.raw.web", headers, raw.encode_to_vec().into()).await?);
        if acks.len() == WINDOW || rate.is_some() {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok(sent)
}

async fn watch_tickets(system: &TestSystem, arrivals: Arc<Mutex<HashMap<String, Instant>>>) -> anyhow::Result<()> {
    let mut sub = system.client.subscribe("ticket.evt.created").await?;
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let now = Instant::now();
            if let Ok(event) = TicketEvent::decode(msg.payload.as_ref())
                && let Some(ticket) = event.ticket
            {
                arrivals.lock().expect("not poisoned").insert(ticket.external_id, now);
            }
        }
    });
    Ok(())
}

/// Waits until analytics has counted `total` notification requests: the
/// feedback has gone through every service.
async fn wait_through_analytics(
    analytics: &mut AnalyticsServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, kesu_system_tests::Bearer>,
    >,
    total: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let s = analytics.get_summary(GetSummaryRequest { range: None }).await?.into_inner();
        if s.notifications_requested >= total && s.tickets_created >= total && s.sla_clocks_armed >= 2 * total {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {total} through after 15 minutes",
            s.notifications_requested
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn latencies(sent: &HashMap<String, Instant>, arrivals: &Mutex<HashMap<String, Instant>>) -> (Duration, Duration) {
    let arrivals = arrivals.lock().expect("not poisoned");
    let mut all: Vec<Duration> =
        sent.iter().filter_map(|(id, at)| arrivals.get(id).map(|done| done.saturating_duration_since(*at))).collect();
    all.sort();
    if all.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (pick(0.50), pick(0.99))
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
