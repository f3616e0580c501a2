//! Customer lifetime value plugin: BG/NBD for the purchase process and
//! Gamma-Gamma for spend per order, fitted by maximum likelihood over the
//! shop's customers' order statistics; per customer, the probability they
//! are still a customer, their expected purchases over any horizon, their
//! expected order value and their discounted CLV, plus the "at risk" and
//! "predicted high value" segments. See README.md for what each number
//! means and when not to trust it.
//!
//! The math (`bgnbd`, `gamma_gamma`, `special`, `optimize`) is plain Rust,
//! tested natively; `model` turns order statistics into model inputs and
//! predictions; the plugin glue at the bottom is all that touches the SDK.

pub mod bgnbd;
pub mod config;
pub mod gamma_gamma;
pub mod model;
pub mod optimize;
pub mod simulate;
pub mod special;

use patron_sdk::{Error, PredictionBatch, Predictions, Predictor, Result, Timestamp};

/// Why a model could not be fitted. Never a NaN: every degenerate shop ends here.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// Input outside what the model takes (a time after the end of observation, NaN).
    BadInput(String),
    /// Fewer customers than a fit needs.
    TooFewCustomers { have: usize, need: usize },
    /// Too few customers bought more than once to tell purchase rate from dropout.
    TooFewRepeatCustomers { have: usize, need: usize },
    /// Every customer's first purchase is at the end of observation.
    NoObservationTime,
    /// Too few repeat buyers with a positive average spend for Gamma-Gamma.
    TooFewSpenders { have: usize, need: usize },
    /// The optimizer did not converge.
    NotConverged { model: &'static str, evaluations: usize },
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadInput(m) => write!(f, "bad input: {m}"),
            Self::TooFewCustomers { have, need } => {
                write!(f, "{have} customers with a paid order; the model needs at least {need}")
            }
            Self::TooFewRepeatCustomers { have, need } => write!(
                f,
                "{have} customers ordered more than once; at least {need} are needed to tell how often customers buy from how soon they leave"
            ),
            Self::NoObservationTime => {
                write!(f, "every customer's first order is at the end of observation: there is no history to fit")
            }
            Self::TooFewSpenders { have, need } => write!(
                f,
                "{have} repeat customers with a positive average order; spend per order needs at least {need}"
            ),
            Self::NotConverged { model, evaluations } => {
                write!(f, "the {model} fit did not converge after {evaluations} evaluations")
            }
        }
    }
}

impl std::error::Error for FitError {}

impl FitError {
    /// The error code the plugin reports to the host.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "bad-input",
            Self::NotConverged { .. } => "not-converged",
            _ => "not-enough-data",
        }
    }
}

fn load_config() -> Result<config::Config> {
    let config: config::Config = patron_sdk::read_config()?;
    match config.problem() {
        Some(problem) => Err(Error::new("bad-config", problem)),
        None => Ok(config),
    }
}

/// The plugin.
pub struct ClvPlugin;

impl Predictor for ClvPlugin {
    fn fit(state: Option<Vec<u8>>, batch: PredictionBatch, as_of: Timestamp, last: bool) -> Result<Vec<u8>> {
        let config = load_config()?;
        model::fit_step(&config, state.as_deref(), &batch, as_of, last)
    }

    fn predict(
        model: Vec<u8>,
        batch: PredictionBatch,
        as_of: Timestamp,
        horizon_days: Vec<u32>,
    ) -> Result<Predictions> {
        let config = load_config()?;
        let model = model::Model::decode(&model)?;
        model.predict(&config, &batch, as_of, &horizon_days)
    }
}

patron_sdk::export!(predictor: ClvPlugin);
