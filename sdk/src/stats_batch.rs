//! What a [`StatsSegmenter`](crate::StatsSegmenter) is asked about: the order
//! statistics of a batch of customers.

use crate::{CustomerStats, Timestamp};

/// How a column marks a missing time: the contract's "none" for `first-order-at` and
/// `last-order-at`.
const NO_TIME: Timestamp = i64::MIN;
/// How a column marks a missing day count (`days-since-last-order`).
const NO_DAYS: u32 = u32::MAX;

/// The order statistics of a batch of customers, stored as one column per field of
/// [`CustomerStats`]: the form in which they cross from the host, so a plugin reads
/// them where they arrived. [`iter`](Self::iter) and [`get`](Self::get) give each
/// customer's [`CustomerStats`]. Build one from customers' statistics with `collect`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsBatch {
    columns: StatsColumns,
}

/// The columns of a [`StatsBatch`], as the contract's `stats-batch` record has them:
/// entry `i` of every column is about customer `i`; times use the least `i64` and day
/// counts the greatest `u32` for none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsColumns {
    /// [`CustomerStats::order_count`] of each customer.
    pub order_count: Vec<u32>,
    /// [`CustomerStats::total_spent`] of each customer.
    pub total_spent: Vec<i64>,
    /// [`CustomerStats::average_order_value`] of each customer.
    pub average_order_value: Vec<i64>,
    /// [`CustomerStats::first_order_at`] of each customer, `i64::MIN` for none.
    pub first_order_at: Vec<Timestamp>,
    /// [`CustomerStats::last_order_at`] of each customer, `i64::MIN` for none.
    pub last_order_at: Vec<Timestamp>,
    /// [`CustomerStats::days_since_last_order`] of each customer, `u32::MAX` for none.
    pub days_since_last_order: Vec<u32>,
}

impl StatsBatch {
    /// A batch of these columns, or why they don't make one (columns of different lengths).
    pub fn from_columns(columns: StatsColumns) -> Result<Self, String> {
        let n = columns.order_count.len();
        let lengths = [
            columns.total_spent.len(),
            columns.average_order_value.len(),
            columns.first_order_at.len(),
            columns.last_order_at.len(),
            columns.days_since_last_order.len(),
        ];
        if lengths.iter().any(|&len| len != n) {
            return Err(format!("stats columns differ in length: {n} order counts, then {lengths:?}"));
        }
        Ok(Self { columns })
    }

    /// The columns, for sending the batch across the component boundary.
    pub fn into_columns(self) -> StatsColumns {
        self.columns
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.columns.order_count.len()
    }

    /// Whether the batch has no customer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The statistics of customer `i`, if the batch has that many.
    pub fn get(&self, i: usize) -> Option<CustomerStats> {
        let c = &self.columns;
        Some(decode(
            *c.order_count.get(i)?,
            *c.total_spent.get(i)?,
            *c.average_order_value.get(i)?,
            *c.first_order_at.get(i)?,
            *c.last_order_at.get(i)?,
            *c.days_since_last_order.get(i)?,
        ))
    }

    /// Each customer's statistics, in batch order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = CustomerStats> + '_ {
        let c = &self.columns;
        c.order_count
            .iter()
            .zip(&c.total_spent)
            .zip(&c.average_order_value)
            .zip(&c.first_order_at)
            .zip(&c.last_order_at)
            .zip(&c.days_since_last_order)
            .map(|(((((&orders, &spent), &average), &first), &last), &days)| {
                decode(orders, spent, average, first, last, days)
            })
    }

    /// Remove every customer, keeping the memory for the next batch.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Add a customer at the end.
    pub fn push(&mut self, stats: &CustomerStats) {
        let c = &mut self.columns;
        let (orders, spent, average, first, last, days) = encode(stats);
        c.order_count.push(orders);
        c.total_spent.push(spent);
        c.average_order_value.push(average);
        c.first_order_at.push(first);
        c.last_order_at.push(last);
        c.days_since_last_order.push(days);
    }

    /// `n` customers without orders, to be overwritten.
    fn filled(n: usize) -> Self {
        Self {
            columns: StatsColumns {
                order_count: vec![0; n],
                total_spent: vec![0; n],
                average_order_value: vec![0; n],
                first_order_at: vec![NO_TIME; n],
                last_order_at: vec![NO_TIME; n],
                days_since_last_order: vec![NO_DAYS; n],
            },
        }
    }

    fn truncate(&mut self, n: usize) {
        let c = &mut self.columns;
        c.order_count.truncate(n);
        c.total_spent.truncate(n);
        c.average_order_value.truncate(n);
        c.first_order_at.truncate(n);
        c.last_order_at.truncate(n);
        c.days_since_last_order.truncate(n);
    }
}

/// One customer's entries in the columns, in column order ("none" written as such).
type Row = (u32, i64, i64, Timestamp, Timestamp, u32);

#[inline]
fn encode(s: &CustomerStats) -> Row {
    (
        s.order_count,
        s.total_spent,
        s.average_order_value,
        s.first_order_at.unwrap_or(NO_TIME),
        s.last_order_at.unwrap_or(NO_TIME),
        s.days_since_last_order.unwrap_or(NO_DAYS),
    )
}

/// The customer whose entries in the columns these are (see [`encode`]).
#[inline]
fn decode(
    order_count: u32,
    total_spent: i64,
    average_order_value: i64,
    first: i64,
    last: i64,
    days: u32,
) -> CustomerStats {
    CustomerStats {
        order_count,
        total_spent,
        average_order_value,
        first_order_at: (first != NO_TIME).then_some(first),
        last_order_at: (last != NO_TIME).then_some(last),
        days_since_last_order: (days != NO_DAYS).then_some(days),
    }
}

impl<S: std::borrow::Borrow<CustomerStats>> FromIterator<S> for StatsBatch {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let expected = iter.size_hint().0;
        // Filling columns of the expected length in one pass is much faster than six
        // pushes per customer (the host builds a batch per 10,000 customers).
        let mut batch = Self::filled(expected);
        let c = &mut batch.columns;
        let slots = c
            .order_count
            .iter_mut()
            .zip(&mut c.total_spent)
            .zip(&mut c.average_order_value)
            .zip(&mut c.first_order_at)
            .zip(&mut c.last_order_at)
            .zip(&mut c.days_since_last_order);
        let mut filled = 0;
        for ((((((orders, spent), average), first), last), days), stats) in slots.zip(iter.by_ref()) {
            (*orders, *spent, *average, *first, *last, *days) = encode(stats.borrow());
            filled += 1;
        }
        batch.truncate(filled);
        batch.extend(iter);
        batch
    }
}

impl<S: std::borrow::Borrow<CustomerStats>> Extend<S> for StatsBatch {
    fn extend<I: IntoIterator<Item = S>>(&mut self, iter: I) {
        for stats in iter {
            self.push(stats.borrow());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customers() -> Vec<CustomerStats> {
        let returning = CustomerStats {
            order_count: 3,
            total_spent: 9_000,
            average_order_value: 3_000,
            first_order_at: Some(-5),
            last_order_at: Some(1_700_000_000_000),
            days_since_last_order: Some(0),
        };
        vec![returning, CustomerStats::default()]
    }

    #[test]
    fn customers_come_back_as_they_went_in_nones_included() {
        let batch: StatsBatch = customers().iter().collect();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.iter().collect::<Vec<_>>(), customers());
        assert_eq!(batch.get(1), Some(CustomerStats::default()));
        assert_eq!(batch.get(2), None);
        let columns = batch.clone().into_columns();
        assert_eq!(columns.first_order_at, [-5, i64::MIN]);
        assert_eq!(columns.days_since_last_order, [0, u32::MAX]);
        assert_eq!(StatsBatch::from_columns(columns), Ok(batch));
    }

    #[test]
    fn iterators_longer_or_shorter_than_their_size_hint_still_give_every_customer() {
        let all = customers();
        let shorter: StatsBatch = all.iter().filter(|s| s.order_count > 0).collect();
        assert_eq!(shorter.iter().collect::<Vec<_>>(), all[..1]);
        let longer: StatsBatch = all.iter().chain(all.iter().filter(|_| true)).collect();
        assert_eq!(longer.len(), 4);
        assert_eq!(longer.get(3), Some(CustomerStats::default()));
    }

    #[test]
    fn a_cleared_batch_takes_new_customers() {
        let mut batch: StatsBatch = customers().iter().collect();
        batch.clear();
        assert!(batch.is_empty());
        batch.extend(customers().iter().rev());
        assert_eq!(batch.get(0), Some(CustomerStats::default()));
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn columns_of_different_lengths_are_refused() {
        let mut columns = customers().into_iter().collect::<StatsBatch>().into_columns();
        columns.last_order_at.pop();
        let refused = StatsBatch::from_columns(columns).err();
        assert_eq!(refused.as_deref(), Some("stats columns differ in length: 2 order counts, then [2, 2, 2, 1, 2]"));
    }
}
