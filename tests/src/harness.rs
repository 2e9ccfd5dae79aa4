//! A scratch world for one end-to-end test: a fresh `HOME` with Claude Code's folder, a vault,
//! a running fake Anthropic service, and ways to drive Switchboard in process, through its CLI
//! and as a sidecar over real pipes.
//!
//! Switchboard's binary is found through `SWITCHBOARD_BIN`, else beside the test executable
//! in Cargo's target folder; `scripts/test.sh` builds it before the tests run.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::claude::env::Environment;
use switchboard::oauth::Endpoints;
use switchboard::service::{Service, ServiceConfig};
use switchboard::vault::backend::{BACKEND_VAR, BackendKind};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::fake::{AccountIds, FakeServer, MintedLogin, NewAccount, Report};
use crate::sim_claude::{LoginIdentity, LoginTokens, SimClaude};

/// One test's world. Dropping it stops the fake and deletes every file.
#[derive(Debug)]
pub struct Scratch {
    pub dir: TempDir,
    pub home: PathBuf,
    pub vault: PathBuf,
    pub fake: FakeServer,
    /// Variables every Switchboard of this world runs with beyond the basic ones (the
    /// Keychain mode's, say).
    extra_env: Vec<(String, String)>,
}

/// An account created at the fake, with the login `/login` handed out for it.
#[derive(Debug, Clone)]
pub struct TestAccount {
    pub email: String,
    pub organization_name: String,
    pub ids: AccountIds,
}

impl Scratch {
    pub async fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let home = dir.path().join("home");
        let vault = dir.path().join("vault");
        std::fs::create_dir_all(&home).expect("scratch HOME");
        Scratch { dir, home, vault, fake: FakeServer::start().await, extra_env: Vec::new() }
    }

    /// The environment Switchboard runs in: this scratch world and nothing of the caller's.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = vec![
            ("HOME".into(), self.home.display().to_string()),
            ("SWITCHBOARD_HOME".into(), self.vault.display().to_string()),
            ("SWITCHBOARD_TOKEN_URL".into(), self.fake.token_url()),
            ("SWITCHBOARD_API_BASE".into(), self.fake.url()),
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ];
        pairs.extend(self.extra_env.iter().cloned());
        pairs
    }

    pub fn environment(&self) -> Environment {
        self.environment_with(&[])
    }

    /// Makes every Switchboard of this world run with `key=value` from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// [`Scratch::environment`] with some variables more (or changed).
    pub fn environment_with(&self, extra: &[(&str, &str)]) -> Environment {
        extra.iter().fold(Environment::from_pairs(self.env_pairs()), |env, (key, value)| {
            env.with(*key, *value)
        })
    }

    /// A service in this process, as the sidecar would build it.
    pub fn service(&self) -> Arc<Service> {
        self.service_with(&[])
    }

    /// A service in this process, with some variables more.
    pub fn service_with(&self, extra: &[(&str, &str)]) -> Arc<Service> {
        Arc::new(Service::open(self.service_config(extra)).expect("open the service"))
    }

    /// The configuration [`Scratch::service_with`] opens a service with.
    pub fn service_config(&self, extra: &[(&str, &str)]) -> ServiceConfig {
        let env = self.environment_with(extra);
        ServiceConfig {
            endpoints: Endpoints::from_env(Some(&self.fake.token_url()), Some(&self.fake.url())),
            vault_dir: self.vault.clone(),
            vault_backend: BackendKind::from_setting(env.get(BACKEND_VAR))
                .expect("a valid SWITCHBOARD_VAULT_BACKEND"),
            ca_bundle: None,
            env,
        }
    }

    pub fn claude_dir(&self) -> PathBuf {
        self.home.join(".claude")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.claude_dir().join(".credentials.json")
    }

    pub fn global_config_path(&self) -> PathBuf {
        self.home.join(".claude.json")
    }

    /// Creates an account (and organization) at the fake.
    pub fn account(&self, email: &str, organization: &str) -> TestAccount {
        let ids = self
            .fake
            .control()
            .create_account(NewAccount::new(email).organization_name(organization));
        TestAccount { email: email.into(), organization_name: organization.into(), ids }
    }

    /// `work` (ada@example.com) and `home` (ada@home.example), each logged in with `claude
    /// /login` and then added through `service`; Claude Code is left on `home`.
    pub async fn add_work_and_home(&self, service: &Service) -> (TestAccount, TestAccount) {
        let (work, home) = self.work_and_home();
        for (alias, account) in [("work", &work), ("home", &home)] {
            self.login(account).await;
            service.add_account(alias).await.unwrap_or_else(|e| panic!("add {alias}: {e}"));
        }
        (work, home)
    }

    /// Like [`Scratch::add_work_and_home`], through the `switchboard add` command.
    pub async fn add_work_and_home_by_cli(&self) -> (TestAccount, TestAccount) {
        let (work, home) = self.work_and_home();
        for (alias, account) in [("work", &work), ("home", &home)] {
            self.login(account).await;
            let added = self.cli(&["add", alias]).await;
            assert!(
                added.status.success(),
                "add {alias}: {}",
                String::from_utf8_lossy(&added.stderr)
            );
        }
        (work, home)
    }

    fn work_and_home(&self) -> (TestAccount, TestAccount) {
        (
            self.account("ada@example.com", "Example Corp"),
            self.account("ada@home.example", "Ada's Individual Org"),
        )
    }

    /// A simulated Claude Code on this scratch `HOME`, refreshing against the fake.
    pub fn claude(&self) -> SimClaude {
        SimClaude::new(&self.home, None, self.fake.token_url())
    }

    /// Does what `claude /login` does: a fresh lineage written into Claude's store and
    /// `oauthAccount`, every other key kept.
    pub async fn login(&self, account: &TestAccount) -> MintedLogin {
        let login = self.fake.control().mint_login(&account.ids).expect("mint a login");
        let tokens = LoginTokens {
            access_token: login.access_token.clone(),
            refresh_token: login.refresh_token.clone(),
            expires_at: login.expires_at,
            scopes: login.scopes.clone(),
            subscription_type: login.subscription_type.clone(),
            rate_limit_tier: Some(login.rate_limit_tier.clone()),
        };
        let identity = LoginIdentity {
            account_uuid: login.account.uuid.clone(),
            email_address: login.account.email_address.clone(),
            display_name: login.account.display_name.clone(),
            organization_uuid: login.organization.uuid.clone(),
            organization_name: login.organization.name.clone(),
            billing_type: login.organization.billing_type.clone(),
        };
        self.claude().install_login(&tokens, &identity).await.expect("install the login");
        login
    }

    pub fn write_credentials(&self, doc: &Value) {
        std::fs::create_dir_all(self.claude_dir()).expect("Claude's folder");
        write_json(&self.credentials_path(), doc, 0o600);
    }

    pub fn read_json(&self, path: &Path) -> Option<Value> {
        let bytes = std::fs::read(path).ok()?;
        Some(serde_json::from_slice(&bytes).expect("valid JSON"))
    }

    /// The live `claudeAiOauth` entry.
    pub fn live_login(&self) -> Value {
        self.read_json(&self.credentials_path())
            .map(|c| c["claudeAiOauth"].clone())
            .unwrap_or(Value::Null)
    }

    pub fn live_refresh_token(&self) -> String {
        self.live_login()["refreshToken"].as_str().unwrap_or_default().to_owned()
    }

    pub fn oauth_account(&self) -> Value {
        self.read_json(&self.global_config_path())
            .map(|c| c["oauthAccount"].clone())
            .unwrap_or(Value::Null)
    }

    pub fn report(&self) -> Report {
        self.fake.control().report()
    }

    /// Runs the `switchboard` binary with `args` in this world.
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[]).await
    }

    /// Runs the `switchboard` binary with `args` and some variables more.
    pub async fn cli_with_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        tokio::process::Command::new(switchboard_bin())
            .args(args)
            .env_clear()
            .envs(self.env_pairs())
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run switchboard")
    }

    /// Starts `switchboard serve` on pipes, speaking `framing`.
    pub async fn sidecar(&self, framing: Framing) -> SidecarClient {
        let mut child = tokio::process::Command::new(switchboard_bin())
            .arg("serve")
            .env_clear()
            .envs(self.env_pairs())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the sidecar");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        SidecarClient { child, stdin, stdout, framing, next_id: 1, pending: Vec::new() }
    }
}

fn write_json(path: &Path, value: &Value, mode: u32) {
    let bytes = serde_json::to_vec_pretty(value).expect("serialize");
    switchboard::durable::write_atomic(path, &bytes, mode).expect("write a scratch file");
}

/// Where the `switchboard` binary is.
pub fn switchboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().expect("the test executable");
    let candidate = exe.parent().and_then(Path::parent).map(|dir| dir.join("switchboard"));
    match candidate {
        Some(path) if path.exists() => path,
        _ => panic!(
            "switchboard binary not found: run `cargo build -p switchboard` or set SWITCHBOARD_BIN"
        ),
    }
}

/// The two framings of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Lsp,
    Ndjson,
}

/// A client of a sidecar process, speaking raw JSON-RPC so tests see exactly what is sent.
#[derive(Debug)]
pub struct SidecarClient {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    framing: Framing,
    next_id: i64,
    /// Messages read while waiting for something else.
    pending: Vec<Value>,
}

impl SidecarClient {
    /// Sends raw bytes, for malformed-input tests.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.expect("write to the sidecar");
        self.stdin.flush().await.expect("flush");
    }

    /// Sends one message in this client's framing.
    pub async fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("serialize");
        let mut frame = Vec::new();
        match self.framing {
            Framing::Lsp => {
                frame.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
                frame.extend(body);
            }
            Framing::Ndjson => {
                frame.extend(body);
                frame.push(b'\n');
            }
        }
        self.send_raw(&frame).await;
    }

    /// Reads the next message, or `None` at end of output or after `wait`.
    pub async fn read(&mut self, wait: Duration) -> Option<Value> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        tokio::time::timeout(wait, self.read_frame()).await.ok().flatten()
    }

    async fn read_frame(&mut self) -> Option<Value> {
        match self.framing {
            Framing::Ndjson => {
                let mut line = String::new();
                if self.stdout.read_line(&mut line).await.ok()? == 0 {
                    return None;
                }
                Some(serde_json::from_str(&line).expect("the sidecar writes JSON lines"))
            }
            Framing::Lsp => {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if self.stdout.read_line(&mut line).await.ok()? == 0 {
                        return None;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(value) = line.strip_prefix("Content-Length: ") {
                        length = Some(value.parse::<usize>().expect("a length"));
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                self.stdout.read_exact(&mut body).await.ok()?;
                Some(serde_json::from_slice(&body).expect("the sidecar writes JSON"))
            }
        }
    }

    /// Sends a request and waits for its answer, keeping notifications that arrive first.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        self.answer_to(json!(id)).await
    }

    /// Waits for the answer with `id`.
    pub async fn answer_to(&mut self, id: Value) -> Value {
        let mut held = Vec::new();
        let answer = loop {
            let message = tokio::time::timeout(Duration::from_secs(60), self.read_frame())
                .await
                .expect("an answer within a minute")
                .expect("the sidecar is still running");
            if message.get("id") == Some(&id) && message.get("method").is_none() {
                break message;
            }
            held.push(message);
        };
        self.pending.extend(held);
        answer
    }

    /// The next `account/didChange`, skipping nothing else but answers already consumed.
    pub async fn notification(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.read(left).await?;
            if message["method"] == "account/didChange" {
                return Some(message["params"].clone());
            }
        }
    }

    /// The next `account/didChange` with `reason`, checking that every one skipped on the way
    /// was caused by this sidecar (`external: false`).
    pub async fn notification_for(&mut self, reason: &str, wait: Duration) -> Value {
        loop {
            let change = self
                .notification(wait)
                .await
                .unwrap_or_else(|| panic!("no account/didChange with reason {reason}"));
            if change["reason"] == reason {
                return change;
            }
            assert_eq!(change["external"], false, "unexpected external change: {change}");
        }
    }

    /// Closes stdin and waits for the process to exit.
    pub async fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the sidecar exits at end of input")
            .expect("wait for the sidecar")
    }
}

/// Variables that keep the real Claude Code to the calls a login needs. Found by running it
/// behind the test proxy and reading what it asked for: with
/// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` it makes no telemetry, event-logging, bootstrap
/// or feature-flag calls, and touches only platform.claude.com and api.anthropic.com. The
/// others switch off the updater and the error reporter by name, in case a build reaches them.
pub const CLAUDE_QUIET_ENV: &[(&str, &str)] = &[
    ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ("DISABLE_TELEMETRY", "1"),
    ("DISABLE_ERROR_REPORTING", "1"),
    ("DISABLE_AUTOUPDATER", "1"),
    ("NO_COLOR", "1"),
];

/// Which build of the real Claude Code a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaudeBuild {
    /// 2.1.332, the native binary: two refresh locks, compare-and-swap save, blanks dead logins.
    Native,
    /// 2.1.112, `cli.js` on Node: one refresh lock, and a save that merges over the store.
    Legacy,
}

/// The real Claude Code, as `scripts/install-test-deps.sh` installs it into `.tools/claude`.
#[derive(Debug, Clone)]
pub struct RealClaude {
    pub build: ClaudeBuild,
    program: PathBuf,
    leading_args: Vec<PathBuf>,
}

impl RealClaude {
    /// The native build: `CLAUDE_NATIVE_BIN`, else the repository's `.tools` copy.
    ///
    /// # Panics
    ///
    /// When the binary is missing: an interop test that cannot run Claude must fail, not pass.
    pub fn native() -> RealClaude {
        let program = tool_path("CLAUDE_NATIVE_BIN", ".tools/claude/native/package/claude");
        RealClaude { build: ClaudeBuild::Native, program, leading_args: Vec::new() }
    }

    /// The 2.1.112 build: `node` running `CLAUDE_LEGACY_JS`, else the repository's copy.
    ///
    /// # Panics
    ///
    /// When `cli.js` is missing.
    pub fn legacy() -> RealClaude {
        let script = tool_path("CLAUDE_LEGACY_JS", ".tools/claude/legacy/package/cli.js");
        RealClaude {
            build: ClaudeBuild::Legacy,
            program: "node".into(),
            leading_args: vec![script],
        }
    }

    /// The refresh locks this build takes in `scratch`, in the contract's words: 2.1.332 takes
    /// `DIR/.oauth_refresh.lock` and `<realpath(DIR)>.lock`, 2.1.112 only the latter.
    pub fn refresh_locks(&self, scratch: &Scratch) -> Vec<PathBuf> {
        let legacy = switchboard::claude::paths::legacy_refresh_lock_of(&scratch.claude_dir());
        match self.build {
            ClaudeBuild::Native => vec![scratch.claude_dir().join(".oauth_refresh.lock"), legacy],
            ClaudeBuild::Legacy => vec![legacy],
        }
    }
}

/// A tool's path from `var`, else from the repository; panics naming the install script when
/// the file is not there.
fn tool_path(var: &str, in_repo: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(in_repo));
    assert!(
        path.is_file(),
        "the real Claude Code is not installed at {} ({var}): run `bash scripts/install-test-deps.sh`",
        path.display()
    );
    path
}

/// What a program run printed and how long it took.
#[derive(Debug)]
pub struct TimedOutput {
    pub output: Output,
    pub elapsed: Duration,
}

impl TimedOutput {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

impl Scratch {
    /// The environment of a Switchboard user behind a TLS-inspecting corporate proxy: the
    /// endpoints left at Anthropic's real addresses (no `SWITCHBOARD_TOKEN_URL` or
    /// `SWITCHBOARD_API_BASE`), `HTTPS_PROXY` pointing at `proxy`, and `SSL_CERT_FILE` at a
    /// bundle that trusts it.
    pub fn proxied_env_pairs(&self, proxy: &crate::fake::TlsProxy) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("SWITCHBOARD_HOME".into(), self.vault.display().to_string()),
            ("HTTPS_PROXY".into(), proxy.url()),
            ("SSL_CERT_FILE".into(), proxy.bundle_path().display().to_string()),
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ]
    }

    /// Runs the `switchboard` binary with `args` in exactly the environment `env`.
    pub async fn cli_in_env(&self, args: &[&str], env: &[(String, String)]) -> TimedOutput {
        let started = std::time::Instant::now();
        let output = tokio::process::Command::new(switchboard_bin())
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run switchboard");
        TimedOutput { output, elapsed: started.elapsed() }
    }

    /// The environment the real Claude Code runs in: this scratch `HOME`, the proxy, the test
    /// CA through `NODE_EXTRA_CA_CERTS`, and [`CLAUDE_QUIET_ENV`].
    pub fn claude_env_pairs(&self, proxy: &crate::fake::TlsProxy) -> Vec<(String, String)> {
        let mut env = vec![
            ("HOME".to_owned(), self.home.display().to_string()),
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("HTTPS_PROXY".to_owned(), proxy.url()),
            ("NODE_EXTRA_CA_CERTS".to_owned(), proxy.bundle_path().display().to_string()),
        ];
        env.extend(CLAUDE_QUIET_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    /// A command running `claude` with `args` in this world, not yet started.
    pub fn claude_command(
        &self,
        claude: &RealClaude,
        proxy: &crate::fake::TlsProxy,
        args: &[&str],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&claude.program);
        command
            .args(&claude.leading_args)
            .args(args)
            .env_clear()
            .envs(self.claude_env_pairs(proxy))
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `claude` with `args` to its end, bounded at two minutes.
    pub async fn run_claude(
        &self,
        claude: &RealClaude,
        proxy: &crate::fake::TlsProxy,
        args: &[&str],
    ) -> TimedOutput {
        let started = std::time::Instant::now();
        let run = self.claude_command(claude, proxy, args).output();
        let output = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("claude finishes within two minutes")
            .expect("start claude");
        TimedOutput { output, elapsed: started.elapsed() }
    }

    /// Moves the live login's `expiresAt` into the past, every other field kept, so that the
    /// next Claude run refreshes it.
    pub fn expire_live_login(&self) {
        let mut creds = self.read_json(&self.credentials_path()).expect("a live login");
        creds["claudeAiOauth"]["expiresAt"] = json!(1_000);
        self.write_credentials(&creds);
    }

    /// Where the vault keeps `account`'s snapshot.
    pub fn snapshot_path(&self, account: &TestAccount) -> PathBuf {
        self.vault
            .join("snapshots")
            .join(format!("{}.{}.json", account.ids.account_uuid, account.ids.organization_uuid))
    }

    /// The refresh token in `account`'s snapshot, empty when there is none.
    pub fn snapshot_refresh_token(&self, account: &TestAccount) -> String {
        self.read_json(&self.snapshot_path(account))
            .and_then(|s| s["login"]["refreshToken"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// Where the `fake-security` binary is: `FAKE_SECURITY_BIN`, else beside the test executable
/// (Cargo builds it for every test of this crate).
pub fn fake_security_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FAKE_SECURITY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable");
    let candidate = exe.parent().and_then(Path::parent).map(|dir| dir.join("fake-security"));
    match candidate {
        Some(path) if path.exists() => path,
        _ => panic!(
            "fake-security not found: run `cargo build -p switchboard-tests --bins` or set \
             FAKE_SECURITY_BIN"
        ),
    }
}

/// A scratch world whose Claude Code keeps its login in a macOS Keychain, played by
/// `fake-security`: Switchboard runs with `SWITCHBOARD_LIVE_STORE=keychain` and
/// `SWITCHBOARD_SECURITY_BIN` pointing at a script in the scratch folder that runs the fake on
/// this world's Keychain. Everything else (`account`, `fake`, `report`, the vault) is the
/// [`Scratch`] inside; the methods named like [`Scratch`]'s read and write the Keychain.
#[derive(Debug)]
pub struct KeychainScratch {
    pub scratch: Scratch,
    pub keychain: crate::fake_security::FakeKeychain,
    /// The `security` program Switchboard runs.
    pub security: PathBuf,
    /// `$USER`, which names the Keychain item's account.
    pub user: String,
}

impl std::ops::Deref for KeychainScratch {
    type Target = Scratch;

    fn deref(&self) -> &Scratch {
        &self.scratch
    }
}

impl std::ops::DerefMut for KeychainScratch {
    fn deref_mut(&mut self) -> &mut Scratch {
        &mut self.scratch
    }
}

impl KeychainScratch {
    pub async fn new() -> KeychainScratch {
        let mut scratch = Scratch::new().await;
        let keychain = crate::fake_security::FakeKeychain::in_dir(scratch.dir.path());
        let security = keychain
            .write_wrapper(&fake_security_bin(), &scratch.dir.path().join("security"))
            .expect("write the security script");
        let user = "ada".to_owned();
        scratch.extra_env = vec![
            ("SWITCHBOARD_LIVE_STORE".into(), "keychain".into()),
            ("SWITCHBOARD_SECURITY_BIN".into(), security.display().to_string()),
            ("USER".into(), user.clone()),
        ];
        KeychainScratch { scratch, keychain, security, user }
    }

    /// The Keychain service of Claude's item in this world (no `CLAUDE_CONFIG_DIR`).
    pub fn item_service(&self) -> String {
        switchboard::claude::keychain::SERVICE_PREFIX.to_owned()
    }

    /// The Keychain item holding Claude's login, parsed.
    pub fn read_item(&self) -> Option<Value> {
        let bytes = self.keychain.get(&self.item_service(), &self.user)?;
        Some(serde_json::from_slice(&bytes).expect("the item holds JSON"))
    }

    /// Writes Claude's item the way Claude does: one `add-generic-password` line piped into
    /// `security -i`, the value hex-encoded.
    pub fn write_item(&self, doc: &Value) {
        use std::io::Write as _;
        let bytes = serde_json::to_vec(doc).expect("serialize");
        let line = format!(
            "add-generic-password -U -a \"{}\" -s \"{}\" -X \"{}\"\n",
            self.user,
            self.item_service(),
            hex::encode(bytes)
        );
        let mut child = std::process::Command::new(&self.security)
            .arg("-i")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("run security -i");
        child.stdin.take().expect("stdin").write_all(line.as_bytes()).expect("write the line");
        assert!(child.wait().expect("wait for security").success(), "security -i failed");
    }

    /// Does what `claude /login` does on macOS: a fresh lineage written into the Keychain item
    /// (every other key kept) and `oauthAccount`.
    pub fn login(&self, account: &TestAccount) -> MintedLogin {
        let login = self.fake.control().mint_login(&account.ids).expect("mint a login");
        let mut item = self.read_item().unwrap_or_else(|| json!({}));
        item["claudeAiOauth"] = json!({
            "accessToken": login.access_token.expose(),
            "refreshToken": login.refresh_token.expose(),
            "expiresAt": login.expires_at,
            "scopes": login.scopes,
            "subscriptionType": login.subscription_type,
            "rateLimitTier": login.rate_limit_tier,
        });
        self.write_item(&item);
        let mut config = self.read_json(&self.global_config_path()).unwrap_or_else(|| json!({}));
        config["oauthAccount"] = json!({
            "accountUuid": account.ids.account_uuid,
            "emailAddress": account.email,
            "organizationUuid": account.ids.organization_uuid,
            "organizationName": account.organization_name,
        });
        write_json(&self.global_config_path(), &config, 0o644);
        login
    }

    /// The live `claudeAiOauth` entry, from the Keychain item.
    pub fn live_login(&self) -> Value {
        self.read_item().map(|item| item["claudeAiOauth"].clone()).unwrap_or(Value::Null)
    }

    pub fn live_refresh_token(&self) -> String {
        self.live_login()["refreshToken"].as_str().unwrap_or_default().to_owned()
    }

    /// Every argument list any `security` process of this world was given.
    pub fn security_argv(&self) -> Vec<Vec<String>> {
        self.keychain
            .records()
            .iter()
            .filter_map(|record| serde_json::from_value(record.get("argv")?.clone()).ok())
            .collect()
    }

    /// Panics if any `security` process was handed one of `tokens` (or its hex form) in its
    /// arguments.
    pub fn assert_no_token_in_argv(&self, tokens: &[String]) {
        let argv = self.security_argv();
        assert!(!argv.is_empty(), "security was never run");
        for args in &argv {
            for arg in args {
                for token in tokens {
                    assert!(
                        !arg.contains(token.as_str()) && !arg.contains(&hex::encode(token)),
                        "a token was passed to security in its arguments"
                    );
                }
            }
        }
    }
}

impl KeychainScratch {
    /// A simulated Claude Code on this world's `HOME` keeping its login in the Keychain item,
    /// through the same `security` program Switchboard runs, refreshing against the fake.
    pub fn claude(&self) -> SimClaude {
        self.scratch.claude().with_keychain(&self.security, Some(&self.user))
    }

    /// `work` and `home` logged in with `claude /login` and added through `service`, as
    /// [`Scratch::add_work_and_home`] does; Claude Code is left on `home`.
    pub async fn add_work_and_home(&self, service: &Service) -> (TestAccount, TestAccount) {
        LiveStoreWorld::add_work_and_home(self, service).await
    }
}

/// A scratch world seen through the live store its Claude Code keeps the login in, so one
/// end-to-end scenario can run on the credential file ([`Scratch`]) and on the Keychain
/// ([`KeychainScratch`]) and assert the same outcomes.
pub trait LiveStoreWorld: Sized {
    /// The store's name, for test messages: `file` or `keychain`.
    const STORE: &'static str;

    /// A fresh world with a running fake.
    fn create() -> impl std::future::Future<Output = Self>;

    /// The plain world inside: the vault, the fake, `HOME`, the service's environment.
    fn scratch(&self) -> &Scratch;

    /// A simulated Claude Code using this world's live store.
    fn claude(&self) -> SimClaude;

    /// Does what `claude /login` does on this store.
    fn login(&self, account: &TestAccount) -> impl std::future::Future<Output = MintedLogin>;

    /// The live `claudeAiOauth` entry, `null` when there is none.
    fn live_login(&self) -> Value;

    /// The whole credential document in the live store, every key Claude keeps there.
    fn live_document(&self) -> Option<Value>;

    /// Writes the whole credential document into the live store, as Claude does.
    fn write_live_document(&self, doc: &Value);

    /// Blanks the live login as Claude 2.1.332 does after a refused refresh, keeping every
    /// other key (and the account fields the entry carries).
    fn blank_live_login(&self) {
        let mut doc = self.live_document().expect("a live login to blank");
        doc["claudeAiOauth"]["accessToken"] = json!("");
        doc["claudeAiOauth"]["refreshToken"] = json!("");
        doc["claudeAiOauth"]["expiresAt"] = json!(0);
        self.write_live_document(&doc);
    }

    fn live_refresh_token(&self) -> String {
        self.live_login()["refreshToken"].as_str().unwrap_or_default().to_owned()
    }

    /// `work` (ada@example.com) and `home` (ada@home.example), each logged in and then added
    /// through `service`; Claude Code is left on `home`.
    fn add_work_and_home(
        &self,
        service: &Service,
    ) -> impl std::future::Future<Output = (TestAccount, TestAccount)> {
        async move {
            let (work, home) = self.scratch().work_and_home();
            for (alias, account) in [("work", &work), ("home", &home)] {
                self.login(account).await;
                service.add_account(alias).await.unwrap_or_else(|e| panic!("add {alias}: {e}"));
            }
            (work, home)
        }
    }
}

impl LiveStoreWorld for Scratch {
    const STORE: &'static str = "file";

    async fn create() -> Self {
        Scratch::new().await
    }

    fn scratch(&self) -> &Scratch {
        self
    }

    fn claude(&self) -> SimClaude {
        Scratch::claude(self)
    }

    async fn login(&self, account: &TestAccount) -> MintedLogin {
        Scratch::login(self, account).await
    }

    fn live_login(&self) -> Value {
        Scratch::live_login(self)
    }

    fn live_document(&self) -> Option<Value> {
        self.read_json(&self.credentials_path())
    }

    fn write_live_document(&self, doc: &Value) {
        self.write_credentials(doc);
    }
}

impl LiveStoreWorld for KeychainScratch {
    const STORE: &'static str = "keychain";

    async fn create() -> Self {
        KeychainScratch::new().await
    }

    fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    fn claude(&self) -> SimClaude {
        KeychainScratch::claude(self)
    }

    async fn login(&self, account: &TestAccount) -> MintedLogin {
        KeychainScratch::login(self, account)
    }

    fn live_login(&self) -> Value {
        KeychainScratch::live_login(self)
    }

    fn live_document(&self) -> Option<Value> {
        self.read_item()
    }

    fn write_live_document(&self, doc: &Value) {
        self.write_item(doc);
    }
}
