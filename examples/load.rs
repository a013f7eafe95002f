//! # Load time of an IDX file (plain or gzip)
//!
//! Reads one IDX images file and its labels the way `data.train` does and prints one line of
//! `key=value` fields: rows, features, the largest label and the wall time of the read
//! (gunzip, header checks, conversion of the pixels to f64).
//!
//! ```text
//! cargo run --release --example load -- /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
//! ```
//!
//! Fashion-MNIST comes from `apt-get install dataset-fashion-mnist` (after `apt-get update`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: load IMAGES-idx3-ubyte[.gz]");
        return ExitCode::from(2);
    };
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
