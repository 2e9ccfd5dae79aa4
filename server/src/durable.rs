//! Durable file writes: the one way Switchboard puts bytes on disk that must survive a crash.
//!
//! A write goes to a temporary file in the same folder, is flushed with `fsync`, renamed over
//! the target, and then the folder itself is synced so the rename is on disk too. A reader
//! therefore sees either the old file or the new one, never half of each, and a crash after
//! [`write_atomic`] returns cannot lose the new contents. Files that hold secrets are created
//! with mode 0600 and their folders with 0700 from the start, never tightened afterwards.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Permission bits for files holding tokens.
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Permission bits for folders holding such files.
pub const SECRET_DIR_MODE: u32 = 0o700;

/// Writes `contents` to `path` atomically and durably, with the given permission bits.
///
/// The temporary file gets a random name beside the target so two writers never share one,
/// and it is removed again when anything before the rename fails.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_of(path)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp =
        dir.join(format!(".{}.{:016x}.tmp", file_name.to_string_lossy(), rand::random::<u64>()));
    let result = write_synced(&tmp, contents, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Creates `dir` and its missing parents; a folder this creates gets `mode`.
///
/// An existing folder keeps its permissions: tightening a folder the user made is not ours to
/// do silently.
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    set_dir_mode(&mut builder, mode);
    builder.create(dir)
}

/// Flushes a folder's entries, so a rename or creation inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    // Windows cannot open a folder as a file; its renames are durable once they return.
    if cfg!(unix) { File::open(dir)?.sync_all() } else { Ok(()) }
}

fn write_synced(tmp: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_file_mode(&mut options, mode);
    let mut file = options.open(tmp)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn parent_of(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(io::Error::new(io::ErrorKind::InvalidInput, "path has no parent folder")),
    }
}

#[cfg(unix)]
fn set_file_mode(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode);
}

#[cfg(not(unix))]
fn set_file_mode(_: &mut OpenOptions, _: u32) {}

#[cfg(unix)]
fn set_dir_mode(builder: &mut fs::DirBuilder, mode: u32) {
    use std::os::unix::fs::DirBuilderExt;
    builder.mode(mode);
}

#[cfg(not(unix))]
fn set_dir_mode(_: &mut fs::DirBuilder, _: u32) {}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_contents_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        write_atomic(&path, b"first", SECRET_FILE_MODE).unwrap();
        write_atomic(&path, b"second", SECRET_FILE_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn leaves_no_temporary_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("a.json"), b"{}", SECRET_FILE_MODE).unwrap();
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old", SECRET_FILE_MODE).unwrap();
        // A folder where the file should be makes the rename fail.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        assert!(write_atomic(&blocked, b"new", SECRET_FILE_MODE).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn creates_private_folders() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("a/b");
        create_dir_all(&vault, SECRET_DIR_MODE).unwrap();
        assert_eq!(fs::metadata(&vault).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
