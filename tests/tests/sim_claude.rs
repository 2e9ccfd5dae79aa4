//! The simulated Claude Code against the fake service: it refreshes, locks, saves and blanks
//! the way the contract says Claude does, including the hazard of the older release.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard_tests::fake::{
    AccountIds, Endpoint, FakeServer, Fault, MintedLogin, NewAccount, SettingsUpdate, TokenState,
};
use switchboard_tests::sim_claude::{
    LockRetry, Mode, RefreshOptions, RefreshOutcome, SimClaude, set_mtime,
};
use tempfile::TempDir;

const FAST: LockRetry = LockRetry {
    retries: 100,
    min_wait: Duration::from_millis(10),
    max_wait: Duration::from_millis(20),
};

struct Scene {
    server: FakeServer,
    home: TempDir,
    a: AccountIds,
}

impl Scene {
    async fn new() -> Scene {
        let server = FakeServer::start().await;
        let a = server.control().create_account(NewAccount::new("a@example.com"));
        Scene { server, home: tempfile::tempdir().unwrap(), a }
    }

    fn sim(&self) -> SimClaude {
        SimClaude::new(self.home.path(), None, self.server.token_url()).with_lock_retry(FAST)
    }

    async fn logged_in(&self) -> SimClaude {
        let sim = self.sim();
        sim.login(&self.server.url(), &self.a.account_uuid, &self.a.organization_uuid)
            .await
            .unwrap();
        sim
    }

    fn lineage_of(&self, refresh_token: &str) -> Option<String> {
        self.server.control().inspect_token(refresh_token).lineage
    }
}

fn stored_refresh(sim: &SimClaude) -> String {
    sim.stored_login().unwrap().unwrap().refresh_token.expose().to_owned()
}

/// Puts another login into the store the way a switch would, keeping everything else.
fn switch_store_to(path: &Path, login: &MintedLogin) {
    let mut doc: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    doc["claudeAiOauth"]["accessToken"] = login.access_token.expose().into();
    doc["claudeAiOauth"]["refreshToken"] = login.refresh_token.expose().into();
    doc["claudeAiOauth"]["expiresAt"] = login.expires_at.into();
    fs::write(path, serde_json::to_vec(&doc).unwrap()).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn login_writes_the_store_and_oauth_account() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let credentials = read_json(&scene.home.path().join(".claude/.credentials.json"));
    let entry = &credentials["claudeAiOauth"];
    assert!(entry["accessToken"].as_str().unwrap().starts_with("sk-ant-oat01-"));
    assert_eq!(entry["subscriptionType"], "max");
    assert!(entry["expiresAt"].as_i64().unwrap() > 0);
    let config = read_json(&scene.home.path().join(".claude.json"));
    assert_eq!(config["oauthAccount"]["accountUuid"], scene.a.account_uuid.as_str());
    assert_eq!(config["oauthAccount"]["organizationUuid"], scene.a.organization_uuid.as_str());
    assert_eq!(config["oauthAccount"]["emailAddress"], "a@example.com");
    let state = scene.server.control().inspect_token(&stored_refresh(&sim)).state;
    assert_eq!(state, TokenState::Live);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&sim.paths().credentials).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn refresh_rotates_and_writes() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let before = stored_refresh(&sim);
    for mode in [Mode::V2_1_332, Mode::V2_1_112] {
        let previous = stored_refresh(&sim);
        assert_eq!(sim.refresh(mode).await.unwrap(), RefreshOutcome::Refreshed);
        let now = stored_refresh(&sim);
        assert_ne!(now, previous);
        assert_eq!(scene.server.control().inspect_token(&now).state, TokenState::Live);
        assert_eq!(scene.server.control().inspect_token(&previous).state, TokenState::Spent);
    }
    let report = scene.server.control().report();
    let lineage = report.lineage(&scene.lineage_of(&before).unwrap()).unwrap();
    assert_eq!((lineage.spent, lineage.reuses), (2, 0));
    // No lock is left behind.
    assert!(!scene.home.path().join(".claude/.oauth_refresh.lock").exists());
    assert!(!scene.home.path().join(".claude/.oauth_refresh.lock.owner").exists());
    assert!(!scene.home.path().join(".claude.lock").exists());
    assert!(!scene.home.path().join(".claude/.storage-write.lock").exists());
}

#[tokio::test]
async fn only_if_expiring_leaves_a_fresh_token_alone() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let options =
        RefreshOptions { mode: Mode::V2_1_332, only_if_expiring: true, hold_lock: Duration::ZERO };
    assert_eq!(sim.refresh_with(options).await.unwrap(), RefreshOutcome::StillFresh);
    assert_eq!(scene.server.control().report().requests.token, 0);

    // A two-minute token is inside Claude's five-minute margin.
    scene.server.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(120),
        ..Default::default()
    });
    let sim = scene.logged_in().await;
    assert_eq!(sim.refresh_with(options).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(scene.server.control().report().requests.token, 1);
}

#[tokio::test]
async fn two_concurrent_sims_never_spend_one_token_twice() {
    for mode in [Mode::V2_1_332, Mode::V2_1_112] {
        let scene = Scene::new().await;
        let first = scene.logged_in().await;
        let second = scene.sim();
        let options =
            RefreshOptions { mode, only_if_expiring: false, hold_lock: Duration::from_millis(200) };
        let (a, b) = tokio::join!(first.refresh_with(options), second.refresh_with(options));
        let mut outcomes = vec![a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, vec![RefreshOutcome::Adopted, RefreshOutcome::Refreshed], "{mode:?}");
        let report = scene.server.control().report();
        assert_eq!(report.reuses, 0, "{mode:?}");
        assert_eq!(report.lineages[0].spent, 1, "{mode:?}");
        let state = scene.server.control().inspect_token(&stored_refresh(&first)).state;
        assert_eq!(state, TokenState::Live, "{mode:?}");
    }
}

#[tokio::test]
async fn locks_are_held_during_a_refresh() {
    let scene = Scene::new().await;
    let config_dir = scene.home.path().join("claude-work");
    let sim = SimClaude::new(scene.home.path(), Some(config_dir.clone()), scene.server.token_url())
        .with_lock_retry(FAST);
    sim.login(&scene.server.url(), &scene.a.account_uuid, &scene.a.organization_uuid)
        .await
        .unwrap();
    assert!(config_dir.join(".credentials.json").exists());
    assert!(config_dir.join(".claude.json").exists());
    assert!(!scene.home.path().join(".claude.json").exists());

    let options = RefreshOptions {
        mode: Mode::V2_1_332,
        only_if_expiring: false,
        hold_lock: Duration::from_millis(400),
    };
    let watcher = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let owner = read_json(&config_dir.join(".oauth_refresh.lock.owner"));
        (
            config_dir.join(".oauth_refresh.lock").is_dir(),
            owner["pid"] == std::process::id(),
            scene.home.path().join("claude-work.lock").is_dir(),
        )
    };
    let (outcome, held) = tokio::join!(sim.refresh_with(options), watcher);
    assert_eq!(outcome.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(held, (true, true, true));
    assert!(!config_dir.join(".oauth_refresh.lock").exists());
    assert!(!scene.home.path().join("claude-work.lock").exists());
}

#[tokio::test]
async fn compare_and_swap_discards_a_result_when_the_store_changed() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let a_lineage = scene.lineage_of(&stored_refresh(&sim)).unwrap();
    let b = scene.server.control().create_account(NewAccount::new("b@example.com"));
    let b_login = scene.server.control().mint_login(&b).unwrap();

    let options = RefreshOptions {
        mode: Mode::V2_1_332,
        only_if_expiring: false,
        hold_lock: Duration::from_millis(500),
    };
    let switch = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        switch_store_to(&sim.paths().credentials, &b_login);
    };
    let (outcome, ()) = tokio::join!(sim.refresh_with(options), switch);
    assert_eq!(outcome.unwrap(), RefreshOutcome::Discarded);
    assert_eq!(stored_refresh(&sim), b_login.refresh_token.expose());
    // The refresh happened on the server; its result was thrown away, nothing was reused.
    let report = scene.server.control().report();
    assert_eq!(report.lineage(&a_lineage).unwrap().spent, 1);
    assert_eq!(report.reuses, 0);
}

#[tokio::test]
async fn older_release_merge_overwrites_a_switch_made_mid_refresh() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let a_lineage = scene.lineage_of(&stored_refresh(&sim)).unwrap();
    let b = scene.server.control().create_account(NewAccount::new("b@example.com"));
    let b_login = scene.server.control().mint_login(&b).unwrap();

    let options = RefreshOptions {
        mode: Mode::V2_1_112,
        only_if_expiring: false,
        hold_lock: Duration::from_millis(500),
    };
    let switch = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        switch_store_to(&sim.paths().credentials, &b_login);
    };
    let (outcome, ()) = tokio::join!(sim.refresh_with(options), switch);
    assert_eq!(outcome.unwrap(), RefreshOutcome::Refreshed);
    // The hazard: A's rotated login replaced the switch to B.
    let stored = stored_refresh(&sim);
    assert_ne!(stored, b_login.refresh_token.expose());
    assert_eq!(scene.lineage_of(&stored).as_deref(), Some(a_lineage.as_str()));
}

#[tokio::test]
async fn invalid_grant_blanks_the_login_and_keeps_other_keys() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let mut doc = sim.read_credentials().unwrap();
    doc.insert("mcpOAuth".into(), json!({"server": {"token": "kept"}}));
    doc["claudeAiOauth"]["clientId"] = "kept-too".into();
    fs::write(&sim.paths().credentials, serde_json::to_vec(&doc).unwrap()).unwrap();
    let lineage = scene.lineage_of(&stored_refresh(&sim)).unwrap();
    scene.server.control().revoke_lineage(&lineage).unwrap();

    let outcome = sim.refresh(Mode::V2_1_332).await.unwrap();
    assert_eq!(outcome, RefreshOutcome::InvalidGrant { blanked: true });
    let doc = read_json(&sim.paths().credentials);
    let entry = &doc["claudeAiOauth"];
    assert_eq!((&entry["accessToken"], &entry["refreshToken"]), (&json!(""), &json!("")));
    assert_eq!(entry["expiresAt"], 0);
    assert_eq!(entry["subscriptionType"], "max");
    assert_eq!(entry["clientId"], "kept-too");
    assert_eq!(doc["mcpOAuth"]["server"]["token"], "kept");
    // A blanked login is no login: nothing more is sent.
    assert_eq!(sim.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::NoLogin);
    assert_eq!(scene.server.control().report().requests.token, 1);
}

#[tokio::test]
async fn invalid_grant_leaves_a_login_that_replaced_the_dead_one() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let lineage = scene.lineage_of(&stored_refresh(&sim)).unwrap();
    scene.server.control().revoke_lineage(&lineage).unwrap();
    let b = scene.server.control().create_account(NewAccount::new("b@example.com"));
    let b_login = scene.server.control().mint_login(&b).unwrap();
    scene.server.control().set_fault(
        Endpoint::Token,
        Fault { latency_ms: Some(300), times: Some(1), ..Default::default() },
    );
    let switch = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        switch_store_to(&sim.paths().credentials, &b_login);
    };
    let (outcome, ()) = tokio::join!(sim.refresh(Mode::V2_1_332), switch);
    assert_eq!(outcome.unwrap(), RefreshOutcome::InvalidGrant { blanked: false });
    assert_eq!(stored_refresh(&sim), b_login.refresh_token.expose());
}

#[tokio::test]
async fn unknown_keys_in_both_files_survive_login_refresh_and_logout() {
    let scene = Scene::new().await;
    let sim = scene.sim();
    let dir = scene.home.path().join(".claude");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(".credentials.json"),
        json!({"mcpOAuth": {"srv": {"accessToken": "mcp"}}, "pluginSecrets": [1, 2]}).to_string(),
    )
    .unwrap();
    fs::write(
        scene.home.path().join(".claude.json"),
        json!({"projects": {"/src": {"allowedTools": ["x"]}}, "numStartups": 7}).to_string(),
    )
    .unwrap();
    sim.login(&scene.server.url(), &scene.a.account_uuid, &scene.a.organization_uuid)
        .await
        .unwrap();
    let mut doc = sim.read_credentials().unwrap();
    doc["claudeAiOauth"]["loginEnded"] = false.into();
    fs::write(&sim.paths().credentials, serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut config = sim.read_global_config().unwrap();
    config["oauthAccount"]["hasExtraUsageEnabled"] = true.into();
    fs::write(&sim.paths().global_config, serde_json::to_vec(&config).unwrap()).unwrap();

    assert_eq!(sim.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(sim.refresh(Mode::V2_1_112).await.unwrap(), RefreshOutcome::Refreshed);
    let doc = read_json(&sim.paths().credentials);
    assert_eq!(doc["mcpOAuth"]["srv"]["accessToken"], "mcp");
    assert_eq!(doc["pluginSecrets"], json!([1, 2]));
    assert_eq!(doc["claudeAiOauth"]["loginEnded"], false);
    let config = read_json(&sim.paths().global_config);
    assert_eq!(config["projects"]["/src"]["allowedTools"], json!(["x"]));
    assert_eq!(config["oauthAccount"]["hasExtraUsageEnabled"], true);

    let lineage = scene.lineage_of(&stored_refresh(&sim)).unwrap();
    assert!(sim.logout().await.unwrap());
    let doc = read_json(&sim.paths().credentials);
    assert!(doc.get("claudeAiOauth").is_none());
    assert_eq!(doc["mcpOAuth"]["srv"]["accessToken"], "mcp");
    let config = read_json(&sim.paths().global_config);
    assert!(config.get("oauthAccount").is_none());
    assert_eq!(config["numStartups"], 7);
    let report = scene.server.control().report();
    assert!(report.lineage(&lineage).unwrap().revoked);
    assert_eq!(report.requests.revoke, 1);
}

#[tokio::test]
async fn stale_locks_are_taken_over_and_live_ones_are_not() {
    let scene = Scene::new().await;
    let sim = scene.logged_in().await;
    let oauth_lock = scene.home.path().join(".claude/.oauth_refresh.lock");
    let dir_lock: PathBuf = scene.home.path().join(".claude.lock");
    fs::create_dir(&oauth_lock).unwrap();
    fs::create_dir(&dir_lock).unwrap();
    set_mtime(&oauth_lock, SystemTime::now() - Duration::from_secs(61)).unwrap();
    set_mtime(&dir_lock, SystemTime::now() - Duration::from_secs(11)).unwrap();
    assert_eq!(sim.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    assert!(!oauth_lock.exists() && !dir_lock.exists());

    // A lock a live holder keeps fresh is waited for, then given up, and nothing is spent.
    fs::create_dir(&dir_lock).unwrap();
    let impatient = sim.clone().with_lock_retry(LockRetry {
        retries: 2,
        min_wait: Duration::from_millis(10),
        max_wait: Duration::from_millis(20),
    });
    let err = impatient.refresh(Mode::V2_1_112).await.unwrap_err();
    assert!(err.to_string().contains("claude.lock"), "{err}");
    assert_eq!(scene.server.control().report().requests.token, 1);
    // The one 2.1.332 took before giving up on the second is released again.
    assert!(impatient.refresh(Mode::V2_1_332).await.is_err());
    assert!(!oauth_lock.exists());
}

#[tokio::test]
async fn run_refreshes_whenever_the_token_nears_expiry() {
    let scene = Scene::new().await;
    scene.server.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(120),
        ..Default::default()
    });
    let sim = scene.logged_in().await;
    let summary =
        sim.run(Mode::V2_1_332, Duration::from_millis(100), Duration::from_millis(450)).await;
    assert!(summary.checks >= 4, "{summary:?}");
    assert_eq!(summary.refreshed, summary.checks, "{summary:?}");
    assert_eq!(summary.errors, 0);
    let report = scene.server.control().report();
    assert_eq!(report.reuses, 0);
    assert_eq!(report.lineages[0].spent, summary.refreshed);

    // With a long-lived token the session has nothing to do.
    scene.server.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(3600),
        ..Default::default()
    });
    assert_eq!(sim.refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let summary =
        sim.run(Mode::V2_1_332, Duration::from_millis(50), Duration::from_millis(120)).await;
    assert_eq!(summary.refreshed, 0, "{summary:?}");
}
