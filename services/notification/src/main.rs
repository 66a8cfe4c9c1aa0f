//! kesu-notification: see the library for what it does; configuration in README.md.

fn main() -> std::process::ExitCode {
    kesu_runtime::main(kesu_notification::SERVICE, kesu_notification::Config::from_env, kesu_notification::run)
}
