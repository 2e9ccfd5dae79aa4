//! The `fake-claude` binary: several processes on one configuration behave like several
//! Claude sessions, and none of them ever prints a token.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use switchboard_tests::fake::{FakeServer, NewAccount};
use tokio::process::Command;

fn fake_claude(home: &Path, server: &FakeServer, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fake-claude"));
    command
        .args(args)
        .args(["--lock-retry-min-ms", "20", "--lock-retry-max-ms", "40", "--lock-retries", "100"])
        .env("HOME", home)
        .env_remove("CLAUDE_CONFIG_DIR")
        .env("FAKE_CLAUDE_TOKEN_URL", server.token_url())
        .kill_on_drop(true);
    command
}

fn outcome(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout {stdout}\nstderr {stderr}");
    assert!(!stdout.contains("sk-ant-"), "a token on stdout: {stdout}");
    assert!(!stderr.contains("sk-ant-"), "a token on stderr: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test]
async fn processes_log_in_refresh_concurrently_and_log_out() {
    let server = FakeServer::start().await;
    let ids = server.control().create_account(NewAccount::new("bin@example.com"));
    let home = tempfile::tempdir().unwrap();
    let login = fake_claude(
        home.path(),
        &server,
        &[
            "login",
            "--fake-url",
            &server.url(),
            "--account",
            &ids.account_uuid,
            "--organization",
            &ids.organization_uuid,
        ],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(outcome(&login)["outcome"], "logged_in");

    let refresh = ["refresh", "--mode", "v2_1_332", "--hold-lock-ms", "300"];
    let (a, b, c) = tokio::join!(
        fake_claude(home.path(), &server, &refresh).output(),
        fake_claude(home.path(), &server, &refresh).output(),
        fake_claude(home.path(), &server, &["refresh", "--mode", "v2_1_112"]).output(),
    );
    let outcomes: Vec<String> = [a, b, c]
        .iter()
        .map(|o| outcome(o.as_ref().unwrap())["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert!(outcomes.iter().all(|o| o == "refreshed" || o == "adopted"), "{outcomes:?}");
    assert!(outcomes.iter().any(|o| o == "refreshed"), "{outcomes:?}");
    let report = server.control().report();
    assert_eq!(report.reuses, 0);

    let fresh = fake_claude(home.path(), &server, &["refresh", "--only-if-expiring"])
        .output()
        .await
        .unwrap();
    assert_eq!(outcome(&fresh)["outcome"], "still_fresh");

    let logout = fake_claude(home.path(), &server, &["logout"]).output().await.unwrap();
    let answer = outcome(&logout);
    assert_eq!(answer["outcome"], "logged_out");
    assert_eq!(answer["revoked"], true);
    assert!(server.control().report().lineages[0].revoked);
}

#[tokio::test]
async fn run_reports_a_summary() {
    let server = FakeServer::start().await;
    let ids = server.control().create_account(NewAccount::new("run@example.com"));
    let home = tempfile::tempdir().unwrap();
    let login = fake_claude(
        home.path(),
        &server,
        &[
            "login",
            "--fake-url",
            &server.url(),
            "--account",
            &ids.account_uuid,
            "--organization",
            &ids.organization_uuid,
        ],
    )
    .output()
    .await
    .unwrap();
    outcome(&login);
    let run = fake_claude(home.path(), &server, &["run", "--every-ms", "50", "--for-ms", "200"])
        .output()
        .await
        .unwrap();
    let summary = outcome(&run);
    assert!(summary["checks"].as_u64().unwrap() >= 3, "{summary}");
    assert_eq!(summary["refreshed"], 0, "an eight-hour token needs no refresh");
    assert_eq!(server.control().report().requests.token, 0);
}

#[tokio::test]
async fn missing_token_url_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fake-claude"))
        .arg("refresh")
        .env("HOME", home.path())
        .env_remove("FAKE_CLAUDE_TOKEN_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("FAKE_CLAUDE_TOKEN_URL"));
}
