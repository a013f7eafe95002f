//! The `revgrad` binary: parse the command line, run, map errors to exit codes (SPEC §5).

use std::process::ExitCode;

use clap::Parser;
use revgrad::Error;
use revgrad::cli::{Cli, run};

fn main() -> ExitCode {
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
