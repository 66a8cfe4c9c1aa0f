//! The `[priority_rules]` section: how routing scores a ticket's priority
//! from its text (urgency and risk words), the customer's tier, the impact
//! (affected customers), its nature and cause, and the stated urgency.
//! Routing applies them (`kesu_routing::priority`); this module parses and
//! checks them into [`PriorityRules`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::classification::NATURES;
use super::taxonomy::ProblemType;
use crate::priority::Priority;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRulesPolicy {
    /// The level a request nature starts from (else `priority.default`).
    #[serde(default)]
    pub natures: BTreeMap<String, String>,
    /// The level a cause starts from (wins over the nature's).
    #[serde(default)]
    pub causes: BTreeMap<String, String>,
    /// Customer tiers that raise the level, by how many levels.
    #[serde(default)]
    pub tiers: BTreeMap<String, u8>,
    /// A tier never raises past this level.
    pub tier_cap: String,
    /// Affected customers at least `at_least` → at least `level`.
    #[serde(default)]
    pub impact: Vec<ImpactRulePolicy>,
    /// Words in the text that set a lowest level, with the reason shown.
    #[serde(default)]
    pub terms: Vec<TermLevelPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactRulePolicy {
    pub at_least: u32,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermLevelPolicy {
    /// Shown in `priority_reasons`: "safety hazard", "outage", "risk", …
    pub reason: String,
    pub level: String,
    /// Matched like classification terms (substrings for Chinese, stemmed
    /// words for English, negations honoured).
    pub terms: Vec<String>,
}

/// The validated rules.
#[derive(Debug, Clone, Default)]
pub struct PriorityRules {
    pub natures: BTreeMap<String, Priority>,
    pub causes: BTreeMap<String, Priority>,
    pub tiers: BTreeMap<String, u8>,
    pub tier_cap: Option<Priority>,
    /// Ascending by `at_least`.
    pub impact: Vec<(u32, Priority)>,
    pub terms: Vec<TermLevel>,
}

#[derive(Debug, Clone)]
pub struct TermLevel {
    pub reason: String,
    pub level: Priority,
    pub terms: Vec<String>,
}

pub(super) fn build(p: &PriorityRulesPolicy, taxonomy: &[ProblemType]) -> Result<PriorityRules, (String, String)> {
    let level = |text: &str, key: String| text.parse::<Priority>().map_err(|m| (key, m));
    let mut rules = PriorityRules::default();
    for (nature, l) in &p.natures {
        if !NATURES.contains(&nature.as_str()) {
            return Err((format!("priority_rules.natures.{nature}"), format!("not one of {}", NATURES.join(", "))));
        }
        rules.natures.insert(nature.clone(), level(l, format!("priority_rules.natures.{nature}"))?);
    }
    for (cause, l) in &p.causes {
        if !taxonomy.iter().any(|t| t.causes.iter().any(|c| &c.code == cause)) {
            return Err((format!("priority_rules.causes.{cause}"), "not a cause of the taxonomy".into()));
        }
        rules.causes.insert(cause.clone(), level(l, format!("priority_rules.causes.{cause}"))?);
    }
    rules.tiers = p.tiers.clone();
    rules.tier_cap = Some(level(&p.tier_cap, "priority_rules.tier_cap".into())?);
    for (n, i) in p.impact.iter().enumerate() {
        if i.at_least < 2 {
            return Err((format!("priority_rules.impact[{n}].at_least"), "must be 2 or more".into()));
        }
        rules.impact.push((i.at_least, level(&i.level, format!("priority_rules.impact[{n}].level"))?));
    }
    rules.impact.sort_by_key(|(n, _)| *n);
    for (n, t) in p.terms.iter().enumerate() {
        let key = |f: &str| format!("priority_rules.terms[{n}].{f}");
        if t.reason.trim().is_empty() {
            return Err((key("reason"), "must not be empty".into()));
        }
        if t.terms.is_empty() || t.terms.iter().any(|w| w.trim().is_empty()) {
            return Err((key("terms"), "must be a list of non-empty terms".into()));
        }
        rules.terms.push(TermLevel {
            reason: t.reason.clone(),
            level: level(&t.level, key("level"))?,
            terms: t.terms.clone(),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use crate::{Policy, Priority};

    #[test]
    fn the_shipped_rules_cover_the_domain() {
        let p = Policy::default_policy();
        let r = p.priority_rules();
        assert_eq!(r.natures["suggestion"], Priority::Low);
        assert_eq!(r.tiers["vip"], 1);
        assert!(r.terms.iter().any(|t| t.level == Priority::Urgent && t.terms.iter().any(|w| w == "漏电")));
    }

    #[test]
    fn errors_name_the_key() {
        let e =
            Policy::from_toml(Some("[priority_rules]\ntier_cap = \"high\"\nnatures = { grumble = \"low\" }\n"), "t")
                .unwrap_err();
        assert_eq!(e.key, "priority_rules.natures.grumble");
        let e = Policy::from_toml(
            Some("[priority_rules]\ntier_cap = \"high\"\n[[priority_rules.impact]]\nat_least = 10\nlevel = \"hot\"\n"),
            "t",
        )
        .unwrap_err();
        assert_eq!(e.key, "priority_rules.impact[0].level");
    }
}
