//! Switchboard behind a TLS-inspecting corporate proxy: its endpoints left at Anthropic's real
//! addresses, `HTTPS_PROXY` set, and `SSL_CERT_FILE` naming a bundle that trusts the proxy's
//! CA. The fake's TLS proxy plays that proxy, so every request below really goes to
//! `https://platform.claude.com` and `https://api.anthropic.com` by name.

use serde_json::Value;
use switchboard_tests::fake::{SettingsUpdate, TlsProxy};
use switchboard_tests::harness::{Scratch, TimedOutput};

fn json_out(run: &TimedOutput) -> Value {
    assert!(run.output.status.success(), "switchboard failed: {}", run.stderr());
    serde_json::from_slice(&run.output.stdout).expect("--json prints JSON")
}

fn tunnels(proxy: &TlsProxy, host: &str) -> usize {
    proxy.seen().iter().filter(|s| **s == format!("CONNECT {host}:443")).count()
}

#[tokio::test]
async fn add_use_and_validate_through_the_proxy_with_default_endpoints() {
    let scratch = Scratch::new().await;
    let proxy = scratch.fake.start_tls_proxy().await.expect("start the TLS proxy");
    let env = scratch.proxied_env_pairs(&proxy);
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert!(!names.contains(&"SWITCHBOARD_TOKEN_URL") && !names.contains(&"SWITCHBOARD_API_BASE"));

    let work = scratch.account("ada@example.com", "Example Corp");
    let home = scratch.account("ada@home.example", "Ada's Individual Org");
    // Work's login is minted dead on arrival: adding it refreshes it, through the proxy, at
    // https://platform.claude.com.
    let lifetime =
        |secs| SettingsUpdate { access_token_lifetime_secs: Some(secs), ..Default::default() };
    scratch.fake.control().update_settings(lifetime(0));
    scratch.login(&work).await;
    scratch.fake.control().update_settings(lifetime(8 * 3600));
    let add_work = scratch.cli_in_env(&["--json", "add", "work"], &env).await;
    let added = json_out(&add_work);
    assert_eq!(added["accountUuid"], work.ids.account_uuid.as_str(), "{added}");
    assert_eq!(added["organizationUuid"], work.ids.organization_uuid.as_str(), "{added}");
    assert!(proxy.seen().iter().any(|s| s == "POST https://platform.claude.com/v1/oauth/token"));
    assert_eq!(scratch.report().lineages[0].spent, 1, "work's login was refreshed once");

    // Home's login is fresh: proving whose it is asks the profile endpoint, at
    // https://api.anthropic.com.
    scratch.login(&home).await;
    let add_home = scratch.cli_in_env(&["--json", "add", "home"], &env).await;
    let added = json_out(&add_home);
    assert_eq!(added["accountUuid"], home.ids.account_uuid.as_str(), "{added}");
    assert_eq!(added["email"], "ada@home.example", "{added}");

    let used = scratch.cli_in_env(&["--json", "use", "work"], &env).await;
    assert_eq!(json_out(&used)["active"]["alias"], "work");
    assert_eq!(scratch.live_refresh_token(), scratch.snapshot_refresh_token(&work));
    assert_eq!(scratch.oauth_account()["accountUuid"], work.ids.account_uuid.as_str());

    let profile_calls = scratch.report().requests.profile;
    let asked_at = switchboard::vault::now_ms();
    let validated = scratch.cli_in_env(&["--json", "status", "--validate"], &env).await;
    let status = json_out(&validated);
    assert_eq!(status["account"]["alias"], "work");
    let validated_at = status["account"]["validatedAt"].as_i64().expect("validatedAt");
    assert!(validated_at >= asked_at, "validated now: {status}");
    assert!(scratch.report().requests.profile > profile_calls, "validation asked the profile");
    assert!(proxy.seen().iter().any(|s| s == "GET https://api.anthropic.com/api/oauth/profile"));

    assert!(tunnels(&proxy, "platform.claude.com") >= 1, "seen: {:?}", proxy.seen());
    assert!(tunnels(&proxy, "api.anthropic.com") >= 1, "seen: {:?}", proxy.seen());
    assert_eq!(scratch.report().reuses, 0);
    eprintln!(
        "through the proxy: add with a refresh {:?}, add with a profile call {:?}, use {:?}, \
         status --validate {:?}",
        add_work.elapsed, add_home.elapsed, used.elapsed, validated.elapsed
    );
}

#[tokio::test]
async fn without_the_ca_bundle_the_proxy_is_refused_and_nothing_is_spent() {
    let scratch = Scratch::new().await;
    scratch.fake.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(60),
        ..Default::default()
    });
    let proxy = scratch.fake.start_tls_proxy().await.expect("start the TLS proxy");
    let trusting = scratch.proxied_env_pairs(&proxy);
    let untrusting: Vec<_> =
        trusting.iter().filter(|(k, _)| k != "SSL_CERT_FILE").cloned().collect();

    let work = scratch.account("ada@example.com", "Example Corp");
    let home = scratch.account("ada@home.example", "Ada's Individual Org");
    scratch.login(&work).await;
    json_out(&scratch.cli_in_env(&["--json", "add", "work"], &trusting).await);
    scratch.login(&home).await;
    json_out(&scratch.cli_in_env(&["--json", "add", "home"], &trusting).await);
    let live_before = scratch.live_login();
    let work_before = std::fs::read(scratch.snapshot_path(&work)).unwrap();
    let token_requests = scratch.report().requests.token;

    // The proxy's certificates are not trusted: the TLS handshake fails before anything is
    // sent, which is a network error that leaves every token as it was.
    let refused = scratch.cli_in_env(&["use", "work"], &untrusting).await;
    assert_eq!(refused.output.status.code(), Some(6), "stderr: {}", refused.stderr());
    assert_eq!(scratch.report().requests.token, token_requests, "no refresh reached the fake");
    assert_eq!(scratch.live_login(), live_before);
    assert_eq!(std::fs::read(scratch.snapshot_path(&work)).unwrap(), work_before);
    assert!(tunnels(&proxy, "platform.claude.com") >= 1, "it did go through the proxy");

    // With the bundle, the same switch goes through.
    let used = scratch.cli_in_env(&["--json", "use", "work"], &trusting).await;
    assert_eq!(json_out(&used)["active"]["alias"], "work");
    assert_eq!(scratch.report().reuses, 0);
}

#[tokio::test]
async fn the_binary_prints_its_proxy_and_bundle_and_serves_through_them() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-anthropic"))
        .arg("--tls-proxy")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start fake-anthropic");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("a line")
    };
    let listening = next().await;
    let url = listening.strip_prefix("listening on ").expect("the first line").to_owned();
    let proxy_line = next().await;
    let proxy = proxy_line.strip_prefix("proxy on ").expect("the second line").to_owned();
    let bundle_line = next().await;
    let bundle = bundle_line.strip_prefix("ca bundle at ").expect("the third line").to_owned();
    assert!(proxy.starts_with("http://127.0.0.1:") && proxy != url, "{proxy}");

    let pem = std::fs::read(&bundle).expect("the bundle exists");
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).expect("a PEM bundle");
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::https(&proxy).unwrap())
        .tls_certs_only(certificates)
        .build()
        .unwrap();
    // Anthropic's API host is the fake: its profile endpoint refuses an unknown token the way
    // the fake does.
    let profile = client
        .get("https://api.anthropic.com/api/oauth/profile")
        .bearer_auth("sk-ant-oat01-unknown")
        .send()
        .await
        .expect("through the proxy");
    assert_eq!(profile.status(), 401);
    let body: Value = profile.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    // Any other host is a TLS endpoint of the same CA that answers 404.
    let other = client.get("https://statsig.anthropic.com/v1/initialize").send().await.unwrap();
    assert_eq!(other.status(), 404);
    let _ = child.start_kill();
}
