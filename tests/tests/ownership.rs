//! Who declares what on the bus: each stream by its producer only; a
//! consumer waits (not ready, naming the stream) until the stream exists;
//! analytics reads no stream that carries addresses.

use futures::StreamExt;
use kesu_system_tests::{Backend, TestSystem, WAIT, eventually, feedback};

async fn stream_names(system: &TestSystem) -> Vec<String> {
    let mut names: Vec<String> = system.js.stream_names().map(|n| n.unwrap()).collect().await;
    names.sort();
    names
}

async fn readyz(system: &TestSystem, service: &str) -> (u16, String) {
    let response = reqwest::get(system.endpoint(service).http_url("/readyz")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_consumer_only_service_waits_for_the_stream_its_producer_declares() {
    let mut system = TestSystem::start_with(Backend::Sqlite, &["routing"], &[]).await;
    // Routing declares its own streams (tickets, dead letters), never FEEDBACK.
    assert_eq!(stream_names(&system).await, ["DLQ_ROUTING", "TICKETS"]);
    let (status, body) = eventually("routing reports the missing stream", WAIT, || async {
        let (status, body) = readyz(&system, "routing").await;
        body.contains("\"stream FEEDBACK (declared by intake)\":false").then_some((status, body))
    })
    .await;
    assert_eq!(status, 503, "{body}");

    // The producer starts: routing becomes ready and works.
    system.start_service("intake").await;
    eventually("routing ready once FEEDBACK exists", WAIT, || async {
        let (status, body) = readyz(&system, "routing").await;
        (status == 200 && body.contains("\"stream FEEDBACK (declared by intake)\":true")).then_some(())
    })
    .await;
    system.publish_raw("web", &feedback::robot_vacuum("own-1"), None).await;
    system.wait_for("TICKETS", "ticket.evt.created", 1).await;
    assert_eq!(stream_names(&system).await, ["DLQ_INTAKE", "DLQ_ROUTING", "FEEDBACK", "FEEDBACK_RAW", "TICKETS"]);
    system.stop().await;
}

#[tokio::test]
async fn analytics_consumes_no_stream_that_carries_addresses() {
    let system = TestSystem::start().await;
    system.publish_raw("web", &feedback::robot_vacuum("addr-1"), None).await;
    system.wait_for("NOTIFICATIONS", "notify.evt.requested", 1).await;
    let requests = system.wait_for("NOTIFY_REQUESTS", "notify.req.", 1).await;
    assert!(!requests.is_empty(), "requests with addresses exist, for senders");

    let mut read_by_analytics = Vec::new();
    for stream in stream_names(&system).await {
        let s = system.js.get_stream(&stream).await.unwrap();
        let consumers: Vec<String> = s.consumer_names().map(|n| n.unwrap()).collect().await;
        if consumers.iter().any(|c| c == "analytics") {
            read_by_analytics.push(stream);
        }
    }
    assert_eq!(read_by_analytics, ["FEEDBACK", "NOTIFICATIONS", "SLA", "TICKETS"]);
    // And the one stream it reads from notification holds no address.
    for m in system.messages("NOTIFICATIONS", "").await {
        let text = String::from_utf8_lossy(&m.payload);
        assert!(!text.contains("12345678") && !text.contains("1234-5678"), "{}: {text}", m.subject);
    }
    system.stop().await;
}
