//! The one type that holds a token, so that no token can reach a log line, an error message
//! or a protocol answer by accident.
//!
//! [`Secret`] prints as its fingerprint in `Debug` and `Display`, and serializes only where a
//! store format needs the real value (the live store and the vault), which is why serializing
//! is explicit: code must call [`Secret::expose`]. A fingerprint is the first 8 hex digits of
//! the SHA-256 of the token: enough to tell two tokens apart in a log, useless to an attacker.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A token (access or refresh) that must never be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw token, for the few places that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, stable, one-way name for this token, safe to log and to show.
    pub fn fingerprint(&self) -> String {
        if self.0.is_empty() {
            return "empty".to_owned();
        }
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..4])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

// Stores hold the raw value: serde is how the live store and the vault write it. Protocol
// types never contain a `Secret`, which is what keeps tokens out of answers.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A JSON null reads as an empty token: Claude writes empty strings, peers write null.
        Option::<String>::deserialize(deserializer).map(|v| Secret(v.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_show_only_the_fingerprint() {
        let token = Secret::new("sk-ant-ort01-very-secret");
        assert!(!format!("{token:?}").contains("very-secret"));
        assert!(!format!("{token}").contains("very-secret"));
        assert_eq!(token.fingerprint().len(), 8);
    }

    #[test]
    fn fingerprints_differ_between_tokens_and_are_stable() {
        let a = Secret::new("sk-ant-ort01-a");
        assert_eq!(a.fingerprint(), Secret::new("sk-ant-ort01-a").fingerprint());
        assert_ne!(a.fingerprint(), Secret::new("sk-ant-ort01-b").fingerprint());
        assert_eq!(Secret::default().fingerprint(), "empty");
    }

    #[test]
    fn null_reads_as_empty() {
        let s: Secret = serde_json::from_str("null").unwrap();
        assert!(s.is_empty());
    }
}
