//! The built-in senders against real servers: an SMTP server process
//! (aiosmtpd) and an HTTP SMS gateway (axum, in this process) that sends
//! delivery receipts back; retries across an SMTP outage; duplicates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router, routing::post};
use kesu_proto::v1::{
    DeliveryStatus, ListDeliveriesRequest, NotificationPurpose as P, NotificationRequest, NotifyChannel, Priority,
    notification_event,
};
use kesu_system_tests::notification::{NotificationUnderTest, SmtpSink, accepted, daytime};
use kesu_system_tests::{Role, eventually};
use kesu_testkit::free_port;

fn ack(r: &NotificationRequest) -> bool {
    r.purpose == P::Acknowledgement as i32
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server_with_both_parts_a_chinese_subject_and_a_stable_message_id() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, Some(("kesu", "s3cret-pass"))) else { return };
    let port_text = port.to_string();
    let env = [
        ("KESU_NOTIFICATION_SMTP_HOST", "127.0.0.1"),
        ("KESU_NOTIFICATION_SMTP_PORT", port_text.as_str()),
        ("KESU_NOTIFICATION_SMTP_SECURITY", "none"),
        ("KESU_NOTIFICATION_SMTP_USER", "kesu"),
        ("KESU_NOTIFICATION_SMTP_PASSWORD", "s3cret-pass"),
        ("KESU_NOTIFICATION_SMTP_FROM", "客服中心 <service@kesu.example>"),
    ];
    let n = NotificationUnderTest::start(daytime(), &env).await;
    let customer = n.customer(None, Some("amy@example.com"), NotifyChannel::Email);
    n.feedback_event("accepted", &accepted("FB202611240701", customer, "zh-CN", Priority::Medium)).await;
    let request = n.wait_requests("the acknowledgement", 1, ack).await.remove(0);
    let mail = smtp.wait_received(1).await.remove(0);
    assert_eq!(mail.rcpt_tos, ["amy@example.com"]);
    assert!(mail.authenticated, "the sender authenticated with AUTH");
    assert!(mail.raw.contains("Subject: =?utf-8?b?"), "the Chinese subject is RFC 2047 encoded:\n{}", mail.raw);
    let parsed = mail_parser::MessageParser::default().parse(mail.raw.as_bytes()).expect("a valid message");
    assert_eq!(parsed.subject(), Some("您的反馈已受理（编号 FB202611240701）"));
    assert_eq!(parsed.message_id(), Some(format!("{}@kesu.example", request.request_id).as_str()));
    let from = parsed.from().and_then(|a| a.first()).expect("a From");
    assert_eq!((from.name(), from.address()), (Some("客服中心"), Some("service@kesu.example")));
    assert!(parsed.body_text(0).unwrap().contains("编号 FB202611240701"));
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("<html") && html.contains("FB202611240701"), "{html}");
    assert!(mail.raw.contains("multipart/alternative"));

    let sent = n.wait_events("sent", 1).await.remove(0);
    let Some(notification_event::Kind::Sent(s)) = sent.kind else { panic!("a sent event") };
    assert_eq!(
        (s.sender.as_str(), s.provider_message_id),
        ("kesu-smtp", format!("<{}@kesu.example>", request.request_id))
    );
    n.stop().await;
}

#[tokio::test]
async fn email_goes_over_starttls_to_a_server_with_its_own_ca() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start_with(port, Some(("kesu", "s3cret-pass")), true) else { return };
    let port_text = port.to_string();
    let ca = smtp.ca_file().display().to_string();
    let env = [
        ("KESU_NOTIFICATION_SMTP_HOST", "127.0.0.1"),
        ("KESU_NOTIFICATION_SMTP_PORT", port_text.as_str()),
        ("KESU_NOTIFICATION_SMTP_SECURITY", "starttls"),
        ("KESU_NOTIFICATION_SMTP_CA_FILE", ca.as_str()),
        ("KESU_NOTIFICATION_SMTP_USER", "kesu"),
        ("KESU_NOTIFICATION_SMTP_PASSWORD", "s3cret-pass"),
        ("KESU_NOTIFICATION_SMTP_FROM", "service@kesu.example"),
    ];
    let n = NotificationUnderTest::start(daytime(), &env).await;
    let customer = n.customer(None, Some("bob@example.com"), NotifyChannel::Email);
    n.feedback_event("accepted", &accepted("FB202611240711", customer, "en", Priority::Medium)).await;
    let mail = smtp.wait_received(1).await.remove(0);
    assert_eq!(mail.rcpt_tos, ["bob@example.com"]);
    assert!(mail.authenticated);
    let parsed = mail_parser::MessageParser::default().parse(mail.raw.as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some("We received your feedback (FB202611240711)"));
    n.stop().await;
}

#[tokio::test]
async fn smtp_down_then_up_delivers_after_retries_nothing_lost_nothing_twice() {
    let port = free_port();
    let port_text = port.to_string();
    let env = [
        ("KESU_NOTIFICATION_SMTP_HOST", "127.0.0.1"),
        ("KESU_NOTIFICATION_SMTP_PORT", port_text.as_str()),
        ("KESU_NOTIFICATION_SMTP_SECURITY", "none"),
        ("KESU_NOTIFICATION_SMTP_FROM", "service@kesu.example"),
        ("KESU_NOTIFICATION_SMTP_TIMEOUT", "2s"),
        ("KESU_NOTIFICATION_SENDER_RETRY_BASE", "200ms"),
        ("KESU_NOTIFICATION_SENDER_RETRY_MAX", "1s"),
        ("KESU_NOTIFICATION_SENDER_MAX_ATTEMPTS", "100"),
        ("KESU_NOTIFICATION_SENDER_ACK_WAIT", "5s"),
    ];
    let n = NotificationUnderTest::start(daytime(), &env).await;
    for i in 1..=3 {
        let customer = n.customer(None, Some(&format!("c{i}@example.com")), NotifyChannel::Email);
        n.feedback_event("accepted", &accepted(&format!("FB20261124080{i}"), customer, "en", Priority::Medium)).await;
    }
    // The server is down: attempts fail and are reported as retryable.
    let failed = n.wait_events("failed", 3).await;
    assert!(failed.iter().all(|e| matches!(&e.kind, Some(notification_event::Kind::Failed(f)) if f.retryable)));
    let Some(smtp) = SmtpSink::start(port, None) else { return };
    let mails = smtp.wait_received(3).await;
    n.wait_events("sent", 3).await;
    let consumer = n.system.js.get_stream("NOTIFY_REQUESTS").await.unwrap();
    eventually("the sender is done", kesu_system_tests::WAIT, || async {
        let info = consumer.consumer_info("sender-email").await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    kesu_system_tests::notification::pause(1500).await;
    let mut to: Vec<_> = smtp.received().iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    to.sort();
    assert_eq!(to, ["c1@example.com", "c2@example.com", "c3@example.com"], "each once: {} mails", mails.len());
    let list = n
        .client(Role::Agent)
        .await
        .list_deliveries(ListDeliveriesRequest { ticket_id: "F-FB202611240801".into(), page: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.deliveries[0].status, DeliveryStatus::Sent as i32);
    assert!(list.deliveries[0].attempts >= 2, "it took retries: {:?}", list.deliveries[0]);
    n.stop().await;
}

/// A gateway that fails its first call with 503, refuses one number with
/// 400, and otherwise answers with a message id.
#[derive(Clone, Default)]
struct Gateway {
    calls: Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>>,
    failed_once: Arc<AtomicBool>,
}

async fn gateway_send(
    State(g): State<Gateway>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    let n = {
        let mut calls = g.calls.lock().unwrap();
        calls.push((headers, body.clone()));
        calls.len()
    };
    if body["mobile"] == "13900000000" {
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "number 13900000000 is blocked"})));
    }
    if !g.failed_once.swap(true, Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"error": "busy"})));
    }
    (StatusCode::OK, Json(serde_json::json!({"result": {"msgid": format!("gw-{n}")}})))
}

#[tokio::test]
async fn sms_goes_through_a_configured_http_gateway_is_retried_deduplicated_and_receipted() {
    let gateway = Gateway::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/sms", listener.local_addr().unwrap());
    let app = Router::new().route("/v1/sms", post(gateway_send)).with_state(gateway.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let body = r#"{"mobile": {{ to | tojson }}, "content": {{ text | tojson }}, "sign": "客服中心", "ref": {{ params.feedback_number | tojson }}}"#;
    let env = [
        ("KESU_NOTIFICATION_SMS_URL", url.as_str()),
        ("KESU_NOTIFICATION_SMS_BODY", body),
        ("KESU_NOTIFICATION_SMS_AUTH_HEADER", "Authorization: Bearer gw-secret"),
        ("KESU_NOTIFICATION_SMS_IDEMPOTENCY_HEADER", "X-Request-Id"),
        ("KESU_NOTIFICATION_SMS_MESSAGE_ID_POINTER", "/result/msgid"),
        ("KESU_NOTIFICATION_SMS_CALLBACK_TOKEN", "callback-token-0123456789"),
        ("KESU_NOTIFICATION_SENDER_RETRY_BASE", "100ms"),
    ];
    let n = NotificationUnderTest::start(daytime(), &env).await;
    let customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    n.feedback_event("accepted", &accepted("FB202611240901", customer, "zh-CN", Priority::Medium)).await;
    let request = n.wait_requests("the acknowledgement", 1, ack).await.remove(0);
    let sent = n.wait_events("sent", 1).await.remove(0);
    let calls = gateway.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "a 503, then the retry");
    for (headers, body) in &calls {
        assert_eq!(headers["x-request-id"], request.request_id.as_str(), "the idempotency key is the request id");
        assert_eq!(headers["authorization"], "Bearer gw-secret");
        assert_eq!(body["mobile"], "13812345678");
        assert_eq!(body["ref"], "FB202611240901");
        assert!(body["content"].as_str().unwrap().contains("FB202611240901"));
    }
    let Some(notification_event::Kind::Sent(s)) = sent.kind else { panic!() };
    assert_eq!(s.provider_message_id, "gw-2");

    // The same request again (after the duplicate window): not sent twice.
    let original = n.system.messages("NOTIFY_REQUESTS", "notify.req.sms").await.remove(0);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "republished-after-the-window");
    n.system.js.publish_with_headers("notify.req.sms", headers, original.payload.clone()).await.unwrap().await.unwrap();

    // The gateway's receipt.
    let http = reqwest::Client::new();
    let callback = n.endpoint.http_url("/callbacks/sms");
    let wrong = http.post(format!("{callback}?token=nope")).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let receipts = serde_json::json!([
        {"message_id": "gw-2", "status": "DELIVRD"},
        {"message_id": "gw-unknown", "status": "DELIVRD"},
    ]);
    let answer: serde_json::Value = http
        .post(format!("{callback}?token=callback-token-0123456789"))
        .json(&receipts)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((answer["accepted"].as_i64(), answer["unknown"].as_i64()), (Some(1), Some(1)));
    n.wait_events("delivered", 1).await;

    // A number the gateway refuses: failed at once, kept in the dead letters.
    let blocked = n.customer(Some("13900000000"), None, NotifyChannel::Sms);
    n.feedback_event("accepted", &accepted("FB202611240902", blocked, "zh-CN", Priority::Medium)).await;
    let dead = n.system.wait_for("DLQ_NOTIFICATION", "dlq.notification", 1).await;
    assert!(dead[0].header("Kesu-Dlq-Error").unwrap().contains("HTTP 400"));
    assert_eq!(dead[0].header("Kesu-Dlq-Subject"), Some("notify.req.sms"));
    let failed = eventually("the final failure", kesu_system_tests::WAIT, || async {
        n.events("failed")
            .await
            .into_iter()
            .find(|e| matches!(&e.kind, Some(notification_event::Kind::Failed(f)) if !f.retryable))
    })
    .await;
    let Some(notification_event::Kind::Failed(f)) = failed.kind else { panic!() };
    assert!(!f.reason.contains("13900000000"), "no number in the reason: {}", f.reason);

    let stream = n.system.js.get_stream("NOTIFY_REQUESTS").await.unwrap();
    eventually("the sender is done", kesu_system_tests::WAIT, || async {
        let info = stream.consumer_info("sender-sms").await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    let calls = gateway.calls.lock().unwrap().len();
    assert_eq!(calls, 3, "the republished request was not sent again; the blocked one once");
    n.stop().await;
}
