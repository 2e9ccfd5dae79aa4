//! Where the vault keeps each account's snapshot: files beside the catalog (the default off
//! macOS), the macOS Keychain (the default there, through `security`, as Claude Code keeps
//! its own login), or a desktop keyring (the Secret Service on Linux, the Credential Manager
//! on Windows). Only snapshots move; the catalog, the logins kept aside and the lock stay
//! files in the vault folder.
//!
//! A backend stores opaque bytes under a key, the account's `<accountUuid>.<organizationUuid>`;
//! the vault above it owns the format and every rule about what may be written. Which backend
//! a vault uses is recorded in `backend.json` the first time it leaves the files, so that a
//! later process started with another setting cannot take an empty keyring for an empty vault:
//! it is refused instead, and says which setting the vault needs.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::VaultError;
use crate::durable::{self, SECRET_FILE_MODE};
use crate::keychain::{KeychainError, KeychainItem};

/// The setting that picks the backend: `file`, `keychain` or `keyring`.
pub const BACKEND_VAR: &str = "SWITCHBOARD_VAULT_BACKEND";
/// The record of which backend a vault uses, in the vault folder.
pub const BACKEND_FILE: &str = "backend.json";
/// The format of [`BACKEND_FILE`] this build reads and writes.
const BACKEND_VERSION: u32 = 1;
/// The service name every Keychain item and keyring entry of a vault starts with.
const SERVICE_PREFIX: &str = "Switchboard";

/// The kinds of place a vault can keep its snapshots in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    File,
    Keychain,
    Keyring,
}

impl BackendKind {
    /// The backend `setting` names, else this platform's default: the Keychain on macOS, the
    /// files elsewhere.
    pub fn from_setting(setting: Option<&str>) -> Result<Self, VaultError> {
        match setting.filter(|s| !s.is_empty()) {
            None if cfg!(target_os = "macos") => Ok(BackendKind::Keychain),
            None | Some("file") => Ok(BackendKind::File),
            Some("keychain") => Ok(BackendKind::Keychain),
            Some("keyring") => Ok(BackendKind::Keyring),
            Some(other) => Err(VaultError::BadBackendSetting { value: other.to_owned() }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::File => "file",
            BackendKind::Keychain => "keychain",
            BackendKind::Keyring => "keyring",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a vault's snapshots are, for `account/status` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Files { dir: PathBuf },
    Keychain { service: String },
    Keyring { service: String },
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Files { dir } => write!(f, "{}", dir.display()),
            Placement::Keychain { service } => write!(f, "the Keychain items of service {service}"),
            Placement::Keyring { service } => write!(f, "the keyring entries of service {service}"),
        }
    }
}

/// One place that keeps snapshot bytes by key. Every call is synchronous and short.
pub trait SnapshotBackend: Send + Sync + fmt::Debug {
    fn placement(&self) -> Placement;

    /// The bytes stored under `key`, `None` when there are none.
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError>;

    /// Stores `bytes` under `key` durably, replacing what was there. Returns only once a read
    /// would see them.
    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), VaultError>;

    /// Removes what is stored under `key`; removing nothing is not an error.
    fn remove(&self, key: &str) -> Result<(), VaultError>;

    /// Checks that the place can be used now, before a vault commits to it.
    fn probe(&self) -> Result<(), VaultError> {
        Ok(())
    }
}

/// Snapshots as files, `<dir>/<key>.json`, written atomically and durably.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    pub fn new(dir: PathBuf) -> Self {
        FileBackend { dir }
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

impl SnapshotBackend for FileBackend {
    fn placement(&self) -> Placement {
        Placement::Files { dir: self.dir.clone() }
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
        super::read_if_present(&self.path(key))
    }

    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), VaultError> {
        let path = self.path(key);
        durable::write_atomic(&path, bytes, SECRET_FILE_MODE)
            .map_err(|e| VaultError::io("write", &path, e))
    }

    fn remove(&self, key: &str) -> Result<(), VaultError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(VaultError::io("remove", &path, e)),
        }
        durable::sync_dir(&self.dir).map_err(|e| VaultError::io("sync", &self.dir, e))
    }
}

/// Snapshots as generic passwords of the login Keychain, one item per account under the
/// vault's own service, reached through `security` like Claude's item.
#[derive(Debug, Clone)]
pub struct KeychainBackend {
    item: KeychainItem,
}

impl KeychainBackend {
    pub fn new(security: PathBuf, service: String) -> Self {
        KeychainBackend { item: KeychainItem::new(security, service, String::new()) }
    }

    fn failure(&self, key: &str, action: &'static str, error: KeychainError) -> VaultError {
        VaultError::Backend {
            action,
            place: format!("the Keychain item {} ({key})", self.item.service()),
            reason: error.to_string(),
        }
    }
}

impl SnapshotBackend for KeychainBackend {
    fn placement(&self) -> Placement {
        Placement::Keychain { service: self.item.service().to_owned() }
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.item.with_account(key.to_owned()).fetch().map_err(|e| self.failure(key, "read", e))
    }

    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), VaultError> {
        let item = self.item.with_account(key.to_owned());
        item.put(bytes).map_err(|e| self.failure(key, "write", e))?;
        // `security -i` may report success for a command that failed: only the read-back
        // proves the snapshot is there before the tokens in it are used.
        match item.fetch().map_err(|e| self.failure(key, "read back", e))? {
            Some(stored) if stored == bytes => Ok(()),
            _ => Err(VaultError::Backend {
                action: "write",
                place: format!("the Keychain item {} ({key})", self.item.service()),
                reason: "the keychain did not take the write".to_owned(),
            }),
        }
    }

    fn remove(&self, key: &str) -> Result<(), VaultError> {
        self.item.with_account(key.to_owned()).delete().map_err(|e| self.failure(key, "remove", e))
    }

    fn probe(&self) -> Result<(), VaultError> {
        self.item.check_unlocked().map_err(|e| VaultError::Backend {
            action: "use",
            place: "the Keychain".to_owned(),
            reason: e.to_string(),
        })
    }
}

/// What `backend.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRecord {
    pub version: u32,
    pub snapshots: BackendKind,
    /// The service name of the vault's Keychain items or keyring entries: made once, at
    /// random, so that two vaults on one machine never share an item, and kept here so that
    /// moving the vault folder keeps finding them.
    pub service: String,
}

/// Reads `backend.json` in `dir`: `None` for a vault that never left the files. A record
/// whose service name is not one Switchboard makes is corrupt: it could name another
/// program's items.
pub fn read_record(dir: &Path) -> Result<Option<BackendRecord>, VaultError> {
    let path = dir.join(BACKEND_FILE);
    let Some(bytes) = super::read_if_present(&path)? else { return Ok(None) };
    let record: BackendRecord = super::parse_versioned(&path, &bytes, BACKEND_VERSION)?;
    if !is_vault_service(&record.service) {
        return Err(VaultError::Corrupt {
            path,
            reason: format!("its service is not of the form {SERVICE_PREFIX}-<8 hex digits>"),
        });
    }
    Ok(Some(record).filter(|r| r.snapshots != BackendKind::File))
}

fn is_vault_service(service: &str) -> bool {
    service
        .strip_prefix(SERVICE_PREFIX)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|suffix| suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Opens the snapshots of the vault in `dir` in `chosen`, returning the record they are
/// kept under (`None` for files) and the backend.
///
/// A vault whose snapshots are already in a Keychain or keyring is refused any other choice,
/// files included, because the other place would look empty. A vault of files may move to a
/// Keychain or keyring: its snapshot files are read until each is written anew there. The
/// record of such a move is written only once the backend answers, and never over a record
/// another process wrote first, so that two processes starting at once agree on one service.
/// `snapshots_missing` says whether the catalog names an account with no snapshot file: a
/// vault in that state may have lost its record, and is not moved on a guess.
pub fn open(
    dir: &Path,
    chosen: BackendKind,
    files: FileBackend,
    security: PathBuf,
    snapshots_missing: impl Fn() -> Result<bool, VaultError>,
) -> Result<(Option<BackendRecord>, Box<dyn SnapshotBackend>), VaultError> {
    for _ in 0..3 {
        match read_record(dir)? {
            Some(record) if record.snapshots == chosen => {
                let backend = open_recorded(&record, security)?;
                return Ok((Some(record), backend));
            }
            Some(record) => {
                return Err(VaultError::WrongBackend { recorded: record.snapshots, chosen });
            }
            None if chosen == BackendKind::File => return Ok((None, Box::new(files))),
            None => {}
        }
        if snapshots_missing()? {
            return Err(VaultError::SnapshotsMissing { dir: dir.to_owned() });
        }
        let suffix: [u8; 4] = rand::random();
        let record = BackendRecord {
            version: BACKEND_VERSION,
            snapshots: chosen,
            service: format!("{SERVICE_PREFIX}-{}", hex::encode(suffix)),
        };
        let backend = open_recorded(&record, security.clone())?;
        backend.probe()?;
        if publish(dir, &record)? {
            return Ok((Some(record), backend));
        }
        // Another process recorded a choice first: decide again from what it wrote.
    }
    Err(VaultError::Backend {
        action: "settle",
        place: dir.join(BACKEND_FILE).display().to_string(),
        reason: "it kept changing while this process opened the vault".to_owned(),
    })
}

/// Writes `record` as `backend.json` unless one is there already (then `false`): the record
/// is written whole under a temporary name, then linked into place, which fails when the
/// name is taken. A `backend.json` naming files is replaced: it records no move.
fn publish(dir: &Path, record: &BackendRecord) -> Result<bool, VaultError> {
    let path = dir.join(BACKEND_FILE);
    // Only a record naming files is ever replaced, and only by rename; a missing one is
    // claimed by a link, which fails if another process got there first.
    let replace = path.exists();
    if replace && read_record(dir)?.is_some() {
        return Ok(false);
    }
    let suffix: [u8; 4] = rand::random();
    let temporary = dir.join(format!(".{BACKEND_FILE}.{}.new", hex::encode(suffix)));
    durable::write_atomic(&temporary, &super::encode(&path, record)?, SECRET_FILE_MODE)
        .map_err(|e| VaultError::io("write", &temporary, e))?;
    let placed = if replace {
        fs::rename(&temporary, &path).map(|()| true)
    } else {
        match fs::hard_link(&temporary, &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    };
    let _ = fs::remove_file(&temporary);
    let placed = placed.map_err(|e| VaultError::io("write", &path, e))?;
    durable::sync_dir(dir).map_err(|e| VaultError::io("sync", dir, e))?;
    Ok(placed)
}

/// The Keychain or keyring backend `record` names.
fn open_recorded(
    record: &BackendRecord,
    security: PathBuf,
) -> Result<Box<dyn SnapshotBackend>, VaultError> {
    match record.snapshots {
        BackendKind::Keychain => {
            Ok(Box::new(KeychainBackend::new(security, record.service.clone())))
        }
        BackendKind::Keyring => keyring::open(&record.service),
        // `read_record` never returns a record of files and `open` never makes one.
        BackendKind::File => Err(VaultError::Backend {
            action: "open",
            place: "a record of files".to_owned(),
            reason: "files are opened without a record".to_owned(),
        }),
    }
}

#[cfg(any(target_os = "linux", target_os = "windows"))]
mod keyring {
    //! The desktop keyring through `keyring-core`: the Secret Service over D-Bus on Linux
    //! (GNOME Keyring, KWallet), the Credential Manager on Windows.

    use std::sync::Arc;

    use keyring_core::{CredentialStore, Entry, Error};

    use super::{Placement, SnapshotBackend, VaultError};

    pub(super) fn open(service: &str) -> Result<Box<dyn SnapshotBackend>, VaultError> {
        #[cfg(target_os = "linux")]
        let store = zbus_secret_service_keyring_store::Store::new();
        #[cfg(target_os = "windows")]
        let store = windows_native_keyring_store::Store::new();
        let store: Arc<CredentialStore> = store.map_err(|e| VaultError::Backend {
            action: "open",
            place: "the desktop keyring".to_owned(),
            reason: describe(&e),
        })?;
        Ok(Box::new(KeyringBackend { store, service: service.to_owned() }))
    }

    pub(super) struct KeyringBackend {
        store: Arc<CredentialStore>,
        service: String,
    }

    impl std::fmt::Debug for KeyringBackend {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("KeyringBackend").field("service", &self.service).finish()
        }
    }

    impl KeyringBackend {
        fn entry(&self, key: &str) -> Result<Entry, VaultError> {
            Entry::new_in_store(&self.store, &self.service, key)
                .map_err(|e| self.failure(key, "open", &e))
        }

        fn failure(&self, key: &str, action: &'static str, error: &Error) -> VaultError {
            VaultError::Backend {
                action,
                place: format!("the keyring entry {} ({key})", self.service),
                reason: describe(error),
            }
        }
    }

    /// keyring-core's messages, minus anything that could carry stored bytes.
    fn describe(error: &Error) -> String {
        match error {
            Error::BadEncoding(_) => "the stored value is not what Switchboard wrote".to_owned(),
            Error::Ambiguous(found) => {
                format!("{} entries match where one was expected", found.len())
            }
            other => other.to_string(),
        }
    }

    impl SnapshotBackend for KeyringBackend {
        fn placement(&self) -> Placement {
            Placement::Keyring { service: self.service.clone() }
        }

        fn read(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
            match self.entry(key)?.get_secret() {
                Ok(bytes) => Ok(Some(bytes)),
                Err(Error::NoEntry) => Ok(None),
                Err(e) => Err(self.failure(key, "read", &e)),
            }
        }

        fn write(&self, key: &str, bytes: &[u8]) -> Result<(), VaultError> {
            let entry = self.entry(key)?;
            entry.set_secret(bytes).map_err(|e| self.failure(key, "write", &e))?;
            match entry.get_secret() {
                Ok(stored) if stored == bytes => Ok(()),
                Ok(_) | Err(Error::NoEntry) => Err(VaultError::Backend {
                    action: "write",
                    place: format!("the keyring entry {} ({key})", self.service),
                    reason: "the keyring did not take the write".to_owned(),
                }),
                Err(e) => Err(self.failure(key, "read back", &e)),
            }
        }

        fn remove(&self, key: &str) -> Result<(), VaultError> {
            match self.entry(key)?.delete_credential() {
                Ok(()) | Err(Error::NoEntry) => Ok(()),
                Err(e) => Err(self.failure(key, "remove", &e)),
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "windows")))]
mod keyring {
    //! No desktop keyring is offered here: on macOS the Keychain backend is the one to use.

    use super::{SnapshotBackend, VaultError};

    pub(super) fn open(_service: &str) -> Result<Box<dyn SnapshotBackend>, VaultError> {
        Err(VaultError::Backend {
            action: "open",
            place: "the desktop keyring".to_owned(),
            reason: "this system has none Switchboard can use; on macOS use keychain".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_names_a_backend_or_is_refused() {
        assert_eq!(BackendKind::from_setting(Some("file")).unwrap(), BackendKind::File);
        assert_eq!(BackendKind::from_setting(Some("keychain")).unwrap(), BackendKind::Keychain);
        assert_eq!(BackendKind::from_setting(Some("keyring")).unwrap(), BackendKind::Keyring);
        let default =
            if cfg!(target_os = "macos") { BackendKind::Keychain } else { BackendKind::File };
        assert_eq!(BackendKind::from_setting(None).unwrap(), default);
        assert_eq!(BackendKind::from_setting(Some("")).unwrap(), default);
        assert!(matches!(
            BackendKind::from_setting(Some("Keyring")),
            Err(VaultError::BadBackendSetting { value }) if value == "Keyring"
        ));
    }

    /// A `security` that says the Keychain is unlocked, and nothing more.
    fn unlocked_security(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("security");
        fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn open_kind(dir: &Path, kind: BackendKind) -> Result<Option<BackendRecord>, VaultError> {
        let files = FileBackend::new(dir.join("snapshots"));
        let security = unlocked_security(dir);
        open(dir, kind, files, security, || Ok(false)).map(|(record, _)| record)
    }

    #[test]
    fn files_need_no_record() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open_kind(dir.path(), BackendKind::File).unwrap(), None);
        assert!(!dir.path().join(BACKEND_FILE).exists());
    }

    #[test]
    fn leaving_the_files_writes_a_private_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = open_kind(dir.path(), BackendKind::Keychain).unwrap().unwrap();
        assert_eq!(first.snapshots, BackendKind::Keychain);
        assert!(is_vault_service(&first.service), "{first:?}");
        let again = open_kind(dir.path(), BackendKind::Keychain).unwrap().unwrap();
        assert_eq!(again, first, "the service name is made once and kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join(BACKEND_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another vault gets another service, so two vaults never share an item.
        let other = tempfile::tempdir().unwrap();
        let second = open_kind(other.path(), BackendKind::Keychain).unwrap().unwrap();
        assert_ne!(second.service, first.service);
    }

    #[test]
    fn a_record_written_first_by_another_process_is_the_one_used() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = BackendRecord {
            version: BACKEND_VERSION,
            snapshots: BackendKind::Keychain,
            service: "Switchboard-0badcafe".to_owned(),
        };
        assert!(publish(dir.path(), &theirs).unwrap());
        let ours = BackendRecord { service: "Switchboard-12345678".to_owned(), ..theirs.clone() };
        assert!(!publish(dir.path(), &ours).unwrap(), "never written over another's record");
        assert_eq!(open_kind(dir.path(), BackendKind::Keychain).unwrap(), Some(theirs));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "backend.json and the security script: {leftovers:?}");
    }

    #[test]
    fn a_backend_that_cannot_be_used_is_never_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileBackend::new(dir.path().join("snapshots"));
        let missing = dir.path().join("no-such-security");
        let err = open(dir.path(), BackendKind::Keychain, files, missing, || Ok(false));
        assert!(matches!(err, Err(VaultError::Backend { .. })), "{err:?}");
        assert!(!dir.path().join(BACKEND_FILE).exists(), "files still serve");
    }

    #[test]
    fn a_vault_whose_snapshots_are_not_in_files_is_not_moved_on_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileBackend::new(dir.path().join("snapshots"));
        let security = unlocked_security(dir.path());
        let err = open(dir.path(), BackendKind::Keychain, files, security, || Ok(true));
        let err = err.map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("backend.json"), "{err}");
        assert!(!dir.path().join(BACKEND_FILE).exists());
    }

    #[test]
    fn a_record_naming_a_foreign_service_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        for service in ["", "Claude Code-credentials", "Switchboard-xyz"] {
            let text = format!(r#"{{"version":1,"snapshots":"keychain","service":"{service}"}}"#);
            fs::write(dir.path().join(BACKEND_FILE), &text).unwrap();
            let err = open_kind(dir.path(), BackendKind::Keychain).unwrap_err();
            assert!(matches!(err, VaultError::Corrupt { .. }), "{service}: {err:?}");
            assert_eq!(fs::read_to_string(dir.path().join(BACKEND_FILE)).unwrap(), text);
        }
    }

    #[test]
    fn a_vault_that_left_the_files_refuses_every_other_backend() {
        let dir = tempfile::tempdir().unwrap();
        open_kind(dir.path(), BackendKind::Keychain).unwrap();
        let before = fs::read(dir.path().join(BACKEND_FILE)).unwrap();
        for chosen in [BackendKind::File, BackendKind::Keyring] {
            match open_kind(dir.path(), chosen) {
                Err(e @ VaultError::WrongBackend { .. }) => {
                    assert!(e.to_string().contains("SWITCHBOARD_VAULT_BACKEND=keychain"), "{e}");
                }
                other => panic!("expected WrongBackend, got {other:?}"),
            }
        }
        assert_eq!(fs::read(dir.path().join(BACKEND_FILE)).unwrap(), before, "left as it was");
    }

    #[test]
    fn file_backend_round_trips_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileBackend::new(dir.path().to_owned());
        assert_eq!(files.read("a.b").unwrap(), None);
        files.write("a.b", b"{}\n").unwrap();
        assert_eq!(files.read("a.b").unwrap().as_deref(), Some(&b"{}\n"[..]));
        files.remove("a.b").unwrap();
        files.remove("a.b").unwrap();
        assert_eq!(files.read("a.b").unwrap(), None);
    }
}
