//! Each rule of DOMAIN.md's "Notifications" table, end to end from the
//! event: notification alone, fed the events routing, sla-timer, intake and
//! analytics publish, asked what it requests from senders.

use chrono::{TimeZone, Utc};
use kesu_proto::v1::{
    AnalyticsEvent, DeadlineExtended, FeedbackNeedsInfo, FieldError, NotificationPurpose as P, NotificationRequest,
    NotifyChannel, Priority, ProgressRecorded, ProgressStage, ReportPublished, Resolution, ResolutionResult,
    Satisfaction, SlaAckOverdue, SlaBreached, SlaClock, SlaClockKind, SlaEscalated, SlaEvent, SlaStale, SlaUpdateDue,
    SlaWarning, TicketCreated, TicketEscalated, TicketRated, TicketResolved, analytics_event, feedback_event,
    sla_event, ticket_event::Kind,
};
use kesu_system_tests::Backend;
use kesu_system_tests::notification::{NotificationUnderTest, accepted, daytime, meta, ticket, ticket_event};

fn purpose(p: P) -> impl Fn(&NotificationRequest) -> bool {
    move |r| r.purpose == p as i32
}

fn to(r: &NotificationRequest) -> (String, String, i32) {
    let recipient = r.recipient.clone().unwrap_or_default();
    (recipient.staff_id, recipient.address, r.channel)
}

const SMS: i32 = NotifyChannel::Sms as i32;
const EMAIL: i32 = NotifyChannel::Email as i32;
const APP: i32 = NotifyChannel::App as i32;

#[tokio::test]
async fn customers_hear_about_their_feedback_and_ticket_on_their_channel() {
    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let sms_customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    let email_customer = n.customer(Some("13812345679"), Some("amy@example.com"), NotifyChannel::Email);

    // Accepted: the acknowledgement with the number, in the customer's language.
    n.feedback_event("accepted", &accepted("FB202611240001", sms_customer.clone(), "zh-CN", Priority::Medium)).await;
    n.feedback_event("accepted", &accepted("FB202611240002", email_customer.clone(), "en-GB", Priority::Medium)).await;
    let acks = n.wait_requests("two acknowledgements", 2, purpose(P::Acknowledgement)).await;
    let zh = acks.iter().find(|r| r.feedback_number == "FB202611240001").unwrap();
    assert_eq!((zh.channel, zh.recipient.as_ref().unwrap().address.as_str()), (SMS, "13812345678"));
    assert!(zh.body.contains("编号FB202611240001") && zh.body.contains("张*"), "{}", zh.body);
    let en = acks.iter().find(|r| r.feedback_number == "FB202611240002").unwrap();
    assert_eq!((en.channel, en.locale.as_str()), (EMAIL, "en"));
    assert_eq!(en.subject, "We received your feedback (FB202611240002)");
    assert!(en.html_body.contains("<html") && en.html_body.contains("FB202611240002"));
    let requested = n.wait_events("requested", 2).await;
    assert!(requested.iter().any(|e| e.feedback_number == "FB202611240001"), "events carry the feedback number");

    // Needs info: what to supplement.
    let mut needs = accepted("FB202611240003", sms_customer.clone(), "zh-CN", Priority::Low);
    let feedback = match needs.kind.take() {
        Some(feedback_event::Kind::Accepted(a)) => a.feedback,
        _ => unreachable!(),
    };
    needs.kind = Some(feedback_event::Kind::NeedsInfo(FeedbackNeedsInfo {
        feedback,
        missing: vec![FieldError { field: "description".into(), code: "vague".into(), message: "too vague".into() }],
    }));
    n.feedback_event("needs_info", &needs).await;
    let asked = n.wait_requests("needs info", 1, purpose(P::NeedsInfo)).await;
    assert!(asked[0].body.contains("问题描述"), "{}", asked[0].body);

    // The ticket's life, told to the customer.
    let t = ticket("T-0001", 1, sms_customer.clone());
    n.ticket_event("created", &ticket_event(&t, Kind::Created(TicketCreated {}))).await;
    let progress = ProgressRecorded {
        stage: ProgressStage::WaitingForParts as i32,
        note: "配件明天到".into(),
        notify_customer: true,
        ..Default::default()
    };
    n.ticket_event("progress", &ticket_event(&ticket("T-0001", 3, sms_customer.clone()), Kind::Progress(progress)))
        .await;
    let silent = ProgressRecorded { stage: ProgressStage::Diagnosed as i32, ..Default::default() };
    n.ticket_event("progress", &ticket_event(&ticket("T-0001", 4, sms_customer.clone()), Kind::Progress(silent))).await;
    let new_deadline = chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 26, 18, 0, 0).unwrap().with_timezone(&Utc);
    let extended = DeadlineExtended {
        clock: SlaClockKind::Resolution as i32,
        new_deadline: Some(kesu_domain::time::to_timestamp(new_deadline)),
        reason: "配件缺货".into(),
        ..Default::default()
    };
    n.ticket_event(
        "deadline_extended",
        &ticket_event(&ticket("T-0001", 5, sms_customer.clone()), Kind::DeadlineExtended(extended)),
    )
    .await;
    let resolved = TicketResolved {
        resolution: Some(Resolution {
            solution: "更换同型号新设备".into(),
            result: ResolutionResult::Resolved as i32,
            ..Default::default()
        }),
        common_issue_id: String::new(),
    };
    n.ticket_event(
        "resolved",
        &ticket_event(&ticket("T-0001", 6, sms_customer.clone()), Kind::Resolved(resolved.clone())),
    )
    .await;
    let told = n.wait_requests("progress", 1, purpose(P::ProgressUpdate)).await;
    assert!(told[0].body.contains("等待配件") && told[0].body.contains("配件明天到"), "{}", told[0].body);
    let ext = n.wait_requests("extension", 1, purpose(P::DeadlineExtended)).await;
    assert!(ext[0].body.contains("配件缺货") && ext[0].body.contains("2026-11-26 18:00"), "{}", ext[0].body);
    let result = n.wait_requests("result", 1, purpose(P::ResultNotice)).await;
    assert!(result[0].body.contains("已解决") && result[0].body.contains("更换同型号新设备"), "{}", result[0].body);
    let survey = n.wait_requests("survey", 1, purpose(P::SatisfactionSurvey)).await;
    let token = n.key.rating_token("T-0001", 0);
    assert!(
        survey[0].body.contains(&format!("token={token}")),
        "the survey link carries the rating token: {}",
        survey[0].body
    );

    // A common issue's resolution gets its own notice.
    let common = TicketResolved { common_issue_id: "CI-1".into(), ..resolved };
    n.ticket_event("resolved", &ticket_event(&ticket("T-0002", 6, email_customer.clone()), Kind::Resolved(common)))
        .await;
    let ci = n.wait_requests("common issue", 1, purpose(P::CommonIssueResolved)).await;
    assert_eq!(ci[0].channel, EMAIL);

    n.settled("TICKETS").await;
    assert_eq!(
        n.requests().await.iter().filter(|r| r.purpose == P::ProgressUpdate as i32).count(),
        1,
        "a silent progress tells nobody"
    );
    assert_eq!(n.requests().await.iter().filter(|r| r.purpose == P::ResultNotice as i32).count(), 1);
    n.stop().await;
}

#[tokio::test]
async fn staff_hear_about_assignments_urgent_tickets_and_low_scores() {
    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    let t = ticket("T-0101", 1, customer.clone());
    n.ticket_event("created", &ticket_event(&t, Kind::Created(TicketCreated {}))).await;
    let assigned = n.wait_requests("assignment email + app to handler and co-handler", 4, purpose(P::Assigned)).await;
    let mut got: Vec<_> = assigned.iter().map(to).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("s-as-01".to_string(), "a01@kesu.example".to_string(), EMAIL),
            ("s-as-01".into(), "s-as-01".into(), APP),
            ("s-as-02".into(), "a02@kesu.example".into(), EMAIL),
            ("s-as-02".into(), "s-as-02".into(), APP),
        ]
    );
    assert!(assigned[0].subject.contains("FB202611240001") || assigned.iter().any(|r| r.body.contains("扫地机器人")));

    // Urgent: the department head is paged by SMS at once.
    let escalated = TicketEscalated {
        level: 1,
        to_role: "department_head".into(),
        to_staff: "s-as-head".into(),
        reason: "漏电".into(),
    };
    n.ticket_event("escalated", &ticket_event(&ticket("T-0101", 2, customer.clone()), Kind::Escalated(escalated)))
        .await;
    let page = n.wait_requests("urgent page", 1, purpose(P::UrgentPage)).await;
    assert_eq!(to(&page[0]), ("s-as-head".into(), "13800000004".into(), SMS));
    assert!(page[0].body.contains("漏电"), "{}", page[0].body);

    // Score <= 3: the department's supervisor, by email.
    let rated = |score| TicketRated {
        satisfaction: Some(Satisfaction { score, comment: "太慢".into(), ..Default::default() }),
        source: "customer".into(),
    };
    n.ticket_event("rated", &ticket_event(&ticket("T-0101", 3, customer.clone()), Kind::Rated(rated(2)))).await;
    n.ticket_event("rated", &ticket_event(&ticket("T-0102", 3, customer.clone()), Kind::Rated(rated(4)))).await;
    let review = n.wait_requests("low score review", 1, purpose(P::LowScoreReview)).await;
    assert_eq!(to(&review[0]), ("s-sup-02".into(), "sup.02@kesu.example".into(), EMAIL));
    assert!(review[0].body.contains("太慢"));
    n.settled("TICKETS").await;
    assert_eq!(
        n.requests().await.iter().filter(|r| r.purpose == P::LowScoreReview as i32).count(),
        1,
        "a 4 is no review"
    );
    n.stop().await;
}

fn sla(ticket_id: &str, roles: &[&str], level: u32, kind: sla_event::Kind) -> SlaEvent {
    SlaEvent {
        meta: meta(ticket_id, 0),
        ticket_id: ticket_id.into(),
        feedback_number: "FB202611240001".into(),
        priority: Priority::High as i32,
        department: "after_sales".into(),
        handler: "s-as-01".into(),
        recipient_roles: roles.iter().map(|r| r.to_string()).collect(),
        level,
        kind: Some(kind),
        ..Default::default()
    }
}

fn clock(kind: SlaClockKind) -> Option<SlaClock> {
    Some(SlaClock {
        kind: kind as i32,
        deadline: Some(kesu_domain::time::to_timestamp(daytime())),
        ..Default::default()
    })
}

#[tokio::test]
async fn sla_events_reach_the_roles_they_name_and_reports_reach_management_on_sqlite() {
    sla_events_and_reports(Backend::Sqlite).await;
}

#[tokio::test]
async fn sla_events_reach_the_roles_they_name_and_reports_reach_management_on_postgres() {
    sla_events_and_reports(Backend::Postgres).await;
}

async fn sla_events_and_reports(backend: Backend) {
    let Some(n) = NotificationUnderTest::start_on(backend, daytime(), &[]).await else {
        eprintln!("PostgreSQL is not reachable: skipped");
        return;
    };
    let customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    n.ticket_event("created", &ticket_event(&ticket("T-0201", 1, customer), Kind::Created(TicketCreated {}))).await;
    n.settled("TICKETS").await;
    use sla_event::Kind as S;
    let events = [
        (
            "warning",
            sla(
                "T-0201",
                &["handler"],
                0,
                S::Warning(SlaWarning { clock: clock(SlaClockKind::Resolution), percent_elapsed: 80 }),
            ),
        ),
        (
            "breached",
            sla(
                "T-0201",
                &["supervisor", "handler"],
                1,
                S::Breached(SlaBreached { clock: clock(SlaClockKind::Resolution) }),
            ),
        ),
        (
            "escalated",
            sla(
                "T-0201",
                &["director"],
                2,
                S::Escalated(SlaEscalated { clock: clock(SlaClockKind::Resolution), level: 2, ..Default::default() }),
            ),
        ),
        (
            "ack_overdue",
            sla(
                "T-0201",
                &["supervisor"],
                1,
                S::AckOverdue(SlaAckOverdue { clock: clock(SlaClockKind::Acknowledge), handler: "s-as-01".into() }),
            ),
        ),
        ("stale", sla("T-0201", &["handler", "supervisor"], 0, S::Stale(SlaStale::default()))),
        ("update_due", sla("T-0201", &[], 0, S::UpdateDue(SlaUpdateDue { sequence: 1, ..Default::default() }))),
    ];
    for (kind, event) in &events {
        n.sla_event(kind, event).await;
    }
    let warning = n.wait_requests("warning", 1, purpose(P::SlaWarning)).await;
    assert_eq!(to(&warning[0]), ("s-as-01".into(), "a01@kesu.example".into(), EMAIL));
    assert!(warning[0].subject.contains("80%"), "{}", warning[0].subject);
    let breached = n.wait_requests("breach: supervisor and handler, sms and email", 4, purpose(P::SlaBreached)).await;
    let mut got: Vec<_> = breached.iter().map(|r| (to(r).0, r.channel)).collect();
    got.sort();
    assert_eq!(
        got,
        [("s-as-01".to_string(), SMS), ("s-as-01".into(), EMAIL), ("s-sup-02".into(), SMS), ("s-sup-02".into(), EMAIL)]
    );
    let escalated = n.wait_requests("escalation to the director", 2, purpose(P::SlaEscalated)).await;
    assert!(escalated.iter().all(|r| to(r).0 == "s-dir-01"));
    let overdue = n.wait_requests("ack overdue", 1, purpose(P::AckOverdue)).await;
    assert_eq!(to(&overdue[0]), ("s-sup-02".into(), "13800000003".into(), SMS));
    let stale = n.wait_requests("stale: handler and supervisor", 2, purpose(P::StaleReminder)).await;
    assert!(stale.iter().all(|r| r.channel == EMAIL));
    let update = n.wait_requests("the customer's progress update", 1, purpose(P::ProgressUpdate)).await;
    assert_eq!(to(&update[0]), (String::new(), "13812345678".into(), SMS));

    let report = AnalyticsEvent {
        meta: meta("R-2026-W48", 0),
        kind: Some(analytics_event::Kind::ReportPublished(ReportPublished {
            report_id: "R-2026-W48".into(),
            kind: "weekly".into(),
            title_zh: "问题分析报告 2026-W48".into(),
            title_en: "Problem analysis 2026-W48".into(),
            markdown_zh: "物流占投诉 30%".into(),
            html_zh: "<p>物流占投诉 30%</p>".into(),
            http_path: "/reports/weekly/2026-W48".into(),
            ..Default::default()
        })),
    };
    n.publish(
        "analytics.evt.report_published",
        "kesu.v1.AnalyticsEvent",
        &report.meta.as_ref().unwrap().event_id.clone(),
        &report,
    )
    .await;
    let mails = n.wait_requests("weekly report to management", 2, purpose(P::Report)).await;
    let mut whom: Vec<_> = mails.iter().map(|r| to(r).0).collect();
    whom.sort();
    assert_eq!(whom, ["s-cs-head", "s-dir-01"]);
    assert!(mails[0].html_body.contains("<p>物流占投诉 30%</p>"), "{}", mails[0].html_body);
    assert!(mails[0].body.contains("https://analytics.example.com/reports/weekly/2026-W48"));
    n.stop().await;
}

#[tokio::test]
async fn a_customer_who_cannot_be_reached_becomes_a_call_task_never_silence() {
    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let landline = n.customer(Some("4001234567"), None, NotifyChannel::Sms);
    n.feedback_event("accepted", &accepted("FB202611240301", landline.clone(), "zh-CN", Priority::Medium)).await;
    let suppressed = n.wait_events("suppressed", 1).await;
    assert_eq!(suppressed[0].purpose, P::Acknowledgement as i32);
    let mut t = ticket("T-0301", 1, landline.clone());
    t.no_reachable_contact = true;
    n.ticket_event("created", &ticket_event(&t, Kind::Created(TicketCreated {}))).await;
    let call = n.wait_requests("a call task for the handler", 1, purpose(P::CallCustomer)).await;
    assert_eq!(to(&call[0]), ("s-as-01".into(), "s-as-01".into(), APP));
    assert!(call[0].body.contains("400****4567") && call[0].body.contains("反馈已受理"), "{}", call[0].body);
    let resolved = TicketResolved {
        resolution: Some(Resolution {
            solution: "已远程修复".into(),
            result: ResolutionResult::Resolved as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut t2 = ticket("T-0301", 4, landline);
    t2.no_reachable_contact = true;
    n.ticket_event("resolved", &ticket_event(&t2, Kind::Resolved(resolved))).await;
    let calls = n.wait_requests("a call task about the result and the survey", 3, purpose(P::CallCustomer)).await;
    assert!(
        calls.iter().any(|r| r.body.contains("处理结果")),
        "{:?}",
        calls.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    n.settled("TICKETS").await;
    assert!(
        !n.requests().await.iter().any(|r| r.recipient.as_ref().unwrap().staff_id.is_empty()),
        "nothing goes to a landline"
    );
    n.stop().await;
}

#[tokio::test]
async fn a_ticket_unknown_to_notification_is_not_a_customer_update_lost() {
    // update_due may overtake the ticket's own event: it waits for it.
    let n = NotificationUnderTest::start(daytime(), &[("KESU_CONSUMER_RETRY_DELAY", "100ms")]).await;
    let customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    n.sla_event(
        "update_due",
        &sla("T-0401", &[], 0, sla_event::Kind::UpdateDue(SlaUpdateDue { sequence: 1, ..Default::default() })),
    )
    .await;
    kesu_system_tests::notification::pause(300).await;
    n.ticket_event("created", &ticket_event(&ticket("T-0401", 1, customer), Kind::Created(TicketCreated {}))).await;
    let update = n.wait_requests("the progress update once the ticket is known", 1, purpose(P::ProgressUpdate)).await;
    assert_eq!(update[0].ticket_id, "T-0401");
    n.stop().await;
}
