//! The SQLite and PostgreSQL migrations of every component define the same
//! tables and columns (name, type family, nullability), so code written
//! once against both back ends finds the same schema on each.

use std::collections::BTreeMap;

use kesu_storage::{Database, Migrations};
use kesu_testkit::TempDatabase;

/// table → column → (type family, NOT NULL)
type Schema = BTreeMap<String, BTreeMap<String, (String, bool)>>;

const COMPONENTS: [(&str, Migrations); 7] = [
    ("bus (inbox/outbox)", kesu_bus::MIGRATIONS),
    ("timers", kesu_timers::MIGRATIONS),
    ("intake", kesu_intake::MIGRATIONS),
    ("routing", kesu_routing::MIGRATIONS),
    ("sla-timer", kesu_sla_timer::MIGRATIONS),
    ("notification", kesu_notification::MIGRATIONS),
    ("analytics", kesu_analytics::MIGRATIONS),
];

/// The family a declared type belongs to on either back end.
fn family(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    match t.as_str() {
        "text" | "character varying" | "varchar" | "character" => "text".into(),
        "integer" | "bigint" | "smallint" | "int" | "int8" | "int4" => "integer".into(),
        "blob" | "bytea" => "bytes".into(),
        "real" | "double precision" | "float8" => "real".into(),
        "boolean" | "bool" => "boolean".into(),
        _ => t,
    }
}

async fn sqlite_schema(db: &Database) -> Schema {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx_any(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
        db,
    )
    .await;
    let mut schema = Schema::new();
    for (table, column, declared, not_null, pk) in rows {
        schema.entry(table).or_default().insert(column, (family(&declared), not_null != 0 || pk != 0));
    }
    schema
}

async fn postgres_schema(db: &Database) -> Schema {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx_any(
        "SELECT table_name::text, column_name::text, data_type::text,
                CAST(CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT), CAST(0 AS BIGINT)
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
        db,
    )
    .await;
    let mut schema = Schema::new();
    for (table, column, declared, not_null, _) in rows {
        schema.entry(table).or_default().insert(column, (family(&declared), not_null != 0));
    }
    schema
}

async fn sqlx_any(sql: &'static str, db: &Database) -> Vec<(String, String, String, i64, i64)> {
    kesu_storage::sqlx::query_as(sql).fetch_all(db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_define_the_same_tables_and_columns() {
    for (component, migrations) in COMPONENTS {
        // Fresh databases per component: each starts from nothing. Without a
        // server (and without KESU_REQUIRE_POSTGRES=1) there is nothing to compare.
        let Some(postgres) = TempDatabase::postgres().await else { return };
        let sqlite = TempDatabase::sqlite();
        let lite = Database::open(sqlite.url(), 1, &[migrations]).await.unwrap();
        let pg = Database::open(postgres.url(), 1, &[migrations]).await.unwrap();
        let (lite_schema, pg_schema) = (sqlite_schema(&lite).await, postgres_schema(&pg).await);
        assert!(!lite_schema.is_empty(), "{component}: the SQLite migrations define tables");
        assert_eq!(
            lite_schema.keys().collect::<Vec<_>>(),
            pg_schema.keys().collect::<Vec<_>>(),
            "{component}: the same tables"
        );
        for (table, columns) in &lite_schema {
            assert_eq!(columns, &pg_schema[table], "{component}: table {table} (column → (type family, NOT NULL))");
        }
        lite.close().await;
        pg.close().await;
    }
}
