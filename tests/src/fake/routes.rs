//! The fake service's HTTP surface: Anthropic's public endpoints, answered the way the real
//! ones answer, and the `/_control` endpoints tests drive it with.
//!
//! The public handlers keep the wire formats of `claude-code-contract.md` §1 exactly: the token
//! endpoint takes JSON only and says `invalid_grant` for any refresh token it will not
//! accept; the identity endpoints say 401 for any access token that no longer works. Faults
//! are applied here, before the model sees the request, except `dropAfterRotation`, which by
//! definition happens after.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::control::{
    AccountIds, Control, ControlError, Endpoint, Fault, NewAccount, SettingsUpdate, UsageValues,
};
use super::model::{Bearer, RateLimited};

/// Claude Code's OAuth client id; the token endpoint refuses any other.
pub const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

/// The beta header the older account endpoint and the usage endpoint require.
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

/// Lets a handler close the TCP connection its request came on, without answering.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionKill(pub(crate) Arc<Notify>);

pub(crate) fn router(control: Control) -> Router {
    Router::new()
        .route("/v1/oauth/token", post(token))
        .route("/v1/oauth/token/revoke", post(revoke))
        .route("/api/oauth/profile", get(profile))
        .route("/api/oauth/account", get(account))
        .route("/api/oauth/usage", get(usage))
        .route("/_control/accounts", post(control_create_account))
        .route("/_control/logins", post(control_mint_login))
        .route("/_control/lineages/{lineage}/revoke", post(control_revoke_lineage))
        .route("/_control/settings", get(control_settings).put(control_update_settings))
        .route("/_control/usage/{account_uuid}", put(control_set_usage))
        .route("/_control/faults/{endpoint}", put(control_set_fault))
        .route("/_control/faults", delete(control_clear_faults))
        .route("/_control/report", get(control_report))
        .route("/_control/tokens/inspect", post(control_inspect_token))
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "not_found_error", "not found") })
        .with_state(control)
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
}

async fn token(
    State(control): State<Control>,
    kill: Option<Extension<ConnectionKill>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = control.model().begin_request(Endpoint::Token);
    if let Some(answer) = apply_fault(fault.as_ref(), oauth_fault_body).await {
        return answer;
    }
    let answer = rotate(&control, &headers, &body);
    if fault.is_some_and(|f| f.drop_after_rotation)
        && let Some(Extension(kill)) = kill
    {
        tracing::info!("dropping the token answer on purpose");
        kill.0.notify_one();
        // The connection task drops this future together with the connection.
        std::future::pending::<()>().await;
    }
    answer
}

fn rotate(control: &Control, headers: &HeaderMap, body: &[u8]) -> Response {
    let request: TokenRequest = match json_body(headers, body) {
        Ok(request) => request,
        Err(description) => return oauth_error("invalid_request", &description),
    };
    if request.client_id.as_deref() != Some(CLIENT_ID) {
        return oauth_error("invalid_client", "unknown client id");
    }
    if request.grant_type.as_deref() != Some("refresh_token") {
        return oauth_error("unsupported_grant_type", "grant_type must be refresh_token");
    }
    let Some(refresh_token) = request.refresh_token.filter(|t| !t.is_empty()) else {
        return oauth_error("invalid_request", "refresh_token is required");
    };
    let rotation = control.model().refresh(&refresh_token, request.scope.as_deref());
    match rotation {
        Ok(r) => {
            tracing::info!(account = %r.account_uuid, refresh = %r.refresh_token, "rotated");
            Json(json!({
                "token_type": "Bearer",
                "access_token": r.access_token.expose(),
                "refresh_token": r.refresh_token.expose(),
                "expires_in": r.expires_in,
                "scope": r.scope,
                "account": {"uuid": r.account_uuid, "email_address": r.email},
                "organization": {"uuid": r.organization_uuid},
            }))
            .into_response()
        }
        Err(refusal) => {
            tracing::info!(?refusal, "refresh refused");
            oauth_error("invalid_grant", refusal.description())
        }
    }
}

#[derive(Debug, Deserialize)]
struct RevokeRequest {
    token: Option<String>,
}

async fn revoke(State(control): State<Control>, headers: HeaderMap, body: Bytes) -> Response {
    control.model().count_revoke_request();
    let request: RevokeRequest = match json_body(&headers, &body) {
        Ok(request) => request,
        Err(description) => return oauth_error("invalid_request", &description),
    };
    let Some(token) = request.token.filter(|t| !t.is_empty()) else {
        return oauth_error("invalid_request", "token is required");
    };
    control.model().revoke_token(&token);
    Json(json!({})).into_response()
}

async fn profile(State(control): State<Control>, headers: HeaderMap) -> Response {
    let bearer = match identity_request(&control, Endpoint::Profile, &headers, false).await {
        Ok(bearer) => bearer,
        Err(answer) => return answer,
    };
    let Bearer { account, organization } = bearer;
    Json(json!({
        "account": {
            "uuid": account.uuid,
            "email": account.email,
            "display_name": account.display_name,
            "full_name": account.display_name,
            "has_claude_max": organization.organization_type == "claude_max",
            "has_claude_pro": organization.organization_type == "claude_pro",
        },
        "organization": {
            "uuid": organization.uuid,
            "name": organization.name,
            "organization_type": organization.organization_type,
            "rate_limit_tier": organization.rate_limit_tier(),
            "billing_type": organization.billing_type(),
        },
    }))
    .into_response()
}

async fn account(State(control): State<Control>, headers: HeaderMap) -> Response {
    let bearer = match identity_request(&control, Endpoint::Account, &headers, true).await {
        Ok(bearer) => bearer,
        Err(answer) => return answer,
    };
    let memberships: Vec<Value> = control
        .model()
        .organizations_of(&bearer.account.uuid)
        .into_iter()
        .map(|o| {
            json!({
                "organization": {
                    "uuid": o.uuid,
                    "name": o.name,
                    "organization_type": o.organization_type,
                    "billing_type": o.billing_type(),
                },
                "role": "admin",
            })
        })
        .collect();
    Json(json!({
        "uuid": bearer.account.uuid,
        "email_address": bearer.account.email,
        "full_name": bearer.account.display_name,
        "display_name": bearer.account.display_name,
        "memberships": memberships,
    }))
    .into_response()
}

async fn usage(State(control): State<Control>, headers: HeaderMap) -> Response {
    let bearer = match identity_request(&control, Endpoint::Usage, &headers, true).await {
        Ok(bearer) => bearer,
        Err(answer) => return answer,
    };
    let access = bearer_token(&headers).unwrap_or_default();
    let allowed = control.model().take_usage_call(access);
    if let Err(RateLimited { retry_after_secs }) = allowed {
        let mut answer =
            api_error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "rate limited");
        answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        return answer;
    }
    let values = control.model().usage_of(&bearer.account.uuid);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Json(json!({
        "five_hour": {"utilization": values.five_hour, "resets_at": next_boundary(now, 5 * 3600)},
        "seven_day": {"utilization": values.seven_day, "resets_at": next_boundary(now, 7 * 86400)},
    }))
    .into_response()
}

/// The common start of the three bearer endpoints: count, apply faults, check the beta
/// header where one is required, and look the access token up.
async fn identity_request(
    control: &Control,
    endpoint: Endpoint,
    headers: &HeaderMap,
    needs_beta: bool,
) -> Result<Bearer, Response> {
    let fault = control.model().begin_request(endpoint);
    if let Some(answer) = apply_fault(fault.as_ref(), api_fault_body).await {
        return Err(answer);
    }
    if needs_beta {
        let beta = headers.get("anthropic-beta").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !beta.split(',').any(|b| b.trim() == OAUTH_BETA) {
            let message = format!("this endpoint needs the header anthropic-beta: {OAUTH_BETA}");
            return Err(api_error(StatusCode::BAD_REQUEST, "invalid_request_error", &message));
        }
    }
    let unauthorized =
        || api_error(StatusCode::UNAUTHORIZED, "authentication_error", "invalid access token");
    let token = bearer_token(headers).ok_or_else(unauthorized)?;
    control.model().bearer(token).ok_or_else(unauthorized)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// Waits out a fault's latency and answers its status, if it has one.
async fn apply_fault(fault: Option<&Fault>, body: fn(u16) -> Value) -> Option<Response> {
    let fault = fault?;
    if let Some(ms) = fault.latency_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = StatusCode::from_u16(fault.status?).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut answer = (status, Json(body(status.as_u16()))).into_response();
    let retry_after =
        fault.retry_after_secs.or((status == StatusCode::TOO_MANY_REQUESTS).then_some(1));
    if let Some(secs) = retry_after {
        answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Some(answer)
}

fn oauth_fault_body(status: u16) -> Value {
    match status {
        429 => json!({"error": "rate_limit_exceeded", "error_description": "slow down"}),
        s if s >= 500 => json!({"error": "server_error", "error_description": "injected fault"}),
        _ => json!({"error": "invalid_request", "error_description": "injected fault"}),
    }
}

fn api_fault_body(status: u16) -> Value {
    let kind = match status {
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": "injected fault"}})
}

fn oauth_error(error: &str, description: &str) -> Response {
    let status =
        if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({"type": "error", "error": {"type": kind, "message": message}})))
        .into_response()
}

/// Parses a JSON body, refusing any other content type the way the real token endpoint does.
fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, String> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(format!("body must be application/json, not {essence:?}"));
    }
    serde_json::from_slice(body).map_err(|e| format!("body is not valid json: {e}"))
}

/// The next multiple of `period` seconds since the epoch, as an RFC 3339 UTC time.
fn next_boundary(now_secs: u64, period: u64) -> String {
    rfc3339((now_secs / period + 1) * period)
}

/// Formats epoch seconds as `YYYY-MM-DDTHH:MM:SS+00:00`.
fn rfc3339(epoch_secs: u64) -> String {
    let days = (epoch_secs / 86400) as i64;
    let rem = epoch_secs % 86400;
    // Civil date from a day count, after Howard Hinnant's well-known derivation.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Control endpoints.

async fn control_create_account(State(control): State<Control>, body: Bytes) -> Response {
    match control_body::<NewAccount>(&body) {
        Ok(new) => Json(control.create_account(new)).into_response(),
        Err(answer) => *answer,
    }
}

async fn control_mint_login(State(control): State<Control>, body: Bytes) -> Response {
    let ids = match control_body::<AccountIds>(&body) {
        Ok(ids) => ids,
        Err(answer) => return *answer,
    };
    match control.mint_login(&ids) {
        Ok(login) => Json(login).into_response(),
        Err(e) => control_error(e),
    }
}

async fn control_revoke_lineage(
    State(control): State<Control>,
    Path(lineage): Path<String>,
) -> Response {
    match control.revoke_lineage(&lineage) {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => control_error(e),
    }
}

async fn control_settings(State(control): State<Control>) -> Response {
    Json(control.settings()).into_response()
}

async fn control_update_settings(State(control): State<Control>, body: Bytes) -> Response {
    match control_body::<SettingsUpdate>(&body) {
        Ok(update) => Json(control.update_settings(update)).into_response(),
        Err(answer) => *answer,
    }
}

async fn control_set_usage(
    State(control): State<Control>,
    Path(account_uuid): Path<String>,
    body: Bytes,
) -> Response {
    let values = match control_body::<UsageValues>(&body) {
        Ok(values) => values,
        Err(answer) => return *answer,
    };
    match control.set_usage(&account_uuid, values) {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => control_error(e),
    }
}

async fn control_set_fault(
    State(control): State<Control>,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> Response {
    let Some(endpoint) = Endpoint::parse(&endpoint) else {
        let e = ControlError::BadRequest(format!("no endpoint named {endpoint:?}"));
        return control_error(e);
    };
    match control_body::<Fault>(&body) {
        Ok(fault) => {
            control.set_fault(endpoint, fault);
            Json(json!({})).into_response()
        }
        Err(answer) => *answer,
    }
}

async fn control_clear_faults(State(control): State<Control>) -> Response {
    control.clear_faults();
    Json(json!({})).into_response()
}

async fn control_report(State(control): State<Control>) -> Response {
    Json(control.report()).into_response()
}

#[derive(Debug, Deserialize)]
struct InspectRequest {
    token: String,
}

async fn control_inspect_token(State(control): State<Control>, body: Bytes) -> Response {
    match control_body::<InspectRequest>(&body) {
        Ok(request) => Json(control.inspect_token(&request.token)).into_response(),
        Err(answer) => *answer,
    }
}

fn control_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(control_error(ControlError::BadRequest(format!("body: {e}")))))
}

fn control_error(error: ControlError) -> Response {
    let status = match error {
        ControlError::NotFound(_) => StatusCode::NOT_FOUND,
        ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": error.to_string()}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_seconds_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59+00:00");
    }

    #[test]
    fn boundaries_lie_ahead() {
        assert_eq!(next_boundary(0, 3600), rfc3339(3600));
        assert_eq!(next_boundary(3599, 3600), rfc3339(3600));
        assert_eq!(next_boundary(3600, 3600), rfc3339(7200));
    }
}
