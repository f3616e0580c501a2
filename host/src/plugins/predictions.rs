//! Predictions as the host runs them: fitting a predictor install over the shop's
//! customers' order statistics (batched; the model is stored per install, and a failed
//! fit keeps the previous one), predicting for every customer from the stored model,
//! and storing each customer's latest predictions and the segments the plugin puts
//! them in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use patron_runtime::types::{CustomerBatch, Predictions};
use patron_runtime::{Limits, Memberships, World};
use serde::Serialize;

use super::recommendations::{Progress, failure};
use super::{Active, PluginHost};
use crate::store::predictions::{CustomerPrediction, PredictionInput};
use crate::store::segments::MembershipChange;
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult, now_ms};

/// Customers handed to `fit` per call (the plugin passes its state back each call).
pub const FIT_BATCH: usize = 50_000;
/// Customers handed to `predict` per call, and written per transaction.
pub const PREDICT_BATCH: usize = 10_000;
/// The horizons, in days, of the stored expected purchases.
pub const HORIZONS: [u32; 3] = [30, 90, 365];
/// Customers read from the store per query.
const READ_PAGE: i64 = 50_000;

/// What one fit-and-predict run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PredictionReport {
    pub plugin: String,
    /// Customers with a paid order: fitted on and predicted for.
    pub customers: u64,
    pub model_bytes: u64,
    /// Members of each segment the plugin assigned, after the run.
    pub segments: BTreeMap<String, u64>,
    pub fit_seconds: f64,
    pub predict_seconds: f64,
}

/// A fit's limits: it runs in a batch job over the whole shop, not on a request path.
fn fit_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(600),
        max_memory_bytes: 256 << 20,
        max_output_bytes: 64 << 20,
        ..Limits::default()
    }
}

/// A prediction batch's limits.
fn predict_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        max_memory_bytes: 128 << 20,
        max_output_bytes: 16 << 20,
        ..Limits::default()
    }
}

/// The contract's batch of `inputs`.
pub(crate) fn customer_batch(inputs: &[PredictionInput]) -> CustomerBatch {
    CustomerBatch {
        order_count: inputs.iter().map(|c| c.order_count).collect(),
        total_spent: inputs.iter().map(|c| c.total_spent).collect(),
        first_order_at: inputs.iter().map(|c| c.first_order_at).collect(),
        last_order_at: inputs.iter().map(|c| c.last_order_at).collect(),
    }
}

/// A plugin's number, made storable: NaN and infinities become 0 (a plugin is not
/// trusted to have checked), the rest is clamped to `[lo, hi]`.
fn finite(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_finite() { v.clamp(lo, hi) } else { 0.0 }
}

/// Minor units, rounded and bounded as amounts are (0..=10^15).
fn money(v: f64) -> i64 {
    finite(v, 0.0, 1e15).round() as i64
}

impl PluginHost {
    /// The shop's enabled predictors.
    pub async fn predictors(&self, shop_id: i64) -> StoreResult<Vec<Active>> {
        self.active(shop_id, World::Predictor).await
    }

    /// Every customer of the shop with a paid order, by id.
    pub async fn prediction_inputs(&self, shop_id: i64) -> StoreResult<Vec<PredictionInput>> {
        let db = self.db();
        let mut all = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = db.prediction_inputs_page(shop_id, after, READ_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.customer_id;
            all.extend(page);
        }
        Ok(all)
    }

    /// Fits `active` over `inputs` as of `as_of`, in batches of [`FIT_BATCH`]; the
    /// model, not stored. A plugin failure (too little data, no convergence) is the
    /// error, with the plugin's message.
    pub async fn fit_predictor(&self, active: &Active, inputs: &[PredictionInput], as_of: i64) -> StoreResult<Vec<u8>> {
        let chunks: Vec<&[PredictionInput]> =
            if inputs.is_empty() { vec![&[][..]] } else { inputs.chunks(FIT_BATCH).collect() };
        let count = chunks.len();
        let mut state: Option<Vec<u8>> = None;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let batch = customer_batch(chunk);
            let last = i + 1 == count;
            let previous = state.take();
            let next = self
                .call(active, move |plugin, ctx| {
                    let ctx = ctx.clone().with_limits(fit_limits());
                    plugin.fit(&ctx, previous.as_deref(), &batch, as_of, last)
                })
                .await
                .map_err(failure)?;
            state = Some(next);
        }
        state.ok_or_else(|| StoreError::Plugin("the fit returned no model".into()))
    }

    /// `active`'s predictions for `inputs` from `model`, with expected purchases over
    /// each of `horizons` days.
    pub async fn predict_with(
        &self,
        active: &Active,
        model: Arc<Vec<u8>>,
        inputs: &[PredictionInput],
        as_of: i64,
        horizons: &[u32],
    ) -> StoreResult<Predictions> {
        let batch = customer_batch(inputs);
        let horizons = horizons.to_vec();
        self.call(active, move |plugin, ctx| {
            let ctx = ctx.clone().with_limits(predict_limits());
            plugin.predict(&ctx, &model, &batch, as_of, &horizons)
        })
        .await
        .map_err(failure)
    }

    /// Fits `active` over the shop's customers now, stores the model, predicts for
    /// every customer with a paid order and stores their predictions and segments.
    /// A failed fit stores nothing: the previous model and predictions stay.
    pub async fn fit_and_predict(
        &self,
        shop: &Shop,
        active: &Active,
        progress: Progress<'_>,
    ) -> StoreResult<PredictionReport> {
        let db = self.db();
        let source = active.install.name.clone();
        let inputs = self.prediction_inputs(shop.id).await?;
        let total = inputs.len() as u64;
        let as_of = now_ms();
        let started = Instant::now();
        let model = self.fit_predictor(active, &inputs, as_of).await?;
        db.save_prediction_model(shop.id, &source, &model, as_of, i64::try_from(inputs.len()).unwrap_or(i64::MAX))
            .await?;
        let mut report = PredictionReport {
            plugin: active.plugin.label().to_owned(),
            customers: total,
            model_bytes: model.len() as u64,
            fit_seconds: started.elapsed().as_secs_f64(),
            ..PredictionReport::default()
        };
        let started = Instant::now();
        let model = Arc::new(model);
        let mut done = 0u64;
        for chunk in inputs.chunks(PREDICT_BATCH) {
            let out = self.predict_with(active, model.clone(), chunk, as_of, &HORIZONS).await?;
            let rows: Vec<CustomerPrediction> = chunk
                .iter()
                .enumerate()
                .map(|(i, c)| CustomerPrediction {
                    customer_id: c.customer_id,
                    plugin: source.clone(),
                    predicted_at: as_of,
                    p_alive: finite(out.p_alive[i], 0.0, 1.0),
                    expected_purchases_30d: finite(out.expected_purchases[i * 3], 0.0, 1e9),
                    expected_purchases_90d: finite(out.expected_purchases[i * 3 + 1], 0.0, 1e9),
                    expected_purchases_365d: finite(out.expected_purchases[i * 3 + 2], 0.0, 1e9),
                    expected_order_value: money(out.expected_order_value[i]),
                    clv: money(out.clv[i]),
                })
                .collect();
            db.save_predictions(shop.id, &rows).await?;
            let memberships = Memberships::from_parts(out.segment_names, out.segment_ends, out.segment_members)
                .map_err(|reason| failure(format!("{}: predict: {reason}", active.plugin.label())))?;
            self.apply_prediction_segments(shop.id, &source, chunk, &memberships, &mut report.segments).await?;
            done += chunk.len() as u64;
            progress(done, total);
        }
        report.predict_seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Makes the plugin's segments of a batch of customers current (history kept).
    async fn apply_prediction_segments(
        &self,
        shop_id: i64,
        source: &str,
        chunk: &[PredictionInput],
        memberships: &Memberships,
        sizes: &mut BTreeMap<String, u64>,
    ) -> StoreResult<()> {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else { return Ok(()) };
        let db = self.db();
        let mut current_all = db.segments_in_range_from(shop_id, first.customer_id, last.customer_id, source).await?;
        let mut changes = Vec::new();
        for (i, c) in chunk.iter().enumerate() {
            let wanted: BTreeSet<String> =
                memberships.segments(i).filter(|s| !s.trim().is_empty()).map(str::to_owned).collect();
            for segment in &wanted {
                *sizes.entry(segment.clone()).or_default() += 1;
            }
            let current = current_all.remove(&c.customer_id).unwrap_or_default();
            let change = MembershipChange {
                joined: wanted.difference(&current).cloned().collect(),
                left: current.difference(&wanted).cloned().collect(),
            };
            if !change.joined.is_empty() || !change.left.is_empty() {
                changes.push((c.customer_id, change));
            }
        }
        db.apply_membership_changes(shop_id, source, &changes).await
    }
}
