//! The `[classification]` section: how routing reads a feedback's text.
//! Weighted term rules per type or cause (with negations and exceptions),
//! rules for the request nature and the customer's request, the confidence
//! below which a ticket goes to triage, and the channels whose stated type
//! is trusted over the text. Routing compiles and applies them
//! (`kesu_routing::classify`); this module only parses and checks them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::taxonomy::ProblemType;

/// Request natures a rule may name (`RequestNature` on the wire).
pub const NATURES: [&str; 5] = ["problem", "consultation", "suggestion", "complaint", "praise"];
/// Customer requests a rule may name (`CustomerRequestKind` on the wire).
pub const REQUESTS: [&str; 6] = ["repair", "replace", "refund", "explanation", "feature_change", "other"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationPolicy {
    /// Below this confidence (0..1) the text leaves the ticket unclassified.
    pub min_confidence: f64,
    /// Evidence that counts as "nothing said" in the confidence
    /// `best / (best + runner_up_weight * runner_up + prior)`.
    pub prior: f64,
    /// How much the second-best type's evidence lowers the confidence.
    pub runner_up_weight: f64,
    /// Weight of the taxonomy's own `keywords` (type and cause).
    pub taxonomy_keyword_weight: f64,
    /// Channels whose stated type wins over the text ("all" for every
    /// channel). Elsewhere a confident reading of the text wins and the
    /// stated type is used only when the text says too little.
    pub stated_type_wins: Vec<String>,
    /// Texts read as one of these natures stay unclassified (praise).
    #[serde(default)]
    pub natures_without_type: Vec<String>,
    /// Words that cancel a term right after them.
    pub negations: Negations,
    /// Request nature when no rule matches and none is stated.
    pub default_nature: String,
    /// Customer request when no rule matches and none is stated.
    pub default_request: String,
    /// What a type or `type.cause` implies when the text states no nature
    /// or request of its own (a fault asks for a repair, a question for an
    /// explanation).
    #[serde(default)]
    pub implied: BTreeMap<String, Implied>,
    #[serde(default)]
    pub rules: Vec<TermRule>,
    #[serde(default)]
    pub natures: Vec<LabelRule>,
    #[serde(default)]
    pub requests: Vec<LabelRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Negations {
    /// Chinese: a term directly preceded by one of these does not count
    /// ("没有漏电").
    pub zh: Vec<String>,
    /// English: a term with one of these words among the `en_window` words
    /// before it, in the same clause, does not count ("no smoke").
    pub en: Vec<String>,
    pub en_window: usize,
}

/// Nature and request implied by a class.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Implied {
    #[serde(default)]
    pub nature: Option<String>,
    #[serde(default)]
    pub request: Option<String>,
}

/// Evidence for a type or a cause.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermRule {
    /// `type` or `type.cause` of the taxonomy.
    pub class: String,
    pub weight: f64,
    /// Chinese terms match as substrings (`*` = up to a few characters in
    /// between: "扣*两次"); English terms match whole words after light
    /// stemming, tolerating one typo in long words and one extra word
    /// between the words of a phrase.
    pub terms: Vec<String>,
    /// The rule does not count when any of these is in the text.
    #[serde(default)]
    pub unless: Vec<String>,
    /// A match decides the classification, over any stated type (safety
    /// hazards: the ticket must get the safety response time).
    #[serde(default)]
    pub decisive: bool,
}

/// Evidence for a request nature or a customer request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    pub label: String,
    pub weight: f64,
    pub terms: Vec<String>,
    #[serde(default)]
    pub unless: Vec<String>,
}

pub(super) fn validate(c: &ClassificationPolicy, taxonomy: &[ProblemType]) -> Result<(), (String, String)> {
    let key = |k: &str| format!("classification.{k}");
    if !(0.0..=1.0).contains(&c.min_confidence) {
        return Err((key("min_confidence"), format!("{} is not between 0 and 1", c.min_confidence)));
    }
    for (name, value) in [("prior", c.prior), ("runner_up_weight", c.runner_up_weight)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err((key(name), format!("{value} must be 0 or more")));
        }
    }
    if !(c.taxonomy_keyword_weight.is_finite() && c.taxonomy_keyword_weight >= 0.0) {
        return Err((key("taxonomy_keyword_weight"), "must be 0 or more".into()));
    }
    for (n, channel) in c.stated_type_wins.iter().enumerate() {
        if channel != "all" && crate::channel_from_token(channel).is_none() {
            return Err((
                key(&format!("stated_type_wins[{n}]")),
                format!("{channel:?} is not a channel token or \"all\""),
            ));
        }
    }
    for (n, nature) in c.natures_without_type.iter().enumerate() {
        if !NATURES.contains(&nature.as_str()) {
            return Err((
                key(&format!("natures_without_type[{n}]")),
                format!("{nature:?} is not one of {}", NATURES.join(", ")),
            ));
        }
    }
    if !NATURES.contains(&c.default_nature.as_str()) {
        return Err((key("default_nature"), format!("{:?} is not one of {}", c.default_nature, NATURES.join(", "))));
    }
    if !REQUESTS.contains(&c.default_request.as_str()) {
        return Err((key("default_request"), format!("{:?} is not one of {}", c.default_request, REQUESTS.join(", "))));
    }
    let classes: BTreeSet<String> = taxonomy
        .iter()
        .flat_map(|t| std::iter::once(t.code.clone()).chain(t.causes.iter().map(|c| format!("{}.{}", t.code, c.code))))
        .collect();
    for (class, implied) in &c.implied {
        let at = |f: &str| key(&format!("implied.{class}{f}"));
        if !classes.contains(class) {
            return Err((at(""), format!("{class:?} is not a taxonomy type or type.cause")));
        }
        if let Some(n) = implied.nature.as_deref().filter(|n| !NATURES.contains(n)) {
            return Err((at(".nature"), format!("{n:?} is not one of {}", NATURES.join(", "))));
        }
        if let Some(r) = implied.request.as_deref().filter(|r| !REQUESTS.contains(r)) {
            return Err((at(".request"), format!("{r:?} is not one of {}", REQUESTS.join(", "))));
        }
    }
    for (n, r) in c.rules.iter().enumerate() {
        let at = |f: &str| key(&format!("rules[{n}].{f}"));
        if !classes.contains(&r.class) {
            return Err((at("class"), format!("{:?} is not a taxonomy type or type.cause", r.class)));
        }
        check_terms(r.weight, &r.terms, &r.unless, &at)?;
    }
    for (section, rules, labels) in [("natures", &c.natures, &NATURES[..]), ("requests", &c.requests, &REQUESTS[..])] {
        for (n, r) in rules.iter().enumerate() {
            let at = |f: &str| key(&format!("{section}[{n}].{f}"));
            if !labels.contains(&r.label.as_str()) {
                return Err((at("label"), format!("{:?} is not one of {}", r.label, labels.join(", "))));
            }
            check_terms(r.weight, &r.terms, &r.unless, &at)?;
        }
    }
    Ok(())
}

fn check_terms(
    weight: f64,
    terms: &[String],
    unless: &[String],
    at: &dyn Fn(&str) -> String,
) -> Result<(), (String, String)> {
    if !(weight.is_finite() && weight > 0.0) {
        return Err((at("weight"), format!("{weight} must be more than 0")));
    }
    if terms.is_empty() {
        return Err((at("terms"), "must not be empty".into()));
    }
    for (field, list) in [("terms", terms), ("unless", unless)] {
        for (k, t) in list.iter().enumerate() {
            if t.trim().is_empty() || t.trim_matches('*').trim().is_empty() {
                return Err((at(&format!("{field}[{k}]")), "must not be empty".into()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    #[test]
    fn the_shipped_rules_name_real_classes() {
        let p = Policy::default_policy();
        let c = &p.doc.classification;
        assert!(c.rules.iter().any(|r| r.class == "product_quality.safety_hazard" && r.decisive));
        assert!(!c.natures.is_empty() && !c.requests.is_empty());
    }

    #[test]
    fn errors_name_the_rule_and_field() {
        let mut table = Policy::default_table()["classification"].as_table().unwrap().clone();
        table["rules"].as_array_mut().unwrap()[0].as_table_mut().unwrap().insert("class".into(), "teleport".into());
        let overlay =
            toml::to_string(&toml::Table::from_iter([("classification".to_string(), toml::Value::Table(table))]))
                .unwrap();
        let e = Policy::from_toml(Some(&overlay), "t").unwrap_err();
        assert_eq!(e.key, "classification.rules[0].class");
        let mut table = Policy::default_table()["classification"].as_table().unwrap().clone();
        table.insert("min_confidence".into(), toml::Value::Float(1.5));
        let overlay =
            toml::to_string(&toml::Table::from_iter([("classification".to_string(), toml::Value::Table(table))]))
                .unwrap();
        let e = Policy::from_toml(Some(&overlay), "t").unwrap_err();
        assert_eq!(e.key, "classification.min_confidence");
    }
}
