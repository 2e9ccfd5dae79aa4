//! Test doubles for Switchboard's end-to-end tests, usable in process and as binaries:
//!
//! - [`fake`]: a faithful fake of Anthropic's OAuth service (`fake-anthropic`).
//! - [`fake_security`]: a fake of macOS's `security` program and its Keychain
//!   (`fake-security`).
//! - [`harness`]: a scratch world per test: HOME, vault, fake, and Switchboard to drive.
//! - [`sim_claude`]: a simulated Claude Code that logs in, refreshes and locks exactly as the
//!   real one does (`fake-claude`).

pub mod fake;
pub mod fake_security;
pub mod harness;
pub mod secret_service;
pub mod sim_claude;
