//! The service's failures, each mapped to one protocol error kind and a sentence a person can
//! act on. Messages name accounts and files, never a token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::protocol::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no account is called '{alias}' (see `switchboard list`)")]
    UnknownAccount { alias: String },
    #[error("there is no previous account to go back to")]
    NoPrevious,
    #[error("{email} has several accounts ({}): name one by its alias", aliases.join(", "))]
    AmbiguousEmail { email: String, aliases: Vec<String> },
    #[error(
        "the login of '{alias}' has expired for good: run `claude /login` with that account, \
         then `switchboard add {alias}`"
    )]
    NeedsLogin { alias: String },
    #[error("{reason}")]
    NoLogin { reason: String },
    #[error(
        "the login filed under '{alias}' belongs to another account ({found}), so it was not used"
    )]
    IdentityMismatch { alias: String, found: String },
    #[error("{what} is busy with another switch or refresh; try again in a moment")]
    Busy { what: String },
    #[error("could not reach {endpoint}: {detail}; nothing was changed")]
    Network { endpoint: &'static str, detail: String },
    #[error("the {endpoint} endpoint asked to slow down; nothing was changed")]
    RateLimited { endpoint: &'static str, retry_after: Option<Duration> },
    #[error("{store}: {detail}")]
    StoreUnavailable { store: String, detail: String },
    #[error("the alias '{alias}' already names another account")]
    AliasTaken { alias: String },
    #[error("this login's account is already managed as '{alias}'")]
    AlreadyManaged { alias: String },
    /// The request itself is wrong (a malformed alias, say): a protocol-level invalid params.
    #[error("{0}")]
    InvalidParams(String),
}

impl ServiceError {
    /// The protocol kind, or `None` for malformed requests, which are JSON-RPC errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        Some(match self {
            ServiceError::UnknownAccount { .. }
            | ServiceError::NoPrevious
            | ServiceError::AmbiguousEmail { .. } => ErrorKind::UnknownAccount,
            ServiceError::NeedsLogin { .. } => ErrorKind::NeedsLogin,
            ServiceError::NoLogin { .. } => ErrorKind::NoLogin,
            ServiceError::IdentityMismatch { .. } => ErrorKind::IdentityMismatch,
            ServiceError::Busy { .. } => ErrorKind::Busy,
            ServiceError::Network { .. } => ErrorKind::Network,
            ServiceError::RateLimited { .. } => ErrorKind::RateLimited,
            ServiceError::StoreUnavailable { .. } => ErrorKind::StoreUnavailable,
            ServiceError::AliasTaken { .. } => ErrorKind::AliasTaken,
            ServiceError::AlreadyManaged { .. } => ErrorKind::AlreadyManaged,
            ServiceError::InvalidParams(_) => return None,
        })
    }

    /// The `data` object of the protocol error: the kind plus what a client may act on.
    pub fn data(&self) -> Value {
        let mut data = json!({});
        if let Some(kind) = self.kind() {
            data["kind"] = json!(kind.as_str());
        }
        match self {
            ServiceError::UnknownAccount { alias }
            | ServiceError::NeedsLogin { alias }
            | ServiceError::IdentityMismatch { alias, .. }
            | ServiceError::AliasTaken { alias }
            | ServiceError::AlreadyManaged { alias } => data["alias"] = json!(alias),
            ServiceError::Busy { .. } => data["retryAfterMs"] = json!(1000),
            ServiceError::RateLimited { retry_after: Some(after), .. } => {
                data["retryAfterMs"] = json!(after.as_millis() as u64)
            }
            ServiceError::StoreUnavailable { store, .. } => data["store"] = json!(store),
            _ => {}
        }
        data
    }

    pub(crate) fn store(store: impl std::fmt::Display, detail: impl std::fmt::Display) -> Self {
        ServiceError::StoreUnavailable { store: store.to_string(), detail: detail.to_string() }
    }
}
