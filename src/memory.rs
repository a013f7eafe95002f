//! # A memory limit checked before a run starts
//!
//! A network under the parameter cap can still need more memory than the machine has
//! (`hidden: [1000000]` on 4 features wants tens of GB of workspace), and an allocation
//! that fails aborts the process (SIGABRT) instead of exiting with a message. Runs estimate
//! what they need up front and call [`ensure_fits`], which refuses (exit 2) with the
//! estimate when it exceeds the limit (an exact run counts its information buffer after
//! `inner.steps` steps too, [`crate::problem::Experiment::ensure_exact_fits`]; the model,
//! workspaces and data do not grow with the steps):
//!
//! - `--memory-limit SIZE` (a global flag), else
//! - the environment variable `REVGRAD_MEMORY_LIMIT`, else
//! - for a resumed `tune` or `search`, the limit the run was started with ([`resume_with`]:
//!   it decides which of a tune's points are rejected, so the continued rows stay the
//!   run's), else
//! - half of the physical memory (`MemTotal` in `/proc/meminfo`), else 8 GiB.
//!
//! SIZE is a number of bytes with an optional `K`, `M`, `G` or `T` suffix (powers of 1024).
//!
//! The data readers check against the same limit before they allocate: an IDX file's header
//! gives the size of the array it becomes, and a CSV file's rows are counted as they are
//! read ([`ensure_fits_or`], [`room`]). Their data-sized buffers grow with [`grow`], so an
//! allocation the system refuses is an error naming the file and the size ([`refused`]),
//! not an abort.

use std::collections::TryReserveError;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result, show};

/// Environment variable giving the limit when `--memory-limit` is not given.
pub const ENV_VAR: &str = "REVGRAD_MEMORY_LIMIT";

/// The limit when neither the flag, the variable nor `/proc/meminfo` says.
const FALLBACK: u64 = 8 << 30;

static FLAG: OnceLock<u64> = OnceLock::new();

/// The limit a resumed run was started with.
static RESUMED: OnceLock<u64> = OnceLock::new();

/// Sets the limit from `--memory-limit` (the first call wins).
///
/// # Errors
/// [`Error::Usage`] if `text` is not a size.
pub fn set_limit(text: &str) -> Result<()> {
    let bytes = parse_size(text).ok_or_else(|| {
        Error::Usage(format!(
            "--memory-limit must be a size such as 4G, 512M or 1000000 (bytes), got \"{}\"",
            crate::error::shorten(text)
        ))
    })?;
    let _ = FLAG.set(bytes);
    Ok(())
}

/// A resumed run continues with `bytes`, the limit it was started with, unless
/// `--memory-limit` or `REVGRAD_MEMORY_LIMIT` says otherwise; then, when the limit decides
/// which points the run rejects (`decides`: a tune), a note says the rows may part from
/// the uninterrupted run's.
///
/// # Errors
/// As [`limit`].
pub fn resume_with(bytes: u64, decides: bool) -> Result<()> {
    let _ = RESUMED.set(bytes);
    let (now, source) = limit()?;
    if decides && now != bytes {
        crate::note!(
            "note: the run was started with a memory limit of {}, and resumes with {} \
             ({source}): a tune point rejected for the memory it needs, or accepted, may differ \
             from the uninterrupted run's",
            human(bytes),
            human(now)
        );
    }
    Ok(())
}

/// The limit in bytes, and where it comes from (for messages).
///
/// # Errors
/// [`Error::Usage`] if `REVGRAD_MEMORY_LIMIT` is set but not a size.
pub fn limit() -> Result<(u64, String)> {
    if let Some(&b) = FLAG.get() {
        return Ok((b, "--memory-limit".into()));
    }
    if let Some(os) = std::env::var_os(ENV_VAR) {
        // Bytes that are not UTF-8 are no size either (not a reason to ignore the variable).
        return match os.to_str().and_then(parse_size) {
            Some(b) => Ok((b, ENV_VAR.into())),
            None => Err(Error::Usage(format!(
                "{ENV_VAR} must be a size such as 4G, 512M or 1000000 (bytes), got \"{}\"",
                crate::error::shorten(&os.to_string_lossy())
            ))),
        };
    }
    if let Some(&b) = RESUMED.get() {
        return Ok((b, "the limit the resumed run was started with".into()));
    }
    Ok(match physical_memory() {
        Some(total) => (
            total / 2,
            format!("half of the physical memory; set --memory-limit or {ENV_VAR}"),
        ),
        None => (
            FALLBACK,
            format!("physical memory unknown; set --memory-limit or {ENV_VAR}"),
        ),
    })
}

/// An error unless `bytes` fits under the limit; `what` names what needs them.
///
/// # Errors
/// [`Error::Usage`] (exit 2) with the estimate and the limit.
pub fn ensure_fits(bytes: u64, what: &str) -> Result<()> {
    ensure_fits_or(
        bytes,
        what,
        "use a smaller model or batch, or raise the limit",
    )
}

/// [`ensure_fits`] with another suggestion: `hint` says what to do instead.
///
/// # Errors
/// [`Error::Usage`] (exit 2) with the estimate, the limit and `hint`.
pub fn ensure_fits_or(bytes: u64, what: &str, hint: &str) -> Result<()> {
    let (limit, source) = limit()?;
    if bytes <= limit {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{what} needs about {} of memory, more than the limit of {} ({source}); {hint}",
        human(bytes),
        human(limit)
    )))
}

/// `", besides the 12 MiB of data already read,"` for a message, or nothing when `held`
/// is 0.
pub fn besides(held: u64) -> String {
    if held > 0 {
        format!(", besides the {} of data already read,", human(held))
    } else {
        String::new()
    }
}

/// Bytes left under the limit once `held` bytes are in use (0 if none).
///
/// # Errors
/// As [`limit`].
pub fn room(held: u64) -> Result<u64> {
    Ok(limit()?.0.saturating_sub(held))
}

/// Makes room in `v` for `more` elements: the capacity at least doubles (so elements are
/// moved a bounded number of times) but never passes `most` elements unless `more` needs it.
///
/// # Errors
/// The allocator's refusal (see [`refused`]), never an abort.
pub fn grow<T>(
    v: &mut Vec<T>,
    more: usize,
    most: usize,
) -> std::result::Result<(), TryReserveError> {
    let need = v.len().saturating_add(more);
    if need <= v.capacity() {
        return Ok(());
    }
    let target = v.capacity().saturating_mul(2).min(most).max(need);
    v.try_reserve_exact(target - v.len())
}

/// The data error for an allocation of `bytes` for `what` that the system refused (an
/// address-space limit, or too little memory).
pub fn refused(file: &Path, bytes: u64, what: &str, e: &TryReserveError) -> Error {
    Error::data(
        file,
        None,
        format!(
            "cannot allocate {} of memory for {what} ({e}); free memory, raise the process's \
             limits, or read fewer rows (data.limit)",
            human(bytes)
        ),
    )
}

/// Bytes as people read them: `1.5 GiB`, `300 MiB`.
pub fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{} {}", show((v * 10.0).round() / 10.0), units[u])
    }
}

/// `4G`, `512M`, `64k`, `1000000`: bytes, suffixes in powers of 1024 (an optional `B` or
/// `iB` after the suffix is accepted).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let v: f64 = digits.trim().parse().ok()?;
    let bytes = v * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GB"), Some(2 << 30));
        for bad in ["", "G", "-1G", "0", "1X", "nan", "1e30T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(human(3 << 30), "3 GiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(12), "12 bytes");
    }

    #[test]
    fn grow_doubles_up_to_most() {
        let mut v: Vec<u8> = Vec::new();
        grow(&mut v, 10, 100).unwrap();
        assert!(v.capacity() >= 10);
        v.resize(v.capacity(), 0);
        let before = v.capacity();
        grow(&mut v, 1, 100).unwrap();
        assert!(v.capacity() >= (2 * before).min(100), "{}", v.capacity());
        assert!(v.capacity() <= 100.max(before + 1));
        v.resize(100, 0);
        grow(&mut v, 5, 100).unwrap();
        assert!(v.capacity() >= 105, "more than most when asked");
        // A refusal is an error, not an abort.
        let mut big: Vec<u64> = Vec::new();
        let e = grow(&mut big, usize::MAX / 4, usize::MAX).unwrap_err();
        let msg = refused(Path::new("d/x.csv"), u64::MAX, "its rows", &e).to_string();
        assert!(msg.starts_with("d/x.csv: cannot allocate"), "{msg}");
    }

    #[test]
    fn physical_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(physical_memory().is_some_and(|b| b > 1 << 20));
        }
    }
}
