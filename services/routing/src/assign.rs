//! Assignment of a new ticket: the department comes from the type; the
//! primary handler is someone in it holding the type's handler role, on
//! duty now and under their `max_open_tickets`, chosen by skill (the cause,
//! else the type), then fewest open tickets, then round robin (longest
//! since their last new ticket). `[assignment].co_handlers` rules add
//! co-handlers the same way. Nobody on duty: the ticket waits unassigned
//! in its department's queue.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kesu_bus::UnitOfWork;
use kesu_domain::policy::StaffMember;
use kesu_domain::{Policy, Priority};
use sqlx::AnyConnection;

use crate::creation::Batch;

/// Statuses that count as a handler's open load.
pub const OPEN_STATUSES: [&str; 6] =
    ["new", "assigned", "acknowledged", "in_progress", "waiting_on_customer", "reopened"];

/// The load of the people who could take a ticket.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Open tickets per staff id (counted up to their cap + 1).
    pub open: HashMap<String, u32>,
    /// When each was last given a new ticket (epoch ms).
    pub last_assigned: HashMap<String, i64>,
}

/// Who takes a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub handler: String,
    pub co_handlers: Vec<String>,
}

/// What a ticket needs from a handler.
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    pub type_code: &'a str,
    pub cause_code: &'a str,
    pub department: &'a str,
    pub priority: Priority,
}

/// The staff who might be chosen for `need` (primary or co-handler), for
/// loading their [`Workload`].
pub fn candidates<'p>(policy: &'p Policy, need: &Need<'_>) -> Vec<&'p StaffMember> {
    let Some(t) = policy.problem_type(need.type_code) else { return Vec::new() };
    let staff = policy.staff();
    let in_post = |department: &str, position: &str| {
        staff
            .members()
            .iter()
            .filter(|m| m.active && m.department == department && m.holds(position))
            .collect::<Vec<&'p StaffMember>>()
    };
    let mut found = in_post(need.department, &t.handler_role);
    for rule in
        policy.doc.assignment.co_handlers.iter().filter(|r| r.applies(need.type_code, need.cause_code, need.priority))
    {
        found.extend(in_post(&rule.department, &rule.position));
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    found
}

/// The primary handler and co-handlers for `need` at `now`; `None` when
/// nobody suitable is on duty with room.
pub fn choose(policy: &Policy, need: &Need<'_>, workload: &Workload, now: DateTime<Utc>) -> Option<Assignment> {
    let t = policy.problem_type(need.type_code)?;
    let skills = [need.cause_code, need.type_code];
    let handler = pick(policy, need.department, &t.handler_role, &skills, workload, now, &[])?;
    let mut chosen = vec![handler.clone()];
    for rule in
        policy.doc.assignment.co_handlers.iter().filter(|r| r.applies(need.type_code, need.cause_code, need.priority))
    {
        if let Some(co) = pick(policy, &rule.department, &rule.position, &skills, workload, now, &chosen) {
            chosen.push(co);
        }
    }
    let co_handlers = chosen.split_off(1);
    Some(Assignment { handler, co_handlers })
}

fn pick(
    policy: &Policy,
    department: &str,
    position: &str,
    skills: &[&str],
    workload: &Workload,
    now: DateTime<Utc>,
    exclude: &[String],
) -> Option<String> {
    let open = |m: &StaffMember| workload.open.get(&m.id).copied().unwrap_or(0);
    policy
        .staff()
        .in_department(department)
        .filter(|m| m.holds(position) && !exclude.contains(&m.id))
        .filter(|m| m.on_duty(now))
        .filter(|m| m.max_open_tickets.is_none_or(|cap| open(m) < cap))
        .min_by_key(|m| {
            let skill = skills.iter().position(|s| !s.is_empty() && m.skills.contains(*s)).unwrap_or(skills.len());
            let last = workload.last_assigned.get(&m.id).copied().unwrap_or(i64::MIN);
            (skill, open(m), last, m.id.clone())
        })
        .map(|m| m.id.clone())
}

/// The open load and round-robin state of `staff`, read in the unit of
/// work (so tickets assigned earlier in the same batch count).
pub async fn workload(conn: &mut AnyConnection, staff: &[&StaffMember]) -> Result<Workload, sqlx::Error> {
    let mut w = Workload::default();
    let statuses = OPEN_STATUSES.map(|s| format!("'{s}'")).join(", ");
    for m in staff {
        let cap = i64::from(m.max_open_tickets.unwrap_or(1000)) + 1;
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM tickets WHERE handler = $1 AND status IN ({statuses}) LIMIT $2) AS open_tickets"
        );
        let (open,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&m.id).bind(cap).fetch_one(&mut *conn).await?;
        w.open.insert(m.id.clone(), open as u32);
        let last: Option<(i64,)> =
            sqlx::query_as("SELECT last_assigned_at FROM handler_assignments WHERE handler = $1")
                .bind(&m.id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some((at,)) = last {
            w.last_assigned.insert(m.id.clone(), at);
        }
    }
    Ok(w)
}

/// [`workload`] through the batch's cache ([`crate::creation::Batch`]):
/// each person's load is read once per batch, then moved by the batch's own
/// assignments, instead of counting their open tickets again for every new
/// ticket.
pub async fn workload_in_batch(work: &mut UnitOfWork, staff: &[&StaffMember]) -> Result<Workload, sqlx::Error> {
    let missing: Vec<&StaffMember> = {
        let known = &work.batch_state::<Batch>().workload.open;
        staff.iter().filter(|m| !known.contains_key(&m.id)).copied().collect()
    };
    if !missing.is_empty() {
        let fresh = workload(work.conn(), &missing).await?;
        let cache = &mut work.batch_state::<Batch>().workload;
        cache.open.extend(fresh.open);
        cache.last_assigned.extend(fresh.last_assigned);
    }
    let cache = &work.batch_state::<Batch>().workload;
    let mut w = Workload::default();
    for m in staff {
        if let Some(open) = cache.open.get(&m.id) {
            w.open.insert(m.id.clone(), *open);
        }
        if let Some(at) = cache.last_assigned.get(&m.id) {
            w.last_assigned.insert(m.id.clone(), *at);
        }
    }
    Ok(w)
}

/// Counts a new ticket of `handler` in the batch's cache of loads and in
/// what the batch writes to `handler_assignments` ([`record_many`]).
pub fn assigned_in_batch(work: &mut UnitOfWork, handler: &str, at_ms: i64) {
    let batch = work.batch_state::<Batch>();
    if let Some(open) = batch.workload.open.get_mut(handler) {
        *open += 1;
    }
    batch.workload.last_assigned.insert(handler.to_string(), at_ms);
    let given = batch.assigned.entry(handler.to_string()).or_insert((at_ms, 0));
    given.0 = given.0.max(at_ms);
    given.1 += 1;
}

/// Adds a batch's assignments (per handler: when the last was, how many)
/// to `handler_assignments`, in multi-row statements.
pub async fn record_many(conn: &mut AnyConnection, given: &HashMap<String, (i64, i64)>) -> Result<(), sqlx::Error> {
    let mut rows: Vec<(&String, &(i64, i64))> = given.iter().collect();
    rows.sort();
    for chunk in rows.chunks(kesu_storage::Database::rows_per_statement(3)) {
        let sql = format!(
            "INSERT INTO handler_assignments (handler, last_assigned_at, assigned) VALUES {}
             ON CONFLICT (handler) DO UPDATE SET
               last_assigned_at = CASE WHEN excluded.last_assigned_at > handler_assignments.last_assigned_at
                                  THEN excluded.last_assigned_at ELSE handler_assignments.last_assigned_at END,
               assigned = handler_assignments.assigned + excluded.assigned",
            kesu_storage::params::values(kesu_storage::params::anonymous(conn), chunk.len(), 3)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (handler, (at, n)) in chunk {
            q = q.bind(handler.as_str()).bind(*at).bind(*n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// Monday 2026-12-07 10:00 in Shanghai: everyone on weekday hours works.
    fn monday() -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap().with_timezone(&Utc)
    }

    fn need<'a>(type_code: &'a str, cause_code: &'a str, department: &'a str) -> Need<'a> {
        Need { type_code, cause_code, department, priority: Priority::Medium }
    }

    #[test]
    fn the_most_skilled_on_duty_handler_gets_it() {
        let p = Policy::default_policy();
        let a = choose(&p, &need("repair", "no_power", "after_sales"), &Workload::default(), monday()).unwrap();
        assert_eq!(a.handler, "s-as-01", "skilled in no_power");
        let a = choose(&p, &need("repair", "software_fault", "after_sales"), &Workload::default(), monday()).unwrap();
        assert_eq!(a.handler, "s-as-02", "skilled in software_fault");
        let a = choose(&p, &need("returns", "refund", "after_sales"), &Workload::default(), monday()).unwrap();
        assert_eq!(a.handler, "s-as-05", "after-sales specialist skilled in refund");
        assert!(a.co_handlers.is_empty());
    }

    #[test]
    fn fewer_open_tickets_then_round_robin_break_ties() {
        let p = Policy::default_policy();
        let n = need("logistics", "", "operations");
        let first = choose(&p, &n, &Workload::default(), monday()).unwrap().handler;
        let mut w = Workload::default();
        w.open.insert(first.clone(), 1);
        let second = choose(&p, &n, &w, monday()).unwrap().handler;
        assert_ne!(first, second, "the one with fewer open tickets");
        let mut w = Workload::default();
        w.last_assigned.insert(first.clone(), 10);
        w.last_assigned.insert(second.clone(), 5);
        assert_eq!(choose(&p, &n, &w, monday()).unwrap().handler, second, "the one who waited longest");
    }

    #[test]
    fn off_duty_and_full_handlers_are_skipped() {
        let p = Policy::default_policy();
        let saturday = chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 12, 5, 11, 0, 0).unwrap().with_timezone(&Utc);
        let a = choose(&p, &need("repair", "no_power", "after_sales"), &Workload::default(), saturday).unwrap();
        assert_eq!(a.handler, "s-as-03", "only the weekend engineer works on Saturday");
        let night = chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 12, 7, 23, 0, 0).unwrap().with_timezone(&Utc);
        assert_eq!(choose(&p, &need("billing", "", "finance"), &Workload::default(), night), None);
        let mut w = Workload::default();
        w.open.insert("s-fin-01".into(), 30);
        assert_eq!(choose(&p, &need("billing", "", "finance"), &w, monday()), None, "at max_open_tickets");
    }

    #[test]
    fn policy_rules_add_co_handlers() {
        let p = Policy::default_policy();
        let a =
            choose(&p, &need("product_quality", "safety_hazard", "quality"), &Workload::default(), monday()).unwrap();
        assert_eq!(a.handler, "s-qa-01");
        assert_eq!(a.co_handlers.len(), 1);
        assert_eq!(p.staff().get(&a.co_handlers[0]).unwrap().department, "after_sales");
        let urgent = Need { priority: Priority::Urgent, ..need("system_failure", "outage", "technology") };
        let a = choose(&p, &urgent, &Workload::default(), monday()).unwrap();
        assert_eq!((a.handler.as_str(), a.co_handlers.as_slice()), ("s-tech-01", &["s-tech-head".to_string()][..]));
        let candidates: Vec<&str> = candidates(&p, &urgent).iter().map(|m| m.id.as_str()).collect();
        assert_eq!(candidates, ["s-tech-01", "s-tech-02", "s-tech-head"]);
    }
}
