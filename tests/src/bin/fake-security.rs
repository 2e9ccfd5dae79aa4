//! `fake-security`: the fake of macOS's `security` program as a process, so Switchboard's
//! Keychain store can run it exactly as it runs the real one. Its Keychain is the state file
//! named by `FAKE_SECURITY_STATE`; see `switchboard_tests::fake_security`.

use std::io::{self, Write};
use std::process::ExitCode;

use switchboard_tests::fake_security::{FakeKeychain, STATE_VAR};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(keychain) = FakeKeychain::from_env() else {
        eprintln!("fake-security: set {STATE_VAR} to the fake keychain's state file");
        return ExitCode::from(1);
    };
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let code = keychain.run(&args, &mut stdin.lock(), &mut stdout, &mut stderr);
    let _ = stdout.flush();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
