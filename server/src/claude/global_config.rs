//! The `oauthAccount` block of Claude Code's global config (`~/.claude.json`), which names the
//! account Claude shows and reports to the model.
//!
//! The file belongs to Claude: projects, settings and history live beside `oauthAccount`, it
//! can be large, and Claude rewrites it at any time. So Switchboard touches only that one key,
//! and only under Claude's own `<file>.lock`, re-reading the file under the lock and keeping
//! every other key and their order. A file that does not parse is refused, never replaced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::FileError;
use super::lock::{self, GLOBAL_CONFIG_LOCK_STALE, LockError, LockSpec};
use super::paths::ClaudePaths;
use crate::durable;

/// The key of the block inside the global config.
pub const OAUTH_ACCOUNT_KEY: &str = "oauthAccount";

/// Who Claude believes is logged in. Fields Switchboard does not name (`billingType`,
/// `profileFetchedAt`, ...) are kept in `extra`, so a value read and written back is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthAccount {
    #[serde(
        default,
        deserialize_with = "string_or_null",
        skip_serializing_if = "String::is_empty"
    )]
    pub account_uuid: String,
    #[serde(
        default,
        deserialize_with = "string_or_null",
        skip_serializing_if = "String::is_empty"
    )]
    pub email_address: String,
    #[serde(
        default,
        deserialize_with = "string_or_null",
        skip_serializing_if = "String::is_empty"
    )]
    pub organization_uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OAuthAccount {
    /// The block to write when switching: ids, email and names only. Leaving out
    /// `billingType` and `profileFetchedAt` makes Claude 2.1.332 fetch the profile and
    /// complete the block itself, so nothing stale from another account lingers in it.
    pub fn for_switch(
        account_uuid: impl Into<String>,
        email_address: impl Into<String>,
        organization_uuid: impl Into<String>,
        organization_name: Option<String>,
        display_name: Option<String>,
    ) -> Self {
        OAuthAccount {
            account_uuid: account_uuid.into(),
            email_address: email_address.into(),
            organization_uuid: organization_uuid.into(),
            organization_name,
            display_name,
            extra: Map::new(),
        }
    }
}

fn string_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Option::<String>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Why the global config could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GlobalConfigError {
    #[error("{} is not a valid json object; it was left as it is", path.display())]
    Corrupt { path: PathBuf },
    #[error("{} is being written by another process", lock.display())]
    Busy { lock: PathBuf },
    #[error(transparent)]
    Io(#[from] FileError),
}

/// Claude's global config file, as far as `oauthAccount` goes.
#[derive(Debug, Clone)]
pub struct GlobalConfig {
    path: PathBuf,
    lock: PathBuf,
    lock_patience: Duration,
    read_tries: u32,
    read_pause: Duration,
}

impl GlobalConfig {
    pub fn new(paths: &ClaudePaths) -> Self {
        GlobalConfig {
            path: paths.global_config.clone(),
            lock: paths.global_config_lock.clone(),
            lock_patience: Duration::from_secs(5),
            read_tries: 4,
            read_pause: Duration::from_millis(50),
        }
    }

    /// How long a write waits for Claude's config lock before [`GlobalConfigError::Busy`].
    pub fn with_lock_patience(mut self, patience: Duration) -> Self {
        self.lock_patience = patience;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current `oauthAccount`, if the file and the block exist. A block that is not an
    /// object Switchboard can read counts as absent.
    pub fn read_oauth_account(&self) -> Result<Option<OAuthAccount>, GlobalConfigError> {
        Ok(self.read_document(&self.path)?.and_then(|doc| account_in(&doc.map)))
    }

    /// Under `<global_config>.lock`: re-read, replace only `oauthAccount` (None removes it),
    /// keep every other key, write atomically. Returns the previous value so a failed switch
    /// can put it back.
    pub async fn write_oauth_account(
        &self,
        account: Option<&OAuthAccount>,
    ) -> Result<Option<OAuthAccount>, GlobalConfigError> {
        let value = account.map(serde_json::to_value).transpose().map_err(|e| {
            GlobalConfigError::Io(FileError::new("encode", &self.path, io::Error::other(e)))
        })?;
        if let Some(dir) = self.lock.parent().filter(|d| !d.as_os_str().is_empty()) {
            durable::create_dir_all(dir, durable::SECRET_DIR_MODE)
                .map_err(|e| FileError::new("create", dir, e))?;
        }
        let spec = LockSpec::with_patience(
            self.lock.clone(),
            GLOBAL_CONFIG_LOCK_STALE,
            self.lock_patience,
        );
        let guard = lock::acquire(&spec).await.map_err(|e| self.lock_error(e))?;
        let this = self.clone();
        // The file can be megabytes: read, parse and fsync it away from the async workers.
        let outcome = tokio::task::spawn_blocking(move || {
            let result = this.replace_account(value, &guard);
            (result, guard)
        })
        .await;
        let (result, guard) = outcome.map_err(|e| {
            GlobalConfigError::Io(FileError::new("rewrite", &self.path, io::Error::other(e)))
        })?;
        if let Err(e) = guard.release() {
            tracing::warn!(error = %e, "global config lock after writing oauthAccount");
        }
        result
    }

    fn replace_account(
        &self,
        value: Option<Value>,
        guard: &lock::LockGuard,
    ) -> Result<Option<OAuthAccount>, GlobalConfigError> {
        // A symlinked config (dotfile managers do this) is written through the link, not over it.
        let target = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let existing = self.read_document(&target)?;
        let (mut map, mode) = match &existing {
            Some(doc) => (doc.map.clone(), doc.mode),
            None => (Map::new(), durable::SECRET_FILE_MODE),
        };
        let previous = account_in(&map);
        match value {
            // Replacing in place keeps the key where Claude put it.
            Some(value) => match map.get_mut(OAUTH_ACCOUNT_KEY) {
                Some(slot) => *slot = value,
                None => {
                    map.insert(OAUTH_ACCOUNT_KEY.to_owned(), value);
                }
            },
            None => {
                map.shift_remove(OAUTH_ACCOUNT_KEY);
            }
        }
        let unchanged = match &existing {
            Some(doc) => doc.map == map,
            None => map.is_empty(),
        };
        if unchanged {
            return Ok(previous);
        }
        // Claude writes this file indented by two spaces; so does serde_json's pretty printer.
        let bytes = serde_json::to_vec_pretty(&Value::Object(map))
            .map_err(|e| FileError::new("encode", &target, io::Error::other(e)))?;
        guard.check().map_err(|e| self.lock_error(e))?;
        durable::write_atomic(&target, &bytes, mode)
            .map_err(|e| FileError::new("write", &target, e))?;
        Ok(previous)
    }

    /// The parsed file, or `None` when it does not exist. A file that does not parse is read
    /// again a few times, since a writer may be halfway through it, before it counts as
    /// corrupt.
    fn read_document(&self, path: &Path) -> Result<Option<Document>, GlobalConfigError> {
        for attempt in 1..=self.read_tries.max(1) {
            let bytes = match fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(FileError::new("read", path, e).into()),
            };
            if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(&bytes) {
                let mode = fs::metadata(path).map(|m| file_mode(&m)).unwrap_or(0o600);
                return Ok(Some(Document { map, mode }));
            }
            if attempt < self.read_tries {
                std::thread::sleep(self.read_pause);
            }
        }
        Err(GlobalConfigError::Corrupt { path: path.to_owned() })
    }

    fn lock_error(&self, e: LockError) -> GlobalConfigError {
        match e {
            LockError::Busy { .. } | LockError::Lost { .. } => {
                GlobalConfigError::Busy { lock: self.lock.clone() }
            }
            LockError::Io(e) => GlobalConfigError::Io(e),
        }
    }
}

struct Document {
    map: Map<String, Value>,
    mode: u32,
}

fn account_in(map: &Map<String, Value>) -> Option<OAuthAccount> {
    match map.get(OAUTH_ACCOUNT_KEY)? {
        Value::Null => None,
        value => match OAuthAccount::deserialize(value) {
            Ok(account) => Some(account),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an oauthAccount block of an unknown shape");
                None
            }
        },
    }
}

#[cfg(unix)]
fn file_mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn file_mode(_: &fs::Metadata) -> u32 {
    durable::SECRET_FILE_MODE
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::claude::Environment;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn config_in(home: &Path) -> GlobalConfig {
        let env = Environment::from_pairs([("HOME", home.to_str().unwrap())]);
        GlobalConfig::new(&ClaudePaths::resolve(&env).unwrap())
    }

    fn original() -> Value {
        json!({
            "numStartups": 41,
            "projects": {"/src/app": {"allowedTools": [], "history": [{"display": "hi"}]}},
            "oauthAccount": {
                "accountUuid": "acc-a", "emailAddress": "a@example.com",
                "organizationUuid": "org-a", "organizationName": "A's org",
                "displayName": "A", "billingType": "stripe_subscription",
                "profileFetchedAt": 1796350846681u64
            },
            "userID": "u-1",
            "cachedUsageUtilization": {"five_hour": 0.25}
        })
    }

    fn b() -> OAuthAccount {
        OAuthAccount::for_switch("acc-b", "b@example.com", "org-b", Some("B's org".into()), None)
    }

    fn read(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_block_with_unknown_fields_kept() {
        let home = tempfile::tempdir().unwrap();
        let config = config_in(home.path());
        assert_eq!(config.read_oauth_account().unwrap(), None);
        fs::write(config.path(), original().to_string()).unwrap();
        let account = config.read_oauth_account().unwrap().unwrap();
        assert_eq!(account.account_uuid, "acc-a");
        assert_eq!(account.organization_name.as_deref(), Some("A's org"));
        assert_eq!(account.extra["billingType"], "stripe_subscription");
        assert_eq!(serde_json::to_value(&account).unwrap(), original()["oauthAccount"]);
    }

    #[test]
    fn for_switch_writes_only_ids_email_and_names() {
        let value = serde_json::to_value(b()).unwrap();
        assert_eq!(
            value,
            json!({"accountUuid": "acc-b", "emailAddress": "b@example.com",
                   "organizationUuid": "org-b", "organizationName": "B's org"})
        );
    }

    #[tokio::test]
    async fn replaces_only_the_block_and_can_be_undone() {
        let home = tempfile::tempdir().unwrap();
        let config = config_in(home.path());
        fs::write(config.path(), serde_json::to_vec_pretty(&original()).unwrap()).unwrap();
        fs::set_permissions(config.path(), fs::Permissions::from_mode(0o644)).unwrap();

        let previous = config.write_oauth_account(Some(&b())).await.unwrap();
        let after = read(config.path());
        let mut expected = original();
        expected["oauthAccount"] = serde_json::to_value(b()).unwrap();
        assert_eq!(after, expected);
        // Claude's keys stay in Claude's order, the block where it was.
        let keys: Vec<_> = after.as_object().unwrap().keys().cloned().collect();
        let original_keys: Vec<_> = original().as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, original_keys);
        let mode = fs::metadata(config.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the config's own mode is kept");
        assert!(!home.path().join(".claude.json.lock").exists());

        // Undo: put the previous block back.
        let undone = config.write_oauth_account(previous.as_ref()).await.unwrap();
        assert_eq!(undone, Some(b()));
        assert_eq!(read(config.path()), original());
    }

    #[tokio::test]
    async fn none_removes_the_block_and_a_missing_file_is_created() {
        let home = tempfile::tempdir().unwrap();
        let config = config_in(home.path());
        assert_eq!(config.write_oauth_account(None).await.unwrap(), None);
        assert!(!config.path().exists(), "nothing to remove, nothing written");

        assert_eq!(config.write_oauth_account(Some(&b())).await.unwrap(), None);
        assert_eq!(
            read(config.path()),
            json!({"oauthAccount": serde_json::to_value(b()).unwrap()})
        );
        let mode = fs::metadata(config.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        fs::write(config.path(), original().to_string()).unwrap();
        let previous = config.write_oauth_account(None).await.unwrap().unwrap();
        assert_eq!(previous.account_uuid, "acc-a");
        let mut expected = original();
        expected.as_object_mut().unwrap().shift_remove("oauthAccount");
        assert_eq!(read(config.path()), expected);
    }

    #[tokio::test]
    async fn a_corrupt_config_is_refused_and_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let config = config_in(home.path());
        let broken = b"{\"projects\": {\"/src\": ";
        fs::write(config.path(), broken).unwrap();
        let err = config.write_oauth_account(Some(&b())).await.unwrap_err();
        assert!(matches!(&err, GlobalConfigError::Corrupt { path } if path == config.path()));
        assert_eq!(fs::read(config.path()).unwrap(), broken);
        assert!(matches!(config.read_oauth_account(), Err(GlobalConfigError::Corrupt { .. })));
        assert!(!home.path().join(".claude.json.lock").exists());
    }

    #[tokio::test]
    async fn waits_for_claudes_lock_then_gives_up_busy() {
        let home = tempfile::tempdir().unwrap();
        let config = config_in(home.path()).with_lock_patience(Duration::from_millis(100));
        fs::write(config.path(), original().to_string()).unwrap();
        let lock = home.path().join(".claude.json.lock");
        fs::create_dir(&lock).unwrap();
        let err = config.write_oauth_account(Some(&b())).await.unwrap_err();
        assert!(matches!(err, GlobalConfigError::Busy { lock: l } if l == lock));
        assert_eq!(read(config.path()), original());
        assert!(lock.is_dir());
    }

    #[tokio::test]
    async fn writes_through_a_symlinked_config() {
        let home = tempfile::tempdir().unwrap();
        let config = config_in(home.path());
        let real = home.path().join("dotfiles.json");
        fs::write(&real, original().to_string()).unwrap();
        std::os::unix::fs::symlink(&real, config.path()).unwrap();
        config.write_oauth_account(Some(&b())).await.unwrap();
        assert!(fs::symlink_metadata(config.path()).unwrap().file_type().is_symlink());
        assert_eq!(read(&real)["oauthAccount"]["accountUuid"], "acc-b");
    }
}
