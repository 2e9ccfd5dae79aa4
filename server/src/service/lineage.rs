//! Keeping each lineage's newest token: storing what the live store holds into the right
//! snapshot (rule 2), writing every refresh answer before it is used (rule 3), refreshing only
//! where the token is owned (rule 1), and proving a login alive before it is installed
//! (rule 5).

use std::time::Duration;

use crate::claude::lock::{LockError, RefreshLocks};
use crate::claude::login::OAuthLogin;
use crate::claude::store::{LiveRead, StoreError};
use crate::oauth::{ProfileError, RefreshError, TokenGrant};
use crate::secret::Secret;
use crate::vault::{AccountId, Catalog, Snapshot, VaultError};

use super::identify::{profile_failure, refresh_failure};
use super::{Service, ServiceError, now_ms};

/// A validation younger than this is trusted by a switch without asking again.
const VALIDATION_TTL_MS: i64 = 15 * 60 * 1000;

/// What storing a login into a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// The snapshot already held these tokens.
    Same,
    /// The snapshot now holds them.
    Newer,
    /// The snapshot holds a later token of the lineage than the one offered; kept as it was.
    Older,
}

impl Service {
    pub(crate) fn read_catalog(&self) -> Result<Catalog, ServiceError> {
        self.vault.read_catalog().map_err(vault_failure)
    }

    pub(crate) fn write_catalog(&self, catalog: &Catalog) -> Result<(), ServiceError> {
        self.vault.write_catalog(catalog).map_err(vault_failure)
    }

    pub(crate) fn read_snapshot(&self, id: &AccountId) -> Result<Option<Snapshot>, ServiceError> {
        self.vault.read_snapshot(id).map_err(vault_failure)
    }

    pub(crate) fn read_live(&self) -> Result<Option<LiveRead>, ServiceError> {
        self.store.read().map_err(|e| self.store_failure(e))
    }

    /// Replaces the login in the live store, keeping every other key, if the store still holds
    /// what `read` saw (rule 4).
    pub(crate) fn write_live_login(
        &self,
        read: &LiveRead,
        login: &OAuthLogin,
    ) -> Result<LiveRead, ServiceError> {
        let mut doc = read.doc.clone();
        doc.login = Some(login.clone());
        let revision = self.store.write(&read.revision, &doc).map_err(|e| self.store_failure(e))?;
        Ok(LiveRead { doc, revision })
    }

    /// Takes Claude's refresh locks, so no Claude process refreshes while the live login is
    /// looked at and changed. Only a lock someone holds is `busy`; a lock that cannot be
    /// made at all (a read-only folder, say) is the store being unavailable, and says why.
    pub(crate) async fn claude_locks(&self) -> Result<RefreshLocks, ServiceError> {
        RefreshLocks::acquire(&self.paths, self.claude_patience).await.map_err(
            |error| match error {
                LockError::Busy { .. } => {
                    ServiceError::Busy { what: "Claude Code's refresh lock".to_owned() }
                }
                other => ServiceError::store("Claude Code's refresh lock", other),
            },
        )
    }

    pub(crate) fn store_failure(&self, error: StoreError) -> ServiceError {
        match error {
            StoreError::Busy => {
                ServiceError::Busy { what: "Claude Code's credential store".to_owned() }
            }
            other => ServiceError::store(describe_location(&self.store.location()), other),
        }
    }

    /// Puts `login` into the snapshot of `id` unless the snapshot already holds a later token
    /// of the same lineage. Never stores a blank login.
    pub(crate) fn store_snapshot(
        &self,
        catalog: &mut Catalog,
        id: &AccountId,
        login: &OAuthLogin,
    ) -> Result<Stored, ServiceError> {
        if login.is_blank() {
            return Ok(Stored::Same);
        }
        let existing = self.read_snapshot(id)?;
        if let Some(existing) = &existing {
            if existing.login.refresh_token == login.refresh_token
                && existing.login.access_token == login.access_token
            {
                return Ok(Stored::Same);
            }
            if existing.login.expires_at > login.expires_at && !existing.login.is_blank() {
                tracing::warn!(
                    stored = %existing.login.refresh_token,
                    offered = %login.refresh_token,
                    "kept a snapshot that is newer than the login offered for it"
                );
                return Ok(Stored::Older);
            }
        }
        let now = now_ms();
        let snapshot = Snapshot { id: id.clone(), login: login.clone(), saved_at: now };
        self.vault.write_snapshot(&snapshot).map_err(vault_failure)?;
        if let Some(record) = catalog.by_id_mut(id) {
            record.synced_at = Some(now);
            record.needs_login = false;
        }
        tracing::info!(fingerprint = %login.refresh_token, "stored a newer login in its snapshot");
        Ok(Stored::Newer)
    }

    /// Refreshes once more when the answer was lost in flight or never sent: if the first
    /// attempt reached the server the retry gets `invalid_grant`, which is then the truth.
    pub(crate) async fn refresh_with_retry(
        &self,
        refresh_token: &Secret,
        scopes: &[String],
    ) -> Result<TokenGrant, RefreshError> {
        match self.oauth.refresh(refresh_token, scopes).await {
            Err(RefreshError::Network(_) | RefreshError::Ambiguous(_)) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.oauth.refresh(refresh_token, scopes).await
            }
            other => other,
        }
    }

    /// Makes an inactive account's snapshot fit to install (rule 5): refreshed when within
    /// five minutes of expiry, validated against the profile endpoint unless validated
    /// recently (or `force_validate`), refreshed once more on a 401 or 403. Each refresh is
    /// written to the snapshot before anything else happens (rule 3). A refused refresh token
    /// marks the account `needsLogin`.
    ///
    /// The caller holds the vault lock: the vault owns this lineage (rule 1).
    pub(crate) async fn freshen_snapshot(
        &self,
        catalog: &mut Catalog,
        alias: &str,
        force_validate: bool,
    ) -> Result<OAuthLogin, ServiceError> {
        let record = catalog
            .by_alias(alias)
            .ok_or_else(|| ServiceError::UnknownAccount { alias: alias.to_owned() })?
            .clone();
        if record.needs_login {
            return Err(ServiceError::NeedsLogin { alias: alias.to_owned() });
        }
        let Some(snapshot) = self.read_snapshot(&record.id)? else {
            return Err(ServiceError::NeedsLogin { alias: alias.to_owned() });
        };
        let mut login = snapshot.login;
        let mut refreshed = false;
        if login.is_blank() {
            return self.mark_needs_login(catalog, alias);
        }
        if login.is_expired(now_ms()) {
            login = self.refresh_snapshot(catalog, &record.id, alias, &login).await?;
            refreshed = true;
        }
        let recently_validated =
            record.validated_at.is_some_and(|at| now_ms() - at < VALIDATION_TTL_MS);
        if refreshed || (recently_validated && !force_validate) {
            // A refresh answer names its account, so it is validation enough.
            if refreshed {
                self.record_validated(catalog, &record.id, None);
            }
            return Ok(login);
        }
        match self.oauth.profile(&login.access_token).await {
            Ok(profile) => {
                let id = AccountId {
                    account_uuid: profile.account_uuid.clone(),
                    organization_uuid: profile.organization_uuid.clone(),
                };
                if id != record.id {
                    return Err(ServiceError::IdentityMismatch {
                        alias: alias.to_owned(),
                        found: profile.email.clone().unwrap_or(id.account_uuid),
                    });
                }
                self.record_validated(catalog, &record.id, Some(&profile));
                Ok(login)
            }
            Err(ProfileError::Unauthorized { .. }) => {
                let login = self.refresh_snapshot(catalog, &record.id, alias, &login).await?;
                match self.oauth.profile(&login.access_token).await {
                    Ok(profile) => {
                        self.record_validated(catalog, &record.id, Some(&profile));
                        Ok(login)
                    }
                    Err(ProfileError::Unauthorized { .. }) => self.mark_needs_login(catalog, alias),
                    Err(error) => Err(profile_failure(error)),
                }
            }
            Err(error) => Err(profile_failure(error)),
        }
    }

    /// Spends the snapshot's refresh token and stores the answer before returning it.
    async fn refresh_snapshot(
        &self,
        catalog: &mut Catalog,
        id: &AccountId,
        alias: &str,
        login: &OAuthLogin,
    ) -> Result<OAuthLogin, ServiceError> {
        let grant = match self.refresh_with_retry(&login.refresh_token, &login.scopes).await {
            Ok(grant) => grant,
            Err(RefreshError::InvalidGrant) => return self.mark_needs_login(catalog, alias),
            Err(error) => return Err(refresh_failure(error)),
        };
        if let (Some(account_uuid), Some(organization_uuid)) =
            (&grant.account_uuid, &grant.organization_uuid)
            && (account_uuid != &id.account_uuid || organization_uuid != &id.organization_uuid)
        {
            return Err(ServiceError::IdentityMismatch {
                alias: alias.to_owned(),
                found: grant.email.clone().unwrap_or_else(|| account_uuid.clone()),
            });
        }
        let next = grant.apply_to(login, now_ms());
        let now = now_ms();
        let snapshot = Snapshot { id: id.clone(), login: next.clone(), saved_at: now };
        if let Err(error) = self.vault.write_snapshot(&snapshot) {
            // The old refresh token is spent: these tokens exist nowhere else. Keep them aside
            // and report; a second failure there is the only way to lose them.
            tracing::error!(%error, fingerprint = %next.refresh_token, "could not store a refreshed login");
            self.vault
                .keep_aside(&next, "snapshot write failed after refresh")
                .map_err(vault_failure)?;
            return Err(vault_failure(error));
        }
        if let Some(record) = catalog.by_id_mut(id) {
            record.synced_at = Some(now);
        }
        self.write_catalog(catalog)?;
        tracing::info!(alias, fingerprint = %next.refresh_token, "refreshed a snapshot");
        Ok(next)
    }

    pub(crate) fn mark_needs_login<T>(
        &self,
        catalog: &mut Catalog,
        alias: &str,
    ) -> Result<T, ServiceError> {
        if let Some(record) = catalog.by_alias_mut(alias) {
            record.needs_login = true;
        }
        self.write_catalog(catalog)?;
        Err(ServiceError::NeedsLogin { alias: alias.to_owned() })
    }

    pub(crate) fn record_validated(
        &self,
        catalog: &mut Catalog,
        id: &AccountId,
        profile: Option<&crate::oauth::Profile>,
    ) {
        if let Some(record) = catalog.by_id_mut(id) {
            record.validated_at = Some(now_ms());
            record.needs_login = false;
            if let Some(profile) = profile {
                record.email = profile.email.clone().or(record.email.take());
                record.display_name = profile.display_name.clone().or(record.display_name.take());
                record.organization_name =
                    profile.organization_name.clone().or(record.organization_name.take());
                record.subscription_type =
                    profile.subscription_type().or(record.subscription_type.take());
            }
        }
    }
}

pub(crate) fn vault_failure(error: VaultError) -> ServiceError {
    match error {
        VaultError::Busy { .. } => {
            ServiceError::Busy { what: "the vault (another Switchboard process)".to_owned() }
        }
        other => ServiceError::store("the vault", other),
    }
}

pub(crate) fn describe_location(location: &crate::claude::store::StoreLocation) -> String {
    match location {
        crate::claude::store::StoreLocation::File { path } => path.display().to_string(),
        crate::claude::store::StoreLocation::Keychain { service, account } => {
            format!("the Keychain item {service} ({account})")
        }
    }
}
