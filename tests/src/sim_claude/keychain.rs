//! The simulated Claude's macOS Keychain item, reached only through a `security` program the
//! way Claude Code reaches it (`claude-code-contract.md` §2).
//!
//! It reads with `security find-generic-password -a USER -w -s SERVICE` and writes by piping
//! one `add-generic-password -U -a USER -s SERVICE -X HEX` line into `security -i`, so the
//! secret never appears in a process's arguments. It always names the account: another item of
//! the same service (account `unknown`) may hold someone else's secrets. This reading of the
//! contract is kept apart from Switchboard's own Keychain store on purpose, so that a mistake
//! in one shows up as a disagreement with the other.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use super::SimError;

/// The service of Claude's item when no config folder is named.
pub const SERVICE_PREFIX: &str = "Claude Code-credentials";

/// The account Claude names when `$USER` is missing or not a plain name.
pub const FALLBACK_ACCOUNT: &str = "claude-code-user";

/// The longest line `security -i` takes, without its newline.
pub const MAX_INTERACTIVE_LINE: usize = 4032;

/// `security`'s exit status when no item matches (errSecItemNotFound).
const EXIT_NOT_FOUND: i32 = 44;

/// `security`'s exit status when the Keychain is locked and may not prompt
/// (errSecInteractionNotAllowed).
const EXIT_LOCKED: i32 = 36;

/// What a read of the item found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRead {
    /// The item's value.
    Found(Vec<u8>),
    /// There is no such item.
    Missing,
    /// The Keychain is locked (an SSH session, say): Claude turns to the file.
    Locked,
}

/// What a write of the item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemWrite {
    Written,
    /// The Keychain is locked: Claude turns to the file.
    Locked,
}

/// Claude's Keychain item: the `security` program that reaches it, and its account and
/// service attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keychain {
    program: PathBuf,
    account: String,
    service: String,
}

impl Keychain {
    /// The item `(service, account)`, reached through `program`.
    pub fn new(
        program: impl Into<PathBuf>,
        account: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Keychain { program: program.into(), account: account.into(), service: service.into() }
    }

    /// The item Claude uses with `$USER` = `user` and the config folder variable (for 2.1.332
    /// `CLAUDE_SECURESTORAGE_CONFIG_DIR` when set, else `CLAUDE_CONFIG_DIR`) = `config_dir`.
    pub fn for_claude(
        program: impl Into<PathBuf>,
        user: Option<&str>,
        config_dir: Option<&str>,
    ) -> Self {
        Keychain::new(program, account_name(user), service_name(config_dir))
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// `security find-generic-password -a USER -w -s SERVICE`.
    pub fn read(&self) -> Result<ItemRead, SimError> {
        let output = Command::new(&self.program)
            .args(["find-generic-password", "-a", &self.account, "-w", "-s", &self.service])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| SimError::Io { path: self.program.clone(), source })?;
        match output.status.code() {
            Some(0) => Ok(ItemRead::Found(decode_printed(&output.stdout))),
            Some(EXIT_NOT_FOUND) => Ok(ItemRead::Missing),
            Some(EXIT_LOCKED) => Ok(ItemRead::Locked),
            status => Err(security_failed("find-generic-password", status, &output.stderr)),
        }
    }

    /// Pipes `add-generic-password -U -a USER -s SERVICE -X HEX` into `security -i`.
    pub fn write(&self, value: &[u8]) -> Result<ItemWrite, SimError> {
        for attribute in [&self.account, &self.service] {
            // The attributes go inside double quotes on the line; these would end the quoting.
            if attribute.contains(['"', '\\', '\n']) {
                return Err(SimError::Keychain(format!("unquotable attribute {attribute:?}")));
            }
        }
        let line = format!(
            "add-generic-password -U -a \"{}\" -s \"{}\" -X \"{}\"",
            self.account,
            self.service,
            hex::encode(value)
        );
        if line.len() > MAX_INTERACTIVE_LINE {
            return Err(SimError::Keychain(format!(
                "the item's value does not fit one security -i line ({} bytes)",
                line.len()
            )));
        }
        let mut child = Command::new(&self.program)
            .arg("-i")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SimError::Io { path: self.program.clone(), source })?;
        let written = child.stdin.take().map(|mut stdin| {
            stdin.write_all(line.as_bytes()).and_then(|()| stdin.write_all(b"\n"))
        });
        // Waiting after stdin is dropped lets `security` see the end of its input.
        let output = child
            .wait_with_output()
            .map_err(|source| SimError::Io { path: self.program.clone(), source })?;
        if let Some(Err(source)) = written {
            return Err(SimError::Io { path: self.program.clone(), source });
        }
        match output.status.code() {
            Some(0) => Ok(ItemWrite::Written),
            Some(EXIT_LOCKED) => Ok(ItemWrite::Locked),
            status => Err(security_failed("add-generic-password", status, &output.stderr)),
        }
    }
}

/// `Claude Code-credentials`, plus `-` and the first 8 hex digits of SHA-256 of the raw
/// variable (NFC, not resolved) whenever a config folder variable is set.
pub fn service_name(config_dir: Option<&str>) -> String {
    match config_dir {
        None => SERVICE_PREFIX.to_owned(),
        Some(raw) => {
            let normalized: String = raw.nfc().collect();
            let digest = hex::encode(Sha256::digest(normalized.as_bytes()));
            format!("{SERVICE_PREFIX}-{}", &digest[..8])
        }
    }
}

/// `$USER` when it is a plain name (letters, digits, `.`, `_`, `-`), else the fallback.
pub fn account_name(user: Option<&str>) -> String {
    match user {
        Some(user)
            if !user.is_empty()
                && user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            user.to_owned()
        }
        _ => FALLBACK_ACCOUNT.to_owned(),
    }
}

/// What `find-generic-password -w` printed, without its newline: the value itself when it is
/// printable text, its hex digits when it is not.
fn decode_printed(printed: &[u8]) -> Vec<u8> {
    let trimmed = printed.strip_suffix(b"\n").unwrap_or(printed);
    let looks_hex = !trimmed.is_empty()
        && trimmed.len().is_multiple_of(2)
        && trimmed.iter().all(u8::is_ascii_hexdigit);
    // A JSON document never consists of hex digits alone, so hex means `security` encoded it.
    if looks_hex && let Ok(bytes) = hex::decode(trimmed) {
        return bytes;
    }
    trimmed.to_vec()
}

fn security_failed(command: &str, status: Option<i32>, stderr: &[u8]) -> SimError {
    // `security` reports what failed, never the password it was handed.
    let stderr = String::from_utf8_lossy(stderr);
    let status = status.map_or_else(|| "a signal".to_owned(), |code| code.to_string());
    SimError::Keychain(format!("security {command} exited with {status}: {}", stderr.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_hashes_the_raw_folder_variable() {
        assert_eq!(service_name(None), "Claude Code-credentials");
        let plain = service_name(Some("/Users/ada/.claude"));
        let slash = service_name(Some("/Users/ada/.claude/"));
        assert!(plain.starts_with("Claude Code-credentials-"));
        assert_eq!(plain.len(), SERVICE_PREFIX.len() + 9);
        assert_ne!(plain, slash, "a trailing slash changes the hash");
        let digest = hex::encode(Sha256::digest(b"/Users/ada/.claude"));
        assert_eq!(plain, format!("Claude Code-credentials-{}", &digest[..8]));
    }

    #[test]
    fn the_service_hashes_the_composed_form_of_the_folder() {
        let composed = service_name(Some("/Users/Ren\u{e9}e/.claude"));
        let decomposed = service_name(Some("/Users/Rene\u{301}e/.claude"));
        assert_eq!(composed, decomposed);
    }

    #[test]
    fn only_plain_user_names_name_the_account() {
        assert_eq!(account_name(Some("ada.l-ovelace_1")), "ada.l-ovelace_1");
        assert_eq!(account_name(Some("ada lovelace")), FALLBACK_ACCOUNT);
        assert_eq!(account_name(Some("")), FALLBACK_ACCOUNT);
        assert_eq!(account_name(None), FALLBACK_ACCOUNT);
    }

    #[test]
    fn printed_values_are_read_as_text_or_as_hex() {
        assert_eq!(decode_printed(b"{\"a\":1}\n"), b"{\"a\":1}");
        assert_eq!(decode_printed(b"7b7d0a\n"), b"{}\n");
        assert_eq!(decode_printed(b"abc\n"), b"abc", "odd length is text");
    }
}
