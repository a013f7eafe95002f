//! # Errors
//!
//! One error type for the whole library. Every variant carries what its message needs
//! (file, dotted field or line, step), and [`Error::exit_code`] maps it to the exit codes of
//! SPEC §5: 2 for bad usage, config or data; 1 for a run that fails.

use std::path::PathBuf;

/// Everything that can go wrong in revgrad.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file field is missing, mistyped or out of range.
    #[error("{}: {}{message}", file.display(), if field.is_empty() { String::new() } else { format!("{field} ") })]
    Config {
        /// The config file.
        file: PathBuf,
        /// Dotted path of the field, e.g. `inner.gamma`.
        field: String,
        /// What is wrong and what is allowed, phrased to follow the field name
        /// (`must be in (0, 1), got 1.2`).
        message: String,
    },
    /// A data file (CSV, IDX, npz) is malformed.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Data {
        /// The data file.
        file: PathBuf,
        /// 1-based line (the CSV header is line 1), when there is one.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Bad command-line usage that clap cannot catch (e.g. a malformed list).
    #[error("{0}")]
    Usage(String),
    /// The inner run produced a non-finite value.
    #[error("step {step}: {what}; {hint}")]
    Diverged {
        /// Inner step (0-based) at which it happened.
        step: usize,
        /// What went non-finite.
        what: String,
        /// What to try.
        hint: String,
    },
    /// A fixed-point weight or velocity left the representable range.
    #[error("step {step}: fixed-point overflow: {what}; {hint}")]
    Overflow {
        /// Inner step (0-based) at which it happened.
        step: usize,
        /// What overflowed.
        what: String,
        /// What to try.
        hint: String,
    },
    /// `check-grad` found hypergradients that disagree beyond tolerance.
    #[error("{0}")]
    CheckFailed(String),
    /// A command produced no result at all (every `verify-reversal` run diverged).
    #[error("{0}")]
    NoResult(String),
}

/// A number as people read it in messages: shortest form in ordinary ranges, scientific
/// outside them (so α = 1e300 does not print 300 digits).
pub fn show(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// User text (a CSV cell, a column name, a flag's value) as echoed in messages: at most 40
/// characters, so a 1 MB cell does not become a 1 MB message.
pub fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(40).collect::<String>())
    }
}

/// Result alias used throughout the library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Process exit code for this error (SPEC §5).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. } | Error::Data { .. } | Error::Usage(_) => 2,
            Error::Io { .. } => 2,
            Error::Diverged { .. }
            | Error::Overflow { .. }
            | Error::CheckFailed(_)
            | Error::NoResult(_) => 1,
        }
    }

    /// Shorthand for a config error.
    pub fn config(
        file: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            file: file.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for a data error at a line.
    pub fn data(file: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Error::Data {
            file: file.into(),
            line,
            message: message.into(),
        }
    }

    /// Shorthand for an I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True for a run failure that a tuner may treat as a rejected step (divergence, overflow).
    pub fn is_divergence(&self) -> bool {
        matches!(self, Error::Diverged { .. } | Error::Overflow { .. })
    }
}
