//! # Fingerprints of the files a run reads
//!
//! A checkpoint records, for every file the run reads — the `data.train`, `data.validation`
//! and `data.test` files, the IDX labels files next to IDX images, and `model.init_file` —
//! its path, its size and the CRC-32 of its whole contents. A resumed run reads the same
//! files again, and [`changed`] says which one differs, so a tune is never continued on other
//! data than it started on. The contents decide, not the modification time: a file copied or
//! touched but unchanged is the same data. Hashing streams the file at disk speed (CRC-32
//! runs at several GB/s), about 10 ms for the gzip Fashion-MNIST files.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};

/// One file's path, size and contents hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// What the file is to the run (`data.train file`, `IDX labels file`, …).
    pub what: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 of the contents, 8 hex digits.
    pub crc32: String,
}

/// The data files `config` reads, each with what it is (IDX labels candidates included
/// whether or not they exist), and `model.init_file`.
pub fn input_files(config: &Config) -> Vec<(&'static str, PathBuf)> {
    let mut inputs = Vec::new();
    let d = &config.data;
    for (what, path) in [
        ("data.train file", Some(&d.train)),
        ("data.validation file", d.validation.as_ref()),
        ("data.test file", d.test.as_ref()),
    ] {
        if let Some(p) = path {
            inputs.push((what, p.clone()));
            for labels in super::idx::labels_paths(p) {
                inputs.push(("IDX labels file", labels));
            }
        }
    }
    if let Some(p) = &config.model.init_file {
        inputs.push(("model.init_file", p.clone()));
    }
    inputs
}

/// The fingerprint of the file at `path`.
///
/// # Errors
/// [`Error::Io`] naming the file if it cannot be read.
pub fn of_file(what: &str, path: &Path) -> Result<Fingerprint> {
    let io = |e| Error::io(path, e);
    let mut f = File::open(path).map_err(io)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Fingerprint {
        what: what.to_owned(),
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        bytes,
        crc32: format!("{:08x}", hasher.finalize()),
    })
}

/// The fingerprints of every file `config` reads that exists (an IDX labels candidate that
/// does not exist is not read).
///
/// # Errors
/// [`Error::Io`] naming a file that exists but cannot be read.
pub fn of_inputs(config: &Config) -> Result<Vec<Fingerprint>> {
    input_files(config)
        .into_iter()
        .filter(|(_, p)| p.is_file())
        .map(|(what, p)| of_file(what, &p))
        .collect()
}

/// Why the files now differ from `saved`, if they do: the first one missing, unreadable,
/// of another size or with other contents.
pub fn changed(saved: &[Fingerprint]) -> Option<String> {
    saved.iter().find_map(|s| {
        let now = match of_file(&s.what, &s.path) {
            Ok(f) => f,
            Err(e) => return Some(format!("the {} cannot be read: {e}", s.what)),
        };
        if now.bytes != s.bytes {
            Some(format!(
                "the {} {} has changed: {} bytes then, {} now",
                s.what,
                s.path.display(),
                s.bytes,
                now.bytes
            ))
        } else if now.crc32 != s.crc32 {
            Some(format!(
                "the {} {} has changed: same size, other contents (CRC-32 {} then, {} now)",
                s.what,
                s.path.display(),
                s.crc32,
                now.crc32
            ))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_is_seen_and_a_touch_is_not() {
        let dir = std::env::temp_dir().join(format!("revgrad-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("d.csv");
        std::fs::write(&p, "a,label\n1,0\n2,1\n").unwrap();
        let saved = vec![of_file("data.train file", &p).unwrap()];
        assert_eq!(changed(&saved), None);
        // Rewritten with the same bytes (a new modification time): the same data.
        std::fs::write(&p, "a,label\n1,0\n2,1\n").unwrap();
        assert_eq!(changed(&saved), None);
        std::fs::write(&p, "a,label\n1,0\n3,1\n").unwrap();
        let why = changed(&saved).expect("changed");
        assert!(why.contains("same size, other contents"), "{why}");
        std::fs::write(&p, "a,label\n1,0\n").unwrap();
        assert!(changed(&saved).unwrap().contains("bytes then"));
        std::fs::remove_file(&p).unwrap();
        assert!(changed(&saved).unwrap().contains("cannot be read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
