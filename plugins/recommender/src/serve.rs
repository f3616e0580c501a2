//! Serving: pick the strategy of the request, rank candidates from the
//! model, apply the filters (no context products, no duplicates, at most N
//! per category) and fall back to best sellers so that a list is never empty
//! while the model has sales.
//!
//! Scores are `tier + strength`, strength in `[0, 1)`:
//! 4 the shopper's own recent views (`recently-viewed`), 3 co-purchase
//! neighbours of the context (`frequently-bought-together`) or the shopper's
//! personal blend (`for-you`), 2 best sellers of a context product's
//! category, 1 best sellers overall.

use std::collections::{HashMap, HashSet};

use patron_sdk::{RecommendRequest, ScoredItem};

use crate::config::{Config, Strategy};
use crate::model::{ModelView, similarity};
use crate::sort::sorted;

/// Prefix of context entries that are directives to the plugin, not products.
pub const DIRECTIVE: &str = "patron:";
/// Most items one answer holds, whatever the request's limit.
pub const MAX_LIMIT: usize = 200;
/// Most context products read (a bound on the cost of one request).
pub const MAX_CONTEXT: usize = 100;

/// A request's context, split into directives and products.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Context<'r> {
    /// `patron:placement=<name>`: the placement the list is for.
    pub placement: Option<&'r str>,
    /// `patron:strategy=<name>`: a strategy that overrides the placement's.
    pub strategy: Option<&'r str>,
    /// The products, deduplicated, in the order given.
    pub products: Vec<&'r str>,
}

impl<'r> Context<'r> {
    /// Split `entries` (a request's `context-products`).
    pub fn parse(entries: &'r [String]) -> Self {
        let mut context = Context::default();
        let mut seen = HashSet::new();
        for entry in entries {
            if let Some(directive) = entry.strip_prefix(DIRECTIVE) {
                if let Some(name) = directive.strip_prefix("placement=") {
                    context.placement = Some(name);
                } else if let Some(name) = directive.strip_prefix("strategy=") {
                    context.strategy = Some(name);
                }
            } else if !entry.is_empty() && context.products.len() < MAX_CONTEXT && seen.insert(entry.as_str()) {
                context.products.push(entry);
            }
        }
        context
    }

    /// The strategy to run: the directive's, else the placement's, else
    /// `popular` without context products and `frequently-bought-together`
    /// with some.
    pub fn strategy(&self, config: &Config) -> Strategy {
        self.strategy
            .and_then(Strategy::from_name)
            .or_else(|| self.placement.and_then(|p| config.strategy_of(p)))
            .unwrap_or(if self.products.is_empty() { Strategy::Popular } else { Strategy::FrequentlyBoughtTogether })
    }
}

/// Collects the answer, applying the filters.
struct Picker<'r> {
    exclude: HashSet<&'r str>,
    seen: HashSet<String>,
    per_category: HashMap<u32, u32>,
    cap: u32,
    limit: usize,
    out: Vec<ScoredItem>,
}

impl Picker<'_> {
    fn full(&self) -> bool {
        self.out.len() >= self.limit
    }

    /// Add `id` with `score` unless excluded, already in, or its category is full.
    fn offer(&mut self, id: &str, category: Option<u32>, score: f64) {
        if self.full() || self.exclude.contains(id) || self.seen.contains(id) {
            return;
        }
        if let (Some(c), true) = (category, self.cap > 0) {
            let n = self.per_category.entry(c).or_default();
            if *n >= self.cap {
                return;
            }
            *n += 1;
        }
        self.seen.insert(id.to_owned());
        self.out.push(ScoredItem { product_id: id.to_owned(), score });
    }

    /// Offer product `i` of `view`.
    fn offer_index(&mut self, view: &ModelView<'_>, i: usize, score: f64) {
        if let Some(id) = view.id(i).and_then(|b| std::str::from_utf8(b).ok()) {
            self.offer(id, view.record(i).category, score);
        }
    }
}

/// Strength in `[0, 1)` of a best seller: its window orders, ties broken by
/// all-time orders, over the model's largest window count.
fn popularity(view: &ModelView<'_>, i: usize) -> f64 {
    let r = view.record(i);
    let key = f64::from(r.window) + f64::from(r.orders) / (f64::from(view.max_orders) + 1.0);
    key / (f64::from(view.max_window) + 1.0)
}

/// The answer to `request` from `view` (`None`: no model yet).
pub fn recommend(view: Option<&ModelView<'_>>, config: &Config, request: &RecommendRequest) -> Vec<ScoredItem> {
    let context = Context::parse(&request.context_products);
    let strategy = context.strategy(config);
    let mut picker = Picker {
        exclude: HashSet::new(),
        seen: HashSet::new(),
        per_category: HashMap::new(),
        cap: config.max_per_category,
        limit: (request.limit as usize).min(MAX_LIMIT),
        out: Vec::new(),
    };
    if strategy == Strategy::RecentlyViewed {
        let n = context.products.len() as f64;
        for (k, id) in context.products.iter().enumerate() {
            let category = view.and_then(|v| v.find(id).and_then(|i| v.record(i).category));
            picker.offer(id, category, 4.0 + (n - k as f64) / (n + 1.0));
        }
        return picker.out;
    }
    let Some(view) = view else {
        return Vec::new();
    };
    // for-you may offer the history again (buy again, still interested): which past
    // purchases must not come back is the host's filter, it knows what is replenishable.
    if strategy != Strategy::ForYou {
        picker.exclude = context.products.iter().copied().collect();
    }
    // Context products the model knows, with their position in the context.
    let known: Vec<(usize, usize)> =
        context.products.iter().enumerate().filter_map(|(k, id)| view.find(id).map(|i| (k, i))).collect();

    let candidates = match strategy {
        Strategy::FrequentlyBoughtTogether => rank_neighbours(view, config, &known),
        Strategy::ForYou => rank_for_you(view, config, &known),
        _ => Vec::new(),
    };
    for (b, s) in candidates {
        if picker.full() {
            break;
        }
        picker.offer_index(view, b as usize, 3.0 + s / (1.0 + s));
    }

    let mut categories: Vec<u32> = Vec::new();
    for &(_, a) in &known {
        if let Some(c) = view.record(a).category
            && !categories.contains(&c)
        {
            categories.push(c);
        }
    }
    // Best sellers of the context's categories, merged by popularity.
    let merged: Vec<usize> = categories.iter().flat_map(|&c| view.best_sellers(Some(c))).collect();
    // A total order (ties by index), so an unstable sort gives the one answer.
    let merged = sorted(&merged, |&a, &b| popularity(view, b).total_cmp(&popularity(view, a)).then(a.cmp(&b)));
    for i in merged {
        if picker.full() {
            break;
        }
        picker.offer_index(view, i, 2.0 + popularity(view, i));
    }
    for i in view.best_sellers(None) {
        if picker.full() {
            break;
        }
        picker.offer_index(view, i, 1.0 + popularity(view, i));
    }
    picker.out
}

/// Adds `weight × similarity` to every neighbour of product `a` with enough support.
fn add_neighbours(view: &ModelView<'_>, config: &Config, a: usize, weight: f64, scores: &mut HashMap<u32, f64>) {
    let na = view.record(a).orders;
    // A corrupt row only loses its neighbours; the rest still serves.
    let _ = view.row(a, |b, n| {
        if n >= config.min_support {
            let s = similarity(config.similarity, n, na, view.record(b as usize).orders, view.orders);
            *scores.entry(b).or_default() += weight * s;
        }
    });
}

/// Best first; equal scores by index, which is id order.
fn ranked(scores: HashMap<u32, f64>) -> Vec<(u32, f64)> {
    let ranked: Vec<(u32, f64)> = scores.into_iter().collect();
    sorted(&ranked, |x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)))
}

/// `frequently-bought-together`: the summed similarities to the context products.
fn rank_neighbours(view: &ModelView<'_>, config: &Config, known: &[(usize, usize)]) -> Vec<(u32, f64)> {
    let mut scores = HashMap::new();
    for &(_, a) in known {
        add_neighbours(view, config, a, 1.0, &mut scores);
    }
    ranked(scores)
}

/// `for-you`: one blend over the history, the entry at position k weighing
/// `recency-decay^k` — its co-purchase neighbours, the product itself
/// (`repeat-weight`), and the best sellers of its category (`taste-weight`,
/// shared out by how much of the history each category holds).
fn rank_for_you(view: &ModelView<'_>, config: &Config, known: &[(usize, usize)]) -> Vec<(u32, f64)> {
    let mut scores: HashMap<u32, f64> = HashMap::new();
    let mut taste: HashMap<u32, f64> = HashMap::new();
    let mut history_weight = 0.0;
    for &(k, a) in known {
        if k >= config.history_length as usize {
            break;
        }
        let weight = config.recency_decay.powi(i32::try_from(k).unwrap_or(i32::MAX));
        history_weight += weight;
        add_neighbours(view, config, a, weight, &mut scores);
        if config.repeat_weight > 0.0 {
            *scores.entry(a as u32).or_default() += weight * config.repeat_weight;
        }
        if let Some(c) = view.record(a).category {
            *taste.entry(c).or_default() += weight;
        }
    }
    if config.taste_weight > 0.0 {
        for (c, weight) in taste {
            let share = config.taste_weight * weight / history_weight;
            for i in view.best_sellers(Some(c)) {
                *scores.entry(i as u32).or_default() += share * popularity(view, i);
            }
        }
    }
    ranked(scores)
}
