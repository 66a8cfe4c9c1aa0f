//! `PreviewClocks`: the clocks a ticket would get, planned from the
//! request's attributes and timed changes under the live policy or one
//! given to try — nothing is stored. The same planner as the live clocks.

use chrono::{DateTime, Utc};
use kesu_domain::Policy;
use kesu_domain::time::{from_timestamp, to_millis};
use kesu_proto::v1::{PreviewClocksRequest, PreviewClocksResponse, preview_change};

use crate::error::Error;
use crate::facts::{Fact, Snapshot, TicketFacts};
use crate::plan;

/// Largest number of changes one preview takes.
pub const MAX_CHANGES: usize = 1000;

fn instant(ts: &Option<prost_types::Timestamp>, field: &'static str) -> Result<DateTime<Utc>, Error> {
    ts.as_ref()
        .and_then(from_timestamp)
        .ok_or(Error::InvalidArgument { field, message: "required: a valid timestamp".into() })
}

/// Plans the request's clocks; `live` unless the request brings a policy.
pub fn preview(req: &PreviewClocksRequest, live: &Policy) -> Result<PreviewClocksResponse, Error> {
    let tried;
    let policy = if req.policy_toml.trim().is_empty() {
        live
    } else {
        tried = Policy::from_toml(Some(&req.policy_toml), "policy_toml")
            .map_err(|e| Error::BadPolicy(format!("{}: {}", e.key, e.message)))?;
        &tried
    };
    if kesu_proto::v1::Priority::try_from(req.priority).is_err() {
        let message = format!("{} is not a known Priority value", req.priority);
        return Err(Error::InvalidArgument { field: "priority", message });
    }
    if !req.type_code.is_empty() && policy.problem_type(&req.type_code).is_none() {
        let message = format!("{:?} is not a taxonomy type", req.type_code);
        return Err(Error::InvalidArgument { field: "type_code", message });
    }
    if req.changes.len() > MAX_CHANGES {
        let message = format!("at most {MAX_CHANGES} changes");
        return Err(Error::InvalidArgument { field: "changes", message });
    }
    let start = instant(&req.start, "start")?;
    let mut facts = TicketFacts::new("preview");
    facts.snapshot = Snapshot {
        version: 1,
        priority: req.priority,
        type_code: req.type_code.clone(),
        cause_code: req.cause_code.clone(),
        request_nature: req.request_nature,
        customer_tier: req.customer_tier.clone(),
        received_at: Some(to_millis(start)),
        ..Default::default()
    };
    facts.timeline.insert(1, vec![Fact::Other { at: to_millis(start) }]);
    let mut changes = Vec::with_capacity(req.changes.len());
    for change in &req.changes {
        let at = instant(&change.at, "changes.at")?;
        if at < start {
            return Err(Error::InvalidArgument { field: "changes.at", message: "before start".into() });
        }
        let Some(kind) = &change.change else {
            return Err(Error::InvalidArgument { field: "changes.change", message: "required".into() });
        };
        changes.push((at, kind.clone()));
    }
    changes.sort_by_key(|(at, _)| *at);
    let mut last = start;
    for (n, (at, kind)) in changes.into_iter().enumerate() {
        let ms = to_millis(at);
        use preview_change::Change;
        let fact = match kind {
            Change::Pause(_) => Fact::Waiting { at: ms },
            Change::Resume(_) => Fact::Resumed { at: ms },
            Change::Priority(p) => {
                if kesu_domain::Priority::from_proto(p).is_none() {
                    let message = format!("{p} is not a priority level");
                    return Err(Error::InvalidArgument { field: "changes.priority", message });
                }
                facts.snapshot.priority = p;
                Fact::Other { at: ms }
            }
            Change::Acknowledge(_) => Fact::Acknowledged { at: ms },
            Change::Progress(stage) => Fact::Progress { at: ms, stage },
            Change::Extension(x) => Fact::Extended {
                at: ms,
                clock: x.clock,
                new_deadline: to_millis(instant(&x.new_deadline, "changes.extension.new_deadline")?),
                reason: x.reason,
            },
            Change::Resolve(_) => Fact::Resolved { at: ms },
            Change::Reopen(_) => Fact::Reopened { at: ms },
            Change::Assign(handler) => {
                facts.snapshot.handler = handler.clone();
                Fact::Assigned { at: ms, handler }
            }
        };
        facts.timeline.insert(n as u64 + 2, vec![fact]);
        last = at;
    }
    facts.snapshot.version = facts.timeline.len() as u64;
    let as_of = match &req.as_of {
        Some(_) => instant(&req.as_of, "as_of")?,
        None => last,
    };
    let clocks = plan::plan(&facts, policy, as_of).into_iter().map(|p| p.clock).collect();
    Ok(PreviewClocksResponse { clocks })
}
