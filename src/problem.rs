//! # The inner training problem
//!
//! Binds an [`Mlp`], the training and validation sets and the mini-batch schedule into an
//! [`Objective`], [`Evaluate`] and [`RowTangents`]: `L_t(θ)` is the loss on batch `t`, the
//! meta-objective `f(θ)` is the mean cross-entropy over the whole validation set (no
//! penalty, SPEC §3), the rows' weights are the example_weight block and the learnable rows'
//! features the input block (standardised with the real rows' statistics as they are set,
//! and their tangents carried back to raw units: `∂/∂x = (dz/dx)·∂/∂z`). Each batch and each
//! evaluation is split into parts computed on the problem's [`Threads`]
//! ([`crate::model::parallel`]), with results bit-identical for every thread count. Buffers
//! are allocated once here, so the optimizers' per-step calls allocate nothing (on one
//! thread; a pool may allocate for its own bookkeeping).

use ndarray::{Array2, ArrayView2};

use crate::data::Data;
use crate::data::batches::BatchSchedule;
use crate::hyper::{Block, Hypers, Kind};
use crate::model::parallel::Batch;
use crate::model::{Activation, Chunked, Evaluate, Layout, Mlp, Objective, RowTangents, Threads};
use crate::runtime::{StepProgress, partition};

/// Model + data + batch schedule.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    model: Chunked,
    data: &'a Data,
    schedule: BatchSchedule,
    rows: Vec<usize>,
    row_weights: Option<Vec<f64>>,
    /// The training features with the learnable rows set from the input block (standardised),
    /// once [`RowTangents::set_row_inputs`] gave them.
    inputs: Option<Array2<f64>>,
    /// Where the test rows come from, as the warning about an overflowed test loss names it.
    test_source: Option<String>,
}

/// The test loss reported when the true one is past the float64 range (the network's
/// outputs overflow on the test rows): the largest float64, a number that no finite loss
/// reaches in practice and that reads as neither "no test set" (empty, `null`) nor a
/// rejected row.
pub const OVERFLOWED_LOSS: f64 = f64::MAX;

/// Set once the warning about an overflowed test loss is written: a tune evaluates the test
/// set at every iteration, and one warning says it.
static WARNED_TEST_OVERFLOW: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

impl<'a> Problem<'a> {
    /// A problem with hidden sizes `hidden`, batches of `batch_size` rows (shuffled per
    /// epoch from `seed` if `shuffle`), computed on one thread ([`Problem::with_threads`]).
    pub fn new(
        data: &'a Data,
        hidden: &[usize],
        activation: Activation,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
    ) -> Self {
        let mut sizes = vec![data.n_features];
        sizes.extend_from_slice(hidden);
        sizes.push(data.n_classes);
        let mlp = Mlp::new(Layout::new(&sizes), activation);
        Problem {
            model: Chunked::new(mlp, batch_size, Threads::one()),
            data,
            schedule: BatchSchedule::new(data.train.y.len(), batch_size, shuffle, seed),
            rows: Vec::with_capacity(batch_size),
            row_weights: None,
            inputs: None,
            test_source: None,
        }
    }

    /// The same problem, naming its test rows `source` (a file, or the rows held out of one)
    /// in the warning about an overflowed test loss.
    pub fn with_test_source(mut self, source: impl Into<String>) -> Self {
        self.test_source = Some(source.into());
        self
    }

    /// The same problem with its batch order drawn from `seed`.
    pub fn reseed(&mut self, seed: u64) {
        self.schedule = self.schedule.reseeded(seed);
    }

    /// The same problem without its learnable rows: the clean training set of a poisoning
    /// run (the rows before the first learnable one), batches drawn over those rows with
    /// the same seed. A problem without learnable rows is returned as it is.
    pub fn without_learnable_rows(mut self) -> Self {
        if let Some(l) = &self.data.learnable {
            self.schedule = self.schedule.over_rows(l.first);
            self.inputs = None;
            self.model.set_track_inputs(false);
        }
        self
    }

    /// The same problem computed on `threads`: every result stays bit-identical.
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.model.set_threads(threads);
        self
    }

    /// The model.
    pub fn mlp(&self) -> &Mlp {
        self.model.mlp()
    }

    /// The parameter layout.
    pub fn layout(&self) -> &Layout {
        self.model.mlp().layout()
    }

    /// Mean cross-entropy and accuracy on the training rows the batches are drawn from (no
    /// penalty; the learnable rows as set).
    pub fn train_metrics(&mut self, theta: &[f64]) -> (f64, f64) {
        let n = self.schedule.n_rows();
        let x = train_x(&self.inputs, self.data).slice_move(ndarray::s![..n, ..]);
        self.model.evaluate(theta, x, &self.data.train.y[..n])
    }

    /// Mean cross-entropy and accuracy on the validation set.
    pub fn validation_metrics(&mut self, theta: &[f64]) -> (f64, f64) {
        let d = &self.data.validation;
        self.model.evaluate(theta, d.x.view(), &d.y)
    }

    /// Mean cross-entropy and accuracy on the test set; `None` without one. Reported only:
    /// nothing is tuned on it.
    ///
    /// A loss that is not finite (the network's outputs overflow on the test rows) is
    /// reported as [`OVERFLOWED_LOSS`], with a warning on stderr naming the test rows (once
    /// per process), so every command shows it the same way: a number in the JSON, the CSV
    /// and the tables, never NaN, infinity, `null` or an empty cell (which mean "no test
    /// set"), and never a reason to reject or stop a run, since the test set steers nothing.
    /// The accuracy is the network's predictions as they are.
    pub fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        let d = self.data.test.as_ref()?;
        let (loss, accuracy) = self.model.evaluate(theta, d.x.view(), &d.y);
        if loss.is_finite() {
            return Some((loss, accuracy));
        }
        if !WARNED_TEST_OVERFLOW.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let source = self.test_source.as_deref().unwrap_or("the test set");
            crate::note!(
                "warning: the test loss on {source} is not finite ({loss}): the network's \
                 outputs overflow on its rows; it is reported as {OVERFLOWED_LOSS:e} (the \
                 largest float64), and the test set is never used for tuning"
            );
        }
        Some((OVERFLOWED_LOSS, accuracy))
    }
}

impl Objective for Problem<'_> {
    fn dim(&self) -> usize {
        self.layout().len()
    }

    fn grad_into(&mut self, step: usize, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.schedule.rows_into(step, &mut self.rows);
        let batch = batch_of(
            train_x(&self.inputs, self.data),
            &self.data.train.y,
            &self.rows,
            self.row_weights.as_deref(),
        );
        self.model.grad_into(theta, batch, grad)
    }

    fn grad_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        u: &[f64],
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        self.schedule.rows_into(step, &mut self.rows);
        let batch = batch_of(
            train_x(&self.inputs, self.data),
            &self.data.train.y,
            &self.rows,
            self.row_weights.as_deref(),
        );
        self.model.grad_hvp_into(theta, u, batch, grad, hu)
    }

    fn grad_then_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        grad: &mut [f64],
        u: &mut [f64],
        make_u: &mut dyn FnMut(&mut [f64], &mut [f64]),
        hu: &mut [f64],
    ) -> f64 {
        self.schedule.rows_into(step, &mut self.rows);
        let batch = batch_of(
            train_x(&self.inputs, self.data),
            &self.data.train.y,
            &self.rows,
            self.row_weights.as_deref(),
        );
        self.model
            .grad_then_hvp_into(theta, batch, grad, u, make_u, hu)
    }
}

impl Evaluate for Problem<'_> {
    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        let d = &self.data.validation;
        self.model.full_grad_into(theta, d.x.view(), &d.y, grad)
    }

    fn train_loss(&mut self, theta: &[f64]) -> f64 {
        self.train_metrics(theta).0
    }

    fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        Problem::test_metrics(self, theta)
    }
}

impl RowTangents for Problem<'_> {
    fn set_row_weights(&mut self, weights: Option<&[f64]>) {
        match (weights, self.row_weights.as_mut()) {
            (None, _) => self.row_weights = None,
            (Some(w), Some(mine)) if mine.len() == w.len() => mine.copy_from_slice(w),
            (Some(w), _) => self.row_weights = Some(w.to_vec()),
        }
    }

    fn add_row_tangents(&self, scale: f64, out: &mut [f64]) {
        let s = scale / self.rows.len() as f64;
        for (&r, t) in self.rows.iter().zip(self.model.row_tangents()) {
            out[r] += s * t;
        }
    }

    fn set_row_inputs(&mut self, inputs: Option<&[f64]>) {
        let (Some(raw), Some(l)) = (inputs, self.data.learnable.as_ref()) else {
            self.inputs = None;
            self.model.set_track_inputs(false);
            return;
        };
        let x = self.inputs.get_or_insert_with(|| self.data.train.x.clone());
        let d = x.ncols();
        for (r, row) in raw.chunks(d).enumerate() {
            let mut z = x.row_mut(l.first + r);
            for (j, (z, &v)) in z.iter_mut().zip(row).enumerate() {
                *z = l.standardizer.apply(j, v);
            }
        }
        self.model.set_track_inputs(true);
    }

    fn add_input_tangents(&self, scale: f64, out: &mut [f64]) {
        let Some(l) = self
            .data
            .learnable
            .as_ref()
            .filter(|_| self.inputs.is_some())
        else {
            return;
        };
        let d = self.data.n_features;
        let mut rows = self.rows.iter();
        for part in self.model.input_tangents() {
            for t in part.rows() {
                let r = *rows.next().expect("one tangent row per batch row");
                let Some(k) = r.checked_sub(l.first).filter(|&k| k < l.rows) else {
                    continue;
                };
                let out = &mut out[k * d..(k + 1) * d];
                for (j, (o, &t)) in out.iter_mut().zip(t.iter()).enumerate() {
                    *o += scale * l.standardizer.slope(j) * t;
                }
            }
        }
    }
}

/// The training features the batches read: the data's, or with the learnable rows as set.
fn train_x<'d>(inputs: &'d Option<Array2<f64>>, data: &'d Data) -> ArrayView2<'d, f64> {
    match inputs {
        Some(x) => x.view(),
        None => data.train.x.view(),
    }
}

/// The training rows `rows` of `(x, y)`, with the example weights if set.
fn batch_of<'d>(
    x: ArrayView2<'d, f64>,
    y: &'d [usize],
    rows: &'d [usize],
    weights: Option<&'d [f64]>,
) -> Batch<'d> {
    Batch {
        x,
        y,
        rows,
        weights,
    }
}

/// A loaded experiment ready to run: [`Experiment::prepare`].
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    /// Model, data and batches.
    pub problem: Problem<'a>,
    /// Every block as configured.
    pub hypers: Hypers,
    /// Layout, ε and T.
    pub ctx: Context,
}

/// What a run needs besides the problem and the blocks.
#[derive(Debug, Clone)]
pub struct Context {
    /// The inner optimizer.
    pub optimizer: crate::hyper::OptimizerId,
    /// The parameter layout.
    pub layout: Layout,
    /// Initial-weight noise ε.
    pub eps: Vec<f64>,
    /// Inner steps T.
    pub steps: usize,
    /// The threads the run computes on (the problem's).
    pub threads: Threads,
    /// The step counter a progress bar shows, if there is a bar.
    pub progress: Option<StepProgress>,
}

impl Context {
    /// The hypergradient setup at `hypers` (this run's ε, layout, T, threads and step
    /// counter).
    pub fn setup<'s>(&'s self, hypers: &'s Hypers) -> crate::hypergrad::Setup<'s> {
        crate::hypergrad::Setup {
            optimizer: self.optimizer,
            hypers,
            eps: &self.eps,
            layout: &self.layout,
            steps: self.steps,
            threads: &self.threads,
            progress: self.progress.as_ref(),
        }
    }
}

/// Largest network revgrad builds (about 400 MB per parameter-sized vector; a run keeps
/// about ten of them).
pub const MAX_PARAMETERS: usize = 50_000_000;

/// Bytes a run needs, roughly: the workspaces (the batch's parts hold B rows in all, the
/// evaluation parts 8·32; about 14 arrays of `rows × Σ layer widths` f64 each), about 10
/// parameter-sized f64 vectors (θ, v, gradients, adjoints, scratch) plus the parts' own
/// (a gradient and a Hessian-vector product per batch part, a gradient per evaluation part,
/// [`crate::model::parallel`]), and the data as it is held: every set's features (f64) and
/// labels, and with learnable rows a second copy of the training features (the rows as
/// set). Saturates rather than wraps. The data readers check the data alone against the
/// same limit before they allocate it ([`crate::memory`]); an exact run adds its information
/// buffer ([`Experiment::ensure_exact_fits`]).
pub fn estimate_bytes(sizes: &[usize], config: &crate::config::Config, data: &Data) -> u64 {
    let sizes: Vec<u128> = sizes.iter().map(|&s| s as u128).collect();
    let width: u128 = sizes.iter().sum();
    let params: u128 = sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    let batch = config.inner.batch_size;
    let rows = batch as u128 + (partition::EVAL_PARTS * partition::CHUNK_ROWS) as u128;
    let workspace = rows * width * 14 * 8;
    let parts = 2 * partition::batch_parts(batch) + partition::EVAL_PARTS;
    let vectors = (10 + parts as u128) * params * 8;
    let values = |d: &crate::data::Dataset| u128::from(d.bytes());
    let inputs = if data.learnable.is_some() {
        data.train.x.len() as u128 * 8
    } else {
        0
    };
    let held = values(&data.train)
        + values(&data.validation)
        + data.test.as_ref().map_or(0, values)
        + inputs;
    u64::try_from(workspace + vectors + held).unwrap_or(u64::MAX)
}

/// The layer widths of `config`'s network on `data`: features, the hidden layers, classes.
fn layer_sizes(config: &crate::config::Config, data: &Data) -> Vec<usize> {
    let mut sizes = vec![data.n_features];
    sizes.extend_from_slice(&config.model.hidden);
    sizes.push(data.n_classes);
    sizes
}

/// What an exact command holds besides the model and data
/// ([`Experiment::ensure_exact_fits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactRun {
    /// The information buffer (hypergrad, tune, train --exact).
    Reversal,
    /// The information buffer and every state of the run in f64 (check-grad's reference
    /// path, whose exact forward run stores its states as it goes).
    StoredTrajectory,
}

/// Bytes of a stored trajectory of `steps` steps of `optimizer` over `layout`: T + 1
/// snapshots of every state vector in f64
/// ([`crate::hypergrad::store_all_bytes`]), each with its vectors' headers.
pub fn stored_trajectory_bytes(
    layout: &Layout,
    optimizer: crate::hyper::OptimizerId,
    steps: usize,
) -> u64 {
    let info = optimizer.info();
    let headers = std::mem::size_of::<crate::optim::FloatState>()
        + info.aux_vectors * std::mem::size_of::<Vec<f64>>();
    crate::hypergrad::store_all_bytes(layout.len(), steps, info.state_vectors()).saturating_add(
        (steps as u64)
            .saturating_add(1)
            .saturating_mul(headers as u64),
    )
}

/// A loaded experiment: the validated config and its data, from which problems, the
/// initial-weight noise and the starting hyperparameters are built.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The validated config.
    pub config: crate::config::Config,
    /// Training, validation and test sets, standardised.
    pub data: Data,
    /// The threads its problems compute on (one unless [`Experiment::with_threads`]).
    pub threads: Threads,
}

impl Experiment {
    /// Load and validate the config at `path`, then its data.
    ///
    /// # Errors
    /// Config, data and I/O errors, each naming the file and field or line.
    pub fn load(path: &std::path::Path) -> crate::Result<Self> {
        let config = crate::config::Config::load(path)?;
        Self::from_config(config)
    }

    /// Load the data of an already validated config.
    ///
    /// # Errors
    /// Data and I/O errors.
    pub fn from_config(config: crate::config::Config) -> crate::Result<Self> {
        let data = crate::data::load(&config)?;
        let sizes = layer_sizes(&config, &data);
        let params = sizes.windows(2).try_fold(0usize, |acc, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(acc)
        });
        match params {
            Some(p) if p <= MAX_PARAMETERS => {
                let what = format!("{}: this model and batch size", config.file.display());
                crate::memory::ensure_fits(estimate_bytes(&sizes, &config, &data), &what)?;
                Ok(Experiment {
                    config,
                    data,
                    threads: Threads::one(),
                })
            }
            _ => Err(crate::Error::config(
                &config.file,
                "model.hidden",
                format!(
                    "gives a network with more than {MAX_PARAMETERS} parameters for {} features \
                     and {} classes; use smaller hidden layers",
                    data.n_features, data.n_classes
                ),
            )),
        }
    }

    /// The same experiment with its problems computed on `threads` (results do not change).
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }

    /// The inner problem: model, data and batch schedule of the config, on the experiment's
    /// threads.
    pub fn problem(&self) -> Problem<'_> {
        let (m, i, d) = (&self.config.model, &self.config.inner, &self.config.data);
        let test_source = match &d.test {
            Some(file) => file.display().to_string(),
            None => format!(
                "the rows held out of {} (data.test_fraction)",
                d.train.display()
            ),
        };
        Problem::new(
            &self.data,
            &m.hidden,
            m.activation,
            i.batch_size,
            i.shuffle,
            self.config.inner_seed(),
        )
        .with_threads(self.threads.clone())
        .with_test_source(test_source)
    }

    /// The problem, its layout, the initial-weight noise and the configured blocks: what
    /// every command starts from.
    ///
    /// # Errors
    /// As [`Experiment::init_noise`] and [`Experiment::hypers`].
    pub fn prepare(&self) -> crate::Result<Prepared<'_>> {
        let problem = self.problem();
        let layout = problem.layout().clone();
        let eps = self.init_noise(&layout)?;
        let hypers = self.hypers(&layout)?;
        Ok(Prepared {
            problem,
            hypers,
            ctx: Context {
                optimizer: self.config.inner.optimizer,
                layout,
                eps,
                steps: self.steps(),
                threads: self.threads.clone(),
                progress: None,
            },
        })
    }

    /// Initial-weight noise ε: from `model.init_file` if set, else drawn from the inner
    /// seed.
    ///
    /// # Errors
    /// npz errors naming the file and key.
    pub fn init_noise(&self, layout: &Layout) -> crate::Result<Vec<f64>> {
        self.init_noise_seeded(layout, self.config.inner_seed())
    }

    /// Initial-weight noise ε drawn from `seed` (or `model.init_file`'s, whatever the seed).
    ///
    /// # Errors
    /// npz errors naming the file and key.
    pub fn init_noise_seeded(&self, layout: &Layout, seed: u64) -> crate::Result<Vec<f64>> {
        match &self.config.model.init_file {
            Some(path) => crate::model::npz::read_params(path, layout),
            None => Ok(crate::model::init_noise(layout, seed)),
        }
    }

    /// The prepared run with inner seed `seed`: ε and the batch order drawn from it.
    ///
    /// # Errors
    /// As [`Experiment::init_noise`].
    pub fn reseed(&self, run: &mut Prepared<'_>, seed: u64) -> crate::Result<()> {
        run.problem.reseed(seed);
        run.ctx.eps = self.init_noise_seeded(&run.ctx.layout, seed)?;
        Ok(())
    }

    /// Every block as configured, over `layout` (the run's kinds in SPEC §4.1's order).
    ///
    /// # Errors
    /// A config error naming the field when a block's `values` do not fit the network
    /// (`inner.gamma.values[3][1] must be in [0, 0.9999], got 1.2`).
    pub fn hypers(&self, layout: &Layout) -> crate::Result<Hypers> {
        let err = |(f, m)| crate::Error::config(&self.config.file, f, m);
        let mut blocks = Vec::new();
        for k in self.config.kinds() {
            let spec = self.config.spec(k);
            if k == Kind::Input {
                let Some(l) = self.data.learnable.as_ref() else {
                    continue;
                };
                let mut b = Block::inputs(l.rows, l.feature_box.clone(), l.init.clone());
                if let Some(spec) = spec {
                    b.read_values(spec, layout, &k.field()).map_err(err)?;
                }
                blocks.push(b);
            } else if let Some(spec) = spec {
                let rows = self.data.train.len();
                blocks.push(Block::from_spec(k, spec, layout, rows, &k.field()).map_err(err)?);
            }
        }
        Ok(Hypers { blocks })
    }

    /// [`estimate_bytes`] of this experiment: workspaces, parameter-sized vectors and data.
    pub fn estimate_bytes(&self) -> u64 {
        estimate_bytes(
            &layer_sizes(&self.config, &self.data),
            &self.config,
            &self.data,
        )
    }

    /// The memory an exact reversal at `hypers` needs, about: the model and data
    /// ([`Experiment::estimate_bytes`]) and the information buffer after `inner.steps` steps
    /// at those blocks (at most [`crate::exact::BufferBound::bytes`]).
    pub fn reversal_bytes(&self, hypers: &Hypers, layout: &Layout) -> u64 {
        let optimizer = self.config.inner.optimizer;
        let buffer = optimizer.buffer_bound(hypers, layout, self.steps());
        self.estimate_bytes()
            .saturating_add(buffer.map_or(0, |b| b.bytes()))
    }

    /// An error unless an exact run of this config can be reversed: the inner optimizer is
    /// exactly reversible (momentum, Adam or RMSprop) with no zero decay, and the run's
    /// memory with its information buffer after `inner.steps` steps fits the limit
    /// ([`Experiment::ensure_exact_fits`] with [`ExactRun::Reversal`]). The commands that run
    /// the exact optimizer (hypergrad, check-grad, tune, train --exact) call it before they
    /// start; float runs (train, search) hold no buffer and do not.
    ///
    /// # Errors
    /// A config error naming `inner.optimizer` or the decay block with a 0; the memory
    /// error of [`Experiment::ensure_exact_fits`].
    pub fn require_reversible(&self) -> crate::Result<()> {
        let o = self.config.inner.optimizer;
        if !o.info().reversible {
            return Err(crate::Error::config(
                &self.config.file,
                "inner.optimizer",
                format!(
                    "must be {} for exact arithmetic and hypergradients (\"{o}\" is not \
                     exactly reversible), got \"{o}\"",
                    crate::hyper::OptimizerId::reversible_names()
                ),
            ));
        }
        for kind in o.kinds() {
            let Some(spec) = self.config.spec(*kind) else {
                continue;
            };
            if kind.info().decay && spec.has_zero() {
                return Err(crate::Error::config(
                    &self.config.file,
                    kind.field(),
                    format!("has a 0: {}", o.zero_decay_reason(*kind)),
                ));
            }
        }
        self.ensure_exact_fits(ExactRun::Reversal)
    }

    /// An error unless an exact run of `run`'s kind fits the memory limit: the model and
    /// data ([`estimate_bytes`]), the information buffer after `inner.steps` steps at the
    /// configured blocks (at most [`crate::exact::BufferBound::bytes`], which grows
    /// linearly with T), and for [`ExactRun::StoredTrajectory`] every state of the run in
    /// f64 besides. The message names the config file, `inner.steps` and the sizes, and says
    /// how many steps would fit.
    ///
    /// A tune starts from the configured blocks; an outer step that lowers a decay makes
    /// later inner runs store more (log₂(1/γ) bits per multiply), so each later point is
    /// checked again before its run ([`crate::tune::Inner::too_big`], via
    /// [`Experiment::reversal_bytes`]).
    ///
    /// # Errors
    /// [`crate::Error::Usage`] (exit 2) when the estimate exceeds the limit; a config error
    /// when a block does not fit the network.
    pub fn ensure_exact_fits(&self, run: ExactRun) -> crate::Result<()> {
        let layout = Layout::new(&layer_sizes(&self.config, &self.data));
        let hypers = self.hypers(&layout)?;
        let optimizer = self.config.inner.optimizer;
        let base = self.estimate_bytes();
        let buffer = |steps: usize| {
            optimizer
                .buffer_bound(&hypers, &layout, steps)
                .map_or(0, |b| b.bytes())
        };
        let trajectory = |steps: usize| match run {
            ExactRun::Reversal => 0,
            ExactRun::StoredTrajectory => stored_trajectory_bytes(&layout, optimizer, steps),
        };
        let total = |steps: usize| {
            base.saturating_add(buffer(steps))
                .saturating_add(trajectory(steps))
        };
        let steps = self.steps();
        let (limit, _) = crate::memory::limit()?;
        if total(steps) <= limit {
            return Ok(());
        }
        let h = crate::memory::human;
        let mut parts = format!(
            "the model and data {}, the information buffer after {steps} steps up to {}",
            h(base),
            h(buffer(steps))
        );
        if run == ExactRun::StoredTrajectory {
            parts += &format!(", check-grad's stored trajectory {}", h(trajectory(steps)));
        }
        let what = format!(
            "{}: an exact run of inner.steps = {steps} ({parts})",
            self.config.file.display()
        );
        // Both grow linearly with T: the steps that fit, about.
        let (one, at_t) = (total(1), total(steps));
        let hint = if one >= limit || steps <= 1 {
            "use a smaller model or batch, or a higher --memory-limit".to_string()
        } else {
            let per_step = at_t.saturating_sub(one) as f64 / (steps - 1) as f64;
            let fit = 1 + ((limit - one) as f64 / per_step) as u64;
            format!("use fewer inner.steps (about {fit} fit) or a higher --memory-limit")
        };
        crate::memory::ensure_fits_or(at_t, &what, &hint)
    }

    /// Inner steps T.
    pub fn steps(&self) -> usize {
        self.config.inner.steps
    }
}

/// The runs of an outer loop: iteration k trains the prepared problem, with inner seed
/// `inner.seed + k` when `outer.resample` (so ε and the batch order change from one
/// iteration to the next), else with `inner.seed` every time.
pub struct Runs<'a> {
    exp: &'a Experiment,
    run: Prepared<'a>,
    seed: u64,
}

impl<'a> Runs<'a> {
    /// The runs of `exp`'s outer loop, from its prepared run.
    pub fn new(exp: &'a Experiment, run: Prepared<'a>) -> Self {
        Runs {
            seed: exp.config.inner_seed(),
            exp,
            run,
        }
    }

    /// The same runs, ticking `progress` through each inner run's steps (a progress bar's
    /// counter; `None` ticks nothing).
    pub fn with_progress(mut self, progress: Option<StepProgress>) -> Self {
        self.run.ctx.progress = progress;
        self
    }

    /// The inner seed of iteration `k`.
    pub fn seed_of(&self, k: usize) -> u64 {
        let base = self.exp.config.inner_seed();
        if self.exp.config.outer.resample {
            base.wrapping_add(k as u64)
        } else {
            base
        }
    }
}

impl<'a> crate::tune::Inner for Runs<'a> {
    type Obj = Problem<'a>;

    fn at<'s>(
        &'s mut self,
        k: usize,
        hypers: &'s Hypers,
    ) -> crate::Result<(&'s mut Problem<'a>, crate::hypergrad::Setup<'s>)> {
        let seed = self.seed_of(k);
        if seed != self.seed {
            self.exp.reseed(&mut self.run, seed)?;
            self.seed = seed;
        }
        Ok((&mut self.run.problem, self.run.ctx.setup(hypers)))
    }

    fn too_big(&self, hypers: &Hypers) -> crate::Result<Option<String>> {
        let need = self.exp.reversal_bytes(hypers, &self.run.ctx.layout);
        let buffer = need.saturating_sub(self.exp.estimate_bytes());
        let (limit, source) = crate::memory::limit()?;
        let h = crate::memory::human;
        Ok((need > limit).then(|| {
            format!(
                "an exact run of {} steps at these hyperparameters needs about {} of memory \
                 (its information buffer up to {}), {} more than the limit of {} ({source}); \
                 the tuner steps back toward the last point that fit, a higher \
                 --memory-limit lets it go further",
                self.exp.steps(),
                h(need),
                h(buffer),
                h(need - limit),
                h(limit)
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypergrad::reverse::hypergradient;

    /// An experiment on the digits data with `inner` (plus a data path and a small network).
    fn digits(dir: &std::path::Path, inner: serde_json::Value) -> Experiment {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv");
        let config = serde_json::json!({
            "seed": 0,
            "data": { "train": data, "validation_fraction": 0.2, "label_column": "label",
                      "standardize": true },
            "model": { "hidden": [4], "activation": "tanh", "init_scale": 1.0 },
            "inner": inner,
        });
        let path = dir.join("c.json");
        std::fs::write(&path, config.to_string()).unwrap();
        Experiment::load(&path).unwrap()
    }

    /// The bound the memory check counts holds the buffer of real runs of every reversible
    /// optimizer, constant and scheduled decays, short runs (no word yet) and longer ones,
    /// and is not far above it.
    #[test]
    fn the_buffer_bound_holds_real_runs_of_every_reversible_optimizer() {
        let dir = tempfile::tempdir().unwrap();
        let base = serde_json::json!({ "steps": 0, "batch_size": 10, "shuffle": true });
        let mut cases = Vec::new();
        for steps in [30, 400] {
            for extra in [
                serde_json::json!({ "optimizer": "momentum", "alpha": 0.1, "gamma": 0.9 }),
                serde_json::json!({ "optimizer": "momentum", "alpha": 0.1,
                                    "gamma": { "knots": 3, "values": [[0.3], [0.95], [0.6]] } }),
                serde_json::json!({ "optimizer": "adam", "alpha": 0.001, "beta1": 0.5,
                                    "beta2": 0.999 }),
                serde_json::json!({ "optimizer": "rmsprop", "alpha": 0.001, "gamma": 0.5,
                                    "rho": 0.99 }),
            ] {
                let mut inner = base.clone();
                for (k, v) in extra.as_object().unwrap() {
                    inner[k] = v.clone();
                }
                inner["steps"] = steps.into();
                cases.push(inner);
            }
        }
        let mut optimizers = std::collections::BTreeSet::new();
        for inner in cases {
            let exp = digits(dir.path(), inner.clone());
            let mut run = exp.prepare().unwrap();
            let hypers = run.hypers.clone();
            let h = hypergradient(&mut run.problem, run.ctx.setup(&hypers)).unwrap();
            let bound = run
                .ctx
                .optimizer
                .buffer_bound(&hypers, &run.ctx.layout, run.ctx.steps)
                .unwrap()
                .bytes();
            assert!(
                bound >= h.info_buffer_bytes,
                "{inner}: {bound} < {}",
                h.info_buffer_bytes
            );
            assert!(
                (bound as f64) < 1.5 * h.info_buffer_bytes as f64 + 4096.0,
                "{inner}: {bound} vs {}",
                h.info_buffer_bytes
            );
            optimizers.insert(run.ctx.optimizer.to_string());
        }
        let reversible: std::collections::BTreeSet<String> = crate::hyper::OptimizerId::ALL
            .into_iter()
            .filter(|o| o.info().reversible)
            .map(|o| o.to_string())
            .collect();
        assert_eq!(optimizers, reversible);
    }

    #[test]
    fn an_exact_run_too_long_for_the_limit_is_refused_while_a_float_run_loads() {
        let dir = tempfile::tempdir().unwrap();
        // Loading and preparing are all a float run checks: no buffer, no refusal.
        let exp = digits(
            dir.path(),
            serde_json::json!({ "optimizer": "momentum", "steps": 1_000_000_000_usize,
                                "batch_size": 50, "alpha": 0.1, "gamma": 0.01 }),
        );
        assert!(exp.prepare().is_ok());
        // 1e9 steps × 310 parameters × log₂(100) bits: about 240 GiB, over any limit.
        let e = exp.require_reversible().unwrap_err().to_string();
        for part in [
            "c.json",
            "inner.steps = 1000000000",
            "information buffer",
            "GiB of memory",
            "fewer inner.steps",
            "--memory-limit",
        ] {
            assert!(e.contains(part), "{e}");
        }
        let e = exp
            .ensure_exact_fits(ExactRun::StoredTrajectory)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stored trajectory"), "{e}");
    }
}
