//! `kesu senders`: the built-in senders as their own process (and
//! Deployment), with their own database (`sender_sends`), dead letters
//! (`dlq.senders`), health, readiness, metrics, the SMS delivery-receipt
//! route on the HTTP port and `kesu.v1.SenderService` on the gRPC port.

use std::sync::Arc;

use kesu_config::{ConfigError, Env};
use kesu_domain::{Clock, SystemClock};
use kesu_proto::v1::sender_service_server::{SenderService, SenderServiceServer};
use kesu_proto::v1::{ChannelSenderStatus, GetSenderStatusRequest, SenderStatus};
use kesu_runtime::{CommonConfig, RunningService, ServiceCore, ServicePorts, StartError};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{ChannelSender, SenderSettings, claims};

pub const SERVICE: &str = "senders";
pub const PORTS: ServicePorts = ServicePorts { grpc: 50056, http: 8086 };

/// `kesu senders`' settings (`KESU_SENDERS_*`, falling back to `KESU_*`).
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub senders: SenderSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, SERVICE, PORTS)?;
        let senders = SenderSettings::from_env(env)?;
        if senders.channels.is_empty() {
            return Err(ConfigError {
                key: format!("{}SENDERS", env.service_prefix()),
                message: "no sender is configured: set SMTP_HOST and SMTP_FROM (email) and/or SMS_URL (sms)".into(),
            });
        }
        Ok(Self { common, senders })
    }
}

pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown, Arc::new(SystemClock)).await?.wait().await
}

pub async fn start(
    config: Config,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> Result<RunningService, StartError> {
    let mut core = ServiceCore::start(config.common, crate::MIGRATIONS, shutdown).await?;
    let started = super::build(&config.senders, &core.bus, &core.db, &core.outbox, clock).map_err(StartError::Other)?;
    for sender in &started.senders {
        core.spawn_worker(sender.clone().run(core.shutdown_token()));
    }
    let (router, health) = kesu_runtime::grpc_router(
        kesu_proto::v1::sender_service_server::SERVICE_NAME,
        core.auth_layer(&crate::roles::SENDER_TABLE),
    );
    health.set_serving::<SenderServiceServer<SenderApi>>().await;
    let api = SenderApi { db: core.db.clone(), senders: started.senders.clone() };
    let router = router.add_service(SenderServiceServer::new(api));
    core.serve(router, health, started.routes).await
}

pub struct SenderApi {
    pub db: kesu_storage::Database,
    pub senders: Vec<Arc<ChannelSender>>,
}

#[tonic::async_trait]
impl SenderService for SenderApi {
    async fn get_sender_status(&self, _: Request<GetSenderStatusRequest>) -> Result<Response<SenderStatus>, Status> {
        let counts = claims::counts(self.db.pool()).await.map_err(|e| kesu_runtime::status::database(&e))?;
        let count = |channel: &str, state: &str| {
            counts.iter().find(|(c, s, _)| c == channel && s == state).map_or(0, |(_, _, n)| *n as u64)
        };
        let channels = self
            .senders
            .iter()
            .map(|s| {
                let channel = super::channel_token(s.channel);
                ChannelSenderStatus {
                    channel: s.channel as i32,
                    sender: s.name().to_string(),
                    sending: count(channel, "sending"),
                    sent: count(channel, "sent"),
                    failed: count(channel, "failed"),
                    rate_per_second: s.rate().per_second(),
                    max_attempts: s.max_attempts(),
                }
            })
            .collect();
        Ok(Response::new(SenderStatus { channels }))
    }
}
