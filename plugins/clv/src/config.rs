//! The install's configuration (see README.md, "Config").

use patron_sdk::json::{self, Fields, FromJson, Value};

/// Every key is optional; the defaults are in [`Config::default`]. In config, keys in
/// kebab-case, unknown keys refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Months of future purchases CLV counts.
    pub clv_horizon_months: u32,
    /// Discount per month applied to future spend (0.01 = 1 % a month).
    pub monthly_discount_rate: f64,
    /// Segment of customers who were active and are likely gone.
    pub at_risk_segment: String,
    /// P(alive) below which an active customer is at risk.
    pub at_risk_below: f64,
    /// Paid orders a customer needs to count as having been active.
    pub at_risk_min_orders: u32,
    /// Segment of the customers with the highest predicted CLV.
    pub high_value_segment: String,
    /// Share of customers (by predicted CLV, at the last fit) in the high-value segment.
    pub high_value_share: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clv_horizon_months: 12,
            monthly_discount_rate: 0.01,
            at_risk_segment: "at-risk".into(),
            at_risk_below: 0.3,
            at_risk_min_orders: 2,
            high_value_segment: "predicted-high-value".into(),
            high_value_share: 0.1,
        }
    }
}

impl FromJson for Config {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let d = Self::default();
        let mut f = Fields::new(value)?;
        let config = Self {
            clv_horizon_months: f.or("clv-horizon-months", d.clv_horizon_months)?,
            monthly_discount_rate: f.or("monthly-discount-rate", d.monthly_discount_rate)?,
            at_risk_segment: f.or("at-risk-segment", d.at_risk_segment)?,
            at_risk_below: f.or("at-risk-below", d.at_risk_below)?,
            at_risk_min_orders: f.or("at-risk-min-orders", d.at_risk_min_orders)?,
            high_value_segment: f.or("high-value-segment", d.high_value_segment)?,
            high_value_share: f.or("high-value-share", d.high_value_share)?,
        };
        f.finish()?;
        Ok(config)
    }
}

impl Config {
    /// What is wrong with the config, if anything.
    pub fn problem(&self) -> Option<String> {
        if !(1..=120).contains(&self.clv_horizon_months) {
            return Some(format!("clv-horizon-months must be 1..=120, not {}", self.clv_horizon_months));
        }
        if !(0.0..1.0).contains(&self.monthly_discount_rate) {
            return Some(format!("monthly-discount-rate must be in [0, 1), not {}", self.monthly_discount_rate));
        }
        if !(0.0..=1.0).contains(&self.at_risk_below) {
            return Some(format!("at-risk-below must be in [0, 1], not {}", self.at_risk_below));
        }
        if !(0.0..=1.0).contains(&self.high_value_share) {
            return Some(format!("high-value-share must be in [0, 1], not {}", self.high_value_share));
        }
        if self.at_risk_segment.is_empty() || self.high_value_segment.is_empty() {
            return Some("segment names must not be empty".into());
        }
        None
    }
}
