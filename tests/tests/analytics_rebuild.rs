//! Rebuilding analytics' rollups: emptied and replayed from the streams,
//! every answer is the same as before; the live consumer goes on without
//! counting anything twice; a stream that lost its first messages is only
//! replayed when forced.

use kesu_proto::v1::{
    AnalyticsQuery, GetSummaryRequest, RebuildRequest, SatisfactionRequest, SlaAttainmentRequest, TimeRange,
    VolumeRequest,
};
use kesu_system_tests::analytics::{AnalyticsUnderTest, Lifecycle, feed, local, publish_ticket, tickets};
use kesu_system_tests::{Backend, Role, WAIT, eventually};

fn week() -> Option<TimeRange> {
    Some(TimeRange {
        from: Some(kesu_domain::time::to_timestamp(local(2026, 11, 23, 0, 0))),
        to: Some(kesu_domain::time::to_timestamp(local(2026, 11, 30, 0, 0))),
    })
}

/// Every answer analytics gives for the fixture's week, as text.
async fn answers(a: &AnalyticsUnderTest) -> Vec<String> {
    let mut c = a.client(Role::Analyst).await;
    let q = || AnalyticsQuery { range: week(), filter: None };
    let mut out = vec![format!("{:?}", c.get_summary(GetSummaryRequest { range: None }).await.unwrap().into_inner())];
    for group_by in ["channel", "type", "cause", "department", "priority", "region", "tier", "hour", "day", "week"] {
        let v = VolumeRequest { range: None, group_by: group_by.into(), filter: None };
        out.push(format!("{:?}", c.get_volume(v).await.unwrap().into_inner()));
    }
    for group_by in ["priority", "type", "department"] {
        let r = SlaAttainmentRequest { range: week(), group_by: group_by.into(), filter: None };
        out.push(format!("{:?}", c.get_sla_attainment(r).await.unwrap().into_inner()));
        let r = SatisfactionRequest { range: week(), group_by: group_by.into(), filter: None };
        out.push(format!("{:?}", c.get_satisfaction(r).await.unwrap().into_inner()));
    }
    out.push(format!("{:?}", c.get_cause_shares(q()).await.unwrap().into_inner()));
    out.push(format!("{:?}", c.get_handling_times(q()).await.unwrap().into_inner()));
    out.push(format!("{:?}", c.get_rates(q()).await.unwrap().into_inner()));
    out.push(format!("{:?}", c.get_common_issue_stats(q()).await.unwrap().into_inner()));
    out.push(format!("{:?}", c.get_sla_risk(q()).await.unwrap().into_inner()));
    out
}

async fn a_rebuild_from_the_streams_gives_the_same_answers(backend: Backend) {
    let Some(a) = AnalyticsUnderTest::start(backend, &[("KESU_ANALYTICS_REPORT_WEEKLY", "off")]).await else {
        eprintln!("skipped: no PostgreSQL reachable");
        return;
    };
    feed(&a).await;
    let before = answers(&a).await;
    let published = a.system.messages("TICKETS", "ticket.evt.").await.len() as u64;

    // Admins only.
    let refused = a.client(Role::Analyst).await.rebuild_rollups(RebuildRequest { force: false }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let mut admin = a.client(Role::Admin).await;
    let stats = admin.rebuild_rollups(RebuildRequest { force: false }).await.unwrap().into_inner();
    let tickets_stream = stats.streams.iter().find(|s| s.stream == "TICKETS").unwrap();
    assert_eq!((tickets_stream.replayed, tickets_stream.applied, tickets_stream.skipped), (published, published, 0));
    assert_eq!(answers(&a).await, before, "the same answers after the rebuild");

    // The live consumer goes on, counting each new event once.
    let all = tickets();
    let t7 = kesu_system_tests::analytics::FixtureTicket { id: "T7", ..all[0].clone() };
    publish_ticket(&a, "created", &Lifecycle { t: &t7 }.created()).await;
    a.settled().await;
    let mut c = a.client(Role::Analyst).await;
    let summary = eventually("the new ticket is counted", WAIT, || {
        let mut c = c.clone();
        async move {
            let s = c.get_summary(GetSummaryRequest { range: None }).await.ok()?.into_inner();
            (s.tickets_created == 9).then_some(s)
        }
    })
    .await;
    assert_eq!(summary.tickets_created, 9, "8 fixture tickets and T7, none twice");
    let rates = c.get_rates(AnalyticsQuery { range: week(), filter: None }).await.unwrap().into_inner();
    assert_eq!(rates.tickets, 7);

    // A stream that lost its first messages: refused unless forced.
    let stream = a.system.js.get_stream("TICKETS").await.unwrap();
    stream.purge().sequence(3).await.unwrap();
    let refused = admin.rebuild_rollups(RebuildRequest { force: false }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().starts_with("force:") && refused.message().contains("TICKETS"), "{refused:?}");
    let stats = admin.rebuild_rollups(RebuildRequest { force: true }).await.unwrap().into_inner();
    let tickets_stream = stats.streams.iter().find(|s| s.stream == "TICKETS").unwrap();
    assert_eq!(tickets_stream.first_sequence, 3);
    assert_eq!(tickets_stream.replayed, published + 1 - 2);

    a.stop().await;
}

#[tokio::test]
async fn a_rebuild_from_the_streams_gives_the_same_answers_on_sqlite() {
    a_rebuild_from_the_streams_gives_the_same_answers(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_rebuild_from_the_streams_gives_the_same_answers_on_postgres() {
    a_rebuild_from_the_streams_gives_the_same_answers(Backend::Postgres).await;
}
