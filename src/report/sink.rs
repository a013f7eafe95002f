//! # CSV output, one flushed row at a time
//!
//! Rows are serialised with the csv crate (header from the struct's field names) and
//! flushed as they are written, so an interrupted run leaves a valid CSV of every completed
//! row. With `-o FILE` the file is created before any computation, so a bad path fails at
//! once. A closed pipe surfaces as an I/O error of kind `BrokenPipe`, which `main` treats
//! as a quiet success.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::hyper::Kind;
use crate::model::Layout;
use crate::report::rows::{HyperRow, hyper_rows, tune_header, tune_row};
use crate::tune::{Iteration, Observer, State};

/// Where data output goes: stdout or a file, with a name for messages.
pub struct Output {
    writer: Box<dyn Write>,
    name: PathBuf,
}

/// Set by the binary when fd 1 was closed at start (see [`set_stdout_closed`]).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Records that stdout was closed when the process started (`revgrad … >&-`). The Rust
/// runtime reopens a closed stdout on /dev/null before `main`, so without this, data would
/// vanish with exit 0; the binary sees the descriptor before the runtime does and says so
/// here.
pub fn set_stdout_closed(closed: bool) {
    STDOUT_CLOSED.store(closed, Ordering::Relaxed);
}

/// An error if stdout was closed at start: a closed stdout (EBADF) is an error, unlike a
/// closed pipe (EPIPE), which is a reader that stopped reading.
///
/// # Errors
/// [`Error::Io`] naming `<stdout>`.
pub fn check_stdout() -> Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(Error::io(
            "<stdout>",
            io::Error::other("standard output is closed; redirect it or give -o FILE"),
        ));
    }
    Ok(())
}

impl Output {
    /// stdout, or the file at `path` (created now).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be created, or naming `<stdout>` if stdout
    /// was closed at start.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        match path {
            None => check_stdout().map(|()| Output {
                writer: Box::new(io::stdout()),
                name: PathBuf::from("<stdout>"),
            }),
            Some(p) => {
                let f = File::create(p).map_err(|e| Error::io(p, e))?;
                Ok(Output {
                    writer: Box::new(BufWriter::new(f)),
                    name: p.to_path_buf(),
                })
            }
        }
    }

    /// Write all of `text` and flush.
    ///
    /// # Errors
    /// [`Error::Io`] (kind `BrokenPipe` for a closed pipe).
    pub fn write_all(&mut self, text: &str) -> Result<()> {
        self.writer
            .write_all(text.as_bytes())
            .and_then(|_| self.writer.flush())
            .map_err(|e| Error::io(&self.name, e))
    }
}

/// A CSV writer whose every row is flushed.
pub struct CsvSink {
    writer: csv::Writer<Box<dyn Write>>,
    name: PathBuf,
}

impl CsvSink {
    /// A CSV sink on `output` for rows of type `T`, with the header (taken from `T`'s field
    /// names) written and flushed at once, so even a run that produces no row leaves a
    /// valid CSV.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output.
    pub fn new<T: Serialize + Default>(mut output: Output) -> Result<Self> {
        output.write_all(&header_of::<T>())?;
        Ok(CsvSink::headless(output))
    }

    /// A sink on `output` that writes rows only (the header is the caller's).
    fn headless(output: Output) -> Self {
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(output.writer);
        CsvSink {
            writer,
            name: output.name,
        }
    }

    /// The sink of a resumed run whose rows up to iteration `done` were written before:
    /// on stdout, or on a missing or empty `path`, a new CSV with `header`; on a CSV that
    /// holds the run's rows, appended after the row of iteration `done` (see
    /// [`continue_after`]). `done` is `None` for an output that holds no row (a
    /// `--hypers-out` with no block to write): only its header is checked.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and line when it is not this run's CSV or lacks the
    /// row of iteration `done`; [`Error::Io`] naming it when it cannot be read or written.
    pub fn resumed(path: Option<&Path>, header: String, done: Option<usize>) -> Result<Self> {
        let fresh = |path| -> Result<Self> {
            let mut output = Output::open(path)?;
            output.write_all(&header)?;
            Ok(CsvSink::headless(output))
        };
        let Some(p) = path.filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0)) else {
            return fresh(path);
        };
        continue_after(p, &header, done)?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .map_err(|e| Error::io(p, e))?;
        Ok(CsvSink::headless(Output {
            writer: Box::new(BufWriter::new(f)),
            name: p.to_path_buf(),
        }))
    }

    /// A CSV sink on `output` with the given header, written and flushed at once.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output.
    pub fn with_header(output: Output, header: &[String]) -> Result<Self> {
        let mut sink = CsvSink::headless(output);
        sink.write(&header)?;
        Ok(sink)
    }

    /// Serialise one row and flush.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output.
    pub fn write<T: Serialize>(&mut self, row: &T) -> Result<()> {
        let name = &self.name;
        let to_io = |e: csv::Error| match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(name, io),
            other => Error::io(name, io::Error::other(format!("{other:?}"))),
        };
        self.writer.serialize(row).map_err(to_io)?;
        self.writer.flush().map_err(|e| Error::io(name, e))
    }
}

/// The header line (with its newline) of a CSV of rows of type `T`, from `T`'s field names.
fn header_of<T: Serialize + Default>() -> String {
    let mut probe = csv::Writer::from_writer(Vec::new());
    probe
        .serialize(T::default())
        .ok()
        .and_then(|_| probe.into_inner().ok())
        .and_then(|bytes| {
            let text = String::from_utf8(bytes).ok()?;
            text.lines().next().map(|l| format!("{l}\n"))
        })
        .unwrap_or_default()
}

/// `header` as a CSV line, with its newline.
fn header_line(header: &[String]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header);
    w.into_inner()
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// Prepares the CSV at `path` for a resumed run to append to: it must start with `header`
/// and hold rows whose first cell (the iteration) never decreases, the last of them at
/// most `done` being iteration `done` (`None`: it holds no row). Rows after iteration
/// `done` — written after the checkpoint, before the run stopped — and a last line cut
/// short are removed (the resumed run writes them again), with a note saying so.
///
/// # Errors
/// [`Error::Data`] naming the file (and line) when it does not fit; [`Error::Io`] when it
/// cannot be read or cut.
pub fn continue_after(path: &Path, header: &str, done: Option<usize>) -> Result<()> {
    let io = |e| Error::io(path, e);
    let bytes = std::fs::read(path).map_err(io)?;
    let bad = |line: usize, m: String| Error::data(path, Some(line), m);
    if !bytes.starts_with(header.as_bytes()) {
        return Err(bad(
            1,
            "is not the CSV of this run: its header differs (give the file the checkpointed              run wrote, or a new file)"
                .into(),
        ));
    }
    let mut keep = header.len();
    let mut last: Option<usize> = None;
    let mut dropped = 0;
    let mut at = header.len();
    for (i, line) in bytes[header.len()..]
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
    {
        let line_no = i + 2;
        at += line.len();
        if !line.ends_with(b"\n") {
            // Cut short by the stop: never a complete row.
            dropped += 1;
            break;
        }
        let first = line
            .split(|&b| b == b',' || b == b'\n')
            .next()
            .unwrap_or_default();
        let it: usize = std::str::from_utf8(first)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                bad(
                    line_no,
                    "is not a row of this run (no iteration first)".into(),
                )
            })?;
        if done.is_none() {
            return Err(bad(
                line_no,
                "is a row, but this run writes none here".into(),
            ));
        }
        if last.is_some_and(|l| it < l) {
            return Err(bad(
                line_no,
                format!(
                    "iteration {it} comes after iteration {}: not the rows of one run",
                    last.unwrap_or(0)
                ),
            ));
        }
        if done.is_some_and(|d| it <= d) {
            keep = at;
            last = Some(it);
        } else {
            dropped += 1;
        }
    }
    if let Some(d) = done
        && last != Some(d)
    {
        let ends = last.map_or("holds no row".to_owned(), |l| {
            format!("ends at iteration {l}")
        });
        return Err(Error::data(
            path,
            None,
            format!(
                "{ends}, but the checkpoint was written after iteration {d}: give the file                  the checkpointed run wrote, or a new file"
            ),
        ));
    }
    if keep < bytes.len() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(keep as u64))
            .map_err(io)?;
        crate::note!(
            "{}: removed {dropped} line(s) written after the checkpoint; the resumed run \
             writes them again",
            path.display()
        );
    }
    Ok(())
}

/// The `tune` / `search` CSV (SPEC §4.1): one flushed row per iteration.
pub struct TuneCsv(pub CsvSink);

impl TuneCsv {
    /// The CSV on `output`, header for a run with the blocks `kinds`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output.
    pub fn new(output: Output, kinds: &[Kind]) -> Result<Self> {
        Ok(TuneCsv(CsvSink::with_header(output, &tune_header(kinds))?))
    }

    /// The CSV of a resumed run after iteration `done` ([`CsvSink::resumed`]).
    ///
    /// # Errors
    /// As [`CsvSink::resumed`].
    pub fn resumed(path: Option<&Path>, kinds: &[Kind], done: usize) -> Result<Self> {
        let header = header_line(&tune_header(kinds));
        Ok(TuneCsv(CsvSink::resumed(path, header, Some(done))?))
    }
}

impl Observer for TuneCsv {
    fn on_iteration(&mut self, it: &Iteration, _best: &Iteration) -> Result<()> {
        self.0.write(&tune_row(it))
    }
}

/// `--hypers-out` (SPEC §4.2): every entry of every tuned block, per iteration.
pub struct HypersOut {
    sink: CsvSink,
    kinds: Vec<Kind>,
}

impl HypersOut {
    /// The long-format CSV on `output` for the blocks `kinds`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output.
    pub fn new(output: Output, kinds: &[Kind]) -> Result<Self> {
        Ok(HypersOut {
            sink: CsvSink::new::<HyperRow>(output)?,
            kinds: kinds.to_vec(),
        })
    }

    /// The `--hypers-out` CSV of a resumed run after iteration `done`
    /// ([`CsvSink::resumed`]).
    ///
    /// # Errors
    /// As [`CsvSink::resumed`].
    pub fn resumed(path: &Path, kinds: &[Kind], done: usize) -> Result<Self> {
        let done = (!kinds.is_empty()).then_some(done);
        Ok(HypersOut {
            sink: CsvSink::resumed(Some(path), header_of::<HyperRow>(), done)?,
            kinds: kinds.to_vec(),
        })
    }
}

impl Observer for HypersOut {
    fn on_iteration(&mut self, it: &Iteration, _best: &Iteration) -> Result<()> {
        hyper_rows(it, &self.kinds)
            .iter()
            .try_for_each(|r| self.sink.write(r))
    }
}

/// Writes the config with the best hyperparameters so far (every entry of every block) to a
/// file, atomically, each time a new best appears (so an interrupted tune still leaves it).
pub struct BestConfigWriter {
    config: Config,
    layout: Layout,
    path: PathBuf,
}

impl BestConfigWriter {
    /// Will write `config` with the best hyperparameters over `layout` to `path`.
    pub fn new(config: Config, layout: Layout, path: PathBuf) -> Self {
        BestConfigWriter {
            config,
            layout,
            path,
        }
    }
}

impl Observer for BestConfigWriter {
    fn on_resume(&mut self, state: &State) -> Result<()> {
        self.on_iteration(&state.best, &state.best)
    }

    fn on_iteration(&mut self, it: &Iteration, best: &Iteration) -> Result<()> {
        if it.iteration != best.iteration || it.result.is_none() {
            return Ok(());
        }
        for b in &best.hypers.blocks {
            self.config.set_spec(b.kind(), b.to_spec(&self.layout));
        }
        self.config.write_atomic(&self.path)
    }
}

/// Writes the input block's rows at the best iteration so far — as a training CSV
/// (`--inputs-out`) and as a PNG grid of grey images (`--images-out`) — atomically, each
/// time a new best appears. The grid has one row per class, or, for poison rows, two: the
/// real rows they were copied from above the poison rows, column by column.
pub struct LearnedRowsWriter {
    /// Poison rows' sources (raw features), shown above them.
    originals: Option<Vec<f64>>,
    labels: Vec<usize>,
    n_classes: usize,
    features: usize,
    names: Option<Vec<String>>,
    /// One grey scale for every pixel: the box's smallest and largest value.
    lo: Vec<f64>,
    hi: Vec<f64>,
    csv: Option<PathBuf>,
    png: Option<PathBuf>,
}

impl LearnedRowsWriter {
    /// Will write the rows of the input block (labels `labels`, features named `names`
    /// when given) to `csv` and `png`. Pixels are scaled from `[min lo, max hi]` of
    /// `feature_box` to black–white.
    pub fn new(
        labels: Vec<usize>,
        n_classes: usize,
        feature_box: &crate::hyper::FeatureBox,
        names: Option<Vec<String>>,
        csv: Option<PathBuf>,
        png: Option<PathBuf>,
    ) -> Self {
        let features = feature_box.lo.len();
        let lo = feature_box.lo.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = feature_box
            .hi
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        LearnedRowsWriter {
            originals: None,
            labels,
            n_classes,
            features,
            names,
            lo: vec![lo; features],
            hi: vec![hi; features],
            csv,
            png,
        }
    }
}

impl LearnedRowsWriter {
    /// Show `originals` (the rows the learnable rows started from, raw features) above them
    /// in the PNG, one column per row.
    pub fn beside(mut self, originals: Vec<f64>) -> Self {
        self.originals = Some(originals);
        self
    }
}

impl Observer for LearnedRowsWriter {
    fn on_resume(&mut self, state: &State) -> Result<()> {
        self.on_iteration(&state.best, &state.best)
    }

    fn on_iteration(&mut self, it: &Iteration, best: &Iteration) -> Result<()> {
        if it.iteration != best.iteration || it.result.is_none() {
            return Ok(());
        }
        let Some(rows) = best.hypers.find(Kind::Input) else {
            return Ok(());
        };
        if let Some(path) = &self.csv {
            let text = crate::report::images::inputs_csv(
                &rows.values,
                self.features,
                &self.labels,
                self.names.as_deref(),
            );
            crate::fsutil::write_atomic(path, text.as_bytes())?;
        }
        if let Some(path) = &self.png {
            let png = match &self.originals {
                Some(o) => {
                    let n = self.labels.len();
                    let both = [o.as_slice(), &rows.values].concat();
                    let grid: Vec<usize> = (0..2 * n).map(|i| i / n).collect();
                    let f = self.features;
                    crate::report::images::png_grid(&both, f, &grid, 2, &self.lo, &self.hi)
                }
                None => crate::report::images::png_grid(
                    &rows.values,
                    self.features,
                    &self.labels,
                    self.n_classes,
                    &self.lo,
                    &self.hi,
                ),
            };
            if let Some(png) = png {
                crate::fsutil::write_atomic(path, &png)?;
            }
        }
        Ok(())
    }
}
