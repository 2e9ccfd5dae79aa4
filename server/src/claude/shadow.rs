//! What makes Claude Code ignore its stored login: credentials handed to it through the
//! environment, or an `apiKeyHelper` in its settings. When one of these is present a switch
//! still changes the store, but not what that Claude process uses, and Switchboard must say so
//! rather than claim the switch took effect.

use std::fs;

use serde_json::Value;

use super::env::Environment;
use super::paths::ClaudePaths;

/// The variables that take precedence over the stored login, in the order they are reported.
pub const SHADOWING_VARS: [&str; 4] = [
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR",
];

/// The setting in `DIR/settings.json` that takes precedence over the stored login.
pub const API_KEY_HELPER: &str = "apiKeyHelper";

/// What makes Claude ignore the stored login: the four env vars of the contract (set and
/// non-empty) and an `apiKeyHelper` in DIR/settings.json. Names in that order.
///
/// A settings file that cannot be read or parsed shadows nothing: Claude itself would not
/// find a helper in it either.
pub fn shadowed_by(env: &Environment, paths: &ClaudePaths) -> Vec<String> {
    let mut names: Vec<String> = SHADOWING_VARS
        .iter()
        .filter(|var| env.get_non_empty(var).is_some())
        .map(|var| (*var).to_owned())
        .collect();
    if has_api_key_helper(paths) {
        names.push(API_KEY_HELPER.to_owned());
    }
    names
}

fn has_api_key_helper(paths: &ClaudePaths) -> bool {
    let settings = paths.config_dir.join("settings.json");
    let Ok(bytes) = fs::read(&settings) else { return false };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => value
            .get(API_KEY_HELPER)
            .and_then(Value::as_str)
            .is_some_and(|helper| !helper.trim().is_empty()),
        Err(_) => {
            tracing::debug!(file = %settings.display(), "settings are not valid json");
            false
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Environment, ClaudePaths) {
        let home = tempfile::tempdir().unwrap();
        let env = Environment::from_pairs([("HOME", home.path().to_str().unwrap())]);
        let paths = ClaudePaths::resolve(&env).unwrap();
        fs::create_dir_all(&paths.config_dir).unwrap();
        (home, env, paths)
    }

    #[test]
    fn nothing_set_shadows_nothing() {
        let (_home, env, paths) = setup();
        assert!(shadowed_by(&env, &paths).is_empty());
    }

    #[test]
    fn k15_environment_tokens_are_named_in_order() {
        let (_home, env, paths) = setup();
        let env = env
            .with("ANTHROPIC_AUTH_TOKEN", "t")
            .with("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-x")
            .with("ANTHROPIC_API_KEY", "");
        assert_eq!(shadowed_by(&env, &paths), ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"]);
        let env = env.with("CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR", "3");
        assert_eq!(
            shadowed_by(&env, &paths).last().unwrap(),
            "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR"
        );
    }

    #[test]
    fn an_api_key_helper_in_settings_shadows_the_login() {
        let (_home, env, paths) = setup();
        let settings = paths.config_dir.join("settings.json");
        fs::write(&settings, r#"{"apiKeyHelper": "~/bin/get-key.sh", "model": "opus"}"#).unwrap();
        let env = env.with("ANTHROPIC_API_KEY", "k");
        assert_eq!(shadowed_by(&env, &paths), ["ANTHROPIC_API_KEY", "apiKeyHelper"]);

        fs::write(&settings, r#"{"apiKeyHelper": "", "model": "opus"}"#).unwrap();
        assert_eq!(shadowed_by(&env, &paths), ["ANTHROPIC_API_KEY"]);
        fs::write(&settings, b"{not json").unwrap();
        assert_eq!(shadowed_by(&env, &paths), ["ANTHROPIC_API_KEY"]);
    }
}
