//! The CSV export of analytics' tables, with the staff token: every table
//! exports, a department manager gets their department only, nothing
//! personal is in it.

use kesu_system_tests::analytics::{AnalyticsUnderTest, feed};
use kesu_system_tests::{Backend, Role};

const WEEK: &str = "from=2026-11-23&to=2026-11-29";

async fn every_table_exports_as_csv_scoped_to_the_callers_department(backend: Backend) {
    let Some(a) = AnalyticsUnderTest::start(backend, &[]).await else {
        eprintln!("skipped: no PostgreSQL reachable");
        return;
    };
    feed(&a).await;
    let analyst = a.system.token(Role::Analyst);

    // Every table, with a header line.
    let (status, body) = a.get("/api/tables", Some(&analyst)).await;
    assert_eq!(status, 200, "{body}");
    let tables: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tables: Vec<String> =
        tables["tables"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert!(tables.len() >= 14, "{tables:?}");
    for table in &tables {
        let (status, csv) = a.get(&format!("/api/export/{table}.csv?{WEEK}"), Some(&analyst)).await;
        assert_eq!(status, 200, "{table}: {csv}");
        let csv = csv.trim_start_matches('\u{feff}');
        assert!(csv.lines().next().is_some_and(|h| h.contains(',')), "{table}: a header line: {csv}");
    }

    // The causes, as computed by hand.
    let (_, csv) = a.get(&format!("/api/export/causes.csv?{WEEK}"), Some(&analyst)).await;
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines,
        [
            "key,count,share",
            "delivery_delay,2,0.333333",
            "lost_package,2,0.333333",
            "attitude,1,0.166667",
            "defect,1,0.166667"
        ]
    );

    // One row per ticket, without the customer's pseudonym.
    let (_, csv) = a.get(&format!("/api/export/tickets.csv?{WEEK}"), Some(&analyst)).await;
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 1 + 6, "{csv}");
    assert!(!lines[0].contains("customer"), "{}", lines[0]);
    for key in ["C1", "C2", "C3", "C4"] {
        assert!(!csv.split([',', '\r', '\n']).any(|cell| cell == key), "no pseudonym in the export: {csv}");
    }

    // A department manager (after_sales) gets their department only.
    let manager = a.system.token(Role::DepartmentManager);
    let (status, csv) = a.get(&format!("/api/export/tickets.csv?{WEEK}"), Some(&manager)).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("T4,"), "{csv}");
    let (_, csv) = a.get(&format!("/api/export/volume.csv?{WEEK}&group_by=department"), Some(&manager)).await;
    assert_eq!(csv.trim_start_matches('\u{feff}').lines().collect::<Vec<_>>(), ["key,count", "after_sales,1"]);
    let (status, body) = a.get(&format!("/api/export/tickets.csv?{WEEK}&department=logistics"), Some(&manager)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("department"), "{body}");
    let (status, _) = a.get(&format!("/api/export/summary.csv?{WEEK}"), Some(&manager)).await;
    assert_eq!(status, 403, "the summary spans every department");

    // A staff token of a reading role is required; bad names are named.
    let (status, _) = a.get("/api/export/tickets.csv", None).await;
    assert_eq!(status, 401);
    let (status, _) = a.get("/api/export/tickets.csv", Some(&a.system.token(Role::Handler))).await;
    assert_eq!(status, 403);
    let (status, body) = a.get("/api/export/nothing.csv", Some(&analyst)).await;
    assert_eq!(status, 400);
    assert!(body.contains("table"), "{body}");
    let (status, body) = a.get("/api/export/tickets.csv?colour=red", Some(&analyst)).await;
    assert_eq!(status, 400);
    assert!(body.contains("colour"), "{body}");

    a.stop().await;
}

#[tokio::test]
async fn every_table_exports_as_csv_scoped_to_the_callers_department_on_sqlite() {
    every_table_exports_as_csv_scoped_to_the_callers_department(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_table_exports_as_csv_scoped_to_the_callers_department_on_postgres() {
    every_table_exports_as_csv_scoped_to_the_callers_department(Backend::Postgres).await;
}
