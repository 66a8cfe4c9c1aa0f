//! Typed configuration from environment variables.
//!
//! Every service reads keys with its own prefix (`KESU_INTAKE_…`), falling
//! back to the shared prefix (`KESU_…`) for settings all services share
//! (NATS URL, data directory, contact key). A bad value fails start-up with
//! an error naming the key, and a key with the service's prefix that nobody
//! reads (a typo) is reported too.
//!
//! Every key a loader asks for is recorded with its default (see
//! [`Env::asked`]), so `kesu --help` can list the configuration from the
//! loaders themselves rather than from a list that could drift.

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

/// A setting a loader asked for: what `kesu --help` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key without prefix, e.g. "NATS_URL".
    pub key: String,
    /// The value used when the key is not set, as text; `None` when unset
    /// means "off" or "none" (or the key is required).
    pub default: Option<String>,
    /// Set for a key without which the service does not start: what to set.
    pub required: Option<String>,
    /// Allowed range of a bounded number, e.g. "1..=1000".
    pub range: Option<String>,
    /// The value is a secret (never printed).
    pub secret: bool,
}

/// A view of the environment for one service.
#[derive(Debug)]
pub struct Env {
    service_prefix: String,
    vars: BTreeMap<String, String>,
    read: Mutex<BTreeSet<String>>,
    asked: Mutex<Vec<KeyInfo>>,
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
        Self {
            service_prefix,
            vars: vars.into_iter().collect(),
            read: Mutex::new(BTreeSet::new()),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// Every key the loaders asked for so far, in the order first asked,
    /// with its default: run a loader against an empty environment to
    /// describe its configuration.
    pub fn asked(&self) -> Vec<KeyInfo> {
        self.asked.lock().expect("config lock poisoned").clone()
    }

    /// Records that a loader asked for `key`; later calls for the same key
    /// add what they know (a default, a range, a hint).
    fn note(&self, key: &str, update: impl FnOnce(&mut KeyInfo)) {
        let mut asked = self.asked.lock().expect("config lock poisoned");
        let index = match asked.iter().position(|k| k.key == key) {
            Some(i) => i,
            None => {
                asked.push(KeyInfo { key: key.to_string(), default: None, required: None, range: None, secret: false });
                asked.len() - 1
            }
        };
        update(&mut asked[index]);
    }

    pub fn service_prefix(&self) -> &str {
        &self.service_prefix
    }

    /// The variable to name in an error about `key`: the one that set it,
    /// else the service's own (`KESU_<SERVICE>_<key>`).
    pub fn name_of(&self, key: &str) -> String {
        self.raw(key).map(|(name, _)| name).unwrap_or_else(|| format!("{}{key}", self.service_prefix))
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
        self.note(key, |_| {});
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
        T: FromStr + fmt::Debug,
        T::Err: fmt::Display,
    {
        let shown = format!("{default:?}");
        let shown = shown.strip_prefix('"').and_then(|s| s.strip_suffix('"')).map(str::to_string).unwrap_or(shown);
        self.note(key, |k| k.default = Some(shown));
        Ok(self.optional(key)?.unwrap_or(default))
    }

    /// A setting that must be present.
    pub fn required<T>(&self, key: &str, hint: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.note(key, |k| k.required = Some(hint.to_string()));
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
        self.note(key, |k| k.secret = true);
        Ok(self.optional::<String>(key)?.map(Secret))
    }

    /// A duration such as "30s", "5m", "1h 30m".
    pub fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.note(key, |k| k.default = Some(humantime::format_duration(default).to_string()));
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
        self.note(key, |k| k.default = Some(default.to_string()));
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
        self.note(key, |k| k.range = Some(format!("{min}..={max}")));
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
    fn loaders_are_described_by_what_they_ask() {
        let e = env(&[]);
        e.string("NATS_URL", "nats://127.0.0.1:4222").unwrap();
        e.get("DATA_DIR", std::path::PathBuf::from("./data")).unwrap();
        e.duration("ACK_WAIT", Duration::from_secs(30)).unwrap();
        e.bounded("CONCURRENCY", 8, 1, 1024).unwrap();
        e.secret("NATS_PASSWORD").unwrap();
        e.flag("TLS", false).unwrap();
        let _ = e.required::<String>("CONTACT_KEY", "32 random bytes");
        e.string("NATS_URL", "nats://127.0.0.1:4222").unwrap();
        let asked = e.asked();
        let keys: Vec<&str> = asked.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["NATS_URL", "DATA_DIR", "ACK_WAIT", "CONCURRENCY", "NATS_PASSWORD", "TLS", "CONTACT_KEY"]);
        let defaults: Vec<Option<&str>> = asked.iter().map(|k| k.default.as_deref()).collect();
        assert_eq!(
            defaults,
            [Some("nats://127.0.0.1:4222"), Some("./data"), Some("30s"), Some("8"), None, Some("false"), None]
        );
        assert_eq!(asked[3].range.as_deref(), Some("1..=1024"));
        assert!(asked[4].secret);
        assert_eq!(asked[6].required.as_deref(), Some("32 random bytes"));
    }

    #[test]
    fn secrets_do_not_print() {
        let e = env(&[("KESU_NATS_PASSWORD", "hunter2")]);
        let s = e.secret("NATS_PASSWORD").unwrap().unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }
}
