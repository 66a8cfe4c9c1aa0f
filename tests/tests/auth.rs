//! Staff tokens and roles, seen from a caller: every RPC of every service
//! (enumerated from the contract, not listed by hand) refuses a call with no
//! token, an expired token, a token signed with another key and a token
//! whose role its table does not allow, and lets an allowed role through;
//! health and reflection answer without a token; audited calls leave a row
//! with the acting staff id.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use kesu_auth::{Claims, RoleTable, Signer, now_secs};
use kesu_system_tests::{Backend, Role, SERVICES, TestSystem, test_staff};
use prost_reflect::{DescriptorPool, MethodDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Sends and receives payloads as they are, so no request type is needed.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Calls `path` with one `payload` message (streaming or not, the wire is the
/// same) and returns the first answer or the status.
async fn call_raw(channel: Channel, path: &str, token: Option<&str>, payload: Bytes) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(futures::stream::iter(vec![payload]));
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path: http::uri::PathAndQuery = path.parse().unwrap();
    let mut answers = grpc.streaming(request, path, RawCodec).await?.into_inner();
    Ok(answers.message().await?.unwrap_or_default())
}

async fn call(channel: &Channel, method: &MethodDescriptor, token: Option<&str>) -> Result<Bytes, Status> {
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    call_raw(channel.clone(), &path, token, Bytes::new()).await
}

/// The service process and role table that serve a proto service.
fn served_by(service: &str) -> (&'static str, &'static RoleTable) {
    match service {
        "kesu.v1.IntakeService" => ("intake", &kesu_intake::roles::TABLE),
        "kesu.v1.TicketService" => ("routing", &kesu_routing::roles::TABLE),
        "kesu.v1.SlaService" => ("sla-timer", &kesu_sla_timer::roles::TABLE),
        "kesu.v1.NotificationService" => ("notification", &kesu_notification::roles::TABLE),
        // The built-in senders' status: notification serves it too (for the senders it runs).
        "kesu.v1.SenderService" => ("notification", &kesu_notification::roles::SENDER_TABLE),
        "kesu.v1.AnalyticsService" => ("analytics", &kesu_analytics::roles::TABLE),
        other => panic!("{other} is in the contract but no test knows which service serves it"),
    }
}

fn contract_methods() -> Vec<MethodDescriptor> {
    let pool = DescriptorPool::decode(kesu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods: Vec<MethodDescriptor> = pool
        .services()
        .filter(|s| s.package_name() == "kesu.v1")
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect();
    assert!(methods.len() > 30, "the contract has its services: {}", methods.len());
    methods
}

#[tokio::test]
async fn every_rpc_of_every_service_refuses_callers_without_a_valid_token_and_role() {
    let system = TestSystem::start().await;
    let now = now_secs();
    let mut expired = Claims::new(&test_staff(Role::Admin), "kesu", "kesu", Duration::from_secs(60));
    (expired.iat, expired.nbf, expired.exp) = (now - 7200, now - 7200, now - 3600);
    let expired = system.signer().mint_claims(&expired).unwrap();
    let foreign = Signer::hs256(b"not-the-services-secret-but-long-enough", "kesu", "kesu")
        .mint(&test_staff(Role::Admin), Duration::from_secs(3600))
        .unwrap();
    let mut channels = std::collections::BTreeMap::new();
    for service in SERVICES {
        channels.insert(service, system.channel(service).await);
    }

    for method in contract_methods() {
        let rpc_name = format!("{}/{}", method.parent_service().full_name(), method.name());
        let (service, table) = served_by(method.parent_service().full_name());
        let channel = &channels[service];
        let rpc = table.rpc(method.name()).unwrap_or_else(|| panic!("{rpc_name} is in the role table"));

        for (what, token) in [("no token", None), ("an expired token", Some(&expired)), ("another key", Some(&foreign))]
        {
            let status = call(channel, &method, token.map(String::as_str)).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{rpc_name} with {what}: {status:?}");
        }
        let status = call(channel, &method, Some("not-a-jwt")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc_name} with garbage: {status:?}");

        let refused = Role::ALL.into_iter().find(|r| !rpc.allows(*r)).expect("no RPC is open to every role");
        let status = call(channel, &method, Some(&system.token(refused))).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc_name} as {refused}: {status:?}");
        assert!(status.message().contains(&rpc.roles_text()), "{rpc_name}: {:?} names the roles", status.message());

        let allowed = rpc.roles[0];
        if let Err(status) = call(channel, &method, Some(&system.token(allowed))).await {
            assert!(
                !matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied),
                "{rpc_name} as {allowed} gets past auth: {status:?}"
            );
        }
    }
    system.stop().await;
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_token() {
    let system = TestSystem::start().await;
    for service in SERVICES {
        let channel = system.channel(service).await;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let answer = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await;
        assert!(answer.is_ok(), "{service} health: {answer:?}");
        // ServerReflectionRequest { list_services: "" } is field 7, empty.
        let listed = call_raw(
            channel,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            None,
            Bytes::from_static(&[0x3a, 0x00]),
        )
        .await
        .unwrap_or_else(|e| panic!("{service} reflection: {e:?}"));
        assert!(listed.windows(7).any(|w| w == b"kesu.v1"), "{service} lists its services");
    }
    system.stop().await;
}

#[tokio::test]
async fn clear_text_reads_and_staff_actions_are_audited_with_the_staff_id_on_sqlite() {
    audited(Backend::Sqlite).await;
}

#[tokio::test]
async fn clear_text_reads_and_staff_actions_are_audited_with_the_staff_id_on_postgres() {
    audited(Backend::Postgres).await;
}

async fn audited(backend: Backend) {
    let Some(system) = TestSystem::try_start_with(backend, &["intake", "routing"], &[]).await else {
        eprintln!("PostgreSQL is not reachable: skipped");
        return;
    };

    // An analyst never sees originals in clear.
    let intake = system.channel("intake").await;
    let list_rejected = "/kesu.v1.IntakeService/ListRejected";
    let denied = call_raw(intake.clone(), list_rejected, Some(&system.token(Role::Analyst)), Bytes::new()).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    call_raw(intake, list_rejected, Some(&system.token(Role::Agent)), Bytes::new()).await.unwrap();

    let db = system.database("intake", kesu_intake::MIGRATIONS).await;
    let rows = kesu_auth::audit::recent(&db, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].staff_id.as_str(), rows[0].role.as_str(), rows[0].action.as_str(), rows[0].kind.as_str()),
        ("s-test-agent", "agent", "kesu.v1.IntakeService/ListRejected", "clear_read")
    );
    assert_eq!(rows[0].outcome, "OK");

    // A staff action names the ticket it acts on. AcknowledgeRequest {
    // ticket: TicketRef { ticket_id: "T-42" } } encoded by hand.
    let acknowledge = Bytes::from_static(&[0x0a, 0x06, 0x0a, 0x04, b'T', b'-', b'4', b'2']);
    let token = system.token(Role::Handler);
    let routing = system.channel("routing").await;
    let _ = call_raw(routing, "/kesu.v1.TicketService/Acknowledge", Some(&token), acknowledge).await;
    let db = system.database("routing", kesu_routing::MIGRATIONS).await;
    let rows = kesu_auth::audit::recent(&db, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].staff_id.as_str(), rows[0].action.as_str(), rows[0].subject_id.as_str()),
        ("s-test-handler", "kesu.v1.TicketService/Acknowledge", "T-42")
    );
    assert_ne!(rows[0].outcome, "pending");
    system.stop().await;
}
