//! The live store: wherever Claude Code reads its login from, behind one small interface.
//!
//! On Linux and Windows that is `.credentials.json` ([`FileStore`]); on macOS it is the login
//! Keychain with the file as fallback ([`KeychainFirstStore`]), and [`open_live_store`] picks
//! the one Claude Code itself would read. Two rules hold for every implementation:
//!
//! - A store that cannot be parsed is never treated as empty. Claude may be in the middle of
//!   writing it, so a read retries briefly before reporting [`StoreError::Corrupt`], and a
//!   corrupt store is never overwritten.
//! - Every write is a compare-and-swap against the [`Revision`] the caller read, so a token
//!   Claude rotated in between is never overwritten with an older one.
//!
//! The interface is synchronous: a read blocks for at most about 150 ms (the corrupt-store
//! retries), a write for at most about 3 s (waiting on Claude's storage-write lock). Async
//! callers that mind should run it under `tokio::task::spawn_blocking`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::FileError;
use super::env::Environment;
use super::keychain::KeychainFirstStore;
use super::lock::{self, LockError, LockSpec, STORAGE_WRITE_LOCK_STALE};
use super::login::CredentialDoc;
use super::paths::ClaudePaths;
use crate::durable;

/// Where a live store is, for status reports and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    File { path: PathBuf },
    Keychain { service: String, account: String },
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::File { path } => write!(f, "file {}", path.display()),
            StoreLocation::Keychain { service, account } => {
                write!(f, "keychain item {service} (account {account})")
            }
        }
    }
}

/// Identifies exactly what a read saw: the SHA-256 of the stored bytes, or the absence of any
/// store. Two reads with equal revisions saw the same bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Revision(Option<[u8; 32]>);

impl Revision {
    /// The revision of a store that does not exist.
    pub fn absent() -> Self {
        Revision(None)
    }

    /// The revision of a store holding exactly `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Revision(Some(Sha256::digest(bytes).into()))
    }

    pub fn is_absent(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Revision(absent)"),
            // A hash prefix is enough to tell revisions apart in a log.
            Some(hash) => write!(f, "Revision({})", hex::encode(&hash[..4])),
        }
    }
}

/// One read of the live store.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRead {
    pub doc: CredentialDoc,
    pub revision: Revision,
}

/// Why the live store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("credential store {location} is unavailable: {reason}")]
    Unavailable { location: StoreLocation, reason: String },
    #[error("credential store {} is not valid json; it was left as it is", path.display())]
    Corrupt { path: PathBuf },
    /// A store other than a file (a Keychain item) whose value is not the JSON document.
    #[error("credential store {location} is not valid json; it was left as it is")]
    CorruptItem { location: StoreLocation },
    /// The document cannot be written without exposing it: `security -i` reads one command
    /// line of at most `limit` bytes, and any other way to hand it over puts the token in a
    /// process's arguments.
    #[error(
        "the login is too large for {location}: writing it would take a {bytes}-byte command \
         line and `security -i` reads at most {limit}; nothing was written"
    )]
    TooLarge { location: StoreLocation, bytes: usize, limit: usize },
    #[error("the credential store changed since it was read")]
    Changed,
    #[error("the credential store is being written by another process")]
    Busy,
    #[error(transparent)]
    Io(#[from] FileError),
}

/// The live store, wherever it is.
pub trait LiveStore: Send + Sync + fmt::Debug {
    fn location(&self) -> StoreLocation;
    /// None when Claude has no store at all. A half-written or corrupt store is retried
    /// briefly, then [`StoreError::Corrupt`] (never treated as empty).
    fn read(&self) -> Result<Option<LiveRead>, StoreError>;
    /// Compare-and-swap: writes `doc` only if the store still holds exactly `expected`; else
    /// [`StoreError::Changed`]. Keeps mode 0600; atomic and durable.
    fn write(&self, expected: &Revision, doc: &CredentialDoc) -> Result<Revision, StoreError>;
    /// What the last read found that a person should know about the store: a stale copy of
    /// the login beside the one in use, or why the store in use is the fallback. Most stores
    /// have nothing to say.
    fn warnings(&self) -> Vec<StoreWarning> {
        Vec::new()
    }
}

/// Something about the live store worth telling a person, though nothing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWarning {
    /// The Keychain holds the login and `.credentials.json` holds something else: an old copy
    /// that Claude Code would fall back to (and spend) whenever the Keychain is unusable.
    StaleFile { path: PathBuf },
    /// The Keychain could not be used, so the file serves as Claude Code's store.
    KeychainUnavailable { reason: String },
}

impl fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreWarning::StaleFile { path } => write!(
                f,
                "{} holds an older copy of the login than the Keychain; Claude Code uses it \
                 whenever the Keychain is locked",
                path.display()
            ),
            StoreWarning::KeychainUnavailable { reason } => {
                write!(f, "the Keychain cannot be used ({reason}), so the file is used instead")
            }
        }
    }
}

/// The setting that overrides which live store is used: `keychain` or `file`.
pub const LIVE_STORE_VAR: &str = "SWITCHBOARD_LIVE_STORE";

/// [`LIVE_STORE_VAR`] holds something other than `keychain` or `file`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{LIVE_STORE_VAR} must be `keychain` or `file`, not `{0}`")]
pub struct UnknownLiveStore(pub String);

/// The live store Claude Code reads for this environment.
///
/// On macOS that is the Keychain first and the file when the Keychain cannot be used, as for
/// Claude; elsewhere the file. `SWITCHBOARD_LIVE_STORE=keychain` asks for the Keychain on any
/// system (its `security` program named by `SWITCHBOARD_SECURITY_BIN`), which is how the
/// Keychain path is tested off macOS; `SWITCHBOARD_LIVE_STORE=file` forces the file.
pub fn open_live_store(
    env: &Environment,
    paths: &ClaudePaths,
) -> Result<Arc<dyn LiveStore>, UnknownLiveStore> {
    let keychain = match env.get_non_empty(LIVE_STORE_VAR) {
        None => cfg!(target_os = "macos"),
        Some("keychain") => true,
        Some("file") => false,
        Some(other) => return Err(UnknownLiveStore(other.to_owned())),
    };
    Ok(if keychain {
        Arc::new(KeychainFirstStore::for_env(env, paths))
    } else {
        Arc::new(FileStore::for_paths(paths))
    })
}

/// `.credentials.json`: Claude's store on Linux and Windows, and its fallback on macOS.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    storage_write_lock: PathBuf,
    read_tries: u32,
    read_pause: Duration,
    lock_patience: Duration,
}

impl FileStore {
    /// A store at `path`, written under Claude's `storage_write_lock`.
    pub fn new(path: PathBuf, storage_write_lock: PathBuf) -> Self {
        FileStore {
            path,
            storage_write_lock,
            read_tries: 4,
            read_pause: Duration::from_millis(50),
            lock_patience: Duration::from_secs(3),
        }
    }

    /// The file store Claude uses for these paths.
    pub fn for_paths(paths: &ClaudePaths) -> Self {
        FileStore::new(paths.credentials_file.clone(), paths.storage_write_lock.clone())
    }

    /// How long a write waits for Claude's storage-write lock before [`StoreError::Busy`].
    pub fn with_lock_patience(mut self, patience: Duration) -> Self {
        self.lock_patience = patience;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of the store and their file mode, or `None` when there is no file.
    fn read_raw(&self) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => {
                let mode = fs::metadata(&self.path).map(|m| file_mode(&m)).unwrap_or(0o600);
                Ok(Some((bytes, mode)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FileError::new("read", &self.path, e).into()),
        }
    }

    fn create_folders(&self) -> Result<(), StoreError> {
        // A folder made here is private from the start; an existing one keeps its mode.
        let folders = [self.path.parent(), self.storage_write_lock.parent()];
        for dir in folders.into_iter().flatten().filter(|d| !d.as_os_str().is_empty()) {
            durable::create_dir_all(dir, durable::SECRET_DIR_MODE)
                .map_err(|e| FileError::new("create", dir, e))?;
        }
        Ok(())
    }
}

impl LiveStore for FileStore {
    fn location(&self) -> StoreLocation {
        StoreLocation::File { path: self.path.clone() }
    }

    fn read(&self) -> Result<Option<LiveRead>, StoreError> {
        for attempt in 1..=self.read_tries.max(1) {
            let Some((bytes, _)) = self.read_raw()? else { return Ok(None) };
            match CredentialDoc::parse(&bytes) {
                Ok(doc) => return Ok(Some(LiveRead { doc, revision: Revision::of_bytes(&bytes) })),
                Err(_) if attempt < self.read_tries => std::thread::sleep(self.read_pause),
                // The parse error is not shown: serde's messages may quote the file's text.
                Err(_) => {}
            }
        }
        Err(StoreError::Corrupt { path: self.path.clone() })
    }

    fn write(&self, expected: &Revision, doc: &CredentialDoc) -> Result<Revision, StoreError> {
        let bytes = doc
            .to_bytes()
            .map_err(|e| FileError::new("encode", &self.path, io::Error::other(e)))?;
        self.create_folders()?;
        let spec = LockSpec::with_patience(
            self.storage_write_lock.clone(),
            STORAGE_WRITE_LOCK_STALE,
            self.lock_patience,
        );
        let guard = lock::acquire_blocking(&spec).map_err(|e| match e {
            LockError::Busy { .. } | LockError::Lost { .. } => StoreError::Busy,
            LockError::Io(e) => StoreError::Io(e),
        })?;

        let (current, mode) = match self.read_raw()? {
            Some((old, mode)) => (Revision::of_bytes(&old), private_mode(mode)),
            None => (Revision::absent(), durable::SECRET_FILE_MODE),
        };
        if current != *expected {
            return Err(StoreError::Changed);
        }
        // The lock could have been taken over while we waited on the disk; writing then would
        // race the new holder's own read-modify-write.
        guard.check().map_err(|_| StoreError::Busy)?;
        durable::write_atomic(&self.path, &bytes, mode)
            .map_err(|e| FileError::new("write", &self.path, e))?;
        if let Err(e) = guard.release() {
            tracing::warn!(error = %e, "storage-write lock after writing the live store");
        }
        Ok(Revision::of_bytes(&bytes))
    }
}

/// The mode for a rewritten store: the existing one when it is at least as strict as 0600,
/// else 0600. A token file is never left readable by others.
fn private_mode(existing: u32) -> u32 {
    if existing & !durable::SECRET_FILE_MODE == 0 { existing } else { durable::SECRET_FILE_MODE }
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
    use crate::claude::login::OAuthLogin;
    use crate::secret::Secret;
    use serde_json::{Value, json};
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    const DOC: &str = r#"{"mcpOAuth":{"srv":{"accessToken":"m"}},"claudeAiOauth":{"accessToken":"sk-ant-oat01-a","refreshToken":"sk-ant-ort01-r","expiresAt":1796350846681,"scopes":["user:inference"],"subscriptionType":"max","loginEnded":false,"clientId":"c"},"pluginSecrets":{"p":1}}"#;

    fn store_in(dir: &Path) -> FileStore {
        FileStore::new(dir.join("claude/.credentials.json"), dir.join("claude/.storage-write.lock"))
    }

    fn put(store: &FileStore, bytes: &[u8]) {
        fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        fs::write(store.path(), bytes).unwrap();
    }

    fn rotated(doc: &CredentialDoc, refresh: &str) -> CredentialDoc {
        let mut doc = doc.clone();
        let login: &mut OAuthLogin = doc.login.as_mut().unwrap();
        login.refresh_token = Secret::new(refresh);
        doc
    }

    #[test]
    fn no_file_reads_as_no_store() {
        let dir = tempfile::tempdir().unwrap();
        assert!(store_in(dir.path()).read().unwrap().is_none());
    }

    #[test]
    fn round_trip_keeps_unknown_keys_and_reports_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        put(&store, DOC.as_bytes());
        let read = store.read().unwrap().unwrap();
        assert_eq!(read.revision, Revision::of_bytes(DOC.as_bytes()));

        let next = rotated(&read.doc, "sk-ant-ort01-r2");
        let revision = store.write(&read.revision, &next).unwrap();
        let bytes = fs::read(store.path()).unwrap();
        assert_eq!(revision, Revision::of_bytes(&bytes));

        let mut expected: Value = serde_json::from_str(DOC).unwrap();
        expected["claudeAiOauth"]["refreshToken"] = json!("sk-ant-ort01-r2");
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), expected);
        assert_eq!(store.read().unwrap().unwrap().revision, revision);
        assert!(!dir.path().join("claude/.storage-write.lock").exists());
    }

    #[test]
    fn write_refuses_when_the_store_changed_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        put(&store, DOC.as_bytes());
        let read = store.read().unwrap().unwrap();
        // Claude rotates the token in between.
        let claudes = rotated(&read.doc, "sk-ant-ort01-claude").to_bytes().unwrap();
        fs::write(store.path(), &claudes).unwrap();
        let err = store.write(&read.revision, &rotated(&read.doc, "sk-ant-ort01-ours"));
        assert!(matches!(err, Err(StoreError::Changed)));
        assert_eq!(fs::read(store.path()).unwrap(), claudes);
        // Nor may a write that expects no store replace one that appeared.
        let err = store.write(&Revision::absent(), &read.doc);
        assert!(matches!(err, Err(StoreError::Changed)));
    }

    #[test]
    fn creates_a_new_store_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let doc = CredentialDoc::parse(DOC.as_bytes()).unwrap();
        store.write(&Revision::absent(), &doc).unwrap();
        let file_mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        let dir_mode = fs::metadata(dir.path().join("claude")).unwrap().permissions().mode();
        assert_eq!(file_mode, 0o600);
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(store.read().unwrap().unwrap().doc, doc);
    }

    #[test]
    fn keeps_a_stricter_mode_and_tightens_a_looser_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        for (before, after) in [(0o400, 0o400), (0o644, 0o600)] {
            put(&store, DOC.as_bytes());
            fs::set_permissions(store.path(), fs::Permissions::from_mode(before)).unwrap();
            let read = store.read().unwrap().unwrap();
            store.write(&read.revision, &rotated(&read.doc, "r")).unwrap();
            let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, after);
            fs::set_permissions(store.path(), fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn a_half_written_store_is_read_again_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        put(&store, &DOC.as_bytes()[..40]);
        let path = store.path().to_owned();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            fs::write(path, DOC.as_bytes()).unwrap();
        });
        let read = store.read().unwrap().unwrap();
        writer.join().unwrap();
        assert_eq!(read.revision, Revision::of_bytes(DOC.as_bytes()));
    }

    #[test]
    fn a_corrupt_store_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        put(&store, b"{\"claudeAiOauth\": {\"accessToken\": \"sk-ant-oat01-secret\"");
        let started = Instant::now();
        let err = store.read().unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(150), "retried before giving up");
        assert!(matches!(&err, StoreError::Corrupt { path } if path == store.path()));
        assert!(!err.to_string().contains("secret"));
        let doc = CredentialDoc::parse(DOC.as_bytes()).unwrap();
        assert!(matches!(store.write(&Revision::absent(), &doc), Err(StoreError::Changed)));
        // A document that is JSON but not an object is corrupt as well.
        put(&store, b"[]");
        assert!(matches!(store.read(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn write_waits_for_claudes_storage_lock_then_gives_up_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path()).with_lock_patience(Duration::from_millis(100));
        put(&store, DOC.as_bytes());
        let read = store.read().unwrap().unwrap();
        let lock = dir.path().join("claude/.storage-write.lock");
        fs::create_dir(&lock).unwrap();
        let err = store.write(&read.revision, &rotated(&read.doc, "r"));
        assert!(matches!(err, Err(StoreError::Busy)));
        assert_eq!(fs::read(store.path()).unwrap(), DOC.as_bytes());
        assert!(lock.is_dir(), "Claude's lock must be left alone");
    }

    #[test]
    fn the_live_store_setting_picks_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::from_pairs([("HOME", dir.path().to_str().unwrap())])
            .with("SWITCHBOARD_SECURITY_BIN", dir.path().join("no-security").to_str().unwrap());
        let paths = ClaudePaths::resolve(&env).unwrap();
        fs::create_dir_all(&paths.config_dir).unwrap();
        fs::write(&paths.credentials_file, DOC).unwrap();

        // The Keychain store, with no usable `security`, reads the file and says why.
        let store = open_live_store(&env.clone().with(LIVE_STORE_VAR, "keychain"), &paths).unwrap();
        assert!(store.read().unwrap().is_some());
        assert!(matches!(store.warnings().as_slice(), [StoreWarning::KeychainUnavailable { .. }]));
        assert_eq!(store.location(), StoreLocation::File { path: paths.credentials_file.clone() });

        let store = open_live_store(&env.clone().with(LIVE_STORE_VAR, "file"), &paths).unwrap();
        assert!(store.read().unwrap().is_some());
        assert!(store.warnings().is_empty());

        let default = open_live_store(&env, &paths).unwrap();
        default.read().unwrap();
        // Off macOS the default is the file alone; on macOS the Keychain comes first.
        assert_eq!(default.warnings().is_empty(), !cfg!(target_os = "macos"));

        let err = open_live_store(&env.with(LIVE_STORE_VAR, "vault"), &paths).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SWITCHBOARD_LIVE_STORE must be `keychain` or `file`, not `vault`"
        );
    }

    #[test]
    fn revisions_and_locations_print_without_contents() {
        assert_eq!(format!("{:?}", Revision::absent()), "Revision(absent)");
        assert!(Revision::absent().is_absent());
        assert_ne!(Revision::of_bytes(b"a"), Revision::of_bytes(b"b"));
        let location = StoreLocation::File { path: "/h/.claude/.credentials.json".into() };
        assert_eq!(location.to_string(), "file /h/.claude/.credentials.json");
    }
}
