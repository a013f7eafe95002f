//! # Learned inputs as images and as a training CSV
//!
//! A dataset-distillation run learns its training rows. They are written two ways:
//! [`png_grid`] draws them as square grey images (D = s·s features, pixel (i, j) of an
//! image is feature i·s + j, row-major as in MNIST) and [`inputs_csv`] writes them as a
//! CSV that revgrad reads back as `data.train`. Both return bytes; the caller writes them
//! with [`crate::fsutil::write_atomic`].
//!
//! The grid has one row per class (class 0 at the top) holding that class's rows left to
//! right in row order, with a 1-pixel border and 1-pixel gaps in background grey 128;
//! every grid row is as wide as the class with the most rows, the cells left over are
//! background. Labels 0 2 1 0 2 with K = 3 classes of 4×4 images, one character a pixel
//! (`.` background, a digit the row an image shows):
//!
//! ```text
//! ...........
//! .0000.3333.     class 0: rows 0, 3
//! .0000.3333.
//! .0000.3333.
//! .0000.3333.
//! ...........
//! .2222......     class 1: row 2; its second cell is background
//! .2222......
//! .2222......
//! .2222......
//! ...........
//! .1111.4444.     class 2: rows 1, 4
//! .1111.4444.
//! .1111.4444.
//! .1111.4444.
//! ...........
//!
//! width  = 1 + m·(s+1)      m = rows of the largest class
//! height = 1 + K·(s+1)
//! image c of class k: top left pixel at (x, y) = (1 + c·(s+1), 1 + k·(s+1))
//! ```
//!
//! Feature f of value x maps to the grey level
//!
//! ```text
//! round(255 · clamp((x − lo[f]) / (hi[f] − lo[f]), 0, 1))
//! 0 if hi[f] ≤ lo[f] or x is not finite
//! ```
//!
//! The background is 128 so that black (0) and white (255) image pixels stand out from it;
//! a value exactly halfway between lo and hi is 128 too (127.5 rounds away from zero).

use std::fmt::Write as _;

/// Background grey of the border, the gaps and the empty cells.
const BACKGROUND: u8 = 128;

/// Side s of a square image with `features` pixels (features = s·s, s ≥ 2), or None.
pub fn square_side(features: usize) -> Option<usize> {
    let s = features.isqrt();
    (s >= 2 && s * s == features).then_some(s)
}

/// The grey level of value `x` between `lo` and `hi` (see the module docs).
fn grey(x: f64, lo: f64, hi: f64) -> u8 {
    if !x.is_finite() || hi <= lo {
        return 0;
    }
    // A NaN bound (or an infinite hi − lo) makes the ratio NaN, which casts to 0.
    (255.0 * ((x - lo) / (hi - lo)).clamp(0.0, 1.0)).round() as u8
}

/// A PNG (8-bit greyscale) of the rows as square images, one grid row per class
/// (class 0 at the top), that class's rows left to right in row order; every grid row as
/// wide as the class with the most rows (empty cells background). Grey level of feature f:
/// `round(255·clamp((x − lo[f]) / (hi[f] − lo[f]), 0, 1))`, 0 where `hi[f] <= lo[f]` or x is
/// not finite. A 1-pixel gap between images and a 1-pixel border, background grey 128
/// (so black and white pixels of images are distinguishable from it).
/// `rows` is row-major, `labels.len()` rows of `features` values each.
/// Returns None unless features is a square (square_side) — the caller reports that.
///
/// # Panics
/// If `rows`, `lo` or `hi` do not have the lengths above, a label is not below
/// `n_classes`, or the image is wider or taller than PNG allows (2³¹ − 1 pixels).
pub fn png_grid(
    rows: &[f64],
    features: usize,
    labels: &[usize],
    n_classes: usize,
    lo: &[f64],
    hi: &[f64],
) -> Option<Vec<u8>> {
    let s = square_side(features)?;
    assert_eq!(
        rows.len(),
        labels.len() * features,
        "rows × features values"
    );
    assert_eq!(lo.len(), features, "one lower bound per feature");
    assert_eq!(hi.len(), features, "one upper bound per feature");

    let mut per_class = vec![0usize; n_classes];
    for &k in labels {
        assert!(k < n_classes, "label {k} of {n_classes} classes");
        per_class[k] += 1;
    }
    let widest = per_class.iter().copied().max().unwrap_or(0);
    let width = 1 + widest * (s + 1);
    let height = 1 + n_classes * (s + 1);

    let mut pixels = vec![BACKGROUND; width * height];
    // Cells used so far in each grid row.
    per_class.fill(0);
    for (row, &k) in rows.chunks_exact(features).zip(labels) {
        let (x0, y0) = (1 + per_class[k] * (s + 1), 1 + k * (s + 1));
        per_class[k] += 1;
        for (i, line) in row.chunks_exact(s).enumerate() {
            let start = (y0 + i) * width + x0;
            let out = &mut pixels[start..start + s];
            for (j, (p, &x)) in out.iter_mut().zip(line).enumerate() {
                let f = i * s + j;
                *p = grey(x, lo[f], hi[f]);
            }
        }
    }

    let dim = |n: usize| u32::try_from(n).expect("image side fits PNG's 2³¹ − 1 pixels");
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, dim(width), dim(height));
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing to a Vec cannot fail; the header fails only for sides PNG does not allow.
    let mut writer = encoder
        .write_header()
        .expect("image side fits PNG's 2³¹ − 1 pixels");
    writer
        .write_image_data(&pixels)
        .expect("PNG into memory with a full pixel buffer");
    writer.finish().expect("PNG into memory");
    Some(png)
}

/// The rows as a training CSV revgrad can read back as data.train: header
/// `x0,x1,…,x{D−1},label` (or the given feature names when `names` is Some and has D
/// entries), then one line per row: every feature written with Rust's shortest round-trip
/// f64 formatting (`{}` of f64, so it reads back bit for bit), then the integer label.
///
/// A name holding a comma, a double quote or a line break is quoted as CSV quotes it.
/// Non-finite values are written as `NaN`, `inf`, `-inf`, which the data reader rejects.
///
/// # Panics
/// If `rows` does not hold `labels.len()` rows of `features` values.
pub fn inputs_csv(
    rows: &[f64],
    features: usize,
    labels: &[usize],
    names: Option<&[String]>,
) -> String {
    assert_eq!(
        rows.len(),
        labels.len() * features,
        "rows × features values"
    );
    // About 20 bytes a value (17 significant digits, sign, point, comma).
    let mut out = String::with_capacity((labels.len() + 1) * (features + 1) * 20);
    match names.filter(|n| n.len() == features) {
        Some(names) => {
            for name in names {
                push_name(&mut out, name);
                out.push(',');
            }
        }
        None => {
            for f in 0..features {
                // Writing to a String cannot fail.
                let _ = write!(out, "x{f},");
            }
        }
    }
    out.push_str("label\n");
    // Slices, not `chunks_exact`, which panics for 0 features (then a line is the label).
    for (i, &label) in labels.iter().enumerate() {
        for x in &rows[i * features..(i + 1) * features] {
            let _ = write!(out, "{x},");
        }
        let _ = writeln!(out, "{label}");
    }
    out
}

/// Appends a header field, quoted when the CSV reader would otherwise split it.
fn push_name(out: &mut String, name: &str) {
    if name.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&name.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a PNG: (width, height, pixels), asserting 8-bit greyscale.
    fn decode(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let (w, h) = (info.width as usize, info.height as usize);
        assert_eq!(info.line_size, w);
        buf.truncate(info.buffer_size());
        assert_eq!(buf.len(), w * h);
        (w, h, buf)
    }

    #[test]
    fn square_sides() {
        assert_eq!(square_side(784), Some(28));
        assert_eq!(square_side(64), Some(8));
        assert_eq!(square_side(4), Some(2));
        assert_eq!(square_side(1), None);
        assert_eq!(square_side(10), None);
        assert_eq!(square_side(0), None);
        assert_eq!(square_side(63), None);
        assert_eq!(square_side(65), None);
    }

    #[test]
    fn grid_layout_and_grey_levels() {
        // The module docs' grid: 4×4 images, 3 classes with 2, 1 and 2 rows, interleaved so
        // row order matters.
        let (s, d) = (4, 16);
        let labels = [0, 2, 1, 0, 2];
        let mut lo = vec![0.0; d];
        let mut hi = vec![2.0; d];
        // Feature 15 has hi == lo, feature 14 hi < lo, feature 13 a NaN bound.
        (lo[15], hi[15]) = (1.0, 1.0);
        (lo[14], hi[14]) = (1.0, 0.5);
        lo[13] = f64::NAN;
        let fill = [0.0, 0.5, 1.5, 2.0, 0.25];
        let mut rows: Vec<f64> = labels
            .iter()
            .enumerate()
            .flat_map(|(r, _)| std::iter::repeat_n(fill[r], d))
            .collect();
        let row0 = &mut rows[..d];
        row0[0] = 0.0; // at lo → 0
        row0[1] = 2.0; // at hi → 255
        row0[2] = 1.0; // midway: 127.5 rounds away from zero → 128
        row0[3] = 5.0; // beyond hi → 255
        row0[4] = -3.0; // below lo → 0
        row0[5] = f64::NAN; // → 0
        row0[6] = f64::INFINITY; // → 0
        row0[7] = 0.5; // 63.75 → 64
        row0[8] = 0.3; // 38.25 → 38
        row0[15] = 1.0; // hi == lo → 0
        row0[14] = 0.75; // hi < lo → 0
        let bytes = png_grid(&rows, d, &labels, 3, &lo, &hi).unwrap();
        let (w, h, px) = decode(&bytes);
        assert_eq!((w, h), (1 + 2 * (s + 1), 1 + 3 * (s + 1)));
        assert_eq!((w, h), (11, 16));
        let at = |x: usize, y: usize| px[y * w + x];

        // Row 0: class 0, first cell, top left pixel (1, 1).
        let row0: Vec<u8> = (0..d).map(|f| at(1 + f % s, 1 + f / s)).collect();
        assert_eq!(
            row0,
            [0, 255, 128, 255, 0, 0, 0, 64, 38, 0, 0, 0, 0, 0, 0, 0]
        );
        // Row 3 (2.0 → 255): class 0, second cell at (6, 1); features 13 to 15 are 0.
        // Row 2 (1.5 → 191.25 → 191): class 1, first cell at (1, 6).
        // Row 1 (0.5 → 64): class 2, first cell at (1, 11).
        // Row 4 (0.25 → 31.875 → 32): class 2, second cell at (6, 11).
        for (x0, y0, level) in [(6, 1, 255), (1, 6, 191), (1, 11, 64), (6, 11, 32)] {
            for f in 0..d {
                let want = if f >= 13 { 0 } else { level };
                assert_eq!(at(x0 + f % s, y0 + f / s), want, "cell ({x0}, {y0}) f {f}");
            }
        }
        // Class 1 has one row: its second cell, at (6, 6), is background.
        for f in 0..d {
            assert_eq!(at(6 + f % s, 6 + f / s), BACKGROUND);
        }
        // Border and gaps: every column and row of pixels at a multiple of s + 1.
        for y in 0..h {
            for x in 0..w {
                if x % (s + 1) == 0 || y % (s + 1) == 0 {
                    assert_eq!(at(x, y), BACKGROUND, "({x}, {y})");
                }
            }
        }
        assert_eq!(at(w - 1, h - 1), BACKGROUND);
    }

    #[test]
    fn class_without_rows_is_a_background_grid_row() {
        // 2×2 images, class 0 empty, one row of class 1: 4 wide, 7 tall.
        let rows = [0.0, 1.0, 1.0, 0.0];
        let bytes = png_grid(&rows, 4, &[1], 2, &[0.0; 4], &[1.0; 4]).unwrap();
        let (w, h, px) = decode(&bytes);
        assert_eq!((w, h), (4, 7));
        #[rustfmt::skip]
        let want = [
            128, 128, 128, 128,
            128, 128, 128, 128,
            128, 128, 128, 128,
            128, 128, 128, 128,
            128,   0, 255, 128,
            128, 255,   0, 128,
            128, 128, 128, 128,
        ];
        assert_eq!(px, want);
    }

    #[test]
    fn no_rows_is_all_border() {
        let bytes = png_grid(&[], 4, &[], 2, &[0.0; 4], &[1.0; 4]).unwrap();
        let (w, h, px) = decode(&bytes);
        assert_eq!((w, h), (1, 7));
        assert!(px.iter().all(|&p| p == BACKGROUND));
    }

    #[test]
    fn non_square_features_give_none() {
        let rows = [0.5; 10];
        assert!(png_grid(&rows, 10, &[0], 1, &[0.0; 10], &[1.0; 10]).is_none());
        assert!(png_grid(&[0.5], 1, &[0], 1, &[0.0], &[1.0]).is_none());
        assert!(png_grid(&[], 0, &[], 1, &[], &[]).is_none());
    }

    #[test]
    fn csv_header_and_lines() {
        let rows = [0.5, -1.0, 3.0, 0.0, 2.25, -0.125];
        let csv = inputs_csv(&rows, 3, &[1, 0], None);
        assert_eq!(csv, "x0,x1,x2,label\n0.5,-1,3,1\n0,2.25,-0.125,0\n");
    }

    #[test]
    fn csv_with_names() {
        let names: Vec<String> = ["p0", "p1"].map(String::from).to_vec();
        let csv = inputs_csv(&[1.5, 2.0], 2, &[7], Some(&names));
        assert_eq!(csv, "p0,p1,label\n1.5,2,7\n");
        // A name the reader would split is quoted.
        let odd: Vec<String> = ["a,b", "say \"hi\""].map(String::from).to_vec();
        let csv = inputs_csv(&[1.5, 2.0], 2, &[7], Some(&odd));
        assert_eq!(csv, "\"a,b\",\"say \"\"hi\"\"\",label\n1.5,2,7\n");
        // Names of the wrong count fall back to x0, x1, ….
        let csv = inputs_csv(&[1.5, 2.0], 2, &[7], Some(&names[..1]));
        assert_eq!(csv, "x0,x1,label\n1.5,2,7\n");
    }

    #[test]
    fn csv_values_round_trip_bit_for_bit() {
        let values = [
            0.1,
            1.0 / 3.0,
            -0.0,
            5e-324,
            1e-300,
            f64::MIN_POSITIVE,
            f64::MAX,
            -f64::MAX,
            123_456_789.123_456_79,
            std::f64::consts::PI,
            -2.5e-7,
            9_007_199_254_740_993.0,
        ];
        let labels = [3, 0, 2, 1];
        let csv = inputs_csv(&values, 3, &labels, None);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("x0,x1,x2,label"));
        let mut back = Vec::new();
        let mut back_labels = Vec::new();
        for line in lines.by_ref().take(labels.len()) {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 4, "{line}");
            back.extend(cells[..3].iter().map(|c| c.parse::<f64>().unwrap()));
            back_labels.push(cells[3].parse::<usize>().unwrap());
        }
        assert_eq!(lines.next(), None);
        assert_eq!(back_labels, labels);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
    }

    #[test]
    fn csv_reads_back_as_training_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inputs.csv");
        let rows = [0.1, -0.0, 1e-300, 1.0 / 3.0, 2.5, -7.0];
        let names: Vec<String> = ["a,b", "c"].map(String::from).to_vec();
        std::fs::write(&path, inputs_csv(&rows, 2, &[2, 0, 1], Some(&names))).unwrap();
        let table = crate::data::csv::read(&path, None).unwrap();
        assert_eq!(table.feature_names, names);
        assert_eq!(table.label_name, "label");
        assert_eq!(table.dataset.y, [2, 0, 1]);
        assert_eq!(table.dataset.x.dim(), (3, 2));
        let got: Vec<u64> = table.dataset.x.iter().map(|x| x.to_bits()).collect();
        let want: Vec<u64> = rows.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want);
    }
}
