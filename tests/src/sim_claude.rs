//! A simulated Claude Code: logs in, refreshes, locks and logs out the way
//! `claude-code-contract.md` §2–§3 says the real one does, so end-to-end tests can make the
//! drift a background Claude session makes, without the 190 MB binary.
//!
//! It is written from the contract alone and shares no code with Switchboard's own Claude
//! module: two independent readings of the contract catch each other's mistakes. It keeps the
//! rules the real program keeps: every key it does not own survives its writes; refreshes
//! happen under Claude's lock folders; version 2.1.332 saves with compare-and-swap and blanks
//! a login the server refused, while version 2.1.112 merges its result over whatever the store
//! holds by then. It never prints a token: they stay in [`Secret`].
//!
//! The login lives in `DIR/.credentials.json` as on Linux (the default), or, with
//! [`SimClaude::with_keychain`], in a macOS Keychain item reached through a `security` program
//! as on macOS, with the file as the fallback when the Keychain is locked or holds nothing.
//! Locks and refresh behaviour are the same for both stores: they are folders in `DIR`.

mod keychain;
mod lock;
mod store;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use switchboard::durable::SECRET_FILE_MODE;
use switchboard::secret::Secret;

pub use keychain::{
    FALLBACK_ACCOUNT, ItemRead, ItemWrite, Keychain, MAX_INTERACTIVE_LINE, SERVICE_PREFIX,
    account_name, service_name,
};
pub use lock::{LockGuard, LockRetry, set_mtime, touch};
pub use store::{Paths, StoredLogin};

use store::{ACCOUNT_KEY, LOGIN_KEY, merge_into, read_object, write_object};

/// Claude Code's OAuth client id.
pub const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

/// The environment variable the `fake-claude` binary reads its token URL from.
pub const TOKEN_URL_ENV: &str = "FAKE_CLAUDE_TOKEN_URL";

/// Claude counts a token as expired this long before `expiresAt`.
pub const EXPIRY_MARGIN_MS: i64 = 5 * 60 * 1000;

/// How often a held lock's mtime is touched.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

const OAUTH_REFRESH_LOCK_STALE: Duration = Duration::from_secs(60);
const CONFIG_DIR_LOCK_STALE: Duration = Duration::from_secs(10);
const STORAGE_WRITE_LOCK_STALE: Duration = Duration::from_secs(15);
const GLOBAL_CONFIG_LOCK_STALE: Duration = Duration::from_secs(10);

const SCOPE_2_1_332: &str = "user:profile user:inference user:sessions:claude_code \
                             user:mcp_servers user:file_upload user:plugins";
const SCOPE_2_1_112: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";

/// Which Claude Code release's refresh behaviour to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Both refresh locks, re-read, compare-and-swap save, blank on `invalid_grant`.
    #[serde(rename = "v2_1_332")]
    V2_1_332,
    /// Only `<realpath(DIR)>.lock`; the save merges over whatever the store holds then.
    #[serde(rename = "v2_1_112")]
    V2_1_112,
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "v2_1_332" | "2.1.332" => Some(Mode::V2_1_332),
            "v2_1_112" | "2.1.112" => Some(Mode::V2_1_112),
            _ => None,
        }
    }

    fn default_scope(self) -> &'static str {
        match self {
            Mode::V2_1_332 => SCOPE_2_1_332,
            Mode::V2_1_112 => SCOPE_2_1_112,
        }
    }
}

/// How one refresh runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshOptions {
    pub mode: Mode,
    /// Refresh only when the stored token is within 5 minutes of expiry, as Claude checks
    /// before each request; otherwise refresh regardless.
    pub only_if_expiring: bool,
    /// Keep the refresh locks this long after re-reading the store and before posting, to
    /// give a test time to act while they are held.
    pub hold_lock: Duration,
}

impl RefreshOptions {
    pub fn forced(mode: Mode) -> Self {
        RefreshOptions { mode, only_if_expiring: false, hold_lock: Duration::ZERO }
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RefreshOutcome {
    /// The store holds no usable login (missing or blanked).
    NoLogin,
    /// The token is not near expiry and the refresh was only if expiring.
    StillFresh,
    /// Someone else changed the login meanwhile; it was adopted without a request.
    Adopted,
    /// Rotated and saved.
    Refreshed,
    /// Rotated, but the store had changed meanwhile, so the result was thrown away.
    Discarded,
    /// The server refused the refresh token; `blanked` says whether the login was blanked.
    InvalidGrant { blanked: bool },
}

/// What a `run` loop did over its lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub checks: u32,
    pub refreshed: u32,
    pub adopted: u32,
    pub discarded: u32,
    pub invalid_grant: u32,
    pub errors: u32,
}

/// Who a `/login` logged in, for the `oauthAccount` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginIdentity {
    pub account_uuid: String,
    pub email_address: String,
    pub display_name: String,
    pub organization_uuid: String,
    pub organization_name: String,
    pub billing_type: String,
}

/// The tokens a `/login` received.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at: i64,
    pub scopes: Vec<String>,
    pub subscription_type: Option<String>,
    pub rate_limit_tier: Option<String>,
}

/// Why an operation of the simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("lock {} is held by someone else", path.display())]
    Locked { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is not a JSON object: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("token endpoint answered {status}")]
    Status { status: u16 },
    #[error("request failed: {0}")]
    Network(String),
    #[error("answer not understood: {0}")]
    Answer(String),
    #[error("no home folder: set HOME")]
    NoHome,
    #[error("keychain: {0}")]
    Keychain(String),
    #[error("keychain item {service} is not a JSON object: {reason}")]
    CorruptItem { service: String, reason: String },
}

/// One simulated Claude Code installation.
#[derive(Debug, Clone)]
pub struct SimClaude {
    paths: Paths,
    /// `CLAUDE_CONFIG_DIR` as given, which names the Keychain item.
    config_dir_var: Option<PathBuf>,
    /// The Keychain item holding the login; `None` keeps it in the credential file.
    keychain: Option<Keychain>,
    token_url: String,
    retry: LockRetry,
    heartbeat: Duration,
    client: reqwest::Client,
}

impl SimClaude {
    /// A Claude with home folder `home`, `CLAUDE_CONFIG_DIR` set to `config_dir` (or unset),
    /// reaching the token endpoint at `token_url`.
    pub fn new(
        home: impl AsRef<Path>,
        config_dir: Option<PathBuf>,
        token_url: impl Into<String>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        SimClaude {
            paths: Paths::resolve(home.as_ref(), config_dir.as_deref()),
            config_dir_var: config_dir,
            keychain: None,
            token_url: token_url.into(),
            retry: LockRetry::default(),
            heartbeat: HEARTBEAT,
            client,
        }
    }

    /// Resolves the folders from `HOME` and `CLAUDE_CONFIG_DIR`, as Claude does.
    pub fn from_env(token_url: impl Into<String>) -> Result<Self, SimError> {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(SimError::NoHome)?;
        let config_dir = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty());
        Ok(SimClaude::new(PathBuf::from(home), config_dir.map(PathBuf::from), token_url))
    }

    /// Changes how patiently busy locks are retried (tests use short waits).
    pub fn with_lock_retry(mut self, retry: LockRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Changes how often held locks are touched.
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Keeps the login in the Keychain, as Claude does on macOS: the item of account `user`
    /// (`$USER`) whose service Claude derives from `CLAUDE_CONFIG_DIR`, reached through the
    /// `security` program at `security`.
    pub fn with_keychain(self, security: impl Into<PathBuf>, user: Option<&str>) -> Self {
        let config_dir = self.config_dir_var.as_ref().map(|d| d.to_string_lossy().into_owned());
        let keychain = Keychain::for_claude(security, user, config_dir.as_deref());
        self.with_keychain_item(keychain)
    }

    /// Keeps the login in the Keychain item `keychain`, whatever its name.
    pub fn with_keychain_item(mut self, keychain: Keychain) -> Self {
        self.keychain = Some(keychain);
        self
    }

    /// The Keychain item holding the login, when the login is not kept in the file.
    pub fn keychain(&self) -> Option<&Keychain> {
        self.keychain.as_ref()
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The whole credential document, `{}` when there is none: the Keychain item's when there
    /// is one, else the file's, as Claude reads on macOS.
    pub fn read_credentials(&self) -> Result<Map<String, Value>, SimError> {
        let Some(keychain) = &self.keychain else {
            return read_object(&self.paths.credentials);
        };
        match keychain.read()? {
            ItemRead::Found(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(doc)) => Ok(doc),
                Ok(_) => Err(SimError::CorruptItem {
                    service: keychain.service().to_owned(),
                    reason: "not an object".into(),
                }),
                Err(e) => Err(SimError::CorruptItem {
                    service: keychain.service().to_owned(),
                    reason: e.to_string(),
                }),
            },
            ItemRead::Missing => read_object(&self.paths.credentials),
            ItemRead::Locked => {
                tracing::info!("the keychain is locked; reading the credential file");
                read_object(&self.paths.credentials)
            }
        }
    }

    /// Saves the whole credential document where Claude saves it: the Keychain item (compact
    /// JSON, one `security -i` line), or the file when there is no Keychain or it is locked.
    fn write_credentials(&self, doc: &Map<String, Value>) -> Result<(), SimError> {
        if let Some(keychain) = &self.keychain {
            let bytes = serde_json::to_vec(doc).map_err(|e| SimError::CorruptItem {
                service: keychain.service().to_owned(),
                reason: e.to_string(),
            })?;
            match keychain.write(&bytes)? {
                ItemWrite::Written => return Ok(()),
                ItemWrite::Locked => {
                    tracing::info!("the keychain is locked; writing the credential file");
                }
            }
        }
        write_object(&self.paths.credentials, doc, SECRET_FILE_MODE)
    }

    /// The whole global config, `{}` when there is none.
    pub fn read_global_config(&self) -> Result<Map<String, Value>, SimError> {
        read_object(&self.paths.global_config)
    }

    /// The stored login, if there is an entry.
    pub fn stored_login(&self) -> Result<Option<StoredLogin>, SimError> {
        Ok(StoredLogin::from_doc(&self.read_credentials()?))
    }

    /// Writes a login as a finished `/login` does: a fresh `claudeAiOauth` entry and a fresh
    /// `oauthAccount`, every other key of both files kept.
    pub async fn install_login(
        &self,
        tokens: &LoginTokens,
        identity: &LoginIdentity,
    ) -> Result<(), SimError> {
        self.ensure_config_dir()?;
        let mut entry = Map::new();
        entry.insert("accessToken".into(), tokens.access_token.expose().into());
        entry.insert("refreshToken".into(), tokens.refresh_token.expose().into());
        entry.insert("expiresAt".into(), tokens.expires_at.into());
        entry.insert("scopes".into(), tokens.scopes.clone().into());
        entry.insert("subscriptionType".into(), tokens.subscription_type.clone().into());
        if let Some(tier) = &tokens.rate_limit_tier {
            entry.insert("rateLimitTier".into(), tier.clone().into());
        }
        {
            let _storage = self.storage_lock().await?;
            let mut doc = self.read_credentials()?;
            doc.insert(LOGIN_KEY.into(), Value::Object(entry));
            self.write_credentials(&doc)?;
        }
        let account = json!({
            "accountUuid": identity.account_uuid,
            "emailAddress": identity.email_address,
            "organizationUuid": identity.organization_uuid,
            "organizationName": identity.organization_name,
            "displayName": identity.display_name,
            "billingType": identity.billing_type,
            "profileFetchedAt": now_ms(),
        });
        self.update_global_config(|config| {
            config.insert(ACCOUNT_KEY.into(), account);
        })
        .await
    }

    /// Mints a login at the fake service's control API (`{fake_url}/_control/logins`) and
    /// installs it, as a `/login` in the browser would.
    pub async fn login(
        &self,
        fake_url: &str,
        account_uuid: &str,
        organization_uuid: &str,
    ) -> Result<(), SimError> {
        let url = format!("{}/_control/logins", fake_url.trim_end_matches('/'));
        let body = json!({"accountUuid": account_uuid, "organizationUuid": organization_uuid});
        let answer = self.client.post(url).json(&body).send().await.map_err(network)?;
        if !answer.status().is_success() {
            return Err(SimError::Status { status: answer.status().as_u16() });
        }
        let minted: Minted = answer.json().await.map_err(|e| SimError::Answer(e.to_string()))?;
        let tokens = LoginTokens {
            access_token: minted.access_token,
            refresh_token: minted.refresh_token,
            expires_at: minted.expires_at,
            scopes: minted.scopes,
            subscription_type: minted.subscription_type,
            rate_limit_tier: minted.rate_limit_tier,
        };
        let identity = LoginIdentity {
            account_uuid: minted.account.uuid,
            email_address: minted.account.email_address,
            display_name: minted.account.display_name,
            organization_uuid: minted.organization.uuid,
            organization_name: minted.organization.name,
            billing_type: minted.organization.billing_type,
        };
        self.install_login(&tokens, &identity).await
    }

    /// A forced refresh in `mode`, with Claude's own lock timing.
    pub async fn refresh(&self, mode: Mode) -> Result<RefreshOutcome, SimError> {
        self.refresh_with(RefreshOptions::forced(mode)).await
    }

    /// One refresh, as Claude performs it before a request.
    pub async fn refresh_with(&self, options: RefreshOptions) -> Result<RefreshOutcome, SimError> {
        let Some(before) = self.stored_login()?.filter(StoredLogin::is_present) else {
            return Ok(RefreshOutcome::NoLogin);
        };
        if options.only_if_expiring && !is_expiring(before.expires_at) {
            return Ok(RefreshOutcome::StillFresh);
        }
        self.ensure_config_dir()?;
        // The newer lock first, then the one every version shares; both stay held until the
        // result is saved or thrown away.
        let _oauth_lock = match options.mode {
            Mode::V2_1_332 => Some(
                lock::acquire(
                    &self.paths.oauth_refresh_lock(),
                    OAUTH_REFRESH_LOCK_STALE,
                    self.heartbeat,
                    self.retry,
                    Some(&self.paths.oauth_refresh_lock_owner()),
                )
                .await?,
            ),
            Mode::V2_1_112 => None,
        };
        let _dir_lock = lock::acquire(
            &self.paths.config_dir_lock()?,
            CONFIG_DIR_LOCK_STALE,
            self.heartbeat,
            self.retry,
            None,
        )
        .await?;

        let Some(current) = self.stored_login()?.filter(StoredLogin::is_present) else {
            return Ok(RefreshOutcome::NoLogin);
        };
        if current.access_token != before.access_token {
            tracing::info!(access = %current.access_token, "adopting a login refreshed meanwhile");
            return Ok(RefreshOutcome::Adopted);
        }
        if !options.hold_lock.is_zero() {
            tokio::time::sleep(options.hold_lock).await;
        }

        let posted = current.refresh_token.clone();
        let scope = if current.scopes.iter().any(|s| s == "user:inference") {
            options.mode.default_scope().to_owned()
        } else {
            current.scopes.join(" ")
        };
        match self.post_refresh(&posted, &scope).await? {
            TokenAnswer::Rotated(rotated) => {
                self.save_rotation(options.mode, &posted, rotated).await
            }
            TokenAnswer::InvalidGrant => self.after_invalid_grant(options.mode, &posted).await,
        }
    }

    /// Deletes the login and `oauthAccount`, then revokes the refresh token at
    /// `{token_url}/revoke`, as `/logout` does. Answers whether the revoke succeeded.
    pub async fn logout(&self) -> Result<bool, SimError> {
        let removed = {
            let _storage = self.storage_lock().await?;
            let mut doc = self.read_credentials()?;
            let removed = doc.remove(LOGIN_KEY);
            if removed.is_some() {
                self.write_credentials(&doc)?;
            }
            removed
        };
        self.update_global_config(|config| {
            config.remove(ACCOUNT_KEY);
        })
        .await?;
        let refresh_token = removed
            .as_ref()
            .and_then(|e| e.get("refreshToken"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let Some(refresh_token) = refresh_token else {
            return Ok(false);
        };
        let answer = self
            .client
            .post(format!("{}/revoke", self.token_url))
            .json(&json!({"token": refresh_token}))
            .send()
            .await;
        Ok(answer.is_ok_and(|a| a.status().is_success()))
    }

    /// An idle Claude session: every `every`, refresh if the token is within 5 minutes of
    /// expiry, until `duration` has passed. Failures are counted, not fatal, as in a session.
    pub async fn run(&self, mode: Mode, every: Duration, duration: Duration) -> RunSummary {
        let deadline = Instant::now() + duration;
        let mut summary = RunSummary::default();
        let options = RefreshOptions { mode, only_if_expiring: true, hold_lock: Duration::ZERO };
        loop {
            summary.checks += 1;
            match self.refresh_with(options).await {
                Ok(RefreshOutcome::Refreshed) => summary.refreshed += 1,
                Ok(RefreshOutcome::Adopted) => summary.adopted += 1,
                Ok(RefreshOutcome::Discarded) => summary.discarded += 1,
                Ok(RefreshOutcome::InvalidGrant { .. }) => summary.invalid_grant += 1,
                Ok(RefreshOutcome::NoLogin | RefreshOutcome::StillFresh) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "background refresh failed");
                    summary.errors += 1;
                }
            }
            let now = Instant::now();
            if now + every > deadline {
                return summary;
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn post_refresh(
        &self,
        refresh_token: &Secret,
        scope: &str,
    ) -> Result<TokenAnswer, SimError> {
        let body = json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.expose(),
            "client_id": CLIENT_ID,
            "scope": scope,
        });
        let answer = self
            .client
            .post(&self.token_url)
            .header("Accept", "application/json, text/plain, */*")
            .json(&body)
            .send()
            .await
            .map_err(network)?;
        let status = answer.status();
        if status.is_success() {
            let rotated: Rotated =
                answer.json().await.map_err(|e| SimError::Answer(e.to_string()))?;
            tracing::info!(posted = %refresh_token, refresh = ?rotated.refresh_token, "rotated");
            return Ok(TokenAnswer::Rotated(rotated));
        }
        if status.as_u16() == 400 {
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            if body.get("error").and_then(Value::as_str) == Some("invalid_grant") {
                tracing::info!(posted = %refresh_token, "refresh token refused");
                return Ok(TokenAnswer::InvalidGrant);
            }
        }
        Err(SimError::Status { status: status.as_u16() })
    }

    async fn save_rotation(
        &self,
        mode: Mode,
        posted: &Secret,
        rotated: Rotated,
    ) -> Result<RefreshOutcome, SimError> {
        let mut fields = Map::new();
        fields.insert("accessToken".into(), rotated.access_token.expose().into());
        // An answer without a refresh token means the old one stays valid.
        let refresh =
            rotated.refresh_token.filter(|r| !r.is_empty()).unwrap_or_else(|| posted.clone());
        fields.insert("refreshToken".into(), refresh.expose().into());
        fields.insert("expiresAt".into(), (now_ms() + rotated.expires_in * 1000).into());
        if let Some(scope) = rotated.scope {
            let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
            fields.insert("scopes".into(), scopes.into());
        }
        match mode {
            Mode::V2_1_332 => {
                let _storage = self.storage_lock().await?;
                let mut doc = self.read_credentials()?;
                let stored =
                    StoredLogin::from_doc(&doc).map(|l| l.refresh_token).unwrap_or_default();
                if stored != *posted && !stored.is_empty() {
                    tracing::info!(stored = %stored, posted = %posted, "store changed meanwhile, discarding");
                    return Ok(RefreshOutcome::Discarded);
                }
                merge_into(&mut doc, LOGIN_KEY, fields);
                self.write_credentials(&doc)?;
            }
            Mode::V2_1_112 => {
                // The older release merges over whatever is there now, even another login.
                let mut doc = self.read_credentials()?;
                merge_into(&mut doc, LOGIN_KEY, fields);
                self.write_credentials(&doc)?;
            }
        }
        Ok(RefreshOutcome::Refreshed)
    }

    async fn after_invalid_grant(
        &self,
        mode: Mode,
        posted: &Secret,
    ) -> Result<RefreshOutcome, SimError> {
        if mode == Mode::V2_1_112 {
            // Only 2.1.332 was watched blanking a refused login; the older release leaves it.
            return Ok(RefreshOutcome::InvalidGrant { blanked: false });
        }
        let _storage = self.storage_lock().await?;
        let mut doc = self.read_credentials()?;
        let stored = StoredLogin::from_doc(&doc).map(|l| l.refresh_token).unwrap_or_default();
        if stored != *posted {
            return Ok(RefreshOutcome::InvalidGrant { blanked: false });
        }
        let mut blank = Map::new();
        blank.insert("accessToken".into(), "".into());
        blank.insert("refreshToken".into(), "".into());
        blank.insert("expiresAt".into(), 0.into());
        merge_into(&mut doc, LOGIN_KEY, blank);
        self.write_credentials(&doc)?;
        Ok(RefreshOutcome::InvalidGrant { blanked: true })
    }

    async fn storage_lock(&self) -> Result<LockGuard, SimError> {
        self.ensure_config_dir()?;
        lock::acquire(
            &self.paths.storage_write_lock(),
            STORAGE_WRITE_LOCK_STALE,
            self.heartbeat,
            self.retry,
            None,
        )
        .await
    }

    async fn update_global_config(
        &self,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<(), SimError> {
        if let Some(parent) = self.paths.global_config.parent() {
            switchboard::durable::create_dir_all(parent, switchboard::durable::SECRET_DIR_MODE)
                .map_err(store::io_at(parent))?;
        }
        let _lock = lock::acquire(
            &self.paths.global_config_lock(),
            GLOBAL_CONFIG_LOCK_STALE,
            self.heartbeat,
            self.retry,
            None,
        )
        .await?;
        let mut config = self.read_global_config()?;
        change(&mut config);
        write_object(&self.paths.global_config, &config, SECRET_FILE_MODE)
    }

    fn ensure_config_dir(&self) -> Result<(), SimError> {
        let dir = &self.paths.config_dir;
        switchboard::durable::create_dir_all(dir, switchboard::durable::SECRET_DIR_MODE)
            .map_err(store::io_at(dir))
    }
}

/// Whether a token expiring at `expires_at` (epoch ms) counts as expired now, by Claude's rule.
pub fn is_expiring(expires_at: i64) -> bool {
    now_ms() + EXPIRY_MARGIN_MS >= expires_at
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn network(error: reqwest::Error) -> SimError {
    // A reqwest error names the URL and the kind of failure, never the body, so no token.
    SimError::Network(error.without_url().to_string())
}

enum TokenAnswer {
    Rotated(Rotated),
    InvalidGrant,
}

#[derive(Debug, Deserialize)]
struct Rotated {
    access_token: Secret,
    #[serde(default)]
    refresh_token: Option<Secret>,
    expires_in: i64,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Minted {
    access_token: Secret,
    refresh_token: Secret,
    expires_at: i64,
    scopes: Vec<String>,
    subscription_type: Option<String>,
    rate_limit_tier: Option<String>,
    account: MintedAccount,
    organization: MintedOrganization,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintedAccount {
    uuid: String,
    email_address: String,
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintedOrganization {
    uuid: String,
    name: String,
    billing_type: String,
}
