//! The `[sla]` section: targets per priority, overrides per type, cause,
//! request nature and customer tier, the warning point, the escalation
//! chain, when clocks start, what counts as the response, and the other
//! clocks' targets.

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
    /// What stops the response clock: "acknowledge" (default),
    /// "first_contact" (progress stage contacted_customer) or
    /// "first_progress" (any progress recorded).
    #[serde(default = "default_response_on")]
    pub response_on: String,
    /// Channels whose clocks start at the customer's submission time
    /// (manual and paper entry) instead of intake's receipt.
    #[serde(default)]
    pub start_at_submission_for: Vec<String>,
    /// Roles told at the warning point.
    #[serde(default = "default_warning_roles")]
    pub warning_roles: Vec<String>,
    /// The escalation chain after a breach, in order.
    #[serde(default = "default_escalation")]
    pub escalation: Vec<EscalationStep>,
    /// Roles told when the assignment is not acknowledged in time.
    #[serde(default = "default_ack_roles")]
    pub ack_overdue_roles: Vec<String>,
    /// Roles told when an open ticket had no progress for `progress_update`.
    #[serde(default = "default_stale_roles")]
    pub stale_roles: Vec<String>,
    /// Priorities that get a follow-up visit after resolution.
    #[serde(default = "default_follow_up_priorities")]
    pub follow_up_priorities: Vec<String>,
    /// Reminders to staff (warnings, breaches, escalations) wait for working
    /// time; deadlines and customer notices never move.
    #[serde(default)]
    pub staff_reminders_in_business_hours: bool,
}

/// One step of the escalation chain: `after` the breach, tell `roles` at `level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    pub after: String,
    pub level: u32,
    pub roles: Vec<String>,
}

fn default_response_on() -> String {
    "acknowledge".into()
}

fn default_warning_roles() -> Vec<String> {
    vec!["handler".into()]
}

fn default_ack_roles() -> Vec<String> {
    vec!["supervisor".into()]
}

fn default_stale_roles() -> Vec<String> {
    vec!["handler".into(), "supervisor".into()]
}

fn default_follow_up_priorities() -> Vec<String> {
    vec!["high".into(), "medium".into()]
}

fn default_escalation() -> Vec<EscalationStep> {
    vec![
        EscalationStep { after: "0m".into(), level: 1, roles: vec!["supervisor".into(), "handler".into()] },
        EscalationStep { after: "24h".into(), level: 2, roles: vec!["director".into()] },
    ]
}

/// Roles an SLA event may name (contract 0.3).
pub const RECIPIENT_ROLES: [&str; 5] = ["handler", "supervisor", "department_head", "director", "management"];

/// What stops the response clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOn {
    Acknowledge,
    FirstContact,
    FirstProgress,
}

/// A parsed escalation step; `after` is wall-clock time after the breach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub after: chrono::Duration,
    pub level: u32,
    pub roles: Vec<String>,
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
    /// "problem", "consultation", "suggestion", "complaint", "praise".
    pub request_nature: Option<String>,
    /// The customer's tier as intake records it ("vip", ...).
    pub customer_tier: Option<String>,
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
    request_nature: Option<String>,
    customer_tier: Option<String>,
    response: Option<SlaTarget>,
    resolution: Option<SlaTarget>,
}

/// Request natures an override may name.
pub const REQUEST_NATURES: [&str; 5] = ["problem", "consultation", "suggestion", "complaint", "praise"];

/// What a ticket's targets are chosen by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetKey<'a> {
    pub problem_type: &'a str,
    pub problem_cause: &'a str,
    /// One of [`REQUEST_NATURES`] or empty.
    pub request_nature: &'a str,
    pub customer_tier: &'a str,
}

/// SLA targets, parsed.
#[derive(Debug, Clone)]
pub struct SlaTable {
    pub warn_at_percent: u8,
    pub acknowledge: SlaTarget,
    pub result_notice: SlaTarget,
    pub follow_up: SlaTarget,
    pub progress_update: SlaTarget,
    pub response_on: ResponseOn,
    pub start_at_submission_for: Vec<String>,
    pub warning_roles: Vec<String>,
    pub escalation: Vec<Escalation>,
    pub ack_overdue_roles: Vec<String>,
    pub stale_roles: Vec<String>,
    pub follow_up_priorities: Vec<Priority>,
    pub staff_reminders_in_business_hours: bool,
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
        self.targets_for_key(priority, &TargetKey { problem_type, problem_cause, ..Default::default() })
    }

    /// Response and resolution targets for a ticket's priority, type,
    /// cause, request nature and customer tier (later overrides win).
    pub fn targets_for_key(&self, priority: Priority, key: &TargetKey<'_>) -> (ChosenTarget, ChosenTarget) {
        let (problem_type, problem_cause) = (key.problem_type, key.problem_cause);
        let (response, resolution) = self.levels.get(&priority).expect("validation requires every level").clone();
        let mut response = ChosenTarget { target: response, policy: format!("{priority}.response") };
        let mut resolution = ChosenTarget { target: resolution, policy: format!("{priority}.resolution") };
        for (i, o) in self.overrides.iter().enumerate() {
            let matches = o.problem_type.as_deref().is_none_or(|t| t == problem_type)
                && o.problem_cause.as_deref().is_none_or(|c| c == problem_cause)
                && o.priority.is_none_or(|p| p == priority)
                && o.request_nature.as_deref().is_none_or(|n| n == key.request_nature)
                && o.customer_tier.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(key.customer_tier));
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
        if let Some(nature) = &o.request_nature
            && !REQUEST_NATURES.contains(&nature.as_str())
        {
            let message = format!("{nature:?} is not one of {}", REQUEST_NATURES.join(", "));
            return Err((format!("sla.overrides[{n}].request_nature"), message));
        }
        if o.customer_tier.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err((format!("sla.overrides[{n}].customer_tier"), "must not be empty".into()));
        }
        if o.problem_type.is_none()
            && o.problem_cause.is_none()
            && priority.is_none()
            && o.request_nature.is_none()
            && o.customer_tier.is_none()
        {
            let message = "name problem_type, problem_cause, priority, request_nature or customer_tier";
            return Err((format!("sla.overrides[{n}]"), message.into()));
        }
        overrides.push(ParsedOverride {
            problem_type: o.problem_type.clone(),
            problem_cause: o.problem_cause.clone(),
            priority,
            request_nature: o.request_nature.clone(),
            customer_tier: o.customer_tier.clone(),
            response,
            resolution,
        });
    }
    let response_on = match s.response_on.as_str() {
        "acknowledge" => ResponseOn::Acknowledge,
        "first_contact" => ResponseOn::FirstContact,
        "first_progress" => ResponseOn::FirstProgress,
        other => {
            let message = format!("{other:?} is not one of acknowledge, first_contact, first_progress");
            return Err(("sla.response_on".into(), message));
        }
    };
    let roles = |key: String, list: &[String]| -> Result<Vec<String>, (String, String)> {
        for (i, role) in list.iter().enumerate() {
            if !RECIPIENT_ROLES.contains(&role.as_str()) {
                return Err((format!("{key}[{i}]"), format!("{role:?} is not one of {}", RECIPIENT_ROLES.join(", "))));
            }
        }
        Ok(list.to_vec())
    };
    let mut escalation = Vec::new();
    for (i, step) in s.escalation.iter().enumerate() {
        let after = super::parse_duration(&step.after, &format!("sla.escalation[{i}].after"))?;
        if after < chrono::Duration::zero() {
            return Err((format!("sla.escalation[{i}].after"), "must not be negative".into()));
        }
        if step.level == 0 {
            return Err((format!("sla.escalation[{i}].level"), "levels start at 1".into()));
        }
        if let Some(prev) = escalation.last().map(|e: &Escalation| (e.after, e.level))
            && (after < prev.0 || step.level <= prev.1)
        {
            let message = "steps must come in order: later and at a higher level than the one before".into();
            return Err((format!("sla.escalation[{i}]"), message));
        }
        escalation.push(Escalation {
            after,
            level: step.level,
            roles: roles(format!("sla.escalation[{i}].roles"), &step.roles)?,
        });
    }
    let follow_up_priorities = s
        .follow_up_priorities
        .iter()
        .enumerate()
        .map(|(i, p)| p.parse().map_err(|m| (format!("sla.follow_up_priorities[{i}]"), m)))
        .collect::<Result<Vec<Priority>, _>>()?;
    for (i, channel) in s.start_at_submission_for.iter().enumerate() {
        let known = kesu_proto::v1::Channel::from_str_name(&format!("CHANNEL_{}", channel.to_ascii_uppercase()));
        if known.is_none_or(|c| c == kesu_proto::v1::Channel::Unspecified) {
            return Err((format!("sla.start_at_submission_for[{i}]"), format!("{channel:?} is not a channel")));
        }
    }
    Ok(SlaTable {
        response_on,
        start_at_submission_for: s.start_at_submission_for.iter().map(|c| c.to_ascii_lowercase()).collect(),
        warning_roles: roles("sla.warning_roles".into(), &s.warning_roles)?,
        escalation,
        ack_overdue_roles: roles("sla.ack_overdue_roles".into(), &s.ack_overdue_roles)?,
        stale_roles: roles("sla.stale_roles".into(), &s.stale_roles)?,
        follow_up_priorities,
        staff_reminders_in_business_hours: s.staff_reminders_in_business_hours,
        warn_at_percent: s.warn_at_percent,
        acknowledge: target("sla.acknowledge".into(), &s.acknowledge)?,
        result_notice: target("sla.result_notice".into(), &s.result_notice)?,
        follow_up: target("sla.follow_up".into(), &s.follow_up)?,
        progress_update: target("sla.progress_update".into(), &s.progress_update)?,
        levels,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use crate::policy::{DEFAULT_POLICY_FILES, Policy};
    use crate::priority::Priority;

    fn with(extra: &str) -> Result<Policy, crate::policy::PolicyError> {
        let shipped = DEFAULT_POLICY_FILES.iter().find(|(f, _)| *f == "sla.toml").unwrap().1;
        Policy::from_toml(Some(&format!("{shipped}\n{extra}")), "test")
    }

    #[test]
    fn the_shipped_chain_is_the_domain_default() {
        let p = Policy::default_policy();
        let sla = p.sla();
        assert_eq!(sla.escalation.len(), 2);
        assert_eq!((sla.escalation[0].level, sla.escalation[0].after), (1, chrono::Duration::zero()));
        assert_eq!(sla.escalation[0].roles, ["supervisor", "handler"]);
        assert_eq!((sla.escalation[1].level, sla.escalation[1].after), (2, chrono::Duration::hours(24)));
        assert_eq!(sla.escalation[1].roles, ["director"]);
        assert_eq!(sla.follow_up_priorities, [Priority::High, Priority::Medium]);
        assert_eq!(sla.response_on, super::ResponseOn::Acknowledge);
        assert!(!sla.staff_reminders_in_business_hours);
    }

    #[test]
    fn bad_entries_are_named() {
        let cases = [
            ("[[sla.overrides]]\nrequest_nature = \"rant\"\nresponse = \"1h\"\n", "sla.overrides[2].request_nature"),
            ("[[sla.overrides]]\ncustomer_tier = \" \"\nresponse = \"1h\"\n", "sla.overrides[2].customer_tier"),
            ("[[sla.overrides]]\nresponse = \"1h\"\n", "sla.overrides[2]"),
            ("[[sla.overrides]]\npriority = \"low\"\nresponse = \"soon\"\n", "sla.overrides[2].response"),
            ("[[sla.escalation]]\nafter = \"48h\"\nlevel = 3\nroles = [\"ceo\"]\n", "sla.escalation[2].roles[0]"),
            ("[[sla.escalation]]\nafter = \"1h\"\nlevel = 3\nroles = [\"director\"]\n", "sla.escalation[2]"),
            ("[[sla.escalation]]\nafter = \"forever\"\nlevel = 3\nroles = [\"director\"]\n", "sla.escalation[2].after"),
        ];
        for (extra, key) in cases {
            let err = with(extra).unwrap_err();
            assert_eq!(err.key, key, "{extra}: {err}");
        }
        let shipped = DEFAULT_POLICY_FILES.iter().find(|(f, _)| *f == "sla.toml").unwrap().1;
        for (from, to, key) in [
            (
                "follow_up_priorities = [\"high\", \"medium\"]",
                "follow_up_priorities = [\"vip\"]",
                "sla.follow_up_priorities[0]",
            ),
            ("start_at_submission_for = []", "start_at_submission_for = [\"fax\"]", "sla.start_at_submission_for[0]"),
            ("warning_roles = [\"handler\"]", "warning_roles = [\"boss\"]", "sla.warning_roles[0]"),
            ("response_on = \"acknowledge\"", "response_on = \"soon\"", "sla.response_on"),
        ] {
            assert!(shipped.contains(from), "{from}");
            let err = Policy::from_toml(Some(&shipped.replace(from, to)), "test").unwrap_err();
            assert_eq!(err.key, key, "{to}: {err}");
        }
    }
}
