//! Writes a crash may undo without harm, committed without waiting for the
//! disk.
//!
//! Durable commits cost an fsync each. Some writes only tidy up after work
//! that is already safe elsewhere: the outbox relay deleting rows JetStream
//! has acknowledged is one (a delete lost to a power cut republishes the
//! rows, which the stream's duplicate window and the consumers' inboxes
//! drop). Such writes skip the fsync; the next durable commit, or SQLite's
//! checkpoint, carries them to disk. A process crash loses nothing either
//! way: only a machine crash can undo them.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

use crate::{Backend, Database, Synchronous};

/// The writer connection with `synchronous = NORMAL` until
/// [`RelaxedWrite::finish`] sets the database's own level again. A guard
/// dropped before `finish` (cancelled, or the reset failed) closes the
/// connection rather than hand it back relaxed.
pub struct RelaxedWrite {
    conn: PoolConnection<Any>,
    restore: Option<Synchronous>,
}

impl RelaxedWrite {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Sets the connection's durability back and returns it to the pool.
    pub async fn finish(mut self) -> Result<(), sqlx::Error> {
        if let Some(level) = self.restore {
            set(&mut self.conn, level).await?;
            self.restore = None;
        }
        Ok(())
    }
}

impl Drop for RelaxedWrite {
    fn drop(&mut self) {
        if self.restore.is_some() {
            self.conn.close_on_drop();
        }
    }
}

async fn set(conn: &mut AnyConnection, level: Synchronous) -> Result<(), sqlx::Error> {
    let sql = match level {
        Synchronous::Full => "PRAGMA synchronous = FULL",
        Synchronous::Normal => "PRAGMA synchronous = NORMAL",
    };
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

impl Database {
    /// The writer for statements a machine crash may undo without harm (see
    /// the module docs), each committing without an fsync. On SQLite at
    /// `FULL` the connection is `NORMAL` until `finish`; otherwise (SQLite
    /// already `NORMAL` or in memory, PostgreSQL) it is the writer as it is:
    /// closing the one connection of an in-memory database would lose it. On
    /// PostgreSQL use `SET LOCAL synchronous_commit = off` in a transaction.
    pub async fn relaxed_writer(&self) -> Result<RelaxedWrite, sqlx::Error> {
        let conn = self.writer().acquire().await?;
        let restore = match (self.backend(), self.sqlite_synchronous()) {
            (Backend::Sqlite, Some(Synchronous::Full)) => {
                // Closed if the pragma fails half-way, like any guard not finished.
                let mut guard = RelaxedWrite { conn, restore: Some(Synchronous::Full) };
                set(&mut guard.conn, Synchronous::Normal).await?;
                return Ok(guard);
            }
            _ => None,
        };
        Ok(RelaxedWrite { conn, restore })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn level(db: &Database) -> i64 {
        let mut conn = db.writer().acquire().await.unwrap();
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap()
    }

    #[tokio::test]
    async fn a_relaxed_write_leaves_the_writer_durable_finished_or_not() {
        let dir = std::env::temp_dir().join(format!("kesu-relaxed-{}", std::process::id()));
        let url = format!("sqlite://{}/r.db", dir.display());
        let db = Database::open(&url, 2, &[]).await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER)").execute(db.writer()).await.unwrap();
        const FULL: i64 = 2;
        const NORMAL: i64 = 1;
        assert_eq!(level(&db).await, FULL);

        let mut write = db.relaxed_writer().await.unwrap();
        let during: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(write.conn()).await.unwrap();
        assert_eq!(during, NORMAL);
        sqlx::query("INSERT INTO t VALUES (1)").execute(write.conn()).await.unwrap();
        write.finish().await.unwrap();
        assert_eq!(level(&db).await, FULL, "finished: durable again");

        // Dropped unfinished (cancelled): the connection is closed, and the
        // writer the pool opens next is durable.
        let write = db.relaxed_writer().await.unwrap();
        drop(write);
        assert_eq!(level(&db).await, FULL, "dropped: not handed back relaxed");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(db.pool()).await.unwrap();
        assert_eq!(rows, 1);
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_in_memory_database_is_not_relaxed_so_a_dropped_guard_keeps_it() {
        let db = Database::open("sqlite::memory:", 1, &[]).await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER)").execute(db.writer()).await.unwrap();
        assert_eq!(db.sqlite_synchronous(), None);
        drop(db.relaxed_writer().await.unwrap());
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(db.pool()).await.unwrap();
        assert_eq!(rows, 0, "the table is still there");
    }
}
