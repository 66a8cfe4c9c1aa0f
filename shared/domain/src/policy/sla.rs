//! The `[sla]` section: targets per priority, per-type/cause overrides, the
//! warning point and the other clocks' targets.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::priority::Priority;
use crate::target::SlaTarget;

use super::taxonomy::ProblemType;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub warn_at_percent: u8,
    pub acknowledge: String,
    pub result_notice: String,
    pub follow_up: String,
    pub progress_update: String,
    pub targets: BTreeMap<String, LevelTargets>,
    #[serde(default)]
    pub overrides: Vec<SlaOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelTargets {
    pub response: String,
    pub resolution: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaOverride {
    pub problem_type: Option<String>,
    pub problem_cause: Option<String>,
    pub priority: Option<String>,
    pub response: Option<String>,
    pub resolution: Option<String>,
}

/// A chosen SLA target and the policy entry it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenTarget {
    pub target: SlaTarget,
    /// "medium.response", "override[0].response", ...
    pub policy: String,
}

#[derive(Debug, Clone)]
struct ParsedOverride {
    problem_type: Option<String>,
    problem_cause: Option<String>,
    priority: Option<Priority>,
    response: Option<SlaTarget>,
    resolution: Option<SlaTarget>,
}

/// SLA targets, parsed.
#[derive(Debug, Clone)]
pub struct SlaTable {
    pub warn_at_percent: u8,
    pub acknowledge: SlaTarget,
    pub result_notice: SlaTarget,
    pub follow_up: SlaTarget,
    pub progress_update: SlaTarget,
    levels: BTreeMap<Priority, (SlaTarget, SlaTarget)>,
    overrides: Vec<ParsedOverride>,
}

impl SlaTable {
    /// Response and resolution targets for a ticket.
    pub fn targets_for(
        &self,
        priority: Priority,
        problem_type: &str,
        problem_cause: &str,
    ) -> (ChosenTarget, ChosenTarget) {
        let (response, resolution) = self.levels.get(&priority).expect("validation requires every level").clone();
        let mut response = ChosenTarget { target: response, policy: format!("{priority}.response") };
        let mut resolution = ChosenTarget { target: resolution, policy: format!("{priority}.resolution") };
        for (i, o) in self.overrides.iter().enumerate() {
            let matches = o.problem_type.as_deref().is_none_or(|t| t == problem_type)
                && o.problem_cause.as_deref().is_none_or(|c| c == problem_cause)
                && o.priority.is_none_or(|p| p == priority);
            if !matches {
                continue;
            }
            if let Some(t) = &o.response {
                response = ChosenTarget { target: t.clone(), policy: format!("override[{i}].response") };
            }
            if let Some(t) = &o.resolution {
                resolution = ChosenTarget { target: t.clone(), policy: format!("override[{i}].resolution") };
            }
        }
        (response, resolution)
    }
}

pub(super) fn build(s: &SlaPolicy, taxonomy: &[ProblemType]) -> Result<SlaTable, (String, String)> {
    let target = |key: String, text: &str| SlaTarget::parse(text).map_err(|m| (key, m));
    if !(1..=99).contains(&s.warn_at_percent) {
        return Err(("sla.warn_at_percent".into(), "must be between 1 and 99".into()));
    }
    let mut levels = BTreeMap::new();
    for (name, t) in &s.targets {
        let priority: Priority = name.parse().map_err(|m| (format!("sla.targets.{name}"), m))?;
        let response = target(format!("sla.targets.{name}.response"), &t.response)?;
        let resolution = target(format!("sla.targets.{name}.resolution"), &t.resolution)?;
        levels.insert(priority, (response, resolution));
    }
    for p in Priority::ALL {
        if !levels.contains_key(&p) {
            return Err((format!("sla.targets.{p}"), "missing: every priority level needs targets".into()));
        }
    }
    let types: BTreeSet<&str> = taxonomy.iter().map(|t| t.code.as_str()).collect();
    let mut overrides = Vec::new();
    for (n, o) in s.overrides.iter().enumerate() {
        if let Some(t) = &o.problem_type
            && !types.contains(t.as_str())
        {
            return Err((format!("sla.overrides[{n}].problem_type"), format!("{t:?} is not a taxonomy type")));
        }
        if let Some(c) = &o.problem_cause
            && !taxonomy.iter().any(|t| t.causes.iter().any(|x| &x.code == c))
        {
            return Err((format!("sla.overrides[{n}].problem_cause"), format!("{c:?} is not a taxonomy cause")));
        }
        let priority = match &o.priority {
            Some(p) => Some(p.parse().map_err(|m| (format!("sla.overrides[{n}].priority"), m))?),
            None => None,
        };
        let response = o.response.as_deref().map(|t| target(format!("sla.overrides[{n}].response"), t)).transpose()?;
        let resolution =
            o.resolution.as_deref().map(|t| target(format!("sla.overrides[{n}].resolution"), t)).transpose()?;
        if o.problem_type.is_none() && o.problem_cause.is_none() && priority.is_none() {
            return Err((format!("sla.overrides[{n}]"), "name problem_type, problem_cause or priority".into()));
        }
        overrides.push(ParsedOverride {
            problem_type: o.problem_type.clone(),
            problem_cause: o.problem_cause.clone(),
            priority,
            response,
            resolution,
        });
    }
    Ok(SlaTable {
        warn_at_percent: s.warn_at_percent,
        acknowledge: target("sla.acknowledge".into(), &s.acknowledge)?,
        result_notice: target("sla.result_notice".into(), &s.result_notice)?,
        follow_up: target("sla.follow_up".into(), &s.follow_up)?,
        progress_update: target("sla.progress_update".into(), &s.progress_update)?,
        levels,
        overrides,
    })
}
