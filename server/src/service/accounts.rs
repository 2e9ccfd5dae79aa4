//! Adopting, forgetting and inspecting accounts: `account/add`, `account/remove` and
//! `account/status`.

use std::time::Duration;

use crate::claude::login::OAuthLogin;
use crate::claude::store::LiveRead;
use crate::protocol::{
    Account, ChangeReason, RemoveResult, StatusParams, StatusResult, StoreInfo, StoreWarning,
    StoreWarningKind, VaultInfo,
};
use crate::vault::backend::Placement;
use crate::vault::{AccountRecord, Catalog, validate_alias};

use super::identify::{LiveOwner, Proof};
use super::lineage::{Stored, vault_failure};
use super::{Service, ServiceError, now_ms};

/// A `/login` writes its entry in steps; an empty one may be filled a moment later.
const BLANK_LOGIN_PATIENCE: Duration = Duration::from_secs(2);
const BLANK_LOGIN_POLL: Duration = Duration::from_millis(100);

impl Service {
    /// `account/add`: adopts the login now in Claude Code under `alias`. Adding an alias that
    /// already names the same account takes the new login for it, which is how an account
    /// that needed a new login comes back.
    pub async fn add_account(&self, alias: &str) -> Result<Account, ServiceError> {
        validate_alias(alias).map_err(|e| ServiceError::InvalidParams(e.to_string()))?;
        let _vault_lock = self.vault.lock(self.vault_patience).await.map_err(vault_failure)?;
        self.wait_for_login().await?;
        // Proving whose the login is may need a refresh of the live token, which only happens
        // under Claude's own refresh locks.
        let locks = self.claude_locks().await?;
        let read = self.read_live()?;
        let Some((read, live_login)) = read.as_ref().and_then(|r| Some((r, usable_login(r)?)))
        else {
            return Err(no_login_to_add());
        };
        let proof = self.prove_live(read, true).await;
        drop(locks);
        let (proven, login) = match proof? {
            Proof::Known { proven, refreshed } => {
                let login = refreshed
                    .and_then(|written| written.doc.login)
                    .unwrap_or_else(|| live_login.clone());
                (proven, login)
            }
            Proof::Dead => {
                return Err(ServiceError::NoLogin {
                    reason: "the login in Claude Code was refused by the service: run `claude \
                             /login` again, then add it"
                        .to_owned(),
                });
            }
        };

        let mut catalog = self.read_catalog()?;
        if let Some(existing) = catalog.by_alias(alias) {
            if existing.id != proven.id {
                return Err(ServiceError::AliasTaken { alias: alias.to_owned() });
            }
        } else if let Some(existing) = catalog.by_id(&proven.id) {
            return Err(ServiceError::AlreadyManaged { alias: existing.alias.clone() });
        } else {
            catalog.accounts.push(AccountRecord {
                alias: alias.to_owned(),
                id: proven.id.clone(),
                email: None,
                display_name: None,
                organization_name: None,
                subscription_type: login.subscription_type.clone(),
                validated_at: None,
                synced_at: None,
                needs_login: false,
                added_at: now_ms(),
            });
        }
        if self.store_snapshot(&mut catalog, &proven.id, &login)? == Stored::Older {
            tracing::warn!(alias, "the vault already held a newer login for this account");
        }
        self.record_validated(&mut catalog, &proven.id, proven.profile.as_ref());
        if catalog.active.as_deref() != Some(alias) {
            catalog.previous = catalog.active.take().filter(|a| a != alias);
        }
        catalog.active = Some(alias.to_owned());
        self.write_catalog(&catalog)?;
        tracing::info!(alias, fingerprint = %login.refresh_token, "added an account");
        self.check_replaced(&mut catalog).await;
        self.announce(ChangeReason::Add, false);
        let observation = self.observe()?;
        let record = observation
            .catalog
            .by_alias(alias)
            .ok_or_else(|| ServiceError::UnknownAccount { alias: alias.to_owned() })?;
        let active = observation.active_alias() == Some(alias);
        Ok(observation.account(record, active, now_ms()))
    }

    /// Checks that the account whose login a new one replaced is still alive. The usual way
    /// to lose one is a `/logout` before the next `/login`, which revokes it at the service;
    /// finding out now, while the user is adding accounts, beats finding out at the next
    /// switch. The replaced account is not in Claude Code any more, so the vault owns its
    /// token and may refresh it (rule 1).
    async fn check_replaced(&self, catalog: &mut Catalog) {
        let Some(previous) = catalog.previous.clone() else { return };
        match self.freshen_snapshot(catalog, &previous, true).await {
            Ok(_) => {
                if let Err(error) = self.write_catalog(catalog) {
                    tracing::warn!(%error, "could not record a validation");
                }
            }
            Err(ServiceError::NeedsLogin { .. }) => {
                tracing::warn!(alias = %previous, "the replaced account's login was revoked (a /logout does that)");
            }
            Err(error) => {
                tracing::debug!(%error, alias = %previous, "could not check the replaced account")
            }
        }
    }

    /// Reads the live login, waiting briefly when it exists but is empty: right after a
    /// `/login` the entry may be written before its tokens are.
    async fn wait_for_login(&self) -> Result<(), ServiceError> {
        let deadline = tokio::time::Instant::now() + BLANK_LOGIN_PATIENCE;
        loop {
            let read = self.read_live()?;
            match read.as_ref().and_then(|r| r.doc.login.as_ref()) {
                None => return Err(no_login_to_add()),
                Some(login) if !login.is_blank() => return Ok(()),
                Some(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::NoLogin {
                    reason: "Claude Code's login is empty (it was ended after a failed refresh, \
                             or a login is still being written): run `claude /login`, then add it"
                        .to_owned(),
                });
            }
            tokio::time::sleep(BLANK_LOGIN_POLL).await;
        }
    }

    /// `account/remove`: forgets the account and deletes its snapshot. Claude Code keeps
    /// whatever login it has.
    pub async fn remove_account(&self, alias: &str) -> Result<RemoveResult, ServiceError> {
        let _vault_lock = self.vault.lock(self.vault_patience).await.map_err(vault_failure)?;
        let mut catalog = self.read_catalog()?;
        let Some(index) = catalog.accounts.iter().position(|r| r.alias == alias) else {
            return Err(ServiceError::UnknownAccount { alias: alias.to_owned() });
        };
        let record = catalog.accounts.remove(index);
        for slot in [&mut catalog.active, &mut catalog.previous] {
            if slot.as_deref() == Some(alias) {
                *slot = None;
            }
        }
        self.write_catalog(&catalog)?;
        self.vault.remove_snapshot(&record.id).map_err(vault_failure)?;
        tracing::info!(alias, "removed an account");
        self.announce(ChangeReason::Remove, false);
        Ok(RemoveResult { removed: alias.to_owned() })
    }

    /// `account/status`: one account in detail, optionally validated against the service.
    pub async fn status(&self, params: StatusParams) -> Result<StatusResult, ServiceError> {
        if params.validate {
            self.validate(params.alias.as_deref()).await?;
        }
        let observation = self.observe()?;
        let now = now_ms();
        let account = match params.alias.as_deref() {
            Some(alias) => {
                let record = observation
                    .catalog
                    .by_alias(alias)
                    .ok_or_else(|| ServiceError::UnknownAccount { alias: alias.to_owned() })?;
                let active = observation.active_alias() == Some(alias);
                Some(observation.account(record, active, now))
            }
            None => observation
                .active_alias()
                .and_then(|alias| observation.catalog.by_alias(alias))
                .map(|record| observation.account(record, true, now)),
        };
        let store = match self.store.location() {
            crate::claude::store::StoreLocation::File { path } => {
                StoreInfo::File { path: path.display().to_string() }
            }
            crate::claude::store::StoreLocation::Keychain { service, account } => {
                StoreInfo::Keychain { service, account }
            }
        };
        Ok(StatusResult {
            account,
            store,
            config_dir: self.paths.config_dir.display().to_string(),
            global_config: self.paths.global_config.display().to_string(),
            shadowed_by: crate::claude::shadow::shadowed_by(&self.env, &self.paths),
            unmanaged: observation.view(now).unmanaged,
            store_warnings: self.store.warnings().iter().map(store_warning).collect(),
            vault: Some(vault_info(self.vault.placement())),
        })
    }

    /// Asks the service whether an account's login is alive, refreshing where rule 1 allows:
    /// the active account's live token under Claude's refresh locks, another account's
    /// snapshot under the vault lock.
    async fn validate(&self, alias: Option<&str>) -> Result<(), ServiceError> {
        let _vault_lock = self.vault.lock(self.vault_patience).await.map_err(vault_failure)?;
        let mut catalog = self.read_catalog()?;
        let observation = self.observe()?;
        let active = observation.active_alias().map(str::to_owned);
        let alias = match alias.or(active.as_deref()) {
            Some(alias) => alias.to_owned(),
            None => return Ok(()),
        };
        if catalog.by_alias(&alias).is_none() {
            return Err(ServiceError::UnknownAccount { alias });
        }
        let before = observation.view(now_ms());
        if active.as_deref() == Some(alias.as_str()) {
            let locks = self.claude_locks().await?;
            let outcome = match self.read_live()? {
                Some(read) if !matches!(observation.owner, LiveOwner::Blank { .. }) => {
                    match self.prove_live(&read, true).await? {
                        Proof::Known { proven, refreshed } => {
                            let login = refreshed
                                .and_then(|written| written.doc.login)
                                .or_else(|| read.doc.login.clone());
                            if catalog.by_id(&proven.id).is_some_and(|r| r.alias == alias) {
                                if let Some(login) = login {
                                    self.store_snapshot(&mut catalog, &proven.id, &login)?;
                                }
                                self.record_validated(
                                    &mut catalog,
                                    &proven.id,
                                    proven.profile.as_ref(),
                                );
                            }
                            Ok(())
                        }
                        Proof::Dead => {
                            if let Some(record) = catalog.by_alias_mut(&alias) {
                                record.needs_login = true;
                            }
                            Ok(())
                        }
                    }
                }
                _ => Ok(()),
            };
            drop(locks);
            outcome?;
            self.write_catalog(&catalog)?;
        } else {
            match self.freshen_snapshot(&mut catalog, &alias, true).await {
                Ok(_) | Err(ServiceError::NeedsLogin { .. }) => self.write_catalog(&catalog)?,
                Err(error) => return Err(error),
            }
        }
        if self.list()? != before {
            self.announce(ChangeReason::State, false);
        }
        Ok(())
    }
}

/// The protocol form of a live-store warning.
fn store_warning(warning: &crate::claude::store::StoreWarning) -> StoreWarning {
    use crate::claude::store::StoreWarning as Live;
    let kind = match warning {
        Live::StaleFile { .. } => StoreWarningKind::StaleFile,
        Live::KeychainUnavailable { .. } => StoreWarningKind::KeychainUnavailable,
    };
    StoreWarning { kind, message: warning.to_string() }
}

fn usable_login(read: &LiveRead) -> Option<&OAuthLogin> {
    read.doc.login.as_ref().filter(|login| !login.is_blank())
}

fn no_login_to_add() -> ServiceError {
    ServiceError::NoLogin {
        reason: "Claude Code has no login to add: run `claude /login` first".to_owned(),
    }
}

fn vault_info(placement: Placement) -> VaultInfo {
    match placement {
        Placement::Files { dir } => VaultInfo::File { path: dir.display().to_string() },
        Placement::Keychain { service } => VaultInfo::Keychain { service },
        Placement::Keyring { service } => VaultInfo::Keyring { service },
    }
}
