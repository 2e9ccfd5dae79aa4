//! A real Secret Service for a test: a private D-Bus session bus with GNOME Keyring on it,
//! its login keyring unlocked, all in a scratch folder, gone when dropped.
//!
//! Switchboard's keyring vault speaks to whatever owns `org.freedesktop.secrets` on the bus
//! `DBUS_SESSION_BUS_ADDRESS` names; giving each test its own bus keeps tests apart and keeps
//! the machine's own keyring, if it has one, out of reach.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs this needs, with the Debian packages that carry them (installed by
/// `scripts/install-test-deps.sh`).
const PROGRAMS: [(&str, &str); 4] = [
    ("dbus-daemon", "dbus-daemon"),
    ("dbus-send", "dbus-bin"),
    ("gnome-keyring-daemon", "gnome-keyring"),
    ("secret-tool", "libsecret-tools"),
];

/// A running bus and keyring daemon.
#[derive(Debug)]
pub struct SecretService {
    bus: Child,
    keyring: Option<Child>,
    address: String,
    home: PathBuf,
}

impl SecretService {
    /// Starts a bus and GNOME Keyring in `dir`, waiting until the keyring answers on the bus.
    /// Panics with what to install when a program is missing.
    pub fn start(dir: &Path) -> SecretService {
        for (program, package) in PROGRAMS {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(found, "{program} is missing: apt-get install {package}");
        }
        let home = dir.join("keyring-home");
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).expect("the keyring's folders");
        set_private(&runtime);

        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().expect("the bus's address"))
            .read_line(&mut line)
            .expect("read the bus's address");
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed no address: {line:?}");

        let mut service = SecretService { bus, keyring: None, address, home: home.clone() };
        let mut keyring = service
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--components=secrets", "--unlock"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        // `--unlock` reads the login keyring's password from standard input, creating the
        // keyring with it on first use.
        let mut stdin = keyring.stdin.take().expect("the keyring's stdin");
        stdin.write_all(b"switchboard-test").expect("unlock the keyring");
        drop(stdin);
        service.keyring = Some(keyring);
        service.wait_until_serving();
        service
    }

    /// The address to give a Switchboard as `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The variables a process needs to reach this keyring.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS".to_owned(), self.address.clone())]
    }

    /// A command that runs on this bus with the keyring's own folders.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.home.join("data"))
            .env("XDG_RUNTIME_DIR", self.home.join("run"));
        command
    }

    /// The secret stored under `(service, username)`, read with libsecret's `secret-tool`:
    /// a reader that shares no code with Switchboard. `None` when there is none.
    pub fn lookup(&self, service: &str, username: &str) -> Option<Vec<u8>> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", service, "username", username])
            .stderr(Stdio::null())
            .output()
            .expect("run secret-tool");
        out.status.success().then_some(out.stdout)
    }

    /// Stops the keyring daemon, leaving the bus up: a keyring that went away.
    pub fn stop_keyring(&mut self) {
        if let Some(mut keyring) = self.keyring.take() {
            let _ = keyring.kill();
            let _ = keyring.wait();
        }
    }

    fn wait_until_serving(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let owned = self
                .command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("boolean true"));
            if owned {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gnome-keyring-daemon did not take org.freedesktop.secrets within 10 s");
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        self.stop_keyring();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .expect("make the runtime folder private");
}
