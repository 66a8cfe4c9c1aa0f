//! A service refuses a nats-server older than the minimum supported, and
//! says which versions are involved.

use kesu_bus::server_version::MIN_SUPPORTED;
use kesu_bus::{Bus, BusConfig, BusError};
use kesu_telemetry::MetricsRegistry;
use kesu_testkit::NatsServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Speaks just enough of the NATS protocol to complete a handshake while
/// announcing `version`: INFO, then PONG for every PING.
async fn fake_nats_server(version: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let info = format!(
                    "INFO {{\"server_id\":\"x\",\"server_name\":\"fake\",\"version\":\"{version}\",\"proto\":1,\
                     \"host\":\"127.0.0.1\",\"port\":{port},\"headers\":true,\"max_payload\":1048576,\
                     \"jetstream\":true}}\r\n"
                );
                write.write_all(info.as_bytes()).await?;
                let mut lines = BufReader::new(read).lines();
                while let Some(line) = lines.next_line().await? {
                    if line.trim() == "PING" {
                        write.write_all(b"PONG\r\n").await?;
                    }
                }
                Ok::<_, std::io::Error>(())
            });
        }
    });
    format!("nats://127.0.0.1:{port}")
}

#[tokio::test]
async fn connect_refuses_a_server_older_than_the_minimum() {
    let url = fake_nats_server("2.9.10").await;
    let error = Bus::connect(&BusConfig::local(&url), "versiontest", &MetricsRegistry::default()).await.unwrap_err();
    assert!(matches!(error, BusError::ServerVersion { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("2.9.10"), "names the server's version: {message}");
    assert!(message.contains(&MIN_SUPPORTED.to_string()), "names the minimum: {message}");
    assert_eq!(MIN_SUPPORTED.to_string(), "2.10.0");
}

#[tokio::test]
async fn connect_accepts_the_server_the_project_runs() {
    let nats = NatsServer::start().await.unwrap();
    let bus = Bus::connect(&BusConfig::local(&nats.url()), "versiontest", &MetricsRegistry::default()).await.unwrap();
    assert!(bus.is_connected());
}
