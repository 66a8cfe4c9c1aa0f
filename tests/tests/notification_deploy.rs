//! How notification's senders are deployed: as their own `kesu senders`
//! process, and as two replicas sharing the work without sending anything
//! twice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Json, Router, routing::post};
use kesu_proto::v1::{NotificationPurpose as P, NotifyChannel, Priority};
use kesu_system_tests::notification::{NotificationUnderTest, accepted, daytime};
use kesu_system_tests::{Backend, KesuProcess, WAIT, eventually};

/// Counts the calls per idempotency key.
#[derive(Clone, Default)]
struct Gateway(Arc<Mutex<BTreeMap<String, usize>>>);

async fn send(
    State(g): State<Gateway>,
    headers: HeaderMap,
    Json(_): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut calls = g.0.lock().unwrap();
    *calls.entry(key.clone()).or_default() += 1;
    Json(serde_json::json!({"message_id": format!("gw-{key}")}))
}

async fn gateway() -> (Gateway, String) {
    let g = Gateway::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let app = Router::new().route("/sms", post(send)).with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (g, url)
}

#[tokio::test]
async fn kesu_senders_runs_the_senders_as_their_own_process() {
    let (calls, url) = gateway().await;
    let n = NotificationUnderTest::start(daytime(), &[("KESU_NOTIFICATION_SENDERS", "none")]).await;
    let mut env: Vec<(String, String)> =
        n.env().iter().filter(|(k, _)| !k.starts_with("KESU_NOTIFICATION_")).cloned().collect();
    env.extend([
        ("KESU_SENDERS_SMS_URL".to_string(), url),
        ("KESU_SENDERS_GRPC_ADDR".into(), "127.0.0.1:0".into()),
        ("KESU_SENDERS_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("KESU_LOG_FORMAT".into(), "json".into()),
        ("KESU_LOG".into(), "warn".into()),
    ]);
    let mut cmd = kesu_system_tests::kesu_command("senders");
    cmd.envs(env);
    let _senders = KesuProcess::from_child(cmd.spawn().expect("start kesu senders"));
    let customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    n.feedback_event("accepted", &accepted("FB202611241101", customer, "zh-CN", Priority::Medium)).await;
    let request = n.wait_requests("the acknowledgement", 1, |r| r.purpose == P::Acknowledgement as i32).await.remove(0);
    // Sent by the other process, reported back through its own outbox.
    let sent = n.wait_events("sent", 1).await.remove(0);
    assert_eq!(sent.request_id, request.request_id);
    assert_eq!(calls.0.lock().unwrap().get(&request.request_id), Some(&1));
    n.stop().await;
}

#[tokio::test]
async fn two_replicas_on_postgresql_decide_and_send_each_notification_once() {
    let (calls, url) = gateway().await;
    let env = [("KESU_NOTIFICATION_SMS_URL", url.as_str())];
    let Some(mut n) = NotificationUnderTest::start_on(Backend::Postgres, daytime(), &env).await else {
        eprintln!("PostgreSQL is not reachable: skipped");
        return;
    };
    n.start_replica().await;
    let total = 60;
    for i in 0..total {
        let customer = n.customer(Some(&format!("138{:08}", 10_000_000 + i)), None, NotifyChannel::Sms);
        n.feedback_event("accepted", &accepted(&format!("FB2026112412{i:02}"), customer, "zh-CN", Priority::Medium))
            .await;
    }
    n.wait_events("sent", total).await;
    n.settled("FEEDBACK").await;
    let stream = n.system.js.get_stream("NOTIFY_REQUESTS").await.unwrap();
    eventually("the senders are done", WAIT, || async {
        let info = stream.consumer_info("sender-sms").await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    kesu_system_tests::notification::pause(500).await;
    assert_eq!(n.requests().await.len(), total, "one request per feedback");
    let calls = calls.0.lock().unwrap().clone();
    assert_eq!(calls.len(), total, "every request reached the gateway");
    assert!(calls.values().all(|n| *n == 1), "none twice: {calls:?}");
    n.stop().await;
}
