//! Staying in step with changes nobody announced (rule 7): Claude rotating the live token, a
//! `/login`, another Switchboard process switching. The watcher calls [`Service::reconcile`]
//! whenever something may have changed; it stores a newer token of a managed account in its
//! snapshot and tells clients what changed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::ChangeReason;

use super::identify::{LiveOwner, Proof};
use super::lineage::Stored;
use super::switch::oauth_account_of;
use super::{Service, ServiceError};
use crate::vault::AccountRecord;

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
            LiveOwner::Managed { certain: true, .. } => false,
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
        let id = match &observation.owner {
            LiveOwner::Managed { id, certain: true } => id.clone(),
            _ => match self.prove_live(read, false).await {
                Ok(Proof::Known { proven, .. }) => proven.id,
                Ok(Proof::Dead) => return Ok(false),
                Err(error) => {
                    *state.failed_proof.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((fingerprint, Instant::now()));
                    return Err(error);
                }
            },
        };
        let Some(record) = catalog.by_id(&id).cloned() else { return Ok(false) };
        let stored = self.store_snapshot(&mut catalog, &id, login)? == Stored::Newer;
        if stored {
            self.write_catalog(&catalog)?;
        }
        let aligned = self.align_oauth_account(&record).await?;
        Ok(stored || aligned)
    }

    /// Makes `oauthAccount` name the account whose login is live (the credential and the name
    /// always go together). A running Claude session can write its cached identity back after
    /// a switch, leaving the new account's tokens under the old account's name, which Claude
    /// then shows and sends to the model.
    async fn align_oauth_account(&self, record: &AccountRecord) -> Result<bool, ServiceError> {
        let current = self.global.read_oauth_account().ok().flatten();
        let names_it = current.as_ref().is_some_and(|a| {
            a.account_uuid == record.id.account_uuid
                && a.organization_uuid == record.id.organization_uuid
        });
        if names_it {
            return Ok(false);
        }
        tracing::warn!(alias = %record.alias, "oauthAccount named another account; rewriting it");
        self.global
            .write_oauth_account(Some(&oauth_account_of(record)))
            .await
            .map_err(|e| ServiceError::store(self.paths.global_config.display(), e))?;
        Ok(true)
    }
}

fn recently_failed(state: &ReconcileState, fingerprint: &str) -> bool {
    let failed = state.failed_proof.lock().unwrap_or_else(|p| p.into_inner());
    matches!(&*failed, Some((fp, at)) if fp == fingerprint && at.elapsed() < PROOF_BACKOFF)
}
