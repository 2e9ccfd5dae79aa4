//! One generic password of the macOS login Keychain, reached only through the `security`
//! program: the way Claude Code reaches its own login, and the way Switchboard keeps its
//! snapshots on macOS.
//!
//! Three habits keep every secret where it belongs:
//!
//! - An item is always named by service *and* account. A search that leaves the account out
//!   returns whichever item of the service comes first, which may be someone else's.
//! - No secret ever appears in a process's arguments, where any user can read it (`ps`): a
//!   write pipes one command line into `security -i`, with the value hex-encoded, and a value
//!   too large for that line ([`MAX_COMMAND_LINE`]) is refused rather than written another
//!   way.
//! - Nothing `security` prints about a write is passed on: its error output could quote the
//!   command line.
//!
//! Every call is bounded ([`SECURITY_TIMEOUT`]): a read that would put up an unlock prompt can
//! otherwise wait for ever.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The setting naming the `security` program, for tests and unusual installs.
pub const SECURITY_BIN_VAR: &str = "SWITCHBOARD_SECURITY_BIN";
/// Where macOS keeps `security`. Claude runs it by this name too.
pub const DEFAULT_SECURITY_BIN: &str = "/usr/bin/security";
/// The longest command line `security -i` reads whole, as Claude counts it.
pub const MAX_COMMAND_LINE: usize = 4032;
/// `security`'s exit status when the item does not exist (errSecItemNotFound).
pub const EXIT_NOT_FOUND: i32 = 44;
/// `security`'s exit status when the Keychain is locked and may not prompt
/// (errSecInteractionNotAllowed).
pub const EXIT_LOCKED: i32 = 36;
/// How long one `security` call may take. Past this the Keychain counts as unusable.
pub const SECURITY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of `security`'s error output goes into an error message.
const DETAIL_LIMIT: usize = 200;

/// The command line a write pipes into `security -i`: the value hex-encoded, so no quoting
/// can break and no byte of the value is interpreted.
pub fn add_command_line(service: &str, account: &str, value: &[u8]) -> String {
    format!(
        "add-generic-password -U -a \"{account}\" -s \"{service}\" -X \"{}\"",
        hex::encode(value)
    )
}

/// What `security find-generic-password -w` printed, as the stored bytes. `security` prints a
/// value that is not plain ASCII text as hex, so a value that is all hex digits is decoded:
/// the values kept here are JSON documents, which never are.
pub fn decode_password(printed: &[u8]) -> Vec<u8> {
    let text = printed.strip_suffix(b"\n").unwrap_or(printed);
    let hex_like =
        !text.is_empty() && text.len().is_multiple_of(2) && text.iter().all(u8::is_ascii_hexdigit);
    if hex_like && let Ok(bytes) = hex::decode(text) {
        return bytes;
    }
    text.to_vec()
}

/// Why the Keychain could not be used. No variant ever carries a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeychainError {
    #[error("the keychain is locked")]
    Locked,
    #[error("{} cannot be run: {reason}", program.display())]
    NoProgram { program: PathBuf, reason: String },
    #[error("`security {command}` failed with exit status {status}{detail}")]
    Failed { command: &'static str, status: String, detail: String },
    #[error("`security {command}` did not answer within {} s", SECURITY_TIMEOUT.as_secs())]
    Timeout { command: &'static str },
    #[error(
        "the value needs a {bytes}-byte line for `security -i`, which reads at most {limit}; \
         it is not written through arguments, where other users could read it"
    )]
    TooLarge { bytes: usize, limit: usize },
}

/// One Keychain item, `(service, account)`, reached through the program at `security`.
#[derive(Debug, Clone)]
pub struct KeychainItem {
    security: PathBuf,
    service: String,
    account: String,
}

impl KeychainItem {
    pub fn new(security: PathBuf, service: String, account: String) -> Self {
        KeychainItem { security, service, account }
    }

    /// The `security` program `env_value` names (the [`SECURITY_BIN_VAR`] setting), else
    /// [`DEFAULT_SECURITY_BIN`].
    pub fn program(env_value: Option<&str>) -> PathBuf {
        PathBuf::from(env_value.filter(|p| !p.is_empty()).unwrap_or(DEFAULT_SECURITY_BIN))
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn security(&self) -> &Path {
        &self.security
    }

    /// The item of the same service and program under another account.
    pub fn with_account(&self, account: String) -> Self {
        KeychainItem { account, ..self.clone() }
    }

    /// Asks `security show-keychain-info` whether the Keychain is unlocked. Reading an item of
    /// a locked Keychain could show an unlock prompt and wait on it, so every read asks first.
    pub fn check_unlocked(&self) -> Result<(), KeychainError> {
        let done = self.run("show-keychain-info", &["show-keychain-info"], None)?;
        match done.code {
            Some(0) => Ok(()),
            Some(EXIT_LOCKED) => Err(KeychainError::Locked),
            _ => Err(done.failure("show-keychain-info")),
        }
    }

    /// The stored bytes of the item, `None` when there is none.
    pub fn fetch(&self) -> Result<Option<Vec<u8>>, KeychainError> {
        self.check_unlocked()?;
        let args = ["find-generic-password", "-a", &self.account, "-w", "-s", &self.service];
        let done = self.run("find-generic-password", &args, None)?;
        match done.code {
            Some(0) => Ok(Some(decode_password(&done.stdout))),
            Some(EXIT_NOT_FOUND) => Ok(None),
            Some(EXIT_LOCKED) => Err(KeychainError::Locked),
            _ => Err(done.failure("find-generic-password")),
        }
    }

    /// The length of the `security -i` line that would store `value`, refused when it is over
    /// [`MAX_COMMAND_LINE`]. Callers ask before they lock or read anything, so that a value
    /// that cannot be written leaves nothing half done.
    pub fn check_fits(&self, value: &[u8]) -> Result<usize, KeychainError> {
        let bytes = add_command_line(&self.service, &self.account, value).len();
        if bytes > MAX_COMMAND_LINE {
            return Err(KeychainError::TooLarge { bytes, limit: MAX_COMMAND_LINE });
        }
        Ok(bytes)
    }

    /// Stores `value` as the item's password, creating or replacing it, by piping one command
    /// line into `security -i`. `security -i` may report success for a command that failed,
    /// so a caller that must know reads the item back.
    pub fn put(&self, value: &[u8]) -> Result<(), KeychainError> {
        self.check_fits(value)?;
        let mut line = add_command_line(&self.service, &self.account, value);
        line.push('\n');
        let done = self.run("-i", &["-i"], Some(line.as_bytes()))?;
        match done.code {
            Some(0) => Ok(()),
            // The error output is left out even though `security -i` echoes nothing of the
            // line on failure: it is not needed to act on the failure.
            _ => Err(KeychainError::Failed {
                command: "-i",
                status: done.status_text(),
                detail: String::new(),
            }),
        }
    }

    /// Deletes the item; deleting one that is not there is not an error.
    pub fn delete(&self) -> Result<(), KeychainError> {
        self.check_unlocked()?;
        let args = ["delete-generic-password", "-a", &self.account, "-s", &self.service];
        let done = self.run("delete-generic-password", &args, None)?;
        match done.code {
            Some(0) | Some(EXIT_NOT_FOUND) => Ok(()),
            Some(EXIT_LOCKED) => Err(KeychainError::Locked),
            _ => Err(done.failure("delete-generic-password")),
        }
    }

    /// Runs `security` with `args` and, when given, `input` on its standard input, for at most
    /// [`SECURITY_TIMEOUT`].
    fn run(
        &self,
        command: &'static str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<Finished, KeychainError> {
        let no_program =
            |reason: String| KeychainError::NoProgram { program: self.security.clone(), reason };
        let mut child = Command::new(&self.security)
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| no_program(e.to_string()))?;
        // Both pipes are drained on their own threads so that a chatty `security` can never
        // block on a full pipe while this thread waits for it to exit.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A `security` that exits without reading its input shows up in its exit status;
            // the broken pipe itself says nothing more.
            let _ = stdin.write_all(input);
        }
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < SECURITY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(KeychainError::Timeout { command });
                }
                Err(e) => {
                    let _ = child.kill();
                    return Err(no_program(e.to_string()));
                }
            }
        };
        Ok(Finished {
            code: status.code(),
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}

/// A finished `security` call.
struct Finished {
    code: Option<i32>,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Finished {
    fn status_text(&self) -> String {
        match self.code {
            Some(code) => code.to_string(),
            None => self.status.to_string(),
        }
    }

    /// The failure of a command whose arguments and output hold no secret.
    fn failure(&self, command: &'static str) -> KeychainError {
        let text = String::from_utf8_lossy(&self.stderr);
        let first = text.lines().next().unwrap_or("").trim();
        let detail = if first.is_empty() {
            String::new()
        } else {
            format!(": {}", first.chars().take(DETAIL_LIMIT).collect::<String>())
        };
        KeychainError::Failed { command, status: self.status_text(), detail }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_hex() {
        let value = "{\"claudeAiOauth\":{\"accessToken\":\"sk-ant-oat01-é\"}}".as_bytes();
        let line = add_command_line("Claude Code-credentials", "ada", value);
        assert!(!line.contains("sk-ant"), "the value travels hex-encoded");
        let hex_value = line.rsplit('"').nth(1).unwrap();
        // `security -w` prints non-ASCII values as hex, plain ones as they are.
        assert_eq!(decode_password(format!("{hex_value}\n").as_bytes()), value);
        let plain = br#"{"claudeAiOauth":{}}"#;
        assert_eq!(decode_password(b"{\"claudeAiOauth\":{}}\n"), plain);
        assert_eq!(decode_password(b""), b"");
    }

    #[test]
    fn the_command_line_names_the_account_and_service() {
        let line = add_command_line("Claude Code-credentials-f2fa2c6b", "ada", b"{}");
        assert_eq!(
            line,
            "add-generic-password -U -a \"ada\" -s \"Claude Code-credentials-f2fa2c6b\" -X \"7b7d\""
        );
    }

    #[test]
    fn a_value_too_large_for_one_line_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        // A program that does not exist proves nothing was run: the error would differ.
        let item = KeychainItem::new(dir.path().join("no-such-security"), "s".into(), "a".into());
        let overhead = add_command_line("s", "a", b"").len();
        let fits = (MAX_COMMAND_LINE - overhead) / 2;
        let err = item.put(&vec![b'x'; fits + 1]).unwrap_err();
        assert_eq!(
            err,
            KeychainError::TooLarge { bytes: overhead + 2 * (fits + 1), limit: MAX_COMMAND_LINE }
        );
        assert!(matches!(item.put(&vec![b'x'; fits]), Err(KeychainError::NoProgram { .. })));
    }

    #[test]
    fn the_program_defaults_to_the_system_one() {
        assert_eq!(KeychainItem::program(None), Path::new(DEFAULT_SECURITY_BIN));
        assert_eq!(KeychainItem::program(Some("")), Path::new(DEFAULT_SECURITY_BIN));
        assert_eq!(KeychainItem::program(Some("/opt/sec")), Path::new("/opt/sec"));
    }
}
