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
//!
//! Reading follows the header. A plain file's length must be what the header gives before
//! any data is read; a gzip file is inflated only as far as the header promises, then one
//! byte more to find data after it (an error, found without inflating the rest). With
//! `data.limit`, only that many images and labels are read. The array the kept images
//! become (8 bytes a pixel) is checked against the memory limit before it is allocated
//! (see [`crate::memory`]), and an allocation the system refuses is an error, not an abort.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::Dataset;
use crate::error::{Error, Result};
use crate::memory;

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
/// file cannot be read; as [`read_first`] for memory.
pub fn read(images: &Path) -> Result<Dataset> {
    read_first(images, None, 0).map(|(d, _)| d)
}

/// [`read`], keeping only the first `limit` images (all without a limit), and the number of
/// images in the file. The files are read only that far: a `data.limit` of 100 of
/// Fashion-MNIST's 60,000 images inflates and converts 100 images, not 60,000.
///
/// Before anything data-sized is allocated, the kept images as f64 (and their labels) are
/// checked against the memory limit ([`memory::ensure_fits_or`]) together with `held`, the
/// bytes other data already holds; and a plain file's length must be what its header
/// promises. Raw bytes are read a chunk at a time, so a file's size never adds to the peak.
///
/// # Errors
/// As [`read`]; [`Error::Usage`] when the kept images pass the memory limit, and
/// [`Error::Data`] when the system refuses the memory for them.
pub fn read_first(images: &Path, limit: Option<usize>, held: u64) -> Result<(Dataset, usize)> {
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
    let mut img = Opened::open(images, IMAGES_MAGIC, 3, "images (u8, 3 dimensions)")?;
    let mut lab = Opened::open(&labels, LABELS_MAGIC, 1, "labels (u8, 1 dimension)")?;
    let (n, rows, cols) = (img.dims[0], img.dims[1], img.dims[2]);
    let n_labels = lab.dims[0];
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
    // n·rows·cols fits in usize (the header check), so rows·cols and keep·d do too.
    let d = rows * cols;
    let keep = limit.map_or(n, |l| l.min(n));
    let values = keep * d;
    let bytes = (values as u64)
        .saturating_add(keep as u64)
        .saturating_mul(8);
    let besides = memory::besides(held);
    memory::ensure_fits_or(
        held.saturating_add(bytes),
        &format!(
            "{}: {keep} images of {rows}×{cols} pixels as float64{besides}",
            images.display()
        ),
        "read fewer images (data.limit, for the training file) or raise the limit",
    )?;
    let what = format!("{keep} images of {rows}×{cols} pixels");
    let refused = |e: std::collections::TryReserveError| memory::refused(images, bytes, &what, &e);
    // A plain file's length is checked, so all of its data is there: the arrays are
    // allocated once. A gzip file's header is only a promise: they grow as the data comes.
    let mut flat: Vec<f64> = Vec::new();
    if !img.gz {
        flat.try_reserve_exact(values).map_err(refused)?;
    }
    img.read_body(values, |chunk| {
        memory::grow(&mut flat, chunk.len(), values).map_err(refused)?;
        flat.extend(chunk.iter().map(|&b| f64::from(b)));
        Ok(())
    })?;
    let mut y: Vec<usize> = Vec::new();
    if !lab.gz {
        y.try_reserve_exact(keep).map_err(refused)?;
    }
    lab.read_body(keep, |chunk| {
        memory::grow(&mut y, chunk.len(), keep).map_err(refused)?;
        y.extend(chunk.iter().map(|&b| usize::from(b)));
        Ok(())
    })?;
    if keep == n {
        img.check_end()?;
        lab.check_end()?;
    }
    let Ok(x) = Array2::from_shape_vec((keep, d), flat) else {
        return Err(Error::data(images, None, "IDX dimensions are too large"));
    };
    Ok((Dataset { x, y }, n))
}

/// Bytes read at a time: the most of a file's raw bytes held at once.
const CHUNK: usize = 1 << 16;

/// An IDX file whose header is read and checked, positioned at its first data byte.
struct Opened {
    path: PathBuf,
    reader: Box<dyn Read>,
    /// Gzip-compressed (`.gz`): the data's length is known only by reading it.
    gz: bool,
    dims: Vec<usize>,
    header_len: usize,
    /// Data bytes read so far.
    done: usize,
}

impl Opened {
    /// Opens `path` (gunzipping a `.gz`), reads and checks its header: the magic number, and
    /// for a plain file its length against the dimensions, before any data is read.
    fn open(path: &Path, magic: u32, ndim: usize, what: &str) -> Result<Self> {
        let gz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = if gz {
            None
        } else {
            Some(file.metadata().map_err(|e| Error::io(path, e))?.len())
        };
        let file = std::io::BufReader::new(file);
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let header_len = 4 + 4 * ndim;
        let mut opened = Opened {
            path: path.to_owned(),
            reader,
            gz,
            dims: Vec::new(),
            header_len,
            done: 0,
        };
        let mut header = [0u8; 16];
        let got = opened.read_full(&mut header[..header_len])?;
        if got < header_len {
            return Err(Error::data(
                path,
                None,
                format!(
                    "truncated IDX file: {got} bytes, shorter than its {header_len}-byte header"
                ),
            ));
        }
        let word =
            |k: usize| u32::from_be_bytes([header[k], header[k + 1], header[k + 2], header[k + 3]]);
        let found = word(0);
        if found != magic {
            return Err(Error::data(
                path,
                None,
                format!("bad IDX magic number 0x{found:08x}, expected 0x{magic:08x} for {what}"),
            ));
        }
        opened.dims = (0..ndim).map(|i| word(4 + 4 * i) as usize).collect();
        let Some(expected) = opened.expected() else {
            return Err(Error::data(path, None, "IDX dimensions are too large"));
        };
        if let Some(len) = len {
            let dims = dims_text(&opened.dims);
            let expected = expected as u64;
            if len < expected {
                return Err(Error::data(
                    path,
                    None,
                    format!(
                        "truncated IDX file: {len} bytes, the header (dimensions {dims}) needs \
                         {expected}"
                    ),
                ));
            }
            if len > expected {
                return Err(Error::data(
                    path,
                    None,
                    format!(
                        "{} unexpected bytes after the data (dimensions {dims}, {expected} \
                         bytes expected)",
                        len - expected
                    ),
                ));
            }
        }
        Ok(opened)
    }

    /// The file's length as the header gives it (`None` if it does not fit a `usize`).
    fn expected(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|body| body.checked_add(self.header_len))
    }

    /// Reads the next `count` data bytes, handing them to `sink` at most [`CHUNK`] at a
    /// time.
    fn read_body(&mut self, count: usize, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut buf = vec![0u8; count.clamp(1, CHUNK)];
        let mut left = count;
        while left > 0 {
            let want = left.min(buf.len());
            let got = self.read_full(&mut buf[..want])?;
            self.done += got;
            sink(&buf[..got])?;
            if got < want {
                // Only a gzip file gets here: a plain file's length is checked when opened.
                return Err(Error::data(
                    &self.path,
                    None,
                    format!(
                        "truncated IDX file: the data ends after {} bytes, the header \
                         (dimensions {}) needs {}",
                        self.header_len + self.done,
                        dims_text(&self.dims),
                        self.expected().unwrap_or(usize::MAX)
                    ),
                ));
            }
            left -= got;
        }
        Ok(())
    }

    /// An error if the file goes on past the data its header promises. A gzip file is read
    /// one byte further (to its end, which checks its CRC): whatever follows the data is
    /// found without inflating all of it.
    fn check_end(&mut self) -> Result<()> {
        if !self.gz {
            return Ok(()); // its length is checked when opened
        }
        let mut one = [0u8; 1];
        if self.read_full(&mut one)? > 0 {
            return Err(Error::data(
                &self.path,
                None,
                format!(
                    "unexpected bytes after the data: the header (dimensions {}) promises {} \
                     bytes, and the decompressed file goes on past them",
                    dims_text(&self.dims),
                    self.expected().unwrap_or(usize::MAX)
                ),
            ));
        }
        Ok(())
    }

    /// Fills `buf` as far as the file goes; returns the bytes read (fewer at its end).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Data`] naming the file for gzip
    /// data that is corrupt or ends early.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(got)
    }

    fn read_error(&self, e: std::io::Error) -> Error {
        use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
        let path = &self.path;
        if !self.gz {
            return Error::io(path, e);
        }
        match e.kind() {
            UnexpectedEof => Error::data(
                path,
                None,
                "truncated gzip file: the compressed data ends early",
            ),
            InvalidData | InvalidInput => {
                Error::data(path, None, format!("corrupt gzip file: {e}"))
            }
            _ => Error::io(path, e),
        }
    }
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
    fn gzip_is_read_only_as_far_as_the_header_promises() {
        let dir = tempfile::tempdir().unwrap();
        let body = images_bytes(6, 2, 2, |k| k as u8);
        let ip = dir.path().join("x-idx3-ubyte.gz");
        std::fs::write(
            dir.path().join("x-idx1-ubyte.gz"),
            gzip(&labels_bytes(&[0, 1, 2, 0, 1, 2])),
        )
        .unwrap();
        // Data after the promised 16 + 24 bytes, in the same member or in another.
        for tail in [[body.clone(), vec![0; 5000]].concat(), body.clone()] {
            let mut gz = gzip(&tail);
            if tail.len() == body.len() {
                gz.extend(gzip(&[7]));
            }
            std::fs::write(&ip, gz).unwrap();
            let msg = read(&ip).unwrap_err().to_string();
            assert!(
                msg.contains("x-idx3-ubyte.gz: unexpected bytes after the data"),
                "{msg}"
            );
            assert!(msg.contains("dimensions 6×2×2) promises 40 bytes"), "{msg}");
            // With a limit, reading stops before them.
            let (d, n) = read_first(&ip, Some(4), 0).unwrap();
            assert_eq!((d.x.dim(), n), ((4, 4), 6));
            assert_eq!(d.x[[3, 3]].to_bits(), 15f64.to_bits());
            assert_eq!(d.y, [0, 1, 2, 0]);
        }
        // Less data than promised.
        std::fs::write(&ip, gzip(&body[..30])).unwrap();
        let msg = read(&ip).unwrap_err().to_string();
        assert!(
            msg.contains(
                "truncated IDX file: the data ends after 30 bytes, the header \
                          (dimensions 6×2×2) needs 40"
            ),
            "{msg}"
        );
        assert_eq!(read_first(&ip, Some(3), 0).unwrap().0.len(), 3);
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
