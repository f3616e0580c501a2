//! `predict evaluate`: how well a predictor foresaw what customers then did, on the
//! shop's own history. Each customer's purchases are split at a date `holdout-days`
//! before the shop's last purchase; the predictor is fitted on the purchases before it
//! (the calibration period) and its expected purchases over the holdout are compared,
//! customer by customer and in aggregate, with what happened — beside a naive baseline
//! (each customer goes on buying at their historical repeat rate) — and its P(alive)
//! is scored as a churn classifier (churned: no purchase in the holdout), beside the
//! behaviour-aware churn model ([`super::churn_model`]), trained on the window before
//! the calibration's end and scored on the same holdout.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::churn_model;
use super::recommendations::{DAY_MS, Progress};
use super::{Active, PluginHost};
use crate::store::predictions::{PredictionInput, Purchase};
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult};

/// The holdout and the spacing of the cumulative series.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationOptions {
    pub holdout_days: u32,
    /// Days between points of the cumulative series (the last point is the holdout's end).
    pub step_days: u32,
}

/// Mean absolute and root-mean-square error of predicted purchases per customer.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Errors {
    pub mae: f64,
    pub rmse: f64,
}

/// Cumulative purchases over the holdout, by day.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SeriesPoint {
    /// Days since the split.
    pub day: u32,
    pub actual: f64,
    pub predicted: f64,
    pub baseline: f64,
}

/// What the evaluation found.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationReport {
    pub plugin: String,
    /// The split: calibration before, holdout from (unix ms).
    pub split_at: i64,
    pub holdout_days: u32,
    /// Customers with a purchase before the split (the ones scored).
    pub customers: u64,
    /// Their purchases in the holdout: actual, predicted, baseline.
    pub holdout_purchases: f64,
    pub predicted_purchases: f64,
    pub baseline_purchases: f64,
    pub model: Errors,
    pub baseline: Errors,
    /// Share of the scored customers with no purchase in the holdout.
    pub churned_share: f64,
    /// Area under the ROC curve of 1 − P(alive) for "no purchase in the holdout"
    /// (`None` when everyone or no one churned).
    pub churn_auc_p_alive: Option<f64>,
    /// The behaviour-aware churn model on the same customers and label (`None` when
    /// its training window has too few customers or only one class).
    pub behaviour_model: Option<BehaviourModel>,
    pub series: Vec<SeriesPoint>,
    pub fit_seconds: f64,
}

/// The behaviour-aware churn model's result.
#[derive(Debug, Clone, Serialize)]
pub struct BehaviourModel {
    /// Customers it was trained on: those with a purchase before `trained_at`, labelled
    /// by whether they bought in the `holdout-days` after it.
    pub training_customers: u64,
    pub trained_at: i64,
    /// Its churn AUC on the holdout, beside `churn_auc_p_alive`.
    pub churn_auc: Option<f64>,
    /// The fitted model: the intercept and each feature's weight per standard deviation
    /// (positive: more likely to churn).
    pub intercept: f64,
    pub coefficients: Vec<Coefficient>,
}

/// One feature's weight in the behaviour-aware model.
#[derive(Debug, Clone, Serialize)]
pub struct Coefficient {
    pub feature: &'static str,
    pub weight: f64,
}

/// One scored customer: calibration statistics and what they did in the holdout.
struct Scored {
    input: PredictionInput,
    /// Days after the split of each holdout purchase.
    holdout: Vec<f64>,
}

/// Splits the purchases (ordered by customer, then time) at `split_at`: each customer
/// with a purchase before it, their statistics then and their purchases after.
fn split(purchases: &[Purchase], split_at: i64, end: i64) -> Vec<Scored> {
    let mut out: Vec<Scored> = Vec::new();
    for group in purchases.chunk_by(|a, b| a.customer_id == b.customer_id) {
        let before: Vec<&Purchase> = group.iter().filter(|p| p.placed_at < split_at).collect();
        let (Some(first), Some(last)) = (before.first(), before.last()) else { continue };
        let total: i64 = before.iter().fold(0i64, |sum, p| sum.saturating_add(p.amount));
        out.push(Scored {
            input: PredictionInput {
                customer_id: first.customer_id,
                order_count: u32::try_from(before.len()).unwrap_or(u32::MAX),
                total_spent: total,
                first_order_at: first.placed_at,
                last_order_at: last.placed_at,
            },
            holdout: group
                .iter()
                .filter(|p| p.placed_at >= split_at && p.placed_at <= end)
                .map(|p| (p.placed_at - split_at) as f64 / DAY_MS as f64)
                .collect(),
        });
    }
    out
}

/// The naive baseline's purchases per day: repeat purchases over the customer's age
/// at the split (0 for a customer whose first purchase is at the split).
fn historical_rate(c: &PredictionInput, split_at: i64) -> f64 {
    let age = (split_at - c.first_order_at) as f64 / DAY_MS as f64;
    if age > 0.0 { f64::from(c.order_count.saturating_sub(1)) / age } else { 0.0 }
}

/// The behaviour model's features of customers as of `at` (see [`churn_model::FEATURES`]).
async fn features(host: &PluginHost, shop_id: i64, customers: &[Scored], at: i64) -> StoreResult<Vec<Vec<f64>>> {
    let from = at - churn_model::ACTIVITY_DAYS * DAY_MS;
    let db = host.db();
    let events = db.event_counts(shop_id, &churn_model::EVENT_KINDS, from, at).await?;
    let points = db.points_net(shop_id, from, at).await?;
    let day = DAY_MS as f64;
    Ok(customers
        .iter()
        .map(|s| {
            let c = &s.input;
            let orders = f64::from(c.order_count);
            let average = (c.total_spent as f64 / orders.max(1.0)).max(0.0);
            let mut row = vec![
                (at - c.last_order_at) as f64 / day,
                orders,
                average.ln_1p(),
                (at - c.first_order_at) as f64 / day,
            ];
            let counts = events.get(&c.customer_id);
            row.extend((0..churn_model::EVENT_KINDS.len()).map(|k| f64::from(counts.map_or(0, |v| v[k]))));
            row.push(points.get(&c.customer_id).copied().unwrap_or(0) as f64);
            row
        })
        .collect())
}

/// Trains the behaviour model on the window that ends at `split_at` (features as of
/// `split_at - holdout`, label: no purchase before `split_at`) and scores it on the
/// holdout's customers.
async fn behaviour_model(
    host: &PluginHost,
    shop_id: i64,
    purchases: &[Purchase],
    scored: &[Scored],
    split_at: i64,
    holdout: i64,
    churned: &[bool],
) -> StoreResult<Option<BehaviourModel>> {
    let trained_at = split_at - holdout;
    let training = split(purchases, trained_at, split_at - 1);
    let x = features(host, shop_id, &training, trained_at).await?;
    let y: Vec<bool> = training.iter().map(|s| s.holdout.is_empty()).collect();
    let Some(model) = churn_model::Logistic::fit(&x, &y) else { return Ok(None) };
    let test = features(host, shop_id, scored, split_at).await?;
    let scores: Vec<f64> = test.iter().map(|row| model.predict(row)).collect();
    Ok(Some(BehaviourModel {
        training_customers: training.len() as u64,
        trained_at,
        churn_auc: auc(&scores, churned),
        intercept: model.intercept,
        coefficients: churn_model::FEATURES
            .iter()
            .zip(&model.weights)
            .map(|(feature, weight)| Coefficient { feature, weight: *weight })
            .collect(),
    }))
}

fn errors(predicted: &[f64], actual: &[f64]) -> Errors {
    let n = predicted.len().max(1) as f64;
    let abs: f64 = predicted.iter().zip(actual).map(|(p, a)| (p - a).abs()).sum();
    let sq: f64 = predicted.iter().zip(actual).map(|(p, a)| (p - a).powi(2)).sum();
    Errors { mae: abs / n, rmse: (sq / n).sqrt() }
}

/// The area under the ROC curve of `scores` for `positives` (Mann–Whitney, ties
/// counted half); `None` without both classes.
pub fn auc(scores: &[f64], positives: &[bool]) -> Option<f64> {
    let mut ranked: Vec<(f64, bool)> = scores.iter().copied().zip(positives.iter().copied()).collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = ranked.iter().filter(|r| r.1).count() as f64;
    let neg = ranked.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Sum of the positives' ranks (1-based, ties given their mean rank).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < ranked.len() {
        let mut j = i;
        while j < ranked.len() && ranked[j].0 == ranked[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += ranked[i..j].iter().filter(|r| r.1).count() as f64 * mean_rank;
        i = j;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

impl PluginHost {
    /// Evaluates `active` on the shop's history (see the module's documentation). Writes
    /// nothing: the model fitted on the calibration period is discarded.
    pub async fn evaluate_predictor(
        &self,
        shop: &Shop,
        active: &Active,
        options: EvaluationOptions,
        progress: Progress<'_>,
    ) -> StoreResult<EvaluationReport> {
        let purchases = self.db().purchases(shop.id).await?;
        let Some(end) = purchases.iter().map(|p| p.placed_at).max() else {
            return Err(StoreError::Conflict("the shop has no purchases to evaluate on".into()));
        };
        let holdout = i64::from(options.holdout_days) * DAY_MS;
        let split_at = end - holdout;
        let scored = split(&purchases, split_at, end);
        let inputs: Vec<PredictionInput> = scored.iter().map(|s| s.input).collect();
        let started = Instant::now();
        let model = Arc::new(self.fit_predictor(active, &inputs, split_at).await?);
        let fit_seconds = started.elapsed().as_secs_f64();

        let step = options.step_days.clamp(1, options.holdout_days.max(1));
        let mut days: Vec<u32> = (1..).map(|k| k * step).take_while(|d| *d < options.holdout_days).collect();
        days.push(options.holdout_days);
        let h = days.len();
        let mut expected = Vec::with_capacity(inputs.len() * h);
        let mut p_alive = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(super::predictions::PREDICT_BATCH) {
            let out = self.predict_with(active, model.clone(), chunk, split_at, &days).await?;
            expected.extend(out.expected_purchases);
            p_alive.extend(out.p_alive);
            progress(p_alive.len() as u64, inputs.len() as u64);
        }
        let clean = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };

        let actual: Vec<f64> = scored.iter().map(|s| s.holdout.len() as f64).collect();
        let predicted: Vec<f64> = (0..inputs.len()).map(|i| clean(expected[i * h + h - 1])).collect();
        let rates: Vec<f64> = inputs.iter().map(|c| historical_rate(c, split_at)).collect();
        let horizon = f64::from(options.holdout_days);
        let baseline: Vec<f64> = rates.iter().map(|r| r * horizon).collect();

        let series = days
            .iter()
            .enumerate()
            .map(|(k, &day)| SeriesPoint {
                day,
                actual: scored.iter().map(|s| s.holdout.iter().filter(|t| **t <= f64::from(day)).count() as f64).sum(),
                predicted: (0..inputs.len()).map(|i| clean(expected[i * h + k])).sum(),
                baseline: rates.iter().map(|r| r * f64::from(day)).sum(),
            })
            .collect();
        let churned: Vec<bool> = actual.iter().map(|a| *a == 0.0).collect();
        let risk: Vec<f64> = p_alive.iter().map(|p| 1.0 - clean(*p).min(1.0)).collect();
        let n = inputs.len().max(1) as f64;
        let behaviour_model = behaviour_model(self, shop.id, &purchases, &scored, split_at, holdout, &churned).await?;
        Ok(EvaluationReport {
            plugin: active.plugin.label().to_owned(),
            split_at,
            holdout_days: options.holdout_days,
            customers: inputs.len() as u64,
            holdout_purchases: actual.iter().sum(),
            predicted_purchases: predicted.iter().sum(),
            baseline_purchases: baseline.iter().sum(),
            model: errors(&predicted, &actual),
            baseline: errors(&baseline, &actual),
            churned_share: churned.iter().filter(|c| **c).count() as f64 / n,
            churn_auc_p_alive: auc(&risk, &churned),
            behaviour_model,
            series,
            fit_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_and_ties() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[false, true, false, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5], &[true, false, false]), Some(0.5));
        // 3 positive/negative pairs ordered right, 1 wrong: 0.75.
        assert_eq!(auc(&[0.2, 0.6, 0.4, 0.8], &[false, false, true, true]), Some(0.75));
        assert_eq!(auc(&[0.3, 0.2], &[true, true]), None);
    }

    #[test]
    fn split_keeps_customers_known_before_the_split() {
        let p = |customer_id, day: i64, amount| Purchase { customer_id, placed_at: day * DAY_MS, amount };
        let purchases = [p(1, 0, 100), p(1, 10, 300), p(1, 25, 50), p(2, 22, 80), p(3, 5, 10)];
        let scored = split(&purchases, 20 * DAY_MS, 30 * DAY_MS);
        assert_eq!(scored.len(), 2, "customer 2 first bought after the split");
        assert_eq!(scored[0].input.order_count, 2);
        assert_eq!(scored[0].input.total_spent, 400);
        assert_eq!(scored[0].input.last_order_at, 10 * DAY_MS);
        assert_eq!(scored[0].holdout, vec![5.0]);
        assert!(scored[1].holdout.is_empty());
        // Customer 1: one repeat purchase over 20 days of age.
        assert!((historical_rate(&scored[0].input, 20 * DAY_MS) - 0.05).abs() < 1e-12);
        assert_eq!(historical_rate(&scored[1].input, 20 * DAY_MS), 0.0);
    }
}
