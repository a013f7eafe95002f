//! # Load time of an IDX file (plain or gzip), or of a config's whole data step
//!
//! Reads one IDX images file and its labels the way `data.train` does and prints one line of
//! `key=value` fields: rows, features, the largest label and the wall time of the read
//! (gunzip, header checks, conversion of the pixels to f64). Given a config (`….json`)
//! instead, times `data::load`: reads, `limit`, splits, label noise and standardisation.
//!
//! ```text
//! cargo run --release --example load -- /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
//! cargo run --release --example load -- configs/fashion-mnist.json
//! ```
//!
//! Fashion-MNIST comes from `apt-get install dataset-fashion-mnist` (after `apt-get update`).

#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: load IMAGES-idx3-ubyte[.gz]");
        return ExitCode::from(2);
    };
    if path.extension().is_some_and(|e| e == "json") {
        return load_config(&path);
    }
    let clock = Instant::now();
    match revgrad::data::idx::read(&path) {
        Ok(d) => {
            let seconds = clock.elapsed().as_secs_f64();
            println!(
                "rows={} features={} max_label={} seconds={seconds:.3}",
                d.len(),
                d.n_features(),
                d.y.iter().copied().max().unwrap_or(0)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn load_config(path: &std::path::Path) -> ExitCode {
    let result = revgrad::config::Config::load(path).and_then(|c| {
        let clock = Instant::now();
        let data = revgrad::data::load(&c)?;
        Ok((data, clock.elapsed().as_secs_f64()))
    });
    match result {
        Ok((d, seconds)) => {
            println!(
                "train={} validation={} test={} features={} classes={} flipped={} seconds={seconds:.3}",
                d.train.len(),
                d.validation.len(),
                d.test.as_ref().map_or(0, |t| t.len()),
                d.n_features,
                d.n_classes,
                d.flipped.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
