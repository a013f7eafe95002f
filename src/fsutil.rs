//! # Writing files without destroying what a path points to
//!
//! `tune --best` and `train --save` replace their file atomically: the bytes go to a
//! temporary file `.NAME.tmp-PID` in the target's folder, which is then renamed over the
//! target, so a reader (or a crash) never sees half a file. Renaming over a path would
//! replace whatever is there, so the target is resolved first:
//!
//! - a symbolic link is followed (to the end of a chain) and the file it points to is
//!   replaced, the link itself is kept;
//! - a FIFO, a device, a socket or a folder is refused (exit 2), never replaced (as root,
//!   `--best /dev/stdout` would otherwise replace the device node).
//!
//! The temporary file is removed when the write fails and, through [`exit_interrupted`],
//! when the process is stopped by SIGINT or SIGTERM. A run killed outright (SIGKILL, a
//! power cut) cannot remove its own; the next successful write of the same file removes
//! the `.NAME.tmp-PID` files of processes that no longer exist, and leaves those of live
//! ones ([`remove_stale_temp_files`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Temporary files being written, removed by [`remove_temp_files`] on a signal.
static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Symbolic links followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Writes `bytes` to `path` atomically (see the module docs).
///
/// # Errors
/// [`Error::Io`] naming `path` if it is a special file or a folder, or if the file cannot be
/// written or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Writes `path` atomically with `write`, which gets the temporary file (see the module
/// docs); the file is synced before the rename.
///
/// # Errors
/// As [`write_atomic`], and whatever `write` returns.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let target = resolve_target(path)?;
    let tmp = temp_path(&target);
    register(&tmp);
    let result = (|| {
        let mut f = create_new(&tmp)?;
        // Keep the permissions of the file being replaced.
        if let Ok(meta) = fs::metadata(&target) {
            f.set_permissions(meta.permissions())?;
        }
        write(&mut f)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    unregister(&tmp);
    result.map_err(|e| Error::io(path, e))?;
    remove_stale_temp_files(&target);
    Ok(())
}

/// Checks, before any computation, that [`write_atomic`] can later write `path`: it is not a
/// special file or a folder, and its folder exists and takes a new file (a temporary file
/// is created and removed; `path` itself is not touched).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn check_replaceable(path: &Path) -> Result<()> {
    let target = resolve_target(path)?;
    let dir = folder(&target);
    if !dir.is_dir() {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::NotFound, "the folder does not exist"),
        ));
    }
    let tmp = temp_path(&target);
    register(&tmp);
    let result = create_new(&tmp).and_then(|f| {
        drop(f);
        fs::remove_file(&tmp)
    });
    unregister(&tmp);
    result.map_err(|e| Error::io(path, e))
}

/// Removes the regular files `.NAME.tmp-PID` next to `target` whose PID is no process now
/// (a run killed while writing `target`). Files of live processes, and everything when
/// `/proc` cannot tell which processes live, are left alone; failures are ignored (the
/// files are only clutter).
pub fn remove_stale_temp_files(target: &Path) {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(folder(target)) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        // Exactly a PID as `temp_path` writes it: digits, no sign or leading zero, not 0.
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0'))
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        let dead = pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists();
        if dead && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The file a write to `path` should replace: `path`, or where its symbolic links lead.
///
/// # Errors
/// [`Error::Io`] naming `path` if it (or its final target) exists and is not a regular
/// file, or if the links loop.
pub fn resolve_target(path: &Path) -> Result<PathBuf> {
    // `metadata` follows links the way the kernel does (including /proc's magic links such
    // as /dev/stdout → /proc/self/fd/1 → pipe:[…]), so special files are caught here.
    if let Ok(meta) = fs::metadata(path)
        && !meta.is_file()
    {
        return Err(not_regular(path, &meta.file_type()));
    }
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(Error::io(path, e)),
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&p).map_err(|e| Error::io(path, e))?;
                p = folder(&p).join(link);
            }
            Ok(meta) if meta.is_file() => return Ok(p),
            Ok(meta) => return Err(not_regular(path, &meta.file_type())),
        }
    }
    Err(Error::io(
        path,
        io::Error::other("too many levels of symbolic links"),
    ))
}

/// Removes every temporary file still being written (for a signal handler).
pub fn remove_temp_files() {
    let mut files = TEMP_FILES.lock().unwrap_or_else(|e| e.into_inner());
    for f in files.drain(..) {
        let _ = fs::remove_file(f);
    }
}

/// Removes the temporary files and exits with 130: what SIGINT and SIGTERM do once a run
/// cannot (or need not) finish its current step.
pub fn exit_interrupted() -> ! {
    remove_temp_files();
    std::process::exit(130)
}

/// A temporary file name in the same folder as `path` (so the rename stays on one
/// filesystem): `.NAME.tmp-PID`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "revgrad".to_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The folder holding `path` (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Creates `tmp`, never through an existing file or link; a stale one (a killed run with
/// the same process id) is removed first.
fn create_new(tmp: &Path) -> io::Result<File> {
    let open = || OpenOptions::new().write(true).create_new(true).open(tmp);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(tmp)?;
            open()
        }
        other => other,
    }
}

fn register(tmp: &Path) {
    let mut files = TEMP_FILES.lock().unwrap_or_else(|e| e.into_inner());
    files.push(tmp.to_path_buf());
}

fn unregister(tmp: &Path) {
    let mut files = TEMP_FILES.lock().unwrap_or_else(|e| e.into_inner());
    files.retain(|f| f != tmp);
}

fn not_regular(path: &Path, kind: &fs::FileType) -> Error {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Error::io(
        path,
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "is {what}; revgrad writes this file by replacing it, so give the path of a \
                 regular file (new or existing)"
            ),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_through_a_symlink_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("made.json", &dangling).unwrap();
        write_atomic(&dangling, b"x").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.json")).unwrap(),
            "x"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn refuses_folders_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(dir.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = check_replaceable(Path::new("/dev/null")).unwrap_err();
        assert!(e.to_string().contains("is a device"), "{e}");
        let e = check_replaceable(&dir.path().join("no/such/folder/x")).unwrap_err();
        assert!(e.to_string().contains("folder does not exist"), "{e}");
        // The check leaves nothing behind.
        check_replaceable(&dir.path().join("new.json")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_write_removes_temp_files_of_dead_runs_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ck.json");
        let temp = |pid: u32| dir.path().join(format!(".ck.json.tmp-{pid}"));
        // A process that has exited (its PID is free again) and one that still runs.
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let kept = [
            temp(live.id()),
            dir.path().join(".other.json.tmp-999999999"),
            dir.path().join(".ck.json.tmp-notapid"),
            dir.path().join(".ck.json.tmp-0"),
            dir.path().join(format!(".ck.json.tmp-+{dead_pid}")),
        ];
        for f in kept.iter().chain([&temp(dead_pid)]) {
            std::fs::write(f, "partial").unwrap();
        }
        write_atomic(&target, b"whole").unwrap();
        live.kill().unwrap();
        live.wait().unwrap();
        assert!(
            !temp(dead_pid).exists(),
            "a dead run's temporary file is removed"
        );
        for f in &kept {
            assert!(f.exists(), "{} is kept", f.display());
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "whole");
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        assert!(write_atomic(&a, b"x").is_err());
    }
}
