//! # The inner optimizers' table: names, own hyperparameter kinds, state vectors
//!
//! One row per inner optimizer ([`OptimizerId::info`]): its name in configs and CSV files,
//! its own hyperparameter kinds in SPEC §4.1's column order, the state vectors it keeps
//! besides θ, whether it has an exactly reversible form and whether `inner.optimizer` may
//! name it. Config validation (which blocks belong to which optimizer), CSV columns, the
//! memory estimate and `verify-reversal`'s rows read this table; the code of each optimizer,
//! and the dispatch from an [`OptimizerId`] to it, is [`crate::optim::registry`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Kind;

/// What the rest of revgrad needs to know about an optimizer, besides its code.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// Name in configs (`inner.optimizer`), CSV files and messages.
    pub name: &'static str,
    /// Its own hyperparameter kinds, in SPEC §4.1's column order (α first, then the decay
    /// that `verify-reversal`'s `gamma` column and `--gammas` set, then the rest).
    pub kinds: &'static [Kind],
    /// State vectors besides θ (momentum: v; Adam: m, s; RMSprop: s, b).
    pub aux_vectors: usize,
    /// Has an exactly reversible form (the commands that reverse training need it).
    pub reversible: bool,
    /// May be named by `inner.optimizer` (Nesterov momentum is a `verify-reversal` exhibit
    /// only).
    pub configurable: bool,
}

impl Info {
    /// State vectors per parameter, θ included: what a stored trajectory keeps per step.
    pub fn state_vectors(&self) -> usize {
        1 + self.aux_vectors
    }
}

const SGD: Info = Info {
    name: "sgd",
    // Momentum's kinds (γ unused), so a momentum config runs as plain SGD by its name alone.
    kinds: &[Kind::Alpha, Kind::Gamma],
    aux_vectors: 0,
    reversible: false,
    configurable: true,
};
const MOMENTUM: Info = Info {
    name: "momentum",
    kinds: &[Kind::Alpha, Kind::Gamma],
    aux_vectors: 1,
    reversible: true,
    configurable: true,
};
const NESTEROV: Info = Info {
    name: "nesterov",
    kinds: &[Kind::Alpha, Kind::Gamma],
    aux_vectors: 1,
    reversible: false,
    configurable: false,
};
const ADAM: Info = Info {
    name: "adam",
    kinds: &[Kind::Alpha, Kind::Beta1, Kind::Beta2, Kind::Eps],
    aux_vectors: 2,
    reversible: true,
    configurable: true,
};
const RMSPROP: Info = Info {
    name: "rmsprop",
    kinds: &[Kind::Alpha, Kind::Gamma, Kind::Rho, Kind::Eps],
    aux_vectors: 2,
    reversible: true,
    configurable: true,
};

/// The registry's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OptimizerId {
    /// Plain SGD (float only).
    Sgd,
    /// SGD with momentum (SPEC §3.2), the default.
    #[default]
    Momentum,
    /// Nesterov momentum (float only; a `verify-reversal` exhibit).
    Nesterov,
    /// Adam (SPEC §3.4).
    Adam,
    /// RMSprop with momentum (SPEC §3.6).
    Rmsprop,
}

impl OptimizerId {
    /// Every entry, in `verify-reversal`'s row order.
    pub const ALL: [OptimizerId; 5] = [
        OptimizerId::Sgd,
        OptimizerId::Momentum,
        OptimizerId::Nesterov,
        OptimizerId::Adam,
        OptimizerId::Rmsprop,
    ];

    /// The entry's table row.
    pub fn info(self) -> Info {
        match self {
            OptimizerId::Sgd => SGD,
            OptimizerId::Momentum => MOMENTUM,
            OptimizerId::Nesterov => NESTEROV,
            OptimizerId::Adam => ADAM,
            OptimizerId::Rmsprop => RMSPROP,
        }
    }

    /// Name in configs and CSV files.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Its own hyperparameter kinds, in column order.
    pub fn kinds(self) -> &'static [Kind] {
        self.info().kinds
    }

    /// The entry named `name` (any entry, configurable or not).
    pub fn from_name(name: &str) -> Option<OptimizerId> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The names `inner.optimizer` accepts, quoted and comma-separated, for messages.
    pub fn configurable_names() -> String {
        Self::ALL
            .into_iter()
            .filter(|o| o.info().configurable)
            .map(|o| format!("`{}`", o.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names `inner.optimizer` accepts for exact arithmetic, quoted and joined by "or",
    /// for messages.
    pub fn reversible_names() -> String {
        Self::ALL
            .into_iter()
            .filter(|o| o.info().reversible && o.info().configurable)
            .map(|o| format!("\"{}\"", o.name()))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// Why a decay block of `kind` with an entry 0 cannot run in exact arithmetic.
    pub fn zero_decay_reason(self, kind: Kind) -> String {
        format!(
            "with {} = 0 inner.optimizer \"{self}\" is not exactly reversible (the step forgets \
             the state it would be undone from, as plain SGD does); exact arithmetic and \
             hypergradients need every entry > 0",
            kind.name()
        )
    }

    /// Every kind some optimizer owns (the optimizer blocks of the inner section).
    pub fn any_owns(kind: Kind) -> bool {
        Self::ALL.into_iter().any(|o| o.kinds().contains(&kind))
    }
}

impl std::fmt::Display for OptimizerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for OptimizerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Only the configurable entries deserialize (`inner.optimizer`); the message lists them.
impl<'de> Deserialize<'de> for OptimizerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match OptimizerId::from_name(&name) {
            Some(o) if o.info().configurable => Ok(o),
            _ => Err(serde::de::Error::custom(format_args!(
                "unknown variant `{name}`, expected one of {}",
                OptimizerId::configurable_names()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_configurable_ones_deserialize() {
        for o in OptimizerId::ALL {
            assert_eq!(OptimizerId::from_name(o.name()), Some(o));
            let json = serde_json::to_string(&o).unwrap();
            let back: Result<OptimizerId, _> = serde_json::from_str(&json);
            assert_eq!(back.is_ok(), o.info().configurable, "{o}");
        }
        let e = serde_json::from_str::<OptimizerId>("\"nesterov\"").unwrap_err();
        assert!(e.to_string().contains("`rmsprop`"), "{e}");
    }

    #[test]
    fn every_entry_starts_with_alpha_and_a_decay() {
        for o in OptimizerId::ALL {
            let k = o.kinds();
            assert_eq!(k[0], Kind::Alpha, "{o}");
            assert!(k[1].info().decay, "{o}");
        }
    }
}
