//! # Command line: a thin layer over the library
//!
//! The `revgrad` binary's commands, one file per subcommand: [`tune`] (meta-gradient descent
//! on the validation loss), [`search`] (the random-search baseline), [`hypergrad`] (one
//! exact forward run and its reversal), [`train`] (the inner loop alone), [`verify_reversal`]
//! (how far reversed training strays, float vs exact) and [`check_grad`] (the
//! hypergradients three ways). Each is an `Args` struct (clap derive) and a
//! `run(args, threads)`; the global `--threads` arrives as a [`Threads`] setting and
//! `--memory-limit` is set before the command runs. A command only parses, checks its output
//! paths ([`outputs`]), calls the library and formats through [`crate::report`]: no
//! numerics here, so everything a command does is also available as a library call.

pub mod check_grad;
pub mod hypergrad;
pub mod outer;
pub mod outputs;
pub mod search;
pub mod train;
pub mod tune;
pub mod verify_reversal;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::model::Threads;

/// revgrad: tune a network's training hyperparameters by gradient descent on the
/// validation loss, with hypergradients from exactly reversed training.
#[derive(Debug, Parser)]
#[command(name = "revgrad", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Refuse runs estimated to need more memory than this (e.g. 4G, 512M; default: the
    /// REVGRAD_MEMORY_LIMIT variable, else half of the physical memory).
    #[arg(long, global = true, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Worker threads (≥ 1) [all cores]. Every result (θ_T, losses, hypergradients, CSV
    /// cells) is bit-identical for every N: each batch is split into the same parts of
    /// about 64 rows whatever N, and the parts' gradients are added in a fixed order; the
    /// exact optimizer's element loops are shared out in fixed segments of 1024
    /// parameters. A batch of B rows keeps at most ⌈B/64⌉ threads busy (at most 16).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Outer meta-gradient descent; one CSV row per outer iteration.
    Tune(tune::Args),
    /// The baseline: seeded random search over outer.tune, float training per trial, the
    /// same CSV columns as tune.
    Search(search::Args),
    /// One exact forward run and its exact reversal: losses, hypergradients, memory.
    Hypergrad(hypergrad::Args),
    /// The inner loop alone (float64, or exact with --exact).
    Train(train::Args),
    /// Train, reverse, and report how far the reversal strays, float vs exact.
    ///
    /// Rows for sgd, momentum, nesterov, adam and rmsprop (the --gammas value is adam's β₁
    /// and rmsprop's momentum γ). Exact momentum, Adam and RMSprop reverse bit for bit
    /// (theta0_error 0). Plain SGD and Nesterov drift in both arithmetics: Nesterov takes its
    /// gradient at θ + α·γ·v, a point that depends on the velocity the undo is solving for,
    /// so its step has no explicit inverse.
    VerifyReversal(verify_reversal::Args),
    /// Hypergradients three ways (exact reversal, stored trajectory, finite differences).
    CheckGrad(check_grad::Args),
}

/// Run a parsed command line; returns the process exit code on success.
///
/// # Errors
/// Whatever the command fails with; [`crate::Error::exit_code`] gives its exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let threads = Threads::new(cli.threads.unwrap_or_else(Threads::all_cores))?;
    if let Some(limit) = &cli.memory_limit {
        crate::memory::set_limit(limit)?;
    }
    if !matches!(cli.command, Command::Tune(_) | Command::Search(_)) {
        // tune and search install their own handler (finish the outer iteration, then stop); the other
        // commands stop at once, without leaving a temporary `--save` file behind.
        let _ = ctrlc::set_handler(|| crate::fsutil::exit_interrupted());
    }
    match cli.command {
        Command::Tune(a) => tune::run(a, &threads),
        Command::Search(a) => search::run(a, &threads),
        Command::Hypergrad(a) => hypergrad::run(a, &threads).map(|_| 0),
        Command::Train(a) => train::run(a, &threads).map(|_| 0),
        Command::VerifyReversal(a) => verify_reversal::run(a, &threads).map(|_| 0),
        Command::CheckGrad(a) => check_grad::run(a, &threads).map(|_| 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
