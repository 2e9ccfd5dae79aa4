//! What a client shows: the accounts with their states, which one Claude Code has now, and a
//! login nobody manages. Built from the catalog, the snapshots and one read of the live store,
//! without the network and without locks, so that listing never waits on a switch.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::claude::login::{EXPIRY_MARGIN_MS, OAuthLogin};
use crate::claude::store::LiveRead;
use crate::protocol::{Account, AccountState, ListResult, UnmanagedLogin};
use crate::vault::{AccountId, AccountRecord, Catalog, Snapshot};

use super::identify::{LiveOwner, identify_offline};
use super::{Service, ServiceError, now_ms};

/// One consistent reading of everything a view is built from.
#[derive(Debug)]
pub(crate) struct Observation {
    pub catalog: Catalog,
    pub snapshots: HashMap<AccountId, Snapshot>,
    pub live: Option<LiveRead>,
    pub owner: LiveOwner,
}

impl Service {
    /// Reads the catalog, every snapshot and the live store.
    pub(crate) fn observe(&self) -> Result<Observation, ServiceError> {
        let catalog = self.read_catalog()?;
        let snapshots = self.readable_snapshots(&catalog);
        let live = self.read_live()?;
        let oauth_account = self.global.read_oauth_account().ok().flatten();
        let owner = identify_offline(&catalog, &snapshots, live.as_ref(), oauth_account.as_ref());
        Ok(Observation { catalog, snapshots, live, owner })
    }

    /// The snapshots of the catalog's accounts that can be read. One that cannot (damaged,
    /// unreadable) is left out, so that its account shows as `unknown` and the others keep
    /// working; it is logged here and reported in full by whatever needs that very snapshot,
    /// since every read before a write of a snapshot is strict and never overwrites it.
    pub(crate) fn readable_snapshots(&self, catalog: &Catalog) -> HashMap<AccountId, Snapshot> {
        let mut snapshots = HashMap::new();
        for record in &catalog.accounts {
            match self.read_snapshot(&record.id) {
                Ok(Some(snapshot)) => {
                    snapshots.insert(record.id.clone(), snapshot);
                }
                Ok(None) => {}
                Err(error) => {
                    // Views are built many times a command and on every watcher tick: say it
                    // once per process and damage, not once per look.
                    static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
                    let message = error.to_string();
                    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
                    if !warned.contains(&message) {
                        tracing::warn!(alias = %record.alias, %error, "left out an unreadable snapshot");
                        warned.push(message);
                    }
                }
            }
        }
        snapshots
    }

    /// The answer to `account/list`.
    pub fn list(&self) -> Result<ListResult, ServiceError> {
        Ok(self.observe()?.view(now_ms()))
    }
}

impl Observation {
    /// The alias Claude Code is using now, if it is a managed account.
    pub fn active_alias(&self) -> Option<&str> {
        match &self.owner {
            LiveOwner::Managed { id, .. } => self.catalog.by_id(id).map(|r| r.alias.as_str()),
            // A blank login says only that the login in Claude died; whose it was comes from
            // what the entry still claims, else from who Switchboard last installed.
            LiveOwner::Blank { claimed: Some(id) } => {
                self.catalog.by_id(id).map(|r| r.alias.as_str())
            }
            LiveOwner::Blank { claimed: None } => self.catalog.active.as_deref(),
            LiveOwner::Unmanaged { .. } | LiveOwner::Absent => None,
        }
    }

    pub fn live_login(&self) -> Option<&OAuthLogin> {
        self.live.as_ref().and_then(|read| read.doc.login.as_ref())
    }

    pub fn view(&self, now: i64) -> ListResult {
        let active = self.active_alias().map(str::to_owned);
        let mut accounts: Vec<Account> = self
            .catalog
            .accounts
            .iter()
            .map(|record| self.account(record, active.as_deref() == Some(&record.alias), now))
            .collect();
        accounts.sort_by(|a, b| a.alias.cmp(&b.alias));
        let previous = self
            .catalog
            .previous
            .clone()
            .filter(|p| self.catalog.by_alias(p).is_some() && active.as_ref() != Some(p));
        ListResult { active, previous, accounts, unmanaged: self.unmanaged(now) }
    }

    /// One account as clients show it. The active account's tokens are the live store's, the
    /// others' are their snapshots'.
    pub fn account(&self, record: &AccountRecord, active: bool, now: i64) -> Account {
        let login = if active { self.live_login() } else { None }
            .or_else(|| self.snapshots.get(&record.id).map(|s| &s.login));
        let state = if record.needs_login {
            AccountState::NeedsLogin
        } else {
            login.map_or(AccountState::Unknown, |l| state_of(l, now))
        };
        Account {
            alias: record.alias.clone(),
            account_uuid: record.id.account_uuid.clone(),
            email: record.email.clone(),
            organization_uuid: record.id.organization_uuid.clone(),
            organization_name: record.organization_name.clone(),
            subscription_type: record.subscription_type.clone(),
            active,
            state,
            expires_at: login.filter(|l| !l.is_blank()).map(|l| l.expires_at),
            validated_at: record.validated_at,
            synced_at: record.synced_at,
            fingerprint: login.filter(|l| !l.is_blank()).map(|l| l.refresh_token.fingerprint()),
        }
    }

    fn unmanaged(&self, now: i64) -> Option<UnmanagedLogin> {
        let LiveOwner::Unmanaged { claimed, oauth_account } = &self.owner else { return None };
        let state = self.live_login().map_or(AccountState::Unknown, |l| state_of(l, now));
        Some(UnmanagedLogin {
            account_uuid: claimed.as_ref().map(|id| id.account_uuid.clone()),
            organization_uuid: claimed.as_ref().map(|id| id.organization_uuid.clone()),
            email: oauth_account
                .as_ref()
                .map(|a| a.email_address.clone())
                .filter(|e| !e.is_empty()),
            organization_name: oauth_account.as_ref().and_then(|a| a.organization_name.clone()),
            state,
        })
    }
}

/// A login's state from its expiry, by Claude's five-minute rule.
pub(crate) fn state_of(login: &OAuthLogin, now: i64) -> AccountState {
    if login.is_blank() {
        AccountState::NeedsLogin
    } else if now >= login.expires_at {
        AccountState::Expired
    } else if now + EXPIRY_MARGIN_MS >= login.expires_at {
        AccountState::Expiring
    } else {
        AccountState::Ok
    }
}
