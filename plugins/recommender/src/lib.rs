//! Recommender plugin: best sellers over a window (overall and per
//! category), "frequently bought together" from co-purchase counts
//! normalised by cosine or lift, "for you" from the shopper's own history,
//! and "recently viewed" — one strategy per placement, from the install's
//! config. See README.md for the host contract and the config.

pub mod codec;
pub mod config;
pub mod model;
pub mod serve;
mod sort;

use patron_sdk::{Error, Level, Order, Product, RecommendRequest, Recommender, Result, ScoredItem, log, now};

use crate::config::Config;
use crate::model::{Counts, ModelView};

/// The install's config, checked.
pub fn load_config() -> Result<Config> {
    let config: Config = patron_sdk::read_config()?;
    match config.problem() {
        Some(problem) => Err(Error::new("bad-config", problem)),
        None => Ok(config),
    }
}

/// Fold `orders` and `catalogue` into `model` (`None` or empty: a new model)
/// under `config`, at `now`.
pub fn train(
    config: &Config,
    model: Option<&[u8]>,
    orders: &[Order],
    catalogue: &[Product],
    now: i64,
) -> Result<Vec<u8>> {
    let mut counts = match model.filter(|m| !m.is_empty()) {
        Some(blob) => Counts::decode(blob)?,
        None => Counts::new(config),
    };
    if counts.window_days() != config.window_days {
        log(
            Level::Warn,
            &format!(
                "model counts a {}-day window, config asks for {}: the new window applies from the next full rebuild",
                counts.window_days(),
                config.window_days
            ),
        );
    }
    counts.fold(orders, catalogue, now, config)?;
    counts.encode(config)
}

/// The answer to `request` from `model` (empty: no model yet) under `config`.
pub fn recommend(config: &Config, model: &[u8], request: &RecommendRequest) -> Result<Vec<ScoredItem>> {
    let view = if model.is_empty() { None } else { Some(ModelView::parse(model)?) };
    Ok(serve::recommend(view.as_ref(), config, request))
}

/// The plugin.
pub struct RecommenderPlugin;

impl Recommender for RecommenderPlugin {
    fn train(model: Option<Vec<u8>>, orders: Vec<Order>, catalogue: Vec<Product>) -> Result<Vec<u8>> {
        train(&load_config()?, model.as_deref(), &orders, &catalogue, now())
    }

    fn recommend(model: Vec<u8>, request: RecommendRequest) -> Result<Vec<ScoredItem>> {
        recommend(&load_config()?, &model, &request)
    }
}

patron_sdk::export!(recommender: RecommenderPlugin);

#[cfg(test)]
mod tests;
