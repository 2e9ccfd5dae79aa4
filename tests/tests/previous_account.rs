//! `previous`: the account `use -` goes back to. It is never the account that is active now,
//! whatever Claude Code held before the switch.

use switchboard::protocol::ErrorKind;
use switchboard_tests::harness::Scratch;

#[tokio::test]
async fn previous_is_never_the_account_just_installed_after_leaving_an_unmanaged_login() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    // home -> work: previous is home.
    let used = service.use_account("work").await.unwrap();
    assert_eq!(used.previous.as_deref(), Some("home"));
    // A `/login` with an account nobody manages, then a switch back to home.
    let stranger = scratch.account("someone@else.example", "Else Org");
    scratch.login(&stranger).await;
    let used = service.use_account("home").await.unwrap();
    assert_eq!(used.active.alias, "home");
    assert_ne!(used.previous.as_deref(), Some("home"), "previous names the active account");
    let list = service.list().unwrap();
    assert_eq!(list.active.as_deref(), Some("home"));
    assert_ne!(list.previous.as_deref(), Some("home"), "previous names the active account");
    // `use -` cannot go back to a login nobody manages: it says so instead of doing nothing.
    let error = service.use_account("-").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::UnknownAccount), "{error}");
}
