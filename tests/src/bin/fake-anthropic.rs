//! `fake-anthropic`: the fake Anthropic OAuth service as a process, for tests and demos that
//! are not Rust. Prints `listening on http://ADDR` as its first stdout line, logs to stderr,
//! and runs until interrupted. With `--tls-proxy` it also runs the TLS proxy that leads
//! Anthropic's real host names to it, and prints `proxy on http://ADDR` and
//! `ca bundle at PATH` after the first line.

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
    /// Also run an HTTPS proxy that serves this fake as platform.claude.com and
    /// api.anthropic.com, with certificates from a test CA made for this run.
    #[arg(long)]
    tls_proxy: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let server = FakeServer::bind(args.listen).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", server.url())?;
    let proxy = if args.tls_proxy {
        let proxy = server.start_tls_proxy().await?;
        writeln!(stdout, "proxy on {}", proxy.url())?;
        writeln!(stdout, "ca bundle at {}", proxy.bundle_path().display())?;
        Some(proxy)
    } else {
        None
    };
    stdout.flush()?;
    drop(stdout);
    wait_for_stop().await?;
    tracing::info!("stopping");
    if let Some(proxy) = proxy {
        proxy.shutdown().await;
    }
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
