//! The weekly problem analysis report (问题分析报告) of the fixture's week
//! 2026-W48: served over HTTP in Chinese and English, as HTML and Markdown,
//! over gRPC, announced on demand and on its schedule as
//! `analytics.evt.report_published` for notification to mail.

use chrono::{Datelike, Utc};
use kesu_proto::v1::{AnalyticsEvent, WeeklyReportRequest, analytics_event};
use kesu_system_tests::analytics::{AnalyticsUnderTest, feed, local};
use kesu_system_tests::{Backend, Role, WAIT, eventually};

async fn post(a: &AnalyticsUnderTest, path: &str, role: Role) -> (u16, String) {
    let url = a.system.endpoint("analytics").http_url(path);
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {}", a.system.token(role)))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn reports(a: &AnalyticsUnderTest) -> Vec<kesu_proto::v1::ReportPublished> {
    a.system
        .messages("ANALYTICS", "analytics.evt.report_published")
        .await
        .iter()
        .map(|m| m.decode::<AnalyticsEvent>())
        .filter_map(|e| match e.kind {
            Some(analytics_event::Kind::ReportPublished(r)) => Some(r),
            _ => None,
        })
        .collect()
}

async fn the_weekly_report_shows_the_weeks_figures_in_both_languages_and_is_announced(backend: Backend) {
    let Some(a) = AnalyticsUnderTest::start(backend, &[("KESU_ANALYTICS_REPORT_WEEKLY", "off")]).await else {
        eprintln!("skipped: no PostgreSQL reachable");
        return;
    };
    feed(&a).await;
    let token = a.system.token(Role::Director);

    // English Markdown: the figures computed by hand for the fixture.
    let (status, md) = a.get("/reports/weekly/2026-W48?locale=en&format=md", Some(&token)).await;
    assert_eq!(status, 200, "{md}");
    for expected in [
        "# Problem analysis report 2026-W48 (2026-11-23 to 2026-11-29)",
        "- Tickets: 6",
        "- Satisfaction: mean 3.50 (4 ratings, 50.0% scored 3 or less)",
        "- Reopen rate: 25.0%; repeat feedback within 30 days: 40.0%",
        "- Open tickets with a breached SLA: 2; at risk: 1",
        "| Logistics | 4 | 66.7% |",
        "| Delivery delay | 2 | 33.3% |",
        "| high | 100.0% | 50.0% | 2/0 | 1/1 |",
        "| Tickets | 6 | 0 | new |",
        "| CI1 | Logistics / lost_package | logistics | open | 2 | 2 |",
    ] {
        assert!(md.contains(expected), "{expected:?} in:\n{md}");
    }

    // Chinese HTML, escaped, same figures.
    let (status, html) = a.get("/reports/weekly/2026-W48?locale=zh&format=html", Some(&token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>问题分析报告 2026-W48</h1>"), "{html}");
    assert!(html.contains("<b id=\"tickets\">6</b>"), "{html}");
    assert!(html.contains("<td>物流配送</td><td>4</td><td>66.7%</td>"), "{html}");
    assert!(html.contains("<td>紧急</td>"), "{html}");

    // A department manager's report covers their department.
    let (_, md) =
        a.get("/reports/weekly/2026-W48?locale=en&format=md", Some(&a.system.token(Role::DepartmentManager))).await;
    assert!(md.contains("- Tickets: 1"), "{md}");

    // Bad input names the field.
    let (status, body) = a.get("/reports/weekly/2026-48", Some(&token)).await;
    assert_eq!(status, 400);
    assert!(body.contains("week"), "{body}");
    let (status, body) = a.get("/reports/weekly/2026-W48?locale=fr", Some(&token)).await;
    assert_eq!(status, 400);
    assert!(body.contains("locale"), "{body}");
    let (status, _) = a.get("/reports/weekly/2026-W48", None).await;
    assert_eq!(status, 401);

    // Over gRPC, for any instant of the week.
    let mut client = a.client(Role::Analyst).await;
    let report = client
        .get_weekly_report(WeeklyReportRequest {
            week_of: Some(kesu_domain::time::to_timestamp(local(2026, 11, 26, 12, 0))),
            locale: "en".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.top_types[0].key.as_str(), report.top_types[0].count), ("logistics", 4));
    assert_eq!((report.reopen_rate, report.repeat_feedback_rate), (0.25, 0.4));
    assert_eq!(report.sla.len(), 4);
    assert!(report.text.starts_with("# Problem analysis report 2026-W48"), "{}", report.text);
    assert!(report.summary.is_some());

    // Published on demand by management: the event notification mails.
    let (status, body) = post(&a, "/api/reports/weekly/2026-W48/publish", Role::Analyst).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(&a, "/api/reports/weekly/2026-W48/publish", Role::Director).await;
    assert_eq!(status, 200, "{body}");
    let published = eventually("the report is announced", WAIT, || async {
        let r = reports(&a).await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    let r = &published[0];
    assert_eq!((r.kind.as_str(), r.http_path.as_str()), ("weekly", "/reports/weekly/2026-W48"));
    assert_eq!(
        (r.title_zh.as_str(), r.title_en.as_str()),
        ("问题分析报告 2026-W48", "Problem analysis report 2026-W48")
    );
    assert!(r.markdown_en.contains("- Tickets: 6") && r.markdown_zh.contains("- 工单量：6"), "{r:?}");
    assert!(r.html_en.contains("<b id=\"tickets\">6</b>") && r.html_zh.contains("问题分析报告"));
    assert!(body.contains(&r.report_id), "{body}");

    a.stop().await;
}

#[tokio::test]
async fn last_weeks_report_is_announced_on_schedule_once() {
    let a = AnalyticsUnderTest::start(
        Backend::Sqlite,
        &[("KESU_ANALYTICS_REPORT_WEEKLY_AT", "00:00"), ("KESU_ANALYTICS_REPORT_CHECK_INTERVAL", "100ms")],
    )
    .await
    .unwrap();
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let monday = today - chrono::Duration::days(today.weekday().num_days_from_monday() as i64 + 7);
    let week = monday.iso_week();
    let expected = format!("/reports/weekly/{}-W{:02}", week.year(), week.week());
    let published = eventually("last week's report", WAIT, || async {
        let r = reports(&a).await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(published[0].http_path, expected);
    // The schedule's guard: one recorded report for the week, whatever the
    // number of checks since.
    let db = a.system.database("analytics", kesu_analytics::MIGRATIONS).await;
    let recorded: Vec<(String,)> =
        kesu_storage::sqlx::query_as("SELECT period FROM published_reports").fetch_all(db.pool()).await.unwrap();
    assert_eq!(recorded, [(format!("weekly:{}-W{:02}", week.year(), week.week()),)]);
    assert_eq!(reports(&a).await.len(), 1);
    a.stop().await;
}

#[tokio::test]
async fn the_weekly_report_shows_the_weeks_figures_in_both_languages_and_is_announced_on_sqlite() {
    the_weekly_report_shows_the_weeks_figures_in_both_languages_and_is_announced(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_weekly_report_shows_the_weeks_figures_in_both_languages_and_is_announced_on_postgres() {
    the_weekly_report_shows_the_weeks_figures_in_both_languages_and_is_announced(Backend::Postgres).await;
}
