//! The unit of work: one database transaction in which a service applies
//! what it received and writes the events it emits to the outbox.
//!
//! The consume loop opens one for a whole batch of messages, claims each
//! message in the inbox, hands the messages to the handler one by one, and
//! commits once (group commit: one fsync per batch). Request paths (gRPC,
//! request/reply) open one per request with [`UnitOfWork::begin`] and
//! [`UnitOfWork::commit`]. Either way the relay is woken after the commit
//! when something was emitted.

use kesu_storage::Database;
use sqlx::{Any, AnyConnection, Transaction};

use crate::outbox::{self, OutboxWaker};
use crate::publish::Outgoing;

/// A write transaction plus the events emitted in it.
pub struct UnitOfWork {
    tx: Transaction<'static, Any>,
    emitted: usize,
    /// The `traceparent` of the message being applied, carried into what it
    /// emits when no span of ours is current (spans not exported).
    incoming_traceparent: Option<String>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork").field("emitted", &self.emitted).finish()
    }
}

impl UnitOfWork {
    /// Opens a write transaction (on SQLite: waits for the one writer).
    pub async fn begin(db: &Database) -> Result<Self, sqlx::Error> {
        Ok(Self { tx: db.begin().await?, emitted: 0, incoming_traceparent: None })
    }

    /// The transaction's connection, for the service's own statements.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Adds an event to the outbox in this transaction; it is published
    /// after the commit.
    pub async fn emit(&mut self, mut msg: Outgoing) -> Result<(), sqlx::Error> {
        if msg.traceparent.is_none() {
            msg.traceparent = self.incoming_traceparent.clone();
        }
        outbox::enqueue(&mut self.tx, &msg).await?;
        self.emitted += 1;
        Ok(())
    }

    /// Encodes a protobuf event and adds it to the outbox.
    pub async fn emit_protobuf<M: prost::Message>(
        &mut self,
        subject: String,
        event_id: &str,
        msg_type: &str,
        message: &M,
    ) -> Result<(), sqlx::Error> {
        self.emit(Outgoing::protobuf(subject, event_id, msg_type, message)).await
    }

    /// How many events were emitted so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// Commits and wakes the relay if anything was emitted.
    pub async fn commit(self, waker: &OutboxWaker) -> Result<(), sqlx::Error> {
        let emitted = self.emitted;
        self.tx.commit().await?;
        if emitted > 0 {
            waker.wake();
        }
        Ok(())
    }

    /// Abandons everything done in it.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }

    pub(crate) fn set_incoming_traceparent(&mut self, traceparent: Option<String>) {
        self.incoming_traceparent = traceparent;
    }
}
