//! `fake-anthropic`: the fake Anthropic OAuth service as a process, for tests and demos that
//! are not Rust. Prints `listening on http://ADDR` as its first stdout line, logs to stderr,
//! and runs until interrupted.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use switchboard_tests::fake::FakeServer;

/// A faithful fake of Anthropic's OAuth service (see docs/fake-anthropic.md).
#[derive(Debug, Parser)]
#[command(name = "fake-anthropic")]
struct Args {
    /// Address to listen on; port 0 lets the system pick one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let server = FakeServer::bind(args.listen).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", server.url())?;
    stdout.flush()?;
    drop(stdout);
    wait_for_stop().await?;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_stop() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
