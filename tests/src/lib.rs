//! `TestSystem`: the five services against a private nats-server, for
//! black-box system tests. Services run in this process (through their
//! library `start`) or, where a test kills them or runs the binary, as real
//! `kesu` processes.

pub mod analytics;
pub mod browser;
pub mod feedback;
pub mod intake;
pub mod journey;
pub mod lifecycle;
pub mod notification;
pub mod routing;
pub mod sla;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use kesu_auth::{Signer, Staff};
use kesu_config::Env;
use kesu_domain::SystemClock;
use kesu_proto::v1::{RawFeedback, SubmitFeedbackResponse};
use kesu_runtime::RunningService;
use kesu_storage::sqlx::{AnyConnection, Connection};
use kesu_testkit::{NatsProfile, NatsServer, TempDatabase, free_port};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::service::Interceptor;
use tonic::transport::Channel;

pub use kesu_auth::Role;
pub use kesu_testkit::eventually;

/// How long system tests wait for something to happen before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// The services, in pipeline order.
pub const SERVICES: [&str; 5] = ["intake", "routing", "sla-timer", "notification", "analytics"];

/// Which database back end the services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A started service's addresses.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub grpc: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
}

impl Endpoint {
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// A connected channel to this endpoint's gRPC API.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.grpc_url())
            .expect("a valid URL")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.grpc_url()))
    }
}

/// The staff a test token for `role` names.
pub fn test_staff(role: Role) -> Staff {
    Staff::new(format!("s-test-{role}"), role, "after_sales")
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().expect("a JWT is ASCII"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A message read back from a stream.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub subject: String,
    pub payload: bytes::Bytes,
    pub headers: async_nats::HeaderMap,
}

impl StoredMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }

    pub fn decode<M: Message + Default>(&self) -> M {
        M::decode(self.payload.as_ref()).expect("the stream holds valid protobuf")
    }
}

pub struct TestSystem {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    dir: tempfile::TempDir,
    contact_key: String,
    jwt_secret: String,
    databases: BTreeMap<String, TempDatabase>,
    running: BTreeMap<String, RunningService>,
    endpoints: BTreeMap<String, Endpoint>,
    extra_env: Vec<(String, String)>,
}

impl TestSystem {
    /// All five services on SQLite.
    pub async fn start() -> Self {
        Self::start_with(Backend::Sqlite, &SERVICES, &[]).await
    }

    /// The given services in this process, on the given back end (with
    /// PostgreSQL, `None` when no server is reachable), with extra env vars.
    pub async fn try_start_with(backend: Backend, services: &[&str], env: &[(&str, &str)]) -> Option<Self> {
        Self::try_start_on(NatsProfile::Fast, backend, services, env).await
    }

    /// As [`Self::try_start_with`], on a nats-server with the given
    /// configuration (durability tests and the benchmark use
    /// [`NatsProfile::Durable`]).
    pub async fn try_start_on(
        profile: NatsProfile,
        backend: Backend,
        services: &[&str],
        env: &[(&str, &str)],
    ) -> Option<Self> {
        kesu_telemetry::init_for_tests();
        let nats = NatsServer::start_with(profile).await.expect("nats-server starts");
        let client = async_nats::connect(nats.url()).await.expect("connect to the test nats-server");
        let js = jetstream::new(client.clone());
        let dir = tempfile::Builder::new().prefix("kesu-system-").tempdir().expect("temp dir");
        let mut databases = BTreeMap::new();
        for service in SERVICES {
            let db = match backend {
                Backend::Sqlite => TempDatabase::sqlite(),
                Backend::Postgres => TempDatabase::postgres().await?,
            };
            databases.insert(service.to_string(), db);
        }
        let mut system = Self {
            nats,
            client,
            js,
            dir,
            contact_key: kesu_domain::ContactKey::generate_base64(),
            jwt_secret: kesu_domain::ContactKey::generate_base64(),
            databases,
            running: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        for service in services {
            system.start_service(service).await;
        }
        Some(system)
    }

    pub async fn start_with(backend: Backend, services: &[&str], env: &[(&str, &str)]) -> Self {
        Self::try_start_with(backend, services, env).await.expect("the back end is reachable")
    }

    /// The environment a service is configured with (also for processes).
    pub fn env(&self, service: &str) -> Vec<(String, String)> {
        let prefix = format!("KESU_{}_", service.to_ascii_uppercase().replace('-', "_"));
        let mut vars = vec![
            ("KESU_NATS_URL".to_string(), self.nats.url()),
            ("KESU_DATA_DIR".into(), self.dir.path().display().to_string()),
            ("KESU_CONTACT_KEY".into(), self.contact_key.clone()),
            ("KESU_AUTH_JWT_SECRET".into(), self.jwt_secret.clone()),
            ("KESU_CONSUMER_ACK_WAIT".into(), "3s".into()),
            ("KESU_CONSUMER_RETRY_DELAY".into(), "100ms".into()),
            ("KESU_OUTBOX_POLL".into(), "100ms".into()),
            // Tests send the same realistic feedback for many external ids;
            // same-customer-same-text merging is tested on its own
            // (tests/tests/intake_duplicates.rs sets a window).
            ("KESU_INTAKE_DEDUP_WINDOW".into(), "0s".into()),
            (format!("{prefix}DATABASE_URL"), self.databases[service].url().to_string()),
            (format!("{prefix}GRPC_ADDR"), "127.0.0.1:0".into()),
            (format!("{prefix}HTTP_ADDR"), "127.0.0.1:0".into()),
        ];
        for (k, v) in &self.extra_env {
            vars.retain(|(key, _)| key != k);
            vars.push((k.clone(), v.clone()));
        }
        vars
    }

    /// Starts one more instance of a service in this process (a replica
    /// when one runs already); its endpoint replaces the earlier one.
    pub async fn start_service(&mut self, service: &str) -> Endpoint {
        let env = Env::from_vars(service, self.env(service));
        let shutdown = CancellationToken::new();
        let clock = Arc::new(SystemClock);
        let running = match service {
            "intake" => kesu_intake::start(kesu_intake::Config::from_env(&env).unwrap(), shutdown, clock).await,
            "routing" => kesu_routing::start(kesu_routing::Config::from_env(&env).unwrap(), shutdown, clock).await,
            "sla-timer" => {
                kesu_sla_timer::start(kesu_sla_timer::Config::from_env(&env).unwrap(), shutdown, clock).await
            }
            "notification" => {
                kesu_notification::start(kesu_notification::Config::from_env(&env).unwrap(), shutdown, clock).await
            }
            "analytics" => kesu_analytics::start(kesu_analytics::Config::from_env(&env).unwrap(), shutdown).await,
            other => panic!("no service {other}"),
        }
        .unwrap_or_else(|e| panic!("{service} starts: {e}"));
        let endpoint = Endpoint { grpc: running.grpc_addr, http: running.http_addr };
        let mut name = service.to_string();
        while self.running.contains_key(&name) {
            name.push('+');
        }
        self.running.insert(name, running);
        self.endpoints.insert(service.to_string(), endpoint);
        endpoint
    }

    /// The database URL a service was configured with (to inspect or break it).
    pub fn database_url(&self, service: &str) -> &str {
        self.databases[service].url()
    }

    /// The deployment's contact key (e.g. to compute a survey's rating token).
    pub fn contact_key(&self) -> kesu_domain::ContactKey {
        kesu_domain::ContactKey::from_base64(&self.contact_key).expect("the test contact key is valid")
    }

    /// Signs tokens the services accept (the shared HS256 secret).
    pub fn signer(&self) -> Signer {
        Signer::hs256(self.jwt_secret.as_bytes(), kesu_auth::DEFAULT_ISSUER, kesu_auth::DEFAULT_AUDIENCE)
    }

    /// A valid token for a test staff member with `role` (department after_sales).
    pub fn token(&self, role: Role) -> String {
        self.token_for(&test_staff(role))
    }

    pub fn token_for(&self, staff: &Staff) -> String {
        self.signer().mint(staff, Duration::from_secs(3600)).expect("the test secret signs")
    }

    /// An interceptor that sends a valid token for `role`:
    /// `TicketServiceClient::with_interceptor(system.channel("routing").await, system.bearer(Role::Agent))`.
    pub fn bearer(&self, role: Role) -> Bearer {
        Bearer::new(&self.token(role))
    }

    /// A connected channel to a service's gRPC API.
    pub async fn channel(&self, service: &str) -> Channel {
        self.endpoint(service).channel().await
    }

    /// A service's database as the service opened it (`migrations`: the
    /// service's own, e.g. `kesu_intake::MIGRATIONS`), to check what it stored.
    pub async fn database(&self, service: &str, migrations: kesu_storage::Migrations) -> kesu_storage::Database {
        let url = self.databases[service].url();
        kesu_storage::Database::open(
            url,
            2,
            &[kesu_bus::MIGRATIONS, kesu_auth::MIGRATIONS, kesu_timers::MIGRATIONS, migrations],
        )
        .await
        .unwrap_or_else(|e| panic!("open the {service} database: {e}"))
    }

    pub fn endpoint(&self, service: &str) -> Endpoint {
        *self.endpoints.get(service).unwrap_or_else(|| panic!("{service} is not running in this test"))
    }

    /// The endpoints of every in-process instance of a service.
    pub fn instances(&self, service: &str) -> Vec<String> {
        self.running.keys().filter(|k| k.trim_end_matches('+') == service).cloned().collect()
    }

    /// Stops every in-process service gracefully.
    pub async fn stop(mut self) {
        let running = std::mem::take(&mut self.running);
        for (_, service) in running.iter() {
            service.shutdown();
        }
        for (name, service) in running {
            service.wait().await.unwrap_or_else(|e| panic!("{name} stops cleanly: {e}"));
        }
    }

    /// Publishes a raw feedback to JetStream, as a fire-and-forget adapter.
    pub async fn publish_raw(&self, channel: &str, raw: &RawFeedback, traceparent: Option<&str>) {
        self.publish_bytes(&format!("feedback.raw.{channel}"), raw.encode_to_vec(), traceparent).await;
    }

    pub async fn publish_bytes(&self, subject: &str, payload: Vec<u8>, traceparent: Option<&str>) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
        headers.insert("Kesu-Type", "kesu.v1.RawFeedback");
        if let Some(tp) = traceparent {
            headers.insert("traceparent", tp);
        }
        self.js
            .publish_with_headers(subject.to_string(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("stream ack");
    }

    /// Request/reply submit, as an adapter that must answer its customer.
    pub async fn submit(&self, channel: &str, raw: &RawFeedback) -> SubmitFeedbackResponse {
        let reply = self
            .client
            .request(format!("feedback.submit.{channel}"), raw.encode_to_vec().into())
            .await
            .expect("intake answers the submit");
        SubmitFeedbackResponse::decode(reply.payload.as_ref()).expect("the reply is a SubmitFeedbackResponse")
    }

    /// Every message of a stream (optionally only subjects starting with `prefix`).
    pub async fn messages(&self, stream: &str, prefix: &str) -> Vec<StoredMessage> {
        let Ok(mut s) = self.js.get_stream(stream).await else { return Vec::new() };
        let last = s.info().await.expect("stream info").state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            let Ok(m) = s.get_raw_message(seq).await else { continue };
            if m.subject.starts_with(prefix) {
                out.push(StoredMessage { subject: m.subject.to_string(), payload: m.payload, headers: m.headers });
            }
        }
        out
    }

    /// Waits until a stream holds at least `n` messages with the prefix.
    pub async fn wait_for(&self, stream: &str, prefix: &str, n: usize) -> Vec<StoredMessage> {
        eventually(&format!("{n} message(s) {prefix}* in {stream}"), WAIT, || async {
            let found = self.messages(stream, prefix).await;
            (found.len() >= n).then_some(found)
        })
        .await
    }

    /// Waits until `service`'s durable consumer on `stream` has handled
    /// every message (none pending, none awaiting acknowledgement) and the
    /// service's outbox has gone out: the positive signal to wait for before
    /// asserting that something did *not* happen (no second ticket, no
    /// feedback accepted twice).
    pub async fn wait_until_settled(&self, stream: &str, service: &str) {
        let s = self.js.get_stream(stream).await.expect("the stream exists");
        eventually(&format!("{service} done with {stream}"), WAIT, || async {
            let info = s.consumer_info(service).await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        })
        .await;
        kesu_storage::sqlx::any::install_default_drivers();
        let url = self.database_url(service);
        eventually(&format!("{service}'s outbox sent"), WAIT, || async {
            let mut conn = <AnyConnection as Connection>::connect(url).await.ok()?;
            let left: i64 =
                kesu_storage::sqlx::query_scalar("SELECT COUNT(*) FROM kesu_outbox").fetch_one(&mut conn).await.ok()?;
            let _ = conn.close().await;
            (left == 0).then_some(())
        })
        .await;
    }

    /// Starts a service as its own process (`kesu <service>`).
    pub fn spawn_process(&self, service: &str, extra: &[(&str, &str)]) -> Child {
        self.kesu(service, self.env(service), extra)
    }

    /// Starts all five services as one `kesu all` process, each on free
    /// ports with its own database, and waits until every one is ready;
    /// their endpoints replace earlier ones.
    pub async fn spawn_all(&mut self, extra: &[(&str, &str)]) -> KesuProcess {
        let mut vars = BTreeMap::new();
        for service in SERVICES {
            let prefix = format!("KESU_{}_", service.to_ascii_uppercase().replace('-', "_"));
            let endpoint =
                Endpoint { grpc: ([127, 0, 0, 1], free_port()).into(), http: ([127, 0, 0, 1], free_port()).into() };
            vars.extend(self.env(service));
            vars.insert(format!("{prefix}GRPC_ADDR"), endpoint.grpc.to_string());
            vars.insert(format!("{prefix}HTTP_ADDR"), endpoint.http.to_string());
            self.endpoints.insert(service.to_string(), endpoint);
        }
        let mut process = KesuProcess { child: self.kesu("all", vars, extra) };
        let urls: Vec<String> = SERVICES.iter().map(|s| self.endpoint(s).http_url("/readyz")).collect();
        eventually("every service of `kesu all` ready", WAIT, || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("`kesu all` exited before it was ready: {status}");
            }
            let urls = urls.clone();
            async move {
                for url in urls {
                    let ready = reqwest::get(&url).await.map(|r| r.status().is_success()).unwrap_or(false);
                    if !ready {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
        process
    }

    /// `kesu <target>` with only the given environment (and PATH).
    fn kesu(&self, target: &str, env: impl IntoIterator<Item = (String, String)>, extra: &[(&str, &str)]) -> Child {
        let mut cmd = kesu_command(target);
        cmd.envs(env);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.env("KESU_LOG_FORMAT", "json").env("KESU_LOG", "warn");
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        cmd.spawn().unwrap_or_else(|e| panic!("starting kesu {target}: {e}"))
    }
}

/// A `kesu` process, killed if the test ends (or fails) without stopping it.
pub struct KesuProcess {
    child: Child,
}

impl KesuProcess {
    /// Owns a `kesu` process started by hand (`kesu_command`), so it is
    /// killed when the test ends.
    pub fn from_child(child: Child) -> Self {
        Self { child }
    }

    /// Sends SIGTERM and waits for the process to exit, leaving this
    /// test's runtime free meanwhile (so that its dropped gRPC clients
    /// close their connections, as a real client's would).
    pub async fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill(2) on a pid we own; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for kesu") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for KesuProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_9(&mut self.child);
        }
    }
}

/// `kesu <target>` with an empty environment but for PATH.
pub fn kesu_command(target: &str) -> Command {
    let mut cmd = Command::new(binary("kesu"));
    cmd.arg(target).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// A workspace binary next to the test executable (`target/<profile>/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binary first (`cargo build -p kesu`; `make test` does)",
        path.display()
    );
    path
}

/// Sends SIGKILL, as a crash or an OOM kill would.
pub fn kill_9(child: &mut Child) {
    // SAFETY: kill(2) on a pid we own; no memory is touched.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Sends SIGTERM and waits for the process to exit.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on a pid we own; no memory is touched.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().expect("wait for the child")
}
