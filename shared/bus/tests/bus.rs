//! The bus against a real nats-server and both database back ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use bytes::Bytes;
use futures::StreamExt;
use kesu_bus::consume::{self, DLQ_DELIVERIES, DLQ_ERROR, DLQ_SUBJECT, DedupKey};
use kesu_bus::subjects::{self, DLQ, FEEDBACK, FEEDBACK_RAW};
use kesu_bus::{
    Bus, BusConfig, ConsumerSettings, ConsumerSpec, Delivery, HandleError, Handler, OutboxRelay, OutboxWaker, Outgoing,
};
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;
use kesu_testkit::{NatsServer, TempDatabase, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

async fn bus(nats: &NatsServer) -> Bus {
    let bus = Bus::connect(&BusConfig::local(&nats.url()), "bustest", &MetricsRegistry::default()).await.unwrap();
    bus.ensure_streams(&subjects::ALL_STREAMS).await.unwrap();
    bus
}

fn fast_settings() -> ConsumerSettings {
    ConsumerSettings {
        ack_wait: Duration::from_secs(2),
        max_deliver: 3,
        concurrency: 8,
        max_ack_pending: 100,
        retry_delay: Duration::from_millis(50),
    }
}

/// Copies every raw message to `feedback.evt.copied` through the inbox and
/// outbox, failing the first `fail_first` attempts of each.
struct Copier {
    db: Database,
    waker: OutboxWaker,
    inbox: String,
    fail_first: u32,
    attempts: AtomicU32,
}

impl Handler for Copier {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        if d.payload.as_ref() == b"poison" {
            return Err(HandleError::Permanent("poison pill".into()));
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if d.delivered <= self.fail_first {
            return Err(HandleError::Transient(format!("failing delivery {}", d.delivered)));
        }
        let mut tx = self.db.begin().await?;
        if !kesu_bus::inbox::claim(&mut tx, &self.inbox, &d.message_id).await? {
            return Ok(());
        }
        let out = Outgoing {
            subject: "feedback.evt.copied".into(),
            msg_id: format!("copy-of-{}", d.message_id),
            msg_type: "test.Copy".into(),
            payload: d.payload.clone(),
            traceparent: d.traceparent.clone(),
        };
        kesu_bus::outbox::enqueue(&mut tx, &out).await?;
        tx.commit().await?;
        self.waker.wake();
        Ok(())
    }
}

async fn stream_count(bus: &Bus, stream: &str, subject: &str) -> u64 {
    let mut s = bus.jetstream().get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap();
    if subject.is_empty() {
        return info.state.messages;
    }
    let mut consumer = s
        .create_consumer(pull::Config {
            filter_subject: subject.into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    consumer.info().await.map(|i| i.num_pending).unwrap_or(0)
}

/// A copier that is declared but not run (for declaration tests).
fn idle_copier(db: Database) -> Arc<Copier> {
    Arc::new(Copier {
        db,
        waker: OutboxWaker::default(),
        inbox: "x".into(),
        fail_first: 0,
        attempts: AtomicU32::new(0),
    })
}

async fn start_copier(bus: &Bus, db: &Database, fail_first: u32, shutdown: &CancellationToken) -> Arc<Copier> {
    let relay = OutboxRelay::new(db.clone(), bus.clone()).with_poll_interval(Duration::from_millis(50));
    let handler = Arc::new(Copier {
        db: db.clone(),
        waker: relay.waker(),
        inbox: "FEEDBACK_RAW:copier".into(),
        fail_first,
        attempts: AtomicU32::new(0),
    });
    tokio::spawn(relay.run(shutdown.clone()));
    let spec = ConsumerSpec::new(FEEDBACK_RAW, "copier", fast_settings()).dedup(DedupKey::StreamSequence);
    let consumer = consume::declare(bus, spec, handler.clone()).await.unwrap();
    tokio::spawn(consumer.run(shutdown.clone()));
    handler
}

#[tokio::test]
async fn messages_are_applied_once_and_relayed_on_every_backend() {
    kesu_telemetry::init_for_tests();
    for temp in TempDatabase::every_backend().await {
        let nats = NatsServer::start().await.unwrap();
        let bus = bus(&nats).await;
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        let shutdown = CancellationToken::new();
        start_copier(&bus, &db, 0, &shutdown).await;
        for i in 0..50 {
            bus.publish(Outgoing {
                subject: "feedback.raw.web".into(),
                msg_id: format!("m{i}"),
                msg_type: "test.Raw".into(),
                payload: Bytes::from(format!("payload {i}")),
                traceparent: None,
            })
            .await
            .unwrap();
        }
        eventually(&format!("50 copies ({})", temp.label()), WAIT, || async {
            (stream_count(&bus, "FEEDBACK", "feedback.evt.copied").await == 50).then_some(())
        })
        .await;
        // The outbox is empty once relayed.
        eventually("empty outbox", WAIT, || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kesu_outbox").fetch_one(db.pool()).await.unwrap();
            (n == 0).then_some(())
        })
        .await;
        shutdown.cancel();
    }
}

#[tokio::test]
async fn undecodable_and_failing_messages_are_dead_lettered_with_original_bytes() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let shutdown = CancellationToken::new();
    // Fails every delivery: after max_deliver (3) it must be dead-lettered.
    let copier = start_copier(&bus, &db, 100, &shutdown).await;

    let mut dlq = bus.client().subscribe("dlq.bustest").await.unwrap();
    bus.publish(Outgoing {
        subject: "feedback.raw.app".into(),
        msg_id: "poison-1".into(),
        msg_type: "test.Raw".into(),
        payload: Bytes::from_static(b"poison"),
        traceparent: None,
    })
    .await
    .unwrap();
    let first = tokio::time::timeout(WAIT, dlq.next()).await.unwrap().unwrap();
    assert_eq!(first.payload.as_ref(), b"poison", "original bytes kept");
    let headers = first.headers.unwrap();
    assert_eq!(headers.get(DLQ_ERROR).unwrap().as_str(), "poison pill");
    assert_eq!(headers.get(DLQ_SUBJECT).unwrap().as_str(), "feedback.raw.app");
    assert_eq!(headers.get("Kesu-Type").unwrap().as_str(), "test.Raw", "original headers kept");

    bus.publish(Outgoing {
        subject: "feedback.raw.app".into(),
        msg_id: "flaky-1".into(),
        msg_type: "test.Raw".into(),
        payload: Bytes::from_static(b"always fails"),
        traceparent: None,
    })
    .await
    .unwrap();
    let second = tokio::time::timeout(WAIT, dlq.next()).await.unwrap().unwrap();
    let headers = second.headers.unwrap();
    assert_eq!(second.payload.as_ref(), b"always fails");
    assert_eq!(headers.get(DLQ_DELIVERIES).unwrap().as_str(), "3");
    assert!(headers.get(DLQ_ERROR).unwrap().as_str().contains("failing delivery 3"));
    assert_eq!(copier.attempts.load(Ordering::SeqCst), 3);
    // Both are kept in the DLQ stream.
    assert_eq!(stream_count(&bus, DLQ.name, "").await, 2);
    // And nothing else was produced.
    assert_eq!(stream_count(&bus, FEEDBACK.name, "").await, 0);
    shutdown.cancel();
}

#[tokio::test]
async fn transient_failures_are_retried_until_they_succeed() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let shutdown = CancellationToken::new();
    start_copier(&bus, &db, 2, &shutdown).await;
    bus.publish(Outgoing {
        subject: "feedback.raw.web".into(),
        msg_id: "retry-me".into(),
        msg_type: "test.Raw".into(),
        payload: Bytes::from_static(b"third time lucky"),
        traceparent: None,
    })
    .await
    .unwrap();
    eventually("the copy after two failures", WAIT, || async {
        (stream_count(&bus, "FEEDBACK", "feedback.evt.copied").await == 1).then_some(())
    })
    .await;
    assert_eq!(stream_count(&bus, DLQ.name, "").await, 0);
    shutdown.cancel();
}

#[tokio::test]
async fn republished_outbox_rows_are_dropped_by_the_duplicate_window() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    for temp in TempDatabase::every_backend().await {
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        let relay = OutboxRelay::new(db.clone(), bus.clone());
        let event = Outgoing {
            subject: format!("feedback.evt.dup_{}", temp.label()),
            msg_id: format!("event-{}", temp.label()),
            msg_type: "test.Event".into(),
            payload: Bytes::from_static(b"once"),
            traceparent: None,
        };
        // A crash between publish and delete: the same row relayed twice.
        for _ in 0..2 {
            let mut conn = db.pool().acquire().await.unwrap();
            kesu_bus::outbox::enqueue(&mut conn, &event).await.unwrap();
            drop(conn);
            assert_eq!(relay.drain().await.unwrap(), 1);
        }
        assert_eq!(stream_count(&bus, "FEEDBACK", &event.subject).await, 1, "{}", temp.label());
    }
}

#[tokio::test]
async fn the_inbox_claims_each_id_once_on_every_backend() {
    for temp in TempDatabase::every_backend().await {
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        assert!(kesu_bus::inbox::claim(&mut conn, "c", "m1").await.unwrap());
        assert!(!kesu_bus::inbox::claim(&mut conn, "c", "m1").await.unwrap(), "{}", temp.label());
        assert!(kesu_bus::inbox::claim(&mut conn, "other", "m1").await.unwrap());
        assert_eq!(kesu_bus::inbox::purge(db.pool(), i64::MAX).await.unwrap(), 2);
    }
}

#[tokio::test]
async fn declaring_streams_and_consumers_is_idempotent() {
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let handler = idle_copier(db);
    let js = bus.jetstream();
    let declare = || consume::declare(&bus, ConsumerSpec::new(FEEDBACK_RAW, "twice", fast_settings()), handler.clone());

    declare().await.unwrap();
    for i in 0..3 {
        js.publish(format!("feedback.raw.web{i}"), Bytes::from_static(b"waiting")).await.unwrap().await.unwrap();
    }
    let mut stream = js.get_stream("FEEDBACK_RAW").await.unwrap();
    let stream_before = stream.info().await.unwrap().clone();
    let consumer_before = stream.consumer_info("twice").await.unwrap();
    let streams_before: Vec<String> = js.stream_names().map(|n| n.unwrap()).collect().await;

    // A second start of the same service declares everything again.
    bus.ensure_streams(&subjects::ALL_STREAMS).await.unwrap();
    declare().await.unwrap();

    let stream_after = stream.info().await.unwrap().clone();
    assert_eq!(stream_after.config, stream_before.config, "the stream is unchanged");
    assert_eq!(stream_after.state.messages, 3, "no message lost");
    let mut streams_after: Vec<String> = js.stream_names().map(|n| n.unwrap()).collect().await;
    let mut streams_before = streams_before;
    streams_after.sort();
    streams_before.sort();
    assert_eq!(streams_after, streams_before, "no stream added");
    let consumers: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(consumers, ["twice"], "one consumer");
    let consumer_after = stream.consumer_info("twice").await.unwrap();
    assert_eq!(consumer_after.config, consumer_before.config, "the consumer is unchanged");
    assert_eq!(consumer_after.num_pending, 3, "the consumer still has every message to deliver");
}

#[tokio::test]
async fn an_event_too_large_for_the_broker_is_parked_and_the_rest_go_out() {
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    for temp in TempDatabase::every_backend().await {
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        let relay = OutboxRelay::new(db.clone(), bus.clone());
        let subject = format!("feedback.evt.big_{}", temp.label());
        let mut conn = db.pool().acquire().await.unwrap();
        for (id, size) in [("huge", 2 * 1024 * 1024), ("after", 10)] {
            let event = Outgoing {
                subject: subject.clone(),
                msg_id: format!("{id}-{}", temp.label()),
                msg_type: "test.Event".into(),
                payload: Bytes::from(vec![b'x'; size]),
                traceparent: None,
            };
            kesu_bus::outbox::enqueue(&mut conn, &event).await.unwrap();
        }
        drop(conn);
        assert_eq!(relay.drain().await.unwrap(), 2, "{}", temp.label());
        assert_eq!(stream_count(&bus, "FEEDBACK", &subject).await, 1, "the row after the huge one went out");
        let parked: Vec<(String, String)> =
            sqlx::query_as("SELECT event_id, reason FROM kesu_outbox_parked").fetch_all(db.pool()).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert!(parked[0].0.starts_with("huge") && parked[0].1.contains("max payload"), "{parked:?}");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kesu_outbox").fetch_one(db.pool()).await.unwrap();
        assert_eq!(left, 0);
    }
}

#[tokio::test]
async fn dead_letters_do_not_inherit_the_originals_publish_expectations() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let shutdown = CancellationToken::new();
    start_copier(&bus, &db, 0, &shutdown).await;
    let mut dlq = bus.client().subscribe("dlq.bustest").await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "expecting-1");
    headers.insert("Nats-Expected-Stream", "FEEDBACK_RAW");
    bus.jetstream()
        .publish_with_headers("feedback.raw.web", headers, Bytes::from_static(b"poison"))
        .await
        .unwrap()
        .await
        .unwrap();
    let dead = tokio::time::timeout(WAIT, dlq.next()).await.expect("dead-lettered").unwrap();
    let headers = dead.headers.unwrap();
    assert_eq!(headers.get("Kesu-Dlq-Original-Nats-Expected-Stream").unwrap().as_str(), "FEEDBACK_RAW");
    assert!(headers.get("Nats-Expected-Stream").is_none());
    assert_eq!(headers.get("Kesu-Dlq-Original-Msg-Id").unwrap().as_str(), "expecting-1");
    shutdown.cancel();
}

#[tokio::test]
async fn a_consumer_declared_again_with_another_filter_ends_up_as_declared() {
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let handler = idle_copier(db);
    let narrow = ConsumerSpec::new(FEEDBACK_RAW, "narrow", fast_settings()).filter("feedback.raw.web");
    consume::declare(&bus, narrow, handler.clone()).await.unwrap();
    // nats-server 2.9 updates the filter in place; a server that refused
    // would fail `declare` with advice instead. Either way the consumer never
    // runs with a filter other than the one declared.
    let wide = ConsumerSpec::new(FEEDBACK_RAW, "narrow", fast_settings());
    consume::declare(&bus, wide, handler).await.unwrap();
    let stream = bus.jetstream().get_stream("FEEDBACK_RAW").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("narrow").await.unwrap();
    assert_eq!(consumer.info().await.unwrap().config.filter_subject, "");
}
