//! The per-day rollups answer exactly as the fact rows do, for the fixed
//! event set of `analytics_rollups.rs` (fed out of order, with events
//! re-published under new message ids, the two older tickets last so the
//! repeat flags are raised late): a range on whole local days is read from
//! the rollups, the same range 1 ms later (no fixture ticket is received at
//! a midnight) from the fact rows. On SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use kesu_proto::v1::{AnalyticsFilter, AnalyticsQuery, SatisfactionRequest, TimeRange, VolumeRequest};
use kesu_system_tests::analytics::{AnalyticsUnderTest, feed, local};
use kesu_system_tests::{Backend, Role};

fn range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, shift_ms: i64) -> Option<TimeRange> {
    let at = |t: DateTime<Utc>| kesu_domain::time::to_timestamp(t + chrono::Duration::milliseconds(shift_ms));
    Some(TimeRange { from: from.map(at), to: to.map(at) })
}

async fn rollups_answer_as_the_fact_rows(backend: Backend) {
    let Some(a) = AnalyticsUnderTest::start(backend, &[]).await else {
        eprintln!("skipped: no PostgreSQL reachable");
        return;
    };
    feed(&a).await;
    let mut c = a.client(Role::Analyst).await;
    let epoch = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
    let ranges = [
        (Some(local(2026, 11, 23, 0, 0)), Some(local(2026, 11, 30, 0, 0))),
        (Some(local(2026, 11, 24, 0, 0)), Some(local(2026, 11, 26, 0, 0))),
        (Some(local(2026, 9, 1, 0, 0)), Some(local(2026, 12, 1, 0, 0))),
        (Some(epoch), None),
    ];
    let filter = |f: fn(&mut AnalyticsFilter)| {
        let mut filter = AnalyticsFilter::default();
        f(&mut filter);
        Some(filter)
    };
    let filters = [
        None,
        filter(|f| f.department = "logistics".into()),
        filter(|f| f.channel = "web".into()),
        filter(|f| {
            f.region = "east".into();
            f.tier = "vip".into();
        }),
        filter(|f| f.type_code = "logistics".into()),
    ];
    let mut compared = 0;
    for (from, to) in ranges {
        // From the epoch: 1 ms later is not a local midnight either way, so
        // the open range (whole history) stands for the rollup side.
        let whole = if from == Some(epoch) { Some(TimeRange::default()) } else { range(from, to, 0) };
        let shifted = range(from, to, 1);
        for f in &filters {
            let q = |range: Option<TimeRange>| AnalyticsQuery { range, filter: f.clone() };
            let rates = c.get_rates(q(whole)).await.unwrap().into_inner();
            assert_eq!(rates, c.get_rates(q(shifted)).await.unwrap().into_inner(), "rates {from:?} {f:?}");
            let causes = c.get_cause_shares(q(whole)).await.unwrap().into_inner();
            assert_eq!(causes, c.get_cause_shares(q(shifted)).await.unwrap().into_inner(), "causes {from:?} {f:?}");
            for group_by in ["", "channel", "type", "cause", "department", "priority", "region", "tier", "day", "week"]
            {
                let v = |range| VolumeRequest { range, group_by: group_by.into(), filter: f.clone() };
                let volume = c.get_volume(v(whole)).await.unwrap().into_inner();
                assert_eq!(volume, c.get_volume(v(shifted)).await.unwrap().into_inner(), "{group_by} {from:?} {f:?}");
                let s = |range| SatisfactionRequest { range, group_by: group_by.into(), filter: f.clone() };
                let sat = c.get_satisfaction(s(whole)).await.unwrap().into_inner();
                assert_eq!(
                    sat,
                    c.get_satisfaction(s(shifted)).await.unwrap().into_inner(),
                    "{group_by} {from:?} {f:?}"
                );
                compared += 2;
            }
        }
    }
    assert_eq!(compared, 4 * 5 * 10 * 2);

    // The rollups hold every ticket once, and the late older tickets raised
    // the repeat flag of T2 (C2's T0 13 days before) and T3 (after T1).
    let db = a.system.database("analytics", kesu_analytics::MIGRATIONS).await;
    let (tickets, repeats): (i64, i64) = kesu_storage::sqlx::query_as(
        "SELECT CAST(SUM(tickets) AS BIGINT), CAST(SUM(repeats) AS BIGINT) FROM ticket_rollups",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((tickets, repeats), (8, 2));
    let flagged: Vec<(String,)> =
        kesu_storage::sqlx::query_as("SELECT ticket_id FROM ticket_facts WHERE is_repeat = 1 ORDER BY ticket_id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(flagged, [("T2".to_string(),), ("T3".to_string(),)]);

    // Rebuilt from the fact rows (what the benchmark does): the same rollups.
    let before: Vec<String> = rollup_rows(&db).await;
    kesu_analytics::rollup::rebuild_from_facts(&db).await.unwrap();
    assert_eq!(rollup_rows(&db).await, before);
    a.stop().await;
}

/// A rollup row: day, channel, type, department, tickets, repeats, rated, score sum.
type RollupRow = (String, String, String, String, i64, i64, i64, i64);

/// The non-empty rollup rows as text.
async fn rollup_rows(db: &kesu_storage::Database) -> Vec<String> {
    let rows: Vec<RollupRow> = kesu_storage::sqlx::query_as(
        "SELECT day, channel, type_code, department, tickets, repeats, rated, score_sum FROM ticket_rollups
         WHERE tickets <> 0 ORDER BY day, channel, type_code, cause_code, department, priority, region, tier",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter().map(|r| format!("{r:?}")).collect()
}

#[tokio::test]
async fn rollups_answer_as_the_fact_rows_on_sqlite() {
    rollups_answer_as_the_fact_rows(Backend::Sqlite).await;
}

#[tokio::test]
async fn rollups_answer_as_the_fact_rows_on_postgres() {
    rollups_answer_as_the_fact_rows(Backend::Postgres).await;
}
