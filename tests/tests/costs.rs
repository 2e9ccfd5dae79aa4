//! What a switch costs in requests to the service, counted by the fake: the design promises
//! that a switch to a fresh, recently validated target costs at most one round trip, and none
//! when nothing needs refreshing.

use switchboard::service::Service;
use switchboard_tests::fake::{RequestCounts, SettingsUpdate};
use switchboard_tests::harness::Scratch;
use switchboard_tests::sim_claude::Mode;

fn lifetime(scratch: &Scratch, secs: u64) {
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(secs),
        ..Default::default()
    });
}

/// The requests `use work` makes, from a world where home is live and both were just added.
async fn cost_of_switch(scratch: &Scratch, service: &Service) -> RequestCounts {
    let before = scratch.report().requests;
    service.use_account("work").await.expect("the switch");
    let after = scratch.report().requests;
    RequestCounts {
        token: after.token - before.token,
        profile: after.profile - before.profile,
        account: after.account - before.account,
        usage: after.usage - before.usage,
        revoke: after.revoke - before.revoke,
    }
}

#[tokio::test]
async fn a_fresh_validated_target_costs_nothing() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    assert_eq!(cost_of_switch(&scratch, &service).await, RequestCounts::default());
}

#[tokio::test]
async fn an_expiring_target_costs_one_refresh() {
    let scratch = Scratch::new().await;
    lifetime(&scratch, 60);
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    let cost = cost_of_switch(&scratch, &service).await;
    assert_eq!((cost.token, cost.profile), (1, 0), "{cost:?}");
}

#[tokio::test]
async fn a_live_login_claude_refreshed_costs_one_profile_call() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    let before = scratch.report().requests.token;
    scratch.claude().refresh(Mode::V2_1_332).await.unwrap();
    assert_eq!(scratch.report().requests.token, before + 1);
    let cost = cost_of_switch(&scratch, &service).await;
    assert_eq!((cost.token, cost.profile), (0, 1), "{cost:?}");
}

#[tokio::test]
async fn a_live_login_claude_refreshed_then_expired_costs_one_refresh() {
    let scratch = Scratch::new().await;
    let service = scratch.service();
    scratch.add_work_and_home(&service).await;
    // Claude's refresh hands out an access token that is already dead, so proving whose the
    // live login is takes a refresh; the answer names the account, which is proof enough.
    lifetime(&scratch, 0);
    scratch.claude().refresh(Mode::V2_1_332).await.unwrap();
    lifetime(&scratch, 8 * 3600);
    let cost = cost_of_switch(&scratch, &service).await;
    assert_eq!((cost.token, cost.profile), (1, 0), "{cost:?}");
    assert_eq!(scratch.report().reuses, 0);
}
