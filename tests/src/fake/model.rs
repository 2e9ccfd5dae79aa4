//! The fake service's memory: accounts, organizations, lineages and the tokens they issued.
//!
//! Every rule the real service enforces about tokens lives here, apart from HTTP: a refresh
//! token is accepted once, and only while it is the newest of a live lineage; an access token
//! works only until it expires, its lineage is revoked, or a later refresh of the lineage
//! replaces it. Spending an old refresh token again is a reuse, recorded against its lineage.
//! The model is a plain struct guarded by one mutex in [`super::control::Control`], so each
//! operation is atomic: two refreshes of one token can never both succeed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchboard::secret::Secret;

use super::control::{
    AccountIds, Endpoint, Fault, MintedLogin, MintedLoginAccount, MintedLoginOrganization,
    NewAccount, ReuseAttempt, Settings, SettingsUpdate, TokenState, TokenStatus, UsageValues,
};
use super::control::{ControlError, LineageReport, Report, RequestCounts};

/// The scopes a `/login` grants, as Claude Code 2.1.332 asks for them.
pub const LOGIN_SCOPES: [&str; 6] = [
    "user:file_upload",
    "user:inference",
    "user:mcp_servers",
    "user:plugins",
    "user:profile",
    "user:sessions:claude_code",
];

/// How long the usage endpoint remembers calls when enforcing its per-token rate.
pub const USAGE_RATE_WINDOW: Duration = Duration::from_secs(3600);

/// One person, identified by email; the same email always maps to the same account.
#[derive(Debug, Clone)]
pub struct Account {
    pub uuid: String,
    pub email: String,
    pub display_name: String,
}

/// An organization an account belongs to; it decides the subscription.
#[derive(Debug, Clone)]
pub struct Organization {
    pub uuid: String,
    pub account_uuid: String,
    pub name: String,
    pub organization_type: String,
}

impl Organization {
    /// The subscription Claude stores for a login of this organization; `None` for a type the
    /// contract does not name, which Claude writes as `null`.
    pub fn subscription_type(&self) -> Option<&'static str> {
        match self.organization_type.as_str() {
            "claude_max" => Some("max"),
            "claude_pro" => Some("pro"),
            "claude_team" => Some("team"),
            "claude_enterprise" => Some("enterprise"),
            _ => None,
        }
    }

    pub fn rate_limit_tier(&self) -> &'static str {
        match self.organization_type.as_str() {
            "claude_max" => "default_claude_max_20x",
            "claude_pro" => "default_claude_pro",
            "claude_team" => "default_claude_team",
            "claude_enterprise" => "default_claude_enterprise",
            _ => "default",
        }
    }

    pub fn billing_type(&self) -> &'static str {
        match self.organization_type.as_str() {
            "claude_team" | "claude_enterprise" => "invoice",
            _ => "stripe_subscription",
        }
    }
}

/// One chain of refresh tokens, started by a `/login`. Generation `n` is the `n`-th refresh
/// token issued in it; only the newest generation is live.
#[derive(Debug)]
struct Lineage {
    id: String,
    account_uuid: String,
    organization_uuid: String,
    scopes: Vec<String>,
    generation: u32,
    spent: u32,
    revoked: bool,
    reuse_attempts: Vec<ReuseAttempt>,
}

#[derive(Debug)]
struct RefreshRecord {
    lineage: String,
    generation: u32,
}

#[derive(Debug)]
struct AccessRecord {
    lineage: String,
    generation: u32,
    expires_at_ms: i64,
}

/// A successful rotation: what the token endpoint answers.
#[derive(Debug)]
pub struct Rotation {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_in: u64,
    pub scope: String,
    pub account_uuid: String,
    pub email: String,
    pub organization_uuid: String,
}

/// Why a refresh token was refused; every variant is `invalid_grant` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    Unknown,
    Spent,
    Revoked,
}

impl RefreshRefusal {
    pub fn description(self) -> &'static str {
        match self {
            RefreshRefusal::Unknown => "refresh token not found",
            RefreshRefusal::Spent => "refresh token already used",
            RefreshRefusal::Revoked => "refresh token revoked",
        }
    }
}

/// Who an access token belongs to, when it still works.
#[derive(Debug)]
pub struct Bearer {
    pub account: Account,
    pub organization: Organization,
}

/// The usage endpoint's per-token rate was exceeded.
#[derive(Debug)]
pub struct RateLimited {
    pub retry_after_secs: u64,
}

#[derive(Debug, Default)]
pub struct Model {
    settings: Settings,
    accounts: BTreeMap<String, Account>,
    organizations: BTreeMap<String, Organization>,
    lineage_order: Vec<String>,
    lineages: HashMap<String, Lineage>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    access_tokens: HashMap<String, AccessRecord>,
    usage: HashMap<String, UsageValues>,
    usage_calls: HashMap<String, VecDeque<Instant>>,
    faults: HashMap<Endpoint, Fault>,
    requests: RequestCounts,
}

impl Model {
    pub fn settings(&self) -> Settings {
        self.settings.clone()
    }

    pub fn update_settings(&mut self, update: SettingsUpdate) -> Settings {
        if let Some(v) = update.access_token_lifetime_secs {
            self.settings.access_token_lifetime_secs = v;
        }
        if let Some(v) = update.revoke_lineage_on_reuse {
            self.settings.revoke_lineage_on_reuse = v;
        }
        if let Some(v) = update.usage_rate_limit_per_token {
            self.settings.usage_rate_limit_per_token = v;
        }
        self.settings.clone()
    }

    pub fn create_account(&mut self, new: NewAccount) -> AccountIds {
        let existing =
            self.accounts.values().find(|a| a.email == new.email).map(|a| a.uuid.clone());
        let account_uuid = existing.unwrap_or_else(|| {
            let uuid = random_uuid();
            let display_name = new.email.split('@').next().unwrap_or_default().to_owned();
            self.accounts.insert(
                uuid.clone(),
                Account { uuid: uuid.clone(), email: new.email.clone(), display_name },
            );
            uuid
        });
        let organization_uuid = random_uuid();
        let name = new.organization_name.unwrap_or_else(|| format!("{}'s Organization", new.email));
        let organization_type = new.organization_type.unwrap_or_else(|| "claude_max".to_owned());
        self.organizations.insert(
            organization_uuid.clone(),
            Organization {
                uuid: organization_uuid.clone(),
                account_uuid: account_uuid.clone(),
                name,
                organization_type,
            },
        );
        AccountIds { account_uuid, organization_uuid }
    }

    /// Starts a new lineage, as a `/login` in a browser does.
    pub fn mint_login(&mut self, ids: &AccountIds) -> Result<MintedLogin, ControlError> {
        let account = self
            .accounts
            .get(&ids.account_uuid)
            .ok_or_else(|| ControlError::NotFound(format!("account {}", ids.account_uuid)))?
            .clone();
        let organization = self
            .organizations
            .get(&ids.organization_uuid)
            .filter(|o| o.account_uuid == ids.account_uuid)
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "organization {} of account {}",
                    ids.organization_uuid, ids.account_uuid
                ))
            })?
            .clone();
        let id = format!("lineage-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let scopes: Vec<String> = LOGIN_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        self.lineages.insert(
            id.clone(),
            Lineage {
                id: id.clone(),
                account_uuid: account.uuid.clone(),
                organization_uuid: organization.uuid.clone(),
                scopes: scopes.clone(),
                generation: 0,
                spent: 0,
                revoked: false,
                reuse_attempts: Vec::new(),
            },
        );
        self.lineage_order.push(id.clone());
        let (access_token, refresh_token, expires_at_ms) = self.issue(&id, 0);
        Ok(MintedLogin {
            lineage: id,
            access_token,
            refresh_token,
            expires_at: expires_at_ms,
            scopes,
            subscription_type: organization.subscription_type().map(str::to_owned),
            rate_limit_tier: organization.rate_limit_tier().to_owned(),
            account: MintedLoginAccount {
                uuid: account.uuid,
                email_address: account.email,
                display_name: account.display_name,
            },
            organization: MintedLoginOrganization {
                uuid: organization.uuid.clone(),
                name: organization.name.clone(),
                organization_type: organization.organization_type.clone(),
                billing_type: organization.billing_type().to_owned(),
            },
        })
    }

    /// Spends `refresh_token` if it is the newest of a live lineage. A spent token is recorded
    /// as a reuse and, under `revokeLineageOnReuse`, takes its whole lineage down with it.
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<Rotation, RefreshRefusal> {
        let record = self.refresh_tokens.get(refresh_token).ok_or(RefreshRefusal::Unknown)?;
        let generation = record.generation;
        let lineage_id = record.lineage.clone();
        let revoke_on_reuse = self.settings.revoke_lineage_on_reuse;
        let lineage = self.lineages.get_mut(&lineage_id).ok_or(RefreshRefusal::Unknown)?;
        if generation < lineage.generation {
            lineage.reuse_attempts.push(ReuseAttempt {
                at: now_ms(),
                generation,
                current_generation: lineage.generation,
                fingerprint: Secret::new(refresh_token).fingerprint(),
            });
            if revoke_on_reuse {
                lineage.revoked = true;
            }
            return Err(RefreshRefusal::Spent);
        }
        if lineage.revoked {
            return Err(RefreshRefusal::Revoked);
        }
        if let Some(scope) = scope {
            lineage.scopes = scope.split_whitespace().map(str::to_owned).collect();
        }
        lineage.generation += 1;
        lineage.spent += 1;
        let next = lineage.generation;
        let scope = lineage.scopes.join(" ");
        let account_uuid = lineage.account_uuid.clone();
        let organization_uuid = lineage.organization_uuid.clone();
        let (access_token, refresh_token, _) = self.issue(&lineage_id, next);
        let email = self.accounts.get(&account_uuid).map(|a| a.email.clone()).unwrap_or_default();
        Ok(Rotation {
            access_token,
            refresh_token,
            expires_in: self.settings.access_token_lifetime_secs,
            scope,
            account_uuid,
            email,
            organization_uuid,
        })
    }

    /// Revokes the lineage of `token` (refresh or access); an unknown token is not an error,
    /// as RFC 7009 asks.
    pub fn revoke_token(&mut self, token: &str) {
        let lineage = self
            .refresh_tokens
            .get(token)
            .map(|r| r.lineage.clone())
            .or_else(|| self.access_tokens.get(token).map(|r| r.lineage.clone()));
        if let Some(lineage) = lineage.and_then(|id| self.lineages.get_mut(&id)) {
            lineage.revoked = true;
        }
    }

    pub fn revoke_lineage(&mut self, id: &str) -> Result<(), ControlError> {
        let lineage = self
            .lineages
            .get_mut(id)
            .ok_or_else(|| ControlError::NotFound(format!("lineage {id}")))?;
        lineage.revoked = true;
        Ok(())
    }

    /// The owner of a working access token, or `None` when the token is dead or unknown.
    pub fn bearer(&self, access_token: &str) -> Option<Bearer> {
        if self.access_state(access_token).0 != TokenState::Live {
            return None;
        }
        let record = self.access_tokens.get(access_token)?;
        let lineage = self.lineages.get(&record.lineage)?;
        Some(Bearer {
            account: self.accounts.get(&lineage.account_uuid)?.clone(),
            organization: self.organizations.get(&lineage.organization_uuid)?.clone(),
        })
    }

    /// The account's memberships, for the older account endpoint.
    pub fn organizations_of(&self, account_uuid: &str) -> Vec<Organization> {
        self.organizations.values().filter(|o| o.account_uuid == account_uuid).cloned().collect()
    }

    pub fn set_usage(
        &mut self,
        account_uuid: &str,
        values: UsageValues,
    ) -> Result<(), ControlError> {
        if !self.accounts.contains_key(account_uuid) {
            return Err(ControlError::NotFound(format!("account {account_uuid}")));
        }
        self.usage.insert(account_uuid.to_owned(), values);
        Ok(())
    }

    pub fn usage_of(&self, account_uuid: &str) -> UsageValues {
        self.usage.get(account_uuid).cloned().unwrap_or_default()
    }

    /// Counts one usage call against `access_token`, or refuses it past the per-token rate.
    pub fn take_usage_call(&mut self, access_token: &str) -> Result<(), RateLimited> {
        let limit = self.settings.usage_rate_limit_per_token as usize;
        let now = Instant::now();
        let calls = self.usage_calls.entry(access_token.to_owned()).or_default();
        while calls.front().is_some_and(|t| now.duration_since(*t) >= USAGE_RATE_WINDOW) {
            calls.pop_front();
        }
        if calls.len() >= limit {
            let oldest = calls.front().copied().unwrap_or(now);
            let wait = USAGE_RATE_WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(RateLimited { retry_after_secs: wait.as_secs().max(1) });
        }
        calls.push_back(now);
        Ok(())
    }

    pub fn set_fault(&mut self, endpoint: Endpoint, fault: Fault) {
        self.faults.insert(endpoint, fault);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Counts a request to `endpoint` and hands out the fault that applies to it, if any,
    /// using up one of its `times`.
    pub fn begin_request(&mut self, endpoint: Endpoint) -> Option<Fault> {
        match endpoint {
            Endpoint::Token => self.requests.token += 1,
            Endpoint::Profile => self.requests.profile += 1,
            Endpoint::Account => self.requests.account += 1,
            Endpoint::Usage => self.requests.usage += 1,
        }
        let fault = self.faults.get_mut(&endpoint)?;
        let applied = fault.clone();
        match &mut fault.times {
            Some(0) => {
                self.faults.remove(&endpoint);
                return None;
            }
            Some(1) => {
                self.faults.remove(&endpoint);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(applied)
    }

    pub fn count_revoke_request(&mut self) {
        self.requests.revoke += 1;
    }

    pub fn report(&self) -> Report {
        let lineages: Vec<LineageReport> = self
            .lineage_order
            .iter()
            .filter_map(|id| self.lineages.get(id))
            .map(|l| LineageReport {
                lineage: l.id.clone(),
                account_uuid: l.account_uuid.clone(),
                organization_uuid: l.organization_uuid.clone(),
                issued: l.generation + 1,
                spent: l.spent,
                reuses: l.reuse_attempts.len() as u32,
                revoked: l.revoked,
                reuse_attempts: l.reuse_attempts.clone(),
            })
            .collect();
        let reuses = lineages.iter().map(|l| l.reuses).sum();
        Report { lineages, reuses, requests: self.requests.clone() }
    }

    /// What the service thinks of `token`, without spending it.
    pub fn inspect(&self, token: &str) -> TokenStatus {
        if let Some(record) = self.refresh_tokens.get(token) {
            let lineage = self.lineages.get(&record.lineage);
            let state = match lineage {
                Some(l) if record.generation < l.generation => TokenState::Spent,
                Some(l) if l.revoked => TokenState::Revoked,
                Some(_) => TokenState::Live,
                None => TokenState::Unknown,
            };
            return TokenStatus {
                kind: Some("refresh".to_owned()),
                lineage: Some(record.lineage.clone()),
                generation: Some(record.generation),
                state,
            };
        }
        let (state, record) = self.access_state(token);
        TokenStatus {
            kind: record.map(|_| "access".to_owned()),
            lineage: record.map(|r| r.lineage.clone()),
            generation: record.map(|r| r.generation),
            state,
        }
    }

    fn access_state(&self, token: &str) -> (TokenState, Option<&AccessRecord>) {
        let Some(record) = self.access_tokens.get(token) else {
            return (TokenState::Unknown, None);
        };
        let state = match self.lineages.get(&record.lineage) {
            None => TokenState::Unknown,
            Some(l) if l.revoked => TokenState::Revoked,
            Some(l) if record.generation < l.generation => TokenState::Superseded,
            Some(_) if now_ms() >= record.expires_at_ms => TokenState::Expired,
            Some(_) => TokenState::Live,
        };
        (state, Some(record))
    }

    /// Issues the access and refresh tokens of one generation of a lineage.
    fn issue(&mut self, lineage: &str, generation: u32) -> (Secret, Secret, i64) {
        let lifetime_ms = (self.settings.access_token_lifetime_secs as i64).saturating_mul(1000);
        let expires_at_ms = now_ms().saturating_add(lifetime_ms);
        let access = loop {
            let candidate = random_token("sk-ant-oat01-");
            if !self.access_tokens.contains_key(&candidate) {
                break candidate;
            }
        };
        let refresh = loop {
            let candidate = random_token("sk-ant-ort01-");
            if !self.refresh_tokens.contains_key(&candidate) {
                break candidate;
            }
        };
        self.access_tokens.insert(
            access.clone(),
            AccessRecord { lineage: lineage.to_owned(), generation, expires_at_ms },
        );
        self.refresh_tokens
            .insert(refresh.clone(), RefreshRecord { lineage: lineage.to_owned(), generation });
        (Secret::new(access), Secret::new(refresh), expires_at_ms)
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A token with Anthropic's prefix and 64 random characters of the URL-safe base64 alphabet.
fn random_token(prefix: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 64];
    rand::fill(&mut bytes);
    let mut token = String::with_capacity(prefix.len() + bytes.len());
    token.push_str(prefix);
    // 64 divides 256, so taking each byte modulo 64 keeps every character equally likely.
    token.extend(bytes.iter().map(|b| ALPHABET[(*b % 64) as usize] as char));
    token
}

/// A random version 4 UUID in its usual text form.
pub fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_with_login() -> (Model, MintedLogin) {
        let mut model = Model::default();
        let ids = model.create_account(NewAccount::new("a@example.com"));
        let login = model.mint_login(&ids).unwrap();
        (model, login)
    }

    #[test]
    fn a_refresh_token_is_accepted_once() {
        let (mut model, login) = model_with_login();
        let r1 = login.refresh_token.expose().to_owned();
        let rotation = model.refresh(&r1, None).unwrap();
        assert_ne!(rotation.refresh_token.expose(), r1);
        assert_eq!(model.refresh(&r1, None).unwrap_err(), RefreshRefusal::Spent);
        assert_eq!(model.report().reuses, 1);
        assert!(model.refresh(rotation.refresh_token.expose(), None).is_ok());
    }

    #[test]
    fn revoked_lineage_refuses_its_newest_token_without_counting_a_reuse() {
        let (mut model, login) = model_with_login();
        model.revoke_lineage(&login.lineage).unwrap();
        let refusal = model.refresh(login.refresh_token.expose(), None).unwrap_err();
        assert_eq!(refusal, RefreshRefusal::Revoked);
        assert_eq!(model.report().reuses, 0);
    }

    #[test]
    fn fault_times_runs_out() {
        let mut model = Model::default();
        model.set_fault(
            Endpoint::Usage,
            Fault { status: Some(500), times: Some(2), ..Fault::default() },
        );
        assert!(model.begin_request(Endpoint::Usage).is_some());
        assert!(model.begin_request(Endpoint::Usage).is_some());
        assert!(model.begin_request(Endpoint::Usage).is_none());
        assert_eq!(model.report().requests.usage, 3);
    }

    #[test]
    fn uuids_and_tokens_have_their_shapes() {
        let uuid = random_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        let token = random_token("sk-ant-ort01-");
        assert_eq!(token.len(), "sk-ant-ort01-".len() + 64);
        assert_ne!(token, random_token("sk-ant-ort01-"));
    }
}
