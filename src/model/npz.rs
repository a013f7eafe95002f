//! # Parameters as `.npz`
//!
//! `model.init_file` and `train --save` use numpy's uncompressed `.npz` layout
//! (`numpy.savez`): one float64 array per key,
//!
//! ```text
//! W0: (in₀, out₀)   b0: (out₀,)   W1: (in₁, out₁)   b1: (out₁,)   …
//! ```
//!
//! mapped to and from the flat parameter vector in [`Layout`] order (`W_l` row-major, then
//! `b_l`). Reading is strict: every key present, no others, float64, the layout's shapes,
//! finite values; each error names the file and the key. Writing goes to a temporary file in
//! the same folder, then a rename, so a crash never leaves half a file. `numpy.load` reads
//! the result; compressed files (`numpy.savez_compressed`) are not read.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ndarray::{ArrayD, ArrayView1, ArrayView2};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpzError};

use crate::error::{Error, Result};
use crate::model::Layout;

/// The keys of a layout, in order: `W0, b0, W1, b1, …`.
fn keys(layout: &Layout) -> Vec<String> {
    (0..layout.n_layers())
        .flat_map(|l| [format!("W{l}"), format!("b{l}")])
        .collect()
}

/// Python-style shape: `(50, 10)`, `(10,)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Reads parameters `W0, b0, …` (float64, `W_l: (in, out)`, `b_l: (out,)`) from an `.npz`
/// file into the flat vector of `layout`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Data`] naming the file (and the key)
/// if it is not an uncompressed npz archive, a key is missing or unexpected, an array is not
/// float64, has the wrong shape or holds a non-finite value.
pub fn read_params(path: &Path, layout: &Layout) -> Result<Vec<f64>> {
    let err = |m: String| Error::data(path, None, m);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut npz = NpzReader::new(file)
        .map_err(|e| err(format!("not an npz file (numpy.savez zip archive): {e}")))?;
    let names = npz
        .names()
        .map_err(|e| err(format!("cannot list the arrays: {e}")))?;
    let expected = keys(layout);
    if let Some(missing) = expected.iter().find(|k| !names.contains(k)) {
        return Err(err(format!(
            "missing key {missing} (expected keys {})",
            expected.join(", ")
        )));
    }
    if let Some(extra) = names.iter().find(|n| !expected.contains(n)) {
        return Err(err(format!(
            "unexpected key {extra} (expected keys {} for layer sizes {:?})",
            expected.join(", "),
            layout.sizes()
        )));
    }

    let mut theta = vec![0.0; layout.len()];
    for l in 0..layout.n_layers() {
        let (i, o) = layout.w_shape(l);
        for (key, shape, range) in [
            (format!("W{l}"), vec![i, o], layout.w_range(l)),
            (format!("b{l}"), vec![o], layout.b_range(l)),
        ] {
            let a: ArrayD<f64> = npz.by_name(&key).map_err(|e| array_error(path, &key, e))?;
            if a.shape() != shape.as_slice() {
                return Err(err(format!(
                    "{key} has shape {}, expected {}",
                    shape_text(a.shape()),
                    shape_text(&shape)
                )));
            }
            // `iter` walks in logical row-major order whatever the memory order.
            for (k, (dst, &v)) in theta[range].iter_mut().zip(a.iter()).enumerate() {
                if !v.is_finite() {
                    let at = if shape.len() == 2 {
                        format!("[{}, {}]", k / o, k % o)
                    } else {
                        format!("[{k}]")
                    };
                    return Err(err(format!("{key}{at} is {v}, expected a finite number")));
                }
                *dst = v;
            }
        }
    }
    Ok(theta)
}

fn array_error(path: &Path, key: &str, e: ReadNpzError) -> Error {
    let message = match e {
        ReadNpzError::Npy(ReadNpyError::WrongDescriptor(d)) => {
            format!("{key} has dtype {d}, expected float64 ('<f8')")
        }
        ReadNpzError::Zip(z) => format!(
            "cannot read {key}: {z} (compressed npz from numpy.savez_compressed is not \
             supported; save with numpy.savez)"
        ),
        other => format!("cannot read {key}: {other}"),
    };
    Error::data(path, None, message)
}

/// Writes `theta` (flat, in `layout` order) as `W0, b0, …` float64 arrays to an
/// uncompressed `.npz` file that `numpy.load` reads. Writes a temporary file in the same
/// folder, then renames it (through a symbolic link; special files are refused, see
/// [`crate::fsutil`]).
///
/// # Errors
/// [`Error::Io`] naming the file if it is a special file or cannot be written or renamed.
///
/// # Panics
/// If `theta.len() != layout.len()` (a programmer error).
#[track_caller]
pub fn write_params(path: &Path, layout: &Layout, theta: &[f64]) -> Result<()> {
    assert_eq!(
        theta.len(),
        layout.len(),
        "parameter vector does not match the layout"
    );
    crate::fsutil::write_atomic_with(path, |file| write_to(file, layout, theta))
}

fn write_to(file: &mut File, layout: &Layout, theta: &[f64]) -> std::io::Result<()> {
    let mut npz = NpzWriter::new(BufWriter::new(file));
    for l in 0..layout.n_layers() {
        let w = ArrayView2::from_shape(layout.w_shape(l), &theta[layout.w_range(l)])
            .map_err(std::io::Error::other)?;
        npz.add_array(format!("W{l}"), &w)
            .map_err(std::io::Error::other)?;
        let b = ArrayView1::from(&theta[layout.b_range(l)]);
        npz.add_array(format!("b{l}"), &b)
            .map_err(std::io::Error::other)?;
    }
    let mut writer = npz.finish().map_err(std::io::Error::other)?;
    std::io::Write::flush(&mut writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    fn theta_for(layout: &Layout) -> Vec<f64> {
        // Values whose decimal forms are long, to catch any lossy round trip.
        (0..layout.len())
            .map(|k| ((k as f64) * 0.1 + 1.0 / 3.0).sin() * 1e-3f64.powi((k % 5) as i32))
            .collect()
    }

    #[test]
    fn round_trip_is_bit_identical() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        let layout = Layout::new(&[3, 4, 5, 2]);
        let theta = theta_for(&layout);
        write_params(&p, &layout, &theta).unwrap();
        let back = read_params(&p, &layout).unwrap();
        assert_eq!(back.len(), theta.len());
        for (a, b) in theta.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        // Only the npz is left in the folder (no temporary file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn layout_order_is_row_major() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        let layout = Layout::new(&[2, 3]);
        let mut npz = NpzWriter::new(File::create(&p).unwrap());
        // Fortran-ordered W0 still reads in logical (row-major) order.
        let w = Array2::from_shape_vec((2, 3), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        npz.add_array("W0", &w.t().to_owned().reversed_axes())
            .unwrap();
        npz.add_array("b0", &Array1::from(vec![7.0, 8.0, 9.0]))
            .unwrap();
        npz.finish().unwrap();
        let theta = read_params(&p, &layout).unwrap();
        assert_eq!(theta, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }

    #[test]
    fn shape_mismatch_names_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        let written = Layout::new(&[64, 100, 10]);
        write_params(&p, &written, &theta_for(&written)).unwrap();
        let e = read_params(&p, &Layout::new(&[64, 50, 10])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("w.npz: W0 has shape (64, 100), expected (64, 50)"),
            "{msg}"
        );
        // Bias shapes are 1-D.
        let written = Layout::new(&[3, 2]);
        write_params(&p, &written, &theta_for(&written)).unwrap();
        let mut npz = NpzWriter::new(File::create(&p).unwrap());
        npz.add_array("W0", &Array2::<f64>::zeros((3, 2))).unwrap();
        npz.add_array("b0", &Array1::<f64>::zeros(3)).unwrap();
        npz.finish().unwrap();
        let msg = read_params(&p, &written).unwrap_err().to_string();
        assert!(msg.contains("b0 has shape (3,), expected (2,)"), "{msg}");
    }

    #[test]
    fn missing_and_extra_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        let small = Layout::new(&[3, 2]);
        write_params(&p, &small, &theta_for(&small)).unwrap();
        let msg = read_params(&p, &Layout::new(&[3, 4, 2]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("w.npz: missing key W1"), "{msg}");
        let big = Layout::new(&[3, 4, 2]);
        write_params(&p, &big, &theta_for(&big)).unwrap();
        let msg = read_params(&p, &Layout::new(&[3, 4]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("w.npz: unexpected key W1"), "{msg}");
    }

    #[test]
    fn wrong_dtype_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        let mut npz = NpzWriter::new(File::create(&p).unwrap());
        npz.add_array("W0", &Array2::<i64>::zeros((3, 2))).unwrap();
        npz.add_array("b0", &Array1::<f64>::zeros(2)).unwrap();
        npz.finish().unwrap();
        let msg = read_params(&p, &Layout::new(&[3, 2]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("w.npz: W0 has dtype"), "{msg}");
        assert!(msg.contains("expected float64"), "{msg}");
    }

    #[test]
    fn non_finite_values_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        let layout = Layout::new(&[2, 2]);
        let mut theta = vec![0.0; layout.len()];
        theta[3] = f64::NAN;
        write_params(&p, &layout, &theta).unwrap();
        let msg = read_params(&p, &layout).unwrap_err().to_string();
        assert!(msg.contains("W0[1, 1] is NaN"), "{msg}");
    }

    #[test]
    fn not_an_npz() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npz");
        std::fs::write(&p, "W0,b0\n1,2\n").unwrap();
        let e = read_params(&p, &Layout::new(&[1, 1])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("w.npz: not an npz file"), "{e}");
        let e = read_params(&dir.path().join("none.npz"), &Layout::new(&[1, 1])).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }

    #[test]
    fn write_to_missing_folder_is_io_error() {
        let layout = Layout::new(&[1, 1]);
        let e =
            write_params(Path::new("/nonexistent/dir/w.npz"), &layout, &[0.0, 0.0]).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/dir/w.npz"));
    }
}
