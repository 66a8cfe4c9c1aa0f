//! The Python example sender (`examples/python-sender/`) against a running
//! notification: it takes the requests, "delivers" them, reports back, and
//! de-duplicates a request that arrives twice.

use std::process::Command;

use kesu_proto::v1::{DeliveryStatus, ListDeliveriesRequest, NotificationPurpose as P, NotifyChannel, Priority};
use kesu_system_tests::Role;
use kesu_system_tests::notification::{NotificationUnderTest, accepted, daytime};

fn run(python: &std::path::Path, args: &[&str], gen_dir: &std::path::Path) -> String {
    let root = kesu_testkit::workspace_root().join("examples/python-sender");
    let out = Command::new(python)
        .arg(root.join("sender.py"))
        .args(args)
        .env("KESU_GEN_DIR", gen_dir)
        .output()
        .expect("run the example sender");
    assert!(out.status.success(), "sender.py failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn the_python_example_sender_delivers_reports_and_deduplicates() {
    let Some(python) = kesu_testkit::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gen_dir = dir.path().join("gen");
    let generate = Command::new("bash")
        .arg(kesu_testkit::workspace_root().join("examples/python-sender/generate.sh"))
        .env("PYTHON", &python)
        .env("OUT", &gen_dir)
        .output()
        .expect("run generate.sh");
    assert!(generate.status.success(), "generate.sh: {}", String::from_utf8_lossy(&generate.stderr));

    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let sms = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    let email = n.customer(None, Some("amy@example.com"), NotifyChannel::Email);
    n.feedback_event("accepted", &accepted("FB202611241001", sms, "zh-CN", Priority::Medium)).await;
    n.feedback_event("accepted", &accepted("FB202611241002", email, "en", Priority::Medium)).await;
    let requests = n.wait_requests("two acknowledgements", 2, |r| r.purpose == P::Acknowledgement as i32).await;

    let nats = n.system.nats.url();
    let db = dir.path().join("sent.sqlite3");
    let outbox = dir.path().join("deliveries.jsonl");
    let args = ["--nats", &nats, "--db", db.to_str().unwrap(), "--outbox", outbox.to_str().unwrap(), "--max-idle", "2"];
    let counts = run(&python, &args, &gen_dir);
    assert_eq!(counts, r#"{"sent": 2}"#);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&outbox).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut to: Vec<&str> = lines.iter().map(|l| l["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["13812345678", "amy@example.com"]);

    // Its reports become notify.evt.sent and the deliveries' status.
    n.wait_events("sent", 2).await;
    n.settled("NOTIFY_REPORTS").await;
    let mut agent = n.client(Role::Agent).await;
    for r in &requests {
        let about = format!("F-{}", r.feedback_number);
        let listed =
            agent.list_deliveries(ListDeliveriesRequest { ticket_id: about, page: None }).await.unwrap().into_inner();
        assert_eq!(listed.deliveries[0].status, DeliveryStatus::Sent as i32);
        assert_eq!(listed.deliveries[0].sender, "example-python-sender");
    }

    // The same request again, after the duplicate window (a new Nats-Msg-Id): not sent twice.
    let original = n.system.messages("NOTIFY_REQUESTS", "notify.req.sms").await.remove(0);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "the-same-request-after-the-window");
    n.system.js.publish_with_headers("notify.req.sms", headers, original.payload).await.unwrap().await.unwrap();
    let counts = run(&python, &args, &gen_dir);
    assert_eq!(counts, r#"{"duplicate": 1}"#);
    assert_eq!(std::fs::read_to_string(&outbox).unwrap().lines().count(), 2);
    n.stop().await;
}
