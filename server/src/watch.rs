//! Noticing changes made by others: Claude rotating or replacing its login, and other
//! Switchboard processes switching or syncing through the shared vault.
//!
//! File events come from the folders (not the files), because Claude and Switchboard replace
//! files by rename, which a watch on the old file would miss. Events are coalesced briefly and
//! each burst leads to one [`Service::reconcile`]. A periodic tick is the backstop for events
//! a platform drops, for folders that do not exist yet, and for states that change with time
//! alone (a token becoming `expiring`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::service::{ReconcileState, Service};

/// How long a burst of file events is allowed to settle before reconciling once.
const SETTLE: Duration = Duration::from_millis(50);
/// The backstop period.
const TICK: Duration = Duration::from_secs(5);
/// How often, and how long apart, a reconcile is tried again while the vault is busy.
const BUSY_RETRIES: usize = 20;
const BUSY_RETRY: Duration = Duration::from_millis(100);

/// Starts watching for the service; the task ends when aborted.
pub fn spawn(service: Arc<Service>) -> JoinHandle<()> {
    tokio::spawn(async move { run(service).await })
}

async fn run(service: Arc<Service>) {
    let (events, mut wakeups) = mpsc::unbounded_channel();
    let folders = watched_folders(&service);
    // Kept alive for as long as the loop runs; dropping it stops the events.
    let _watcher = start_watcher(&folders, events);
    let state = ReconcileState::default();
    reconcile(&service, &state).await;
    loop {
        tokio::select! {
            woke = wakeups.recv() => {
                if woke.is_none() {
                    // The watcher could not start; the tick alone keeps us in step.
                    tokio::time::sleep(TICK).await;
                } else {
                    tokio::time::sleep(SETTLE).await;
                    while wakeups.try_recv().is_ok() {}
                }
            }
            () = tokio::time::sleep(TICK) => {}
        }
        reconcile(&service, &state).await;
    }
}

/// Reconciles, retrying while another operation holds the vault: it is about to change
/// something, and its clients should hear of it now rather than at the next tick.
async fn reconcile(service: &Service, state: &ReconcileState) {
    for _ in 0..BUSY_RETRIES {
        if service.reconcile(state).await {
            return;
        }
        tokio::time::sleep(BUSY_RETRY).await;
    }
}

fn watched_folders(service: &Service) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    let mut add = |path: &Path| {
        if !folders.iter().any(|f: &PathBuf| f == path) {
            folders.push(path.to_path_buf());
        }
    };
    if let crate::claude::store::StoreLocation::File { path } = service.store().location()
        && let Some(parent) = path.parent()
    {
        add(parent);
    }
    if let Some(parent) = service.paths().global_config.parent() {
        add(parent);
    }
    add(service.vault().dir());
    add(&service.vault().snapshots_dir());
    folders
}

fn start_watcher(
    folders: &[PathBuf],
    events: mpsc::UnboundedSender<()>,
) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = events.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "file events unavailable; relying on the periodic check");
            return None;
        }
    };
    for folder in folders {
        if let Err(error) = watcher.watch(folder, RecursiveMode::NonRecursive) {
            tracing::debug!(folder = %folder.display(), %error, "not watching a folder");
        }
    }
    Some(watcher)
}
