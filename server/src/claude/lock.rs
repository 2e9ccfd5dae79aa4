//! Claude Code's locks, taken exactly the way npm `proper-lockfile` takes them, so that a
//! Switchboard process and a running Claude exclude each other.
//!
//! A lock is a directory. Whoever creates it with `mkdir` holds it. While held, the holder
//! touches the directory's mtime at a fixed interval; a lock whose mtime is older than its
//! stale time is abandoned, and anyone may take it over by removing it and creating it anew.
//! Releasing is `rmdir`. A holder that finds the directory gone or carrying someone else's
//! mtime at its next touch has lost the lock ("compromised" in `proper-lockfile`); the guard
//! records that, so the caller can refuse to write after the fact.
//!
//! The heartbeat runs on its own thread rather than a task, so a holder that blocks its async
//! runtime (a slow `fsync` of a large file, say) still keeps its lock fresh.
//!
//! Two guards against races go beyond `proper-lockfile`: a stale lock is removed only if it is
//! still the very directory that was found stale, and a release removes the directory only
//! if it is still the one this guard made.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::FileError;
use super::paths::{ClaudePaths, legacy_refresh_lock_of};
use crate::durable;

/// How often a holder touches its lock when the stale time allows: Claude's own interval.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Stale time of `DIR/.oauth_refresh.lock` (Claude 2.1.332).
pub const REFRESH_LOCK_STALE: Duration = Duration::from_secs(60);
/// Stale time of `<realpath(DIR)>.lock` (every version).
pub const LEGACY_REFRESH_LOCK_STALE: Duration = Duration::from_secs(10);
/// Stale time of `DIR/.storage-write.lock` (Claude 2.1.332).
pub const STORAGE_WRITE_LOCK_STALE: Duration = Duration::from_secs(15);
/// Stale time of `<global config>.lock`.
pub const GLOBAL_CONFIG_LOCK_STALE: Duration = Duration::from_secs(10);

/// How to take one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSpec {
    /// The lock directory itself (not the file it protects).
    pub path: PathBuf,
    /// A lock untouched for this long is abandoned and may be taken over.
    pub stale: Duration,
    /// Attempts after the first before giving up with [`LockError::Busy`].
    pub retries: u32,
    /// The wait before the first retry; each further wait doubles, up to `max_wait`.
    pub min_wait: Duration,
    pub max_wait: Duration,
    /// Write `<path>.owner` holding `{"pid": N, ...}` while held, as Claude does for its
    /// refresh lock so a lock whose holder died can be recognised.
    pub owner_file: bool,
}

impl LockSpec {
    /// A spec that keeps retrying for about `patience`, polling at 50 ms growing to 500 ms.
    pub fn with_patience(path: PathBuf, stale: Duration, patience: Duration) -> Self {
        let min_wait = Duration::from_millis(50);
        let max_wait = Duration::from_millis(500);
        let mut spec = LockSpec { path, stale, retries: 0, min_wait, max_wait, owner_file: false };
        let mut waited = Duration::ZERO;
        while waited < patience {
            waited += spec.base_wait(spec.retries);
            spec.retries += 1;
        }
        spec
    }

    /// How often the holder touches the lock: every 5 s, or half the stale time when that is
    /// shorter, so that a live lock never looks stale.
    pub fn heartbeat(&self) -> Duration {
        HEARTBEAT.min(self.stale / 2).max(Duration::from_millis(1))
    }

    fn base_wait(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.min_wait.saturating_mul(factor).min(self.max_wait)
    }

    /// The wait before retry number `attempt`, with up to a quarter added at random so that
    /// two waiting processes do not keep colliding in step.
    fn wait(&self, attempt: u32) -> Duration {
        let base = self.base_wait(attempt);
        let quarter = u64::try_from(base.as_micros() / 4).unwrap_or(u64::MAX);
        let jitter = if quarter == 0 { 0 } else { rand::random::<u64>() % quarter };
        base + Duration::from_micros(jitter)
    }

    fn owner_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".owner");
        PathBuf::from(name)
    }
}

/// Why a lock could not be had or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is held by another process", path.display())]
    Busy { path: PathBuf },
    #[error("lost {} to another process while holding it", path.display())]
    Lost { path: PathBuf },
    #[error(transparent)]
    Io(#[from] FileError),
}

/// Takes the lock, waiting between attempts without blocking the async runtime. Each attempt
/// (a `mkdir`, a `stat`, and the owner file's `fsync`) runs on the blocking pool.
pub async fn acquire(spec: &LockSpec) -> Result<LockGuard, LockError> {
    let mut attempt = 0;
    loop {
        let attempt_spec = spec.clone();
        let tried = tokio::task::spawn_blocking(move || try_acquire(&attempt_spec))
            .await
            .map_err(|e| FileError::new("create lock", &spec.path, std::io::Error::other(e)))?;
        if let Some(guard) = tried? {
            return Ok(guard);
        }
        if attempt >= spec.retries {
            return Err(LockError::Busy { path: spec.path.clone() });
        }
        tokio::time::sleep(spec.wait(attempt)).await;
        attempt += 1;
    }
}

/// Takes the lock, sleeping the calling thread between attempts. For synchronous callers
/// that hold a lock only for a moment, such as one write of the live store.
pub fn acquire_blocking(spec: &LockSpec) -> Result<LockGuard, LockError> {
    let mut attempt = 0;
    loop {
        if let Some(guard) = try_acquire(spec)? {
            return Ok(guard);
        }
        if attempt >= spec.retries {
            return Err(LockError::Busy { path: spec.path.clone() });
        }
        std::thread::sleep(spec.wait(attempt));
        attempt += 1;
    }
}

/// One attempt: `Some` when the lock is now ours, `None` when someone else holds it.
pub fn try_acquire(spec: &LockSpec) -> Result<Option<LockGuard>, LockError> {
    let path = &spec.path;
    match fs::create_dir(path) {
        Ok(()) => return hold_made(spec),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(FileError::new("create lock", path, e).into()),
    }
    let found = match fs::metadata(path) {
        Ok(meta) => Mark::of(&meta),
        // Released between our mkdir and our look: one more try, without a stale check.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return make_once(spec),
        Err(e) => return Err(FileError::new("inspect lock", path, e).into()),
    };
    if !found.is_stale(spec.stale) {
        return Ok(None);
    }
    // Abandoned. Remove it only while it is still the directory found stale: another process
    // may have taken it over between our look and now, and its fresh lock must survive.
    match fs::metadata(path) {
        Ok(meta) if Mark::of(&meta) == found => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return make_once(spec),
        Err(e) => return Err(FileError::new("inspect lock", path, e).into()),
    }
    tracing::info!(lock = %path.display(), "taking over a stale lock");
    match fs::remove_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::new("remove stale lock", path, e).into()),
    }
    make_once(spec)
}

fn make_once(spec: &LockSpec) -> Result<Option<LockGuard>, LockError> {
    match fs::create_dir(&spec.path) {
        Ok(()) => hold_made(spec),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(FileError::new("create lock", &spec.path, e).into()),
    }
}

/// Starts holding a directory just made. Between our `mkdir` and our first touch, a racing
/// taker that judged the previous (stale) directory may remove ours: then the lock is not
/// ours after all, which is a lost race, not an error.
fn hold_made(spec: &LockSpec) -> Result<Option<LockGuard>, LockError> {
    match LockGuard::start(spec) {
        Ok(guard) => Ok(Some(guard)),
        Err(LockError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What identifies one lock directory: its mtime and, where the platform has one, its file
/// id. A lock someone else made after ours has a different mark even on the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    mtime: Option<SystemTime>,
    file_id: Option<(u64, u64)>,
}

impl Mark {
    fn of(meta: &fs::Metadata) -> Self {
        Mark { mtime: meta.modified().ok(), file_id: file_id(meta) }
    }

    fn is_stale(&self, stale: Duration) -> bool {
        match self.mtime.map(|m| SystemTime::now().duration_since(m)) {
            Some(Ok(age)) => age > stale,
            // An mtime in the future is not stale; a file system without mtimes never is.
            Some(Err(_)) | None => false,
        }
    }
}

#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[derive(Debug)]
struct Held {
    mark: Mark,
    last_touch: Instant,
    lost: bool,
}

/// A lock this process holds. Dropping it releases the lock; [`LockGuard::release`] does the
/// same and reports whether the lock was kept to the end.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    owner: Option<PathBuf>,
    held: Arc<Mutex<Held>>,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
    released: bool,
}

impl LockGuard {
    /// Starts holding a directory this process has just created.
    fn start(spec: &LockSpec) -> Result<Self, LockError> {
        let path = spec.path.clone();
        let mark = match touch(&path) {
            Ok(mark) => mark,
            // Gone already: someone else removed it, so there is nothing of ours to clean up.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FileError::new("touch lock", &path, e).into());
            }
            Err(e) => {
                let _ = fs::remove_dir(&path);
                return Err(FileError::new("touch lock", &path, e).into());
            }
        };
        let owner = spec.owner_file.then(|| spec.owner_path());
        if let Some(owner) = &owner
            && let Err(e) = write_owner(owner)
        {
            let _ = fs::remove_dir(&path);
            return Err(FileError::new("write lock owner", owner, e).into());
        }
        let held = Arc::new(Mutex::new(Held { mark, last_touch: Instant::now(), lost: false }));
        let (stop, stopped) = mpsc::channel();
        let heartbeat = {
            let (path, held, stale, every) =
                (path.clone(), Arc::clone(&held), spec.stale, spec.heartbeat());
            std::thread::Builder::new()
                .name("claude-lock-heartbeat".into())
                .spawn(move || keep_fresh(&path, &held, stale, every, &stopped))
                .map_err(|e| FileError::new("start heartbeat for", &spec.path, e))?
        };
        Ok(LockGuard {
            path,
            owner,
            held,
            stop: Some(stop),
            heartbeat: Some(heartbeat),
            released: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the heartbeat found the lock taken over or removed by someone else.
    pub fn is_lost(&self) -> bool {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).lost
    }

    /// Checks, right now, that the lock is still this guard's: to call just before a write
    /// that the lock is meant to protect.
    pub fn check(&self) -> Result<(), LockError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.lost {
            let still_ours = fs::metadata(&self.path).map(|m| Mark::of(&m) == held.mark);
            held.lost = !matches!(still_ours, Ok(true));
        }
        if held.lost { Err(LockError::Lost { path: self.path.clone() }) } else { Ok(()) }
    }

    /// Releases the lock. Fails with [`LockError::Lost`] when it turned out someone else had
    /// taken it over, in which case their lock is left alone.
    pub fn release(mut self) -> Result<(), LockError> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<(), LockError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        // Stop the heartbeat first, so nothing touches the directory while it is checked.
        drop(self.stop.take());
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
        self.check()?;
        if let Some(owner) = &self.owner
            && let Err(e) = fs::remove_file(owner)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(lock = %owner.display(), error = %e, "could not remove lock owner");
        }
        match fs::remove_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(LockError::Lost { path: self.path.clone() })
            }
            Err(e) => Err(FileError::new("remove lock", &self.path, e).into()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Err(e) = self.release_inner() {
            tracing::warn!(error = %e, "lock release");
        }
    }
}

/// Sets the directory's mtime to now and returns the mark it now carries.
fn touch(path: &Path) -> io::Result<Mark> {
    let now = SystemTime::now();
    open_dir_for_times(path)?
        .set_times(fs::FileTimes::new().set_modified(now).set_accessed(now))?;
    let mark = fs::metadata(path).map(|m| Mark::of(&m))?;
    // Two takers of one stale lock can both end up touching the directory the later one
    // made. The time each wrote tells them apart: whoever reads back a time it did not write
    // has lost the race, and says so the way a vanished lock does.
    if !mark.mtime.is_some_and(|stored| same_instant(stored, now)) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the lock was taken by someone else"));
    }
    Ok(mark)
}

/// Whether a stored mtime is the time written, allowing for file systems that keep only
/// microseconds, milliseconds or whole seconds.
fn same_instant(stored: SystemTime, written: SystemTime) -> bool {
    let (Ok(stored), Ok(written)) = (
        stored.duration_since(SystemTime::UNIX_EPOCH),
        written.duration_since(SystemTime::UNIX_EPOCH),
    ) else {
        return stored == written;
    };
    let written = written.as_nanos();
    [1, 1_000, 1_000_000, 1_000_000_000]
        .iter()
        .any(|unit| stored.as_nanos() == written / unit * unit)
}

#[cfg(not(windows))]
fn open_dir_for_times(path: &Path) -> io::Result<fs::File> {
    fs::File::open(path)
}

#[cfg(windows)]
fn open_dir_for_times(path: &Path) -> io::Result<fs::File> {
    use std::os::windows::fs::OpenOptionsExt;
    // A folder opens only with backup semantics; writing attributes is all that is needed.
    const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
    const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;
    fs::OpenOptions::new()
        .access_mode(FILE_WRITE_ATTRIBUTES)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
}

fn write_owner(owner: &Path) -> io::Result<()> {
    let acquired_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let body = serde_json::json!({
        "pid": std::process::id(),
        "acquiredAt": acquired_at,
        "holder": "switchboard",
    });
    durable::write_atomic(owner, body.to_string().as_bytes(), durable::SECRET_FILE_MODE)
}

/// The heartbeat: touch the lock every `every` until told to stop. Before each touch, check
/// that the directory still carries the mark of our last touch; if not, someone took the lock
/// over, and touching it would keep *their* lock fresh on our behalf. A touch that fails for
/// another reason is retried sooner, until the lock would have gone stale anyway.
fn keep_fresh(
    path: &Path,
    held: &Mutex<Held>,
    stale: Duration,
    every: Duration,
    stopped: &mpsc::Receiver<()>,
) {
    let mut delay = every;
    loop {
        match stopped.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        match beat(path, held.mark) {
            Beat::Touched(mark) => {
                held.mark = mark;
                held.last_touch = Instant::now();
                delay = every;
            }
            Beat::Lost => {
                tracing::warn!(lock = %path.display(), "lock was taken over or removed");
                held.lost = true;
                return;
            }
            Beat::Failed(e) => {
                if held.last_touch.elapsed() > stale {
                    tracing::warn!(lock = %path.display(), error = %e, "lock went stale");
                    held.lost = true;
                    return;
                }
                delay = every.min(Duration::from_secs(1));
            }
        }
    }
}

enum Beat {
    Touched(Mark),
    Lost,
    Failed(io::Error),
}

fn beat(path: &Path, ours: Mark) -> Beat {
    match fs::metadata(path) {
        Ok(meta) if Mark::of(&meta) != ours => Beat::Lost,
        Ok(_) => match touch(path) {
            Ok(mark) => Beat::Touched(mark),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Beat::Lost,
            Err(e) => Beat::Failed(e),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Beat::Lost,
        Err(e) => Beat::Failed(e),
    }
}

/// Both of Claude's refresh locks, held together: `DIR/.oauth_refresh.lock` (2.1.332, stale
/// 60 s, with an owner file) and then `<realpath(DIR)>.lock` (every version, stale 10 s).
///
/// The order is Claude's own, which is what keeps a Switchboard process and a Claude waiting
/// on each other from deadlocking. Holding both excludes a 2.1.332 refresh as well as a
/// 2.1.112 one, whose merge-on-save would otherwise undo a switch.
#[derive(Debug)]
pub struct RefreshLocks {
    // Released in reverse order of acquisition by `release` and by `Drop`.
    legacy: Option<LockGuard>,
    refresh: Option<LockGuard>,
}

impl RefreshLocks {
    /// Takes both locks, waiting up to about `patience` in all. Creates `DIR` (0700) when it
    /// does not exist yet, since a lock needs its folder. When the second lock cannot be had,
    /// the first is released before reporting [`LockError::Busy`].
    pub async fn acquire(paths: &ClaudePaths, patience: Duration) -> Result<Self, LockError> {
        let started = Instant::now();
        durable::create_dir_all(&paths.config_dir, durable::SECRET_DIR_MODE)
            .map_err(|e| FileError::new("create", &paths.config_dir, e))?;
        let mut first =
            LockSpec::with_patience(paths.refresh_lock.clone(), REFRESH_LOCK_STALE, patience);
        first.owner_file = true;
        let refresh = acquire(&first).await?;
        // The realpath is taken now, not at resolution: the folder may have just been created.
        let remaining = patience.saturating_sub(started.elapsed());
        let second = LockSpec::with_patience(
            legacy_refresh_lock_of(&paths.config_dir),
            LEGACY_REFRESH_LOCK_STALE,
            remaining,
        );
        match acquire(&second).await {
            Ok(legacy) => Ok(RefreshLocks { legacy: Some(legacy), refresh: Some(refresh) }),
            Err(e) => {
                if let Err(release) = refresh.release() {
                    tracing::warn!(error = %release, "releasing the refresh lock");
                }
                Err(e)
            }
        }
    }

    /// Checks that both locks are still held, to call just before writing the live store.
    pub fn check(&self) -> Result<(), LockError> {
        self.refresh.iter().chain(self.legacy.iter()).try_for_each(LockGuard::check)
    }

    /// Whether either heartbeat found its lock taken over.
    pub fn is_lost(&self) -> bool {
        self.refresh.iter().chain(self.legacy.iter()).any(LockGuard::is_lost)
    }

    /// Releases both, the second first; reports the first failure after releasing both.
    pub fn release(mut self) -> Result<(), LockError> {
        let legacy = self.legacy.take().map_or(Ok(()), LockGuard::release);
        let refresh = self.refresh.take().map_or(Ok(()), LockGuard::release);
        legacy.and(refresh)
    }
}

impl Drop for RefreshLocks {
    fn drop(&mut self) {
        drop(self.legacy.take());
        drop(self.refresh.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: PathBuf, stale_ms: u64, retries: u32) -> LockSpec {
        LockSpec {
            path,
            stale: Duration::from_millis(stale_ms),
            retries,
            min_wait: Duration::from_millis(10),
            max_wait: Duration::from_millis(40),
            owner_file: false,
        }
    }

    fn age(path: &Path) -> Duration {
        let mtime = fs::metadata(path).unwrap().modified().unwrap();
        SystemTime::now().duration_since(mtime).unwrap_or_default()
    }

    fn set_age(path: &Path, by: Duration) {
        let then = SystemTime::now() - by;
        fs::File::open(path).unwrap().set_times(fs::FileTimes::new().set_modified(then)).unwrap();
    }

    #[tokio::test]
    async fn acquire_makes_the_directory_and_release_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let guard = acquire(&spec(path.clone(), 10_000, 0)).await.unwrap();
        assert!(path.is_dir());
        assert!(!guard.is_lost());
        guard.release().unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_second_acquirer_waits_and_then_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = acquire(&spec(path.clone(), 10_000, 0)).await.unwrap();
        assert!(try_acquire(&spec(path.clone(), 10_000, 0)).unwrap().is_none());

        let waiting = {
            let path = path.clone();
            tokio::spawn(async move {
                let mut s = spec(path, 10_000, 100);
                s.max_wait = Duration::from_millis(20);
                acquire(&s).await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        first.release().unwrap();
        let second = waiting.await.unwrap().unwrap();
        assert!(path.is_dir());
        drop(second);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn gives_up_busy_after_its_retries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let _held = acquire(&spec(path.clone(), 10_000, 0)).await.unwrap();
        let started = Instant::now();
        let err = acquire(&spec(path.clone(), 10_000, 3)).await.unwrap_err();
        assert!(matches!(err, LockError::Busy { path: p } if p == path));
        // 10 + 20 + 40 ms of waits at least: it did retry before giving up.
        assert!(started.elapsed() >= Duration::from_millis(70));
        let err = acquire_blocking(&spec(path.clone(), 10_000, 1)).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }));
    }

    #[tokio::test]
    async fn a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::create_dir(&path).unwrap();
        set_age(&path, Duration::from_secs(30));
        // Not yet stale for a 60 s lock, stale for a 10 s one.
        assert!(try_acquire(&spec(path.clone(), 60_000, 0)).unwrap().is_none());
        let guard = acquire(&spec(path.clone(), 10_000, 0)).await.unwrap();
        assert!(age(&path) < Duration::from_secs(2));
        guard.release().unwrap();
    }

    #[test]
    fn racing_takers_of_a_stale_lock_leave_exactly_one_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        for _ in 0..5 {
            fs::create_dir(&path).unwrap();
            set_age(&path, Duration::from_secs(30));
            let start = Arc::new(std::sync::Barrier::new(8));
            let takers: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        try_acquire(&spec(path, 10_000, 0)).unwrap()
                    })
                })
                .collect();
            let guards: Vec<LockGuard> =
                takers.into_iter().filter_map(|t| t.join().unwrap()).collect();
            assert!(!guards.is_empty());
            // Whoever lost a race finds out before writing: exactly one lock is still held.
            let holders = guards.iter().filter(|g| g.check().is_ok()).count();
            assert_eq!(holders, 1, "{} takers, {holders} think they hold it", guards.len());
            drop(guards);
            assert!(!path.exists());
        }
    }

    #[test]
    fn the_heartbeat_keeps_a_lock_fresh_beyond_its_stale_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let s = spec(path.clone(), 400, 0);
        let guard = acquire_blocking(&s).unwrap();
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
            assert!(age(&path) < s.stale, "lock looked stale while held");
            assert!(try_acquire(&s).unwrap().is_none());
        }
        assert!(!guard.is_lost());
        guard.release().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn release_leaves_a_lock_someone_else_took_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let guard = acquire_blocking(&spec(path.clone(), 10_000, 0)).unwrap();
        // Another process decided our lock was stale and made its own.
        fs::remove_dir(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        fs::create_dir(&path).unwrap();
        assert!(matches!(guard.check(), Err(LockError::Lost { .. })));
        assert!(matches!(guard.release(), Err(LockError::Lost { .. })));
        assert!(path.is_dir(), "the other process's lock must survive");
    }

    #[test]
    fn the_heartbeat_notices_a_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let guard = acquire_blocking(&spec(path.clone(), 200, 0)).unwrap();
        fs::remove_dir(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        fs::create_dir(&path).unwrap();
        let theirs = fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(guard.is_lost());
        // The heartbeat must not have kept the other lock fresh for it.
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), theirs);
        drop(guard);
        assert!(path.is_dir());
    }

    #[test]
    fn owner_file_is_written_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".oauth_refresh.lock");
        let mut s = spec(path.clone(), 10_000, 0);
        s.owner_file = true;
        let guard = acquire_blocking(&s).unwrap();
        let owner_path = dir.path().join(".oauth_refresh.lock.owner");
        let owner: serde_json::Value =
            serde_json::from_slice(&fs::read(&owner_path).unwrap()).unwrap();
        assert_eq!(owner["pid"], std::process::id());
        guard.release().unwrap();
        assert!(!owner_path.exists());
        assert!(!path.exists());
    }

    #[test]
    fn patience_turns_into_enough_retries() {
        let s = LockSpec::with_patience("x".into(), REFRESH_LOCK_STALE, Duration::from_secs(3));
        let total: Duration = (0..s.retries).map(|a| s.base_wait(a)).sum();
        assert!(total >= Duration::from_secs(3));
        assert!(total < Duration::from_secs(4));
        assert_eq!(
            LockSpec::with_patience("x".into(), REFRESH_LOCK_STALE, Duration::ZERO).retries,
            0
        );
        assert_eq!(s.heartbeat(), HEARTBEAT);
        assert_eq!(spec("x".into(), 400, 0).heartbeat(), Duration::from_millis(200));
    }

    fn paths_in(home: &Path) -> ClaudePaths {
        let env = super::super::Environment::from_pairs([("HOME", home.to_str().unwrap())]);
        ClaudePaths::resolve(&env).unwrap()
    }

    #[tokio::test]
    async fn refresh_locks_take_both_in_order_and_release_both() {
        let home = tempfile::tempdir().unwrap();
        let paths = paths_in(home.path());
        let locks = RefreshLocks::acquire(&paths, Duration::from_millis(200)).await.unwrap();
        assert!(paths.refresh_lock.is_dir());
        assert!(home.path().join(".claude.lock").is_dir());
        assert!(home.path().join(".claude/.oauth_refresh.lock.owner").is_file());
        locks.check().unwrap();
        locks.release().unwrap();
        assert!(!paths.refresh_lock.exists());
        assert!(!home.path().join(".claude.lock").exists());
    }

    #[tokio::test]
    async fn refresh_locks_give_back_the_first_when_the_second_is_busy() {
        let home = tempfile::tempdir().unwrap();
        let paths = paths_in(home.path());
        // An old Claude holds only the legacy lock.
        fs::create_dir(home.path().join(".claude.lock")).unwrap();
        let err = RefreshLocks::acquire(&paths, Duration::from_millis(150)).await.unwrap_err();
        assert!(
            matches!(err, LockError::Busy { path } if path == home.path().join(".claude.lock"))
        );
        assert!(!paths.refresh_lock.exists(), "the first lock must be released");
        assert!(home.path().join(".claude.lock").is_dir(), "the holder's lock must survive");
    }
}
