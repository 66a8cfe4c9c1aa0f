//! What each event counts as. Only ids, codes and counts are kept: events
//! carry personal data sealed or masked, and none of it is read here.

use kesu_proto::v1::{
    Channel, FeedbackEvent, NotificationEvent, SlaEvent, TicketEvent, feedback_event, notification_event, sla_event,
    ticket_event,
};

/// One counter increment: metric, dimension value, amount.
pub type Fact = (&'static str, String, i64);

fn one(metric: &'static str) -> Fact {
    (metric, String::new(), 1)
}

fn channel(c: i32) -> String {
    Channel::try_from(c).ok().and_then(kesu_domain::channel_token).unwrap_or("unknown").to_string()
}

pub fn of_feedback(e: &FeedbackEvent) -> Vec<Fact> {
    let by_channel = ("feedback.by_channel", channel(e.channel), 1);
    match &e.kind {
        Some(feedback_event::Kind::Accepted(_)) => vec![one("feedback.received"), one("feedback.accepted"), by_channel],
        Some(feedback_event::Kind::ReviewRequired(_)) => {
            vec![one("feedback.received"), one("feedback.pending_review"), by_channel]
        }
        Some(feedback_event::Kind::NeedsInfo(_)) => {
            vec![one("feedback.received"), one("feedback.needs_info"), by_channel]
        }
        Some(feedback_event::Kind::Rejected(_)) => vec![one("feedback.received"), one("feedback.rejected")],
        Some(feedback_event::Kind::Duplicate(_)) => vec![one("feedback.received"), one("feedback.duplicate")],
        _ => Vec::new(),
    }
}

pub fn of_ticket(e: &TicketEvent) -> Vec<Fact> {
    let Some(t) = &e.ticket else { return Vec::new() };
    match &e.kind {
        Some(ticket_event::Kind::Created(_)) => {
            let type_code = t.classification.as_ref().map(|c| c.type_code.as_str()).unwrap_or_default();
            vec![
                one("tickets.created"),
                (
                    "tickets.by_priority",
                    kesu_domain::Priority::from_proto(t.priority).map(|p| p.as_str()).unwrap_or("unspecified").into(),
                    1,
                ),
                ("tickets.by_department", t.department.clone(), 1),
                (
                    "tickets.by_type",
                    if type_code.is_empty() { "unclassified".into() } else { type_code.to_string() },
                    1,
                ),
                ("tickets.by_channel", channel(t.channel), 1),
            ]
        }
        Some(ticket_event::Kind::Resolved(_)) => vec![one("tickets.resolved")],
        Some(ticket_event::Kind::Reopened(_)) => vec![one("tickets.reopened")],
        _ => Vec::new(),
    }
}

pub fn of_sla(e: &SlaEvent) -> Vec<Fact> {
    match &e.kind {
        Some(sla_event::Kind::Armed(armed)) => vec![("sla.armed", String::new(), armed.clocks.len() as i64)],
        Some(sla_event::Kind::Breached(_)) => vec![one("sla.breached")],
        _ => Vec::new(),
    }
}

pub fn of_notification(e: &NotificationEvent) -> Vec<Fact> {
    let ch = match kesu_proto::v1::NotifyChannel::try_from(e.channel).unwrap_or_default() {
        kesu_proto::v1::NotifyChannel::Sms => "sms",
        kesu_proto::v1::NotifyChannel::Email => "email",
        kesu_proto::v1::NotifyChannel::App => "app",
        kesu_proto::v1::NotifyChannel::Unspecified => "none",
    };
    match &e.kind {
        Some(notification_event::Kind::Requested(_)) => {
            vec![one("notifications.requested"), ("notifications.by_channel", ch.to_string(), 1)]
        }
        Some(notification_event::Kind::Sent(_)) => vec![one("notifications.sent")],
        Some(notification_event::Kind::Failed(_)) => vec![one("notifications.failed")],
        Some(notification_event::Kind::Suppressed(_)) => vec![one("notifications.suppressed")],
        _ => Vec::new(),
    }
}
