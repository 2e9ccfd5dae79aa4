//! Switchboard beside the real Claude Code: the native 2.1.332 build and the 2.1.112 `cli.js`,
//! installed by `scripts/install-test-deps.sh`. Claude reaches the fake through its TLS proxy
//! (its OAuth URLs cannot be pointed elsewhere), with a scratch `HOME` and the variables that
//! keep it off every other host. `claude -p hi` with an `expiresAt` in the past makes it
//! refresh for real; the model call after that fails harmlessly against the fake.
//!
//! These tests run one at a time: each starts a large binary, and the lock test depends on
//! Claude holding its locks for a measured window.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_tests::fake::{Endpoint, Fault, TlsProxy, TokenState};
use switchboard_tests::harness::{ClaudeBuild, Framing, RealClaude, Scratch, TestAccount};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A scratch world behind the TLS proxy with `work` and `home` added through the CLI and
/// Claude Code left on `work`.
async fn two_accounts() -> (Scratch, TlsProxy, TestAccount, TestAccount) {
    let scratch = Scratch::new().await;
    let proxy = scratch.fake.start_tls_proxy().await.expect("start the TLS proxy");
    let work = scratch.account("ada@example.com", "Example Corp");
    let home = scratch.account("ada@home.example", "Ada's Individual Org");
    scratch.login(&work).await;
    cli_ok(&scratch, &["add", "work"]).await;
    scratch.login(&home).await;
    cli_ok(&scratch, &["add", "home"]).await;
    cli_ok(&scratch, &["use", "work"]).await;
    (scratch, proxy, work, home)
}

async fn cli_ok(scratch: &Scratch, args: &[&str]) -> Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = scratch.cli(&with_json).await;
    assert!(
        output.status.success(),
        "switchboard {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

fn lineage_of(scratch: &Scratch, account: &TestAccount) -> String {
    let report = scratch.report();
    let lineage = report
        .lineages
        .iter()
        .find(|l| l.organization_uuid == account.ids.organization_uuid)
        .expect("the account has a lineage");
    lineage.lineage.clone()
}

/// The string at `path` in the JSON file `file`, empty when absent or unreadable (a file being
/// replaced is read again on the next poll).
fn refresh_token_at(file: &std::path::Path, path: &[&str]) -> String {
    let Ok(bytes) = std::fs::read(file) else { return String::new() };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else { return String::new() };
    for key in path {
        value = value[*key].take();
    }
    value.as_str().unwrap_or_default().to_owned()
}

/// Waits until `done` holds, polling, and answers how long it took.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn interop_background_refresh_is_synced_native() {
    background_refresh_is_synced(RealClaude::native()).await;
}

#[tokio::test]
async fn interop_background_refresh_is_synced_legacy() {
    background_refresh_is_synced(RealClaude::legacy()).await;
}

/// Claude refreshes the active account; its snapshot follows within seconds and clients hear
/// of it; switching away and back installs Claude's tokens, and Claude goes on refreshing
/// that lineage afterwards.
async fn background_refresh_is_synced(claude: RealClaude) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (scratch, proxy, work, _home) = two_accounts().await;
    let mut sidecar = scratch.sidecar(Framing::Ndjson).await;
    let list = sidecar.request("account/list", json!({})).await;
    assert_eq!(list["result"]["active"], "work", "{list}");

    scratch.expire_live_login();
    let spent_before = scratch.live_refresh_token();
    // Let the watcher take in the edit above before Claude runs, so that the change looked
    // for below is Claude's.
    while sidecar.notification(Duration::from_millis(700)).await.is_some() {}

    // Watches, while Claude runs, for the live login to change and the snapshot to follow.
    let watcher = {
        let live_path = scratch.credentials_path();
        let snapshot_path = scratch.snapshot_path(&work);
        let spent = spent_before.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut live_changed = None;
            while started.elapsed() < Duration::from_secs(60) {
                let live = refresh_token_at(&live_path, &["claudeAiOauth", "refreshToken"]);
                if !live.is_empty() && live != spent {
                    let changed = *live_changed.get_or_insert_with(Instant::now);
                    if refresh_token_at(&snapshot_path, &["login", "refreshToken"]) == live {
                        return Some((changed, Instant::now()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        })
    };
    let run = scratch.run_claude(&claude, &proxy, &["-p", "hi"]).await;
    let refreshed = scratch.live_refresh_token();
    assert!(
        !refreshed.is_empty() && refreshed != spent_before,
        "Claude refreshed the live login; stderr: {}",
        run.stderr()
    );
    assert_eq!(scratch.fake.control().inspect_token(&refreshed).state, TokenState::Live);

    let change = sidecar
        .notification(Duration::from_secs(10))
        .await
        .expect("an account/didChange after Claude's refresh");
    let (live_changed, synced) = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("the snapshot follows within seconds")
        .expect("the watcher task")
        .expect("the snapshot follows the live login");
    assert_eq!(scratch.snapshot_refresh_token(&work), refreshed);
    let work_view = change["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alias"] == "work"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(change["active"], "work", "{change}");
    assert_ne!(work_view["state"], "expired", "the change shows the refreshed login: {change}");

    // Away and back: home is installed, then work's refreshed login comes back untouched.
    let away = sidecar.request("account/use", json!({"alias": "home"})).await;
    assert_eq!(away["result"]["active"]["alias"], "home", "{away}");
    let back = sidecar.request("account/use", json!({"alias": "work"})).await;
    assert_eq!(back["result"]["active"]["alias"], "work", "{back}");
    assert_eq!(scratch.live_refresh_token(), refreshed, "work came back with Claude's tokens");
    assert_eq!(scratch.oauth_account()["emailAddress"], "ada@example.com");

    // Claude, given work back, refreshes it again: the lineage it holds is the live one.
    scratch.expire_live_login();
    let again = scratch.run_claude(&claude, &proxy, &["-p", "hi"]).await;
    let next = scratch.live_refresh_token();
    assert!(
        !next.is_empty() && next != refreshed,
        "Claude refreshed work again after the round trip; stderr: {}",
        again.stderr()
    );
    assert_eq!(scratch.fake.control().inspect_token(&next).state, TokenState::Live);
    let report = scratch.report();
    assert_eq!(report.lineage(&lineage_of(&scratch, &work)).unwrap().spent, 2, "{report:?}");
    assert_eq!(report.reuses, 0);
    sidecar.close().await;
    eprintln!(
        "{:?}: claude -p hi (with a refresh) took {:?}; the snapshot followed the live login \
         {:?} after Claude wrote it ({}); a second refresh after away and back took {:?}",
        claude.build,
        run.elapsed,
        synced - live_changed,
        change["reason"],
        again.elapsed
    );
}

/// Claude refreshes with a slow token endpoint, so it holds its refresh locks for about three
/// seconds; `switchboard use home` starts inside that window and must wait, then file
/// Claude's refreshed tokens under work and install home without either side losing a token.
async fn switch_during_claudes_refresh(claude: RealClaude) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (scratch, proxy, work, home) = two_accounts().await;
    scratch.expire_live_login();
    let spent_before = scratch.live_refresh_token();
    let home_refresh = scratch.snapshot_refresh_token(&home);
    scratch.fake.control().set_fault(
        Endpoint::Token,
        Fault { latency_ms: Some(3000), times: Some(1), ..Fault::default() },
    );

    let locks = claude.refresh_locks(&scratch);
    let started = Instant::now();
    let mut child =
        scratch.claude_command(&claude, &proxy, &["-p", "hi"]).spawn().expect("start claude");
    let locked = wait_until("Claude taking its refresh locks", Duration::from_secs(30), || {
        locks.iter().all(|l| l.is_dir())
    })
    .await;

    // Notes when Claude lets go, while the switch below is waiting.
    let watched: Vec<PathBuf> = locks.clone();
    let released = tokio::spawn(async move {
        while watched.iter().any(|l| l.is_dir()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Instant::now()
    });
    let use_started = Instant::now();
    let used = scratch.cli(&["--json", "use", "home"]).await;
    let use_done = Instant::now();
    assert!(used.status.success(), "use failed: {}", String::from_utf8_lossy(&used.stderr));
    let released = released.await.expect("the lock watcher");
    assert!(
        released > use_started,
        "Claude let go of its locks {:?} before the switch started: nothing was waited for",
        use_started - released
    );
    assert!(
        use_done >= released,
        "the switch finished {:?} before Claude released its locks",
        released - use_done
    );

    // Claude's refresh went into work's snapshot, and that token is the lineage's live one.
    let work_refresh = scratch.snapshot_refresh_token(&work);
    assert_ne!(work_refresh, spent_before);
    assert_eq!(scratch.fake.control().inspect_token(&work_refresh).state, TokenState::Live);
    let work_lineage = lineage_of(&scratch, &work);
    let report = scratch.report();
    let lineage = report.lineages.iter().find(|l| l.lineage == work_lineage).unwrap();
    assert_eq!(lineage.spent, 1, "Claude refreshed work once, Switchboard not at all");

    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("claude exits")
        .expect("wait for claude");
    let claude_total = started.elapsed();
    // Whatever Claude did after its refresh, home's tokens are what Claude Code is left with.
    assert_eq!(scratch.live_refresh_token(), home_refresh, "the live store holds home");
    // After its refresh, Claude (2.1.332 and 2.1.112 alike, watched here) fetches the profile
    // with the access token it holds in memory, work's, and may write that identity into
    // `oauthAccount` after the switch. Switchboard's reconcile puts the name right again.
    let claude_wrote_work =
        scratch.oauth_account()["accountUuid"] == work.ids.account_uuid.as_str();
    let service = scratch.service();
    assert!(service.reconcile(&Default::default()).await);
    let oauth_account = scratch.oauth_account();
    assert_eq!(oauth_account["accountUuid"], home.ids.account_uuid.as_str(), "{oauth_account}");
    assert_eq!(oauth_account["organizationUuid"], home.ids.organization_uuid.as_str());
    let named_home = !claude_wrote_work;
    let list = cli_ok(&scratch, &["list"]).await;
    assert_eq!(list["active"], "home", "{list}");
    assert_eq!(scratch.snapshot_refresh_token(&work), work_refresh, "nothing overwrote it");
    assert_eq!(scratch.report().reuses, 0);
    eprintln!(
        "{:?}: oauthAccount after Claude exited names {}",
        claude.build,
        if named_home { "home (Switchboard's write)" } else { "work (Claude's profile write)" }
    );
    eprintln!(
        "{:?}: Claude held its locks {locked:?} after start; `use` started {:?} later, waited \
         {:?}, finished {:?} after the locks were released; claude exited {status} after \
         {claude_total:?}",
        claude.build,
        use_started - (started + locked),
        use_done - use_started,
        use_done - released,
    );
}

#[tokio::test]
async fn interop_switch_waits_for_claudes_refresh_locks_native() {
    switch_during_claudes_refresh(RealClaude::native()).await;
}

#[tokio::test]
async fn interop_switch_waits_for_claudes_refresh_locks_legacy() {
    switch_during_claudes_refresh(RealClaude::legacy()).await;
}

#[tokio::test]
async fn interop_dead_login_is_needs_login_and_the_snapshot_is_kept_native() {
    dead_login_is_needs_login(RealClaude::native()).await;
}

#[tokio::test]
async fn interop_dead_login_is_needs_login_and_the_snapshot_is_kept_legacy() {
    dead_login_is_needs_login(RealClaude::legacy()).await;
}

async fn dead_login_is_needs_login(claude: RealClaude) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (scratch, proxy, work, _home) = two_accounts().await;
    scratch.fake.control().revoke_lineage(&lineage_of(&scratch, &work)).expect("revoke work");
    scratch.expire_live_login();
    let snapshot_before = std::fs::read(scratch.snapshot_path(&work)).expect("work's snapshot");

    let live_before = scratch.live_login();
    let run = scratch.run_claude(&claude, &proxy, &["-p", "hi"]).await;
    let live = scratch.live_login();
    match claude.build {
        ClaudeBuild::Native => {
            assert_eq!(live["accessToken"], "", "Claude blanked the dead login: {}", run.stderr());
            assert_eq!(live["refreshToken"], "");
            assert_eq!(live["expiresAt"], 0);
        }
        ClaudeBuild::Legacy => {
            // 2.1.112 leaves a refused login as it was (watched): nothing on disk says it
            // died, so only asking the service tells. Validation does, under Claude's locks.
            assert_eq!(live, live_before, "2.1.112 left the dead login: {}", run.stderr());
            let status = cli_ok(&scratch, &["status", "--validate"]).await;
            assert_eq!(status["account"]["state"], "needsLogin", "{status}");
        }
    }

    let list = cli_ok(&scratch, &["list"]).await;
    let work_view = list["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alias"] == "work"))
        .cloned()
        .expect("work is listed");
    assert_eq!(work_view["state"], "needsLogin", "{list}");
    let status = cli_ok(&scratch, &["status", "work"]).await;
    assert_eq!(status["account"]["state"], "needsLogin", "{status}");
    assert_eq!(
        std::fs::read(scratch.snapshot_path(&work)).unwrap(),
        snapshot_before,
        "the last good snapshot is kept byte for byte"
    );

    // Switching to the other account still works and copies the blank nowhere.
    cli_ok(&scratch, &["use", "home"]).await;
    assert_eq!(std::fs::read(scratch.snapshot_path(&work)).unwrap(), snapshot_before);
    assert!(!scratch.live_login()["accessToken"].as_str().unwrap_or_default().is_empty());
    eprintln!("{:?}: claude -p hi against a revoked login took {:?}", claude.build, run.elapsed);
}

#[tokio::test]
async fn interop_auth_status_names_the_switched_account() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (scratch, proxy, work, home) = two_accounts().await;
    // Offline: the proxy address leads nowhere, so Claude can answer only from its files.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("http://{}", listener.local_addr().unwrap())
    };
    for claude in [RealClaude::native(), RealClaude::legacy()] {
        for (alias, account) in [("work", &work), ("home", &home)] {
            cli_ok(&scratch, &["use", alias]).await;
            let requests_before = scratch.report().requests;
            let started = Instant::now();
            let run = scratch
                .claude_command(&claude, &proxy, &["auth", "status"])
                .env("HTTPS_PROXY", &nowhere)
                .output();
            let output = tokio::time::timeout(Duration::from_secs(60), run)
                .await
                .expect("auth status finishes")
                .expect("start claude");
            let elapsed = started.elapsed();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "auth status failed: {stderr}");
            let status: Value =
                serde_json::from_slice(&output.stdout).expect("auth status is JSON");
            assert_eq!(status["loggedIn"], true, "{status}");
            assert_eq!(status["email"], account.email.as_str(), "{status}");
            assert_eq!(status["orgId"], account.ids.organization_uuid.as_str(), "{status}");
            assert_eq!(status["orgName"], account.organization_name.as_str(), "{status}");
            assert_eq!(scratch.report().requests, requests_before, "nothing reached the fake");
            eprintln!(
                "{:?} claude auth status after `use {alias}`, offline: {elapsed:?}",
                claude.build
            );
        }
    }

    // Online, 2.1.332 also asks the profile endpoint when `oauthAccount` lacks the fields it
    // caches (billingType, accountCreatedAt, ...); the answer still names the account in use.
    let claude = RealClaude::native();
    let profile_before = scratch.report().requests.profile;
    let run = scratch.run_claude(&claude, &proxy, &["auth", "status"]).await;
    let status: Value = serde_json::from_str(&run.stdout()).expect("auth status is JSON");
    assert_eq!(status["email"], home.email.as_str(), "{status}");
    eprintln!(
        "Native claude auth status online took {:?} and made {} profile call(s)",
        run.elapsed,
        scratch.report().requests.profile - profile_before
    );
    assert_eq!(scratch.report().reuses, 0);
}
