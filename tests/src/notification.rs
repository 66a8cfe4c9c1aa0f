//! Notification under test on its own: a private nats-server with the
//! streams of the services it listens to (declared as their owners would),
//! notification started in this process on a manual clock, and helpers to
//! publish the events routing, sla-timer, intake and analytics publish, to
//! read what notification asked senders to send, and to call its API.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kesu_bus::subjects::{ANALYTICS, FEEDBACK, SLA, TICKETS};
use kesu_config::Env;
use kesu_domain::time::to_timestamp;
use kesu_domain::{ContactKey, ManualClock};
use kesu_proto::v1::notification_service_client::NotificationServiceClient;
use kesu_proto::v1::{
    ContactKind, ContactPoint, CustomerRef, EventMeta, Feedback, FeedbackAccepted, FeedbackEvent, NotificationEvent,
    NotificationRequest, NotifyChannel, Priority, SlaEvent, Ticket, TicketEvent, feedback_event,
};
use kesu_runtime::RunningService;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Backend, Bearer, Endpoint, Role, StoredMessage, TestSystem, WAIT, eventually};

/// 10:00 in Shanghai on a Tuesday: not quiet hours.
pub fn daytime() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap().with_timezone(&Utc)
}

/// Notification alone, with what it listens to.
pub struct NotificationUnderTest {
    pub system: TestSystem,
    pub clock: ManualClock,
    pub key: ContactKey,
    pub endpoint: Endpoint,
    running: Option<RunningService>,
    replicas: Vec<RunningService>,
    env: Vec<(String, String)>,
}

impl NotificationUnderTest {
    /// Starts notification at `now` with extra settings.
    pub async fn start(now: DateTime<Utc>, env: &[(&str, &str)]) -> Self {
        Self::start_on(Backend::Sqlite, now, env).await.expect("SQLite is always there")
    }

    /// As [`Self::start`] on a back end (`None`: no PostgreSQL reachable).
    pub async fn start_on(backend: Backend, now: DateTime<Utc>, env: &[(&str, &str)]) -> Option<Self> {
        Self::start_full(kesu_testkit::NatsProfile::Fast, backend, now, env).await
    }

    /// As [`Self::start_on`] on a nats-server of the given configuration.
    pub async fn start_full(
        profile: kesu_testkit::NatsProfile,
        backend: Backend,
        now: DateTime<Utc>,
        env: &[(&str, &str)],
    ) -> Option<Self> {
        let mut all = vec![("KESU_TIMER_REFRESH", "100ms")];
        all.extend_from_slice(env);
        let system = TestSystem::try_start_on(profile, backend, &[], &all).await?;
        let owners = kesu_bus::Bus::connect(
            &kesu_bus::BusConfig::local(&system.nats.url()),
            "test-owners",
            &kesu_telemetry::MetricsRegistry::with_prefix("test"),
        )
        .await
        .expect("connect as the streams' owners");
        owners.ensure_streams(&[FEEDBACK, TICKETS, SLA, ANALYTICS]).await.expect("declare the input streams");
        let env = system.env("notification");
        let key = env
            .iter()
            .find(|(k, _)| k == "KESU_CONTACT_KEY")
            .and_then(|(_, v)| ContactKey::from_base64(v).ok())
            .expect("the test system has a contact key");
        let clock = ManualClock::new(now);
        let mut me = Self {
            system,
            clock,
            key,
            endpoint: Endpoint { grpc: ([127, 0, 0, 1], 0).into(), http: ([127, 0, 0, 1], 0).into() },
            running: None,
            replicas: Vec::new(),
            env,
        };
        me.restart().await;
        Some(me)
    }

    /// (Re)starts the service on the same database and clock.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("notification stops cleanly");
        }
        let env = Env::from_vars("notification", self.env.clone());
        let config = kesu_notification::Config::from_env(&env).expect("notification's test configuration is valid");
        let running = kesu_notification::start(config, CancellationToken::new(), Arc::new(self.clock.clone()))
            .await
            .expect("notification starts");
        self.endpoint = Endpoint { grpc: running.grpc_addr, http: running.http_addr };
        self.running = Some(running);
    }

    /// Starts a second instance on the same database and consumers (a
    /// replica); it runs until [`Self::stop`].
    pub async fn start_replica(&mut self) {
        let env = Env::from_vars("notification", self.env.clone());
        let config = kesu_notification::Config::from_env(&env).expect("notification's test configuration is valid");
        let running = kesu_notification::start(config, CancellationToken::new(), Arc::new(self.clock.clone()))
            .await
            .expect("the replica starts");
        self.replicas.push(running);
    }

    /// The environment notification runs with (to start `kesu senders` alike).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    pub async fn stop(mut self) {
        for replica in std::mem::take(&mut self.replicas) {
            replica.stop().await.expect("the replica stops cleanly");
        }
        if let Some(running) = self.running.take() {
            running.stop().await.expect("notification stops cleanly");
        }
        self.system.stop().await;
    }

    /// Publishes an event as its producer would (Nats-Msg-Id = its event id).
    pub async fn publish<M: Message>(&self, subject: &str, type_name: &str, event_id: &str, message: &M) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        headers.insert("Kesu-Type", type_name);
        self.system
            .js
            .publish_with_headers(subject.to_string(), headers, message.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("stream ack");
    }

    pub async fn feedback_event(&self, kind: &str, event: &FeedbackEvent) {
        let id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
        self.publish(&format!("feedback.evt.{kind}"), "kesu.v1.FeedbackEvent", &id, event).await;
    }

    pub async fn ticket_event(&self, kind: &str, event: &TicketEvent) {
        let id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
        self.publish(&format!("ticket.evt.{kind}"), "kesu.v1.TicketEvent", &id, event).await;
    }

    pub async fn sla_event(&self, kind: &str, event: &SlaEvent) {
        let id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
        self.publish(&format!("sla.evt.{kind}"), "kesu.v1.SlaEvent", &id, event).await;
    }

    /// Every request for senders so far.
    pub async fn requests(&self) -> Vec<NotificationRequest> {
        self.system.messages("NOTIFY_REQUESTS", "notify.req.").await.iter().map(StoredMessage::decode).collect()
    }

    /// Waits until at least `n` requests satisfy `pick`, and returns them.
    pub async fn wait_requests(
        &self,
        what: &str,
        n: usize,
        pick: impl Fn(&NotificationRequest) -> bool,
    ) -> Vec<NotificationRequest> {
        eventually(what, WAIT, || async {
            let found: Vec<_> = self.requests().await.into_iter().filter(|r| pick(r)).collect();
            (found.len() >= n).then_some(found)
        })
        .await
    }

    /// Every notification event of a kind ("requested", "sent", …).
    pub async fn events(&self, kind: &str) -> Vec<NotificationEvent> {
        self.system
            .messages("NOTIFICATIONS", &format!("notify.evt.{kind}"))
            .await
            .iter()
            .map(StoredMessage::decode)
            .collect()
    }

    pub async fn wait_events(&self, kind: &str, n: usize) -> Vec<NotificationEvent> {
        eventually(&format!("{n} notify.evt.{kind}"), WAIT, || async {
            let found = self.events(kind).await;
            (found.len() >= n).then_some(found)
        })
        .await
    }

    /// Waits until notification has handled everything on `stream`.
    pub async fn settled(&self, stream: &str) {
        self.system.wait_until_settled(stream, "notification").await;
    }

    /// Moves the clock (durable timers see it within TIMER_REFRESH).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        self.clock.set(at);
    }

    pub async fn client(&self, role: Role) -> NotificationServiceClient<InterceptedService<Channel, Bearer>> {
        NotificationServiceClient::with_interceptor(self.endpoint.channel().await, self.system.bearer(role))
    }

    /// A customer with the given contacts, sealed as intake seals them.
    pub fn customer(&self, phone: Option<&str>, email: Option<&str>, preferred: NotifyChannel) -> CustomerRef {
        let mut contacts = Vec::new();
        if let Some(phone) = phone {
            let reachable = kesu_domain::PhoneNumber::parse(phone).is_ok_and(|p| p.can_receive_sms());
            contacts.push(ContactPoint {
                kind: ContactKind::Phone as i32,
                masked: kesu_domain::mask::mask_digits(phone),
                sealed: self.key.seal(phone),
                reachable,
            });
        }
        if let Some(email) = email {
            contacts.push(ContactPoint {
                kind: ContactKind::Email as i32,
                masked: "c***@example.com".into(),
                sealed: self.key.seal(email),
                reachable: true,
            });
        }
        CustomerRef {
            customer_key: "k1".into(),
            masked_name: "张*".into(),
            sealed_name: self.key.seal("张三"),
            contacts,
            preferred_channel: preferred as i32,
            ..Default::default()
        }
    }
}

/// A fresh event envelope.
pub fn meta(aggregate: &str, version: u64) -> Option<EventMeta> {
    Some(EventMeta {
        event_id: uuid::Uuid::now_v7().to_string(),
        aggregate_id: aggregate.into(),
        aggregate_version: version,
        occurred_at: Some(to_timestamp(Utc::now())),
        correlation_id: format!("web:{aggregate}"),
        ..Default::default()
    })
}

/// `feedback.evt.accepted` for a customer.
pub fn accepted(number: &str, customer: CustomerRef, locale: &str, urgency: Priority) -> FeedbackEvent {
    let feedback = Feedback {
        feedback_id: format!("F-{number}"),
        feedback_number: number.into(),
        title: "扫地机器人开机无反应".into(),
        locale: locale.into(),
        time_zone: "Asia/Shanghai".into(),
        customer: Some(customer),
        urgency: urgency as i32,
        ..Default::default()
    };
    FeedbackEvent {
        meta: meta(&feedback.feedback_id, 1),
        feedback_number: number.into(),
        feedback_id: feedback.feedback_id.clone(),
        kind: Some(feedback_event::Kind::Accepted(FeedbackAccepted { feedback: Some(feedback) })),
        ..Default::default()
    }
}

/// A ticket of the after-sales department handled by s-as-01.
pub fn ticket(id: &str, version: u64, customer: CustomerRef) -> Ticket {
    Ticket {
        ticket_id: id.into(),
        version,
        feedback_id: format!("F-{id}"),
        feedback_number: format!("FB2026112400{}", &id[id.len().saturating_sub(2)..]),
        priority: Priority::High as i32,
        department: "after_sales".into(),
        handler: "s-as-01".into(),
        co_handlers: vec!["s-as-02".into()],
        customer: Some(customer),
        locale: "zh-CN".into(),
        time_zone: "Asia/Shanghai".into(),
        title: "扫地机器人开机无反应".into(),
        ..Default::default()
    }
}

/// A ticket event of a kind with the ticket after it.
pub fn ticket_event(ticket: &Ticket, kind: kesu_proto::v1::ticket_event::Kind) -> TicketEvent {
    TicketEvent {
        meta: meta(&ticket.ticket_id, ticket.version),
        ticket: Some(ticket.clone()),
        actor: "system".into(),
        kind: Some(kind),
    }
}

/// The SMTP server of the tests (`tests/python/smtp_sink.py`, aiosmtpd),
/// as a process; `None` (skipped loudly) without the Python environment.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// One message the SMTP server received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub raw: String,
    pub rcpt_tos: Vec<String>,
    pub authenticated: bool,
}

impl SmtpSink {
    pub fn start(port: u16, auth: Option<(&str, &str)>) -> Option<Self> {
        Self::start_with(port, auth, false)
    }

    /// With `starttls`: STARTTLS required, its CA's PEM at [`Self::ca_file`].
    pub fn start_with(port: u16, auth: Option<(&str, &str)>, starttls: bool) -> Option<Self> {
        let python = kesu_testkit::python()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let script: PathBuf = kesu_testkit::workspace_root().join("tests/python/smtp_sink.py");
        let mut cmd = Command::new(python);
        cmd.arg(script).arg("--port").arg(port.to_string()).arg("--outdir").arg(dir.path());
        if let Some((user, password)) = auth {
            cmd.arg("--user").arg(user).arg("--password").arg(password);
        }
        if starttls {
            cmd.arg("--starttls");
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start the SMTP test server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("the SMTP server says ready");
        assert_eq!(line.trim(), "ready", "the SMTP test server did not start");
        Some(Self { child, port, dir })
    }

    /// The CA certificate of a STARTTLS server.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .filter_map(|json| {
                let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).ok()?).ok()?;
                let raw = std::fs::read_to_string(json.with_extension("eml")).ok()?;
                Some(ReceivedMail {
                    raw,
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()?
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    authenticated: meta["authenticated"].as_bool().unwrap_or(false),
                })
            })
            .collect()
    }

    pub async fn wait_received(&self, n: usize) -> Vec<ReceivedMail> {
        eventually(&format!("{n} mail(s) at the SMTP server"), WAIT, || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        crate::kill_9(&mut self.child);
    }
}

/// Polls until `f` is true (for things that must stay so, check after settling).
pub async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
