//! Several Switchboard processes on one vault, as with one sidecar per editor window: a change
//! made through any of them, or from a terminal, reaches every other one's clients quickly,
//! marked as external.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_tests::harness::{Framing, Scratch};

async fn two_accounts() -> Scratch {
    let scratch = Scratch::new().await;
    scratch.add_work_and_home_by_cli().await;
    scratch
}

#[tokio::test]
async fn a_switch_through_one_sidecar_reaches_another_within_a_second() {
    let scratch = two_accounts().await;
    let mut first = scratch.sidecar(Framing::Lsp).await;
    let mut second = scratch.sidecar(Framing::Ndjson).await;
    // Both are up and have read the world before the switch.
    assert_eq!(second.request("account/list", json!({})).await["result"]["active"], "home");
    assert_eq!(first.request("account/list", json!({})).await["result"]["active"], "home");

    let started = Instant::now();
    let used = first.request("account/use", json!({"alias": "work"})).await;
    assert_eq!(used["result"]["active"]["alias"], "work");
    let change = second
        .notification(Duration::from_secs(1))
        .await
        .expect("the second sidecar announces the switch within a second");
    let latency = started.elapsed();
    eprintln!("second sidecar saw the switch {latency:?} after it was asked for");
    assert_eq!(change["active"], "work");
    assert_eq!(change["external"], true);
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn a_switch_from_the_terminal_reaches_a_running_sidecar_within_a_second() {
    let scratch = two_accounts().await;
    let mut sidecar = scratch.sidecar(Framing::Lsp).await;
    assert_eq!(sidecar.request("account/list", json!({})).await["result"]["active"], "home");

    let started = Instant::now();
    assert!(scratch.cli(&["use", "work"]).await.status.success());
    let change = sidecar
        .notification(Duration::from_secs(1))
        .await
        .expect("the sidecar announces a terminal switch within a second");
    eprintln!("sidecar saw the terminal's switch {:?} after it started", started.elapsed());
    assert_eq!(change["active"], "work");
    assert_eq!(change["previous"], "home");
    assert_eq!(change["external"], true);
    sidecar.close().await;
}

#[tokio::test]
async fn a_login_made_outside_is_announced_as_unmanaged() {
    let scratch = two_accounts().await;
    let mut sidecar = scratch.sidecar(Framing::Ndjson).await;
    assert_eq!(sidecar.request("account/list", json!({})).await["result"]["active"], "home");

    let carol = scratch.account("carol@example.com", "Carol's Org");
    scratch.login(&carol).await;
    let change = sidecar.notification(Duration::from_secs(2)).await.expect("a didChange");
    assert_eq!(change["external"], true);
    assert_eq!(change["active"], serde_json::Value::Null);
    assert_eq!(change["unmanaged"]["email"], "carol@example.com");
    sidecar.close().await;
}

#[tokio::test]
async fn a_token_coming_due_is_announced_as_a_state_change() {
    let scratch = Scratch::new().await;
    // Tokens that live 5 min 2 s are `ok` for two seconds, then `expiring`.
    scratch.fake.control().update_settings(switchboard_tests::fake::SettingsUpdate {
        access_token_lifetime_secs: Some(302),
        ..Default::default()
    });
    scratch.add_work_and_home_by_cli().await;
    let mut sidecar = scratch.sidecar(Framing::Ndjson).await;
    let list = sidecar.request("account/list", json!({})).await;
    assert_eq!(list["result"]["accounts"][0]["state"], "ok");

    // The watcher's periodic look (every 5 s) notices time passing, with nobody causing it.
    let change = sidecar.notification(Duration::from_secs(10)).await.expect("a didChange");
    assert_eq!(change["reason"], "state");
    assert_eq!(change["external"], false);
    let accounts = change["accounts"].as_array().unwrap();
    assert!(accounts.iter().any(|a| a["state"] == "expiring"), "{change}");
    sidecar.close().await;
}
