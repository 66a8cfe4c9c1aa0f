//! The bus against a real nats-server and both database back ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use bytes::Bytes;
use futures::StreamExt;
use kesu_bus::consume::{self, DLQ_DELIVERIES, DLQ_ERROR, DLQ_SUBJECT, DedupKey};
use kesu_bus::subjects::{self, FEEDBACK, FEEDBACK_RAW};
use kesu_bus::{
    Bus, BusConfig, Consumer, ConsumerSettings, ConsumerSpec, Delivery, HandleError, Handler, OutboxRelay, Outgoing,
    UnitOfWork,
};
use kesu_storage::Database;
use kesu_telemetry::MetricsRegistry;
use kesu_testkit::{NatsServer, TempDatabase, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// The dead-letter stream of the test's service.
const DLQ: &str = "DLQ_BUSTEST";

/// A nats-server, the bus with every stream, and a SQLite database.
struct Setup {
    nats: NatsServer,
    bus: Bus,
    temp: TempDatabase,
    db: Database,
    shutdown: CancellationToken,
}

impl Setup {
    async fn sqlite() -> Self {
        kesu_telemetry::init_for_tests();
        let nats = NatsServer::start().await.unwrap();
        let bus = bus(&nats).await;
        let temp = TempDatabase::sqlite();
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        Self { nats, bus, temp, db, shutdown: CancellationToken::new() }
    }
}

async fn bus(nats: &NatsServer) -> Bus {
    let bus = Bus::connect(&BusConfig::local(&nats.url()), "bustest", &MetricsRegistry::default()).await.unwrap();
    bus.ensure_streams(&subjects::ALL_STREAMS).await.unwrap();
    bus.ensure_streams(&[subjects::dead_letters("bustest")]).await.unwrap();
    bus
}

fn fast_settings() -> ConsumerSettings {
    ConsumerSettings {
        ack_wait: Duration::from_secs(2),
        max_deliver: 3,
        batch_size: 64,
        max_ack_pending: 100,
        retry_delay: Duration::from_millis(50),
        linger: Duration::ZERO,
    }
}

/// Copies every raw message to `feedback.evt.copied` through the unit of
/// work, failing the first `fail_first` deliveries of each.
struct Copier {
    fail_first: u32,
    attempts: AtomicU32,
}

impl Handler for Copier {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        if d.payload.starts_with(b"poison") {
            return Err(HandleError::Permanent("poison pill".into()));
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if d.delivered <= self.fail_first {
            return Err(HandleError::Transient(format!("failing delivery {}", d.delivered)));
        }
        let out = Outgoing {
            subject: "feedback.evt.copied".into(),
            msg_id: format!("copy-of-{}", d.message_id),
            msg_type: "test.Copy".into(),
            payload: d.payload.clone(),
            traceparent: d.traceparent.clone(),
        };
        work.emit(out).await?;
        Ok(())
    }
}

async fn stream_count(bus: &Bus, stream: &str, subject: &str) -> u64 {
    let mut s = bus.jetstream().get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap();
    if subject.is_empty() {
        return info.state.messages;
    }
    let mut consumer = reader(bus, stream, subject).await;
    consumer.info().await.map(|i| i.num_pending).unwrap_or(0)
}

/// A new consumer of everything in `stream` on `subject`.
async fn reader(bus: &Bus, stream: &str, subject: &str) -> async_nats::jetstream::consumer::PullConsumer {
    let s = bus.jetstream().get_stream(stream).await.unwrap();
    s.create_consumer(pull::Config {
        filter_subject: subject.into(),
        deliver_policy: DeliverPolicy::All,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn start_copier(bus: &Bus, db: &Database, fail_first: u32, shutdown: &CancellationToken) -> Arc<Copier> {
    start_consumer(bus, db, fail_first, shutdown, FEEDBACK_RAW, Arc::new(AtomicBool::new(false))).await
}

async fn start_consumer(
    bus: &Bus,
    db: &Database,
    fail_first: u32,
    shutdown: &CancellationToken,
    stream: subjects::StreamSpec,
    ready: Arc<AtomicBool>,
) -> Arc<Copier> {
    let relay = OutboxRelay::new(db.clone(), bus.clone()).with_poll_interval(Duration::from_millis(50));
    let handler = Arc::new(Copier { fail_first, attempts: AtomicU32::new(0) });
    let spec = ConsumerSpec::new(stream, "copier", fast_settings()).dedup(DedupKey::StreamSequence);
    let consumer = Consumer::new(bus, db, &relay.waker(), spec, handler.clone());
    tokio::spawn(relay.run(shutdown.clone()));
    tokio::spawn(consumer.run(shutdown.clone(), move |_, is| ready.store(is, Ordering::SeqCst)));
    handler
}

fn raw(i: usize, payload: &[u8]) -> Outgoing {
    Outgoing {
        subject: "feedback.raw.web".into(),
        msg_id: format!("m{i}"),
        msg_type: "test.Raw".into(),
        payload: Bytes::copy_from_slice(payload),
        traceparent: None,
    }
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
    let Setup { nats: _nats, bus, temp: _temp, db, shutdown } = Setup::sqlite().await;
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
    assert_eq!(stream_count(&bus, DLQ, "").await, 2);
    // And nothing else was produced.
    assert_eq!(stream_count(&bus, FEEDBACK.name, "").await, 0);
    shutdown.cancel();
}

#[tokio::test]
async fn transient_failures_are_retried_until_they_succeed() {
    let Setup { nats: _nats, bus, temp: _temp, db, shutdown } = Setup::sqlite().await;
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
    assert_eq!(stream_count(&bus, DLQ, "").await, 0);
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
            let mut conn = db.writer().acquire().await.unwrap();
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
        let mut conn = db.writer().acquire().await.unwrap();
        assert!(kesu_bus::inbox::claim(&mut conn, "c", "m1").await.unwrap());
        assert!(!kesu_bus::inbox::claim(&mut conn, "c", "m1").await.unwrap(), "{}", temp.label());
        assert!(kesu_bus::inbox::claim(&mut conn, "other", "m1").await.unwrap());
        let claimed = kesu_bus::inbox::claim_batch(&mut conn, "c", &["m1", "m2", "m3", "m2"]).await.unwrap();
        let mut claimed: Vec<String> = claimed.into_iter().collect();
        claimed.sort();
        assert_eq!(claimed, ["m2", "m3"], "{}: only ids not claimed before", temp.label());
        drop(conn);
        assert_eq!(kesu_bus::inbox::purge(db.writer(), i64::MAX).await.unwrap(), 4);
    }
}

#[tokio::test]
async fn declaring_streams_and_consumers_is_idempotent() {
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let streams_before = stream_configs(&bus).await;
    bus.publish(raw(1, b"kept")).await.unwrap();
    let spec = ConsumerSpec::new(FEEDBACK_RAW, "twice", fast_settings());
    let mut first = consume::declare_consumer(&bus, &spec).await.unwrap().cached_info().config.clone();
    bus.ensure_streams(&subjects::ALL_STREAMS).await.unwrap();
    let mut second = consume::declare_consumer(&bus, &spec).await.unwrap().cached_info().config.clone();
    first.metadata.clear();
    second.metadata.clear();
    assert_eq!(stream_configs(&bus).await, streams_before, "declaring again changes no stream");
    assert_eq!(format!("{first:?}"), format!("{second:?}"), "declaring again changes no consumer");
    let stream = bus.jetstream().get_stream("FEEDBACK_RAW").await.unwrap();
    let names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(names, ["twice"], "one consumer, not two");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("twice").await.unwrap();
    assert_eq!(consumer.info().await.unwrap().num_pending, 1, "the message published before is still there");
}

/// Every stream's name and configuration, as the server has them.
async fn stream_configs(bus: &Bus) -> Vec<String> {
    let mut names: Vec<String> = bus.jetstream().stream_names().map(|n| n.unwrap()).collect().await;
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let mut stream = bus.jetstream().get_stream(&name).await.unwrap();
        let mut config = stream.info().await.unwrap().config.clone();
        config.metadata.clear(); // server bookkeeping, in hash order
        out.push(format!("{config:?}"));
    }
    out
}

#[tokio::test]
async fn a_batch_with_a_poison_message_applies_the_rest_and_dead_letters_only_it() {
    kesu_telemetry::init_for_tests();
    for temp in TempDatabase::every_backend().await {
        let nats = NatsServer::start().await.unwrap();
        let bus = bus(&nats).await;
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        // Queued before the consumer starts, so they arrive as full batches.
        for i in 0..200 {
            let payload = if i == 77 { b"poison".to_vec() } else { format!("payload {i}").into_bytes() };
            bus.publish(raw(i, &payload)).await.unwrap();
        }
        let shutdown = CancellationToken::new();
        start_copier(&bus, &db, 0, &shutdown).await;
        eventually(&format!("199 copies and one dead letter ({})", temp.label()), WAIT, || async {
            let copies = stream_count(&bus, "FEEDBACK", "feedback.evt.copied").await;
            let dead = stream_count(&bus, DLQ, "").await;
            (copies == 199 && dead == 1).then_some(())
        })
        .await;
        let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kesu_inbox").fetch_one(db.pool()).await.unwrap();
        assert_eq!(inbox, 199, "{}: every applied message claimed once, the poison one not", temp.label());
        shutdown.cancel();
    }
}

#[tokio::test]
async fn a_consumer_waits_for_its_stream_and_is_not_ready_until_it_exists() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    // A bus that declares nothing: the stream's owner has not started yet.
    let bus = Bus::connect(&BusConfig::local(&nats.url()), "bustest", &MetricsRegistry::default()).await.unwrap();
    bus.ensure_streams(&[subjects::dead_letters("bustest")]).await.unwrap();
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(true));
    start_consumer(&bus, &db, 0, &shutdown, FEEDBACK_RAW, ready.clone()).await;
    eventually("reported not ready", WAIT, || async { (!ready.load(Ordering::SeqCst)).then_some(()) }).await;
    assert!(bus.jetstream().get_stream("FEEDBACK_RAW").await.is_err(), "the consumer did not declare the stream");
    // The owner declares its streams; the consumer finds them and works.
    bus.ensure_streams(&subjects::owned_by("intake")).await.unwrap();
    bus.publish(raw(1, b"after the owner came")).await.unwrap();
    eventually("ready and consuming", WAIT, || async {
        (ready.load(Ordering::SeqCst) && stream_count(&bus, "FEEDBACK", "feedback.evt.copied").await == 1).then_some(())
    })
    .await;
    shutdown.cancel();
}

#[tokio::test]
async fn input_at_the_streams_size_limit_can_still_be_dead_lettered() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let limit = bus.stream_settings().max_message_size as usize;
    assert!(limit > 0 && limit < bus.client().server_info().max_payload, "limit {limit}");
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let mut dlq = bus.client().subscribe("dlq.bustest").await.unwrap();
    // Over the stream's limit: refused to the publisher at once, never stored.
    assert!(bus.publish(raw(0, &vec![b'x'; limit + 1])).await.is_err(), "over the limit is refused");
    // The largest message the stream takes (headers count too): found from
    // just above the computed size downwards, so exactly one is stored.
    let headers = raw(1, b"").headers();
    let header_bytes = 12
        + headers
            .iter()
            .map(|(k, v)| v.iter().map(|v| AsRef::<str>::as_ref(k).len() + v.as_str().len() + 4).sum::<usize>())
            .sum::<usize>();
    let mut size = limit - header_bytes + 8;
    let stored = loop {
        let mut payload = b"poison".to_vec();
        payload.resize(size, b'.');
        if bus.publish(raw(1, &payload)).await.is_ok() {
            break payload;
        }
        size -= 1;
        assert!(size + 64 > limit - header_bytes, "nothing near the limit was accepted");
    };
    let shutdown = CancellationToken::new();
    start_copier(&bus, &db, 0, &shutdown).await;
    let dead = tokio::time::timeout(WAIT, dlq.next()).await.expect("dead-lettered").unwrap();
    assert_eq!(dead.payload.len(), stored.len(), "the whole original is kept");
    assert_eq!(dead.headers.unwrap().get(DLQ_ERROR).unwrap().as_str(), "poison pill");
    eventually("the original settled (not redelivered)", WAIT, || async {
        let stream = bus.jetstream().get_stream("FEEDBACK_RAW").await.unwrap();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("copier").await.unwrap();
        let info = consumer.info().await.unwrap();
        (info.num_ack_pending == 0 && info.num_pending == 0).then_some(())
    })
    .await;
    shutdown.cancel();
}

#[tokio::test]
async fn an_event_too_large_for_the_broker_is_parked_and_the_rest_go_out() {
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    for temp in TempDatabase::every_backend().await {
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        let relay = OutboxRelay::new(db.clone(), bus.clone());
        let subject = format!("feedback.evt.big_{}", temp.label());
        let mut conn = db.writer().acquire().await.unwrap();
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
    let Setup { nats: _nats, bus, temp: _temp, db, shutdown } = Setup::sqlite().await;
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

    // An original that came in an atomic batch: its batch headers would make
    // the dead letter an unfinished batch of a stream that takes none.
    let mut poison = raw(2, b"poison in a batch");
    poison.msg_id = "batched-poison".into();
    bus.publish_atomic(&[raw(1, b"fine"), poison]).await.unwrap().await.unwrap();
    let dead = tokio::time::timeout(WAIT, dlq.next()).await.expect("dead-lettered").unwrap();
    let headers = dead.headers.unwrap();
    assert_eq!(headers.get("Kesu-Dlq-Original-Msg-Id").unwrap().as_str(), "batched-poison");
    assert_eq!(headers.get("Kesu-Dlq-Original-Nats-Batch-Sequence").unwrap().as_str(), "2");
    assert!(headers.get("Nats-Batch-Id").is_none() && headers.get("Nats-Batch-Sequence").is_none());
    let bus_ref = &bus;
    eventually("both dead letters stored", WAIT, || async move {
        (stream_count(bus_ref, DLQ, "").await == 2).then_some(())
    })
    .await;
    shutdown.cancel();
}

#[tokio::test]
async fn a_consumer_declared_again_with_another_filter_ends_up_as_declared() {
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let narrow = ConsumerSpec::new(FEEDBACK_RAW, "narrow", fast_settings()).filter("feedback.raw.web");
    consume::declare_consumer(&bus, &narrow).await.unwrap();
    // The server updates the filter in place; a server that refused would
    // fail the declaration with advice instead. Either way the consumer
    // never runs with a filter other than the one declared.
    let wide = ConsumerSpec::new(FEEDBACK_RAW, "narrow", fast_settings());
    consume::declare_consumer(&bus, &wide).await.unwrap();
    let stream = bus.jetstream().get_stream("FEEDBACK_RAW").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("narrow").await.unwrap();
    assert_eq!(consumer.info().await.unwrap().config.filter_subject, "");
    // Several subjects: declared as the server's `filter_subjects`.
    let two =
        ConsumerSpec::new(FEEDBACK_RAW, "narrow", fast_settings()).filters(&["feedback.raw.web", "feedback.raw.app"]);
    consume::declare_consumer(&bus, &two).await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("narrow").await.unwrap();
    let mut have = consumer.info().await.unwrap().config.filter_subjects.clone();
    have.sort();
    assert_eq!(have, ["feedback.raw.app", "feedback.raw.web"]);
}

#[tokio::test]
async fn a_merged_consumer_applies_several_streams_in_shared_batches() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    for i in 0..50 {
        bus.publish(raw(i, format!("raw {i}").as_bytes())).await.unwrap();
        let mut event = raw(i, format!("ticket {i}").as_bytes());
        event.subject = "ticket.evt.created".into();
        event.msg_id = format!("t{i}");
        bus.publish(event).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let relay = OutboxRelay::new(db.clone(), bus.clone()).with_poll_interval(Duration::from_millis(50));
    let handler = Arc::new(Copier { fail_first: 0, attempts: AtomicU32::new(0) });
    let specs = vec![
        ConsumerSpec::new(FEEDBACK_RAW, "merged", fast_settings()).dedup(DedupKey::StreamSequence),
        ConsumerSpec::new(subjects::TICKETS, "merged", fast_settings()),
    ];
    let ready: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let consumer = Consumer::merged(&bus, &db, &relay.waker(), specs, handler.clone());
    tokio::spawn(relay.run(shutdown.clone()));
    let flags = ready.clone();
    tokio::spawn(consumer.run(shutdown.clone(), move |i, is| flags[i].store(is, Ordering::SeqCst)));
    eventually("100 copies from both streams", WAIT, || async {
        (stream_count(&bus, "FEEDBACK", "feedback.evt.copied").await == 100).then_some(())
    })
    .await;
    assert!(ready.iter().all(|r| r.load(Ordering::SeqCst)), "both sources reported ready");
    let per_inbox: Vec<(String, i64)> =
        sqlx::query_as("SELECT consumer, COUNT(*) FROM kesu_inbox GROUP BY consumer ORDER BY consumer")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(per_inbox, [("FEEDBACK_RAW:merged".to_string(), 50), ("TICKETS:merged".to_string(), 50)]);
    assert_eq!(handler.attempts.load(Ordering::SeqCst), 100, "each message handled once");
    shutdown.cancel();
}

#[tokio::test]
async fn a_merged_consumer_names_exactly_the_streams_still_missing() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = Bus::connect(&BusConfig::local(&nats.url()), "bustest", &MetricsRegistry::default()).await.unwrap();
    bus.ensure_streams(&subjects::owned_by("routing")).await.unwrap();
    let temp = TempDatabase::sqlite();
    let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
    let specs = vec![
        ConsumerSpec::new(FEEDBACK_RAW, "merged", fast_settings()),
        ConsumerSpec::new(subjects::TICKETS, "merged", fast_settings()),
    ];
    let ready: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(true), AtomicBool::new(false)]);
    let handler = Arc::new(Copier { fail_first: 0, attempts: AtomicU32::new(0) });
    let consumer = Consumer::merged(&bus, &db, &OutboxRelay::new(db.clone(), bus.clone()).waker(), specs, handler);
    let shutdown = CancellationToken::new();
    let flags = ready.clone();
    tokio::spawn(consumer.run(shutdown.clone(), move |i, is| flags[i].store(is, Ordering::SeqCst)));
    eventually("FEEDBACK_RAW missing, TICKETS there", WAIT, || async {
        (!ready[0].load(Ordering::SeqCst) && ready[1].load(Ordering::SeqCst)).then_some(())
    })
    .await;
    bus.ensure_streams(&subjects::owned_by("intake")).await.unwrap();
    eventually("both there", WAIT, || async { ready.iter().all(|r| r.load(Ordering::SeqCst)).then_some(()) }).await;
    shutdown.cancel();
}

/// The stream's messages on `subject`, in stream order: (`Nats-Msg-Id`,
/// the atomic batch it came in).
async fn stored(bus: &Bus, stream: &str, subject: &str) -> Vec<(String, Option<String>)> {
    let consumer = reader(bus, stream, subject).await;
    let pending = stream_count(bus, stream, subject).await as usize;
    let mut messages = consumer.fetch().max_messages(pending).messages().await.unwrap();
    let mut out = Vec::new();
    while let Some(msg) = messages.next().await {
        let msg = msg.unwrap();
        let headers = msg.headers.clone().unwrap_or_default();
        let id = headers.get("Nats-Msg-Id").map(|v| v.to_string()).unwrap_or_default();
        out.push((id, headers.get("Nats-Batch-Id").map(|v| v.to_string())));
    }
    out
}

fn event(subject: &str, id: String) -> Outgoing {
    Outgoing {
        subject: subject.into(),
        msg_id: id,
        msg_type: "test.Event".into(),
        payload: Bytes::from_static(b"event"),
        traceparent: None,
    }
}

#[tokio::test]
async fn a_streams_outbox_rows_go_out_as_one_atomic_batch_and_a_replay_after_a_crash_drops_only_duplicates() {
    kesu_telemetry::init_for_tests();
    let nats = NatsServer::start().await.unwrap();
    let bus = bus(&nats).await;
    assert_eq!(bus.atomic_stream("feedback.evt.accepted"), Some("FEEDBACK"), "the server takes atomic batches");
    assert_eq!(bus.atomic_stream("dlq.bustest"), None, "dead letters go one by one");
    for temp in TempDatabase::every_backend().await {
        let db = Database::open(temp.url(), 4, &[kesu_bus::MIGRATIONS]).await.unwrap();
        let relay = OutboxRelay::new(db.clone(), bus.clone());
        let feedback = format!("feedback.evt.batched_{}", temp.label());
        let tickets = format!("ticket.evt.batched_{}", temp.label());
        let id = |i: usize| format!("{}-{i:03}", temp.label());
        // Rows of two streams, interleaved: 30 for FEEDBACK, 10 for TICKETS.
        let mut conn = db.writer().acquire().await.unwrap();
        for i in 0..40 {
            let subject = if i % 4 == 3 { &tickets } else { &feedback };
            kesu_bus::outbox::enqueue(&mut conn, &event(subject, id(i))).await.unwrap();
        }
        drop(conn);
        assert_eq!(relay.drain().await.unwrap(), 40, "{}", temp.label());
        let first = stored(&bus, "FEEDBACK", &feedback).await;
        let want: Vec<String> = (0..40).filter(|i| i % 4 != 3).map(id).collect();
        assert_eq!(first.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), want, "in outbox order");
        let batch_ids: std::collections::BTreeSet<_> = first.iter().map(|(_, batch)| batch.clone()).collect();
        assert!(batch_ids.len() == 1 && batch_ids.first().unwrap().is_some(), "one atomic batch: {batch_ids:?}");
        let few = stored(&bus, "TICKETS", &tickets).await;
        assert_eq!(few.len(), 10);
        assert!(10 < kesu_bus::MIN_ATOMIC_BATCH && few.iter().all(|(_, batch)| batch.is_none()), "too few for a batch");

        // A crash between publish and delete: rows 30..40 are relayed again
        // beside new rows 40..50. The batch is refused for its duplicates
        // and its rows go one by one; only the new ones are stored.
        let mut conn = db.writer().acquire().await.unwrap();
        for i in 30..50 {
            kesu_bus::outbox::enqueue(&mut conn, &event(&feedback, id(i))).await.unwrap();
        }
        drop(conn);
        assert_eq!(relay.drain().await.unwrap(), 20, "{}", temp.label());
        let stored_after = stored(&bus, "FEEDBACK", &feedback).await;
        assert!(
            stored_after[first.len()..].iter().all(|(_, batch)| batch.is_none()),
            "the refused batch's new rows went one by one"
        );
        let after: Vec<String> = stored_after.into_iter().map(|(id, _)| id).collect();
        let mut want: Vec<String> = (0..40).filter(|i| i % 4 != 3).map(id).collect();
        // 31, 35 and 39 went to TICKETS before: new to FEEDBACK.
        want.extend([31, 35, 39].into_iter().chain(40..50).map(id));
        assert_eq!(after, want, "{}: each event once, new ones in order", temp.label());
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kesu_outbox").fetch_one(db.pool()).await.unwrap();
        assert_eq!(left, 0);
    }
}

/// Counts units of work and the messages in them.
#[derive(Default)]
struct BatchCounter {
    messages: AtomicU32,
    batches: AtomicU32,
}

impl Handler for BatchCounter {
    async fn handle(&self, _work: &mut UnitOfWork, _d: &Delivery) -> Result<(), HandleError> {
        self.messages.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn before_commit(&self, _work: &mut UnitOfWork) -> Result<(), HandleError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_lingering_consumer_gathers_a_trickle_into_one_batch() {
    let Setup { nats: _nats, bus, temp: _temp, db, shutdown } = Setup::sqlite().await;
    let relay = OutboxRelay::new(db.clone(), bus.clone());
    let settings = ConsumerSettings { linger: Duration::from_millis(800), ..fast_settings() };
    let counter = Arc::new(BatchCounter::default());
    let consumer = Consumer::new(
        &bus,
        &db,
        &relay.waker(),
        ConsumerSpec::new(FEEDBACK_RAW, "lingering", settings),
        counter.clone(),
    );
    tokio::spawn(consumer.run(shutdown.clone(), |_, _| {}));
    // Five messages 40 ms apart: without lingering, five units of work.
    for i in 0..5 {
        bus.publish(raw(i, b"trickle")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let counter_ref = &counter;
    eventually("all applied", WAIT, || async move { (counter_ref.messages.load(Ordering::SeqCst) == 5).then_some(()) })
        .await;
    assert_eq!(counter.batches.load(Ordering::SeqCst), 1, "one unit of work for the trickle");
    shutdown.cancel();
}
