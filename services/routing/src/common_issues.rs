//! Common issues (共性问题): the same type and cause (and product, when
//! given) reported by at least `min_customers` distinct customers (keyed
//! pseudonyms) within the window make one common issue; later reports join
//! it. Linked tickets are raised to the policy's priority (batch complaints
//! are urgent; the department head is paged when a ticket becomes urgent),
//! each link is a `ticket.evt.linked`, and resolving the issue can resolve
//! every open linked ticket in one action (`TicketResolved.common_issue_id`).
//!
//! Replicas deciding about the same key take turns on its row in
//! `common_issue_keys` (updated by every report in the deciding
//! transaction), and at most one issue per key is open (`open_key` unique),
//! so two replicas never open two issues for one problem.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kesu_bus::UnitOfWork;
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::v1::{
    CommonIssue, CommonIssueStatus, LinkedToCommonIssue, Priority, ResolutionResult, ResolveCommonIssueRequest, Ticket,
    ticket_event::Kind,
};
use prost::Message;
use sqlx::AnyConnection;

use crate::error::Error;
use crate::lifecycle::handling::resolve_in;
use crate::lifecycle::state::Action;
use crate::lifecycle::steering::page_department_head;
use crate::lifecycle::{Caller, Context, Session, in_scope, required};
use crate::store;
use crate::tickets::priority_name;

/// Type, cause and product (trimmed, lower-cased) joined by unit separators; `None` when
/// the ticket has no type, cause or customer to count.
pub fn issue_key(ticket: &Ticket) -> Option<String> {
    let c = ticket.classification.as_ref()?;
    if c.type_code.is_empty() || c.cause_code.is_empty() || customer_of(ticket).is_empty() {
        return None;
    }
    Some(format!("{}\u{1f}{}\u{1f}{}", c.type_code, c.cause_code, ticket.product.trim().to_lowercase()))
}

/// New tickets' reports (a batch's, in order): each joins the open issue
/// of its key, or the key's reports open one when enough distinct customers
/// reported within the window. In the consumer's unit of work, after the
/// tickets were stored (`tickets`: as stored). Per key, the batch's reports
/// are counted together: a key crossing the threshold within the batch
/// opens its issue with all of them linked, as one ticket at a time would
/// have left it.
pub async fn report_batch(ctx: &Context, work: &mut UnitOfWork, tickets: Vec<Ticket>) -> Result<(), Error> {
    // Keys in sorted order: replicas take the keys' row locks in one order.
    let mut by_key: BTreeMap<String, Vec<Ticket>> = BTreeMap::new();
    for ticket in tickets {
        if let Some(key) = issue_key(&ticket) {
            by_key.entry(key).or_default().push(ticket);
        }
    }
    for (key, tickets) in by_key {
        report_key(ctx, work, &key, tickets).await?;
    }
    Ok(())
}

fn customer_of(ticket: &Ticket) -> &str {
    ticket.customer.as_ref().map(|c| c.customer_key.as_str()).unwrap_or_default()
}

/// One key's new reports (tickets with that [`issue_key`]).
async fn report_key(ctx: &Context, work: &mut UnitOfWork, key: &str, tickets: Vec<Ticket>) -> Result<(), Error> {
    let rules = *ctx.policy.common_issues();
    let now = ctx.clock.now();
    let now_ms = to_millis(now);
    // Take this key's turn first (row lock until commit on PostgreSQL).
    sqlx::query(
        "INSERT INTO common_issue_keys (issue_key, reports) VALUES ($1, $2)
         ON CONFLICT (issue_key) DO UPDATE SET reports = common_issue_keys.reports + excluded.reports",
    )
    .bind(key)
    .bind(tickets.len() as i64)
    .execute(work.conn())
    .await?;
    let mut fresh_ids: HashSet<String> = HashSet::new();
    for chunk in tickets.chunks(kesu_storage::Database::rows_per_statement(4)) {
        let anonymous = kesu_storage::params::anonymous(work.conn());
        let sql = format!(
            "INSERT INTO common_issue_reports (ticket_id, issue_key, customer_key, reported_at, common_issue_id)
             VALUES {} ON CONFLICT (ticket_id) DO NOTHING RETURNING ticket_id",
            (0..chunk.len())
                .map(|i| format!("({}, '')", kesu_storage::params::list(anonymous, 1 + 4 * i, 4)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            q = q.bind(t.ticket_id.as_str()).bind(key).bind(customer_of(t)).bind(now_ms);
        }
        fresh_ids.extend(q.fetch_all(work.conn()).await?.into_iter().map(|(id,)| id));
    }
    let fresh: Vec<Ticket> = tickets.into_iter().filter(|t| fresh_ids.contains(&t.ticket_id)).collect();
    let Some(ticket) = fresh.first().cloned() else {
        return Ok(());
    };
    let customers: BTreeSet<String> = fresh.iter().map(|t| customer_of(t).to_string()).collect();

    if let Some(mut issue) = open_issue(work.conn(), key).await? {
        issue.ticket_ids.extend(fresh.iter().map(|t| t.ticket_id.clone()));
        issue.distinct_customers = distinct_customers(work.conn(), &issue.common_issue_id, &customers).await?;
        link(ctx, work, &mut issue, fresh, false, now_ms).await?;
        return save(work.conn(), &issue, key, now_ms, false).await;
    }

    let since = now_ms - rules.window.as_millis() as i64;
    // Enough distinct customers? Read from the per-customer table: bounded
    // by the customers of the key, not its reports.
    let customer_list: Vec<&String> = customers.iter().collect();
    for chunk in customer_list.chunks(kesu_storage::Database::rows_per_statement(3)) {
        let sql = format!(
            "INSERT INTO common_issue_customers (issue_key, customer_key, last_at) VALUES {}
             ON CONFLICT (issue_key, customer_key) DO UPDATE SET last_at = excluded.last_at",
            kesu_storage::params::values(kesu_storage::params::anonymous(work.conn()), chunk.len(), 3)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for customer in chunk {
            q = q.bind(key).bind(customer.as_str()).bind(now_ms);
        }
        q.execute(work.conn()).await?;
    }
    let (recent,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM common_issue_customers WHERE issue_key = $1 AND last_at >= $2")
            .bind(key)
            .bind(since)
            .fetch_one(work.conn())
            .await?;
    if recent < i64::from(rules.min_customers) {
        return Ok(());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT ticket_id, customer_key FROM common_issue_reports
         WHERE issue_key = $1 AND reported_at >= $2 AND common_issue_id = '' ORDER BY reported_at, ticket_id",
    )
    .bind(key)
    .bind(since)
    .fetch_all(work.conn())
    .await?;
    let customers: BTreeSet<&str> = rows.iter().map(|(_, c)| c.as_str()).collect();
    if (customers.len() as u32) < rules.min_customers {
        return Ok(());
    }
    let c = ticket.classification.clone().unwrap_or_default();
    let type_name = ctx.policy.problem_type(&c.type_code).map(|t| t.name_zh.clone()).unwrap_or_default();
    let title = if ticket.product.trim().is_empty() {
        format!("{type_name}: {}", c.cause_code)
    } else {
        format!("{type_name}: {} ({})", c.cause_code, ticket.product.trim())
    };
    let mut issue = CommonIssue {
        common_issue_id: uuid::Uuid::now_v7().to_string(),
        title,
        type_code: c.type_code.clone(),
        cause_code: c.cause_code.clone(),
        status: CommonIssueStatus::Open as i32,
        ticket_ids: rows.iter().map(|(t, _)| t.clone()).collect(),
        distinct_customers: customers.len() as u32,
        opened_at: Some(to_timestamp(now)),
        updated_at: Some(to_timestamp(now)),
        department: ctx.policy.problem_type(&c.type_code).map(|t| t.department.clone()).unwrap_or_default(),
        priority: rules.raise_to.to_proto() as i32,
    };
    let mut linked = Vec::new();
    for (id, _) in &rows {
        if let Some(t) = store::get_ticket_in(work.conn(), id).await? {
            linked.push(t);
        }
    }
    save(work.conn(), &issue, key, now_ms, true).await?;
    link(ctx, work, &mut issue, linked, true, now_ms).await?;
    // Its reports are linked now: the next issue of this key starts afresh.
    sqlx::query("DELETE FROM common_issue_customers WHERE issue_key = $1").bind(key).execute(work.conn()).await?;
    tracing::info!(common_issue_id = %issue.common_issue_id, customers = issue.distinct_customers, "common issue opened");
    Ok(())
}

async fn open_issue(conn: &mut AnyConnection, key: &str) -> Result<Option<CommonIssue>, Error> {
    let row: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT common_issue_id, record FROM common_issues WHERE open_key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await?;
    row.map(|(id, bytes)| Error::decode("common_issues", &id, &bytes)).transpose()
}

/// Distinct customers linked to the issue, counting those `joining` too.
async fn distinct_customers(
    conn: &mut AnyConnection,
    issue_id: &str,
    joining: &BTreeSet<String>,
) -> Result<u32, Error> {
    let keys: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT customer_key FROM common_issue_reports WHERE common_issue_id = $1")
            .bind(issue_id)
            .fetch_all(conn)
            .await?;
    let mut set: BTreeSet<String> = keys.into_iter().map(|(k,)| k).collect();
    set.extend(joining.iter().cloned());
    Ok(set.len() as u32)
}

/// Links tickets to the issue: one `linked` event each, priority raised
/// (with `prioritised`, and `escalated` to the department head when it
/// became urgent) unless staff set it by hand or the ticket is resolved.
async fn link(
    ctx: &Context,
    work: &mut UnitOfWork,
    issue: &mut CommonIssue,
    tickets: Vec<Ticket>,
    opened: bool,
    now_ms: i64,
) -> Result<(), Error> {
    let raise_to = ctx.policy.common_issues().raise_to;
    for ticket in tickets {
        sqlx::query("UPDATE common_issue_reports SET common_issue_id = $1 WHERE ticket_id = $2")
            .bind(&issue.common_issue_id)
            .bind(&ticket.ticket_id)
            .execute(work.conn())
            .await?;
        let mut s = Session::within(ctx, work, Caller::System, ticket).await;
        s.ticket.common_issue_id = issue.common_issue_id.clone();
        let event = LinkedToCommonIssue {
            common_issue_id: issue.common_issue_id.clone(),
            distinct_customers: issue.distinct_customers,
            opened_issue: opened,
        };
        let summary =
            format!("linked to common issue {} ({} customers)", issue.common_issue_id, issue.distinct_customers);
        s.record("linked", Kind::Linked(event), summary);
        let previous = Priority::try_from(s.ticket.priority).unwrap_or_default();
        let below = kesu_domain::Priority::from_proto(s.ticket.priority).is_none_or(|p| p < raise_to);
        let open = crate::lifecycle::state::is_open(
            kesu_proto::v1::TicketStatus::try_from(s.ticket.status).unwrap_or_default(),
        );
        if below && open && !s.ticket.priority_overridden {
            let reason = format!("common issue: {} customers", issue.distinct_customers);
            s.ticket.priority = raise_to.to_proto() as i32;
            s.ticket.priority_reasons.push(reason.clone());
            let summary = format!("priority {} → {}: {reason}", priority_name(previous as i32), raise_to);
            let event = kesu_proto::v1::TicketPrioritised {
                previous: previous as i32,
                priority: raise_to.to_proto() as i32,
                reasons: vec![reason],
            };
            s.record("prioritised", Kind::Prioritised(event), summary);
            if raise_to == kesu_domain::Priority::Urgent {
                page_department_head(&mut s, "batch complaint: linked to a common issue");
            }
        }
        s.commit().await?;
    }
    issue.updated_at = Some(kesu_domain::time::millis_to_timestamp(now_ms));
    Ok(())
}

async fn save(conn: &mut AnyConnection, issue: &CommonIssue, key: &str, now_ms: i64, new: bool) -> Result<(), Error> {
    let open = (issue.status != CommonIssueStatus::Fixed as i32).then_some(key);
    let status = CommonIssueStatus::try_from(issue.status).unwrap_or_default().as_str_name().to_string();
    if new {
        sqlx::query(
            "INSERT INTO common_issues (common_issue_id, issue_key, open_key, status, department, opened_at, updated_at, record)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(&issue.common_issue_id)
        .bind(key)
        .bind(open)
        .bind(status)
        .bind(&issue.department)
        .bind(now_ms)
        .bind(issue.encode_to_vec())
        .execute(conn)
        .await?;
    } else {
        sqlx::query(
            "UPDATE common_issues SET open_key = $1, status = $2, updated_at = $3, record = $4 WHERE common_issue_id = $5",
        )
        .bind(open)
        .bind(status)
        .bind(now_ms)
        .bind(issue.encode_to_vec())
        .bind(&issue.common_issue_id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub async fn get(pool: &sqlx::AnyPool, id: &str) -> Result<Option<CommonIssue>, Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT record FROM common_issues WHERE common_issue_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(|(bytes,)| Error::decode("common_issues", id, &bytes)).transpose()
}

/// Issues newest first (optionally of one status), after the cursor.
pub async fn list(
    pool: &sqlx::AnyPool,
    status: Option<CommonIssueStatus>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, CommonIssue)>, Error> {
    let (before_at, before_id) = before.unwrap_or((i64::MAX, "\u{10FFFF}".into()));
    let status = status.map(|s| s.as_str_name().to_string()).unwrap_or_default();
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT opened_at, common_issue_id, record FROM common_issues
         WHERE ($1 = '' OR status = $1)
           AND (opened_at < $2 OR (opened_at = $2 AND common_issue_id < $3))
         ORDER BY opened_at DESC, common_issue_id DESC LIMIT $4",
    )
    .bind(status)
    .bind(before_at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(at, id, bytes)| {
            let issue = Error::decode("common_issues", &id, &bytes)?;
            Ok((at, id, issue))
        })
        .collect()
}

/// Marks the issue fixed and, when asked, resolves every open linked
/// ticket the caller may act on in the same unit of work (each customer
/// is told: `ticket.evt.resolved` with the issue's id).
pub async fn resolve(ctx: &Context, caller: &Caller, req: &ResolveCommonIssueRequest) -> Result<CommonIssue, Error> {
    if req.common_issue_id.is_empty() {
        return Err(Error::InvalidArgument { field: "common_issue_id", message: "required".into() });
    }
    let solution = required("solution", &req.solution, "what fixed it")?;
    let result =
        ResolutionResult::try_from(req.result).ok().filter(|r| *r != ResolutionResult::Unspecified).ok_or_else(
            || Error::InvalidArgument { field: "result", message: "resolved, partially_resolved or unresolved".into() },
        )?;
    let mut work = UnitOfWork::begin(&ctx.db).await?;
    let row: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT issue_key, record FROM common_issues WHERE common_issue_id = $1")
            .bind(&req.common_issue_id)
            .fetch_optional(work.conn())
            .await?;
    let (key, bytes) = row.ok_or(Error::NotFound("no such common issue"))?;
    let mut issue: CommonIssue = Error::decode("common_issues", &req.common_issue_id, &bytes)?;
    if let Caller::Staff(staff) = caller
        && staff.role == kesu_auth::Role::DepartmentManager
        && staff.department != issue.department
    {
        return Err(Error::NotYours("a department manager resolves their department's common issues"));
    }
    if issue.status == CommonIssueStatus::Fixed as i32 {
        return Err(Error::FailedPrecondition("the common issue is fixed already".into()));
    }
    // Take the key's turn, so no report joins while it is being fixed.
    sqlx::query("UPDATE common_issue_keys SET reports = reports WHERE issue_key = $1")
        .bind(&key)
        .execute(work.conn())
        .await?;
    if req.resolve_linked_tickets {
        for id in issue.ticket_ids.clone() {
            let Some(ticket) = store::get_ticket_in(work.conn(), &id).await? else { continue };
            if let Caller::Staff(staff) = caller
                && !in_scope(staff, &ticket)
            {
                continue;
            }
            let mut s = Session::within(ctx, &mut work, caller.clone(), ticket).await;
            let Ok(t) = s.decide(Action::ResolveWithCommonIssue) else { continue };
            resolve_in(&mut s, t.to, &solution, result, &issue.common_issue_id);
            s.commit().await?;
        }
    }
    let now = ctx.clock.now();
    issue.status = CommonIssueStatus::Fixed as i32;
    issue.updated_at = Some(to_timestamp(now));
    save(work.conn(), &issue, &key, to_millis(now), false).await?;
    work.commit(&ctx.outbox).await?;
    Ok(issue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::{Classification, CustomerRef};

    fn ticket(type_code: &str, cause: &str, product: &str, customer: &str) -> Ticket {
        Ticket {
            classification: Some(Classification {
                type_code: type_code.into(),
                cause_code: cause.into(),
                ..Default::default()
            }),
            product: product.into(),
            customer: Some(CustomerRef { customer_key: customer.into(), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn reports_are_keyed_by_type_cause_and_product() {
        let a = issue_key(&ticket("product_quality", "defect", " X1 ", "k1")).unwrap();
        assert_eq!(a, issue_key(&ticket("product_quality", "defect", "x1", "k2")).unwrap());
        assert_ne!(a, issue_key(&ticket("product_quality", "defect", "X2", "k1")).unwrap());
        assert_ne!(a, issue_key(&ticket("product_quality", "batch_problem", "X1", "k1")).unwrap());
        assert!(issue_key(&ticket("product_quality", "", "X1", "k1")).is_none(), "no cause");
        assert!(issue_key(&ticket("", "", "", "k1")).is_none(), "unclassified");
        assert!(issue_key(&ticket("product_quality", "defect", "X1", "")).is_none(), "no customer to count");
    }
}
