//! The figures of one configuration, the table `make bench` prints and
//! `target/bench/latest.json`, whose keys stay stable so runs compare.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::load::{Latencies, Percentiles};

/// What one configuration (durable or fast) measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub name: &'static str,
    pub sqlite_synchronous: &'static str,
    pub raw_publish_per_s: f64,
    pub raw_consume_per_s: f64,
    pub feedbacks: usize,
    pub e2e_per_s: f64,
    pub publishes_per_feedback: f64,
    pub consumes_per_feedback: f64,
    pub cpu_per_feedback: Duration,
    /// The load the latency phase aimed at, and what it offered.
    pub target_per_s: f64,
    pub offered_per_s: f64,
    pub latency_secs: f64,
    pub latency: Latencies,
    /// intake alone (raw feedback in, accepted events out).
    pub intake: Option<crate::intake::Figures>,
    /// notification alone (events in, notices out).
    pub notification: Option<crate::notifications::Figures>,
    /// analytics alone (ingest, 90-day queries).
    pub analytics: Option<crate::analytics::Figures>,
}

impl Figures {
    pub fn e2e_ratio(&self) -> f64 {
        self.e2e_per_s / self.raw_publish_per_s
    }

    /// The best the broker allows for this many publishes and consumes per
    /// feedback at the raw rates: 1 / (publishes / raw publish + consumes /
    /// raw consume).
    pub fn bound_per_s(&self) -> f64 {
        1.0 / (self.publishes_per_feedback / self.raw_publish_per_s
            + self.consumes_per_feedback / self.raw_consume_per_s)
    }

    pub fn e2e_of_bound(&self) -> f64 {
        self.e2e_per_s / self.bound_per_s()
    }

    pub fn to_json(&self) -> Value {
        let pct = |p: Percentiles| json!({ "p50": ms(p.p50), "p99": ms(p.p99) });
        json!({
            "raw_publish_per_s": round(self.raw_publish_per_s, 1),
            "raw_consume_per_s": round(self.raw_consume_per_s, 1),
            "e2e_per_s": round(self.e2e_per_s, 1),
            "e2e_ratio": round(self.e2e_ratio(), 4),
            "publishes_per_feedback": round(self.publishes_per_feedback, 3),
            "consumes_per_feedback": round(self.consumes_per_feedback, 3),
            "bound_per_s": round(self.bound_per_s(), 1),
            "e2e_of_bound": round(self.e2e_of_bound(), 4),
            "cpu_ms_per_feedback": round(self.cpu_per_feedback.as_secs_f64() * 1000.0, 3),
            "offered_per_s": round(self.offered_per_s, 1),
            "latency_ms": {
                "feedback_accepted": pct(self.latency.feedback_accepted),
                "ticket_created": pct(self.latency.ticket_created),
                "notification_requested": pct(self.latency.notification_requested),
            },
            "sqlite_synchronous": self.sqlite_synchronous,
            "intake": self.intake.map(|i| i.to_json()),
            "notification": self.notification.map(|n| n.to_json()),
            "analytics": self.analytics.map(|a| a.to_json()),
        })
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0, 2)
}

/// Writes `{"durable": …, "fast": …, "nats_server_version": …, …}`.
pub fn write_json(path: &Path, runs: &[Figures], nats_server_version: &str, backend: &str) -> anyhow::Result<()> {
    let mut doc = serde_json::Map::new();
    for run in runs {
        doc.insert(run.name.to_string(), run.to_json());
    }
    doc.insert("nats_server_version".into(), nats_server_version.into());
    doc.insert("backend".into(), backend.into());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&Value::Object(doc))? + "\n")?;
    Ok(())
}

/// A Markdown table, one column per configuration (`sqlite`: say the
/// SQLite setting in the heading).
pub fn table(runs: &[Figures], sqlite: bool) -> String {
    let mut out = String::new();
    let head: Vec<String> = runs
        .iter()
        .map(|r| if sqlite { format!("{} (SQLite {})", r.name, r.sqlite_synchronous) } else { r.name.to_string() })
        .collect();
    out += &format!("| measure | {} |\n", head.join(" | "));
    out += &format!("|---|{}\n", "---|".repeat(runs.len()));
    let mut row = |label: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = runs.iter().map(cell).collect();
        out += &format!("| {label} | {} |\n", cells.join(" | "));
    };
    row("raw JetStream publish", &|r| format!("{:.0} msg/s", r.raw_publish_per_s));
    row("raw JetStream pull consume + ack", &|r| format!("{:.0} msg/s", r.raw_consume_per_s));
    row("feedback through all five services", &|r| format!("{:.0} /s ({} feedbacks)", r.e2e_per_s, r.feedbacks));
    row("e2e / raw publish", &|r| format!("{:.4}", r.e2e_ratio()));
    row("publishes / consumes per feedback", &|r| {
        format!("{:.2} / {:.2}", r.publishes_per_feedback, r.consumes_per_feedback)
    });
    row("broker bound for that traffic", &|r| format!("{:.0} /s", r.bound_per_s()));
    row("e2e / bound", &|r| format!("{:.4}", r.e2e_of_bound()));
    row("CPU per feedback (bench + services + nats-server)", &|r| {
        format!("{:.2} ms", r.cpu_per_feedback.as_secs_f64() * 1000.0)
    });
    row("latency phase: offered load", &|r| {
        let capped = if r.target_per_s > r.offered_per_s * 1.01 {
            format!(" (target {:.0})", r.target_per_s)
        } else {
            String::new()
        };
        format!("{:.0} /s for {:.0} s{capped}", r.offered_per_s, r.latency_secs)
    });
    row("raw → feedback.evt.accepted p50 / p99", &|r| {
        format!("{} / {} ms", ms(r.latency.feedback_accepted.p50), ms(r.latency.feedback_accepted.p99))
    });
    row("raw → ticket.evt.created p50 / p99", &|r| {
        format!("{} / {} ms", ms(r.latency.ticket_created.p50), ms(r.latency.ticket_created.p99))
    });
    row("raw → notify.evt.requested p50 / p99", &|r| {
        format!("{} / {} ms", ms(r.latency.notification_requested.p50), ms(r.latency.notification_requested.p99))
    });
    row("intake alone: accepted (of raw publish)", &|r| match r.intake {
        Some(i) => format!("{:.0} /s ({:.4})", i.accepted_per_s, i.ratio()),
        None => "—".into(),
    });
    row("notification alone: events in / notices out", &|r| match r.notification {
        Some(n) => format!("{:.0} / {:.0} /s ({:.4} of raw)", n.events_per_s, n.notices_per_s, n.ratio()),
        None => "—".into(),
    });
    row("analytics alone: events in (of raw consume)", &|r| match r.analytics {
        Some(a) => format!("{:.0} /s ({:.4})", a.events_per_s, a.ratio()),
        None => "—".into(),
    });
    row("analytics: 90-day GetRates p50 / p99", &|r| match r.analytics {
        Some(a) => format!(
            "{:.1} / {:.1} ms ({} tickets)",
            a.rates_p50.as_secs_f64() * 1000.0,
            a.rates_p99.as_secs_f64() * 1000.0,
            a.tickets
        ),
        None => "—".into(),
    });
    out
}
