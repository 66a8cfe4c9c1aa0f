//! The transactional outbox and its relay.
//!
//! A service that changes state writes the events about the change into
//! `kesu_outbox` in the same transaction; the relay publishes the rows with
//! `Nats-Msg-Id` = event id, waits for JetStream's acknowledgement and then
//! deletes them. A crash between publish and delete republishes the row,
//! which the stream's duplicate window (and consumers' inboxes) drop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use kesu_storage::{Backend, Database};
use sqlx::AnyConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Bus, BusError, Outgoing};

/// Adds an event to the outbox inside the caller's transaction (handlers use
/// [`crate::UnitOfWork::emit`]).
pub async fn enqueue(conn: &mut AnyConnection, msg: &Outgoing) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kesu_outbox (event_id, subject, msg_type, payload, traceparent, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&msg.msg_id)
    .bind(&msg.subject)
    .bind(&msg.msg_type)
    .bind(msg.payload.to_vec())
    .bind(msg.traceparent.as_deref())
    .bind(crate::now_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Rows per statement of [`enqueue_many`] (six parameters each).
pub const ENQUEUE_CHUNK: usize = Database::rows_per_statement(6);

/// Adds several events to the outbox inside the caller's transaction, in
/// one statement per [`ENQUEUE_CHUNK`] rows, in order.
pub async fn enqueue_many(conn: &mut AnyConnection, msgs: &[Outgoing]) -> Result<(), sqlx::Error> {
    let now = crate::now_millis();
    for chunk in msgs.chunks(ENQUEUE_CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = i * 6;
                format!("(${}, ${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6)
            })
            .collect();
        let sql = format!(
            "INSERT INTO kesu_outbox (event_id, subject, msg_type, payload, traceparent, created_at) VALUES {} \
             ON CONFLICT (event_id) DO NOTHING",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for msg in chunk {
            query = query
                .bind(msg.msg_id.as_str())
                .bind(msg.subject.as_str())
                .bind(msg.msg_type.as_str())
                .bind(msg.payload.to_vec())
                .bind(msg.traceparent.as_deref())
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Encodes a protobuf event and adds it to the outbox (with the current
/// trace context) inside the caller's transaction.
pub async fn enqueue_protobuf<M: prost::Message>(
    conn: &mut AnyConnection,
    subject: String,
    event_id: &str,
    msg_type: &str,
    message: &M,
) -> Result<(), sqlx::Error> {
    enqueue(conn, &Outgoing::protobuf(subject, event_id, msg_type, message)).await
}

/// Wakes the relay after a commit, so events go out at once rather than at
/// the next poll.
#[derive(Clone, Debug, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

type OutboxRow = (i64, String, String, String, Vec<u8>, Option<String>);

/// Rows the relay takes at a time; a stream's share of them fits in one
/// atomic batch.
const RELAY_BATCH: usize = 512;
const _: () = assert!(RELAY_BATCH <= crate::MAX_ATOMIC_BATCH);

/// Publishes outbox rows.
#[derive(Clone, Debug)]
pub struct OutboxRelay {
    db: Database,
    bus: Bus,
    waker: OutboxWaker,
    batch: usize,
    poll: Duration,
}

impl OutboxRelay {
    pub fn new(db: Database, bus: Bus) -> Self {
        Self { db, bus, waker: OutboxWaker::default(), batch: RELAY_BATCH, poll: Duration::from_millis(500) }
    }

    /// How often the relay looks without being woken (other replicas'
    /// rows, rows left by a crash).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn waker(&self) -> OutboxWaker {
        self.waker.clone()
    }

    /// Publishes until shut down, then drains what is left (bounded wait).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.drain_until(Some(&shutdown)).await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    self.bus.metrics().outbox_errors.inc();
                    tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay could not publish; will retry");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.waker.0.notified() => {}
                _ = tokio::time::sleep(self.poll) => self.update_pending().await,
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), self.drain()).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(published = n, "outbox flushed at shutdown"),
            Ok(Err(e)) => tracing::warn!(error = %e, "outbox not flushed at shutdown; rows stay for the next start"),
            Err(_) => tracing::warn!("outbox flush timed out at shutdown; rows stay for the next start"),
            _ => {}
        }
    }

    /// Publishes every row there is now; returns how many.
    pub async fn drain(&self) -> Result<usize, BusError> {
        self.drain_until(None).await
    }

    /// Like `drain`, but stops between batches once `stop` is cancelled.
    async fn drain_until(&self, stop: Option<&CancellationToken>) -> Result<usize, BusError> {
        let mut total = 0;
        loop {
            let n = self.relay_batch().await?;
            total += n;
            if n < self.batch || stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(total);
            }
        }
    }

    async fn update_pending(&self) {
        if let Ok(n) = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM kesu_outbox").fetch_one(self.db.pool()).await
        {
            self.bus.metrics().outbox_pending.set(n);
        }
    }

    async fn relay_batch(&self) -> Result<usize, BusError> {
        match self.db.backend() {
            Backend::Postgres => {
                // Replicas share the table: each claims rows the others have not.
                let mut tx = self.db.writer().begin().await?;
                // Its deletes need not wait for the WAL flush (see the
                // SQLite case below).
                sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
                let rows: Vec<OutboxRow> = sqlx::query_as(
                    "SELECT id, event_id, subject, msg_type, payload, traceparent FROM kesu_outbox
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(self.batch as i64)
                .fetch_all(&mut *tx)
                .await?;
                let (done, parked, failure) = self.publish(rows).await;
                park(&mut tx, &parked).await?;
                delete(&mut tx, &done).await?;
                tx.commit().await?;
                failure.map_or(Ok(done.len() + parked.len()), Err)
            }
            Backend::Sqlite => {
                // One writer per file: no lock needed while publishing.
                let rows: Vec<OutboxRow> = sqlx::query_as(
                    "SELECT id, event_id, subject, msg_type, payload, traceparent FROM kesu_outbox ORDER BY id LIMIT $1",
                )
                .bind(self.batch as i64)
                .fetch_all(self.db.pool())
                .await?;
                let (done, parked, failure) = self.publish(rows).await;
                if !parked.is_empty() {
                    let mut tx = self.db.begin().await?;
                    park(&mut tx, &parked).await?;
                    tx.commit().await?;
                }
                if !done.is_empty() {
                    // A lost delete only republishes rows the duplicate
                    // window and the inboxes drop: no fsync for it.
                    let mut write = self.db.relaxed_writer().await?;
                    delete(write.conn(), &done).await?;
                    write.finish().await?;
                }
                failure.map_or(Ok(done.len() + parked.len()), Err)
            }
        }
    }

    /// Publishes rows pipelined; returns the ids JetStream acknowledged, the
    /// ids of rows it can never accept (too large: parked, so the rows after
    /// them still go out), and the first other failure, if any.
    ///
    /// The rows of a stream that accepts atomic batches go as one batch
    /// when there are at least [`crate::MIN_ATOMIC_BATCH`] of them (one
    /// acknowledgement, and with `sync_interval: always` a few fsyncs
    /// instead of one per row); a batch the server refuses, e.g. because a
    /// crash left a row that was already published, goes again row by row,
    /// where the duplicate window drops just that row. Rows keep their order
    /// within a stream.
    async fn publish(&self, rows: Vec<OutboxRow>) -> (Vec<i64>, Vec<(i64, String)>, Option<BusError>) {
        let rows = rows.into_iter().map(|(id, event_id, subject, msg_type, payload, traceparent)| {
            (id, Outgoing { subject, msg_id: event_id, msg_type, payload: Bytes::from(payload), traceparent })
        });
        let Plan { batches: planned, mut singles } =
            plan(rows, |msg| self.bus.atomic_stream(&msg.subject), |msg| self.bus.fits_in_batch(msg));
        let mut batches = Vec::new();
        for (stream, ids, msgs) in planned {
            match self.bus.publish_atomic(&msgs).await {
                Ok(ack) => batches.push((stream, ids, msgs, ack)),
                Err(e) => {
                    tracing::debug!(stream, error = %e, "outbox batch not sent; publishing its rows one by one");
                    singles.extend(ids.into_iter().zip(msgs));
                }
            }
        }
        // A stream's rows are all in one batch or all here: in id order,
        // each stream's keep their order.
        singles.sort_unstable_by_key(|(id, _)| *id);
        let mut outcome = Outcome::default();
        self.publish_each(singles, &mut outcome).await;
        let mut refused = Vec::new();
        for (stream, ids, msgs, ack) in batches {
            match ack.await {
                Ok(_) => outcome.done.extend(ids),
                Err(e) => {
                    tracing::debug!(stream, error = %e, rows = ids.len(), "outbox batch refused; publishing its rows one by one");
                    refused.extend(ids.into_iter().zip(msgs));
                }
            }
        }
        if !refused.is_empty() {
            self.publish_each(refused, &mut outcome).await;
        }
        self.bus.metrics().outbox_published.inc_by(outcome.done.len() as u64);
        (outcome.done, outcome.parked, outcome.failure)
    }

    /// Publishes `rows` one message each, pipelined, into `outcome`.
    async fn publish_each(&self, rows: Vec<(i64, Outgoing)>, outcome: &mut Outcome) {
        let mut pending = Vec::with_capacity(rows.len());
        for (id, msg) in rows {
            let subject = msg.subject.clone();
            match self.bus.publish_pipelined(msg).await {
                Ok(ack) => pending.push((id, subject, ack)),
                Err(e @ BusError::TooLarge { .. }) => {
                    tracing::error!(outbox_id = id, error = %e, "outbox row can never be published; parked in kesu_outbox_parked");
                    self.bus.metrics().outbox_parked.inc();
                    outcome.parked.push((id, e.to_string()));
                }
                Err(e) => {
                    outcome.failure.get_or_insert(e);
                    break;
                }
            }
        }
        let results =
            join_all(pending.into_iter().map(|(id, subject, ack)| async move { (id, subject, ack.await) })).await;
        for (id, subject, result) in results {
            match result {
                Ok(_) => outcome.done.push(id),
                Err(e) => {
                    outcome.failure.get_or_insert(BusError::Publish { subject, error: e.to_string() });
                }
            }
        }
    }
}

/// How a relay round's rows go out: per stream that accepts atomic batches,
/// all its rows in one batch when there are at least
/// [`crate::MIN_ATOMIC_BATCH`] and every one fits; every other row one by
/// one, in id order.
struct Plan {
    batches: Vec<(&'static str, Vec<i64>, Vec<Outgoing>)>,
    singles: Vec<(i64, Outgoing)>,
}

/// Splits `rows` (in id order) by [`Plan`]'s rule. A stream with one row too
/// large for a batch goes wholly one by one, so that row is not published
/// after rows that came later.
fn plan(
    rows: impl IntoIterator<Item = (i64, Outgoing)>,
    atomic_stream: impl Fn(&Outgoing) -> Option<&'static str>,
    fits: impl Fn(&Outgoing) -> bool,
) -> Plan {
    // Per stream: whether every row fits, and the rows.
    type Group = (&'static str, bool, Vec<(i64, Outgoing)>);
    let mut groups: Vec<Group> = Vec::new();
    let mut singles = Vec::new();
    for (id, msg) in rows {
        let Some(stream) = atomic_stream(&msg) else {
            singles.push((id, msg));
            continue;
        };
        let fits = fits(&msg);
        match groups.iter_mut().find(|(s, _, _)| *s == stream) {
            Some((_, all_fit, group)) => {
                *all_fit &= fits;
                group.push((id, msg));
            }
            None => groups.push((stream, fits, vec![(id, msg)])),
        }
    }
    let mut batches = Vec::new();
    for (stream, all_fit, group) in groups {
        if all_fit && group.len() >= crate::MIN_ATOMIC_BATCH {
            let (ids, msgs) = group.into_iter().unzip();
            batches.push((stream, ids, msgs));
        } else {
            singles.extend(group);
        }
    }
    singles.sort_unstable_by_key(|(id, _)| *id);
    Plan { batches, singles }
}

/// What publishing a relay batch came to.
#[derive(Default)]
struct Outcome {
    /// Rows JetStream acknowledged.
    done: Vec<i64>,
    /// Rows it can never accept, with the reason.
    parked: Vec<(i64, String)>,
    /// The first other failure: the rows not in `done` stay for a retry.
    failure: Option<BusError>,
}

/// Moves rows that can never be published to `kesu_outbox_parked`.
async fn park(conn: &mut AnyConnection, rows: &[(i64, String)]) -> Result<(), sqlx::Error> {
    for (id, reason) in rows {
        sqlx::query(
            "INSERT INTO kesu_outbox_parked (id, event_id, subject, msg_type, payload, traceparent, created_at, parked_at, reason)
             SELECT id, event_id, subject, msg_type, payload, traceparent, created_at, $2, $3 FROM kesu_outbox WHERE id = $1",
        )
        .bind(*id)
        .bind(crate::now_millis())
        .bind(reason.as_str())
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM kesu_outbox WHERE id = $1").bind(*id).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn delete(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    // One statement for a whole relay batch.
    for chunk in ids.chunks(kesu_storage::MAX_PARAMS) {
        let sql = format!("DELETE FROM kesu_outbox WHERE id IN ({})", Database::placeholders(1, chunk.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, subject: &str, size: usize) -> (i64, Outgoing) {
        let msg = Outgoing {
            subject: subject.into(),
            msg_id: format!("e{id}"),
            msg_type: "test.Event".into(),
            payload: Bytes::from(vec![b'x'; size]),
            traceparent: None,
        };
        (id, msg)
    }

    fn stream_of(msg: &Outgoing) -> Option<&'static str> {
        match msg.subject.split('.').next() {
            Some("a") => Some("A"),
            Some("b") => Some("B"),
            Some("c") => Some("C"),
            _ => None,
        }
    }

    #[test]
    fn a_stream_goes_wholly_in_one_batch_or_wholly_one_by_one_in_id_order() {
        let min = crate::MIN_ATOMIC_BATCH as i64;
        let mut rows = Vec::new();
        let mut id = 0;
        for i in 0..min {
            // A: enough rows, all small; B: enough rows, its second too
            // large; C: too few; D: no atomic stream.
            for (subject, size) in [("a.x", 10), ("b.x", if i == 1 { 1000 } else { 10 }), ("d.x", 10)] {
                rows.push(row(id, subject, size));
                id += 1;
            }
        }
        rows.push(row(id, "c.x", 10));
        let plan = plan(rows, stream_of, |msg| msg.payload.len() < 100);

        assert_eq!(plan.batches.len(), 1);
        let (stream, ids, msgs) = &plan.batches[0];
        assert_eq!(*stream, "A");
        assert_eq!(ids.len() as i64, min);
        assert!(ids.windows(2).all(|w| w[0] < w[1]) && msgs.iter().all(|m| m.subject == "a.x"));

        let singles: Vec<i64> = plan.singles.iter().map(|(id, _)| *id).collect();
        assert!(singles.windows(2).all(|w| w[0] < w[1]), "one by one in id order: {singles:?}");
        let of = |subject: &str| plan.singles.iter().filter(|(_, m)| m.subject == subject).count() as i64;
        assert_eq!((of("b.x"), of("c.x"), of("d.x")), (min, 1, min), "B with its large row, C, D one by one");
    }
}
