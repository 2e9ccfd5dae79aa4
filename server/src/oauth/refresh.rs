//! The refresh: spending a refresh token for the next access token (and usually the next
//! refresh token of the lineage), and sorting every failure by what it means for the token.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    CLIENT_ID, OAuthClient, REFRESH_SCOPES, Unanswered, describe_json_error, retry_after,
    unanswered,
};
use crate::claude::login::OAuthLogin;
use crate::secret::Secret;

/// The key newer Claude Code versions keep the refresh token's expiry under.
const REFRESH_EXPIRES_KEY: &str = "refreshTokenExpiresAt";

/// A successful refresh answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenGrant {
    pub access_token: Secret,
    /// The next refresh token of the lineage; `None` when the server kept the old one alive.
    pub refresh_token: Option<Secret>,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The scopes granted; empty when the answer named none.
    pub scopes: Vec<String>,
    pub account_uuid: Option<String>,
    pub email: Option<String>,
    pub organization_uuid: Option<String>,
    /// Seconds the refresh token lives, when the server says.
    pub refresh_token_expires_in: Option<u64>,
}

impl TokenGrant {
    /// The login that follows `previous` after this answer, as Claude Code would store it:
    /// the new tokens, `expiresAt = now + expires_in`, the old refresh token kept when no new
    /// one came back, the granted scopes (the old ones when none were named), the identity
    /// the answer names, and every other field carried over from `previous`.
    pub fn apply_to(&self, previous: &OAuthLogin, now_ms: i64) -> OAuthLogin {
        let mut next = previous.clone();
        next.access_token = self.access_token.clone();
        next.expires_at = now_ms.saturating_add(seconds_to_ms(self.expires_in));
        if let Some(refresh_token) = &self.refresh_token {
            next.refresh_token = refresh_token.clone();
            // The old refresh token's expiry says nothing about the new one.
            next.extra.remove(REFRESH_EXPIRES_KEY);
        }
        if let Some(lifetime) = self.refresh_token_expires_in {
            let at = now_ms.saturating_add(seconds_to_ms(lifetime));
            next.extra.insert(REFRESH_EXPIRES_KEY.to_owned(), at.into());
        }
        if !self.scopes.is_empty() {
            next.scopes = self.scopes.clone();
        }
        if let Some(account) = &self.account_uuid {
            next.account_uuid = Some(account.clone());
        }
        if let Some(organization) = &self.organization_uuid {
            next.organization_uuid = Some(organization.clone());
        }
        next
    }
}

fn seconds_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX).saturating_mul(1000)
}

/// Why a refresh failed, sorted by what it means for the refresh token that was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The token is spent, revoked or unknown: only a new login helps.
    #[error("the refresh token was refused (invalid_grant); log in again")]
    InvalidGrant,
    /// Transient; the token was not spent.
    #[error("the token endpoint is rate limiting refreshes{}", after(retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Transient and says nothing about the token.
    #[error("the token endpoint failed with status {status}")]
    Server { status: u16 },
    /// The request never reached the server: retrying with the same token is safe.
    #[error("cannot reach the token endpoint: {0}")]
    Network(String),
    /// The request went out but its answer was lost: the token may be spent.
    #[error("the refresh was sent but its answer was lost, so the refresh token may be spent: {0}")]
    Ambiguous(String),
    /// Any other refusal.
    #[error("the token endpoint refused the refresh with status {status}{}", code(error))]
    Rejected { status: u16, error: Option<String> },
    /// The server said yes but the answer is not a token answer: the token is spent.
    #[error("the token endpoint's success answer is not a token answer: {0}")]
    Malformed(String),
}

impl RefreshError {
    /// Whether the refresh token may no longer be valid after this failure: the server
    /// refused it, or may have accepted it without Switchboard learning the next one.
    pub fn may_have_spent_token(&self) -> bool {
        matches!(
            self,
            RefreshError::InvalidGrant | RefreshError::Ambiguous(_) | RefreshError::Malformed(_)
        )
    }

    /// Whether trying again later with the same refresh token is safe and may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RefreshError::RateLimited { .. }
                | RefreshError::Server { .. }
                | RefreshError::Network(_)
        )
    }
}

fn after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry in {} s", d.as_secs()),
        None => String::new(),
    }
}

fn code(error: &Option<String>) -> String {
    error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
}

#[derive(Serialize)]
struct RefreshBody<'a> {
    grant_type: &'static str,
    refresh_token: &'a str,
    client_id: &'static str,
    scope: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_in: u64,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    account: Option<AnswerAccount>,
    #[serde(default)]
    organization: Option<AnswerOrganization>,
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct AnswerAccount {
    uuid: Option<String>,
    email_address: Option<String>,
}

#[derive(Deserialize)]
struct AnswerOrganization {
    uuid: Option<String>,
}

/// The scope a refresh asks for: Claude Code's full list, unless the stored scopes lack
/// `user:inference`, in which case they are sent unchanged (a login made for something
/// narrower stays narrow). Stored scopes that are empty say nothing about the login, as when a
/// peer wrote `null`, so they get the full list.
pub fn refresh_scope(stored_scopes: &[String]) -> String {
    if stored_scopes.is_empty() || stored_scopes.iter().any(|s| s == "user:inference") {
        REFRESH_SCOPES.join(" ")
    } else {
        stored_scopes.join(" ")
    }
}

impl OAuthClient {
    /// Spends `refresh_token` for the next tokens of its lineage.
    ///
    /// The body is JSON `{grant_type, refresh_token, client_id, scope}` with `Content-Type:
    /// application/json` and `Accept: application/json, text/plain, */*`, and nothing else
    /// that identifies a caller, as Claude Code sends it. Redirects are not followed: a
    /// refresh token goes to the configured URL only.
    #[tracing::instrument(skip_all, fields(refresh = %refresh_token.fingerprint()))]
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        stored_scopes: &[String],
    ) -> Result<TokenGrant, RefreshError> {
        let body = RefreshBody {
            grant_type: "refresh_token",
            refresh_token: refresh_token.expose(),
            client_id: CLIENT_ID,
            scope: refresh_scope(stored_scopes),
        };
        let sent = self
            .token_http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json, text/plain, */*")
            .json(&body)
            .timeout(self.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let error = match unanswered(&e) {
                    Unanswered::NotSent(m) => RefreshError::Network(m),
                    Unanswered::Lost(m) => RefreshError::Ambiguous(m),
                };
                tracing::warn!(%error, "refresh failed without an answer");
                return Err(error);
            }
        };
        let status = response.status();
        let wait = retry_after(response.headers());
        let result = if status.is_success() {
            match response.bytes().await {
                Ok(bytes) => parse_grant(&bytes),
                // The server accepted the token and the next one was lost on the way.
                Err(e) => Err(RefreshError::Ambiguous(super::error_chain(&e))),
            }
        } else {
            // A refusal's body only refines the refusal; losing it changes nothing.
            let bytes = response.bytes().await.unwrap_or_default();
            Err(classify_refusal(status, wait, &bytes))
        };
        match &result {
            Ok(grant) => tracing::info!(
                access = %grant.access_token.fingerprint(),
                next_refresh = %grant.refresh_token.as_ref().map_or("unchanged".to_owned(), Secret::fingerprint),
                expires_in = grant.expires_in,
                "refreshed"
            ),
            Err(error) => tracing::warn!(%error, status = status.as_u16(), "refresh refused"),
        }
        result
    }
}

fn parse_grant(bytes: &[u8]) -> Result<TokenGrant, RefreshError> {
    let answer: TokenAnswer = serde_json::from_slice(bytes)
        .map_err(|e| RefreshError::Malformed(describe_json_error(&e)))?;
    if answer.access_token.is_empty() {
        return Err(RefreshError::Malformed("the access token is empty".to_owned()));
    }
    let (account_uuid, email) = match answer.account {
        Some(a) => (a.uuid, a.email_address),
        None => (None, None),
    };
    Ok(TokenGrant {
        access_token: Secret::new(answer.access_token),
        refresh_token: answer.refresh_token.filter(|r| !r.is_empty()).map(Secret::new),
        expires_in: answer.expires_in,
        scopes: answer
            .scope
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        account_uuid,
        email,
        organization_uuid: answer.organization.and_then(|o| o.uuid),
        refresh_token_expires_in: answer.refresh_token_expires_in,
    })
}

fn classify_refusal(status: StatusCode, wait: Option<Duration>, body: &[u8]) -> RefreshError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return RefreshError::RateLimited { retry_after: wait };
    }
    if status.is_server_error() {
        return RefreshError::Server { status: status.as_u16() };
    }
    let error = error_code(body);
    if status.is_client_error() && error.as_deref() == Some("invalid_grant") {
        return RefreshError::InvalidGrant;
    }
    RefreshError::Rejected { status: status.as_u16(), error }
}

/// The OAuth `error` code of a refusal (`{"error": "invalid_grant"}`), or the `type` of an
/// API-style error object. Only short codes of lower-case letters, digits and `_` are kept,
/// as OAuth error codes are: anything else might echo what was sent, and every token
/// contains a `-`.
fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = match &value["error"] {
        Value::String(code) => code.as_str(),
        Value::Object(inner) => inner.get("type")?.as_str()?,
        _ => return None,
    };
    let code_like = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    code_like.then(|| code.to_owned())
}
