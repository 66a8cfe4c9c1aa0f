//! A service killed between receive and ack loses nothing on restart, and
//! does nothing twice.

use std::collections::HashSet;
use std::time::Duration;

use kesu_proto::v1::*;
use kesu_system_tests::{Backend, TestSystem, WAIT, eventually, feedback, kill_9, terminate};
use kesu_testkit::{NatsProfile, free_port};

const N: usize = 1500;

async fn ready(url: &str) {
    eventually(&format!("{url} ready"), WAIT, || async {
        let ok = reqwest::get(url).await.map(|r| r.status().is_success()).unwrap_or(false);
        ok.then_some(())
    })
    .await;
}

#[tokio::test]
async fn intake_killed_mid_stream_loses_nothing_and_duplicates_nothing() {
    let system = TestSystem::try_start_on(NatsProfile::Durable, Backend::Sqlite, &["routing"], &[]).await.unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let env = [
        ("KESU_INTAKE_HTTP_ADDR", http.as_str()),
        ("KESU_CONSUMER_ACK_WAIT", "2s"),
        ("KESU_CONSUMER_BATCH_SIZE", "200"),
    ];
    let readyz = format!("http://{http}/readyz");

    // First start declares the streams and the durable consumer; then the
    // service is gone while a backlog builds up.
    let mut intake = system.spawn_process("intake", &env);
    ready(&readyz).await;
    kill_9(&mut intake);
    for i in 0..N {
        system.publish_raw("web", &feedback::robot_vacuum(&format!("crash-{i}")), None).await;
    }

    // Kill it again in the middle of the backlog.
    let mut intake = system.spawn_process("intake", &env);
    eventually("intake working through the backlog", WAIT, || async {
        (system.messages("FEEDBACK", "feedback.evt.accepted").await.len() >= 100).then_some(())
    })
    .await;
    kill_9(&mut intake);
    let mut stream = system.js.get_stream("FEEDBACK_RAW").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("intake").await.unwrap();
    let info = consumer.info().await.unwrap();
    assert!(
        info.num_ack_pending >= 100,
        "the kill must land while a batch of 100+ was received but not acknowledged (ack pending: {}, pending: {})",
        info.num_ack_pending,
        info.num_pending
    );
    let _ = stream.info().await;

    // Restarted, it finishes the work: every feedback exactly once.
    let mut intake = system.spawn_process("intake", &env);
    let accepted = eventually("every feedback accepted", Duration::from_secs(120), || async {
        let found = system.messages("FEEDBACK", "feedback.evt.accepted").await;
        (found.len() >= N).then_some(found)
    })
    .await;
    // Every redelivery handled and sent: a feedback accepted twice would be there now.
    system.wait_until_settled("FEEDBACK_RAW", "intake").await;
    let accepted_now = system.messages("FEEDBACK", "feedback.evt.accepted").await;
    assert_eq!(accepted_now.len(), N, "no feedback accepted twice");
    let events: Vec<FeedbackEvent> = accepted.iter().map(|m| m.decode()).collect();
    let ids: HashSet<&str> = events.iter().map(|e| e.external_id.as_str()).collect();
    let numbers: HashSet<&str> = events.iter().map(|e| e.feedback_number.as_str()).collect();
    assert_eq!((ids.len(), numbers.len()), (N, N), "every feedback once, every number once");
    assert!(system.messages("FEEDBACK", "feedback.evt.duplicate").await.is_empty(), "redeliveries were not re-applied");
    assert!(system.messages("DLQ_INTAKE", "").await.is_empty());

    // Downstream: one ticket per feedback.
    let created = system.wait_for("TICKETS", "ticket.evt.created", N).await;
    let tickets: HashSet<String> =
        created.iter().map(|m| m.decode::<TicketEvent>().ticket.unwrap().feedback_id).collect();
    assert_eq!((created.len(), tickets.len()), (N, N));

    assert!(terminate(&mut intake).success(), "SIGTERM stops intake cleanly");
    system.stop().await;
}
