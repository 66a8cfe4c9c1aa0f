//! Fresh databases for tests: a SQLite file in a temp dir, or a new
//! PostgreSQL database created for the run and dropped afterwards.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The PostgreSQL server tests create their databases on:
/// `KESU_TEST_POSTGRES_URL`, default the local trust-auth server.
pub fn postgres_admin_url() -> String {
    std::env::var("KESU_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub struct TempDatabase {
    url: String,
    label: &'static str,
    _dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

impl TempDatabase {
    /// A SQLite file in its own temp dir.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new().prefix("kesu-db-").tempdir().expect("temp dir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        Self { url, label: "sqlite", _dir: Some(dir), postgres_name: None }
    }

    /// A new, empty PostgreSQL database; `None` (after a loud message) when
    /// no server is reachable. Set `KESU_REQUIRE_POSTGRES=1` to fail instead.
    pub async fn postgres() -> Option<Self> {
        let admin = postgres_admin_url();
        let mut conn = match PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) => {
                if std::env::var("KESU_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!("KESU_REQUIRE_POSTGRES=1 but PostgreSQL at {admin} is not reachable: {e}");
                }
                eprintln!(
                    "\n########## SKIPPING the PostgreSQL variant of this test ##########\n\
                     # no PostgreSQL server at {admin}: {e}\n\
                     # set KESU_TEST_POSTGRES_URL to a server where the user may CREATE DATABASE\n\
                     ##################################################################\n"
                );
                return None;
            }
        };
        let name = format!("kesu_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin}: {e}"));
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        Some(Self { url: format!("{base}/{name}"), label: "postgres", _dir: None, postgres_name: Some(name) })
    }

    /// SQLite, plus PostgreSQL when reachable: run a storage test on each.
    pub async fn every_backend() -> Vec<Self> {
        let mut all = vec![Self::sqlite()];
        all.extend(Self::postgres().await);
        all
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// "sqlite" or "postgres", for assertion messages.
    pub fn label(&self) -> &'static str {
        self.label
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime we can borrow: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}
