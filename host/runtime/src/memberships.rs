//! Batch segmentation's answer, and the statistics columns a segmenter's fast path is handed.

use std::collections::HashMap;

use crate::bindings::stats_segmenter::exports::patron::plugin::stats_segmentation::StatsBatch;
use crate::bindings::types::Profile;

/// The segments of each customer of a batch, in batch order: a table of segment names
/// and, per customer, indexes into it (the contract's `memberships` record, checked).
/// [`Instance::segment_batch`](crate::Instance::segment_batch) answers one on both of
/// its paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memberships {
    names: Vec<String>,
    ends: Vec<u32>,
    members: Vec<u32>,
}

impl Memberships {
    /// Memberships in the contract's form (see `stats-segmentation.memberships` in
    /// `wit/worlds.wit`), or why they are not well-formed.
    pub fn new(names: Vec<String>, ends: Vec<u32>, members: Vec<u32>) -> Result<Self, String> {
        if ends.windows(2).any(|w| w[0] > w[1]) {
            return Err("`ends` decreases".into());
        }
        let last = ends.last().map_or(0, |&end| end as usize);
        if last != members.len() {
            return Err(format!("`ends` stops at {last} but there are {} members", members.len()));
        }
        if let Some(bad) = members.iter().find(|&&m| m as usize >= names.len()) {
            return Err(format!("segment index {bad} is not below the {} names", names.len()));
        }
        Ok(Self { names, ends, members })
    }

    /// The same memberships as `segmentation.segment`'s answer (one list per customer).
    pub fn from_lists(lists: Vec<Vec<String>>) -> Self {
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut out = Self::default();
        out.ends.reserve(lists.len());
        for segments in lists {
            for name in segments {
                let next = out.names.len() as u32;
                let i = *index.entry(name).or_insert_with_key(|name| {
                    out.names.push(name.clone());
                    next
                });
                out.members.push(i);
            }
            out.ends.push(out.members.len() as u32);
        }
        out
    }

    /// Customers in the batch.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch had no customers.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The segments of customer `i` of the batch, in the plugin's order.
    ///
    /// # Panics
    /// If `i` is not below [`len`](Self::len).
    pub fn segments(&self, i: usize) -> impl Iterator<Item = &str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.members[start..self.ends[i] as usize]
            .iter()
            .map(|&m| self.names[m as usize].as_str())
    }

    /// One list of segments per customer, as `segmentation.segment` answers.
    pub fn to_lists(&self) -> Vec<Vec<String>> {
        (0..self.len())
            .map(|i| self.segments(i).map(str::to_owned).collect())
            .collect()
    }
}

/// The order statistics of `profiles`, column by column.
pub(crate) fn stats_batch(profiles: &[Profile]) -> StatsBatch {
    let n = profiles.len();
    let mut batch = StatsBatch {
        order_count: Vec::with_capacity(n),
        total_spent: Vec::with_capacity(n),
        average_order_value: Vec::with_capacity(n),
        first_order_at: Vec::with_capacity(n),
        last_order_at: Vec::with_capacity(n),
        days_since_last_order: Vec::with_capacity(n),
    };
    for p in profiles {
        let s = &p.stats;
        batch.order_count.push(s.order_count);
        batch.total_spent.push(s.total_spent);
        batch.average_order_value.push(s.average_order_value);
        batch.first_order_at.push(s.first_order_at);
        batch.last_order_at.push(s.last_order_at);
        batch.days_since_last_order.push(s.days_since_last_order);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(raw: &[&[&str]]) -> Vec<Vec<String>> {
        raw.iter()
            .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn lists_round_trip_through_a_name_table() {
        let answer = lists(&[&["vip", "new"], &[], &["new"], &["lapsed", "vip"]]);
        let m = Memberships::from_lists(answer.clone());
        assert_eq!(m.names, ["vip", "new", "lapsed"]);
        assert_eq!(m.ends, [2, 2, 3, 5]);
        assert_eq!(m.members, [0, 1, 1, 2, 0]);
        assert_eq!(m.to_lists(), answer);
        assert_eq!(Memberships::new(m.names.clone(), m.ends.clone(), m.members.clone()), Ok(m));
    }

    #[test]
    fn malformed_memberships_are_refused() {
        let names = || vec!["a".to_owned(), "b".into()];
        assert!(Memberships::new(names(), vec![1, 2], vec![0, 1]).is_ok());
        assert_eq!(Memberships::new(names(), vec![2, 1], vec![0, 1]), Err("`ends` decreases".into()));
        assert_eq!(
            Memberships::new(names(), vec![1, 1], vec![0, 1]),
            Err("`ends` stops at 1 but there are 2 members".into())
        );
        assert_eq!(
            Memberships::new(names(), vec![], vec![0]),
            Err("`ends` stops at 0 but there are 1 members".into())
        );
        assert_eq!(
            Memberships::new(names(), vec![1], vec![2]),
            Err("segment index 2 is not below the 2 names".into())
        );
    }
}
