//! # Hyperparameters: one registry of kinds, and blocks of entries
//!
//! Every hyperparameter is a **block** (SPEC §2.3): a [`Kind`] (α, γ, β₁, β₂, ε, l2,
//! init_scale), a
//! shape — [`Per`] `all` / `layer` / `array` / `weight` and, for the schedulable kinds, `K`
//! knots over the T steps — and its entries as one flat vector ([`Block`]). Everything that
//! differs between kinds lives in one table, [`Kind::info`]: the config field, the warp the
//! outer optimizer moves in, the valid range, the `search` range, which shapes are allowed
//! and whether the block covers biases. Values, hypergradients, warps, CSV columns, JSON and
//! `--best` all come from that table and from [`Block`]; adding a kind is one entry here plus
//! its term in the adjoint.
//!
//! Warps (SPEC §2.4), with `J = dh/du` the Jacobian the outer optimizer needs:
//!
//! ```text
//! log:    u = ln h              h = e^u              J = h
//! logit:  u = ln(h/(1−h))       h = 1/(1+e^−u)       J = h·(1−h)
//! box:    u = (h − μ_f)/σ_f     h = clamp(μ_f + σ_f·u, lo_f, hi_f)     J = σ_f
//! ```
//!
//! The box warp is the `input` block's (SPEC §2.5): per feature f of the learnable rows, the
//! real training rows' mean μ_f, std σ_f (1 where it is 0) and range [lo_f, hi_f], kept in
//! the block's [`FeatureBox`].
//!
//! One file per idea: [`block`] the [`Block`] type and the run's [`Hypers`]; [`shape`] a
//! block's groups over the network and one value per parameter; [`schedule`] knots over the
//! steps and the chain rule into them; [`json`] the nested values of configs, `--best` and
//! reports; [`spec`] a block as written in a config; [`optimizer`] the inner optimizers'
//! table (names, own kinds, state vectors).

pub mod block;
pub mod json;
pub mod optimizer;
pub mod schedule;
pub mod shape;
pub mod spec;

pub use block::{Block, FeatureBox, Hypers};
pub use optimizer::OptimizerId;
pub use shape::Group;
pub use spec::Spec;

use serde::{Deserialize, Serialize};

use crate::error::show;

/// The largest momentum γ accepted: the exact arithmetic represents γ as a rational n/2¹⁶,
/// and 0.9999 is the largest value it represents faithfully.
pub const MAX_GAMMA: f64 = 0.9999;
/// Smallest γ the exact arithmetic represents, 1/2^16.
pub const MIN_GAMMA: f64 = 1.0 / 65536.0;

/// A kind of hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Learning rate α (`inner.alpha`).
    Alpha,
    /// Momentum γ (`inner.gamma`).
    Gamma,
    /// Adam's first-moment decay β₁ (`inner.beta1`).
    Beta1,
    /// Adam's second-moment decay β₂ (`inner.beta2`).
    Beta2,
    /// Adam's and RMSprop's ε (`inner.eps`), added to the root of the second moment.
    Eps,
    /// RMSprop's mean-square decay ρ (`inner.rho`).
    Rho,
    /// L2 penalty on the weights (`inner.l2`).
    L2,
    /// Initial weight scale (`model.init_scale`): θ₀ = init_scale ⊙ ε.
    InitScale,
    /// One loss weight c_i ∈ (0, 1) per training row (`inner.example_weight`).
    ExampleWeight,
    /// The features of the learnable training rows, in raw units (`data.input`, SPEC §2.5).
    Input,
}

/// The shape of a block: which parameters share an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// One value for every parameter.
    #[default]
    All,
    /// One per layer: W_l and b_l share it.
    Layer,
    /// One per array W0, b0, W1, b1, … (Maclaurin et al.'s parameter groups).
    Array,
    /// One per weight entry (l2 only).
    Weight,
    /// One per training row (example_weight, which has no other shape).
    Row,
}

impl Per {
    /// Name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Per::All => "all",
            Per::Layer => "layer",
            Per::Array => "array",
            Per::Weight => "weight",
            Per::Row => "row",
        }
    }
}

/// How the outer optimizer sees a hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warp {
    /// u = ln h.
    Log,
    /// u = logit h.
    Logit,
    /// u = (h − μ_f)/σ_f, h kept in the feature's box [lo_f, hi_f]: per entry, from the
    /// block's [`FeatureBox`] ([`Block::warp_at`]).
    Box,
}

/// Everything that distinguishes one kind from another.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// Name in configs, CSV headers and JSON.
    pub name: &'static str,
    /// Config section holding it (`inner` or `model`).
    pub section: &'static str,
    /// Warp of the outer optimizer.
    pub warp: Warp,
    /// Smallest valid value; `lower_open` says whether it is excluded.
    pub lower: f64,
    /// Whether `lower` itself is excluded.
    pub lower_open: bool,
    /// Largest valid value; `upper_open` says whether it is excluded.
    pub upper: f64,
    /// Whether `upper` itself is excluded.
    pub upper_open: bool,
    /// Range `search` draws from (log-uniform for log warps, uniform otherwise).
    pub search: (f64, f64),
    /// May have knots (a schedule over the steps).
    pub schedulable: bool,
    /// Allowed shapes.
    pub shapes: &'static [Per],
    /// Covers weights only (biases unpenalised): `layer` and `array` are then the same.
    pub weights_only: bool,
    /// A decay (γ, β₁, β₂, ρ): exact runs use it as the rational n/2¹⁶ with an information
    /// buffer, and report that effective value.
    pub decay: bool,
    /// The value when the config leaves the block out (NaN: the block is then absent).
    pub default: f64,
}

const ALPHA: Info = Info {
    name: "alpha",
    section: "inner",
    warp: Warp::Log,
    lower: 0.0,
    lower_open: true,
    upper: f64::MAX,
    upper_open: false,
    search: (1e-3, 10.0),
    schedulable: true,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: false,
    default: 0.1,
};
const GAMMA: Info = Info {
    name: "gamma",
    section: "inner",
    warp: Warp::Logit,
    lower: 0.0,
    lower_open: false,
    upper: MAX_GAMMA,
    upper_open: false,
    search: (MIN_GAMMA, MAX_GAMMA),
    schedulable: true,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: true,
    default: 0.9,
};
// ρ is a decay like γ; SPEC §2.4 searches it in [0.9, 0.9999].
const RHO: Info = Info {
    name: "rho",
    section: "inner",
    warp: Warp::Logit,
    lower: 0.0,
    lower_open: true,
    upper: MAX_GAMMA,
    upper_open: false,
    search: (0.9, MAX_GAMMA),
    schedulable: true,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: true,
    default: 0.99,
};
// β₁ and β₂ are decays like γ, with γ's representable range (0, 0.9999]. SPEC §2.4's
// search range for β₂ reaches 0.99999, which n/2¹⁶ cannot represent; it stops at 0.9999.
const BETA1: Info = Info {
    name: "beta1",
    section: "inner",
    warp: Warp::Logit,
    lower: 0.0,
    lower_open: true,
    upper: MAX_GAMMA,
    upper_open: false,
    search: (MIN_GAMMA, 0.999),
    schedulable: true,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: true,
    default: 0.9,
};
const BETA2: Info = Info {
    name: "beta2",
    section: "inner",
    warp: Warp::Logit,
    lower: 0.0,
    lower_open: true,
    upper: MAX_GAMMA,
    upper_open: false,
    search: (0.9, MAX_GAMMA),
    schedulable: true,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: true,
    default: 0.999,
};
const EPS: Info = Info {
    name: "eps",
    section: "inner",
    warp: Warp::Log,
    lower: 0.0,
    lower_open: true,
    upper: f64::MAX,
    upper_open: false,
    search: (1e-10, 1e-2),
    schedulable: false,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: false,
    default: 1e-8,
};
const L2: Info = Info {
    name: "l2",
    section: "inner",
    warp: Warp::Log,
    lower: 0.0,
    lower_open: false,
    upper: f64::MAX,
    upper_open: false,
    search: (1e-7, 1e-1),
    schedulable: false,
    shapes: &[Per::All, Per::Layer, Per::Array, Per::Weight],
    weights_only: true,
    decay: false,
    default: 0.0,
};
const INIT_SCALE: Info = Info {
    name: "init_scale",
    section: "model",
    warp: Warp::Log,
    lower: 0.0,
    lower_open: true,
    upper: f64::MAX,
    upper_open: false,
    search: (0.05, 10.0),
    schedulable: false,
    shapes: &[Per::All, Per::Layer, Per::Array],
    weights_only: false,
    decay: false,
    default: 1.0,
};
const EXAMPLE_WEIGHT: Info = Info {
    name: "example_weight",
    section: "inner",
    warp: Warp::Logit,
    lower: 0.0,
    lower_open: true,
    upper: 1.0,
    upper_open: true,
    // Not searched: one shared weight only rescales the loss (SPEC §2.4).
    search: (f64::NAN, f64::NAN),
    schedulable: false,
    shapes: &[Per::Row],
    weights_only: false,
    decay: false,
    default: f64::NAN,
};

// The learnable rows' features: finite numbers, kept in each feature's box (SPEC §2.5), which
// the data gives; `Block::warp_at` reads it from the block.
const INPUT: Info = Info {
    name: "input",
    section: "data",
    warp: Warp::Box,
    lower: f64::MIN,
    lower_open: false,
    upper: f64::MAX,
    upper_open: false,
    search: (f64::NAN, f64::NAN),
    schedulable: false,
    shapes: &[Per::Row],
    weights_only: false,
    decay: false,
    default: f64::NAN,
};

impl Kind {
    /// Every kind: the optimizers' own (α, γ, β₁, β₂, ε, ρ), then l2, init_scale,
    /// example_weight and input.
    pub const ALL: [Kind; 10] = [
        Kind::Alpha,
        Kind::Gamma,
        Kind::Beta1,
        Kind::Beta2,
        Kind::Eps,
        Kind::Rho,
        Kind::L2,
        Kind::InitScale,
        Kind::ExampleWeight,
        Kind::Input,
    ];

    /// The registry entry.
    pub fn info(self) -> &'static Info {
        match self {
            Kind::Alpha => &ALPHA,
            Kind::Gamma => &GAMMA,
            Kind::Beta1 => &BETA1,
            Kind::Beta2 => &BETA2,
            Kind::Eps => &EPS,
            Kind::Rho => &RHO,
            Kind::L2 => &L2,
            Kind::InitScale => &INIT_SCALE,
            Kind::ExampleWeight => &EXAMPLE_WEIGHT,
            Kind::Input => &INPUT,
        }
    }

    /// Name as written in configs and CSV headers.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Dotted config field, e.g. `inner.gamma`.
    pub fn field(self) -> String {
        format!("{}.{}", self.info().section, self.info().name)
    }

    /// `Err(message)` unless `v` is a valid value (`must be in [0, 0.9999], got 1.2`).
    pub fn check(self, v: f64) -> Result<(), String> {
        let i = self.info();
        let above = if i.lower_open {
            v > i.lower
        } else {
            v >= i.lower
        };
        let below = if i.upper_open {
            v < i.upper
        } else {
            v <= i.upper
        };
        if v.is_finite() && above && below {
            return Ok(());
        }
        if i.lower.to_bits() == f64::MIN.to_bits() {
            return Err(format!("must be a finite number, got {}", show(v)));
        }
        let lo = if i.lower_open { "(" } else { "[" };
        let hi = if i.upper.to_bits() == f64::MAX.to_bits() {
            "∞)".to_owned()
        } else if i.upper_open {
            format!("{})", i.upper)
        } else {
            format!("{}]", i.upper)
        };
        Err(format!("must be in {lo}{}, {hi}, got {}", i.lower, show(v)))
    }

    /// Hyperparameter → warped coordinate (a [`Warp::Box`] kind's warp is per entry,
    /// [`Block::warp_at`]; here it is the identity).
    pub fn warp(self, h: f64) -> f64 {
        match self.info().warp {
            Warp::Log => h.ln(),
            Warp::Logit => (h / (1.0 - h)).ln(),
            Warp::Box => h,
        }
    }

    /// Warped coordinate → hyperparameter, kept in the kind's valid range (γ within
    /// [[`MIN_GAMMA`], [`MAX_GAMMA`]], the momenta the exact arithmetic represents; logit
    /// kinds strictly inside (0, 1)).
    pub fn unwarp(self, u: f64) -> f64 {
        match self.info().warp {
            Warp::Box => u,
            Warp::Log => u.exp(),
            Warp::Logit => {
                let h = 1.0 / (1.0 + (-u).exp());
                match self {
                    // γ, β₁, β₂: the rationals n/2^16 the exact arithmetic represents.
                    k if k.info().decay => h.clamp(MIN_GAMMA, MAX_GAMMA),
                    // Kept strictly inside (0, 1): a weight of exactly 0 or 1 has an
                    // infinite warped coordinate and would never move again.
                    _ => h.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0),
                }
            }
        }
    }

    /// `dh/du` at the value `h`.
    pub fn jacobian(self, h: f64) -> f64 {
        match self.info().warp {
            Warp::Log => h,
            Warp::Logit => h * (1.0 - h),
            Warp::Box => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warp_round_trips_and_jacobian_matches() {
        for (k, v) in [
            (Kind::Alpha, 0.3),
            (Kind::Gamma, 0.9),
            (Kind::Beta1, 0.8),
            (Kind::Beta2, 0.999),
            (Kind::Eps, 1e-8),
            (Kind::L2, 1e-3),
            (Kind::InitScale, 2.0),
        ] {
            let u = k.warp(v);
            assert!((k.unwarp(u) - v).abs() < 1e-12 * v.max(1.0));
            let e = 1e-6;
            let fd = (k.unwarp(u + e) - k.unwarp(u - e)) / (2.0 * e);
            assert!((fd - k.jacobian(v)).abs() < 1e-8 * v.max(1.0), "{k:?}");
        }
        assert!(Kind::Gamma.unwarp(50.0) <= MAX_GAMMA);
        // Every decay stays representable, or a tuned β would write a --best config that
        // does not load.
        for k in Kind::ALL.into_iter().filter(|k| k.info().decay) {
            assert!(k.unwarp(50.0) <= MAX_GAMMA, "{k:?}");
            assert!(k.check(k.unwarp(50.0)).is_ok(), "{k:?}");
            assert!(k.check(k.unwarp(-800.0)).is_ok(), "{k:?}");
        }
        assert!(Kind::Gamma.unwarp(-800.0) >= MIN_GAMMA);
    }

    #[test]
    fn names_match_serde() {
        for k in Kind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
    }

    #[test]
    fn ranges() {
        assert!(Kind::Gamma.check(0.9999).is_ok());
        let e = Kind::Gamma.check(1.2).unwrap_err();
        assert_eq!(e, "must be in [0, 0.9999], got 1.2");
        assert!(Kind::L2.check(0.0).is_ok());
        assert_eq!(
            Kind::ExampleWeight.check(1.0).unwrap_err(),
            "must be in (0, 1), got 1"
        );
        assert!(Kind::ExampleWeight.check(0.999).is_ok());
        assert!(Kind::Alpha.check(0.0).is_err());
        assert!(Kind::Alpha.check(f64::INFINITY).is_err());
        assert_eq!(
            Kind::L2.check(-1.0).unwrap_err(),
            "must be in [0, ∞), got -1"
        );
    }
}
