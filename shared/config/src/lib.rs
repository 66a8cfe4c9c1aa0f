//! Typed configuration from environment variables.
//!
//! Every service reads keys with its own prefix (`KESU_INTAKE_…`), falling
//! back to the shared prefix (`KESU_…`) for settings all services share
//! (NATS URL, data directory, contact key). A bad value fails start-up with
//! an error naming the key, and a key with the service's prefix that nobody
//! reads (a typo) is reported too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// Prefix shared by all services.
pub const COMMON_PREFIX: &str = "KESU_";

/// A setting that cannot be used, naming the environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A view of the environment for one service.
#[derive(Debug)]
pub struct Env {
    service_prefix: String,
    vars: BTreeMap<String, String>,
    read: Mutex<BTreeSet<String>>,
}

impl Env {
    /// The process environment, for the service whose key prefix is
    /// `KESU_<SERVICE>_` (`service` like "intake" or "sla-timer").
    pub fn from_process(service: &str) -> Self {
        Self::from_vars(service, std::env::vars())
    }

    /// Given variables (tests, embedding).
    pub fn from_vars(service: &str, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let service_prefix = format!("{COMMON_PREFIX}{}_", service.to_ascii_uppercase().replace('-', "_"));
        Self { service_prefix, vars: vars.into_iter().collect(), read: Mutex::new(BTreeSet::new()) }
    }

    pub fn service_prefix(&self) -> &str {
        &self.service_prefix
    }

    /// The raw value and the variable it came from: the service's own key
    /// first, then the shared one.
    pub fn raw(&self, key: &str) -> Option<(String, &str)> {
        let own = format!("{}{key}", self.service_prefix);
        let common = format!("{COMMON_PREFIX}{key}");
        let mut read = self.read.lock().expect("config lock poisoned");
        read.insert(own.clone());
        for name in [own, common] {
            if let Some(value) = self.vars.get(&name) {
                return Some((name, value.as_str()));
            }
        }
        None
    }

    /// An optional setting parsed with `FromStr`.
    pub fn optional<T>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(key) {
            None => Ok(None),
            Some((name, value)) if value.trim().is_empty() => {
                Err(ConfigError { key: name, message: "is set but empty".into() })
            }
            Some((name, value)) => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| ConfigError { key: name, message: format!("invalid value {value:?}: {e}") }),
        }
    }

    /// A setting with a default.
    pub fn get<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.optional(key)?.unwrap_or(default))
    }

    /// A setting that must be present.
    pub fn required<T>(&self, key: &str, hint: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.optional(key)?.ok_or_else(|| ConfigError {
            key: format!("{}{key}", self.service_prefix),
            message: format!("is required ({hint}); {COMMON_PREFIX}{key} is accepted as well"),
        })
    }

    /// A string setting with a default.
    pub fn string(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        self.get(key, default.to_string())
    }

    /// A secret setting (never printed), optional.
    pub fn secret(&self, key: &str) -> Result<Option<Secret>, ConfigError> {
        Ok(self.optional::<String>(key)?.map(Secret))
    }

    /// A duration such as "30s", "5m", "1h 30m".
    pub fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some((name, value)) => humantime::parse_duration(value.trim()).map_err(|e| ConfigError {
                key: name,
                message: format!("invalid duration {value:?}: {e} (e.g. \"30s\", \"5m\")"),
            }),
        }
    }

    /// A listen address; port 0 asks the system for a free port.
    pub fn socket_addr(&self, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let default: SocketAddr = default.parse().expect("defaults are valid addresses");
        self.get(key, default)
    }

    /// A boolean: true/false/1/0/yes/no/on/off.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some((name, value)) => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError { key: name, message: format!("invalid flag {value:?} (use true or false)") }),
            },
        }
    }

    /// A positive integer within bounds.
    pub fn bounded(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value: u64 = self.get(key, default)?;
        if value < min || value > max {
            let name = self.raw(key).map(|(n, _)| n).unwrap_or_else(|| format!("{}{key}", self.service_prefix));
            return Err(ConfigError { key: name, message: format!("{value} is outside {min}..={max}") });
        }
        Ok(value)
    }

    /// Fails on a variable with this service's prefix that no setting read:
    /// almost always a typo that would otherwise be silently ignored.
    pub fn finish(&self) -> Result<(), ConfigError> {
        let read = self.read.lock().expect("config lock poisoned");
        let unknown: Vec<&String> =
            self.vars.keys().filter(|k| k.starts_with(&self.service_prefix) && !read.contains(*k)).collect();
        match unknown.first() {
            None => Ok(()),
            Some(first) => {
                let known: Vec<String> =
                    read.iter().map(|k| k.trim_start_matches(&self.service_prefix).to_string()).collect();
                Err(ConfigError {
                    key: (*first).clone(),
                    message: format!("unknown setting (known: {})", known.join(", ")),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_vars("sla-timer", pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn own_key_wins_over_common_key() {
        let e = env(&[("KESU_NATS_URL", "nats://common:4222"), ("KESU_SLA_TIMER_NATS_URL", "nats://own:4222")]);
        assert_eq!(e.string("NATS_URL", "x").unwrap(), "nats://own:4222");
        let e = env(&[("KESU_NATS_URL", "nats://common:4222")]);
        assert_eq!(e.string("NATS_URL", "x").unwrap(), "nats://common:4222");
        assert_eq!(env(&[]).string("NATS_URL", "x").unwrap(), "x");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = env(&[("KESU_SLA_TIMER_GRPC_ADDR", "not-an-addr")]);
        let err = e.socket_addr("GRPC_ADDR", "0.0.0.0:1").unwrap_err();
        assert_eq!(err.key, "KESU_SLA_TIMER_GRPC_ADDR");
        assert!(err.to_string().contains("not-an-addr"));
        let err = env(&[("KESU_ACK_WAIT", "soon")]).duration("ACK_WAIT", Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.key, "KESU_ACK_WAIT");
        let err = env(&[("KESU_SLA_TIMER_CONCURRENCY", "0")]).bounded("CONCURRENCY", 8, 1, 1024).unwrap_err();
        assert_eq!(err.key, "KESU_SLA_TIMER_CONCURRENCY");
        let err = env(&[]).required::<String>("CONTACT_KEY", "32 random bytes").unwrap_err();
        assert_eq!(err.key, "KESU_SLA_TIMER_CONTACT_KEY");
    }

    #[test]
    fn typos_are_reported() {
        let e = env(&[("KESU_SLA_TIMER_NATS_ULR", "x"), ("KESU_OTHER_THING", "y")]);
        e.string("NATS_URL", "x").unwrap();
        let err = e.finish().unwrap_err();
        assert_eq!(err.key, "KESU_SLA_TIMER_NATS_ULR");
        assert!(err.message.contains("NATS_URL"));
    }

    #[test]
    fn secrets_do_not_print() {
        let e = env(&[("KESU_NATS_PASSWORD", "hunter2")]);
        let s = e.secret("NATS_PASSWORD").unwrap().unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }
}
