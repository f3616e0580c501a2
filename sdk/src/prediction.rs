//! What a [`Predictor`](crate::Predictor) is asked about and answers (since
//! contract 0.1.2): customers' order statistics in, per-customer predictions out,
//! both as columns.

use crate::{Memberships, Timestamp};

/// The order statistics of a batch of customers, one column per field: entry `i`
/// of every column is about customer `i`. Times use `i64::MIN` for none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PredictionBatch {
    /// Paid orders of each customer.
    pub order_count: Vec<u32>,
    /// Sum of paid orders minus refunds, in minor units.
    pub total_spent: Vec<i64>,
    /// Time of the first paid order, `i64::MIN` for none.
    pub first_order_at: Vec<Timestamp>,
    /// Time of the last paid order, `i64::MIN` for none.
    pub last_order_at: Vec<Timestamp>,
}

impl PredictionBatch {
    /// Number of customers.
    pub fn len(&self) -> usize {
        self.order_count.len()
    }

    /// Whether the batch has no customer.
    pub fn is_empty(&self) -> bool {
        self.order_count.is_empty()
    }

    /// Why the columns don't make a batch (different lengths), if they don't.
    pub fn check(&self) -> Result<(), String> {
        let n = self.len();
        let lengths = [self.total_spent.len(), self.first_order_at.len(), self.last_order_at.len()];
        if lengths.iter().any(|&len| len != n) {
            return Err(format!("batch columns differ in length: {n} order counts, then {lengths:?}"));
        }
        Ok(())
    }
}

/// Predictions for a batch of customers, in batch order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Predictions {
    /// Probability each customer is still a customer (may buy again), in [0, 1].
    pub p_alive: Vec<f64>,
    /// Expected purchases over each requested horizon: customer `i`'s are entries
    /// `i * h .. (i + 1) * h` for `h` horizons, in the order asked.
    pub expected_purchases: Vec<f64>,
    /// Expected value of each customer's future orders, in minor units.
    pub expected_order_value: Vec<f64>,
    /// Each customer's predicted lifetime value over the plugin's horizon, in minor units.
    pub clv: Vec<f64>,
    /// The segments each customer belongs to by these predictions.
    pub segments: Memberships,
}
