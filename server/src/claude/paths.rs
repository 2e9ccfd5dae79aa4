//! Where Claude Code keeps its login, its global config and its locks, resolved from an
//! [`Environment`] the way Claude resolves them.
//!
//! The config folder `DIR` is `$CLAUDE_CONFIG_DIR`, else `$HOME/.claude`. The credential store
//! lives in `DIR` too unless `$CLAUDE_SECURESTORAGE_CONFIG_DIR` is set: then that folder holds
//! it (set but empty: `$HOME/.claude`). The global config is `$HOME/.claude.json`, or
//! `DIR/.claude.json` when `CLAUDE_CONFIG_DIR` is set, and a legacy `DIR/.config.json` wins
//! over both whenever it exists. The refresh and storage locks live in `DIR`.
//!
//! Raw variable values are kept as given: the macOS Keychain names its item after a hash of
//! the unresolved string, where a trailing slash already makes a different item.

use std::path::{Component, Path, PathBuf};

use super::env::Environment;

pub const CONFIG_DIR_VAR: &str = "CLAUDE_CONFIG_DIR";
pub const SECURE_STORAGE_DIR_VAR: &str = "CLAUDE_SECURESTORAGE_CONFIG_DIR";
pub const CREDENTIALS_FILE_NAME: &str = ".credentials.json";

/// Every path Claude Code uses for its login, for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudePaths {
    /// `DIR`, normalised (no trailing slash).
    pub config_dir: PathBuf,
    /// `$CLAUDE_CONFIG_DIR` exactly as set, when set and not empty.
    pub config_dir_raw: Option<String>,
    /// The folder holding the credential store: `DIR`, or the secure-storage override.
    pub store_dir: PathBuf,
    /// The raw string whose hash suffixes the Keychain service name, if any: the secure-storage
    /// override when set and not empty, none when it is set but empty, else `config_dir_raw`.
    pub keychain_hash_input: Option<String>,
    /// `store_dir/.credentials.json`.
    pub credentials_file: PathBuf,
    /// `~/.claude.json`, `DIR/.claude.json`, or the legacy `DIR/.config.json` when it exists.
    pub global_config: PathBuf,
    /// `DIR/.oauth_refresh.lock`, Claude 2.1.332's refresh lock.
    pub refresh_lock: PathBuf,
    /// `<realpath(DIR)>.lock`, the refresh lock of every version, as of resolution time.
    pub legacy_refresh_lock: PathBuf,
    /// `DIR/.storage-write.lock`, taken around every read-modify-write of the store.
    pub storage_write_lock: PathBuf,
    /// `<global_config>.lock`, taken around every write of the global config.
    pub global_config_lock: PathBuf,
}

/// Why Claude's paths cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathsError {
    #[error("cannot find the home folder: HOME is not set")]
    NoHome,
    #[error("{var} is set to a relative path ({value}); Claude Code's folder cannot be known")]
    Relative { var: &'static str, value: String },
}

impl ClaudePaths {
    /// Resolves every path for `env`. Only the legacy `.config.json` and the realpath of `DIR`
    /// look at the disk; everything else follows from the variables alone.
    pub fn resolve(env: &Environment) -> Result<Self, PathsError> {
        let home = home_dir(env)?;
        let default_dir = home.join(".claude");

        let config_dir_raw = env.get_non_empty(CONFIG_DIR_VAR).map(str::to_owned);
        let config_dir = match &config_dir_raw {
            Some(raw) => absolute(CONFIG_DIR_VAR, raw)?,
            None => default_dir.clone(),
        };

        let (store_dir, keychain_hash_input) = match env.get(SECURE_STORAGE_DIR_VAR) {
            Some("") => (default_dir, None),
            Some(raw) => (absolute(SECURE_STORAGE_DIR_VAR, raw)?, Some(raw.to_owned())),
            None => (config_dir.clone(), config_dir_raw.clone()),
        };

        let legacy_config = config_dir.join(".config.json");
        let global_config = if legacy_config.exists() {
            legacy_config
        } else if config_dir_raw.is_some() {
            config_dir.join(".claude.json")
        } else {
            home.join(".claude.json")
        };

        Ok(ClaudePaths {
            credentials_file: store_dir.join(CREDENTIALS_FILE_NAME),
            refresh_lock: config_dir.join(".oauth_refresh.lock"),
            legacy_refresh_lock: legacy_refresh_lock_of(&config_dir),
            storage_write_lock: config_dir.join(".storage-write.lock"),
            global_config_lock: with_suffix(&global_config, ".lock"),
            global_config,
            store_dir,
            keychain_hash_input,
            config_dir,
            config_dir_raw,
        })
    }
}

/// `<realpath(dir)>.lock`: the lock every Claude version takes around a refresh. Claude names
/// it after the resolved folder, so a symlinked `~/.claude` locks at the link's target; a
/// folder that does not exist yet is taken as it is.
pub fn legacy_refresh_lock_of(config_dir: &Path) -> PathBuf {
    let real = std::fs::canonicalize(config_dir).unwrap_or_else(|_| config_dir.to_owned());
    with_suffix(&real, ".lock")
}

fn home_dir(env: &Environment) -> Result<PathBuf, PathsError> {
    let home = env.get_non_empty("HOME").or_else(|| {
        // Windows has no HOME unless a shell set one; Node's homedir() falls back like this.
        if cfg!(windows) { env.get_non_empty("USERPROFILE") } else { None }
    });
    home.map(|h| normalise(Path::new(h))).ok_or(PathsError::NoHome)
}

fn absolute(var: &'static str, raw: &str) -> Result<PathBuf, PathsError> {
    let path = Path::new(raw);
    // A relative folder would be resolved against whichever directory each process happens to
    // run in, so Switchboard and Claude could disagree about it: refuse instead of guessing.
    if !path.is_absolute() {
        return Err(PathsError::Relative { var, value: raw.to_owned() });
    }
    Ok(normalise(path))
}

/// Drops trailing slashes and `.` components without touching the disk.
fn normalise(path: &Path) -> PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn env_with_home(home: &Path) -> Environment {
        Environment::from_pairs([("HOME", home.to_str().unwrap())])
    }

    #[test]
    fn defaults_to_the_home_folder() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let paths = ClaudePaths::resolve(&env_with_home(h)).unwrap();
        assert_eq!(paths.config_dir, h.join(".claude"));
        assert_eq!(paths.config_dir_raw, None);
        assert_eq!(paths.keychain_hash_input, None);
        assert_eq!(paths.credentials_file, h.join(".claude/.credentials.json"));
        assert_eq!(paths.global_config, h.join(".claude.json"));
        assert_eq!(paths.global_config_lock, h.join(".claude.json.lock"));
        assert_eq!(paths.refresh_lock, h.join(".claude/.oauth_refresh.lock"));
        assert_eq!(paths.storage_write_lock, h.join(".claude/.storage-write.lock"));
        // The folder does not exist, so its realpath cannot be taken: the path as it is.
        assert_eq!(paths.legacy_refresh_lock, h.join(".claude.lock"));
    }

    #[test]
    fn k10_config_dir_with_trailing_slash() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let raw = format!("{}/claude-work/", h.display());
        let env = env_with_home(h).with(CONFIG_DIR_VAR, raw.clone());
        let paths = ClaudePaths::resolve(&env).unwrap();
        assert_eq!(paths.config_dir, h.join("claude-work"));
        assert_eq!(paths.credentials_file, h.join("claude-work/.credentials.json"));
        assert_eq!(paths.global_config, h.join("claude-work/.claude.json"));
        assert_eq!(paths.legacy_refresh_lock, h.join("claude-work.lock"));
        // The raw string, slash and all, is what names the Keychain item.
        assert_eq!(paths.config_dir_raw.as_deref(), Some(raw.as_str()));
        assert_eq!(paths.keychain_hash_input.as_deref(), Some(raw.as_str()));
    }

    #[test]
    fn legacy_lock_follows_symlinks_of_an_existing_folder() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::create_dir(h.join("real")).unwrap();
        std::os::unix::fs::symlink(h.join("real"), h.join(".claude")).unwrap();
        let paths = ClaudePaths::resolve(&env_with_home(h)).unwrap();
        let real_home = std::fs::canonicalize(h).unwrap();
        assert_eq!(paths.legacy_refresh_lock, real_home.join("real.lock"));
        assert_eq!(paths.refresh_lock, h.join(".claude/.oauth_refresh.lock"));
    }

    #[test]
    fn empty_config_dir_counts_as_unset() {
        let home = tempfile::tempdir().unwrap();
        let env = env_with_home(home.path()).with(CONFIG_DIR_VAR, "");
        let paths = ClaudePaths::resolve(&env).unwrap();
        assert_eq!(paths.config_dir, home.path().join(".claude"));
        assert_eq!(paths.config_dir_raw, None);
    }

    #[test]
    fn secure_storage_dir_moves_only_the_credential_store() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let store = format!("{}/vaulted/", h.display());
        let env = env_with_home(h)
            .with(CONFIG_DIR_VAR, format!("{}/work", h.display()))
            .with(SECURE_STORAGE_DIR_VAR, store.clone());
        let paths = ClaudePaths::resolve(&env).unwrap();
        assert_eq!(paths.credentials_file, h.join("vaulted/.credentials.json"));
        assert_eq!(paths.store_dir, h.join("vaulted"));
        assert_eq!(paths.keychain_hash_input.as_deref(), Some(store.as_str()));
        assert_eq!(paths.global_config, h.join("work/.claude.json"));
        assert_eq!(paths.refresh_lock, h.join("work/.oauth_refresh.lock"));
    }

    #[test]
    fn empty_secure_storage_dir_means_the_default_store_without_a_hash() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let env = env_with_home(h)
            .with(CONFIG_DIR_VAR, format!("{}/work", h.display()))
            .with(SECURE_STORAGE_DIR_VAR, "");
        let paths = ClaudePaths::resolve(&env).unwrap();
        assert_eq!(paths.credentials_file, h.join(".claude/.credentials.json"));
        assert_eq!(paths.keychain_hash_input, None);
        assert_eq!(paths.global_config, h.join("work/.claude.json"));
    }

    #[test]
    fn legacy_config_json_wins_when_it_exists() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let work = h.join("work");
        std::fs::create_dir(&work).unwrap();
        let env = env_with_home(h).with(CONFIG_DIR_VAR, work.to_str().unwrap());
        assert_eq!(ClaudePaths::resolve(&env).unwrap().global_config, work.join(".claude.json"));
        std::fs::write(work.join(".config.json"), b"{}").unwrap();
        let paths = ClaudePaths::resolve(&env).unwrap();
        assert_eq!(paths.global_config, work.join(".config.json"));
        assert_eq!(paths.global_config_lock, work.join(".config.json.lock"));

        // Without CLAUDE_CONFIG_DIR the legacy file is looked for in ~/.claude.
        std::fs::create_dir(h.join(".claude")).unwrap();
        std::fs::write(h.join(".claude/.config.json"), b"{}").unwrap();
        let paths = ClaudePaths::resolve(&env_with_home(h)).unwrap();
        assert_eq!(paths.global_config, h.join(".claude/.config.json"));
    }

    #[test]
    fn refuses_relative_folders_and_a_missing_home() {
        let env = Environment::from_pairs([("HOME", "/home/u"), (CONFIG_DIR_VAR, "claude")]);
        assert_eq!(
            ClaudePaths::resolve(&env),
            Err(PathsError::Relative { var: CONFIG_DIR_VAR, value: "claude".into() })
        );
        let env = Environment::from_pairs([(CONFIG_DIR_VAR, "/abs")]);
        assert_eq!(ClaudePaths::resolve(&env), Err(PathsError::NoHome));
    }
}
