//! Benchmarks of Switchboard against the fake Anthropic service on 127.0.0.1, run by
//! `scripts/bench.sh` and written up in `docs/benchmarks.md`.
//!
//! Each section builds its own scratch world (HOME, vault, fake service) and measures one
//! thing a person waits for:
//!
//! - `list`: an `account/list` round trip, over an in-memory pipe to the sidecar and over the
//!   real pipes of a `switchboard serve` process.
//! - `switch`: `account/use` through the sidecar, with a fresh target and with an expiring one,
//!   plus the network requests each switch made, counted by the fake.
//! - `requests`: the request counts of a switch in every situation the design's cost claim is
//!   about, switching through the service in process.
//! - `cli`: `switchboard list` and `switchboard use -` as whole processes, timed by hyperfine.
//! - `latency`: from a switch asked of one process to `account/didChange` at another sidecar.
//!
//! The numbers are only meaningful from a release build: `cargo bench` builds this program
//! with the bench profile (release), and the sidecar and CLI sections run the release
//! `switchboard` binary next to it. The program takes section names as arguments to run only
//! those, and `--quick` for a few iterations each (a smoke run, not a measurement).
//!
//! Every measured operation is checked (a switch must answer the alias it was asked for), so a
//! broken build fails here instead of producing fast numbers.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use switchboard::rpc::{Connection, Framing as RpcFraming};
use switchboard::service::Service;
use switchboard_tests::fake::{RequestCounts, SettingsUpdate};
use switchboard_tests::harness::{Framing, Scratch, switchboard_bin};
use switchboard_tests::sim_claude::Mode;

/// Room in each direction of the in-memory pipe, as the rpc module's own pair uses.
const PIPE_BYTES: usize = 64 * 1024;
/// An access token lifetime well inside Claude's five-minute margin, so every login the fake
/// hands out is already `expiring` and every switch to it must refresh it first.
const EXPIRING_LIFETIME_SECS: u64 = 120;
/// The pause after each switch through a sidecar, outside the timed part, in which the
/// sidecar's own watcher sees the files the switch wrote and reconciles. Without it the next
/// switch would queue behind that reconcile and measure it too.
const SETTLE_AFTER_SWITCH: Duration = Duration::from_millis(150);

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Cargo passes `--bench`; every other word is a section name.
    let chosen: Vec<&str> =
        args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    let wanted = |section: &str| chosen.is_empty() || chosen.contains(&section);
    let scale = if quick { Scale::Quick } else { Scale::Full };

    let bin = switchboard_bin();
    let mut out = std::io::stdout().lock();
    writeln!(out, "# Switchboard benchmarks\n")?;
    writeln!(out, "switchboard binary: `{}`\n", bin.display())?;
    if wanted("list") {
        section_list(&mut out, scale).await?;
    }
    if wanted("switch") {
        section_switch(&mut out, scale).await?;
    }
    if wanted("requests") {
        section_requests(&mut out, scale).await?;
    }
    if wanted("cli") {
        section_cli(&mut out, scale).await?;
    }
    if wanted("latency") {
        section_latency(&mut out, scale).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Full,
    Quick,
}

impl Scale {
    fn pick(self, full: usize, quick: usize) -> usize {
        match self {
            Scale::Full => full,
            Scale::Quick => quick,
        }
    }
}

/// The spread of one measurement: median and the 10th and 90th percentiles (nearest rank),
/// with the extremes.
#[derive(Debug)]
struct Summary {
    n: usize,
    median: Duration,
    p10: Duration,
    p90: Duration,
    min: Duration,
    max: Duration,
}

impl Summary {
    fn of(samples: &[Duration]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Summary {
            n: sorted.len(),
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }

    fn row(&self, name: &str, unit: Unit, note: &str) -> String {
        let f = |d: Duration| unit.format(d);
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {note} |",
            self.n,
            f(self.median),
            f(self.p10),
            f(self.p90),
            f(self.min),
            f(self.max)
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Micros,
    Millis,
}

impl Unit {
    fn format(self, d: Duration) -> String {
        match self {
            Unit::Micros => format!("{:.0} µs", d.as_secs_f64() * 1e6),
            Unit::Millis => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        }
    }

    fn header(self) -> &'static str {
        "| measurement | n | median | p10 | p90 | min | max | notes |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    }
}

/// The requests one operation made, by endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
    token: u32,
    profile: u32,
    other: u32,
}

impl Cost {
    fn between(before: &RequestCounts, after: &RequestCounts) -> Cost {
        Cost {
            token: after.token - before.token,
            profile: after.profile - before.profile,
            other: (after.account + after.usage + after.revoke)
                - (before.account + before.usage + before.revoke),
        }
    }
}

/// "token 1, profile 0 (20 of 20)", one entry per distinct cost seen.
fn describe_costs(costs: &[Cost]) -> String {
    let mut distinct: Vec<(Cost, usize)> = Vec::new();
    for cost in costs {
        match distinct.iter_mut().find(|(c, _)| c == cost) {
            Some((_, count)) => *count += 1,
            None => distinct.push((*cost, 1)),
        }
    }
    distinct.sort();
    distinct
        .iter()
        .map(|(c, count)| {
            let other = if c.other > 0 { format!(", other {}", c.other) } else { String::new() };
            format!("token {}, profile {}{other} ({count} of {})", c.token, c.profile, costs.len())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A scratch world with `work` and `home` added and Claude Code on `work`, `home` previous,
/// so that `use -` alternates between the two from the first call.
async fn two_accounts(lifetime_secs: Option<u64>) -> Result<(Scratch, Arc<Service>)> {
    let scratch = Scratch::new().await;
    if let Some(secs) = lifetime_secs {
        scratch.fake.control().update_settings(SettingsUpdate {
            access_token_lifetime_secs: Some(secs),
            ..SettingsUpdate::default()
        });
    }
    let work = scratch.account("ada@example.com", "Example Corp");
    let home = scratch.account("ada@home.example", "Ada's Individual Org");
    let service = scratch.service();
    scratch.login(&work).await;
    service.add_account("work").await.context("add work")?;
    scratch.login(&home).await;
    service.add_account("home").await.context("add home")?;
    service.use_account("work").await.context("first switch to work")?;
    Ok((scratch, service))
}

/// The sidecar behind an in-memory pipe: the same `sidecar::run` as `switchboard serve`,
/// watcher included, without a process or an OS pipe in between.
fn memory_sidecar(service: Arc<Service>) -> Connection {
    let (client, server) = tokio::io::duplex(PIPE_BYTES);
    let (server_read, server_write) = tokio::io::split(server);
    tokio::spawn(switchboard::sidecar::run(
        service,
        server_read,
        server_write,
        Some(RpcFraming::Ndjson),
    ));
    let (client_read, client_write) = tokio::io::split(client);
    Connection::new(client_read, client_write, RpcFraming::Ndjson)
}

async fn call(connection: &mut Connection, method: &str, params: Value) -> Result<Value> {
    let response = connection.call(method, Some(params)).await?;
    if let Some(error) = response.error {
        bail!("{method} failed: {} ({})", error.message, error.code);
    }
    response.result.context("an answer without a result")
}

/// Throws away the notifications a connection has queued, without waiting for more.
async fn drain(connection: &mut Connection) {
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_millis(1), connection.recv()).await
    {}
}

/// The alias `use -` will install: the one not active now.
fn other(alias: &str) -> &'static str {
    if alias == "work" { "home" } else { "work" }
}

async fn section_list(out: &mut impl Write, scale: Scale) -> Result<()> {
    let (scratch, service) = two_accounts(None).await?;
    let unit = Unit::Micros;
    writeln!(out, "## account/list round trip\n\n{}", unit.header())?;

    let mut memory = memory_sidecar(service);
    let mut samples = Vec::new();
    let before = scratch.report().requests;
    for i in 0..scale.pick(50 + 2000, 5 + 20) {
        let started = Instant::now();
        let view = call(&mut memory, "account/list", json!({})).await?;
        let took = started.elapsed();
        ensure!(view["accounts"].as_array().map(Vec::len) == Some(2), "two accounts listed");
        if i >= scale.pick(50, 5) {
            samples.push(took);
        }
    }
    let cost = Cost::between(&before, &scratch.report().requests);
    let note = format!("in-memory pipe, ndjson; requests made: {}", cost.token + cost.profile);
    writeln!(out, "{}", Summary::of(&samples).row("sidecar, in memory", unit, &note))?;
    memory.close().await?;

    for framing in [Framing::Ndjson, Framing::Lsp] {
        let mut process = scratch.sidecar(framing).await;
        let mut samples = Vec::new();
        for i in 0..scale.pick(50 + 1000, 5 + 20) {
            let started = Instant::now();
            let answer = process.request("account/list", json!({})).await;
            let took = started.elapsed();
            ensure!(answer["result"]["accounts"].as_array().map(Vec::len) == Some(2), "{answer}");
            if i >= scale.pick(50, 5) {
                samples.push(took);
            }
        }
        let name = format!("`switchboard serve`, {framing:?}");
        writeln!(out, "{}", Summary::of(&samples).row(&name, unit, "real pipes to a process"))?;
        process.close().await;
    }
    writeln!(out)?;
    Ok(())
}

async fn section_switch(out: &mut impl Write, scale: Scale) -> Result<()> {
    let unit = Unit::Millis;
    writeln!(out, "## account/use through the sidecar (in-memory pipe)\n\n{}", unit.header())?;
    for (name, lifetime) in [
        ("fresh target, validated recently", None),
        ("expiring target (refreshed first)", Some(EXPIRING_LIFETIME_SECS)),
    ] {
        let (scratch, service) = two_accounts(lifetime).await?;
        let mut sidecar = memory_sidecar(service.clone());
        // The first look of the watcher is its baseline; let it happen before timing.
        call(&mut sidecar, "account/list", json!({})).await?;
        tokio::time::sleep(SETTLE_AFTER_SWITCH).await;
        let mut active = "work".to_owned();
        let mut samples = Vec::new();
        let mut costs = Vec::new();
        for i in 0..scale.pick(5 + 100, 2 + 5) {
            drain(&mut sidecar).await;
            let before = scratch.report().requests;
            let started = Instant::now();
            let used = call(&mut sidecar, "account/use", json!({"alias": "-"})).await?;
            let took = started.elapsed();
            let after = scratch.report().requests;
            let expected = other(&active);
            ensure!(used["active"]["alias"] == expected, "switched to {expected}: {used}");
            active = expected.to_owned();
            if i >= scale.pick(5, 2) {
                samples.push(took);
                costs.push(Cost::between(&before, &after));
            }
            tokio::time::sleep(SETTLE_AFTER_SWITCH).await;
        }
        let note = format!("requests per switch: {}", describe_costs(&costs));
        writeln!(out, "{}", Summary::of(&samples).row(name, unit, &note))?;
        sidecar.close().await?;
    }
    writeln!(out)?;
    Ok(())
}

/// What is done to the world before each measured switch, outside the timed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// Nothing: the live login is the outgoing account's snapshot, the target was validated
    /// at its last switch.
    Nothing,
    /// The target's last validation is forgotten (as when it is older than 15 minutes).
    ForgetValidation,
    /// Claude refreshes the live login, so the outgoing tokens match no snapshot.
    ClaudeRefreshes,
    /// Claude refreshes the live login, and then its access token expires unused.
    ClaudeRefreshesThenExpires,
    /// Both: Claude refreshed the live login and the target's validation is forgotten.
    ClaudeRefreshesAndForgetValidation,
}

async fn section_requests(out: &mut impl Write, scale: Scale) -> Result<()> {
    let unit = Unit::Millis;
    writeln!(
        out,
        "## Requests per switch, by situation (service in process)\n\n{}",
        unit.header()
    )?;
    let cases = [
        ("fresh target, validated recently; outgoing synced", None, Before::Nothing),
        ("fresh target, not validated recently", None, Before::ForgetValidation),
        ("expiring target", Some(EXPIRING_LIFETIME_SECS), Before::Nothing),
        ("fresh target; Claude rotated the outgoing login", None, Before::ClaudeRefreshes),
        (
            "fresh target; Claude rotated the outgoing login, then it expired",
            None,
            Before::ClaudeRefreshesThenExpires,
        ),
        (
            "fresh target, not validated recently; Claude rotated the outgoing login",
            None,
            Before::ClaudeRefreshesAndForgetValidation,
        ),
    ];
    for (name, lifetime, before_each) in cases {
        let (scratch, service) = two_accounts(lifetime).await?;
        let mut active = "work".to_owned();
        let mut samples = Vec::new();
        let mut costs = Vec::new();
        for _ in 0..scale.pick(20, 3) {
            prepare(&scratch, &service, before_each).await?;
            let before = scratch.report().requests;
            let started = Instant::now();
            let used = service.use_account("-").await.context("switch")?;
            let took = started.elapsed();
            let after = scratch.report().requests;
            let expected = other(&active);
            ensure!(used.active.alias == expected, "switched to {expected}");
            active = expected.to_owned();
            samples.push(took);
            costs.push(Cost::between(&before, &after));
        }
        let note = format!("requests per switch: {}", describe_costs(&costs));
        writeln!(out, "{}", Summary::of(&samples).row(name, unit, &note))?;
    }
    writeln!(out)?;
    Ok(())
}

async fn prepare(scratch: &Scratch, service: &Service, before: Before) -> Result<()> {
    let forget =
        matches!(before, Before::ForgetValidation | Before::ClaudeRefreshesAndForgetValidation);
    let refresh = matches!(
        before,
        Before::ClaudeRefreshes
            | Before::ClaudeRefreshesThenExpires
            | Before::ClaudeRefreshesAndForgetValidation
    );
    if forget {
        let mut catalog = service.vault().read_catalog()?;
        for record in &mut catalog.accounts {
            record.validated_at = None;
        }
        service.vault().write_catalog(&catalog)?;
    }
    if refresh {
        scratch.claude().refresh(Mode::V2_1_332).await.context("Claude's refresh")?;
    }
    if before == Before::ClaudeRefreshesThenExpires {
        scratch.expire_live_login();
    }
    Ok(())
}

async fn section_cli(out: &mut impl Write, scale: Scale) -> Result<()> {
    let unit = Unit::Millis;
    writeln!(out, "## The CLI as whole processes (hyperfine)\n")?;
    let hyperfine = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths).map(|p| p.join("hyperfine")).find(|p| p.is_file())
        })
        .context("hyperfine is not on PATH: `apt-get install -y hyperfine` or scripts/bench.sh")?;
    let (scratch, _service) = two_accounts(None).await?;
    let bin = switchboard_bin();
    let bin = bin.to_str().context("a binary path hyperfine can take")?;
    ensure!(!bin.contains(' '), "hyperfine without a shell splits commands at spaces: {bin}");
    let export = scratch.dir.path().join("hyperfine.json");
    let (warmup, runs) = (scale.pick(5, 1), scale.pick(60, 3));
    let before = scratch.report().requests;
    let status = tokio::process::Command::new(&hyperfine)
        .args(["--shell=none", "--style=basic", "--warmup", &warmup.to_string()])
        .args(["--runs", &runs.to_string(), "--export-json"])
        .arg(&export)
        .arg(format!("{bin} --version"))
        .arg(format!("{bin} list"))
        .arg(format!("{bin} use -"))
        .env_clear()
        .envs(scratch.env_pairs())
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .await
        .context("run hyperfine")?;
    ensure!(status.success(), "hyperfine failed: {status}");
    let switches = (warmup + runs) as u32;
    let cost = Cost::between(&before, &scratch.report().requests);

    let report: Value = serde_json::from_slice(&std::fs::read(&export)?)?;
    writeln!(out, "{}", unit.header())?;
    let results = report["results"].as_array().context("hyperfine's results")?;
    for result in results {
        let times: Vec<Duration> = result["times"]
            .as_array()
            .context("hyperfine's times")?
            .iter()
            .filter_map(Value::as_f64)
            .map(Duration::from_secs_f64)
            .collect();
        let command = result["command"].as_str().unwrap_or_default().replace(bin, "switchboard");
        let note = match command.as_str() {
            "switchboard use -" => format!(
                "each run is a switch; requests over {switches} switches: token {}, profile {}",
                cost.token, cost.profile
            ),
            "switchboard --version" => "process start and exit only".to_owned(),
            _ => String::new(),
        };
        writeln!(out, "{}", Summary::of(&times).row(&format!("`{command}`"), unit, &note))?;
    }
    writeln!(out)?;
    Ok(())
}

async fn section_latency(out: &mut impl Write, scale: Scale) -> Result<()> {
    let unit = Unit::Millis;
    writeln!(out, "## From a switch to account/didChange at another sidecar\n\n{}", unit.header())?;
    let (scratch, _service) = two_accounts(None).await?;
    let mut first = scratch.sidecar(Framing::Ndjson).await;
    let mut second = scratch.sidecar(Framing::Ndjson).await;
    // Both are up and have read the world, so the first change is a change for both.
    first.request("account/list", json!({})).await;
    second.request("account/list", json!({})).await;
    quiet(&mut second).await;

    let mut active = "work".to_owned();
    let mut from_request = Vec::new();
    let mut from_answer = Vec::new();
    for _ in 0..scale.pick(40, 3) {
        let expected = other(&active);
        let started = Instant::now();
        let used = first.request("account/use", json!({"alias": "-"})).await;
        let answered = Instant::now();
        ensure!(used["result"]["active"]["alias"] == expected, "switched to {expected}: {used}");
        let seen = wait_for_active(&mut second, expected).await?;
        from_request.push(seen - started);
        from_answer.push(seen.saturating_duration_since(answered));
        active = expected.to_owned();
        quiet(&mut second).await;
        quiet(&mut first).await;
    }
    let name = "sidecar to sidecar, from the request";
    writeln!(out, "{}", Summary::of(&from_request).row(name, unit, "two `switchboard serve`"))?;
    let name = "sidecar to sidecar, from the answer";
    writeln!(out, "{}", Summary::of(&from_answer).row(name, unit, "the watcher's share"))?;

    let mut from_cli = Vec::new();
    for _ in 0..scale.pick(20, 2) {
        let expected = other(&active);
        let started = Instant::now();
        let output = scratch.cli(&["use", "-"]).await;
        ensure!(output.status.success(), "switchboard use -: {}", output.status);
        let seen = wait_for_active(&mut second, expected).await?;
        from_cli.push(seen - started);
        active = expected.to_owned();
        quiet(&mut second).await;
    }
    let name = "`switchboard use -` to a sidecar";
    writeln!(out, "{}", Summary::of(&from_cli).row(name, unit, "from the process's start"))?;
    writeln!(out)?;
    first.close().await;
    second.close().await;
    Ok(())
}

/// The moment a sidecar's client hears that `alias` is active.
async fn wait_for_active(
    sidecar: &mut switchboard_tests::harness::SidecarClient,
    alias: &str,
) -> Result<Instant> {
    loop {
        let change = sidecar
            .notification(Duration::from_secs(5))
            .await
            .context("no account/didChange within 5 seconds")?;
        if change["active"] == alias {
            return Ok(Instant::now());
        }
    }
}

/// Reads and drops whatever a sidecar sends until it has been silent for a moment.
async fn quiet(sidecar: &mut switchboard_tests::harness::SidecarClient) {
    while sidecar.read(Duration::from_millis(300)).await.is_some() {}
}
