//! kesu-sla-timer: see the library for what it does; configuration in README.md.

fn main() -> std::process::ExitCode {
    kesu_runtime::main(kesu_sla_timer::SERVICE, kesu_sla_timer::Config::from_env, kesu_sla_timer::run)
}
