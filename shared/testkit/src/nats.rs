//! A private nats-server process with JetStream.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where the nats-server binary is: `KESU_NATS_SERVER`, then `PATH`, then
/// the places Debian's package and manual installs put it.
pub fn find_nats_server() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("KESU_NATS_SERVER") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("KESU_NATS_SERVER={} does not exist", path.display());
    }
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nats-server")).collect::<Vec<_>>())
        .unwrap_or_default();
    let known = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].map(PathBuf::from);
    from_path.into_iter().chain(known).find(|p| p.is_file()).context(
        "nats-server not found: run `make deps` (installs Debian's nats-server package) or set KESU_NATS_SERVER",
    )
}

/// A nats-server with JetStream on 127.0.0.1, its store in a temp dir. It is
/// killed when dropped; `restart` keeps the port and the store (a broker
/// restart as operations would see it).
pub struct NatsServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> anyhow::Result<Self> {
        let binary = find_nats_server()?;
        let dir = tempfile::Builder::new().prefix("kesu-nats-").tempdir()?;
        let mut server = Self { binary, dir, port: 0, child: None };
        server.spawn(None).await?;
        Ok(server)
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
