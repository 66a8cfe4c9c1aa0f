//! The ticket lifecycle: staff (and customers, for ratings) act on tickets.
//!
//! Every action runs in one unit of work: the ticket is read, the caller's
//! scope and the version they saw are checked, the state machine
//! ([`state`]) decides, and each change becomes one ticket event with the
//! ticket's new version, written to the outbox with the history entry and
//! the updated row in the same transaction. The row is updated only if
//! nobody changed it meanwhile (compare-and-set on the version), so two
//! replicas never both apply a change to the same version.

pub mod archive;
pub mod closing;
pub mod handling;
pub mod rating;
pub mod state;
pub mod steering;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kesu_auth::{Role, Staff};
use kesu_bus::{OutboxWaker, UnitOfWork, event_meta, subjects};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_domain::{Clock, Policy};
use kesu_proto::type_names;
use kesu_proto::v1::{Priority, Ticket, TicketEvent, TicketRef, TicketStatus, ticket_event};
use kesu_storage::Database;

use crate::error::Error;
use crate::store;
use crate::tickets::status_name;
use state::{Action, Actor, Lifecycle, Transition};

/// What every action needs.
pub struct Context {
    pub db: Database,
    pub outbox: OutboxWaker,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
}

/// Who acts: a staff member from the token, or a customer (ratings).
#[derive(Debug, Clone)]
pub enum Caller {
    Staff(Staff),
    Customer,
    /// Routing itself (e.g. linking a report to a common issue).
    System,
}

impl Caller {
    /// `actor` in history and events: the staff id, or "customer".
    pub fn actor(&self) -> &str {
        match self {
            Caller::Staff(s) => &s.id,
            Caller::Customer => "customer",
            Caller::System => "system",
        }
    }

    fn state_actor(&self) -> Actor {
        Actor { supervisor: matches!(self, Caller::Staff(s) if s.role == Role::Supervisor) }
    }
}

/// Whether `staff` may act on `ticket`: a handler on tickets assigned to
/// them (primary or co-handler), a department manager on their
/// department's; the other roles the table lets through act on any ticket.
pub fn in_scope(staff: &Staff, ticket: &Ticket) -> bool {
    match staff.role {
        Role::Handler => ticket.handler == staff.id || ticket.co_handlers.contains(&staff.id),
        Role::DepartmentManager => !staff.department.is_empty() && ticket.department == staff.department,
        _ => true,
    }
}

/// The transaction a session works in: its own (gRPC, request/reply) or
/// the consumer's batch (changes made while applying an event).
enum Work<'c> {
    Own(UnitOfWork),
    Batch(&'c mut UnitOfWork),
}

impl Work<'_> {
    fn get(&mut self) -> &mut UnitOfWork {
        match self {
            Work::Own(w) => w,
            Work::Batch(w) => w,
        }
    }
}

/// One action on one ticket, in one transaction.
pub struct Session<'c> {
    ctx: &'c Context,
    work: Work<'c>,
    pub ticket: Ticket,
    loaded_version: u64,
    caller: Caller,
    pub now: DateTime<Utc>,
    changes: Vec<(String, TicketEvent, String)>,
}

impl<'c> Session<'c> {
    /// Opens the ticket `r` names for `caller`: not found, out of scope and
    /// a stale `expected_version` are refused here.
    pub async fn open(ctx: &'c Context, caller: Caller, r: Option<&TicketRef>) -> Result<Self, Error> {
        let r = r.ok_or_else(|| Error::InvalidArgument { field: "ticket", message: "required".into() })?;
        if r.ticket_id.is_empty() {
            return Err(Error::InvalidArgument { field: "ticket.ticket_id", message: "required".into() });
        }
        let mut work = UnitOfWork::begin(&ctx.db).await?;
        let ticket = store::get_ticket_in(work.conn(), &r.ticket_id).await?.ok_or(Error::NotFound("no such ticket"))?;
        if let Caller::Staff(staff) = &caller
            && !in_scope(staff, &ticket)
        {
            return Err(Error::NotYours(
                "a handler acts on the tickets assigned to them, a department manager on their department's",
            ));
        }
        if r.expected_version != 0 && r.expected_version != ticket.version {
            return Err(Error::Conflict { current: ticket.version, expected: r.expected_version });
        }
        let loaded_version = ticket.version;
        let work = Work::Own(work);
        Ok(Self { ctx, work, ticket, loaded_version, caller, now: ctx.clock.now(), changes: Vec::new() })
    }

    /// Opens a ticket inside a consumer's unit of work (system changes).
    pub async fn within(ctx: &'c Context, work: &'c mut UnitOfWork, caller: Caller, ticket: Ticket) -> Self {
        let loaded_version = ticket.version;
        let now = ctx.clock.now();
        Self { ctx, work: Work::Batch(work), ticket, loaded_version, caller, now, changes: Vec::new() }
    }

    pub fn policy(&self) -> &Policy {
        &self.ctx.policy
    }

    /// The transaction, for the action's own rows.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.work.get().conn()
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The state machine's view of the ticket.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            status: TicketStatus::try_from(self.ticket.status).unwrap_or_default(),
            version: self.ticket.version,
            reopen_count: self.ticket.reopen_count,
            has_handler: !self.ticket.handler.is_empty(),
            follow_up_due: self.ticket.priority != Priority::Low as i32,
        }
    }

    /// Asks the state machine; refused → FAILED_PRECONDITION naming the status.
    pub fn decide(&self, action: Action) -> Result<Transition, Error> {
        self.lifecycle().decide(action, self.caller.state_actor()).map_err(|r| Error::FailedPrecondition(r.to_string()))
    }

    /// Records one change: the ticket (already edited) gets the next
    /// version; its history entry and event are written at commit.
    pub fn record(&mut self, kind: &str, event: ticket_event::Kind, summary: String) {
        self.ticket.version += 1;
        self.ticket.updated_at = Some(to_timestamp(self.now));
        let correlation = format!(
            "{}:{}",
            kesu_proto::v1::Channel::try_from(self.ticket.channel)
                .ok()
                .and_then(kesu_domain::channel_token)
                .unwrap_or("unknown"),
            self.ticket.external_id
        );
        let meta = event_meta(
            crate::SERVICE,
            &self.ticket.ticket_id,
            self.ticket.version,
            to_timestamp(self.now),
            "",
            &correlation,
        );
        let out = TicketEvent {
            meta: Some(meta),
            ticket: Some(self.ticket.clone()),
            actor: self.caller.actor().to_string(),
            kind: Some(event),
        };
        self.changes.push((kind.to_string(), out, summary));
    }

    /// Writes the ticket (only if still at the version read), its history
    /// and events, and commits. The ticket after the action.
    pub async fn commit(mut self) -> Result<Ticket, Error> {
        let written = self.write().await;
        let Work::Own(work) = self.work else {
            return written.map(|()| self.ticket);
        };
        match written {
            Ok(()) if !self.changes.is_empty() => work.commit(&self.ctx.outbox).await?,
            Ok(()) => work.rollback().await?,
            Err(e) => {
                work.rollback().await?;
                return Err(e);
            }
        }
        if !self.changes.is_empty() {
            tracing::debug!(
                ticket_id = %self.ticket.ticket_id,
                version = self.ticket.version,
                status = %status_name(self.ticket.status),
                "ticket changed"
            );
        }
        Ok(self.ticket)
    }

    /// The row (compare-and-set on the version), history and events.
    async fn write(&mut self) -> Result<(), Error> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let at = to_millis(self.now);
        let work = self.work.get();
        if !store::update_ticket(work.conn(), &self.ticket, self.loaded_version, at).await? {
            return Err(Error::ChangedMeanwhile);
        }
        for (kind, event, summary) in &self.changes {
            let version = event.meta.as_ref().map(|m| m.aggregate_version).unwrap_or_default();
            let actor = self.caller.actor();
            store::insert_history(work.conn(), &self.ticket.ticket_id, version, kind, actor, at, summary).await?;
            let event_id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
            work.emit_protobuf(subjects::ticket_event(kind), &event_id, type_names::TICKET_EVENT, event).await?;
        }
        Ok(())
    }
}

/// Runs an action (an `async` block), again from the start when someone
/// else changed the ticket meanwhile and the caller did not pin a version
/// (at most 3 tries).
macro_rules! retrying {
    ($expected:expr, $action:expr) => {{
        let mut tries = 0;
        loop {
            tries += 1;
            match $action {
                Err($crate::error::Error::ChangedMeanwhile) if $expected == 0 && tries < 3 => continue,
                other => break other,
            }
        }
    }};
}
pub(crate) use retrying;

/// The version the caller saw (0: don't check).
pub fn expected(r: Option<&TicketRef>) -> u64 {
    r.map(|r| r.expected_version).unwrap_or_default()
}

/// A required text field, trimmed; empty → INVALID_ARGUMENT naming it.
pub fn required(field: &'static str, value: &str, why: &str) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::InvalidArgument { field, message: why.to_string() });
    }
    if v.chars().count() > 4000 {
        return Err(Error::InvalidArgument { field, message: "at most 4000 characters".into() });
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(handler: &str, co: &[&str], department: &str) -> Ticket {
        Ticket {
            handler: handler.into(),
            co_handlers: co.iter().map(|s| s.to_string()).collect(),
            department: department.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_handler_acts_on_their_own_tickets_a_manager_on_their_departments() {
        let t = ticket("s-as-01", &["s-as-02"], "after_sales");
        assert!(in_scope(&Staff::new("s-as-01", Role::Handler, "after_sales"), &t));
        assert!(in_scope(&Staff::new("s-as-02", Role::Handler, "after_sales"), &t), "co-handler");
        assert!(!in_scope(&Staff::new("s-as-03", Role::Handler, "after_sales"), &t));
        assert!(in_scope(&Staff::new("s-as-head", Role::DepartmentManager, "after_sales"), &t));
        assert!(!in_scope(&Staff::new("s-ops-head", Role::DepartmentManager, "operations"), &t));
        assert!(!in_scope(&Staff::new("m", Role::DepartmentManager, ""), &ticket("", &[], "")), "no department");
        assert!(in_scope(&Staff::new("s-sup-01", Role::Supervisor, "triage"), &t));
        assert!(in_scope(&Staff::new("s-cs-01", Role::Agent, "customer_service"), &t));
    }

    #[test]
    fn required_text_is_trimmed_and_bounded() {
        assert_eq!(required("reason", "  缺件  ", "why").unwrap(), "缺件");
        let e = required("reason", " ", "a reason is required").unwrap_err();
        assert_eq!(e.to_string(), "reason: a reason is required");
        assert!(required("note", &"字".repeat(4001), "").is_err());
    }

    #[test]
    fn actors_are_the_staff_id_customer_or_system() {
        assert_eq!(Caller::Staff(Staff::new("s-as-01", Role::Handler, "after_sales")).actor(), "s-as-01");
        assert_eq!(Caller::Customer.actor(), "customer");
        assert_eq!(Caller::System.actor(), "system");
        assert!(Caller::Staff(Staff::new("s", Role::Supervisor, "")).state_actor().supervisor);
        assert!(!Caller::Customer.state_actor().supervisor);
    }
}
