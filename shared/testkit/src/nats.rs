//! A private nats-server process with JetStream, found where
//! `scripts/deps.sh` put it and started with one of the project's server
//! configurations (`deploy/nats/durable.conf` or `fast.conf`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The oldest nats-server tests and benchmarks run against (what
/// `scripts/deps.sh` installs or accepts).
pub const MIN_NATS_SERVER: (u64, u64, u64) = (2, 12, 0);

/// Which of the project's nats-server configurations to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsProfile {
    /// `deploy/nats/durable.conf`: every JetStream write is fsynced before
    /// it is acknowledged (`sync_interval: always`).
    Durable,
    /// `deploy/nats/fast.conf`: the server's default sync.
    Fast,
}

impl NatsProfile {
    /// The configuration file's text (the files in `deploy/nats/`).
    pub fn config(self) -> &'static str {
        match self {
            Self::Durable => include_str!("../../../deploy/nats/durable.conf"),
            Self::Fast => include_str!("../../../deploy/nats/fast.conf"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Durable => "durable",
            Self::Fast => "fast",
        }
    }
}

/// Where the nats-server binary is: `KESU_NATS_SERVER`, then the one
/// `scripts/deps.sh` installed in `<workspace>/.tools/`, then `PATH`. A
/// binary older than [`MIN_NATS_SERVER`] is refused.
pub fn find_nats_server() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| locate(std::env::var_os("KESU_NATS_SERVER").map(PathBuf::from)).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate(configured: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = if let Some(path) = configured {
        if !path.is_file() {
            bail!("KESU_NATS_SERVER={} does not exist", path.display());
        }
        path
    } else {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/nats-server");
        let from_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join("nats-server")).collect::<Vec<_>>())
            .unwrap_or_default();
        std::iter::once(tools).chain(from_path).find(|p| p.is_file()).context(
            "nats-server not found: run `scripts/deps.sh` (installs the pinned nats-server into .tools/) \
             or set KESU_NATS_SERVER",
        )?
    };
    let version = nats_server_version(&path)?;
    let (major, minor, patch) = MIN_NATS_SERVER;
    if parse_version(&version).is_none_or(|v| v < MIN_NATS_SERVER) {
        bail!(
            "{} is nats-server {version}, older than the minimum {major}.{minor}.{patch} kesu tests against: \
             run `scripts/deps.sh` (installs the pinned nats-server into .tools/), or point KESU_NATS_SERVER \
             at a newer one",
            path.display()
        );
    }
    Ok(path)
}

/// The version a nats-server binary reports (`nats-server: v2.15.1` →
/// `2.15.1`).
pub fn nats_server_version(binary: &Path) -> anyhow::Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().rsplit(' ').next().unwrap_or_default().trim_start_matches('v');
    if version.is_empty() {
        bail!("{} --version printed no version: {text:?}", binary.display());
    }
    Ok(version.to_string())
}

/// `2.15.1` (or `2.15.1-beta`) as numbers.
fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next().unwrap_or(Some(0))?))
}

/// A nats-server with JetStream on 127.0.0.1, its store in a temp dir. It is
/// killed when dropped; `restart` keeps the port and the store (a broker
/// restart as operations would see it).
pub struct NatsServer {
    binary: PathBuf,
    profile: NatsProfile,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// With the fast configuration (ordinary tests).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(NatsProfile::Fast).await
    }

    /// With the durable configuration (tests of what survives a crash).
    pub async fn start_durable() -> anyhow::Result<Self> {
        Self::start_with(NatsProfile::Durable).await
    }

    pub async fn start_with(profile: NatsProfile) -> anyhow::Result<Self> {
        let binary = find_nats_server()?;
        let dir = tempfile::Builder::new().prefix("kesu-nats-").tempdir()?;
        std::fs::write(dir.path().join("nats.conf"), profile.config())?;
        let mut server = Self { binary, profile, dir, port: 0, child: None };
        server.spawn(None).await?;
        Ok(server)
    }

    pub fn profile(&self) -> NatsProfile {
        self.profile
    }

    /// The binary this server runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The process id while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// SIGKILL, as a crashing broker.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills and starts again on the same port with the same store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn(Some(self.port)).await
    }

    async fn spawn(&mut self, port: Option<u16>) -> anyhow::Result<()> {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)?;
        let port_arg = port.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(self.store_dir())
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(self.dir.path().join("nats.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = read_port(&ports_dir, pid) {
                self.port = found;
                if tokio::net::TcpStream::connect(("127.0.0.1", found)).await.is_ok() {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log = std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default();
                bail!("nats-server exited with {status} before listening:\n{log}");
            }
            if Instant::now() > deadline {
                bail!("nats-server did not start listening within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The client port from the ports file nats-server writes:
/// `{"client":["nats://127.0.0.1:PORT"], ...}`.
fn read_port(dir: &Path, pid: u32) -> Option<u16> {
    let text = std::fs::read_to_string(dir.join(format!("nats-server_{pid}.ports"))).ok()?;
    let start = text.find("nats://")? + "nats://".len();
    let rest = &text[start..];
    let colon = rest.find(':')?;
    let digits: String = rest[colon + 1..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("2.12.0-RC.2"), Some((2, 12, 0)));
        assert_eq!(parse_version("2.12"), Some((2, 12, 0)));
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("2.9.10").unwrap() < MIN_NATS_SERVER);
        assert!(parse_version("2.12.0").unwrap() >= MIN_NATS_SERVER);
    }

    #[test]
    fn an_old_server_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("nats-server");
        std::fs::write(&fake, "#!/bin/sh\necho 'nats-server: v2.9.10'\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let error = format!("{:#}", locate(Some(fake)).unwrap_err());
        assert!(error.contains("2.9.10") && error.contains("2.12.0"), "{error}");
        assert!(error.contains("scripts/deps.sh"), "{error}");
    }

    #[test]
    fn a_missing_configured_server_names_the_key() {
        let error = format!("{:#}", locate(Some("/nonexistent/nats-server".into())).unwrap_err());
        assert!(error.contains("KESU_NATS_SERVER"), "{error}");
    }
}
