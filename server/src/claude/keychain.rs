//! The macOS Keychain as Claude Code's live store, reached only through the `security` program,
//! exactly as Claude reaches it.
//!
//! Claude keeps its login in a generic password of the login Keychain. Switchboard must read
//! and write the very item Claude uses, with the very program Claude uses:
//!
//! - The item is named by a service (`Claude Code-credentials`, plus a hash of the config
//!   folder when `CLAUDE_CONFIG_DIR` is set) and an account (`$USER`, else the OS user name,
//!   else `claude-code-user`). The account is always passed: another item under the same
//!   service, account `unknown`, may hold MCP secrets and must never be read or touched.
//! - Writes go through `/usr/bin/security` too. A write through the Security framework from
//!   another binary has been seen to reset the item's access list, after which Claude's own
//!   reads hang on a prompt.
//! - No token ever appears in a process's arguments: a write pipes one command line into
//!   `security -i`, whose lines hold at most [`MAX_COMMAND_LINE`] bytes. A login too large for
//!   that is refused ([`StoreError::TooLarge`]) rather than written some other way.
//! - When the Keychain cannot be used (locked, as over SSH, or `security` missing or failing),
//!   Claude falls back to `.credentials.json`, and a Keychain value, when present, wins over
//!   the file. [`KeychainFirstStore`] makes that choice once per read and once per write, so
//!   one operation never reads one store and writes the other.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use super::FileError;
use super::env::Environment;
use super::lock::{self, LockError, LockSpec, STORAGE_WRITE_LOCK_STALE};
use super::login::CredentialDoc;
use super::paths::ClaudePaths;
use super::store::{
    FileStore, LiveRead, LiveStore, Revision, StoreError, StoreLocation, StoreWarning,
};
use crate::durable;
use crate::keychain::{KeychainError, KeychainItem};

/// The service name of Claude's item without a config-folder hash.
pub const SERVICE_PREFIX: &str = "Claude Code-credentials";
/// The account Claude uses when the user name is missing or not a plain name.
pub const FALLBACK_ACCOUNT: &str = "claude-code-user";

/// The Keychain service Claude Code names its item with.
///
/// `hash_input` is [`ClaudePaths::keychain_hash_input`]: the raw `CLAUDE_CONFIG_DIR` (or
/// `CLAUDE_SECURESTORAGE_CONFIG_DIR`) string. Claude hashes it after Unicode NFC normalisation
/// and nothing else, so a trailing slash or `..` names a different item.
pub fn service_name(hash_input: Option<&str>) -> String {
    match hash_input {
        None => SERVICE_PREFIX.to_owned(),
        Some(raw) => {
            let normalised: String = raw.nfc().collect();
            let digest = hex::encode(Sha256::digest(normalised.as_bytes()));
            format!("{SERVICE_PREFIX}-{}", &digest[..8])
        }
    }
}

/// The Keychain account Claude Code names its item with, for `env`: `$USER` when set, else
/// the OS user name; [`FALLBACK_ACCOUNT`] when that is missing or not a plain name.
pub fn account_name(env: &Environment) -> String {
    choose_account(env.get_non_empty("USER"), || whoami::username().ok())
}

/// [`account_name`] with the OS user name supplied, so the rule can be tested on its own.
pub fn choose_account(user: Option<&str>, os_user: impl FnOnce() -> Option<String>) -> String {
    let name = match user.filter(|u| !u.is_empty()) {
        Some(user) => Some(user.to_owned()),
        None => os_user(),
    };
    // Claude 2.1.332 accepts only plain names; an address such as `first.last@example.com`
    // gets the fallback, and Switchboard must name the same item.
    match name {
        Some(name) if is_plain_name(&name) => name,
        _ => FALLBACK_ACCOUNT.to_owned(),
    }
}

/// `^[a-zA-Z0-9._-]+$`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
}

/// One Keychain item reached through `security`: Claude's login on macOS.
#[derive(Debug, Clone)]
pub struct KeychainStore {
    item: KeychainItem,
    storage_write_lock: PathBuf,
    lock_patience: Duration,
}

impl KeychainStore {
    /// The item `(service, account)`, reached through the program at `security` and written
    /// under Claude's `storage_write_lock`.
    pub fn new(
        security: PathBuf,
        service: String,
        account: String,
        storage_write_lock: PathBuf,
    ) -> Self {
        KeychainStore {
            item: KeychainItem::new(security, service, account),
            storage_write_lock,
            lock_patience: Duration::from_secs(3),
        }
    }

    /// The item Claude Code uses for this environment.
    pub fn for_env(env: &Environment, paths: &ClaudePaths) -> Self {
        KeychainStore::new(
            KeychainItem::program(env.get(crate::keychain::SECURITY_BIN_VAR)),
            service_name(paths.keychain_hash_input.as_deref()),
            account_name(env),
            paths.storage_write_lock.clone(),
        )
    }

    /// How long a write waits for Claude's storage-write lock before [`StoreError::Busy`].
    pub fn with_lock_patience(mut self, patience: Duration) -> Self {
        self.lock_patience = patience;
        self
    }

    pub fn service(&self) -> &str {
        self.item.service()
    }

    pub fn account(&self) -> &str {
        self.item.account()
    }

    /// The stored bytes of Claude's item, `None` when there is none. Never reads another
    /// account's item: the account is always named.
    pub fn fetch(&self) -> Result<Option<Vec<u8>>, KeychainError> {
        self.item.fetch()
    }

    fn store_error(&self, error: KeychainError) -> StoreError {
        match error {
            KeychainError::TooLarge { bytes, limit } => {
                StoreError::TooLarge { location: self.location(), bytes, limit }
            }
            other => self.unavailable(other.to_string()),
        }
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable { location: self.location(), reason }
    }

    /// Parses what [`KeychainStore::fetch`] returned into one read.
    fn parse(&self, bytes: Vec<u8>) -> Result<LiveRead, StoreError> {
        match CredentialDoc::parse(&bytes) {
            Ok(doc) => Ok(LiveRead { doc, revision: Revision::of_bytes(&bytes) }),
            // The parse error is not shown: serde's messages may quote the value.
            Err(_) => Err(StoreError::CorruptItem { location: self.location() }),
        }
    }

    fn storage_write_guard(&self) -> Result<lock::LockGuard, StoreError> {
        if let Some(dir) = self.storage_write_lock.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A folder made here is private from the start; an existing one keeps its mode.
            durable::create_dir_all(dir, durable::SECRET_DIR_MODE)
                .map_err(|e| FileError::new("create", dir, e))?;
        }
        let spec = LockSpec::with_patience(
            self.storage_write_lock.clone(),
            STORAGE_WRITE_LOCK_STALE,
            self.lock_patience,
        );
        lock::acquire_blocking(&spec).map_err(|e| match e {
            LockError::Busy { .. } | LockError::Lost { .. } => StoreError::Busy,
            LockError::Io(e) => StoreError::Io(e),
        })
    }
}

impl LiveStore for KeychainStore {
    fn location(&self) -> StoreLocation {
        StoreLocation::Keychain {
            service: self.item.service().to_owned(),
            account: self.item.account().to_owned(),
        }
    }

    fn read(&self) -> Result<Option<LiveRead>, StoreError> {
        match self.fetch() {
            Ok(Some(bytes)) => self.parse(bytes).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(self.unavailable(e.to_string())),
        }
    }

    fn write(&self, expected: &Revision, doc: &CredentialDoc) -> Result<Revision, StoreError> {
        let bytes = doc.to_bytes().map_err(|e| {
            FileError::new("encode", Path::new(self.service()), io::Error::other(e))
        })?;
        // Refused before anything is locked or read: nothing is half done.
        self.item.check_fits(&bytes).map_err(|e| self.store_error(e))?;
        let guard = self.storage_write_guard()?;
        let before = self.fetch().map_err(|e| self.unavailable(e.to_string()))?;
        let current = before.as_deref().map_or_else(Revision::absent, Revision::of_bytes);
        if current != *expected {
            return Err(StoreError::Changed);
        }
        guard.check().map_err(|_| StoreError::Busy)?;
        self.item.put(&bytes).map_err(|e| self.store_error(e))?;
        // `security -i` may report success for a command that failed; only reading the item
        // back proves the write (a write reported as done that was not loses the old login).
        let after = self.fetch().map_err(|e| self.unavailable(e.to_string()))?;
        if let Err(e) = guard.release() {
            tracing::warn!(error = %e, "storage-write lock after writing the keychain item");
        }
        match after {
            Some(stored) if stored == bytes => Ok(Revision::of_bytes(&bytes)),
            stored if stored == before => {
                Err(self.unavailable("the keychain did not take the write".to_owned()))
            }
            // Someone wrote after us, lock or not: what is there now is theirs.
            _ => Err(StoreError::Changed),
        }
    }
}

/// Which store served the last read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The Keychain is usable and holds the login, or neither store holds anything (a first
    /// login goes where Claude would put it). `stale_file` when the file also exists and holds
    /// something else.
    Keychain { stale_file: bool },
    /// The Keychain is usable but empty, and the file exists: Claude reads the file then.
    FileBecauseKeychainEmpty,
    /// The Keychain cannot be used: the file serves for the whole operation.
    FileBecauseKeychainUnusable { reason: String },
}

/// Claude Code's store on macOS: the Keychain item when the Keychain is usable and holds the
/// login, else `.credentials.json`.
///
/// The choice is made afresh for every read and every write. A write goes to the store the
/// choice names at that moment, with compare-and-swap against the revision the caller read:
/// if the choice moved between the read and the write (the Keychain was locked meanwhile),
/// the revisions differ and the caller reads again, so an operation never reads one store
/// and writes the other.
#[derive(Debug)]
pub struct KeychainFirstStore {
    keychain: KeychainStore,
    file: FileStore,
    last: Mutex<Option<StoreChoice>>,
}

/// One choice with what the Keychain held when it was made.
enum Chosen {
    Keychain(Option<Vec<u8>>),
    File(StoreChoice),
}

impl KeychainFirstStore {
    pub fn new(keychain: KeychainStore, file: FileStore) -> Self {
        KeychainFirstStore { keychain, file, last: Mutex::new(None) }
    }

    /// The Keychain item and file Claude Code uses for this environment.
    pub fn for_env(env: &Environment, paths: &ClaudePaths) -> Self {
        KeychainFirstStore::new(KeychainStore::for_env(env, paths), FileStore::for_paths(paths))
    }

    pub fn keychain(&self) -> &KeychainStore {
        &self.keychain
    }

    pub fn file(&self) -> &FileStore {
        &self.file
    }

    /// The choice the last read or write made, if any was made yet.
    pub fn last_choice(&self) -> Option<StoreChoice> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn remember(&self, choice: StoreChoice) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(choice);
    }

    fn choose(&self) -> Chosen {
        match self.keychain.fetch() {
            Ok(Some(bytes)) => Chosen::Keychain(Some(bytes)),
            Ok(None) if self.file.path().exists() => {
                Chosen::File(StoreChoice::FileBecauseKeychainEmpty)
            }
            Ok(None) => Chosen::Keychain(None),
            Err(e) => {
                tracing::info!(reason = %e, "the keychain cannot be used; using the file");
                Chosen::File(StoreChoice::FileBecauseKeychainUnusable { reason: e.to_string() })
            }
        }
    }

    /// Whether the file exists and holds something other than `doc`.
    fn file_is_stale(&self, doc: &CredentialDoc) -> bool {
        match self.file.read() {
            Ok(Some(read)) => read.doc != *doc,
            Ok(None) => false,
            // A corrupt file is not the Keychain's document either.
            Err(StoreError::Corrupt { .. }) => true,
            Err(_) => false,
        }
    }
}

impl LiveStore for KeychainFirstStore {
    fn location(&self) -> StoreLocation {
        let choice = match self.last_choice() {
            Some(choice) => choice,
            None => match self.choose() {
                Chosen::Keychain(_) => StoreChoice::Keychain { stale_file: false },
                Chosen::File(choice) => choice,
            },
        };
        match choice {
            StoreChoice::Keychain { .. } => self.keychain.location(),
            _ => self.file.location(),
        }
    }

    fn read(&self) -> Result<Option<LiveRead>, StoreError> {
        match self.choose() {
            Chosen::Keychain(None) => {
                self.remember(StoreChoice::Keychain { stale_file: false });
                Ok(None)
            }
            Chosen::Keychain(Some(bytes)) => {
                let read = self.keychain.parse(bytes)?;
                let stale_file = self.file_is_stale(&read.doc);
                self.remember(StoreChoice::Keychain { stale_file });
                Ok(Some(read))
            }
            Chosen::File(choice) => {
                self.remember(choice);
                self.file.read()
            }
        }
    }

    fn write(&self, expected: &Revision, doc: &CredentialDoc) -> Result<Revision, StoreError> {
        match self.choose() {
            Chosen::Keychain(_) => {
                let written = self.keychain.write(expected, doc)?;
                let stale_file = self.file_is_stale(doc);
                self.remember(StoreChoice::Keychain { stale_file });
                Ok(written)
            }
            Chosen::File(choice) => {
                self.remember(choice);
                self.file.write(expected, doc)
            }
        }
    }

    fn warnings(&self) -> Vec<StoreWarning> {
        match self.last_choice() {
            Some(StoreChoice::Keychain { stale_file: true }) => {
                vec![StoreWarning::StaleFile { path: self.file.path().to_owned() }]
            }
            Some(StoreChoice::FileBecauseKeychainUnusable { reason }) => {
                vec![StoreWarning::KeychainUnavailable { reason }]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::{MAX_COMMAND_LINE, add_command_line};

    #[test]
    fn service_without_a_config_folder_is_the_bare_prefix() {
        assert_eq!(service_name(None), "Claude Code-credentials");
    }

    #[test]
    fn service_hashes_the_raw_string() {
        let expected = format!("Claude Code-credentials-{}", &sha_hex("/Users/ada/.claude")[..8]);
        assert_eq!(service_name(Some("/Users/ada/.claude")), expected);
        assert_eq!(expected.len(), SERVICE_PREFIX.len() + 9);
        // A trailing slash is another string, so another item.
        assert_ne!(service_name(Some("/Users/ada/.claude/")), expected);
    }

    #[test]
    fn service_hashes_the_nfc_form() {
        // "é" decomposed (e + combining acute) and precomposed name the same item.
        let decomposed = "/Users/ren\u{0065}\u{0301}e/claude";
        let composed = "/Users/ren\u{00e9}e/claude";
        assert_ne!(decomposed, composed);
        assert_eq!(service_name(Some(decomposed)), service_name(Some(composed)));
        assert_eq!(
            service_name(Some(decomposed)),
            format!("{SERVICE_PREFIX}-{}", &sha_hex(composed)[..8])
        );
    }

    fn sha_hex(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn known_hash_values() {
        // Computed with `printf %s STRING | sha256sum`, outside this code.
        assert_eq!(service_name(Some("/tmp/x")), "Claude Code-credentials-2e56aa36");
        assert_eq!(service_name(Some("/tmp/x/")), "Claude Code-credentials-87b47fa9");
        // Decomposed input, hashed by Python's unicodedata NFC form then hashlib.
        assert_eq!(
            service_name(Some("/Users/ren\u{0065}\u{0301}e/claude")),
            "Claude Code-credentials-71234cc6"
        );
    }

    #[test]
    fn account_is_user_then_os_user_then_fallback() {
        assert_eq!(choose_account(Some("ada"), || panic!("USER is enough")), "ada");
        assert_eq!(choose_account(Some("a.b-c_9"), || None), "a.b-c_9");
        assert_eq!(choose_account(None, || Some("osname".into())), "osname");
        assert_eq!(choose_account(Some(""), || Some("osname".into())), "osname");
        assert_eq!(choose_account(None, || None), FALLBACK_ACCOUNT);
        // K09: a user name that is not a plain name gets the fallback, not the OS name.
        assert_eq!(choose_account(Some("first.last@example.com"), || None), FALLBACK_ACCOUNT);
        assert_eq!(choose_account(Some("Ada Lovelace"), || None), FALLBACK_ACCOUNT);
        assert_eq!(choose_account(None, || Some("dom\\user".into())), FALLBACK_ACCOUNT);
    }

    #[test]
    fn account_reads_user_from_the_environment() {
        let env = Environment::from_pairs([("USER", "first.last@example.com")]);
        assert_eq!(account_name(&env), FALLBACK_ACCOUNT);
        let env = Environment::from_pairs([("USER", "ada")]);
        assert_eq!(account_name(&env), "ada");
    }

    #[test]
    fn a_login_too_large_for_one_line_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        // A program that does not exist proves nothing was run: the error would differ.
        let store = KeychainStore::new(
            dir.path().join("no-such-security"),
            SERVICE_PREFIX.to_owned(),
            "ada".to_owned(),
            dir.path().join("claude/.storage-write.lock"),
        );
        let overhead = add_command_line(SERVICE_PREFIX, "ada", b"").len();
        let fits = (MAX_COMMAND_LINE - overhead) / 2;
        let doc_of = |len: usize| {
            // `{"k":"…"}` is 8 bytes around the padding.
            let text = format!("{{\"k\":\"{}\"}}", "x".repeat(len - 8));
            CredentialDoc::parse(text.as_bytes()).unwrap()
        };
        let err = store.write(&Revision::absent(), &doc_of(fits + 1)).unwrap_err();
        match &err {
            StoreError::TooLarge { bytes, limit, .. } => {
                assert_eq!(*limit, MAX_COMMAND_LINE);
                assert_eq!(*bytes, overhead + 2 * (fits + 1));
                assert!(*bytes > MAX_COMMAND_LINE);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(err.to_string().contains("4032"), "{err}");
        assert!(!dir.path().join("claude").exists(), "no lock was taken");
        // One byte less fits, and gets as far as running the (missing) program.
        let err = store.write(&Revision::absent(), &doc_of(fits)).unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_program_makes_the_file_serve() {
        let dir = tempfile::tempdir().unwrap();
        let keychain = KeychainStore::new(
            dir.path().join("no-such-security"),
            SERVICE_PREFIX.to_owned(),
            "ada".to_owned(),
            dir.path().join(".storage-write.lock"),
        );
        let file = FileStore::new(
            dir.path().join(".credentials.json"),
            dir.path().join(".storage-write.lock"),
        );
        std::fs::write(file.path(), br#"{"claudeAiOauth":null,"mcpOAuth":{}}"#).unwrap();
        let store = KeychainFirstStore::new(keychain, file);
        let read = store.read().unwrap().unwrap();
        assert!(read.doc.rest.contains_key("mcpOAuth"));
        assert!(matches!(store.location(), StoreLocation::File { .. }));
        assert!(matches!(
            store.warnings().as_slice(),
            [StoreWarning::KeychainUnavailable { reason }] if reason.contains("no-such-security")
        ));
    }
}
