//! # Checkpoints: outer loops that survive interruption
//!
//! `tune --checkpoint FILE` (and `search --checkpoint FILE`) rewrite FILE after every
//! iteration with everything needed to continue the run; `--resume FILE` continues it, and
//! the continued run computes exactly the rows the uninterrupted run would have (every cell
//! but `seconds`). The file is one line of JSON:
//!
//! ```text
//! {"revgrad_checkpoint": 1, "revgrad": "0.1.0", "command": "tune", "crc32": "1c291ca3",
//!  "body": {"config": {…}, "steps": 30, "seconds": null, "memory_limit": 8589934592,
//!           "data": [{…}], "state": {…}}}
//! ```
//!
//! - `revgrad_checkpoint` is the format version and `revgrad` the version that wrote it;
//!   a checkpoint of another format or another revgrad version is refused (another version
//!   may compute other numbers, and the continued rows would not be the run's);
//! - `crc32` is the CRC-32 of the body's exact bytes: a checkpoint edited or damaged after
//!   it was written is refused as corrupt;
//! - `config` is the run's config (paths absolute, `outer.steps` as run), `steps` the
//!   iterations (tune) or trials (search) to run and `seconds` a search's time budget;
//! - `memory_limit` is the memory limit in bytes the run checks its points against (a tune
//!   rejects a point whose exact run would exceed it), which a resumed run keeps
//!   ([`crate::memory::resume_with`]);
//! - `data` fingerprints every file the run reads ([`crate::data::fingerprint`]): a
//!   checkpoint whose data has changed is refused;
//! - `state` is the loop's state after its last iteration ([`super::state`]).
//!
//! The file is replaced atomically (a temporary file in the same folder, synced, then
//! renamed: [`crate::fsutil::write_atomic`]), so a run killed at any moment leaves either
//! the previous checkpoint or the new one, never a part of one.
//!
//! Test hook: with `REVGRAD_TEST_PAUSE_CHECKPOINT=K` the writer stops (sleeps) right after
//! writing the checkpoint of iteration K, and with `K:during` halfway through writing it,
//! after printing `checkpoint K: paused` on stderr, so tests can kill the process with
//! SIGKILL at a known point.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::state::SavedState;
use super::{Observer, State};
use crate::config::Config;
use crate::data::fingerprint::Fingerprint;
use crate::error::{Error, Result};

/// The checkpoint format this revgrad reads and writes.
pub const FORMAT: u32 = 1;

/// The revgrad version that writes checkpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The command whose run a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// `revgrad tune`.
    Tune,
    /// `revgrad search`.
    Search,
}

impl Command {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Tune => "tune",
            Command::Search => "search",
        }
    }
}

/// What a checkpoint holds besides the loop's state.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// The config as run.
    pub config: Config,
    /// Iterations (tune) or trials (search) to run.
    pub steps: usize,
    /// A search's time budget, seconds.
    pub seconds: Option<f64>,
    /// The memory limit in bytes ([`crate::memory::limit`]) the run's points are checked
    /// against.
    pub memory_limit: u64,
    /// The files the run reads.
    pub data: Vec<Fingerprint>,
}

/// A checkpoint read back: the run and its loop's state.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The file it was read from.
    pub path: PathBuf,
    /// The run.
    pub run: Run,
    /// The loop's state after its last iteration (restored on the run's blocks with
    /// [`State::from_saved`]).
    pub state: SavedState,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    config: &'a serde_json::Value,
    steps: usize,
    seconds: Option<f64>,
    memory_limit: u64,
    data: &'a [Fingerprint],
    state: SavedState,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyIn {
    config: serde_json::Value,
    steps: usize,
    seconds: Option<f64>,
    memory_limit: u64,
    data: Vec<Fingerprint>,
    state: SavedState,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    revgrad_checkpoint: Option<u32>,
    revgrad: Option<String>,
    command: Option<Command>,
    crc32: Option<String>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
}

fn crc32(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// Where the test hook pauses (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Pause {
    iteration: usize,
    during: bool,
}

impl Pause {
    fn from_env() -> Option<Pause> {
        let v = std::env::var("REVGRAD_TEST_PAUSE_CHECKPOINT").ok()?;
        let (k, during) = match v.strip_suffix(":during") {
            Some(k) => (k, true),
            None => (v.as_str(), false),
        };
        Some(Pause {
            iteration: k.parse().ok()?,
            during,
        })
    }

    fn now(iteration: usize) -> ! {
        crate::note!("checkpoint {iteration}: paused");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Rewrites the checkpoint file after every iteration: an [`Observer`] of the loop.
pub struct CheckpointWriter {
    path: PathBuf,
    command: Command,
    config: serde_json::Value,
    steps: usize,
    seconds: Option<f64>,
    memory_limit: u64,
    data: Vec<Fingerprint>,
    pause: Option<Pause>,
}

impl CheckpointWriter {
    /// Will write the checkpoints of `run` to `path`.
    pub fn new(path: PathBuf, run: &Run) -> Self {
        // The config's JSON is plain data (strings, numbers, booleans, lists): it parses.
        let config = serde_json::from_str(&run.config.to_json_pretty()).unwrap_or_default();
        CheckpointWriter {
            path,
            command: run.command,
            config,
            steps: run.steps,
            seconds: run.seconds,
            memory_limit: run.memory_limit,
            data: run.data.clone(),
            pause: Pause::from_env(),
        }
    }

    /// The checkpoint file's bytes for `state`.
    pub fn bytes(&self, state: &State) -> Vec<u8> {
        let body = BodyOut {
            config: &self.config,
            steps: self.steps,
            seconds: self.seconds,
            memory_limit: self.memory_limit,
            data: &self.data,
            state: state.to_saved(),
        };
        // Numbers, strings and lists only (every number finite: the state's are checked
        // finite where they are made), so serialisation cannot fail.
        let body = serde_json::to_string(&body).unwrap_or_default();
        format!(
            "{{\"revgrad_checkpoint\":{FORMAT},\"revgrad\":\"{VERSION}\",\"command\":\"{}\",\
             \"crc32\":\"{}\",\"body\":{body}}}\n",
            self.command.name(),
            crc32(body.as_bytes())
        )
        .into_bytes()
    }

    /// Writes the checkpoint of `state`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write(&self, state: &State) -> Result<()> {
        let bytes = self.bytes(state);
        let pause = self.pause.filter(|p| p.iteration == state.done);
        crate::fsutil::write_atomic_with(&self.path, |f| {
            if pause.is_some_and(|p| p.during) {
                f.write_all(&bytes[..bytes.len() / 2])?;
                f.flush()?;
                Pause::now(state.done);
            }
            f.write_all(&bytes)
        })?;
        if pause.is_some_and(|p| !p.during) {
            Pause::now(state.done);
        }
        Ok(())
    }
}

impl Observer for CheckpointWriter {
    fn on_state(&mut self, state: &State) -> Result<()> {
        self.write(state)
    }
}

/// Reads the checkpoint at `path`.
///
/// # Errors
/// [`Error::Io`] naming the file if it cannot be read; [`Error::Data`] naming it when it is
/// not a revgrad checkpoint (another file, or one cut short), is of another format or
/// revgrad version, fails its checksum, or holds an invalid config or body.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let bad = |m: String| Error::data(path, None, m);
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(bad("is empty, not a revgrad checkpoint".into()));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad("is not a revgrad checkpoint (not UTF-8 text)".into()))?;
    let env: Envelope = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "is not a revgrad checkpoint, or was cut short: not a JSON object ({e})"
        ))
    })?;
    let Some(format) = env.revgrad_checkpoint else {
        return Err(bad(
            "is not a revgrad checkpoint (no \"revgrad_checkpoint\" field)".into(),
        ));
    };
    if format != FORMAT {
        return Err(bad(format!(
            "is a checkpoint of format {format}; this revgrad ({VERSION}) reads format \
             {FORMAT}: resume it with the revgrad that wrote it"
        )));
    }
    let version = env.revgrad.unwrap_or_default();
    if version != VERSION {
        return Err(bad(format!(
            "was written by revgrad {}; this is revgrad {VERSION}, whose runs may compute \
             other numbers: resume it with revgrad {0}, or start the run again",
            crate::error::shorten(&version)
        )));
    }
    let (Some(command), Some(sum), Some(body)) = (env.command, env.crc32, env.body) else {
        return Err(bad(
            "is corrupt: its \"command\", \"crc32\" or \"body\" is missing".into(),
        ));
    };
    if crc32(body.get().as_bytes()) != sum {
        return Err(bad(
            "is corrupt: its contents do not match their CRC-32 (the file was changed or \
             damaged after revgrad wrote it)"
                .into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(body.get());
    let b: BodyIn = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| bad(format!("is corrupt: body.{}: {}", e.path(), e.inner())))?;
    let config = Config::from_json_str(&b.config.to_string(), path)?;
    Ok(Checkpoint {
        path: path.to_path_buf(),
        run: Run {
            command,
            config,
            steps: b.steps,
            seconds: b.seconds,
            memory_limit: b.memory_limit,
            data: b.data,
        },
        state: b.state,
    })
}

impl Checkpoint {
    /// An error unless this checkpoint holds a run of `command`.
    ///
    /// # Errors
    /// [`Error::Usage`] saying which command resumes it.
    pub fn expect(&self, command: Command) -> Result<()> {
        if self.run.command == command {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{} holds a `revgrad {}` run; resume it with `revgrad {1} --resume {0}`",
            self.path.display(),
            self.run.command.name()
        )))
    }

    /// The loop's state on the run's blocks (`template`) with `tuned` coordinates (`None`
    /// for a search).
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and what in its state does not fit the run.
    pub fn state(&self, template: &crate::hyper::Hypers, tuned: Option<usize>) -> Result<State> {
        State::from_saved(self.state.clone(), template, tuned)
            .map_err(|m| Error::data(&self.path, None, format!("is corrupt: {m}")))
    }

    /// An error if a file the run reads has changed since the checkpoint was written.
    ///
    /// # Errors
    /// [`Error::Data`] naming the checkpoint and the file that changed.
    pub fn check_data(&self) -> Result<()> {
        match crate::data::fingerprint::changed(&self.run.data) {
            None => Ok(()),
            Some(why) => Err(Error::data(
                &self.path,
                None,
                format!(
                    "cannot be resumed: {why}; the run would not be the one it continues, so \
                     start it again on the new data"
                ),
            )),
        }
    }
}
