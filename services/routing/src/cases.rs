//! The case library (knowledge base): archived tickets' analyses, searched
//! by type and keyword.

use kesu_proto::v1::CaseEntry;
use prost::Message;
use sqlx::AnyConnection;

use crate::error::Error;

/// The text a keyword search looks in: keywords, problem, causes, solution.
fn search_text(e: &CaseEntry) -> String {
    [
        e.keywords.join(" "),
        e.problem.clone(),
        e.root_cause.clone(),
        e.direct_cause.clone(),
        e.indirect_cause.clone(),
        e.solution.clone(),
    ]
    .join("\n")
    .to_lowercase()
}

pub async fn insert(conn: &mut AnyConnection, e: &CaseEntry, at_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_library (archive_number, ticket_id, type_code, cause_code, search_text, archived_at, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.archive_number)
    .bind(&e.ticket_id)
    .bind(&e.type_code)
    .bind(&e.cause_code)
    .bind(search_text(e))
    .bind(at_ms)
    .bind(e.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// Cases newest first, of `type_code` (empty: any) whose text holds every
/// one of `words` (case-insensitive), after the cursor `(archived_at, number)`.
pub async fn search(
    pool: &sqlx::AnyPool,
    type_code: &str,
    words: &[String],
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, CaseEntry)>, Error> {
    let mut sql = String::from("SELECT archived_at, archive_number, record FROM case_library WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    if !type_code.is_empty() {
        binds.push(type_code.to_string());
        sql.push_str(&format!(" AND type_code = ${}", binds.len()));
    }
    for w in words {
        let escaped = w.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        binds.push(format!("%{escaped}%"));
        sql.push_str(&format!(" AND search_text LIKE ${} ESCAPE '\\'", binds.len()));
    }
    let n = binds.len();
    sql.push_str(&format!(
        " AND (archived_at < ${a} OR (archived_at = ${a} AND archive_number < ${b})) ORDER BY archived_at DESC, archive_number DESC LIMIT ${c}",
        a = n + 1,
        b = n + 2,
        c = n + 3
    ));
    let (before_at, before_id) = before.unwrap_or((i64::MAX, "\u{10FFFF}".into()));
    let mut query = sqlx::query_as::<_, (i64, String, Vec<u8>)>(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.bind(before_at).bind(before_id).bind(limit).fetch_all(pool).await?;
    rows.into_iter()
        .map(|(at, number, bytes)| {
            let entry = Error::decode("case_library", &number, &bytes)?;
            Ok((at, number, entry))
        })
        .collect()
}
