//! Analytics: facts and rollups for management.
//!
//! Consumes every event stream (FEEDBACK, TICKETS, SLA, NOTIFICATIONS; never
//! NOTIFY_REQUESTS, which carries addresses) in shared batches, and keeps
//! daily counters plus one fact row per ticket (codes, times, scores, the
//! customer's keyed pseudonym) and the outcome of each SLA clock. Answers
//! over gRPC and as JSON and CSV on its HTTP port. It never sees contacts:
//! events carry them sealed.

mod aggregate;
pub mod api;
mod error;
mod facts;
pub mod figures;
mod grpc;
pub mod http;
pub mod ingest;
mod publish;
pub mod query;
mod rebuild;
pub mod report;
pub mod roles;
pub mod rollup;
pub mod rollup_query;
mod store;
pub mod tables;

use std::sync::Arc;

use chrono::Utc;
use kesu_bus::subjects::{FEEDBACK, NOTIFICATIONS, SLA, TICKETS};
use kesu_bus::{ConsumerSettings, ConsumerSpec, Delivery, HandleError, Handler, UnitOfWork};
use kesu_config::{ConfigError, Env};
use kesu_domain::Policy;
use kesu_proto::type_names;
use kesu_proto::v1::analytics_service_server::AnalyticsServiceServer;
use kesu_proto::v1::{EventMeta, FeedbackEvent, NotificationEvent, SlaEvent, TicketEvent};
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use kesu_storage::Migrations;
use tokio_util::sync::CancellationToken;

pub use error::Error;

pub const SERVICE: &str = "analytics";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50055, http: 8085 };

pub const MIGRATIONS: Migrations = kesu_storage::embed_migrations!();

/// Analytics' default `CONSUMER_LINGER`: its counts are at most this much
/// later, and at a low rate its batches are tens of events, not one or two.
pub const ANALYTICS_LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// analytics' settings (`KESU_ANALYTICS_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// The weekly report's schedule (`REPORT_WEEKLY`, default on;
    /// `REPORT_WEEKLY_AT`, local time on Monday, default 09:00;
    /// `REPORT_CHECK_INTERVAL`, default 1m). `None`: on demand only.
    pub weekly_report: Option<publish::Schedule>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut common = CommonConfig::from_env(env, SERVICE, PORTS)?;
        // Analytics is off the customer's path: its batches wait up to
        // ANALYTICS_LINGER for more events rather than commit each alone.
        common.consumer =
            ConsumerSettings::from_env_or(env, ConsumerSettings { linger: ANALYTICS_LINGER, ..Default::default() })?;
        let on = env.flag("REPORT_WEEKLY", true)?;
        let at_text = env.string("REPORT_WEEKLY_AT", "09:00")?;
        let at = chrono::NaiveTime::parse_from_str(&at_text, "%H:%M").map_err(|_| ConfigError {
            key: format!("KESU_{}_REPORT_WEEKLY_AT", SERVICE.to_ascii_uppercase()),
            message: format!("invalid value {at_text:?}: a local time HH:MM"),
        })?;
        let every = env.duration("REPORT_CHECK_INTERVAL", std::time::Duration::from_secs(60))?;
        Ok(Self { common, weekly_report: on.then_some(publish::Schedule { at, every }) })
    }
}

pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.wait().await
}

pub async fn start(config: Config, shutdown: CancellationToken) -> Result<RunningService, StartError> {
    let settings = config.common.consumer.clone();
    let policy = config.common.policy.clone();
    let mut core = ServiceCore::start(config.common, MIGRATIONS, shutdown).await?;
    // The four streams in shared batches: one commit for what is ready on all.
    let specs = [FEEDBACK, TICKETS, SLA, NOTIFICATIONS]
        .into_iter()
        .map(|stream| ConsumerSpec::new(stream, SERVICE, settings.clone()))
        .collect();
    let handler = Arc::new(EventCounter { policy: policy.clone() });
    core.consume_merged(specs, handler.clone());
    let rebuilder = rebuild::Rebuilder {
        bus: core.bus.clone(),
        db: core.db.clone(),
        outbox: core.outbox.clone(),
        handler,
        streams: vec![FEEDBACK, TICKETS, SLA, NOTIFICATIONS],
        durable: SERVICE,
    };
    let analytics = api::Analytics::new(core.db.clone(), policy.clone());
    if let Some(schedule) = config.weekly_report {
        let task = publish::run_schedule(analytics.clone(), core.outbox.clone(), schedule, core.shutdown_token());
        core.spawn_worker(task);
    }
    let http = http::router(http::HttpState {
        analytics: analytics.clone(),
        verifier: core.config.auth.verifier.clone(),
        outbox: core.outbox.clone(),
    });

    let (router, health) = kesu_runtime::grpc_router(
        kesu_proto::v1::analytics_service_server::SERVICE_NAME,
        core.auth_layer(&roles::TABLE),
    );
    health.set_serving::<AnalyticsServiceServer<grpc::AnalyticsApi>>().await;
    let router = router.add_service(AnalyticsServiceServer::new(grpc::AnalyticsApi::new(analytics, rebuilder)));
    core.serve(router, health, Some(http)).await
}

/// Counts the events of all four streams (told apart by the stream) and
/// keeps the ticket and SLA facts.
pub(crate) struct EventCounter {
    policy: Arc<Policy>,
}

impl Handler for EventCounter {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let (meta, facts) = match d.stream.as_str() {
            s if s == FEEDBACK.name => {
                let e: FeedbackEvent = d.decode(type_names::FEEDBACK_EVENT)?;
                (e.meta.clone(), facts::of_feedback(&e))
            }
            s if s == TICKETS.name => {
                let e: TicketEvent = d.decode(type_names::TICKET_EVENT)?;
                if let Some(fact) = ingest::TicketFact::of(&e, self.policy.time_zone()) {
                    let at = occurred_ms(e.meta.as_ref()).unwrap_or(fact.received_ms);
                    work.batch_state::<Batch>().facts.ticket(fact, at);
                }
                (e.meta.clone(), facts::of_ticket(&e))
            }
            s if s == SLA.name => {
                let e: SlaEvent = d.decode(type_names::SLA_EVENT)?;
                for outcome in ingest::ClockOutcome::of(&e) {
                    work.batch_state::<Batch>().facts.clock(outcome);
                }
                (e.meta.clone(), facts::of_sla(&e))
            }
            s if s == NOTIFICATIONS.name => {
                let e: NotificationEvent = d.decode(type_names::NOTIFICATION_EVENT)?;
                (e.meta.clone(), facts::of_notification(&e))
            }
            other => return Err(HandleError::Permanent(format!("analytics does not read stream {other}"))),
        };
        if facts.is_empty() {
            return Ok(());
        }
        let day = self.local_day(meta.as_ref());
        // Summed over the batch and written once per counter in before_commit.
        let counts = &mut work.batch_state::<Batch>().counts;
        for (metric, dim, amount) in facts {
            *counts.entry((day.clone(), metric, dim)).or_default() += amount;
        }
        Ok(())
    }

    async fn before_commit(&self, work: &mut UnitOfWork) -> Result<(), HandleError> {
        let batch = work.take_batch_state::<Batch>();
        store::add(work.conn(), &batch.counts).await?;
        batch.facts.write(work.conn()).await?;
        Ok(())
    }
}

/// What a batch accumulates (the unit of work holds one state): counters
/// and facts, written once before commit.
#[derive(Default)]
struct Batch {
    counts: store::Counts,
    facts: ingest::Pending,
}

fn occurred_ms(meta: Option<&EventMeta>) -> Option<i64> {
    meta.and_then(|m| m.occurred_at.as_ref()).and_then(kesu_domain::time::from_timestamp).map(|t| t.timestamp_millis())
}

impl EventCounter {
    /// The local day the fact happened on (when it was counted, if the
    /// event does not say).
    fn local_day(&self, meta: Option<&EventMeta>) -> String {
        let at = meta
            .and_then(|m| m.occurred_at.as_ref())
            .and_then(kesu_domain::time::from_timestamp)
            .unwrap_or_else(Utc::now);
        at.with_timezone(&self.policy.time_zone()).format("%Y-%m-%d").to_string()
    }
}
