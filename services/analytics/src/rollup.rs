//! Per-day rollups of the ticket facts (`ticket_rollups`), kept at ingest in
//! the same unit of work as the facts: for every fact row a batch changes,
//! the old row's contribution is subtracted and the new row's added. Also
//! the repeat flag (`ticket_facts.is_repeat`): decided when a ticket is first
//! seen (or its customer changes), and moved on the customer's later tickets
//! when an earlier ticket arrives late, so the flag — and the rollups — are
//! the same whatever order the events arrive in.
//!
//! Queries over whole local days read the rollups ([`crate::rollup_query`]).

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Row as _};

use crate::store;

/// The columns of a fact row a rollup needs, in this order.
pub(crate) const ROW_COLUMNS: &str = "ticket_id, received_ms, day, week, channel, type_code, cause_code, department, \
     priority, region, tier, customer_key, ever_resolved, reopen_count, reclassified, score, response_speed, result, \
     attitude, communication, is_repeat";

/// What the rollups keep of one fact row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FactRow {
    pub ticket_id: String,
    pub received_ms: i64,
    pub day: String,
    pub week: String,
    /// channel, type, cause, department, priority, region, tier.
    pub dims: [String; 7],
    pub customer_key: String,
    pub ever_resolved: bool,
    pub reopened: bool,
    pub reclassified: bool,
    /// score, response speed, result, attitude, communication.
    pub scores: [Option<i64>; 5],
    pub is_repeat: bool,
}

impl FactRow {
    pub fn of(r: &sqlx::any::AnyRow) -> Result<FactRow, sqlx::Error> {
        let int = |i: usize| -> Result<i64, sqlx::Error> { r.try_get::<i64, _>(i) };
        Ok(FactRow {
            ticket_id: r.try_get(0)?,
            received_ms: int(1)?,
            day: r.try_get(2)?,
            week: r.try_get(3)?,
            dims: [
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
                r.try_get(8)?,
                r.try_get(9)?,
                r.try_get(10)?,
            ],
            customer_key: r.try_get(11)?,
            ever_resolved: int(12)? != 0,
            reopened: int(13)? > 0,
            reclassified: int(14)? != 0,
            scores: [r.try_get(15)?, r.try_get(16)?, r.try_get(17)?, r.try_get(18)?, r.try_get(19)?],
            is_repeat: int(20)? != 0,
        })
    }

    /// The row a fact makes when it is a ticket's first (the repeat flag
    /// not yet decided: the column's default).
    pub fn of_new(f: &crate::ingest::TicketFact) -> FactRow {
        FactRow {
            ticket_id: f.ticket_id.clone(),
            received_ms: f.received_ms,
            day: f.day.clone(),
            week: f.week.clone(),
            dims: [
                f.channel.clone(),
                f.type_code.clone(),
                f.cause_code.clone(),
                f.department.clone(),
                f.priority.clone(),
                f.region.clone(),
                f.tier.clone(),
            ],
            customer_key: f.customer_key.clone(),
            ever_resolved: f.ever_resolved,
            reopened: f.reopen_count > 0,
            reclassified: f.reclassified,
            scores: f.satisfaction.unwrap_or([None; 5]).map(|s| s.map(i64::from)),
            is_repeat: false,
        }
    }

    /// This row's contribution to its rollup row (see [`VALUES`]).
    pub fn contribution(&self) -> Values {
        let mut v = [0i64; N];
        let flag = |b: bool| b as i64;
        let with_customer = !self.customer_key.is_empty();
        v[0] = 1;
        v[1] = flag(self.ever_resolved);
        v[2] = flag(self.reopened);
        v[3] = flag(with_customer);
        v[4] = flag(with_customer && self.is_repeat);
        v[5] = flag(self.reclassified);
        if let Some(score) = self.scores[0] {
            v[6] = 1;
            v[7] = score;
            v[8] = flag(score <= 3);
            if (1..=5).contains(&score) {
                v[8 + score as usize] = 1;
            }
            for (i, dim) in self.scores[1..].iter().enumerate() {
                if let Some(d) = dim {
                    v[14 + 2 * i] = 1;
                    v[15 + 2 * i] = *d;
                }
            }
        }
        v
    }

    fn key(&self) -> Key {
        (self.day.clone(), self.dims.clone())
    }
}

/// The summed columns of `ticket_rollups`.
pub(crate) const VALUES: [&str; N] = [
    "tickets",
    "resolved",
    "reopened",
    "with_customer",
    "repeats",
    "reclassified",
    "rated",
    "score_sum",
    "score_low",
    "score_1",
    "score_2",
    "score_3",
    "score_4",
    "score_5",
    "response_speed_n",
    "response_speed_sum",
    "result_n",
    "result_sum",
    "attitude_n",
    "attitude_sum",
    "communication_n",
    "communication_sum",
];
pub(crate) const N: usize = 22;
pub(crate) type Values = [i64; N];
type Key = (String, [String; 7]);

/// Ids per `IN (…)` list.
const IDS_PER_STATEMENT: usize = 1000;

pub(crate) const THIRTY_DAYS_MS: i64 = 30 * 24 * 3600 * 1000;

/// Fact rows by id, `ids` chunked under the parameter limits.
async fn rows_by_id(conn: &mut AnyConnection, ids: &[&str]) -> Result<Vec<FactRow>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let marks = store::list(store::anonymous(conn), 1, chunk.len());
        let sql = format!("SELECT {ROW_COLUMNS} FROM ticket_facts WHERE ticket_id IN ({marks})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push(FactRow::of(&r)?);
        }
    }
    Ok(out)
}

/// Customers per statement of [`around_spans`] (three parameters each).
const CUSTOMERS_PER_STATEMENT: usize = 300;

/// What deciding a repeat flag needs of a fact row.
struct Seen {
    ticket_id: String,
    customer_key: String,
    received_ms: i64,
    is_repeat: bool,
}

/// Per customer and span of received times: the customer's ticket just
/// before the span, those in it, and the one just after — three index seeks
/// per customer, all customers of a chunk in one statement.
async fn around_spans(conn: &mut AnyConnection, spans: &[(&str, (i64, i64))]) -> Result<Vec<Seen>, sqlx::Error> {
    let anonymous = store::anonymous(conn);
    let cols = "f.ticket_id, f.customer_key, f.received_ms, f.is_repeat";
    let neighbour = |cmp: &str, order: &str, bound: &str| {
        format!(
            "SELECT {cols} FROM spans s JOIN ticket_facts f ON f.ticket_id = (SELECT p.ticket_id FROM ticket_facts p \
             WHERE p.customer_key = s.customer AND p.received_ms {cmp} s.{bound} \
             ORDER BY p.received_ms {order}, p.ticket_id {order} LIMIT 1)"
        )
    };
    let sql = format!(
        "WITH spans (customer, lo, hi) AS (VALUES {}) \
         {} UNION ALL SELECT {cols} FROM spans s JOIN ticket_facts f ON f.customer_key = s.customer \
         AND f.received_ms >= s.lo AND f.received_ms <= s.hi UNION ALL {}",
        store::values(anonymous, spans.len(), 3),
        neighbour("<", "DESC", "lo"),
        neighbour(">", "ASC", "hi"),
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (customer, (lo, hi)) in spans {
        q = q.bind(*customer).bind(*lo).bind(*hi);
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(Seen {
                ticket_id: r.try_get(0)?,
                customer_key: r.try_get(1)?,
                received_ms: r.try_get(2)?,
                is_repeat: r.try_get::<i64, _>(3)? != 0,
            })
        })
        .collect()
}

/// The changes a batch made to fact rows: old rows (before the batch's
/// upserts, by id) and new rows (as the upserts returned them).
#[derive(Default)]
pub(crate) struct Changes {
    old: HashMap<String, FactRow>,
    new: Vec<FactRow>,
}

impl Changes {
    /// Reads the rows the batch is about to change.
    pub async fn before(conn: &mut AnyConnection, ids: &[&str]) -> Result<Changes, sqlx::Error> {
        let old = rows_by_id(conn, ids).await?.into_iter().map(|r| (r.ticket_id.clone(), r)).collect();
        Ok(Changes { old, new: Vec::new() })
    }

    /// Whether the ticket had a row before the batch.
    pub fn had(&self, ticket_id: &str) -> bool {
        self.old.contains_key(ticket_id)
    }

    /// Reads more rows the batch is about to change.
    pub async fn read_more(&mut self, conn: &mut AnyConnection, ids: &[&str]) -> Result<(), sqlx::Error> {
        self.old.extend(rows_by_id(conn, ids).await?.into_iter().map(|r| (r.ticket_id.clone(), r)));
        Ok(())
    }

    pub fn after(&mut self, rows: Vec<FactRow>) {
        self.new.extend(rows);
    }

    /// Sets the repeat flags the batch changes and moves every changed
    /// row's contribution in the rollups.
    pub async fn apply(mut self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let mut moved: Vec<(FactRow, FactRow)> = Vec::new();
        // Rows whose customer is new to them: their own flag, and the flags
        // of the customer's tickets in the 30 days after them.
        let changed: Vec<usize> = (0..self.new.len())
            .filter(|i| {
                let n = &self.new[*i];
                self.old.get(&n.ticket_id).is_none_or(|o| o.customer_key != n.customer_key)
            })
            .collect();
        let mut flags: HashMap<String, bool> = HashMap::new();
        // Per customer, the span of received times the batch touches.
        let mut spans: HashMap<&str, (i64, i64)> = HashMap::new();
        if !changed.is_empty() {
            for i in &changed {
                let n = &self.new[*i];
                let old = self.old.get(&n.ticket_id).map(|o| o.customer_key.as_str());
                for customer in std::iter::once(n.customer_key.as_str()).chain(old) {
                    if customer.is_empty() {
                        continue;
                    }
                    let span = spans.entry(customer).or_insert((n.received_ms, n.received_ms));
                    span.0 = span.0.min(n.received_ms);
                    span.1 = span.1.max(n.received_ms);
                }
                if n.customer_key.is_empty() {
                    flags.insert(n.ticket_id.clone(), false);
                }
            }
        }
        if !spans.is_empty() {
            // A flag depends only on the customer's ticket just before, so
            // per customer it takes the ticket before the span, the span,
            // and the ticket after it (whose flag the span may change):
            // three index seeks, however many tickets the customer has.
            let mut by_customer: HashMap<String, Vec<Seen>> = HashMap::new();
            let mut list: Vec<(&str, (i64, i64))> = spans.iter().map(|(c, s)| (*c, *s)).collect();
            list.sort();
            for chunk in list.chunks(CUSTOMERS_PER_STATEMENT) {
                for row in around_spans(conn, chunk).await? {
                    by_customer.entry(row.customer_key.clone()).or_default().push(row);
                }
            }
            let batch: HashSet<&str> = self.new.iter().map(|r| r.ticket_id.as_str()).collect();
            // Later tickets outside the batch whose flag the batch moves.
            let mut outside: Vec<String> = Vec::new();
            for rows in by_customer.values_mut() {
                rows.sort_by(|a, b| (a.received_ms, &a.ticket_id).cmp(&(b.received_ms, &b.ticket_id)));
                let lo = spans.get(rows[0].customer_key.as_str()).map(|s| s.0).unwrap_or(i64::MIN);
                for i in 0..rows.len() {
                    // Not the ticket before the span (its own predecessor
                    // is not loaded, and the batch does not change it).
                    if rows[i].received_ms < lo {
                        continue;
                    }
                    let repeat = i > 0 && rows[i - 1].received_ms >= rows[i].received_ms - THIRTY_DAYS_MS;
                    if repeat == rows[i].is_repeat {
                        continue;
                    }
                    flags.insert(rows[i].ticket_id.clone(), repeat);
                    if !batch.contains(rows[i].ticket_id.as_str()) {
                        outside.push(rows[i].ticket_id.clone());
                    }
                }
            }
            let outside: Vec<&str> = outside.iter().map(String::as_str).collect();
            for row in rows_by_id(conn, &outside).await? {
                let mut after = row.clone();
                after.is_repeat = flags.get(&row.ticket_id).copied().unwrap_or(row.is_repeat);
                moved.push((row, after));
            }
        }
        let mut set = [Vec::new(), Vec::new()];
        for (id, repeat) in &flags {
            set[*repeat as usize].push(id.as_str());
        }
        for (value, ids) in set.iter().enumerate() {
            for chunk in ids.chunks(IDS_PER_STATEMENT) {
                let anonymous = store::anonymous(conn);
                let sql = format!(
                    "UPDATE ticket_facts SET is_repeat = {} WHERE ticket_id IN ({})",
                    store::mark(anonymous, 1),
                    store::list(anonymous, 2, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value as i64);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut *conn).await?;
            }
        }
        // Contributions: old rows out, new rows in.
        let mut deltas: HashMap<Key, (String, Values)> = HashMap::new();
        let mut add = |row: &FactRow, sign: i64| {
            let entry = deltas.entry(row.key()).or_insert_with(|| (row.week.clone(), [0; N]));
            for (d, c) in entry.1.iter_mut().zip(row.contribution()) {
                *d += sign * c;
            }
        };
        for mut new in std::mem::take(&mut self.new) {
            if let Some(repeat) = flags.get(&new.ticket_id) {
                new.is_repeat = *repeat;
            }
            if let Some(old) = self.old.get(&new.ticket_id) {
                if *old == new {
                    continue;
                }
                add(old, -1);
            }
            add(&new, 1);
        }
        for (old, new) in &moved {
            add(old, -1);
            add(new, 1);
        }
        let mut rows: Vec<(Key, (String, Values))> =
            deltas.into_iter().filter(|(_, (_, v))| v.iter().any(|x| *x != 0)).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        add_to_rollups(conn, &rows).await
    }
}

fn upsert_set() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        VALUES.iter().map(|c| format!("{c} = ticket_rollups.{c} + excluded.{c}")).collect::<Vec<_>>().join(", ")
    })
}

/// Adds deltas to the rollup rows (one multi-row upsert per 500 rows).
async fn add_to_rollups(conn: &mut AnyConnection, rows: &[(Key, (String, Values))]) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 2 + 7 + N;
    for chunk in rows.chunks(500) {
        let sql = format!(
            "INSERT INTO ticket_rollups (day, week, channel, type_code, cause_code, department, priority, region, \
             tier, {}) VALUES {} ON CONFLICT (day, channel, type_code, cause_code, department, priority, region, tier) \
             DO UPDATE SET {}",
            VALUES.join(", "),
            store::values(store::anonymous(conn), chunk.len(), COLUMNS),
            upsert_set()
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((day, dims), (week, v)) in chunk {
            q = q.bind(day.as_str()).bind(week.as_str());
            for d in dims {
                q = q.bind(d.as_str());
            }
            for x in v {
                q = q.bind(*x);
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Recomputes the repeat flags and the rollups from the fact rows (for
/// facts written straight into the database, e.g. by the benchmark; the
/// same SQL as migration 1200).
pub async fn rebuild_from_facts(db: &kesu_storage::Database) -> Result<(), sqlx::Error> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("UPDATE ticket_facts SET is_repeat = 0 WHERE is_repeat <> 0").execute(&mut *tx).await?;
    sqlx::query(REPEAT_FLAGS).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM ticket_rollups").execute(&mut *tx).await?;
    sqlx::query(FILL_ROLLUPS).execute(&mut *tx).await?;
    tx.commit().await
}

const REPEAT_FLAGS: &str = "UPDATE ticket_facts SET is_repeat = 1 WHERE customer_key <> '' AND EXISTS (
    SELECT 1 FROM ticket_facts p WHERE p.customer_key = ticket_facts.customer_key
      AND p.ticket_id <> ticket_facts.ticket_id AND p.received_ms >= ticket_facts.received_ms - 2592000000
      AND (p.received_ms < ticket_facts.received_ms
           OR (p.received_ms = ticket_facts.received_ms AND p.ticket_id < ticket_facts.ticket_id)))";

const FILL_ROLLUPS: &str = "INSERT INTO ticket_rollups
SELECT day, MIN(week), channel, type_code, cause_code, department, priority, region, tier,
    COUNT(*),
    SUM(CASE WHEN ever_resolved <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN customer_key <> '' THEN 1 ELSE 0 END),
    SUM(CASE WHEN customer_key <> '' AND is_repeat <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN reclassified <> 0 THEN 1 ELSE 0 END),
    COUNT(score),
    COALESCE(SUM(score), 0),
    SUM(CASE WHEN score <= 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 2 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 4 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 5 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score IS NOT NULL AND response_speed IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN response_speed END), 0),
    SUM(CASE WHEN score IS NOT NULL AND result IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN result END), 0),
    SUM(CASE WHEN score IS NOT NULL AND attitude IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN attitude END), 0),
    SUM(CASE WHEN score IS NOT NULL AND communication IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN communication END), 0)
FROM ticket_facts
GROUP BY day, channel, type_code, cause_code, department, priority, region, tier";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(score: Option<i64>, dims: [Option<i64>; 4], customer: &str, repeat: bool) -> FactRow {
        FactRow {
            ticket_id: "T1".into(),
            received_ms: 0,
            day: "2026-11-23".into(),
            week: "2026-W48".into(),
            dims: Default::default(),
            customer_key: customer.into(),
            ever_resolved: true,
            reopened: false,
            reclassified: true,
            scores: [score, dims[0], dims[1], dims[2], dims[3]],
            is_repeat: repeat,
        }
    }

    fn value(v: &Values, column: &str) -> i64 {
        v[VALUES.iter().position(|c| *c == column).unwrap()]
    }

    #[test]
    fn a_rated_rows_contribution() {
        let v = row(Some(3), [Some(2), None, Some(5), Some(4)], "K", true).contribution();
        let got: Vec<i64> = ["tickets", "resolved", "reopened", "with_customer", "repeats", "reclassified"]
            .iter()
            .map(|c| value(&v, c))
            .collect();
        assert_eq!(got, [1, 1, 0, 1, 1, 1]);
        assert_eq!((value(&v, "rated"), value(&v, "score_sum"), value(&v, "score_low")), (1, 3, 1));
        assert_eq!((value(&v, "score_3"), value(&v, "score_4")), (1, 0));
        assert_eq!((value(&v, "response_speed_n"), value(&v, "response_speed_sum")), (1, 2));
        assert_eq!((value(&v, "result_n"), value(&v, "result_sum")), (0, 0));
        assert_eq!((value(&v, "communication_n"), value(&v, "communication_sum")), (1, 4));
    }

    #[test]
    fn unrated_dimensions_and_a_repeat_without_customer_count_nothing() {
        let v = row(None, [Some(2), Some(2), Some(2), Some(2)], "", true).contribution();
        assert_eq!((value(&v, "with_customer"), value(&v, "repeats"), value(&v, "rated")), (0, 0, 0));
        assert_eq!(VALUES.iter().skip(6).map(|c| value(&v, c)).sum::<i64>(), 0);
    }
}
