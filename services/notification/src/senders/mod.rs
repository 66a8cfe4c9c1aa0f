//! The built-in senders: email over SMTP ([`smtp`]) and SMS over an HTTP
//! gateway ([`http_gateway`]), consuming `notify.req.<channel>` like any
//! external sender. They run inside `kesu notification` (when configured)
//! or as their own target, `kesu senders` ([`target`]); replicas and both
//! targets share one durable consumer per channel (`sender-email`,
//! `sender-sms`), so each request goes to one of them.
//!
//! For each request: it is claimed in `sender_sends` ([`claims`]) — a
//! request sent or failed before is a duplicate and is not sent again — then
//! handed to the provider at the channel's rate limit; a failure that may
//! pass is retried with exponential back-off and jitter ([`retry`]) up to
//! `SENDER_MAX_ATTEMPTS`, after which (or at once for a permanent failure)
//! the request is failed and dead-lettered with its original bytes. Every
//! outcome is reported on `notify.report.<channel>` through the outbox, in
//! the same transaction as the record.
//!
//! Effectively once: a crash after the provider took the message but
//! before the record is written leaves the claim's lease to run out; the
//! redelivered request is then sent again with the same Message-ID (SMTP)
//! or idempotency key (gateway). See docs/delivery.md for what that does
//! and does not guarantee at each boundary.

pub mod callback;
pub mod claims;
pub mod http_gateway;
mod retry;
pub mod smtp;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, RateLimiter};
use kesu_bus::subjects::{self, NOTIFY_REQUESTS};
use kesu_bus::{Bus, ConsumerSettings, ConsumerSpec, OutboxWaker, UnitOfWork};
use kesu_config::{ConfigError, Env};
use kesu_domain::Clock;
use kesu_domain::time::{from_timestamp, to_millis, to_timestamp};
use kesu_proto::type_names;
use kesu_proto::v1::{DeliveryReport, DeliveryReportKind, NotificationRequest, NotifyChannel};
use kesu_storage::Database;
use prost::Message;
use tokio_util::sync::CancellationToken;

pub use retry::Rate;

/// A provider took the message.
#[derive(Debug, Clone)]
pub struct Sent {
    pub provider_id: String,
}

/// Why a send did not happen (never with the address or the text).
#[derive(Debug, Clone)]
pub enum SendError {
    /// May pass (connection refused, timeout, 4xx SMTP, HTTP 5xx/429).
    Transient(String),
    /// Will not pass (a bad address, 5xx SMTP, HTTP 4xx).
    Permanent(String),
}

/// What a sender reports about a request.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: DeliveryReportKind,
    pub provider_id: String,
    /// Why it failed (never the address or the text).
    pub reason: String,
    pub retryable: bool,
    pub attempt: u32,
}

impl Report {
    pub fn sent(provider_id: &str, attempt: u32) -> Self {
        Self {
            kind: DeliveryReportKind::Sent,
            provider_id: provider_id.into(),
            reason: String::new(),
            retryable: false,
            attempt,
        }
    }

    pub fn failed(reason: &str, retryable: bool, attempt: u32) -> Self {
        Self { kind: DeliveryReportKind::Failed, provider_id: String::new(), reason: reason.into(), retryable, attempt }
    }
}

/// The built-in senders' settings (`SENDERS`, `SMTP_*`, `SMS_*`, `SENDER_*`).
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Which channels run here: configured ones unless `SENDERS` says otherwise.
    pub channels: Vec<NotifyChannel>,
    pub smtp: Option<smtp::SmtpSettings>,
    pub sms: Option<http_gateway::GatewaySettings>,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub concurrency: usize,
    /// The consumer's ack wait and the claim's lease.
    pub ack_wait: Duration,
}

impl SenderSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let which = env.string("SENDERS", "auto")?;
        let smtp = smtp::SmtpSettings::from_env(env)?;
        let sms = http_gateway::GatewaySettings::from_env(env)?;
        let max_attempts = env.bounded("SENDER_MAX_ATTEMPTS", 8, 1, 100)? as u32;
        let retry_base = env.duration("SENDER_RETRY_BASE", Duration::from_secs(2))?;
        let retry_max = env.duration("SENDER_RETRY_MAX", Duration::from_secs(300))?;
        let concurrency = env.bounded("SENDER_CONCURRENCY", 4, 1, 256)? as usize;
        let ack_wait = env.duration("SENDER_ACK_WAIT", Duration::from_secs(60))?;
        let key = |k: &str| env.name_of(k);
        let configured = |c: NotifyChannel| {
            (c == NotifyChannel::Email && smtp.is_some()) || (c == NotifyChannel::Sms && sms.is_some())
        };
        let channels = match which.trim() {
            "auto" => [NotifyChannel::Email, NotifyChannel::Sms].into_iter().filter(|c| configured(*c)).collect(),
            "none" | "" => Vec::new(),
            list => {
                let mut channels = Vec::new();
                for name in list.split(',').map(str::trim) {
                    let channel = match name {
                        "email" => NotifyChannel::Email,
                        "sms" => NotifyChannel::Sms,
                        other => {
                            return Err(ConfigError {
                                key: key("SENDERS"),
                                message: format!("{other:?}: the built-in senders are email and sms (or auto, none)"),
                            });
                        }
                    };
                    if !configured(channel) {
                        let needs = if channel == NotifyChannel::Email { "SMTP_HOST" } else { "SMS_URL" };
                        return Err(ConfigError { key: key("SENDERS"), message: format!("{name} needs {needs}") });
                    }
                    channels.push(channel);
                }
                channels
            }
        };
        for (name, timeout) in
            [("SMTP_TIMEOUT", smtp.as_ref().map(|s| s.timeout)), ("SMS_TIMEOUT", sms.as_ref().map(|s| s.timeout))]
        {
            if timeout.is_some_and(|t| t + Duration::from_secs(1) >= ack_wait) {
                return Err(ConfigError { key: key(name), message: "must be shorter than SENDER_ACK_WAIT".into() });
            }
        }
        Ok(Self { channels, smtp, sms, max_attempts, retry_base, retry_max, concurrency, ack_wait })
    }
}

enum Transport {
    Smtp(smtp::SmtpSender),
    Http(Box<http_gateway::HttpGateway>),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "kesu-smtp",
            Transport::Http(_) => "kesu-http-gateway",
        }
    }

    async fn send(&self, request: &NotificationRequest) -> Result<Sent, SendError> {
        match self {
            Transport::Smtp(s) => s.send(request).await,
            Transport::Http(h) => h.send(request).await,
        }
    }
}

/// One channel's sender.
pub struct ChannelSender {
    pub channel: NotifyChannel,
    bus: Bus,
    db: Database,
    outbox: OutboxWaker,
    clock: Arc<dyn Clock>,
    transport: Transport,
    limiter: DefaultDirectRateLimiter,
    rate: Rate,
    settings: SenderSettings,
}

/// What runs: the workers to spawn and the HTTP routes (delivery receipts).
pub struct Started {
    pub senders: Vec<Arc<ChannelSender>>,
    pub routes: Option<axum::Router>,
}

/// Builds the configured senders (fails on a transport that cannot be made).
pub fn build(
    settings: &SenderSettings,
    bus: &Bus,
    db: &Database,
    outbox: &OutboxWaker,
    clock: Arc<dyn Clock>,
) -> Result<Started, String> {
    let mut senders = Vec::new();
    let mut routes: Option<axum::Router> = None;
    for channel in &settings.channels {
        let (transport, rate) = match channel {
            NotifyChannel::Email => {
                let s = settings.smtp.as_ref().ok_or("email needs SMTP_HOST")?;
                (Transport::Smtp(smtp::SmtpSender::new(s)?), s.rate)
            }
            NotifyChannel::Sms => {
                let s = settings.sms.as_ref().ok_or("sms needs SMS_URL")?;
                (Transport::Http(Box::new(http_gateway::HttpGateway::new(s)?)), s.rate)
            }
            _ => continue,
        };
        let sender = Arc::new(ChannelSender {
            channel: *channel,
            bus: bus.clone(),
            db: db.clone(),
            outbox: outbox.clone(),
            clock: clock.clone(),
            transport,
            limiter: RateLimiter::direct(rate.quota()),
            rate,
            settings: settings.clone(),
        });
        if *channel == NotifyChannel::Sms
            && let Some(cb) = settings.sms.as_ref().and_then(|s| s.callback.clone())
        {
            let route = callback::router(sender.clone(), cb);
            routes = Some(match routes {
                Some(r) => r.merge(route),
                None => route,
            });
        }
        senders.push(sender);
    }
    Ok(Started { senders, routes })
}

fn channel_token(channel: NotifyChannel) -> &'static str {
    crate::deliveries::channel_name(channel as i32)
}

impl ChannelSender {
    /// The durable consumer all senders of this channel share.
    pub fn durable(&self) -> String {
        format!("sender-{}", channel_token(self.channel))
    }

    pub fn name(&self) -> &'static str {
        self.transport.name()
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts
    }

    /// Pulls and sends until shutdown; in-flight sends finish first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let consumer_settings = ConsumerSettings {
            ack_wait: self.settings.ack_wait,
            max_ack_pending: (self.settings.concurrency * 4) as u32,
            ..ConsumerSettings::default()
        };
        let spec = ConsumerSpec::new(NOTIFY_REQUESTS, &self.durable(), consumer_settings)
            .filter(&subjects::notify_request(channel_token(self.channel)));
        let mut announced = false;
        loop {
            let consumer = match kesu_bus::consume::declare_consumer(&self.bus, &spec).await {
                Ok(c) => c,
                Err(e) => {
                    if !announced {
                        tracing::warn!(consumer = %spec.durable, error = %e, "sender waiting for NOTIFY_REQUESTS (declared by notification)");
                        announced = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            };
            let messages = match consumer.stream().max_messages_per_batch(self.settings.concurrency).messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(consumer = %spec.durable, error = %e, "sender cannot pull; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            tracing::info!(channel = channel_token(self.channel), sender = self.name(), "sender running");
            let me = self.clone();
            messages
                .take_until(shutdown.clone().cancelled_owned())
                .for_each_concurrent(self.settings.concurrency, |message| {
                    let me = me.clone();
                    async move {
                        match message {
                            Ok(m) => me.process(m).await,
                            Err(e) => tracing::debug!(error = %e, "sender pull error"),
                        }
                    }
                })
                .await;
            if shutdown.is_cancelled() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn process(&self, message: async_nats::jetstream::Message) {
        let (stream_sequence, delivered) =
            message.info().map(|i| (i.stream_sequence, i.delivered.max(1) as u32)).unwrap_or((0, 1));
        let delivery = kesu_bus::Delivery {
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
            headers: message.headers.clone(),
            message_id: String::new(),
            stream: NOTIFY_REQUESTS.name.to_string(),
            stream_sequence,
            delivered,
            traceparent: None,
        };
        let request = match NotificationRequest::decode(message.payload.as_ref()) {
            Ok(r) if !r.request_id.is_empty() => r,
            Ok(_) => return self.dead(&message, &delivery, "a request without request_id").await,
            Err(e) => {
                return self
                    .dead(
                        &message,
                        &delivery,
                        &format!("payload is not a valid {}: {e}", type_names::NOTIFICATION_REQUEST),
                    )
                    .await;
            }
        };
        let now = self.clock.now();
        if let Some(not_before) = request.not_before.as_ref().and_then(from_timestamp)
            && not_before > now
        {
            let wait = (not_before - now).to_std().unwrap_or_default().min(Duration::from_secs(3600));
            let _ = message.ack_with(AckKind::Nak(Some(wait))).await;
            return;
        }
        if let Some(expires) = request.expires_at.as_ref().and_then(from_timestamp)
            && expires <= now
        {
            if self
                .report(&request.request_id, &Report::failed("expired before it could be sent", false, 1))
                .await
                .is_ok()
            {
                let _ = message.ack().await;
            }
            return;
        }
        let lease = self.settings.ack_wait.as_millis() as i64;
        let claim = claims::claim(
            self.db.writer(),
            &request.request_id,
            channel_token(self.channel),
            self.name(),
            to_millis(now),
            lease,
        )
        .await;
        let attempt = match claim {
            Ok(claims::Claim::Mine { attempt }) => attempt,
            Ok(claims::Claim::Done { state }) => {
                tracing::debug!(request_id = %request.request_id, state, "a request sent before: not sent again");
                let _ = message.ack().await;
                return;
            }
            Ok(claims::Claim::Busy { until_ms }) => {
                let wait = Duration::from_millis((until_ms - to_millis(now)).clamp(100, lease) as u64);
                let _ = message.ack_with(AckKind::Nak(Some(wait))).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sender: cannot claim a request; retrying");
                let _ = message.ack_with(AckKind::Nak(Some(self.settings.retry_base))).await;
                return;
            }
        };
        self.limiter.until_ready().await;
        let outcome = self.transport.send(&request).await;
        let now = self.clock.now();
        match outcome {
            Ok(sent) => {
                match self.record(&request.request_id, Some("sent"), &Report::sent(&sent.provider_id, attempt)).await {
                    Ok(()) => {
                        let _ = message.ack().await;
                    }
                    // Sent but not recorded: the lease runs out and the
                    // request is sent again with the same id (see the module doc).
                    Err(e) => {
                        tracing::warn!(error = %e, request_id = %request.request_id, "sent, but the record failed")
                    }
                }
            }
            Err(SendError::Transient(reason)) if attempt < self.settings.max_attempts => {
                let delay = retry::backoff(attempt, self.settings.retry_base, self.settings.retry_max);
                tracing::debug!(request_id = %request.request_id, attempt, ?delay, reason, "send failed; retrying");
                let released = claims::release(self.db.writer(), &request.request_id, to_millis(now)).await;
                let reported = self.report(&request.request_id, &Report::failed(&reason, true, attempt)).await;
                if let Err(e) = released.map_err(|e| e.to_string()).and(reported.map_err(|e| e.to_string())) {
                    tracing::warn!(error = %e, "sender: recording a failed attempt");
                }
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            }
            Err(SendError::Transient(reason) | SendError::Permanent(reason)) => {
                let reason = if attempt >= self.settings.max_attempts && attempt > 1 {
                    format!("{reason} (gave up after {attempt} attempts)")
                } else {
                    reason
                };
                tracing::warn!(request_id = %request.request_id, attempt, reason, "send failed for good: dead-lettered");
                if self
                    .record(&request.request_id, Some("failed"), &Report::failed(&reason, false, attempt))
                    .await
                    .is_ok()
                {
                    self.dead(&message, &delivery, &reason).await;
                }
            }
        }
    }

    /// Records the end of a request (`end`: "sent" or "failed") if given,
    /// and reports on it, in one transaction.
    async fn record(&self, request_id: &str, end: Option<&str>, report: &Report) -> Result<(), sqlx::Error> {
        let now = self.clock.now();
        let mut work = UnitOfWork::begin(&self.db).await?;
        if let Some(state) = end {
            let provider_id = Some(report.provider_id.as_str()).filter(|p| !p.is_empty());
            claims::finish(work.conn(), request_id, state, provider_id, to_millis(now)).await?;
        }
        let message = DeliveryReport {
            request_id: request_id.to_string(),
            channel: self.channel as i32,
            kind: report.kind as i32,
            sender: self.name().to_string(),
            provider_message_id: report.provider_id.clone(),
            reason: report.reason.clone(),
            retryable: report.retryable,
            attempt: report.attempt,
            at: Some(to_timestamp(now)),
        };
        let kind = report.kind.as_str_name().trim_start_matches("DELIVERY_REPORT_KIND_").to_ascii_lowercase();
        let id = if report.retryable {
            format!("{request_id}:{kind}:{}", report.attempt)
        } else {
            format!("{request_id}:{kind}")
        };
        let subject = subjects::notify_report(channel_token(self.channel));
        work.emit_protobuf(subject, &id, type_names::DELIVERY_REPORT, &message).await?;
        work.commit(&self.outbox).await
    }

    /// Reports on a request (a retryable failure, a gateway receipt).
    pub async fn report(&self, request_id: &str, report: &Report) -> Result<(), sqlx::Error> {
        self.record(request_id, None, report).await
    }

    /// Dead-letters the original request and terminates it (kept for
    /// redelivery if the dead letter cannot be written).
    async fn dead(&self, message: &async_nats::jetstream::Message, delivery: &kesu_bus::Delivery, reason: &str) {
        match kesu_bus::dead_letter::dead_letter(&self.bus, &self.durable(), delivery, reason).await {
            Ok(()) => {
                let _ = message.ack_with(AckKind::Term).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sender: cannot dead-letter; the request stays for redelivery");
                let _ = message.ack_with(AckKind::Nak(Some(self.settings.retry_base))).await;
            }
        }
    }
}
