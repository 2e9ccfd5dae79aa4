//! Whose login is in Claude Code's live store (rule 6: identity from the account, not from
//! tokens).
//!
//! Offline, a login is recognised for certain only when one of its tokens is one a snapshot
//! holds: tokens are random and never reissued, so equal tokens are the same lineage at the
//! same point. Anything else is a claim: the `accountUuid` and `organizationUuid` a newer
//! Claude keeps in the entry, or the `oauthAccount` block, which running sessions rewrite from
//! their own cache and which therefore can lie. A claim is enough to draw a view; before a
//! login is written into an account's snapshot it is proved by the service itself, with one
//! profile call or the identity in a refresh answer.

use std::collections::HashMap;

use crate::claude::global_config::OAuthAccount;
use crate::claude::login::OAuthLogin;
use crate::claude::store::LiveRead;
use crate::oauth::{Profile, ProfileError, RefreshError};
use crate::vault::{AccountId, Catalog, Snapshot};

use super::{Service, ServiceError, now_ms};

/// Who the live login belongs to, as far as can be told without the network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LiveOwner {
    /// Claude Code has no login at all.
    Absent,
    /// The entry exists with empty tokens: Claude ended this login after a refused refresh, or
    /// a `/login` is still writing it.
    Blank { claimed: Option<AccountId> },
    /// A managed account: `certain` when a token matches its snapshot, else a claim.
    Managed { id: AccountId, certain: bool },
    /// No managed account: either nobody claims it or the claimed account is not managed.
    Unmanaged { claimed: Option<AccountId>, oauth_account: Option<OAuthAccount> },
}

/// Recognises the live login from what is on disk alone.
pub(crate) fn identify_offline(
    catalog: &Catalog,
    snapshots: &HashMap<AccountId, Snapshot>,
    live: Option<&LiveRead>,
    oauth_account: Option<&OAuthAccount>,
) -> LiveOwner {
    let Some(login) = live.and_then(|read| read.doc.login.as_ref()) else {
        return LiveOwner::Absent;
    };
    let claimed = claimed_id(login, oauth_account);
    if login.is_blank() {
        return LiveOwner::Blank { claimed: claimed_id(login, None) };
    }
    if let Some(id) = matching_snapshot(snapshots, login)
        && catalog.by_id(&id).is_some()
    {
        return LiveOwner::Managed { id, certain: true };
    }
    match claimed {
        Some(id) if catalog.by_id(&id).is_some() => LiveOwner::Managed { id, certain: false },
        claimed => LiveOwner::Unmanaged { claimed, oauth_account: oauth_account.cloned() },
    }
}

/// The snapshot holding one of this login's tokens, if any.
pub(crate) fn matching_snapshot(
    snapshots: &HashMap<AccountId, Snapshot>,
    login: &OAuthLogin,
) -> Option<AccountId> {
    snapshots
        .values()
        .find(|s| {
            s.login.refresh_token == login.refresh_token
                || s.login.access_token == login.access_token
        })
        .map(|s| s.id.clone())
}

/// The identity a login claims: its own fields first, then `oauthAccount`.
fn claimed_id(login: &OAuthLogin, oauth_account: Option<&OAuthAccount>) -> Option<AccountId> {
    match (&login.account_uuid, &login.organization_uuid) {
        (Some(account), Some(org)) => {
            Some(AccountId { account_uuid: account.clone(), organization_uuid: org.clone() })
        }
        _ => oauth_account
            .filter(|a| !a.account_uuid.is_empty() && !a.organization_uuid.is_empty())
            .map(|a| AccountId {
                account_uuid: a.account_uuid.clone(),
                organization_uuid: a.organization_uuid.clone(),
            }),
    }
}

/// An identity proved by the service, with what it said about the account.
#[derive(Debug, Clone)]
pub(crate) struct Proven {
    pub id: AccountId,
    pub profile: Option<Profile>,
}

/// The outcome of proving whose a login is.
// One of these exists per operation, briefly; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Proof {
    /// Proven; `refreshed` is the live login after a refresh that proving needed, already
    /// written to the live store.
    Known { proven: Proven, refreshed: Option<LiveRead> },
    /// The service refused the login's tokens for good.
    Dead,
}

impl Service {
    /// Proves whose the live login is, asking the profile endpoint and, when its access token
    /// is dead and `may_refresh` is set, refreshing it in place. `may_refresh` must only be
    /// set by a caller holding Claude's refresh locks (rule 1): the live store owns this token.
    pub(crate) async fn prove_live(
        &self,
        read: &LiveRead,
        may_refresh: bool,
    ) -> Result<Proof, ServiceError> {
        let login = read.doc.login.as_ref().ok_or_else(|| ServiceError::NoLogin {
            reason: "Claude Code has no login".to_owned(),
        })?;
        // An access token inside Claude's five-minute margin is due for a refresh, but it still
        // works: asking with it costs nothing, where a refresh spends the refresh token.
        if now_ms() < login.expires_at {
            match self.oauth.profile(&login.access_token).await {
                Ok(profile) => {
                    return Ok(Proof::Known { proven: proven(profile), refreshed: None });
                }
                Err(ProfileError::Unauthorized { .. }) => {}
                Err(error) => return Err(profile_failure(error)),
            }
        }
        if !may_refresh {
            return Err(ServiceError::Busy {
                what: "Claude Code's login (its access token needs a refresh)".to_owned(),
            });
        }
        let grant = match self.refresh_with_retry(&login.refresh_token, &login.scopes).await {
            Ok(grant) => grant,
            Err(RefreshError::InvalidGrant) => return Ok(Proof::Dead),
            Err(error) => return Err(refresh_failure(error)),
        };
        let next = grant.apply_to(login, now_ms());
        // Rule 3: the new tokens reach the live store before anything else uses them. The old
        // refresh token is spent, so when the store refuses them they exist nowhere else: keep
        // them aside before reporting the failure.
        let written = match self.write_live_login(read, &next) {
            Ok(written) => written,
            Err(error) => {
                tracing::error!(%error, fingerprint = %next.refresh_token, "could not write a refreshed login to the live store");
                self.vault
                    .keep_aside(&next, "live store write failed after refresh")
                    .map_err(super::lineage::vault_failure)?;
                return Err(error);
            }
        };
        // The refresh answer names the account. When that is a managed account, the catalog
        // already knows its email and organization, and the answer is proof enough.
        if let (Some(account_uuid), Some(organization_uuid)) =
            (grant.account_uuid.clone(), grant.organization_uuid.clone())
        {
            let id = AccountId { account_uuid, organization_uuid };
            let named = self.read_catalog()?.by_id(&id).is_some_and(|r| r.email.is_some());
            if named {
                return Ok(Proof::Known {
                    proven: Proven { id, profile: None },
                    refreshed: Some(written),
                });
            }
        }
        // Otherwise people need to see who it is, which only the profile says: ask with the
        // new token, and fall back on the answer's identity when that call fails.
        let profile = self.oauth.profile(&next.access_token).await;
        let proven = match (profile, grant.account_uuid.clone(), grant.organization_uuid.clone()) {
            (Ok(profile), _, _) => proven(profile),
            (Err(_), Some(account_uuid), Some(organization_uuid)) => {
                Proven { id: AccountId { account_uuid, organization_uuid }, profile: None }
            }
            (Err(error), _, _) => return Err(profile_failure(error)),
        };
        Ok(Proof::Known { proven, refreshed: Some(written) })
    }
}

pub(crate) fn proven(profile: Profile) -> Proven {
    Proven {
        id: AccountId {
            account_uuid: profile.account_uuid.clone(),
            organization_uuid: profile.organization_uuid.clone(),
        },
        profile: Some(profile),
    }
}

pub(crate) fn profile_failure(error: ProfileError) -> ServiceError {
    match error {
        ProfileError::RateLimited { retry_after } => {
            ServiceError::RateLimited { endpoint: "profile", retry_after }
        }
        other => {
            ServiceError::Network { endpoint: "the profile endpoint", detail: other.to_string() }
        }
    }
}

pub(crate) fn refresh_failure(error: RefreshError) -> ServiceError {
    match error {
        RefreshError::RateLimited { retry_after } => {
            ServiceError::RateLimited { endpoint: "token", retry_after }
        }
        other => {
            ServiceError::Network { endpoint: "the token endpoint", detail: other.to_string() }
        }
    }
}
