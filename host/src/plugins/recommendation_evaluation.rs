//! Offline evaluation of a recommender on the shop's own data (`patron recs evaluate`):
//! hold out every customer's last purchase, train a model on the other orders (not
//! stored: serving keeps its model), then ask each strategy for the customers who have
//! an earlier purchase what they would be shown when the visit that ended in that last
//! order began, and score the top K against what the order contained.
//!
//! The report is kept as the install's last evaluation, which the console's
//! recommendations page shows.
//!
//! The lists are asked for [`VISIT`] before the order: a shopper views what they are
//! about to buy during that visit, so history up to the order itself would hand
//! `recently-viewed` the answer and hide it from `for-you` (which never returns its
//! own context).
//!
//! What each strategy is given mirrors serving: `for-you` the shopper's purchases and
//! product views before the order, most recent first; `frequently-bought-together` the
//! products of their previous order (as a cart or product page would); `recently-viewed`
//! their views; `popular` nothing — the baseline. The serve-time filter applies to every
//! list: nothing bought in the [`RECENT_PURCHASE_DAYS`] before the order unless
//! replenishable.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use patron_runtime::types::RecommendRequest;
use serde::Serialize;

use super::recommendations::{
    DAY_MS, HISTORY, Progress, RECENT_PURCHASE_DAYS, TRAIN_CHUNK, failure, history_of, is_replenishable,
};
use super::{Active, PluginHost};
use crate::store::StoreResult;
use crate::store::orders::Order;
use crate::store::recommendations::Touch;
use crate::store::shops::Shop;

/// The strategies evaluated, the popularity baseline first.
pub const STRATEGIES: [&str; 4] = ["popular", "frequently-bought-together", "for-you", "recently-viewed"];
/// How long before the held-out order the shopper's history ends.
const VISIT: i64 = 60 * 60 * 1000;
/// Customers scored per plugin instance.
const BATCH: usize = 250;

/// What to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationOptions {
    /// The cut-off: hit rate, recall and NDCG "at K".
    pub k: usize,
    /// Score at most this many customers (the ones with the lowest ids), all when `None`.
    pub max_customers: Option<usize>,
}

/// One strategy's scores, averaged over the evaluated customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyScore {
    pub strategy: &'static str,
    /// Share of customers with at least one held-out product in the top K.
    pub hit_rate: f64,
    /// Share of the held-out order's products found in the top K.
    pub recall: f64,
    /// Normalised discounted cumulative gain of the top K (binary relevance).
    pub ndcg: f64,
    /// Customers for whom the strategy returned nothing.
    pub empty_lists: u64,
}

/// What an evaluation did and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationReport {
    pub plugin: String,
    pub k: usize,
    pub training_orders: u64,
    pub held_out_orders: u64,
    /// Customers scored: those with a purchase before their held-out one.
    pub customers: u64,
    pub strategies: Vec<StrategyScore>,
}

/// One purchase of a customer, products interned.
struct Purchase {
    order_id: String,
    placed_at: i64,
    products: Vec<u32>,
}

/// What the evaluation asks about one customer.
struct Case {
    targets: HashSet<String>,
    /// Purchases and views before the held-out order, most recent first, distinct.
    history: Vec<String>,
    previous_order: Vec<String>,
    views: Vec<String>,
    /// Products the serve-time filter removes.
    recently_bought: HashSet<String>,
}

#[derive(Default, Clone)]
struct Sums {
    hits: f64,
    recall: f64,
    ndcg: f64,
    empty: u64,
}

/// Scores one ranked list against the held-out products.
fn score(list: &[String], targets: &HashSet<String>, k: usize) -> (bool, f64, f64) {
    let top = &list[..list.len().min(k)];
    let hits: Vec<usize> = top.iter().enumerate().filter(|(_, p)| targets.contains(*p)).map(|(i, _)| i).collect();
    let dcg: f64 = hits.iter().map(|i| 1.0 / (*i as f64 + 2.0).log2()).sum();
    let ideal: f64 = (0..targets.len().min(k)).map(|i| 1.0 / (i as f64 + 2.0).log2()).sum();
    let recall = if targets.is_empty() { 0.0 } else { hits.len() as f64 / targets.len() as f64 };
    (!hits.is_empty(), recall, if ideal > 0.0 { dcg / ideal } else { 0.0 })
}

impl PluginHost {
    /// Evaluates `active` on the shop's data; see the module docs.
    pub async fn evaluate_recommender(
        &self,
        shop: &Shop,
        active: &Active,
        options: EvaluationOptions,
        progress: Progress<'_>,
    ) -> StoreResult<EvaluationReport> {
        let db = self.db();
        let mut products: Vec<String> = Vec::new();
        let mut product_ids: HashMap<String, u32> = HashMap::new();
        let mut purchases: HashMap<i64, Vec<Purchase>> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = db.paid_orders_page(shop.id, after.as_deref(), TRAIN_CHUNK).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for order in &page {
                let Some(customer) = order.customer_id else { continue };
                let mut items: Vec<u32> = Vec::new();
                for product in order.lines.iter().filter_map(|l| l.product_id.as_ref()) {
                    let next = products.len() as u32;
                    let id = *product_ids.entry(product.clone()).or_insert_with(|| {
                        products.push(product.clone());
                        next
                    });
                    if !items.contains(&id) {
                        items.push(id);
                    }
                }
                purchases.entry(customer).or_default().push(Purchase {
                    order_id: order.id.clone(),
                    placed_at: order.placed_at,
                    products: items,
                });
            }
        }
        for list in purchases.values_mut() {
            list.sort_by(|a, b| a.placed_at.cmp(&b.placed_at).then_with(|| a.order_id.cmp(&b.order_id)));
        }
        let held_out: HashSet<String> =
            purchases.values().filter_map(|list| list.last()).map(|p| p.order_id.clone()).collect();

        let include = |order: &Order| !held_out.contains(&order.id);
        let (model, training_orders) = self.build_model(shop, active, &include, &|_, _| {}).await?;
        let model = Arc::new(model);

        let categories: HashMap<String, Option<String>> =
            db.products(shop.id).await?.into_iter().map(|p| (p.id, p.category)).collect();
        let replenishable = |product: &str| is_replenishable(categories.get(product).and_then(Option::as_deref));

        let mut customers: Vec<i64> = purchases.iter().filter(|(_, list)| list.len() >= 2).map(|(c, _)| *c).collect();
        customers.sort_unstable();
        if let Some(max) = options.max_customers {
            customers.truncate(max);
        }
        let total = customers.len() as u64;
        let mut sums = vec![Sums::default(); STRATEGIES.len()];
        let mut done = 0u64;
        for batch in customers.chunks(BATCH) {
            let mut cases = Vec::with_capacity(batch.len());
            for customer in batch {
                let list = &purchases[customer];
                let (last, earlier) = list.split_last().expect("at least two purchases");
                let name = |id: &u32| products[*id as usize].clone();
                let asked_at = last.placed_at - VISIT;
                let earlier: Vec<&Purchase> = earlier.iter().filter(|p| p.placed_at < asked_at).collect();
                let views = db.recent_product_views(shop.id, *customer, asked_at, (HISTORY * 2) as i64).await?;
                let recent_from = asked_at - RECENT_PURCHASE_DAYS * DAY_MS;
                let recently_bought: HashSet<String> = earlier
                    .iter()
                    .filter(|p| p.placed_at >= recent_from)
                    .flat_map(|p| p.products.iter().map(name))
                    .filter(|p| !replenishable(p))
                    .collect();
                let purchases = earlier
                    .iter()
                    .flat_map(|p| p.products.iter().map(move |id| Touch { product_id: name(id), at: p.placed_at }));
                let history = history_of(purchases.chain(views.iter().cloned()).collect());
                cases.push(Case {
                    targets: last.products.iter().map(name).collect(),
                    history,
                    previous_order: earlier.last().map(|p| p.products.iter().map(name).collect()).unwrap_or_default(),
                    views: views.into_iter().map(|t| t.product_id).collect(),
                    recently_bought,
                });
            }
            let model = model.clone();
            let k = options.k;
            let batch_sums = self
                .call(active, move |plugin, ctx| {
                    let mut instance = plugin.instantiate(ctx.clone())?;
                    let mut sums = vec![Sums::default(); STRATEGIES.len()];
                    for case in &cases {
                        for (s, strategy) in STRATEGIES.iter().enumerate() {
                            let mut context = vec![format!("patron:strategy={strategy}")];
                            match *strategy {
                                "frequently-bought-together" => context.extend(case.previous_order.iter().cloned()),
                                "for-you" => context.extend(case.history.iter().cloned()),
                                "recently-viewed" => context.extend(case.views.iter().cloned()),
                                _ => {}
                            }
                            let request = RecommendRequest {
                                customer_id: None,
                                context_products: context,
                                limit: u32::try_from(k * 2).unwrap_or(u32::MAX),
                            };
                            let items = instance.recommend(&model, &request)?;
                            let list: Vec<String> = items
                                .into_iter()
                                .map(|i| i.product_id)
                                .filter(|p| !case.recently_bought.contains(p))
                                .take(k)
                                .collect();
                            let (hit, recall, ndcg) = score(&list, &case.targets, k);
                            let entry = &mut sums[s];
                            entry.hits += f64::from(u8::from(hit));
                            entry.recall += recall;
                            entry.ndcg += ndcg;
                            entry.empty += u64::from(list.is_empty());
                        }
                    }
                    Ok(sums)
                })
                .await
                .map_err(failure)?;
            for (sum, part) in sums.iter_mut().zip(batch_sums) {
                sum.hits += part.hits;
                sum.recall += part.recall;
                sum.ndcg += part.ndcg;
                sum.empty += part.empty;
            }
            done += batch.len() as u64;
            progress(done, total);
        }

        let n = total.max(1) as f64;
        let report = EvaluationReport {
            plugin: active.plugin.label().to_owned(),
            k: options.k,
            training_orders,
            held_out_orders: held_out.len() as u64,
            customers: total,
            strategies: STRATEGIES
                .iter()
                .zip(&sums)
                .map(|(strategy, s)| StrategyScore {
                    strategy,
                    hit_rate: s.hits / n,
                    recall: s.recall / n,
                    ndcg: s.ndcg / n,
                    empty_lists: s.empty,
                })
                .collect(),
        };
        let json = serde_json::to_string(&report).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        db.save_recommendation_evaluation(shop.id, &active.install.name, &json).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_hit_at_the_top_scores_one() {
        assert_eq!(score(&list(&["a", "x"]), &set(&["a"]), 10), (true, 1.0, 1.0));
    }

    #[test]
    fn lower_hits_are_discounted_and_misses_score_zero() {
        let (hit, recall, ndcg) = score(&list(&["x", "a", "y"]), &set(&["a", "b"]), 10);
        assert!(hit);
        assert!((recall - 0.5).abs() < 1e-9);
        // DCG 1/log2(3); ideal for two targets 1 + 1/log2(3).
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg - expected).abs() < 1e-9, "{ndcg}");
        assert_eq!(score(&list(&["x", "y"]), &set(&["a"]), 10), (false, 0.0, 0.0));
    }

    #[test]
    fn only_the_top_k_count() {
        assert_eq!(score(&list(&["x", "y", "a"]), &set(&["a"]), 2), (false, 0.0, 0.0));
        assert_eq!(score(&[], &set(&["a"]), 10), (false, 0.0, 0.0));
    }
}
