//! Turning an accepted feedback into a ticket: classification from the
//! text and the stated values, priority with its reasons, department.
//! (The handler is chosen afterwards, see `assign`.)

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kesu_domain::time::to_timestamp;
use kesu_domain::{Policy, Priority};
use kesu_proto::v1::{Feedback, Ticket, TicketStatus};

use crate::classify::{Classifier, Stated};
use crate::priority::{Factors, PriorityScorer};

/// Department of tickets nobody could classify.
pub const TRIAGE: &str = "triage";

/// The policy with its text rules compiled: what creating a ticket needs.
/// Built once per policy.
#[derive(Debug)]
pub struct Rules {
    pub policy: Arc<Policy>,
    pub classifier: Classifier,
    pub priorities: PriorityScorer,
}

impl Rules {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { classifier: Classifier::new(&policy), priorities: PriorityScorer::new(&policy), policy }
    }
}

/// The text a feedback's problem is read from: title and description.
pub fn problem_text(feedback: &Feedback) -> String {
    [feedback.title.as_str(), feedback.description.as_str()]
        .into_iter()
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ticket for a newly accepted feedback (version 1), not yet assigned:
/// `new` in its type's department, or `triage` when unclassified.
pub fn from_feedback(feedback: &Feedback, ticket_id: String, rules: &Rules, now: DateTime<Utc>) -> Ticket {
    let policy = &rules.policy;
    let text = problem_text(feedback);
    let request_text = feedback.customer_request.as_ref().map(|r| r.detail.as_str()).unwrap_or_default();
    let channel = kesu_proto::v1::Channel::try_from(feedback.channel)
        .ok()
        .and_then(kesu_domain::channel_token)
        .unwrap_or_default();
    let stated = Stated {
        channel,
        type_code: &feedback.problem_type,
        cause_code: &feedback.problem_cause,
        nature: feedback.request_nature,
        request: feedback.customer_request.as_ref().map(|r| r.kind).unwrap_or_default(),
        request_text,
    };
    let classification = rules.classifier.classify(&text, &stated, policy);
    let (department, status) = match policy.problem_type(&classification.type_code) {
        Some(t) => (t.department.clone(), TicketStatus::New),
        None => (TRIAGE.to_string(), TicketStatus::Triage),
    };
    let tier = feedback.customer.as_ref().map(|c| c.tier.as_str()).unwrap_or_default();
    let (priority, reasons) = rules.priorities.score(&Factors {
        text: &format!("{text}\n{request_text}"),
        nature: classification.request_nature,
        cause: &classification.cause_code,
        tier,
        affected_customers: feedback.affected_customers,
        stated: Priority::from_proto(feedback.urgency),
    });
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
        priority_reasons: reasons,
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

    fn rules() -> Rules {
        Rules::new(Arc::new(Policy::default_policy()))
    }

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
        let t = from_feedback(
            &feedback("logistics", "delivery_delay", WirePriority::High),
            "t1".into(),
            &rules(),
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
        let t =
            from_feedback(&feedback("teleportation", "", WirePriority::Unspecified), "t1".into(), &rules(), Utc::now());
        assert_eq!(t.department, TRIAGE);
        assert_eq!(t.status, TicketStatus::Triage as i32);
        assert_eq!(t.priority, WirePriority::Medium as i32);
        assert_eq!(status_name(t.status), "triage");
    }

    #[test]
    fn a_cause_outside_the_type_is_dropped() {
        let t =
            from_feedback(&feedback("billing", "delivery_delay", WirePriority::Low), "t1".into(), &rules(), Utc::now());
        assert_eq!(t.classification.unwrap().cause_code, "");
    }

    fn text(description: &str, locale: &str) -> Feedback {
        Feedback {
            feedback_id: "f1".into(),
            feedback_number: "FB202611230001".into(),
            description: description.into(),
            locale: locale.into(),
            ..Default::default()
        }
    }

    fn read(f: &Feedback) -> (String, String, &'static str, Vec<String>) {
        let t = from_feedback(f, "t1".into(), &rules(), Utc::now());
        let c = t.classification.unwrap();
        (c.type_code, c.cause_code, priority_name(t.priority), t.priority_reasons)
    }

    #[test]
    fn the_six_complaints_of_the_issue_differ() {
        let (ty, _, p, reasons) = read(&text("收银系统崩溃，全部门店无法支付，顾客排长队", "zh-CN"));
        assert_eq!((ty.as_str(), p), ("system_failure", "urgent"), "{reasons:?}");
        let (ty, cause, p, reasons) = read(&text("新买的洗衣机漏电，手碰到外壳有触电的感觉", "zh-CN"));
        assert_eq!((ty.as_str(), cause.as_str(), p), ("product_quality", "safety_hazard", "urgent"));
        assert!(reasons.iter().any(|r| r.starts_with("safety hazard: 漏电")), "{reasons:?}");
        let (ty, _, p, _) = read(&text("建议APP增加夜间模式，晚上用太刺眼", "zh-CN"));
        assert_eq!((ty.as_str(), p), ("product_function", "low"));
        let robot = text("扫地机器人开不了机，按电源键没有任何反应，希望换一台新的", "zh-CN");
        let t = from_feedback(&robot, "t1".into(), &rules(), Utc::now());
        let c = t.classification.unwrap();
        assert_eq!((c.type_code.as_str(), c.cause_code.as_str()), ("repair", "no_power"));
        assert_eq!(c.request_kind, kesu_proto::v1::CustomerRequestKind::Replace as i32);
        let (ty, cause, _, _) = read(&text("订单下了7天了还没发货，物流信息一直没更新", "zh-CN"));
        assert_eq!((ty.as_str(), cause.as_str()), ("logistics", "delivery_delay"));
        let refund = text("I was charged twice for my order, please refund the duplicate payment.", "en-GB");
        let t = from_feedback(&refund, "t1".into(), &rules(), Utc::now());
        let c = t.classification.unwrap();
        assert_eq!(
            (c.type_code.as_str(), c.cause_code.as_str(), t.department.as_str()),
            ("billing", "double_charge", "finance")
        );
        assert_eq!(c.request_kind, kesu_proto::v1::CustomerRequestKind::Refund as i32);
        assert!(!c.matched_keywords.is_empty());
    }

    #[test]
    fn a_vip_is_raised_and_the_reason_kept() {
        let mut f = text("订单下了7天了还没发货", "zh-CN");
        f.customer = Some(kesu_proto::v1::CustomerRef { tier: "vip".into(), ..Default::default() });
        let (_, _, p, reasons) = read(&f);
        assert_eq!(p, "high");
        assert!(reasons.iter().any(|r| r.starts_with("customer tier vip")), "{reasons:?}");
    }

    #[test]
    fn the_request_detail_tells_the_request_but_not_the_problem() {
        let mut f = text("请尽快联系我", "zh-CN");
        f.customer_request = Some(kesu_proto::v1::CustomerRequest { kind: 0, detail: "希望上门维修".into() });
        let t = from_feedback(&f, "t1".into(), &rules(), Utc::now());
        let c = t.classification.unwrap();
        assert_eq!((c.type_code.as_str(), t.status), ("", TicketStatus::Triage as i32));
        assert_eq!(c.request_kind, kesu_proto::v1::CustomerRequestKind::Repair as i32);
    }
}
