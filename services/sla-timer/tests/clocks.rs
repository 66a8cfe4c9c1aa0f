//! Every default rule of DOMAIN.md's "Priority and SLA defaults" as a
//! scenario in virtual time, the failures other help desks' users reported,
//! and the boundaries of the business calendar: ticket events folded into
//! facts, clocks planned as of an instant. No waiting: weeks of SLA in
//! milliseconds.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use kesu_domain::Policy;
use kesu_domain::time::{from_timestamp, to_timestamp};
use kesu_proto::v1::{
    Channel, Classification, CustomerRef, DeadlineExtended, EventMeta, Priority, ProgressRecorded, ProgressStage,
    RequestNature, SlaClock, SlaClockKind, SlaClockState, Ticket, TicketAcknowledged, TicketAssigned, TicketCreated,
    TicketEvent, TicketPrioritised, TicketReopened, TicketResolved, TicketResumed, TicketStatus, WaitingOnCustomer,
    ticket_event::Kind,
};
use kesu_sla_timer::facts::{Applied, Fired, TicketFacts};
use kesu_sla_timer::plan::{Planned, PointKind, due_points, next_due, plan};

fn sh(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap().with_timezone(&Utc)
}

fn at(ts: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    from_timestamp(ts.as_ref().expect("set")).unwrap()
}

fn secs(d: &Option<prost_types::Duration>) -> i64 {
    d.as_ref().map(|d| d.seconds).unwrap_or_default()
}

/// A ticket's life as routing announces it, one event per change.
struct Story {
    ticket: Ticket,
    events: Vec<TicketEvent>,
}

impl Story {
    fn new(priority: Priority, type_code: &str, cause: &str, received: DateTime<Utc>) -> Self {
        let ticket = Ticket {
            ticket_id: "T-1".into(),
            feedback_number: "FB-1".into(),
            priority: priority as i32,
            classification: Some(Classification {
                type_code: type_code.into(),
                cause_code: cause.into(),
                ..Default::default()
            }),
            department: "after_sales".into(),
            received_at: Some(to_timestamp(received)),
            created_at: Some(to_timestamp(received + Duration::minutes(1))),
            status: TicketStatus::New as i32,
            ..Default::default()
        };
        let mut story = Self { ticket, events: Vec::new() };
        story.push(received + Duration::minutes(1), Kind::Created(TicketCreated {}));
        story
    }

    fn push(&mut self, when: DateTime<Utc>, kind: Kind) -> &mut Self {
        self.ticket.version += 1;
        self.ticket.updated_at = Some(to_timestamp(when));
        self.events.push(TicketEvent {
            meta: Some(EventMeta {
                event_id: format!("e{}", self.ticket.version),
                aggregate_version: self.ticket.version,
                occurred_at: Some(to_timestamp(when)),
                ..Default::default()
            }),
            ticket: Some(self.ticket.clone()),
            actor: "h1".into(),
            kind: Some(kind),
        });
        self
    }

    fn assign(&mut self, when: DateTime<Utc>, handler: &str) -> &mut Self {
        let previous = std::mem::replace(&mut self.ticket.handler, handler.into());
        self.ticket.status = TicketStatus::Assigned as i32;
        self.push(
            when,
            Kind::Assigned(TicketAssigned {
                handler: handler.into(),
                previous_handler: previous,
                ..Default::default()
            }),
        )
    }

    fn acknowledge(&mut self, when: DateTime<Utc>) -> &mut Self {
        self.ticket.status = TicketStatus::Acknowledged as i32;
        self.push(when, Kind::Acknowledged(TicketAcknowledged { handler: self.ticket.handler.clone() }))
    }

    fn progress(&mut self, when: DateTime<Utc>, stage: ProgressStage) -> &mut Self {
        self.ticket.status = TicketStatus::InProgress as i32;
        self.push(when, Kind::Progress(ProgressRecorded { stage: stage as i32, ..Default::default() }))
    }

    fn wait(&mut self, when: DateTime<Utc>) -> &mut Self {
        self.ticket.status = TicketStatus::WaitingOnCustomer as i32;
        self.push(when, Kind::Waiting(WaitingOnCustomer { reason: "photo".into() }))
    }

    fn resume(&mut self, when: DateTime<Utc>) -> &mut Self {
        self.ticket.status = TicketStatus::InProgress as i32;
        self.push(when, Kind::Resumed(TicketResumed { reason: "photo received".into() }))
    }

    fn prioritise(&mut self, when: DateTime<Utc>, priority: Priority) -> &mut Self {
        let previous = std::mem::replace(&mut self.ticket.priority, priority as i32);
        self.push(when, Kind::Prioritised(TicketPrioritised { previous, priority: priority as i32, reasons: vec![] }))
    }

    fn extend(&mut self, when: DateTime<Utc>, clock: SlaClockKind, to: DateTime<Utc>) -> &mut Self {
        self.push(
            when,
            Kind::DeadlineExtended(DeadlineExtended {
                clock: clock as i32,
                new_deadline: Some(to_timestamp(to)),
                reason: "parts on order".into(),
                ..Default::default()
            }),
        )
    }

    fn resolve(&mut self, when: DateTime<Utc>) -> &mut Self {
        self.ticket.status = TicketStatus::Resolved as i32;
        self.push(when, Kind::Resolved(TicketResolved::default()))
    }

    fn reopen(&mut self, when: DateTime<Utc>) -> &mut Self {
        self.ticket.status = TicketStatus::Reopened as i32;
        self.push(when, Kind::Reopened(TicketReopened::default()))
    }

    fn facts(&self) -> TicketFacts {
        let mut facts = TicketFacts::new("T-1");
        for e in &self.events {
            assert_eq!(facts.apply(e, Utc::now()), Applied::New);
        }
        facts
    }

    fn clocks(&self, policy: &Policy, now: DateTime<Utc>) -> Vec<Planned> {
        plan(&self.facts(), policy, now)
    }
}

fn clock(planned: &[Planned], kind: SlaClockKind) -> &SlaClock {
    &planned.iter().find(|p| p.kind() == kind).unwrap_or_else(|| panic!("no {kind:?} clock")).clock
}

fn planned(planned: &[Planned], kind: SlaClockKind) -> &Planned {
    planned.iter().find(|p| p.kind() == kind).unwrap_or_else(|| panic!("no {kind:?} clock"))
}

fn state(c: &SlaClock) -> SlaClockState {
    SlaClockState::try_from(c.state).unwrap()
}

fn policy() -> Policy {
    Policy::default_policy()
}

// ---- the default rules of the domain -------------------------------------

#[test]
fn urgent_clocks_run_on_calendar_time() {
    let received = sh(2026, 11, 21, 22, 0); // a Saturday night
    let s = Story::new(Priority::Urgent, "system_failure", "outage", received);
    let p = s.clocks(&policy(), received);
    let response = clock(&p, SlaClockKind::Response);
    assert_eq!(at(&response.deadline), sh(2026, 11, 21, 23, 0));
    assert_eq!(at(&response.warn_at), sh(2026, 11, 21, 22, 48));
    assert_eq!(at(&clock(&p, SlaClockKind::Resolution).deadline), sh(2026, 11, 22, 22, 0));
    assert_eq!(at(&response.effective_start), received);
}

#[test]
fn clocks_start_when_intake_received_the_feedback_not_when_routing_ran() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::High, "repair", "", received);
    // Routing ran two hours late.
    s.ticket.created_at = Some(to_timestamp(received + Duration::hours(2)));
    s.events.clear();
    s.ticket.version = 0;
    s.push(received + Duration::hours(2), Kind::Created(TicketCreated {}));
    let p = s.clocks(&policy(), received + Duration::hours(2));
    let response = clock(&p, SlaClockKind::Response);
    assert_eq!(at(&response.started_at), received);
    assert_eq!(at(&response.deadline), sh(2026, 11, 23, 15, 0), "4 business hours over lunch");
    assert_eq!(secs(&response.used), 2 * 3600);
}

#[test]
fn paper_entry_may_start_at_the_customer_submission() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::High, "repair", "", received);
    s.ticket.channel = Channel::Paper as i32;
    s.ticket.submitted_at = Some(to_timestamp(sh(2026, 11, 20, 9, 0)));
    s.events.clear();
    s.ticket.version = 0;
    s.push(received, Kind::Created(TicketCreated {}));
    let p = s.clocks(&policy(), received);
    assert_eq!(at(&clock(&p, SlaClockKind::Response).started_at), received, "the default: receipt");
    let paper = Policy::from_toml(Some(&sla_with("start_at_submission_for = [\"paper\"]")), "test").unwrap();
    let p = s.clocks(&paper, received);
    assert_eq!(at(&clock(&p, SlaClockKind::Response).started_at), sh(2026, 11, 20, 9, 0));
}

#[test]
fn medium_clocks_run_on_business_time() {
    let received = sh(2026, 11, 20, 16, 0); // Friday 16:00
    let s = Story::new(Priority::Medium, "logistics", "", received);
    let p = s.clocks(&policy(), received);
    // 8 business hours: 2 h on Friday, then Monday 09:00-12:00 and 13:00-16:00.
    assert_eq!(at(&clock(&p, SlaClockKind::Response).deadline), sh(2026, 11, 23, 16, 0));
    // 3 business days: Wednesday 16:00.
    assert_eq!(at(&clock(&p, SlaClockKind::Resolution).deadline), sh(2026, 11, 25, 16, 0));
    assert_eq!(clock(&p, SlaClockKind::Response).policy, "medium.response");
}

#[test]
fn safety_hazards_get_fifteen_minutes_and_consultations_two_hours() {
    let received = sh(2026, 11, 23, 10, 0);
    let s = Story::new(Priority::Urgent, "product_quality", "safety_hazard", received);
    assert_eq!(at(&clock(&s.clocks(&policy(), received), SlaClockKind::Response).deadline), sh(2026, 11, 23, 10, 15));
    let s = Story::new(Priority::Low, "consultation", "", received);
    assert_eq!(at(&clock(&s.clocks(&policy(), received), SlaClockKind::Response).deadline), sh(2026, 11, 23, 12, 0));
}

#[test]
fn overrides_match_on_request_nature_and_customer_tier() {
    let extra = "[[sla.overrides]]\nrequest_nature = \"complaint\"\ncustomer_tier = \"vip\"\nresponse = \"1h\"\n";
    let policy = Policy::from_toml(Some(&sla_with_overrides(extra)), "test").unwrap();
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.ticket.classification.as_mut().unwrap().request_nature = RequestNature::Complaint as i32;
    s.ticket.customer = Some(CustomerRef { tier: "VIP".into(), ..Default::default() });
    s.events.clear();
    s.ticket.version = 0;
    s.push(received, Kind::Created(TicketCreated {}));
    let response = clock(&s.clocks(&policy, received), SlaClockKind::Response).clone();
    assert_eq!((response.target.as_str(), response.policy.as_str()), ("1h", "override[2].response"));
}

#[test]
fn warning_breach_and_director_are_all_planned_not_only_the_nearest() {
    let received = sh(2026, 11, 23, 10, 0); // Monday
    let s = Story::new(Priority::High, "repair", "", received);
    let p = s.clocks(&policy(), received);
    let resolution = clock(&p, SlaClockKind::Resolution);
    let deadline = at(&resolution.deadline);
    assert_eq!(deadline, sh(2026, 11, 26, 10, 0), "24 business hours = 3 working days");
    let points: Vec<(String, u32, DateTime<Utc>, Vec<String>)> = resolution
        .escalations
        .iter()
        .map(|e| (e.point.clone(), e.level, at(&e.at), e.recipient_roles.clone()))
        .collect();
    assert_eq!(
        points,
        [
            ("warning".into(), 0, at(&resolution.warn_at), vec!["handler".to_string()]),
            ("breach".into(), 1, deadline, vec!["supervisor".into(), "handler".into()]),
            ("escalation".into(), 2, deadline + Duration::hours(24), vec!["director".into()]),
        ]
    );
    // 80% of 24 business hours: 19.2 h in.
    assert_eq!(at(&resolution.warn_at), sh(2026, 11, 25, 14, 12));
}

#[test]
fn an_unacknowledged_assignment_goes_to_the_supervisor_after_an_hour() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.assign(sh(2026, 11, 23, 10, 5), "h1");
    let facts = s.facts();
    let p = plan(&facts, &policy(), sh(2026, 11, 23, 10, 5));
    let ack = planned(&p, SlaClockKind::Acknowledge);
    assert_eq!(at(&ack.clock.deadline), sh(2026, 11, 23, 11, 5));
    assert_eq!(ack.points.len(), 1);
    assert_eq!((ack.points[0].kind, ack.points[0].level), (PointKind::AckOverdue, 1));
    assert_eq!(ack.points[0].roles, ["supervisor"]);
    let due = due_points(&p, &facts, sh(2026, 11, 23, 11, 5));
    assert!(due.iter().any(|(_, pt)| pt.kind == PointKind::AckOverdue));

    // Acknowledged in time: met, with the margin; response met too.
    s.acknowledge(sh(2026, 11, 23, 10, 35));
    let p = s.clocks(&policy(), sh(2026, 11, 23, 12, 0));
    let ack = clock(&p, SlaClockKind::Acknowledge);
    assert_eq!(state(ack), SlaClockState::Met);
    assert_eq!(secs(&ack.margin), 30 * 60);
    assert_eq!(state(clock(&p, SlaClockKind::Response)), SlaClockState::Met);
    assert!(planned(&p, SlaClockKind::Acknowledge).points.is_empty());
}

#[test]
fn a_new_handler_gets_a_new_hour() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.assign(sh(2026, 11, 23, 10, 0), "h1").assign(sh(2026, 11, 23, 10, 50), "h2");
    let ack = clock(&s.clocks(&policy(), sh(2026, 11, 23, 11, 0)), SlaClockKind::Acknowledge).clone();
    assert_eq!(at(&ack.deadline), sh(2026, 11, 23, 11, 50));
}

#[test]
fn what_counts_as_the_response_is_policy() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.assign(received, "h1").acknowledge(sh(2026, 11, 23, 10, 10));
    let contact = Policy::from_toml(Some(&sla_with("response_on = \"first_contact\"")), "test").unwrap();
    let p = s.clocks(&contact, sh(2026, 11, 23, 11, 0));
    assert_eq!(state(clock(&p, SlaClockKind::Response)), SlaClockState::Running, "acknowledging is not contact");
    s.progress(sh(2026, 11, 23, 11, 0), ProgressStage::Diagnosed);
    let p = s.clocks(&contact, sh(2026, 11, 23, 11, 30));
    assert_eq!(state(clock(&p, SlaClockKind::Response)), SlaClockState::Running);
    s.progress(sh(2026, 11, 23, 14, 0), ProgressStage::ContactedCustomer);
    let p = s.clocks(&contact, sh(2026, 11, 23, 15, 0));
    let response = clock(&p, SlaClockKind::Response);
    assert_eq!(state(response), SlaClockState::Met);
    assert_eq!(at(&response.stopped_at), sh(2026, 11, 23, 14, 0));
    assert!(
        Policy::from_toml(Some(&sla_with("response_on = \"smile\"")), "test").unwrap_err().key == "sla.response_on"
    );
}

#[test]
fn no_progress_for_a_day_reminds_handler_and_supervisor_and_the_customer_gets_an_update() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.assign(received, "h1").acknowledge(sh(2026, 11, 23, 10, 10));
    s.progress(sh(2026, 11, 23, 15, 0), ProgressStage::Diagnosed);
    let mut facts = s.facts();
    let p = plan(&facts, &policy(), sh(2026, 11, 23, 15, 0));
    let progress = planned(&p, SlaClockKind::ProgressUpdate);
    assert_eq!(at(&progress.clock.deadline), sh(2026, 11, 24, 15, 0), "24 h calendar from the last progress");
    let kinds: Vec<_> = progress.points.iter().map(|p| (p.kind, p.roles.clone())).collect();
    assert_eq!(
        kinds,
        [(PointKind::Stale, vec!["handler".to_string(), "supervisor".into()]), (PointKind::UpdateDue, vec![])]
    );
    assert_eq!(progress.sequence, 1);
    // Fire them: the next cycle is another 24 h on.
    for (_, point) in due_points(&p, &facts, sh(2026, 11, 24, 15, 0)) {
        let due = point.due.timestamp_millis();
        facts.fired.insert(point.id, Fired { due, at: due, late: false });
    }
    let p = plan(&facts, &policy(), sh(2026, 11, 24, 15, 0));
    let progress = planned(&p, SlaClockKind::ProgressUpdate);
    assert_eq!(at(&progress.clock.deadline), sh(2026, 11, 25, 15, 0));
    assert_eq!(progress.sequence, 2);
    assert!(next_due(&p, &facts).is_some_and(|d| d > sh(2026, 11, 24, 15, 0)));
}

#[test]
fn resolution_stops_the_clocks_records_the_margin_and_starts_result_notice_and_follow_up() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::High, "repair", "", received);
    s.assign(received, "h1").acknowledge(sh(2026, 11, 23, 10, 30)).resolve(sh(2026, 11, 24, 10, 0));
    let p = s.clocks(&policy(), sh(2026, 11, 24, 10, 0));
    let resolution = clock(&p, SlaClockKind::Resolution);
    assert_eq!(state(resolution), SlaClockState::Met);
    // Deadline Thursday 10:00, resolved Tuesday 10:00: 48 h early.
    assert_eq!(secs(&resolution.margin), 48 * 3600);
    assert_eq!(state(clock(&p, SlaClockKind::ProgressUpdate)), SlaClockState::Met);
    assert_eq!(at(&clock(&p, SlaClockKind::ResultNotice).deadline), sh(2026, 11, 24, 14, 0));
    assert_eq!(at(&clock(&p, SlaClockKind::FollowUp).deadline), sh(2026, 11, 27, 10, 0));
    // Low priority: no follow-up visit.
    let mut low = Story::new(Priority::Low, "repair", "", received);
    low.resolve(sh(2026, 11, 24, 10, 0));
    assert!(low.clocks(&policy(), sh(2026, 11, 24, 10, 0)).iter().all(|p| p.kind() != SlaClockKind::FollowUp));
}

#[test]
fn a_late_resolution_is_breached_by_its_margin() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::Urgent, "system_failure", "outage", received);
    s.resolve(sh(2026, 11, 24, 12, 0));
    let p = s.clocks(&policy(), sh(2026, 11, 24, 12, 0));
    let resolution = clock(&p, SlaClockKind::Resolution);
    assert_eq!(state(resolution), SlaClockState::Breached);
    assert_eq!(secs(&resolution.margin), -2 * 3600);
}

#[test]
fn reopening_resumes_the_resolution_clock_where_it_stopped() {
    let received = sh(2026, 11, 23, 10, 0); // Monday
    let mut s = Story::new(Priority::Urgent, "system_failure", "outage", received);
    s.resolve(sh(2026, 11, 23, 16, 0)).reopen(sh(2026, 11, 25, 16, 0));
    let p = s.clocks(&policy(), sh(2026, 11, 25, 16, 0));
    let resolution = clock(&p, SlaClockKind::Resolution);
    assert_eq!(state(resolution), SlaClockState::Running);
    assert_eq!(secs(&resolution.used), 6 * 3600);
    assert_eq!(secs(&resolution.remaining), 18 * 3600);
    assert_eq!(at(&resolution.deadline), sh(2026, 11, 26, 10, 0));
    assert!(p.iter().all(|p| p.kind() != SlaClockKind::FollowUp && p.kind() != SlaClockKind::ResultNotice));
}

#[test]
fn an_extension_moves_the_target_with_its_reason() {
    let received = sh(2026, 11, 23, 10, 0);
    let mut s = Story::new(Priority::High, "repair", "", received);
    s.extend(sh(2026, 11, 24, 10, 0), SlaClockKind::Resolution, sh(2026, 11, 30, 17, 0));
    let p = s.clocks(&policy(), sh(2026, 11, 24, 10, 0));
    let resolution = clock(&p, SlaClockKind::Resolution);
    assert_eq!(at(&resolution.deadline), sh(2026, 11, 30, 17, 0));
    assert_eq!(resolution.extension_reason, "parts on order");
    assert_eq!(at(&clock(&p, SlaClockKind::Response).deadline), sh(2026, 11, 23, 15, 0), "other clocks unchanged");
}

// ---- reported failures ----------------------------------------------------

#[test]
fn a_paused_ticket_does_not_keep_ticking() {
    let received = sh(2026, 11, 23, 9, 0); // Monday
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.wait(sh(2026, 11, 23, 11, 0));
    // Two days later, still waiting: nothing more used, nothing due.
    let later = sh(2026, 11, 25, 11, 0);
    let facts = s.facts();
    let p = plan(&facts, &policy(), later);
    let resolution = clock(&p, SlaClockKind::Resolution);
    assert_eq!(state(resolution), SlaClockState::Paused);
    assert_eq!(secs(&resolution.used), 2 * 3600);
    assert!(resolution.deadline.is_none());
    assert!(due_points(&p, &facts, later).is_empty(), "nothing comes due while paused");
    // Resumed: what is left is what was left.
    let before = secs(&resolution.remaining);
    s.resume(later);
    let p = s.clocks(&policy(), later);
    let resolution = clock(&p, SlaClockKind::Resolution);
    assert_eq!(state(resolution), SlaClockState::Running);
    assert_eq!(secs(&resolution.remaining), before);
    assert_eq!(secs(&resolution.paused_for), 48 * 3600);
    // 24 business hours in all: 2 used Monday, 22 from Wednesday 11:00 → Friday 18:00.
    assert_eq!(at(&resolution.deadline), sh(2026, 11, 27, 18, 0));
}

#[test]
fn a_priority_change_keeps_the_used_and_paused_time() {
    let received = sh(2026, 11, 23, 9, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.wait(sh(2026, 11, 23, 10, 0)).resume(sh(2026, 11, 23, 14, 0));
    s.prioritise(sh(2026, 11, 23, 15, 0), Priority::High);
    let p = s.clocks(&policy(), sh(2026, 11, 23, 15, 0));
    let response = clock(&p, SlaClockKind::Response);
    assert_eq!(response.target, "4h");
    assert_eq!(secs(&response.paused_for), 4 * 3600);
    // Used: 09-10 and 14-15 = 2 h; 2 h left: 15:00 → 17:00.
    assert_eq!(secs(&response.used), 2 * 3600);
    assert_eq!(at(&response.deadline), sh(2026, 11, 23, 17, 0));
    assert_eq!(at(&response.started_at), received);
}

#[test]
fn the_lunch_break_does_not_count_and_the_effective_start_is_shown() {
    let received = sh(2026, 11, 23, 12, 27);
    let s = Story::new(Priority::Medium, "repair", "", received);
    let p = s.clocks(&policy(), received);
    let response = clock(&p, SlaClockKind::Response);
    assert_eq!(at(&response.started_at), received);
    assert_eq!(at(&response.effective_start), sh(2026, 11, 23, 13, 0));
    assert_eq!(at(&response.deadline), sh(2026, 11, 24, 12, 0), "5 h Monday afternoon, 3 h Tuesday morning");
}

#[test]
fn a_ticket_is_not_escalated_at_creation_because_of_the_zone() {
    // 09:30 Monday in Shanghai is 01:30 UTC, still Sunday night in UTC.
    let received = sh(2026, 11, 23, 9, 30);
    assert_eq!(received, Utc.with_ymd_and_hms(2026, 11, 23, 1, 30, 0).unwrap());
    let mut s = Story::new(Priority::High, "repair", "", received);
    s.assign(received, "h1");
    let facts = s.facts();
    let p = plan(&facts, &policy(), received + Duration::minutes(1));
    assert!(due_points(&p, &facts, received + Duration::minutes(1)).is_empty());
    for c in p.iter().map(|p| &p.clock) {
        assert_eq!(state(c), SlaClockState::Running, "{:?}", c.kind);
        assert!(at(&c.deadline) > received);
    }
}

// ---- order and redelivery -------------------------------------------------

#[test]
fn events_are_applied_by_version_whatever_order_they_arrive_in() {
    let received = sh(2026, 11, 23, 9, 0);
    let mut s = Story::new(Priority::Medium, "repair", "", received);
    s.assign(received, "h1").wait(sh(2026, 11, 23, 10, 0)).resume(sh(2026, 11, 23, 14, 0));
    s.prioritise(sh(2026, 11, 23, 15, 0), Priority::High);
    let in_order = s.facts();
    let mut shuffled = TicketFacts::new("T-1");
    for i in [4, 0, 3, 1, 2] {
        assert_eq!(shuffled.apply(&s.events[i], Utc::now()), Applied::New);
    }
    assert_eq!(shuffled.apply(&s.events[2], Utc::now()), Applied::Seen, "a redelivery changes nothing");
    assert_eq!(shuffled, in_order);
    assert_eq!(shuffled.snapshot.priority, Priority::High as i32, "the older events did not undo the newer priority");
    let now = sh(2026, 11, 23, 16, 0);
    assert_eq!(plan(&shuffled, &policy(), now), plan(&in_order, &policy(), now));
}

// ---- reminders in business hours -------------------------------------------

#[test]
fn staff_reminders_may_wait_for_working_time_but_customer_deadlines_never_move() {
    let received = sh(2026, 11, 23, 20, 0); // Monday evening
    let s = Story::new(Priority::Urgent, "system_failure", "outage", received);
    let office = Policy::from_toml(Some(&sla_with("staff_reminders_in_business_hours = true")), "test").unwrap();
    let p = s.clocks(&office, received);
    let response = planned(&p, SlaClockKind::Response);
    assert_eq!(at(&response.clock.deadline), sh(2026, 11, 23, 21, 0), "the deadline itself does not move");
    let breach = response.points.iter().find(|p| p.kind == PointKind::Breach).unwrap();
    assert_eq!((breach.due, breach.at), (sh(2026, 11, 23, 21, 0), sh(2026, 11, 24, 9, 0)));
    let progress = planned(&p, SlaClockKind::ProgressUpdate);
    let update = progress.points.iter().find(|p| p.kind == PointKind::UpdateDue).unwrap();
    assert_eq!(update.at, update.due, "the customer's update is not a staff reminder");
}

// ---- the calendar at its boundaries ----------------------------------------

/// (case, received, target, expected deadline) on the shipped calendar.
#[test]
fn boundaries_of_the_shipped_calendar() {
    let cases = [
        // One minute on Friday, 7 h 59 min on Monday.
        ("Friday 17:59", sh(2026, 11, 20, 17, 59), "medium", sh(2026, 11, 23, 17, 59)),
        ("lunch", sh(2026, 11, 24, 12, 30), "high", sh(2026, 11, 24, 17, 0)),
        ("midnight", sh(2026, 11, 24, 0, 0), "high", sh(2026, 11, 24, 14, 0)),
        // National Day: 1-7 October 2026 off; the eve's afternoon counts.
        ("holiday eve", sh(2026, 9, 30, 17, 0), "high", sh(2026, 10, 8, 12, 0)),
        // Sunday 20 September 2026 is a make-up working day.
        ("make-up Sunday", sh(2026, 9, 19, 10, 0), "high", sh(2026, 9, 20, 13, 0) + Duration::hours(1)),
        // Spring Festival 2026: Saturday 14 February worked, 15-23 off.
        ("spring festival eve", sh(2026, 2, 14, 17, 0), "medium", sh(2026, 2, 24, 17, 0)),
    ];
    for (case, received, priority, expected) in cases {
        let p = if priority == "high" { Priority::High } else { Priority::Medium };
        let s = Story::new(p, "repair", "", received);
        let response = clock(&s.clocks(&policy(), received), SlaClockKind::Response).clone();
        assert_eq!(at(&response.deadline), expected, "{case}");
    }
}

#[test]
fn a_calendar_in_another_zone_than_the_server_counts_in_its_own() {
    let ny: Tz = chrono_tz::America::New_York;
    let calendar = "[calendar]\nname = \"us-east\"\ntime_zone = \"America/New_York\"\nworking_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\nworking_hours = [\"09:00-17:00\"]\nholidays = [\"2026-11-26\"]\nextra_working_days = []\n";
    let policy = Policy::from_toml(Some(calendar), "test").unwrap();
    // Wednesday 25 Nov 15:00 New York; Thursday is Thanksgiving.
    let received = ny.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap().with_timezone(&Utc);
    let s = Story::new(Priority::High, "repair", "", received);
    let response = clock(&s.clocks(&policy, received), SlaClockKind::Response).clone();
    assert_eq!(at(&response.deadline), ny.with_ymd_and_hms(2026, 11, 27, 11, 0, 0).unwrap().with_timezone(&Utc));
    assert_eq!(response.calendar, "us-east");
}

// ---- policy text helpers ------------------------------------------------------

/// The shipped `[sla]` section with one `key = value` line replaced.
fn sla_with(line: &str) -> String {
    let shipped = kesu_domain::policy::DEFAULT_POLICY_FILES.iter().find(|(f, _)| *f == "sla.toml").unwrap().1;
    let key = line.split('=').next().unwrap().trim();
    let mut found = false;
    let text: Vec<String> = shipped
        .lines()
        .map(|l| {
            if l.split('=').next().is_some_and(|k| k.trim() == key) && !found {
                found = true;
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "{key} is in the shipped [sla]");
    text.join("\n")
}

fn sla_with_overrides(extra: &str) -> String {
    let shipped = kesu_domain::policy::DEFAULT_POLICY_FILES.iter().find(|(f, _)| *f == "sla.toml").unwrap().1;
    format!("{shipped}\n{extra}")
}
