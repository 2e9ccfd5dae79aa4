use std::time::Instant;

use serde_json::json;

use super::*;

const REFRESH: &str = "sk-ant-ort01-vault-test-refresh";

fn login(access: &str, refresh: &str) -> OAuthLogin {
    serde_json::from_value(json!({
        "accessToken": access,
        "refreshToken": refresh,
        "expiresAt": 1796350846681_i64,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
        "futureField": {"kept": true},
    }))
    .unwrap()
}

fn id() -> AccountId {
    AccountId::new("8a3c5f0e-1b7d-4c1e-9f3a-2d6b7e8c9a01", "4f1d2e3c-5b6a-4798-8a9b-0c1d2e3f4a5b")
}

fn record(alias: &str, id: AccountId) -> AccountRecord {
    AccountRecord {
        alias: alias.to_owned(),
        id,
        email: Some("ada@example.com".into()),
        display_name: Some("Ada".into()),
        organization_name: Some("Example Corp".into()),
        subscription_type: Some("max".into()),
        validated_at: Some(10),
        synced_at: None,
        needs_login: false,
        added_at: 5,
    }
}

fn scratch() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path().join("vault")).unwrap();
    (dir, vault)
}

#[test]
fn missing_files_read_as_empty() {
    let (_dir, vault) = scratch();
    assert_eq!(vault.read_catalog().unwrap(), Catalog::default());
    assert_eq!(vault.read_snapshot(&id()).unwrap(), None);
    assert!(vault.read_aside().unwrap().is_empty());
}

#[test]
fn catalog_round_trips() {
    let (_dir, vault) = scratch();
    let mut catalog = Catalog::default();
    catalog.accounts.push(record("work", id()));
    catalog.accounts.push(record("side", AccountId::new("a2", "o2")));
    catalog.active = Some("work".into());
    catalog.previous = Some("side".into());
    vault.write_catalog(&catalog).unwrap();
    assert_eq!(vault.read_catalog().unwrap(), catalog);
}

#[test]
fn catalog_that_breaks_the_rules_is_not_written() {
    let (_dir, vault) = scratch();
    let mut catalog = Catalog::default();
    catalog.accounts.push(record("work", id()));
    catalog.accounts.push(record("work", AccountId::new("a2", "o2")));
    assert!(matches!(vault.write_catalog(&catalog), Err(VaultError::InvalidCatalog(_))));
    assert!(!vault.catalog_path().exists());
}

#[test]
fn snapshot_round_trips_with_unknown_keys() {
    let (_dir, vault) = scratch();
    let snapshot = Snapshot { id: id(), login: login("sk-ant-oat01-a", REFRESH), saved_at: 42 };
    vault.write_snapshot(&snapshot).unwrap();
    let back = vault.read_snapshot(&id()).unwrap().unwrap();
    assert_eq!(back, snapshot);
    assert_eq!(back.login.extra["futureField"], json!({"kept": true}));
    assert_eq!(back.login.refresh_token.expose(), REFRESH);

    vault.remove_snapshot(&id()).unwrap();
    assert_eq!(vault.read_snapshot(&id()).unwrap(), None);
    vault.remove_snapshot(&id()).unwrap();
}

#[test]
fn snapshot_files_are_named_by_identity() {
    let (_dir, vault) = scratch();
    let path = vault.snapshot_path(&id()).unwrap();
    assert_eq!(path.parent().unwrap(), vault.snapshots_dir());
    assert_eq!(
        path.file_name().unwrap(),
        "8a3c5f0e-1b7d-4c1e-9f3a-2d6b7e8c9a01.4f1d2e3c-5b6a-4798-8a9b-0c1d2e3f4a5b.json"
    );
    let sneaky = AccountId::new("../../etc", "passwd");
    assert!(matches!(vault.snapshot_path(&sneaky), Err(VaultError::InvalidId { .. })));
    assert!(vault.read_snapshot(&sneaky).is_err());
}

#[test]
fn blank_or_foreign_logins_are_never_stored_as_snapshots() {
    let (_dir, vault) = scratch();
    let good = Snapshot { id: id(), login: login("sk-ant-oat01-a", REFRESH), saved_at: 1 };
    vault.write_snapshot(&good).unwrap();

    let blank = Snapshot { login: login("", ""), ..good.clone() };
    assert!(matches!(vault.write_snapshot(&blank), Err(VaultError::BlankLogin { .. })));

    let mut foreign = good.clone();
    foreign.login.account_uuid = Some("someone-else".into());
    let err = vault.write_snapshot(&foreign).unwrap_err();
    assert!(matches!(err, VaultError::IdentityMismatch { .. }), "{err}");

    assert_eq!(vault.read_snapshot(&id()).unwrap().unwrap(), good);
}

#[cfg(unix)]
#[test]
fn folders_are_0700_and_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, vault) = scratch();
    let mut catalog = Catalog::default();
    catalog.accounts.push(record("work", id()));
    vault.write_catalog(&catalog).unwrap();
    vault.write_snapshot(&Snapshot { id: id(), login: login("a", REFRESH), saved_at: 1 }).unwrap();
    let aside = vault.keep_aside(&login("b", "r-b"), "test").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    drop(runtime.block_on(vault.lock(Duration::from_millis(10))).unwrap());

    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for folder in [vault.dir().to_owned(), vault.snapshots_dir(), vault.aside_dir()] {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    for file in
        [vault.catalog_path(), vault.snapshot_path(&id()).unwrap(), aside, vault.lock_path()]
    {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn corrupt_and_half_written_files_are_reported_and_kept() {
    let (_dir, vault) = scratch();
    let snapshot_path = vault.snapshot_path(&id()).unwrap();
    let whole = serde_json::to_vec(&SnapshotFile {
        version: SNAPSHOT_VERSION,
        id: id(),
        saved_at: 1,
        login: login("sk-ant-oat01-a", REFRESH),
    })
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("half written", whole[..whole.len() / 2].to_vec(), "ends early"),
        ("empty", Vec::new(), "ends early"),
        ("garbage", b"{not json".to_vec(), "not valid JSON"),
        // A token where a number belongs: serde would quote it in its own message.
        (
            "wrong type",
            format!(r#"{{"version":1,"accountUuid":"a","organizationUuid":"o","savedAt":"{REFRESH}","accounts":"{REFRESH}","login":{{}}}}"#)
                .into_bytes(),
            "expected fields",
        ),
        ("no version", br#"{"accounts":[]}"#.to_vec(), "no version"),
    ];
    for (what, bytes, reason) in cases {
        for path in [vault.catalog_path(), snapshot_path.clone()] {
            fs::write(&path, &bytes).unwrap();
            let err = if path == vault.catalog_path() {
                vault.read_catalog().unwrap_err()
            } else {
                vault.read_snapshot(&id()).unwrap_err()
            };
            let message = err.to_string();
            assert!(matches!(err, VaultError::Corrupt { .. }), "{what}: {message}");
            assert!(message.contains(&path.display().to_string()), "{what}: {message}");
            assert!(message.contains(reason), "{what}: {message}");
            assert!(!message.contains(REFRESH), "{what}: {message}");
            assert_eq!(fs::read(&path).unwrap(), bytes, "{what}: file must stay as it was");
        }
    }
}

#[test]
fn snapshot_of_another_account_in_the_wrong_file_is_corrupt() {
    let (_dir, vault) = scratch();
    let other = AccountId::new("a2", "o2");
    vault
        .write_snapshot(&Snapshot { id: other.clone(), login: login("a", REFRESH), saved_at: 1 })
        .unwrap();
    fs::rename(vault.snapshot_path(&other).unwrap(), vault.snapshot_path(&id()).unwrap()).unwrap();
    let err = vault.read_snapshot(&id()).unwrap_err();
    assert!(err.to_string().contains("holds the snapshot of a2/o2"), "{err}");
}

#[test]
fn newer_formats_are_refused_clearly() {
    let (_dir, vault) = scratch();
    fs::write(vault.catalog_path(), br#"{"version":7,"accounts":"a shape we cannot know"}"#)
        .unwrap();
    let err = vault.read_catalog().unwrap_err();
    assert!(matches!(err, VaultError::UnsupportedVersion { found: 7, supported: 1, .. }), "{err}");
    assert!(err.to_string().contains("upgrade Switchboard"), "{err}");
}

#[test]
fn keep_aside_never_overwrites_and_does_not_duplicate() {
    let (_dir, vault) = scratch();
    // Same refresh token, different access tokens: the file names can collide within one
    // millisecond, and neither file may replace the other.
    let first = login("sk-ant-oat01-first", REFRESH);
    let second = login("sk-ant-oat01-second", REFRESH);
    let a = vault.keep_aside(&first, "unmanaged login found").unwrap();
    let a_bytes = fs::read(&a).unwrap();
    let b = vault.keep_aside(&second, "unmanaged login found").unwrap();
    assert_ne!(a, b);
    assert_eq!(fs::read(&a).unwrap(), a_bytes);

    assert_eq!(vault.keep_aside(&first, "seen again").unwrap(), a);
    let kept = vault.read_aside().unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept.iter().find(|e| e.path == a).unwrap().login, first);
    assert_eq!(kept.iter().find(|e| e.path == b).unwrap().reason, "unmanaged login found");
    assert!(!a.to_string_lossy().contains(REFRESH));
}

#[test]
fn keep_aside_skips_past_an_unreadable_file_without_touching_it() {
    let (_dir, vault) = scratch();
    let junk = vault.aside_dir().join("0-junk.json");
    fs::write(&junk, b"{half").unwrap();
    let kept = vault.keep_aside(&login("a", "r"), "test").unwrap();
    assert_ne!(kept, junk);
    assert_eq!(fs::read(&junk).unwrap(), b"{half");
    assert_eq!(vault.read_aside().unwrap().len(), 1);
}

#[tokio::test]
async fn lock_excludes_a_second_holder_until_released() {
    let (dir, vault) = scratch();
    // A second vault value on the same folder opens its own handle, as another process does.
    let other = Vault::open(dir.path().join("vault")).unwrap();
    let held = vault.lock(Duration::from_millis(50)).await.unwrap();

    let started = Instant::now();
    let err = other.lock(Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, VaultError::Busy { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(err.to_string().contains("200 ms"), "{err}");
    // The same vault value is no exception: each lock call is its own holder.
    assert!(vault.lock(Duration::ZERO).await.is_err());

    drop(held);
    let again = other.lock(Duration::from_millis(50)).await.unwrap();
    assert_eq!(again.path(), vault.lock_path());
}

#[tokio::test]
async fn a_waiter_gets_the_lock_when_the_holder_lets_go() {
    let (_dir, vault) = scratch();
    let held = vault.lock(Duration::ZERO).await.unwrap();
    let waiter = {
        let vault = vault.clone();
        tokio::spawn(async move { vault.lock(Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    drop(held);
    assert!(waiter.await.unwrap().is_ok());
}

#[test]
fn default_dir_prefers_switchboard_home() {
    let from_env = Vault::default_dir(Some("/tmp/sb-home")).unwrap();
    assert_eq!(from_env, PathBuf::from("/tmp/sb-home"));
    let relative = Vault::default_dir(Some("rel/home")).unwrap();
    assert!(relative.is_absolute() && relative.ends_with("rel/home"));
    if let Some(data) = dirs::data_dir() {
        assert_eq!(Vault::default_dir(Some("")).unwrap(), data.join("switchboard"));
        assert_eq!(Vault::default_dir(None).unwrap(), data.join("switchboard"));
    }
}
