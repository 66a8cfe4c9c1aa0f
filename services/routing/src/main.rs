//! kesu-routing: see the library for what it does; configuration in README.md.

fn main() -> std::process::ExitCode {
    kesu_runtime::main(kesu_routing::SERVICE, kesu_routing::Config::from_env, kesu_routing::run)
}
