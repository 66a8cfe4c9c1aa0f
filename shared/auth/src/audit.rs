//! The audit log (`kesu_audit`): who did what to which feedback or ticket,
//! and who read contacts or originals in clear. A row is written before the
//! call runs (no row, no call) and completed with the outcome after.

use kesu_storage::{Database, Migrations};

use crate::{Audit, Staff};

/// The `kesu_audit` table (versions 100–199 belong to this crate).
pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: String,
    /// Epoch milliseconds.
    pub at: i64,
    pub staff_id: String,
    pub role: String,
    pub department: String,
    /// `kesu.v1.IntakeService/ListRejected`.
    pub action: String,
    /// `action` or `clear_read`.
    pub kind: String,
    /// The feedback or ticket id acted on; empty when the call names none.
    pub subject_id: String,
    /// `pending` until the call ends, then `OK` or the gRPC code.
    pub outcome: String,
}

/// Records that `staff` is calling `action` on `subject`; returns the row id.
pub async fn record(
    db: &Database,
    staff: &Staff,
    action: &str,
    kind: Audit,
    subject: &str,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let at =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    sqlx::query(
        "INSERT INTO kesu_audit (id, at, staff_id, role, department, action, kind, subject_id, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
    )
    .bind(&id)
    .bind(at)
    .bind(&staff.id)
    .bind(staff.role.wire_name())
    .bind(&staff.department)
    .bind(action)
    .bind(kind.name())
    .bind(subject)
    .execute(db.writer())
    .await?;
    Ok(id)
}

/// Completes a row with the call's outcome.
pub async fn complete(db: &Database, id: &str, outcome: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE kesu_audit SET outcome = $1 WHERE id = $2").bind(outcome).bind(id).execute(db.writer()).await?;
    Ok(())
}

/// The newest rows first.
pub async fn recent(db: &Database, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, staff_id, role, department, action, kind, subject_id, outcome \
         FROM kesu_audit ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await
}
