//! Measuring the classifier against a labelled corpus (`make eval`):
//! accuracy of type, cause, request nature and customer request, per class,
//! and a confusion table of types.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Classifier, nature_label, request_label};

/// One labelled text. An empty `type_code` means "should stay unclassified".
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub id: String,
    pub text: String,
    pub type_code: String,
    pub cause_code: String,
    pub nature: String,
    pub request: String,
}

/// Correct / total for one dimension, overall and per expected class.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub correct: usize,
    pub total: usize,
    pub per_class: BTreeMap<String, (usize, usize)>,
}

impl Score {
    fn add(&mut self, expected: &str, right: bool) {
        self.total += 1;
        self.correct += usize::from(right);
        let e = self.per_class.entry(label(expected)).or_default();
        e.0 += usize::from(right);
        e.1 += 1;
    }

    pub fn accuracy(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.correct as f64 / self.total as f64 }
    }
}

fn label(code: &str) -> String {
    if code.is_empty() { "(unclassified)".into() } else { code.to_string() }
}

/// The result of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub type_: Score,
    /// type and cause both right.
    pub cause: Score,
    pub nature: Score,
    pub request: Score,
    /// (expected type, predicted type) → count.
    pub confusion: BTreeMap<(String, String), usize>,
    /// Samples whose type was wrong: (id, expected, predicted, text).
    pub type_errors: Vec<(String, String, String, String)>,
    /// Samples whose nature or request was wrong: (what, id, expected, predicted, text).
    pub label_errors: Vec<(&'static str, String, String, String, String)>,
}

/// Reads every sample and scores what the classifier says.
pub fn evaluate(classifier: &Classifier, samples: &[Sample]) -> Report {
    let mut r = Report::default();
    for s in samples {
        let got = classifier.read(&s.text);
        let type_right = got.type_code == s.type_code;
        r.type_.add(&s.type_code, type_right);
        let cause_expected = format!("{}.{}", s.type_code, s.cause_code);
        r.cause.add(cause_expected.trim_matches('.'), type_right && got.cause_code == s.cause_code);
        let (nature, request) = (nature_label(got.nature as i32), request_label(got.request as i32));
        r.nature.add(&s.nature, nature == s.nature);
        r.request.add(&s.request, request == s.request);
        for (what, expected, got) in [("nature", &s.nature, nature), ("request", &s.request, request)] {
            if *expected != got {
                r.label_errors.push((what, s.id.clone(), expected.clone(), got, s.text.clone()));
            }
        }
        *r.confusion.entry((label(&s.type_code), label(&got.type_code))).or_default() += 1;
        if !type_right {
            let why = format!(
                "guess {} at {:.2}, evidence [{}]",
                label(&got.best_guess),
                got.confidence,
                got.evidence.join(", ")
            );
            r.type_errors.push((
                s.id.clone(),
                label(&s.type_code),
                format!("{} ({why})", label(&got.type_code)),
                s.text.clone(),
            ));
        }
    }
    r
}

impl Report {
    /// The report as text: overall, per class, the confusion table.
    pub fn render(&self, title: &str, show_errors: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {title}: {} samples", self.type_.total);
        for (name, score) in
            [("type", &self.type_), ("cause", &self.cause), ("nature", &self.nature), ("request", &self.request)]
        {
            let _ =
                writeln!(out, "  {name:<8} {:>6.1} %  ({}/{})", score.accuracy() * 100.0, score.correct, score.total);
        }
        for (name, score) in
            [("type", &self.type_), ("cause", &self.cause), ("nature", &self.nature), ("request", &self.request)]
        {
            let _ = writeln!(out, "  -- {name} accuracy per class");
            for (class, (ok, n)) in &score.per_class {
                let _ = writeln!(out, "     {class:<36} {:>6.1} %  ({ok}/{n})", *ok as f64 * 100.0 / *n as f64);
            }
        }
        let mut classes: Vec<&String> = self.confusion.keys().flat_map(|(a, b)| [a, b]).collect();
        classes.sort();
        classes.dedup();
        let short = |c: &str| c.chars().take(7).collect::<String>();
        let _ = write!(out, "  -- type confusion (rows expected, columns predicted)\n     {:<18}", "");
        for c in &classes {
            let _ = write!(out, "{:>8}", short(c));
        }
        out.push('\n');
        for row in &classes {
            let _ = write!(out, "     {row:<18}");
            for col in &classes {
                let n = self.confusion.get(&((*row).clone(), (*col).clone())).copied().unwrap_or(0);
                let _ = write!(out, "{:>8}", if n == 0 { ".".to_string() } else { n.to_string() });
            }
            out.push('\n');
        }
        if show_errors {
            let _ = writeln!(out, "  -- type errors");
            for (id, expected, got, text) in &self.type_errors {
                let _ = writeln!(out, "     {id}: expected {expected}, got {got}: {text}");
            }
            let _ = writeln!(out, "  -- nature and request errors");
            for (what, id, expected, got, text) in &self.label_errors {
                let _ = writeln!(out, "     {id} {what}: expected {expected}, got {got}: {text}");
            }
        }
        out
    }
}
