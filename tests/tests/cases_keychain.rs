//! The cases of `cases.md` with Claude Code's login in a macOS Keychain, played by
//! `fake-security`: the Keychain-only cases (K08-K11, K15, K17) and the switch and sync flows
//! (K03, K04, K06, K14) that must hold on the Keychain store as they do on the file. Test names
//! carry the case ids.

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::protocol::{AccountState, ErrorKind, StatusParams};
use switchboard::service::{Service, ServiceError};
use switchboard_tests::fake::SettingsUpdate;
use switchboard_tests::harness::{Framing, KeychainScratch, TestAccount};

const PREFIX: &str = "Claude Code-credentials";

/// A Keychain world with `work` and `home` added, Claude Code left on `home`.
async fn two_accounts(world: &KeychainScratch) -> (Arc<Service>, TestAccount, TestAccount) {
    let work = world.account("ada@example.com", "Example Corp");
    let home = world.account("ada@home.example", "Ada's Individual Org");
    let service = world.service();
    world.login(&work);
    service.add_account("work").await.expect("add work");
    world.login(&home);
    service.add_account("home").await.expect("add home");
    (service, work, home)
}

fn kind(error: &ServiceError) -> ErrorKind {
    error.kind().expect("an application error")
}

fn snapshot_bytes(world: &KeychainScratch, account: &TestAccount) -> Vec<u8> {
    let path = world
        .vault
        .join("snapshots")
        .join(format!("{}.{}.json", account.ids.account_uuid, account.ids.organization_uuid));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn stdout_json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Every access and refresh token the world has seen: the live item's and every snapshot's.
fn tokens_of(world: &KeychainScratch) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut collect = |login: &Value| {
        for key in ["accessToken", "refreshToken"] {
            if let Some(token) = login[key].as_str().filter(|t| !t.is_empty()) {
                tokens.push(token.to_owned());
            }
        }
    };
    collect(&world.live_login());
    if let Ok(entries) = std::fs::read_dir(world.vault.join("snapshots")) {
        for entry in entries {
            collect(&world.read_json(&entry.unwrap().path()).unwrap()["login"]);
        }
    }
    tokens
}

fn hashed_service(raw: &str) -> String {
    format!("{PREFIX}-{}", &hex::encode(Sha256::digest(raw.as_bytes()))[..8])
}

#[tokio::test]
async fn keychain_add_use_list_and_status_through_the_cli() {
    let world = KeychainScratch::new().await;
    let work = world.account("ada@example.com", "Example Corp");
    let home = world.account("ada@home.example", "Ada's Individual Org");
    world.login(&work);
    assert!(world.cli(&["add", "work"]).await.status.success());
    world.login(&home);
    let added = world.cli(&["--json", "add", "home"]).await;
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert_eq!(stdout_json(&added)["email"], "ada@home.example");

    let list = stdout_json(&world.cli(&["--json", "list"]).await);
    assert_eq!(list["active"], "home");
    assert_eq!(list["accounts"].as_array().unwrap().len(), 2);

    let used = world.cli(&["--json", "use", "work"]).await;
    assert!(used.status.success(), "{}", String::from_utf8_lossy(&used.stderr));
    let used = stdout_json(&used);
    assert_eq!(used["active"]["alias"], "work");
    assert_eq!(used["sessions"]["follow"], "within30Seconds");
    assert_eq!(world.live_login()["accountUuid"], work.ids.account_uuid.as_str());
    assert_eq!(world.oauth_account()["emailAddress"], "ada@example.com");
    assert!(!world.credentials_path().exists(), "nothing was written to the file");

    let status = stdout_json(&world.cli(&["--json", "status"]).await);
    assert_eq!(status["account"]["alias"], "work");
    assert_eq!(status["store"], json!({"kind": "keychain", "service": PREFIX, "account": "ada"}));
    assert_eq!(status["storeWarnings"], json!([]));

    // Back again with `-`, and every token stayed out of every argv.
    assert!(world.cli(&["use", "-"]).await.status.success());
    assert_eq!(world.live_login()["accountUuid"], home.ids.account_uuid.as_str());
    world.assert_no_token_in_argv(&tokens_of(&world));
    assert_eq!(world.report().reuses, 0);
}

#[tokio::test]
async fn keychain_status_over_the_sidecar_names_the_item() {
    let world = KeychainScratch::new().await;
    let (_service, _work, _home) = two_accounts(&world).await;
    let mut sidecar = world.sidecar(Framing::Ndjson).await;
    let answer = sidecar.request("account/status", json!({})).await;
    assert_eq!(answer["result"]["store"]["kind"], "keychain", "{answer}");
    assert_eq!(answer["result"]["account"]["alias"], "home");
    let answer = sidecar.request("account/use", json!({"alias": "work"})).await;
    assert_eq!(answer["result"]["active"]["alias"], "work", "{answer}");
    assert!(sidecar.close().await.success());
}

#[tokio::test]
async fn k03_keychain_new_login_is_never_written_into_the_outgoing_snapshot() {
    let world = KeychainScratch::new().await;
    let (service, _work, home) = two_accounts(&world).await;
    let home_before = snapshot_bytes(&world, &home);

    let carol = world.account("carol@example.com", "Carol's Org");
    world.login(&carol);
    let carol_refresh = world.live_refresh_token();

    let view = service.list().unwrap();
    assert_eq!(view.active, None);
    assert_eq!(view.unmanaged.unwrap().email.as_deref(), Some("carol@example.com"));
    service.reconcile(&Default::default()).await;
    assert_eq!(snapshot_bytes(&world, &home), home_before);
    service.use_account("work").await.expect("switch to work");
    assert_eq!(snapshot_bytes(&world, &home), home_before);
    let aside = service.vault().read_aside().unwrap();
    assert!(aside.iter().any(|entry| entry.login.refresh_token.expose() == carol_refresh));
    assert_eq!(world.report().reuses, 0);
}

#[tokio::test]
async fn k04_keychain_blanked_login_is_needs_login_and_never_saved() {
    let world = KeychainScratch::new().await;
    let (service, _work, home) = two_accounts(&world).await;
    let home_before = snapshot_bytes(&world, &home);

    let mut item = world.read_item().unwrap();
    item["claudeAiOauth"]["accessToken"] = json!("");
    item["claudeAiOauth"]["refreshToken"] = json!("");
    item["claudeAiOauth"]["expiresAt"] = json!(0);
    world.write_item(&item);

    let view = service.list().unwrap();
    let home_view = view.accounts.iter().find(|a| a.alias == "home").unwrap();
    assert_eq!(home_view.state, AccountState::NeedsLogin);
    service.reconcile(&Default::default()).await;
    assert_eq!(snapshot_bytes(&world, &home), home_before, "the blank is never stored");
    service.use_account("work").await.expect("switch to work");
    assert_eq!(snapshot_bytes(&world, &home), home_before);
    assert!(!world.live_login()["accessToken"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn k06_keychain_dead_target_is_refused_and_nothing_changes() {
    let world = KeychainScratch::new().await;
    world.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    let (service, _work, _home) = two_accounts(&world).await;
    let work_lineage = world.report().lineages[0].lineage.clone();
    world.fake.control().revoke_lineage(&work_lineage).unwrap();
    let item_before = world.read_item();
    let account_before = world.oauth_account();

    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(kind(&error), ErrorKind::NeedsLogin);
    assert_eq!(world.read_item(), item_before);
    assert_eq!(world.oauth_account(), account_before);
    let output = world.cli(&["use", "work"]).await;
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(world.read_item(), item_before);
}

#[tokio::test]
async fn k08_the_mcp_item_under_unknown_survives_every_operation() {
    let world = KeychainScratch::new().await;
    let mcp = br#"{"mcpOAuth":{"server":{"accessToken":"mcp-secret-token"}}}"#;
    world.keychain.put(PREFIX, "unknown", mcp);
    let (service, _work, _home) = two_accounts(&world).await;
    service.use_account("work").await.unwrap();
    assert!(world.cli(&["use", "home"]).await.status.success());
    assert!(world.cli(&["--json", "status"]).await.status.success());

    assert_eq!(world.keychain.get(PREFIX, "unknown").unwrap(), mcp, "MCP item untouched");
    assert!(!world.read_item().unwrap().as_object().unwrap().contains_key("mcpOAuth"));
    for argv in world.security_argv() {
        if argv.first().is_some_and(|c| c.ends_with("-generic-password")) {
            let at = argv.iter().position(|a| a == "-a").expect("the account is always named");
            assert_eq!(argv[at + 1], "ada");
        }
    }
}

#[tokio::test]
async fn k09_a_user_name_with_at_and_dots_means_claude_code_user() {
    let world = KeychainScratch::new().await;
    let user = "first.last@example.com";
    let ada = world.account("first.last@example.com", "Example Corp");
    let login = world.fake.control().mint_login(&ada.ids).unwrap();
    // Claude 2.1.332 stored the login under the fallback account.
    let item = json!({"claudeAiOauth": {
        "accessToken": login.access_token.expose(), "refreshToken": login.refresh_token.expose(),
        "expiresAt": login.expires_at, "scopes": login.scopes}});
    world.keychain.put(PREFIX, "claude-code-user", &serde_json::to_vec(&item).unwrap());

    let status = stdout_json(&world.cli_with_env(&["--json", "status"], &[("USER", user)]).await);
    assert_eq!(status["store"]["account"], "claude-code-user");
    let service = world.service_with(&[("USER", user)]);
    let added = service.add_account("ada").await.expect("the login is found");
    assert_eq!(added.email.as_deref(), Some("first.last@example.com"));
    assert!(world.keychain.get(PREFIX, user).is_none(), "no item under the raw user name");
}

#[tokio::test]
async fn k10_config_dir_with_trailing_slash_names_the_hashed_item() {
    let world = KeychainScratch::new().await;
    let raw = format!("{}/claude-work/", world.home.display());
    let dir = world.home.join("claude-work");
    std::fs::create_dir_all(&dir).unwrap();
    let service_name = hashed_service(&raw);
    assert_ne!(service_name, hashed_service(raw.trim_end_matches('/')));

    let ada = world.account("ada@example.com", "Example Corp");
    let login = world.fake.control().mint_login(&ada.ids).unwrap();
    let item = json!({"claudeAiOauth": {
        "accessToken": login.access_token.expose(), "refreshToken": login.refresh_token.expose(),
        "expiresAt": login.expires_at, "scopes": login.scopes}});
    world.keychain.put(&service_name, "ada", &serde_json::to_vec(&item).unwrap());
    // A login under the unhashed name belongs to Claude without CLAUDE_CONFIG_DIR.
    world.keychain.put(PREFIX, "ada", b"{\"claudeAiOauth\":null,\"other\":1}");

    let extra = [("CLAUDE_CONFIG_DIR", raw.as_str())];
    let status = stdout_json(&world.cli_with_env(&["--json", "status"], &extra).await);
    assert_eq!(
        status["store"],
        json!({"kind": "keychain", "service": service_name, "account": "ada"})
    );
    assert_eq!(status["configDir"], dir.display().to_string());
    assert_eq!(status["globalConfig"], dir.join(".claude.json").display().to_string());

    let service = world.service_with(&extra);
    service.add_account("ada").await.expect("add from the hashed item");
    assert_eq!(world.keychain.get(PREFIX, "ada").unwrap(), b"{\"claudeAiOauth\":null,\"other\":1}");

    // With the file forced, the same folder's file is named.
    let forced = [extra[0], ("SWITCHBOARD_LIVE_STORE", "file")];
    let status = stdout_json(&world.cli_with_env(&["--json", "status"], &forced).await);
    assert_eq!(
        status["store"],
        json!({"kind": "file", "path": dir.join(".credentials.json").display().to_string()})
    );
}

#[tokio::test]
async fn k11_a_locked_keychain_means_the_file_for_the_whole_switch() {
    let world = KeychainScratch::new().await;
    let (_service, work, home) = two_accounts(&world).await;
    // The file mirrors the Keychain, as it does on a Mac that once ran Claude over SSH.
    world.write_credentials(&world.read_item().unwrap());
    let item_before = world.read_item();
    world.keychain.set_locked(true);
    let interactive_before =
        world.keychain.records().iter().filter(|r| r["interactive"].is_string()).count();

    let status = stdout_json(&world.cli(&["--json", "status"]).await);
    assert_eq!(
        status["store"],
        json!({"kind": "file", "path": world.credentials_path().display().to_string()})
    );
    assert_eq!(status["storeWarnings"][0]["kind"], "keychainUnavailable");
    assert!(status["storeWarnings"][0]["message"].as_str().unwrap().contains("locked"));

    let used = world.cli(&["--json", "use", "work"]).await;
    assert!(used.status.success(), "{}", String::from_utf8_lossy(&used.stderr));
    assert_eq!(stdout_json(&used)["sessions"]["follow"], "nextRequest");
    let file = world.read_json(&world.credentials_path()).unwrap();
    assert_eq!(file["claudeAiOauth"]["accountUuid"], work.ids.account_uuid.as_str());
    assert_eq!(
        world.keychain.records().iter().filter(|r| r["interactive"].is_string()).count(),
        interactive_before,
        "no write reached the Keychain"
    );
    world.keychain.set_locked(false);
    assert_eq!(world.read_item(), item_before, "the Keychain was not half switched");
    let _ = home;

    // A missing `security` is the same: the file, said so.
    let extra = [("SWITCHBOARD_SECURITY_BIN", "/nonexistent/security")];
    let status = stdout_json(&world.cli_with_env(&["--json", "status"], &extra).await);
    assert_eq!(status["store"]["kind"], "file");
    assert_eq!(status["storeWarnings"][0]["kind"], "keychainUnavailable");
}

#[tokio::test]
async fn keychain_stale_file_copy_is_reported_by_status() {
    let world = KeychainScratch::new().await;
    let (service, _work, _home) = two_accounts(&world).await;
    let mut old = world.read_item().unwrap();
    old["claudeAiOauth"]["refreshToken"] = json!("sk-ant-ort01-long-spent");
    world.write_credentials(&old);

    let status = service.status(StatusParams::default()).await.unwrap();
    assert_eq!(status.store_warnings.len(), 1);
    assert_eq!(status.store_warnings[0].kind, switchboard::protocol::StoreWarningKind::StaleFile);
    let status = stdout_json(&world.cli(&["--json", "status"]).await);
    assert_eq!(status["store"]["kind"], "keychain");
    assert_eq!(status["storeWarnings"][0]["kind"], "staleFile");
    assert!(!status.to_string().contains("long-spent"), "the warning names no token");
    let text = String::from_utf8_lossy(&world.cli(&["status"]).await.stdout).into_owned();
    let message = status["storeWarnings"][0]["message"].as_str().unwrap();
    assert!(text.contains(&format!("warning:    {message}")), "{text}");
}

#[tokio::test]
async fn k14_keychain_credential_and_oauth_account_change_together() {
    let world = KeychainScratch::new().await;
    let (service, work, _home) = two_accounts(&world).await;

    let mut item = world.read_item().unwrap();
    item["mcpOAuth"] = json!({"server": {"token": "mcp-secret"}});
    world.write_item(&item);
    let mut config = world.read_json(&world.global_config_path()).unwrap();
    config["projects"] = json!({"/src/app": {"allowedTools": ["Bash"]}});
    std::fs::write(world.global_config_path(), serde_json::to_vec(&config).unwrap()).unwrap();

    service.use_account("work").await.unwrap();
    assert_eq!(world.oauth_account()["accountUuid"], work.ids.account_uuid.as_str());
    let item = world.read_item().unwrap();
    assert_eq!(item["mcpOAuth"]["server"]["token"], "mcp-secret");
    assert_eq!(item["claudeAiOauth"]["accountUuid"], work.ids.account_uuid.as_str());
    let config = world.read_json(&world.global_config_path()).unwrap();
    assert_eq!(config["projects"]["/src/app"]["allowedTools"][0], "Bash");

    // When `oauthAccount` cannot be written, the Keychain item is put back.
    let live_before = world.live_login();
    std::fs::write(world.global_config_path(), b"{ not json").unwrap();
    let error = service.use_account("home").await.unwrap_err();
    assert_eq!(kind(&error), ErrorKind::StoreUnavailable);
    assert_eq!(world.live_login()["refreshToken"], live_before["refreshToken"]);
    assert_eq!(std::fs::read(world.global_config_path()).unwrap(), b"{ not json");
}

#[tokio::test]
async fn k15_every_shadowing_source_is_reported_by_status_and_use() {
    let world = KeychainScratch::new().await;
    let (_service, _work, _home) = two_accounts(&world).await;
    let mut target = "work";
    for var in [
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR",
    ] {
        let extra = [(var, "sk-ant-shadow-value")];
        let status = world.cli_with_env(&["--json", "status"], &extra).await;
        let status = stdout_json(&status);
        assert_eq!(status["shadowedBy"], json!([var]), "{var}");
        assert!(!status.to_string().contains("sk-ant-shadow-value"));

        let used = world.cli_with_env(&["--json", "use", target], &extra).await;
        assert!(used.status.success(), "the store is still switched ({var})");
        let used = stdout_json(&used);
        assert_eq!(used["shadowedBy"], json!([var]));
        assert_eq!(used["sessions"]["follow"], "restart");
        assert_eq!(used["active"]["alias"], target);
        target = if target == "work" { "home" } else { "work" };
    }
    let plain = stdout_json(&world.cli(&["--json", "status"]).await);
    assert_eq!(plain["shadowedBy"], json!([]));

    std::fs::write(world.claude_dir().join("settings.json"), br#"{"apiKeyHelper": "~/key.sh"}"#)
        .unwrap();
    let status = stdout_json(&world.cli(&["--json", "status"]).await);
    assert_eq!(status["shadowedBy"], json!(["apiKeyHelper"]));
    let used = stdout_json(&world.cli(&["--json", "use", target]).await);
    assert_eq!(used["shadowedBy"], json!(["apiKeyHelper"]));
    assert_eq!(used["sessions"]["follow"], "restart");
}

#[tokio::test]
async fn k17_keychain_no_token_in_any_argv_output_or_log() {
    let world = KeychainScratch::new().await;
    let (_service, _work, _home) = two_accounts(&world).await;
    let mut transcript = Vec::new();
    for args in [
        &["--json", "list"][..],
        &["status", "--validate"],
        &["use", "work"],
        &["--json", "use", "-"],
        &["use", "nobody"],
        &["add", "home"],
        &["--json", "status", "work"],
    ] {
        let output = world.cli_with_env(args, &[("RUST_LOG", "switchboard=trace")]).await;
        transcript.extend(output.stdout);
        transcript.extend(output.stderr);
    }
    let transcript = String::from_utf8_lossy(&transcript);
    assert!(transcript.contains("work"), "the transcript is real output");
    let tokens = tokens_of(&world);
    assert!(tokens.len() >= 4);
    for token in &tokens {
        assert!(!transcript.contains(token.as_str()), "a token appeared in output or logs");
    }
    world.assert_no_token_in_argv(&tokens);
    let writes = world.keychain.records().iter().filter(|r| r["interactive"].is_string()).count();
    assert!(writes >= 2, "the switches wrote through security -i");
}
