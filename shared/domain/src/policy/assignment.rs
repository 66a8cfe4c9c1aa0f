//! The `[assignment]` section: co-handlers added to a new ticket beside its
//! primary handler. The primary handler is chosen by routing
//! (`kesu_routing::assign`) from the staff directory: the department of the
//! type, people holding the type's handler role, on duty, under their load
//! cap; best skill, then fewest open tickets, then round robin.

use serde::Deserialize;

use super::taxonomy::{Department, ProblemType};
use crate::priority::Priority;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentPolicy {
    #[serde(default)]
    pub co_handlers: Vec<CoHandlerRule>,
}

/// Tickets matching every given condition get a co-handler from
/// `department` holding `position`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoHandlerRule {
    #[serde(default, rename = "type")]
    pub type_code: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    /// Only tickets of at least this priority.
    #[serde(default)]
    pub min_priority: Option<String>,
    pub department: String,
    pub position: String,
}

impl CoHandlerRule {
    /// Whether the rule applies to a ticket of this type, cause and priority.
    pub fn applies(&self, type_code: &str, cause: &str, priority: Priority) -> bool {
        self.type_code.as_deref().is_none_or(|t| t == type_code)
            && self.cause.as_deref().is_none_or(|c| c == cause)
            && self.min_priority.as_deref().and_then(|p| p.parse::<Priority>().ok()).is_none_or(|p| priority >= p)
    }
}

pub(super) fn validate(
    a: &AssignmentPolicy,
    departments: &[Department],
    taxonomy: &[ProblemType],
) -> Result<(), (String, String)> {
    for (n, r) in a.co_handlers.iter().enumerate() {
        let key = |f: &str| format!("assignment.co_handlers[{n}].{f}");
        if !departments.iter().any(|d| d.code == r.department) {
            return Err((key("department"), format!("{:?} is not a department code", r.department)));
        }
        if let Some(t) = &r.type_code
            && !taxonomy.iter().any(|p| &p.code == t)
        {
            return Err((key("type"), format!("{t:?} is not a taxonomy type")));
        }
        if let Some(c) = &r.cause
            && !taxonomy.iter().any(|p| p.causes.iter().any(|x| &x.code == c))
        {
            return Err((key("cause"), format!("{c:?} is not a taxonomy cause")));
        }
        if let Some(p) = &r.min_priority {
            p.parse::<Priority>().map_err(|m| (key("min_priority"), m))?;
        }
        if r.position.trim().is_empty() {
            return Err((key("position"), "must not be empty".into()));
        }
    }
    Ok(())
}
