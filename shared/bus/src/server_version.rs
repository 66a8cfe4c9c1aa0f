//! The nats-server versions kesu supports: the version a server announces
//! (`INFO {"version":"2.15.1",...}`) parsed and compared with the minimum.
//!
//! 2.10.0 is the minimum because kesu relies on what it brought: JetStream
//! `sync_interval` (deploy/nats/durable.conf fsyncs every write) and
//! consumers with several filter subjects.

use std::fmt;

/// The oldest nats-server a service connects to.
pub const MIN_SUPPORTED: ServerVersion = ServerVersion { major: 2, minor: 10, patch: 0 };

/// The first nats-server with atomic batch publishing (ADR-50), which the
/// outbox relay uses where the stream allows it: a batch is stored, and
/// with `sync_interval: always` fsynced, once rather than once per message.
pub const ATOMIC_BATCHES: ServerVersion = ServerVersion { major: 2, minor: 12, patch: 0 };

/// `major.minor.patch` of a nats-server; pre-release and build suffixes
/// (`2.11.0-RC.1`, `2.12.0+build`) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl ServerVersion {
    /// Parses `2.15.1`, `v2.15.1`, `2.12.0-RC.2`; `None` when it is not a
    /// version.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().trim_start_matches('v').split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let mut number = || parts.next().map(|p| p.parse::<u64>().ok());
        let major = number()??;
        let minor = number()??;
        let patch = number().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self { major, minor, patch })
    }

    pub fn is_supported(&self) -> bool {
        *self >= MIN_SUPPORTED
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Checks the version a server announced: `Err` with a reason naming the
/// announced and the minimum version when it is older or unreadable.
pub fn check(announced: &str) -> Result<ServerVersion, String> {
    match ServerVersion::parse(announced) {
        Some(version) if version.is_supported() => Ok(version),
        Some(_) => Err(format!(
            "nats-server {announced} is older than the minimum supported {MIN_SUPPORTED} \
             (JetStream sync_interval and multi-filter consumers); upgrade nats-server"
        )),
        None => Err(format!(
            "nats-server announced version {announced:?}, which is not a version; \
             the minimum supported is {MIN_SUPPORTED}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u64, minor: u64, patch: u64) -> ServerVersion {
        ServerVersion { major, minor, patch }
    }

    #[test]
    fn parses_what_servers_announce() {
        assert_eq!(ServerVersion::parse("2.15.1"), Some(v(2, 15, 1)));
        assert_eq!(ServerVersion::parse("v2.10.0"), Some(v(2, 10, 0)));
        assert_eq!(ServerVersion::parse("2.12.0-RC.2"), Some(v(2, 12, 0)));
        assert_eq!(ServerVersion::parse("2.11.3+binary"), Some(v(2, 11, 3)));
        assert_eq!(ServerVersion::parse("2.11"), Some(v(2, 11, 0)));
        for bad in ["", "two", "2", "2.x.1", "2.10.0.1"] {
            assert_eq!(ServerVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn compares_numerically() {
        assert!(v(2, 9, 10) < v(2, 10, 0));
        assert!(v(2, 10, 0) < v(2, 10, 1));
        assert!(v(2, 15, 1) > v(2, 9, 99));
        assert!(v(3, 0, 0) > v(2, 99, 99));
    }

    #[test]
    fn refuses_older_than_the_minimum_naming_both() {
        let error = check("2.9.10").unwrap_err();
        assert!(error.contains("2.9.10") && error.contains("2.10.0"), "{error}");
        assert!(check("garbage").unwrap_err().contains("2.10.0"));
        assert_eq!(check("2.10.0"), Ok(v(2, 10, 0)));
        assert_eq!(check("2.15.1"), Ok(v(2, 15, 1)));
    }
}
