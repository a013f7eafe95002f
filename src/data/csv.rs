//! # CSV reader
//!
//! A CSV data file has a header row (line 1) naming its columns; one column holds the
//! integer class label (`data.label_column`, by default the last column), every other
//! column is a feature:
//!
//! ```text
//! p0,p1,…,p63,label        ← line 1: header
//! 0,0,5,…,0,0              ← line 2: first data row
//! ```
//!
//! The file is read with the `csv` crate in flexible mode and row lengths are checked here,
//! so every message counts the header as line 1 (`data/x.csv:17: expected 65 columns, found
//! 64`). Cells are trimmed; features must be finite numbers, labels non-negative integers
//! (`3` or `3.0`, below [`MAX_LABEL`]).

use std::path::Path;

use ndarray::Array2;

use super::Dataset;
use crate::error::{Error, Result, shorten};

/// Labels must be below this: a class index this large is almost surely a wrong column.
pub const MAX_LABEL: usize = 100_000;

/// A CSV file read into a [`Dataset`], with its column names.
#[derive(Debug, Clone)]
pub struct Table {
    /// Features `(n_rows, n_columns − 1)` and labels.
    pub dataset: Dataset,
    /// Name of the label column.
    pub label_name: String,
    /// Names of the feature columns, in file order.
    pub feature_names: Vec<String>,
}

/// Reads a CSV file with a header row; the label column is `label_column` by name, or the
/// last column.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Data`] with the line for an empty
/// file, a header without data rows, an unknown label column, a ragged row, a non-numeric
/// or non-finite feature, or a label that is not a non-negative integer.
pub fn read(path: &Path, label_column: Option<&str>) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut lines = LineCounter::new(&bytes);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(bytes.as_slice());
    let mut records = reader.records();

    let header = match records.next() {
        None => {
            return Err(Error::data(
                path,
                Some(1),
                "empty file, expected a header row",
            ));
        }
        Some(r) => r.map_err(|e| csv_error(path, &mut lines, e))?,
    };
    let header_line = lines.line_of(&header);
    let names: Vec<String> = header.iter().map(str::to_owned).collect();
    let n_cols = names.len();
    if n_cols < 2 {
        return Err(Error::data(
            path,
            Some(header_line),
            format!(
                "the header has {n_cols} column; need at least one feature column and a \
                 label column"
            ),
        ));
    }
    let label_idx = match label_column {
        None => n_cols - 1,
        Some(name) => {
            let mut hits = names.iter().enumerate().filter(|(_, n)| *n == name);
            match (hits.next(), hits.next()) {
                (Some((i, _)), None) => i,
                (Some(_), Some(_)) => {
                    return Err(Error::data(
                        path,
                        Some(header_line),
                        format!(
                            "the label column \"{}\" appears more than once",
                            shorten(name)
                        ),
                    ));
                }
                (None, _) => {
                    return Err(Error::data(
                        path,
                        Some(header_line),
                        format!(
                            "no column named \"{}\" (data.label_column); the header has {}",
                            shorten(name),
                            brief_columns(&names)
                        ),
                    ));
                }
            }
        }
    };
    let label_name = names[label_idx].clone();
    let feature_names: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != label_idx)
        .map(|(_, n)| n.clone())
        .collect();
    let n_features = n_cols - 1;

    let mut x: Vec<f64> = Vec::new();
    let mut y: Vec<usize> = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(path, &mut lines, e))?;
        let line = lines.line_of(&record);
        if record.len() != n_cols {
            return Err(Error::data(
                path,
                Some(line),
                format!("expected {n_cols} columns, found {}", record.len()),
            ));
        }
        for (i, cell) in record.iter().enumerate() {
            if i == label_idx {
                y.push(parse_label(path, line, &label_name, cell)?);
            } else {
                x.push(parse_feature(path, line, &names[i], cell)?);
            }
        }
    }
    if y.is_empty() {
        return Err(Error::data(
            path,
            Some(header_line),
            "no data rows after the header",
        ));
    }
    let x = Array2::from_shape_vec((y.len(), n_features), x)
        .map_err(|e| Error::data(path, None, format!("internal shape error: {e}")))?;
    Ok(Table {
        dataset: Dataset { x, y },
        label_name,
        feature_names,
    })
}

/// 1-based line numbers from byte offsets, counting `\n` in the file itself: the csv
/// crate's own `Position::line` does not count the blank lines it skips, and a record's
/// byte offset is taken before those blank lines, so they are skipped here too.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Byte offset up to which newlines have been counted.
    offset: usize,
    /// Line number at `offset`.
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// Line of byte offset `byte`; offsets must not decrease between calls.
    fn line_at(&mut self, byte: usize) -> usize {
        let mut end = byte.min(self.bytes.len());
        while end < self.bytes.len() && matches!(self.bytes[end], b'\n' | b'\r') {
            end += 1;
        }
        if end > self.offset {
            self.line += self.bytes[self.offset..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.offset = end;
        }
        self.line
    }

    /// The line on which `record` starts.
    fn line_of(&mut self, record: &::csv::StringRecord) -> usize {
        match record.position() {
            Some(p) => self.line_at(p.byte() as usize),
            None => self.line,
        }
    }
}

fn csv_error(path: &Path, lines: &mut LineCounter, e: ::csv::Error) -> Error {
    let line = e.position().map(|p| lines.line_at(p.byte() as usize));
    let message = match e.kind() {
        ::csv::ErrorKind::Utf8 { err, .. } => {
            format!("not valid UTF-8 (field {}): {err}", err.field() + 1)
        }
        _ => e.to_string(),
    };
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::data(path, line, message),
    }
}

fn parse_feature(path: &Path, line: usize, column: &str, cell: &str) -> Result<f64> {
    if cell.is_empty() {
        return Err(Error::data(
            path,
            Some(line),
            format!("column \"{}\" is empty, expected a number", shorten(column)),
        ));
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(Error::data(
            path,
            Some(line),
            format!(
                "column \"{}\" is {}, expected a finite number",
                shorten(column),
                shorten(cell)
            ),
        )),
        Err(_) => Err(Error::data(
            path,
            Some(line),
            format!(
                "column \"{}\" is not a number: \"{}\"",
                shorten(column),
                shorten(cell)
            ),
        )),
    }
}

fn parse_label(path: &Path, line: usize, column: &str, cell: &str) -> Result<usize> {
    let bad = || {
        Error::data(
            path,
            Some(line),
            format!(
                "label column \"{}\" is \"{}\", expected a non-negative integer class \
                 (0, 1, 2, …)",
                shorten(column),
                shorten(cell)
            ),
        )
    };
    let label = match cell.parse::<usize>() {
        Ok(v) => v,
        Err(_) => {
            // Accept integral floats such as `3.0` (pandas writes those).
            let v: f64 = cell.parse().map_err(|_| bad())?;
            if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < MAX_LABEL as f64) {
                return Err(bad());
            }
            v as usize
        }
    };
    if label >= MAX_LABEL {
        return Err(Error::data(
            path,
            Some(line),
            format!("label {label} is too large, class labels must be below {MAX_LABEL}"),
        ));
    }
    Ok(label)
}

/// The header's columns, briefly: all of them if few, else the first and last three.
fn brief_columns(names: &[String]) -> String {
    let q = |n: &String| format!("\"{}\"", shorten(n));
    if names.len() <= 8 {
        names.iter().map(q).collect::<Vec<_>>().join(", ")
    } else {
        let head: Vec<String> = names[..3].iter().map(q).collect();
        let tail: Vec<String> = names[names.len() - 3..].iter().map(q).collect();
        format!(
            "{}, …, {} ({} columns)",
            head.join(", "),
            tail.join(", "),
            names.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// Writes `text` to `x.csv` in a fresh temp dir and reads it.
    fn read_text(text: &str, label: Option<&str>) -> (tempfile::TempDir, Result<Table>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, text).unwrap();
        let r = read(&p, label);
        (dir, r)
    }

    /// Asserts the error names `x.csv:LINE: ` and contains every part.
    fn assert_err(text: &str, label: Option<&str>, line: usize, parts: &[&str]) {
        let (_dir, r) = read_text(text, label);
        let e = r.unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains(&format!("x.csv:{line}: ")), "{msg}");
        for p in parts {
            assert!(msg.contains(p), "{msg} should contain {p}");
        }
    }

    #[test]
    fn reads_tiny_fixture_with_default_label() {
        let t = read(&fixture("tiny.csv"), None).unwrap();
        assert_eq!(t.label_name, "label");
        assert_eq!(t.feature_names, ["x0", "x1", "x2", "x3"]);
        assert_eq!(t.dataset.x.dim(), (20, 4));
        assert_eq!(&t.dataset.y[..4], &[0, 1, 2, 0]);
        assert_eq!(t.dataset.x[[0, 0]].to_bits(), 1.288f64.to_bits());
    }

    #[test]
    fn label_column_by_name() {
        let (_d, r) = read_text("y,a,b\n2,1.5,-1\n0, 3 ,4e2\n", Some("y"));
        let t = r.unwrap();
        assert_eq!(t.label_name, "y");
        assert_eq!(t.dataset.y, vec![2, 0]);
        assert_eq!(t.dataset.x, ndarray::array![[1.5, -1.0], [3.0, 400.0]]);
        // Default: the last column is the label.
        let (_d, r) = read_text("y,a,b\n2,1.5,1\n", None);
        let t = r.unwrap();
        assert_eq!(t.label_name, "b");
        assert_eq!(t.dataset.y, vec![1]);
        assert_eq!(t.dataset.x, ndarray::array![[2.0, 1.5]]);
    }

    #[test]
    fn integral_float_labels_are_accepted() {
        let (_d, r) = read_text("a,label\n1,3.0\n", None);
        assert_eq!(r.unwrap().dataset.y, vec![3]);
    }

    #[test]
    fn unknown_label_column_lists_header() {
        assert_err(
            "a,b,c\n1,2,0\n",
            Some("label"),
            1,
            &["no column named \"label\"", "\"a\", \"b\", \"c\""],
        );
        let header: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
        assert_err(
            &format!("{}\n", header.join(",")),
            Some("label"),
            1,
            &["\"p0\", \"p1\", \"p2\", …, \"p61\", \"p62\", \"p63\" (64 columns)"],
        );
    }

    #[test]
    fn empty_file_and_header_only() {
        assert_err("", None, 1, &["empty file"]);
        assert_err("a,b,label\n", None, 1, &["no data rows"]);
        assert_err("label\n0\n", None, 1, &["at least one feature column"]);
    }

    #[test]
    fn ragged_row_names_line() {
        let e = read(&fixture("ragged.csv"), None).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("ragged.csv:5: expected 5 columns, found 4"),
            "{e}"
        );
        assert_err(
            "a,b,label\n1,2,0\n1,2,3,0\n",
            None,
            3,
            &["expected 3 columns, found 4"],
        );
    }

    #[test]
    fn line_numbers_skip_blank_lines_correctly() {
        assert_err("a,label\n1,0\n\n\nx,0\n", None, 5, &["column \"a\""]);
        assert_err(
            "\na,label\r\n1,0\r\n\r\n1\r\n",
            None,
            5,
            &["expected 2 columns"],
        );
    }

    #[test]
    fn non_numeric_cell_names_column() {
        assert_err(
            "a,b,label\n1,2,0\n1,abc,1\n",
            None,
            3,
            &["column \"b\" is not a number: \"abc\""],
        );
        assert_err("a,b,label\n1,,0\n", None, 2, &["column \"b\" is empty"]);
    }

    #[test]
    fn non_finite_cell_rejected() {
        assert_err(
            "a,b,label\nNaN,2,0\n",
            None,
            2,
            &["column \"a\" is NaN", "finite"],
        );
        assert_err("a,b,label\n1,-inf,0\n", None, 2, &["column \"b\" is -inf"]);
    }

    #[test]
    fn bad_labels_rejected() {
        let e = read(&fixture("bad_label.csv"), None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("bad_label.csv:4: "), "{msg}");
        assert!(
            msg.contains("\"3.5\", expected a non-negative integer"),
            "{msg}"
        );
        for bad in ["-1", "cat", "1e300", "NaN", ""] {
            assert_err(
                &format!("a,label\n1,0\n2,{bad}\n"),
                None,
                3,
                &["label column \"label\"", "non-negative integer"],
            );
        }
        assert_err("a,label\n1,100000\n", None, 2, &["too large"]);
    }

    #[test]
    fn invalid_utf8_is_a_data_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, b"a,label\n1,0\n\xff,1\n").unwrap();
        let e = read(&p, None).unwrap_err();
        assert!(e.to_string().contains("x.csv:3: not valid UTF-8"), "{e}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let e = read(Path::new("/nonexistent/x.csv"), None).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }
}
