//! # A memory limit checked before a run starts
//!
//! A network under the parameter cap can still need more memory than the machine has
//! (`hidden: [1000000]` on 4 features wants tens of GB of workspace), and an allocation
//! that fails aborts the process (SIGABRT) instead of exiting with a message. Runs estimate
//! what they need up front and call [`ensure_fits`], which refuses (exit 2) with the
//! estimate when it exceeds the limit:
//!
//! - `--memory-limit SIZE` (a global flag), else
//! - the environment variable `REVGRAD_MEMORY_LIMIT`, else
//! - half of the physical memory (`MemTotal` in `/proc/meminfo`), else 8 GiB.
//!
//! SIZE is a number of bytes with an optional `K`, `M`, `G` or `T` suffix (powers of 1024).

use std::sync::OnceLock;

use crate::error::{Error, Result, show};

/// Environment variable giving the limit when `--memory-limit` is not given.
pub const ENV_VAR: &str = "REVGRAD_MEMORY_LIMIT";

/// The limit when neither the flag, the variable nor `/proc/meminfo` says.
const FALLBACK: u64 = 8 << 30;

static FLAG: OnceLock<u64> = OnceLock::new();

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

/// The limit in bytes, and where it comes from (for messages).
///
/// # Errors
/// [`Error::Usage`] if `REVGRAD_MEMORY_LIMIT` is set but not a size.
pub fn limit() -> Result<(u64, String)> {
    if let Some(&b) = FLAG.get() {
        return Ok((b, "--memory-limit".into()));
    }
    if let Ok(text) = std::env::var(ENV_VAR) {
        return match parse_size(&text) {
            Some(b) => Ok((b, ENV_VAR.into())),
            None => Err(Error::Usage(format!(
                "{ENV_VAR} must be a size such as 4G, 512M or 1000000 (bytes), got \"{}\"",
                crate::error::shorten(&text)
            ))),
        };
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
    let (limit, source) = limit()?;
    if bytes <= limit {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{what} needs about {} of memory, more than the limit of {} ({source}); use a smaller \
         model or batch, fewer inner.steps, or raise the limit",
        human(bytes),
        human(limit)
    )))
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
    fn physical_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(physical_memory().is_some_and(|b| b > 1 << 20));
        }
    }
}
