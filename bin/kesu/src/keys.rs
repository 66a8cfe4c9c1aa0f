//! The configuration keys `kesu --help` lists. Which keys there are, their
//! defaults and whether they are required come from running each service's
//! loader against an empty environment ([`kesu_runtime::Target::describe`]),
//! so the list follows the code; this module adds what each key means.

use std::fmt::Write as _;

use kesu_config::{ConfigError, KeyInfo};

use crate::{SERVICES, target};

/// What each key means, by key without prefix. A test checks that every key
/// a loader reads is here and that nothing here is stale.
const MEANINGS: &[(&str, &str)] = &[
    ("LOG_FORMAT", "log format: json, pretty, or auto (pretty on a terminal)"),
    ("LOG", "log filter, e.g. `info,kesu_bus=debug`"),
    ("OTLP_ENDPOINT", "OTLP/gRPC endpoint for traces (default: $OTEL_EXPORTER_OTLP_ENDPOINT; none: not exported)"),
    ("DATA_DIR", "where SQLite files go"),
    ("DATABASE_URL", "`sqlite://…` or `postgres://user:pass@host/db` (one database per service)"),
    (
        "POLICY_FILE",
        "TOML overriding sections of the shipped policy (taxonomy, SLA targets, calendar, tiers, templates)",
    ),
    ("NATS_URL", "NATS server(s)"),
    ("NATS_USER", "NATS user (one user per service in production; with NATS_PASSWORD)"),
    ("NATS_PASSWORD", "NATS password"),
    ("NATS_TOKEN", "NATS token authentication"),
    ("NATS_TLS_REQUIRED", "require TLS to NATS"),
    ("NATS_TLS_CA_FILE", "CA certificate for the NATS server's certificate"),
    ("NATS_CONNECT_TIMEOUT", "how long start-up keeps trying to reach NATS"),
    ("STREAM_MAX_AGE", "retention of every stream"),
    ("STREAM_DUPLICATE_WINDOW", "JetStream de-duplication window"),
    ("DLQ_MAX_AGE", "retention of the dead-letter stream"),
    ("STREAM_REPLICAS", "stream replicas (3 on a NATS cluster)"),
    ("DB_MAX_CONNECTIONS", "PostgreSQL pool size; SQLite read connections (writes use one of their own)"),
    ("SQLITE_SYNCHRONOUS", "FULL survives a machine crash; NORMAL is the fast configuration"),
    ("GRPC_ADDR", "gRPC listen address (port 0: any free port)"),
    ("HTTP_ADDR", "HTTP listen address: /healthz, /readyz, /metrics"),
    ("CONSUMER_ACK_WAIT", "redelivery if a message is not acknowledged within this time"),
    ("CONSUMER_MAX_DELIVER", "deliveries before a failing message is dead-lettered"),
    ("CONSUMER_BATCH_SIZE", "most messages applied in one transaction (takes what is ready)"),
    ("CONSUMER_MAX_ACK_PENDING", "unacknowledged messages the server lets all replicas hold"),
    ("CONSUMER_RETRY_DELAY", "first retry delay, doubling per delivery"),
    ("CONSUMER_LINGER", "how long a small batch waits for more messages (analytics 50ms, others 0s: what is ready)"),
    ("OUTBOX_POLL", "how often the outbox relay looks for events without being woken"),
    ("CONTACT_KEY", "seals personal data on the bus; the same value for every service that reads it"),
    ("SUBMIT_CONCURRENCY", "request/reply submits handled at once"),
    ("NEEDS_INFO_EXPIRY", "intake: a needs-info feedback not supplemented within this is closed"),
    ("DEDUP_WINDOW", "intake: same customer, near-identical text within this is a duplicate (0s: off)"),
    ("RAW_MAX_AGE", "intake: how long FEEDBACK_RAW keeps raw feedback (personal data in clear)"),
    ("AUTH_JWT_SECRET", "HS256 secret (32+ bytes) staff tokens are signed with (this or AUTH_JWT_PUBLIC_KEY_FILE)"),
    ("AUTH_JWT_PUBLIC_KEY_FILE", "PEM public key of the token issuer (RS*/PS*/ES*/EdDSA, see AUTH_JWT_ALGORITHM)"),
    ("AUTH_JWT_ALGORITHM", "algorithm of AUTH_JWT_PUBLIC_KEY_FILE, e.g. RS256 or EdDSA"),
    ("AUTH_ISSUER", "the iss every token must carry"),
    ("AUTH_AUDIENCE", "the aud every token must carry"),
    ("AUTH_LEEWAY", "clock skew allowed on exp and nbf"),
    ("TIMER_REFRESH", "how often durable timers are reloaded from the database (other replicas' timers)"),
    ("TIMER_HORIZON", "how far ahead the timer loop keeps due instants in memory"),
    ("TIMER_WINDOW_LIMIT", "most due instants the timer loop keeps in memory"),
    ("TIMER_BATCH", "most timers fired in one transaction"),
    ("REPORT_WEEKLY", "analytics: publish the weekly report on a schedule (false: on demand only)"),
    ("REPORT_WEEKLY_AT", "analytics: local time on Monday the weekly report is published (HH:MM)"),
    ("REPORT_CHECK_INTERVAL", "analytics: how often the weekly schedule is checked"),
    ("REQUESTS_MAX_AGE", "notification: how long NOTIFY_REQUESTS keeps requests (they carry addresses)"),
    ("ADDRESS_RETENTION", "notification: how long a delivery record keeps the clear address (for resends)"),
    ("SENDERS", "built-in senders to run here: auto (those configured), none, or a list of email, sms"),
    ("SMTP_HOST", "SMTP server of the built-in email sender (unset: no email sender)"),
    ("SMTP_PORT", "SMTP port (default 587 with starttls, 465 with tls, 25 with none)"),
    ("SMTP_SECURITY", "starttls (required), tls (implicit, port 465) or none"),
    ("SMTP_USER", "SMTP AUTH user (with SMTP_PASSWORD)"),
    ("SMTP_PASSWORD", "SMTP AUTH password"),
    ("SMTP_FROM", "sender mailbox, e.g. \"客服中心 <service@example.com>\"; its domain ends every Message-ID"),
    ("SMTP_CA_FILE", "PEM CA certificate to trust for the SMTP server (private relays)"),
    ("SMTP_TIMEOUT", "SMTP connection and command timeout"),
    ("SMTP_RATE", "most emails sent, e.g. 20/s, 600/min"),
    ("SMS_URL", "HTTP SMS gateway URL (unset: no SMS sender)"),
    ("SMS_METHOD", "HTTP method of the gateway call"),
    ("SMS_BODY", "JSON body template (minijinja): to, text, request_id, locale, template_id, feedback_number, params"),
    ("SMS_AUTH_HEADER", "auth header sent to the gateway, \"Name: value\""),
    ("SMS_IDEMPOTENCY_HEADER", "header carrying the request id, so the gateway sends a request once"),
    ("SMS_MESSAGE_ID_POINTER", "JSON pointer to the gateway's message id in its answer"),
    ("SMS_TIMEOUT", "gateway call timeout"),
    ("SMS_RATE", "most SMS sent, e.g. 10/s, 600/min"),
    (
        "SMS_CALLBACK_TOKEN",
        "token the gateway's delivery receipts must carry (?token= or X-Kesu-Callback-Token); unset: no receipt route",
    ),
    ("SMS_CALLBACK_ID_POINTER", "JSON pointer to the message id (the gateway's or our request id) in a receipt"),
    ("SMS_CALLBACK_STATUS_POINTER", "JSON pointer to the status in a receipt"),
    ("SMS_CALLBACK_ERROR_POINTER", "JSON pointer to the gateway's error code in a receipt"),
    ("SMS_CALLBACK_DELIVERED", "receipt statuses meaning delivered (comma-separated, any case)"),
    ("SMS_CALLBACK_FAILED", "receipt statuses meaning failed (comma-separated, any case)"),
    ("SENDER_MAX_ATTEMPTS", "attempts before a request is failed and dead-lettered"),
    ("SENDER_RETRY_BASE", "first retry delay of a sender, doubling per attempt, with jitter"),
    ("SENDER_RETRY_MAX", "longest retry delay of a sender"),
    ("SENDER_CONCURRENCY", "requests a sender handles at once per channel"),
    ("SENDER_ACK_WAIT", "a sender's ack wait and the lease of a request in flight"),
];

/// Stand-in values for required keys, so that describing runs each loader
/// to its end (they are shown as required, never printed).
fn samples() -> Vec<(&'static str, String)> {
    vec![
        ("CONTACT_KEY", kesu_domain::ContactKey::generate_base64()),
        ("AUTH_JWT_SECRET", kesu_domain::ContactKey::generate_base64()),
    ]
}

/// Every key of the process and of each service.
pub struct Described {
    /// Logging and tracing: read once per process.
    pub process: Vec<KeyInfo>,
    pub services: Vec<(&'static str, Result<Vec<KeyInfo>, ConfigError>)>,
}

pub fn describe() -> Described {
    let samples = samples();
    let services = SERVICES.into_iter().map(|s| (s, target(s).describe(&samples))).collect();
    Described { process: kesu_runtime::describe_telemetry(), services }
}

impl Described {
    fn service(&self, name: &str) -> &Result<Vec<KeyInfo>, ConfigError> {
        &self.services.iter().find(|(s, _)| *s == name).expect("a known service").1
    }

    /// Keys every service reads with the same default.
    fn shared(&self) -> Vec<KeyInfo> {
        let Some((_, Ok(first))) = self.services.first() else { return Vec::new() };
        first
            .iter()
            .filter(|key| self.services.iter().all(|(_, keys)| keys.as_ref().is_ok_and(|keys| keys.contains(key))))
            .cloned()
            .collect()
    }
}

/// `INTAKE_` for "intake", `SLA_TIMER_` for "sla-timer": what follows
/// `KESU_` in a service's own keys.
fn own(service: &str) -> String {
    format!("{}_", service.to_ascii_uppercase().replace('-', "_"))
}

const HEADER: &str = "Configuration: environment variables. A service reads KESU_<SERVICE>_<KEY> first \
(<SERVICE>: INTAKE, ROUTING, SLA_TIMER, NOTIFICATION, ANALYTICS), then KESU_<KEY>, written below as \
KESU_[<SERVICE>_]<KEY>. A bad value, a missing required key, or a KESU_<SERVICE>_ variable nobody reads \
stops the process with exit code 2, naming the variable.";

/// The help of `kesu` and `kesu all`: logging, the keys all services
/// share, then each service's own keys.
pub fn overview(described: &Described) -> String {
    let mut out = format!("{HEADER}\n\nLogging and tracing (once per process; `kesu all` reads KESU_[ALL_]<KEY>):\n");
    for key in &described.process {
        line(&mut out, &format!("KESU_[<SERVICE>_]{}", key.key), key);
    }
    let shared = described.shared();
    out.push_str("\nEvery service:\n");
    for key in &shared {
        line(&mut out, &format!("KESU_[<SERVICE>_]{}", key.key), key);
    }
    for (service, keys) in &described.services {
        let _ = write!(out, "\n{service}:\n");
        match keys {
            Ok(keys) => {
                for key in keys.iter().filter(|k| !shared.contains(k)) {
                    line(&mut out, &format!("KESU_[{}]{}", own(service), key.key), key);
                }
            }
            Err(e) => {
                let _ = writeln!(out, "  (cannot describe: {e})");
            }
        }
    }
    out
}

/// The help of `kesu <service>`: every key it reads, logging included.
pub fn for_service(described: &Described, service: &str) -> String {
    let own = own(service);
    let mut out = format!("{HEADER}\n\n{service} reads:\n");
    let name = |key: &KeyInfo| format!("KESU_[{own}]{}", key.key);
    match described.service(service) {
        Ok(keys) => {
            for key in keys.iter().chain(&described.process) {
                line(&mut out, &name(key), key);
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  (cannot describe: {e})");
        }
    }
    out
}

/// The help of `kesu senders`: the sender keys notification reads, under
/// the senders' own prefix, and the keys every service reads.
pub fn for_senders(described: &Described) -> String {
    let mut out = format!(
        "{HEADER}\n\n`kesu senders` runs the built-in senders of notification on their own, with its own database \
         (KESU_[SENDERS_]DATABASE_URL, default sqlite://./data/senders.db), ports (gRPC 50056: kesu.v1.SenderService; \
         HTTP 8086: health, metrics, SMS receipts) and dead letters (dlq.senders). It reads:\n"
    );
    let sender_key = |k: &KeyInfo| ["SENDER", "SMTP_", "SMS_"].iter().any(|p| k.key.starts_with(p));
    if let Ok(keys) = described.service("notification") {
        for key in keys.iter().filter(|k| sender_key(k)) {
            line(&mut out, &format!("KESU_[SENDERS_]{}", key.key), key);
        }
    }
    out.push_str("\nand, as every service:\n");
    for key in described.shared().iter().chain(&described.process) {
        line(&mut out, &format!("KESU_[SENDERS_]{}", key.key), key);
    }
    out
}

/// One key: its variable, default (or "required") and meaning.
fn line(out: &mut String, variable: &str, key: &KeyInfo) {
    let mut facts = Vec::new();
    match (&key.required, &key.default) {
        (Some(hint), _) => facts.push(format!("required: {hint}")),
        (None, Some(default)) => facts.push(format!("default {default}")),
        (None, None) => facts.push("default: not set".to_string()),
    }
    if let Some(range) = &key.range {
        facts.push(range.clone());
    }
    if key.secret {
        facts.push("secret".to_string());
    }
    let meaning = MEANINGS.iter().find(|(k, _)| *k == key.key).map_or("(no description yet)", |(_, m)| m);
    let _ = writeln!(out, "  {variable}  [{}]\n      {meaning}", facts.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full, valid environment for every service: what the loaders read
    /// when every key is set (not only the defaults describe sees).
    fn full_env(service: &str) -> kesu_config::Env {
        let own = format!("KESU_{}", own(service));
        let vars = [
            ("KESU_NATS_URL".to_string(), "nats://127.0.0.1:4999".to_string()),
            ("KESU_CONTACT_KEY".into(), kesu_domain::ContactKey::generate_base64()),
            ("KESU_AUTH_JWT_SECRET".into(), kesu_domain::ContactKey::generate_base64()),
            ("KESU_DATA_DIR".into(), "/tmp/kesu-keys-test".into()),
            ("KESU_NATS_USER".into(), "kesu".into()),
            ("KESU_NATS_PASSWORD".into(), "secret".into()),
            ("KESU_NATS_TLS_REQUIRED".into(), "true".into()),
            (format!("{own}GRPC_ADDR"), "127.0.0.1:0".into()),
            (format!("{own}HTTP_ADDR"), "127.0.0.1:0".into()),
            (format!("{own}DATABASE_URL"), "postgres://kesu@127.0.0.1/kesu".into()),
        ];
        kesu_config::Env::from_vars(service, vars)
    }

    #[test]
    fn every_key_a_loader_reads_is_in_the_help() {
        let described = describe();
        let overview = overview(&described);
        for service in SERVICES {
            // Load for real with keys set, recording what is read.
            let env = full_env(service);
            load(service, &env);
            let own_help = for_service(&described, service);
            let own = own(service);
            for key in env.asked() {
                let in_own = format!("KESU_[{own}]{}", key.key);
                assert!(own_help.contains(&in_own), "`kesu {service} --help` lists {in_own}:\n{own_help}");
                let shared = format!("KESU_[<SERVICE>_]{}", key.key);
                assert!(
                    overview.contains(&in_own) || overview.contains(&shared),
                    "`kesu --help` lists {} for {service}:\n{overview}",
                    key.key
                );
            }
        }
        for key in kesu_runtime::describe_telemetry() {
            assert!(overview.contains(&format!("KESU_[<SERVICE>_]{}", key.key)), "{}", key.key);
        }
    }

    fn load(service: &str, env: &kesu_config::Env) {
        let result = match service {
            "intake" => kesu_intake::Config::from_env(env).map(drop),
            "routing" => kesu_routing::Config::from_env(env).map(drop),
            "sla-timer" => kesu_sla_timer::Config::from_env(env).map(drop),
            "notification" => kesu_notification::Config::from_env(env).map(drop),
            "analytics" => kesu_analytics::Config::from_env(env).map(drop),
            other => panic!("no service {other}"),
        };
        result.unwrap_or_else(|e| panic!("{service} loads: {e}"));
        env.finish().unwrap_or_else(|e| panic!("{service}: {e}"));
    }

    #[test]
    fn every_key_has_a_meaning_and_no_meaning_is_stale() {
        let described = describe();
        let mut read: Vec<String> = described.process.iter().map(|k| k.key.clone()).collect();
        for (service, keys) in &described.services {
            let keys = keys.as_ref().unwrap_or_else(|e| panic!("{service} can be described: {e}"));
            read.extend(keys.iter().map(|k| k.key.clone()));
        }
        for key in &read {
            assert!(MEANINGS.iter().any(|(k, _)| k == key), "{key} has a meaning in MEANINGS");
        }
        for (key, _) in MEANINGS {
            assert!(read.iter().any(|k| k == key), "{key} in MEANINGS is read by some loader");
        }
    }

    #[test]
    fn the_help_shows_defaults_required_keys_and_per_service_ports() {
        let described = describe();
        let overview = overview(&described);
        assert!(overview.contains("KESU_[<SERVICE>_]NATS_URL  [default nats://127.0.0.1:4222]"), "{overview}");
        assert!(overview.contains("KESU_[INTAKE_]GRPC_ADDR  [default 0.0.0.0:50051]"), "{overview}");
        assert!(overview.contains("KESU_[ANALYTICS_]HTTP_ADDR  [default 0.0.0.0:8085]"), "{overview}");
        assert!(overview.contains("KESU_[INTAKE_]CONTACT_KEY  [required: "), "{overview}");
        assert!(overview.contains("KESU_[ROUTING_]CONTACT_KEY  [required: "), "routing checks rating tokens");
        assert!(overview.contains("KESU_[<SERVICE>_]LOG  [default info]"), "{overview}");
        let sla = for_service(&described, "sla-timer");
        assert!(sla.contains("KESU_[SLA_TIMER_]DATABASE_URL  [default sqlite://./data/sla-timer.db]"), "{sla}");
        assert!(sla.contains("KESU_[SLA_TIMER_]LOG  [default info]"), "{sla}");
    }
}
