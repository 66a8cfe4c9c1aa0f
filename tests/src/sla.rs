//! sla-timer alone on a manual clock: tests publish ticket events as
//! routing would, move time, and read what sla-timer announced on `SLA`.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kesu_bus::subjects::TICKETS;
use kesu_config::Env;
use kesu_domain::ManualClock;
use kesu_domain::time::to_timestamp;
use kesu_proto::v1::sla_service_client::SlaServiceClient;
use kesu_proto::v1::{
    Classification, EventMeta, Priority, SlaEvent, Ticket, TicketCreated, TicketEvent, TicketStatus, ticket_event,
};
use kesu_runtime::RunningService;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Backend, Bearer, Endpoint, Role, TestSystem, WAIT, eventually};

/// 10:00 on Monday 23 November 2026 in Shanghai.
pub fn monday_morning() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap().with_timezone(&Utc)
}

/// sla-timer alone, with its input stream declared.
pub struct SlaUnderTest {
    pub system: TestSystem,
    pub clock: ManualClock,
    pub endpoint: Endpoint,
    running: Option<RunningService>,
    replicas: Vec<RunningService>,
    env: Vec<(String, String)>,
}

impl SlaUnderTest {
    /// Starts sla-timer at `now` on a back end (`None`: no PostgreSQL).
    pub async fn start_on(backend: Backend, now: DateTime<Utc>) -> Option<Self> {
        let system =
            TestSystem::try_start_on(kesu_testkit::NatsProfile::Fast, backend, &[], &[("KESU_TIMER_REFRESH", "50ms")])
                .await?;
        let owners = kesu_bus::Bus::connect(
            &kesu_bus::BusConfig::local(&system.nats.url()),
            "test-owners",
            &kesu_telemetry::MetricsRegistry::with_prefix("test"),
        )
        .await
        .expect("connect as the streams' owner");
        owners.ensure_streams(&[TICKETS]).await.expect("declare TICKETS");
        let env = system.env("sla-timer");
        let mut me = Self {
            system,
            clock: ManualClock::new(now),
            endpoint: Endpoint { grpc: ([127, 0, 0, 1], 0).into(), http: ([127, 0, 0, 1], 0).into() },
            running: None,
            replicas: Vec::new(),
            env,
        };
        me.restart().await;
        Some(me)
    }

    fn instance(&self) -> kesu_sla_timer::Config {
        kesu_sla_timer::Config::from_env(&Env::from_vars("sla-timer", self.env.clone()))
            .expect("sla-timer's test configuration is valid")
    }

    /// (Re)starts the service on the same database and clock.
    pub async fn restart(&mut self) {
        self.halt().await;
        let running = kesu_sla_timer::start(self.instance(), CancellationToken::new(), Arc::new(self.clock.clone()))
            .await
            .expect("sla-timer starts");
        self.endpoint = Endpoint { grpc: running.grpc_addr, http: running.http_addr };
        self.running = Some(running);
    }

    /// Stops the service (the database and streams stay).
    pub async fn halt(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("sla-timer stops cleanly");
        }
    }

    /// A second instance on the same database and consumer.
    pub async fn start_replica(&mut self) {
        let running = kesu_sla_timer::start(self.instance(), CancellationToken::new(), Arc::new(self.clock.clone()))
            .await
            .expect("the replica starts");
        self.replicas.push(running);
    }

    pub async fn stop(mut self) {
        for replica in std::mem::take(&mut self.replicas) {
            replica.stop().await.expect("the replica stops cleanly");
        }
        self.halt().await;
        self.system.stop().await;
    }

    /// Publishes a ticket event as routing would.
    pub async fn ticket_event(&self, event: &TicketEvent) {
        let kind = match &event.kind {
            Some(ticket_event::Kind::Created(_)) => "created",
            Some(ticket_event::Kind::Acknowledged(_)) => "acknowledged",
            Some(ticket_event::Kind::Waiting(_)) => "waiting",
            Some(ticket_event::Kind::Resumed(_)) => "resumed",
            Some(ticket_event::Kind::Resolved(_)) => "resolved",
            Some(ticket_event::Kind::Prioritised(_)) => "prioritised",
            _ => "other",
        };
        let id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("Kesu-Type", "kesu.v1.TicketEvent");
        self.system
            .js
            .publish_with_headers(format!("ticket.evt.{kind}"), headers, event.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("stream ack");
    }

    /// Every SLA event of a kind so far (`warning`, `breached`, …).
    pub async fn events(&self, kind: &str) -> Vec<SlaEvent> {
        self.system.messages("SLA", &format!("sla.evt.{kind}")).await.iter().map(|m| m.decode()).collect()
    }

    /// Waits until there are at least `n` SLA events of a kind.
    pub async fn wait_events(&self, kind: &str, n: usize) -> Vec<SlaEvent> {
        eventually(&format!("{n} sla.evt.{kind}"), WAIT, || async {
            let found = self.events(kind).await;
            (found.len() >= n).then_some(found)
        })
        .await
    }

    /// Waits until sla-timer has applied everything on `TICKETS`.
    pub async fn settled(&self) {
        self.system.wait_until_settled("TICKETS", "sla-timer").await;
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn client(&self, role: Role) -> SlaServiceClient<InterceptedService<Channel, Bearer>> {
        SlaServiceClient::with_interceptor(self.endpoint.channel().await, self.system.bearer(role))
    }
}

/// A ticket as routing announces it when created with a handler.
pub fn created(ticket_id: &str, priority: Priority, received: DateTime<Utc>) -> TicketEvent {
    let ticket = Ticket {
        ticket_id: ticket_id.into(),
        version: 1,
        feedback_number: format!("FB-{ticket_id}"),
        priority: priority as i32,
        classification: Some(Classification { type_code: "repair".into(), ..Default::default() }),
        department: "after_sales".into(),
        handler: "h1".into(),
        status: TicketStatus::Assigned as i32,
        received_at: Some(to_timestamp(received)),
        created_at: Some(to_timestamp(received)),
        updated_at: Some(to_timestamp(received)),
        ..Default::default()
    };
    TicketEvent {
        meta: Some(EventMeta {
            event_id: uuid::Uuid::now_v7().to_string(),
            aggregate_id: ticket_id.into(),
            aggregate_version: 1,
            occurred_at: Some(to_timestamp(received)),
            producer: "routing".into(),
            ..Default::default()
        }),
        ticket: Some(ticket),
        actor: "system".into(),
        kind: Some(ticket_event::Kind::Created(TicketCreated {})),
    }
}

/// The next event of a ticket: its state moved on, at `at`.
pub fn next(previous: &TicketEvent, at: DateTime<Utc>, kind: ticket_event::Kind, status: TicketStatus) -> TicketEvent {
    let mut ticket = previous.ticket.clone().expect("events carry the ticket");
    ticket.version += 1;
    ticket.status = status as i32;
    ticket.updated_at = Some(to_timestamp(at));
    let mut meta = previous.meta.clone().expect("events carry meta");
    meta.event_id = uuid::Uuid::now_v7().to_string();
    meta.aggregate_version = ticket.version;
    meta.occurred_at = Some(to_timestamp(at));
    TicketEvent { meta: Some(meta), ticket: Some(ticket), actor: "h1".into(), kind: Some(kind) }
}
