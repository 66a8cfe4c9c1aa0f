//! The ticket lifecycle through the staff API, with the seeds' own examples:
//! every action, each change one event with the next version, history with
//! the staff id from the token, refused transitions naming the status,
//! stale versions aborted, and every action refused to roles and staff it
//! does not belong to.

use std::collections::BTreeSet;

use kesu_proto::v1::*;
use kesu_system_tests::lifecycle::{
    Desk, agent, as_handler, as_manager, at, desk, events_of, member, supervisor, ticket_for, wait_events,
};
use kesu_system_tests::{Backend, Role, TestSystem, WAIT, eventually, feedback};
use tonic::Code;

async fn system() -> TestSystem {
    TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await
}

/// Assigns the ticket to after-sales handler s-as-01 (as an agent).
async fn assign_to_handler(system: &TestSystem, ticket: &Ticket) -> Ticket {
    let mut agent = desk(system, &agent()).await;
    let request = ReassignRequest {
        ticket: at(ticket),
        department: "after_sales".into(),
        handler: "s-as-01".into(),
        co_handlers: vec!["s-as-02".into()],
        reason: "维修工程师负责".into(),
    };
    agent.reassign(request).await.expect("the agent assigns").into_inner()
}

fn communication(direction: CommunicationDirection, medium: &str, summary: &str) -> Option<Communication> {
    Some(Communication { direction: direction as i32, medium: medium.into(), summary: summary.into() })
}

#[tokio::test]
async fn a_robot_vacuum_that_will_not_power_on_is_handled_followed_up_closed_and_archived_as_a_case() {
    let system = system().await;
    let ticket = ticket_for(&system, "web", &feedback::robot_vacuum("life-zh-1")).await;
    let ticket = assign_to_handler(&system, &ticket).await;
    assert_eq!(ticket.status, TicketStatus::Assigned as i32);
    assert_eq!((ticket.handler.as_str(), ticket.co_handlers.as_slice()), ("s-as-01", &["s-as-02".to_string()][..]));

    let mut handler = desk(&system, &as_handler()).await;
    let t = handler.acknowledge(AcknowledgeRequest { ticket: at(&ticket) }).await.unwrap().into_inner();
    assert_eq!(t.status, TicketStatus::Acknowledged as i32);
    assert!(t.acknowledged_at.is_some());
    let t = handler
        .record_progress(RecordProgressRequest {
            ticket: at(&t),
            stage: ProgressStage::ContactedCustomer as i32,
            note: String::new(),
            communication: communication(
                CommunicationDirection::ToCustomer,
                "phone",
                "已电话联系客户，确认故障现象为设备无法通电，初步判断为电源模块损坏，需更换备件",
            ),
            notify_customer: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((t.status, t.stage), (TicketStatus::InProgress as i32, ProgressStage::ContactedCustomer as i32));
    let t = handler
        .wait_on_customer(WaitOnCustomerRequest { ticket: at(&t), reason: "等待客户提供购买凭证".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.status, TicketStatus::WaitingOnCustomer as i32);
    let t =
        handler.resume(ResumeRequest { ticket: at(&t), reason: "客户已上传发票".into() }).await.unwrap().into_inner();
    assert_eq!(t.status, TicketStatus::InProgress as i32);
    // A deadline moves only with a reason, by the department manager.
    let mut manager = desk(&system, &as_manager()).await;
    let in_two_days = prost_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 2 * 86_400, nanos: 0 };
    let no_reason = ExtendDeadlineRequest {
        ticket: at(&t),
        clock: SlaClockKind::Resolution as i32,
        new_deadline: Some(in_two_days),
        reason: " ".into(),
    };
    let refused = manager.extend_deadline(no_reason.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("reason:"), "{}", refused.message());
    let t = manager
        .extend_deadline(ExtendDeadlineRequest {
            reason: "配件缺货导致维修延迟，已申请加急配送".into(), ..no_reason
        })
        .await
        .unwrap()
        .into_inner();
    let t = handler
        .record_progress(RecordProgressRequest {
            ticket: at(&t),
            stage: ProgressStage::Done as i32,
            note: "上门更换电源模块".into(),
            communication: None,
            notify_customer: false,
        })
        .await
        .unwrap()
        .into_inner();
    let t = handler
        .resolve(ResolveRequest {
            ticket: at(&t),
            solution: "已更换电源模块，设备恢复正常运行；更换部件享6个月质保".into(),
            result: ResolutionResult::Resolved as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.status, TicketStatus::Resolved as i32);
    assert_eq!(t.resolution.as_ref().unwrap().resolved_by, "s-as-01");
    // A high-priority ticket closes only after the follow-up visit.
    let mut agent = desk(&system, &agent()).await;
    let early = agent.close(CloseRequest { ticket: at(&t), customer_confirmed: true, note: String::new() }).await;
    let early = early.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("the ticket is resolved"), "{}", early.message());
    let satisfaction = Satisfaction {
        score: 5,
        response_speed: 5,
        result: 5,
        attitude: 5,
        communication: 4,
        comment: "解决及时，服务态度好".into(),
        rated_at: None,
    };
    let t = agent.rate(RateRequest { ticket: at(&t), satisfaction: Some(satisfaction) }).await.unwrap().into_inner();
    assert_eq!(t.status, TicketStatus::FollowUp as i32);
    assert_eq!(t.satisfaction.as_ref().unwrap().score, 5);
    let t = agent
        .close(CloseRequest { ticket: at(&t), customer_confirmed: true, note: "客户确认已解决".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.status, TicketStatus::Closed as i32);
    let t = handler
        .archive(ArchiveRequest {
            ticket: at(&t),
            keywords: vec!["电源模块".into(), "无法开机".into()],
            add_to_case_library: true,
            case_entry: Some(CaseEntry {
                problem: "扫地机器人开机无反应".into(),
                root_cause: "电源模块批次质量问题".into(),
                direct_cause: "电源模块损坏".into(),
                indirect_cause: "来料检验未覆盖该批次".into(),
                solution: "更换电源模块".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.status, TicketStatus::Archived as i32);
    assert!(t.archive_number.starts_with("KB"), "{}", t.archive_number);

    // Every change was one event, versions one by one, actor from the token.
    let events = wait_events(&system, &t.ticket_id, t.version).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "assigned",
            "acknowledged",
            "progress",
            "waiting",
            "resumed",
            "deadline_extended",
            "progress",
            "resolved",
            "rated",
            "closed",
            "archived"
        ]
    );
    for (i, (_, e)) in events.iter().enumerate() {
        assert_eq!(e.meta.as_ref().unwrap().aggregate_version, i as u64 + 1);
        assert_eq!(e.ticket.as_ref().unwrap().version, i as u64 + 1);
    }
    assert_eq!(events[2].1.actor, "s-as-01");
    assert_eq!(events[6].1.actor, "s-as-head");
    let mut reader = desk(&system, &supervisor()).await;
    let history = reader
        .get_ticket_history(GetTicketHistoryRequest { ticket_id: t.ticket_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(history.len(), 12);
    assert_eq!((history[1].kind.as_str(), history[1].actor.as_str()), ("assigned", "s-cs-01"));
    assert!(history[3].summary.contains("to the customer by phone: 已电话联系客户"), "{}", history[3].summary);

    // The case library finds it by type and keyword.
    let found = reader
        .search_cases(SearchCasesRequest { page: None, type_code: "repair".into(), query: "电源模块".into() })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].archive_number, t.archive_number);
    assert_eq!(found[0].root_cause, "电源模块批次质量问题");
    assert_eq!(found[0].archived_by, "s-as-01");
    let none = reader
        .search_cases(SearchCasesRequest { page: None, type_code: "logistics".into(), query: "电源模块".into() })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert!(none.is_empty());
    system.stop().await;
}

/// Resolves the ticket as its handler (acknowledging first when needed).
async fn resolve(handler: &mut Desk, t: &Ticket, solution: &str) -> Ticket {
    let mut t = t.clone();
    if t.status == TicketStatus::Assigned as i32 {
        t = handler.acknowledge(AcknowledgeRequest { ticket: at(&t) }).await.unwrap().into_inner();
    }
    let request =
        ResolveRequest { ticket: at(&t), solution: solution.into(), result: ResolutionResult::Resolved as i32 };
    handler.resolve(request).await.unwrap().into_inner()
}

#[tokio::test]
async fn an_unhappy_english_customer_reopens_the_ticket_into_a_review_and_the_fourth_reopen_needs_a_supervisor() {
    let system = system().await;
    let ticket = ticket_for(&system, "email", &feedback::late_delivery("life-en-1")).await;
    assert_eq!(ticket.department, "operations");
    let mut agent = desk(&system, &agent()).await;
    let t = agent
        .reassign(ReassignRequest {
            ticket: at(&ticket),
            department: String::new(),
            handler: "s-ops-01".into(),
            co_handlers: vec![],
            reason: "logistics specialist".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((t.department.as_str(), t.handler.as_str()), ("operations", "s-ops-01"));
    let mut handler = desk(&system, &member("s-ops-01", Role::Handler, "operations")).await;
    let t = resolve(&mut handler, &t, "Re-shipped by express; the transit hub's sorting fault was fixed").await;
    let unhappy = Satisfaction {
        score: 2,
        result: 3,
        response_speed: 1,
        comment: "Took far too long".into(),
        ..Default::default()
    };
    let t = agent.rate(RateRequest { ticket: at(&t), satisfaction: Some(unhappy) }).await.unwrap().into_inner();
    assert_eq!(t.status, TicketStatus::Reopened as i32);
    assert_eq!((t.reopen_count, t.survey_round), (1, 1));
    let events = wait_events(&system, &t.ticket_id, t.version).await;
    let (kind, rated) = &events[events.len() - 2];
    assert_eq!(kind, "rated");
    let Some(ticket_event::Kind::Rated(r)) = &rated.kind else { panic!("rated") };
    assert_eq!((r.satisfaction.as_ref().unwrap().score, r.source.as_str()), (2, "staff"));
    let (kind, reopened) = &events[events.len() - 1];
    assert_eq!(kind, "reopened");
    let Some(ticket_event::Kind::Reopened(r)) = &reopened.kind else { panic!("reopened") };
    assert!(r.dissatisfaction_review);
    assert_eq!(r.review_lead, "s-sup-01", "operations has no supervisors of its own: the directory's");
    assert_eq!(reopened.meta.as_ref().unwrap().aggregate_version, rated.meta.as_ref().unwrap().aggregate_version + 1);

    // Two more reopens by the department manager, then only a supervisor.
    let mut manager = desk(&system, &member("s-ops-head", Role::DepartmentManager, "operations")).await;
    let mut t = t;
    for round in 2..=3 {
        t = resolve(&mut handler, &t, "Refund of the shipping fee").await;
        let request = ReopenRequest { ticket: at(&t), reason: "customer called again".into() };
        t = manager.reopen(request).await.unwrap().into_inner();
        assert_eq!(t.reopen_count, round);
    }
    t = resolve(&mut handler, &t, "Apology and a voucher").await;
    let fourth = manager.reopen(ReopenRequest { ticket: at(&t), reason: "still unhappy".into() }).await.unwrap_err();
    assert_eq!(fourth.code(), Code::FailedPrecondition);
    assert!(fourth.message().contains("a supervisor must decide"), "{}", fourth.message());
    let mut supervisor = desk(&system, &member("s-sup-01", Role::Supervisor, "customer_service")).await;
    let t = supervisor.reopen(ReopenRequest { ticket: at(&t), reason: "supervisor's decision".into() }).await;
    assert_eq!(t.unwrap().into_inner().reopen_count, 4);
    system.stop().await;
}

#[tokio::test]
async fn illegal_transitions_name_the_current_status_and_stale_versions_are_aborted() {
    let system = system().await;
    let ticket = ticket_for(&system, "web", &feedback::robot_vacuum("life-cc-1")).await;
    let ticket = assign_to_handler(&system, &ticket).await;
    let mut handler = desk(&system, &as_handler()).await;
    let refused = handler
        .resolve(ResolveRequest {
            ticket: at(&ticket),
            solution: "换新".into(),
            result: ResolutionResult::Resolved as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(refused.message(), "cannot resolve: the ticket is assigned; acknowledge it first");

    let acked = handler.acknowledge(AcknowledgeRequest { ticket: at(&ticket) }).await.unwrap().into_inner();
    assert_eq!(acked.version, ticket.version + 1);
    // A second editor still holding the old version is refused, nothing changes.
    let stale =
        handler.add_note(AddNoteRequest { ticket: at(&ticket), note: "客户来电催促".into() }).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert!(stale.message().contains(&format!("version {}", acked.version)), "{}", stale.message());
    let again = handler.acknowledge(AcknowledgeRequest { ticket: at(&acked) }).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(again.message(), "cannot acknowledge: the ticket is acknowledged");
    // Without a version the note goes on the latest one.
    let noted = handler
        .add_note(AddNoteRequest {
            ticket: Some(TicketRef { ticket_id: ticket.ticket_id.clone(), expected_version: 0 }),
            note: "客户来电催促".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(noted.version, acked.version + 1);
    let missing = handler
        .acknowledge(AcknowledgeRequest { ticket: Some(TicketRef { ticket_id: "nope".into(), expected_version: 0 }) })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    system.stop().await;
}

/// A valid request of each action on `t`.
async fn call(desk: &mut Desk, action: &str, t: &Ticket) -> Result<Ticket, tonic::Status> {
    let ticket = at(t);
    let reply = match action {
        "Acknowledge" => desk.acknowledge(AcknowledgeRequest { ticket }).await,
        "RecordProgress" => {
            let stage = ProgressStage::Diagnosed as i32;
            desk.record_progress(RecordProgressRequest { ticket, stage, note: "检查".into(), ..Default::default() })
                .await
        }
        "WaitOnCustomer" => desk.wait_on_customer(WaitOnCustomerRequest { ticket, reason: "等待照片".into() }).await,
        "Resume" => desk.resume(ResumeRequest { ticket, reason: String::new() }).await,
        "ExtendDeadline" => {
            let new_deadline =
                Some(prost_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 86_400, nanos: 0 });
            let clock = SlaClockKind::Resolution as i32;
            desk.extend_deadline(ExtendDeadlineRequest { ticket, clock, new_deadline, reason: "缺件".into() }).await
        }
        "Reassign" => {
            let handler = "s-as-01".into();
            desk.reassign(ReassignRequest { ticket, handler, reason: "调整".into(), ..Default::default() }).await
        }
        "Classify" => {
            let (type_code, cause_code) = ("repair".into(), "no_power".into());
            let reason = "复核".into();
            desk.classify(ClassifyRequest { ticket, type_code, cause_code, reason, ..Default::default() }).await
        }
        "SetPriority" => {
            let priority = Priority::High as i32;
            desk.set_priority(SetPriorityRequest { ticket, priority, reason: "VIP".into() }).await
        }
        "Escalate" => {
            let to_role = "supervisor".into();
            desk.escalate(EscalateRequest { ticket, to_role, reason: "客户投诉升级".into() }).await
        }
        "Resolve" => {
            let result = ResolutionResult::Resolved as i32;
            desk.resolve(ResolveRequest { ticket, solution: "更换".into(), result }).await
        }
        "Rate" => {
            let satisfaction = Some(Satisfaction { score: 5, ..Default::default() });
            desk.rate(RateRequest { ticket, satisfaction }).await
        }
        "Reopen" => desk.reopen(ReopenRequest { ticket, reason: "复发".into() }).await,
        "Close" => desk.close(CloseRequest { ticket, customer_confirmed: true, note: String::new() }).await,
        "Archive" => desk.archive(ArchiveRequest { ticket, ..Default::default() }).await,
        "AddNote" => desk.add_note(AddNoteRequest { ticket, note: "备注".into() }).await,
        other => panic!("no action {other}"),
    };
    reply.map(|r| r.into_inner())
}

const ACTIONS: [&str; 15] = [
    "Acknowledge",
    "RecordProgress",
    "WaitOnCustomer",
    "Resume",
    "ExtendDeadline",
    "Reassign",
    "Classify",
    "SetPriority",
    "Escalate",
    "Resolve",
    "Rate",
    "Reopen",
    "Close",
    "Archive",
    "AddNote",
];

#[tokio::test]
async fn every_action_is_refused_to_roles_the_table_does_not_allow_and_outside_the_callers_scope() {
    let system = system().await;
    let ticket = ticket_for(&system, "web", &feedback::robot_vacuum("life-roles-1")).await;
    let ticket = assign_to_handler(&system, &ticket).await;
    let table = &kesu_routing::roles::TABLE;
    let all_roles = [
        Role::Adapter,
        Role::Agent,
        Role::Handler,
        Role::Supervisor,
        Role::DepartmentManager,
        Role::Director,
        Role::Admin,
        Role::Analyst,
    ];
    let mut denied_pairs = 0;
    for action in ACTIONS {
        let rpc = table.rpcs.iter().find(|r| r.method == action).unwrap_or_else(|| panic!("{action} in the table"));
        for role in all_roles.iter().filter(|r| !rpc.roles.contains(r)) {
            let mut d = desk(&system, &member(&format!("s-x-{role}"), *role, "after_sales")).await;
            let refused = call(&mut d, action, &ticket).await.unwrap_err();
            assert_eq!(refused.code(), Code::PermissionDenied, "{action} as {role}: {refused:?}");
            denied_pairs += 1;
        }
    }
    assert!(denied_pairs >= ACTIONS.len() * 3, "{denied_pairs}");

    // Allowed roles, wrong ticket: another handler, another department's manager.
    let other_handler = member("s-as-03", Role::Handler, "after_sales");
    let other_manager = member("s-tech-head", Role::DepartmentManager, "technology");
    let mut scoped = BTreeSet::new();
    for staff in [other_handler, other_manager] {
        let mut d = desk(&system, &staff).await;
        for action in ACTIONS {
            let rpc = table.rpcs.iter().find(|r| r.method == action).unwrap();
            if !rpc.roles.contains(&staff.role) {
                continue;
            }
            let refused = call(&mut d, action, &ticket).await.unwrap_err();
            assert_eq!(refused.code(), Code::PermissionDenied, "{action} as {}: {refused:?}", staff.id);
            assert!(refused.message().contains("assigned to them"), "{}", refused.message());
            scoped.insert((staff.id.clone(), action));
        }
    }
    assert!(scoped.len() >= 12, "{scoped:?}");
    // Nothing changed the ticket.
    let events = events_of(&system, &ticket.ticket_id).await;
    assert_eq!(events.len(), 2, "created and assigned only");
    system.stop().await;
}

#[tokio::test]
async fn reclassifying_and_overriding_the_priority_need_a_reason_and_are_recorded() {
    let system = system().await;
    let ticket = ticket_for(&system, "web", &feedback::robot_vacuum("life-cls-1")).await;
    let mut manager = desk(&system, &as_manager()).await;
    let no_reason = ClassifyRequest {
        ticket: at(&ticket),
        type_code: "product_quality".into(),
        cause_code: String::new(),
        request_nature: 0,
        reason: String::new(),
    };
    let refused = manager.classify(no_reason.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("reason:"), "{}", refused.message());
    let unknown = manager.classify(ClassifyRequest { type_code: "teleport".into(), ..no_reason.clone() }).await;
    assert!(unknown.unwrap_err().message().starts_with("type_code:"));
    let t = manager
        .classify(ClassifyRequest { reason: "批次质量问题，转质量部".into(), ..no_reason })
        .await
        .unwrap()
        .into_inner();
    let c = t.classification.clone().unwrap();
    assert_eq!((c.type_code.as_str(), c.source), ("product_quality", ClassificationSource::Staff as i32));
    // Classified away from after-sales, it left the manager's department.
    let mut supervisor = desk(&system, &supervisor()).await;
    let t = supervisor
        .set_priority(SetPriorityRequest {
            ticket: at(&t),
            priority: Priority::Urgent as i32,
            reason: "涉及安全".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(t.priority_overridden);
    assert_eq!(t.priority, Priority::Urgent as i32);
    let events = wait_events(&system, &t.ticket_id, t.version).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["created", "classified", "prioritised", "escalated"]);
    let Some(ticket_event::Kind::Classified(c)) = &events[1].1.kind else { panic!() };
    assert!(c.correction);
    assert_eq!(c.previous.as_ref().unwrap().type_code, "repair");
    assert_eq!(c.reason, "批次质量问题，转质量部");
    let Some(ticket_event::Kind::Escalated(e)) = &events[3].1.kind else { panic!() };
    assert_eq!(e.to_role, "department_head");
    assert!(!e.to_staff.is_empty());
    system.stop().await;
}

/// Sends a customer's rating as an adapter does (request/reply).
async fn customer_rates(system: &TestSystem, payload: Vec<u8>) -> CustomerRatingResponse {
    use prost::Message;
    let reply = system.client.request("ticket.rate.web", payload.into()).await.expect("routing answers the rating");
    CustomerRatingResponse::decode(reply.payload.as_ref()).expect("a CustomerRatingResponse")
}

fn rating(ticket_id: &str, token: &str, score: u32, external_id: &str) -> Vec<u8> {
    use prost::Message;
    CustomerRating {
        ticket_id: ticket_id.into(),
        token: token.into(),
        satisfaction: Some(Satisfaction {
            score, attitude: score, comment: "师傅很专业".into(), ..Default::default()
        }),
        external_id: external_id.into(),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn a_customer_rates_with_the_survey_token_and_bad_or_reused_tokens_are_refused_and_kept() {
    let system = system().await;
    let ticket = ticket_for(&system, "web", &feedback::robot_vacuum("life-rate-1")).await;
    let ticket = assign_to_handler(&system, &ticket).await;
    let mut handler = desk(&system, &as_handler()).await;
    let t = resolve(&mut handler, &ticket, "已更换电源模块").await;
    let other = ticket_for(&system, "web", &feedback::robot_vacuum("life-rate-2")).await;
    let key = system.contact_key();
    let token = key.rating_token(&t.ticket_id, t.survey_round);

    // Someone else's token, or none, rates nothing.
    let foreign = customer_rates(&system, rating(&t.ticket_id, &key.rating_token(&other.ticket_id, 0), 5, "r-1")).await;
    assert!(!foreign.accepted);
    assert_eq!(foreign.field, "token");
    let bad_score = customer_rates(&system, rating(&t.ticket_id, &token, 9, "r-2")).await;
    assert_eq!((bad_score.accepted, bad_score.field.as_str()), (false, "satisfaction.score"));
    let garbage = customer_rates(&system, b"\xff\xff not protobuf".to_vec()).await;
    assert_eq!((garbage.accepted, garbage.field.as_str()), (false, "payload"));

    let ok = customer_rates(&system, rating(&t.ticket_id, &token, 4, "r-3")).await;
    assert!(ok.accepted, "{ok:?}");
    let reused = customer_rates(&system, rating(&t.ticket_id, &token, 1, "r-4")).await;
    assert!(!reused.accepted);
    assert_eq!(reused.field, "token");
    assert!(reused.message.contains("used already"), "{}", reused.message);

    let events = wait_events(&system, &t.ticket_id, t.version + 1).await;
    let (kind, rated) = events.last().unwrap();
    assert_eq!((kind.as_str(), rated.actor.as_str()), ("rated", "customer"));
    let Some(ticket_event::Kind::Rated(r)) = &rated.kind else { panic!("rated") };
    assert_eq!((r.source.as_str(), r.satisfaction.as_ref().unwrap().score), ("customer", 4));
    assert_eq!(rated.ticket.as_ref().unwrap().status, TicketStatus::FollowUp as i32);

    // Every refused attempt is kept, as sent, with the field and reason.
    let mut agent = desk(&system, &agent()).await;
    let kept = agent.list_rejected_ratings(ListRejectedRatingsRequest::default()).await.unwrap().into_inner().ratings;
    let fields: Vec<(&str, &str)> = kept.iter().map(|r| (r.field.as_str(), r.external_id.as_str())).collect();
    assert_eq!(fields, [("token", "r-4"), ("payload", ""), ("satisfaction.score", "r-2"), ("token", "r-1")]);
    assert!(kept.iter().all(|r| r.channel == "web"));
    system.stop().await;
}

async fn queue(system: &TestSystem, staff: &kesu_auth::Staff, queue: TicketQueue) -> Vec<String> {
    let mut d = desk(system, staff).await;
    let request = ListTicketsRequest { queue: queue as i32, ..Default::default() };
    d.list_tickets(request).await.unwrap().into_inner().tickets.into_iter().map(|t| t.ticket_id).collect()
}

/// Publishes an SLA event as sla-timer would.
async fn sla_event(system: &TestSystem, kind: &str, ticket_id: &str, event: sla_event::Kind) {
    use prost::Message;
    let id = uuid::Uuid::now_v7().to_string();
    let clock = SlaClock { ticket_id: ticket_id.into(), kind: SlaClockKind::Resolution as i32, ..Default::default() };
    let kind_with_clock = match event {
        sla_event::Kind::Warning(w) => sla_event::Kind::Warning(SlaWarning { clock: Some(clock), ..w }),
        sla_event::Kind::Met(_) => sla_event::Kind::Met(SlaMet { clock: Some(clock) }),
        other => other,
    };
    let message = SlaEvent {
        meta: Some(EventMeta { event_id: id.clone(), ..Default::default() }),
        ticket_id: ticket_id.into(),
        kind: Some(kind_with_clock),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.as_str());
    headers.insert("Kesu-Type", "kesu.v1.SlaEvent");
    let subject = format!("sla.evt.{kind}");
    system.js.publish_with_headers(subject, headers, message.encode_to_vec().into()).await.unwrap().await.unwrap();
}

#[tokio::test]
async fn work_queues_show_mine_my_department_unclassified_waiting_and_at_risk() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing", "sla-timer"], &[]).await;
    let ticket = ticket_for(&system, "web", &feedback::robot_vacuum("life-q-1")).await;
    let ticket = assign_to_handler(&system, &ticket).await;
    let mut vague = feedback::robot_vacuum("life-q-2");
    vague.problem_type = String::new();
    vague.problem_cause = String::new();
    vague.product = String::new();
    vague.description = "请尽快联系我".into();
    let unclassified = ticket_for(&system, "web", &vague).await;
    assert_eq!(unclassified.status, TicketStatus::Triage as i32, "a text without a hint stays unclassified");

    let id = vec![ticket.ticket_id.clone()];
    assert_eq!(queue(&system, &as_handler(), TicketQueue::Mine).await, id);
    let co_handler = member("s-as-02", Role::Handler, "after_sales");
    assert_eq!(queue(&system, &co_handler, TicketQueue::Mine).await, id, "co-handlers see it too");
    assert!(queue(&system, &member("s-as-03", Role::Handler, "after_sales"), TicketQueue::Mine).await.is_empty());
    assert_eq!(queue(&system, &as_manager(), TicketQueue::MyDepartment).await, id);
    let ops = member("s-ops-head", Role::DepartmentManager, "operations");
    assert!(queue(&system, &ops, TicketQueue::MyDepartment).await.is_empty());
    assert_eq!(queue(&system, &agent(), TicketQueue::Unclassified).await, vec![unclassified.ticket_id.clone()]);

    let mut handler = desk(&system, &as_handler()).await;
    let t = handler.acknowledge(AcknowledgeRequest { ticket: at(&ticket) }).await.unwrap().into_inner();
    assert!(queue(&system, &agent(), TicketQueue::WaitingOnCustomer).await.is_empty());
    let request = WaitOnCustomerRequest { ticket: at(&t), reason: "等待客户在家时间".into() };
    handler.wait_on_customer(request).await.unwrap();
    assert_eq!(queue(&system, &agent(), TicketQueue::WaitingOnCustomer).await, id);

    // sla-timer warns: the ticket is at risk until its clock is met.
    assert!(queue(&system, &supervisor(), TicketQueue::AtRisk).await.is_empty());
    let warning = SlaWarning { clock: None, percent_elapsed: 80 };
    sla_event(&system, "warning", &ticket.ticket_id, sla_event::Kind::Warning(warning)).await;
    let at_risk = eventually("the ticket at risk", WAIT, || async {
        let q = queue(&system, &supervisor(), TicketQueue::AtRisk).await;
        (!q.is_empty()).then_some(q)
    })
    .await;
    assert_eq!(at_risk, id);
    sla_event(&system, "met", &ticket.ticket_id, sla_event::Kind::Met(SlaMet { clock: None })).await;
    eventually("no longer at risk", WAIT, || async {
        queue(&system, &supervisor(), TicketQueue::AtRisk).await.is_empty().then_some(())
    })
    .await;
    system.stop().await;
}
