//! The token and profile endpoints, spoken exactly as Claude Code speaks them, and what each
//! failure means for the refresh token that was sent.
//!
//! The rule this module keeps is that a caller can always tell whether a refresh token may
//! have been spent. A refresh token is single use: once the server has answered, the old one
//! is dead. So a failure before the request left ([`RefreshError::Network`]) is safe to retry
//! with the same token, while a failure after it left ([`RefreshError::Ambiguous`]) is not,
//! and the two are never merged.
//!
//! Tokens are sent and never shown: functions that take one skip it in their tracing span and
//! log its fingerprint, and no error message quotes a request or an answer body, since either
//! can hold a token.

mod profile;
mod refresh;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

pub use profile::{Profile, ProfileError};
pub use refresh::{RefreshError, TokenGrant, refresh_scope};

/// Claude Code's OAuth client id; Switchboard refreshes as Claude Code does.
pub const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

/// Where Claude Code refreshes its tokens.
pub const DEFAULT_TOKEN_URL: &str = "https://platform.claude.com/v1/oauth/token";

/// The API host serving the profile endpoint.
pub const DEFAULT_API_BASE: &str = "https://api.anthropic.com";

/// The scopes a refresh asks for, as Claude Code 2.1.332 does (2.1.112 omits `user:plugins`).
pub const REFRESH_SCOPES: &[&str] = &[
    "user:profile",
    "user:inference",
    "user:sessions:claude_code",
    "user:mcp_servers",
    "user:file_upload",
    "user:plugins",
];

/// Claude Code gives up on a refresh after this long; so does Switchboard.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connecting gets its own, shorter bound, so that a host that cannot be reached fails as
/// "not sent" instead of using up the whole request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The two addresses Switchboard talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The full URL of the token endpoint.
    pub token_url: String,
    /// Scheme and host (and optionally a path prefix) of the API; `/api/oauth/...` is appended.
    pub api_base: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints { token_url: DEFAULT_TOKEN_URL.to_owned(), api_base: DEFAULT_API_BASE.to_owned() }
    }
}

impl Endpoints {
    /// The endpoints from `SWITCHBOARD_TOKEN_URL` and `SWITCHBOARD_API_BASE` as given, each
    /// falling back to Anthropic's own when unset or empty.
    pub fn from_env(token_url: Option<&str>, api_base: Option<&str>) -> Self {
        let pick = |value: Option<&str>, default: &str| {
            value.map(str::trim).filter(|v| !v.is_empty()).unwrap_or(default).to_owned()
        };
        Endpoints {
            token_url: pick(token_url, DEFAULT_TOKEN_URL),
            api_base: pick(api_base, DEFAULT_API_BASE),
        }
    }

    /// The profile endpoint under [`Endpoints::api_base`].
    pub fn profile_url(&self) -> String {
        format!("{}/api/oauth/profile", self.api_base.trim_end_matches('/'))
    }
}

/// Why an [`OAuthClient`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("cannot use the CA bundle {}: {reason}", path.display())]
    CaBundle { path: PathBuf, reason: String },
    #[error("invalid {name} {url:?}: {reason}")]
    InvalidUrl { name: &'static str, url: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// The client for the token and profile endpoints.
///
/// Proxies come from the environment as for any other program (`HTTPS_PROXY`, `https_proxy`,
/// `NO_PROXY`, `no_proxy`; reqwest reads them when the client is built), and certificates are
/// checked against the platform's roots plus, when given, the PEM bundle a user points
/// `SSL_CERT_FILE` at, as behind a corporate proxy that re-signs TLS.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    endpoints: Endpoints,
    token_url: Url,
    profile_url: Url,
    /// Used for refreshes only. It keeps no idle connection, so a refresh never goes out on
    /// a kept-alive connection the server is just closing: that race would turn a refresh
    /// the server never saw into an ambiguous one.
    token_http: reqwest::Client,
    api_http: reqwest::Client,
    timeout: Duration,
}

impl OAuthClient {
    /// Builds the client. `ca_bundle` is a PEM file whose certificates are trusted in
    /// addition to the platform's; a path that cannot be read or holds no certificate is an
    /// error, never silently ignored.
    pub fn new(endpoints: Endpoints, ca_bundle: Option<&Path>) -> Result<Self, OAuthError> {
        let token_url = parse_endpoint("token URL", &endpoints.token_url)?;
        let profile_url = parse_endpoint("API base", &endpoints.profile_url())?;
        let certificates = match ca_bundle {
            Some(path) => load_ca_bundle(path)?,
            None => Vec::new(),
        };
        let build = |idle_per_host: usize| {
            reqwest::Client::builder()
                .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(idle_per_host)
                .tls_certs_merge(certificates.clone())
                .build()
                .map_err(|e| match ca_bundle {
                    Some(path) => {
                        OAuthError::CaBundle { path: path.to_owned(), reason: error_chain(&e) }
                    }
                    None => OAuthError::Client(error_chain(&e)),
                })
        };
        Ok(OAuthClient {
            token_http: build(0)?,
            api_http: build(usize::MAX)?,
            endpoints,
            token_url,
            profile_url,
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same client with another bound on each whole request (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
}

/// Parses an endpoint URL, refusing plain HTTP anywhere but this machine: a token must never
/// cross a network unencrypted.
fn parse_endpoint(name: &'static str, url: &str) -> Result<Url, OAuthError> {
    let invalid = |reason: String| OAuthError::InvalidUrl { name, url: url.to_owned(), reason };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(invalid("plain http is allowed only to this machine".to_owned())),
        other => Err(invalid(format!("unsupported scheme {other}"))),
    }
}

fn load_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, OAuthError> {
    let bad = |reason: String| OAuthError::CaBundle { path: path.to_owned(), reason };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("not a PEM bundle: {}", error_chain(&e))))?;
    if certificates.is_empty() {
        return Err(bad("it holds no PEM certificate".to_owned()));
    }
    Ok(certificates)
}

/// What happened to a request that got no HTTP answer.
enum Unanswered {
    /// It never left: connecting, resolving, the proxy or the TLS handshake failed.
    NotSent(String),
    /// It may have reached the server: the connection broke or time ran out after sending.
    Lost(String),
}

fn unanswered(e: &reqwest::Error) -> Unanswered {
    let message = error_chain(e);
    if e.is_connect() || e.is_builder() {
        Unanswered::NotSent(message)
    } else {
        Unanswered::Lost(message)
    }
}

/// A reqwest error and its causes on one line. These name the URL and the transport failure;
/// none of them carries a request or response body.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The `Retry-After` header as a wait: delta seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Says where and how a JSON answer failed to parse without quoting it: serde's own messages
/// quote the offending value, which in a token answer can be a token.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Eof => format!("the body ends early ({at})"),
        Category::Syntax => format!("the body is not JSON ({at})"),
        Category::Data => format!("the body lacks expected fields ({at})"),
        Category::Io => "the body could not be read".to_owned(),
    }
}

#[cfg(test)]
mod tests;
