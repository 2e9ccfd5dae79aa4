//! The switch (`account/use`), step by step:
//!
//! 1. Take the vault lock (one switch at a time across every Switchboard process), then
//!    Claude's refresh locks, so no Claude process refreshes while the live login changes hands.
//! 2. Read the live login, prove whose it is, and store it in that account's snapshot (rule 2).
//!    A login nobody manages is kept aside in the vault, never dropped.
//! 3. Make the target fresh and valid (rule 5), storing each refresh at once (rule 3).
//! 4. Write the target into the live store with compare-and-swap (rule 4), then `oauthAccount`
//!    under Claude's config lock; if the second write fails, the first is put back.
//! 5. Release the locks, then announce the change.

use crate::claude::global_config::OAuthAccount;
use crate::claude::login::OAuthLogin;
use crate::claude::store::{LiveRead, StoreLocation};
use crate::protocol::{ChangeReason, PREVIOUS_ALIAS, Sessions, SessionsFollow, UseResult};
use crate::vault::{AccountRecord, Catalog};

use super::identify::{LiveOwner, Proof, identify_offline};
use super::lineage::Stored;
use super::{Service, ServiceError, now_ms};

/// How often a switch re-reads and decides again when someone moved the live store under it.
const CAS_ATTEMPTS: usize = 3;

impl Service {
    /// `account/use`: installs the account called `alias` (or the previous one for `-`).
    pub async fn use_account(&self, alias: &str) -> Result<UseResult, ServiceError> {
        let _vault_lock =
            self.vault.lock(self.vault_patience).await.map_err(super::lineage::vault_failure)?;
        let mut catalog = self.read_catalog()?;
        let alias = resolve_alias(&catalog, alias)?;
        let locks = self.claude_locks().await?;

        let before = self.list().ok();
        let outcome = self.switch_locked(&mut catalog, &alias).await;
        drop(locks);
        if outcome.is_err() && self.list().ok() != before {
            // A refused switch can still have learned something: a target that needs a new
            // login, a refreshed snapshot. Clients hear of it now, not at the next tick.
            self.announce(ChangeReason::State, false);
        }
        let (result, changed) = outcome?;
        if changed {
            self.announce(ChangeReason::Use, false);
        }
        Ok(result)
    }

    async fn switch_locked(
        &self,
        catalog: &mut Catalog,
        alias: &str,
    ) -> Result<(UseResult, bool), ServiceError> {
        for _ in 0..CAS_ATTEMPTS {
            let read = self.read_live()?;
            let (outgoing, read) = self.sync_outgoing(catalog, read).await?;
            let target = catalog
                .by_alias(alias)
                .cloned()
                .ok_or_else(|| ServiceError::UnknownAccount { alias: alias.to_owned() })?;
            // A blank entry is Claude saying this login died (K04). It belongs to the account
            // it names, else to the one the catalog has active.
            let live_blank = read
                .as_ref()
                .and_then(|r| r.doc.login.as_ref())
                .is_some_and(crate::claude::login::OAuthLogin::is_blank);
            let blank_owner =
                if live_blank { outgoing.clone().or_else(|| catalog.active.clone()) } else { None };

            if outgoing.as_deref() == Some(alias) && !live_blank {
                // Already installed: nothing moves, nothing is announced.
                catalog.active = Some(alias.to_owned());
                self.write_catalog(catalog)?;
                return Ok((self.use_result(alias, catalog.previous.clone())?, false));
            }

            // Switching back to the account whose live login Claude just ended: its snapshot
            // may hold the very token the service refused, so a recent validation proves
            // nothing; ask again (rule 5) rather than install a dead login.
            let force_validate = blank_owner.as_deref() == Some(alias);
            let login = self.freshen_snapshot(catalog, alias, force_validate).await?;
            self.write_catalog(catalog)?;
            match self.install(read.as_ref(), &target, &login).await {
                Ok(()) => {}
                Err(Install::Moved) => {
                    tracing::info!("the live store changed during the switch; deciding again");
                    continue;
                }
                Err(Install::Failed(error)) => return Err(error),
            }
            if outgoing.is_some() && outgoing.as_deref() != Some(alias) {
                catalog.previous = outgoing;
            } else if catalog.previous.as_deref() == Some(alias) {
                // Leaving a login nobody manages (or none): there is nothing to go back to,
                // and the old `previous` is the account now installed.
                catalog.previous = None;
            }
            catalog.active = Some(alias.to_owned());
            self.write_catalog(catalog)?;
            tracing::info!(alias, fingerprint = %login.refresh_token, "switched");
            return Ok((self.use_result(alias, catalog.previous.clone())?, true));
        }
        Err(ServiceError::Busy {
            what: "Claude Code's credential store (it kept changing)".to_owned(),
        })
    }

    /// Rule 2: stores the live login in its account's snapshot before it is replaced, and
    /// answers that account's alias. An unmanaged login is kept aside.
    ///
    /// Proving whose the login is may refresh it in place; the read answered is then the live
    /// store as this wrote it, which is what a later compare-and-swap must expect.
    pub(crate) async fn sync_outgoing(
        &self,
        catalog: &mut Catalog,
        read: Option<LiveRead>,
    ) -> Result<(Option<String>, Option<LiveRead>), ServiceError> {
        let Some(read) = read else { return Ok((None, None)) };
        let synced = self.sync_read(catalog, &read).await?;
        Ok((synced.alias, Some(synced.rewritten.unwrap_or(read))))
    }

    async fn sync_read(
        &self,
        catalog: &mut Catalog,
        read: &LiveRead,
    ) -> Result<Sync, ServiceError> {
        let Some(login) = read.doc.login.as_ref() else { return Ok(Sync::kept(None)) };
        let snapshots = self.readable_snapshots(catalog);
        let oauth_account = self.global.read_oauth_account().ok().flatten();
        let owner = identify_offline(catalog, &snapshots, Some(read), oauth_account.as_ref());
        match owner {
            LiveOwner::Absent => Ok(Sync::kept(None)),
            LiveOwner::Blank { claimed } => {
                // Claude ended this login (or a `/login` is writing one): nothing to keep.
                Ok(Sync::kept(claimed.and_then(|id| catalog.by_id(&id)).map(|r| r.alias.clone())))
            }
            LiveOwner::Managed { id, certain: true } => {
                let alias = catalog.by_id(&id).map(|r| r.alias.clone());
                self.store_snapshot(catalog, &id, login)?;
                Ok(Sync::kept(alias))
            }
            LiveOwner::Managed { certain: false, .. } | LiveOwner::Unmanaged { .. } => {
                let claimed = match &owner {
                    LiveOwner::Managed { id, .. } => catalog.by_id(id).map(|r| r.alias.clone()),
                    _ => None,
                };
                match self.prove_live(read, true).await? {
                    Proof::Known { proven, refreshed } => {
                        let login = refreshed
                            .as_ref()
                            .and_then(|written| written.doc.login.as_ref())
                            .unwrap_or(login);
                        if catalog.by_id(&proven.id).is_none() {
                            let at = self
                                .vault
                                .keep_aside(login, "unmanaged login replaced by a switch")
                                .map_err(super::lineage::vault_failure)?;
                            tracing::warn!(path = %at.display(), "kept an unmanaged login aside");
                            return Ok(Sync::after(None, refreshed));
                        }
                        if self.store_snapshot(catalog, &proven.id, login)? == Stored::Newer {
                            self.record_validated(catalog, &proven.id, proven.profile.as_ref());
                        }
                        self.write_catalog(catalog)?;
                        let alias = catalog.by_id(&proven.id).map(|r| r.alias.clone());
                        Ok(Sync::after(alias, refreshed))
                    }
                    Proof::Dead => {
                        // Its refresh token is refused: nothing worth keeping, but the account
                        // it claims to be needs a new login.
                        if let Some(record) = claimed.as_ref().and_then(|a| catalog.by_alias_mut(a))
                        {
                            record.needs_login = true;
                            self.write_catalog(catalog)?;
                        }
                        Ok(Sync::kept(claimed))
                    }
                }
            }
        }
    }

    /// Writes the target's login into the live store and `oauthAccount` together, or
    /// neither.
    async fn install(
        &self,
        read: Option<&LiveRead>,
        target: &AccountRecord,
        login: &OAuthLogin,
    ) -> Result<(), Install> {
        let mut installed = login.clone();
        installed.account_uuid = Some(target.id.account_uuid.clone());
        installed.organization_uuid = Some(target.id.organization_uuid.clone());
        if installed.subscription_type.is_none() {
            installed.subscription_type = target.subscription_type.clone();
        }
        let (base, revision) = match read {
            Some(read) => (read.doc.clone(), read.revision.clone()),
            None => (Default::default(), crate::claude::store::Revision::absent()),
        };
        let mut doc = base.clone();
        doc.login = Some(installed);
        let written = match self.store.write(&revision, &doc) {
            Ok(written) => written,
            Err(crate::claude::store::StoreError::Changed) => return Err(Install::Moved),
            Err(error) => return Err(Install::Failed(self.store_failure(error))),
        };
        if let Err(error) = self.global.write_oauth_account(Some(&oauth_account_of(target))).await {
            // K14: the credential and `oauthAccount` change together or not at all.
            tracing::error!(%error, "could not write oauthAccount; putting the old login back");
            if let Err(undo) = self.store.write(&written, &base) {
                tracing::error!(error = %undo, "could not put the old login back");
            }
            return Err(Install::Failed(ServiceError::store(
                self.paths.global_config.display(),
                error,
            )));
        }
        Ok(())
    }

    fn use_result(&self, alias: &str, previous: Option<String>) -> Result<UseResult, ServiceError> {
        let observation = self.observe()?;
        let record = observation
            .catalog
            .by_alias(alias)
            .ok_or_else(|| ServiceError::UnknownAccount { alias: alias.to_owned() })?;
        let active = observation.account(record, true, now_ms());
        let shadowed_by = crate::claude::shadow::shadowed_by(&self.env, &self.paths);
        Ok(UseResult {
            active,
            previous,
            sessions: sessions_follow(&self.store.location(), &shadowed_by),
            shadowed_by,
        })
    }
}

/// What syncing the outgoing login found: the alias it belongs to, and the live store as
/// rewritten on the way when proving whose it is needed a refresh.
#[derive(Debug)]
struct Sync {
    alias: Option<String>,
    rewritten: Option<LiveRead>,
}

impl Sync {
    fn kept(alias: Option<String>) -> Self {
        Sync { alias, rewritten: None }
    }

    fn after(alias: Option<String>, rewritten: Option<LiveRead>) -> Self {
        Sync { alias, rewritten }
    }
}

#[derive(Debug)]
enum Install {
    /// The live store no longer holds what was read: someone else wrote it.
    Moved,
    Failed(ServiceError),
}

/// The `oauthAccount` block naming an account, as a switch writes it.
pub(crate) fn oauth_account_of(record: &AccountRecord) -> OAuthAccount {
    OAuthAccount::for_switch(
        record.id.account_uuid.clone(),
        record.email.clone().unwrap_or_default(),
        record.id.organization_uuid.clone(),
        record.organization_name.clone(),
        record.display_name.clone(),
    )
}

fn resolve_alias(catalog: &Catalog, alias: &str) -> Result<String, ServiceError> {
    if alias == PREVIOUS_ALIAS {
        return catalog
            .previous
            .clone()
            .filter(|p| catalog.by_alias(p).is_some())
            .ok_or(ServiceError::NoPrevious);
    }
    if let Some(record) = catalog.by_alias(alias) {
        return Ok(record.alias.clone());
    }
    // An email names an account only when exactly one has it: one person may have the same
    // email in several organizations.
    match catalog.by_email(alias).as_slice() {
        [only] => Ok(only.alias.clone()),
        [] => Err(ServiceError::UnknownAccount { alias: alias.to_owned() }),
        several => Err(ServiceError::AmbiguousEmail {
            email: alias.to_owned(),
            aliases: several.iter().map(|r| r.alias.clone()).collect(),
        }),
    }
}

/// When running Claude Code sessions pick up a switch, from where the login lives and what
/// shadows it.
pub(crate) fn sessions_follow(location: &StoreLocation, shadowed_by: &[String]) -> Sessions {
    if !shadowed_by.is_empty() {
        return Sessions {
            follow: SessionsFollow::Restart,
            message: format!(
                "Claude Code ignores the stored login while {} is set: sessions started that way \
                 keep their credentials until restarted without it",
                shadowed_by.join(", ")
            ),
        };
    }
    match location {
        StoreLocation::File { .. } => Sessions {
            follow: SessionsFollow::NextRequest,
            message: "running Claude Code sessions switch on their next request".to_owned(),
        },
        StoreLocation::Keychain { .. } => Sessions {
            follow: SessionsFollow::Within30Seconds,
            message: "running Claude Code sessions switch within about 30 seconds".to_owned(),
        },
    }
}
