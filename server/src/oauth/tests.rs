//! Wire-format checks against a one-shot HTTP responder: it records the request it gets and
//! answers with a canned reply, drops the connection, or stays silent. It has no notion of
//! tokens or lineages; the behaviour of the real service is the fake's job in the tests crate.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::refresh::refresh_scope;
use super::*;
use crate::claude::login::OAuthLogin;
use crate::secret::Secret;

const REFRESH: &str = "sk-ant-ort01-wire-test-refresh";
const ACCESS: &str = "sk-ant-oat01-wire-test-access";
const NEW_REFRESH: &str = "sk-ant-ort01-wire-test-next";
const NEW_ACCESS: &str = "sk-ant-oat01-wire-test-next";

enum Reply {
    Answer { status: u16, headers: Vec<(&'static str, String)>, body: String },
    DropAfterRequest,
    Silent,
}

fn answer(status: u16, body: impl Into<String>) -> Reply {
    Reply::Answer { status, headers: Vec::new(), body: body.into() }
}

#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    /// Header names lower-cased, in the order sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Accepts one connection, reads one request, reports it, then replies as told.
async fn serve_once(reply: Reply) -> (String, oneshot::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let seen = read_request(&mut stream).await;
        let _ = tx.send(seen);
        match reply {
            Reply::Answer { status, headers, body } => {
                let mut head = format!(
                    "HTTP/1.1 {status} Canned\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(body.as_bytes()).await.unwrap();
                let _ = stream.shutdown().await;
            }
            Reply::DropAfterRequest => drop(stream),
            Reply::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
        }
    });
    (base, rx)
}

async fn read_request(stream: &mut TcpStream) -> Seen {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the request ended");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let path = request_line.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the body ended");
        body.extend_from_slice(&chunk[..n]);
    }
    Seen { method, path, headers, body }
}

/// The request the responder saw, if one reached it by the time the client gave up.
async fn seen_by(seen: oneshot::Receiver<Seen>) -> Option<Seen> {
    tokio::time::timeout(Duration::from_millis(200), seen).await.ok()?.ok()
}

fn client(base: &str) -> OAuthClient {
    let endpoints =
        Endpoints { token_url: format!("{base}/v1/oauth/token"), api_base: base.to_owned() };
    OAuthClient::new(endpoints, None).unwrap()
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// No error may show a token, neither to a person nor in a debug log.
fn assert_shows_no_token(error: &(impl std::fmt::Display + std::fmt::Debug)) {
    for text in [error.to_string(), format!("{error:?}")] {
        for token in [REFRESH, ACCESS, NEW_REFRESH, NEW_ACCESS, "sk-ant-"] {
            assert!(!text.contains(token), "{text} shows {token}");
        }
    }
}

async fn refresh_against(reply: Reply) -> (Result<TokenGrant, RefreshError>, Option<Seen>) {
    let (base, seen) = serve_once(reply).await;
    let result = client(&base)
        .with_timeout(Duration::from_millis(500))
        .refresh(&Secret::new(REFRESH), &scopes(&["user:inference", "user:profile"]))
        .await;
    if let Err(error) = &result {
        assert_shows_no_token(error);
    }
    (result, seen_by(seen).await)
}

fn full_answer() -> String {
    json!({
        "access_token": NEW_ACCESS,
        "refresh_token": NEW_REFRESH,
        "expires_in": 28800,
        "scope": "user:inference user:profile",
        "token_type": "Bearer",
        "account": {"uuid": "acct-1", "email_address": "ada@example.com"},
        "organization": {"uuid": "org-1"},
    })
    .to_string()
}

#[tokio::test]
async fn refresh_sends_claudes_exact_request() {
    let (result, seen) = refresh_against(answer(200, full_answer())).await;
    let seen = seen.unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/oauth/token");
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({
            "grant_type": "refresh_token",
            "refresh_token": REFRESH,
            "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            "scope": "user:profile user:inference user:sessions:claude_code user:mcp_servers \
                      user:file_upload user:plugins",
        })
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("accept"), Some("application/json, text/plain, */*"));
    assert_eq!(seen.headers.iter().filter(|(n, _)| n == "accept").count(), 1);
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("anthropic-beta"), None);

    let grant = result.unwrap();
    assert_eq!(grant.access_token.expose(), NEW_ACCESS);
    assert_eq!(grant.refresh_token.as_ref().unwrap().expose(), NEW_REFRESH);
    assert_eq!(grant.expires_in, 28800);
    assert_eq!(grant.scopes, scopes(&["user:inference", "user:profile"]));
    assert_eq!(grant.account_uuid.as_deref(), Some("acct-1"));
    assert_eq!(grant.email.as_deref(), Some("ada@example.com"));
    assert_eq!(grant.organization_uuid.as_deref(), Some("org-1"));
    assert_eq!(grant.refresh_token_expires_in, None);
}

#[test]
fn scope_is_the_full_list_unless_inference_is_missing() {
    let full = REFRESH_SCOPES.join(" ");
    assert_eq!(refresh_scope(&scopes(&["user:inference"])), full);
    assert_eq!(refresh_scope(&scopes(&["user:profile", "user:inference"])), full);
    assert_eq!(
        refresh_scope(&scopes(&["user:profile", "org:create_api_key"])),
        "user:profile org:create_api_key"
    );
    assert_eq!(refresh_scope(&[]), full);
}

#[tokio::test]
async fn narrow_stored_scopes_are_sent_unchanged() {
    let (base, seen) = serve_once(answer(200, full_answer())).await;
    client(&base)
        .refresh(&Secret::new(REFRESH), &scopes(&["user:profile", "org:create_api_key"]))
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&seen_by(seen).await.unwrap().body).unwrap();
    assert_eq!(body["scope"], "user:profile org:create_api_key");
}

fn previous_login() -> OAuthLogin {
    serde_json::from_value(json!({
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": 1000,
        "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
        "subscriptionType": "max",
        "rateLimitTier": "default_claude_max_20x",
        "refreshTokenExpiresAt": 5000,
        "clientId": "kept-as-is",
    }))
    .unwrap()
}

#[test]
fn a_grant_becomes_the_next_login() {
    let grant = TokenGrant {
        access_token: Secret::new(NEW_ACCESS),
        refresh_token: Some(Secret::new(NEW_REFRESH)),
        expires_in: 3600,
        scopes: scopes(&["user:inference"]),
        account_uuid: Some("acct-1".into()),
        email: None,
        organization_uuid: Some("org-1".into()),
        refresh_token_expires_in: None,
    };
    let next = grant.apply_to(&previous_login(), 1_000_000);
    assert_eq!(next.access_token.expose(), NEW_ACCESS);
    assert_eq!(next.refresh_token.expose(), NEW_REFRESH);
    assert_eq!(next.expires_at, 1_000_000 + 3_600_000);
    assert_eq!(next.scopes, scopes(&["user:inference"]));
    assert_eq!(next.subscription_type.as_deref(), Some("max"));
    assert_eq!(next.rate_limit_tier.as_deref(), Some("default_claude_max_20x"));
    assert_eq!(next.account_uuid.as_deref(), Some("acct-1"));
    assert_eq!(next.organization_uuid.as_deref(), Some("org-1"));
    assert_eq!(next.extra["clientId"], "kept-as-is");
    assert!(!next.extra.contains_key("refreshTokenExpiresAt"), "belonged to the old token");

    let with_lifetime = TokenGrant { refresh_token_expires_in: Some(10), ..grant };
    let next = with_lifetime.apply_to(&previous_login(), 1_000_000);
    assert_eq!(next.extra["refreshTokenExpiresAt"], 1_010_000);
}

#[tokio::test]
async fn an_answer_without_refresh_token_or_scope_keeps_the_old_ones() {
    let body = json!({"access_token": NEW_ACCESS, "expires_in": 60}).to_string();
    let (result, _) = refresh_against(answer(200, body)).await;
    let grant = result.unwrap();
    assert_eq!(grant.refresh_token, None);
    assert!(grant.scopes.is_empty());
    let next = grant.apply_to(&previous_login(), 2_000);
    assert_eq!(next.refresh_token.expose(), REFRESH);
    assert_eq!(next.access_token.expose(), NEW_ACCESS);
    assert_eq!(next.expires_at, 62_000);
    assert_eq!(next.scopes, previous_login().scopes);
    assert_eq!(next.extra["refreshTokenExpiresAt"], 5000, "the old token's expiry still holds");
}

#[tokio::test]
async fn refusals_are_sorted_by_what_they_mean() {
    let cases = [
        (
            answer(400, r#"{"error":"invalid_grant","error_description":"x"}"#),
            RefreshError::InvalidGrant,
        ),
        (
            answer(400, r#"{"error":"invalid_request"}"#),
            RefreshError::Rejected { status: 400, error: Some("invalid_request".into()) },
        ),
        (
            answer(401, r#"{"error":{"type":"authentication_error"}}"#),
            RefreshError::Rejected { status: 401, error: Some("authentication_error".into()) },
        ),
        // An error field that echoes the token is not repeated.
        (
            answer(400, format!(r#"{{"error":"{REFRESH}"}}"#)),
            RefreshError::Rejected { status: 400, error: None },
        ),
        (answer(403, "<html>blocked</html>"), RefreshError::Rejected { status: 403, error: None }),
        (answer(302, ""), RefreshError::Rejected { status: 302, error: None }),
        (answer(429, "{}"), RefreshError::RateLimited { retry_after: None }),
        (
            Reply::Answer {
                status: 429,
                headers: vec![("retry-after", "17".into())],
                body: "{}".into(),
            },
            RefreshError::RateLimited { retry_after: Some(Duration::from_secs(17)) },
        ),
        (answer(500, r#"{"error":"invalid_grant"}"#), RefreshError::Server { status: 500 }),
        (answer(503, ""), RefreshError::Server { status: 503 }),
    ];
    for (reply, expected) in cases {
        let (result, _) = refresh_against(reply).await;
        assert_eq!(result.unwrap_err(), expected);
    }
}

#[tokio::test]
async fn retry_after_may_be_a_date() {
    let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
    let reply = Reply::Answer {
        status: 429,
        headers: vec![("retry-after", httpdate::fmt_http_date(in_a_minute))],
        body: String::new(),
    };
    let (result, _) = refresh_against(reply).await;
    let RefreshError::RateLimited { retry_after: Some(wait) } = result.unwrap_err() else {
        panic!("expected a rate limit with a wait");
    };
    assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60), "{wait:?}");
}

#[tokio::test]
async fn a_success_that_is_not_a_token_answer_is_malformed() {
    let bodies = [
        String::new(),
        "not json".to_owned(),
        json!({"access_token": NEW_ACCESS}).to_string(),
        json!({"access_token": "", "expires_in": 10}).to_string(),
        // serde would quote the token when complaining about its neighbour's type.
        json!({"access_token": NEW_ACCESS, "refresh_token": NEW_REFRESH, "expires_in": NEW_REFRESH})
            .to_string(),
        json!({"access_token": 7, "refresh_token": NEW_REFRESH, "expires_in": 1}).to_string(),
    ];
    for body in bodies {
        let (result, _) = refresh_against(answer(200, body.clone())).await;
        let error = result.unwrap_err();
        assert!(matches!(error, RefreshError::Malformed(_)), "{body}: {error}");
        assert!(error.may_have_spent_token());
    }
}

#[tokio::test]
async fn a_connection_dropped_after_the_request_is_ambiguous() {
    let (result, seen) = refresh_against(Reply::DropAfterRequest).await;
    assert_eq!(seen.unwrap().path, "/v1/oauth/token", "the request did reach the server");
    let error = result.unwrap_err();
    assert!(matches!(error, RefreshError::Ambiguous(_)), "{error}");
    assert!(error.may_have_spent_token() && !error.is_transient());
}

#[tokio::test]
async fn silence_after_the_request_is_ambiguous() {
    let (result, seen) = refresh_against(Reply::Silent).await;
    assert!(seen.is_some());
    let error = result.unwrap_err();
    assert!(matches!(error, RefreshError::Ambiguous(_)), "{error}");
}

#[tokio::test]
async fn a_refused_connection_is_network() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = client(&base).refresh(&Secret::new(REFRESH), &[]).await.unwrap_err();
    assert!(matches!(error, RefreshError::Network(_)), "{error}");
    assert!(error.is_transient() && !error.may_have_spent_token());
    assert_shows_no_token(&error);
}

fn profile_answer(organization_type: &str) -> String {
    json!({
        "account": {
            "uuid": "acct-1", "email": "ada@example.com", "display_name": "Ada",
            "full_name": "Ada Lovelace", "has_claude_max": true,
        },
        "organization": {
            "uuid": "org-1", "name": "Example Corp", "organization_type": organization_type,
            "rate_limit_tier": "default_claude_max_20x", "billing_type": "stripe_subscription",
        },
    })
    .to_string()
}

async fn profile_against(reply: Reply) -> (Result<Profile, ProfileError>, Option<Seen>) {
    let (base, seen) = serve_once(reply).await;
    let result =
        client(&base).with_timeout(Duration::from_millis(500)).profile(&Secret::new(ACCESS)).await;
    if let Err(error) = &result {
        assert_shows_no_token(error);
    }
    (result, seen_by(seen).await)
}

#[tokio::test]
async fn profile_sends_the_bearer_token_and_maps_the_answer() {
    let (result, seen) = profile_against(answer(200, profile_answer("claude_max"))).await;
    let seen = seen.unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/api/oauth/profile");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {ACCESS}").as_str()));
    assert_eq!(seen.header("anthropic-beta"), None);
    assert_eq!(
        result.unwrap(),
        Profile {
            account_uuid: "acct-1".into(),
            email: Some("ada@example.com".into()),
            display_name: Some("Ada".into()),
            full_name: Some("Ada Lovelace".into()),
            organization_uuid: "org-1".into(),
            organization_name: Some("Example Corp".into()),
            organization_type: Some("claude_max".into()),
            rate_limit_tier: Some("default_claude_max_20x".into()),
            billing_type: Some("stripe_subscription".into()),
        }
    );
}

#[test]
fn organization_types_map_to_subscriptions() {
    let profile = |kind: Option<&str>| Profile {
        account_uuid: "a".into(),
        email: None,
        display_name: None,
        full_name: None,
        organization_uuid: "o".into(),
        organization_name: None,
        organization_type: kind.map(str::to_owned),
        rate_limit_tier: None,
        billing_type: None,
    };
    for (kind, subscription) in [
        (Some("claude_max"), Some("max")),
        (Some("claude_pro"), Some("pro")),
        (Some("claude_team"), Some("team")),
        (Some("claude_enterprise"), Some("enterprise")),
        (Some("api_org"), None),
        (None, None),
    ] {
        assert_eq!(profile(kind).subscription_type().as_deref(), subscription, "{kind:?}");
    }
}

#[tokio::test]
async fn profile_failures_are_sorted() {
    let cases = [
        (answer(401, "{}"), ProfileError::Unauthorized { status: 401 }),
        (answer(403, "{}"), ProfileError::Unauthorized { status: 403 }),
        (
            Reply::Answer {
                status: 429,
                headers: vec![("retry-after", "3".into())],
                body: "".into(),
            },
            ProfileError::RateLimited { retry_after: Some(Duration::from_secs(3)) },
        ),
        (answer(502, ""), ProfileError::Server { status: 502 }),
        (answer(404, ""), ProfileError::Rejected { status: 404 }),
    ];
    for (reply, expected) in cases {
        assert_eq!(profile_against(reply).await.0.unwrap_err(), expected);
    }
    let missing_org = json!({"account": {"uuid": "a"}}).to_string();
    let (result, _) = profile_against(answer(200, missing_org)).await;
    assert!(matches!(result.unwrap_err(), ProfileError::Malformed(_)));
    let (result, _) = profile_against(Reply::DropAfterRequest).await;
    assert!(matches!(result.unwrap_err(), ProfileError::Network(_)));
}

#[test]
fn a_ca_bundle_is_loaded_and_a_bad_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, include_str!("test-ca.pem")).unwrap();
    assert!(OAuthClient::new(Endpoints::default(), Some(&good)).is_ok());

    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .unwrap();
    for path in [missing, not_pem, broken] {
        let error = OAuthClient::new(Endpoints::default(), Some(&path)).unwrap_err();
        assert!(matches!(error, OAuthError::CaBundle { .. }), "{}: {error}", path.display());
        assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    }
}

#[test]
fn endpoints_default_to_anthropic_and_follow_the_environment() {
    assert_eq!(Endpoints::from_env(None, None), Endpoints::default());
    assert_eq!(Endpoints::from_env(Some(""), Some(" ")), Endpoints::default());
    assert_eq!(Endpoints::default().token_url, "https://platform.claude.com/v1/oauth/token");
    assert_eq!(Endpoints::default().profile_url(), "https://api.anthropic.com/api/oauth/profile");
    let custom = Endpoints::from_env(Some("http://127.0.0.1:9/t"), Some("http://127.0.0.1:9/"));
    assert_eq!(custom.token_url, "http://127.0.0.1:9/t");
    assert_eq!(custom.profile_url(), "http://127.0.0.1:9/api/oauth/profile");
}

#[test]
fn plain_http_is_refused_beyond_this_machine() {
    for (token_url, api_base) in [
        ("http://127.0.0.1:1/t", "http://localhost:2"),
        ("http://[::1]:1/t", "https://api.example.com"),
    ] {
        assert!(
            OAuthClient::new(Endpoints::from_env(Some(token_url), Some(api_base)), None).is_ok()
        );
    }
    for (token_url, api_base) in [
        ("http://auth.example.com/t", "https://api.example.com"),
        ("https://auth.example.com/t", "http://10.0.0.1"),
        ("ftp://auth.example.com/t", "https://api.example.com"),
        ("not a url", "https://api.example.com"),
    ] {
        let error = OAuthClient::new(Endpoints::from_env(Some(token_url), Some(api_base)), None)
            .unwrap_err();
        assert!(matches!(error, OAuthError::InvalidUrl { .. }), "{error}");
    }
}
