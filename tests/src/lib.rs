//! `TestSystem`: the five services against a private nats-server, for
//! black-box system tests. Services run in this process (through their
//! library `start`) or, where a test kills them, as real processes.

pub mod feedback;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use kesu_config::Env;
use kesu_domain::SystemClock;
use kesu_proto::v1::{RawFeedback, SubmitFeedbackResponse};
use kesu_runtime::RunningService;
use kesu_testkit::{NatsProfile, NatsServer, TempDatabase};
use prost::Message;
use tokio_util::sync::CancellationToken;

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
            ("KESU_CONSUMER_ACK_WAIT".into(), "3s".into()),
            ("KESU_CONSUMER_RETRY_DELAY".into(), "100ms".into()),
            ("KESU_OUTBOX_POLL".into(), "100ms".into()),
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

    /// Starts a service as its own process (the binary `cargo build --bins` made).
    pub fn spawn_process(&self, service: &str, extra: &[(&str, &str)]) -> Child {
        let binary = binary(&format!("kesu-{service}"));
        let mut cmd = Command::new(&binary);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in self.env(service) {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.env("KESU_LOG_FORMAT", "json").env("KESU_LOG", "warn");
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()))
    }
}

/// A workspace binary next to the test executable (`target/<profile>/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the service binaries first (`cargo build --bins`; `make test` does)",
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
