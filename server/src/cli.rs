//! The terminal commands: `serve` (the sidecar), `list`, `status`, `use`, `add`, `remove`.
//! Each is a thin call into the service; `--json` prints the protocol's own answer for
//! scripts, and failures map to documented exit codes.

mod render;

use std::io::{self, Write};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::claude::env::Environment;
use crate::protocol::{ErrorKind, StatusParams};
use crate::rpc::Framing;
use crate::service::{Service, ServiceConfig, ServiceError};

/// Keep several Claude Code logins alive and switch between them.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
pub struct Cli {
    /// Print the protocol's JSON answer instead of text (errors too, as `{"error": …}`).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the JSON-RPC sidecar on stdin and stdout (see docs/protocol.md).
    Serve {
        /// Force a framing instead of detecting it from the first byte.
        #[arg(long, value_parser = ["lsp", "ndjson"])]
        framing: Option<String>,
    },
    /// List the accounts and which one Claude Code is using.
    List,
    /// Show one account in detail (the active one by default).
    Status {
        alias: Option<String>,
        /// Ask the service whether the login is still accepted.
        #[arg(long)]
        validate: bool,
    },
    /// Install an account's login in Claude Code; `-` goes back to the previous one.
    Use { alias: String },
    /// Adopt the login Claude Code has now under a name.
    Add { alias: String },
    /// Forget an account and delete its snapshot.
    Remove { alias: String },
}

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NEEDS_LOGIN: u8 = 3;
    pub const BUSY: u8 = 4;
    pub const UNKNOWN_ACCOUNT: u8 = 5;
    pub const NETWORK: u8 = 6;
    pub const NO_LOGIN: u8 = 7;
    pub const STORE_UNAVAILABLE: u8 = 8;
}

/// Runs one command in `env` and answers the process exit code.
pub async fn run(cli: Cli, env: Environment) -> u8 {
    let service = match ServiceConfig::from_env(env).and_then(Service::open) {
        Ok(service) => Arc::new(service),
        Err(error) => return fail(cli.json, &error),
    };
    let json = cli.json;
    let outcome = match cli.command {
        Command::Serve { framing } => return serve(service, framing).await,
        Command::List => service.list().map(|r| (to_json(&r), render::list(&r))),
        Command::Status { alias, validate } => service
            .status(StatusParams { alias, validate })
            .await
            .map(|r| (to_json(&r), render::status(&r))),
        Command::Use { alias } => {
            service.use_account(&alias).await.map(|r| (to_json(&r), render::used(&r)))
        }
        Command::Add { alias } => {
            service.add_account(&alias).await.map(|r| (to_json(&r), render::added(&r)))
        }
        Command::Remove { alias } => service
            .remove_account(&alias)
            .await
            .map(|r| (to_json(&r), format!("Removed '{}'.\n", r.removed))),
    };
    match outcome {
        Ok((machine, human)) => {
            let text = if json { format!("{machine}\n") } else { human };
            write_stdout(&text);
            exit::OK
        }
        Err(error) => fail(json, &error),
    }
}

async fn serve(service: Arc<Service>, framing: Option<String>) -> u8 {
    let framing = match framing.as_deref() {
        Some("lsp") => Some(Framing::Lsp),
        Some("ndjson") => Some(Framing::Ndjson),
        _ => None,
    };
    match crate::sidecar::run(service, tokio::io::stdin(), tokio::io::stdout(), framing).await {
        Ok(crate::rpc::ExitStatus::Exit { after_shutdown: false }) => exit::FAILURE,
        Ok(_) => exit::OK,
        Err(error) => {
            tracing::error!(%error, "the connection failed");
            exit::FAILURE
        }
    }
}

fn fail(json: bool, error: &ServiceError) -> u8 {
    if json {
        let mut body = error.data();
        body["message"] = serde_json::Value::String(error.to_string());
        write_stdout(&format!("{}\n", serde_json::json!({ "error": body })));
    }
    let _ = writeln!(io::stderr(), "switchboard: {error}");
    exit_code(error)
}

/// The exit code for a failure.
pub fn exit_code(error: &ServiceError) -> u8 {
    match error.kind() {
        Some(ErrorKind::NeedsLogin) => exit::NEEDS_LOGIN,
        Some(ErrorKind::Busy) => exit::BUSY,
        Some(ErrorKind::UnknownAccount) => exit::UNKNOWN_ACCOUNT,
        Some(ErrorKind::Network | ErrorKind::RateLimited) => exit::NETWORK,
        Some(ErrorKind::NoLogin) => exit::NO_LOGIN,
        Some(ErrorKind::StoreUnavailable) => exit::STORE_UNAVAILABLE,
        None => exit::USAGE,
        Some(_) => exit::FAILURE,
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Writes to stdout, treating a closed pipe (`switchboard list | head`) as success.
fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
