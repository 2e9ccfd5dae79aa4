//! The fake service's control surface: the operations a test uses to set the scene and read
//! what happened, in process through [`Control`] and over HTTP under `/_control`.
//!
//! Both ways share these types, so a field means the same thing in a Rust test and in a JSON
//! body. Every type serializes with the camelCase names `docs/fake-anthropic.md` gives.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use switchboard::secret::Secret;

use super::model::Model;

/// The in-process handle on a running fake; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Control {
    model: Arc<Mutex<Model>>,
}

impl Control {
    /// Creates an account for `email` in a new organization; the same email twice yields the
    /// same account in a second organization.
    pub fn create_account(&self, new: NewAccount) -> AccountIds {
        self.model().create_account(new)
    }

    /// Starts a fresh lineage for an account in one of its organizations, as `/login` does.
    pub fn mint_login(&self, ids: &AccountIds) -> Result<MintedLogin, ControlError> {
        self.model().mint_login(ids)
    }

    /// Revokes every token of a lineage.
    pub fn revoke_lineage(&self, lineage: &str) -> Result<(), ControlError> {
        self.model().revoke_lineage(lineage)
    }

    pub fn settings(&self) -> Settings {
        self.model().settings()
    }

    /// Changes the settings named in `update` and answers those now in force.
    pub fn update_settings(&self, update: SettingsUpdate) -> Settings {
        self.model().update_settings(update)
    }

    /// Sets what the usage endpoint reports for an account.
    pub fn set_usage(&self, account_uuid: &str, values: UsageValues) -> Result<(), ControlError> {
        self.model().set_usage(account_uuid, values)
    }

    /// Makes requests to `endpoint` misbehave, replacing any fault set there before.
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        self.model().set_fault(endpoint, fault);
    }

    pub fn clear_faults(&self) {
        self.model().clear_faults();
    }

    /// Everything the service has seen: lineages, reuses, request counts.
    pub fn report(&self) -> Report {
        self.model().report()
    }

    /// What the service thinks of a token (refresh or access), without spending it.
    pub fn inspect_token(&self, token: &str) -> TokenStatus {
        self.model().inspect(token)
    }

    pub(crate) fn model(&self) -> MutexGuard<'_, Model> {
        // A panic while holding the lock leaves the model consistent (every operation checks
        // before it changes anything), so a poisoned lock is still safe to use.
        self.model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why a control operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// The body of `POST /_control/accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// `claude_max` (the default), `claude_pro`, `claude_team`, `claude_enterprise`; any other
    /// value is kept and gives a login whose `subscriptionType` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_type: Option<String>,
}

impl NewAccount {
    pub fn new(email: impl Into<String>) -> Self {
        NewAccount { email: email.into(), organization_name: None, organization_type: None }
    }

    pub fn organization_name(mut self, name: impl Into<String>) -> Self {
        self.organization_name = Some(name.into());
        self
    }

    pub fn organization_type(mut self, organization_type: impl Into<String>) -> Self {
        self.organization_type = Some(organization_type.into());
        self
    }
}

/// The answer of `POST /_control/accounts`, and the body of `POST /_control/logins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountIds {
    pub account_uuid: String,
    pub organization_uuid: String,
}

/// A fresh lineage, as a `/login` in the browser hands it to Claude Code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedLogin {
    pub lineage: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Epoch milliseconds.
    pub expires_at: i64,
    pub scopes: Vec<String>,
    /// `max`, `pro`, `team`, `enterprise`, or null for another organization type.
    pub subscription_type: Option<String>,
    pub rate_limit_tier: String,
    /// Who logged in, for the `oauthAccount` block a `/login` writes.
    pub account: MintedLoginAccount,
    pub organization: MintedLoginOrganization,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedLoginAccount {
    pub uuid: String,
    pub email_address: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedLoginOrganization {
    pub uuid: String,
    pub name: String,
    pub organization_type: String,
    pub billing_type: String,
}

/// The settings in force, as `PUT /_control/settings` answers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// How long a new access token works; 0 makes it dead on arrival. Default 8 hours.
    pub access_token_lifetime_secs: u64,
    /// Whether spending a spent refresh token revokes its whole lineage. Default off.
    pub revoke_lineage_on_reuse: bool,
    /// Usage calls one access token may make in an hour. Default 30.
    pub usage_rate_limit_per_token: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_token_lifetime_secs: 8 * 3600,
            revoke_lineage_on_reuse: false,
            usage_rate_limit_per_token: 30,
        }
    }
}

/// The body of `PUT /_control/settings`: absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_lineage_on_reuse: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_rate_limit_per_token: Option<u32>,
}

/// The body of `PUT /_control/usage/{accountUuid}`; the usage endpoint reports each value
/// unchanged as `utilization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageValues {
    pub five_hour: f64,
    pub seven_day: f64,
}

/// The endpoints a fault can be set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Token,
    Profile,
    Account,
    Usage,
}

impl Endpoint {
    pub fn parse(name: &str) -> Option<Endpoint> {
        match name {
            "token" => Some(Endpoint::Token),
            "profile" => Some(Endpoint::Profile),
            "account" => Some(Endpoint::Account),
            "usage" => Some(Endpoint::Usage),
            _ => None,
        }
    }
}

/// How requests to one endpoint misbehave, the body of `PUT /_control/faults/{endpoint}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Wait this long before handling the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Answer this status instead of handling the request (nothing is spent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `Retry-After` header sent with `status`; a 429 without it says 1 second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Token endpoint only: handle the request (rotating the token), then close the connection
    /// without answering, as when the answer is lost in flight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_after_rotation: bool,
    /// How many requests the fault hits before it clears itself; absent: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// The answer of `GET /_control/report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// In the order the logins were minted.
    pub lineages: Vec<LineageReport>,
    /// Reuses over all lineages.
    pub reuses: u32,
    pub requests: RequestCounts,
}

impl Report {
    pub fn lineage(&self, id: &str) -> Option<&LineageReport> {
        self.lineages.iter().find(|l| l.lineage == id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageReport {
    pub lineage: String,
    pub account_uuid: String,
    pub organization_uuid: String,
    /// Refresh tokens issued in this lineage, the one from the login included.
    pub issued: u32,
    /// Refresh tokens spent by a successful refresh.
    pub spent: u32,
    /// Attempts to spend a refresh token a second time.
    pub reuses: u32,
    pub revoked: bool,
    pub reuse_attempts: Vec<ReuseAttempt>,
}

/// One attempt to spend a spent refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReuseAttempt {
    /// Epoch milliseconds.
    pub at: i64,
    /// Which refresh token of the lineage it was: 0 is the one from the login.
    pub generation: u32,
    /// The newest generation at the time.
    pub current_generation: u32,
    /// The spent token's fingerprint (first 8 hex digits of its SHA-256).
    pub fingerprint: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub token: u32,
    pub profile: u32,
    pub account: u32,
    pub usage: u32,
    /// Requests to `/v1/oauth/token/revoke`.
    pub revoke: u32,
}

/// The answer of `POST /_control/tokens/inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    /// `refresh` or `access`; absent for a token the service never issued.
    pub kind: Option<String>,
    pub lineage: Option<String>,
    pub generation: Option<u32>,
    pub state: TokenState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// Works: the newest refresh token of a live lineage, or its unexpired access token.
    Live,
    /// A refresh token already spent.
    Spent,
    /// Its lineage was revoked.
    Revoked,
    /// An access token replaced by a later refresh of its lineage.
    Superseded,
    /// An access token past its lifetime.
    Expired,
    Unknown,
}
