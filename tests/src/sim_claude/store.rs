//! Where the simulated Claude keeps its login and its global config, and how it reads and
//! writes them without losing a key it does not know.
//!
//! Both files are handled as plain JSON objects: the simulation touches only `claudeAiOauth`
//! (in the credential file) and `oauthAccount` (in the global config), and only the fields it
//! means to change inside them, so everything else survives every write.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use switchboard::durable;
use switchboard::secret::Secret;

use super::SimError;

pub const LOGIN_KEY: &str = "claudeAiOauth";
pub const ACCOUNT_KEY: &str = "oauthAccount";

/// The files and lock folders of one Claude configuration, resolved as Claude resolves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `DIR`: `$CLAUDE_CONFIG_DIR`, else `$HOME/.claude`.
    pub config_dir: PathBuf,
    /// `DIR/.credentials.json`.
    pub credentials: PathBuf,
    /// `$HOME/.claude.json`, or `DIR/.claude.json` with `CLAUDE_CONFIG_DIR` set; a legacy
    /// `DIR/.config.json` wins when it exists.
    pub global_config: PathBuf,
}

impl Paths {
    pub fn resolve(home: &Path, config_dir: Option<&Path>) -> Paths {
        let (dir, global) = match config_dir {
            Some(dir) => (dir.to_owned(), dir.join(".claude.json")),
            None => (home.join(".claude"), home.join(".claude.json")),
        };
        let legacy = dir.join(".config.json");
        let global_config = if legacy.exists() { legacy } else { global };
        Paths { credentials: dir.join(".credentials.json"), config_dir: dir, global_config }
    }

    /// `DIR/.oauth_refresh.lock`, the 2.1.332 refresh lock.
    pub fn oauth_refresh_lock(&self) -> PathBuf {
        self.config_dir.join(".oauth_refresh.lock")
    }

    /// `DIR/.oauth_refresh.lock.owner`, naming the refresh lock's holder.
    pub fn oauth_refresh_lock_owner(&self) -> PathBuf {
        self.config_dir.join(".oauth_refresh.lock.owner")
    }

    /// `<realpath(DIR)>.lock`, the refresh lock of every version. `DIR` must exist.
    pub fn config_dir_lock(&self) -> Result<PathBuf, SimError> {
        let real = fs::canonicalize(&self.config_dir).map_err(io_at(&self.config_dir))?;
        let mut name = real.into_os_string();
        name.push(".lock");
        Ok(PathBuf::from(name))
    }

    /// `DIR/.storage-write.lock`, held around each read-modify-write of the credential file.
    pub fn storage_write_lock(&self) -> PathBuf {
        self.config_dir.join(".storage-write.lock")
    }

    /// `<global config>.lock`, held around each write of the global config.
    pub fn global_config_lock(&self) -> PathBuf {
        let mut name = self.global_config.clone().into_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }
}

/// The fields of `claudeAiOauth` the refresh logic reads.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLogin {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at: i64,
    pub scopes: Vec<String>,
}

impl StoredLogin {
    /// Reads the login out of a credential document; `None` when there is no entry.
    pub fn from_doc(doc: &Map<String, Value>) -> Option<StoredLogin> {
        let entry = doc.get(LOGIN_KEY)?.as_object()?;
        let text = |key: &str| Secret::new(entry.get(key).and_then(Value::as_str).unwrap_or(""));
        Some(StoredLogin {
            access_token: text("accessToken"),
            refresh_token: text("refreshToken"),
            expires_at: entry.get("expiresAt").and_then(Value::as_i64).unwrap_or(0),
            scopes: entry
                .get("scopes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }

    /// Claude counts a login as present only when its access token is not empty.
    pub fn is_present(&self) -> bool {
        !self.access_token.is_empty()
    }
}

/// Reads a JSON object file; a missing file reads as an empty object.
pub fn read_object(path: &Path) -> Result<Map<String, Value>, SimError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => return Err(SimError::Io { path: path.to_owned(), source }),
    };
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SimError::Corrupt { path: path.to_owned(), reason: "not an object".into() }),
        Err(e) => Err(SimError::Corrupt { path: path.to_owned(), reason: e.to_string() }),
    }
}

/// Writes a JSON object file durably with `mode`, creating a private parent folder if needed.
pub fn write_object(path: &Path, doc: &Map<String, Value>, mode: u32) -> Result<(), SimError> {
    if let Some(parent) = path.parent() {
        durable::create_dir_all(parent, durable::SECRET_DIR_MODE).map_err(io_at(parent))?;
    }
    let mut bytes = serde_json::to_vec_pretty(doc)
        .map_err(|e| SimError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
    bytes.push(b'\n');
    durable::write_atomic(path, &bytes, mode).map_err(io_at(path))
}

/// Sets `fields` inside the object under `key`, keeping the object's other fields.
pub fn merge_into(doc: &mut Map<String, Value>, key: &str, fields: Map<String, Value>) {
    let entry = doc.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(entry) = entry {
        entry.extend(fields);
    }
}

pub fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SimError + '_ {
    move |source| SimError::Io { path: path.to_owned(), source }
}
