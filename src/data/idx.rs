//! # IDX reader (MNIST)
//!
//! MNIST ships as pairs of IDX files: images (`…idx3…`) and labels (the same name with
//! `idx1`). Both start with a big-endian header:
//!
//! ```text
//! images: 0x00000803 (u8, 3 dims) | n: u32 | rows: u32 | cols: u32 | n·rows·cols pixels (u8)
//! labels: 0x00000801 (u8, 1 dim)  | n: u32 | n labels (u8)
//! ```
//!
//! Each image becomes one row of `rows·cols` features (row-major), pixels as `f64` without
//! scaling (standardisation takes care of scale). Bad magic numbers, truncated or
//! over-long files and image/label count mismatches are errors naming the file.
//!
//! A file whose name ends in `.gz` (`train-images-idx3-ubyte.gz`, as Debian's
//! `dataset-fashion-mnist` installs them) is gunzipped while it is read; corrupt or
//! truncated gzip data is an error naming the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::Dataset;
use crate::error::{Error, Result};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Candidate labels files for an images file, in the order tried: `idx3` replaced by
/// `idx1` in the file name (the last occurrence), e.g. `digits-idx3-ubyte` →
/// `digits-idx1-ubyte`; then, if the name also contains `images`, that replaced by
/// `labels` as well (MNIST's own `train-images-idx3-ubyte` → `train-labels-idx1-ubyte`).
///
/// Empty if the file name does not contain `idx3`.
pub fn labels_paths(images: &Path) -> Vec<PathBuf> {
    let Some(name) = images.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let Some(at) = name.rfind("idx3") else {
        return Vec::new();
    };
    let mut labels = name.clone();
    labels.replace_range(at..at + 4, "idx1");
    let mut out = vec![images.with_file_name(&labels)];
    if labels.contains("images") {
        out.push(images.with_file_name(labels.replace("images", "labels")));
    }
    out
}

/// Reads an IDX images file and its labels file (see [`labels_paths`]).
///
/// # Errors
/// [`Error::Data`] naming the file for a missing labels file, a bad magic number, a
/// truncated or over-long file, or different image and label counts; [`Error::Io`] if a
/// file cannot be read.
pub fn read(images: &Path) -> Result<Dataset> {
    read_first(images, None).map(|(d, _)| d)
}

/// [`read`], keeping only the first `limit` images as f64 (all without a limit), and the
/// number of images in the file: a `data.limit` of 20,000 of Fashion-MNIST's 60,000 then
/// never holds the other 40,000 as f64 (376 MB for all of them).
///
/// # Errors
/// As [`read`].
pub fn read_first(images: &Path, limit: Option<usize>) -> Result<(Dataset, usize)> {
    let candidates = labels_paths(images);
    let Some(first) = candidates.first() else {
        return Err(Error::data(
            images,
            None,
            "an IDX images file must have idx3 in its name",
        ));
    };
    let Some(labels) = candidates.iter().find(|p| p.is_file()).cloned() else {
        let also = match candidates.get(1) {
            Some(p) => format!(" (nor {})", p.display()),
            None => String::new(),
        };
        return Err(Error::data(
            first,
            None,
            format!(
                "labels file not found{also}; it is looked for next to the images file {}, \
                 named with idx1 for idx3",
                images.display()
            ),
        ));
    };
    let img = read_bytes(images)?;
    let lab = read_bytes(&labels)?;

    let dims = parse_header(images, &img, IMAGES_MAGIC, 3, "images (u8, 3 dimensions)")?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    let ldims = parse_header(&labels, &lab, LABELS_MAGIC, 1, "labels (u8, 1 dimension)")?;
    let n_labels = ldims[0];
    if n != n_labels {
        return Err(Error::data(
            &labels,
            None,
            format!(
                "has {n_labels} labels, but the images file {} has {n} images",
                images.display()
            ),
        ));
    }
    if n == 0 {
        return Err(Error::data(images, None, "has no images"));
    }
    if rows == 0 || cols == 0 {
        return Err(Error::data(
            images,
            None,
            format!(
                "images of {rows}×{cols} pixels have no features; each image needs at least \
                 one row and one column"
            ),
        ));
    }
    let d = rows * cols;
    let keep = limit.map_or(n, |l| l.min(n));
    let pixels = &img[16..16 + keep * d];
    let labels_bytes = &lab[8..8 + keep];
    // One pass over the bytes, not an index computation per pixel (60,000 × 784 of them).
    let flat: Vec<f64> = pixels.iter().map(|&b| f64::from(b)).collect();
    let Ok(x) = Array2::from_shape_vec((keep, d), flat) else {
        return Err(Error::data(images, None, "IDX dimensions are too large"));
    };
    let y = labels_bytes.iter().map(|&b| usize::from(b)).collect();
    Ok((Dataset { x, y }, n))
}

/// The bytes of an IDX file, gunzipped if its name ends in `.gz`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::Data`] naming the file for
/// gzip data that is corrupt or ends early.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if !gz {
        return std::fs::read(path).map_err(|e| Error::io(path, e));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let compressed = file.metadata().map_or(0, |m| m.len());
    // MNIST-like images compress about 5:1; a first guess saves most reallocations.
    let guess = usize::try_from(compressed.saturating_mul(4)).unwrap_or(0);
    let mut out = Vec::with_capacity(guess.min(1 << 30));
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    match decoder.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => {
            use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
            match e.kind() {
                UnexpectedEof => Err(Error::data(
                    path,
                    None,
                    "truncated gzip file: the compressed data ends early",
                )),
                InvalidData | InvalidInput => {
                    Err(Error::data(path, None, format!("corrupt gzip file: {e}")))
                }
                _ => Err(Error::io(path, e)),
            }
        }
    }
}

/// Checks the magic number and the file length; returns the dimensions.
fn parse_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    ndim: usize,
    what: &str,
) -> Result<Vec<usize>> {
    let header_len = 4 + 4 * ndim;
    if bytes.len() < header_len {
        return Err(Error::data(
            path,
            None,
            format!(
                "truncated IDX file: {} bytes, shorter than its {header_len}-byte header",
                bytes.len()
            ),
        ));
    }
    let word = |k: usize| u32::from_be_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
    let found = word(0);
    if found != magic {
        return Err(Error::data(
            path,
            None,
            format!("bad IDX magic number 0x{found:08x}, expected 0x{magic:08x} for {what}"),
        ));
    }
    let dims: Vec<usize> = (0..ndim).map(|i| word(4 + 4 * i) as usize).collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|body| body.checked_add(header_len));
    let Some(expected) = expected else {
        return Err(Error::data(path, None, "IDX dimensions are too large"));
    };
    if bytes.len() < expected {
        return Err(Error::data(
            path,
            None,
            format!(
                "truncated IDX file: {} bytes, the header (dimensions {}) needs {expected}",
                bytes.len(),
                dims_text(&dims)
            ),
        ));
    }
    if bytes.len() > expected {
        return Err(Error::data(
            path,
            None,
            format!(
                "{} unexpected bytes after the data (dimensions {}, {expected} bytes expected)",
                bytes.len() - expected,
                dims_text(&dims)
            ),
        ));
    }
    Ok(dims)
}

fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn images_bytes(n: u32, rows: u32, cols: u32, fill: impl Fn(usize) -> u8) -> Vec<u8> {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for v in [n, rows, cols] {
            b.extend(v.to_be_bytes());
        }
        b.extend((0..(n * rows * cols) as usize).map(fill));
        b
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut b = LABELS_MAGIC.to_be_bytes().to_vec();
        b.extend((labels.len() as u32).to_be_bytes());
        b.extend(labels);
        b
    }

    /// Writes MNIST-named `PREFIX-images-idx3-ubyte` and `PREFIX-labels-idx1-ubyte`.
    /// Pixel k of the whole file is `k mod 251`, label i is `i mod 10`.
    pub(crate) fn write_pair(dir: &Path, prefix: &str, n: u32, rows: u32, cols: u32) -> PathBuf {
        let images = dir.join(format!("{prefix}-images-idx3-ubyte"));
        std::fs::write(&images, images_bytes(n, rows, cols, |k| (k % 251) as u8)).unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            labels_bytes(&labels),
        )
        .unwrap();
        images
    }

    /// `bytes` gzip-compressed.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// As [`write_pair`], gzip-compressed, named `…-idx3-ubyte.gz` and `…-idx1-ubyte.gz`.
    pub(crate) fn write_pair_gz(dir: &Path, prefix: &str, n: u32, rows: u32, cols: u32) -> PathBuf {
        let plain = tempfile::tempdir().unwrap();
        let images = write_pair(plain.path(), prefix, n, rows, cols);
        let labels = plain.path().join(format!("{prefix}-labels-idx1-ubyte"));
        let mut out = PathBuf::new();
        for (i, src) in [images, labels].into_iter().enumerate() {
            let name = format!("{}.gz", src.file_name().unwrap().to_string_lossy());
            let dst = dir.join(name);
            std::fs::write(&dst, gzip(&std::fs::read(&src).unwrap())).unwrap();
            if i == 0 {
                out = dst;
            }
        }
        out
    }

    #[test]
    fn gzip_reads_the_same_data() {
        let dir = tempfile::tempdir().unwrap();
        let plain = read(&write_pair(dir.path(), "p", 7, 3, 5)).unwrap();
        let gz_path = write_pair_gz(dir.path(), "g", 7, 3, 5);
        assert!(gz_path.ends_with("g-images-idx3-ubyte.gz"));
        let gz = read(&gz_path).unwrap();
        assert_eq!(gz.y, plain.y);
        assert_eq!(gz.x.dim(), plain.x.dim());
        assert!(
            gz.x.iter()
                .zip(&plain.x)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }

    /// Writes gzip images (`bytes`) with good gzip labels; returns `read`'s error message.
    fn gz_err(images: Vec<u8>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let ip = dir.path().join("m-idx3-ubyte.gz");
        std::fs::write(&ip, images).unwrap();
        std::fs::write(
            dir.path().join("m-idx1-ubyte.gz"),
            gzip(&labels_bytes(&[0; 50])),
        )
        .unwrap();
        let e = read(&ip).unwrap_err();
        assert!(matches!(e, Error::Data { .. }), "{e}");
        assert_eq!(e.exit_code(), 2);
        e.to_string()
    }

    #[test]
    fn corrupt_and_truncated_gzip_name_the_file() {
        let good = gzip(&images_bytes(50, 4, 4, |k| (k * 7 % 256) as u8));
        let msg = gz_err(good[..good.len() / 2].to_vec());
        assert!(
            msg.contains("m-idx3-ubyte.gz: truncated gzip file"),
            "{msg}"
        );
        // Lost trailer (CRC and size): the data may be whole, the file is not.
        let msg = gz_err(good[..good.len() - 4].to_vec());
        assert!(msg.contains("m-idx3-ubyte.gz: "), "{msg}");
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 8] {
            *b ^= 0x5a;
        }
        let msg = gz_err(bad);
        assert!(msg.contains("m-idx3-ubyte.gz: "), "{msg}");
        let msg = gz_err(b"not gzip at all".to_vec());
        assert!(msg.contains("m-idx3-ubyte.gz: corrupt gzip file"), "{msg}");
        let msg = gz_err(Vec::new());
        assert!(msg.contains("m-idx3-ubyte.gz: "), "{msg}");
    }

    #[test]
    fn gzip_count_mismatch_names_both_files() {
        let msg = gz_err(gzip(&images_bytes(3, 1, 1, |_| 0)));
        assert!(
            msg.contains("m-idx1-ubyte.gz: has 50 labels, but the images file"),
            "{msg}"
        );
        assert!(msg.contains("m-idx3-ubyte.gz has 3 images"), "{msg}");
    }

    #[test]
    fn labels_paths_replace_idx3() {
        assert_eq!(
            labels_paths(Path::new("d/train-images-idx3-ubyte")),
            [
                Path::new("d/train-images-idx1-ubyte"),
                Path::new("d/train-labels-idx1-ubyte")
            ]
        );
        assert_eq!(
            labels_paths(Path::new("digits.idx3.idx")),
            [Path::new("digits.idx1.idx")]
        );
        assert!(labels_paths(Path::new("idx3dir/x.csv")).is_empty());
        assert_eq!(
            labels_paths(Path::new("d/train-images-idx3-ubyte.gz"))[1],
            Path::new("d/train-labels-idx1-ubyte.gz")
        );
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let images = write_pair(dir.path(), "t", 3, 2, 2);
        let d = read(&images).unwrap();
        assert_eq!(d.x.dim(), (3, 4));
        assert_eq!(d.y, vec![0, 1, 2]);
        for i in 0..3 {
            for j in 0..4 {
                assert_eq!(d.x[[i, j]].to_bits(), ((i * 4 + j) as f64).to_bits());
            }
        }
    }

    /// Writes images and labels files as given and returns the error message of `read`.
    fn read_err(images: Vec<u8>, labels: Option<Vec<u8>>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let ip = dir.path().join("m-idx3-ubyte");
        std::fs::write(&ip, images).unwrap();
        if let Some(l) = labels {
            std::fs::write(dir.path().join("m-idx1-ubyte"), l).unwrap();
        }
        let e = read(&ip).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        e.to_string()
    }

    #[test]
    fn missing_labels_file_is_named() {
        let msg = read_err(images_bytes(2, 1, 1, |_| 0), None);
        assert!(msg.contains("m-idx1-ubyte: labels file not found"), "{msg}");
        // The idx3 → idx1 name is preferred over images → labels.
        let dir = tempfile::tempdir().unwrap();
        let images = write_pair(dir.path(), "p", 2, 1, 1);
        let same = dir.path().join("p-images-idx1-ubyte");
        std::fs::write(&same, labels_bytes(&[7, 8])).unwrap();
        assert_eq!(read(&images).unwrap().y, vec![7, 8]);
    }

    #[test]
    fn bad_magic() {
        let mut img = images_bytes(2, 1, 1, |_| 0);
        img[3] = 0x08;
        let msg = read_err(img, Some(labels_bytes(&[0, 1])));
        assert!(
            msg.contains("m-idx3-ubyte: bad IDX magic number 0x00000808"),
            "{msg}"
        );
        let msg = read_err(
            images_bytes(2, 1, 1, |_| 0),
            Some(images_bytes(2, 1, 1, |_| 0)),
        );
        assert!(msg.contains("m-idx1-ubyte: bad IDX magic"), "{msg}");
        assert!(msg.contains("expected 0x00000801"), "{msg}");
    }

    #[test]
    fn truncated_and_overlong() {
        let mut img = images_bytes(3, 2, 2, |_| 1);
        img.pop();
        let msg = read_err(img, Some(labels_bytes(&[0, 1, 2])));
        assert!(
            msg.contains("m-idx3-ubyte: truncated IDX file: 27 bytes"),
            "{msg}"
        );
        assert!(msg.contains("needs 28"), "{msg}");
        let msg = read_err(vec![0, 0, 8], Some(labels_bytes(&[0])));
        assert!(
            msg.contains("m-idx3-ubyte: truncated IDX file: 3 bytes"),
            "{msg}"
        );
        let mut lab = labels_bytes(&[0, 1, 2]);
        lab.push(7);
        let msg = read_err(images_bytes(3, 2, 2, |_| 1), Some(lab));
        assert!(msg.contains("m-idx1-ubyte: 1 unexpected bytes"), "{msg}");
        // A header claiming a huge size must not allocate or panic.
        let msg = read_err(
            images_bytes(0, 0, 0, |_| 0)
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i >= 4 { 0xff } else { b })
                .collect(),
            Some(labels_bytes(&[])),
        );
        assert!(msg.contains("m-idx3-ubyte: "), "{msg}");
    }

    #[test]
    fn count_mismatch() {
        let msg = read_err(images_bytes(3, 1, 1, |_| 0), Some(labels_bytes(&[0, 1])));
        assert!(
            msg.contains("m-idx1-ubyte: has 2 labels, but the images file"),
            "{msg}"
        );
        assert!(msg.contains("has 3 images"), "{msg}");
    }

    #[test]
    fn zero_rows_or_columns_rejected() {
        for (rows, cols) in [(0, 28), (28, 0), (0, 0)] {
            let msg = read_err(
                images_bytes(2, rows, cols, |_| 0),
                Some(labels_bytes(&[0, 1])),
            );
            assert!(msg.contains("m-idx3-ubyte: images of"), "{msg}");
            assert!(msg.contains("no features"), "{msg}");
        }
    }
}
