//! The `switchboard` binary: parse the command line, send logs to stderr, run the command,
//! and map the outcome to an exit code. stdout belongs to the command's output (and, for
//! `serve`, to the protocol alone).

use std::process::ExitCode;

use clap::Parser;
use switchboard::claude::env::Environment;
use switchboard::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("switchboard=warn")),
        )
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: could not start the async runtime: {error}");
            return ExitCode::from(cli::exit::FAILURE);
        }
    };
    let code = runtime.block_on(cli::run(cli, Environment::from_process()));
    // Stdin may still be read by a blocked thread when the sidecar ends; don't wait for it.
    runtime.shutdown_background();
    ExitCode::from(code)
}
