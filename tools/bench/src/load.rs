//! Feedback load through the running services: publishing raw feedback
//! (as fast as possible, or paced at an offered rate), watching when each
//! one's ticket is created and its notification requested, and waiting
//! until analytics has counted everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kesu_proto::v1::analytics_service_client::AnalyticsServiceClient;
use kesu_proto::v1::{
    FeedbackEvent, GetSummaryRequest, NotificationEvent, NotificationPurpose, RawFeedback, TicketEvent, feedback_event,
    notification_event,
};
use kesu_system_tests::{TestSystem, feedback};
use prost::Message;
use tonic::service::interceptor::InterceptedService;

use crate::raw::WINDOW;

/// When each feedback (by external id) was sent.
pub type Sent = HashMap<String, Instant>;

/// Publishes `n` feedbacks on `feedback.raw.web` (pipelined, or paced at
/// `rate` per second) and returns when each was sent.
pub async fn publish(system: &TestSystem, tag: &str, n: usize, rate: Option<f64>) -> anyhow::Result<Sent> {
    let template: RawFeedback = feedback::robot_vacuum("x");
    let mut sent = HashMap::with_capacity(n);
    let mut acks = Vec::with_capacity(WINDOW);
    // Paced, the stream's acks are awaited as they come (they time out if
    // left waiting while a window fills slowly); pipelined, a window at a
    // time.
    let (paced_acks, paced_waiter) = {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<async_nats::jetstream::context::PublishAckFuture>();
        let waiter = tokio::spawn(async move {
            while let Some(ack) = rx.recv().await {
                ack.await?;
            }
            Ok::<_, anyhow::Error>(())
        });
        (tx, waiter)
    };
    let start = Instant::now();
    for i in 0..n {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let mut raw = template.clone();
        raw.external_id = format!("bench-{tag}-{i:07}");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", raw.external_id.as_str());
        sent.insert(raw.external_id.clone(), Instant::now());
        let ack = system.js.publish_with_headers("feedback.raw.web", headers, raw.encode_to_vec().into()).await?;
        if rate.is_some() {
            if paced_acks.send(ack).is_err() {
                // The waiter stopped: at an ack that failed.
                paced_waiter.await??;
                anyhow::bail!("waiting for publish acks stopped");
            }
            continue;
        }
        acks.push(ack);
        if acks.len() == WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    drop(paced_acks);
    paced_waiter.await??;
    Ok(sent)
}

/// Arrival times seen on core NATS subscriptions.
#[derive(Default)]
struct Seen {
    /// external id → when `feedback.evt.accepted` arrived (intake's hop)
    accepted: HashMap<String, Instant>,
    /// external id → (feedback number, when `ticket.evt.created` arrived)
    tickets: HashMap<String, (String, Instant)>,
    /// feedback number → when the acknowledgement's `notify.evt.requested` arrived
    notifications: HashMap<String, Instant>,
}

/// Watches `feedback.evt.accepted`, `ticket.evt.created` and
/// `notify.evt.requested`.
#[derive(Clone)]
pub struct Arrivals(Arc<Mutex<Seen>>);

impl Arrivals {
    pub async fn watch(system: &TestSystem) -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        on_each(system, "feedback.evt.accepted", &seen, |seen, payload, now| {
            if let Ok(event) = FeedbackEvent::decode(payload)
                && matches!(event.kind, Some(feedback_event::Kind::Accepted(_)))
            {
                seen.accepted.insert(event.external_id, now);
            }
        })
        .await?;
        on_each(system, "ticket.evt.created", &seen, |seen, payload, now| {
            if let Ok(event) = TicketEvent::decode(payload)
                && let Some(ticket) = event.ticket
            {
                seen.tickets.insert(ticket.external_id, (ticket.feedback_number, now));
            }
        })
        .await?;
        on_each(system, "notify.evt.requested", &seen, |seen, payload, now| {
            // The customer's acknowledgement, decided from the feedback
            // (before or beside the ticket): matched by feedback number.
            if let Ok(event) = NotificationEvent::decode(payload)
                && matches!(event.kind, Some(notification_event::Kind::Requested(_)))
                && event.purpose == NotificationPurpose::Acknowledgement as i32
            {
                seen.notifications.insert(event.feedback_number, now);
            }
        })
        .await?;
        system.client.flush().await?;
        Ok(Self(seen))
    }

    /// p50 and p99 of raw → `ticket.evt.created` and raw → the last
    /// `notify.evt.requested`, over the feedbacks in `sent`.
    pub fn latencies(&self, sent: &Sent) -> Latencies {
        let seen = self.0.lock().expect("not poisoned");
        let mut accepted = Vec::with_capacity(sent.len());
        let mut tickets = Vec::with_capacity(sent.len());
        let mut notifications = Vec::with_capacity(sent.len());
        for (id, at) in sent {
            if let Some(when) = seen.accepted.get(id) {
                accepted.push(when.saturating_duration_since(*at));
            }
            if let Some((feedback_number, created)) = seen.tickets.get(id) {
                tickets.push(created.saturating_duration_since(*at));
                if let Some(requested) = seen.notifications.get(feedback_number) {
                    notifications.push(requested.saturating_duration_since(*at));
                }
            }
        }
        Latencies {
            feedback_accepted: Percentiles::of(accepted),
            ticket_created: Percentiles::of(tickets),
            notification_requested: Percentiles::of(notifications),
        }
    }
}

/// Subscribes to `subject` and hands each message's payload, with the
/// instant it arrived, to `record`.
async fn on_each(
    system: &TestSystem,
    subject: &'static str,
    seen: &Arc<Mutex<Seen>>,
    record: impl Fn(&mut Seen, &[u8], Instant) + Send + 'static,
) -> anyhow::Result<()> {
    let mut messages = system.client.subscribe(subject).await?;
    let seen = seen.clone();
    tokio::spawn(async move {
        while let Some(msg) = messages.next().await {
            let now = Instant::now();
            record(&mut seen.lock().expect("not poisoned"), msg.payload.as_ref(), now);
        }
    });
    Ok(())
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub count: usize,
}

impl Percentiles {
    fn of(mut all: Vec<Duration>) -> Self {
        all.sort();
        if all.is_empty() {
            return Self::default();
        }
        let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
        Self { p50: pick(0.50), p99: pick(0.99), count: all.len() }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Latencies {
    /// raw → `feedback.evt.accepted`: intake's hop, the first of both paths.
    pub feedback_accepted: Percentiles,
    pub ticket_created: Percentiles,
    pub notification_requested: Percentiles,
}

/// Waits until analytics has counted `total` tickets and notification
/// requests and twice as many SLA clocks: every feedback has gone through
/// every service.
pub async fn wait_through_analytics(
    analytics: &mut AnalyticsServiceClient<InterceptedService<tonic::transport::Channel, kesu_system_tests::Bearer>>,
    total: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut last = (0, 0, 0);
    let mut moved_at = Instant::now();
    loop {
        let s = analytics.get_summary(GetSummaryRequest { range: None }).await?.into_inner();
        if s.notifications_requested >= total && s.tickets_created >= total && s.sla_clocks_armed >= 2 * total {
            return Ok(());
        }
        let now = (s.notifications_requested, s.tickets_created, s.sla_clocks_armed);
        if now != last {
            (last, moved_at) = (now, Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline && moved_at.elapsed() < Duration::from_secs(60),
            "stuck short of {total} feedbacks: {} notification requests, {} tickets, {} SLA clocks armed (want {})",
            s.notifications_requested,
            s.tickets_created,
            s.sla_clocks_armed,
            2 * total
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
