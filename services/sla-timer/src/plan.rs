//! Planning a ticket's clocks: a pure function of what is known of the
//! ticket (its facts), the policy and the current instant. Every clock —
//! acknowledge, response, resolution, progress update, result notice,
//! follow-up visit — with its effective start, deadline, used, paused and
//! remaining time, state, and every point of its escalation chain.
//!
//! Paused time never counts: a clock's deadline is where its allowed time
//! runs out counting only time outside pauses (on the business calendar
//! for business targets). A priority or policy change re-plans from the
//! same start and pauses, so used and paused time are kept; an extension
//! adds the time between the deadline it replaced and the new one.

use chrono::{DateTime, Duration, Utc};
use kesu_domain::calendar::BusinessCalendar;
use kesu_domain::policy::sla::{ResponseOn, TargetKey};
use kesu_domain::target::{Basis, SlaTarget};
use kesu_domain::time::{from_millis, to_millis, to_timestamp};
use kesu_domain::{Policy, Priority};
use kesu_proto::v1::{ClockBasis, RequestNature, SlaClock, SlaClockKind, SlaClockState, SlaEscalationPoint};

use crate::counting::{Counter, Reach, Span};
use crate::facts::{Fact, TicketFacts, is_first_contact};

/// What a point does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    Warning,
    Breach,
    Escalation,
    AckOverdue,
    Stale,
    UpdateDue,
}

impl PointKind {
    pub fn name(self) -> &'static str {
        match self {
            PointKind::Warning => "warning",
            PointKind::Breach => "breach",
            PointKind::Escalation => "escalation",
            PointKind::AckOverdue => "ack_overdue",
            PointKind::Stale => "stale",
            PointKind::UpdateDue => "update_due",
        }
    }

    /// Reminders to staff (may wait for working time); the customer's
    /// update never does.
    fn to_staff(self) -> bool {
        self != PointKind::UpdateDue
    }
}

/// One planned point of a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Unique within the ticket, stable across re-plans of the same cycle.
    pub id: String,
    pub kind: PointKind,
    pub level: u32,
    pub roles: Vec<String>,
    /// When it is due as the clock says.
    pub due: DateTime<Utc>,
    /// When it fires (`due`, or the next working minute for staff
    /// reminders when the policy says so).
    pub at: DateTime<Utc>,
}

/// A planned clock: the contract's view plus its points.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub clock: SlaClock,
    /// Points of a running clock, fired or not (none once stopped or while paused).
    pub points: Vec<Point>,
    /// Sequence of the next customer update (progress clock only).
    pub sequence: u32,
    /// Last progress (progress clock only).
    pub last_progress_at: Option<DateTime<Utc>>,
}

impl Planned {
    pub fn kind(&self) -> SlaClockKind {
        SlaClockKind::try_from(self.clock.kind).unwrap_or_default()
    }

    pub fn state(&self) -> SlaClockState {
        SlaClockState::try_from(self.clock.state).unwrap_or_default()
    }
}

/// What the timeline says, folded in version order.
#[derive(Default)]
struct Timeline {
    /// The acknowledge cycle: last assignment, and its acknowledgement.
    assigned: Option<(DateTime<Utc>, String)>,
    acknowledged: Option<DateTime<Utc>>,
    /// Whichever stops the response clock.
    first_ack: Option<DateTime<Utc>>,
    first_contact: Option<DateTime<Utc>>,
    first_progress: Option<DateTime<Utc>>,
    last_progress: Option<DateTime<Utc>>,
    waiting: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// Resolutions and the reopen that undid each.
    resolutions: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    first_resolution: Option<DateTime<Utc>>,
    result_told: Option<DateTime<Utc>>,
    rated_or_closed: Option<DateTime<Utc>>,
    extensions: Vec<(i32, DateTime<Utc>, String)>,
}

impl Timeline {
    fn of(facts: &TicketFacts) -> Self {
        let mut t = Timeline::default();
        for fact in facts.facts() {
            let at = from_millis(fact.at());
            match fact {
                Fact::Assigned { handler, .. } => {
                    t.assigned = Some((at, handler.clone()));
                    t.acknowledged = None;
                }
                Fact::Acknowledged { .. } => {
                    t.acknowledged.get_or_insert(at);
                    t.first_ack.get_or_insert(at);
                }
                Fact::Progress { stage, .. } => {
                    t.first_progress.get_or_insert(at);
                    if is_first_contact(*stage) {
                        t.first_contact.get_or_insert(at);
                    }
                    t.last_progress = Some(at);
                }
                Fact::Waiting { .. } => {
                    if t.waiting.last().is_none_or(|(_, end)| end.is_some()) {
                        t.waiting.push((at, None));
                    }
                }
                Fact::Resumed { .. } => {
                    if let Some((_, end @ None)) = t.waiting.last_mut() {
                        *end = Some(at);
                    }
                }
                Fact::Extended { clock, new_deadline, reason, .. } => {
                    t.extensions.push((*clock, from_millis(*new_deadline), reason.clone()))
                }
                Fact::Resolved { .. } => {
                    if t.resolutions.last().is_none_or(|(_, reopened)| reopened.is_some()) {
                        t.resolutions.push((at, None));
                        t.first_resolution.get_or_insert(at);
                        t.result_told = None;
                        t.rated_or_closed = None;
                    }
                }
                Fact::Reopened { .. } => {
                    if let Some((_, end @ None)) = t.resolutions.last_mut() {
                        *end = Some(at);
                    }
                }
                Fact::ResultTold { .. } => {
                    t.result_told.get_or_insert(at);
                }
                Fact::Rated { .. } | Fact::Closed { .. } => {
                    t.rated_or_closed.get_or_insert(at);
                    t.result_told.get_or_insert(at);
                }
                Fact::Other { .. } => {}
            }
        }
        t
    }

    /// The resolution in force (not reopened).
    fn resolved(&self) -> Option<DateTime<Utc>> {
        self.resolutions.last().filter(|(_, reopened)| reopened.is_none()).map(|(at, _)| *at)
    }
}

/// The ticket's priority (the policy default when unknown).
pub fn priority_of(facts: &TicketFacts, policy: &Policy) -> Priority {
    Priority::from_proto(facts.snapshot.priority).unwrap_or(policy.default_priority())
}

fn nature_name(value: i32) -> String {
    RequestNature::try_from(value)
        .ok()
        .filter(|n| *n != RequestNature::Unspecified)
        .map(|n| n.as_str_name().trim_start_matches("REQUEST_NATURE_").to_ascii_lowercase())
        .unwrap_or_default()
}

/// Every clock of the ticket as of `now`.
pub fn plan(facts: &TicketFacts, policy: &Policy, now: DateTime<Utc>) -> Vec<Planned> {
    let sla = policy.sla();
    let calendar = policy.calendar();
    let Some(start) = facts.start(&sla.start_at_submission_for) else { return Vec::new() };
    let t = Timeline::of(facts);
    let s = &facts.snapshot;
    let priority = priority_of(facts, policy);
    let nature = nature_name(s.request_nature);
    let key = TargetKey {
        problem_type: &s.type_code,
        problem_cause: &s.cause_code,
        request_nature: &nature,
        customer_tier: &s.customer_tier,
    };
    let (response, resolution) = sla.targets_for_key(priority, &key);
    let resolved = t.resolved();
    let planner = Planner { facts, policy, calendar, now, priority, t: &t };
    let mut out = Vec::new();

    // Acknowledge: from the (last) assignment to its acknowledgement.
    if let Some((assigned_at, _)) = &t.assigned {
        let stop = t.acknowledged.or(resolved.filter(|r| r >= assigned_at));
        let span = Span { start: *assigned_at, pauses: t.waiting.clone(), stop };
        let cycle = format!("acknowledge:{}", to_millis(*assigned_at));
        out.push(planner.clock(SlaClockKind::Acknowledge, &sla.acknowledge, "acknowledge", span, &cycle, Chain::Ack));
    }

    // Response: from the start to what the policy counts as the response.
    let responded = match sla.response_on {
        ResponseOn::Acknowledge => t.first_ack,
        ResponseOn::FirstContact => t.first_contact,
        ResponseOn::FirstProgress => t.first_progress,
    };
    let stop = [responded, t.first_resolution].into_iter().flatten().min();
    let span = Span { start, pauses: t.waiting.clone(), stop };
    out.push(planner.clock(
        SlaClockKind::Response,
        &response.target,
        &response.policy,
        span,
        "response",
        Chain::Deadline,
    ));

    // Resolution: resolved-then-reopened time is a pause; reopening resumes.
    let mut pauses = t.waiting.clone();
    pauses.extend(t.resolutions.iter().filter(|(_, r)| r.is_some()).cloned());
    pauses.sort_by_key(|(a, _)| *a);
    let span = Span { start, pauses: merge(pauses), stop: resolved };
    out.push(planner.clock(
        SlaClockKind::Resolution,
        &resolution.target,
        &resolution.policy,
        span,
        "resolution",
        Chain::Deadline,
    ));

    // Progress update: every period without progress while open.
    let fired_updates: Vec<_> =
        facts.fired.iter().filter(|(id, _)| id.starts_with("progress:") && id.ends_with(":update_due")).collect();
    let last_update = fired_updates.iter().map(|(_, f)| from_millis(f.due)).max();
    let anchor = [Some(start), t.last_progress, last_update].into_iter().flatten().max().unwrap_or(start);
    let stop = resolved.filter(|r| *r >= anchor);
    let span = Span { start: anchor, pauses: t.waiting.clone(), stop };
    let cycle = format!("progress:{}", to_millis(anchor));
    let mut progress = planner.clock(
        SlaClockKind::ProgressUpdate,
        &sla.progress_update,
        "progress_update",
        span,
        &cycle,
        Chain::Progress,
    );
    progress.sequence = fired_updates.len() as u32 + 1;
    progress.last_progress_at = t.last_progress;
    out.push(progress);

    // After the resolution in force: result notice, follow-up visit.
    if let Some(resolved_at) = resolved {
        let stop = t.result_told.filter(|r| *r >= resolved_at);
        let span = Span { start: resolved_at, pauses: Vec::new(), stop };
        let cycle = format!("result_notice:{}", to_millis(resolved_at));
        out.push(planner.clock(
            SlaClockKind::ResultNotice,
            &sla.result_notice,
            "result_notice",
            span,
            &cycle,
            Chain::Deadline,
        ));
        if sla.follow_up_priorities.contains(&priority) {
            let stop = t.rated_or_closed.filter(|r| *r >= resolved_at);
            let span = Span { start: resolved_at, pauses: Vec::new(), stop };
            let cycle = format!("follow_up:{}", to_millis(resolved_at));
            out.push(planner.clock(SlaClockKind::FollowUp, &sla.follow_up, "follow_up", span, &cycle, Chain::Deadline));
        }
    }
    out
}

/// Overlapping pauses as one.
fn merge(pauses: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let mut out: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    for (a, b) in pauses {
        if let Some((_, last_end)) = out.last_mut() {
            match last_end {
                None => continue,
                Some(e) if a <= *e => {
                    *last_end = b.map(|b| b.max(*e));
                    continue;
                }
                _ => {}
            }
        }
        out.push((a, b));
    }
    out
}

/// Which points a clock has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Chain {
    /// Warning, breach and the escalation chain.
    Deadline,
    /// Overdue acknowledgement.
    Ack,
    /// Stale ticket and the customer's update.
    Progress,
}

struct Planner<'a> {
    facts: &'a TicketFacts,
    policy: &'a Policy,
    calendar: &'a BusinessCalendar,
    now: DateTime<Utc>,
    priority: Priority,
    t: &'a Timeline,
}

impl Planner<'_> {
    fn clock(
        &self,
        kind: SlaClockKind,
        target: &SlaTarget,
        policy: &str,
        span: Span,
        cycle: &str,
        chain: Chain,
    ) -> Planned {
        let sla = self.policy.sla();
        let c = Counter { basis: target.basis(), calendar: self.calendar };
        let started = span.start;
        let effective = match target.basis() {
            Basis::Business => self.calendar.next_working_moment(started),
            Basis::Calendar => started,
        };
        let span = Span { start: effective, ..span }.clipped();
        let plain_deadline = target.deadline(effective, self.calendar);
        let total = c.measure(effective, plain_deadline);
        // Extensions add the time between the deadline they replaced and theirs.
        let mut extra = Duration::zero();
        let mut extension_reason = String::new();
        let mut extended_to = None;
        for (clock, new_deadline, reason) in &self.t.extensions {
            if *clock != kind as i32 {
                continue;
            }
            if let Reach::At(current) = span.reach(&c, total + extra)
                && *new_deadline > current
            {
                extra += c.measure(current, *new_deadline);
                extension_reason = reason.clone();
                extended_to = Some(*new_deadline);
            }
        }
        let allowed = total + extra;
        let untouched = span.pauses.is_empty() && extra.is_zero();
        let mut deadline = if untouched { Reach::At(plain_deadline) } else { span.reach(&c, allowed) };
        // An extension to a non-working instant ends exactly there.
        if let (Reach::At(d), Some(to)) = (&deadline, extended_to)
            && *d < to
            && c.measure(*d, to).is_zero()
        {
            deadline = Reach::At(to);
        }
        let warn_pct = i32::from(sla.warn_at_percent);
        let warn = if untouched && chain == Chain::Deadline {
            Reach::At(target.point_at(effective, sla.warn_at_percent, self.calendar))
        } else {
            span.reach(&c, allowed * warn_pct / 100)
        };
        let used = span.used(&c, self.now);
        let paused_for = span.paused(self.now);
        let deadline_at = match deadline {
            Reach::At(d) => Some(d),
            Reach::Paused => None,
        };
        let state = match (span.stop, deadline_at) {
            (Some(stop), Some(d)) if stop > d => SlaClockState::Breached,
            (Some(_), _) => SlaClockState::Met,
            (None, _) if span.paused_now(self.now) => SlaClockState::Paused,
            (None, Some(d)) if self.now >= d => SlaClockState::Breached,
            (None, _) => SlaClockState::Running,
        };
        let margin = match (span.stop, deadline_at) {
            (Some(stop), Some(d)) => Some(d - stop),
            _ => None,
        };
        let mut points = Vec::new();
        if span.stop.is_none() {
            match (chain, deadline_at) {
                (Chain::Deadline, Some(d)) => {
                    if let Reach::At(w) = warn {
                        points.push(self.point(cycle, PointKind::Warning, 0, &sla.warning_roles, w));
                    }
                    for (i, step) in sla.escalation.iter().enumerate() {
                        let kind = if i == 0 { PointKind::Breach } else { PointKind::Escalation };
                        let id = if i == 0 { "breach".to_string() } else { format!("escalation:{}", step.level) };
                        let mut p = self.point(cycle, kind, step.level, &step.roles, d + step.after);
                        p.id = format!("{cycle}:{id}");
                        points.push(p);
                    }
                    if sla.escalation.first().is_none_or(|s| !s.after.is_zero()) {
                        points.insert(1, self.point(cycle, PointKind::Breach, 0, &sla.warning_roles, d));
                    }
                }
                (Chain::Ack, Some(d)) => {
                    points.push(self.point(cycle, PointKind::AckOverdue, 1, &sla.ack_overdue_roles, d))
                }
                (Chain::Progress, Some(d)) => {
                    points.push(self.point(cycle, PointKind::Stale, 0, &sla.stale_roles, d));
                    points.push(self.point(cycle, PointKind::UpdateDue, 0, &[], d));
                }
                _ => {}
            }
        }
        // Points that fired in this cycle stay visible after a stop.
        if span.stop.is_some() || deadline_at.is_none() {
            points.clear();
        }
        let remaining = allowed - used;
        let clock = SlaClock {
            ticket_id: self.facts.ticket_id.clone(),
            kind: kind as i32,
            priority: self.priority.to_proto() as i32,
            basis: match target.basis() {
                Basis::Business => ClockBasis::Business,
                Basis::Calendar => ClockBasis::Calendar,
            } as i32,
            target: target.text().to_string(),
            policy: policy.to_string(),
            started_at: Some(to_timestamp(started)),
            deadline: deadline_at.map(to_timestamp),
            warn_at: match (warn, chain) {
                (Reach::At(w), Chain::Deadline) => Some(to_timestamp(w)),
                _ => None,
            },
            state: state as i32,
            paused_for: Some(duration(paused_for)),
            stopped_at: span.stop.map(to_timestamp),
            calendar: self.calendar.name().to_string(),
            effective_start: Some(to_timestamp(effective)),
            used: Some(duration(used)),
            remaining: Some(duration(remaining)),
            escalations: Vec::new(),
            margin: margin.map(duration),
            extension_reason,
        };
        let mut planned = Planned { clock, points, sequence: 0, last_progress_at: None };
        planned.clock.escalations = self.escalations(cycle, &planned.points);
        planned
    }

    fn point(&self, cycle: &str, kind: PointKind, level: u32, roles: &[String], due: DateTime<Utc>) -> Point {
        let at = if kind.to_staff() && self.policy.sla().staff_reminders_in_business_hours {
            self.calendar.next_working_moment(due)
        } else {
            due
        };
        Point { id: format!("{cycle}:{}", kind.name()), kind, level, roles: roles.to_vec(), due, at }
    }

    /// The planned points and those of this cycle that fired already.
    fn escalations(&self, cycle: &str, points: &[Point]) -> Vec<SlaEscalationPoint> {
        let mut out: Vec<SlaEscalationPoint> = points
            .iter()
            .map(|p| {
                let fired = self.facts.fired.get(&p.id);
                SlaEscalationPoint {
                    point: p.kind.name().to_string(),
                    level: p.level,
                    at: Some(to_timestamp(fired.map(|f| from_millis(f.at)).unwrap_or(p.at))),
                    recipient_roles: p.roles.clone(),
                    fired: fired.is_some(),
                    fired_late: fired.is_some_and(|f| f.late),
                }
            })
            .collect();
        let prefix = format!("{cycle}:");
        for (id, f) in &self.facts.fired {
            if id.starts_with(&prefix) && !points.iter().any(|p| &p.id == id) {
                let point = id[prefix.len()..].split(':').next().unwrap_or_default().to_string();
                out.push(SlaEscalationPoint {
                    point,
                    level: 0,
                    at: Some(to_timestamp(from_millis(f.at))),
                    recipient_roles: Vec::new(),
                    fired: true,
                    fired_late: f.late,
                });
            }
        }
        out.sort_by_key(|p| p.at.map(|t| (t.seconds, t.nanos)));
        out
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    let nanos = d.num_nanoseconds().unwrap_or(i64::MAX);
    prost_types::Duration { seconds: nanos / 1_000_000_000, nanos: (nanos % 1_000_000_000) as i32 }
}

/// The points due at `now` that have not fired.
pub fn due_points(planned: &[Planned], facts: &TicketFacts, now: DateTime<Utc>) -> Vec<(usize, Point)> {
    let mut out = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        for point in &p.points {
            if point.at <= now && !facts.fired.contains_key(&point.id) {
                out.push((i, point.clone()));
            }
        }
    }
    out.sort_by_key(|(_, p)| p.at);
    out
}

/// The next instant a point of the ticket fires.
pub fn next_due(planned: &[Planned], facts: &TicketFacts) -> Option<DateTime<Utc>> {
    planned.iter().flat_map(|p| &p.points).filter(|p| !facts.fired.contains_key(&p.id)).map(|p| p.at).min()
}
