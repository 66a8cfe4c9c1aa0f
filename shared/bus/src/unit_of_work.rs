//! The unit of work: one database transaction in which a service applies
//! what it received and writes the events it emits to the outbox.
//!
//! The consume loop opens one for a whole batch of messages, claims each
//! message in the inbox, hands the messages to the handler one by one, and
//! commits once (group commit: one fsync per batch). Request paths (gRPC,
//! request/reply) open one per request with [`UnitOfWork::begin`] and
//! [`UnitOfWork::commit`]. Either way the relay is woken after the commit
//! when something was emitted.

use std::any::Any as AnyType;

use kesu_storage::Database;
use sqlx::{Any, AnyConnection, Transaction};

use crate::outbox::{self, OutboxWaker};
use crate::publish::Outgoing;

/// A write transaction plus the events emitted in it.
pub struct UnitOfWork {
    tx: Transaction<'static, Any>,
    emitted: usize,
    /// Emitted events not yet written: written to the outbox in one
    /// statement per chunk before the commit (or before the connection is
    /// handed out again, so the handler's reads see them).
    pending: Vec<Outgoing>,
    /// What a handler accumulates over a batch (see [`UnitOfWork::batch_state`]).
    state: Option<Box<dyn AnyType + Send>>,
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
        Ok(Self { tx: db.begin().await?, emitted: 0, pending: Vec::new(), state: None, incoming_traceparent: None })
    }

    /// The transaction's connection, for the service's own statements.
    /// Events emitted so far are buffered: use [`UnitOfWork::flush`] first
    /// if the statements must see them in `kesu_outbox`.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Adds an event to the outbox in this transaction (buffered, written
    /// with the others of the batch in one statement); it is published
    /// after the commit.
    pub async fn emit(&mut self, mut msg: Outgoing) -> Result<(), sqlx::Error> {
        if msg.traceparent.is_none() {
            msg.traceparent = self.incoming_traceparent.clone();
        }
        self.pending.push(msg);
        self.emitted += 1;
        if self.pending.len() >= outbox::ENQUEUE_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the buffered events to the outbox.
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            outbox::enqueue_many(&mut self.tx, &pending).await?;
        }
        Ok(())
    }

    /// State a handler accumulates over the messages of one unit of work
    /// (e.g. counters summed and written once in
    /// [`crate::Handler::before_commit`]); created empty on first use.
    pub fn batch_state<T: Default + Send + 'static>(&mut self) -> &mut T {
        let fresh = !self.state.as_ref().is_some_and(|s| s.is::<T>());
        if fresh {
            self.state = Some(Box::new(T::default()));
        }
        self.state.as_mut().and_then(|s| s.downcast_mut::<T>()).expect("the state was just set to a T")
    }

    /// Takes the accumulated state out (for writing it).
    pub fn take_batch_state<T: Default + Send + 'static>(&mut self) -> T {
        match self.state.take().map(|s| s.downcast::<T>()) {
            Some(Ok(state)) => *state,
            Some(Err(other)) => {
                self.state = Some(other);
                T::default()
            }
            None => T::default(),
        }
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
    pub async fn commit(mut self, waker: &OutboxWaker) -> Result<(), sqlx::Error> {
        self.flush().await?;
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
