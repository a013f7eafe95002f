//! # Messages for people, without panicking
//!
//! `eprintln!` panics when stderr cannot be written (`2>/dev/full`, a closed stderr,
//! `2>&1 | true`), which would turn a bad config (exit 2) or a finished run (exit 0) into a
//! panic (exit 101). Every line revgrad writes to stderr goes through [`note!`](crate::note)
//! instead, which drops write errors: a message nobody can read must not change the exit
//! code (SPEC §5). indicatif, the only other writer to stderr, ignores its draw errors too.

use std::fmt;
use std::io::Write;

/// Writes `args` and a newline to stderr, ignoring write errors. Use [`note!`](crate::note).
pub fn line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that never panics: formats its arguments like `format!` and writes them and a
/// newline to stderr, ignoring write errors.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::report::stderr::line(::std::format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn note_formats_like_eprintln() {
        // Nothing to assert on stderr itself here; the CLI tests run the binary with stderr
        // on /dev/full and on a closed pipe. This checks the macro expands and does not panic.
        let x = 3;
        crate::note!("value {x} and {}", "text");
    }
}
