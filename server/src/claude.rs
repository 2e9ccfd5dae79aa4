//! Claude Code's side of the world: where its config folder and live store are, the login
//! stored there, the locks Claude takes around it, and the `oauthAccount` block that names who
//! is logged in. Everything here mirrors Claude Code's own behaviour; nothing here decides
//! anything about accounts.
//!
//! - [`env`]: the environment as a value, so resolution never reads process state behind a
//!   test's back.
//! - [`paths`]: every file and lock path Claude uses, derived from that environment.
//! - [`login`]: the credential document and the login inside it.
//! - [`store`]: the live store behind one small compare-and-swap interface.
//! - [`keychain`]: the macOS Keychain as that store, through the `security` program.
//! - [`lock`]: npm `proper-lockfile` locks, as Claude takes them.
//! - [`global_config`]: the `oauthAccount` block of Claude's global config.
//! - [`shadow`]: what makes Claude ignore the stored login altogether.

use std::io;
use std::path::{Path, PathBuf};

pub mod env;
pub mod global_config;
pub mod keychain;
pub mod lock;
pub mod login;
pub mod paths;
pub mod shadow;
pub mod store;

pub use env::Environment;
pub use global_config::{GlobalConfig, GlobalConfigError, OAuthAccount};
pub use keychain::{KeychainFirstStore, KeychainStore};
pub use lock::{LockError, LockGuard, LockSpec, RefreshLocks};
pub use login::{CredentialDoc, OAuthLogin};
pub use paths::{ClaudePaths, PathsError};
pub use shadow::shadowed_by;
pub use store::{
    FileStore, LiveRead, LiveStore, Revision, StoreError, StoreLocation, StoreWarning,
    open_live_store,
};

/// A file-system failure together with the path and the action that failed, so that an error
/// message always names the file involved and never its contents.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} {}: {source}", path.display())]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FileError {
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        FileError { action, path: path.to_owned(), source }
    }

    /// The underlying error kind, for callers that branch on `NotFound` and the like.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}
