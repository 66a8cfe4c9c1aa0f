//! Where the end-to-end time goes: each consumer's time applying batches
//! (`bus_handle_seconds`) and messages handled (`bus_consumed`), read from
//! every service's `/metrics` before and after the saturating phase.

use std::collections::BTreeMap;

use kesu_system_tests::{SERVICES, TestSystem};

/// Per service and stream: (seconds applying batches, batches, messages).
#[derive(Debug, Default, Clone)]
pub struct Snapshot(BTreeMap<String, (f64, f64, f64)>);

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}=\""))? + name.len() + 2;
    line[at..].split('"').next()
}

impl Snapshot {
    pub async fn read(system: &TestSystem) -> anyhow::Result<Snapshot> {
        Self::read_of(system, &SERVICES).await
    }

    /// The figures of some services only (those running).
    pub async fn read_of(system: &TestSystem, services: &[&str]) -> anyhow::Result<Snapshot> {
        let client = reqwest::Client::new();
        let mut s = Snapshot::default();
        for service in services {
            let text = client.get(system.endpoint(service).http_url("/metrics")).send().await?.text().await?;
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let Some((series, value)) = line.rsplit_once(' ') else { continue };
                let Ok(value) = value.parse::<f64>() else { continue };
                let Some(stream) = label(series, "stream") else { continue };
                let key = format!("{service} <- {stream}");
                let entry = s.0.entry(key).or_default();
                if series.starts_with("kesu_bus_handle_seconds_sum") {
                    entry.0 += value;
                } else if series.starts_with("kesu_bus_handle_seconds_count") {
                    entry.1 += value;
                } else if series.starts_with("kesu_bus_consumed_total") {
                    entry.2 += value;
                }
            }
        }
        Ok(s)
    }

    /// Prints, per consumer, milliseconds applying batches per feedback,
    /// batches and the mean batch size since `before`.
    pub fn print_since(&self, before: &Snapshot, feedbacks: usize) {
        self.print_per(before, feedbacks, "feedback")
    }

    /// As [`Self::print_since`], per `unit` (of which there were `n`).
    pub fn print_per(&self, before: &Snapshot, n: usize, unit: &str) {
        let feedbacks = n;
        println!("  time applying batches, per consumer (wall clock, ms per {unit}; batches; mean batch):");
        for (key, (secs, batches, msgs)) in &self.0 {
            let (s0, b0, m0) = before.0.get(key).copied().unwrap_or_default();
            let (secs, batches, msgs) = (secs - s0, batches - b0, msgs - m0);
            if batches <= 0.0 {
                continue;
            }
            println!(
                "    {key:<48} {:>7.3} ms  {:>7.0}  {:>6.1}",
                secs * 1000.0 / feedbacks as f64,
                batches,
                msgs / batches
            );
        }
    }
}
