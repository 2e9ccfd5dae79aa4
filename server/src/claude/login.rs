//! The login Claude Code stores under `claudeAiOauth`, and the whole credential document
//! around it.
//!
//! The document holds more than the login (`mcpOAuth`, plugin secrets, overflow pointers).
//! Switchboard owns only `claudeAiOauth`, and only the fields it knows; everything else is
//! carried through unknown keys so that each write keeps it as it was.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;

/// Claude counts a token as expired this long before `expiresAt`.
pub const EXPIRY_MARGIN_MS: i64 = 5 * 60 * 1000;

/// The key of the login inside the credential document.
pub const LOGIN_KEY: &str = "claudeAiOauth";

/// One Claude Code login: the `claudeAiOauth` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthLogin {
    #[serde(default)]
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Secret,
    /// Epoch milliseconds; 0 in a login Claude blanked.
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_uuid: Option<String>,
    /// Every field Switchboard does not own, kept as it was read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OAuthLogin {
    /// Claude counts a login as present only when its access token is not empty. An entry
    /// without one is either a login Claude blanked after `invalid_grant` or one a `/login`
    /// is still writing: in neither case is there anything to keep.
    pub fn is_blank(&self) -> bool {
        self.access_token.is_empty() || self.refresh_token.is_empty()
    }

    /// Whether the access token counts as expired at `now_ms`, by Claude's own rule.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms + EXPIRY_MARGIN_MS >= self.expires_at
    }
}

/// The whole credential document: the login, if any, plus every other key untouched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialDoc {
    pub login: Option<OAuthLogin>,
    pub rest: Map<String, Value>,
}

impl CredentialDoc {
    /// Parses the document; a `claudeAiOauth` that is `null` reads as no login.
    pub fn parse(bytes: &[u8]) -> serde_json::Result<Self> {
        let mut rest: Map<String, Value> = serde_json::from_slice(bytes)?;
        let login = match rest.remove(LOGIN_KEY) {
            None | Some(Value::Null) => None,
            Some(value) => Some(serde_json::from_value(value)?),
        };
        Ok(CredentialDoc { login, rest })
    }

    /// Serializes the document with the login in place, other keys as they were read.
    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let mut map = self.rest.clone();
        if let Some(login) = &self.login {
            map.insert(LOGIN_KEY.to_owned(), serde_json::to_value(login)?);
        }
        serde_json::to_vec(&Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-a","refreshToken":"sk-ant-ort01-r",
        "expiresAt":1796350846681,"scopes":["user:inference","user:profile"],
        "subscriptionType":"max","rateLimitTier":"default_claude_max_20x","loginEnded":false},
        "mcpOAuth":{"server":{"token":"x"}}}"#;

    #[test]
    fn keeps_unknown_keys_inside_and_outside_the_login() {
        let doc = CredentialDoc::parse(DOC.as_bytes()).unwrap();
        let back: Value = serde_json::from_slice(&doc.to_bytes().unwrap()).unwrap();
        let original: Value = serde_json::from_str(DOC).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn blank_login_is_recognised() {
        let doc = CredentialDoc::parse(
            br#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0}}"#,
        )
        .unwrap();
        assert!(doc.login.unwrap().is_blank());
    }

    #[test]
    fn expiry_uses_claudes_five_minute_margin() {
        let doc = CredentialDoc::parse(DOC.as_bytes()).unwrap();
        let login = doc.login.unwrap();
        assert!(!login.is_expired(login.expires_at - EXPIRY_MARGIN_MS - 1));
        assert!(login.is_expired(login.expires_at - EXPIRY_MARGIN_MS));
    }
}
