//! The merchant's figures — overview, cohorts, RFM grid, loyalty, segment sizes over
//! time — each computed by one function that both `/v1/analytics/*` and the console
//! call. Figures are aggregated in SQL over indexed columns; Rust only shapes the few
//! rows that come back. What each figure means is in [`definitions`].

pub mod cohorts;
pub mod definitions;
pub mod loyalty;
pub mod overview;
pub mod rfm;
pub mod segments;

use serde::Serialize;

use crate::store::customers::InvalidInput;
use crate::timestamp::to_rfc3339;
use definitions::{Bucket, DAY_MS};

/// The longest period a query may cover.
pub const MAX_RANGE_DAYS: i64 = 3 * 366;
/// At most this many buckets in one trend.
pub const MAX_BUCKETS: i64 = 400;

/// A validated period [since, until) in unix ms, with the bucket its trends use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: i64,
    pub until: i64,
    pub bucket: Bucket,
}

impl Period {
    /// Checks since < until, the range limit and the number of buckets; without a bucket,
    /// days up to 92 days, weeks up to 2 years, then months.
    pub fn new(since: i64, until: i64, bucket: Option<Bucket>) -> Result<Self, InvalidInput> {
        if since >= until {
            return Err(InvalidInput::new("since", "must be before `until`"));
        }
        // Positive: since < until was checked.
        let days = (until - since + DAY_MS - 1) / DAY_MS;
        if days > MAX_RANGE_DAYS {
            return Err(InvalidInput::new("until", format!("the period may cover at most {MAX_RANGE_DAYS} days")));
        }
        let bucket = bucket.unwrap_or(if days <= 92 {
            Bucket::Day
        } else if days <= 2 * 366 {
            Bucket::Week
        } else {
            Bucket::Month
        });
        if bucket == Bucket::Day && days > MAX_BUCKETS {
            return Err(InvalidInput::new(
                "bucket",
                format!("`day` buckets are allowed for periods of up to {MAX_BUCKETS} days; use week or month"),
            ));
        }
        Ok(Self { since, until, bucket })
    }

    /// The period of equal length just before this one.
    pub fn previous(&self) -> Self {
        let length = self.until - self.since;
        Self { since: self.since - length, until: self.since, bucket: self.bucket }
    }
}

/// A period as a person reads it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PeriodView {
    pub since: String,
    pub until: String,
}

impl From<&Period> for PeriodView {
    fn from(period: &Period) -> Self {
        Self { since: to_rfc3339(period.since), until: to_rfc3339(period.until) }
    }
}

/// `numerator / denominator`, with both kept so that a reader can check it; `rate` is
/// null when the denominator is 0.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Rate {
    pub numerator: i64,
    pub denominator: i64,
    pub rate: Option<f64>,
}

impl Rate {
    pub fn new(numerator: i64, denominator: i64) -> Self {
        #[allow(clippy::cast_precision_loss)] // counts of customers are far below 2^52
        let rate = (denominator != 0).then(|| numerator as f64 / denominator as f64);
        Self { numerator, denominator, rate }
    }
}

/// `total / count` rounded to the nearest integer (halves away from zero); `None` for no count.
pub fn rounded_mean(total: i64, count: i64) -> Option<i64> {
    if count == 0 {
        return None;
    }
    let (total, count) = (i128::from(total), i128::from(count));
    let quotient = total / count;
    let remainder = total % count;
    let rounded = if remainder.abs() * 2 >= count { quotient + total.signum() } else { quotient };
    i64::try_from(rounded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_checked() {
        assert!(Period::new(10, 10, None).is_err());
        assert!(Period::new(0, (MAX_RANGE_DAYS + 1) * DAY_MS, None).is_err());
        assert!(Period::new(0, 500 * DAY_MS, Some(Bucket::Day)).is_err());
        let period = Period::new(0, 500 * DAY_MS, None).expect("valid");
        assert_eq!(period.bucket, Bucket::Week);
        assert_eq!(period.previous().since, -500 * DAY_MS);
    }

    #[test]
    fn means_round_to_nearest() {
        assert_eq!(rounded_mean(10, 4), Some(3)); // 2.5 → 3
        assert_eq!(rounded_mean(9, 4), Some(2)); // 2.25 → 2
        assert_eq!(rounded_mean(-10, 4), Some(-3));
        assert_eq!(rounded_mean(5, 0), None);
        assert_eq!(rounded_mean(i64::MAX, 1), Some(i64::MAX));
    }
}
