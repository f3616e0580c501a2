//! The install's configuration (see README.md, "Config"): which strategy each
//! placement uses, the popularity window, the co-purchase measure and the
//! serve-time filters.

use std::collections::BTreeMap;

use patron_sdk::json::{self, Fields, FromJson, Value};
use serde::Deserialize;

/// A way of choosing products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Best sellers over the window: in the context products' categories
    /// first (when there is a context), then overall.
    Popular,
    /// Products most often bought in the same order as the context products,
    /// normalised by [`Similarity`]; falls back to `popular`.
    FrequentlyBoughtTogether,
    /// Neighbours of the shopper's own history (the context products, most
    /// recent first, recent ones weighted higher); falls back to `popular`.
    ForYou,
    /// The context products themselves, in the order given (the shopper's
    /// recent views); no fallback.
    RecentlyViewed,
}

impl Strategy {
    /// The strategy's name in config and directives.
    pub fn name(self) -> &'static str {
        match self {
            Self::Popular => "popular",
            Self::FrequentlyBoughtTogether => "frequently-bought-together",
            Self::ForYou => "for-you",
            Self::RecentlyViewed => "recently-viewed",
        }
    }

    /// The strategy named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Popular, Self::FrequentlyBoughtTogether, Self::ForYou, Self::RecentlyViewed]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// How co-purchase counts are normalised, so best sellers do not dominate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Similarity {
    /// `together(a,b) / sqrt(orders(a) × orders(b))`, in (0, 1].
    Cosine,
    /// `together(a,b) × orders / (orders(a) × orders(b))`: how much more
    /// often than by chance; favours rarer products more than cosine does.
    Lift,
}

/// The install's configuration. Every key is optional. The plugin reads it with
/// [`FromJson`]; `Deserialize` is for native callers (the host's benchmark).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// Strategy per placement name; merged over [`Config::default_placements`].
    pub placements: BTreeMap<String, Strategy>,
    /// Length of the popularity window in days, ending at the newest order.
    pub window_days: u32,
    /// Normalisation of co-purchase counts.
    pub similarity: Similarity,
    /// Orders two products must share to be recommended together.
    pub min_support: u32,
    /// Co-purchased products kept per product in the model.
    pub max_neighbours: u32,
    /// Orders with more distinct products than this are left out of
    /// co-purchase counts (they still count for popularity).
    pub max_basket_size: u32,
    /// At most this many recommended products per category; 0: no cap.
    pub max_per_category: u32,
    /// `for-you`: weight of the history entry at position `i` is `recency-decay^i`.
    pub recency_decay: f64,
    /// `for-you`: history entries read (the most recent ones).
    pub history_length: u32,
    /// `for-you`: weight of a history product itself (buy again, still interested),
    /// beside its co-purchase neighbours (similarity ≤ 1 each).
    pub repeat_weight: f64,
    /// `for-you`: weight of the best sellers of the history's categories, by the
    /// (recency-weighted) share of the history in each category.
    pub taste_weight: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            placements: BTreeMap::new(),
            window_days: 30,
            similarity: Similarity::Cosine,
            min_support: 2,
            max_neighbours: 50,
            max_basket_size: 50,
            max_per_category: 0,
            recency_decay: 0.8,
            history_length: 20,
            repeat_weight: 1.0,
            taste_weight: 1.0,
        }
    }
}

impl FromJson for Strategy {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        value.as_str().and_then(Self::from_name).ok_or_else(|| {
            json::Error::new("expected \"popular\", \"frequently-bought-together\", \"for-you\" or \"recently-viewed\"")
        })
    }
}

impl FromJson for Similarity {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        match value.as_str() {
            Some("cosine") => Ok(Self::Cosine),
            Some("lift") => Ok(Self::Lift),
            _ => Err(json::Error::new("expected \"cosine\" or \"lift\"")),
        }
    }
}

impl FromJson for Config {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let d = Self::default();
        let mut f = Fields::new(value)?;
        let config = Self {
            placements: f.or("placements", d.placements)?,
            window_days: f.or("window-days", d.window_days)?,
            similarity: f.or("similarity", d.similarity)?,
            min_support: f.or("min-support", d.min_support)?,
            max_neighbours: f.or("max-neighbours", d.max_neighbours)?,
            max_basket_size: f.or("max-basket-size", d.max_basket_size)?,
            max_per_category: f.or("max-per-category", d.max_per_category)?,
            recency_decay: f.or("recency-decay", d.recency_decay)?,
            history_length: f.or("history-length", d.history_length)?,
            repeat_weight: f.or("repeat-weight", d.repeat_weight)?,
            taste_weight: f.or("taste-weight", d.taste_weight)?,
        };
        f.finish()?;
        Ok(config)
    }
}

impl Config {
    /// The placements every install knows, before the merchant's overrides.
    pub fn default_placements() -> [(&'static str, Strategy); 5] {
        [
            ("product", Strategy::FrequentlyBoughtTogether),
            ("cart", Strategy::FrequentlyBoughtTogether),
            ("home", Strategy::Popular),
            ("for-you", Strategy::ForYou),
            ("recently-viewed", Strategy::RecentlyViewed),
        ]
    }

    /// The strategy of `placement`: the merchant's, else the default one.
    pub fn strategy_of(&self, placement: &str) -> Option<Strategy> {
        self.placements
            .get(placement)
            .copied()
            .or_else(|| Self::default_placements().into_iter().find(|(name, _)| *name == placement).map(|(_, s)| s))
    }

    /// What is wrong with the config, if anything (beyond its types).
    pub fn problem(&self) -> Option<String> {
        if self.window_days == 0 {
            return Some("window-days must be at least 1".into());
        }
        if self.min_support == 0 {
            return Some("min-support must be at least 1".into());
        }
        if self.max_neighbours == 0 {
            return Some("max-neighbours must be at least 1".into());
        }
        if self.max_basket_size < 2 {
            return Some("max-basket-size must be at least 2".into());
        }
        if !(self.recency_decay > 0.0 && self.recency_decay <= 1.0) {
            return Some("recency-decay must be in (0, 1]".into());
        }
        if !(0.0..=10.0).contains(&self.repeat_weight) {
            return Some("repeat-weight must be in [0, 10]".into());
        }
        if !(0.0..=10.0).contains(&self.taste_weight) {
            return Some("taste-weight must be in [0, 10]".into());
        }
        None
    }
}
