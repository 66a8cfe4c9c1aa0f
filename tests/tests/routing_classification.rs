//! Issue 9's six complaints through intake and routing: each becomes a
//! ticket classified from its text, prioritised with its reasons, assigned
//! in its department, and the urgent ones page their department head.

use kesu_proto::v1::ticket_service_client::TicketServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::routing::{ALWAYS_ON_DUTY, six_complaints};
use kesu_system_tests::{Backend, Role, TestSystem};

#[tokio::test]
async fn six_complaints_become_six_different_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, ALWAYS_ON_DUTY).unwrap();
    let env = [("KESU_POLICY_FILE", policy.to_str().unwrap())];
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &env).await;
    let mut numbers = Vec::new();
    for (channel, raw) in six_complaints("six") {
        let reply = system.submit(channel, &raw).await;
        assert_eq!(reply.outcome, SubmitOutcome::Accepted as i32, "{reply:?}");
        numbers.push(reply.feedback_number);
    }
    system.wait_for("TICKETS", "ticket.evt.created", 6).await;
    let mut tickets =
        TicketServiceClient::with_interceptor(system.channel("routing").await, system.bearer(Role::Supervisor));
    let mut got = Vec::new();
    for n in &numbers {
        let key = Some(get_ticket_request::Key::FeedbackNumber(n.clone()));
        got.push(tickets.get_ticket(GetTicketRequest { key }).await.unwrap().into_inner());
    }
    let class = |t: &Ticket| {
        let c = t.classification.clone().unwrap();
        (c.type_code, c.cause_code)
    };
    let [outage, leak, idea, robot, late, double] = &got[..] else { panic!("six tickets") };

    // A payment outage in every store: urgent, technology, the manager joins.
    assert_eq!(class(outage).0, "system_failure");
    assert_eq!((outage.priority, outage.department.as_str()), (Priority::Urgent as i32, "technology"));
    assert!(outage.priority_reasons.iter().any(|r| r.starts_with("outage:")), "{:?}", outage.priority_reasons);
    assert_eq!((outage.status, outage.handler.as_str()), (TicketStatus::Assigned as i32, "s-tech-01"));
    assert_eq!(outage.co_handlers, ["s-tech-head"]);

    // An appliance leaking current: a safety hazard, urgent, with its reason.
    assert_eq!(class(leak), ("product_quality".to_string(), "safety_hazard".to_string()));
    assert_eq!(
        (leak.priority, leak.department.as_str(), leak.handler.as_str()),
        (Priority::Urgent as i32, "quality", "s-qa-01")
    );
    assert!(leak.priority_reasons.iter().any(|r| r.starts_with("safety hazard: 漏电")), "{:?}", leak.priority_reasons);
    let leak_class = leak.classification.clone().unwrap();
    assert!(leak_class.matched_keywords.iter().any(|k| k == "漏电"), "{leak_class:?}");
    assert_eq!(leak_class.source, ClassificationSource::Rules as i32);

    // A suggestion: low, to product.
    assert_eq!(class(idea), ("product_function".to_string(), "missing_feature".to_string()));
    assert_eq!(idea.priority, Priority::Low as i32);
    let idea_class = idea.classification.clone().unwrap();
    assert_eq!(idea_class.request_nature, RequestNature::Suggestion as i32);
    assert_eq!(idea_class.request_kind, CustomerRequestKind::FeatureChange as i32);

    // A robot that won't power on, the customer asking for an exchange.
    assert_eq!(class(robot), ("repair".to_string(), "no_power".to_string()));
    assert_eq!(robot.classification.clone().unwrap().request_kind, CustomerRequestKind::Replace as i32);
    assert_eq!((robot.department.as_str(), robot.handler.as_str()), ("after_sales", "s-as-01"));

    // Not shipped for 7 days, from a VIP: logistics, raised to high.
    assert_eq!(class(late), ("logistics".to_string(), "delivery_delay".to_string()));
    assert_eq!((late.priority, late.department.as_str()), (Priority::High as i32, "operations"));
    assert!(late.priority_reasons.iter().any(|r| r.starts_with("customer tier vip")), "{:?}", late.priority_reasons);

    // An English double charge asking for a refund.
    assert_eq!(double.locale, "en-GB");
    assert_eq!(class(double), ("billing".to_string(), "double_charge".to_string()));
    assert_eq!((double.department.as_str(), double.handler.as_str()), ("finance", "s-fin-01"));
    assert_eq!(double.classification.clone().unwrap().request_kind, CustomerRequestKind::Refund as i32);

    // The two urgent tickets page their department heads in the same unit
    // of work, as version 2 of the ticket; nothing else is escalated.
    let escalated = system.wait_for("TICKETS", "ticket.evt.escalated", 2).await;
    let mut paged: Vec<(String, String, u64)> = escalated
        .iter()
        .map(|m| {
            let e: TicketEvent = m.decode();
            let Some(ticket_event::Kind::Escalated(x)) = e.kind else { panic!("not escalated") };
            assert_eq!(x.to_role, "department_head");
            (e.ticket.unwrap().ticket_id, x.to_staff, e.meta.unwrap().aggregate_version)
        })
        .collect();
    paged.sort();
    let mut expected = vec![
        (outage.ticket_id.clone(), "s-tech-head".to_string(), 2),
        (leak.ticket_id.clone(), "s-qa-head".to_string(), 2),
    ];
    expected.sort();
    assert_eq!(paged, expected);
    assert_eq!(system.messages("TICKETS", "ticket.evt.escalated").await.len(), 2);
    assert_eq!(outage.version, 2);
    assert_eq!(robot.version, 1);
    let history = tickets
        .get_ticket_history(GetTicketHistoryRequest { ticket_id: leak.ticket_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["created", "escalated"]);
    system.stop().await;
}
