//! Applying a batch of messages: one transaction, one commit, acks after it.
//!
//! The whole batch is applied optimistically in one unit of work: each
//! message is claimed in the inbox (one statement for the batch) and handed
//! to the handler. If every handler succeeds the batch commits once and every
//! message is acked. If any handler fails, the transaction is rolled back and
//! the batch is applied again one message per transaction, so a message that
//! fails permanently is dead-lettered and a transient failure retried without
//! holding back the others. (No savepoints: PostgreSQL slows down badly with
//! hundreds of subtransactions in one transaction.)

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures::future::join_all;
use tracing::Instrument;

use crate::consume::{ConsumerContext, Declared, DedupKey, Delivery, HandleError, Handler};
use crate::dead_letter::dead_letter_sealed;
use crate::publish::{HEADER_MSG_ID, HEADER_TRACEPARENT, HEADER_TYPE};
use crate::unit_of_work::UnitOfWork;

/// One message of a batch and what became of it.
struct Item {
    /// Which of the consumer's streams it came from (index of its spec).
    source: usize,
    msg: jetstream::Message,
    delivery: Delivery,
    /// Another message of this batch has the same inbox key: acked with it.
    repeat: bool,
}

/// Applies one batch and settles every message in it (ack, nak or dead
/// letter); nothing is left unsettled but what a crash interrupts.
pub(crate) async fn apply<H: Handler>(
    ctx: &ConsumerContext<H>,
    infos: &[Declared],
    msgs: Vec<(usize, jetstream::Message)>,
) {
    let mut items = Vec::with_capacity(msgs.len());
    let mut seen = HashSet::with_capacity(msgs.len());
    for (source, msg) in msgs {
        let spec = &ctx.specs[source];
        let Some(delivery) = delivery_of(&msg, spec.dedup, &infos[source]) else {
            tracing::error!(subject = %msg.subject, "message without JetStream metadata; handing it back");
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            continue;
        };
        if delivery.delivered > spec.settings.max_deliver {
            let reason = format!(
                "delivered {} times without being acknowledged (the service stopped while handling it each time)",
                delivery.delivered
            );
            settle_dead_letter(ctx, source, &msg, &delivery, &reason).await;
            continue;
        }
        let repeat = !seen.insert((source, delivery.message_id.clone()));
        items.push(Item { source, msg, delivery, repeat });
    }
    if items.is_empty() {
        return;
    }
    let ack_wait = infos.iter().map(|i| i.ack_wait).min().unwrap_or(Duration::from_secs(10));
    let started = Instant::now();
    let all: Vec<&Item> = items.iter().collect();
    let whole = with_progress(apply_in_one_unit(ctx, &all), &items, ack_wait).await;
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = ctx.bus.metrics();
    for (source, spec) in ctx.specs.iter().enumerate() {
        let n = items.iter().filter(|i| i.source == source).count() as u64;
        if n == 0 {
            continue;
        }
        let stream = spec.stream.name.to_string();
        metrics.handle_seconds.get_or_create(&crate::metrics::StreamLabels { stream }).observe(elapsed);
        if whole.is_ok() {
            metrics.consumed_n(spec.stream.name, &spec.durable, "ok", n);
        }
    }
    match whole {
        Ok(()) => {
            for item in &items {
                if let Err(e) = item.msg.ack().await {
                    tracing::warn!(error = %e, "ack failed; the message will be redelivered and skipped by the inbox");
                }
            }
        }
        Err(failure) if items.len() == 1 => settle(ctx, &items[0], Err(failure)).await,
        Err(first_failure) => {
            tracing::debug!(error = %first_failure, batch = items.len(), "batch failed; applying its messages one by one");
            for item in &items {
                let result = with_progress(apply_in_one_unit(ctx, &[item]), std::slice::from_ref(item), ack_wait).await;
                settle(ctx, item, result).await;
            }
        }
    }
}

/// The given messages in one transaction (the whole batch, or one message
/// after its batch failed); the first error rolls it all back.
async fn apply_in_one_unit<H: Handler>(ctx: &ConsumerContext<H>, items: &[&Item]) -> Result<(), HandleError> {
    if items.iter().all(|i| i.repeat) {
        return Ok(());
    }
    let mut work = UnitOfWork::begin(&ctx.db).await?;
    let applied = async {
        // Claimed per source: each stream has its own inbox.
        let mut claimed = HashSet::new();
        for (source, spec) in ctx.specs.iter().enumerate() {
            let ids: Vec<&str> = items
                .iter()
                .filter(|i| i.source == source && !i.repeat)
                .map(|i| i.delivery.message_id.as_str())
                .collect();
            if !ids.is_empty() {
                let new = crate::inbox::claim_batch(work.conn(), &spec.inbox_name(), &ids).await?;
                claimed.extend(new.into_iter().map(|id| (source, id)));
            }
        }
        for item in items.iter().filter(|i| !i.repeat && claimed.contains(&(i.source, i.delivery.message_id.clone()))) {
            handle(ctx, &mut work, &item.delivery).await?;
        }
        ctx.handler.before_commit(&mut work).await
    }
    .await;
    match applied {
        Ok(()) => Ok(work.commit(&ctx.waker).await?),
        Err(e) => {
            let _ = work.rollback().await;
            Err(e)
        }
    }
}

/// Hands one message to the handler. A span per message only when spans are
/// exported; otherwise the incoming trace context is carried as it is.
async fn handle<H: Handler>(ctx: &ConsumerContext<H>, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
    if kesu_telemetry::spans_exported() {
        work.set_incoming_traceparent(None);
        let span = tracing::info_span!(
            "consume",
            service = ctx.bus.service(),
            stream = %d.stream,
            subject = %d.subject,
            seq = d.stream_sequence,
            delivered = d.delivered,
            msg_type = d.header(HEADER_TYPE).unwrap_or(""),
        );
        if let Some(tp) = &d.traceparent {
            kesu_telemetry::set_parent_from_traceparent(&span, tp);
        }
        ctx.handler.handle(work, d).instrument(span).await
    } else {
        let traceparent = d.traceparent.clone().unwrap_or_else(kesu_telemetry::new_traceparent);
        work.set_incoming_traceparent(Some(traceparent));
        ctx.handler.handle(work, d).await
    }
}

/// Acks, naks or dead-letters one message by its own result.
async fn settle<H: Handler>(ctx: &ConsumerContext<H>, item: &Item, result: Result<(), HandleError>) {
    let (spec, d, metrics) = (&ctx.specs[item.source], &item.delivery, ctx.bus.metrics());
    match result {
        Ok(()) => {
            if let Err(e) = item.msg.ack().await {
                tracing::warn!(error = %e, "ack failed; the message will be redelivered and skipped by the inbox");
            }
            metrics.consumed(&d.stream, &spec.durable, "ok");
        }
        Err(HandleError::Permanent(reason)) => {
            tracing::warn!(stream = %d.stream, seq = d.stream_sequence, error = %reason,
                "message cannot be handled; dead-lettering it");
            settle_dead_letter(ctx, item.source, &item.msg, d, &reason).await;
        }
        Err(HandleError::Transient(reason)) if d.delivered >= spec.settings.max_deliver => {
            tracing::warn!(stream = %d.stream, seq = d.stream_sequence, error = %reason,
                "message failed on its last delivery; dead-lettering it");
            let reason = format!("failed {} deliveries; last error: {reason}", d.delivered);
            settle_dead_letter(ctx, item.source, &item.msg, d, &reason).await;
        }
        Err(HandleError::Transient(reason)) => {
            let delay = retry_delay(spec.settings.retry_delay, d.delivered);
            tracing::warn!(stream = %d.stream, seq = d.stream_sequence, error = %reason, retry_in = ?delay,
                "handling failed; will retry");
            let _ = item.msg.ack_with(AckKind::Nak(Some(delay))).await;
            metrics.consumed(&d.stream, &spec.durable, "retried");
        }
    }
}

/// Dead-letters and terminates; if the dead letter cannot be written, naks
/// so nothing is lost.
async fn settle_dead_letter<H: Handler>(
    ctx: &ConsumerContext<H>,
    source: usize,
    msg: &jetstream::Message,
    delivery: &Delivery,
    reason: &str,
) {
    let (bus, durable) = (&ctx.bus, &ctx.specs[source].durable);
    let seal = ctx.specs[source].seal.as_ref();
    match dead_letter_sealed(bus, durable, delivery, reason, seal).await {
        Ok(()) => {
            let _ = msg.ack_with(AckKind::Term).await;
            bus.metrics().consumed(&delivery.stream, durable, "dead_lettered");
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write the dead letter; the message stays for redelivery");
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            bus.metrics().consumed(&delivery.stream, durable, "retried");
        }
    }
}

/// Runs `work`, telling the server the messages are still being worked on
/// so they are not redelivered to another replica meanwhile.
async fn with_progress<F: Future>(work: F, items: &[Item], ack_wait: Duration) -> F::Output {
    tokio::pin!(work);
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = tick.tick() => {
                join_all(items.iter().map(|i| i.msg.ack_with(AckKind::Progress))).await;
            }
        }
    }
}

/// The delivery, or `None` when the message carries no JetStream metadata
/// (then it cannot be keyed in the inbox and is handed back).
fn delivery_of(msg: &jetstream::Message, dedup: DedupKey, info: &Declared) -> Option<Delivery> {
    let meta = msg.info().ok()?;
    let (stream, sequence, delivered) = (meta.stream.to_string(), meta.stream_sequence, meta.delivered.max(1) as u32);
    let header = |name: &str| msg.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
    let message_id = match dedup {
        DedupKey::MessageId => header(HEADER_MSG_ID).filter(|id| !id.is_empty()),
        DedupKey::StreamSequence => None,
    }
    .unwrap_or_else(|| format!("{stream}@{}:{sequence}", info.stream_epoch));
    Some(Delivery {
        subject: msg.subject.to_string(),
        payload: msg.payload.clone(),
        headers: msg.headers.clone(),
        message_id,
        stream,
        stream_sequence: sequence,
        delivered,
        traceparent: header(HEADER_TRACEPARENT).filter(|tp| kesu_telemetry::trace_id_of(tp).is_some()),
    })
}

fn retry_delay(first: Duration, delivered: u32) -> Duration {
    let factor = 2u32.saturating_pow(delivered.saturating_sub(1).min(16));
    (first * factor).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_cap() {
        let first = Duration::from_secs(1);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(first, 3), Duration::from_secs(4));
        assert_eq!(retry_delay(first, 30), Duration::from_secs(300));
    }
}
