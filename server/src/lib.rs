//! Switchboard keeps several Claude Code logins alive on one machine and moves Claude Code
//! between them without ever spending a refresh token twice.
//!
//! The crate is laid out in the order data flows:
//!
//! - [`rpc`]: JSON-RPC 2.0 over stdio, both framings, the dispatch loop and the single writer.
//! - [`protocol`]: the public contract: method names, params, results, notifications, errors.
//! - [`service`]: the operations (list, status, use, add, remove) and the lineage rules.
//! - [`claude`]: Claude Code's side: config-dir resolution, the live store, its locks and the
//!   `oauthAccount` block of its global config.
//! - [`vault`]: Switchboard's own snapshots, one per account, and the catalog naming them.
//! - [`keychain`]: one macOS Keychain item through the `security` program, for `claude` and
//!   `vault` alike.
//! - [`oauth`]: the token and profile endpoints, and what each failure means.
//! - [`watch`]: noticing changes made by others (Claude, other Switchboard processes).
//! - [`sidecar`]: the service behind a JSON-RPC connection, with change notifications.
//! - [`cli`]: the terminal commands, thin over [`service`].
//!
//! Imports run one way: `cli` and `rpc` call `service`; `service` uses `claude`, `vault`,
//! `oauth` and `watch`. Nothing under `service` knows JSON-RPC or the terminal.

pub mod claude;
pub mod cli;
pub mod durable;
pub mod keychain;
pub mod oauth;
pub mod protocol;
pub mod rpc;
pub mod secret;
pub mod service;
pub mod sidecar;
pub mod vault;
pub mod watch;
