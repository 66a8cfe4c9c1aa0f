//! The Python example adapter (`examples/python-adapter/`) against a
//! running intake, so its README cannot rot: request/reply submit,
//! duplicates, needs info, fire-and-forget publish and the outcome events.

use std::process::Command;

use kesu_system_tests::{Backend, TestSystem};

fn adapter(python: &std::path::Path, gen_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let root = kesu_testkit::workspace_root().join("examples/python-adapter");
    let out = Command::new(python)
        .arg(root.join("adapter.py"))
        .args(args)
        .env("KESU_GEN_DIR", gen_dir)
        .output()
        .expect("run the example adapter");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("$ python adapter.py {}\n{stdout}{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

// Multi-threaded: the adapter runs as a blocking child process while the
// in-process intake answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_adapter_submits_publishes_and_watches() {
    let Some(python) = kesu_testkit::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gen_dir = dir.path().join("gen");
    let generate = Command::new("bash")
        .arg(kesu_testkit::workspace_root().join("examples/python-adapter/generate.sh"))
        .env("PYTHON", &python)
        .env("OUT", &gen_dir)
        .output()
        .expect("run generate.sh");
    assert!(generate.status.success(), "generate.sh: {}", String::from_utf8_lossy(&generate.stderr));

    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let nats = system.nats.url();
    let run = |args: &[&str]| {
        let mut all = vec![args[0], "--nats", &nats];
        all.extend_from_slice(&args[1..]);
        adapter(&python, &gen_dir, &all)
    };

    let (code, out) = run(&["submit", "--channel", "web", "--external-id", "web-form-20261123-0001"]);
    assert_eq!(code, 0);
    assert!(out.contains("ACCEPTED: your feedback number is FB"), "{out}");
    let number = out.split("your feedback number is ").nth(1).unwrap().trim().to_string();
    let (code, out) = run(&["submit", "--channel", "web", "--external-id", "web-form-20261123-0001"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("DUPLICATE: already submitted; your feedback number is {number}")), "{out}");
    let (code, out) =
        run(&["submit", "--channel", "web", "--external-id", "web-form-20261123-0002", "--description", ""]);
    assert_eq!(code, 0, "a number is given");
    assert!(out.contains("NEEDS_INFO: your feedback number is FB"), "{out}");
    assert!(out.contains("description [required]"), "{out}");
    let (code, out) =
        run(&["submit", "--channel", "web", "--external-id", "web-form-20261123-0003", "--mobile", "12345"]);
    assert_eq!(code, 0);
    assert!(out.contains("PENDING_REVIEW"), "{out}");

    let (code, out) = run(&["publish", "--channel", "app", "--external-id", "app-msg-88001", "--follow", "10"]);
    assert_eq!(code, 0);
    assert!(out.contains("stream ack: stream=FEEDBACK_RAW") && out.contains("duplicate=False"), "{out}");
    assert!(out.contains("accepted        channel=app external_id=app-msg-88001"), "{out}");
    // The same id again inside the duplicate window: JetStream drops it, no new outcome.
    let (code, out) = run(&["publish", "--channel", "app", "--external-id", "app-msg-88001"]);
    assert_eq!(code, 0);
    assert!(out.contains("duplicate=True"), "{out}");

    let (code, out) = run(&["watch", "--replay", "--count", "5", "--seconds", "10"]);
    assert_eq!(code, 0);
    let kinds: Vec<&str> =
        out.lines().filter(|l| !l.starts_with(' ')).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(&kinds[1..], ["accepted", "duplicate", "needs_info", "review_required", "accepted"], "{out}");
    system.stop().await;
}
