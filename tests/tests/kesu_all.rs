//! The one `kesu` binary: `kesu all` runs the five services in one process
//! and passes the end-to-end journey; `kesu --help` lists the targets and
//! the configuration; a bad setting exits 2 naming the variable; a service
//! that fails stops the whole process.

use std::process::Output;

use kesu_system_tests::journey::{AnyHour, raw_feedback_ends_as_ticket_clocks_notification_and_counts};
use kesu_system_tests::{Backend, SERVICES, TestSystem, kesu_command};

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn kesu_all_passes_the_end_to_end_journey() {
    let any_hour = AnyHour::new();
    let mut system = TestSystem::start_with(Backend::Sqlite, &[], &any_hour.env()).await;
    let kesu = system.spawn_all(&[]).await;
    raw_feedback_ends_as_ticket_clocks_notification_and_counts(&system).await;
    let status = kesu.terminate().await;
    assert!(status.success(), "SIGTERM stops `kesu all` cleanly: {status}");
    system.stop().await;
}

#[test]
fn kesu_help_lists_the_targets_and_the_configuration_keys() {
    let output = kesu_command("--help").output().expect("kesu runs");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    for target in SERVICES.iter().chain(&["all"]) {
        assert!(stdout.lines().any(|l| l.trim_start().starts_with(&format!("{target} "))), "{target}:\n{stdout}");
    }
    for key in [
        "KESU_[<SERVICE>_]NATS_URL  [default nats://127.0.0.1:4222]",
        "KESU_[<SERVICE>_]LOG  [default info]",
        "KESU_[INTAKE_]CONTACT_KEY  [required",
        "KESU_[SLA_TIMER_]GRPC_ADDR  [default 0.0.0.0:50053]",
    ] {
        assert!(stdout.contains(key), "{key}:\n{stdout}");
    }

    let output = kesu_command("intake").arg("--help").output().expect("kesu runs");
    let (stdout, _) = text(&output);
    assert!(output.status.success());
    assert!(stdout.contains("KESU_[INTAKE_]SUBMIT_CONCURRENCY  [default 64, 1..=4096]"), "{stdout}");
    assert!(!stdout.contains("ROUTING_"), "`kesu intake --help` shows intake's keys only:\n{stdout}");
}

#[test]
fn a_bad_setting_exits_2_naming_the_variable() {
    let key = kesu_domain::ContactKey::generate_base64();
    let output = kesu_command("all")
        .env("KESU_CONTACT_KEY", &key)
        .env("KESU_ROUTING_GRPC_ADDR", "not-an-address")
        .output()
        .expect("kesu runs");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("KESU_ROUTING_GRPC_ADDR"), "{stderr}");
    assert!(stderr.contains("not-an-address"), "{stderr}");

    let secret = kesu_domain::ContactKey::generate_base64();
    let output = kesu_command("intake").env("KESU_AUTH_JWT_SECRET", &secret).output().expect("kesu runs");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("KESU_INTAKE_CONTACT_KEY: is required"), "{stderr}");

    let output = kesu_command("sla-timer")
        .env("KESU_AUTH_JWT_SECRET", &secret)
        .env("KESU_SLA_TIMER_NATS_ULR", "nats://x")
        .output()
        .expect("kesu runs");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("KESU_SLA_TIMER_NATS_ULR: unknown setting"), "{stderr}");
}

#[tokio::test]
async fn a_service_that_cannot_start_stops_kesu_all_with_a_failure() {
    let system = TestSystem::start_with(Backend::Sqlite, &[], &[]).await;
    // Analytics' HTTP port is taken: analytics fails at start, the other
    // four stop with it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let mut cmd = kesu_command("all");
    for service in SERVICES {
        cmd.envs(system.env(service));
    }
    let output = cmd.env("KESU_ANALYTICS_HTTP_ADDR", &taken_addr).output().expect("kesu runs");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("kesu analytics: cannot listen on {taken_addr} (HTTP_ADDR)")), "{stderr}");
    drop(taken);
    system.stop().await;
}
