//! The classifier against the labelled corpus (`make eval` prints the
//! details): the evaluation runs over every file and the type is right for
//! at least 90 % of the texts, in the tuning corpus and in the held-out set
//! written before any rule.

use std::path::Path;

use kesu_domain::Policy;
use kesu_routing::classify::Classifier;
use kesu_routing::classify::eval::{Sample, evaluate};

fn samples(file: &str) -> Vec<Sample> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/classification").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let field = |name: &str| v[name].as_str().unwrap_or_default().to_string();
            Sample {
                id: field("id"),
                text: field("text"),
                type_code: field("type"),
                cause_code: field("cause"),
                nature: field("nature"),
                request: field("request"),
            }
        })
        .collect()
}

#[test]
fn the_corpus_has_every_cause_in_both_languages_and_at_least_300_texts() {
    let policy = Policy::default_policy();
    let all: Vec<Sample> = [samples("corpus.jsonl"), samples("heldout.jsonl")].concat();
    assert!(all.len() >= 300, "{} texts", all.len());
    for t in &policy.doc.taxonomy {
        for c in &t.causes {
            let of_cause: Vec<&Sample> =
                all.iter().filter(|s| s.type_code == t.code && s.cause_code == c.code).collect();
            let chinese =
                of_cause.iter().filter(|s| s.text.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch))).count();
            assert!(
                chinese >= 1 && of_cause.len() > chinese,
                "{}.{}: {} texts, {chinese} in Chinese",
                t.code,
                c.code,
                of_cause.len()
            );
        }
    }
}

#[test]
fn type_accuracy_is_at_least_90_percent_on_the_corpus_and_the_held_out_set() {
    let classifier = Classifier::new(&Policy::default_policy());
    for file in ["corpus.jsonl", "heldout.jsonl"] {
        let report = evaluate(&classifier, &samples(file));
        let text = report.render(file, true);
        assert!(text.contains("type confusion"), "{text}");
        assert!(report.type_.accuracy() >= 0.9, "{text}");
    }
}
