//! The vault's snapshots outside its folder: in the macOS Keychain (played by
//! `fake-security`), and in a real Secret Service (GNOME Keyring on a private D-Bus). The
//! switch and sync flows must keep every lineage alive there exactly as with files, a vault
//! of files must move there without losing a login, and a vault that moved must never be
//! read as empty by a process started with another setting.

use std::process::Output;

use serde_json::Value;
use switchboard::vault::backend::BackendRecord;
use switchboard_tests::harness::{KeychainScratch, Scratch, TestAccount};
use switchboard_tests::secret_service::SecretService;
use switchboard_tests::sim_claude::{Mode, RefreshOutcome};

/// Exit code of a store that cannot be read or written (README).
const EXIT_STORE: i32 = 8;

fn key(account: &TestAccount) -> String {
    format!("{}.{}", account.ids.account_uuid, account.ids.organization_uuid)
}

fn backend_record(scratch: &Scratch) -> BackendRecord {
    let bytes = std::fs::read(scratch.vault.join("backend.json")).expect("backend.json");
    serde_json::from_slice(&bytes).expect("backend.json parses")
}

fn snapshot_files(scratch: &Scratch) -> Vec<String> {
    std::fs::read_dir(scratch.vault.join("snapshots"))
        .map(|entries| {
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default()
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}): {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn assert_no_token(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains("sk-ant-"), "a token in the output: {text}");
    }
}

/// The login a snapshot stored in some backend holds.
fn snapshot_login(bytes: &[u8]) -> Value {
    let snapshot: Value = serde_json::from_slice(bytes).expect("a snapshot is JSON");
    snapshot["login"].clone()
}

#[tokio::test]
async fn keychain_vault_keeps_each_snapshot_in_an_item_of_its_own_service() {
    let mut world = KeychainScratch::new().await;
    world.set_env("SWITCHBOARD_VAULT_BACKEND", "keychain");
    let service = world.service();
    let (work, home) = world.add_work_and_home(&service).await;

    let record = backend_record(&world);
    assert!(record.service.starts_with("Switchboard-"), "{record:?}");
    assert!(snapshot_files(&world).is_empty(), "no snapshot file: {:?}", snapshot_files(&world));
    for account in [&work, &home] {
        let item = world.keychain.get(&record.service, &key(account)).expect("a snapshot item");
        assert!(
            snapshot_login(&item)["refreshToken"].as_str().unwrap().starts_with("sk-ant-ort01-")
        );
    }

    // K01 on this vault: a background refresh of work, then away and back.
    service.use_account("work").await.expect("use work");
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let r2 = world.live_refresh_token();
    service.use_account("home").await.expect("use home");
    let synced = world.keychain.get(&record.service, &key(&work)).unwrap();
    assert_eq!(snapshot_login(&synced)["refreshToken"], r2.as_str(), "r2 was synced into work");
    service.use_account("work").await.expect("back to work");
    assert_eq!(world.live_refresh_token(), r2);
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(world.report().reuses, 0);

    // Claude's own item and the MCP item beside it are the only other items, untouched.
    let services: Vec<String> =
        world.keychain.load().items.iter().map(|i| i.service.clone()).collect();
    assert!(services.iter().all(|s| s == &record.service || s == &world.item_service()));

    // No token went through an argument list, the snapshots' included.
    let mut tokens = vec![world.live_refresh_token()];
    for item in world.keychain.load().items {
        let login = &snapshot_login(&item.value());
        for field in ["accessToken", "refreshToken"] {
            tokens.extend(login[field].as_str().map(str::to_owned));
        }
    }
    world.assert_no_token_in_argv(&tokens);

    let status = world.cli(&["--json", "status"]).await;
    assert_ok(&status, "status");
    let vault = &stdout_json(&status)["vault"];
    assert_eq!(vault["kind"], "keychain");
    assert_eq!(vault["service"], record.service.as_str());

    // Removing an account deletes its item.
    service.remove_account("home").await.expect("remove home");
    assert_eq!(world.keychain.get(&record.service, &key(&home)), None);
}

#[tokio::test]
async fn a_vault_of_files_moves_to_the_keychain_one_snapshot_at_a_time_without_loss() {
    let mut world = KeychainScratch::new().await;
    let (work, home) = {
        let files = world.service();
        world.add_work_and_home(&files).await
    };
    assert_eq!(snapshot_files(&world).len(), 2);

    world.set_env("SWITCHBOARD_VAULT_BACKEND", "keychain");
    let service = world.service();
    let record = backend_record(&world);
    // Nothing moved yet, and both accounts are still seen, from their files.
    let view = service.list().unwrap();
    assert_eq!(view.accounts.len(), 2);
    assert!(view.accounts.iter().all(|a| a.fingerprint.is_some()), "{view:?}");

    // A snapshot moves when it is next written: Claude rotates home's live token, and
    // leaving home stores the newer login in the Keychain and drops the older file.
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let home_r2 = world.live_refresh_token();
    service.use_account("work").await.expect("use work");
    let moved = world.keychain.get(&record.service, &key(&home)).expect("home moved");
    assert_eq!(snapshot_login(&moved)["refreshToken"], home_r2.as_str());
    let left = snapshot_files(&world);
    assert_eq!(left.len(), 1, "only work's file is left: {left:?}");
    assert!(left[0].starts_with(&work.ids.account_uuid));

    // Work was installed from its file; its next rotation moves it too.
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    service.use_account("home").await.expect("use home");
    assert!(snapshot_files(&world).is_empty(), "{:?}", snapshot_files(&world));
    service.use_account("work").await.expect("back to work");
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(world.report().reuses, 0);

    // A process started with the old setting would see an empty vault; it is refused instead.
    let refused = world.cli_with_env(&["list"], &[("SWITCHBOARD_VAULT_BACKEND", "file")]).await;
    assert_eq!(refused.status.code(), Some(EXIT_STORE));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("SWITCHBOARD_VAULT_BACKEND=keychain"), "{message}");
    assert_no_token(&refused);
}

#[tokio::test]
async fn a_bad_backend_setting_is_refused_at_start() {
    let scratch = Scratch::new().await;
    let refused = scratch.cli_with_env(&["list"], &[("SWITCHBOARD_VAULT_BACKEND", "cloud")]).await;
    assert_eq!(refused.status.code(), Some(EXIT_STORE));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("file, keychain or keyring"), "{message}");
    assert!(!scratch.vault.join("backend.json").exists());
}

#[tokio::test]
async fn a_corrupt_backend_record_is_reported_and_left_alone() {
    let scratch = Scratch::new().await;
    std::fs::create_dir_all(&scratch.vault).unwrap();
    std::fs::write(scratch.vault.join("backend.json"), b"{\"version\":1,\"snap").unwrap();
    let refused =
        scratch.cli_with_env(&["list"], &[("SWITCHBOARD_VAULT_BACKEND", "keyring")]).await;
    assert_eq!(refused.status.code(), Some(EXIT_STORE));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("backend.json is corrupt"), "{message}");
    assert_eq!(
        std::fs::read(scratch.vault.join("backend.json")).unwrap(),
        b"{\"version\":1,\"snap"
    );
}

#[tokio::test]
async fn keyring_vault_against_a_real_secret_service() {
    let mut scratch = Scratch::new().await;
    let mut keyring = SecretService::start(scratch.dir.path());
    scratch.set_env("DBUS_SESSION_BUS_ADDRESS", keyring.address());
    scratch.set_env("SWITCHBOARD_VAULT_BACKEND", "keyring");

    let (work, home) = scratch.add_work_and_home_by_cli().await;
    let record = backend_record(&scratch);
    assert!(snapshot_files(&scratch).is_empty(), "{:?}", snapshot_files(&scratch));
    for account in [&work, &home] {
        let stored = keyring.lookup(&record.service, &key(account)).expect("a keyring entry");
        assert!(snapshot_login(&stored)["refreshToken"].as_str().unwrap().starts_with("sk-ant-"));
    }

    // The switch with a background refresh in between, through the binary.
    assert_ok(&scratch.cli(&["use", "work"]).await, "use work");
    assert_eq!(scratch.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let r2 = scratch.live_refresh_token();
    assert_ok(&scratch.cli(&["use", "home"]).await, "use home");
    let synced = keyring.lookup(&record.service, &key(&work)).unwrap();
    assert_eq!(snapshot_login(&synced)["refreshToken"], r2.as_str());
    let back = scratch.cli(&["use", "-"]).await;
    assert_ok(&back, "use -");
    assert_no_token(&back);
    assert_eq!(scratch.live_refresh_token(), r2);
    assert_eq!(scratch.report().reuses, 0);

    let status = scratch.cli(&["--json", "status"]).await;
    assert_ok(&status, "status");
    assert_eq!(stdout_json(&status)["vault"]["kind"], "keyring");

    // The keyring goes away: a clear failure naming it, nothing lost or rewritten.
    let live_before = std::fs::read(scratch.credentials_path()).unwrap();
    keyring.stop_keyring();
    let failed = scratch.cli(&["use", "home"]).await;
    assert_eq!(
        failed.status.code(),
        Some(EXIT_STORE),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(String::from_utf8_lossy(&failed.stderr).contains("keyring"));
    assert_no_token(&failed);
    assert_eq!(std::fs::read(scratch.credentials_path()).unwrap(), live_before);
}

#[tokio::test]
async fn a_process_started_before_a_move_refuses_to_write_where_nobody_looks() {
    let mut world = KeychainScratch::new().await;
    let before_move = world.service();
    world.add_work_and_home(&before_move).await;
    world.set_env("SWITCHBOARD_VAULT_BACKEND", "keychain");
    let after_move = world.service();
    after_move.use_account("work").await.expect("the moved vault switches");

    // The process that still thinks in files must neither read nor write them now.
    assert_eq!(world.claude().refresh(Mode::V2_1_332).await.unwrap(), RefreshOutcome::Refreshed);
    let files_before = snapshot_files(&world);
    let err = before_move.use_account("home").await.expect_err("refused");
    assert!(err.to_string().contains("SWITCHBOARD_VAULT_BACKEND=keychain"), "{err}");
    assert_eq!(snapshot_files(&world), files_before, "no snapshot file written");
    after_move.use_account("home").await.expect("the moved vault keeps working");
    assert_eq!(world.report().reuses, 0);
}

#[tokio::test]
async fn a_keyring_that_cannot_be_reached_is_never_recorded() {
    let scratch = Scratch::new().await;
    scratch.add_work_and_home_by_cli().await;
    let unreachable = [
        ("SWITCHBOARD_VAULT_BACKEND", "keyring"),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
    ];
    let refused = scratch.cli_with_env(&["list"], &unreachable).await;
    assert_eq!(refused.status.code(), Some(EXIT_STORE));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("keyring"));
    assert!(!scratch.vault.join("backend.json").exists());
    // The vault of files goes on as it was.
    assert_ok(&scratch.cli(&["use", "work"]).await, "use work with files");
}
