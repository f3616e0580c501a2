//! RFM scores: quintile boundaries over a population and the 1–5 score of one
//! customer against them.

use patron_sdk::Profile;
use patron_sdk::json::{self, Fields, FromJson, ToJson, Value};

/// The 20th, 40th, 60th and 80th percentile of one dimension, ascending:
/// `b[k]` is the smallest value such that at least `(k + 1) / 5` of the
/// population has a value at or below it.
pub type Cuts<T> = [T; 4];

/// Quintile boundaries of the three dimensions; in kv, keys in kebab-case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boundaries {
    /// Days since the last order (fewer is better).
    pub recency_days: Cuts<u32>,
    /// Number of paid orders (more is better).
    pub frequency: Cuts<u32>,
    /// Total spent, minor units (more is better).
    pub monetary: Cuts<i64>,
}

impl FromJson for Boundaries {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self {
            recency_days: f.required("recency-days")?,
            frequency: f.required("frequency")?,
            monetary: f.required("monetary")?,
        })
    }
}

impl ToJson for Boundaries {
    fn to_json(&self) -> Value {
        json::object([
            ("recency-days", self.recency_days.to_json()),
            ("frequency", self.frequency.to_json()),
            ("monetary", self.monetary.to_json()),
        ])
    }
}

/// One customer's scores, each 1 (worst) to 5 (best).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Score {
    /// Recency score.
    pub r: u8,
    /// Frequency score.
    pub f: u8,
    /// Monetary score.
    pub m: u8,
}

impl Score {
    /// The combined frequency–monetary score: the mean of `f` and `m`,
    /// rounded half up (F 1 and M 2 give 2).
    pub fn fm(&self) -> u8 {
        (self.f + self.m).div_ceil(2)
    }

    /// The usual three-digit code, e.g. `"545"`.
    pub fn code(&self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }
}

/// 1 plus the number of cuts strictly below `value`: higher values score higher,
/// and equal values always score the same.
fn score_up<T: PartialOrd>(value: T, cuts: &Cuts<T>) -> u8 {
    1 + cuts.iter().filter(|c| value > **c).count() as u8
}

/// 5 minus the number of cuts strictly below `value`: lower values score higher.
fn score_down<T: PartialOrd>(value: T, cuts: &Cuts<T>) -> u8 {
    5 - cuts.iter().filter(|c| value > **c).count() as u8
}

impl Boundaries {
    /// The scores of `profile`, or `None` for a customer without a paid order
    /// (no recency to score). A customer whose last order is older than every
    /// recency cut (for example outside the window) scores R 1.
    pub fn score(&self, profile: &Profile) -> Option<Score> {
        let stats = &profile.stats;
        if stats.order_count == 0 {
            return None;
        }
        let days = stats.days_since_last_order?;
        Some(Score {
            r: score_down(days, &self.recency_days),
            f: score_up(stats.order_count, &self.frequency),
            m: score_up(stats.total_spent, &self.monetary),
        })
    }
}

/// Money is counted in buckets of three significant digits (12 345 falls in
/// 12 300..=12 399), which keeps a shop-wide histogram small; the monetary
/// cut is the top of its bucket, so customers in one bucket score alike.
pub fn monetary_bucket(amount: i64) -> i64 {
    if amount <= 0 {
        return 0;
    }
    let mut scale = 1i64;
    while amount / scale >= 1000 {
        scale *= 10;
    }
    (amount / scale) * scale
}

/// The largest amount in the bucket that starts at `bucket`.
fn bucket_top(bucket: i64) -> i64 {
    if bucket <= 0 {
        return 0;
    }
    let mut scale = 1i64;
    while bucket / scale >= 1000 {
        scale *= 10;
    }
    bucket.saturating_add(scale - 1)
}

/// Value counts of the three dimensions over a population: what the plugin
/// accumulates across the batches of a recompute (and keeps in kv between
/// calls), and what boundaries are computed from. In kv, an object with keys in
/// kebab-case, each count an object from value (as a string) to count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Customers counted.
    pub population: u64,
    /// Days since last order → customers.
    pub recency_days: Counts,
    /// Order count → customers.
    pub frequency: Counts,
    /// Monetary bucket (see [`monetary_bucket`]) → customers.
    pub monetary: Counts,
}

impl Histogram {
    /// Counts `profile` if it belongs to the population: at least one paid
    /// order, the last one at most `window_days` ago. Returns whether it did.
    pub fn add(&mut self, profile: &Profile, window_days: u32) -> bool {
        let stats = &profile.stats;
        let Some(days) = stats.days_since_last_order else {
            return false;
        };
        if stats.order_count == 0 || days > window_days {
            return false;
        }
        self.recency_days.add(i64::from(days), 1);
        self.add_lifetime(profile);
        true
    }

    /// Counts `profile`'s frequency and money only (no recency): the customers
    /// with orders outside the window, whose F and M cuts are used when nobody
    /// ordered within it. Returns whether it counted them (they have an order).
    pub fn add_lifetime(&mut self, profile: &Profile) -> bool {
        let stats = &profile.stats;
        if stats.order_count == 0 {
            return false;
        }
        self.population += 1;
        self.frequency.add(i64::from(stats.order_count), 1);
        self.monetary.add(monetary_bucket(stats.total_spent), 1);
        true
    }

    /// The frequency and monetary cuts of the population with every recency
    /// cut at `window_days`: for a shop where nobody ordered within the
    /// window, so that everyone (older than the window) scores R 1.
    pub fn boundaries_outside(&self, window_days: u32) -> Option<Boundaries> {
        Some(Boundaries {
            recency_days: [window_days; 4],
            frequency: cuts(&self.frequency, self.population)?.map(small),
            monetary: cuts(&self.monetary, self.population)?.map(bucket_top),
        })
    }

    /// The quintile boundaries of the population, if it is not empty.
    pub fn boundaries(&self) -> Option<Boundaries> {
        Some(Boundaries {
            recency_days: cuts(&self.recency_days, self.population)?.map(small),
            frequency: cuts(&self.frequency, self.population)?.map(small),
            monetary: cuts(&self.monetary, self.population)?.map(bucket_top),
        })
    }
}

/// Counts of values, by ascending value: one dimension of a [`Histogram`]. In kv, an
/// object from value (as text) to count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(Vec<(i64, u64)>);

impl Counts {
    /// Counts `n` more of `value`.
    pub fn add(&mut self, value: i64, n: u64) {
        match self.0.binary_search_by_key(&value, |&(v, _)| v) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (value, n)),
        }
    }

    /// The count of `value`.
    pub fn get(&self, value: i64) -> u64 {
        self.0.binary_search_by_key(&value, |&(v, _)| v).map_or(0, |i| self.0[i].1)
    }

    /// (value, count), by ascending value.
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl FromJson for Counts {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut counts = Self::default();
        json::entries_of(value, |key, count| {
            let key = key.parse().map_err(|_| json::Error::new("expected an integer key"))?;
            counts.add(key, u64::from_json(count)?);
            Ok(())
        })?;
        Ok(counts)
    }
}

impl ToJson for Counts {
    fn to_json(&self) -> Value {
        Value::Object(self.iter().map(|(value, count)| (value.to_string(), Value::from(count))).collect())
    }
}

/// A recency or frequency cut, counted as `u32`.
fn small(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl FromJson for Histogram {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self {
            population: f.or("population", 0)?,
            recency_days: f.or("recency-days", Counts::default())?,
            frequency: f.or("frequency", Counts::default())?,
            monetary: f.or("monetary", Counts::default())?,
        })
    }
}

impl ToJson for Histogram {
    fn to_json(&self) -> Value {
        json::object([
            ("population", Value::from(self.population)),
            ("recency-days", self.recency_days.to_json()),
            ("frequency", self.frequency.to_json()),
            ("monetary", self.monetary.to_json()),
        ])
    }
}

/// The four quintile cuts of counts over `population`.
fn cuts(counts: &Counts, population: u64) -> Option<Cuts<i64>> {
    let (first, _) = counts.iter().next()?;
    let mut out = [first; 4];
    for (k, cut) in out.iter_mut().enumerate() {
        // At least (k + 1) / 5 of the population, rounded up.
        let target = ((k as u64 + 1) * population).div_ceil(5).max(1);
        let mut seen = 0;
        for (value, count) in counts.iter() {
            seen += count;
            if seen >= target {
                *cut = value;
                break;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use patron_sdk::testing::profile;

    use super::*;

    fn customer(orders: u32, spent: i64, days: u32) -> Profile {
        let mut p = profile("c");
        p.stats.order_count = orders;
        p.stats.total_spent = spent;
        p.stats.days_since_last_order = Some(days);
        p
    }

    #[test]
    fn ten_distinct_values_split_two_per_quintile() {
        let mut h = Histogram::default();
        for i in 1..=10 {
            assert!(h.add(&customer(i, i64::from(i) * 100, i), 365));
        }
        let b = h.boundaries().expect("population");
        assert_eq!(b.frequency, [2, 4, 6, 8]);
        assert_eq!(b.recency_days, [2, 4, 6, 8]);
        assert_eq!(b.monetary, [200, 400, 600, 800]);
        let scores: Vec<u8> = (1..=10).map(|i| score_up(i, &b.frequency)).collect();
        assert_eq!(scores, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        let recency: Vec<u8> = (1..=10).map(|d| score_down(d, &b.recency_days)).collect();
        assert_eq!(recency, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn ties_score_alike_and_outsiders_are_not_counted() {
        let mut h = Histogram::default();
        // 6 one-order customers, 2 with two orders, 2 with five.
        for orders in [1, 1, 1, 1, 1, 1, 2, 2, 5, 5] {
            h.add(&customer(orders, 1000, 10), 365);
        }
        assert!(!h.add(&customer(9, 1000, 400), 365), "outside the window");
        assert!(!h.add(&profile("prospect"), 365), "no order");
        let b = h.boundaries().expect("population");
        assert_eq!(h.population, 10);
        assert_eq!(b.frequency, [1, 1, 1, 2]);
        assert_eq!(score_up(1, &b.frequency), 1);
        assert_eq!(score_up(2, &b.frequency), 4);
        assert_eq!(score_up(5, &b.frequency), 5);
        // Last order older than every cut: R 1.
        let old = b.score(&customer(9, 1000, 400)).expect("has orders");
        assert_eq!(old.r, 1);
        assert_eq!(b.score(&profile("prospect")), None);
    }

    #[test]
    fn money_is_bucketed_to_three_digits() {
        assert_eq!(monetary_bucket(12_345), 12_300);
        assert_eq!(bucket_top(12_300), 12_399);
        assert_eq!(monetary_bucket(999), 999);
        assert_eq!(bucket_top(999), 999);
        assert_eq!(monetary_bucket(-5), 0);
        let mut h = Histogram::default();
        for spent in [12_301, 12_345, 12_399, 50_000, 90_000] {
            h.add(&customer(1, spent, 1), 365);
        }
        let b = h.boundaries().expect("population");
        // The three customers of the 12 3xx bucket score the same.
        let m: Vec<u8> = [12_301, 12_345, 12_399].iter().map(|v| score_up(*v, &b.monetary)).collect();
        assert!(m.iter().all(|s| *s == m[0]), "{m:?}");
        assert!(score_up(90_000, &b.monetary) > m[0]);
    }

    #[test]
    fn histograms_and_boundaries_read_back_as_serde_wrote_them() {
        // The form the plugin kept in kv before it read JSON without serde.
        let stored =
            r#"{"population":3,"recency-days":{"4":2,"30":1},"frequency":{"1":2,"12":1},"monetary":{"0":1,"12300":2}}"#;
        let h: Histogram = json::from_str(stored).expect("histogram");
        assert_eq!(h.population, 3);
        assert_eq!(h.recency_days.iter().collect::<Vec<_>>(), [(4, 2), (30, 1)]);
        assert_eq!((h.monetary.get(12_300), h.monetary.get(12_400)), (2, 0));
        assert_eq!(json::to_string(&h), stored);
        let b = Boundaries { recency_days: [1, 2, 3, 4], frequency: [1, 1, 2, 3], monetary: [0, 99, 12_399, i64::MAX] };
        let text = json::to_string(&b);
        assert_eq!(
            text,
            r#"{"recency-days":[1,2,3,4],"frequency":[1,1,2,3],"monetary":[0,99,12399,9223372036854775807]}"#
        );
        assert_eq!(json::from_str::<Boundaries>(&text), Ok(b));
        assert!(json::from_str::<Histogram>(r#"{"frequency":{"x":1}}"#).is_err());
        // Out of order (written by hand): counted in order all the same.
        let h: Histogram = json::from_str(r#"{"population":2,"frequency":{"9":1,"2":1,"9":3}}"#).expect("histogram");
        assert_eq!(h.frequency.iter().collect::<Vec<_>>(), [(2, 1), (9, 4)]);
        assert!(
            json::from_str::<Boundaries>(r#"{"recency-days":[1,2,3],"frequency":[1,1,2,3],"monetary":[0,0,0,0]}"#)
                .is_err()
        );
    }

    #[test]
    fn fm_rounds_half_up() {
        assert_eq!(Score { r: 5, f: 1, m: 2 }.fm(), 2);
        assert_eq!(Score { r: 5, f: 1, m: 1 }.fm(), 1);
        assert_eq!(Score { r: 5, f: 4, m: 5 }.fm(), 5);
        assert_eq!(Score { r: 3, f: 4, m: 5 }.code(), "345");
    }
}
