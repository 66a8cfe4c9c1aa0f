//! `kesu`: the one binary of the system. `kesu <target>` runs one service
//! (`intake`, `routing`, `sla-timer`, `notification`, `analytics`), and
//! `kesu all` runs all five in one process (development and small
//! installs); `kesu --help` lists the targets and every configuration key
//! with its default and meaning.

mod keys;

/// glibc's malloc took about a fifth of the CPU under load (mostly
/// consolidating freed chunks across threads); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kesu_runtime::Target;

/// The services, in pipeline order.
pub const SERVICES: [&str; 5] = [
    kesu_intake::SERVICE,
    kesu_routing::SERVICE,
    kesu_sla_timer::SERVICE,
    kesu_notification::SERVICE,
    kesu_analytics::SERVICE,
];

#[derive(Debug, Parser)]
#[command(
    name = "kesu",
    version,
    about = "Customer feedback and complaint handling: runs one kesu service, or all of them in one process.",
    long_about = None,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `kesu` runs. The service targets are named as their `SERVICE`.
#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Intake: checks, de-duplicates, numbers and records feedback from every channel.
    Intake,
    /// Routing: turns accepted feedback into tickets and runs their lifecycle.
    Routing,
    /// sla-timer: arms and tracks the response and resolution clocks of every ticket.
    SlaTimer,
    /// Notification: tells customers and staff what DOMAIN.md's rules say, on their channels (and runs the built-in senders when configured).
    Notification,
    /// Analytics: counts feedback, tickets, clocks and notifications for management.
    Analytics,
    /// All five services in one process, each with its own keys and ports (development, small installs).
    All,
    /// The built-in SMTP and HTTP-SMS senders on their own (KESU_SENDERS_* keys: SMTP_*, SMS_*, SENDER_*, plus the common ones).
    Senders,
    /// Mints a staff token for development, signed with KESU_AUTH_JWT_SECRET
    /// (`kesu token --role supervisor --staff s-001 --department after_sales`).
    Token(kesu_auth::TokenArgs),
}

impl Command {
    /// The services this target runs.
    fn services(&self) -> Vec<&'static str> {
        match self {
            Command::Intake => vec![kesu_intake::SERVICE],
            Command::Routing => vec![kesu_routing::SERVICE],
            Command::SlaTimer => vec![kesu_sla_timer::SERVICE],
            Command::Notification => vec![kesu_notification::SERVICE],
            Command::Analytics => vec![kesu_analytics::SERVICE],
            Command::All => SERVICES.to_vec(),
            Command::Senders => vec![kesu_notification::senders::target::SERVICE],
            Command::Token(_) => Vec::new(),
        }
    }

    /// The process name: logging keys are read with it (`KESU_ALL_LOG`,
    /// then `KESU_LOG`).
    fn process(&self) -> &'static str {
        match self.services().as_slice() {
            [only] => only,
            _ => "all",
        }
    }
}

/// A service by name: how it reads its configuration and runs.
pub fn target(service: &'static str) -> Target {
    match service {
        kesu_intake::SERVICE => Target::new(service, kesu_intake::Config::from_env, kesu_intake::run),
        kesu_routing::SERVICE => Target::new(service, kesu_routing::Config::from_env, kesu_routing::run),
        kesu_sla_timer::SERVICE => Target::new(service, kesu_sla_timer::Config::from_env, kesu_sla_timer::run),
        kesu_notification::SERVICE => Target::new(service, kesu_notification::Config::from_env, kesu_notification::run),
        kesu_analytics::SERVICE => Target::new(service, kesu_analytics::Config::from_env, kesu_analytics::run),
        kesu_notification::senders::target::SERVICE => Target::new(
            service,
            kesu_notification::senders::target::Config::from_env,
            kesu_notification::senders::target::run,
        ),
        other => panic!("no service {other:?}"),
    }
}

/// The command line with the configuration keys in the help texts.
fn command() -> clap::Command {
    let described = keys::describe();
    let mut cmd = Cli::command().after_help(keys::overview(&described));
    for service in SERVICES {
        let text = keys::for_service(&described, service);
        cmd = cmd.mut_subcommand(service, |sub| sub.after_help(text));
    }
    let text = keys::overview(&described);
    let senders = keys::for_senders(&described);
    cmd.mut_subcommand("all", |sub| sub.after_help(text)).mut_subcommand("senders", |sub| sub.after_help(senders))
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let command = cli.command;
    if let Command::Token(args) = &command {
        return match args.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kesu token: {e}");
                ExitCode::from(2)
            }
        };
    }
    let targets = command.services().into_iter().map(target).collect();
    kesu_runtime::run_process(command.process(), targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_is_a_target_and_all_runs_the_five() {
        let cmd = Cli::command();
        for service in SERVICES {
            assert!(cmd.find_subcommand(service).is_some(), "`kesu {service}` exists");
            assert_eq!(target(service).name(), service);
        }
        assert_eq!(Command::All.services(), SERVICES);
        assert_eq!(Command::All.process(), "all");
        assert_eq!(Command::SlaTimer.process(), "sla-timer");
        assert_eq!(Command::Senders.process(), "senders");
        assert_eq!(target("senders").name(), "senders");
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }
}
