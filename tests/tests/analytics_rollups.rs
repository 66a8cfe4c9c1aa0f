//! Analytics' figures against hand-computed ones for a fixed event set
//! (six tickets in the week of 2026-11-23, two older ones), fed with
//! events out of order and re-published under new message ids (what the
//! inbox cannot recognise), over gRPC and the HTTP JSON API, on SQLite and
//! PostgreSQL.
//!
//! The tickets (Shanghai time; response = first acknowledgement):
//! | id | received | channel | type/cause | dept | prio | customer | response | resolution | score |
//! |----|----------|---------|------------|------|------|----------|----------|------------|-------|
//! | T1 | Mon 09:00 | web | logistics/delivery_delay | logistics | high | C1 | 30 min | 4 h | 5 |
//! | T2 | Mon 10:00 | app | logistics/delivery_delay | logistics | medium | C2 | 2 h | 24 h, reopened | 2 |
//! | T3 | Tue 14:00 | web | logistics/lost_package | logistics | urgent | C1 | 10 min | open, CI1 | — |
//! | T4 | Wed 09:00 | phone | product_quality/defect (corrected) | after_sales | high | C3 | 2 h | 48 h | 4 |
//! | T5 | Wed 09:30 | web | logistics/lost_package | logistics | medium | C4 | — | open, CI1 | — |
//! | T6 | Thu 20:00 | app | service/attitude | customer_service | low | — | 5 min | 35 min | 3 |
//! | T0 | 11-10 | web | logistics | logistics | medium | C2 | (outside the range) |
//! | T00 | 10-01 | web | logistics | logistics | medium | C4 | (outside the range) |

use kesu_proto::v1::{
    AnalyticsFilter, AnalyticsQuery, SatisfactionRequest, SlaAttainmentRequest, TimeRange, VolumeRequest,
};
use kesu_system_tests::analytics::{AnalyticsUnderTest, feed, local};
use kesu_system_tests::{Backend, Role};

fn week() -> Option<TimeRange> {
    Some(TimeRange {
        from: Some(kesu_domain::time::to_timestamp(local(2026, 11, 23, 0, 0))),
        to: Some(kesu_domain::time::to_timestamp(local(2026, 11, 30, 0, 0))),
    })
}

fn keys(rows: &[kesu_proto::v1::CountByKey]) -> Vec<(&str, u64)> {
    rows.iter().map(|c| (c.key.as_str(), c.count)).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

async fn figures_match_the_hand_computed_ones(backend: Backend) {
    let Some(a) = AnalyticsUnderTest::start(backend, &[]).await else {
        eprintln!("skipped: no PostgreSQL reachable");
        return;
    };
    feed(&a).await;
    let mut client = a.client(Role::Analyst).await;
    let query = |filter: AnalyticsFilter| AnalyticsQuery { range: week(), filter: Some(filter) };
    let volume = |group_by: &str, filter: AnalyticsFilter| VolumeRequest {
        range: week(),
        group_by: group_by.into(),
        filter: Some(filter),
    };

    // Volumes, trends and peaks.
    let v = client.get_volume(volume("channel", Default::default())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("web", 3), ("app", 2), ("phone", 1)]);
    let v = client.get_volume(volume("day", Default::default())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("2026-11-23", 2), ("2026-11-24", 1), ("2026-11-25", 2), ("2026-11-26", 1)]);
    let v = client.get_volume(volume("week", Default::default())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("2026-W48", 6)]);
    let v = client.get_volume(volume("hour", Default::default())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("09", 3), ("10", 1), ("14", 1), ("20", 1)]);
    // T4's correction arrived before its creation: the correction stands.
    let v = client.get_volume(volume("type", Default::default())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("logistics", 4), ("product_quality", 1), ("service", 1)]);
    let logistics = AnalyticsFilter { department: "logistics".into(), ..Default::default() };
    let v = client.get_volume(volume("channel", logistics.clone())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("web", 3), ("app", 1)]);
    let east = AnalyticsFilter { region: "east".into(), tier: "vip".into(), ..Default::default() };
    let v = client.get_volume(volume("priority", east)).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("high", 2)]);
    // Whole history: the two older tickets too.
    let v = client
        .get_volume(VolumeRequest { group_by: "week".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(keys(&v), [("2026-W40", 1), ("2026-W46", 1), ("2026-W48", 6)]);

    // Cause and type shares.
    let causes = client.get_cause_shares(query(Default::default())).await.unwrap().into_inner();
    assert_eq!(causes.total, 6);
    let shares: Vec<(&str, u64, f64)> = causes.rows.iter().map(|r| (r.key.as_str(), r.count, r.share)).collect();
    assert_eq!(
        shares.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
        [("delivery_delay", 2), ("lost_package", 2), ("attitude", 1), ("defect", 1)]
    );
    assert!(close(shares[0].2, 1.0 / 3.0) && close(shares[3].2, 1.0 / 6.0), "{shares:?}");
    let types = client.get_type_shares(query(Default::default())).await.unwrap().into_inner();
    assert!(close(types.rows[0].share, 4.0 / 6.0), "{types:?}");

    // Time to respond and to resolve (nearest-rank percentiles).
    let times = client.get_handling_times(query(Default::default())).await.unwrap().into_inner();
    let response = times.response.unwrap();
    assert_eq!((response.count, response.median, response.p90), (5, 1800.0, 7200.0));
    assert_eq!(response.histogram.iter().map(|b| b.count).collect::<Vec<_>>(), [3, 2, 0, 0, 0, 0]);
    let resolution = times.resolution.unwrap();
    assert_eq!((resolution.count, resolution.median, resolution.p90), (4, 14400.0, 172800.0));
    assert_eq!(resolution.histogram.iter().map(|b| b.count).collect::<Vec<_>>(), [1, 1, 0, 1, 1, 0]);

    // SLA attainment by level: a breach stays a breach (T4), a duplicate
    // breach counts once (T2), a warning alone is undecided (T3).
    let sla = client
        .get_sla_attainment(SlaAttainmentRequest { range: week(), group_by: "priority".into(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let got: Vec<(&str, u64, u64, u64, u64)> = sla
        .iter()
        .map(|r| (r.key.as_str(), r.response_met, r.response_breached, r.resolution_met, r.resolution_breached))
        .collect();
    assert_eq!(got, [("high", 2, 0, 1, 1), ("low", 1, 0, 1, 0), ("medium", 0, 2, 1, 0), ("urgent", 1, 0, 0, 0)]);
    let high = &sla[0];
    assert_eq!((high.response_attainment, high.resolution_attainment), (1.0, 0.5));
    assert_eq!((high.response_median, high.response_p90), (1800.0, 7200.0));
    assert_eq!((high.resolution_median, high.resolution_p90), (14400.0, 172800.0));
    let by_department = client
        .get_sla_attainment(SlaAttainmentRequest { range: week(), group_by: "department".into(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let got: Vec<(&str, f64, f64)> =
        by_department.iter().map(|r| (r.key.as_str(), r.response_attainment, r.resolution_attainment)).collect();
    assert_eq!(got, [("after_sales", 1.0, 0.0), ("customer_service", 1.0, 1.0), ("logistics", 0.5, 1.0)]);
    let by_type = client
        .get_sla_attainment(SlaAttainmentRequest { range: week(), group_by: "type".into(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(by_type.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["logistics", "product_quality", "service"]);

    // Satisfaction: T2's rating (v4) arrived after its reopening (v5) and stands.
    let s = client
        .get_satisfaction(SatisfactionRequest { range: week(), group_by: String::new(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].rated, s[0].average, s[0].low_share), (4, 3.5, 0.5));
    assert_eq!(keys(&s[0].distribution), [("1", 0), ("2", 1), ("3", 1), ("4", 1), ("5", 1)]);
    let dims: Vec<(&str, f64)> = s[0].dimensions.iter().map(|d| (d.dimension.as_str(), d.average)).collect();
    assert_eq!(dims, [("response_speed", 3.25), ("result", 3.5), ("attitude", 4.0), ("communication", 3.25)]);
    let s = client
        .get_satisfaction(SatisfactionRequest { range: week(), group_by: "department".into(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let got: Vec<(&str, u64, f64, f64)> = s.iter().map(|r| (r.key.as_str(), r.rated, r.average, r.low_share)).collect();
    assert_eq!(got, [("after_sales", 1, 4.0, 0.0), ("customer_service", 1, 3.0, 1.0), ("logistics", 2, 3.5, 0.5)]);

    // Reopen, repeat (C2 had T0 13 days before; C1's T3 follows T1; C4's T00
    // is 55 days old) and reclassification rates.
    let r = client.get_rates(query(Default::default())).await.unwrap().into_inner();
    assert_eq!((r.tickets, r.resolved, r.reopened, r.reopen_rate), (6, 4, 1, 0.25));
    assert_eq!((r.with_customer, r.repeats, r.repeat_feedback_rate), (5, 2, 0.4));
    assert_eq!(r.reclassified, 1);
    assert!(close(r.reclassification_rate, 1.0 / 6.0));

    // Common issues: CI1 grew by two this week, still open.
    let ci = client.get_common_issue_stats(query(Default::default())).await.unwrap().into_inner();
    assert_eq!(ci.open, 1);
    let got: Vec<(&str, &str, bool, u64, u64)> = ci
        .issues
        .iter()
        .map(|i| (i.common_issue_id.as_str(), i.cause_code.as_str(), i.open, i.size, i.growth))
        .collect();
    assert_eq!(got, [("CI1", "lost_package", true, 2, 2)]);

    // Open breaches (T2 reopened, T5) and at-risk clocks (T3) of open tickets.
    let risk = client.get_sla_risk(query(Default::default())).await.unwrap().into_inner();
    assert_eq!((risk.open_breaches, risk.at_risk), (2, 1));
    assert_eq!(keys(&risk.breaches_by_department), [("logistics", 2)]);

    // The same figures as JSON on the HTTP port.
    let rows = a.table("/api/rates?from=2026-11-23&to=2026-11-29", Role::Director).await;
    assert_eq!(rows[0]["repeats"], 2);
    assert_eq!(rows[0]["reopen_rate"], 0.25);
    let rows = a.table("/api/causes?from=2026-11-23&to=2026-11-29&department=logistics", Role::Analyst).await;
    let got: Vec<(String, u64)> =
        rows.iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap())).collect();
    assert_eq!(got, [("delivery_delay".to_string(), 2), ("lost_package".to_string(), 2)]);
    let rows = a.table("/api/peaks_hour?from=2026-11-23&to=2026-11-29", Role::Supervisor).await;
    assert_eq!(rows[0], serde_json::json!({ "key": "09", "count": 3 }));
    let rows = a.table("/api/sla?from=2026-11-23&to=2026-11-29&group_by=department", Role::Admin).await;
    assert_eq!(rows[2]["key"], "logistics");
    assert_eq!(rows[2]["response_attainment"], 0.5);
    let rows = a.table("/api/times?from=2026-11-23&to=2026-11-29", Role::Analyst).await;
    assert_eq!((rows[1]["median_s"].as_f64(), rows[1]["p90_s"].as_f64()), (Some(14400.0), Some(172800.0)));

    // A department manager (after_sales) sees their department only.
    let mut manager = a.client(Role::DepartmentManager).await;
    let v = manager.get_volume(volume("channel", Default::default())).await.unwrap().into_inner().rows;
    assert_eq!(keys(&v), [("phone", 1)]);
    let refused = manager.get_volume(volume("channel", logistics)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let (status, body) =
        a.get("/api/volume?department=logistics", Some(&a.system.token(Role::DepartmentManager))).await;
    assert_eq!(status, 403, "{body}");

    // Bad input names the field; no token, no figures.
    let bad = client.get_volume(volume("colour", Default::default())).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().starts_with("group_by:"), "{}", bad.message());
    let (status, body) = a.get("/api/volume?from=yesterday", Some(&a.system.token(Role::Analyst))).await;
    assert_eq!(status, 400);
    assert!(body.contains("from"), "{body}");
    let (status, _) = a.get("/api/volume", None).await;
    assert_eq!(status, 401);
    let (status, _) = a.get("/api/volume", Some(&a.system.token(Role::Agent))).await;
    assert_eq!(status, 403);

    a.stop().await;
}

#[tokio::test]
async fn figures_match_the_hand_computed_ones_on_sqlite() {
    figures_match_the_hand_computed_ones(Backend::Sqlite).await;
}

#[tokio::test]
async fn figures_match_the_hand_computed_ones_on_postgres() {
    figures_match_the_hand_computed_ones(Backend::Postgres).await;
}
