//! The `fake-security` binary behaves like macOS's `security` where Switchboard and Claude
//! Code depend on it: exit codes, how `-w` prints a value, `-i` and its line limit, the locked
//! state, and the record of what each process was handed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;
use switchboard_tests::fake_security::{
    EXIT_DUPLICATE, EXIT_LOCKED, EXIT_NOT_FOUND, FakeKeychain, MAX_LINE,
};

const SERVICE: &str = "Claude Code-credentials";

fn security(keychain: &FakeKeychain, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-security"))
        .args(args)
        .env_clear()
        .envs(keychain.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fake-security");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn keychain_in(dir: &Path) -> FakeKeychain {
    FakeKeychain::in_dir(dir)
}

#[test]
fn find_add_and_delete_with_security_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    let find = ["find-generic-password", "-a", "ada", "-w", "-s", SERVICE];
    assert_eq!(security(&keychain, &find, None).status.code(), Some(EXIT_NOT_FOUND));

    let add = ["add-generic-password", "-a", "ada", "-s", SERVICE, "-w", "{\"k\":1}"];
    assert!(security(&keychain, &add, None).status.success());
    // Without -U an existing item is a duplicate; with it, an update.
    assert_eq!(security(&keychain, &add, None).status.code(), Some(EXIT_DUPLICATE));
    let update = ["add-generic-password", "-U", "-a", "ada", "-s", SERVICE, "-X", "7b7d"];
    assert!(security(&keychain, &update, None).status.success());
    let found = security(&keychain, &find, None);
    assert!(found.status.success());
    assert_eq!(found.stdout, b"{}\n");

    let delete = ["delete-generic-password", "-a", "ada", "-s", SERVICE];
    assert!(security(&keychain, &delete, None).status.success());
    assert_eq!(security(&keychain, &delete, None).status.code(), Some(EXIT_NOT_FOUND));
    assert!(keychain.load().items.is_empty());
}

#[test]
fn values_that_are_not_plain_ascii_print_as_hex() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    let value = "{\"name\":\"Zoë\"}";
    keychain.put(SERVICE, "ada", value.as_bytes());
    let found =
        security(&keychain, &["find-generic-password", "-a", "ada", "-w", "-s", SERVICE], None);
    assert_eq!(String::from_utf8(found.stdout).unwrap(), format!("{}\n", hex::encode(value)));
}

#[test]
fn a_search_without_an_account_finds_the_first_item_of_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    keychain.put(SERVICE, "unknown", b"{\"mcpOAuth\":{}}");
    keychain.put(SERVICE, "ada", b"{\"claudeAiOauth\":{}}");
    let found = security(&keychain, &["find-generic-password", "-w", "-s", SERVICE], None);
    assert_eq!(found.stdout, b"{\"mcpOAuth\":{}}\n", "the trap a missing -a falls into");
    let found =
        security(&keychain, &["find-generic-password", "-a", "ada", "-w", "-s", SERVICE], None);
    assert_eq!(found.stdout, b"{\"claudeAiOauth\":{}}\n");
}

#[test]
fn a_locked_keychain_answers_36() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    keychain.put(SERVICE, "ada", b"{}");
    assert!(security(&keychain, &["show-keychain-info"], None).status.success());
    keychain.set_locked(true);
    for args in [
        &["show-keychain-info"][..],
        &["find-generic-password", "-a", "ada", "-w", "-s", SERVICE],
        &["add-generic-password", "-U", "-a", "ada", "-s", SERVICE, "-X", "7b7d"],
        &["delete-generic-password", "-a", "ada", "-s", SERVICE],
    ] {
        assert_eq!(security(&keychain, args, None).status.code(), Some(EXIT_LOCKED), "{args:?}");
    }
    assert_eq!(keychain.get(SERVICE, "ada").unwrap(), b"{}");
}

#[test]
fn interactive_mode_runs_lines_and_records_only_command_names() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    let secret_hex = hex::encode("sk-ant-ort01-secret");
    let input =
        format!("add-generic-password -U -a \"ada\" -s \"{SERVICE}\" -X \"{secret_hex}\"\n");
    let output = security(&keychain, &["-i"], Some(&input));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(keychain.get(SERVICE, "ada").unwrap(), b"sk-ant-ort01-secret");
    assert_eq!(
        keychain.records(),
        [json!({"argv": ["-i"]}), json!({"interactive": "add-generic-password"})]
    );
    let record = std::fs::read_to_string(keychain.record_path()).unwrap();
    assert!(!record.contains(&secret_hex));
}

#[test]
fn interactive_lines_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    let prefix = format!("add-generic-password -U -a \"ada\" -s \"{SERVICE}\" -X \"");
    let hex_len = |total: usize| (total - prefix.len() - 1) & !1;
    let line_of = |total: usize| format!("{prefix}{}\"", "7b".repeat(hex_len(total) / 2));

    let fits = line_of(MAX_LINE);
    assert!(fits.len() <= MAX_LINE);
    assert!(security(&keychain, &["-i"], Some(&format!("{fits}\n"))).status.success());

    keychain.put(SERVICE, "ada", b"before");
    let too_long = format!("{prefix}{}\"", "7b".repeat((MAX_LINE - prefix.len()) / 2 + 1));
    assert!(too_long.len() > MAX_LINE);
    let output = security(&keychain, &["-i"], Some(&format!("{too_long}\n")));
    assert!(!output.status.success());
    assert_eq!(keychain.get(SERVICE, "ada").unwrap(), b"before", "nothing was written");
    assert_eq!(
        keychain.records().last().unwrap(),
        &json!({"interactive": "add-generic-password", "tooLong": true})
    );
}

#[test]
fn usage_errors_and_unknown_commands_fail() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    assert_eq!(security(&keychain, &["find-generic-password", "-a"], None).status.code(), Some(2));
    assert_eq!(
        security(&keychain, &["find-generic-password", "-Q", "x"], None).status.code(),
        Some(2)
    );
    assert_eq!(security(&keychain, &["dump-keychain"], None).status.code(), Some(1));
    let output = Command::new(env!("CARGO_BIN_EXE_fake-security")).env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(1), "no state file named");
}

#[test]
fn the_wrapper_points_any_process_at_the_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = keychain_in(dir.path());
    keychain.put(SERVICE, "ada", b"{}");
    let wrapper = keychain
        .write_wrapper(Path::new(env!("CARGO_BIN_EXE_fake-security")), &dir.path().join("security"))
        .unwrap();
    let output = Command::new(wrapper)
        .args(["find-generic-password", "-a", "ada", "-w", "-s", SERVICE])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.stdout, b"{}\n");
    assert_eq!(
        keychain.records(),
        [json!({"argv": ["find-generic-password", "-a", "ada", "-w", "-s", SERVICE]})]
    );
}
