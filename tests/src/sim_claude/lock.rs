//! Folder locks in the manner of npm's `proper-lockfile`, which Claude Code uses for its
//! store and config: written here from the contract's description, not from either program.
//!
//! A lock is a folder: whoever creates it with `mkdir` holds it. The holder touches the
//! folder's mtime on a heartbeat, so a lock whose mtime is older than its stale time belongs
//! to a holder that died, and anyone may take it over. A lock held by someone alive is retried
//! a few times with short random waits, then given up. Release is `rmdir`.

use std::fs::{self, File, FileTimes};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::SimError;

/// How often, and how patiently, a busy lock is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRetry {
    /// Tries after the first one.
    pub retries: u32,
    /// Each wait is picked at random between these two.
    pub min_wait: Duration,
    pub max_wait: Duration,
}

impl Default for LockRetry {
    /// Claude's own policy: about five retries, one to two seconds apart.
    fn default() -> Self {
        LockRetry {
            retries: 5,
            min_wait: Duration::from_millis(1000),
            max_wait: Duration::from_millis(2000),
        }
    }
}

impl LockRetry {
    fn wait(&self) -> Duration {
        let min = self.min_wait.as_millis() as u64;
        let max = (self.max_wait.as_millis() as u64).max(min);
        Duration::from_millis(rand::random_range(min..=max))
    }
}

/// A held lock. Dropping it stops the heartbeat and removes the folder.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    owner_file: Option<PathBuf>,
    heartbeat: Option<JoinHandle<()>>,
    released: Arc<AtomicBool>,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the lock now; the same as dropping the guard, but in a readable place.
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        if let Some(owner) = &self.owner_file {
            let _ = fs::remove_file(owner);
        }
        if let Err(e) = fs::remove_dir(&self.path) {
            tracing::warn!(lock = %self.path.display(), error = %e, "could not release lock");
        }
    }
}

/// Takes the lock folder `path`, taking over a stale one, retrying a busy one per `retry`.
///
/// `owner_file`, when given, gets `{"pid": ...}` while the lock is held, as Claude writes
/// beside `.oauth_refresh.lock`.
pub async fn acquire(
    path: &Path,
    stale: Duration,
    heartbeat: Duration,
    retry: LockRetry,
    owner_file: Option<&Path>,
) -> Result<LockGuard, SimError> {
    let mut attempt = 0;
    loop {
        match try_acquire(path, stale) {
            Ok(true) => break,
            Ok(false) if attempt < retry.retries => {
                attempt += 1;
                tokio::time::sleep(retry.wait()).await;
            }
            Ok(false) => return Err(SimError::Locked { path: path.to_owned() }),
            Err(source) => return Err(SimError::Io { path: path.to_owned(), source }),
        }
    }
    if let Some(owner) = owner_file {
        let body = serde_json::json!({"pid": std::process::id(), "acquiredAt": now_ms()});
        if let Err(source) = fs::write(owner, body.to_string()) {
            let _ = fs::remove_dir(path);
            return Err(SimError::Io { path: owner.to_owned(), source });
        }
    }
    let released = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(beat(path.to_owned(), heartbeat, released.clone()));
    Ok(LockGuard {
        path: path.to_owned(),
        owner_file: owner_file.map(Path::to_owned),
        heartbeat: Some(task),
        released,
    })
}

/// One attempt: `Ok(true)` when the lock is now ours, `Ok(false)` when someone alive holds it.
fn try_acquire(path: &Path, stale: Duration) -> io::Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let modified = match fs::metadata(path).and_then(|m| m.modified()) {
        Ok(modified) => modified,
        // Released between our mkdir and our look: try again at once.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return try_acquire_once(path),
        Err(e) => return Err(e),
    };
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();
    if age < stale {
        return Ok(false);
    }
    tracing::info!(lock = %path.display(), age_ms = age.as_millis() as u64, "taking over stale lock");
    match fs::remove_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    try_acquire_once(path)
}

fn try_acquire_once(path: &Path) -> io::Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

async fn beat(path: PathBuf, every: Duration, released: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(every).await;
        if released.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = touch(&path) {
            tracing::warn!(lock = %path.display(), error = %e, "heartbeat failed");
        }
    }
}

/// Sets a folder's mtime to now.
pub fn touch(path: &Path) -> io::Result<()> {
    set_mtime(path, SystemTime::now())
}

/// Sets a folder's mtime; tests use it to make a lock look abandoned.
pub fn set_mtime(path: &Path, when: SystemTime) -> io::Result<()> {
    File::open(path)?.set_times(FileTimes::new().set_modified(when))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: LockRetry = LockRetry {
        retries: 3,
        min_wait: Duration::from_millis(10),
        max_wait: Duration::from_millis(20),
    };
    const BEAT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn second_taker_waits_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = acquire(&path, Duration::from_secs(10), BEAT, FAST, None).await.unwrap();
        let err = acquire(&path, Duration::from_secs(10), BEAT, FAST, None).await.unwrap_err();
        assert!(matches!(err, SimError::Locked { .. }));
        held.release();
        assert!(!path.exists());
        let again = acquire(&path, Duration::from_secs(10), BEAT, FAST, None).await.unwrap();
        assert!(again.path().is_dir());
    }

    #[tokio::test]
    async fn waiter_gets_the_lock_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = acquire(&path, Duration::from_secs(10), BEAT, FAST, None).await.unwrap();
        let patient = LockRetry { retries: 50, ..FAST };
        let waiter = tokio::spawn({
            let path = path.clone();
            async move { acquire(&path, Duration::from_secs(10), BEAT, patient, None).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished());
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn stale_lock_is_taken_over_and_fresh_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::create_dir(&path).unwrap();
        set_mtime(&path, SystemTime::now() - Duration::from_secs(11)).unwrap();
        let taken = acquire(&path, Duration::from_secs(10), BEAT, FAST, None).await.unwrap();
        drop(taken);

        fs::create_dir(&path).unwrap();
        set_mtime(&path, SystemTime::now() - Duration::from_secs(9)).unwrap();
        let err = acquire(&path, Duration::from_secs(10), BEAT, FAST, None).await.unwrap_err();
        assert!(matches!(err, SimError::Locked { .. }));
    }

    #[tokio::test]
    async fn heartbeat_keeps_the_lock_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = acquire(&path, Duration::from_secs(10), Duration::from_millis(20), FAST, None)
            .await
            .unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        set_mtime(&path, old).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert!(modified > old + Duration::from_secs(50));
        drop(held);
    }

    #[tokio::test]
    async fn owner_file_names_the_pid_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let owner = dir.path().join("x.lock.owner");
        let held = acquire(&path, Duration::from_secs(60), BEAT, FAST, Some(&owner)).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&fs::read(&owner).unwrap()).unwrap();
        assert_eq!(body["pid"], std::process::id());
        drop(held);
        assert!(!owner.exists());
    }
}
