//! Turning an accepted feedback into a ticket: classification from the
//! taxonomy, priority, department, and the created event.

use chrono::{DateTime, Utc};
use kesu_domain::time::to_timestamp;
use kesu_domain::{Policy, Priority};
use kesu_proto::v1::{Classification, ClassificationSource, Feedback, Ticket, TicketStatus};

/// Department of tickets nobody could classify.
pub const TRIAGE: &str = "triage";

/// The ticket for a newly accepted feedback (version 1).
pub fn from_feedback(feedback: &Feedback, ticket_id: String, policy: &Policy, now: DateTime<Utc>) -> Ticket {
    let stated_type = policy.problem_type(&feedback.problem_type);
    let (classification, department, status) = match stated_type {
        Some(t) => {
            let cause =
                t.causes.iter().find(|c| c.code == feedback.problem_cause).map(|c| c.code.clone()).unwrap_or_default();
            (
                Classification {
                    type_code: t.code.clone(),
                    cause_code: cause,
                    request_nature: feedback.request_nature,
                    source: ClassificationSource::Stated as i32,
                    matched_keywords: Vec::new(),
                    confidence: 1.0,
                    request_kind: feedback.customer_request.as_ref().map(|r| r.kind).unwrap_or_default(),
                },
                t.department.clone(),
                TicketStatus::New,
            )
        }
        None => (
            Classification { request_nature: feedback.request_nature, ..Default::default() },
            TRIAGE.to_string(),
            TicketStatus::Triage,
        ),
    };
    let (priority, reason) = match Priority::from_proto(feedback.urgency) {
        Some(p) => (p, format!("stated urgency: {p}")),
        None => (policy.default_priority(), format!("default priority: {}", policy.default_priority())),
    };
    let now_ts = to_timestamp(now);
    Ticket {
        ticket_id,
        version: 1,
        feedback_id: feedback.feedback_id.clone(),
        feedback_number: feedback.feedback_number.clone(),
        channel: feedback.channel,
        external_id: feedback.external_id.clone(),
        status: status as i32,
        priority: priority.to_proto() as i32,
        priority_reasons: vec![reason],
        classification: Some(classification),
        department,
        handler: String::new(),
        co_handlers: Vec::new(),
        customer: feedback.customer.clone(),
        locale: feedback.locale.clone(),
        time_zone: feedback.time_zone.clone(),
        title: feedback.title.clone(),
        description: feedback.description.clone(),
        customer_request: feedback.customer_request.clone(),
        product: feedback.product.clone(),
        order_number: feedback.order_number.clone(),
        region: feedback.region.clone(),
        attachments: feedback.attachments.clone(),
        affected_customers: feedback.affected_customers,
        submitted_at: feedback.submitted_at,
        created_at: Some(now_ts),
        updated_at: Some(now_ts),
        stated_urgency: feedback.urgency,
        occurred_at: feedback.occurred_at.clone(),
        received_at: feedback.received_at,
        no_reachable_contact: feedback.no_reachable_contact,
        ..Default::default()
    }
}

/// `new`, `triage`, … as stored and filtered.
pub fn status_name(status: i32) -> String {
    TicketStatus::try_from(status).unwrap_or_default().as_str_name().trim_start_matches("TICKET_STATUS_").to_lowercase()
}

/// `low` … `urgent`; `unspecified` for values this build does not know.
pub fn priority_name(priority: i32) -> &'static str {
    Priority::from_proto(priority).map(Priority::as_str).unwrap_or("unspecified")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::Priority as WirePriority;

    fn feedback(problem_type: &str, cause: &str, urgency: WirePriority) -> Feedback {
        Feedback {
            feedback_id: "f1".into(),
            feedback_number: "FB202611230001".into(),
            problem_type: problem_type.into(),
            problem_cause: cause.into(),
            urgency: urgency as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_stated_type_sets_department_and_the_stated_urgency_the_priority() {
        let policy = Policy::default_policy();
        let t = from_feedback(
            &feedback("logistics", "delivery_delay", WirePriority::High),
            "t1".into(),
            &policy,
            Utc::now(),
        );
        assert_eq!(t.department, "operations");
        assert_eq!(t.status, TicketStatus::New as i32);
        assert_eq!(t.priority, WirePriority::High as i32);
        assert_eq!(t.classification.as_ref().unwrap().cause_code, "delivery_delay");
        assert_eq!(t.priority_reasons, ["stated urgency: high"]);
    }

    #[test]
    fn unknown_types_go_to_triage_with_the_default_priority() {
        let policy = Policy::default_policy();
        let t =
            from_feedback(&feedback("teleportation", "", WirePriority::Unspecified), "t1".into(), &policy, Utc::now());
        assert_eq!(t.department, TRIAGE);
        assert_eq!(t.status, TicketStatus::Triage as i32);
        assert_eq!(t.priority, WirePriority::Medium as i32);
        assert_eq!(status_name(t.status), "triage");
    }

    #[test]
    fn a_cause_outside_the_type_is_dropped() {
        let policy = Policy::default_policy();
        let t =
            from_feedback(&feedback("billing", "delivery_delay", WirePriority::Low), "t1".into(), &policy, Utc::now());
        assert_eq!(t.classification.unwrap().cause_code, "");
    }
}
