//! The `revgrad` binary: parse the command line, run, map errors to exit codes (SPEC §5).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use revgrad::Error;
use revgrad::cli::{Cli, run};

/// Whether fd 1 was closed when the process started (`revgrad … >&-`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Runs before the Rust runtime's start-up (an ELF constructor), which reopens closed
/// standard descriptors on /dev/null: only here is a closed stdout still visible.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static SEE_CLOSED_STDOUT: extern "C" fn() = {
    extern "C" fn see_closed_stdout() {
        // SAFETY: fd 1 is only borrowed to duplicate it; the duplicate is closed at once.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(1) };
        if fd.try_clone_to_owned().is_err() {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
    }
    see_closed_stdout
};

fn main() -> ExitCode {
    revgrad::report::sink::set_stdout_closed(STDOUT_CLOSED.load(Ordering::Relaxed));
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`revgrad tune c.json | head -3`) is a normal way to stop reading.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            revgrad::note!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
