//! The failures people met with other account switchers (`cases.md`), each rebuilt as a small
//! state and checked against what Switchboard owes. Test names carry the case ids.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::protocol::{AccountState, ChangeReason, ErrorKind, StatusParams};
use switchboard::service::{Service, ServiceError};
use switchboard_tests::fake::SettingsUpdate;
use switchboard_tests::harness::{Scratch, TestAccount};

/// A scratch world with `work` and `home` added, Claude Code left on `home`.
async fn two_accounts(scratch: &Scratch) -> (Arc<Service>, TestAccount, TestAccount) {
    let service = scratch.service();
    let (work, home) = scratch.add_work_and_home(&service).await;
    (service, work, home)
}

fn kind(error: &ServiceError) -> ErrorKind {
    error.kind().expect("an application error")
}

fn snapshot_bytes(scratch: &Scratch, account: &TestAccount) -> Vec<u8> {
    let path = scratch
        .vault
        .join("snapshots")
        .join(format!("{}.{}.json", account.ids.account_uuid, account.ids.organization_uuid));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[tokio::test]
async fn k03_new_login_is_never_written_into_the_outgoing_snapshot() {
    let scratch = Scratch::new().await;
    let (service, work, home) = two_accounts(&scratch).await;
    let home_before = snapshot_bytes(&scratch, &home);

    // A `/login` with a third account replaces home's login in Claude Code.
    let carol = scratch.account("carol@example.com", "Carol's Org");
    scratch.login(&carol).await;
    let carol_refresh = scratch.live_refresh_token();

    let view = service.list().unwrap();
    assert_eq!(view.active, None, "an unmanaged login makes no account active");
    let unmanaged = view.unmanaged.expect("the unmanaged login is reported");
    assert_eq!(unmanaged.email.as_deref(), Some("carol@example.com"));

    // The watcher's reconcile and a switch both leave home's snapshot as it was.
    assert!(service.reconcile(&Default::default()).await);
    assert_eq!(snapshot_bytes(&scratch, &home), home_before);
    service.use_account("work").await.expect("switch to work");
    assert_eq!(snapshot_bytes(&scratch, &home), home_before);

    // Carol's tokens were kept aside, not dropped.
    let aside = service.vault().read_aside().unwrap();
    assert!(aside.iter().any(|entry| entry.login.refresh_token.expose() == carol_refresh));
    let _ = work;
    assert_eq!(scratch.report().reuses, 0);
}

#[tokio::test]
async fn k04_a_blanked_login_is_needs_login_and_never_saved() {
    let scratch = Scratch::new().await;
    let (service, _work, home) = two_accounts(&scratch).await;
    let home_before = snapshot_bytes(&scratch, &home);

    // Claude's refresh was refused: it blanks the entry, keeping every other key.
    let mut creds = scratch.read_json(&scratch.credentials_path()).unwrap();
    creds["claudeAiOauth"]["accessToken"] = json!("");
    creds["claudeAiOauth"]["refreshToken"] = json!("");
    creds["claudeAiOauth"]["expiresAt"] = json!(0);
    scratch.write_credentials(&creds);

    let view = service.list().unwrap();
    let home_view = view.accounts.iter().find(|a| a.alias == "home").unwrap();
    assert_eq!(home_view.state, AccountState::NeedsLogin);
    assert!(service.reconcile(&Default::default()).await);
    assert_eq!(snapshot_bytes(&scratch, &home), home_before, "the blank is never stored");

    // Switching away works and does not copy the blank anywhere.
    service.use_account("work").await.expect("switch to work");
    assert_eq!(snapshot_bytes(&scratch, &home), home_before);
    assert!(!scratch.live_login()["accessToken"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn k05_add_waits_for_a_login_still_being_written() {
    let scratch = Scratch::new().await;
    let ada = scratch.account("ada@example.com", "Example Corp");
    let service = scratch.service();
    scratch.write_credentials(
        &json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}}),
    );

    let writer = {
        let home = scratch.home.clone();
        let login = scratch.fake.control().mint_login(&ada.ids).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let doc = json!({"claudeAiOauth": {
                "accessToken": login.access_token.expose(), "refreshToken": login.refresh_token.expose(),
                "expiresAt": login.expires_at, "scopes": login.scopes}});
            switchboard::durable::write_atomic(
                &home.join(".claude/.credentials.json"),
                &serde_json::to_vec(&doc).unwrap(),
                0o600,
            )
            .unwrap();
        })
    };
    let added = service.add_account("ada").await.expect("add waits for the login");
    writer.await.unwrap();
    assert_eq!(added.email.as_deref(), Some("ada@example.com"));
    assert_eq!(added.state, AccountState::Ok);
}

#[tokio::test]
async fn k05_add_refuses_a_login_that_stays_empty() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.write_credentials(
        &json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}}),
    );
    let error = service.add_account("ghost").await.unwrap_err();
    assert_eq!(kind(&error), ErrorKind::NoLogin);
    assert!(service.list().unwrap().accounts.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn k06_a_dead_target_is_refused_and_nothing_changes() {
    let scratch = Scratch::new().await;
    // Minute-long tokens count as expiring at once, so switching to work needs a refresh.
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    let (service, _work, _home) = two_accounts(&scratch).await;
    let work_lineage = scratch.report().lineages[0].lineage.clone();
    scratch.fake.control().revoke_lineage(&work_lineage).unwrap();
    let live_before = scratch.live_login();
    let account_before = scratch.oauth_account();

    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(kind(&error), ErrorKind::NeedsLogin);
    assert_eq!(scratch.live_login(), live_before);
    assert_eq!(scratch.oauth_account(), account_before);
    let work = service.list().unwrap().accounts.into_iter().find(|a| a.alias == "work").unwrap();
    assert_eq!(work.state, AccountState::NeedsLogin);

    // The CLI says so with its documented exit code.
    let output = scratch.cli(&["use", "work"]).await;
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("claude /login"));
}

#[tokio::test]
async fn k07_same_email_in_two_organizations_is_two_accounts() {
    let scratch = Scratch::new().await;
    let first = scratch.account("ada@example.com", "Example Corp");
    let second = scratch.account("ada@example.com", "Side Project");
    assert_eq!(first.ids.account_uuid, second.ids.account_uuid);
    let service = scratch.service();
    scratch.login(&first).await;
    service.add_account("corp").await.unwrap();
    scratch.login(&second).await;
    service.add_account("side").await.unwrap();

    let view = service.list().unwrap();
    assert_eq!(view.accounts.len(), 2);
    assert_ne!(view.accounts[0].organization_uuid, view.accounts[1].organization_uuid);
    service.use_account("corp").await.unwrap();
    assert_eq!(service.list().unwrap().active.as_deref(), Some("corp"));

    // Choosing by email is ambiguous, and the error says which accounts match.
    let error = service.use_account("ada@example.com").await.unwrap_err();
    assert_eq!(kind(&error), ErrorKind::UnknownAccount);
    let message = error.to_string();
    assert!(message.contains("corp") && message.contains("side"), "{message}");
}

#[tokio::test]
async fn k13_a_logout_between_adds_is_noticed() {
    let scratch = Scratch::new().await;
    let work = scratch.account("ada@example.com", "Example Corp");
    let service = scratch.service();
    scratch.login(&work).await;
    service.add_account("work").await.unwrap();

    // `/logout`: the login is deleted and its refresh token revoked at the service.
    let lineage = scratch.report().lineages[0].lineage.clone();
    scratch.fake.control().revoke_lineage(&lineage).unwrap();
    std::fs::remove_file(scratch.credentials_path()).unwrap();

    let home = scratch.account("ada@home.example", "Ada's Individual Org");
    scratch.login(&home).await;
    service.add_account("home").await.expect("adding the second account works");
    let work = service.list().unwrap().accounts.into_iter().find(|a| a.alias == "work").unwrap();
    assert_eq!(work.state, AccountState::NeedsLogin, "the revoked first account is flagged");
}

#[tokio::test]
async fn k14_credential_and_oauth_account_change_together() {
    let scratch = Scratch::new().await;
    let (service, work, home) = two_accounts(&scratch).await;

    // Unknown keys in both files survive the switch.
    let mut creds = scratch.read_json(&scratch.credentials_path()).unwrap();
    creds["mcpOAuth"] = json!({"server": {"token": "mcp-secret"}});
    scratch.write_credentials(&creds);
    let mut config = scratch.read_json(&scratch.global_config_path()).unwrap();
    config["projects"] = json!({"/src/app": {"allowedTools": ["Bash"]}});
    std::fs::write(scratch.global_config_path(), serde_json::to_vec(&config).unwrap()).unwrap();

    service.use_account("work").await.unwrap();
    assert_eq!(scratch.oauth_account()["accountUuid"], work.ids.account_uuid.as_str());
    assert_eq!(scratch.oauth_account()["organizationUuid"], work.ids.organization_uuid.as_str());
    assert_eq!(scratch.oauth_account()["emailAddress"], work.email.as_str());
    let creds = scratch.read_json(&scratch.credentials_path()).unwrap();
    assert_eq!(creds["mcpOAuth"]["server"]["token"], "mcp-secret");
    assert_eq!(creds["claudeAiOauth"]["accountUuid"], work.ids.account_uuid.as_str());
    let config = scratch.read_json(&scratch.global_config_path()).unwrap();
    assert_eq!(config["projects"]["/src/app"]["allowedTools"][0], "Bash");

    // A running Claude session writes its cached identity back after the switch; the
    // watcher's reconcile puts the live account's name back.
    let mut config = scratch.read_json(&scratch.global_config_path()).unwrap();
    config["oauthAccount"] = json!({"accountUuid": home.ids.account_uuid, "emailAddress": home.email,
        "organizationUuid": home.ids.organization_uuid, "billingType": "stripe_subscription"});
    std::fs::write(scratch.global_config_path(), serde_json::to_vec(&config).unwrap()).unwrap();
    assert!(service.reconcile(&Default::default()).await);
    assert_eq!(scratch.oauth_account()["accountUuid"], work.ids.account_uuid.as_str());
    assert_eq!(scratch.oauth_account()["organizationUuid"], work.ids.organization_uuid.as_str());
    let config = scratch.read_json(&scratch.global_config_path()).unwrap();
    assert_eq!(config["projects"]["/src/app"]["allowedTools"][0], "Bash");

    // When `oauthAccount` cannot be written, the credential is put back.
    let live_before = scratch.live_login();
    std::fs::write(scratch.global_config_path(), b"{ not json").unwrap();
    let error = service.use_account("home").await.unwrap_err();
    assert_eq!(kind(&error), ErrorKind::StoreUnavailable);
    assert_eq!(scratch.live_login()["refreshToken"], live_before["refreshToken"]);
    assert_eq!(std::fs::read(scratch.global_config_path()).unwrap(), b"{ not json");
}

#[tokio::test]
async fn k17_no_token_in_any_output_log_or_error() {
    let scratch = Scratch::new().await;
    let (_service, _work, _home) = two_accounts(&scratch).await;
    let mut tokens = Vec::new();
    let mut collect = |login: &serde_json::Value| {
        for key in ["accessToken", "refreshToken"] {
            if let Some(token) = login[key].as_str().filter(|t| !t.is_empty()) {
                tokens.push(token.to_owned());
            }
        }
    };
    collect(&scratch.live_login());
    for entry in std::fs::read_dir(scratch.vault.join("snapshots")).unwrap() {
        let snapshot = scratch.read_json(&entry.unwrap().path()).unwrap();
        collect(&snapshot["login"]);
    }
    assert!(tokens.len() >= 4);

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
        let output = scratch.cli_with_env(args, &[("RUST_LOG", "switchboard=trace")]).await;
        transcript.extend(output.stdout);
        transcript.extend(output.stderr);
    }
    let transcript = String::from_utf8_lossy(&transcript);
    assert!(transcript.contains("work"), "the transcript is real output");
    for token in &tokens {
        assert!(!transcript.contains(token.as_str()), "a token appeared in output or logs");
    }
}

#[tokio::test]
async fn k18_the_use_answer_says_when_running_sessions_follow() {
    let scratch = Scratch::new().await;
    let (service, _work, _home) = two_accounts(&scratch).await;
    let used = service.use_account("work").await.unwrap();
    assert_eq!(used.sessions.follow, switchboard::protocol::SessionsFollow::NextRequest);
    assert!(used.sessions.message.contains("next request"));
    let output = scratch.cli(&["use", "home"]).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("next request"));

    let output = scratch.cli_with_env(&["use", "work"], &[("CLAUDE_CODE_OAUTH_TOKEN", "x")]).await;
    assert!(output.status.success(), "the store is still switched");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("CLAUDE_CODE_OAUTH_TOKEN") && text.contains("restart"), "{text}");
}

#[tokio::test]
async fn status_validates_and_notifies_state_changes() {
    let scratch = Scratch::new().await;
    let (service, _work, _home) = two_accounts(&scratch).await;
    let mut changes = service.subscribe();
    let status =
        service.status(StatusParams { alias: Some("work".into()), validate: true }).await.unwrap();
    assert_eq!(status.account.unwrap().state, AccountState::Ok);
    // Revoking work's lineage makes validation mark it, and clients hear about it.
    let lineage = scratch.report().lineages[0].lineage.clone();
    scratch.fake.control().revoke_lineage(&lineage).unwrap();
    let status =
        service.status(StatusParams { alias: Some("work".into()), validate: true }).await.unwrap();
    assert_eq!(status.account.unwrap().state, AccountState::NeedsLogin);
    let change =
        tokio::time::timeout(Duration::from_secs(1), changes.recv()).await.unwrap().unwrap();
    assert_eq!(change.reason, ChangeReason::State);
}

#[tokio::test]
async fn adding_a_login_whose_access_token_expired_still_learns_who_it_is() {
    let scratch = Scratch::new().await;
    // Tokens dead on arrival: adding must refresh first to learn whose the login is.
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(0),
        ..Default::default()
    });
    let ada = scratch.account("ada@example.com", "Example Corp");
    let service = scratch.service();
    scratch.login(&ada).await;
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(3600),
        ..Default::default()
    });
    let added = service.add_account("work").await.unwrap();
    assert_eq!(added.email.as_deref(), Some("ada@example.com"));
    assert_eq!(added.organization_name.as_deref(), Some("Example Corp"));
    assert_eq!(added.subscription_type.as_deref(), Some("max"));
    assert_eq!(scratch.report().lineages[0].spent, 1, "the add refreshed once");
}

#[tokio::test]
async fn k13_adding_after_a_logout_warns_that_the_first_account_was_revoked() {
    let scratch = Scratch::new().await;
    let work = scratch.account("ada@example.com", "Example Corp");
    scratch.login(&work).await;
    assert!(scratch.cli(&["add", "work"]).await.status.success());
    let lineage = scratch.report().lineages[0].lineage.clone();
    scratch.fake.control().revoke_lineage(&lineage).unwrap();
    std::fs::remove_file(scratch.credentials_path()).unwrap();

    let home = scratch.account("ada@home.example", "Ada's Individual Org");
    scratch.login(&home).await;
    let output = scratch.cli(&["add", "home"]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("work") && stderr.contains("revoked") && stderr.contains("/logout"),
        "the person adding accounts is told the first one was lost: {stderr}"
    );
}
