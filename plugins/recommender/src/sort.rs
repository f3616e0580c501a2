//! One sort for the whole plugin. Every `sort_by` with its own closure or element type
//! puts another copy of the standard library's sort in the component (5–8 KB each);
//! here every order the plugin needs sorts `u32`s through one comparator reference.

use std::cmp::Ordering;

/// Sorts `v` by `compare` (equal items in any order).
pub(crate) fn sort_u32(v: &mut [u32], compare: &dyn Fn(u32, u32) -> Ordering) {
    v.sort_unstable_by(|&a, &b| compare(a, b));
}

/// `items` in the order of `compare` (equal items in any order), by sorting their positions.
pub(crate) fn sorted<T: Copy>(items: &[T], compare: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    let mut order: Vec<u32> = (0..items.len()).map(|i| i as u32).collect();
    sort_u32(&mut order, &|a, b| compare(&items[a as usize], &items[b as usize]));
    order.into_iter().map(|i| items[i as usize]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_the_comparator() {
        let mut v = vec![5, 3, 9, 1, 3];
        sort_u32(&mut v, &|a, b| b.cmp(&a));
        assert_eq!(v, [9, 5, 3, 3, 1]);
        let pairs = [(2u32, 0.5f64), (1, 0.75), (3, 0.5)];
        let best_first = sorted(&pairs, |x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        assert_eq!(best_first, [(1, 0.75), (2, 0.5), (3, 0.5)]);
        assert!(sorted::<u8>(&[], |a, b| a.cmp(b)).is_empty());
    }
}
