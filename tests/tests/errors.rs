//! What clients and probes see when something breaks inside a service:
//! internal errors without database text but with an id to quote, corrupt
//! rows reported instead of dropped, reflection listing only what a port
//! serves, readiness answering while the database is held.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use kesu_proto::v1::intake_service_client::IntakeServiceClient;
use kesu_proto::v1::ticket_service_client::TicketServiceClient;
use kesu_proto::v1::*;
use kesu_storage::sqlx::{self, Connection, SqliteConnection};
use kesu_system_tests::{Backend, Role, TestSystem, WAIT, eventually, feedback};
use prost::Message;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// Words that would mean database or internal text reached the client.
const LEAKS: [&str; 10] =
    ["sql", "database", "table", "no such", "column", "pool", "tickets", "feedback", "error returned", "decode"];

/// The status carries a generic message with an error id (also in the
/// `kesu-error-id` metadata) and none of the words of the real cause.
fn assert_generic(status: &tonic::Status, code: tonic::Code) {
    assert_eq!(status.code(), code, "{status:?}");
    let message = status.message().to_lowercase();
    for word in LEAKS {
        assert!(!message.contains(word), "the client sees {word:?}: {message}");
    }
    let id = status
        .metadata()
        .get(kesu_runtime::status::ERROR_ID_HEADER)
        .expect("the status carries an error id")
        .to_str()
        .unwrap();
    assert!(message.contains(id), "the message quotes the id {id}: {message}");
}

async fn connect_sqlite(url: &str) -> SqliteConnection {
    SqliteConnection::connect(url).await.expect("a second connection to the service's SQLite file")
}

#[tokio::test]
async fn an_internal_error_reaches_the_client_without_database_text() {
    let system = TestSystem::start_with(Backend::Sqlite, &["routing"], &[]).await;
    let mut tickets =
        TicketServiceClient::with_interceptor(system.channel("routing").await, system.bearer(Role::Supervisor));
    assert!(tickets.list_tickets(ListTicketsRequest::default()).await.is_ok(), "works before the break");

    // Someone breaks the database under the running service.
    let mut conn = connect_sqlite(system.database_url("routing")).await;
    sqlx::query("ALTER TABLE tickets RENAME TO tickets_moved").execute(&mut conn).await.unwrap();

    let listed = tickets.list_tickets(ListTicketsRequest::default()).await.unwrap_err();
    assert_generic(&listed, tonic::Code::Internal);
    let key = get_ticket_request::Key::TicketId("T-1".into());
    let got = tickets.get_ticket(GetTicketRequest { key: Some(key) }).await.unwrap_err();
    assert_generic(&got, tonic::Code::Internal);
    assert_ne!(
        listed.metadata().get("kesu-error-id"),
        got.metadata().get("kesu-error-id"),
        "every failure has its own id"
    );
    system.stop().await;
}

#[tokio::test]
async fn a_corrupt_row_is_reported_not_dropped() {
    let system = TestSystem::start_with(Backend::Sqlite, &["routing"], &[]).await;
    let mut conn = connect_sqlite(system.database_url("routing")).await;
    // A record that is not a protobuf Ticket: field 1 claims 5 bytes, has 1.
    sqlx::query(
        "INSERT INTO tickets (ticket_id, feedback_id, feedback_number, version, status, priority, department,
                              handler, channel, customer_key, created_at, updated_at, record)
         VALUES ('T-corrupt', 'F-1', 'FB202611250001', 1, 'new', 'p3', 'service', '', 'web', '', 1, 1, $1)",
    )
    .bind(vec![0x0a_u8, 0x05, 0x01])
    .execute(&mut conn)
    .await
    .unwrap();

    let mut tickets =
        TicketServiceClient::with_interceptor(system.channel("routing").await, system.bearer(Role::Supervisor));
    let listed = tickets.list_tickets(ListTicketsRequest::default()).await;
    assert_generic(
        &listed.expect_err("a list with a corrupt row is an error, not an empty page"),
        tonic::Code::Internal,
    );
    let key = get_ticket_request::Key::TicketId("T-corrupt".into());
    let got = tickets.get_ticket(GetTicketRequest { key: Some(key) }).await;
    assert_generic(&got.expect_err("a corrupt ticket is an error, not NOT_FOUND"), tonic::Code::Internal);
    system.stop().await;
}

#[tokio::test]
async fn a_submission_intake_cannot_store_is_refused_without_database_text() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &[]).await;
    let mut conn = connect_sqlite(system.database_url("intake")).await;
    sqlx::query("ALTER TABLE feedback RENAME TO feedback_moved").execute(&mut conn).await.unwrap();

    // Request/reply, as an adapter: a 503 it may retry, with an id, no detail.
    let raw = feedback::robot_vacuum("app-broken");
    let reply = system.client.request("feedback.submit.app", raw.encode_to_vec().into()).await.unwrap();
    let headers = reply.headers.expect("an error reply has headers");
    assert_eq!(headers.get("Nats-Service-Error-Code").map(|v| v.as_str()), Some("503"));
    let text = headers.get("Nats-Service-Error").expect("an error text").as_str().to_lowercase();
    for word in LEAKS {
        assert!(!text.contains(word), "the adapter sees {word:?}: {text}");
    }
    assert!(text.contains("(id "), "{text}");

    // gRPC: UNAVAILABLE (retry) with the same shape.
    let mut intake = IntakeServiceClient::with_interceptor(system.channel("intake").await, system.bearer(Role::Agent));
    let raw = RawFeedback { channel: Channel::App as i32, ..feedback::robot_vacuum("grpc-broken") };
    let refused = intake.submit_feedback(raw).await.unwrap_err();
    assert_generic(&refused, tonic::Code::Unavailable);
    system.stop().await;
}

async fn reflect(url: String, request: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut answers = client.server_reflection_info(futures::stream::iter([request])).await?.into_inner();
    let answer: ServerReflectionResponse = answers.next().await.expect("one answer")?;
    Ok(answer.message_response.expect("a response"))
}

async fn listed_services(url: String) -> BTreeSet<String> {
    match reflect(url, MessageRequest::ListServices(String::new())).await.unwrap() {
        MessageResponse::ListServicesResponse(list) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("not a service list: {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_only_the_services_a_port_serves() {
    let system = TestSystem::start_with(Backend::Sqlite, &["routing", "sla-timer"], &[]).await;
    let common = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"];
    for (service, api) in [("routing", "kesu.v1.TicketService"), ("sla-timer", "kesu.v1.SlaService")] {
        let expected: BTreeSet<String> = common.iter().chain([&api]).map(|s| s.to_string()).collect();
        assert_eq!(listed_services(system.endpoint(service).grpc_url()).await, expected, "{service}");
    }
    // A foreign service is not described either.
    let foreign = reflect(
        system.endpoint("routing").grpc_url(),
        MessageRequest::FileContainingSymbol("kesu.v1.SlaService".into()),
    )
    .await;
    assert!(
        matches!(foreign, Ok(MessageResponse::ErrorResponse(_)) | Err(_)),
        "routing does not describe the SLA service: {foreign:?}"
    );
    let own = reflect(
        system.endpoint("routing").grpc_url(),
        MessageRequest::FileContainingSymbol("kesu.v1.TicketService".into()),
    )
    .await
    .unwrap();
    assert!(matches!(own, MessageResponse::FileDescriptorResponse(_)), "{own:?}");
    system.stop().await;
}

#[tokio::test]
async fn readiness_and_health_answer_while_a_long_write_holds_the_database() {
    // One connection, so a message waiting for the write lock holds the
    // whole pool: the probe must not queue behind it.
    let env = [("KESU_INTAKE_DB_MAX_CONNECTIONS", "1")];
    let system = TestSystem::start_with(Backend::Sqlite, &["intake"], &env).await;
    let endpoint = system.endpoint("intake");
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    let mut conn = connect_sqlite(system.database_url("intake")).await;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
    sqlx::query("INSERT INTO daily_serials (day, last_serial) VALUES ('19000101', 1)")
        .execute(&mut conn)
        .await
        .unwrap();
    system.publish_raw("web", &feedback::robot_vacuum("web-held"), None).await;

    // Positive signal: intake has the message in hand (and is waiting for the lock).
    let stream = system.js.get_stream("FEEDBACK_RAW").await.unwrap();
    eventually("intake working on the message", WAIT, || async {
        (stream.consumer_info("intake").await.ok()?.num_ack_pending > 0).then_some(())
    })
    .await;

    let health = probe.get(endpoint.http_url("/healthz")).send().await.expect("/healthz answers");
    assert_eq!(health.status(), 200);
    let ready = probe.get(endpoint.http_url("/readyz")).send().await.expect("/readyz answers, never hangs");
    let status = ready.status();
    let body = ready.text().await.unwrap();
    assert!(status == 200 || status == 503, "{status}: {body}");
    if status == 503 {
        assert!(body.contains("\"database\":false") && body.contains("\"problems\""), "names the check: {body}");
    }

    // The write ends: nothing was lost, and the service is ready again.
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    system.wait_for("FEEDBACK", "feedback.evt.accepted", 1).await;
    eventually("ready again", WAIT, || async {
        (probe.get(endpoint.http_url("/readyz")).send().await.ok()?.status() == 200).then_some(())
    })
    .await;
    system.stop().await;
}
