//! Classification of a feedback from its text, by the weighted term rules
//! of the policy (`[classification]`, and the taxonomy's own keywords):
//! type and cause with a confidence and the evidence, the request nature
//! and what the customer asks for. A stated type wins only on the channels
//! the policy trusts, or when the text says too little.

pub mod eval;
pub mod text;

use kesu_domain::Policy;
use kesu_domain::policy::classification::{NATURES, REQUESTS};
use kesu_proto::v1::{Classification, ClassificationSource, CustomerRequestKind, RequestNature};

pub use text::{Lexicon, LexiconBuilder, Text};

/// The compiled rules of one policy. Build once, use for every ticket.
#[derive(Debug)]
pub struct Classifier {
    lexicon: Lexicon,
    /// (type index, cause index or None, weight, term ids, unless ids, decisive)
    rules: Vec<Rule>,
    natures: Vec<LabelRule>,
    requests: Vec<LabelRule>,
    /// (type code, cause codes) in policy order.
    taxonomy: Vec<(String, Vec<String>)>,
    min_confidence: f64,
    prior: f64,
    runner_up_weight: f64,
    stated_type_wins: Vec<String>,
    natures_without_type: Vec<RequestNature>,
    /// Class ("type" or "type.cause") → implied (nature, request).
    implied: std::collections::HashMap<String, (Option<RequestNature>, Option<CustomerRequestKind>)>,
    default_nature: RequestNature,
    default_request: CustomerRequestKind,
}

#[derive(Debug)]
struct Rule {
    type_index: usize,
    cause_index: Option<usize>,
    weight: f64,
    terms: Vec<usize>,
    unless: Vec<usize>,
    decisive: bool,
}

#[derive(Debug)]
struct LabelRule {
    label: usize,
    weight: f64,
    terms: Vec<usize>,
    unless: Vec<usize>,
}

/// What the text alone says.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Empty when the text says too little (below the confidence threshold).
    pub type_code: String,
    pub cause_code: String,
    pub confidence: f64,
    /// The terms that speak for the type (or the best guess when
    /// unclassified), strongest first.
    pub evidence: Vec<String>,
    /// A decisive rule (e.g. a safety hazard) matched.
    pub decisive: bool,
    pub nature: RequestNature,
    pub request: CustomerRequestKind,
    /// What the text would say even below the threshold (for triage hints).
    pub best_guess: String,
    /// The nature and request the text states itself (not implied).
    pub stated_nature: Option<RequestNature>,
    pub stated_request: Option<CustomerRequestKind>,
}

/// What the channel stated about a feedback.
#[derive(Debug, Clone, Default)]
pub struct Stated<'a> {
    /// The channel token ("web", "phone", …).
    pub channel: &'a str,
    pub type_code: &'a str,
    pub cause_code: &'a str,
    pub nature: i32,
    pub request: i32,
    /// The customer's own words about what they want (read for the request
    /// only: wanting a repair does not say what is wrong).
    pub request_text: &'a str,
}

impl Classifier {
    pub fn new(policy: &Policy) -> Self {
        let c = &policy.doc.classification;
        let mut b = LexiconBuilder::default();
        let taxonomy: Vec<(String, Vec<String>)> = policy
            .doc
            .taxonomy
            .iter()
            .map(|t| (t.code.clone(), t.causes.iter().map(|c| c.code.clone()).collect()))
            .collect();
        let mut rules = Vec::new();
        let mut add_rule =
            |b: &mut LexiconBuilder, class: &str, weight: f64, terms: &[String], unless: &[String], decisive| {
                let (type_code, cause_code) = class.split_once('.').unwrap_or((class, ""));
                let Some(type_index) = taxonomy.iter().position(|(t, _)| t == type_code) else { return };
                let cause_index = taxonomy[type_index].1.iter().position(|c| c == cause_code);
                rules.push(Rule {
                    type_index,
                    cause_index,
                    weight,
                    terms: terms.iter().map(|t| b.add(t)).collect(),
                    unless: unless.iter().map(|t| b.add(t)).collect(),
                    decisive,
                });
            };
        let kw = c.taxonomy_keyword_weight;
        if kw > 0.0 {
            for t in &policy.doc.taxonomy {
                if !t.keywords.is_empty() {
                    add_rule(&mut b, &t.code, kw, &t.keywords, &[], false);
                }
                for cause in &t.causes {
                    if !cause.keywords.is_empty() {
                        add_rule(&mut b, &format!("{}.{}", t.code, cause.code), kw, &cause.keywords, &[], false);
                    }
                }
            }
        }
        for r in &c.rules {
            add_rule(&mut b, &r.class, r.weight, &r.terms, &r.unless, r.decisive);
        }
        let label_rules = |b: &mut LexiconBuilder, rules: &[kesu_domain::policy::LabelRule], labels: &[&str]| {
            rules
                .iter()
                .filter_map(|r| {
                    Some(LabelRule {
                        label: labels.iter().position(|l| *l == r.label)?,
                        weight: r.weight,
                        terms: r.terms.iter().map(|t| b.add(t)).collect(),
                        unless: r.unless.iter().map(|t| b.add(t)).collect(),
                    })
                })
                .collect::<Vec<_>>()
        };
        let natures = label_rules(&mut b, &c.natures, &NATURES);
        let requests = label_rules(&mut b, &c.requests, &REQUESTS);
        let lexicon = b.build(&c.negations.zh, &c.negations.en, c.negations.en_window);
        Self {
            lexicon,
            rules,
            natures,
            requests,
            taxonomy,
            min_confidence: c.min_confidence,
            prior: c.prior,
            runner_up_weight: c.runner_up_weight,
            stated_type_wins: c.stated_type_wins.clone(),
            natures_without_type: c.natures_without_type.iter().map(|n| nature_of(n)).collect(),
            implied: c
                .implied
                .iter()
                .map(|(class, i)| {
                    (class.clone(), (i.nature.as_deref().map(nature_of), i.request.as_deref().map(request_of)))
                })
                .collect(),
            default_nature: nature_of(&c.default_nature),
            default_request: request_of(&c.default_request),
        }
    }

    /// What the text says, on its own.
    pub fn read(&self, text: &str) -> Reading {
        let found = self.lexicon.find(&Text::new(text));
        let hit = |ids: &[usize]| ids.iter().filter(|&&i| found[i]).count();
        let mut type_scores = vec![0.0; self.taxonomy.len()];
        let mut cause_scores: Vec<Vec<f64>> = self.taxonomy.iter().map(|(_, c)| vec![0.0; c.len()]).collect();
        let mut decisive: Option<(usize, Option<usize>)> = None;
        for r in &self.rules {
            let n = hit(&r.terms);
            if n == 0 || hit(&r.unless) > 0 {
                continue;
            }
            let score = r.weight * n as f64;
            type_scores[r.type_index] += score;
            if let Some(c) = r.cause_index {
                cause_scores[r.type_index][c] += score;
            }
            if r.decisive && decisive.is_none() {
                decisive = Some((r.type_index, r.cause_index));
            }
        }
        let mut order: Vec<usize> = (0..type_scores.len()).collect();
        order.sort_by(|&a, &b| type_scores[b].total_cmp(&type_scores[a]).then(a.cmp(&b)));
        let mut best = order[0];
        let mut cause = None;
        if let Some((t, c)) = decisive {
            best = t;
            cause = c;
        }
        let best_score = type_scores[best];
        let runner_up = order.iter().copied().filter(|&t| t != best).map(|t| type_scores[t]).next().unwrap_or(0.0);
        let mut confidence = if best_score > 0.0 {
            best_score / (best_score + self.runner_up_weight * runner_up + self.prior)
        } else {
            0.0
        };
        if decisive.is_some() {
            confidence = confidence.max(self.min_confidence);
        }
        let cause = cause.or_else(|| {
            let scores = &cause_scores[best];
            (0..scores.len())
                .filter(|&c| scores[c] > 0.0)
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
        });
        let mut evidence: Vec<(f64, String)> = Vec::new();
        for r in self.rules.iter().filter(|r| r.type_index == best && hit(&r.unless) == 0) {
            for &id in r.terms.iter().filter(|&&i| found[i]) {
                let term = self.lexicon.term(id).to_string();
                match evidence.iter_mut().find(|(_, t)| *t == term) {
                    Some(e) => e.0 = e.0.max(r.weight),
                    None => evidence.push((r.weight, term)),
                }
            }
        }
        evidence.sort_by(|a, b| b.0.total_cmp(&a.0));
        let best_guess = if best_score > 0.0 { self.taxonomy[best].0.clone() } else { String::new() };
        let explicit_nature = self.label(&found, &self.natures, NATURES.len()).map(|i| nature_of(NATURES[i]));
        let explicit_request = self.label(&found, &self.requests, REQUESTS.len()).map(|i| request_of(REQUESTS[i]));
        let classified = best_score > 0.0
            && confidence >= self.min_confidence
            && (decisive.is_some() || explicit_nature.is_none_or(|n| !self.natures_without_type.contains(&n)));
        let (type_code, cause_code) = match (classified, cause) {
            (true, Some(c)) => (self.taxonomy[best].0.clone(), self.taxonomy[best].1[c].clone()),
            (true, None) => (self.taxonomy[best].0.clone(), String::new()),
            (false, _) => (String::new(), String::new()),
        };
        let (implied_nature, implied_request) = self.implied_by(&type_code, &cause_code);
        Reading {
            type_code,
            cause_code,
            confidence: (confidence * 1000.0).round() / 1000.0,
            evidence: evidence.into_iter().map(|(_, t)| t).collect(),
            decisive: decisive.is_some(),
            nature: explicit_nature.or(implied_nature).unwrap_or(self.default_nature),
            request: explicit_request.or(implied_request).unwrap_or(self.default_request),
            best_guess,
            stated_nature: explicit_nature,
            stated_request: explicit_request,
        }
    }

    /// The nature and request `type.cause` (else `type`) implies.
    fn implied_by(&self, type_code: &str, cause_code: &str) -> (Option<RequestNature>, Option<CustomerRequestKind>) {
        let by_cause = self.implied.get(&format!("{type_code}.{cause_code}")).copied().unwrap_or_default();
        let by_type = self.implied.get(type_code).copied().unwrap_or_default();
        (by_cause.0.or(by_type.0), by_cause.1.or(by_type.1))
    }

    /// The label with the most evidence, if any.
    fn label(&self, found: &[bool], rules: &[LabelRule], labels: usize) -> Option<usize> {
        let mut scores = vec![0.0; labels];
        for r in rules {
            let n = r.terms.iter().filter(|&&i| found[i]).count();
            if n > 0 && !r.unless.iter().any(|&i| found[i]) {
                scores[r.label] += r.weight * n as f64;
            }
        }
        (0..labels).filter(|&i| scores[i] > 0.0).max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
    }

    /// The classification of a feedback: the text read, then the stated
    /// values applied by the policy. `type_code` empty = unclassified.
    pub fn classify(&self, text: &str, stated: &Stated<'_>, policy: &Policy) -> Classification {
        let mut reading = self.read(text);
        if !stated.request_text.trim().is_empty() {
            let found = self.lexicon.find(&Text::new(&format!("{text}\n{}", stated.request_text)));
            if let Some(i) = self.label(&found, &self.requests, REQUESTS.len()) {
                reading.stated_request = Some(request_of(REQUESTS[i]));
            }
        }
        let stated_type = policy.problem_type(stated.type_code);
        let trusted = self.stated_type_wins.iter().any(|c| c == "all" || c == stated.channel);
        let use_stated = match stated_type {
            None => false,
            Some(_) if reading.decisive => false,
            Some(_) if trusted || reading.type_code.is_empty() => true,
            Some(t) => t.code == reading.type_code,
        };
        let labels = |type_code: &str, cause_code: &str| {
            let (implied_nature, implied_request) = self.implied_by(type_code, cause_code);
            let nature = match RequestNature::try_from(stated.nature) {
                Ok(n) if n != RequestNature::Unspecified => n,
                _ => reading.stated_nature.or(implied_nature).unwrap_or(self.default_nature),
            };
            let request = match CustomerRequestKind::try_from(stated.request) {
                Ok(r) if r != CustomerRequestKind::Unspecified => r,
                _ => reading.stated_request.or(implied_request).unwrap_or(self.default_request),
            };
            Classification { request_nature: nature as i32, request_kind: request as i32, ..Default::default() }
        };
        if let (true, Some(t)) = (use_stated, stated_type) {
            let stated_cause = t.causes.iter().find(|c| c.code == stated.cause_code).map(|c| c.code.clone());
            let cause = stated_cause.unwrap_or_else(|| {
                if reading.type_code == t.code { reading.cause_code.clone() } else { self.cause_within(text, &t.code) }
            });
            let base = labels(&t.code, &cause);
            let matched = if reading.type_code == t.code { reading.evidence.clone() } else { Vec::new() };
            return Classification {
                type_code: t.code.clone(),
                cause_code: cause,
                source: ClassificationSource::Stated as i32,
                matched_keywords: matched,
                confidence: 1.0,
                ..base
            };
        }
        let base = labels(&reading.type_code, &reading.cause_code);
        if reading.type_code.is_empty() {
            return Classification { confidence: reading.confidence, ..base };
        }
        Classification {
            type_code: reading.type_code,
            cause_code: reading.cause_code,
            source: ClassificationSource::Rules as i32,
            matched_keywords: reading.evidence,
            confidence: reading.confidence,
            ..base
        }
    }

    /// The best cause of `type_code` the text speaks for (empty if none).
    pub fn cause_within(&self, text: &str, type_code: &str) -> String {
        let Some(t) = self.taxonomy.iter().position(|(code, _)| code == type_code) else { return String::new() };
        let found = self.lexicon.find(&Text::new(text));
        let mut scores = vec![0.0; self.taxonomy[t].1.len()];
        for r in self.rules.iter().filter(|r| r.type_index == t) {
            let n = r.terms.iter().filter(|&&i| found[i]).count();
            if let (Some(c), true) = (r.cause_index, n > 0 && !r.unless.iter().any(|&i| found[i])) {
                scores[c] += r.weight * n as f64;
            }
        }
        (0..scores.len())
            .filter(|&c| scores[c] > 0.0)
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
            .map(|c| self.taxonomy[t].1[c].clone())
            .unwrap_or_default()
    }
}

/// "suggestion" → `RequestNature::Suggestion`.
pub fn nature_of(label: &str) -> RequestNature {
    RequestNature::from_str_name(&format!("REQUEST_NATURE_{}", label.to_ascii_uppercase()))
        .unwrap_or(RequestNature::Unspecified)
}

/// "feature_change" → `CustomerRequestKind::FeatureChange`.
pub fn request_of(label: &str) -> CustomerRequestKind {
    CustomerRequestKind::from_str_name(&format!("CUSTOMER_REQUEST_KIND_{}", label.to_ascii_uppercase()))
        .unwrap_or(CustomerRequestKind::Unspecified)
}

/// `RequestNature::Suggestion` → "suggestion".
pub fn nature_label(n: i32) -> String {
    RequestNature::try_from(n)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("REQUEST_NATURE_")
        .to_ascii_lowercase()
}

/// `CustomerRequestKind::FeatureChange` → "feature_change".
pub fn request_label(r: i32) -> String {
    CustomerRequestKind::try_from(r)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("CUSTOMER_REQUEST_KIND_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
