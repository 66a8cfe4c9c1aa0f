//! What ops see of every service: health, readiness, metrics, gRPC health
//! and reflection, graceful shutdown.

use kesu_system_tests::{SERVICES, TestSystem};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn every_service_reports_health_readiness_and_metrics() {
    let system = TestSystem::start().await;
    for service in SERVICES {
        let endpoint = system.endpoint(service);
        let health = reqwest::get(endpoint.http_url("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200, "{service} /healthz");

        let ready = reqwest::get(endpoint.http_url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200, "{service} /readyz");
        let body = ready.text().await.unwrap();
        assert!(
            body.contains("\"ready\":true") && body.contains("\"nats\":true") && body.contains("\"database\":true"),
            "{service}: {body}"
        );

        let metrics = reqwest::get(endpoint.http_url("/metrics")).await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains("kesu_outbox_pending") && metrics.contains("kesu_outbox_published_total"),
            "{service}: {metrics}"
        );

        let channel = tonic::transport::Endpoint::from_shared(endpoint.grpc_url()).unwrap().connect().await.unwrap();
        let mut grpc = HealthClient::new(channel);
        let status = grpc.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service} gRPC health");
    }
    system.stop().await;
}

#[tokio::test]
async fn readiness_fails_while_the_broker_is_down_and_recovers() {
    let mut system = TestSystem::start_with(kesu_system_tests::Backend::Sqlite, &["intake"], &[]).await;
    let url = system.endpoint("intake").http_url("/readyz");
    system.nats.kill();
    let not_ready = kesu_system_tests::eventually("not ready without NATS", kesu_system_tests::WAIT, || async {
        let r = reqwest::get(&url).await.ok()?;
        (r.status() == 503).then_some(r.text().await.unwrap_or_default())
    })
    .await;
    assert!(not_ready.contains("\"nats\":false"), "{not_ready}");
    system.nats.restart().await.unwrap();
    kesu_system_tests::eventually("ready again", kesu_system_tests::WAIT, || async {
        (reqwest::get(&url).await.ok()?.status() == 200).then_some(())
    })
    .await;
    system.stop().await;
}

#[tokio::test]
async fn a_notification_service_with_the_wrong_contact_key_is_not_ready_and_loses_nothing() {
    let other_key = kesu_domain::ContactKey::generate_base64();
    let env = [("KESU_NOTIFICATION_CONTACT_KEY", other_key.as_str()), ("KESU_CONSUMER_RETRY_DELAY", "50ms")];
    let system =
        TestSystem::start_with(kesu_system_tests::Backend::Sqlite, &["intake", "routing", "notification"], &env).await;
    system.publish_raw("web", &kesu_system_tests::feedback::robot_vacuum("web-key"), None).await;
    // Retried, then kept in the dead-letter stream for replay once fixed.
    let dead = system.wait_for("DLQ_NOTIFICATION", "dlq.notification", 1).await;
    assert!(dead[0].header("Kesu-Dlq-Error").unwrap().contains("CONTACT_KEY"));
    assert_eq!(dead[0].header("Kesu-Dlq-Subject"), Some("feedback.evt.accepted"));
    // Nothing for the customer (staff notices need no contact key).
    let requests = system.messages("NOTIFY_REQUESTS", "notify.req.").await;
    assert!(requests.iter().all(|m| {
        let request: kesu_proto::v1::NotificationRequest = m.decode();
        request.purpose != kesu_proto::v1::NotificationPurpose::Acknowledgement as i32
    }));
    let ready = reqwest::get(system.endpoint("notification").http_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("\"contact key opens sealed contacts\":false"));
    system.stop().await;
}
