//! The process environment as a plain value.
//!
//! Everything that depends on Claude's environment variables takes an [`Environment`] instead
//! of reading the process's own, so tests can describe any setup without mutating global state
//! and the service can resolve paths for an environment other than its own.

use std::collections::BTreeMap;
use std::fmt;

/// A snapshot of environment variables.
///
/// `Debug` lists only the names: values such as `ANTHROPIC_API_KEY` are secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The current process's environment. Variables whose name or value is not valid Unicode
    /// are left out: none of the variables Claude reads can be spelled that way usefully.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Environment { vars }
    }

    /// An environment holding exactly the given variables.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Environment { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The variable's value, which may be empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The variable's value when it is set and not empty. Claude treats an empty value of most
    /// variables as if it were unset.
    pub fn get_non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// A copy with one variable set, for building variations in tests and callers.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(key.into(), value.into());
        self
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment").field("names", &self.vars.keys().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_and_tells_empty_from_unset() {
        let env = Environment::from_pairs([("HOME", "/home/u"), ("EMPTY", "")]);
        assert_eq!(env.get("HOME"), Some("/home/u"));
        assert_eq!(env.get("EMPTY"), Some(""));
        assert_eq!(env.get_non_empty("EMPTY"), None);
        assert_eq!(env.get("MISSING"), None);
    }

    #[test]
    fn debug_shows_names_not_values() {
        let env = Environment::from_pairs([("ANTHROPIC_API_KEY", "sk-ant-api-secret")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("ANTHROPIC_API_KEY"));
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn process_environment_is_captured() {
        // PATH is set in every environment that can run the test suite.
        let env = Environment::from_process();
        assert_eq!(env.get("PATH").map(str::to_owned), std::env::var("PATH").ok());
    }
}
