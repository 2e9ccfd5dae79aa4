//! Every protocol error kind the operations can answer, each produced by the state that
//! causes it, and in every case nothing changed: the live login, `oauthAccount` and the
//! snapshots are as they were.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard::claude::lock::RefreshLocks;
use switchboard::claude::paths::ClaudePaths;
use switchboard::protocol::ErrorKind;
use switchboard::service::Service;
use switchboard_tests::fake::{Endpoint, Fault, SettingsUpdate};
use switchboard_tests::harness::Scratch;

/// `work` and `home` with minute-long tokens (always due for a refresh by Claude's rule), so
/// that switching to `work` must reach the token endpoint; Claude Code is left on `home`.
async fn due_for_refresh() -> (Scratch, Arc<Service>) {
    let scratch = Scratch::new().await;
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    (scratch, service)
}

/// What a failed operation must leave alone.
fn world(scratch: &Scratch) -> (Value, Value, Vec<Vec<u8>>) {
    let mut snapshots: Vec<_> = std::fs::read_dir(scratch.vault.join("snapshots"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    snapshots.sort();
    (scratch.live_login(), scratch.oauth_account(), snapshots)
}

async fn refused_with(
    service: &Service,
    scratch: &Scratch,
    alias: &str,
    kind: ErrorKind,
) -> String {
    let before = world(scratch);
    let error = service.use_account(alias).await.expect_err("the switch is refused");
    assert_eq!(error.kind(), Some(kind), "{error}");
    assert_eq!(world(scratch), before, "a refused switch changed something");
    assert_eq!(scratch.report().reuses, 0);
    error.to_string()
}

#[tokio::test]
async fn network_when_the_token_endpoint_fails() {
    let (scratch, service) = due_for_refresh().await;
    scratch
        .fake
        .control()
        .set_fault(Endpoint::Token, Fault { status: Some(503), ..Default::default() });
    let message = refused_with(&service, &scratch, "work", ErrorKind::Network).await;
    assert!(message.contains("nothing was changed"), "{message}");
    scratch.fake.control().clear_faults();
    service.use_account("work").await.expect("works again once the service is back");
}

#[tokio::test]
async fn network_when_the_service_is_unreachable() {
    let scratch = Scratch::new().await;
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    scratch.add_work_and_home(&scratch.service()).await;
    // A service whose endpoints point at a closed port: the network is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = scratch.service_config(&[]);
    config.endpoints = switchboard::oauth::Endpoints::from_env(
        Some(&format!("http://{closed}/v1/oauth/token")),
        Some(&format!("http://{closed}")),
    );
    let offline = Service::open(config).unwrap();
    refused_with(&offline, &scratch, "work", ErrorKind::Network).await;
}

#[tokio::test]
async fn rate_limited_when_the_service_says_slow_down() {
    let (scratch, service) = due_for_refresh().await;
    scratch.fake.control().set_fault(
        Endpoint::Token,
        Fault { status: Some(429), retry_after_secs: Some(7), ..Default::default() },
    );
    let before = world(&scratch);
    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::RateLimited));
    assert_eq!(error.data()["retryAfterMs"], 7000);
    assert_eq!(world(&scratch), before);
}

#[tokio::test]
async fn identity_mismatch_when_a_snapshot_holds_another_accounts_login() {
    let (scratch, service) = due_for_refresh().await;
    // Work's snapshot file is made to hold home's tokens (a copy gone wrong).
    let snapshots = scratch.vault.join("snapshots");
    let files: Vec<_> = std::fs::read_dir(&snapshots).unwrap().map(|e| e.unwrap().path()).collect();
    let list = service.list().unwrap();
    let work = list.accounts.iter().find(|a| a.alias == "work").unwrap();
    let (work_file, home_file) = if files[0].to_string_lossy().contains(&work.organization_uuid) {
        (&files[0], &files[1])
    } else {
        (&files[1], &files[0])
    };
    let mut forged = scratch.read_json(work_file).unwrap();
    let home_snapshot = scratch.read_json(home_file).unwrap();
    forged["login"] = home_snapshot["login"].clone();
    forged["login"].as_object_mut().unwrap().remove("accountUuid");
    forged["login"].as_object_mut().unwrap().remove("organizationUuid");
    std::fs::write(work_file, serde_json::to_vec(&forged).unwrap()).unwrap();
    // Home's own copy in Claude Code is then the same lineage: take it out of the way.
    service.remove_account("home").await.unwrap();
    let carol = scratch.account("carol@example.com", "Carol's Org");
    scratch.login(&carol).await;

    let before = scratch.live_login();
    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::IdentityMismatch), "{error}");
    assert!(error.to_string().contains("ada@home.example"), "{error}");
    assert_eq!(scratch.live_login(), before);
}

#[tokio::test]
async fn busy_when_claude_holds_its_refresh_lock() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    let service = Service::open(scratch.service_config(&[]))
        .unwrap()
        .with_lock_patience(Duration::from_millis(300), Duration::from_millis(300));
    // A Claude refresh in progress holds its locks (and keeps them fresh).
    let paths = ClaudePaths::resolve(&scratch.environment()).unwrap();
    let claude = RefreshLocks::acquire(&paths, Duration::from_secs(1)).await.unwrap();
    let before = world(&scratch);
    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Busy), "{error}");
    assert_eq!(error.data()["retryAfterMs"], 1000);
    assert_eq!(world(&scratch), before);
    drop(claude);
    service.use_account("work").await.expect("works once Claude is done");

    // Another Switchboard operation holding the vault answers busy the same way.
    let held = service.vault().lock(Duration::from_secs(1)).await.unwrap();
    let error = service.use_account("home").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Busy), "{error}");
    drop(held);
}

#[tokio::test]
async fn a_lock_that_cannot_be_made_is_unavailable_not_busy() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    // Claude's folder replaced by a file: no lock can be made inside it, and no one holds one.
    let claude_dir = scratch.claude_dir();
    std::fs::rename(&claude_dir, scratch.dir.path().join("moved-away")).unwrap();
    std::fs::write(&claude_dir, b"not a folder").unwrap();
    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::StoreUnavailable), "{error}");
    assert!(error.to_string().contains("refresh lock"), "{error}");
}
