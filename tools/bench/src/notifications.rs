//! notification on its own: events in (an accepted feedback and its
//! created ticket with a handler and a co-handler, as intake and routing
//! publish them) and notices out (the customer's acknowledgement and the
//! assignment by email and app to both staff: five `notify.req.*` with
//! five `notify.evt.requested`), against raw JetStream publish of messages
//! the size of a ticket event on the same server.

use std::time::{Duration, Instant};

use kesu_proto::v1::{NotifyChannel, Priority, TicketCreated, ticket_event};
use kesu_system_tests::Backend;
use kesu_system_tests::notification::{NotificationUnderTest, accepted, daytime, ticket, ticket_event};
use kesu_testkit::NatsProfile;
use prost::Message;
use serde_json::{Value, json};

use crate::raw;

/// Notices per pair of events (acknowledgement + 2 staff × email and app).
const NOTICES_PER_TICKET: usize = 5;

#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub tickets: usize,
    pub raw_publish_per_s: f64,
    /// Input events (two per ticket) applied per second.
    pub events_per_s: f64,
    pub notices_per_s: f64,
}

impl Figures {
    pub fn ratio(self) -> f64 {
        self.events_per_s / self.raw_publish_per_s
    }

    pub fn to_json(self) -> Value {
        let r = |x: f64| (x * 10.0).round() / 10.0;
        json!({
            "tickets": self.tickets,
            "raw_publish_per_s": r(self.raw_publish_per_s),
            "events_per_s": r(self.events_per_s),
            "notices_per_s": r(self.notices_per_s),
            "events_ratio": (self.ratio() * 10_000.0).round() / 10_000.0,
        })
    }
}

pub async fn measure(
    profile: NatsProfile,
    backend: Backend,
    sqlite_synchronous: &str,
    n: usize,
) -> anyhow::Result<Figures> {
    let env = [("KESU_SQLITE_SYNCHRONOUS", sqlite_synchronous)];
    let nut = NotificationUnderTest::start_full(profile, backend, daytime(), &env)
        .await
        .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not reachable at 127.0.0.1:5432"))?;
    kesu_telemetry::set_spans_exported(false);
    let customer = nut.customer(Some("13812345678"), None, NotifyChannel::Sms);
    let sample =
        ticket_event(&ticket("T-0000000001", 1, customer.clone()), ticket_event::Kind::Created(TicketCreated {}));
    let (_, raw_publish_per_s) =
        raw::publish(&nut.system.js, 10_000, sample.encode_to_vec().len(), Duration::from_secs(5)).await?;

    let start = Instant::now();
    let mut acks = Vec::with_capacity(raw::WINDOW);
    for i in 0..n {
        let id = format!("T-{i:010}");
        let t = ticket(&id, 1, customer.clone());
        let mut feedback = accepted(&t.feedback_number, customer.clone(), "zh-CN", Priority::Medium);
        feedback.feedback_id = t.feedback_id.clone();
        if let Some(kesu_proto::v1::feedback_event::Kind::Accepted(a)) = feedback.kind.as_mut()
            && let Some(f) = a.feedback.as_mut()
        {
            f.feedback_id = t.feedback_id.clone();
            f.feedback_number = format!("FB{i:012}");
        }
        let created = ticket_event(&t, ticket_event::Kind::Created(TicketCreated {}));
        for (subject, type_name, id, payload) in [
            (
                "feedback.evt.accepted",
                "kesu.v1.FeedbackEvent",
                feedback.meta.clone().unwrap_or_default().event_id,
                feedback.encode_to_vec(),
            ),
            (
                "ticket.evt.created",
                "kesu.v1.TicketEvent",
                created.meta.clone().unwrap_or_default().event_id,
                created.encode_to_vec(),
            ),
        ] {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            headers.insert("Kesu-Type", type_name);
            acks.push(nut.system.js.publish_with_headers(subject, headers, payload.into()).await?);
        }
        if acks.len() >= raw::WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    let want = (n * NOTICES_PER_TICKET) as u64;
    let mut requests = nut.system.js.get_stream("NOTIFY_REQUESTS").await?;
    loop {
        if requests.info().await?.state.messages >= want {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("notification did not make {want} requests within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    nut.stop().await;
    Ok(Figures {
        tickets: n,
        raw_publish_per_s,
        events_per_s: (2 * n) as f64 / elapsed,
        notices_per_s: (n * NOTICES_PER_TICKET) as f64 / elapsed,
    })
}
