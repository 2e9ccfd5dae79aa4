//! The vault lock: one operation at a time across every Switchboard process sharing a vault.
//!
//! It is an advisory whole-file lock (`flock` on Unix, `LockFileEx` on Windows) on a lock file
//! in the vault folder. Such a lock belongs to an open file, not to a process, so two handles
//! opened separately exclude each other even inside one process, and the operating system
//! drops it when the holder dies: a crashed switch can never leave the vault locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::VaultError;

/// How often a waiting process tries the lock again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Proof of holding the vault lock; dropping it releases the lock.
#[derive(Debug)]
pub struct VaultLock {
    file: File,
    path: PathBuf,
}

impl VaultLock {
    /// The lock file this guard holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for VaultLock {
    fn drop(&mut self) {
        // Closing the file would release the lock too; unlocking first makes the release not
        // depend on every clone of the descriptor being closed.
        let _ = self.file.unlock();
    }
}

/// Takes the lock at `path`, trying again every few milliseconds until `patience` runs out.
///
/// Opening the file is blocking file-system work, so it runs on the blocking pool; each
/// attempt after that is a non-blocking `try_lock`, so waiting costs no thread.
pub(super) async fn acquire(path: PathBuf, patience: Duration) -> Result<VaultLock, VaultError> {
    let deadline = Instant::now() + patience;
    let open_path = path.clone();
    let file = tokio::task::spawn_blocking(move || open_lock_file(&open_path))
        .await
        .map_err(|e| VaultError::io("open", &path, std::io::Error::other(e)))??;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(VaultLock { file, path }),
            Err(TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(VaultError::Busy { patience });
                }
                tokio::time::sleep(POLL_INTERVAL.min(deadline - Instant::now())).await;
            }
            Err(TryLockError::Error(e)) => return Err(VaultError::io("lock", &path, e)),
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File, VaultError> {
    let mut options = OpenOptions::new();
    // The file stays empty: its existence and its lock are all it carries. It is never
    // truncated, because the lock lives on this inode.
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::durable::SECRET_FILE_MODE);
    }
    options.open(path).map_err(|e| VaultError::io("open", path, e))
}
