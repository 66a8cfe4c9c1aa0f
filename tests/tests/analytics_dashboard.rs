//! The analytics dashboard in a real headless Chromium: after the fixture's
//! events, the page (logged in with a staff token, filtered to the week)
//! shows the hand-computed figures, draws its ECharts charts from the
//! binary (no network beyond analytics), updates without a reload when a
//! new ticket arrives, and switches language. A screenshot is left in
//! `target/test-artifacts/analytics-dashboard.png`.

use kesu_proto::v1::{Channel, Priority};
use kesu_system_tests::analytics::{AnalyticsUnderTest, FixtureTicket, Lifecycle, feed, local, publish_ticket};
use kesu_system_tests::browser::{Browser, artifact};
use kesu_system_tests::{Backend, Role, WAIT, eventually};

#[tokio::test]
async fn the_dashboard_shows_the_figures_and_updates_without_a_reload() {
    let Some(browser) = Browser::start().await else { return };
    let a = AnalyticsUnderTest::start(Backend::Sqlite, &[("KESU_ANALYTICS_REPORT_WEEKLY", "off")]).await.unwrap();
    feed(&a).await;
    let token = a.system.token(Role::Director);
    let page = a.system.endpoint("analytics").http_url("/dashboard?from=2026-11-23&to=2026-11-29&lang=en&refresh=2");
    browser.goto(&format!("{page}#token={token}")).await;
    eventually("the dashboard has loaded its figures", WAIT, || async {
        let loaded = browser.script("return Number(document.body.dataset.loaded || 0);").await;
        (loaded.as_i64()? >= 1).then_some(())
    })
    .await;
    // No error shown, the token left the address bar.
    assert_eq!(browser.script("return document.getElementById('error').hidden;").await, true);
    assert!(!browser.script("return location.href;").await.as_str().unwrap().contains("token"));

    // The figures, as computed by hand for the fixture (see analytics_rollups).
    let shown = |id: &'static str| browser.text(id);
    assert_eq!(shown("kpi-tickets").await, "6");
    assert_eq!(shown("kpi-response").await, "66.7%", "4 of 6 response clocks met");
    assert_eq!(shown("kpi-resolution").await, "75.0%", "3 of 4 resolution clocks met");
    assert_eq!(shown("kpi-satisfaction").await, "3.50");
    assert_eq!(shown("kpi-breaches").await, "2");
    assert_eq!(shown("kpi-at-risk").await, "1");
    assert_eq!(shown("kpi-reopen").await, "25.0%");
    assert_eq!(shown("kpi-repeat").await, "40.0%");
    let issue = browser.script("return document.querySelector('#issues tbody tr').innerText;").await;
    assert!(issue.as_str().unwrap().starts_with("CI1"), "{issue}");

    // The charts are ECharts instances drawn from the data.
    let series = |id: &str| {
        format!(
            "const c = echarts.getInstanceByDom(document.getElementById({id:?})); return c ? c.getOption().series : null;"
        )
    };
    let trend = browser.script(&series("chart-trend")).await;
    assert_eq!(trend[0]["data"], serde_json::json!([2, 1, 2, 1]), "{trend}");
    let sla = browser.script(&series("chart-sla")).await;
    assert_eq!(sla[0]["data"], serde_json::json!([100, 100, 0, 100]), "response by level: {sla}");
    let satisfaction = browser.script(&series("chart-satisfaction")).await;
    assert_eq!(satisfaction[0]["data"], serde_json::json!([0, 1, 1, 1, 1]), "{satisfaction}");
    let causes = browser.script(&series("chart-causes")).await;
    assert_eq!(causes[0]["data"].as_array().map(Vec::len), Some(4), "{causes}");
    assert_eq!(browser.text("chart-trend").await, "", "drawn on a canvas");
    assert_eq!(
        browser.script("return document.querySelector('#chart-trend canvas') !== null;").await,
        true,
        "ECharts drew a canvas"
    );

    // A new ticket: the page updates by itself (no reload: the marker stays).
    browser.script("window.kesuMarker = 'still here'; return null;").await;
    let t7 = FixtureTicket {
        id: "T7",
        received: local(2026, 11, 27, 11, 0),
        channel: Channel::Email,
        type_code: "billing",
        cause_code: "wrong_amount",
        department: "finance",
        priority: Priority::Medium,
        region: "south",
        tier: "normal",
        customer: "C9",
    };
    publish_ticket(&a, "created", &Lifecycle { t: &t7 }.created()).await;
    eventually("the dashboard shows the new ticket", WAIT, || async {
        (browser.text("kpi-tickets").await == "7").then_some(())
    })
    .await;
    assert_eq!(browser.script("return window.kesuMarker;").await, "still here");

    // In Chinese.
    browser.script("document.getElementById('lang-zh').click(); return null;").await;
    assert_eq!(browser.script("return document.querySelector('header h1').innerText;").await, "问题分析看板");
    eventually("the labels are in Chinese", WAIT, || async {
        (browser.script("return document.querySelector('[data-t=tickets]').innerText;").await == "工单量").then_some(())
    })
    .await;

    browser.screenshot(&artifact("analytics-dashboard.png")).await;
    assert!(artifact("analytics-dashboard.png").metadata().unwrap().len() > 10_000);

    // Without a token the page asks for one, and shows no figures.
    browser.script("sessionStorage.removeItem('kesu.token'); return null;").await;
    browser.goto(&a.system.endpoint("analytics").http_url("/dashboard?lang=en")).await;
    assert_eq!(browser.script("return document.getElementById('login').hidden;").await, false);
    assert_eq!(browser.script("return document.getElementById('board').hidden;").await, true);

    browser.quit().await;
    a.stop().await;
}
