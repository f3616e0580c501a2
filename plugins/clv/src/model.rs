//! From order statistics to a fitted model, and from the model to each
//! customer's predictions. The host fits in batches: every batch but the last
//! is folded into a compact state ([`FitState`]); the last one fits.

use patron_sdk::json::{self, Fields, FromJson, ToJson, Value};
use patron_sdk::{Error, Memberships, PredictionBatch, Predictions, Result, Timestamp};

use crate::bgnbd::{BgNbd, Fitted, Rft};
use crate::config::Config;
use crate::gamma_gamma::{GammaGamma, Spend};

/// Milliseconds in a day: the models count time in days.
pub const DAY_MS: f64 = 86_400_000.0;
/// Days in a month, for CLV's monthly steps.
pub const MONTH_DAYS: f64 = 365.25 / 12.0;
/// Days within which a customer's last order counts as the same purchase occasion as
/// their first.
pub const SAME_OCCASION_DAYS: f64 = 1.0;
/// The model format this plugin writes.
const MODEL_VERSION: u32 = 1;

/// One customer's order statistics, as the models take them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    /// Paid orders.
    pub orders: u32,
    /// Average paid order, in minor units.
    pub average: f64,
    /// Days from the first paid order to the last.
    pub t_x: f64,
    /// Days from the first paid order to the time of the fit or prediction.
    pub t: f64,
}

impl Customer {
    /// Customer `i` of `batch` at `as_of`; `None` without a paid order. An
    /// order after `as_of` (a clock skew) counts as placed at `as_of`, and a
    /// last order before the first as placed with it.
    pub fn from_batch(batch: &PredictionBatch, i: usize, as_of: Timestamp) -> Option<Self> {
        let orders = *batch.order_count.get(i)?;
        let first = *batch.first_order_at.get(i)?;
        let last = *batch.last_order_at.get(i)?;
        if orders == 0 || first == i64::MIN {
            return None;
        }
        let last = if last == i64::MIN { first } else { last.max(first) };
        let t = (as_of.saturating_sub(first).max(0)) as f64 / DAY_MS;
        let t_x = ((last.saturating_sub(first)) as f64 / DAY_MS).min(t);
        let total = *batch.total_spent.get(i)?;
        Some(Self { orders, average: total as f64 / f64::from(orders), t_x, t })
    }

    /// The purchase-process summary: repeat purchases, recency, age. Orders within
    /// a day of the first are one purchase occasion with it (BG/NBD counts purchase
    /// occasions; repeat purchases at the first one's instant would make the
    /// likelihood unbounded as α → 0): such a customer has no repeat purchase.
    pub fn rft(&self) -> Rft {
        let x = self.orders - 1;
        if x == 0 || self.t_x < SAME_OCCASION_DAYS {
            return Rft { x: 0, t_x: 0.0, t: self.t };
        }
        Rft { x, t_x: self.t_x, t: self.t }
    }

    /// The customer as a fit state stores them (times and average as `f32`), so a
    /// fit in one batch and in several see the same numbers.
    fn stored(self) -> Self {
        let round = |v: f64| f64::from(v as f32);
        Self { average: round(self.average), t_x: round(self.t_x), t: round(self.t), ..self }
    }

    /// The spend summary.
    pub fn spend(&self) -> Spend {
        Spend { n: self.orders, m: self.average }
    }
}

/// The customers of the batches fitted so far, kept between `fit` calls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitState {
    /// The time the fit is as of (the same for every batch).
    pub as_of: Timestamp,
    /// The customers seen.
    pub customers: Vec<Customer>,
}

const STATE_MAGIC: &[u8; 8] = b"clvfit01";
/// Bytes per customer in an encoded state.
const STATE_ROW: usize = 4 + 3 * 4;

impl FitState {
    /// The state as bytes (times and averages as `f32`: ample for days and cents).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.customers.len() * STATE_ROW);
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&self.as_of.to_le_bytes());
        for c in &self.customers {
            out.extend_from_slice(&c.orders.to_le_bytes());
            out.extend_from_slice(&(c.average as f32).to_le_bytes());
            out.extend_from_slice(&(c.t_x as f32).to_le_bytes());
            out.extend_from_slice(&(c.t as f32).to_le_bytes());
        }
        out
    }

    /// The state these bytes encode.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = || Error::new("bad-state", "fit state is not one this plugin wrote");
        if bytes.len() < 16 || &bytes[..8] != STATE_MAGIC || !(bytes.len() - 16).is_multiple_of(STATE_ROW) {
            return Err(bad());
        }
        let as_of = i64::from_le_bytes(bytes[8..16].try_into().map_err(|_| bad())?);
        let word = |row: &[u8], k: usize| -> [u8; 4] { [row[k], row[k + 1], row[k + 2], row[k + 3]] };
        let customers = bytes[16..]
            .chunks_exact(STATE_ROW)
            .map(|row| Customer {
                orders: u32::from_le_bytes(word(row, 0)),
                average: f64::from(f32::from_le_bytes(word(row, 4))),
                t_x: f64::from(f32::from_le_bytes(word(row, 8))),
                t: f64::from(f32::from_le_bytes(word(row, 12))),
            })
            .collect();
        Ok(Self { as_of, customers })
    }
}

/// Fold `batch` into `state` (none: the first batch); on the `last` batch,
/// fit and return the model, otherwise the new state.
pub fn fit_step(
    config: &Config,
    state: Option<&[u8]>,
    batch: &PredictionBatch,
    as_of: Timestamp,
    last: bool,
) -> Result<Vec<u8>> {
    batch.check().map_err(|e| Error::new("bad-input", e))?;
    let mut state = match state.filter(|s| !s.is_empty()) {
        Some(bytes) => FitState::decode(bytes)?,
        None => FitState { as_of, customers: Vec::new() },
    };
    if state.as_of != as_of {
        return Err(Error::new("bad-input", "every batch of one fit must have the same as-of time"));
    }
    state
        .customers
        .extend((0..batch.len()).filter_map(|i| Customer::from_batch(batch, i, as_of).map(Customer::stored)));
    if !last {
        return Ok(state.encode());
    }
    let model = Model::fit(config, &state.customers, as_of).map_err(|e| Error::new(e.code(), e.to_string()))?;
    model.encode()
}

/// A fitted model, as the host stores it (JSON: small, and readable by anyone
/// who wants to check what was fitted; keys in snake_case).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Format version.
    pub version: u32,
    /// The time the model was fitted as of.
    pub as_of: Timestamp,
    /// The purchase process.
    pub bgnbd: Fitted<BgNbd>,
    /// Spend per order; `None` when it could not be fitted (see `spend_note`).
    pub gamma_gamma: Option<Fitted<GammaGamma>>,
    /// Why spend per order falls back to observed averages, if it does.
    pub spend_note: Option<String>,
    /// The mean of customers' positive average orders: the expected order
    /// value of a customer without one when Gamma-Gamma is unavailable.
    pub fallback_order_value: f64,
    /// Predicted CLV at or above which a customer is in the high-value segment
    /// (the top `high-value-share` at fit time); `None`: nobody is.
    pub high_value_cutoff: Option<f64>,
}

impl FromJson for Model {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self {
            version: f.required("version")?,
            as_of: f.required("as_of")?,
            bgnbd: f.required("bgnbd")?,
            gamma_gamma: f.optional("gamma_gamma")?,
            spend_note: f.optional("spend_note")?,
            fallback_order_value: f.required("fallback_order_value")?,
            high_value_cutoff: f.optional("high_value_cutoff")?,
        })
    }
}

impl ToJson for Model {
    fn to_json(&self) -> Value {
        json::object([
            ("version", self.version.to_json()),
            ("as_of", self.as_of.to_json()),
            ("bgnbd", self.bgnbd.to_json()),
            ("gamma_gamma", self.gamma_gamma.to_json()),
            ("spend_note", self.spend_note.to_json()),
            ("fallback_order_value", self.fallback_order_value.to_json()),
            ("high_value_cutoff", self.high_value_cutoff.to_json()),
        ])
    }
}

impl Model {
    /// Fit both models over `customers` as of `as_of`. The purchase process must
    /// fit; spend per order falls back to observed averages if it cannot.
    pub fn fit(
        config: &Config,
        customers: &[Customer],
        as_of: Timestamp,
    ) -> std::result::Result<Self, crate::FitError> {
        let rfts: Vec<Rft> = customers.iter().map(Customer::rft).collect();
        let bgnbd = BgNbd::fit(&rfts)?;
        let spends: Vec<Spend> = customers.iter().map(Customer::spend).collect();
        let (gamma_gamma, spend_note) = match GammaGamma::fit(&spends) {
            Ok(fit) if fit.params.population_mean().is_some() => (Some(fit), None),
            Ok(fit) => (
                None,
                Some(format!(
                    "Gamma-Gamma fitted q = {:.3} <= 1 (mean order value unbounded): observed averages used instead",
                    fit.params.q
                )),
            ),
            Err(e) => (None, Some(format!("{e}: observed averages used instead"))),
        };
        let positive: Vec<f64> = customers.iter().map(|c| c.average).filter(|m| *m > 0.0).collect();
        let fallback_order_value =
            if positive.is_empty() { 0.0 } else { positive.iter().sum::<f64>() / positive.len() as f64 };
        let mut model = Self {
            version: MODEL_VERSION,
            as_of,
            bgnbd,
            gamma_gamma,
            spend_note,
            fallback_order_value,
            high_value_cutoff: None,
        };
        let mut clvs = Vec::with_capacity(customers.len());
        for c in customers {
            let clv = model.clv(config, c).map_err(|e| crate::FitError::BadInput(e.message))?;
            clvs.push(clv);
        }
        let order = crate::optimize::ascending(&clvs);
        let top = (config.high_value_share * clvs.len() as f64).ceil() as usize;
        // The `top`-th largest CLV.
        let at = top.checked_sub(1).and_then(|k| order.len().checked_sub(k + 1));
        model.high_value_cutoff = at.map(|i| clvs[order[i]]).filter(|v| *v > 0.0);
        Ok(model)
    }

    /// The model as bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        Ok(json::to_string(self).into_bytes())
    }

    /// The model these bytes encode, checked.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let model: Self =
            json::from_slice(bytes).map_err(|e| Error::new("bad-model", format!("not a clv model: {e}")))?;
        if model.version != MODEL_VERSION || !model.bgnbd.params.is_valid() {
            return Err(Error::new("bad-model", "not a clv model of this version"));
        }
        Ok(model)
    }

    /// Expected purchases of `c` in the `days` after now.
    pub fn expected_purchases(&self, c: &Customer, days: f64) -> Result<f64> {
        self.bgnbd
            .params
            .expected_purchases(&c.rft(), days)
            .map_err(|e| Error::new("not-converged", format!("expected purchases: {e}")))
    }

    /// The expected value of `c`'s future orders, in minor units.
    pub fn expected_order_value(&self, c: &Customer) -> f64 {
        let spend = c.spend();
        match self.gamma_gamma.as_ref().and_then(|g| g.params.expected_order_value(&spend)) {
            Some(v) => v,
            None if spend.m > 0.0 => spend.m,
            None => self.fallback_order_value,
        }
    }

    /// `c`'s discounted value over the configured horizon, in minor units:
    /// `Σ_{i=1..H} (E[Y(i·M)] - E[Y((i-1)·M)]) · E[order value] / (1+d)^i`
    /// with M a month of days.
    pub fn clv(&self, config: &Config, c: &Customer) -> Result<f64> {
        let value = self.expected_order_value(c);
        let mut previous = 0.0;
        let mut clv = 0.0;
        for i in 1..=config.clv_horizon_months {
            let cumulative = self.expected_purchases(c, f64::from(i) * MONTH_DAYS)?;
            clv += (cumulative - previous).max(0.0) * value / (1.0 + config.monthly_discount_rate).powi(i as i32);
            previous = cumulative;
        }
        Ok(clv)
    }

    /// Predictions for every customer of `batch` as of `as_of`, with expected
    /// purchases over each of `horizon_days`. Customers without a paid order
    /// get zeros and no segment.
    pub fn predict(
        &self,
        config: &Config,
        batch: &PredictionBatch,
        as_of: Timestamp,
        horizon_days: &[u32],
    ) -> Result<Predictions> {
        batch.check().map_err(|e| Error::new("bad-input", e))?;
        let n = batch.len();
        let mut out = Predictions {
            p_alive: Vec::with_capacity(n),
            expected_purchases: Vec::with_capacity(n * horizon_days.len()),
            expected_order_value: Vec::with_capacity(n),
            clv: Vec::with_capacity(n),
            segments: Memberships::with_capacity(n),
        };
        let at_risk = out.segments.segment(&config.at_risk_segment);
        let high_value = out.segments.segment(&config.high_value_segment);
        for i in 0..n {
            let Some(c) = Customer::from_batch(batch, i, as_of) else {
                out.p_alive.push(0.0);
                out.expected_purchases.extend(horizon_days.iter().map(|_| 0.0));
                out.expected_order_value.push(0.0);
                out.clv.push(0.0);
                out.segments.push_segments(None);
                continue;
            };
            let p_alive = self.bgnbd.params.p_alive(&c.rft());
            for &days in horizon_days {
                out.expected_purchases.push(self.expected_purchases(&c, f64::from(days))?);
            }
            let clv = self.clv(config, &c)?;
            out.p_alive.push(p_alive);
            out.expected_order_value.push(self.expected_order_value(&c));
            out.clv.push(clv);
            let risky = c.orders >= config.at_risk_min_orders && p_alive < config.at_risk_below;
            let valuable = self.high_value_cutoff.is_some_and(|cut| clv >= cut);
            out.segments.push_segments(risky.then_some(at_risk).into_iter().chain(valuable.then_some(high_value)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shop of `n` simulated customers as the host would send it, as of day 730.
    fn shop(seed: u64, n: usize) -> (PredictionBatch, Timestamp) {
        let as_of = 730 * 86_400_000;
        (crate::simulate::shop(seed, n, as_of), as_of)
    }

    fn split(batch: &PredictionBatch, at: usize) -> (PredictionBatch, PredictionBatch) {
        let part = |r: std::ops::Range<usize>| PredictionBatch {
            order_count: batch.order_count[r.clone()].to_vec(),
            total_spent: batch.total_spent[r.clone()].to_vec(),
            first_order_at: batch.first_order_at[r.clone()].to_vec(),
            last_order_at: batch.last_order_at[r].to_vec(),
        };
        (part(0..at), part(at..batch.len()))
    }

    #[test]
    fn fits_in_batches_and_predicts_without_nan() {
        let config = Config::default();
        let (batch, as_of) = shop(5, 5_000);
        let (first, second) = split(&batch, 2_000);
        let state = fit_step(&config, None, &first, as_of, false).expect("a value");
        let model = fit_step(&config, Some(&state), &second, as_of, true).expect("a value");
        let model = Model::decode(&model).expect("a value");
        // One batch gives the same model as two.
        let whole = Model::decode(&fit_step(&config, None, &batch, as_of, true).expect("a value")).expect("a value");
        assert_eq!(model, whole);
        assert!(model.gamma_gamma.is_some(), "{model:?}");

        let out = model.predict(&config, &batch, as_of, &[30, 90, 365]).expect("a value");
        assert_eq!(out.p_alive.len(), 5_000);
        assert_eq!(out.expected_purchases.len(), 15_000);
        assert_eq!(out.segments.len(), 5_000);
        for i in 0..5_000 {
            let p = &out.expected_purchases[i * 3..i * 3 + 3];
            assert!((0.0..=1.0).contains(&out.p_alive[i]));
            assert!(p[0] <= p[1] && p[1] <= p[2] && p.iter().all(|v| v.is_finite()), "{p:?}");
            assert!(out.clv[i].is_finite() && out.clv[i] >= 0.0 && out.expected_order_value[i] > 0.0);
        }
        // About the configured share is predicted high value; some customers are at risk.
        let lists = out.segments.to_lists();
        let high = lists.iter().filter(|s| s.iter().any(|n| n == "predicted-high-value")).count();
        assert!((450..=550).contains(&high), "{high}");
        assert!(lists.iter().any(|s| s.iter().any(|n| n == "at-risk")));
    }

    #[test]
    fn degenerate_shops_get_an_error_not_nan() {
        let config = Config::default();
        let as_of = 100 * 86_400_000;
        let batch = |orders: u32, total: i64, first: i64, last: i64, n: usize| PredictionBatch {
            order_count: vec![orders; n],
            total_spent: vec![total; n],
            first_order_at: vec![first; n],
            last_order_at: vec![last; n],
        };
        // A tiny shop.
        let e = fit_step(&config, None, &batch(2, 100, 0, 10, 4), as_of, true).expect_err("an error");
        assert_eq!(e.code, "not-enough-data", "{e:?}");
        // Everyone ordered once.
        let e = fit_step(&config, None, &batch(1, 100, 0, 0, 500), as_of, true).expect_err("an error");
        assert_eq!(e.code, "not-enough-data", "{e:?}");
        assert!(e.message.contains("more than once"), "{}", e.message);
        // Everyone is new: first order at the as-of time.
        let e = fit_step(&config, None, &batch(3, 100, as_of, as_of, 500), as_of, true).expect_err("an error");
        assert_eq!(e.code, "not-enough-data", "{e:?}");
        // Nobody has ever ordered.
        let e = fit_step(&config, None, &batch(0, 0, i64::MIN, i64::MIN, 500), as_of, true).expect_err("an error");
        assert_eq!(e.code, "not-enough-data", "{e:?}");
        // Columns of different lengths.
        let mut bad = batch(2, 100, 0, 10, 50);
        bad.total_spent.pop();
        assert_eq!(fit_step(&config, None, &bad, as_of, true).expect_err("an error").code, "bad-input");
    }

    #[test]
    fn zero_value_orders_fall_back_without_nan() {
        let config = Config::default();
        let (mut batch, as_of) = shop(9, 2_000);
        // Every order is free: Gamma-Gamma has nothing to fit.
        batch.total_spent.iter_mut().for_each(|t| *t = 0);
        let model = Model::decode(&fit_step(&config, None, &batch, as_of, true).expect("a value")).expect("a value");
        assert!(model.gamma_gamma.is_none() && model.spend_note.is_some(), "{model:?}");
        assert_eq!(model.high_value_cutoff, None);
        let out = model.predict(&config, &batch, as_of, &[30]).expect("a value");
        assert!(out.clv.iter().all(|v| *v == 0.0) && out.expected_order_value.iter().all(|v| *v == 0.0));
        assert!(out.p_alive.iter().all(|p| p.is_finite()));
    }

    #[test]
    fn state_round_trips_and_refuses_garbage() {
        let state =
            FitState { as_of: 42, customers: vec![Customer { orders: 3, average: 1250.0, t_x: 12.5, t: 300.0 }] };
        assert_eq!(FitState::decode(&state.encode()).expect("a value"), state);
        assert_eq!(FitState::decode(b"nonsense").expect_err("an error").code, "bad-state");
        assert_eq!(Model::decode(b"{}").expect_err("an error").code, "bad-model");
    }

    /// A model stored before the plugin dropped serde still reads, and writes back the same.
    #[test]
    fn models_keep_their_json_form() {
        let stored = r#"{"version":1,"as_of":1700000000000,"bgnbd":{"params":{"r":0.243,"alpha":4.414,"a":0.793,"b":2.426},"log_likelihood":-9582.429,"customers":2357,"evaluations":412},"gamma_gamma":{"params":{"p":6.25,"q":3.74,"gamma":15.44},"log_likelihood":-4039.4,"customers":946,"evaluations":230},"spend_note":null,"fallback_order_value":35.078,"high_value_cutoff":0.1}"#;
        let model = Model::decode(stored.as_bytes()).expect("a clv model");
        assert_eq!(model.bgnbd.params.alpha, 4.414);
        assert_eq!(model.gamma_gamma.as_ref().map(|g| g.customers), Some(946));
        assert_eq!(String::from_utf8(model.encode().expect("encoded")).expect("UTF-8"), stored);
        let without = stored.replace(r#"{"params":{"p":6.25,"q":3.74,"gamma":15.44},"log_likelihood":-4039.4,"customers":946,"evaluations":230}"#, "null");
        assert_eq!(Model::decode(without.as_bytes()).expect("a clv model").gamma_gamma, None);
    }
}
