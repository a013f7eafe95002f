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
//!
//! The file is streamed, never held whole. The rows kept (the first `data.limit` of them,
//! or all; every row is still checked) are counted against the memory limit as they are
//! read, 8 bytes a value ([`crate::memory`]), and a line too long for the memory left is
//! refused before the `csv` crate holds it; an allocation the system refuses is an error,
//! not an abort.

use std::io::{BufRead, Read};
use std::path::Path;

use ndarray::Array2;

use super::Dataset;
use crate::error::{Error, Result, shorten};
use crate::memory;

/// Labels must be below this: a class index this large is almost surely a wrong column.
pub const MAX_LABEL: usize = 100_000;

/// Bytes of memory the `csv` crate and the header may take for each byte of one line (a
/// field's bounds are 8 bytes, a field can be 2 bytes long, and the header's names are
/// kept as strings): a line longer than the memory left over this is refused.
const LINE_COST: u64 = 16;

/// A CSV file read into a [`Dataset`], with its column names.
#[derive(Debug, Clone)]
pub struct Table {
    /// Features `(n_rows, n_columns − 1)` and labels (the rows kept: see [`read_first`]).
    pub dataset: Dataset,
    /// Name of the label column.
    pub label_name: String,
    /// Names of the feature columns, in file order.
    pub feature_names: Vec<String>,
    /// Data rows in the file, kept or not.
    pub rows: usize,
}

/// Reads a CSV file with a header row; the label column is `label_column` by name, or the
/// last column.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Data`] with the line for an empty
/// file, a header without data rows, an unknown label column, a ragged row, a non-numeric
/// or non-finite feature, or a label that is not a non-negative integer; as
/// [`read_first`] for memory.
pub fn read(path: &Path, label_column: Option<&str>) -> Result<Table> {
    read_first(path, label_column, None, 0)
}

/// [`read`], keeping only the first `limit` rows (all without a limit); every row is still
/// checked, and counted in [`Table::rows`]. The rows kept are counted against the memory
/// limit as they are read, together with `held`, the bytes other data already holds.
///
/// # Errors
/// As [`read`]; [`Error::Usage`] when the rows kept, or one line, pass the memory limit;
/// [`Error::Data`] when the system refuses the memory for them.
pub fn read_first(
    path: &Path,
    label_column: Option<&str>,
    limit: Option<usize>,
    held: u64,
) -> Result<Table> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let room = memory::room(held)?;
    let guard = LineGuard {
        inner: file,
        // A line of 1 MiB is always read: below that, the rows' own check speaks.
        max_line: (room / LINE_COST).max(1 << 20),
        run: 0,
        line: 1,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(guard);
    let mut records = reader.records();

    let header = match records.next() {
        None => {
            return Err(Error::data(
                path,
                Some(1),
                "empty file, expected a header row",
            ));
        }
        Some(r) => r.map_err(|e| csv_error(path, e, held))?,
    };
    let header_line = || line_of(path, &header);
    let names: Vec<String> = header.iter().map(str::to_owned).collect();
    let n_cols = names.len();
    if n_cols < 2 {
        return Err(Error::data(
            path,
            header_line(),
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
                        header_line(),
                        format!(
                            "the label column \"{}\" appears more than once",
                            shorten(name)
                        ),
                    ));
                }
                (None, _) => {
                    return Err(Error::data(
                        path,
                        header_line(),
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

    // A kept row takes its features as f64 and its label as usize: 8 bytes a column.
    let row_bytes = n_cols as u64 * 8;
    let most = usize::try_from(room / row_bytes).unwrap_or(usize::MAX);
    let most = limit.map_or(most, |l| l.min(most));
    let mut x: Vec<f64> = Vec::new();
    let mut y: Vec<usize> = Vec::new();
    let mut rows = 0usize;
    for record in records {
        let record = record.map_err(|e| csv_error(path, e, held))?;
        let line = || line_of(path, &record);
        if record.len() != n_cols {
            return Err(Error::data(
                path,
                line(),
                format!("expected {n_cols} columns, found {}", record.len()),
            ));
        }
        let keep = limit.is_none_or(|l| rows < l);
        if keep {
            let kept = y.len() + 1;
            let bytes = (kept as u64).saturating_mul(row_bytes);
            if kept > most {
                let besides = memory::besides(held);
                memory::ensure_fits_or(
                    held.saturating_add(bytes),
                    &format!(
                        "{}: {kept} rows of {n_cols} columns as float64 (and the file may go \
                         on){besides}",
                        path.display()
                    ),
                    "keep fewer rows (data.limit, for the training file) or raise the limit",
                )?;
            }
            let refused = |e: std::collections::TryReserveError| {
                memory::refused(path, bytes, &format!("{kept} rows"), &e)
            };
            memory::grow(&mut y, 1, most).map_err(refused)?;
            memory::grow(&mut x, n_features, most.saturating_mul(n_features)).map_err(refused)?;
        }
        for (i, cell) in record.iter().enumerate() {
            if i == label_idx {
                let v = parse_label(&label_name, cell).map_err(|m| Error::data(path, line(), m))?;
                if keep {
                    y.push(v);
                }
            } else {
                let v = parse_feature(&names[i], cell).map_err(|m| Error::data(path, line(), m))?;
                if keep {
                    x.push(v);
                }
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::data(
            path,
            header_line(),
            "no data rows after the header",
        ));
    }
    x.shrink_to_fit();
    y.shrink_to_fit();
    let x = Array2::from_shape_vec((y.len(), n_features), x)
        .map_err(|e| Error::data(path, None, format!("internal shape error: {e}")))?;
    Ok(Table {
        dataset: Dataset { x, y },
        label_name,
        feature_names,
        rows,
    })
}

/// The file as the `csv` crate reads it, refusing a line longer than `max_line` bytes: the
/// crate holds a whole record in memory, so one endless line would grow without bound.
struct LineGuard<R> {
    inner: R,
    max_line: u64,
    /// Bytes since the last newline.
    run: u64,
    /// Line number of the last byte read.
    line: usize,
}

/// The error a [`LineGuard`] stops reading with.
#[derive(Debug)]
struct LongLine {
    line: usize,
    max_line: u64,
}

impl std::fmt::Display for LongLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line longer than {}", memory::human(self.max_line))
    }
}

impl std::error::Error for LongLine {}

impl<R: Read> Read for LineGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        match got.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                self.line += got.iter().filter(|&&b| b == b'\n').count();
                self.run = (n - last - 1) as u64;
            }
            None => self.run += n as u64,
        }
        if self.run > self.max_line {
            return Err(std::io::Error::other(LongLine {
                line: self.line,
                max_line: self.max_line,
            }));
        }
        Ok(n)
    }
}

/// The line on which `record` starts (see [`line_at`]).
fn line_of(path: &Path, record: &::csv::StringRecord) -> Option<usize> {
    line_at(path, record.position()?.byte())
}

/// The 1-based line of byte offset `byte`, counting `\n` in the file itself: the csv
/// crate's own `Position::line` does not count the blank lines it skips, and a record's
/// byte offset is taken before those blank lines, so they are skipped here too. The file is
/// read again for this (messages only); `None` if it cannot be.
fn line_at(path: &Path, byte: u64) -> Option<usize> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let (mut line, mut at) = (1usize, 0u64);
    loop {
        let buf = file.fill_buf().ok()?;
        if buf.is_empty() {
            return Some(line);
        }
        let len = buf.len();
        for &b in buf {
            let blank = matches!(b, b'\n' | b'\r');
            if at >= byte && !blank {
                return Some(line);
            }
            line += usize::from(b == b'\n');
            at += 1;
        }
        file.consume(len);
    }
}

fn csv_error(path: &Path, e: ::csv::Error, held: u64) -> Error {
    let line = e.position().and_then(|p| line_at(path, p.byte()));
    let message = match e.kind() {
        ::csv::ErrorKind::Utf8 { err, .. } => {
            format!("not valid UTF-8 (field {}): {err}", err.field() + 1)
        }
        _ => e.to_string(),
    };
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<LongLine>()) {
            Some(long) => {
                let limit = memory::limit().map_or_else(
                    |_| String::new(),
                    |(l, source)| format!(" of {} ({source})", memory::human(l)),
                );
                let besides = if held > 0 {
                    format!(" with the {} of data already read", memory::human(held))
                } else {
                    String::new()
                };
                Error::data(
                    path,
                    Some(long.line),
                    format!(
                        "{long}: reading it would pass the memory limit{limit}{besides}; \
                             is this a CSV file? Otherwise raise the limit"
                    ),
                )
            }
            None => Error::io(path, io),
        },
        _ => Error::data(path, line, message),
    }
}

fn parse_feature(column: &str, cell: &str) -> std::result::Result<f64, String> {
    if cell.is_empty() {
        return Err(format!(
            "column \"{}\" is empty, expected a number",
            shorten(column)
        ));
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "column \"{}\" is {}, expected a finite number",
            shorten(column),
            shorten(cell)
        )),
        Err(_) => Err(format!(
            "column \"{}\" is not a number: \"{}\"",
            shorten(column),
            shorten(cell)
        )),
    }
}

fn parse_label(column: &str, cell: &str) -> std::result::Result<usize, String> {
    let bad = || {
        format!(
            "label column \"{}\" is \"{}\", expected a non-negative integer class \
             (0, 1, 2, …)",
            shorten(column),
            shorten(cell)
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
        return Err(format!(
            "label {label} is too large, class labels must be below {MAX_LABEL}"
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
    fn limit_keeps_the_first_rows_and_checks_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,0\n").unwrap();
        let t = read_first(&p, None, Some(2), 0).unwrap();
        assert_eq!(t.rows, 4);
        assert_eq!(t.dataset.x, ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(t.dataset.y, [0, 1]);
        std::fs::write(&p, "a,b,label\n1,2,0\n3,4,1\n\n5,x,2\n").unwrap();
        let e = read_first(&p, None, Some(1), 0).unwrap_err();
        assert!(e.to_string().contains("x.csv:5: column \"b\""), "{e}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let e = read(Path::new("/nonexistent/x.csv"), None).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }
}
