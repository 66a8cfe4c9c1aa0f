//! Parameter marks for statements built at run time (multi-row inserts,
//! `IN` lists) that cost the same on both back ends.

use sqlx::AnyConnection;

/// Whether statements on this connection take anonymous `?` parameters
/// (SQLite) rather than `$n` (PostgreSQL). SQLite, through sqlx, looks each
/// numbered parameter up by name in a list as long as the statement's
/// parameters — time quadratic in their count (256 tickets in one upsert,
/// 7,168 parameters, spent most of ingest's CPU there); anonymous ones are
/// bound in order of appearance, at no such cost. Binds must then come in
/// the order their marks appear in the text.
pub fn anonymous(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// The mark of parameter `n` (1-based).
pub fn mark(anonymous: bool, n: usize) -> String {
    if anonymous { "?".to_string() } else { format!("${n}") }
}

/// `count` marks from parameter `first`, comma-separated.
pub fn list(anonymous: bool, first: usize, count: usize) -> String {
    (first..first + count).map(|n| mark(anonymous, n)).collect::<Vec<_>>().join(", ")
}

/// `rows` parenthesised tuples of `columns` marks each, from parameter 1.
pub fn values(anonymous: bool, rows: usize, columns: usize) -> String {
    (0..rows).map(|r| format!("({})", list(anonymous, 1 + r * columns, columns))).collect::<Vec<_>>().join(", ")
}
