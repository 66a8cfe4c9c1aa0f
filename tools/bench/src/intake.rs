//! intake on its own: raw feedback in (`feedback.raw.web`, pipelined) and
//! `feedback.evt.accepted` out, against raw JetStream publish of messages
//! the size of the same feedback on the same server. Only intake runs.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use kesu_system_tests::{Backend, TestSystem, feedback};
use kesu_testkit::NatsProfile;
use prost::Message;
use serde_json::{Value, json};

use crate::{load, raw};

#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub feedbacks: usize,
    pub raw_publish_per_s: f64,
    /// Raw feedback taken in and announced accepted per second.
    pub accepted_per_s: f64,
}

impl Figures {
    pub fn ratio(self) -> f64 {
        self.accepted_per_s / self.raw_publish_per_s
    }

    pub fn to_json(self) -> Value {
        json!({
            "feedbacks": self.feedbacks,
            "raw_publish_per_s": (self.raw_publish_per_s * 10.0).round() / 10.0,
            "accepted_per_s": (self.accepted_per_s * 10.0).round() / 10.0,
            "ratio": (self.ratio() * 10_000.0).round() / 10_000.0,
        })
    }
}

/// Accepted events in the FEEDBACK stream.
async fn accepted(system: &TestSystem) -> anyhow::Result<u64> {
    let stream = system.js.get_stream("FEEDBACK").await?;
    let counts: Vec<(String, usize)> = stream.info_with_subjects("feedback.evt.accepted").await?.try_collect().await?;
    Ok(counts.iter().map(|(_, n)| *n as u64).sum())
}

async fn wait_accepted(system: &TestSystem, want: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    while accepted(system).await? < want {
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("intake did not accept {want} feedbacks within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

pub async fn measure(
    profile: NatsProfile,
    backend: Backend,
    sqlite_synchronous: &str,
    n: usize,
) -> anyhow::Result<Figures> {
    let env = [("KESU_SQLITE_SYNCHRONOUS", sqlite_synchronous)];
    let system = TestSystem::try_start_on(profile, backend, &["intake"], &env)
        .await
        .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not reachable at 127.0.0.1:5432"))?;
    kesu_telemetry::set_spans_exported(false);
    let payload = feedback::robot_vacuum("bench-0000000").encode_to_vec().len();
    let (_, raw_publish_per_s) = raw::publish(&system.js, 20_000, payload, Duration::from_secs(8)).await?;

    let warmup = 300;
    load::publish(&system, "intake-warm", warmup, None).await?;
    wait_accepted(&system, warmup as u64).await?;
    let start = Instant::now();
    load::publish(&system, "intake", n, None).await?;
    wait_accepted(&system, (warmup + n) as u64).await?;
    let elapsed = start.elapsed().as_secs_f64();
    system.stop().await;
    Ok(Figures { feedbacks: n, raw_publish_per_s, accepted_per_s: n as f64 / elapsed })
}
