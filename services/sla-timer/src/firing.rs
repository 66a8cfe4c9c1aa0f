//! Applying ticket events and firing points, both inside the caller's unit
//! of work: facts saved, clocks re-planned and stored, the ticket's one
//! durable timer moved to its next point, events emitted through the
//! outbox — all in one commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kesu_bus::{HandleError, UnitOfWork, event_meta, subjects};
use kesu_domain::time::{from_millis, to_millis, to_timestamp};
use kesu_proto::type_names;
use kesu_proto::v1::{
    SlaAckOverdue, SlaArmed, SlaBreached, SlaClock, SlaClockKind, SlaClockState, SlaEscalated, SlaEvent, SlaMet,
    SlaPaused, SlaResumed, SlaStale, SlaUpdateDue, SlaWarning, TicketEvent, sla_event,
};
use kesu_timers::{FiredTimer, Timer, TimerHandler, deterministic_event_id};

use crate::facts::{Applied, Fired, TicketFacts};
use crate::plan::{self, Planned, Point, PointKind};
use crate::{Context, SERVICE, store};

/// The kind of sla-timer's durable timers: one per ticket, keyed by ticket
/// id, due at its next point.
pub const TIMER_KIND: &str = "sla.ticket";

/// Folds a ticket event in and announces what it changed. What the event
/// leaves is kept in the batch ([`Batch`]) and written once before commit;
/// a later event of the same ticket in the batch starts from it.
pub(crate) async fn apply_ticket_event(
    ctx: &Context,
    work: &mut UnitOfWork,
    event: &TicketEvent,
) -> Result<(), HandleError> {
    let ticket = event.ticket.as_ref().expect("checked by the caller");
    let now = ctx.clock.now();
    let cached = work.batch_state::<Batch>().tickets.remove(&ticket.ticket_id);
    let mut facts = match &cached {
        Some(saved) => saved.facts.clone(),
        None => store::load_facts(work.conn(), ctx.backend, &ticket.ticket_id)
            .await?
            .unwrap_or_else(|| TicketFacts::new(&ticket.ticket_id)),
    };
    let before = plan::plan(&facts, &ctx.policy, now);
    if facts.apply(event, now) == Applied::Seen {
        if let Some(saved) = cached {
            work.batch_state::<Batch>().tickets.insert(saved.facts.ticket_id.clone(), saved);
        }
        return Ok(());
    }
    let after = plan::plan(&facts, &ctx.policy, now);
    let meta = event.meta.clone().unwrap_or_default();
    let cause = Cause { event_id: meta.event_id, correlation_id: meta.correlation_id };
    for (subject, kind) in transitions(&before, &after) {
        let mut out = base_event(&facts, &cause, now, &format!("{}:{subject}", cause.event_id));
        out.kind = Some(kind);
        work.emit_protobuf(
            subjects::sla_event(subject),
            &out.meta.as_ref().unwrap().event_id.clone(),
            type_names::SLA_EVENT,
            &out,
        )
        .await?;
    }
    let saved = Saved::of(ctx, facts, &after, now);
    work.batch_state::<Batch>().tickets.insert(saved.facts.ticket_id.clone(), saved);
    Ok(())
}

/// Tickets as a batch of ticket events leaves them, by ticket id.
#[derive(Default)]
pub(crate) struct Batch {
    tickets: HashMap<String, Saved>,
}

impl Batch {
    /// Writes the batch's tickets (see [`save_many`]).
    pub async fn write(self, ctx: &Context, work: &mut UnitOfWork) -> Result<(), HandleError> {
        let mut saved: Vec<Saved> = self.tickets.into_values().collect();
        saved.sort_by(|a, b| a.facts.ticket_id.cmp(&b.facts.ticket_id));
        save_many(ctx, work, &saved).await
    }
}

/// A ticket to store: its facts, planned clocks and next point.
pub(crate) struct Saved {
    facts: TicketFacts,
    clocks: Vec<SlaClock>,
    priority: String,
    due: Option<DateTime<Utc>>,
    now_ms: i64,
}

impl Saved {
    fn of(ctx: &Context, facts: TicketFacts, planned: &[Planned], now: DateTime<Utc>) -> Saved {
        Saved {
            clocks: planned.iter().map(|p| p.clock.clone()).collect(),
            priority: plan::priority_of(&facts, &ctx.policy).as_str().to_string(),
            due: plan::next_due(planned, &facts),
            now_ms: to_millis(now),
            facts,
        }
    }
}

/// What moved between two plans: clocks started, paused, resumed, met.
fn transitions(before: &[Planned], after: &[Planned]) -> Vec<(&'static str, sla_event::Kind)> {
    let mut armed = Vec::new();
    let mut paused = Vec::new();
    let mut resumed = Vec::new();
    let mut out = Vec::new();
    for p in after {
        // A new cycle of the acknowledge clock (a new handler) is a new
        // clock; the progress clock restarting on progress is not.
        let same_cycle = |b: &&Planned| {
            b.clock.kind == p.clock.kind
                && (p.kind() != SlaClockKind::Acknowledge || b.clock.started_at == p.clock.started_at)
        };
        let previous = before.iter().find(same_cycle);
        let was = previous.map(|b| b.state());
        let is = p.state();
        match (was, is) {
            (None, SlaClockState::Running | SlaClockState::Breached | SlaClockState::Paused) => {
                armed.push(p.clock.clone())
            }
            (Some(SlaClockState::Paused), SlaClockState::Running | SlaClockState::Breached) => {
                resumed.push(p.clock.clone())
            }
            (Some(SlaClockState::Running | SlaClockState::Breached), SlaClockState::Paused) => {
                paused.push(p.clock.clone())
            }
            (Some(w), SlaClockState::Met) if w != SlaClockState::Met => {
                out.push(("met", sla_event::Kind::Met(SlaMet { clock: Some(p.clock.clone()) })))
            }
            (None, SlaClockState::Met) => {
                out.push(("met", sla_event::Kind::Met(SlaMet { clock: Some(p.clock.clone()) })))
            }
            _ => {}
        }
    }
    if !armed.is_empty() {
        out.insert(0, ("armed", sla_event::Kind::Armed(SlaArmed { clocks: armed })));
    }
    if !paused.is_empty() {
        out.push(("paused", sla_event::Kind::Paused(SlaPaused { clocks: paused })));
    }
    if !resumed.is_empty() {
        out.push(("resumed", sla_event::Kind::Resumed(SlaResumed { clocks: resumed })));
    }
    out
}

struct Cause {
    event_id: String,
    correlation_id: String,
}

fn base_event(facts: &TicketFacts, cause: &Cause, now: DateTime<Utc>, id_seed: &str) -> SlaEvent {
    let mut meta = event_meta(
        SERVICE,
        &facts.ticket_id,
        facts.snapshot.version,
        to_timestamp(now),
        &cause.event_id,
        &cause.correlation_id,
    );
    meta.event_id = deterministic_event_id(to_millis(now), &[&facts.ticket_id, id_seed]);
    let s = &facts.snapshot;
    SlaEvent {
        meta: Some(meta),
        ticket_id: facts.ticket_id.clone(),
        feedback_number: s.feedback_number.clone(),
        priority: s.priority,
        department: s.department.clone(),
        handler: s.handler.clone(),
        fired_late: false,
        recipient_roles: Vec::new(),
        level: 0,
        kind: None,
    }
}

/// Saves the facts and clocks and moves the ticket's timer.
/// Stores tickets: facts, planned clocks (those no longer planned
/// cancelled), and each ticket's one timer moved to its next point or
/// cancelled — a few multi-row statements however many tickets.
async fn save_many(ctx: &Context, work: &mut UnitOfWork, saved: &[Saved]) -> Result<(), HandleError> {
    if saved.is_empty() {
        return Ok(());
    }
    let facts: Vec<(&TicketFacts, i64)> = saved.iter().map(|s| (&s.facts, s.now_ms)).collect();
    store::save_facts(work.conn(), &facts).await?;
    let clocks: Vec<store::TicketClocks> = saved
        .iter()
        .map(|s| store::TicketClocks {
            ticket_id: &s.facts.ticket_id,
            clocks: &s.clocks,
            priority: &s.priority,
            department: &s.facts.snapshot.department,
        })
        .collect();
    store::upsert_clocks(work.conn(), &clocks).await?;
    let timers: Vec<Timer> = saved
        .iter()
        .filter_map(|s| s.due.map(|due| Timer::new(TIMER_KIND, &s.facts.ticket_id, due, Vec::new())))
        .collect();
    ctx.timers.schedule_many(work, &timers).await?;
    let idle: Vec<&str> = saved.iter().filter(|s| s.due.is_none()).map(|s| s.facts.ticket_id.as_str()).collect();
    if !idle.is_empty() {
        ctx.timers.cancel_many(work, TIMER_KIND, &idle).await?;
    }
    Ok(())
}

/// Fires a ticket's due points.
pub(crate) struct Points {
    pub ctx: std::sync::Arc<Context>,
}

impl TimerHandler for Points {
    async fn fire(&self, work: &mut UnitOfWork, timer: &FiredTimer) -> Result<(), HandleError> {
        if timer.kind != TIMER_KIND {
            return Err(HandleError::Permanent(format!("sla-timer has no timers of kind {:?}", timer.kind)));
        }
        let ctx = &self.ctx;
        let Some(mut facts) = store::load_facts(work.conn(), ctx.backend, &timer.key).await? else {
            return Err(HandleError::Permanent(format!("timer for ticket {}: nothing known of it", timer.key)));
        };
        let now = timer.fired_at;
        let planned = plan::plan(&facts, &ctx.policy, now);
        let due = plan::due_points(&planned, &facts, now);
        let cause = Cause { event_id: String::new(), correlation_id: String::new() };
        for (i, point) in &due {
            let clock = &planned[*i];
            let late = timer.late;
            let mut out = base_event(&facts, &cause, now, &point.id);
            out.meta.as_mut().unwrap().event_id =
                deterministic_event_id(to_millis(point.due), &[&facts.ticket_id, &point.id]);
            out.fired_late = late;
            out.recipient_roles = point.roles.clone();
            out.level = point.level;
            let (subject, kind) = kind_of(clock, point, &facts, ctx);
            out.kind = Some(kind);
            let event_id = out.meta.as_ref().unwrap().event_id.clone();
            work.emit_protobuf(subjects::sla_event(subject), &event_id, type_names::SLA_EVENT, &out).await?;
            facts.fired.insert(point.id.clone(), Fired { due: to_millis(point.due), at: to_millis(now), late });
            tracing::debug!(ticket_id = %facts.ticket_id, point = %point.id, late, "SLA point fired");
        }
        let planned = plan::plan(&facts, &ctx.policy, now);
        save_many(ctx, work, &[Saved::of(ctx, facts, &planned, now)]).await
    }
}

fn kind_of(planned: &Planned, point: &Point, facts: &TicketFacts, ctx: &Context) -> (&'static str, sla_event::Kind) {
    let clock = Some(planned.clock.clone());
    match point.kind {
        PointKind::Warning => (
            "warning",
            sla_event::Kind::Warning(SlaWarning { clock, percent_elapsed: ctx.policy.sla().warn_at_percent.into() }),
        ),
        PointKind::Breach => ("breached", sla_event::Kind::Breached(SlaBreached { clock })),
        PointKind::Escalation => {
            let to_role = point.roles.first().cloned().unwrap_or_default();
            let s = &facts.snapshot;
            let to_staff = ctx
                .policy
                .staff()
                .resolve_role(&to_role, &s.department, &s.handler)
                .first()
                .map(|m| m.id.clone())
                .unwrap_or_default();
            let reason = planned
                .clock
                .deadline
                .as_ref()
                .and_then(kesu_domain::time::from_timestamp)
                .map(|d| format!("still open {} h after the deadline", (point.due - d).num_hours()))
                .unwrap_or_default();
            (
                "escalated",
                sla_event::Kind::Escalated(SlaEscalated { clock, level: point.level, to_role, to_staff, reason }),
            )
        }
        PointKind::AckOverdue => (
            "ack_overdue",
            sla_event::Kind::AckOverdue(SlaAckOverdue { clock, handler: facts.snapshot.handler.clone() }),
        ),
        PointKind::Stale => {
            let last = planned.last_progress_at.or(planned
                .clock
                .started_at
                .as_ref()
                .and_then(kesu_domain::time::from_timestamp));
            ("stale", sla_event::Kind::Stale(SlaStale { last_progress_at: last.map(to_timestamp) }))
        }
        PointKind::UpdateDue => {
            let last =
                planned.clock.started_at.as_ref().and_then(kesu_domain::time::from_timestamp).unwrap_or(from_millis(0));
            (
                "update_due",
                sla_event::Kind::UpdateDue(SlaUpdateDue {
                    last_update_at: Some(to_timestamp(last)),
                    sequence: planned.sequence,
                }),
            )
        }
    }
}
