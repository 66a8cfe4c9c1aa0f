//! sla-timer on durable timers in virtual time: the escalation chain fires
//! with levels and recipient roles; overdue timers fire once, flagged late,
//! after a restart; two replicas on PostgreSQL fire each point once;
//! `GetTicketClocks` shows every planned point and `PreviewClocks` plans
//! without storing.

use std::collections::BTreeMap;

use chrono::Duration;
use kesu_domain::time::{from_timestamp, to_timestamp};
use kesu_proto::v1::{
    PreviewChange, PreviewClocksRequest, Priority, SlaClockKind, SlaClockState, SlaEvent, TicketStatus,
    WaitingOnCustomer, preview_change, sla_event, ticket_event,
};
use kesu_system_tests::sla::{SlaUnderTest, created, monday_morning, next};
use kesu_system_tests::{Backend, Role};

fn clock_kind(e: &SlaEvent) -> i32 {
    use sla_event::Kind;
    match &e.kind {
        Some(Kind::Warning(w)) => w.clock.as_ref().map(|c| c.kind),
        Some(Kind::Breached(b)) => b.clock.as_ref().map(|c| c.kind),
        Some(Kind::Escalated(x)) => x.clock.as_ref().map(|c| c.kind),
        Some(Kind::AckOverdue(a)) => a.clock.as_ref().map(|c| c.kind),
        _ => None,
    }
    .unwrap_or_default()
}

#[tokio::test]
async fn the_escalation_chain_fires_with_levels_and_roles_in_virtual_time() {
    let s = SlaUnderTest::start_on(Backend::Sqlite, monday_morning()).await.unwrap();
    let start = monday_morning();
    // Urgent: response 1 h, resolution 24 h, calendar time; assigned to h1.
    s.ticket_event(&created("T-1", Priority::Urgent, start)).await;
    let armed = s.wait_events("armed", 1).await;
    let Some(sla_event::Kind::Armed(a)) = &armed[0].kind else { panic!("armed") };
    let kinds: Vec<i32> = a.clocks.iter().map(|c| c.kind).collect();
    for k in [SlaClockKind::Acknowledge, SlaClockKind::Response, SlaClockKind::Resolution, SlaClockKind::ProgressUpdate]
    {
        assert!(kinds.contains(&(k as i32)), "{k:?} armed");
    }

    s.advance(Duration::hours(26));
    let warnings = s.wait_events("warning", 2).await;
    let breached = s.wait_events("breached", 2).await;
    let ack = s.wait_events("ack_overdue", 1).await;
    let escalated = s.wait_events("escalated", 1).await;
    let stale = s.wait_events("stale", 1).await;
    let updates = s.wait_events("update_due", 1).await;

    for w in &warnings {
        assert_eq!((w.level, w.recipient_roles.clone()), (0, vec!["handler".to_string()]));
        assert!(!w.fired_late);
    }
    let mut breached_kinds: Vec<i32> = breached.iter().map(clock_kind).collect();
    breached_kinds.sort();
    assert_eq!(breached_kinds, [SlaClockKind::Response as i32, SlaClockKind::Resolution as i32]);
    for b in &breached {
        assert_eq!((b.level, b.recipient_roles.clone()), (1, vec!["supervisor".to_string(), "handler".into()]));
    }
    assert_eq!((ack[0].level, ack[0].recipient_roles.clone()), (1, vec!["supervisor".to_string()]));
    assert_eq!(clock_kind(&ack[0]), SlaClockKind::Acknowledge as i32);
    let Some(sla_event::Kind::Escalated(x)) = &escalated[0].kind else { panic!("escalated") };
    assert_eq!((escalated[0].level, x.level, x.to_role.as_str()), (2, 2, "director"));
    assert_eq!(escalated[0].recipient_roles, ["director"]);
    assert_eq!(clock_kind(&escalated[0]), SlaClockKind::Response as i32, "response breached 25 h ago");
    assert_eq!(stale[0].recipient_roles, ["handler", "supervisor"]);
    let Some(sla_event::Kind::UpdateDue(u)) = &updates[0].kind else { panic!("update_due") };
    assert_eq!(u.sequence, 1);
    assert_eq!(escalated[0].ticket_id, "T-1");
    assert_eq!(escalated[0].handler, "h1");

    // Every point is visible with what fired and what is still planned.
    let mut client = s.client(Role::Supervisor).await;
    let clocks = client
        .get_ticket_clocks(kesu_proto::v1::GetTicketClocksRequest { ticket_id: "T-1".into() })
        .await
        .unwrap()
        .into_inner()
        .clocks;
    let resolution = clocks.iter().find(|c| c.kind == SlaClockKind::Resolution as i32).unwrap();
    assert_eq!(resolution.state, SlaClockState::Breached as i32);
    let points: Vec<(&str, bool)> = resolution.escalations.iter().map(|p| (p.point.as_str(), p.fired)).collect();
    assert_eq!(points, [("warning", true), ("breach", true), ("escalation", false)]);
    let planned = from_timestamp(resolution.escalations[2].at.as_ref().unwrap()).unwrap();
    assert_eq!(planned, start + Duration::hours(48));
    s.stop().await;
}

#[tokio::test]
async fn overdue_timers_fire_once_flagged_late_after_a_restart() {
    let mut s = SlaUnderTest::start_on(Backend::Sqlite, monday_morning()).await.unwrap();
    let start = monday_morning();
    let event = created("T-2", Priority::Urgent, start);
    s.ticket_event(&event).await;
    s.wait_events("armed", 1).await;
    s.settled().await;

    // Down for two hours: the response breach and the overdue
    // acknowledgement came due meanwhile.
    s.halt().await;
    s.advance(Duration::hours(2));
    s.restart().await;
    let breached = s.wait_events("breached", 1).await;
    let ack = s.wait_events("ack_overdue", 1).await;
    assert!(breached[0].fired_late && ack[0].fired_late, "flagged late");

    // Another restart fires nothing again; a later change is still applied.
    s.restart().await;
    let waiting = next(
        &event,
        start + Duration::hours(2),
        ticket_event::Kind::Waiting(WaitingOnCustomer { reason: "photo".into() }),
        TicketStatus::WaitingOnCustomer,
    );
    s.ticket_event(&waiting).await;
    let paused = s.wait_events("paused", 1).await;
    let Some(sla_event::Kind::Paused(p)) = &paused[0].kind else { panic!("paused") };
    assert!(p.clocks.iter().any(|c| c.kind == SlaClockKind::Resolution as i32));
    s.settled().await;
    assert_eq!(s.events("breached").await.len(), 1);
    assert_eq!(s.events("ack_overdue").await.len(), 1);
    assert_eq!(s.events("warning").await.len(), 1, "the response warning, once");
    s.stop().await;
}

#[tokio::test]
async fn two_replicas_on_postgres_fire_each_point_once() {
    let Some(mut s) = SlaUnderTest::start_on(Backend::Postgres, monday_morning()).await else {
        eprintln!("PostgreSQL is not reachable: skipped");
        return;
    };
    s.start_replica().await;
    let start = monday_morning();
    let n = 30;
    for i in 0..n {
        s.ticket_event(&created(&format!("T-{i:03}"), Priority::Urgent, start)).await;
    }
    s.wait_events("armed", n).await;
    s.settled().await;
    s.advance(Duration::minutes(61));
    let breached = s.wait_events("breached", n).await;
    let acks = s.wait_events("ack_overdue", n).await;
    s.settled().await;
    let mut per_ticket: BTreeMap<String, usize> = BTreeMap::new();
    for e in s.events("breached").await.iter().chain(s.events("ack_overdue").await.iter()) {
        *per_ticket.entry(e.ticket_id.clone()).or_default() += 1;
    }
    assert_eq!(per_ticket.len(), n);
    assert!(per_ticket.values().all(|c| *c == 2), "{per_ticket:?}");
    assert_eq!(breached.len() + acks.len(), 2 * n);
    s.stop().await;
}

#[tokio::test]
async fn preview_plans_a_policy_without_storing_anything() {
    let s = SlaUnderTest::start_on(Backend::Sqlite, monday_morning()).await.unwrap();
    let start = monday_morning();
    let mut client = s.client(Role::Admin).await;
    let change = |hours: i64, change| PreviewChange {
        at: Some(to_timestamp(start + Duration::hours(hours))),
        change: Some(change),
    };
    let request = PreviewClocksRequest {
        priority: Priority::Medium as i32,
        type_code: "repair".into(),
        start: Some(to_timestamp(start)),
        changes: vec![
            change(1, preview_change::Change::Pause(true)),
            change(25, preview_change::Change::Resume(true)),
            change(26, preview_change::Change::Priority(Priority::High as i32)),
        ],
        ..Default::default()
    };
    let clocks = client.preview_clocks(request.clone()).await.unwrap().into_inner().clocks;
    let response = clocks.iter().find(|c| c.kind == SlaClockKind::Response as i32).unwrap();
    // High: 4 business hours; 1 h used before the pause, 1 h after: 2 h left
    // from Tuesday 12:00 → Tuesday 15:00 over lunch.
    assert_eq!(response.target, "4h");
    assert_eq!(response.used.as_ref().unwrap().seconds, 2 * 3600);
    let tuesday_3pm = start + Duration::hours(29);
    assert_eq!(from_timestamp(response.deadline.as_ref().unwrap()), Some(tuesday_3pm));
    assert!(!response.escalations.is_empty());

    // A calendar to try instead of the live one.
    let round_the_clock = "[calendar]\nname = \"24x7\"\ntime_zone = \"Asia/Shanghai\"\nworking_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\nworking_hours = [\"00:00-23:59\"]\nholidays = []\nextra_working_days = []\n";
    let tried = PreviewClocksRequest { policy_toml: round_the_clock.into(), changes: vec![], ..request.clone() };
    let clocks = client.preview_clocks(tried).await.unwrap().into_inner().clocks;
    let response = clocks.iter().find(|c| c.kind == SlaClockKind::Response as i32).unwrap();
    assert_eq!(response.calendar, "24x7");
    assert_eq!(from_timestamp(response.deadline.as_ref().unwrap()), Some(start + Duration::hours(8)));

    // A bad policy is named; a handler may not preview.
    let bad = PreviewClocksRequest { policy_toml: "[sla]\nwarn_at_percent = 150\n".into(), ..request.clone() };
    let status = client.preview_clocks(bad).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("policy_toml: sla"), "{}", status.message());
    let mut handler = s.client(Role::Handler).await;
    assert_eq!(handler.preview_clocks(request).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    // Nothing stored.
    let status = client
        .get_ticket_clocks(kesu_proto::v1::GetTicketClocksRequest { ticket_id: "preview".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    s.stop().await;
}
