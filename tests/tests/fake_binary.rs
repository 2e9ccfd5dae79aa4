//! The `fake-anthropic` binary: its first stdout line names where it listens, and it serves.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn prints_its_address_first_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-anthropic"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("first line in time")
        .unwrap()
        .expect("a first line");
    let url = first.strip_prefix("listening on ").expect("the documented first line");
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    assert!(!url.ends_with(":0"), "{first}");

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let ids: Value = client
        .post(format!("{url}/_control/accounts"))
        .json(&json!({"email": "bin@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login: Value = client
        .post(format!("{url}/_control/logins"))
        .json(&ids)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answer = client
        .post(format!("{url}/v1/oauth/token"))
        .json(&json!({
            "grant_type": "refresh_token",
            "refresh_token": login["refreshToken"],
            "client_id": switchboard_tests::fake::CLIENT_ID,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

#[tokio::test]
async fn refuses_a_bad_listen_address() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fake-anthropic"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}
