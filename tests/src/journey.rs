//! The end-to-end journey of one feedback through all five services,
//! asserted at each step; shared by the in-process end-to-end tests and the
//! `kesu all` test.

use kesu_proto::v1::analytics_service_client::AnalyticsServiceClient;
use kesu_proto::v1::notification_service_client::NotificationServiceClient;
use kesu_proto::v1::sla_service_client::SlaServiceClient;
use kesu_proto::v1::ticket_service_client::TicketServiceClient;
use kesu_proto::v1::*;

use crate::{Role, StoredMessage, TestSystem, WAIT, eventually, feedback};

/// A policy overlay (the shipped notification section) whose quiet hours
/// hold nothing, so a test on the real clock sees the customer's SMS at any
/// hour (quiet hours are tested on a manual clock:
/// tests/tests/notification_tracking.rs). Keep it while the system runs.
pub struct AnyHour {
    _dir: tempfile::TempDir,
    path: String,
}

impl AnyHour {
    pub fn new() -> AnyHour {
        let shipped = include_str!("../../shared/domain/policy/notification.toml");
        let quiet = "channels = [\"sms\"]\nexcept_priorities";
        assert!(shipped.contains(quiet), "the shipped quiet hours are not where AnyHour looks");
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("any-hour.toml");
        std::fs::write(&path, shipped.replacen(quiet, "channels = []\nexcept_priorities", 1)).expect("write");
        AnyHour { _dir: dir, path: path.display().to_string() }
    }

    /// The environment that loads it.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("KESU_POLICY_FILE", self.path.as_str())]
    }
}

impl Default for AnyHour {
    fn default() -> Self {
        Self::new()
    }
}

/// The trace the adapter starts in [`raw_feedback_ends_as_ticket_clocks_notification_and_counts`].
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The trace id of a message's `traceparent` header.
pub fn trace_id(m: &StoredMessage) -> String {
    let tp = m.header("traceparent").unwrap_or_else(|| panic!("{} has no traceparent", m.subject));
    kesu_telemetry::trace_id_of(tp).expect("well-formed traceparent").to_string()
}

/// One raw feedback in on a fresh system running all five services, and
/// what a user sees at each step: accepted event with the number and sealed
/// personal data, one ticket, SLA clocks armed, an acknowledgement
/// requested, analytics counts, one trace throughout.
pub async fn raw_feedback_ends_as_ticket_clocks_notification_and_counts(system: &TestSystem) {
    system.publish_raw("web", &feedback::robot_vacuum("web-1001"), Some(TRACEPARENT)).await;

    // Intake: accepted, numbered FB + local date + 0001, personal data sealed.
    let accepted = system.wait_for("FEEDBACK", "feedback.evt.accepted", 1).await;
    let event: FeedbackEvent = accepted[0].decode();
    assert_eq!((event.channel, event.external_id.as_str()), (Channel::Web as i32, "web-1001"));
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y%m%d").to_string();
    assert_eq!(event.feedback_number, format!("FB{today}0001"));
    let Some(feedback_event::Kind::Accepted(FeedbackAccepted { feedback: Some(record) })) = &event.kind else {
        panic!("not an accepted event: {event:?}");
    };
    let customer = record.customer.as_ref().unwrap();
    assert_eq!(customer.masked_name, "张*");
    assert_eq!(customer.contacts[0].masked, "138****5678");
    assert!(!contains(&accepted[0].payload, "13812345678"), "the clear phone number is not on the bus");
    assert!(!contains(&accepted[0].payload, "张三"), "the clear name is not on the bus");

    // Routing: one ticket with the stated urgency as priority.
    let created = system.wait_for("TICKETS", "ticket.evt.created", 1).await;
    let ticket_event: TicketEvent = created[0].decode();
    let ticket = ticket_event.ticket.unwrap();
    assert_eq!(ticket.priority, Priority::High as i32);
    assert_eq!(ticket.department, "after_sales");
    let mut tickets =
        TicketServiceClient::with_interceptor(system.channel("routing").await, system.bearer(Role::Supervisor));
    let by_number = tickets
        .get_ticket(GetTicketRequest {
            key: Some(get_ticket_request::Key::FeedbackNumber(event.feedback_number.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_number.ticket_id, ticket.ticket_id);
    // Classified from the text too; assigned to the engineer skilled in
    // "no_power" when on duty, else waiting in the department's queue.
    let classification = by_number.classification.clone().unwrap();
    assert_eq!((classification.type_code.as_str(), classification.cause_code.as_str()), ("repair", "no_power"));
    assert_eq!(by_number.priority_reasons, ["stated urgency: high"]);
    if by_number.handler.is_empty() {
        assert_eq!(by_number.status, TicketStatus::New as i32);
    } else {
        assert_eq!((by_number.status, by_number.handler.as_str()), (TicketStatus::Assigned as i32, "s-as-01"));
    }

    // sla-timer: response and resolution clocks for "high" (4h / 24h business).
    let armed = system.wait_for("SLA", "sla.evt.armed", 1).await;
    let sla: SlaEvent = armed[0].decode();
    let Some(sla_event::Kind::Armed(SlaArmed { clocks })) = sla.kind else { panic!("not armed") };
    let targets: Vec<(i32, &str)> = clocks.iter().map(|c| (c.kind, c.target.as_str())).collect();
    // (Plus the progress-update clock, and acknowledge once a handler is assigned.)
    assert!(targets.contains(&(SlaClockKind::Response as i32, "4h")), "{targets:?}");
    assert!(targets.contains(&(SlaClockKind::Resolution as i32, "24h")), "{targets:?}");
    let armed_clocks = clocks.len();
    let mut sla_client =
        SlaServiceClient::with_interceptor(system.channel("sla-timer").await, system.bearer(Role::Supervisor));
    let stored = sla_client
        .get_ticket_clocks(GetTicketClocksRequest { ticket_id: ticket.ticket_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.clocks.len(), armed_clocks);

    // Notification: an SMS acknowledgement with the number, addressed in clear
    // for the sender only; the delivery event carries no address.
    let requests = system.wait_for("NOTIFY_REQUESTS", "notify.req.sms", 1).await;
    let request: NotificationRequest = requests[0].decode();
    let recipient = request.recipient.unwrap();
    assert_eq!(recipient.address, "13812345678");
    assert_eq!(recipient.masked_address, "138****5678");
    assert!(request.body.contains(&event.feedback_number), "{}", request.body);
    assert!(request.body.contains("张*"), "the customer is greeted by their masked name: {}", request.body);
    assert!(!request.body.contains("张三"), "names in messages are masked: {}", request.body);
    assert_eq!(request.purpose, NotificationPurpose::Acknowledgement as i32);
    // The acknowledgement's event (staff are told of the assignment too).
    let requested: Vec<StoredMessage> = eventually("the acknowledgement requested", WAIT, || async {
        let all = system.messages("NOTIFICATIONS", "notify.evt.requested").await;
        let ack = all.into_iter().find(|m| {
            let e: NotificationEvent = m.decode();
            e.purpose == NotificationPurpose::Acknowledgement as i32
        })?;
        Some(vec![ack])
    })
    .await;
    assert!(!contains(&requested[0].payload, "13812345678"));
    let notifications = NotificationServiceClient::with_interceptor(
        system.channel("notification").await,
        system.bearer(Role::Supervisor),
    );
    // The acknowledgement (decided from the feedback) is listed under the
    // ticket once notification has seen the ticket.
    let acknowledgement = eventually("the acknowledgement listed under the ticket", WAIT, || {
        let mut notifications = notifications.clone();
        let ticket_id = ticket.ticket_id.clone();
        async move {
            let listed = notifications.list_deliveries(ListDeliveriesRequest { ticket_id, page: None }).await.ok()?;
            listed
                .into_inner()
                .deliveries
                .into_iter()
                .find(|d| d.purpose == NotificationPurpose::Acknowledgement as i32)
        }
    })
    .await;
    assert_eq!(acknowledgement.status, DeliveryStatus::Requested as i32);
    assert_eq!(acknowledgement.masked_address, "138****5678");

    // Analytics: the counts.
    let mut analytics =
        AnalyticsServiceClient::with_interceptor(system.channel("analytics").await, system.bearer(Role::Analyst));
    let summary = eventually("analytics counts everything", WAIT, || {
        let mut analytics = analytics.clone();
        async move {
            let s = analytics.get_summary(GetSummaryRequest { range: None }).await.unwrap().into_inner();
            // The acknowledgement, and staff notices once routing assigns a handler.
            let all =
                s.notifications_requested >= 1 && s.sla_clocks_armed == armed_clocks as u64 && s.tickets_created == 1;
            (all && s.feedback_received == 1 && s.feedback_accepted == 1).then_some(s)
        }
    })
    .await;
    assert_eq!((summary.feedback_received, summary.feedback_accepted), (1, 1));
    assert_eq!(summary.feedback_by_channel, [CountByKey { key: "web".into(), count: 1 }]);
    assert_eq!(summary.tickets_by_priority, [CountByKey { key: "high".into(), count: 1 }]);
    let volume = analytics
        .get_volume(VolumeRequest { range: None, group_by: "department".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(volume.rows, [CountByKey { key: "after_sales".into(), count: 1 }]);

    // One trace from the adapter through every service.
    for m in [&accepted[0], &created[0], &armed[0], &requests[0], &requested[0]] {
        assert_eq!(trace_id(m), TRACE_ID, "{} continues the adapter's trace", m.subject);
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}
