//! The fake Anthropic service, exercised over real HTTP the way Switchboard and Claude Code
//! reach it: every rule of `docs/fake-anthropic.md` has a test here.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_tests::fake::{
    AccountIds, CLIENT_ID, Endpoint, FakeServer, Fault, MintedLogin, NewAccount, OAUTH_BETA,
    SettingsUpdate, TokenState, UsageValues,
};

const SCOPE: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn login(server: &FakeServer, email: &str) -> (AccountIds, MintedLogin) {
    let ids = server.control().create_account(NewAccount::new(email));
    let login = server.control().mint_login(&ids).unwrap();
    (ids, login)
}

async fn refresh(server: &FakeServer, refresh_token: &str) -> reqwest::Response {
    let body = json!({
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
        "scope": SCOPE,
    });
    client().post(server.token_url()).json(&body).send().await.unwrap()
}

async fn refresh_ok(server: &FakeServer, refresh_token: &str) -> Value {
    let answer = refresh(server, refresh_token).await;
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

async fn get_with(server: &FakeServer, path: &str, access: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", server.url()))
        .bearer_auth(access)
        .header("anthropic-beta", OAUTH_BETA)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_grant(answer: reqwest::Response) {
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn refresh_rotates_and_answers_the_contract_fields() {
    let server = FakeServer::start().await;
    let (ids, login) = login(&server, "a@example.com").await;
    let body = refresh_ok(&server, login.refresh_token.expose()).await;
    let refresh_token = body["refresh_token"].as_str().unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    assert!(refresh_token.starts_with("sk-ant-ort01-"));
    assert!(access_token.starts_with("sk-ant-oat01-"));
    assert_ne!(refresh_token, login.refresh_token.expose());
    assert_ne!(access_token, login.access_token.expose());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 8 * 3600);
    assert_eq!(body["scope"], SCOPE);
    assert_eq!(body["account"]["uuid"], ids.account_uuid.as_str());
    assert_eq!(body["account"]["email_address"], "a@example.com");
    assert_eq!(body["organization"]["uuid"], ids.organization_uuid.as_str());

    // The new refresh token is the live one and works in turn.
    let again = refresh_ok(&server, refresh_token).await;
    assert_ne!(again["refresh_token"], body["refresh_token"]);
    let report = server.control().report();
    let lineage = report.lineage(&login.lineage).unwrap();
    assert_eq!((lineage.issued, lineage.spent, lineage.reuses), (3, 2, 0));
    assert_eq!(report.requests.token, 2);
}

#[tokio::test]
async fn minted_login_carries_the_subscription_of_its_organization() {
    let server = FakeServer::start().await;
    for (org_type, subscription) in [
        ("claude_max", Some("max")),
        ("claude_pro", Some("pro")),
        ("claude_team", Some("team")),
        ("claude_enterprise", Some("enterprise")),
        ("something_new", None),
    ] {
        let ids = server
            .control()
            .create_account(NewAccount::new("s@example.com").organization_type(org_type));
        let login = server.control().mint_login(&ids).unwrap();
        assert_eq!(login.subscription_type.as_deref(), subscription, "{org_type}");
        assert!(login.expires_at > 0);
        assert!(login.scopes.iter().any(|s| s == "user:inference"));
    }
}

#[tokio::test]
async fn spending_a_spent_token_is_invalid_grant_and_reported() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "a@example.com").await;
    let r1 = login.refresh_token.expose();
    let r2 = refresh_ok(&server, r1).await["refresh_token"].as_str().unwrap().to_owned();
    assert_invalid_grant(refresh(&server, r1).await).await;
    assert_invalid_grant(refresh(&server, r1).await).await;

    let report = server.control().report();
    assert_eq!(report.reuses, 2);
    let lineage = report.lineage(&login.lineage).unwrap();
    assert_eq!(lineage.reuses, 2);
    assert_eq!(lineage.reuse_attempts.len(), 2);
    assert_eq!(lineage.reuse_attempts[0].generation, 0);
    assert_eq!(lineage.reuse_attempts[0].current_generation, 1);
    assert_eq!(lineage.reuse_attempts[0].fingerprint, login.refresh_token.fingerprint());
    assert!(!lineage.revoked);
    // Without the revoke setting the live token survives the reuse.
    refresh_ok(&server, &r2).await;
}

#[tokio::test]
async fn unknown_and_revoked_tokens_are_invalid_grant_but_not_reuses() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "a@example.com").await;
    assert_invalid_grant(refresh(&server, "sk-ant-ort01-never-issued").await).await;
    server.control().revoke_lineage(&login.lineage).unwrap();
    assert_invalid_grant(refresh(&server, login.refresh_token.expose()).await).await;
    let report = server.control().report();
    assert_eq!(report.reuses, 0);
    assert!(report.lineage(&login.lineage).unwrap().revoked);
}

#[tokio::test]
async fn reuse_revokes_the_lineage_when_set() {
    let server = FakeServer::start().await;
    let settings = server.control().update_settings(SettingsUpdate {
        revoke_lineage_on_reuse: Some(true),
        ..Default::default()
    });
    assert!(settings.revoke_lineage_on_reuse);
    let (_, login) = login(&server, "a@example.com").await;
    let body = refresh_ok(&server, login.refresh_token.expose()).await;
    let r2 = body["refresh_token"].as_str().unwrap();
    let a2 = body["access_token"].as_str().unwrap();
    assert_eq!(get_with(&server, "/api/oauth/profile", a2).await.status(), StatusCode::OK);

    assert_invalid_grant(refresh(&server, login.refresh_token.expose()).await).await;
    // The thief's reuse took the honest holder down too.
    assert_invalid_grant(refresh(&server, r2).await).await;
    assert_eq!(
        get_with(&server, "/api/oauth/profile", a2).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let report = server.control().report();
    let lineage = report.lineage(&login.lineage).unwrap();
    assert!(lineage.revoked);
    assert_eq!(lineage.reuses, 1);
}

#[tokio::test]
async fn a_lost_answer_still_rotated_and_the_old_token_is_then_a_reuse() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "a@example.com").await;
    server.control().set_fault(
        Endpoint::Token,
        Fault { drop_after_rotation: true, times: Some(1), ..Default::default() },
    );
    let lost = client()
        .post(server.token_url())
        .json(&json!({
            "grant_type": "refresh_token",
            "refresh_token": login.refresh_token.expose(),
            "client_id": CLIENT_ID,
            "scope": SCOPE,
        }))
        .send()
        .await;
    assert!(lost.is_err(), "the answer must be lost, got {lost:?}");

    let status = server.control().inspect_token(login.refresh_token.expose());
    assert_eq!(status.state, TokenState::Spent);
    let report = server.control().report();
    assert_eq!(report.lineage(&login.lineage).unwrap().spent, 1);

    // The client does not know it rotated; trying again is a reuse.
    assert_invalid_grant(refresh(&server, login.refresh_token.expose()).await).await;
    assert_eq!(server.control().report().reuses, 1);
}

#[tokio::test]
async fn form_body_is_refused_and_spends_nothing() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "a@example.com").await;
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={CLIENT_ID}",
        login.refresh_token.expose()
    );
    let answer = client()
        .post(server.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        server.control().inspect_token(login.refresh_token.expose()).state,
        TokenState::Live
    );
}

#[tokio::test]
async fn wrong_client_id_or_grant_type_is_refused_and_spends_nothing() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "a@example.com").await;
    let r1 = login.refresh_token.expose();
    let bad_client = json!({"grant_type": "refresh_token", "refresh_token": r1, "client_id": "x"});
    let answer = client().post(server.token_url()).json(&bad_client).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "invalid_client");

    let bad_grant =
        json!({"grant_type": "authorization_code", "refresh_token": r1, "client_id": CLIENT_ID});
    let answer = client().post(server.token_url()).json(&bad_grant).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    assert_eq!(server.control().inspect_token(r1).state, TokenState::Live);
}

#[tokio::test]
async fn scope_is_echoed_and_defaults_to_the_login_scopes() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "a@example.com").await;
    let body = json!({
        "grant_type": "refresh_token",
        "refresh_token": login.refresh_token.expose(),
        "client_id": CLIENT_ID,
    });
    let answer: Value =
        client().post(server.token_url()).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["scope"], login.scopes.join(" "));
}

#[tokio::test]
async fn access_token_dies_on_expiry_supersede_and_revoke() {
    let server = FakeServer::start().await;
    server.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(1),
        ..Default::default()
    });
    let (_, login) = login(&server, "a@example.com").await;
    let a1 = login.access_token.expose();
    assert_eq!(get_with(&server, "/api/oauth/profile", a1).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get_with(&server, "/api/oauth/profile", a1).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.control().inspect_token(a1).state, TokenState::Expired);

    server.control().update_settings(SettingsUpdate {
        access_token_lifetime_secs: Some(3600),
        ..Default::default()
    });
    let body = refresh_ok(&server, login.refresh_token.expose()).await;
    let a2 = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(get_with(&server, "/api/oauth/profile", &a2).await.status(), StatusCode::OK);
    let body = refresh_ok(&server, body["refresh_token"].as_str().unwrap()).await;
    let a3 = body["access_token"].as_str().unwrap().to_owned();
    // A later refresh of the lineage replaces the access token it handed out before.
    assert_eq!(
        get_with(&server, "/api/oauth/profile", &a2).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.control().inspect_token(&a2).state, TokenState::Superseded);

    // Revoking through the public endpoint, as `/logout` does, kills the live access token.
    let answer = client()
        .post(format!("{}/revoke", server.token_url()))
        .json(&json!({"token": body["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        get_with(&server, "/api/oauth/profile", &a3).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_invalid_grant(refresh(&server, body["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(server.control().report().requests.revoke, 1);
    assert_eq!(
        get_with(&server, "/api/oauth/profile", "nonsense").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn profile_names_account_and_organization() {
    let server = FakeServer::start().await;
    let ids = server.control().create_account(
        NewAccount::new("p@example.com").organization_name("Acme").organization_type("claude_pro"),
    );
    let login = server.control().mint_login(&ids).unwrap();
    let answer = get_with(&server, "/api/oauth/profile", login.access_token.expose()).await;
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["account"]["uuid"], ids.account_uuid.as_str());
    assert_eq!(body["account"]["email"], "p@example.com");
    assert!(body["account"]["display_name"].is_string());
    assert!(body["account"]["full_name"].is_string());
    assert_eq!(body["organization"]["uuid"], ids.organization_uuid.as_str());
    assert_eq!(body["organization"]["name"], "Acme");
    assert_eq!(body["organization"]["organization_type"], "claude_pro");
    assert!(body["organization"]["rate_limit_tier"].is_string());
    assert!(body["organization"]["billing_type"].is_string());
    assert_eq!(login.rate_limit_tier, body["organization"]["rate_limit_tier"].as_str().unwrap());
}

#[tokio::test]
async fn same_email_twice_is_one_account_in_two_organizations() {
    let server = FakeServer::start().await;
    let first = server.control().create_account(NewAccount::new("same@example.com"));
    let second = server
        .control()
        .create_account(NewAccount::new("same@example.com").organization_type("claude_team"));
    assert_eq!(first.account_uuid, second.account_uuid);
    assert_ne!(first.organization_uuid, second.organization_uuid);

    let login = server.control().mint_login(&second).unwrap();
    assert_eq!(login.subscription_type.as_deref(), Some("team"));
    let body: Value = get_with(&server, "/api/oauth/profile", login.access_token.expose())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["organization"]["uuid"], second.organization_uuid.as_str());

    // An organization of another account cannot be logged into.
    let other = server.control().create_account(NewAccount::new("other@example.com"));
    let mixed = AccountIds {
        account_uuid: first.account_uuid.clone(),
        organization_uuid: other.organization_uuid,
    };
    assert!(server.control().mint_login(&mixed).is_err());
}

#[tokio::test]
async fn older_account_endpoint_lists_memberships_and_needs_the_beta_header() {
    let server = FakeServer::start().await;
    let first =
        server.control().create_account(NewAccount::new("m@example.com").organization_name("One"));
    let second =
        server.control().create_account(NewAccount::new("m@example.com").organization_name("Two"));
    let login = server.control().mint_login(&first).unwrap();
    let answer = get_with(&server, "/api/oauth/account", login.access_token.expose()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["uuid"], first.account_uuid.as_str());
    assert_eq!(body["email_address"], "m@example.com");
    let mut orgs: Vec<(String, String)> = body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let org = &m["organization"];
            (org["uuid"].as_str().unwrap().to_owned(), org["name"].as_str().unwrap().to_owned())
        })
        .collect();
    orgs.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        orgs,
        vec![
            (first.organization_uuid, "One".to_owned()),
            (second.organization_uuid, "Two".to_owned())
        ]
    );

    let without_beta = client()
        .get(format!("{}/api/oauth/account", server.url()))
        .bearer_auth(login.access_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(without_beta.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn usage_reports_control_values_and_rate_limits_per_token() {
    let server = FakeServer::start().await;
    server.control().update_settings(SettingsUpdate {
        usage_rate_limit_per_token: Some(2),
        ..Default::default()
    });
    let (ids, login) = login(&server, "u@example.com").await;
    server
        .control()
        .set_usage(&ids.account_uuid, UsageValues { five_hour: 0.42, seven_day: 0.1 })
        .unwrap();
    let access = login.access_token.expose();
    for _ in 0..2 {
        let answer = get_with(&server, "/api/oauth/usage", access).await;
        assert_eq!(answer.status(), StatusCode::OK);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["five_hour"]["utilization"], 0.42);
        assert_eq!(body["seven_day"]["utilization"], 0.1);
        assert!(body["five_hour"]["resets_at"].as_str().unwrap().ends_with("+00:00"));
        assert!(body["seven_day"]["resets_at"].is_string());
    }
    let limited = get_with(&server, "/api/oauth/usage", access).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 3600);

    // The limit is per token: a refreshed access token has its own budget.
    let body = refresh_ok(&server, login.refresh_token.expose()).await;
    let fresh = body["access_token"].as_str().unwrap();
    assert_eq!(get_with(&server, "/api/oauth/usage", fresh).await.status(), StatusCode::OK);
    assert_eq!(server.control().report().requests.usage, 4);
    assert!(server.control().set_usage("no-such-account", UsageValues::default()).is_err());
}

#[tokio::test]
async fn status_faults_hit_only_their_times_and_spend_nothing() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "f@example.com").await;
    server.control().set_fault(
        Endpoint::Token,
        Fault {
            status: Some(429),
            retry_after_secs: Some(7),
            times: Some(2),
            ..Default::default()
        },
    );
    for _ in 0..2 {
        let answer = refresh(&server, login.refresh_token.expose()).await;
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()["retry-after"], "7");
    }
    assert_eq!(
        server.control().inspect_token(login.refresh_token.expose()).state,
        TokenState::Live
    );
    let body = refresh_ok(&server, login.refresh_token.expose()).await;
    let access = body["access_token"].as_str().unwrap();

    server.control().set_fault(
        Endpoint::Profile,
        Fault { status: Some(500), times: Some(1), ..Default::default() },
    );
    let answer = get_with(&server, "/api/oauth/profile", access).await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(get_with(&server, "/api/oauth/profile", access).await.status(), StatusCode::OK);

    // Without `times` a fault stays until cleared.
    server.control().set_fault(Endpoint::Usage, Fault { status: Some(503), ..Default::default() });
    for _ in 0..3 {
        let answer = get_with(&server, "/api/oauth/usage", access).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    server.control().clear_faults();
    assert_eq!(get_with(&server, "/api/oauth/usage", access).await.status(), StatusCode::OK);
    let requests = server.control().report().requests;
    assert_eq!((requests.token, requests.profile, requests.usage), (3, 2, 4));
}

#[tokio::test]
async fn latency_fault_delays_the_answer() {
    let server = FakeServer::start().await;
    let (_, login) = login(&server, "l@example.com").await;
    server.control().set_fault(
        Endpoint::Profile,
        Fault { latency_ms: Some(400), times: Some(1), ..Default::default() },
    );
    let access = login.access_token.expose();
    let started = Instant::now();
    assert_eq!(get_with(&server, "/api/oauth/profile", access).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    assert_eq!(get_with(&server, "/api/oauth/profile", access).await.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn http_control_api_matches_the_in_process_handle() {
    let server = FakeServer::start().await;
    let c = client();
    let url = |path: &str| format!("{}/_control{path}", server.url());
    let ids: Value = c
        .post(url("/accounts"))
        .json(&json!({"email": "h@example.com", "organizationType": "claude_pro"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login: Value =
        c.post(url("/logins")).json(&ids).send().await.unwrap().json().await.unwrap();
    assert_eq!(login["subscriptionType"], "pro");
    assert!(login["accessToken"].as_str().unwrap().starts_with("sk-ant-oat01-"));
    assert!(login["expiresAt"].as_i64().unwrap() > 0);
    assert_eq!(login["account"]["emailAddress"], "h@example.com");

    let settings: Value = c
        .put(url("/settings"))
        .json(&json!({"accessTokenLifetimeSecs": 120}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["accessTokenLifetimeSecs"], 120);
    assert_eq!(settings["revokeLineageOnReuse"], false);

    let usage_url = url(&format!("/usage/{}", ids["accountUuid"].as_str().unwrap()));
    let answer = c.put(usage_url).json(&json!({"fiveHour": 0.5, "sevenDay": 0.2})).send().await;
    assert_eq!(answer.unwrap().status(), StatusCode::OK);
    let answer = c.put(url("/faults/token")).json(&json!({"status": 500, "times": 1})).send().await;
    assert_eq!(answer.unwrap().status(), StatusCode::OK);
    assert_eq!(refresh(&server, login["refreshToken"].as_str().unwrap()).await.status(), 500);
    let answer = c.put(url("/faults/nowhere")).json(&json!({})).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(c.delete(url("/faults")).send().await.unwrap().status(), StatusCode::OK);

    let inspect: Value = c
        .post(url("/tokens/inspect"))
        .json(&json!({"token": login["refreshToken"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inspect["state"], "live");
    assert_eq!(inspect["kind"], "refresh");

    let lineage = login["lineage"].as_str().unwrap();
    let answer = c.post(url(&format!("/lineages/{lineage}/revoke"))).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer = c.post(url("/lineages/lineage-none/revoke")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);

    let report: Value = c.get(url("/report")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["lineages"][0]["lineage"], lineage);
    assert_eq!(report["lineages"][0]["revoked"], true);
    assert_eq!(report["lineages"][0]["issued"], 1);
    assert_eq!(report["reuses"], 0);
    assert_eq!(report["requests"]["token"], 1);

    let bad = c.post(url("/accounts")).body("not json").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let server = FakeServer::start().await;
    let url = format!("{}/_control/report", server.url());
    assert!(client().get(&url).send().await.is_ok());
    server.shutdown().await;
    assert!(client().get(&url).send().await.is_err());
}
