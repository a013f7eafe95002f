//! # Output paths, checked before any computation
//!
//! Every command that writes files calls [`check_outputs`] once, right after the config is
//! loaded, so a bad path fails in milliseconds instead of after the first inner run, and no
//! output can destroy an input or another output:
//!
//! - the stream output (`-o FILE`, or stdout without it) is checked for a closed stdout;
//! - replaced outputs (`tune --best`, `train --save`) must not be special files or folders,
//!   and their folder must take a new file ([`crate::fsutil::check_replaceable`]); nothing is
//!   created or truncated yet;
//! - no output may be the config file, a data file (IDX labels included) or
//!   `model.init_file`, and no two outputs may be the same file (compared by device and
//!   inode when both exist, else by canonical path);
//! - when the command writes its result to stdout (no `-o`), stdout is one of the outputs:
//!   a file path that is the file stdout already writes (`--best /dev/stdout > f`) is
//!   refused, since the two writes would interleave or one would replace the other, and so
//!   is a stdout redirected onto an input (`>> data.csv`). Compared by device and inode of
//!   file descriptor 1 when it is a regular file; a pipe or a terminal is never a file path
//!   here (the replaced outputs refuse FIFOs and devices).

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};

/// Checks a command's outputs against each other and against its inputs (see the module
/// docs). `stream` is `-o FILE` (`None`: stdout); `replaced` lists `(flag, path)` for files
/// written by replacement.
///
/// # Errors
/// [`Error::Usage`] when an output names an input, another output or (without `-o`) the
/// file stdout writes; [`Error::Io`] for a closed stdout, a special file, or a folder that
/// is missing or not writable.
pub fn check_outputs(
    config: &Config,
    stream: Option<&Path>,
    replaced: &[(&str, Option<&Path>)],
) -> Result<()> {
    let stdout = match stream {
        None => {
            crate::report::sink::check_stdout()?;
            stdout_id()
        }
        Some(_) => None,
    };
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(p) = stream {
        outputs.push(("-o", p));
    }
    for &(flag, path) in replaced {
        if let Some(p) = path {
            crate::fsutil::check_replaceable(p)?;
            outputs.push((flag, p));
        }
    }
    let inputs = inputs(config);
    if let Some(id) = stdout {
        if let Some((what, path)) = inputs.iter().find(|(_, i)| file_id(i) == Some(id)) {
            return Err(Error::Usage(format!(
                "standard output is the {what} {}; writing it would destroy it, redirect \
                 stdout elsewhere",
                path.display()
            )));
        }
        if let Some((flag, out)) = outputs.iter().find(|(_, o)| file_id(o) == Some(id)) {
            return Err(Error::Usage(format!(
                "{flag} {} is the file standard output writes to, where this command's \
                 result goes; give {flag} another file, or redirect stdout elsewhere",
                out.display()
            )));
        }
    }
    for (k, &(flag, out)) in outputs.iter().enumerate() {
        if let Some((what, _)) = inputs.iter().find(|(_, i)| same_file(out, i)) {
            return Err(Error::Usage(format!(
                "{flag} {} is the {what}; writing it would destroy it, give another file",
                out.display()
            )));
        }
        if let Some(&(other, _)) = outputs[..k].iter().find(|(_, o)| same_file(out, o)) {
            return Err(Error::Usage(format!(
                "{other} and {flag} both name {}; give them different files",
                out.display()
            )));
        }
    }
    Ok(())
}

/// The files a run reads, each with what it is.
fn inputs(config: &Config) -> Vec<(&'static str, PathBuf)> {
    let mut inputs = vec![("config file", config.file.clone())];
    inputs.extend(crate::data::fingerprint::input_files(config));
    inputs
}

/// Whether `a` and `b` name the same file: the same device and inode when both exist
/// (symbolic and hard links included), else the same canonical path.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        (Err(_), Err(_)) => canonical(a) == canonical(b),
        _ => false,
    }
}

/// Device and inode of the file at `path` (links followed).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Device and inode of the regular file descriptor 1 writes to; `None` for a pipe, a
/// terminal or a device (no input or replaced output can be one of those).
fn stdout_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    meta.is_file().then(|| (meta.dev(), meta.ino()))
}

/// `path` made absolute with links resolved as far as it exists: the canonical folder
/// joined with the file name (or the symbolic link's target, for a dangling link).
fn canonical(path: &Path) -> PathBuf {
    let path = crate::fsutil::resolve_target(path).unwrap_or_else(|_| path.to_path_buf());
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::canonicalize(dir) {
        Ok(d) => d.join(name),
        Err(_) => std::path::absolute(&path).unwrap_or(path),
    }
}
