//! Settings every service has.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kesu_bus::{BusConfig, ConsumerSettings};
use kesu_config::{ConfigError, Env};
use kesu_domain::{ContactKey, Policy};

/// Default listen ports of a service.
#[derive(Debug, Clone, Copy)]
pub struct ServicePorts {
    pub grpc: u16,
    pub http: u16,
}

#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// "intake", "routing", "sla-timer", "notification", "analytics".
    pub service: &'static str,
    pub bus: BusConfig,
    pub database_url: String,
    pub db_max_connections: u32,
    /// SQLite's `synchronous`: FULL (default, survives a machine crash) or
    /// NORMAL (the fast configuration).
    pub sqlite_synchronous: kesu_storage::Synchronous,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub consumer: ConsumerSettings,
    pub policy: Arc<Policy>,
    pub policy_file: Option<PathBuf>,
    /// How often the outbox relay looks for rows nobody woke it for.
    pub outbox_poll: std::time::Duration,
    /// Staff tokens on the gRPC API (`AUTH_*`).
    pub auth: kesu_auth::AuthConfig,
}

impl CommonConfig {
    /// `DATA_DIR` (default `./data`), `DATABASE_URL` (default
    /// `sqlite://<DATA_DIR>/<service>.db`), `DB_MAX_CONNECTIONS`,
    /// `SQLITE_SYNCHRONOUS` (FULL or NORMAL), `GRPC_ADDR`, `HTTP_ADDR`,
    /// `POLICY_FILE`, `OUTBOX_POLL`, the `AUTH_*` token settings, plus the
    /// bus's and consumers' settings. Each is read as `KESU_<SERVICE>_<KEY>`
    /// first, then `KESU_<KEY>`.
    pub fn from_env(env: &Env, service: &'static str, ports: ServicePorts) -> Result<Self, ConfigError> {
        let data_dir: PathBuf = env.get("DATA_DIR", PathBuf::from("./data"))?;
        let default_db = format!("sqlite://{}/{service}.db", data_dir.display());
        let database_url = env.string("DATABASE_URL", &default_db)?;
        if let Err(e) = kesu_storage::Backend::of_url(&database_url) {
            let key = env.raw("DATABASE_URL").map(|(k, _)| k).unwrap_or_default();
            return Err(ConfigError { key, message: e.to_string() });
        }
        let policy_file: Option<PathBuf> = env.optional("POLICY_FILE")?;
        let policy = Policy::load(policy_file.as_deref()).map_err(|e| ConfigError {
            key: env.raw("POLICY_FILE").map(|(k, _)| k).unwrap_or_else(|| "KESU_POLICY_FILE".into()),
            message: e.to_string(),
        })?;
        Ok(Self {
            service,
            bus: BusConfig::from_env(env)?,
            database_url,
            db_max_connections: env.bounded("DB_MAX_CONNECTIONS", 8, 1, 1000)? as u32,
            sqlite_synchronous: env.get("SQLITE_SYNCHRONOUS", kesu_storage::Synchronous::Full)?,
            grpc_addr: env.socket_addr("GRPC_ADDR", &format!("0.0.0.0:{}", ports.grpc))?,
            http_addr: env.socket_addr("HTTP_ADDR", &format!("0.0.0.0:{}", ports.http))?,
            consumer: ConsumerSettings::from_env(env)?,
            policy: Arc::new(policy),
            policy_file,
            outbox_poll: env.duration("OUTBOX_POLL", std::time::Duration::from_millis(500))?,
            auth: kesu_auth::AuthConfig::from_env(env)?,
        })
    }
}

/// `CONTACT_KEY`: 32 random bytes, base64 (`openssl rand -base64 32`);
/// the same value for intake, routing and notification.
pub fn contact_key(env: &Env) -> Result<ContactKey, ConfigError> {
    let encoded: String = env.required("CONTACT_KEY", "32 random bytes in base64, e.g. `openssl rand -base64 32`")?;
    ContactKey::from_base64(&encoded).map_err(|e| ConfigError {
        key: env.raw("CONTACT_KEY").map(|(k, _)| k).unwrap_or_default(),
        message: e.to_string(),
    })
}
