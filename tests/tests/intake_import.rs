//! Manual entry and bulk import: each row is taken or refused on its own,
//! naming the field; importing the same file again creates nothing twice.

use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::{Backend, Role, TestSystem, feedback};

const FILE: &str = "description,phone,customer_name,submitted_at,urgency,customer_request,channel\n\
    扫地机器人开机无反应，使用一周,13812345678,张三,2026-11-24 09:30,high,repair,store\n\
    电热水壶底座漏电，手碰到有麻的感觉,13900001111,李四,2026-11-24 10:00,urgent,replace,paper\n\
    有问题,13700002222,王五,2026-11-24 10:30,,,paper\n\
    没留电话的顾客说收到的货少了一件,,赵六,2026-11-24 11:00,,refund,paper\n\
    充电座坏了无法充电,13600003333,钱七,yesterday,soon,,paper\n";

#[tokio::test]
async fn a_csv_import_reports_per_row_and_a_reimport_creates_nothing_twice() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[]).await;
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let parsed = kesu_intake::import::parse_csv(FILE.as_bytes(), chrono_tz::Asia::Shanghai).unwrap();
    let (rows, unreadable): (Vec<_>, Vec<_>) = parsed.into_iter().partition(Result::is_ok);
    let rows: Vec<ImportRow> = rows.into_iter().map(Result::unwrap).collect();
    let unreadable: Vec<_> = unreadable.into_iter().map(Result::unwrap_err).collect();
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].row, 6);
    assert_eq!(unreadable[0].errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["submitted_at", "urgency"]);

    let summary = intake.import_feedback(futures::stream::iter(rows.clone())).await.unwrap().into_inner();
    assert_eq!(
        (summary.rows, summary.accepted, summary.needs_info, summary.rejected, summary.duplicates),
        (4, 2, 1, 1, 0),
        "{summary:?}"
    );
    let problems: Vec<(u64, i32, &str)> = summary
        .problems
        .iter()
        .map(|p| {
            let r = p.result.as_ref().unwrap();
            (p.row, r.outcome, r.errors[0].field.as_str())
        })
        .collect();
    assert_eq!(
        problems,
        [(4, SubmitOutcome::NeedsInfo as i32, "description"), (5, SubmitOutcome::Rejected as i32, "customer.contacts")]
    );

    let again = intake.import_feedback(futures::stream::iter(rows)).await.unwrap().into_inner();
    assert_eq!((again.accepted, again.needs_info, again.duplicates, again.rejected), (0, 0, 3, 1), "{again:?}");

    system.wait_for("TICKETS", "ticket.evt.created", 2).await;
    system.wait_until_settled("FEEDBACK", "routing").await;
    assert_eq!(system.messages("TICKETS", "ticket.evt.created").await.len(), 2, "one ticket per accepted row");
    system.stop().await;
}

#[tokio::test]
async fn manual_entry_needs_the_staff_id_and_keeps_the_form_reference() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let mut raw = feedback::robot_vacuum("store-1");
    raw.channel = Channel::Store as i32;
    let missing = intake
        .enter_feedback(ManualEntryRequest { feedback: Some(raw.clone()), source_reference: "form-17".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(missing.message().contains("entered_by"), "{missing:?}");
    raw.entered_by = "agent-007".into();
    let taken = intake
        .enter_feedback(ManualEntryRequest { feedback: Some(raw), source_reference: "form-17".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(taken.outcome, SubmitOutcome::Accepted as i32);
    let stored = intake
        .get_feedback(GetFeedbackRequest {
            key: Some(get_feedback_request::Key::FeedbackNumber(taken.feedback_number)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stored.entered_by.as_str(), stored.custom_fields["source_reference"].as_str()),
        ("agent-007", "form-17")
    );
    system.stop().await;
}
