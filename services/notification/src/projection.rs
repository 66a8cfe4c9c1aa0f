//! notification's own view of each ticket, from ticket events applied by
//! version (`meta.aggregate_version`): SLA events name only the ticket, so
//! the customer's sealed contacts, locale, time zone, handler, department
//! and priority come from here. Free text (description, attachments) is
//! not kept.

use std::collections::HashMap;

use kesu_proto::v1::Ticket;
use kesu_storage::Database;
use prost::Message;
use sqlx::AnyConnection;

use crate::error::Error;

/// The ticket as kept: without its description and attachments.
pub fn trimmed(ticket: &Ticket) -> Ticket {
    Ticket { description: String::new(), attachments: Vec::new(), ..ticket.clone() }
}

/// The newest state of each ticket seen in a batch, written in
/// [`upsert_many`] before the commit.
#[derive(Default)]
pub struct Latest(pub HashMap<String, Ticket>);

impl Latest {
    pub fn offer(&mut self, ticket: &Ticket) {
        let newer = self.0.get(&ticket.ticket_id).is_none_or(|t| t.version < ticket.version);
        if newer && !ticket.ticket_id.is_empty() {
            self.0.insert(ticket.ticket_id.clone(), trimmed(ticket));
        }
    }
}

/// Writes the tickets, keeping for each the highest version (one statement
/// per chunk).
pub async fn upsert_many(conn: &mut AnyConnection, tickets: &[Ticket], at_ms: i64) -> Result<(), sqlx::Error> {
    for chunk in tickets.chunks(Database::rows_per_statement(5)) {
        let values: Vec<String> =
            (0..chunk.len()).map(|i| format!("({})", Database::placeholders(i * 5 + 1, 5))).collect();
        let sql = format!(
            "INSERT INTO ticket_view (ticket_id, feedback_id, version, record, updated_at) VALUES {}
             ON CONFLICT (ticket_id) DO UPDATE SET feedback_id = excluded.feedback_id, version = excluded.version,
                 record = excluded.record, updated_at = excluded.updated_at
             WHERE ticket_view.version < excluded.version",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            query = query
                .bind(t.ticket_id.clone())
                .bind(t.feedback_id.clone())
                .bind(t.version as i64)
                .bind(t.encode_to_vec())
                .bind(at_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The ticket as last seen (in a transaction or from the pool).
pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    db: E,
    ticket_id: &str,
) -> Result<Option<Ticket>, Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT record FROM ticket_view WHERE ticket_id = $1")
        .bind(ticket_id)
        .fetch_optional(db)
        .await?;
    row.map(|(bytes,)| Error::decode("ticket_view", ticket_id, &bytes)).transpose()
}

/// The ticket of a feedback, if one is known.
pub async fn find_by_feedback(pool: &sqlx::AnyPool, feedback_id: &str) -> Result<Option<Ticket>, Error> {
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT ticket_id, record FROM ticket_view WHERE feedback_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(feedback_id)
    .fetch_optional(pool)
    .await?;
    row.map(|(id, bytes)| Error::decode("ticket_view", &id, &bytes)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_testkit::TempDatabase;

    #[tokio::test]
    async fn an_older_version_never_replaces_a_newer_one() {
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 1, &[crate::MIGRATIONS]).await.unwrap();
        let ticket = |version, handler: &str| Ticket {
            ticket_id: "T-1".into(),
            feedback_id: "F-1".into(),
            version,
            handler: handler.into(),
            description: "long text".into(),
            ..Default::default()
        };
        let mut conn = db.writer().acquire().await.unwrap();
        upsert_many(&mut conn, &[trimmed(&ticket(3, "new"))], 1).await.unwrap();
        upsert_many(&mut conn, &[trimmed(&ticket(2, "old"))], 2).await.unwrap();
        let seen = get(&mut *conn, "T-1").await.unwrap().unwrap();
        assert_eq!((seen.version, seen.handler.as_str(), seen.description.as_str()), (3, "new", ""));
        drop(conn);
        assert_eq!(find_by_feedback(db.pool(), "F-1").await.unwrap().unwrap().version, 3);
    }
}
