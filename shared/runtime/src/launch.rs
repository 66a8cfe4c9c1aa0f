//! Running services as a process: one or several named services on one
//! async runtime, each configured from the environment (a bad setting exits
//! 2 naming the key), with one telemetry setup and one graceful shutdown on
//! SIGTERM/SIGINT; when one service stops, the others stop too. Also
//! describes a service's configuration (keys and defaults) for `--help`.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use futures::stream::{FuturesUnordered, StreamExt};
use kesu_config::{COMMON_PREFIX, ConfigError, Env, KeyInfo};
use kesu_telemetry::{LogFormat, TelemetryConfig};
use tokio_util::sync::CancellationToken;

use crate::process::StartError;

type Running = Pin<Box<dyn Future<Output = Result<(), StartError>>>>;
type Launch = Box<dyn FnOnce(CancellationToken) -> Running>;
type Load = Box<dyn Fn(&Env) -> Result<Launch, ConfigError>>;

/// A service a process can run: its name ("intake", "sla-timer", …), how it
/// reads its configuration and how it runs until shutdown.
pub struct Target {
    name: &'static str,
    load: Load,
}

impl Target {
    /// `load` reads the service's configuration (`Config::from_env`), `run`
    /// runs it until the token is cancelled (the service's `run`).
    pub fn new<C, L, R, Fut>(name: &'static str, load: L, run: R) -> Self
    where
        C: 'static,
        L: Fn(&Env) -> Result<C, ConfigError> + 'static,
        R: Fn(C, CancellationToken) -> Fut + Clone + 'static,
        Fut: Future<Output = Result<(), StartError>> + 'static,
    {
        let load = move |env: &Env| -> Result<Launch, ConfigError> {
            let config = load(env)?;
            let run = run.clone();
            Ok(Box::new(move |shutdown| Box::pin(run(config, shutdown)) as Running))
        };
        Self { name, load: Box::new(load) }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The keys this service reads, in order, with their defaults: its
    /// loader run against an environment that holds only `samples`
    /// (stand-in values for required keys, by key without prefix, such as
    /// "CONTACT_KEY"; they are reported as required, not as defaults).
    pub fn describe(&self, samples: &[(&str, String)]) -> Result<Vec<KeyInfo>, ConfigError> {
        let vars = samples.iter().map(|(key, value)| (format!("{COMMON_PREFIX}{key}"), value.clone()));
        let env = Env::from_vars(self.name, vars);
        let _launch = (self.load)(&env)?;
        Ok(env.asked())
    }
}

/// The keys of logging and tracing, read once per process (`KESU_LOG`, …).
pub fn describe_telemetry() -> Vec<KeyInfo> {
    let env = Env::from_vars("all", std::iter::empty());
    telemetry_config(&env, "kesu".into()).expect("the telemetry defaults are valid");
    env.asked()
}

fn telemetry_config(env: &Env, service_name: String) -> Result<TelemetryConfig, ConfigError> {
    Ok(TelemetryConfig {
        service_name,
        log_format: env.get("LOG_FORMAT", LogFormat::Auto)?,
        log_filter: env.string("LOG", "info")?,
        otlp_endpoint: env.optional("OTLP_ENDPOINT")?.or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()),
    })
}

/// Runs one service as the whole process (see [`run_process`]).
pub fn main<C, L, R, Fut>(service: &'static str, load: L, run: R) -> ExitCode
where
    C: 'static,
    L: Fn(&Env) -> Result<C, ConfigError> + 'static,
    R: Fn(C, CancellationToken) -> Fut + Clone + 'static,
    Fut: Future<Output = Result<(), StartError>> + 'static,
{
    run_process(service, vec![Target::new(service, load, run)])
}

/// The body of the `kesu` binary for a target: reads every service's
/// configuration (each from `KESU_<SERVICE>_<KEY>`, falling back to
/// `KESU_<KEY>`; logging from `KESU_<PROCESS>_LOG…`/`KESU_LOG…` where
/// `process` is the target name, e.g. "intake" or "all") and exits 2 naming
/// every bad key; installs telemetry once; turns SIGTERM/SIGINT into a
/// graceful shutdown of all services (a second signal exits at once); runs
/// them until all have stopped. A service that fails or stops stops the
/// others; the exit code is non-zero if any failed.
pub fn run_process(process: &'static str, targets: Vec<Target>) -> ExitCode {
    let process_env = Env::from_process(process);
    let service_name = match targets.as_slice() {
        [only] => format!("kesu-{}", only.name),
        _ => "kesu".to_string(),
    };
    let mut errors = Vec::new();
    let telemetry = telemetry_config(&process_env, service_name).map_err(|e| errors.push(e)).ok();
    let mut launches = Vec::new();
    for target in &targets {
        let own;
        let env = if target.name == process {
            &process_env
        } else {
            own = Env::from_process(target.name);
            &own
        };
        match (target.load)(env).and_then(|launch| env.finish().map(|()| launch)) {
            Ok(launch) => launches.push((target.name, launch)),
            Err(e) => errors.push(e),
        }
    }
    if !targets.iter().any(|t| t.name == process)
        && let Err(e) = process_env.finish()
    {
        errors.push(e);
    }
    let Some(telemetry) = telemetry.filter(|_| errors.is_empty()) else {
        for e in errors {
            eprintln!("kesu {process}: {e}");
        }
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kesu {process}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _guard = match kesu_telemetry::init(&telemetry) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("kesu {process}: {e}");
                return ExitCode::from(2);
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(signals(process, shutdown.clone()));
        let mut running: FuturesUnordered<_> = launches
            .into_iter()
            .map(|(service, launch)| {
                let run = launch(shutdown.clone());
                async move { (service, run.await) }
            })
            .collect();
        let mut failed = false;
        while let Some((service, result)) = running.next().await {
            if let Err(e) = result {
                tracing::error!(service, error = %e, "service failed");
                eprintln!("kesu {service}: {e}");
                failed = true;
            }
            if !shutdown.is_cancelled() {
                tracing::info!(service, "service stopped: stopping the others");
                shutdown.cancel();
            }
        }
        if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
    })
}

async fn signals(process: &'static str, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!(process, "signal received: stopping gracefully (send it again to exit at once)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    std::process::exit(130);
}
