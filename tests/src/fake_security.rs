//! A fake of macOS's `security` program, for the parts Claude Code and Switchboard use, so the
//! Keychain store can be tested on any system (`fake-security`).
//!
//! Generic passwords are kept by `(service, account)` in a JSON state file named by
//! [`STATE_VAR`], in the order they were added: a search that names no account finds the first
//! item of the service, exactly the mistake that reads an MCP item under account `unknown`.
//! The state can be locked, as an SSH session's login Keychain is. It behaves like the real
//! program where Switchboard depends on it:
//!
//! - `find-generic-password [-a A] [-s S] [-w]`: exit 44 when nothing matches; with `-w` the
//!   password alone, as text when it is printable ASCII and as hex otherwise.
//! - `add-generic-password [-U] -a A -s S (-w PASSWORD | -X HEX)`: exit 45 when the item exists
//!   and `-U` is missing.
//! - `delete-generic-password -a A -s S` and `show-keychain-info`.
//! - `-i`: commands read from standard input, one a line, at most [`MAX_LINE`] bytes each.
//! - A locked Keychain answers every item command and `show-keychain-info` with exit 36.
//!
//! Every invocation appends its argument list to a record ([`RECORD_VAR`], by default beside
//! the state), and each `-i` line its command name only, so tests can prove that no token was
//! ever handed over in a process's arguments.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The variable naming the state file.
pub const STATE_VAR: &str = "FAKE_SECURITY_STATE";
/// The variable naming the record file; by default the state file's name plus `.record`.
pub const RECORD_VAR: &str = "FAKE_SECURITY_RECORD";
/// The longest line `security -i` accepts, without its newline.
pub const MAX_LINE: usize = 4032;
/// Exit status: no such item (errSecItemNotFound).
pub const EXIT_NOT_FOUND: i32 = 44;
/// Exit status: the item exists already (errSecDuplicateItem).
pub const EXIT_DUPLICATE: i32 = 45;
/// Exit status: the Keychain is locked and may not prompt (errSecInteractionNotAllowed).
pub const EXIT_LOCKED: i32 = 36;
/// Exit status: the command was malformed.
pub const EXIT_USAGE: i32 = 2;

/// What the fake Keychain holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub items: Vec<Item>,
}

/// One generic password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub service: String,
    pub account: String,
    /// The password's bytes, hex-encoded so that any value survives the JSON state.
    pub password: String,
}

impl Item {
    pub fn value(&self) -> Vec<u8> {
        hex::decode(&self.password).unwrap_or_default()
    }
}

/// A fake Keychain on disk: the state file and the record.
#[derive(Debug, Clone)]
pub struct FakeKeychain {
    state: PathBuf,
    record: PathBuf,
}

impl FakeKeychain {
    /// A Keychain whose files live in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        FakeKeychain::at(dir.join("fake-keychain.json"), None)
    }

    /// A Keychain with its state at `state` and its record at `record` (by default beside).
    pub fn at(state: PathBuf, record: Option<PathBuf>) -> Self {
        let record = record.unwrap_or_else(|| {
            let mut name = state.as_os_str().to_owned();
            name.push(".record");
            PathBuf::from(name)
        });
        FakeKeychain { state, record }
    }

    /// The Keychain named by [`STATE_VAR`] and [`RECORD_VAR`].
    pub fn from_env() -> Option<Self> {
        let state = std::env::var_os(STATE_VAR).filter(|s| !s.is_empty())?;
        let record = std::env::var_os(RECORD_VAR).filter(|s| !s.is_empty()).map(PathBuf::from);
        Some(FakeKeychain::at(PathBuf::from(state), record))
    }

    pub fn state_path(&self) -> &Path {
        &self.state
    }

    pub fn record_path(&self) -> &Path {
        &self.record
    }

    /// The variables that point `fake-security` at this Keychain.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (STATE_VAR.into(), self.state.display().to_string()),
            (RECORD_VAR.into(), self.record.display().to_string()),
        ]
    }

    /// Writes an executable script at `at` that runs `fake_bin` on this Keychain with the
    /// arguments it is given, so that any process (whatever its environment) can be pointed at
    /// it as its `security` program.
    pub fn write_wrapper(&self, fake_bin: &Path, at: &Path) -> io::Result<PathBuf> {
        let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
        let script = format!(
            "#!/bin/sh\n{STATE_VAR}={} {RECORD_VAR}={} exec {} \"$@\"\n",
            quote(&self.state),
            quote(&self.record),
            quote(fake_bin)
        );
        fs::write(at, script)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(at, fs::Permissions::from_mode(0o755))?;
        }
        Ok(at.to_owned())
    }

    /// The state as it is now.
    pub fn load(&self) -> State {
        self.with_state(|state| Ok((state.clone(), false))).expect("read the fake keychain")
    }

    pub fn set_locked(&self, locked: bool) {
        self.with_state(|state| {
            state.locked = locked;
            Ok(((), true))
        })
        .expect("lock the fake keychain");
    }

    /// Stores `value` as the item `(service, account)`, as `add-generic-password -U` would.
    pub fn put(&self, service: &str, account: &str, value: &[u8]) {
        self.with_state(|state| {
            upsert(state, service, account, value);
            Ok(((), true))
        })
        .expect("write the fake keychain");
    }

    /// The bytes of the item `(service, account)`.
    pub fn get(&self, service: &str, account: &str) -> Option<Vec<u8>> {
        self.load()
            .items
            .iter()
            .find(|i| i.service == service && i.account == account)
            .map(Item::value)
    }

    /// Every record entry: `{"argv": [...]}` per invocation, `{"interactive": NAME}` per
    /// `-i` line.
    pub fn records(&self) -> Vec<Value> {
        let Ok(text) = fs::read_to_string(&self.record) else { return Vec::new() };
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// Runs one `security` invocation (`args` without the program name).
    pub fn run(
        &self,
        args: &[String],
        stdin: &mut dyn BufRead,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> i32 {
        self.append_record(&json!({ "argv": args }));
        match args.first().map(String::as_str) {
            Some("-i") if args.len() == 1 => self.interactive(stdin, out, err),
            Some(_) => self.command(args, out, err),
            None => {
                let _ = writeln!(err, "usage: security [-i] command [options]");
                EXIT_USAGE
            }
        }
    }

    fn interactive(
        &self,
        stdin: &mut dyn BufRead,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> i32 {
        let mut status = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    let _ = writeln!(err, "security: cannot read the command: {e}");
                    return 1;
                }
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let words = split_words(text);
            let name = words.as_ref().ok().and_then(|w| w.first().cloned()).unwrap_or_default();
            if text.len() > MAX_LINE {
                self.append_record(&json!({ "interactive": name, "tooLong": true }));
                let _ = writeln!(err, "security: the command line is too long");
                status = EXIT_USAGE;
                continue;
            }
            self.append_record(&json!({ "interactive": name }));
            let words = match words {
                Ok(words) if words.is_empty() => continue,
                Ok(words) => words,
                Err(e) => {
                    let _ = writeln!(err, "security: {e}");
                    status = EXIT_USAGE;
                    continue;
                }
            };
            if matches!(words[0].as_str(), "quit" | "exit") {
                break;
            }
            let code = self.command(&words, out, err);
            if code != 0 {
                status = code;
            }
        }
        status
    }

    fn command(&self, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
        let name = args[0].as_str();
        let spec = match name {
            "find-generic-password" => Spec { values: "acCDGjls", flags: "gw" },
            "add-generic-password" => Spec { values: "acCDGjlswXT", flags: "AU" },
            "delete-generic-password" => Spec { values: "acCDGjls", flags: "" },
            "show-keychain-info" => Spec { values: "", flags: "" },
            other => {
                let _ = writeln!(err, "security: unknown command \"{other}\"");
                return 1;
            }
        };
        let options = match spec.parse(&args[1..]) {
            Ok(options) => options,
            Err(e) => {
                let _ = writeln!(err, "security: {name}: {e}");
                return EXIT_USAGE;
            }
        };
        let outcome = self.with_state(|state| {
            if state.locked {
                let _ = writeln!(err, "security: {name}: user interaction is not allowed.");
                return Ok((EXIT_LOCKED, false));
            }
            Ok(match name {
                "find-generic-password" => (find(state, &options, out, err), false),
                "add-generic-password" => add(state, &options, err),
                "delete-generic-password" => delete(state, &options, err),
                _ => {
                    let _ = writeln!(err, "Keychain \"/fake/login.keychain-db\" no-timeout");
                    (0, false)
                }
            })
        });
        outcome.unwrap_or_else(|e| {
            let _ = writeln!(err, "security: the fake keychain cannot be used: {e}");
            1
        })
    }

    /// Runs `change` on the state under an exclusive lock, saving it when it says so.
    fn with_state<T>(
        &self,
        change: impl FnOnce(&mut State) -> io::Result<(T, bool)>,
    ) -> io::Result<T> {
        if let Some(dir) = self.state.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut lock_name = self.state.as_os_str().to_owned();
        lock_name.push(".lock");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(lock_name)?;
        lock.lock()?;
        let mut state = match fs::read(&self.state) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        let (answer, save) = change(&mut state)?;
        if save {
            let bytes = serde_json::to_vec_pretty(&state).map_err(io::Error::other)?;
            switchboard::durable::write_atomic(&self.state, &bytes, 0o600)?;
        }
        drop(lock);
        Ok(answer)
    }

    fn append_record(&self, entry: &Value) {
        let line = format!("{entry}\n");
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.record)
            .and_then(|mut file: File| file.write_all(line.as_bytes()));
        if let Err(e) = written {
            // The record is how tests check what was handed over; losing it must be loud.
            panic!("cannot append to the record {}: {e}", self.record.display());
        }
    }
}

/// Which options of a command take a value and which are flags.
struct Spec {
    values: &'static str,
    flags: &'static str,
}

/// Parsed options: the last value of each option, and the flags given.
#[derive(Debug, Default)]
struct Options {
    values: Vec<(char, String)>,
    flags: Vec<char>,
}

impl Options {
    fn value(&self, option: char) -> Option<&str> {
        self.values.iter().rev().find(|(o, _)| *o == option).map(|(_, v)| v.as_str())
    }

    fn flag(&self, option: char) -> bool {
        self.flags.contains(&option)
    }
}

impl Spec {
    fn parse(&self, args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut chars = arg.chars();
            let (Some('-'), Some(option), None) = (chars.next(), chars.next(), chars.next()) else {
                // A keychain name: the fake has only the one.
                continue;
            };
            if self.values.contains(option) {
                let value = rest.next().ok_or_else(|| format!("option -{option} needs a value"))?;
                options.values.push((option, value.clone()));
            } else if self.flags.contains(option) {
                options.flags.push(option);
            } else {
                return Err(format!("unknown option -{option}"));
            }
        }
        Ok(options)
    }
}

fn matches(item: &Item, options: &Options) -> bool {
    options.value('a').is_none_or(|a| item.account == a)
        && options.value('s').is_none_or(|s| item.service == s)
}

fn find(state: &State, options: &Options, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(item) = state.items.iter().find(|i| matches(i, options)) else {
        let _ = writeln!(err, "security: the specified item could not be found in the keychain.");
        return EXIT_NOT_FOUND;
    };
    let value = item.value();
    if options.flag('w') {
        let printable = value.iter().all(|b| (0x20..0x7f).contains(b));
        let shown = if printable {
            String::from_utf8_lossy(&value).into_owned()
        } else {
            item.password.clone()
        };
        let _ = writeln!(out, "{shown}");
    } else {
        let _ = writeln!(out, "keychain: \"/fake/login.keychain-db\"");
        let _ = writeln!(out, "class: \"genp\"");
        let _ = writeln!(out, "attributes:");
        let _ = writeln!(out, "    \"acct\"<blob>=\"{}\"", item.account);
        let _ = writeln!(out, "    \"svce\"<blob>=\"{}\"", item.service);
    }
    0
}

fn add(state: &mut State, options: &Options, err: &mut dyn Write) -> (i32, bool) {
    let account = options.value('a').unwrap_or("");
    let service = options.value('s').unwrap_or("");
    let value = match (options.value('X'), options.value('w')) {
        (Some(hex_value), _) => match hex::decode(hex_value) {
            Ok(bytes) => bytes,
            Err(_) => {
                let _ = writeln!(err, "security: add-generic-password: -X needs hex digits");
                return (EXIT_USAGE, false);
            }
        },
        (None, Some(password)) => password.as_bytes().to_vec(),
        (None, None) => Vec::new(),
    };
    let exists = state.items.iter().any(|i| i.service == service && i.account == account);
    if exists && !options.flag('U') {
        let _ = writeln!(err, "security: the specified item already exists in the keychain.");
        return (EXIT_DUPLICATE, false);
    }
    upsert(state, service, account, &value);
    (0, true)
}

fn delete(state: &mut State, options: &Options, err: &mut dyn Write) -> (i32, bool) {
    match state.items.iter().position(|i| matches(i, options)) {
        Some(at) => {
            state.items.remove(at);
            (0, true)
        }
        None => {
            let _ =
                writeln!(err, "security: the specified item could not be found in the keychain.");
            (EXIT_NOT_FOUND, false)
        }
    }
}

fn upsert(state: &mut State, service: &str, account: &str, value: &[u8]) {
    let password = hex::encode(value);
    match state.items.iter_mut().find(|i| i.service == service && i.account == account) {
        Some(item) => item.password = password,
        None => state.items.push(Item {
            service: service.to_owned(),
            account: account.to_owned(),
            password,
        }),
    }
}

/// Splits one `-i` line into words: blanks separate, double and single quotes group, and a
/// backslash outside single quotes takes the next character as it is.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                word.push(chars.next().ok_or("a backslash ends the line")?);
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".to_owned());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_words() {
        let words = split_words(
            r#"add-generic-password -U -a "ada" -s "Claude Code-credentials" -X "7b7d""#,
        )
        .unwrap();
        assert_eq!(
            words,
            [
                "add-generic-password",
                "-U",
                "-a",
                "ada",
                "-s",
                "Claude Code-credentials",
                "-X",
                "7b7d"
            ]
        );
        assert_eq!(
            split_words(r#"a 'b c' d\ e "f\"g" """#).unwrap(),
            ["a", "b c", "d e", "f\"g", ""]
        );
        assert!(split_words("a \"b").is_err());
        assert!(split_words("").unwrap().is_empty());
    }
}
