//! kesu-eval: reads the labelled corpus (JSONL: id, text, locale, type,
//! cause, nature, request) and prints how well routing's classifier reads
//! it, per file and per class, with a confusion table of types.
//!
//! ```text
//! kesu-eval [--errors] [--policy FILE] [DIR or FILE ...]   (default: tests/data/classification)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kesu_routing::classify::Classifier;
use kesu_routing::classify::eval::{Sample, evaluate};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_errors = args.iter().any(|a| a == "--errors");
    let policy_file = args.windows(2).find(|w| w[0] == "--policy").map(|w| PathBuf::from(&w[1]));
    let mut paths: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--policy"))
        .map(|(_, a)| PathBuf::from(a))
        .collect();
    if paths.is_empty() {
        paths.push(PathBuf::from("tests/data/classification"));
    }
    let policy = kesu_domain::Policy::load(policy_file.as_deref())?;
    let classifier = Classifier::new(&policy);
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("read {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        bail!("no .jsonl files in {paths:?}");
    }
    let mut all = Vec::new();
    for file in &files {
        let samples = read_samples(file)?;
        let report = evaluate(&classifier, &samples);
        println!("{}", report.render(&file.display().to_string(), show_errors));
        all.extend(samples);
    }
    if files.len() > 1 {
        println!("{}", evaluate(&classifier, &all).render("all files", false));
    }
    Ok(())
}

fn read_samples(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let field = |name: &str| v.get(name).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        if field("text").is_empty() {
            bail!("{}:{}: no text", path.display(), n + 1);
        }
        samples.push(Sample {
            id: field("id"),
            text: field("text"),
            type_code: field("type"),
            cause_code: field("cause"),
            nature: field("nature"),
            request: field("request"),
        });
    }
    Ok(samples)
}
