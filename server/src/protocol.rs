//! The public contract of protocol v1: method names, params, results, the `account/didChange`
//! notification and the error kinds, exactly as `docs/protocol.md` describes them.
//!
//! These types are shared by the sidecar, the CLI's `--json` output and the tests. They hold no
//! token by construction: nothing here can carry a [`crate::secret::Secret`]. The contract only
//! grows, so fields are added, never renamed or removed.

use serde::{Deserialize, Serialize};

/// Method names.
pub mod method {
    pub const LIST: &str = "account/list";
    pub const STATUS: &str = "account/status";
    pub const USE: &str = "account/use";
    pub const ADD: &str = "account/add";
    pub const REMOVE: &str = "account/remove";
    pub const DID_CHANGE: &str = "account/didChange";
}

/// The version `initialize` reports.
pub const PROTOCOL_VERSION: u32 = 1;

/// The alias `account/use` reads as "the previous account".
pub const PREVIOUS_ALIAS: &str = "-";

/// How usable an account's login is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccountState {
    Ok,
    Expiring,
    Expired,
    NeedsLogin,
    Unknown,
}

/// One managed account, as every client shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub alias: String,
    pub account_uuid: String,
    pub email: Option<String>,
    pub organization_uuid: String,
    pub organization_name: Option<String>,
    pub subscription_type: Option<String>,
    pub active: bool,
    pub state: AccountState,
    pub expires_at: Option<i64>,
    pub validated_at: Option<i64>,
    pub synced_at: Option<i64>,
    pub fingerprint: Option<String>,
}

/// The live login when it belongs to no managed account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmanagedLogin {
    pub account_uuid: Option<String>,
    pub email: Option<String>,
    pub organization_uuid: Option<String>,
    pub organization_name: Option<String>,
    pub state: AccountState,
}

/// What everyone sees: the answer to `account/list` and the body of `account/didChange`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResult {
    pub active: Option<String>,
    pub previous: Option<String>,
    pub accounts: Vec<Account>,
    pub unmanaged: Option<UnmanagedLogin>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusParams {
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub validate: bool,
}

/// Where Claude Code's live login is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum StoreInfo {
    File { path: String },
    Keychain { service: String, account: String },
}

/// Where Switchboard keeps its own snapshots of every account's login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum VaultInfo {
    /// Files in the vault folder.
    File { path: String },
    /// Generic passwords of the macOS login Keychain, one per account, under `service`.
    Keychain { service: String },
    /// Entries of the desktop keyring (Secret Service, Credential Manager) under `service`.
    Keyring { service: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub account: Option<Account>,
    pub store: StoreInfo,
    pub config_dir: String,
    pub global_config: String,
    pub shadowed_by: Vec<String>,
    pub unmanaged: Option<UnmanagedLogin>,
    /// What a person should know about the store though nothing failed; empty for most.
    #[serde(default)]
    pub store_warnings: Vec<StoreWarning>,
    /// Where the snapshots are; absent in answers of servers older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultInfo>,
}

/// Something about Claude Code's store worth showing, though nothing failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreWarning {
    pub kind: StoreWarningKind,
    /// A sentence a person can act on.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreWarningKind {
    /// The Keychain holds the login and `.credentials.json` holds an older copy, which Claude
    /// Code falls back to (and would spend) whenever the Keychain is locked.
    StaleFile,
    /// The Keychain cannot be used (locked, or `security` missing or failing), so the file is
    /// Claude Code's store for now.
    KeychainUnavailable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasParams {
    pub alias: String,
}

/// When running Claude Code sessions pick up a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SessionsFollow {
    NextRequest,
    Within30Seconds,
    Restart,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sessions {
    pub follow: SessionsFollow,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UseResult {
    pub active: Account,
    pub previous: Option<String>,
    pub sessions: Sessions,
    pub shadowed_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveResult {
    pub removed: String,
}

/// Why `account/didChange` was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeReason {
    Use,
    Add,
    Remove,
    Refresh,
    Sync,
    External,
    State,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidChange {
    pub reason: ChangeReason,
    pub external: bool,
    #[serde(flatten)]
    pub view: ListResult,
}

/// The application error kinds, each with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    UnknownAccount,
    NeedsLogin,
    NoLogin,
    IdentityMismatch,
    Busy,
    Network,
    RateLimited,
    StoreUnavailable,
    Shadowed,
    AliasTaken,
    AlreadyManaged,
}

impl ErrorKind {
    /// The JSON-RPC error code of this kind.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::UnknownAccount => -32001,
            ErrorKind::NeedsLogin => -32002,
            ErrorKind::NoLogin => -32003,
            ErrorKind::IdentityMismatch => -32004,
            ErrorKind::Busy => -32005,
            ErrorKind::Network => -32006,
            ErrorKind::RateLimited => -32007,
            ErrorKind::StoreUnavailable => -32008,
            ErrorKind::Shadowed => -32009,
            ErrorKind::AliasTaken => -32010,
            ErrorKind::AlreadyManaged => -32011,
        }
    }

    /// The name used in `data.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownAccount => "unknownAccount",
            ErrorKind::NeedsLogin => "needsLogin",
            ErrorKind::NoLogin => "noLogin",
            ErrorKind::IdentityMismatch => "identityMismatch",
            ErrorKind::Busy => "busy",
            ErrorKind::Network => "network",
            ErrorKind::RateLimited => "rateLimited",
            ErrorKind::StoreUnavailable => "storeUnavailable",
            ErrorKind::Shadowed => "shadowed",
            ErrorKind::AliasTaken => "aliasTaken",
            ErrorKind::AlreadyManaged => "alreadyManaged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_kinds_serialize_as_their_documented_names() {
        for kind in [
            ErrorKind::UnknownAccount,
            ErrorKind::NeedsLogin,
            ErrorKind::NoLogin,
            ErrorKind::IdentityMismatch,
            ErrorKind::Busy,
            ErrorKind::Network,
            ErrorKind::RateLimited,
            ErrorKind::StoreUnavailable,
            ErrorKind::Shadowed,
            ErrorKind::AliasTaken,
            ErrorKind::AlreadyManaged,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
    }

    #[test]
    fn did_change_is_flat() {
        let change = DidChange {
            reason: ChangeReason::Use,
            external: false,
            view: ListResult {
                active: Some("a".into()),
                previous: None,
                accounts: vec![],
                unmanaged: None,
            },
        };
        assert_eq!(
            serde_json::to_value(change).unwrap(),
            json!({"reason":"use","external":false,"active":"a","previous":null,"accounts":[],"unmanaged":null})
        );
    }

    #[test]
    fn status_params_reject_unknown_fields() {
        assert!(serde_json::from_value::<StatusParams>(json!({"alais": "x"})).is_err());
        let p: StatusParams = serde_json::from_value(json!({})).unwrap();
        assert_eq!(p, StatusParams::default());
    }

    #[test]
    fn store_info_is_tagged_by_kind() {
        let file = StoreInfo::File { path: "/h/.claude/.credentials.json".into() };
        assert_eq!(
            serde_json::to_value(file).unwrap(),
            json!({"kind":"file","path":"/h/.claude/.credentials.json"})
        );
    }

    #[test]
    fn store_warnings_are_optional_and_camel_case() {
        let warning = StoreWarning { kind: StoreWarningKind::StaleFile, message: "m".into() };
        assert_eq!(
            serde_json::to_value(warning).unwrap(),
            json!({"kind":"staleFile","message":"m"})
        );
        let status = json!({"account": null, "store": {"kind": "file", "path": "/p"},
            "configDir": "/c", "globalConfig": "/g", "shadowedBy": [], "unmanaged": null});
        let status: StatusResult = serde_json::from_value(status).unwrap();
        assert!(status.store_warnings.is_empty(), "answers of older servers still parse");
    }
}
