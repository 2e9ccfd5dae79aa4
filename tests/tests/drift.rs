//! Drift: Claude Code rotating the live token behind Switchboard's back, done the way Claude
//! does it (its locks, re-read, compare-and-swap, or the older merge), between and during
//! switches. Whatever happens, no refresh token is ever spent twice and every account stays
//! usable, which the fake service checks.
//!
//! Every scenario runs on both live stores, with the same assertions: `_file` on
//! `.credentials.json` (Linux), `_keychain` on a Keychain item played by `fake-security`
//! (macOS), the simulated Claude reaching it through `security` as the real one does.

use std::sync::Arc;
use std::time::Duration;

use switchboard::claude::login::CredentialDoc;
use switchboard::claude::paths::ClaudePaths;
use switchboard::claude::store::{
    LiveRead, LiveStore, Revision, StoreError, StoreLocation, open_live_store,
};
use switchboard::protocol::{AccountState, ErrorKind};
use switchboard::service::{ReconcileState, Service};
use switchboard_tests::fake::{SettingsUpdate, TokenState};
use switchboard_tests::harness::{KeychainScratch, LiveStoreWorld, Scratch, TestAccount};
use switchboard_tests::sim_claude::{LockRetry, Mode, RefreshOptions, RefreshOutcome};

async fn two_accounts<W: LiveStoreWorld>(world: &W) -> (Arc<Service>, TestAccount, TestAccount) {
    let service = world.scratch().service();
    let (work, home) = world.add_work_and_home(&service).await;
    (service, work, home)
}

/// Every lineage's newest refresh token is still accepted, and nothing was spent twice.
fn assert_every_lineage_alive<W: LiveStoreWorld>(world: &W, service: &Service) {
    let scratch = world.scratch();
    let report = scratch.report();
    assert_eq!(report.reuses, 0, "a refresh token was spent twice ({}): {report:?}", W::STORE);
    if W::STORE == "keychain" {
        // Claude would read a credential file only when the Keychain fails it; nobody made one.
        assert!(!scratch.credentials_path().exists(), "a login was written to the file");
    }
    let live = world.live_refresh_token();
    for account in service.list().unwrap().accounts {
        let token = if account.active {
            live.clone()
        } else {
            let path = std::fs::read_dir(scratch.vault.join("snapshots"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().contains(&account.organization_uuid))
                .expect("a snapshot");
            let snapshot = scratch.read_json(&path).unwrap();
            snapshot["login"]["refreshToken"].as_str().unwrap().to_owned()
        };
        let status = scratch.fake.control().inspect_token(&token);
        assert_eq!(
            status.state,
            TokenState::Live,
            "{}'s refresh token is {:?} ({})",
            account.alias,
            status.state,
            W::STORE
        );
    }
}

/// Runs `scenario` as two tests, one on each live store: the `..._file` and `..._keychain` names.
macro_rules! on_both_stores {
    ($scenario:ident: $file:ident, $keychain:ident) => {
        on_both_stores!(#[tokio::test] $scenario: $file, $keychain);
    };
    (#[$test:meta] $scenario:ident: $file:ident, $keychain:ident) => {
        #[$test]
        async fn $file() {
            $scenario(Scratch::create().await).await;
        }

        #[$test]
        async fn $keychain() {
            $scenario(KeychainScratch::create().await).await;
        }
    };
}

on_both_stores!(k01: k01_a_background_refresh_is_synced_before_switching_away_file,
    k01_a_background_refresh_is_synced_before_switching_away_keychain);

async fn k01<W: LiveStoreWorld>(world: W) {
    let (service, _work, _home) = two_accounts(&world).await;
    service.use_account("work").await.unwrap();

    // A Claude session idling in the background rotates work's live token: r1 -> r2.
    let outcome = world.claude().refresh(Mode::V2_1_332).await.unwrap();
    assert_eq!(outcome, RefreshOutcome::Refreshed);
    let r2 = world.live_refresh_token();

    service.use_account("home").await.expect("switch away from work");
    service.use_account("work").await.expect("switch back to work");
    assert_eq!(world.live_refresh_token(), r2, "use work installs r2, the newest");

    // Claude goes on refreshing the login it was given, which is the live lineage.
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    assert_every_lineage_alive(&world, &service);
}

on_both_stores!(k02: k02_the_live_login_is_recognised_by_account_not_by_token_file,
    k02_the_live_login_is_recognised_by_account_not_by_token_keychain);

async fn k02<W: LiveStoreWorld>(world: W) {
    let (service, work, _home) = two_accounts(&world).await;
    service.use_account("work").await.unwrap();
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);

    // No token of the live login matches work's snapshot any more; work is still active.
    assert_eq!(service.list().unwrap().active.as_deref(), Some("work"));
    // The watcher proves it by account and stores the newer token.
    let mut changes = service.subscribe();
    assert!(service.reconcile(&ReconcileState::default()).await);
    let scratch = world.scratch();
    assert!(!world.live_refresh_token().is_empty(), "a live login");
    assert_eq!(scratch.snapshot_refresh_token(&work), world.live_refresh_token());
    let _ = changes.try_recv();
    assert_every_lineage_alive(&world, &service);
}

on_both_stores!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    k12: k12_switchboard_never_spends_the_live_token_outside_claudes_locks_file,
    k12_switchboard_never_spends_the_live_token_outside_claudes_locks_keychain);

async fn k12<W: LiveStoreWorld>(world: W) {
    // Minute-long tokens are always within Claude's five-minute window: every check
    // refreshes, and so does every switch.
    world.scratch().fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    let (service, _work, _home) = two_accounts(&world).await;
    // Claude retries a busy lock after one to two seconds; retrying within milliseconds lets
    // the session get in between switches, so it really refreshes all along.
    let claude = world.claude().with_lock_retry(LockRetry {
        retries: 200,
        min_wait: Duration::from_millis(5),
        max_wait: Duration::from_millis(20),
    });
    let session = tokio::spawn(async move {
        claude.run(Mode::V2_1_332, Duration::from_millis(50), Duration::from_secs(4)).await
    });
    let mut switches = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        for alias in ["work", "home"] {
            service.use_account(alias).await.expect("switch while Claude refreshes");
            switches += 1;
        }
        let status = service
            .status(switchboard::protocol::StatusParams { alias: None, validate: true })
            .await
            .expect("validate while Claude refreshes");
        assert!(status.account.is_some());
    }
    let summary = session.await.unwrap();
    eprintln!("{}: {switches} switches while the simulated Claude made {summary:?}", W::STORE);
    assert!(summary.refreshed > 0, "Claude really refreshed meanwhile");
    assert_eq!(summary.invalid_grant, 0, "Claude never got invalid_grant");
    assert_eq!(summary.errors, 0, "Claude could always read and write its store");
    assert_every_lineage_alive(&world, &service);
}

on_both_stores!(older_claude_mid_refresh:
    a_switch_waits_for_an_older_claude_mid_refresh_and_loses_nothing_file,
    a_switch_waits_for_an_older_claude_mid_refresh_and_loses_nothing_keychain);

async fn older_claude_mid_refresh<W: LiveStoreWorld>(world: W) {
    let (service, _work, _home) = two_accounts(&world).await;
    service.use_account("work").await.unwrap();
    let claude = world.claude();
    // Claude 2.1.112 merges its result over whatever the store holds when it is done, so a
    // switch landing mid-refresh would be overwritten; holding its lock prevents that.
    let refresh = tokio::spawn(async move {
        claude
            .refresh_with(RefreshOptions {
                mode: Mode::V2_1_112,
                only_if_expiring: false,
                hold_lock: Duration::from_millis(800),
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let used = service.use_account("home").await.expect("the switch waits, then happens");
    assert_eq!(used.active.alias, "home");
    assert_eq!(refresh.await.unwrap().unwrap(), RefreshOutcome::Refreshed);

    // Claude's rotated work token was synced before home went in, and home stayed in.
    assert_eq!(service.list().unwrap().active.as_deref(), Some("home"));
    service.use_account("work").await.expect("back to work with the rotated token");
    assert_every_lineage_alive(&world, &service);
}

/// A live store whose writes fail, as a full disk or a Keychain that refuses would; reads go
/// to the store the world really uses.
#[derive(Debug)]
struct RefusingStore(Arc<dyn LiveStore>);

impl LiveStore for RefusingStore {
    fn location(&self) -> StoreLocation {
        self.0.location()
    }
    fn read(&self) -> Result<Option<LiveRead>, StoreError> {
        self.0.read()
    }
    fn write(&self, _: &Revision, _: &CredentialDoc) -> Result<Revision, StoreError> {
        Err(StoreError::Unavailable {
            location: self.0.location(),
            reason: "no space left on device".into(),
        })
    }
}

on_both_stores!(k16: k16_a_failed_store_write_keeps_the_previous_login_file,
    k16_a_failed_store_write_keeps_the_previous_login_keychain);

async fn k16<W: LiveStoreWorld>(world: W) {
    let scratch = world.scratch();
    let (service, _work, _home) = two_accounts(&world).await;
    drop(service);
    let env = scratch.environment();
    let paths = ClaudePaths::resolve(&env).unwrap();
    let store = Arc::new(RefusingStore(open_live_store(&env, &paths).unwrap()));
    let config = scratch.service_config(&[]);
    let service = Service::with_store(config, paths, store).unwrap();
    let mut changes = service.subscribe();
    let live_before = world.live_login();
    assert!(live_before["refreshToken"].is_string(), "home is live in the {} store", W::STORE);
    let account_before = scratch.oauth_account();

    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::StoreUnavailable));
    assert!(error.to_string().contains("no space left"), "{error}");
    assert_eq!(world.live_login(), live_before);
    assert_eq!(scratch.oauth_account(), account_before);
    assert!(changes.try_recv().is_err(), "no didChange claims a switch");
    assert_eq!(service.list().unwrap().active.as_deref(), Some("home"));
}

on_both_stores!(proving_refresh_refused_by_the_store:
    a_refresh_made_to_prove_a_login_is_kept_when_the_live_store_refuses_it_file,
    a_refresh_made_to_prove_a_login_is_kept_when_the_live_store_refuses_it_keychain);

/// Rule 3: adding a login whose access token has died needs a refresh to learn whose it is.
/// The refresh spends the live refresh token, so when the live store then refuses the new
/// tokens they must still be written somewhere durable before the error is returned.
async fn proving_refresh_refused_by_the_store<W: LiveStoreWorld>(world: W) {
    let scratch = world.scratch();
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(0),
        ..Default::default()
    });
    let ada = scratch.account("ada@example.com", "Example Corp");
    let minted = world.login(&ada).await;
    let env = scratch.environment();
    let paths = ClaudePaths::resolve(&env).unwrap();
    let store = Arc::new(RefusingStore(open_live_store(&env, &paths).unwrap()));
    let service = Service::with_store(scratch.service_config(&[]), paths, store).unwrap();

    let error = service.add_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::StoreUnavailable), "{error}");
    let control = scratch.fake.control();
    assert_eq!(
        control.inspect_token(minted.refresh_token.expose()).state,
        TokenState::Spent,
        "the add refreshed the live login ({})",
        W::STORE
    );
    let aside = service.vault().read_aside().unwrap();
    let kept: Vec<_> = aside
        .iter()
        .filter(|e| control.inspect_token(e.login.refresh_token.expose()).state == TokenState::Live)
        .collect();
    assert_eq!(kept.len(), 1, "the refreshed tokens were kept aside ({}): {aside:?}", W::STORE);
    assert_eq!(scratch.report().reuses, 0);
}

on_both_stores!(k04_installed: k04_use_of_the_blanked_account_installs_its_snapshot_when_it_still_works_file,
    k04_use_of_the_blanked_account_installs_its_snapshot_when_it_still_works_keychain);

async fn k04_installed<W: LiveStoreWorld>(world: W) {
    let (service, _work, home) = two_accounts(&world).await;
    // Installed by a switch, the entry names its account, as Claude 2.1.332's entries do.
    service.use_account("work").await.unwrap();
    service.use_account("home").await.unwrap();
    assert_eq!(world.live_login()["accountUuid"], home.ids.account_uuid.as_str());
    let home_refresh = world.scratch().snapshot_refresh_token(&home);
    world.blank_live_login();

    // The blank claims home, but Claude Code holds no usable login: `use home` must not
    // answer success with nothing installed. Home's last good snapshot still works, so it
    // goes back in.
    let used = service.use_account("home").await.expect("home's snapshot is still good");
    assert_eq!(used.active.alias, "home");
    assert_eq!(used.active.state, AccountState::Ok, "{used:?}");
    assert_eq!(world.live_refresh_token(), home_refresh, "the snapshot was installed");
    assert_eq!(used.previous.as_deref(), Some("work"), "previous is not home itself");
    assert_eq!(world.scratch().report().reuses, 0);
}

on_both_stores!(k04_dead: k04_use_of_the_blanked_account_is_refused_when_its_lineage_is_dead_file,
    k04_use_of_the_blanked_account_is_refused_when_its_lineage_is_dead_keychain);

async fn k04_dead<W: LiveStoreWorld>(world: W) {
    let scratch = world.scratch();
    // Home was added a moment ago, so its validation is fresh: only the blank tells that its
    // lineage died. The entry names no account; the catalog says home is active.
    let (service, _work, home) = two_accounts(&world).await;
    let home_lineage = scratch.report().lineages[1].lineage.clone();
    scratch.fake.control().revoke_lineage(&home_lineage).unwrap();
    world.blank_live_login();
    let live_before = world.live_document();
    let home_path = scratch.snapshot_path(&home);
    let home_before = std::fs::read(&home_path).unwrap();

    let error = service.use_account("home").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::NeedsLogin), "{error}");
    assert_eq!(world.live_document(), live_before, "the blank stays; nothing dead went in");
    assert_eq!(std::fs::read(&home_path).unwrap(), home_before);
    let output = scratch.cli(&["use", "home"]).await;
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
}
