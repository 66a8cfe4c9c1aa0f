//! The baseline: raw JetStream publish and pull-consume rates on the same
//! server as the end-to-end run, with messages the size of a realistic
//! `RawFeedback`, in a stream (`BENCH`) no service reads.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;

/// Acks in flight while publishing.
pub const WINDOW: usize = 1024;

pub const STREAM: &str = "BENCH";

/// Async publish with `Nats-Msg-Id`, [`WINDOW`] acks in flight, until `n`
/// messages or `limit` has passed. Returns (messages, per second).
pub async fn publish(js: &jetstream::Context, n: usize, size: usize, limit: Duration) -> anyhow::Result<(usize, f64)> {
    js.create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["bench.>".into()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let start = Instant::now();
    let mut acks = Vec::with_capacity(WINDOW);
    let mut sent = 0;
    while sent < n && (sent % WINDOW != 0 || start.elapsed() < limit) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("bench-{sent}").as_str());
        acks.push(js.publish_with_headers("bench.raw", headers, payload.clone()).await?);
        sent += 1;
        if acks.len() == WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok((sent, sent as f64 / start.elapsed().as_secs_f64()))
}

/// A durable pull consumer reading and acking the `n` messages
/// [`publish`] stored. Returns per second.
pub async fn consume(js: &jetstream::Context, n: usize) -> anyhow::Result<f64> {
    let stream = js.get_stream(STREAM).await?;
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
