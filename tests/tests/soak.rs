//! The drift soak: simulated Claude sessions of both refresh behaviours and several
//! Switchboard services on one vault, all at once, with tokens that need refreshing on every
//! use, plus outside `/login`s now and then. At the end no refresh token was spent twice, every
//! account's newest token is still accepted, and every account can be switched to.
//!
//! It runs for `SWITCHBOARD_SOAK_SECS` seconds (default 6, which CI uses) and prints its
//! counts; set a larger value to soak for longer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rand::RngExt;
use switchboard::claude::lock::RefreshLocks;
use switchboard::claude::paths::ClaudePaths;
use switchboard::protocol::{ErrorKind, StatusParams};
use switchboard::service::{ReconcileState, Service};
use switchboard_tests::fake::{SettingsUpdate, TokenState};
use switchboard_tests::harness::{Scratch, TestAccount};
use switchboard_tests::sim_claude::{LockRetry, Mode};

const SIDECARS: usize = 3;

#[derive(Debug, Default)]
struct Counts {
    switches: AtomicU32,
    refused: AtomicU32,
    validations: AtomicU32,
    reconciles: AtomicU32,
    outside_logins: AtomicU32,
    adds: AtomicU32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_no_lineage_lost_and_no_token_spent_twice() {
    if std::env::var_os("SOAK_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("switchboard=info,switchboard_tests=info")
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let seconds: u64 =
        std::env::var("SWITCHBOARD_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let run_for = Duration::from_secs(seconds);
    let scratch = Arc::new(Scratch::new().await);
    // Every token is inside Claude's five-minute window from birth: each check refreshes.
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    let accounts: Vec<(String, TestAccount)> = [
        ("work", "ada@example.com", "Example Corp"),
        ("home", "ada@home.example", "Ada's Individual Org"),
        ("side", "ada@example.com", "Side Project"),
    ]
    .into_iter()
    .map(|(alias, email, org)| (alias.to_owned(), scratch.account(email, org)))
    .collect();
    let services: Vec<Arc<Service>> = (0..SIDECARS).map(|_| scratch.service()).collect();
    for (alias, account) in &accounts {
        scratch.login(account).await;
        services[0].add_account(alias).await.expect("initial add");
    }
    let aliases: Vec<String> = accounts.iter().map(|(a, _)| a.clone()).collect();
    let counts = Arc::new(Counts::default());

    // Two idle Claude sessions, one of each refresh behaviour, checking every 30 ms. They
    // retry a busy lock sooner than Claude's 1-2 s so that they get their turn often in a
    // short run; the locking itself is Claude's.
    let sessions: Vec<_> = [Mode::V2_1_332, Mode::V2_1_112]
        .into_iter()
        .map(|mode| {
            let claude = scratch.claude().with_lock_retry(LockRetry {
                retries: 20,
                min_wait: Duration::from_millis(20),
                max_wait: Duration::from_millis(80),
            });
            tokio::spawn(async move { claude.run(mode, Duration::from_millis(30), run_for).await })
        })
        .collect();

    // Each service does what its editor's user and watcher would: switch, validate, reconcile.
    let mut workers = Vec::new();
    for (index, service) in services.iter().enumerate() {
        let (service, aliases, counts) = (service.clone(), aliases.clone(), counts.clone());
        workers.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + run_for;
            let state = ReconcileState::default();
            while tokio::time::Instant::now() < deadline {
                // A person switches now and then, not in a tight loop: leave Claude its turns.
                let pause = rand::rng().random_range(10..60);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let roll = rand::rng().random_range(0..10);
                let alias = aliases[rand::rng().random_range(0..aliases.len())].clone();
                match roll {
                    0..=5 => match service.use_account(&alias).await {
                        Ok(_) => counts.switches.fetch_add(1, Ordering::Relaxed),
                        Err(error) if error.kind() == Some(ErrorKind::Busy) => {
                            counts.refused.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(error) => panic!("sidecar {index}: use {alias} failed: {error}"),
                    },
                    6..=7 => {
                        let params = StatusParams { alias: Some(alias.clone()), validate: true };
                        match service.status(params).await {
                            Ok(status) => {
                                let state = status.account.expect("the account").state;
                                assert_ne!(
                                    state,
                                    switchboard::protocol::AccountState::NeedsLogin,
                                    "sidecar {index}: {alias} lost its login"
                                );
                                counts.validations.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(error) if error.kind() == Some(ErrorKind::Busy) => {
                                counts.refused.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(error) => panic!("sidecar {index}: status {alias}: {error}"),
                        }
                    }
                    _ => {
                        service.reconcile(&state).await;
                        counts.reconciles.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }

    // Now and then someone runs `/login` with a new account, which is then added.
    let outside = {
        let (scratch, service, counts) = (scratch.clone(), services[1].clone(), counts.clone());
        tokio::spawn(async move {
            let mut added = 0;
            let deadline = tokio::time::Instant::now() + run_for;
            while tokio::time::Instant::now() + Duration::from_millis(800) < deadline {
                tokio::time::sleep(Duration::from_millis(700)).await;
                added += 1;
                let extra = scratch.account(&format!("guest{added}@example.com"), "Guests");
                // A `/login` overwrites the live login. A person logs in long after the last
                // background refresh, which the watchers have synced by then; here refreshes
                // come every few milliseconds, so the login holds Claude's refresh locks and
                // lets Switchboard catch up first, or it would destroy a token nobody had
                // stored yet, which no switcher could save.
                // Switchboard takes the vault before Claude's locks; this holds Claude's, so it
                // must not wait on the vault, or each would wait on the other: when the vault
                // is busy it lets go and tries again.
                let paths = ClaudePaths::resolve(&scratch.environment()).unwrap();
                loop {
                    let locks =
                        RefreshLocks::acquire(&paths, Duration::from_secs(30)).await.unwrap();
                    if service.reconcile(&ReconcileState::default()).await {
                        scratch.login(&extra).await;
                        drop(locks);
                        break;
                    }
                    drop(locks);
                    // Back off long enough for the switch waiting on Claude's locks to get them.
                    let pause = rand::rng().random_range(200..400);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                counts.outside_logins.fetch_add(1, Ordering::Relaxed);
                let alias = format!("guest{added}");
                // A switch may land between the login and the add, which then finds another
                // managed account live and says so (the switch kept the guest's login aside).
                // A busy answer is tried again, as a person would: the next `/login` would
                // otherwise overwrite a login nobody had taken in.
                for attempt in 1.. {
                    match service.add_account(&alias).await {
                        Ok(account) => {
                            let email = format!("guest{added}@example.com");
                            assert_eq!(account.email.as_deref(), Some(email.as_str()));
                            counts.adds.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) if error.kind() == Some(ErrorKind::AlreadyManaged) => {}
                        Err(error) if error.kind() == Some(ErrorKind::Busy) && attempt < 5 => {
                            continue;
                        }
                        Err(error) => panic!("adding {alias}: {error}"),
                    }
                    break;
                }
            }
        })
    };

    for worker in workers {
        worker.await.expect("a sidecar worker panicked");
    }
    outside.await.expect("the outside-login worker panicked");
    let summaries: Vec<_> = futures_join(sessions).await;

    // Every account, including the guests, is usable, and the service saw no reuse.
    let service = &services[2];
    let final_aliases: Vec<String> =
        service.list().unwrap().accounts.into_iter().map(|a| a.alias).collect();
    for alias in &final_aliases {
        service.use_account(alias).await.unwrap_or_else(|e| panic!("{alias} is unusable: {e}"));
        let live = scratch.live_refresh_token();
        assert_eq!(scratch.fake.control().inspect_token(&live).state, TokenState::Live);
    }
    // No lineage lost: every lineage the service ever minted still has its newest refresh
    // token somewhere Switchboard keeps or reads: the live store, a snapshot, or aside.
    let mut kept = vec![scratch.live_refresh_token()];
    for entry in std::fs::read_dir(scratch.vault.join("snapshots")).unwrap() {
        let snapshot = scratch.read_json(&entry.unwrap().path()).unwrap();
        kept.push(snapshot["login"]["refreshToken"].as_str().unwrap_or_default().to_owned());
    }
    let aside = service.vault().read_aside().unwrap();
    kept.extend(aside.iter().map(|entry| entry.login.refresh_token.expose().to_owned()));
    let control = scratch.fake.control();
    let alive: std::collections::HashSet<String> = kept
        .iter()
        .map(|token| control.inspect_token(token))
        .filter(|status| status.state == TokenState::Live)
        .filter_map(|status| status.lineage)
        .collect();
    let report = scratch.report();
    let lost: Vec<_> = report.lineages.iter().filter(|l| !alive.contains(&l.lineage)).collect();
    eprintln!(
        "soak {seconds}s: {} switches, {} validations, {} reconciles, {} busy, {} outside logins \
         ({} added), {} accounts; Claude sessions {:?}; service: {} token requests, {} lineages, \
         {} refresh tokens spent, {} reuses, {} kept aside, {} lineages lost",
        counts.switches.load(Ordering::Relaxed),
        counts.validations.load(Ordering::Relaxed),
        counts.reconciles.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.outside_logins.load(Ordering::Relaxed),
        counts.adds.load(Ordering::Relaxed),
        final_aliases.len(),
        summaries,
        report.requests.token,
        report.lineages.len(),
        report.lineages.iter().map(|l| l.spent).sum::<u32>(),
        report.reuses,
        aside.len(),
        lost.len(),
    );
    assert!(lost.is_empty(), "lineages whose newest token is nowhere: {lost:?}");
    assert_eq!(report.reuses, 0, "a refresh token was spent twice");
    for summary in &summaries {
        assert_eq!(summary.invalid_grant, 0, "a Claude session was refused: {summary:?}");
    }
    assert!(counts.switches.load(Ordering::Relaxed) > 0);
}

async fn futures_join<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("a Claude session panicked"));
    }
    results
}
