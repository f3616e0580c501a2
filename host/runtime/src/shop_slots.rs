//! Per-shop instance quotas: one shop cannot hold every slot of the instance pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Live instances per shop, at most `limit` each.
#[derive(Debug)]
pub(crate) struct ShopSlots {
    limit: u32,
    held: Mutex<HashMap<Arc<str>, u32>>,
}

/// One instance's slot; released when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<ShopSlots>,
    shop: Arc<str>,
}

impl ShopSlots {
    pub(crate) fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self { limit: limit.max(1), held: Mutex::new(HashMap::new()) })
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, u32>> {
        // Only counters; a poisoned lock is still consistent.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for `shop`, or `None` if it holds `limit` already.
    pub(crate) fn acquire(self: &Arc<Self>, shop: &Arc<str>) -> Option<Slot> {
        let mut held = self.lock();
        let count = held.entry(Arc::clone(shop)).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot { slots: Arc::clone(self), shop: Arc::clone(shop) })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        if let Some(count) = held.get_mut(&self.shop) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.shop);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shop_at_its_quota_waits_for_its_own_slots_only() {
        let slots = ShopSlots::new(2);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let first = slots.acquire(&a).expect("1st");
        let _second = slots.acquire(&a).expect("2nd");
        assert!(slots.acquire(&a).is_none(), "a is at its quota");
        assert!(slots.acquire(&b).is_some(), "b is not");
        drop(first);
        assert!(slots.acquire(&a).is_some(), "a released one");
    }
}
