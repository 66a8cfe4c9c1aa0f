//! Analytics under test on its own: a private nats-server with the streams
//! it reads (declared as their owners would), analytics started in this
//! process, helpers to publish the events intake, routing, sla-timer and
//! notification publish, and to call its gRPC and HTTP APIs. Plus a fixed
//! event set ([`Fixture`]) whose figures are computed by hand.

use chrono::{DateTime, TimeZone, Utc};
use kesu_bus::subjects::{FEEDBACK, NOTIFICATIONS, SLA, TICKETS};
use kesu_domain::time::to_timestamp;
use kesu_proto::v1::analytics_service_client::AnalyticsServiceClient;
use kesu_proto::v1::{
    Channel as FeedbackChannel, Classification, CustomerRef, EventMeta, LinkedToCommonIssue, Priority, Satisfaction,
    SlaArmed, SlaBreached, SlaClock, SlaClockKind, SlaEvent, SlaMet, SlaWarning, Ticket, TicketAcknowledged,
    TicketClassified, TicketCreated, TicketEvent, TicketRated, TicketReopened, TicketResolved, TicketStatus, sla_event,
    ticket_event,
};
use prost::Message;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Backend, Bearer, Role, TestSystem};

/// A local (Shanghai) time as UTC.
pub fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().with_timezone(&Utc)
}

/// Analytics alone, with the streams it reads.
pub struct AnalyticsUnderTest {
    pub system: TestSystem,
}

impl AnalyticsUnderTest {
    pub async fn start(backend: Backend, env: &[(&str, &str)]) -> Option<Self> {
        let mut system = TestSystem::try_start_with(backend, &[], env).await?;
        let owners = kesu_bus::Bus::connect(
            &kesu_bus::BusConfig::local(&system.nats.url()),
            "test-owners",
            &kesu_telemetry::MetricsRegistry::with_prefix("test"),
        )
        .await
        .expect("connect as the streams' owners");
        owners.ensure_streams(&[FEEDBACK, TICKETS, SLA, NOTIFICATIONS]).await.expect("declare the input streams");
        system.start_service("analytics").await;
        Some(Self { system })
    }

    /// Publishes an event as its producer would, with `msg_id` as Nats-Msg-Id
    /// (a re-publication under a new id is what the inbox cannot recognise).
    pub async fn publish<M: Message>(&self, subject: &str, type_name: &str, msg_id: &str, message: &M) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        headers.insert("Kesu-Type", type_name);
        self.system
            .js
            .publish_with_headers(subject.to_string(), headers, message.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("stream ack");
    }

    pub async fn ticket_event(&self, kind: &str, msg_id: &str, event: &TicketEvent) {
        self.publish(&format!("ticket.evt.{kind}"), "kesu.v1.TicketEvent", msg_id, event).await;
    }

    pub async fn sla_event(&self, kind: &str, msg_id: &str, event: &SlaEvent) {
        self.publish(&format!("sla.evt.{kind}"), "kesu.v1.SlaEvent", msg_id, event).await;
    }

    /// Waits until analytics has applied everything published.
    pub async fn settled(&self) {
        for stream in ["TICKETS", "SLA"] {
            self.system.wait_until_settled(stream, "analytics").await;
        }
    }

    pub async fn client(&self, role: Role) -> AnalyticsServiceClient<InterceptedService<Channel, Bearer>> {
        AnalyticsServiceClient::with_interceptor(self.system.channel("analytics").await, self.system.bearer(role))
    }

    /// GET on analytics' HTTP port with a token; status and body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let url = self.system.endpoint("analytics").http_url(path);
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.expect("analytics answers on HTTP");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    /// GET of a JSON table: its rows.
    pub async fn table(&self, path: &str, role: Role) -> Vec<serde_json::Value> {
        let (status, body) = self.get(path, Some(&self.system.token(role))).await;
        assert_eq!(status, 200, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        json["rows"].as_array().expect("rows").clone()
    }

    pub async fn stop(self) {
        self.system.stop().await;
    }
}

/// One ticket of the fixture: its attributes and lifecycle times.
#[derive(Debug, Clone)]
pub struct FixtureTicket {
    pub id: &'static str,
    pub received: DateTime<Utc>,
    pub channel: FeedbackChannel,
    pub type_code: &'static str,
    pub cause_code: &'static str,
    pub department: &'static str,
    pub priority: Priority,
    pub region: &'static str,
    pub tier: &'static str,
    pub customer: &'static str,
}

impl FixtureTicket {
    /// The ticket's state at `version`.
    pub fn state(&self, version: u64, status: TicketStatus) -> Ticket {
        Ticket {
            ticket_id: self.id.into(),
            version,
            channel: self.channel as i32,
            status: status as i32,
            priority: self.priority as i32,
            classification: Some(Classification {
                type_code: self.type_code.into(),
                cause_code: self.cause_code.into(),
                ..Default::default()
            }),
            department: self.department.into(),
            region: self.region.into(),
            customer: Some(CustomerRef {
                customer_key: self.customer.into(),
                tier: self.tier.into(),
                masked_name: "张*".into(),
                ..Default::default()
            }),
            received_at: Some(to_timestamp(self.received)),
            created_at: Some(to_timestamp(self.received)),
            ..Default::default()
        }
    }
}

pub fn event(t: Ticket, at: DateTime<Utc>, kind: ticket_event::Kind) -> TicketEvent {
    TicketEvent {
        meta: Some(EventMeta {
            event_id: format!("{}-v{}", t.ticket_id, t.version),
            occurred_at: Some(to_timestamp(at)),
            producer: "routing".into(),
            aggregate_id: t.ticket_id.clone(),
            aggregate_version: t.version,
            ..Default::default()
        }),
        ticket: Some(t),
        actor: "system".into(),
        kind: Some(kind),
    }
}

pub fn sla(ticket: &FixtureTicket, n: u32, kind: SlaClockKind, what: sla_event::Kind) -> SlaEvent {
    let _ = kind;
    SlaEvent {
        meta: Some(EventMeta {
            event_id: format!("{}-sla-{n}", ticket.id),
            occurred_at: Some(to_timestamp(ticket.received)),
            producer: "sla-timer".into(),
            aggregate_id: ticket.id.into(),
            ..Default::default()
        }),
        ticket_id: ticket.id.into(),
        priority: ticket.priority as i32,
        department: ticket.department.into(),
        kind: Some(what),
        ..Default::default()
    }
}

pub fn clock(ticket: &FixtureTicket, kind: SlaClockKind) -> SlaClock {
    SlaClock {
        ticket_id: ticket.id.into(),
        kind: kind as i32,
        priority: ticket.priority as i32,
        started_at: Some(to_timestamp(ticket.received)),
        ..Default::default()
    }
}

pub fn rating(score: u32, dims: [u32; 4], at: DateTime<Utc>) -> Satisfaction {
    Satisfaction {
        score,
        response_speed: dims[0],
        result: dims[1],
        attitude: dims[2],
        communication: dims[3],
        rated_at: Some(to_timestamp(at)),
        ..Default::default()
    }
}

/// Helpers to build the lifecycle events of one ticket.
pub struct Lifecycle<'a> {
    pub t: &'a FixtureTicket,
}

impl Lifecycle<'_> {
    pub fn created(&self) -> TicketEvent {
        event(self.t.state(1, TicketStatus::Assigned), self.t.received, ticket_event::Kind::Created(TicketCreated {}))
    }

    pub fn acknowledged(&self, version: u64, at: DateTime<Utc>) -> TicketEvent {
        let mut s = self.t.state(version, TicketStatus::Acknowledged);
        s.acknowledged_at = Some(to_timestamp(at));
        event(s, at, ticket_event::Kind::Acknowledged(TicketAcknowledged { handler: "h1".into() }))
    }

    pub fn resolved(&self, version: u64, ack: DateTime<Utc>, at: DateTime<Utc>) -> TicketEvent {
        let mut s = self.t.state(version, TicketStatus::Resolved);
        s.acknowledged_at = Some(to_timestamp(ack));
        s.resolved_at = Some(to_timestamp(at));
        event(s, at, ticket_event::Kind::Resolved(TicketResolved::default()))
    }

    pub fn rated(&self, version: u64, ack: DateTime<Utc>, resolved: DateTime<Utc>, r: Satisfaction) -> TicketEvent {
        let at = kesu_domain::time::from_timestamp(r.rated_at.as_ref().unwrap()).unwrap();
        let mut s = self.t.state(version, TicketStatus::Closed);
        s.acknowledged_at = Some(to_timestamp(ack));
        s.resolved_at = Some(to_timestamp(resolved));
        s.satisfaction = Some(r.clone());
        event(s, at, ticket_event::Kind::Rated(TicketRated { satisfaction: Some(r), source: "customer".into() }))
    }

    pub fn reopened(
        &self,
        version: u64,
        ack: DateTime<Utc>,
        resolved: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> TicketEvent {
        let mut s = self.t.state(version, TicketStatus::Reopened);
        s.acknowledged_at = Some(to_timestamp(ack));
        s.resolved_at = Some(to_timestamp(resolved));
        s.reopen_count = 1;
        s.survey_round = 1;
        event(
            s,
            at,
            ticket_event::Kind::Reopened(TicketReopened { dissatisfaction_review: true, ..Default::default() }),
        )
    }

    pub fn reclassified(&self, version: u64, from: (&str, &str), at: DateTime<Utc>) -> TicketEvent {
        let s = self.t.state(version, TicketStatus::Assigned);
        let previous = Classification { type_code: from.0.into(), cause_code: from.1.into(), ..Default::default() };
        let classification = s.classification.clone();
        event(
            s,
            at,
            ticket_event::Kind::Classified(TicketClassified {
                previous: Some(previous),
                classification,
                reason: "staff".into(),
                correction: true,
            }),
        )
    }

    pub fn linked(&self, version: u64, issue: &str, ack: Option<DateTime<Utc>>, at: DateTime<Utc>) -> TicketEvent {
        let mut s = self.t.state(version, TicketStatus::InProgress);
        s.acknowledged_at = ack.map(to_timestamp);
        s.common_issue_id = issue.into();
        event(
            s,
            at,
            ticket_event::Kind::Linked(LinkedToCommonIssue {
                common_issue_id: issue.into(),
                distinct_customers: 2,
                opened_issue: false,
            }),
        )
    }

    pub fn armed(&self) -> SlaEvent {
        sla(
            self.t,
            0,
            SlaClockKind::Response,
            sla_event::Kind::Armed(SlaArmed {
                clocks: vec![clock(self.t, SlaClockKind::Response), clock(self.t, SlaClockKind::Resolution)],
            }),
        )
    }

    pub fn met(&self, n: u32, kind: SlaClockKind) -> SlaEvent {
        sla(self.t, n, kind, sla_event::Kind::Met(SlaMet { clock: Some(clock(self.t, kind)) }))
    }

    pub fn breached(&self, n: u32, kind: SlaClockKind) -> SlaEvent {
        sla(self.t, n, kind, sla_event::Kind::Breached(SlaBreached { clock: Some(clock(self.t, kind)) }))
    }

    pub fn warned(&self, n: u32, kind: SlaClockKind) -> SlaEvent {
        sla(
            self.t,
            n,
            kind,
            sla_event::Kind::Warning(SlaWarning { clock: Some(clock(self.t, kind)), percent_elapsed: 80 }),
        )
    }
}

/// Publishes an SLA event under its own event id.
pub async fn publish_sla(a: &AnalyticsUnderTest, kind: &str, e: &SlaEvent) {
    let id = e.meta.as_ref().unwrap().event_id.clone();
    a.sla_event(kind, &id, e).await;
}

/// Publishes a ticket event under its own event id.
pub async fn publish_ticket(a: &AnalyticsUnderTest, kind: &str, e: &TicketEvent) {
    let id = e.meta.as_ref().unwrap().event_id.clone();
    a.ticket_event(kind, &id, e).await;
}

/// The fixture's tickets: six in the week of 2026-11-23, two older ones.
pub fn tickets() -> Vec<FixtureTicket> {
    let t = |id, received, channel, type_code, cause_code, department, priority, region, tier, customer| {
        FixtureTicket { id, received, channel, type_code, cause_code, department, priority, region, tier, customer }
    };
    use FeedbackChannel::*;
    vec![
        t(
            "T1",
            local(2026, 11, 23, 9, 0),
            Web,
            "logistics",
            "delivery_delay",
            "logistics",
            Priority::High,
            "east",
            "vip",
            "C1",
        ),
        t(
            "T2",
            local(2026, 11, 23, 10, 0),
            App,
            "logistics",
            "delivery_delay",
            "logistics",
            Priority::Medium,
            "east",
            "normal",
            "C2",
        ),
        t(
            "T3",
            local(2026, 11, 24, 14, 0),
            Web,
            "logistics",
            "lost_package",
            "logistics",
            Priority::Urgent,
            "west",
            "normal",
            "C1",
        ),
        t(
            "T4",
            local(2026, 11, 25, 9, 0),
            Phone,
            "product_quality",
            "defect",
            "after_sales",
            Priority::High,
            "east",
            "vip",
            "C3",
        ),
        t(
            "T5",
            local(2026, 11, 25, 9, 30),
            Web,
            "logistics",
            "lost_package",
            "logistics",
            Priority::Medium,
            "west",
            "normal",
            "C4",
        ),
        t(
            "T6",
            local(2026, 11, 26, 20, 0),
            App,
            "service",
            "attitude",
            "customer_service",
            Priority::Low,
            "north",
            "normal",
            "",
        ),
        t(
            "T0",
            local(2026, 11, 10, 10, 0),
            Web,
            "logistics",
            "delivery_delay",
            "logistics",
            Priority::Medium,
            "east",
            "normal",
            "C2",
        ),
        t(
            "T00",
            local(2026, 10, 1, 10, 0),
            Web,
            "logistics",
            "lost_package",
            "logistics",
            Priority::Medium,
            "west",
            "normal",
            "C4",
        ),
    ]
}

/// Publishes the fixture (see `tests/tests/analytics_rollups.rs` for the
/// table): out of order, with re-publications; waits until applied.
pub async fn feed(a: &AnalyticsUnderTest) {
    let all = tickets();
    let by = |id: &str| all.iter().find(|t| t.id == id).unwrap().clone();
    use SlaClockKind::{Resolution, Response};

    // T1: in order.
    let t1 = by("T1");
    let l = Lifecycle { t: &t1 };
    let (ack, res) = (local(2026, 11, 23, 9, 30), local(2026, 11, 23, 13, 0));
    publish_ticket(a, "created", &l.created()).await;
    publish_sla(a, "armed", &l.armed()).await;
    publish_ticket(a, "acknowledged", &l.acknowledged(2, ack)).await;
    publish_sla(a, "met", &l.met(1, Response)).await;
    publish_ticket(a, "resolved", &l.resolved(3, ack, res)).await;
    publish_sla(a, "met", &l.met(2, Resolution)).await;
    publish_ticket(a, "rated", &l.rated(4, ack, res, rating(5, [5, 5, 5, 5], local(2026, 11, 23, 15, 0)))).await;

    // T2: v1, v3, v2, v5, v4, then v3 again under a new message id; the
    // response breach twice.
    let t2 = by("T2");
    let l = Lifecycle { t: &t2 };
    let (ack, res) = (local(2026, 11, 23, 12, 0), local(2026, 11, 24, 10, 0));
    let resolved = l.resolved(3, ack, res);
    publish_ticket(a, "created", &l.created()).await;
    publish_ticket(a, "resolved", &resolved).await;
    publish_ticket(a, "acknowledged", &l.acknowledged(2, ack)).await;
    publish_ticket(a, "reopened", &l.reopened(5, ack, res, local(2026, 11, 24, 12, 5))).await;
    publish_ticket(a, "rated", &l.rated(4, ack, res, rating(2, [1, 2, 3, 2], local(2026, 11, 24, 12, 0)))).await;
    a.ticket_event("resolved", "T2-v3-again", &resolved).await;
    let breach = l.breached(1, Response);
    publish_sla(a, "breached", &breach).await;
    a.sla_event("breached", "T2-sla-1-again", &breach).await;
    publish_sla(a, "armed", &l.armed()).await;
    publish_sla(a, "met", &l.met(2, Resolution)).await;

    // T3: linked to CI1, resolution clock past its warning point.
    let t3 = by("T3");
    let l = Lifecycle { t: &t3 };
    let ack = local(2026, 11, 24, 14, 10);
    publish_ticket(a, "created", &l.created()).await;
    publish_sla(a, "armed", &l.armed()).await;
    publish_ticket(a, "acknowledged", &l.acknowledged(2, ack)).await;
    publish_sla(a, "met", &l.met(1, Response)).await;
    publish_ticket(a, "linked", &l.linked(3, "CI1", Some(ack), local(2026, 11, 24, 15, 0))).await;
    publish_sla(a, "warning", &l.warned(2, Resolution)).await;

    // T4: the correction (v2) before the creation (v1, as first classified);
    // the resolution breach before a late "met".
    let t4 = by("T4");
    let l = Lifecycle { t: &t4 };
    let (ack, res) = (local(2026, 11, 25, 11, 0), local(2026, 11, 27, 9, 0));
    let mut created = l.created();
    let c = created.ticket.as_mut().unwrap().classification.as_mut().unwrap();
    c.type_code = "logistics".into();
    c.cause_code = "delivery_delay".into();
    publish_ticket(a, "classified", &l.reclassified(2, ("logistics", "delivery_delay"), local(2026, 11, 25, 9, 20)))
        .await;
    publish_ticket(a, "created", &created).await;
    publish_ticket(a, "acknowledged", &l.acknowledged(3, ack)).await;
    publish_ticket(a, "resolved", &l.resolved(4, ack, res)).await;
    publish_ticket(a, "rated", &l.rated(5, ack, res, rating(4, [4, 4, 5, 3], local(2026, 11, 27, 10, 0)))).await;
    publish_sla(a, "armed", &l.armed()).await;
    publish_sla(a, "met", &l.met(1, Response)).await;
    publish_sla(a, "breached", &l.breached(2, Resolution)).await;
    publish_sla(a, "met", &l.met(3, Resolution)).await;

    // T5: never acknowledged, response breached, linked to CI1.
    let t5 = by("T5");
    let l = Lifecycle { t: &t5 };
    publish_ticket(a, "linked", &l.linked(2, "CI1", None, local(2026, 11, 25, 10, 0))).await;
    publish_ticket(a, "created", &l.created()).await;
    publish_sla(a, "breached", &l.breached(1, Response)).await;

    // T6: no customer pseudonym.
    let t6 = by("T6");
    let l = Lifecycle { t: &t6 };
    let (ack, res) = (local(2026, 11, 26, 20, 5), local(2026, 11, 26, 20, 35));
    publish_ticket(a, "created", &l.created()).await;
    publish_ticket(a, "acknowledged", &l.acknowledged(2, ack)).await;
    publish_ticket(a, "resolved", &l.resolved(3, ack, res)).await;
    publish_ticket(a, "rated", &l.rated(4, ack, res, rating(3, [3, 3, 3, 3], local(2026, 11, 26, 21, 0)))).await;
    publish_sla(a, "met", &l.met(1, Response)).await;
    publish_sla(a, "met", &l.met(2, Resolution)).await;

    // The older tickets of C2 and C4.
    for id in ["T0", "T00"] {
        let t = by(id);
        publish_ticket(a, "created", &Lifecycle { t: &t }.created()).await;
    }
    a.settled().await;
}
