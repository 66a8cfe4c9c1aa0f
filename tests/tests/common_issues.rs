//! Common issues (共性问题): the same battery problem from three distinct
//! customers becomes one common issue, the reports are linked and raised to
//! urgent, later reports join, and fixing the issue resolves its tickets in
//! one action. Two routing replicas on PostgreSQL open one issue, never two.

use std::collections::BTreeSet;

use kesu_proto::v1::*;
use kesu_system_tests::lifecycle::{agent, desk, member, supervisor, wait_events};
use kesu_system_tests::{Backend, Role, TestSystem, WAIT, eventually, feedback};

/// A customer's report that the battery of the X1 drains within hours.
fn battery_report(customer: &str, external_id: &str) -> RawFeedback {
    let mut raw = feedback::robot_vacuum(external_id);
    raw.problem_type = "product_quality".into();
    raw.problem_cause = String::new();
    raw.urgency = Priority::Medium as i32;
    raw.description = format!("扫地机器人电池续航很短，充满电只能用半小时（客户 {customer}）");
    raw.customer.as_mut().unwrap().customer_number = customer.into();
    raw
}

/// The taxonomy's cause for a product defect.
const DEFECT: &str = "defect";

async fn issues(system: &TestSystem) -> Vec<CommonIssue> {
    let mut reader = desk(system, &agent()).await;
    reader.list_common_issues(ListCommonIssuesRequest::default()).await.unwrap().into_inner().issues
}

#[tokio::test]
async fn three_customers_with_the_same_battery_problem_make_one_common_issue_fixed_in_one_action() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await;
    let cause = DEFECT.to_string();
    let report = |customer: &str, id: &str| {
        let mut raw = battery_report(customer, id);
        raw.problem_cause = cause.clone();
        raw
    };
    // Two customers, one of them twice: not yet a common issue.
    for (customer, id) in [("C-1001", "ci-1"), ("C-1002", "ci-2"), ("C-1001", "ci-3")] {
        assert!(!system.submit("app", &report(customer, id)).await.feedback_number.is_empty());
    }
    system.wait_for("TICKETS", "ticket.evt.created", 3).await;
    system.wait_until_settled("FEEDBACK", "routing").await;
    assert!(issues(&system).await.is_empty(), "two distinct customers are not a common issue");

    // The third customer makes it one: all four reports linked, urgent.
    system.submit("app", &report("C-1003", "ci-4")).await;
    let issue = eventually("a common issue", WAIT, || async { issues(&system).await.into_iter().next() }).await;
    assert_eq!(issue.distinct_customers, 3);
    assert_eq!(issue.ticket_ids.len(), 4);
    assert_eq!(issue.status, CommonIssueStatus::Open as i32);
    assert_eq!(issue.priority, Priority::Urgent as i32);
    let policy = kesu_domain::Policy::default_policy();
    let mut reader = desk(&system, &agent()).await;
    for id in &issue.ticket_ids {
        let t = reader
            .get_ticket(GetTicketRequest { key: Some(get_ticket_request::Key::TicketId(id.clone())) })
            .await
            .unwrap()
            .into_inner();
        let c = t.classification.clone().unwrap();
        assert_eq!(
            (issue.type_code.as_str(), issue.cause_code.as_str()),
            (c.type_code.as_str(), c.cause_code.as_str())
        );
        assert_eq!(issue.department, policy.problem_type(&c.type_code).unwrap().department);
        assert_eq!(t.common_issue_id, issue.common_issue_id);
        assert_eq!(t.priority, Priority::Urgent as i32);
        assert!(t.priority_reasons.iter().any(|r| r == "common issue: 3 customers"), "{:?}", t.priority_reasons);
        let events = wait_events(&system, id, t.version).await;
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        let linked = kinds.iter().position(|k| *k == "linked").expect("linked");
        assert_eq!(kinds[linked..], ["linked", "prioritised", "escalated"]);
        let Some(ticket_event::Kind::Linked(l)) = &events[linked].1.kind else { panic!("linked") };
        assert!(l.opened_issue);
        let Some(ticket_event::Kind::Escalated(e)) = &events[linked + 2].1.kind else { panic!("escalated") };
        let head = policy.staff().department_head(&t.department).unwrap().id.clone();
        assert_eq!((e.to_role.as_str(), e.to_staff.as_str()), ("department_head", head.as_str()));
    }

    // A fourth customer joins the open issue.
    system.submit("app", &report("C-1004", "ci-5")).await;
    let joined = eventually("the fourth report joins", WAIT, || async {
        issues(&system).await.into_iter().next().filter(|i| i.ticket_ids.len() == 5)
    })
    .await;
    assert_eq!(joined.common_issue_id, issue.common_issue_id);
    assert_eq!(joined.distinct_customers, 4);
    assert_eq!(issues(&system).await.len(), 1);

    // Only the issue department's manager or a supervisor fixes it.
    let mut other = desk(&system, &member("s-ops-head", Role::DepartmentManager, "operations")).await;
    let fix = ResolveCommonIssueRequest {
        common_issue_id: issue.common_issue_id.clone(),
        solution: "更换新批次电池，并对该批次产品召回检测".into(),
        result: ResolutionResult::Resolved as i32,
        resolve_linked_tickets: true,
    };
    let denied = other.resolve_common_issue(fix.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let mut handler = desk(&system, &member("s-as-01", Role::Handler, "after_sales")).await;
    assert_eq!(handler.resolve_common_issue(fix.clone()).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let mut supervisor = desk(&system, &supervisor()).await;
    let fixed = supervisor.resolve_common_issue(fix.clone()).await.unwrap().into_inner();
    assert_eq!(fixed.status, CommonIssueStatus::Fixed as i32);
    for id in &fixed.ticket_ids {
        let t = reader
            .get_ticket(GetTicketRequest { key: Some(get_ticket_request::Key::TicketId(id.clone())) })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(t.status, TicketStatus::Resolved as i32, "{id}");
        let events = wait_events(&system, id, t.version).await;
        let (kind, last) = events.last().unwrap();
        assert_eq!((kind.as_str(), last.actor.as_str()), ("resolved", "s-sup-02"));
        let Some(ticket_event::Kind::Resolved(r)) = &last.kind else { panic!("resolved") };
        assert_eq!(r.common_issue_id, issue.common_issue_id);
    }
    let again = supervisor.resolve_common_issue(fix).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let got = reader
        .get_common_issue(GetCommonIssueRequest { common_issue_id: issue.common_issue_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, CommonIssueStatus::Fixed as i32);
    let open = ListCommonIssuesRequest { page: None, status: CommonIssueStatus::Open as i32 };
    assert!(reader.list_common_issues(open).await.unwrap().into_inner().issues.is_empty());
    system.stop().await;
}

#[tokio::test]
async fn two_routing_replicas_on_postgres_open_one_common_issue_never_two() {
    let Some(mut system) = TestSystem::try_start_with(Backend::Postgres, &["intake", "routing"], &[]).await else {
        eprintln!("PostgreSQL not reachable: skipped");
        return;
    };
    system.start_service("routing").await;
    let cause = DEFECT.to_string();
    // Many customers at once, spread over both replicas.
    let mut sends = Vec::new();
    for i in 0..12 {
        let mut raw = battery_report(&format!("C-20{i:02}"), &format!("pg-ci-{i}"));
        raw.problem_cause = cause.clone();
        sends.push(raw);
    }
    futures::future::join_all(sends.iter().map(|raw| system.submit("app", raw))).await;
    system.wait_for("TICKETS", "ticket.evt.created", 12).await;
    system.wait_until_settled("FEEDBACK", "routing").await;
    let all = issues(&system).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let issue = &all[0];
    assert_eq!(issue.ticket_ids.len(), 12);
    assert_eq!(issue.distinct_customers, 12);
    let ids: BTreeSet<&String> = issue.ticket_ids.iter().collect();
    assert_eq!(ids.len(), 12, "each ticket linked once");
    let linked = system.messages("TICKETS", "ticket.evt.linked").await;
    assert_eq!(linked.len(), 12);
    system.stop().await;
}
