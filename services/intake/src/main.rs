//! kesu-intake: see the library for what it does; configuration in README.md.

fn main() -> std::process::ExitCode {
    kesu_runtime::main(kesu_intake::SERVICE, kesu_intake::Config::from_env, kesu_intake::run)
}
