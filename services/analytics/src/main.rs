//! kesu-analytics: see the library for what it does; configuration in README.md.

fn main() -> std::process::ExitCode {
    kesu_runtime::main(kesu_analytics::SERVICE, kesu_analytics::Config::from_env, kesu_analytics::run)
}
