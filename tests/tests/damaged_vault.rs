//! A vault with one damaged file: the damage is reported where that file is needed, and
//! everything that does not need it keeps working. The damaged file itself is never
//! overwritten: it may hold the only copy of a lineage's newest token.

use switchboard::protocol::{AccountState, ErrorKind};
use switchboard_tests::harness::Scratch;
use switchboard_tests::sim_claude::Mode;

/// The first 200 bytes of a snapshot: what a crash halfway through a copy by hand (or a full
/// disk) leaves behind.
fn half_write(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let half = bytes[..200].to_vec();
    std::fs::write(path, &half).unwrap();
    half
}

#[tokio::test]
async fn a_corrupt_snapshot_does_not_block_the_other_accounts() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    let (work, _home) = scratch.add_work_and_home(&service).await;
    let spare = scratch.account("ada@spare.example", "Spare Org");
    scratch.login(&spare).await;
    service.add_account("spare").await.unwrap();
    // Claude Code is on `spare`; `work`'s snapshot is damaged.
    let damaged = half_write(&scratch.snapshot_path(&work));

    let list = service.list().expect("list works with one damaged snapshot");
    let state_of =
        |alias: &str| list.accounts.iter().find(|a| a.alias == alias).map(|a| a.state).unwrap();
    assert_eq!(state_of("work"), AccountState::Unknown);
    assert_eq!(state_of("home"), AccountState::Ok);
    assert_eq!(list.active.as_deref(), Some("spare"));
    service.status(Default::default()).await.expect("status of the active account works");

    // A switch between two healthy accounts works, and answers normally.
    let used = service.use_account("home").await.expect("switch between healthy accounts");
    assert_eq!(used.active.alias, "home");
    assert_eq!(scratch.oauth_account()["emailAddress"], "ada@home.example");

    // The damaged account itself is refused, clearly, and nothing changes.
    let live = scratch.live_login();
    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::StoreUnavailable), "{error}");
    assert!(error.to_string().contains("corrupt"), "{error}");
    assert_eq!(scratch.live_login(), live);
    assert_eq!(std::fs::read(scratch.snapshot_path(&work)).unwrap(), damaged);
}

#[tokio::test]
async fn a_corrupt_snapshot_of_the_active_account_is_never_overwritten() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    let (_work, home) = scratch.add_work_and_home(&service).await;
    // Claude Code is on `home`, whose snapshot is damaged; a Claude session rotates its token.
    let damaged = half_write(&scratch.snapshot_path(&home));
    scratch.claude().refresh(Mode::V2_1_332).await.unwrap();
    let live = scratch.live_login();

    let list = service.list().expect("list works with one damaged snapshot");
    assert_eq!(list.active.as_deref(), Some("home"));

    // Leaving `home` would have to store its newest token in the damaged file: refused, and the
    // newest token stays where it is, in Claude's store.
    let error = service.use_account("work").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::StoreUnavailable), "{error}");
    assert_eq!(scratch.live_login(), live);
    assert_eq!(std::fs::read(scratch.snapshot_path(&home)).unwrap(), damaged);
    assert_eq!(scratch.report().reuses, 0);
}
