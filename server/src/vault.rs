//! Switchboard's own store: one snapshot per account, the catalog naming them, the logins kept
//! aside because they belong to no managed account, and the lock that serialises operations.
//!
//! The vault keeps the lineage rule "nothing lost on a crash": every file is written with
//! [`durable::write_atomic`], so a reader sees the old contents or the new, never half. A file
//! that does not parse is reported as [`VaultError::Corrupt`] and left exactly as it is: it
//! may hold the only copy of a refresh token, so nothing here ever treats it as absent or
//! writes over it on its own.
//!
//! Layout, under `$SWITCHBOARD_HOME`, else the platform data folder plus `switchboard`:
//!
//! ```text
//! catalog.json                                   accounts, aliases, active and previous
//! snapshots/<accountUuid>.<organizationUuid>.json  one login per account
//! aside/<keptAt>-<fingerprint>.json              logins that belong to no managed account
//! vault.lock                                     the cross-process lock
//! backend.json                                   where the snapshots are, when not files
//! ```
//!
//! Folders are 0700 and files 0600 from the moment they are created. The snapshots may live
//! in the macOS Keychain or a desktop keyring instead of `snapshots/` (see [`backend`]); a
//! snapshot file left from before such a move is read until the account's next write puts
//! its login there and removes the file.

pub mod backend;
mod catalog;
mod lock;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::claude::login::OAuthLogin;
use crate::durable::{self, SECRET_DIR_MODE, SECRET_FILE_MODE};
use backend::{BackendKind, FileBackend, Placement, SnapshotBackend};

pub use catalog::{
    AccountId, AccountRecord, CATALOG_VERSION, Catalog, MAX_ALIAS_LEN, validate_alias,
};
pub use lock::VaultLock;

/// The snapshot and aside file format this build reads and writes.
pub const SNAPSHOT_VERSION: u32 = 1;

const CATALOG_FILE: &str = "catalog.json";
const SNAPSHOTS_DIR: &str = "snapshots";
const ASIDE_DIR: &str = "aside";
const LOCK_FILE: &str = "vault.lock";

/// What can go wrong in the vault. No variant ever carries a token.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot find a data folder for the vault; set SWITCHBOARD_HOME")]
    NoHome,
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is corrupt: {reason}; it was left untouched for inspection", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{} was written by a newer Switchboard (format {found}, this one reads {supported}); \
         upgrade Switchboard",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("invalid alias \"{alias}\": {reason}")]
    InvalidAlias { alias: String, reason: &'static str },
    #[error("invalid account identifier \"{id}\"")]
    InvalidId { id: String },
    #[error("refusing to write the catalog: {0}")]
    InvalidCatalog(String),
    #[error("refusing to store a blank login as the snapshot of {id}")]
    BlankLogin { id: AccountId },
    #[error("refusing to store a login of {found} as the snapshot of {id}")]
    IdentityMismatch { id: AccountId, found: String },
    #[error("the vault is busy: another Switchboard operation held it for {}", humane(*patience))]
    Busy { patience: Duration },
    #[error("cannot {action} {place}: {reason}")]
    Backend { action: &'static str, place: String, reason: String },
    #[error("{place} is corrupt: {reason}; it was left untouched for inspection")]
    CorruptItem { place: String, reason: String },
    #[error("SWITCHBOARD_VAULT_BACKEND is \"{value}\"; use file, keychain or keyring")]
    BadBackendSetting { value: String },
    #[error(
        "this vault keeps its snapshots in the {recorded} backend, not {chosen}; set \
         SWITCHBOARD_VAULT_BACKEND={recorded} (its backend.json records the choice)"
    )]
    WrongBackend { recorded: BackendKind, chosen: BackendKind },
    #[error(
        "another Switchboard moved this vault's snapshots to the {moved_to} backend after this \
         one started; restart it with SWITCHBOARD_VAULT_BACKEND={moved_to}"
    )]
    BackendChanged { moved_to: BackendKind },
    #[error(
        "the catalog in {} names accounts whose snapshots are not in files, so they are kept \
         elsewhere: if backend.json was removed from the vault, put it back; nothing was moved",
        dir.display()
    )]
    SnapshotsMissing { dir: PathBuf },
}

impl VaultError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        VaultError::Io { action, path: path.to_owned(), source }
    }
}

fn humane(d: Duration) -> String {
    if d.as_secs() >= 1 { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}

/// One account's login as the vault keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: AccountId,
    pub login: OAuthLogin,
    /// Epoch milliseconds of when this login was stored.
    pub saved_at: i64,
}

/// A login kept aside, as [`Vault::read_aside`] finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AsideEntry {
    pub path: PathBuf,
    pub reason: String,
    pub kept_at: i64,
    pub login: OAuthLogin,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotFile {
    version: u32,
    #[serde(flatten)]
    id: AccountId,
    saved_at: i64,
    login: OAuthLogin,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AsideFile {
    version: u32,
    reason: String,
    kept_at: i64,
    login: OAuthLogin,
}

/// Only the version, read first so that a newer format is refused before its shape is judged.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<u32>,
}

/// Switchboard's store: a folder, and the backend its snapshots are in. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Vault {
    dir: PathBuf,
    snapshots: Arc<dyn SnapshotBackend>,
    /// Where snapshots were before the vault moved them to a Keychain or keyring; the same
    /// place as `snapshots` for a vault of files.
    files: FileBackend,
    /// The move this process opened the vault under, `None` for files.
    record: Option<backend::BackendRecord>,
}

impl Vault {
    /// The vault folder: `SWITCHBOARD_HOME` when set and not empty (made absolute, so that
    /// processes started from different folders agree), else the platform data folder plus
    /// `switchboard`.
    pub fn default_dir(env_home: Option<&str>) -> Result<PathBuf, VaultError> {
        match env_home.filter(|h| !h.is_empty()) {
            Some(home) => {
                std::path::absolute(home).map_err(|e| VaultError::io("resolve", Path::new(home), e))
            }
            None => dirs::data_dir().map(|d| d.join("switchboard")).ok_or(VaultError::NoHome),
        }
    }

    /// Opens the vault at `dir` with its snapshots as files, creating it and its folders with
    /// mode 0700 when missing.
    pub fn open(dir: PathBuf) -> Result<Self, VaultError> {
        Self::open_with(dir, BackendKind::File, PathBuf::new())
    }

    /// Opens the vault at `dir` with its snapshots in `kind` (reaching the Keychain through
    /// the program at `security`). Refused when the vault already keeps them elsewhere.
    pub fn open_with(
        dir: PathBuf,
        kind: BackendKind,
        security: PathBuf,
    ) -> Result<Self, VaultError> {
        let files = FileBackend::new(dir.join(SNAPSHOTS_DIR));
        for folder in [dir.clone(), dir.join(SNAPSHOTS_DIR), dir.join(ASIDE_DIR)] {
            durable::create_dir_all(&folder, SECRET_DIR_MODE)
                .map_err(|e| VaultError::io("create", &folder, e))?;
        }
        warn_if_shared(&dir);
        let catalog_path = dir.join(CATALOG_FILE);
        let snapshots_missing = || {
            for record in read_catalog_at(&catalog_path)?.accounts {
                if !files.path(&snapshot_key(&record.id)?).exists() {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        let (record, snapshots) =
            backend::open(&dir, kind, files.clone(), security, snapshots_missing)?;
        Ok(Vault { dir, snapshots: Arc::from(snapshots), files, record })
    }

    fn moved(&self) -> bool {
        self.record.is_some()
    }

    /// Refuses to go on when another process moved the snapshots after this one opened the
    /// vault: writing where this process still writes would put a login where nobody looks.
    fn check_backend(&self) -> Result<(), VaultError> {
        let now = backend::read_record(&self.dir)?;
        if now == self.record {
            return Ok(());
        }
        let moved_to = now.map_or(BackendKind::File, |r| r.snapshots);
        Err(VaultError::BackendChanged { moved_to })
    }

    /// Where the snapshots are kept.
    pub fn placement(&self) -> Placement {
        self.snapshots.placement()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.dir.join(CATALOG_FILE)
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.dir.join(SNAPSHOTS_DIR)
    }

    pub fn aside_dir(&self) -> PathBuf {
        self.dir.join(ASIDE_DIR)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// The file that holds, or held before a move to a Keychain or keyring, the snapshot of
    /// `id`; refuses identities that are not uuid-like.
    pub fn snapshot_path(&self, id: &AccountId) -> Result<PathBuf, VaultError> {
        Ok(self.files.path(&snapshot_key(id)?))
    }

    /// Reads the catalog. A missing file is an empty catalog (a new vault); a file that does
    /// not parse, or breaks the catalog's rules, is [`VaultError::Corrupt`].
    pub fn read_catalog(&self) -> Result<Catalog, VaultError> {
        read_catalog_at(&self.catalog_path())
    }

    /// Writes the catalog durably after checking its rules (see [`Catalog::check`]).
    pub fn write_catalog(&self, catalog: &Catalog) -> Result<(), VaultError> {
        catalog.check()?;
        self.write_json(&self.catalog_path(), catalog)
    }

    /// Reads the snapshot of `id`: `None` when there is none. A file that does not parse,
    /// or holds another account's login, is [`VaultError::Corrupt`], never `None`.
    pub fn read_snapshot(&self, id: &AccountId) -> Result<Option<Snapshot>, VaultError> {
        let key = snapshot_key(id)?;
        self.check_backend()?;
        let (bytes, place) = match self.snapshots.read(&key)? {
            Some(bytes) => (bytes, self.item_place(&key)),
            None if self.moved() => match self.files.read(&key)? {
                Some(bytes) => (bytes, ItemPlace::File(self.files.path(&key))),
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        let file: SnapshotFile = place.parse(&bytes)?;
        if &file.id != id {
            return Err(place.corrupt(format!("it holds the snapshot of {}", file.id)));
        }
        Ok(Some(Snapshot { id: file.id, login: file.login, saved_at: file.saved_at }))
    }

    fn item_place(&self, key: &str) -> ItemPlace {
        if self.moved() {
            ItemPlace::Item(format!("{} ({key})", self.snapshots.placement()))
        } else {
            ItemPlace::File(self.files.path(key))
        }
    }

    /// Writes a snapshot durably, replacing the account's previous one.
    ///
    /// A blank login (Claude's mark of a dead login) is refused, as is a login that names a
    /// different account than the snapshot: either would overwrite the only good copy of a
    /// lineage with something useless.
    pub fn write_snapshot(&self, snapshot: &Snapshot) -> Result<(), VaultError> {
        let key = snapshot_key(&snapshot.id)?;
        self.check_backend()?;
        let login = &snapshot.login;
        if login.is_blank() {
            return Err(VaultError::BlankLogin { id: snapshot.id.clone() });
        }
        let claims = [
            (&login.account_uuid, &snapshot.id.account_uuid),
            (&login.organization_uuid, &snapshot.id.organization_uuid),
        ];
        if claims.iter().any(|(found, want)| found.as_ref().is_some_and(|f| f != *want)) {
            return Err(VaultError::IdentityMismatch {
                id: snapshot.id.clone(),
                found: format!(
                    "{}/{}",
                    login.account_uuid.as_deref().unwrap_or("?"),
                    login.organization_uuid.as_deref().unwrap_or("?")
                ),
            });
        }
        let file = SnapshotFile {
            version: SNAPSHOT_VERSION,
            id: snapshot.id.clone(),
            saved_at: snapshot.saved_at,
            login: login.clone(),
        };
        let bytes = encode(&self.files.path(&key), &file)?;
        self.snapshots.write(&key, &bytes)?;
        if self.moved() {
            // The login is in the Keychain or keyring now, read back; the file from before
            // the move holds an older token of the lineage and would only mislead.
            self.files.remove(&key)?;
        }
        Ok(())
    }

    /// Removes the snapshot of `id`; removing one that is not there is not an error.
    pub fn remove_snapshot(&self, id: &AccountId) -> Result<(), VaultError> {
        let key = snapshot_key(id)?;
        self.snapshots.remove(&key)?;
        if self.moved() {
            self.files.remove(&key)?;
        }
        Ok(())
    }

    /// Keeps a login that belongs to no managed account, so that it is never dropped, and
    /// returns the file holding it.
    ///
    /// Each new login gets a new file; no earlier aside file is ever replaced. Keeping the
    /// same login (same access and refresh token) again returns the file that already has it,
    /// so a watcher seeing one unmanaged login many times does not pile up copies.
    pub fn keep_aside(&self, login: &OAuthLogin, reason: &str) -> Result<PathBuf, VaultError> {
        for entry in self.read_aside()? {
            if entry.login.access_token == login.access_token
                && entry.login.refresh_token == login.refresh_token
            {
                return Ok(entry.path);
            }
        }
        let kept_at = now_ms();
        let stem = format!("{kept_at}-{}", login.refresh_token.fingerprint());
        let dir = self.aside_dir();
        let path = (0..)
            .map(|n| match n {
                0 => dir.join(format!("{stem}.json")),
                n => dir.join(format!("{stem}-{n}.json")),
            })
            .find(|p| !p.exists())
            .expect("an unbounded range always yields a free name");
        let file = AsideFile {
            version: SNAPSHOT_VERSION,
            reason: reason.to_owned(),
            kept_at,
            login: login.clone(),
        };
        self.write_json(&path, &file)?;
        tracing::warn!(
            path = %path.display(),
            refresh = %login.refresh_token.fingerprint(),
            reason,
            "kept a login that belongs to no managed account"
        );
        Ok(path)
    }

    /// Every login kept aside, oldest first. Aside files that do not parse are skipped with
    /// a warning: they are never deleted, and one bad file must not hide the others.
    pub fn read_aside(&self) -> Result<Vec<AsideEntry>, VaultError> {
        let dir = self.aside_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VaultError::io("list", &dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| VaultError::io("list", &dir, e))?.path();
            let is_json = path.extension().is_some_and(|x| x == "json");
            let is_temporary =
                path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_json || is_temporary {
                continue;
            }
            let Some(bytes) = read_if_present(&path)? else { continue };
            match parse_versioned::<AsideFile>(&path, &bytes, SNAPSHOT_VERSION) {
                Ok(file) => found.push(AsideEntry {
                    path,
                    reason: file.reason,
                    kept_at: file.kept_at,
                    login: file.login,
                }),
                Err(e) => tracing::warn!(error = %e, "skipping an aside file"),
            }
        }
        found.sort_by(|a, b| (a.kept_at, &a.path).cmp(&(b.kept_at, &b.path)));
        Ok(found)
    }

    /// Takes the vault lock, exclusive across every Switchboard process using this vault,
    /// waiting up to `patience` before giving up with [`VaultError::Busy`].
    pub async fn lock(&self, patience: Duration) -> Result<VaultLock, VaultError> {
        lock::acquire(self.lock_path(), patience).await
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), VaultError> {
        let bytes = encode(path, value)?;
        durable::write_atomic(path, &bytes, SECRET_FILE_MODE)
            .map_err(|e| VaultError::io("write", path, e))
    }
}

/// Reads the catalog at `path`. A missing file is an empty catalog (a new vault); a file that
/// does not parse, or breaks the catalog's rules, is [`VaultError::Corrupt`].
fn read_catalog_at(path: &Path) -> Result<Catalog, VaultError> {
    let Some(bytes) = read_if_present(path)? else {
        return Ok(Catalog::default());
    };
    let catalog: Catalog = parse_versioned(path, &bytes, CATALOG_VERSION)?;
    catalog
        .check()
        .map_err(|e| VaultError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
    Ok(catalog)
}

/// The key a backend stores the snapshot of `id` under; refuses identities that are not
/// uuid-like, so that a key can never name a path outside the vault.
fn snapshot_key(id: &AccountId) -> Result<String, VaultError> {
    id.validate()?;
    Ok(format!("{}.{}", id.account_uuid, id.organization_uuid))
}

/// A vault document as it is written: pretty JSON and a final newline.
fn encode<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, VaultError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| VaultError::io("encode", path, io::Error::other(e.to_string())))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Where a snapshot was read from, for the error that says it does not parse.
enum ItemPlace {
    File(PathBuf),
    Item(String),
}

impl ItemPlace {
    fn parse<T: for<'de> Deserialize<'de>>(&self, bytes: &[u8]) -> Result<T, VaultError> {
        match self {
            ItemPlace::File(path) => parse_versioned(path, bytes, SNAPSHOT_VERSION),
            ItemPlace::Item(place) => parse_versioned(Path::new(place), bytes, SNAPSHOT_VERSION)
                .map_err(|e| match e {
                    VaultError::Corrupt { reason, .. } => {
                        VaultError::CorruptItem { place: place.clone(), reason }
                    }
                    other => other,
                }),
        }
    }

    fn corrupt(&self, reason: String) -> VaultError {
        match self {
            ItemPlace::File(path) => VaultError::Corrupt { path: path.clone(), reason },
            ItemPlace::Item(place) => VaultError::CorruptItem { place: place.clone(), reason },
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, VaultError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(VaultError::io("read", path, e)),
    }
}

/// Parses a vault file, checking its version first.
fn parse_versioned<T: for<'de> Deserialize<'de>>(
    path: &Path,
    bytes: &[u8],
    supported: u32,
) -> Result<T, VaultError> {
    let corrupt = |reason: String| VaultError::Corrupt { path: path.to_owned(), reason };
    let probe: VersionProbe =
        serde_json::from_slice(bytes).map_err(|e| corrupt(describe_json_error(&e)))?;
    match probe.version {
        None => return Err(corrupt("it has no version".to_owned())),
        Some(found) if found > supported => {
            return Err(VaultError::UnsupportedVersion { path: path.to_owned(), found, supported });
        }
        Some(_) => {}
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(describe_json_error(&e)))
}

/// Says where and how JSON failed to parse without quoting it: serde's own messages quote
/// the offending value, which in these files can be a token.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Eof => format!("it ends early, as a half-written file does ({at})"),
        Category::Syntax => format!("it is not valid JSON ({at})"),
        Category::Data => format!("it does not have the expected fields ({at})"),
        Category::Io => "it could not be read".to_owned(),
    }
}

/// A vault folder other users can enter exposes nothing (files are 0600), but it is not what
/// Switchboard creates, so say so rather than tighten a folder the user made.
fn warn_if_shared(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the vault folder is accessible to other users; 0700 is expected"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests;
