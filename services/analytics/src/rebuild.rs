//! Rebuilding the facts and rollups: empty them and replay every event the
//! four streams still hold, from their first message, through the same
//! handler and inbox as the live consumer (so the two never count a message
//! twice, and the service keeps running meanwhile). A stream that no longer
//! holds its first message (aged out after `STREAM_MAX_AGE`) would make the
//! rebuild lose facts: refused unless forced.

use std::sync::Arc;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy};
use futures::StreamExt;
use kesu_bus::subjects::StreamSpec;
use kesu_bus::{Bus, Delivery, HandleError, Handler, OutboxWaker, UnitOfWork};
use kesu_proto::v1::{RebuildResponse, RebuildStreamStats};
use kesu_storage::Database;

use crate::error::Error;

/// What a rebuild needs: the bus, the database and the live handler.
pub struct Rebuilder<H> {
    pub bus: Bus,
    pub db: Database,
    pub outbox: OutboxWaker,
    pub handler: Arc<H>,
    pub streams: Vec<StreamSpec>,
    pub durable: &'static str,
}

const BATCH: usize = 256;
const TABLES: [&str; 5] = ["daily_counts", "ticket_facts", "ticket_rollups", "sla_outcomes", "issue_links"];

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

impl<H: Handler> Rebuilder<H> {
    pub async fn run(&self, force: bool) -> Result<RebuildResponse, Error> {
        let js = self.bus.jetstream();
        // Where each stream stands now: the replay goes up to there.
        let mut bounds = Vec::new();
        for spec in &self.streams {
            let mut stream = js.get_stream(spec.name).await.map_err(|e| unavailable(spec.name, e))?;
            let info = stream.info().await.map_err(|e| unavailable(spec.name, e))?;
            let (first, last) = (info.state.first_sequence, info.state.last_sequence);
            if first > 1 && !force {
                return Err(Error::InvalidArgument {
                    field: "force",
                    message: format!(
                        "stream {} no longer holds its first {} message(s) (aged out); a rebuild would lose \
                         the facts they made: set force to rebuild from what it holds",
                        spec.name,
                        first - 1
                    ),
                });
            }
            bounds.push((spec, stream, first, last));
        }
        // Empty the rollups and the live consumer's inbox in one go.
        let mut work = UnitOfWork::begin(&self.db).await?;
        for table in TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(work.conn()).await?;
        }
        for spec in &self.streams {
            sqlx::query("DELETE FROM kesu_inbox WHERE consumer = $1")
                .bind(format!("{}:{}", spec.name, self.durable))
                .execute(work.conn())
                .await?;
        }
        work.commit(&self.outbox).await?;
        tracing::info!("analytics rebuild: rollups emptied, replaying the streams");

        let mut stats = Vec::new();
        for (spec, stream, first, last) in bounds {
            let mut s = RebuildStreamStats {
                stream: spec.name.to_string(),
                first_sequence: first,
                last_sequence: last,
                ..Default::default()
            };
            if last >= first && last > 0 {
                let consumer = stream
                    .create_consumer(OrderedConfig {
                        deliver_policy: DeliverPolicy::All,
                        replay_policy: ReplayPolicy::Instant,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| unavailable(spec.name, e))?;
                let mut messages = consumer.messages().await.map_err(|e| unavailable(spec.name, e))?;
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(message) = messages.next().await {
                    let message = message.map_err(|e| unavailable(spec.name, e))?;
                    let seq = message.info().map_err(|e| unavailable(spec.name, e))?.stream_sequence;
                    if seq > last {
                        break;
                    }
                    let id = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.as_str().to_string())
                        .filter(|id| !id.is_empty())
                        .unwrap_or_else(|| format!("{}@rebuild:{seq}", spec.name));
                    batch.push(Delivery {
                        subject: message.subject.to_string(),
                        payload: message.payload.clone(),
                        headers: message.headers.clone(),
                        message_id: id,
                        stream: spec.name.to_string(),
                        stream_sequence: seq,
                        delivered: 1,
                        traceparent: None,
                    });
                    if batch.len() == BATCH || seq == last {
                        self.apply(spec, &batch, &mut s).await?;
                        batch.clear();
                    }
                    if seq == last {
                        break;
                    }
                }
                if !batch.is_empty() {
                    self.apply(spec, &batch, &mut s).await?;
                }
            }
            tracing::info!(
                stream = spec.name,
                replayed = s.replayed,
                applied = s.applied,
                skipped = s.skipped,
                "analytics rebuild: stream replayed"
            );
            stats.push(s);
        }
        Ok(RebuildResponse { streams: stats })
    }

    /// One batch in one transaction, claimed in the live consumer's inbox.
    async fn apply(&self, spec: &StreamSpec, batch: &[Delivery], s: &mut RebuildStreamStats) -> Result<(), Error> {
        let mut work = UnitOfWork::begin(&self.db).await?;
        let inbox = format!("{}:{}", spec.name, self.durable);
        let ids: Vec<&str> = batch.iter().map(|d| d.message_id.as_str()).collect();
        let claimed = kesu_bus::inbox::claim_batch(work.conn(), &inbox, &ids).await?;
        s.replayed += batch.len() as u64;
        for d in batch.iter().filter(|d| claimed.contains(&d.message_id)) {
            match self.handler.handle(&mut work, d).await {
                Ok(()) => s.applied += 1,
                // Undecodable: it was dead-lettered by the live consumer too.
                Err(HandleError::Permanent(reason)) => {
                    tracing::warn!(stream = spec.name, seq = d.stream_sequence, %reason, "skipped in the rebuild");
                    s.skipped += 1;
                }
                Err(e) => {
                    let _ = work.rollback().await;
                    return Err(unavailable("rebuild", e));
                }
            }
        }
        if let Err(e) = self.handler.before_commit(&mut work).await {
            let _ = work.rollback().await;
            return Err(unavailable("rebuild", e));
        }
        work.commit(&self.outbox).await?;
        Ok(())
    }
}
