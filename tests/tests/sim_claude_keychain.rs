//! The simulated Claude Code keeping its login in a macOS Keychain (played by `fake-security`):
//! it reaches the item only through `security`, as the contract says Claude does, names the
//! account on every call, keeps every key it does not own, and turns to the file only when the
//! Keychain fails it.

use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_tests::fake::TokenState;
use switchboard_tests::harness::KeychainScratch;
use switchboard_tests::sim_claude::{Mode, RefreshOutcome, SERVICE_PREFIX, SimClaude};

const MCP_ITEM: &[u8] = br#"{"mcpOAuth":{"server":{"accessToken":"mcp-secret"}}}"#;

/// A world with one account, logged in through the simulated Claude's Keychain mode.
async fn logged_in(world: &KeychainScratch) -> SimClaude {
    let ids = world.account("ada@example.com", "Example Corp").ids;
    let claude = world.claude();
    claude.login(&world.fake.url(), &ids.account_uuid, &ids.organization_uuid).await.unwrap();
    claude
}

fn item_of(world: &KeychainScratch, service: &str) -> Value {
    let bytes = world.keychain.get(service, &world.user).expect("the item");
    serde_json::from_slice(&bytes).expect("the item holds JSON")
}

#[tokio::test]
async fn login_and_refresh_go_through_security_and_never_through_its_arguments() {
    let world = KeychainScratch::new().await;
    let claude = logged_in(&world).await;
    let first = world.live_refresh_token();
    assert!(first.starts_with("sk-ant-ort01-"), "the login is in the item");
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let second = world.live_refresh_token();
    assert_ne!(second, first);
    assert_eq!(world.fake.control().inspect_token(&second).state, TokenState::Live);
    assert!(!world.credentials_path().exists(), "nothing was written to the file");

    let argv = world.security_argv();
    let reads: Vec<_> = argv.iter().filter(|a| a[0] == "find-generic-password").collect();
    assert!(!reads.is_empty(), "the login was read from the Keychain");
    for read in reads {
        assert_eq!(read, &["find-generic-password", "-a", "ada", "-w", "-s", SERVICE_PREFIX]);
    }
    let writes = world
        .keychain
        .records()
        .iter()
        .filter(|r| r["interactive"] == "add-generic-password")
        .count();
    assert_eq!(writes, 2, "the login and the refresh each wrote one security -i line");
    assert!(argv.iter().all(|a| a[0] != "add-generic-password"), "no write in the arguments");
    world.assert_no_token_in_argv(&[first, second]);
}

#[tokio::test]
async fn keys_it_does_not_own_survive_and_the_mcp_item_is_left_alone() {
    let world = KeychainScratch::new().await;
    // Another item of the same service, first in the Keychain: a search without the account
    // would find it instead of Claude's.
    world.keychain.put(SERVICE_PREFIX, "unknown", MCP_ITEM);
    world.write_item(&json!({"mcpOAuth": {"server": {"accessToken": "kept"}}, "extra": [1, 2]}));
    let claude = logged_in(&world).await;
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(claude.refresh(Mode::V2_1_112).await.unwrap(), RefreshOutcome::Refreshed);

    let item = item_of(&world, SERVICE_PREFIX);
    assert_eq!(item["mcpOAuth"]["server"]["accessToken"], "kept");
    assert_eq!(item["extra"], json!([1, 2]));
    assert!(item["claudeAiOauth"]["refreshToken"].is_string());
    assert_eq!(world.keychain.get(SERVICE_PREFIX, "unknown").unwrap(), MCP_ITEM);
}

#[tokio::test]
async fn a_refused_login_is_blanked_in_the_item() {
    let world = KeychainScratch::new().await;
    let claude = logged_in(&world).await;
    let before = world.read_item().unwrap();
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    // Someone puts the spent login back; Claude's next refresh is refused and blanks it.
    world.write_item(&before);
    let outcome = claude.refresh(Mode::V2_1_332).await.unwrap();
    assert_eq!(outcome, RefreshOutcome::InvalidGrant { blanked: true });
    let login = world.live_login();
    assert_eq!(login["accessToken"], "");
    assert_eq!(login["refreshToken"], "");
    assert_eq!(login["expiresAt"], 0);
    assert_eq!(login["scopes"], before["claudeAiOauth"]["scopes"], "other fields are kept");
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::NoLogin);
}

#[tokio::test]
async fn a_locked_keychain_sends_claude_to_the_file() {
    let world = KeychainScratch::new().await;
    world.keychain.set_locked(true);
    let claude = logged_in(&world).await;
    let credentials: Value =
        serde_json::from_slice(&std::fs::read(world.credentials_path()).unwrap()).unwrap();
    let first = credentials["claudeAiOauth"]["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let stored = claude.stored_login().unwrap().unwrap();
    assert_ne!(stored.refresh_token.expose(), first, "the refresh was saved in the file");

    // Unlocked and holding a login, the Keychain wins over the file again.
    world.keychain.set_locked(false);
    world.write_item(&json!({"claudeAiOauth": {"accessToken": "", "refreshToken": ""}}));
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::NoLogin);
}

#[tokio::test]
async fn a_config_folder_names_its_own_item() {
    let world = KeychainScratch::new().await;
    let config_dir = world.home.join("work-claude");
    let raw = config_dir.display().to_string();
    let claude = SimClaude::new(&world.home, Some(PathBuf::from(&raw)), world.fake.token_url())
        .with_keychain(&world.security, Some(&world.user));
    let service = format!("{SERVICE_PREFIX}-{}", &hex::encode(Sha256::digest(raw.as_bytes()))[..8]);
    assert_eq!(claude.keychain().unwrap().service(), service);

    let ids = world.account("ada@example.com", "Example Corp").ids;
    claude.login(&world.fake.url(), &ids.account_uuid, &ids.organization_uuid).await.unwrap();
    assert!(item_of(&world, &service)["claudeAiOauth"]["accessToken"].is_string());
    assert!(world.read_item().is_none(), "the default item is untouched");
    assert_eq!(claude.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
}

#[tokio::test]
async fn a_user_that_is_not_a_plain_name_gets_the_fallback_account() {
    let world = KeychainScratch::new().await;
    let claude = world.scratch.claude().with_keychain(&world.security, Some("ada lovelace"));
    assert_eq!(claude.keychain().unwrap().account(), "claude-code-user");
    let ids = world.account("ada@example.com", "Example Corp").ids;
    claude.login(&world.fake.url(), &ids.account_uuid, &ids.organization_uuid).await.unwrap();
    assert!(world.keychain.get(SERVICE_PREFIX, "claude-code-user").is_some());
    assert!(world.read_item().is_none(), "nothing under $USER's item");
}
