//! Priority scoring of a new ticket by `[priority_rules]`: the stated
//! urgency (else the cause's, the request nature's or the default level),
//! raised by urgency and risk words in the text, the impact (affected
//! customers) and the customer's tier. Every step that applies is a reason
//! kept on the ticket (`priority_reasons`).

use kesu_domain::policy::PriorityRules;
use kesu_domain::{Policy, Priority};

use crate::classify::{Lexicon, LexiconBuilder, Text, nature_label};

/// The compiled rules of one policy.
#[derive(Debug)]
pub struct PriorityScorer {
    lexicon: Lexicon,
    /// (reason, level, term ids) per term group.
    groups: Vec<(String, Priority, Vec<usize>)>,
    rules: PriorityRules,
    default: Priority,
}

/// What a priority is scored from.
#[derive(Debug, Clone, Default)]
pub struct Factors<'a> {
    pub text: &'a str,
    /// `RequestNature` (wire value).
    pub nature: i32,
    pub cause: &'a str,
    pub tier: &'a str,
    pub affected_customers: u32,
    /// The urgency the channel or agent stated.
    pub stated: Option<Priority>,
}

impl PriorityScorer {
    pub fn new(policy: &Policy) -> Self {
        let rules = policy.priority_rules().clone();
        let c = &policy.doc.classification;
        let mut b = LexiconBuilder::default();
        let groups = rules
            .terms
            .iter()
            .map(|g| (g.reason.clone(), g.level, g.terms.iter().map(|t| b.add(t)).collect()))
            .collect();
        Self {
            lexicon: b.build(&c.negations.zh, &c.negations.en, c.negations.en_window),
            groups,
            rules,
            default: policy.default_priority(),
        }
    }

    /// The priority and every reason for it, in the order applied.
    pub fn score(&self, f: &Factors<'_>) -> (Priority, Vec<String>) {
        let mut reasons = Vec::new();
        let nature = nature_label(f.nature);
        let (mut level, base_reason) = match (f.stated, self.rules.causes.get(f.cause), self.rules.natures.get(&nature))
        {
            (Some(s), _, _) => (s, format!("stated urgency: {s}")),
            (None, Some(&l), _) => (l, format!("cause {}: {l}", f.cause)),
            (None, None, Some(&l)) => (l, format!("request nature {nature}: {l}")),
            (None, None, None) => (self.default, format!("default priority: {}", self.default)),
        };
        let raise = |level: &mut Priority, to: Priority, reason: String, reasons: &mut Vec<String>| {
            if to > *level {
                *level = to;
            }
            reasons.push(reason);
        };
        if let (Some(_), Some(&floor)) = (f.stated, self.rules.causes.get(f.cause))
            && floor > level
        {
            raise(&mut level, floor, format!("cause {}: {floor}", f.cause), &mut reasons);
        }
        let found = self.lexicon.find(&Text::new(f.text));
        for (reason, to, ids) in &self.groups {
            let words: Vec<&str> = ids.iter().filter(|&&i| found[i]).map(|&i| self.lexicon.term(i)).collect();
            if !words.is_empty() {
                raise(&mut level, *to, format!("{reason}: {} ({to})", words.join(", ")), &mut reasons);
            }
        }
        if let Some(&(_, to)) = self.rules.impact.iter().rev().find(|(n, _)| f.affected_customers >= *n) {
            raise(&mut level, to, format!("impact: {} affected customers ({to})", f.affected_customers), &mut reasons);
        }
        if let Some(&n) = self.rules.tiers.get(f.tier).filter(|n| **n > 0) {
            let cap = self.rules.tier_cap.unwrap_or(Priority::High);
            let raised = (0..n).fold(level, |l, _| next(l).min(cap.max(level)));
            let shown = if raised > level { format!("+{n} ({raised})") } else { format!("no change ({level})") };
            raise(&mut level, raised, format!("customer tier {}: {shown}", f.tier), &mut reasons);
        }
        let default_only = f.stated.is_none() && base_reason.starts_with("default priority");
        if reasons.is_empty() || !default_only {
            reasons.insert(0, base_reason);
        }
        (level, reasons)
    }
}

fn next(p: Priority) -> Priority {
    match p {
        Priority::Low => Priority::Medium,
        Priority::Medium => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

#[cfg(test)]
mod tests {
    use kesu_proto::v1::RequestNature;

    use super::*;

    fn scorer() -> PriorityScorer {
        PriorityScorer::new(&Policy::default_policy())
    }

    fn score(f: Factors<'_>) -> (Priority, Vec<String>) {
        scorer().score(&f)
    }

    #[test]
    fn nothing_said_gives_the_default() {
        assert_eq!(score(Factors::default()), (Priority::Medium, vec!["default priority: medium".to_string()]));
    }

    #[test]
    fn the_stated_urgency_is_the_base() {
        let (p, reasons) = score(Factors { stated: Some(Priority::High), ..Default::default() });
        assert_eq!((p, reasons), (Priority::High, vec!["stated urgency: high".to_string()]));
        let (p, _) = score(Factors { stated: Some(Priority::Low), ..Default::default() });
        assert_eq!(p, Priority::Low);
    }

    #[test]
    fn safety_words_make_it_urgent_with_the_words_as_reason() {
        let (p, reasons) = score(Factors { text: "热水器漏电，手碰到就麻", ..Default::default() });
        assert_eq!(p, Priority::Urgent);
        assert!(reasons.iter().any(|r| r == "safety hazard: 漏电 (urgent)"), "{reasons:?}");
        let (p, _) =
            score(Factors { text: "The charger started to smoke", stated: Some(Priority::Low), ..Default::default() });
        assert_eq!(p, Priority::Urgent);
        let (p, _) = score(Factors { text: "检查过了，没有漏电", ..Default::default() });
        assert_eq!(p, Priority::Medium);
    }

    #[test]
    fn outages_and_financial_loss_are_urgent() {
        for text in ["全部门店都无法支付", "Customers cannot pay at all stores", "系统崩溃导致停产，损失惨重"]
        {
            assert_eq!(score(Factors { text, ..Default::default() }).0, Priority::Urgent, "{text}");
        }
    }

    #[test]
    fn risk_and_many_customers_make_it_high() {
        for text in ["再不处理我就打12315", "I will contact my lawyer", "很多用户都反映这个问题"] {
            assert_eq!(score(Factors { text, ..Default::default() }).0, Priority::High, "{text}");
        }
    }

    #[test]
    fn suggestions_and_how_to_questions_are_low() {
        let nature = RequestNature::Suggestion as i32;
        assert_eq!(score(Factors { nature, ..Default::default() }).0, Priority::Low);
        assert_eq!(score(Factors { cause: "how_to", ..Default::default() }).0, Priority::Low);
    }

    #[test]
    fn impact_raises_by_affected_customers() {
        assert_eq!(score(Factors { affected_customers: 12, ..Default::default() }).0, Priority::High);
        let (p, reasons) = score(Factors { affected_customers: 150, ..Default::default() });
        assert_eq!(p, Priority::Urgent);
        assert_eq!(reasons, ["impact: 150 affected customers (urgent)"]);
    }

    #[test]
    fn a_vip_raises_one_level_but_not_past_the_cap() {
        let (p, reasons) = score(Factors { tier: "vip", ..Default::default() });
        assert_eq!(p, Priority::High);
        assert_eq!(reasons, ["customer tier vip: +1 (high)"]);
        assert_eq!(
            score(Factors { tier: "vip", stated: Some(Priority::High), ..Default::default() }).0,
            Priority::High
        );
        assert_eq!(score(Factors { tier: "normal", ..Default::default() }).0, Priority::Medium);
    }

    #[test]
    fn a_safety_cause_is_urgent_even_when_stated_lower() {
        let (p, _) = score(Factors { cause: "safety_hazard", stated: Some(Priority::Medium), ..Default::default() });
        assert_eq!(p, Priority::Urgent);
    }
}
