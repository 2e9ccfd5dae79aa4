//! The operations every front end offers (list, status, use, add, remove) and the lineage
//! rules that keep every account's newest refresh token alive.
//!
//! The rules, which each submodule names where it keeps them:
//!
//! 1. One spender: the live store owns the active account's refresh token, the vault owns the
//!    others'. The live one is refreshed only under Claude's own refresh locks.
//! 2. Sync before leaving: before the live login is replaced, its newest tokens go into the
//!    snapshot of the account they belong to.
//! 3. Write before use: a refresh answer is on disk before the new token is used or reported.
//! 4. Compare and swap: a write to a shared place checks that it still holds what was read.
//! 5. Never install a dead login: the target is refreshed and validated before a switch.
//! 6. Identity from the account: an account is its account and organization UUIDs, learned from
//!    the service, never guessed from tokens or email.
//! 7. Never fight: a login someone else installed is adopted or kept aside, never overwritten
//!    with an old copy.
//! 8. Nothing lost on a crash: every newest token is on disk before anything depends on it.
//!
//! Nothing here knows JSON-RPC or the terminal: results are protocol types, failures are
//! [`ServiceError`]s, and changes are announced on a broadcast channel.

mod accounts;
mod error;
mod identify;
mod lineage;
mod reconcile;
mod switch;
mod view;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::claude::env::Environment;
use crate::claude::global_config::GlobalConfig;
use crate::claude::paths::ClaudePaths;
use crate::claude::store::{LiveStore, open_live_store};
use crate::keychain::{KeychainItem, SECURITY_BIN_VAR};
use crate::oauth::{Endpoints, OAuthClient};
use crate::protocol::{ChangeReason, DidChange, ListResult};
use crate::vault::Vault;
use crate::vault::backend::{BACKEND_VAR, BackendKind};

pub use error::ServiceError;
pub use reconcile::ReconcileState;

/// How long an operation waits for another Switchboard process to finish with the vault.
const VAULT_PATIENCE: Duration = Duration::from_secs(15);
/// How long a switch waits for a Claude process to finish its refresh. Claude holds its
/// refresh locks for one HTTP round trip, which it bounds at 30 s.
const CLAUDE_LOCK_PATIENCE: Duration = Duration::from_secs(35);

/// Everything a [`Service`] needs to find Claude Code, the vault and the endpoints.
#[derive(Debug)]
pub struct ServiceConfig {
    pub env: Environment,
    pub vault_dir: PathBuf,
    /// Where the vault keeps its snapshots (`SWITCHBOARD_VAULT_BACKEND`).
    pub vault_backend: BackendKind,
    pub endpoints: Endpoints,
    pub ca_bundle: Option<PathBuf>,
}

impl ServiceConfig {
    /// Reads the documented settings from an environment: `SWITCHBOARD_HOME`,
    /// `SWITCHBOARD_VAULT_BACKEND`, `SWITCHBOARD_TOKEN_URL`, `SWITCHBOARD_API_BASE`,
    /// `SSL_CERT_FILE`, and Claude's own.
    pub fn from_env(env: Environment) -> Result<Self, ServiceError> {
        let vault_dir = Vault::default_dir(env.get("SWITCHBOARD_HOME"))
            .map_err(|e| ServiceError::store("the vault", e))?;
        let vault_backend = BackendKind::from_setting(env.get(BACKEND_VAR))
            .map_err(|e| ServiceError::store("the vault", e))?;
        let endpoints =
            Endpoints::from_env(env.get("SWITCHBOARD_TOKEN_URL"), env.get("SWITCHBOARD_API_BASE"));
        let ca_bundle = env.get("SSL_CERT_FILE").filter(|p| !p.is_empty()).map(PathBuf::from);
        Ok(ServiceConfig { env, vault_dir, vault_backend, endpoints, ca_bundle })
    }
}

/// The operations, shared by every connection and command of one process.
#[derive(Debug)]
pub struct Service {
    env: Environment,
    paths: ClaudePaths,
    store: Arc<dyn LiveStore>,
    global: GlobalConfig,
    vault: Vault,
    oauth: OAuthClient,
    changes: broadcast::Sender<DidChange>,
    /// The view last announced, so that a change nobody caused is announced once.
    announced: Mutex<Option<ListResult>>,
    /// How long an operation waits for the vault, then for Claude's refresh locks.
    vault_patience: Duration,
    claude_patience: Duration,
}

impl Service {
    /// Opens the vault and resolves Claude Code's store, with the live store Claude uses on
    /// this platform (see [`open_live_store`]).
    pub fn open(config: ServiceConfig) -> Result<Self, ServiceError> {
        let paths = ClaudePaths::resolve(&config.env)
            .map_err(|e| ServiceError::store("Claude Code's config folder", e))?;
        let store = open_live_store(&config.env, &paths)
            .map_err(|e| ServiceError::store("Claude Code's credential store", e))?;
        Self::with_store(config, paths, store)
    }

    /// Like [`Service::open`], with a given live store.
    pub fn with_store(
        config: ServiceConfig,
        paths: ClaudePaths,
        store: Arc<dyn LiveStore>,
    ) -> Result<Self, ServiceError> {
        let security = KeychainItem::program(config.env.get(SECURITY_BIN_VAR));
        let vault = Vault::open_with(config.vault_dir.clone(), config.vault_backend, security)
            .map_err(|e| ServiceError::store(config.vault_dir.display(), e))?;
        let oauth = OAuthClient::new(config.endpoints, config.ca_bundle.as_deref())
            .map_err(|e| ServiceError::store("the HTTP client", e))?;
        let global = GlobalConfig::new(&paths);
        let (changes, _) = broadcast::channel(64);
        Ok(Service {
            env: config.env,
            paths,
            store,
            global,
            vault,
            oauth,
            changes,
            announced: Mutex::new(None),
            vault_patience: VAULT_PATIENCE,
            claude_patience: CLAUDE_LOCK_PATIENCE,
        })
    }

    /// Waits at most `vault` for another Switchboard operation and `claude` for a Claude
    /// refresh before answering `busy`, instead of the defaults (15 s and 35 s).
    pub fn with_lock_patience(mut self, vault: Duration, claude: Duration) -> Self {
        self.vault_patience = vault;
        self.claude_patience = claude;
        self
    }

    /// Every `account/didChange` this process sends, whoever caused it.
    pub fn subscribe(&self) -> broadcast::Receiver<DidChange> {
        self.changes.subscribe()
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn paths(&self) -> &ClaudePaths {
        &self.paths
    }

    pub fn store(&self) -> &Arc<dyn LiveStore> {
        &self.store
    }

    /// Sends `account/didChange` with the view as it is now, and remembers it.
    fn announce(&self, reason: ChangeReason, external: bool) {
        match self.list() {
            Ok(view) => {
                *self.announced.lock().unwrap_or_else(|p| p.into_inner()) = Some(view.clone());
                // Nobody listening is fine: the CLI has no subscribers.
                let _ = self.changes.send(DidChange { reason, external, view });
            }
            Err(error) => tracing::warn!(%error, "could not build the view to announce"),
        }
    }

    /// Announces the current view if it differs from the one last announced: how changes
    /// made by Claude or by other Switchboard processes reach this process's clients.
    pub fn announce_if_changed(&self, reason: ChangeReason) -> bool {
        let Ok(view) = self.list() else { return false };
        let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        let first = announced.is_none();
        if announced.as_ref() == Some(&view) {
            return false;
        }
        let previous = announced.replace(view.clone());
        if first {
            // The first look is the baseline: clients start from `account/list`, so there is
            // no change to tell them about yet.
            return false;
        }
        // A change of states alone is time passing (a token coming within five minutes of
        // expiry, say): nobody caused it, so it is not external.
        let change = match previous {
            Some(previous) if without_states(&previous) == without_states(&view) => {
                DidChange { reason: ChangeReason::State, external: false, view }
            }
            _ => DidChange { reason, external: true, view },
        };
        let _ = self.changes.send(change);
        true
    }
}

/// A view with every state blanked, to tell a change of states from any other change.
fn without_states(view: &ListResult) -> ListResult {
    let mut view = view.clone();
    for account in &mut view.accounts {
        account.state = crate::protocol::AccountState::Unknown;
    }
    if let Some(unmanaged) = &mut view.unmanaged {
        unmanaged.state = crate::protocol::AccountState::Unknown;
    }
    view
}

/// Milliseconds since the epoch, the unit of every timestamp in Claude's store and ours.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
