//! Staying in step with changes nobody announced (rule 7): Claude rotating the live token, a
//! `/login`, another Switchboard process switching. The watcher calls [`Service::reconcile`]
//! whenever something may have changed; it stores a newer token of a managed account in its
//! snapshot and tells clients what changed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::ChangeReason;

use super::identify::{LiveOwner, Proof};
use super::lineage::Stored;
use super::{Service, ServiceError};

/// How long a login that could not be proved is left alone before trying again, so that a
/// dead network or an expired access token does not turn into a stream of profile calls.
const PROOF_BACKOFF: Duration = Duration::from_secs(60);
/// A reconcile never waits long for the vault: whoever holds it is syncing already.
const VAULT_PATIENCE: Duration = Duration::from_millis(500);

/// What a watcher remembers between reconciles.
#[derive(Debug, Default)]
pub struct ReconcileState {
    failed_proof: Mutex<Option<(String, Instant)>>,
}

impl Service {
    /// Syncs the live login into its snapshot when it is a newer token of a managed account,
    /// and announces the view when it changed. Never refreshes: Claude owns the live token.
    /// Answers `false` when the vault was busy and nothing was looked at: the caller should
    /// try again shortly, since whoever holds the vault is changing something.
    pub async fn reconcile(&self, state: &ReconcileState) -> bool {
        // Holding the vault lock keeps this process's own operations, which announce their
        // changes themselves, from being announced a second time as external.
        let _vault_lock = match self.vault.lock(VAULT_PATIENCE).await {
            Ok(lock) => lock,
            Err(error) => {
                tracing::debug!(%error, "the vault is busy; reconciling later");
                return false;
            }
        };
        let mut stored = false;
        match self.sync_live(state).await {
            Ok(did_store) => stored = did_store,
            Err(error) => tracing::debug!(%error, "could not sync the live login yet"),
        }
        let reason = if stored { ChangeReason::Sync } else { ChangeReason::External };
        self.announce_if_changed(reason);
        true
    }

    async fn sync_live(&self, state: &ReconcileState) -> Result<bool, ServiceError> {
        let observation = self.observe()?;
        let Some(read) = observation.live.as_ref() else { return Ok(false) };
        let Some(login) = read.doc.login.as_ref() else { return Ok(false) };
        let needs_proof = match &observation.owner {
            LiveOwner::Managed { id, certain: true } => {
                let same = observation.snapshots.get(id).is_some_and(|s| {
                    s.login.refresh_token == login.refresh_token
                        && s.login.access_token == login.access_token
                });
                if same {
                    return Ok(false);
                }
                false
            }
            LiveOwner::Managed { certain: false, .. } => true,
            // A login nobody manages may still be a managed account's new lineage (a fresh
            // `/login` with an account Switchboard knows); proving it tells.
            LiveOwner::Unmanaged { .. } => true,
            LiveOwner::Absent | LiveOwner::Blank { .. } => return Ok(false),
        };
        let fingerprint = login.access_token.fingerprint();
        if needs_proof && recently_failed(state, &fingerprint) {
            return Ok(false);
        }

        let mut catalog = self.read_catalog()?;
        let id = if needs_proof {
            match self.prove_live(read, false).await {
                Ok(Proof::Known { proven, .. }) => proven.id,
                Ok(Proof::Dead) => return Ok(false),
                Err(error) => {
                    *state.failed_proof.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((fingerprint, Instant::now()));
                    return Err(error);
                }
            }
        } else {
            match &observation.owner {
                LiveOwner::Managed { id, .. } => id.clone(),
                _ => return Ok(false),
            }
        };
        if catalog.by_id(&id).is_none() {
            return Ok(false);
        }
        // The live store may have moved while the vault lock was awaited: store what it
        // holds now if it is still this lineage's login.
        let stored = self.store_snapshot(&mut catalog, &id, login)? == Stored::Newer;
        if stored {
            self.write_catalog(&catalog)?;
        }
        Ok(stored)
    }
}

fn recently_failed(state: &ReconcileState, fingerprint: &str) -> bool {
    let failed = state.failed_proof.lock().unwrap_or_else(|p| p.into_inner());
    matches!(&*failed, Some((fp, at)) if fp == fingerprint && at.elapsed() < PROOF_BACKOFF)
}
