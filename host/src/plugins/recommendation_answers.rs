//! A recommender's answers kept for a few seconds per (install, model, request), so that
//! anonymous storefront traffic — a public endpoint anyone holding the publishable key can
//! call — costs one plugin instance per distinct page every few seconds, not one per
//! request. Concurrent misses for one key wait for a single call (single flight); a call
//! that fails is not kept, so the next request tries again (and the breaker counts it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patron_runtime::types::ScoredItem;
use tokio::sync::OnceCell;

use super::lock;

/// How long an answer is served from memory.
pub const ANSWER_TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; when full, expired entries go first, then everything.
const MAX_ANSWERS: usize = 10_000;

/// What identifies one answer: the install and the model it was computed with, and the
/// request the plugin saw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub shop_id: i64,
    pub install: String,
    pub model_built_at: i64,
    pub customer_id: Option<i64>,
    pub context: Vec<String>,
    pub limit: u32,
}

struct Slot {
    created: Instant,
    answer: OnceCell<Arc<Vec<ScoredItem>>>,
}

/// Recent answers by [`AnswerKey`].
#[derive(Default)]
pub struct AnswerCache {
    slots: Mutex<HashMap<AnswerKey, Arc<Slot>>>,
}

impl AnswerCache {
    /// The answer for `key`: from memory when computed less than [`ANSWER_TTL`] ago,
    /// otherwise from `compute`, which concurrent callers of the same key share.
    pub async fn get_or_compute<E, F, Fut>(&self, key: AnswerKey, compute: F) -> Result<Arc<Vec<ScoredItem>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<ScoredItem>, E>>,
    {
        let slot = self.slot(key);
        slot.answer.get_or_try_init(|| async { compute().await.map(Arc::new) }).await.cloned()
    }

    fn slot(&self, key: AnswerKey) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get(&key)
            && slot.created.elapsed() < ANSWER_TTL
        {
            return slot.clone();
        }
        if slots.len() >= MAX_ANSWERS {
            slots.retain(|_, slot| slot.created.elapsed() < ANSWER_TTL);
            if slots.len() >= MAX_ANSWERS {
                slots.clear();
            }
        }
        let slot = Arc::new(Slot { created: Instant::now(), answer: OnceCell::new() });
        slots.insert(key, slot.clone());
        slot
    }

    /// Forgets every answer of a shop's install (its model was retrained or replaced).
    pub fn forget(&self, shop_id: i64, install: &str) {
        lock(&self.slots).retain(|key, _| key.shop_id != shop_id || key.install != install);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn key(context: &str) -> AnswerKey {
        AnswerKey {
            shop_id: 1,
            install: "recommender".into(),
            model_built_at: 7,
            customer_id: None,
            context: vec![context.into()],
            limit: 16,
        }
    }

    fn item(id: &str) -> ScoredItem {
        ScoredItem { product_id: id.into(), score: 1.0 }
    }

    #[tokio::test]
    async fn concurrent_requests_for_one_page_make_one_call() {
        let cache = Arc::new(AnswerCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_compute(key("p1"), || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(vec![item("a")])
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task").expect("answer").as_slice(), [item("a")]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let other = cache.get_or_compute(key("p2"), || async { Ok::<_, ()>(vec![item("b")]) }).await;
        assert_eq!(other.expect("answer").as_slice(), [item("b")], "another page is another answer");
    }

    #[tokio::test]
    async fn a_failed_call_is_not_kept_and_forget_drops_answers() {
        let cache = AnswerCache::default();
        let failed = cache.get_or_compute(key("p1"), || async { Err::<Vec<ScoredItem>, _>("boom") }).await;
        assert_eq!(failed.err(), Some("boom"));
        let next = cache.get_or_compute(key("p1"), || async { Ok::<_, &str>(vec![item("a")]) }).await;
        assert_eq!(next.expect("answer").as_slice(), [item("a")]);
        cache.forget(1, "recommender");
        let after = cache.get_or_compute(key("p1"), || async { Ok::<_, &str>(vec![item("c")]) }).await;
        assert_eq!(after.expect("answer").as_slice(), [item("c")]);
    }
}
