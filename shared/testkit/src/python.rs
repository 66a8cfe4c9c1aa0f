//! The tests' Python environment (`.tools/venv`, made by
//! `scripts/python-env.sh`, which `make test` runs through
//! `scripts/deps.sh`): for the example adapter and sender and for test
//! servers written in Python (an SMTP server).

use std::path::PathBuf;

/// The workspace root (where `scripts/` and `.tools/` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("the testkit crate sits two levels below the workspace root")
}

/// The venv's python, or `None` when there is none (no python3 on this
/// machine). Callers skip loudly on `None`, unless `KESU_REQUIRE_PYTHON=1`,
/// where this panics: CI must not pass by skipping.
pub fn python() -> Option<PathBuf> {
    let python = workspace_root().join(".tools/venv/bin/python");
    if python.is_file() {
        return Some(python);
    }
    if std::env::var("KESU_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
        panic!("KESU_REQUIRE_PYTHON=1 but {} does not exist: run scripts/deps.sh", python.display());
    }
    eprintln!(
        "SKIPPED (loudly): no Python environment at {}; run scripts/deps.sh (needs python3) to run this test",
        python.display()
    );
    None
}
