//! Storage every service shares: an sqlx pool on SQLite (the default, one
//! file per service under the data directory) or PostgreSQL (production,
//! one database per service), chosen by the URL, with the service's
//! migrations for that back end applied at start.
//!
//! SQLite gets exactly one writer connection (every write transaction waits
//! its turn in the pool's queue instead of sleeping on the file lock) and a
//! separate pool of read-only connections; PostgreSQL one pool for both.
//! Writes are durable by default (`synchronous = FULL`): group commit in the
//! bus makes that one fsync per batch, not per message.
//!
//! Queries are written once with `$n` placeholders and run on both back
//! ends through sqlx's `Any` driver. Instants are stored as epoch
//! milliseconds (BIGINT), flags as integers, so the same row types decode on
//! both. Where the SQL must differ (row locks), branch on [`Backend`].

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};

pub mod params;
mod relaxed;

pub use relaxed::RelaxedWrite;

pub use sqlx;

/// Which database a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StorageError::UnsupportedUrl(redact(url)))
        }
    }
}

/// The migrations of one component, one set per back end (embedded with
/// `sqlx::migrate!`). Versions 1–999 belong to the shared crates (inbox,
/// outbox), 1000 and above to the service.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// The calling crate's `migrations/sqlite` and `migrations/postgres`,
/// embedded at compile time, as [`Migrations`]:
/// `pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();`
#[macro_export]
macro_rules! embed_migrations {
    () => {{
        static SQLITE: $crate::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/sqlite");
        static POSTGRES: $crate::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/postgres");
        $crate::Migrations { sqlite: &SQLITE, postgres: &POSTGRES }
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database URL {0:?} is not supported (use sqlite://path/file.db or postgres://user@host/db)")]
    UnsupportedUrl(String),
    #[error("cannot create the directory for {0}: {1}")]
    Directory(String, std::io::Error),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, sqlx::Error),
    #[error("migrating {0} failed: {1}")]
    Migrate(String, sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// SQLite's `synchronous` setting: `Full` survives a machine crash (the
/// default); `Normal` may lose the last commits on power loss (never on a
/// process crash) and is faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

impl FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "FULL" => Ok(Synchronous::Full),
            "NORMAL" => Ok(Synchronous::Normal),
            other => Err(format!("{other:?} is not a SQLite synchronous mode kesu supports (FULL or NORMAL)")),
        }
    }
}

impl std::fmt::Display for Synchronous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a database is opened.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseOptions {
    /// PostgreSQL: the pool size. SQLite: read connections (writes always
    /// use one connection of their own).
    pub max_connections: u32,
    pub sqlite_synchronous: Synchronous,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self { max_connections: 8, sqlite_synchronous: Synchronous::Full }
    }
}

/// A service's database.
#[derive(Debug, Clone)]
pub struct Database {
    /// Reads (SQLite: read-only connections).
    reader: AnyPool,
    /// Writes (SQLite: one connection).
    writer: AnyPool,
    backend: Backend,
    display: String,
    /// SQLite's durability level (`None` on PostgreSQL and in memory).
    synchronous: Option<Synchronous>,
}

impl Database {
    /// Connects with default options (durable, 8 read connections); see
    /// [`Database::open_with`].
    pub async fn open(url: &str, max_connections: u32, components: &[Migrations]) -> Result<Self, StorageError> {
        Self::open_with(url, DatabaseOptions { max_connections, ..DatabaseOptions::default() }, components).await
    }

    /// Connects, applies the migrations of every component in version order,
    /// and returns the pools. Safe to call from several replicas at once
    /// (PostgreSQL migrations take an advisory lock).
    pub async fn open_with(url: &str, opts: DatabaseOptions, components: &[Migrations]) -> Result<Self, StorageError> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        let display = redact(url);
        let max = opts.max_connections.max(1);
        let connect = |options: AnyPoolOptions, url: &str| {
            let display = display.clone();
            let url = url.to_string();
            async move { options.connect(&url).await.map_err(|e| StorageError::Connect(display, e)) }
        };
        // SQLite's durability level, where there is a file to sync.
        let mut synchronous = None;
        let (writer, reader) = match backend {
            Backend::Postgres => {
                let pool = connect(pool_options(max), url).await?;
                (pool.clone(), pool)
            }
            Backend::Sqlite => {
                let (url, in_memory) = sqlite_url(url)?;
                let sync = opts.sqlite_synchronous;
                if in_memory {
                    // Every connection to :memory: is its own database: one for
                    // all, never closed.
                    let options = sqlite_options(pool_options(1), sync, false)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                    let pool = connect(options, &url).await?;
                    (pool.clone(), pool)
                } else {
                    synchronous = Some(sync);
                    let writer = connect(sqlite_options(pool_options(1), sync, false), &url).await?;
                    let reader = connect(sqlite_options(pool_options(max), sync, true), &url).await?;
                    (writer, reader)
                }
            }
        };
        let migrator = compose(components.iter().map(|m| match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        }));
        migrator.run(&writer).await.map_err(|e| StorageError::Migrate(display.clone(), e))?;
        Ok(Self { reader, writer, backend, display, synchronous })
    }

    /// The pool for reads (on SQLite its connections are read-only).
    pub fn pool(&self) -> &AnyPool {
        &self.reader
    }

    /// The pool for writes outside [`Database::begin`] (on SQLite, the one
    /// writer connection).
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SQLite's `synchronous` level for this database (`None` on PostgreSQL
    /// and for an in-memory SQLite database, which has no file to sync).
    pub fn sqlite_synchronous(&self) -> Option<Synchronous> {
        self.synchronous
    }

    /// The URL without its password, for logs.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers wait for each other instead
    /// of failing when a read turns into a write.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.reader).await.is_ok()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Rows per multi-row statement of `columns` parameters each: at most
    /// [`MAX_PARAMS`] parameters in all, at least one row.
    pub const fn rows_per_statement(columns: usize) -> usize {
        let rows = MAX_PARAMS / if columns == 0 { 1 } else { columns };
        if rows == 0 { 1 } else { rows }
    }

    /// `$start, $start+1, …` placeholders for an `IN (…)` list of `n` items.
    pub fn placeholders(start: usize, n: usize) -> String {
        (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    }
}

/// The most bind parameters a multi-row statement should carry. sqlx binds
/// each SQLite parameter after looking its name up in a list (linearly), and
/// SQLite resolves each `$N` while preparing the same way, so a statement's
/// cost grows with the square of its parameters: one of 7,000 parameters
/// took 67 ms of CPU, the same rows in statements of 256 parameters well
/// under 1 ms. Chunk with [`Database::rows_per_statement`], or build the
/// statement with [`params`] (anonymous `?` on SQLite, bound in order).
pub const MAX_PARAMS: usize = 256;

fn pool_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new().max_connections(max).min_connections(0).acquire_timeout(Duration::from_secs(30))
}

/// Pragmas of every SQLite connection; read connections refuse writes, so a
/// write that bypasses the one writer fails loudly instead of fighting it.
fn sqlite_options(options: AnyPoolOptions, sync: Synchronous, read_only: bool) -> AnyPoolOptions {
    options.after_connect(move |conn, _meta| {
        Box::pin(async move {
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA synchronous = {}", sync.as_str()))).await?;
            conn.execute("PRAGMA busy_timeout = 15000").await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            if read_only {
                conn.execute("PRAGMA query_only = ON").await?;
            }
            Ok(())
        })
    })
}

/// One migrator with the migrations of several components, in version order.
fn compose<'a>(sets: impl Iterator<Item = &'a Migrator>) -> Migrator {
    let mut migrations: Vec<_> = sets.flat_map(|m| m.migrations.iter().cloned()).collect();
    migrations.sort_by_key(|m| m.version);
    for pair in migrations.windows(2) {
        assert_ne!(pair[0].version, pair[1].version, "two components use migration version {}", pair[0].version);
    }
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

/// A SQLite URL with `mode=rwc` and its directory created; whether it is
/// in-memory.
fn sqlite_url(url: &str) -> Result<(String, bool), StorageError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path == ":memory:" || path.is_empty() || query.contains("mode=memory") {
        return Ok(("sqlite::memory:".to_string(), true));
    }
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Directory(path.to_string(), e))?;
    }
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok((format!("sqlite://{path}?{query}"), false))
}

/// The URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl FromStr for Backend {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::of_url(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://kesu:s3cret@db:5432/intake"), "postgres://kesu:***@db:5432/intake");
        assert_eq!(redact("postgres://kesu@db/intake"), "postgres://kesu@db/intake");
        assert_eq!(redact("sqlite://data/intake.db"), "sqlite://data/intake.db");
    }

    #[test]
    fn recognises_back_ends() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("postgresql://h/db").unwrap(), Backend::Postgres);
        assert!(Backend::of_url("mysql://h/db").is_err());
    }

    #[test]
    fn sqlite_urls_get_rwc_mode() {
        let dir = std::env::temp_dir().join(format!("kesu-storage-{}", std::process::id()));
        let url = format!("sqlite://{}/sub/x.db", dir.display());
        let (out, mem) = sqlite_url(&url).unwrap();
        assert!(!mem);
        assert!(out.ends_with("/sub/x.db?mode=rwc"), "{out}");
        assert!(dir.join("sub").is_dir());
        assert!(sqlite_url("sqlite::memory:").unwrap().1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
