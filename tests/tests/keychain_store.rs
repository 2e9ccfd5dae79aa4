//! The Keychain live store against `fake-security`: reads and compare-and-swap writes of the
//! right item, Claude's precedence between the Keychain and the file, and every way the
//! Keychain can be unusable.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchboard::claude::keychain::{KeychainFirstStore, KeychainStore, StoreChoice};
use switchboard::claude::login::CredentialDoc;
use switchboard::claude::store::{
    FileStore, LiveStore, Revision, StoreError, StoreLocation, StoreWarning,
};
use switchboard::secret::Secret;
use switchboard_tests::fake_security::FakeKeychain;
use tempfile::TempDir;

const SERVICE: &str = "Claude Code-credentials";
const ACCOUNT: &str = "ada";

struct World {
    dir: TempDir,
    keychain: FakeKeychain,
    security: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let keychain = FakeKeychain::in_dir(dir.path());
        let security = keychain
            .write_wrapper(
                Path::new(env!("CARGO_BIN_EXE_fake-security")),
                &dir.path().join("security"),
            )
            .unwrap();
        World { dir, keychain, security }
    }

    fn claude_dir(&self) -> PathBuf {
        self.dir.path().join("claude")
    }

    fn item_store(&self) -> KeychainStore {
        KeychainStore::new(
            self.security.clone(),
            SERVICE.to_owned(),
            ACCOUNT.to_owned(),
            self.claude_dir().join(".storage-write.lock"),
        )
    }

    fn file_store(&self) -> FileStore {
        FileStore::new(
            self.claude_dir().join(".credentials.json"),
            self.claude_dir().join(".storage-write.lock"),
        )
    }

    fn store(&self) -> KeychainFirstStore {
        KeychainFirstStore::new(self.item_store(), self.file_store())
    }

    fn put_item(&self, doc: &Value) {
        self.keychain.put(SERVICE, ACCOUNT, &serde_json::to_vec(doc).unwrap());
    }

    fn item(&self) -> Option<Value> {
        self.keychain.get(SERVICE, ACCOUNT).map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    fn put_file(&self, doc: &Value) {
        std::fs::create_dir_all(self.claude_dir()).unwrap();
        std::fs::write(self.file_store().path(), serde_json::to_vec(doc).unwrap()).unwrap();
    }

    fn file(&self) -> Option<Value> {
        let bytes = std::fs::read(self.file_store().path()).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// Every argument list any `security` process was given, joined.
    fn all_argv(&self) -> String {
        self.keychain
            .records()
            .iter()
            .filter(|r| r.get("argv").is_some())
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn login_doc(refresh: &str) -> Value {
    json!({
        "claudeAiOauth": {
            "accessToken": format!("sk-ant-oat01-{refresh}"),
            "refreshToken": format!("sk-ant-ort01-{refresh}"),
            "expiresAt": 1796350846681_i64,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max"
        }
    })
}

fn rotated(doc: &CredentialDoc, refresh: &str) -> CredentialDoc {
    let mut doc = doc.clone();
    let login = doc.login.as_mut().unwrap();
    login.access_token = Secret::new(format!("sk-ant-oat01-{refresh}"));
    login.refresh_token = Secret::new(format!("sk-ant-ort01-{refresh}"));
    doc
}

fn refresh_of(value: &Value) -> &str {
    value["claudeAiOauth"]["refreshToken"].as_str().unwrap()
}

#[test]
fn reads_and_writes_the_named_item_with_no_token_in_any_argv() {
    let world = World::new();
    let store = world.item_store();
    assert!(store.read().unwrap().is_none());
    world.put_item(&login_doc("r1"));

    let read = store.read().unwrap().unwrap();
    assert_eq!(read.doc.login.as_ref().unwrap().refresh_token.expose(), "sk-ant-ort01-r1");
    let written = store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-r2");
    assert_eq!(store.read().unwrap().unwrap().revision, written);

    // Every read named the account, the write went through `-i`, and no argv held a token.
    let records = world.keychain.records();
    let finds: Vec<&Value> =
        records.iter().filter(|r| r["argv"][0] == "find-generic-password").collect();
    assert!(!finds.is_empty());
    for find in finds {
        assert_eq!(
            find["argv"],
            json!(["find-generic-password", "-a", ACCOUNT, "-w", "-s", SERVICE])
        );
    }
    assert!(records.contains(&json!({"interactive": "add-generic-password"})));
    let argv = world.all_argv();
    for token in ["r1", "r2"] {
        assert!(!argv.contains(&format!("sk-ant-ort01-{token}")));
        assert!(!argv.contains(&hex::encode(format!("sk-ant-ort01-{token}"))));
    }
    assert!(!world.claude_dir().join(".storage-write.lock").exists(), "the lock was released");
}

#[test]
fn non_ascii_values_round_trip_through_hex() {
    let world = World::new();
    let mut doc = login_doc("r1");
    doc["claudeAiOauth"]["displayName"] = json!("Zoë Ångström");
    world.put_item(&doc);
    let store = world.item_store();
    let read = store.read().unwrap().unwrap();
    assert_eq!(read.doc.login.as_ref().unwrap().extra["displayName"], "Zoë Ångström");
    store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    let item = world.item().unwrap();
    assert_eq!(item["claudeAiOauth"]["displayName"], "Zoë Ångström");
    assert_eq!(refresh_of(&item), "sk-ant-ort01-r2");
}

#[test]
fn a_write_refuses_when_the_item_changed_since_it_was_read() {
    let world = World::new();
    world.put_item(&login_doc("r1"));
    let store = world.item_store();
    let read = store.read().unwrap().unwrap();
    // Claude rotates the token in between.
    world.put_item(&login_doc("claudes"));
    let err = store.write(&read.revision, &rotated(&read.doc, "ours")).unwrap_err();
    assert!(matches!(err, StoreError::Changed), "{err:?}");
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-claudes");
    let err = store.write(&Revision::absent(), &read.doc).unwrap_err();
    assert!(matches!(err, StoreError::Changed), "{err:?}");
}

#[test]
fn k08_the_mcp_item_under_unknown_is_never_read_or_touched() {
    let world = World::new();
    // The MCP item comes first, so a search without the account would find it.
    let mcp = br#"{"mcpOAuth":{"server":{"accessToken":"mcp-secret"}}}"#;
    world.keychain.put(SERVICE, "unknown", mcp);
    let store = world.store();
    assert!(store.read().unwrap().is_none(), "the MCP item is not the login");

    world.put_item(&login_doc("r1"));
    let read = store.read().unwrap().unwrap();
    assert!(read.doc.login.is_some());
    assert!(!read.doc.rest.contains_key("mcpOAuth"));
    store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    assert_eq!(world.keychain.get(SERVICE, "unknown").unwrap(), mcp);
    let items = world.keychain.load().items;
    assert_eq!(items.len(), 2);
    for record in world.keychain.records() {
        if let Some(argv) = record["argv"].as_array().filter(|a| a.len() > 1) {
            assert!(argv.iter().any(|a| a == "-a"), "every item command names the account");
        }
    }
}

#[test]
fn the_overflow_pointer_and_its_items_are_kept() {
    let world = World::new();
    let mut doc = login_doc("r1");
    doc["keychainOverflow"] = json!({"sections": ["mcpOAuth"], "items": ["a", "b"]});
    doc["pluginSecrets"] = json!({"p": {"k": "v"}});
    world.put_item(&doc);
    world.keychain.put(&format!("{SERVICE}-overflow-a"), ACCOUNT, b"sealed-a");
    world.keychain.put(&format!("{SERVICE}-overflow-b"), ACCOUNT, b"sealed-b");

    let store = world.store();
    let read = store.read().unwrap().unwrap();
    store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    let item = world.item().unwrap();
    assert_eq!(item["keychainOverflow"], doc["keychainOverflow"]);
    assert_eq!(item["pluginSecrets"], doc["pluginSecrets"]);
    assert_eq!(refresh_of(&item), "sk-ant-ort01-r2");
    assert_eq!(world.keychain.get(&format!("{SERVICE}-overflow-a"), ACCOUNT).unwrap(), b"sealed-a");
    assert_eq!(world.keychain.get(&format!("{SERVICE}-overflow-b"), ACCOUNT).unwrap(), b"sealed-b");
}

#[test]
fn a_keychain_value_wins_over_the_file_and_a_stale_file_is_reported() {
    let world = World::new();
    world.put_item(&login_doc("keychain"));
    world.put_file(&login_doc("file"));
    let store = world.store();
    let read = store.read().unwrap().unwrap();
    assert_eq!(read.doc.login.as_ref().unwrap().refresh_token.expose(), "sk-ant-ort01-keychain");
    assert_eq!(
        store.location(),
        StoreLocation::Keychain { service: SERVICE.into(), account: ACCOUNT.into() }
    );
    assert_eq!(store.last_choice(), Some(StoreChoice::Keychain { stale_file: true }));
    assert_eq!(
        store.warnings(),
        [StoreWarning::StaleFile { path: world.file_store().path().to_owned() }]
    );

    // The write goes to the Keychain; the file is left as it is and still reported.
    store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-r2");
    assert_eq!(refresh_of(&world.file().unwrap()), "sk-ant-ort01-file");
    assert_eq!(store.warnings().len(), 1);

    // A file that holds what the Keychain holds is a mirror, not a stale one.
    world.put_file(&world.item().unwrap());
    store.read().unwrap();
    assert!(store.warnings().is_empty());
}

#[test]
fn k11_a_locked_keychain_means_the_file_for_the_whole_operation() {
    let world = World::new();
    world.put_item(&login_doc("keychain"));
    world.put_file(&login_doc("file"));
    world.keychain.set_locked(true);
    let store = world.store();

    let read = store.read().unwrap().unwrap();
    assert_eq!(read.doc.login.as_ref().unwrap().refresh_token.expose(), "sk-ant-ort01-file");
    assert!(matches!(store.location(), StoreLocation::File { .. }));
    assert!(matches!(
        store.warnings().as_slice(),
        [StoreWarning::KeychainUnavailable { reason }] if reason.contains("locked")
    ));
    store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    assert_eq!(refresh_of(&world.file().unwrap()), "sk-ant-ort01-r2");
    world.keychain.set_locked(false);
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-keychain", "keychain untouched");
    assert!(!world.keychain.records().iter().any(|r| r["interactive"].is_string()));
}

#[test]
fn a_keychain_locked_between_read_and_write_makes_the_write_refuse() {
    let world = World::new();
    world.put_item(&login_doc("keychain"));
    world.put_file(&login_doc("file"));
    let store = world.store();
    let read = store.read().unwrap().unwrap();
    world.keychain.set_locked(true);
    // The choice moved to the file, which does not hold what was read: read again.
    let err = store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap_err();
    assert!(matches!(err, StoreError::Changed), "{err:?}");
    assert_eq!(refresh_of(&world.file().unwrap()), "sk-ant-ort01-file");
    world.keychain.set_locked(false);
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-keychain");
}

#[test]
fn a_missing_or_failing_security_means_the_file() {
    let world = World::new();
    world.put_file(&login_doc("file"));
    for program in [world.dir.path().join("no-such-program"), PathBuf::from("/bin/false")] {
        let keychain = KeychainStore::new(
            program.clone(),
            SERVICE.to_owned(),
            ACCOUNT.to_owned(),
            world.claude_dir().join(".storage-write.lock"),
        );
        let store = KeychainFirstStore::new(keychain, world.file_store());
        let read = store.read().unwrap().unwrap();
        assert_eq!(read.doc.login.as_ref().unwrap().refresh_token.expose(), "sk-ant-ort01-file");
        assert!(
            matches!(store.last_choice(), Some(StoreChoice::FileBecauseKeychainUnusable { .. })),
            "{program:?}"
        );
    }
}

#[test]
fn an_empty_keychain_and_an_existing_file_mean_the_file() {
    let world = World::new();
    world.put_file(&login_doc("file"));
    let store = world.store();
    let read = store.read().unwrap().unwrap();
    assert_eq!(read.doc.login.as_ref().unwrap().refresh_token.expose(), "sk-ant-ort01-file");
    assert_eq!(store.last_choice(), Some(StoreChoice::FileBecauseKeychainEmpty));
    assert!(store.warnings().is_empty());
    store.write(&read.revision, &rotated(&read.doc, "r2")).unwrap();
    assert_eq!(refresh_of(&world.file().unwrap()), "sk-ant-ort01-r2");
    assert!(world.item().is_none());
}

#[test]
fn with_nothing_anywhere_a_first_login_goes_to_the_keychain() {
    let world = World::new();
    let store = world.store();
    assert!(store.read().unwrap().is_none());
    let doc = CredentialDoc::parse(&serde_json::to_vec(&login_doc("r1")).unwrap()).unwrap();
    store.write(&Revision::absent(), &doc).unwrap();
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-r1");
    assert!(world.file().is_none());
}

#[test]
fn a_login_too_large_for_security_i_is_refused_and_nothing_changes() {
    let world = World::new();
    world.put_item(&login_doc("r1"));
    let store = world.store();
    let read = store.read().unwrap().unwrap();
    let mut big = rotated(&read.doc, "r2");
    big.rest.insert("mcpOAuth".into(), json!({"blob": "x".repeat(3000)}));
    let err = store.write(&read.revision, &big).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { limit: 4032, .. }), "{err:?}");
    assert!(!err.to_string().contains("sk-ant"), "{err}");
    assert_eq!(refresh_of(&world.item().unwrap()), "sk-ant-ort01-r1");
    assert!(!world.keychain.records().iter().any(|r| r["argv"][0] == "-i"));
}

#[test]
fn a_corrupt_item_is_reported_and_never_overwritten() {
    let world = World::new();
    world.keychain.put(SERVICE, ACCOUNT, b"{\"claudeAiOauth\": {\"accessToken\": \"sk-ant-oat01-x");
    world.put_file(&login_doc("file"));
    let store = world.store();
    let err = store.read().unwrap_err();
    assert!(matches!(err, StoreError::CorruptItem { .. }), "{err:?}");
    assert!(!err.to_string().contains("sk-ant"), "{err}");
    let doc = CredentialDoc::parse(&serde_json::to_vec(&login_doc("r2")).unwrap()).unwrap();
    assert!(matches!(store.write(&Revision::absent(), &doc), Err(StoreError::Changed)));
    assert!(world.keychain.get(SERVICE, ACCOUNT).unwrap().starts_with(b"{\"claudeAiOauth\""));
}
