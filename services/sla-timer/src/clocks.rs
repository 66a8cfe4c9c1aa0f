//! Arming a ticket's clocks from the policy and the business calendar.

use chrono::{DateTime, Utc};
use kesu_domain::target::Basis;
use kesu_domain::time::to_timestamp;
use kesu_domain::{Policy, Priority};
use kesu_proto::v1::{ClockBasis, SlaClock, SlaClockKind, SlaClockState, Ticket};

/// The response and resolution clocks of a new ticket, started at its
/// creation time (not at the time this runs: a late consumer does not move
/// deadlines).
pub fn arm(ticket: &Ticket, policy: &Policy, now: DateTime<Utc>) -> Vec<SlaClock> {
    let priority = Priority::from_proto(ticket.priority).unwrap_or(policy.default_priority());
    let class = ticket.classification.clone().unwrap_or_default();
    let started = ticket.created_at.as_ref().and_then(kesu_domain::time::from_timestamp).unwrap_or(now);
    let (response, resolution) = policy.sla().targets_for(priority, &class.type_code, &class.cause_code);
    let calendar = policy.calendar();
    let warn = policy.sla().warn_at_percent;
    [(SlaClockKind::Response, response), (SlaClockKind::Resolution, resolution)]
        .into_iter()
        .map(|(kind, chosen)| SlaClock {
            ticket_id: ticket.ticket_id.clone(),
            kind: kind as i32,
            priority: priority.to_proto() as i32,
            basis: match chosen.target.basis() {
                Basis::Business => ClockBasis::Business,
                Basis::Calendar => ClockBasis::Calendar,
            } as i32,
            target: chosen.target.text().to_string(),
            policy: chosen.policy,
            started_at: Some(to_timestamp(started)),
            deadline: Some(to_timestamp(chosen.target.deadline(started, calendar))),
            warn_at: Some(to_timestamp(chosen.target.point_at(started, warn, calendar))),
            state: SlaClockState::Running as i32,
            paused_for: Some(prost_types::Duration::default()),
            stopped_at: None,
            calendar: calendar.name().to_string(),
        })
        .collect()
}

/// `response`, `resolution`, … as stored.
pub fn kind_name(kind: i32) -> String {
    SlaClockKind::try_from(kind).unwrap_or_default().as_str_name().trim_start_matches("SLA_CLOCK_KIND_").to_lowercase()
}

pub fn state_name(state: i32) -> String {
    SlaClockState::try_from(state)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("SLA_CLOCK_STATE_")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kesu_domain::time::from_timestamp;
    use kesu_proto::v1::Classification;

    fn ticket(priority: kesu_proto::v1::Priority, type_code: &str, cause: &str, created: DateTime<Utc>) -> Ticket {
        Ticket {
            ticket_id: "t1".into(),
            priority: priority as i32,
            classification: Some(Classification {
                type_code: type_code.into(),
                cause_code: cause.into(),
                ..Default::default()
            }),
            created_at: Some(to_timestamp(created)),
            ..Default::default()
        }
    }

    fn shanghai(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn urgent_clocks_run_on_calendar_time() {
        let created = shanghai(2026, 11, 21, 22, 0); // a Saturday night
        let clocks = arm(
            &ticket(kesu_proto::v1::Priority::Urgent, "system_failure", "outage", created),
            &Policy::default_policy(),
            created,
        );
        assert_eq!(from_timestamp(clocks[0].deadline.as_ref().unwrap()), Some(shanghai(2026, 11, 21, 23, 0)));
        assert_eq!(from_timestamp(clocks[1].deadline.as_ref().unwrap()), Some(shanghai(2026, 11, 22, 22, 0)));
        assert_eq!(from_timestamp(clocks[0].warn_at.as_ref().unwrap()), Some(shanghai(2026, 11, 21, 22, 48)));
        assert_eq!(clocks[0].basis, ClockBasis::Calendar as i32);
    }

    #[test]
    fn medium_clocks_run_on_business_time() {
        let created = shanghai(2026, 11, 20, 16, 0); // Friday 16:00
        let clocks = arm(
            &ticket(kesu_proto::v1::Priority::Medium, "logistics", "", created),
            &Policy::default_policy(),
            created,
        );
        // 8 business hours: 2 h on Friday, then Monday 09:00-12:00 and 13:00-16:00.
        assert_eq!(from_timestamp(clocks[0].deadline.as_ref().unwrap()), Some(shanghai(2026, 11, 23, 16, 0)));
        // 3 business days: Wednesday 16:00.
        assert_eq!(from_timestamp(clocks[1].deadline.as_ref().unwrap()), Some(shanghai(2026, 11, 25, 16, 0)));
        assert_eq!(clocks[0].policy, "medium.response");
    }

    #[test]
    fn safety_hazards_get_fifteen_minutes() {
        let created = shanghai(2026, 11, 23, 10, 0);
        let clocks = arm(
            &ticket(kesu_proto::v1::Priority::Urgent, "product_quality", "safety_hazard", created),
            &Policy::default_policy(),
            created,
        );
        assert_eq!(from_timestamp(clocks[0].deadline.as_ref().unwrap()), Some(shanghai(2026, 11, 23, 10, 15)));
    }
}
