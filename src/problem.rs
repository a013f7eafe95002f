//! # The inner training problem
//!
//! Binds an [`Mlp`], the training and validation sets and the mini-batch schedule into an
//! [`Objective`]: `L_t(θ)` is the loss on batch `t`, the meta-objective `f(θ)` is the mean
//! cross-entropy over the whole validation set (no penalty, SPEC §3). Buffers are allocated
//! once here, so the optimizers' per-step calls allocate nothing.

use crate::data::Data;
use crate::data::batches::BatchSchedule;
use crate::model::{Activation, Layout, Mlp, Objective, Workspace};

/// Validation and full-training-set evaluations are done in chunks of this many rows.
const EVAL_CHUNK: usize = 256;

/// Model + data + batch schedule.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    mlp: Mlp,
    data: &'a Data,
    schedule: BatchSchedule,
    rows: Vec<usize>,
    batch_ws: Workspace,
    eval_ws: Workspace,
    mask: Vec<f64>,
    scratch: Vec<f64>,
}

impl<'a> Problem<'a> {
    /// A problem with hidden sizes `hidden`, batches of `batch_size` rows (shuffled per
    /// epoch from `seed` if `shuffle`).
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
        let layout = Layout::new(&sizes);
        let mask = layout.weight_mask();
        let n = layout.len();
        Problem {
            batch_ws: Workspace::new(&layout, batch_size),
            eval_ws: Workspace::new(&layout, EVAL_CHUNK),
            mlp: Mlp::new(layout, activation),
            data,
            schedule: BatchSchedule::new(data.train.y.len(), batch_size, shuffle, seed),
            rows: Vec::with_capacity(batch_size),
            mask,
            scratch: vec![0.0; n],
        }
    }

    /// The model.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The parameter layout.
    pub fn layout(&self) -> &Layout {
        self.mlp.layout()
    }

    /// Mean cross-entropy and accuracy on the whole training set (no penalty).
    pub fn train_metrics(&mut self, theta: &[f64]) -> (f64, f64) {
        let d = &self.data.train;
        self.mlp
            .evaluate(theta, d.x.view(), &d.y, &mut self.eval_ws)
    }

    /// Mean cross-entropy and accuracy on the validation set.
    pub fn validation_metrics(&mut self, theta: &[f64]) -> (f64, f64) {
        let d = &self.data.validation;
        self.mlp
            .evaluate(theta, d.x.view(), &d.y, &mut self.eval_ws)
    }

    /// Mean cross-entropy and accuracy on the test set; `None` without one. Reported only:
    /// nothing is tuned on it.
    pub fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        let d = self.data.test.as_ref()?;
        Some(
            self.mlp
                .evaluate(theta, d.x.view(), &d.y, &mut self.eval_ws),
        )
    }

    fn load_batch(&mut self, step: usize) {
        self.schedule.rows_into(step, &mut self.rows);
        let d = &self.data.train;
        self.batch_ws.gather(d.x.view(), &d.y, &self.rows);
    }
}

impl Objective for Problem<'_> {
    fn dim(&self) -> usize {
        self.mask.len()
    }

    fn penalty_mask(&self) -> &[f64] {
        &self.mask
    }

    fn grad_into(&mut self, step: usize, theta: &[f64], l2: f64, grad: &mut [f64]) -> f64 {
        self.load_batch(step);
        let ce = self.mlp.grad_into(theta, &mut self.batch_ws, grad);
        ce + penalty(&self.mask, l2, theta, grad)
    }

    fn grad_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        l2: f64,
        u: &[f64],
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        self.load_batch(step);
        let ce = self
            .mlp
            .grad_hvp_into(theta, u, &mut self.batch_ws, grad, hu);
        penalty(&self.mask, l2, u, hu);
        ce + penalty(&self.mask, l2, theta, grad)
    }

    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        let d = &self.data.validation;
        self.mlp.full_grad_into(
            theta,
            d.x.view(),
            &d.y,
            &mut self.eval_ws,
            grad,
            &mut self.scratch,
        )
    }

    fn train_loss(&mut self, theta: &[f64]) -> f64 {
        self.train_metrics(theta).0
    }
}

/// Adds `l2·mask ⊙ x` to `out`; returns `½·l2·Σ mask·x²`.
fn penalty(mask: &[f64], l2: f64, x: &[f64], out: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    for ((o, &m), &x) in out.iter_mut().zip(mask).zip(x) {
        *o += l2 * m * x;
        sum += m * x * x;
    }
    0.5 * l2 * sum
}

/// Largest network revgrad builds (about 400 MB per parameter-sized vector; a run keeps
/// about ten of them).
pub const MAX_PARAMETERS: usize = 50_000_000;

/// A loaded experiment: the validated config and its data, from which problems, the
/// initial-weight noise and the starting hyperparameters are built.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The validated config.
    pub config: crate::config::Config,
    /// Training, validation and test sets, standardised.
    pub data: Data,
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
        let mut sizes = vec![data.n_features];
        sizes.extend_from_slice(&config.model.hidden);
        sizes.push(data.n_classes);
        let params = sizes.windows(2).try_fold(0usize, |acc, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(acc)
        });
        match params {
            Some(p) if p <= MAX_PARAMETERS => Ok(Experiment { config, data }),
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

    /// The inner problem: model, data and batch schedule of the config.
    pub fn problem(&self) -> Problem<'_> {
        let (m, i) = (&self.config.model, &self.config.inner);
        Problem::new(
            &self.data,
            &m.hidden,
            m.activation,
            i.batch_size,
            i.shuffle,
            self.config.seed,
        )
    }

    /// Initial-weight noise ε: from `model.init_file` if set, else drawn from `seed`.
    ///
    /// # Errors
    /// npz errors naming the file and key.
    pub fn init_noise(&self, layout: &Layout) -> crate::Result<Vec<f64>> {
        match &self.config.model.init_file {
            Some(path) => crate::model::npz::read_params(path, layout),
            None => Ok(crate::model::init_noise(layout, self.config.seed)),
        }
    }

    /// α, γ, l2 and init_scale as configured.
    pub fn hyperparams(&self) -> crate::optim::Hyperparams {
        let i = &self.config.inner;
        crate::optim::Hyperparams {
            alpha: i.alpha,
            gamma: i.gamma,
            l2: i.l2,
            init_scale: self.config.model.init_scale,
        }
    }

    /// An error unless the inner optimizer is momentum: the commands that reverse training
    /// (hypergrad, check-grad, tune, train --exact) need it.
    ///
    /// # Errors
    /// A config error naming `inner.optimizer`.
    pub fn require_momentum(&self) -> crate::Result<()> {
        if self.config.inner.optimizer == crate::config::InnerOptimizer::Sgd {
            return Err(crate::Error::config(
                &self.config.file,
                "inner.optimizer",
                "must be \"momentum\" for exact arithmetic and hypergradients (plain SGD is not \
                 exactly reversible), got \"sgd\"",
            ));
        }
        Ok(())
    }

    /// Inner steps T.
    pub fn steps(&self) -> usize {
        self.config.inner.steps
    }
}
