//! `fake-claude`: the simulated Claude Code as a process, so end-to-end tests can run several
//! of them against one configuration, as several real Claude sessions would.
//!
//! It finds its files as Claude does (`HOME`, `CLAUDE_CONFIG_DIR`) and its token endpoint in
//! `--token-url` or `FAKE_CLAUDE_TOKEN_URL`. Each command prints one JSON line on stdout
//! describing what it did, never a token; logs go to stderr. Exit code 0 means the command
//! ran (whatever its outcome), 1 that it failed.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use switchboard_tests::sim_claude::{LockRetry, Mode, RefreshOptions, SimClaude, TOKEN_URL_ENV};

/// A simulated Claude Code that logs in, refreshes and locks like the real one.
#[derive(Debug, Parser)]
#[command(name = "fake-claude")]
struct Args {
    /// The OAuth token endpoint, e.g. http://127.0.0.1:PORT/v1/oauth/token.
    #[arg(long, env = TOKEN_URL_ENV, global = true, default_value = "")]
    token_url: String,
    /// Tries after the first when a lock is busy.
    #[arg(long, global = true, default_value_t = 5)]
    lock_retries: u32,
    /// Shortest wait between lock tries, in milliseconds.
    #[arg(long, global = true, default_value_t = 1000)]
    lock_retry_min_ms: u64,
    /// Longest wait between lock tries, in milliseconds.
    #[arg(long, global = true, default_value_t = 2000)]
    lock_retry_max_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in as a `/login` would, with a login minted by the fake service.
    Login {
        /// The fake service's base URL (its control API lives there).
        #[arg(long)]
        fake_url: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        organization: String,
    },
    /// Refresh the stored login once.
    Refresh {
        /// Which release's behaviour: v2_1_332 or v2_1_112.
        #[arg(long, default_value = "v2_1_332", value_parser = parse_mode)]
        mode: Mode,
        /// Refresh only when the token is within 5 minutes of expiry.
        #[arg(long)]
        only_if_expiring: bool,
        /// Keep the refresh locks this long before posting.
        #[arg(long, default_value_t = 0)]
        hold_lock_ms: u64,
    },
    /// Log out: delete the login and oauthAccount, revoke the refresh token.
    Logout,
    /// Act as an idle session: refresh whenever the token nears expiry.
    Run {
        #[arg(long, default_value = "v2_1_332", value_parser = parse_mode)]
        mode: Mode,
        /// Check this often, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        every_ms: u64,
        /// Stop after this long, in milliseconds.
        #[arg(long)]
        for_ms: u64,
    },
}

fn parse_mode(name: &str) -> Result<Mode, String> {
    Mode::parse(name).ok_or_else(|| format!("unknown mode {name:?}: use v2_1_332 or v2_1_112"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let retry = LockRetry {
        retries: args.lock_retries,
        min_wait: Duration::from_millis(args.lock_retry_min_ms),
        max_wait: Duration::from_millis(args.lock_retry_max_ms),
    };
    let sim = SimClaude::from_env(args.token_url.clone())?.with_lock_retry(retry);
    let needs_token_url = !matches!(args.command, Command::Login { .. });
    if needs_token_url && args.token_url.is_empty() {
        anyhow::bail!("no token URL: pass --token-url or set {TOKEN_URL_ENV}");
    }
    let report = match args.command {
        Command::Login { fake_url, account, organization } => {
            sim.login(&fake_url, &account, &organization).await.context("login")?;
            json!({"outcome": "logged_in"})
        }
        Command::Refresh { mode, only_if_expiring, hold_lock_ms } => {
            let options = RefreshOptions {
                mode,
                only_if_expiring,
                hold_lock: Duration::from_millis(hold_lock_ms),
            };
            serde_json::to_value(sim.refresh_with(options).await.context("refresh")?)?
        }
        Command::Logout => {
            let revoked = sim.logout().await.context("logout")?;
            json!({"outcome": "logged_out", "revoked": revoked})
        }
        Command::Run { mode, every_ms, for_ms } => {
            let summary =
                sim.run(mode, Duration::from_millis(every_ms), Duration::from_millis(for_ms)).await;
            serde_json::to_value(summary)?
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{report}")?;
    stdout.flush()?;
    Ok(())
}
