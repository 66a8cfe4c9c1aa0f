//! A decided notification and how it is recorded: one `deliveries` row
//! (unique per dedup key: the same event, recipient and channel never give
//! two), then — in the same unit of work — the request for senders on
//! `notify.req.<channel>` with `notify.evt.requested`, or a durable timer
//! that releases it when quiet hours end (`notify.evt.deferred`), or
//! `notify.evt.suppressed` with the reason. Consumers collect a batch's
//! notices and record them together before the commit (one insert per
//! batch).

use chrono::{DateTime, Duration, Utc};
use kesu_bus::publish::Outgoing;
use kesu_bus::{UnitOfWork, event_meta, subjects};
use kesu_domain::policy::{RenderedMessage, TemplateData};
use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::type_names;
use kesu_proto::v1::{
    Delivery, DeliveryStatus, NotificationDeferred, NotificationEvent, NotificationPurpose, NotificationRequest,
    NotificationRequested, NotificationSuppressed, NotifyChannel, Recipient, RecipientKind, notification_event,
};
use kesu_timers::{Timer, Timers};
use prost::Message;

use crate::deliveries::{self, NewDelivery, channel_name};
use crate::moment::Source;

/// The timer kind that releases a deferred request.
pub const RELEASE: &str = "notification.release";

/// What happens to a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Send,
    /// Held back until then (quiet hours, a rule's delay).
    Defer(DateTime<Utc>),
    Suppress(String),
}

/// One decided notification.
#[derive(Debug, Clone)]
pub struct Notice {
    pub request_id: String,
    pub dedup_key: String,
    pub ticket_id: String,
    pub feedback_id: String,
    /// See [`deliveries::NewDelivery::about`].
    pub about: String,
    pub feedback_number: String,
    pub purpose: NotificationPurpose,
    pub template_id: &'static str,
    pub channel: NotifyChannel,
    /// With the clear address (for the request only).
    pub recipient: Recipient,
    pub message: RenderedMessage,
    pub data: TemplateData,
    pub priority: i32,
    pub outcome: Outcome,
    pub source: Source,
    pub resent_from: String,
}

impl Notice {
    fn recipient_key(&self) -> &str {
        if self.recipient.kind == RecipientKind::Customer as i32 { "customer" } else { &self.recipient.staff_id }
    }

    /// The delivery record (masked address only).
    pub fn record(&self, now: DateTime<Utc>) -> Delivery {
        let (status, detail, not_before) = match &self.outcome {
            Outcome::Send => (DeliveryStatus::Requested, String::new(), None),
            Outcome::Defer(at) => (DeliveryStatus::Deferred, String::new(), Some(to_timestamp(*at))),
            Outcome::Suppress(reason) => (DeliveryStatus::Suppressed, reason.clone(), None),
        };
        Delivery {
            request_id: self.request_id.clone(),
            ticket_id: self.ticket_id.clone(),
            channel: self.channel as i32,
            purpose: self.purpose as i32,
            recipient_kind: self.recipient.kind,
            masked_address: self.recipient.masked_address.clone(),
            status: status as i32,
            template_id: self.template_id.into(),
            locale: self.message.language.into(),
            requested_at: Some(to_timestamp(now)),
            updated_at: Some(to_timestamp(now)),
            detail,
            feedback_number: self.feedback_number.clone(),
            staff_id: self.recipient.staff_id.clone(),
            recipient_role: self.recipient.role.clone(),
            not_before,
            resent_from: self.resent_from.clone(),
            ..Default::default()
        }
    }

    /// The request for senders.
    pub fn request(&self, now: DateTime<Utc>) -> NotificationRequest {
        let meta = event_meta(
            crate::SERVICE,
            &self.about,
            0,
            to_timestamp(now),
            &self.source.event_id,
            &self.source.correlation_id,
        );
        let params = serde_json::to_value(&self.data)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) if !s.is_empty() => Some((k, s)),
                serde_json::Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect();
        NotificationRequest {
            meta: Some(meta),
            request_id: self.request_id.clone(),
            channel: self.channel as i32,
            purpose: self.purpose as i32,
            recipient: Some(self.recipient.clone()),
            locale: self.message.language.into(),
            template_id: self.template_id.into(),
            subject: self.message.subject.clone(),
            body: self.message.text.clone(),
            html_body: self.message.html.clone(),
            params,
            ticket_id: self.ticket_id.clone(),
            feedback_number: self.feedback_number.clone(),
            priority: self.priority,
            not_before: match &self.outcome {
                Outcome::Defer(at) => Some(to_timestamp(*at)),
                _ => None,
            },
            attempt: 1,
            ..Default::default()
        }
    }
}

/// A notification event about a delivery (never an address).
pub fn event(
    delivery: &Delivery,
    kind: notification_event::Kind,
    id: String,
    source: &Source,
    at: DateTime<Utc>,
) -> NotificationEvent {
    let mut meta =
        event_meta(crate::SERVICE, &delivery.request_id, 0, to_timestamp(at), &source.event_id, &source.correlation_id);
    meta.event_id = id;
    NotificationEvent {
        meta: Some(meta),
        request_id: delivery.request_id.clone(),
        channel: delivery.channel,
        purpose: delivery.purpose,
        ticket_id: delivery.ticket_id.clone(),
        recipient_kind: delivery.recipient_kind,
        feedback_number: delivery.feedback_number.clone(),
        recipient_role: delivery.recipient_role.clone(),
        kind: Some(kind),
    }
}

/// `notify.evt.<kind>` with the event's id as message id, continuing `source`'s trace.
pub async fn emit_event(work: &mut UnitOfWork, event: &NotificationEvent, source: &Source) -> Result<(), sqlx::Error> {
    let kind = match &event.kind {
        Some(notification_event::Kind::Requested(_)) => "requested",
        Some(notification_event::Kind::Sent(_)) => "sent",
        Some(notification_event::Kind::Delivered(_)) => "delivered",
        Some(notification_event::Kind::Failed(_)) => "failed",
        Some(notification_event::Kind::Suppressed(_)) => "suppressed",
        Some(notification_event::Kind::Deferred(_)) => "deferred",
        None => "unknown",
    };
    let id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
    emit(work, Outgoing::protobuf(subjects::notify_event(kind), id, type_names::NOTIFICATION_EVENT, event), source)
        .await
}

/// `notify.req.<channel>` with the request's event id as message id.
pub async fn emit_request(
    work: &mut UnitOfWork,
    request: &NotificationRequest,
    source: &Source,
) -> Result<(), sqlx::Error> {
    let id = request.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
    let subject = subjects::notify_request(channel_name(request.channel));
    emit(work, Outgoing::protobuf(subject, id, type_names::NOTIFICATION_REQUEST, request), source).await
}

async fn emit(work: &mut UnitOfWork, mut out: Outgoing, source: &Source) -> Result<(), sqlx::Error> {
    if out.traceparent.is_none() {
        out.traceparent = source.traceparent.clone();
    }
    work.emit(out).await
}

/// Notices a consumer collected over one batch (see [`record`]).
#[derive(Default)]
pub struct Pending(pub Vec<Notice>);

/// Records notices and emits what they need; returns the deliveries
/// recorded (a dedup key seen before records nothing).
pub async fn record(
    work: &mut UnitOfWork,
    notices: Vec<Notice>,
    now: DateTime<Utc>,
    address_retention: Duration,
    timers: &Timers,
) -> Result<Vec<Delivery>, sqlx::Error> {
    if notices.is_empty() {
        return Ok(Vec::new());
    }
    let now_ms = to_millis(now);
    let records: Vec<Delivery> = notices.iter().map(|n| n.record(now)).collect();
    let data: Vec<String> =
        notices.iter().map(|n| serde_json::to_string(&n.data).unwrap_or_else(|_| "{}".into())).collect();
    let until = to_millis(now + address_retention);
    let rows: Vec<NewDelivery> = notices
        .iter()
        .zip(&records)
        .zip(&data)
        .map(|((n, record), data)| {
            let address = Some(n.recipient.address.as_str()).filter(|a| !a.is_empty());
            NewDelivery {
                record,
                dedup_key: &n.dedup_key,
                about: &n.about,
                feedback_id: &n.feedback_id,
                recipient: n.recipient_key(),
                address,
                address_until: address.map(|_| until),
                data,
                at_ms: now_ms,
            }
        })
        .collect();
    let inserted: std::collections::HashSet<String> =
        deliveries::insert_many(work.conn(), &rows).await?.into_iter().collect();
    drop(rows);
    let mut recorded = Vec::with_capacity(inserted.len());
    let mut deferred = Vec::new();
    for (notice, record) in notices.iter().zip(records) {
        if !inserted.contains(&notice.request_id) {
            continue;
        }
        let new_id = || uuid::Uuid::now_v7().to_string();
        match &notice.outcome {
            Outcome::Send => {
                emit_request(work, &notice.request(now), &notice.source).await?;
                let kind = notification_event::Kind::Requested(NotificationRequested { not_before: None });
                emit_event(work, &event(&record, kind, new_id(), &notice.source, now), &notice.source).await?;
            }
            Outcome::Defer(at) => {
                let request = notice.request(now);
                deferred.push(Timer::new(
                    RELEASE,
                    notice.request_id.clone(),
                    *at,
                    release_payload(&request, &notice.source),
                ));
                let kind = notification_event::Kind::Deferred(NotificationDeferred {
                    not_before: Some(to_timestamp(*at)),
                    reason: "quiet hours or a rule's delay".into(),
                });
                emit_event(work, &event(&record, kind, new_id(), &notice.source, now), &notice.source).await?;
            }
            Outcome::Suppress(reason) => {
                let kind = notification_event::Kind::Suppressed(NotificationSuppressed { reason: reason.clone() });
                emit_event(work, &event(&record, kind, new_id(), &notice.source, now), &notice.source).await?;
            }
        }
        recorded.push(record);
    }
    timers.schedule_many(work, &deferred).await?;
    Ok(recorded)
}

/// A deferred request as the release timer keeps it: the request (with its
/// address, until released) and the trace to continue.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReleasePayload {
    #[prost(message, optional, tag = "1")]
    pub request: Option<NotificationRequest>,
    #[prost(string, tag = "2")]
    pub causation_id: String,
    #[prost(string, tag = "3")]
    pub correlation_id: String,
    #[prost(string, tag = "4")]
    pub traceparent: String,
}

fn release_payload(request: &NotificationRequest, source: &Source) -> Vec<u8> {
    ReleasePayload {
        request: Some(request.clone()),
        causation_id: source.event_id.clone(),
        correlation_id: source.correlation_id.clone(),
        traceparent: source.traceparent.clone().unwrap_or_default(),
    }
    .encode_to_vec()
}
