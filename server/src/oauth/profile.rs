//! The profile endpoint: who an access token belongs to, and whether it is still accepted.
//!
//! This is how Switchboard learns an account's identity (account UUID plus organization UUID)
//! without trusting `oauthAccount`, and how it validates a login before installing it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;

use super::{OAuthClient, describe_json_error, retry_after};
use crate::secret::Secret;

/// Who an access token belongs to, as the profile endpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub account_uuid: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub full_name: Option<String>,
    pub organization_uuid: String,
    pub organization_name: Option<String>,
    pub organization_type: Option<String>,
    pub rate_limit_tier: Option<String>,
    pub billing_type: Option<String>,
}

impl Profile {
    /// The subscription Claude Code records for this organization type: `max`, `pro`,
    /// `team` or `enterprise`; `None` for a type it has no subscription name for.
    pub fn subscription_type(&self) -> Option<String> {
        let name = match self.organization_type.as_deref()? {
            "claude_max" => "max",
            "claude_pro" => "pro",
            "claude_team" => "team",
            "claude_enterprise" => "enterprise",
            _ => return None,
        };
        Some(name.to_owned())
    }
}

/// Why the profile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// 401 or 403: the access token is expired, revoked or superseded.
    #[error("the access token was refused by the profile endpoint (status {status})")]
    Unauthorized { status: u16 },
    #[error("the profile endpoint is rate limiting{}", after(retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("the profile endpoint failed with status {status}")]
    Server { status: u16 },
    /// Any other refusal, such as a 404 from a wrong API base.
    #[error("the profile endpoint answered with status {status}")]
    Rejected { status: u16 },
    /// No answer. Reading a profile spends nothing, so whether the request left is moot.
    #[error("cannot reach the profile endpoint: {0}")]
    Network(String),
    #[error("the profile endpoint's answer is not a profile: {0}")]
    Malformed(String),
}

fn after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry in {} s", d.as_secs()),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct ProfileAnswer {
    account: AnswerAccount,
    organization: AnswerOrganization,
}

#[derive(Deserialize)]
struct AnswerAccount {
    uuid: String,
    email: Option<String>,
    display_name: Option<String>,
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct AnswerOrganization {
    uuid: String,
    name: Option<String>,
    organization_type: Option<String>,
    rate_limit_tier: Option<String>,
    billing_type: Option<String>,
}

impl OAuthClient {
    /// Asks the profile endpoint who `access_token` belongs to.
    #[tracing::instrument(skip_all, fields(access = %access_token.fingerprint()))]
    pub async fn profile(&self, access_token: &Secret) -> Result<Profile, ProfileError> {
        let sent = self
            .api_http
            .get(self.profile_url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", access_token.expose()))
            .header(ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await;
        let response = sent.map_err(|e| ProfileError::Network(super::error_chain(&e)))?;
        let status = response.status();
        let result = if status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ProfileError::Network(super::error_chain(&e)))?;
            parse_profile(&bytes)
        } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            Err(ProfileError::Unauthorized { status: status.as_u16() })
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            Err(ProfileError::RateLimited { retry_after: retry_after(response.headers()) })
        } else if status.is_server_error() {
            Err(ProfileError::Server { status: status.as_u16() })
        } else {
            Err(ProfileError::Rejected { status: status.as_u16() })
        };
        match &result {
            Ok(profile) => tracing::debug!(
                account = %profile.account_uuid,
                organization = %profile.organization_uuid,
                "profile read"
            ),
            Err(error) => tracing::warn!(%error, "profile not read"),
        }
        result
    }
}

fn parse_profile(bytes: &[u8]) -> Result<Profile, ProfileError> {
    let answer: ProfileAnswer = serde_json::from_slice(bytes)
        .map_err(|e| ProfileError::Malformed(describe_json_error(&e)))?;
    if answer.account.uuid.is_empty() || answer.organization.uuid.is_empty() {
        return Err(ProfileError::Malformed("the account or organization uuid is empty".into()));
    }
    Ok(Profile {
        account_uuid: answer.account.uuid,
        email: answer.account.email,
        display_name: answer.account.display_name,
        full_name: answer.account.full_name,
        organization_uuid: answer.organization.uuid,
        organization_name: answer.organization.name,
        organization_type: answer.organization.organization_type,
        rate_limit_tier: answer.organization.rate_limit_tier,
        billing_type: answer.organization.billing_type,
    })
}
